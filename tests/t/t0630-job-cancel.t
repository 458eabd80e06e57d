#!/usr/bin/env bash
# h2k-job cancel: a pending job never runs; a running job's processes are
# stopped (none left in its process group), its lease aborted, the job
# marked cancelled, and the runner goes on with the next one.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/t/t06-standins.sh"

export H2K_SPOOL="$TRASH/spool" OUT="$TRASH/out"
standins_install "$TRASH/bin"
standins_vm vm1 400000
standins_vm vm2 30000

test_expect_success 'cancel a pending job: cancelled, never run' '
	id=$(submit_vms vm1) &&
	h2k-job cancel $id >c.out &&
	test_line_count = 1 c.out &&
	test "$(jqget "$(cat c.out)" ".status")" = cancelled &&
	test "$(field $id ".status")" = cancelled &&
	test "$(field $id ".finished_at != null")" = true &&
	test -f "$H2K_SPOOL/done/$id" && test ! -e "$H2K_SPOOL/new/$id" &&
	h2k-job run --once 2>/dev/null &&
	test "$(ledger_count fetch $id)" = 0 &&
	h2k-job ls --status cancelled >ls.out && test_line_count = 1 ls.out &&
	expect_code 10 h2k-job wait $id >/dev/null
'

test_expect_success 'cancel of a cancelled job is fine; of a completed one is exit 7' '
	h2k-job cancel $(jq -r .id "$H2K_SPOOL"/done/*) >/dev/null &&
	id=$(submit_vms vm2) && h2k-job run --once 2>/dev/null &&
	expect_code 7 h2k-job cancel $id 2>err &&
	test_one_line err && grep "already completed" err &&
	expect_code 6 h2k-job cancel 1.2.3.beef 2>err && test_one_line err
'

test_expect_success 'cancel a running job: group gone, lease aborted, next job runs' '
	rm -rf "$H2K_SPOOL" "$OUT" &&
	submit_vms vm1 vm2 >ids && id=$(head -1 ids) && next=$(tail -1 ids) &&
	STANDIN_DELAY=$SLOW STANDIN_CHUNK=4096 start_runner run.err --workers 1 &&
	rp=$RUNNER &&
	wait_for -s "$OUT/vm1/disk-0.vmdk.part" &&
	pg=$(field $id ".pgid") && lease=$(field $id ".lease.moref") &&
	pgrep -g $pg >/dev/null &&
	h2k-job cancel $id >c.out &&
	test "$(jqget "$(cat c.out)" ".status")" = cancelled &&
	group_gone $pg &&
	test "$(cat "$STANDIN_STATE/leases/$lease")" = aborted &&
	test "$(field $id ".status")" = cancelled &&
	test "$(field $id ".error")" = cancelled &&
	test "$(ledger_count complete $id)" = 0 &&
	test ! -e "$OUT/vm1/disk-0.vmdk" &&
	test ! -e "$H2K_SPOOL/cancel/$id" &&
	grep "cancel requested" "$H2K_SPOOL/log/$id.log" &&
	WAIT_S=30 wait_for -f "$H2K_SPOOL/done/$next" &&
	test "$(field $next ".status")" = completed &&
	kill -TERM $rp && wait $rp &&
	expect_code 10 h2k-job wait $id >/dev/null
'

test_expect_success 'a job that ignores SIGTERM is killed after the bound' '
	rm -rf "$H2K_SPOOL" "$OUT" &&
	id=$(submit_vms vm1) &&
	STANDIN_DELAY=$SLOW STANDIN_CHUNK=4096 STANDIN_TERM_DELAY=60 start_runner run.err &&
	rp=$RUNNER &&
	wait_for -s "$OUT/vm1/disk-0.vmdk.part" &&
	pg=$(field $id ".pgid") &&
	h2k-job cancel --timeout 30 $id >c.out &&
	group_gone $pg &&
	test "$(field $id ".status")" = cancelled &&
	grep "SIGKILL" "$H2K_SPOOL/log/$id.log" &&
	kill -TERM $rp && wait $rp
'

test_expect_success 'cancel of a job orphaned by a dead runner: done by cancel itself' '
	rm -rf "$H2K_SPOOL" "$OUT" &&
	id=$(submit_vms vm1) &&
	H2K_JOB_TEST_STOP_AFTER_CLAIM="$TRASH/at-claim" start_runner run.err --once &&
	wait_for -e "$TRASH/at-claim" &&
	kill -9 $RUNNER && { wait $RUNNER; true; } &&
	h2k-job cancel $id >c.out &&
	test "$(field $id ".status")" = cancelled &&
	h2k-job run --once 2>/dev/null &&
	test "$(ledger_count fetch $id)" = 0
'

job_cleanup
test_done
