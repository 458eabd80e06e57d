#!/usr/bin/env bash
# tests/lib.sh's cleanup stacks: test_when_finished in a body runs when that
# test ends, test_atexit at the end of the file or on any exit, newest
# first; the helpers push their stops onto it instead of replacing the EXIT
# trap, so a server started by one helper is stopped even when a later
# helper starts another or the file bails out.
# SPDX-License-Identifier: LGPL-3.0-or-later
. "$(dirname "$0")/../lib.sh"

mkdir -p t sub
# sub NAME: run the test file t/NAME.t, its trash under sub/.
sub() {
	H2K_TRASH_ROOT="$TRASH/sub" H2K_BIN="$H2K_BIN" bash "$TRASH/t/$1.t"
}
{
	echo "#!/usr/bin/env bash"
	echo ". \"$TESTS_DIR/lib.sh\""
	# lib.sh finds the suite from the file's path: these live in the trash.
	echo "TESTS_DIR=\"$TESTS_DIR\""
} >head.sh

cat head.sh - >t/order.t <<'EOT'
LOG=$TRASH/../../order.log
test_atexit 'echo atexit-1 >>"$LOG"'
test_expect_success 'first' '
	test_when_finished "echo body-cleanup-1 >>\"$LOG\"" &&
	test_when_finished "echo body-cleanup-2 >>\"$LOG\"" &&
	echo body-1 >>"$LOG"
'
test_expect_success 'second fails, its cleanup still runs' '
	test_when_finished "echo body-cleanup-3 >>\"$LOG\"" &&
	false
'
test_expect_code 3 'test_expect_code: cleanup runs, the code is kept' '
	test_when_finished "echo body-cleanup-4 >>\"$LOG\"" &&
	exit 3
'
test_expect_success 'a failing cleanup fails the test' '
	test_when_finished false
'
test_when_finished 'echo atexit-2 >>"$LOG"'
test_done
EOT

test_expect_code 1 'a file with cleanups: two failures, exits 1' 'sub order >order.out'

test_expect_success '... TAP as expected' '
	grep "^ok 1 - first" order.out &&
	grep "^not ok 2 - second" order.out &&
	grep "^ok 3 - test_expect_code" order.out &&
	grep "^not ok 4 - a failing cleanup" order.out &&
	grep "^1..4" order.out
'

test_expect_success '... cleanups ran once each, newest first, at their time' '
	printf "%s\n" body-1 body-cleanup-2 body-cleanup-1 body-cleanup-3 \
		body-cleanup-4 atexit-2 atexit-1 >expect &&
	test_cmp expect order.log
'

# The helpers push onto the stack: nfcd started, soapd-lib sourced, the
# file's own cleanup pushed, then a bail out before test_done.
cat head.sh - >t/bail.t <<'EOT'
. "$TESTS_DIR/servers/nfcd-lib.sh"
. "$TESTS_DIR/servers/soapd-lib.sh"
nfcd_start
echo "$NFCD_PID" >"$TRASH/../../nfcd.pid"
soapd_start || exit 1
echo "$SOAPD_PID" >"$TRASH/../../soapd.pid"
test_atexit 'echo mine >"$TRASH/../../mine"'
trap -p EXIT >"$TRASH/../../trap"
echo "Bail out! on purpose"
exit 1
EOT

test_expect_code 1 'a file that bails out after starting two servers' 'sub bail >bail.out'

test_expect_success '... the EXIT trap is still the stack' '
	grep "_cleanup_run _atexit" trap
'

test_expect_success '... its cleanup and both helpers stops ran' '
	test -s nfcd.pid && test -s soapd.pid && test -s mine &&
	! kill -0 "$(cat nfcd.pid)" 2>/dev/null &&
	! kill -0 "$(cat soapd.pid)" 2>/dev/null
'
# A helper restarted inside a body: its server dies with that test.
cat head.sh - >t/body.t <<'EOT'
. "$TESTS_DIR/servers/nfcd-lib.sh"
nfcd_start
echo "$NFCD_PID" >"$TRASH/../../outer.pid"
test_expect_success 'restart inside a body' '
	nfcd_stop && nfcd_start &&
	echo "$NFCD_PID" >"$TRASH/../../inner.pid" &&
	kill -0 "$NFCD_PID"
'
test_expect_success 'the next test: the server of that body is gone' '
	! kill -0 "$(cat "$TRASH/../../inner.pid")" 2>/dev/null
'
test_done
EOT

test_expect_success 'a server started inside a body is stopped when it ends' '
	sub body >body.out &&
	grep "^ok 2 - the next test" body.out &&
	! kill -0 "$(cat outer.pid)" 2>/dev/null
'
test_done
