#!/usr/bin/env bash
# kill -9 of the runner at each point of a job's life (just after the
# claim, during the lease, during the download, during the OVF step), then
# a new runner: the job completes once, byte-identical, resumed from the
# .part files, attempts recorded.  Nobody takes a job over while a process
# of the dead runner's job still lives.  The attempts limit fails a job
# that keeps killing its runner.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/t/t06-standins.sh"

export H2K_SPOOL="$TRASH/spool" OUT="$TRASH/out"
standins_install "$TRASH/bin"
standins_vm vm1 200000 30000

# after_crash ID: the dead runner's job is orphaned in cur/ as running.
orphaned() {
	test -f "$H2K_SPOOL/cur/$1" &&
	test "$(field $1 ".status")" = running
}

# recovered ID: a new runner finishes it: attempt 2, one completion,
# identical bytes, the log tells the story.
recovered() {
	h2k-job run --once 2>run2.err &&
	grep "runner died during attempt 1; requeued" run2.err &&
	test "$(field $1 ".status")" = completed &&
	test "$(field $1 ".attempts")" = 2 &&
	test "$(ledger_count complete $1)" = 1 &&
	cmp "$STANDIN_SRC/vm1/disk-0.vmdk" "$OUT/vm1/disk-0.vmdk" &&
	cmp "$STANDIN_SRC/vm1/disk-1.vmdk" "$OUT/vm1/disk-1.vmdk" &&
	grep "runner died during attempt 1; requeued" "$H2K_SPOOL/log/$1.log" &&
	test -z "$(find "$H2K_SPOOL/new" "$H2K_SPOOL/cur" "$H2K_SPOOL/lock" -mindepth 1)"
}

fresh() {
	rm -rf "$H2K_SPOOL" "$OUT" "$STANDIN_STATE" && mkdir -p "$STANDIN_STATE"
}

test_expect_success 'kill -9 just after the claim, before any process started' '
	fresh && id=$(submit_vms vm1) &&
	H2K_JOB_TEST_STOP_AFTER_CLAIM="$TRASH/at-claim" start_runner run.err --once &&
	wait_for -e "$TRASH/at-claim" &&
	kill -9 $RUNNER && { wait $RUNNER; true; } &&
	orphaned $id && test "$(field $id ".attempts")" = 1 &&
	recovered $id
'

test_expect_success 'kill -9 during the lease: its processes die with the runner' '
	fresh && id=$(submit_vms vm1) &&
	STANDIN_PAUSE=lease start_runner run.err --once &&
	wait_for -e "$STANDIN_STATE/at-lease-$id" &&
	pg=$(field $id ".pgid") &&
	kill -9 $RUNNER && { wait $RUNNER; true; } &&
	group_gone $pg &&
	orphaned $id &&
	recovered $id
'

test_expect_success 'kill -9 during the download: lease aborted, resumed from .part' '
	fresh && id=$(submit_vms vm1) &&
	STANDIN_DELAY=$SLOW STANDIN_CHUNK=4096 start_runner run.err --once &&
	wait_for -s "$OUT/vm1/disk-0.vmdk.part" &&
	pg=$(field $id ".pgid") &&
	lease=$(field $id ".lease.moref") &&
	kill -9 $RUNNER && { wait $RUNNER; true; } &&
	group_gone $pg &&
	test "$(cat "$STANDIN_STATE/leases/$lease")" = aborted &&
	test -s "$OUT/vm1/disk-0.vmdk.part" && test ! -e "$OUT/vm1/disk-0.vmdk" &&
	orphaned $id &&
	recovered $id &&
	grep "^fetch $id 2 [1-9]" "$STANDIN_STATE/ledger"
'

test_expect_success 'kill -9 after h2k-ovf printed its result: recorded, not exported again' '
	fresh && id=$(submit_vms vm1) &&
	STANDIN_PAUSE=ovf-printed start_runner run.err --once &&
	wait_for -e "$STANDIN_STATE/at-ovf-printed-$id" &&
	pg=$(field $id ".pgid") &&
	kill -9 $RUNNER && { wait $RUNNER; true; } &&
	group_gone $pg &&
	test "$(ledger_count complete $id)" = 1 &&
	orphaned $id &&
	h2k-job run --once 2>run2.err &&
	test "$(field $id ".status")" = completed &&
	test "$(field $id ".result.ovf_path")" = "$OUT/vm1/vm1.ovf" &&
	test "$(ledger_count complete $id)" = 1 &&
	grep "an earlier attempt completed the export" "$H2K_SPOOL/log/$id.log" &&
	test -z "$(find "$H2K_SPOOL/new" "$H2K_SPOOL/cur" "$H2K_SPOOL/lock" -mindepth 1)"
'

test_expect_success 'kill -9 during the OVF step: done again, completed once' '
	fresh && id=$(submit_vms vm1) &&
	STANDIN_PAUSE=ovf start_runner run.err --once &&
	wait_for -e "$STANDIN_STATE/at-ovf-$id" &&
	wait_field $id ".progress.phase" ovf &&
	pg=$(field $id ".pgid") &&
	kill -9 $RUNNER && { wait $RUNNER; true; } &&
	group_gone $pg &&
	test "$(ledger_count complete $id)" = 0 &&
	orphaned $id &&
	recovered $id
'

test_expect_success 'no takeover while a process of the dead runner lives on' '
	fresh && id=$(submit_vms vm1) &&
	STANDIN_DELAY=$SLOW STANDIN_CHUNK=4096 STANDIN_TERM_DELAY=2 start_runner run.err --once &&
	wait_for -s "$OUT/vm1/disk-0.vmdk.part" &&
	pg=$(field $id ".pgid") &&
	kill -9 $RUNNER && { wait $RUNNER; true; } &&
	pgrep -g $pg >/dev/null &&
	h2k-job run --once 2>early.err &&
	pgrep -g $pg >/dev/null &&
	orphaned $id && test "$(ledger_count fetch $id)" = 1 &&
	! grep claimed early.err &&
	group_gone $pg &&
	recovered $id
'

test_expect_success 'the attempts limit: a job that keeps dying is failed with the reason' '
	fresh && id=$(submit_vms vm1) &&
	H2K_JOB_TEST_STOP_AFTER_CLAIM="$TRASH/at-claim2" start_runner run.err --once --max-attempts 1 &&
	wait_for -e "$TRASH/at-claim2" &&
	kill -9 $RUNNER && { wait $RUNNER; true; } &&
	expect_code 1 h2k-job run --once --max-attempts 1 2>run2.err &&
	grep -q "stopped; 0 jobs completed, 1 failed" run2.err &&
	test "$(field $id ".status")" = failed &&
	test "$(field $id ".error")" = "runner died during attempt 1 of 1; giving up (see log/$id.log)" &&
	test "$(ledger_count fetch $id)" = 0 &&
	expect_code 1 h2k-job wait $id >/dev/null
'

test_expect_success 'a finished record left in cur/ by a crash goes to done/, not rerun' '
	fresh && id=$(submit_vms vm1) &&
	h2k-job run --once 2>/dev/null &&
	mv "$H2K_SPOOL/done/$id" "$H2K_SPOOL/cur/$id" &&
	h2k-job run --once 2>run2.err &&
	test -f "$H2K_SPOOL/done/$id" && test ! -e "$H2K_SPOOL/cur/$id" &&
	test "$(ledger_count complete $id)" = 1 &&
	test "$(field $id ".attempts")" = 1
'

job_cleanup
test_done
