#!/usr/bin/env bash
# Paging bounds (issue 10 item 17) for a lookup of named objects: a
# RetrievePropertiesEx for N morefs (no traversal) has at most N objects
# to give, so a server that keeps handing out objects and fresh tokens
# after that is looping.  It used to be held only by the 1,000-page bound,
# each page under its own SOAP deadline: 1,000 round trips for one VM
# (h2k-lease vm-1), or 1,000 x the deadline with a dripping server.
# h2k-lease's lookup of one VM is a traversal (the VM, its folders,
# datastores and networks: at most 4,096 objects), bounded at 2 + 4096/256
# pages; the names it then asks for by moref keep the N-morefs bound.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/servers/soapd-lib.sh"

calls() { grep -c "\"method\": \"$1\"" "$TRASH/soapd.log"; }

soapd_start --mode endless-objects --at RetrievePropertiesEx,ContinueRetrievePropertiesEx || exit 1
soapd_session

test_expect_success 'h2k-lease vm-1, objects and tokens for ever: exit 9 after a few pages' '
	expect_code 9 timeout 30 h2k-lease vm-1 >out 2>err &&
	test_one_line err && grep -F "paging loop" err &&
	test "$(calls ContinueRetrievePropertiesEx)" -le 18 &&
	test "$(calls CancelRetrievePropertiesEx)" = 1
'

test_done
