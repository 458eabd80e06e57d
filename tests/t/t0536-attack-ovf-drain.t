#!/usr/bin/env bash
# h2k-ovf after SIGTERM ends the export of every line it has read and not
# finished (h2k-ovf(1): lease aborted).  Found by attack: a line read while
# the queue was being drained (after the signal, during the abort of the
# last queued line) was linked behind the item being ended, whose ->next
# had already been taken: its lease was never aborted (and the reader wrote
# through a tail pointer to a freed item when the timing was tighter).
# soapd drips CreateDescriptor and HttpNfcLeaseAbort, so each takes the
# whole SOAP deadline (4 s): line 1 is stuck in CreateDescriptor at the
# signal (t=1), its abort runs t~4-8, line 2's (the drain) t~8-12, and
# line 3 arrives at t=10, in the middle of the drain.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/servers/soapd-lib.sh"

sim_start -vm 3 -disks 0 -disk-size 64K -disk-fill random -power off
h2k_login_sim || { echo "Bail out! login failed"; exit 1; }

test_expect_success 'three VMs fetched from the rig' '
	h2k-lease /DC0/vm/DC0_H0_VM0 /DC0/vm/DC0_H0_VM1 /DC0/vm/DC0_H0_VM2 |
		h2k-fetch -o exp >lines &&
	test_line_count = 3 lines &&
	sed -n 1p lines >l1 && sed -n 2p lines >l2 && sed -n 3p lines >l3
'

test_expect_success 'SIGTERM: a line read during the drain has its lease aborted too' '
	soapd_start --at CreateDescriptor,HttpNfcLeaseAbort --mode drip &&
	soapd_session &&
	mkfifo in || return 1
	{ cat l1 l2; sleep 10; cat l3; sleep 10; } >in &
	w=$!
	H2K_SOAP_TIMEOUT=4 h2k-ovf -v <in >out 2>err &
	p=$!
	sleep 1; kill -TERM $p
	wait $p; rc=$?
	kill $w 2>/dev/null; wait $w
	say "exit $rc" &&
	test "$rc" = 10 &&
	test ! -s out &&
	grep -q "stdin:2: export ended unfinished" err &&
	grep -q "stdin:3: export ended unfinished" err &&
	test "$(jq -r .method "$TRASH/soapd.log" | grep -c "^HttpNfcLeaseAbort\$")" = 3 &&
	grep -q "interrupted by signal 15" err
'

test_done
