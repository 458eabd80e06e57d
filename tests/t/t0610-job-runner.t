#!/usr/bin/env bash
# h2k-job run against stand-in pipeline commands: every job runs exactly
# once, with several workers and with two runners on one spool; failures
# are recorded with the stage's message; corrupt files are moved aside;
# SIGTERM stops claiming and requeues what did not finish.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/t/t06-standins.sh"

export H2K_SPOOL="$TRASH/spool" OUT="$TRASH/out"
standins_install "$TRASH/bin"

# Two disks for the first five, one for the rest (fewer processes).
for i in $(seq 1 5); do standins_vm "vm$i" $((20000 + i * 997)) 4096; done
for i in $(seq 6 20); do standins_vm "vm$i" $((20000 + i * 997)); done

# all_done N: the spool's done/ holds N records, all completed at the first
# attempt with progress 100 and an ovf_path, and nothing else is queued.
all_done() {
	test "$(jq -r '[.status, .attempts, .progress.percent_complete,
	    (.result.ovf_path != null)] | @tsv' "$H2K_SPOOL"/done/* | sort | uniq -c |
	    sed 's/^ *//')" = "$1 completed	1	100	true" &&
	test -z "$(find "$H2K_SPOOL/new" "$H2K_SPOOL/cur" "$H2K_SPOOL/lock" -mindepth 1)"
}

test_expect_success '5 jobs, --workers 4 --once: all complete, outputs identical' '
	submit_vms vm1 vm2 vm3 vm4 vm5 >ids &&
	test_line_count = 5 ids &&
	h2k-job run --once --workers 4 2>run.err &&
	all_done 5 &&
	for id in $(cat ids); do
		test "$(ledger_count complete $id)" = 1 || return 1
	done &&
	for i in 1 2 3 4 5; do
		cmp "$STANDIN_SRC/vm$i/disk-0.vmdk" "$OUT/vm$i/disk-0.vmdk" &&
		cmp "$STANDIN_SRC/vm$i/disk-1.vmdk" "$OUT/vm$i/disk-1.vmdk" || return 1
	done &&
	test "$(ls "$H2K_SPOOL/done" | wc -l)" = 5
'

test_expect_success 'the record carries bytes, result files with sha256, times' '
	id=$(head -1 ids) &&
	rec=$(h2k-job show $id) &&
	test "$(jqget "$rec" ".progress.bytes_done == .progress.bytes_total and .progress.bytes_total > 0")" = true &&
	test "$(jqget "$rec" ".result.files | length")" = 2 &&
	test "$(jqget "$rec" ".result.files[0].sha256")" = \
	     "$(sha256sum <"$STANDIN_SRC/vm1/disk-0.vmdk" | cut -d" " -f1)" &&
	test "$(jqget "$rec" ".started_at != null and .finished_at != null")" = true &&
	test "$(jqget "$rec" "has(\"pgid\") or has(\"runner_pid\")")" = false &&
	test "$(jqget "$rec" ".lease.moref | startswith(\"lease-\")")" = true
'

test_expect_success 'the pipeline got the job options as flags' '
	rm -f "$STANDIN_STATE/argv" &&
	printf "vm_path: /DC0/vm/vm9\noutput_path: %s\noptions: {parallel_downloads: 3, remove_cdrom: true, ova: true, snapshot: true}\n" "$OUT" >o.yaml &&
	h2k-job submit o.yaml >/dev/null &&
	h2k-job run --once 2>/dev/null &&
	grep -Fx "h2k-lease --snapshot -- /DC0/vm/vm9" "$STANDIN_STATE/argv" &&
	grep -Fx "h2k-fetch --progress json -o $OUT -j 3" "$STANDIN_STATE/argv" &&
	grep -Fx "h2k-ovf --remove-cdrom --ova" "$STANDIN_STATE/argv"
'

test_expect_success 'options.overwrite: h2k-fetch --overwrite (a completed export is replaced)' '
	rm -f "$STANDIN_STATE/argv" &&
	printf "vm_path: /DC0/vm/vm8\noutput_path: %s\noptions: {overwrite: true}\n" "$OUT" >w.yaml &&
	rec=$(h2k-job submit w.yaml) &&
	test "$(jqget "$rec" ".options.overwrite")" = true &&
	h2k-job run --once 2>/dev/null &&
	grep -Fx "h2k-fetch --progress json -o $OUT --overwrite" "$STANDIN_STATE/argv"
'

test_expect_success 'the job log holds the attempt and the stages stderr' '
	id=$(head -1 ids) &&
	log="$H2K_SPOOL/log/$id.log" &&
	test "$(file_mode "$log")" = 600 &&
	grep "h2k-job: attempt 1 by runner" "$log" &&
	grep "h2k-job: completed after" "$log" &&
	! grep -F file:// "$log"
'

test_expect_success 'two runners on one spool, 20 jobs: each runs exactly once' '
	rm -rf "$H2K_SPOOL" "$OUT" "$STANDIN_STATE/ledger" &&
	submit_vms $(for i in $(seq 1 20); do echo vm$i; done) >ids &&
	test_line_count = 20 ids &&
	STANDIN_DELAY=0.01 start_runner r1.err --once --workers 3 && p1=$RUNNER &&
	STANDIN_DELAY=0.01 start_runner r2.err --once --workers 3 && p2=$RUNNER &&
	wait $p1 && wait $p2 &&
	all_done 20 &&
	for id in $(cat ids); do
		test "$(ledger_count complete $id)" = 1 || return 1
	done &&
	test "$(grep -c "^fetch " "$STANDIN_STATE/ledger")" = 25 &&
	test "$(grep -c "^complete " "$STANDIN_STATE/ledger")" = 20 &&
	c1=$(grep -c ": claimed" r1.err) && c2=$(grep -c ": claimed" r2.err) &&
	test $((c1 + c2)) = 20 &&
	for i in $(seq 1 20); do
		cmp "$STANDIN_SRC/vm$i/disk-0.vmdk" "$OUT/vm$i/disk-0.vmdk" || return 1
	done
'

test_expect_success 'a failing stage: job failed with its message; others go on; --once exits 5' '
	rm -rf "$H2K_SPOOL" &&
	submit_vms nosuchvm vm1 >ids &&
	expect_code 5 h2k-job run --once --workers 2 2>run.err &&
	grep -q "stopped; 1 job completed, 1 failed" run.err &&
	bad=$(head -1 ids) && good=$(tail -1 ids) &&
	test "$(field $bad ".status")" = failed &&
	test "$(field $bad ".error")" = "h2k-lease: /DC0/vm/nosuchvm: no such VM" &&
	test "$(field $bad ".result")" = null &&
	test "$(field $good ".status")" = completed &&
	grep "nosuchvm" run.err
'

test_expect_success 'wait: 0 all completed, 5 some failed, 1 all failed' '
	bad=$(head -1 ids) && good=$(tail -1 ids) &&
	expect_code 0 h2k-job wait $good >w.out &&
	test_line_count = 1 w.out &&
	expect_code 5 h2k-job wait $bad $good >w.out &&
	test_line_count = 2 w.out &&
	expect_code 1 h2k-job wait $bad &&
	expect_code 6 h2k-job wait 99.99.99.dead
'

test_expect_success 'wait blocks until a runner finishes the job' '
	rm -rf "$H2K_SPOOL" &&
	id=$(submit_vms vm2) &&
	h2k-job wait --timeout 0.3 $id >/dev/null 2>err; rc=$? &&
	test $rc = 1 && grep "not finished" err &&
	{ (sleep 0.5; h2k-job run --once 2>/dev/null) & } &&
	expect_code 0 h2k-job wait --timeout 20 $id >w.out &&
	test "$(jqget "$(cat w.out)" ".status")" = completed
'

test_expect_success 'corrupt files dropped into new/ are moved to bad/ with a reason' '
	rm -rf "$H2K_SPOOL" &&
	id=$(submit_vms vm3) &&
	echo "{not json" >"$H2K_SPOOL/new/1000000000.000000000.1.dead" &&
	echo "{\"id\":\"other\"}" >"$H2K_SPOOL/new/1000000001.000000000.1.beef" &&
	echo hello >"$H2K_SPOOL/new/notes.txt" &&
	h2k-job run --once 2>run.err &&
	test "$(field $id ".status")" = completed &&
	test -z "$(ls "$H2K_SPOOL/new")" &&
	test "$(ls "$H2K_SPOOL/bad" | grep -vc "\.reason$")" = 3 &&
	test "$(ls "$H2K_SPOOL/bad" | grep -c "\.reason$")" = 3 &&
	grep -l "not valid JSON" "$H2K_SPOOL"/bad/1000000000.000000000.1.dead.*.reason &&
	grep -l "record field" "$H2K_SPOOL"/bad/1000000001.000000000.1.beef.*.reason &&
	grep -l "not a job id" "$H2K_SPOOL"/bad/notes.txt.*.reason &&
	grep -c "moved to" run.err >n && test "$(cat n)" = 3 &&
	test "$(jqget "$(h2k-job status)" ".bad")" = 3
'

test_expect_success 'a symlink or directory in new/ is moved aside too' '
	ln -s /etc/passwd "$H2K_SPOOL/new/1000000002.000000000.1.aaaa" &&
	mkdir "$H2K_SPOOL/new/1000000003.000000000.1.bbbb" &&
	h2k-job run --once 2>run.err &&
	test -z "$(ls "$H2K_SPOOL/new")" &&
	grep -l "symbolic link" "$H2K_SPOOL"/bad/1000000002.*.reason &&
	grep -l "not a regular file" "$H2K_SPOOL"/bad/1000000003.*.reason
'

test_expect_success 'status shows a live runner with its pid and uptime' '
	rm -rf "$H2K_SPOOL" &&
	start_runner run.err --workers 2 && rp=$RUNNER &&
	runner_up &&
	st=$(h2k-job status) &&
	kill -TERM $rp && wait $rp &&
	test "$(jqget "$st" "[.runners[].pid] | tostring")" = "[$rp]" &&
	test "$(jqget "$st" ".runners[0].workers")" = 2 &&
	test "$(jqget "$st" ".runners[0].uptime_s >= 0")" = true &&
	test "$(jqget "$(h2k-job status)" ".runners | tostring")" = "[]"
'

test_expect_success 'SIGTERM: running job stopped after --grace, requeued, resumable' '
	rm -rf "$H2K_SPOOL" "$OUT" "$STANDIN_STATE/ledger" &&
	id=$(submit_vms vm4) &&
	STANDIN_DELAY=$SLOW STANDIN_CHUNK=1024 start_runner run.err --grace 0.5 &&
	rp=$RUNNER &&
	wait_for -s "$OUT/vm4/disk-0.vmdk.part" &&
	pg=$(field $id ".pgid") &&
	kill -TERM $rp && wait $rp && group_gone $pg &&
	test "$(field $id ".status")" = pending &&
	test "$(field $id ".attempts")" = 0 &&
	grep "requeued" run.err &&
	test -s "$OUT/vm4/disk-0.vmdk.part" &&
	h2k-job run --once 2>run2.err &&
	test "$(field $id ".status")" = completed &&
	cmp "$STANDIN_SRC/vm4/disk-0.vmdk" "$OUT/vm4/disk-0.vmdk" &&
	test "$(ledger_count complete $id)" = 1 &&
	grep "^fetch $id 1 [1-9]" "$STANDIN_STATE/ledger"
'

test_expect_success 'SIGTERM with nothing running exits 0 at once' '
	rm -rf "$H2K_SPOOL" &&
	start_runner run.err && rp=$RUNNER &&
	runner_up &&
	kill -TERM $rp && expect_code 0 wait $rp
'

job_cleanup
test_done
