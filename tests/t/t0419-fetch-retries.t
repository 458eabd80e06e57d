#!/usr/bin/env bash
# --retries n counts retries, as curl's --retry does: n + 1 attempts in a
# row without new bytes before a file is given up, one with --retries 0;
# h2k-fetch(1) says so.
# SPDX-License-Identifier: LGPL-3.0-or-later
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/servers/nfcd-lib.sh"

nfcd_start
mkdisk d1 100000
F="h2k-fetch --ca-file $NFCD_CERT --retry-delay 0.01 -q"

for n in 0 1 3; do
	test_expect_success "--retries $n: $((n + 1)) attempt(s), then exit 9" '
		lease_line r'$n' "$NFCD_URL/status=503,times=0,r='$n'/d1" >in &&
		expect_code 9 $F --retries '$n' -o out <in >out.json 2>err &&
		i=0 && while [ "$(requests "r='$n'/d1" | wc -l)" -lt '$((n + 1))' ] && [ $i -lt 100 ]; do
			i=$((i + 1)); sleep 0.05; done &&
		test "$(requests "r='$n'/d1" | wc -l)" = '$((n + 1))' &&
		grep -q "giving up after '$((n + 1))' attempt" err
	'
done

test_expect_success 'h2k-fetch(1) says n retries, n + 1 attempts' '
	sed -n "/^\.It Fl -retries Ar n/,/^\.It /p" "$SRC_DIR/man/h2k-fetch.1" >page &&
	grep -q "^+ 1 such attempts" page &&
	grep -q "gives up at the first attempt that brings nothing new" page
'
test_done
