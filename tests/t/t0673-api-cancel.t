#!/usr/bin/env bash
# h2k-job serve with a runner (stand-in pipeline): a running job's live
# progress through the API, then POST /jobs/cancel stops it (its process
# group gone, its lease aborted, status cancelled) and the next job runs.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/t/t06-standins.sh"
. "$TESTS_DIR/t/t067-api.sh"

export H2K_SPOOL="$TRASH/spool" OUT="$TRASH/out"
standins_install "$TRASH/bin"
standins_vm vm1 400000
standins_vm vm2 30000

api_start api.err || exit 1
STANDIN_DELAY=$SLOW STANDIN_CHUNK=4096 start_runner run.err --workers 1

# poll_api ID JQ: poll GET /jobs/ID (bounded) until JQ is true.
poll_api() {
	local i=0
	until curl -sS "$API/jobs/$1" >polled 2>/dev/null && jq -e "$2" polled >/dev/null; do
		i=$((i + 1))
		[ $i -le $((WAIT_DEFAULT * 10)) ] || { echo "timed out: $2" >&2; cat polled >&2; return 1; }
		sleep 0.1
	done
}

test_expect_success 'submit two jobs; the first runs with live progress' '
	runner_ready &&
	hcurl POST /jobs/submit -d "{\"jobs\":[{\"name\":\"vm1\",\"vm_path\":\"/DC0/vm/vm1\",\"output_path\":\"$OUT\",\"id\":\"job-one\"},{\"name\":\"vm2\",\"vm_path\":\"/DC0/vm/vm2\",\"output_path\":\"$OUT\",\"id\":\"job-two\"}]}" >s &&
	jq_ok s ".accepted == 2" &&
	poll_api job-one ".status == \"running\" and .progress.bytes_downloaded > 0 and .progress.total_bytes == 400000" &&
	jq_ok polled ".progress.phase == \"download\" and .progress.percent_complete > 0 and .progress.percent_complete < 100 and (.started_at | test(\"Z$\"))" &&
	first=$(jq .progress.bytes_downloaded polled) &&
	poll_api job-one ".progress.bytes_downloaded > $first" &&
	curl -sS "$API/jobs/progress/job-one" >p &&
	jq_ok p ".phase == \"download\" and .bytes_downloaded > 0" &&
	curl -sS "$API/jobs/logs/job-one" >log && grep "attempt 1 by runner" log
'

test_expect_success 'POST /jobs/cancel stops the running job; the next one completes' '
	one=$(api_sid job-one) && test -n "$one" &&
	pg=$(field $one ".pgid") && lease=$(field $one ".lease.moref") &&
	pgrep -g $pg >/dev/null &&
	hcurl POST /jobs/cancel -d "{\"job_ids\":[\"job-one\"]}" >c &&
	test "$(cat code)" = 200 &&
	jq_ok c ".cancelled == [\"job-one\"] and .failed == [] and .errors == {}" &&
	group_gone $pg &&
	test "$(cat "$STANDIN_STATE/leases/$lease")" = aborted &&
	test "$(field $one .status)" = cancelled &&
	test "$(ledger_count complete $one)" = 0 &&
	poll_api job-one ".status == \"cancelled\" and .result == null" &&
	WAIT_S=30 poll_api job-two ".status == \"completed\" and .result.success and .result.total_size == 30000" &&
	hcurl POST /jobs/cancel -d "{\"job_ids\":[\"job-two\"]}" >c2 &&
	jq_ok c2 ".cancelled == [] and .failed == [\"job-two\"] and (.errors[\"job-two\"] | test(\"already completed\"))"
'

test_done
