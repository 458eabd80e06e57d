#!/usr/bin/env bash
# attack: h2k-job serve killed -9 in the middle of moving a batch into new/
# (a test hook kills it after the 3rd of 10 renames, deterministically).
# A batch is all or nothing: its journal is the commit point, and the next
# start of the server (or a runner's recovery) queues the rest; a client
# that got no answer and resubmits the same ids gets no doubles.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/t/t06-standins.sh"
. "$TESTS_DIR/t/t067-api.sh"

export H2K_SPOOL="$TRASH/spool"

batch() {
	python3 -c "
import json, sys
n, tag = int(sys.argv[1]), sys.argv[2]
print(json.dumps({'jobs': [{'id': '%s-%d' % (tag, i), 'vm_path': '/dc/vm/%s-%d' % (tag, i), 'output_path': '/o'} for i in range(n)]}))" "$1" "$2"
}

test_expect_success 'killed after 3 of 10 renames: the client gets no answer' '
	batch 10 b >body &&
	H2K_SPOOL_TEST_DIE_AFTER_MOVES=3 api_start die.err &&
	expect_code 52 curl -sS -X POST --data-binary @body "$API/jobs/submit" >resp 2>curl.err ;
	{ kill -9 $API_PID; wait $API_PID; } 2>/dev/null
	test "$(ls "$H2K_SPOOL/new" | wc -l)" = 3 &&
	ls "$H2K_SPOOL/tmp" | grep "^batch\..*\.jnl$"
'

test_expect_success 'the next start of the server queues the whole batch; a resubmit doubles nothing' '
	api_start again.err &&
	grep "queued the rest of an interrupted batch (7 jobs)" again.err &&
	test "$(ls "$H2K_SPOOL/new" | wc -l)" = 10 &&
	! ls "$H2K_SPOOL/tmp" | grep "^batch\." &&
	h2k-job ls | jq -r .api_id | sort >ids &&
	printf "b-%d\n" 0 1 2 3 4 5 6 7 8 9 | sort >want &&
	test_cmp want ids &&
	# resubmitting the same ids: nothing doubled
	hcurl POST /jobs/submit --data-binary @body >r2 &&
	test "$(cat code)" = 200 &&
	jq_ok r2 ".accepted == 0 and .rejected == 10" &&
	test "$(ls "$H2K_SPOOL/new" | wc -l)" = 10 &&
	api_stop
'

test_expect_success 'h2k-job submit killed mid-batch: a runner recovery queues the rest' '
	printf "jobs:\n" >f.yaml &&
	for i in 0 1 2 3 4; do printf "  - {name: s$i, vm_path: /dc/vm/s$i, output_path: /o}\n" >>f.yaml; done &&
	expect_code 137 env H2K_SPOOL_TEST_DIE_AFTER_MOVES=2 h2k-job submit f.yaml &&
	test "$(ls "$H2K_SPOOL/new" | wc -l)" = 12 &&
	{ timeout 60 h2k-job run --once --workers 1 >/dev/null 2>run.err || true; } &&
	grep "queued the rest of an interrupted batch (3 jobs)" run.err
'

test_done
