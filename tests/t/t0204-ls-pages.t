#!/usr/bin/env bash
# h2k-ls against a server whose RetrievePropertiesEx paging never ends
# (issue 10 item 17): fresh tokens on empty pages, the same token again.
# Each run is under timeout(1) so that a client that loops fails the test
# instead of hanging it.
. "$(dirname "$0")/../lib.sh"

. "$TESTS_DIR/servers/soapd-lib.sh"


calls() { grep -c "\"method\": \"$1\"" "$TRASH/soapd.log"; }

test_expect_success 'endless fresh tokens on empty pages: exit 9, one line, few calls' '
	soapd_start --mode endless-token --at RetrievePropertiesEx,ContinueRetrievePropertiesEx &&
	soapd_session &&
	expect_code 9 timeout 20 h2k-ls >out 2>err &&
	test_one_line err &&
	grep -F "h2k-ls: $SOAPD_HOST: ContinueRetrievePropertiesEx: 9 pages in a row without objects" err &&
	grep -F "paging loop" err &&
	test_line_count = 0 out &&
	test "$(calls ContinueRetrievePropertiesEx)" -le 10
'

test_expect_success 'the result set is cancelled and the view destroyed' '
	test "$(calls CancelRetrievePropertiesEx)" = 1 &&
	test "$(calls DestroyView)" = 1
'

test_expect_success 'the same token again: exit 9 naming the token' '
	soapd_start --mode repeat-token --at RetrievePropertiesEx,ContinueRetrievePropertiesEx &&
	soapd_session &&
	expect_code 9 timeout 20 h2k-ls >out 2>err &&
	test_one_line err &&
	grep -F "ContinueRetrievePropertiesEx: the server repeats continuation token '"'"'tok-same'"'"' after 2 pages" err &&
	test_line_count = 0 out &&
	test "$(calls ContinueRetrievePropertiesEx)" = 1
'

test_expect_success 'a normal listing still works (no token)' '
	soapd_start && soapd_session &&
	timeout 20 h2k-ls >out 2>err &&
	test_line_count = 0 out && test_line_count = 0 err
'

test_done
