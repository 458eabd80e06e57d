#!/usr/bin/env bash
# h2k-job serve without a runner: the shapes of /health, /status, submit
# (JSON, YAML, one job, {"jobs":[...]}, a list), query, /jobs/ID, progress,
# logs and cancel of a pending job; bad bodies (malformed JSON and YAML, a
# 5 MB body, 10,000 jobs, wrong types, control characters, credentials)
# get a JSON error and queue nothing; a body is judged as `h2k-job submit`
# judges the same file.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/t/t06-standins.sh"
. "$TESTS_DIR/t/t067-api.sh"

export H2K_SPOOL="$TRASH/spool" OUT="$TRASH/out"
api_start api.err || exit 1

queued() { ls "$H2K_SPOOL/new" | wc -l; }
rfc3339='test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$")'

test_expect_success '/health and /status: the product'"'"'s shapes' '
	hcurl GET /health >h && test "$(cat code)" = 200 &&
	jq_ok h ".status == \"healthy\" and (.timestamp | $rfc3339)" &&
	hcurl GET /status >s && test "$(cat code)" = 200 &&
	jq_ok s "(.uptime | test(\"^[0-9.]+(ns|µs|ms|s)$\")) and (.timestamp | $rfc3339)" &&
	jq_ok s ".total_jobs == 0 and .running_jobs == 0 and .completed_jobs == 0 and .failed_jobs == 0 and .cancelled_jobs == 0"
'

test_expect_success 'submit: one JSON job, one YAML job, a batch, a list' '
	hcurl POST /jobs/submit -H "Content-Type: application/json" \
		-d "{\"name\":\"j1\",\"vm_path\":\"/dc/vm/a\",\"output_path\":\"$OUT\"}" >r1 &&
	test "$(cat code)" = 200 &&
	jq_ok r1 ".accepted == 1 and .rejected == 0 and .errors == [] and (.job_ids | length) == 1 and (.timestamp | $rfc3339)" &&
	printf "name: j2\nvm_path: /dc/vm/b\noutput_path: %s\noptions:\n  remove_cdrom: yes\n  parallel_downloads: 3\n" "$OUT" >j2.yaml &&
	hcurl POST /jobs/submit -H "Content-Type: application/yaml" --data-binary @j2.yaml >r2 &&
	jq_ok r2 ".accepted == 1" &&
	hcurl POST /jobs/submit -d "{\"jobs\":[{\"vm_path\":\"/dc/vm/c\",\"output_dir\":\"$OUT\"},{\"vm_path\":\"/dc/vm/d\",\"output_path\":\"$OUT\",\"id\":\"client-id-1\"}]}" >r3 &&
	jq_ok r3 ".accepted == 2 and .job_ids[1] == \"client-id-1\"" &&
	hcurl POST /jobs/submit -d "[{\"vm_path\":\"/dc/vm/e\",\"output_path\":\"$OUT\"},{\"vm_path\":\"/dc/vm/f\",\"output_path\":\"$OUT\"}]" >r4 &&
	jq_ok r4 ".accepted == 2" &&
	test "$(queued)" = 6 &&
	h2k-job show "$(jq -r ".job_ids[0]" r2)" >rec2 &&
	jq_ok rec2 ".name == \"j2\" and .options.remove_cdrom == true and .options.parallel_downloads == 3 and .status == \"pending\"" &&
	h2k-job show "$(api_sid client-id-1)" >rec3 &&
	jq_ok rec3 ".vm_path == \"/dc/vm/d\" and .api_id == \"client-id-1\"" &&
	h2k-job show "$(jq -r ".job_ids[0]" r3)" >rec4 && jq_ok rec4 ".output_path == \"$OUT\" and .name == \"c\""
'

test_expect_success 'query: all, job_ids (unknown left out), status, limit, GET' '
	hcurl POST /jobs/query -d "{\"all\":true}" >q && test "$(cat code)" = 200 &&
	jq_ok q ".total == 6 and (.jobs | length) == 6 and (.timestamp | $rfc3339)" &&
	jq_ok q "[.jobs[].status] | all(. == \"pending\")" &&
	jq_ok q ".jobs | all(.definition.id and .definition.name and .definition.vm_path and .definition.output_dir and (.definition.created_at | $rfc3339))" &&
	jq_ok q ".jobs | all(.progress | (.phase | type) == \"string\" and (.percent_complete | type) == \"number\" and (.bytes_downloaded | type) == \"number\" and (.estimated_remaining | type) == \"number\")" &&
	jq_ok q ".jobs | all(.updated_at | $rfc3339)" &&
	hcurl POST /jobs/query -d "{\"job_ids\":[\"client-id-1\",\"no-such-job\"]}" >q2 &&
	jq_ok q2 ".total == 1 and .jobs[0].definition.id == \"client-id-1\"" &&
	hcurl POST /jobs/query -d "{\"status\":[\"running\",\"completed\"]}" >q3 &&
	jq_ok q3 ".total == 0 and .jobs == []" &&
	hcurl POST /jobs/query -d "{\"all\":true,\"limit\":2}" >q4 &&
	jq_ok q4 ".total == 2" &&
	hcurl GET "/jobs/query?all=true" >q5 && jq_ok q5 ".total == 6" &&
	hcurl GET "/jobs/query?job_ids=client-id-1" >q6 && jq_ok q6 ".total == 1"
'

test_expect_success '/jobs/ID, /jobs/progress/ID, /jobs/logs/ID; unknown ids are 404' '
	hcurl GET /jobs/client-id-1 >j && test "$(cat code)" = 200 &&
	jq_ok j ".definition.id == \"client-id-1\" and .status == \"pending\" and .result == null" &&
	hcurl GET /jobs/progress/client-id-1 >p && jq_ok p ".phase == \"queued\" and .percent_complete == 0" &&
	hcurl GET /jobs/logs/client-id-1 >l && test "$(cat code)" = 200 && test ! -s l &&
	hcurl GET /jobs/nope >n && test "$(cat code)" = 404 && jq_ok n ".error == \"no job nope\"" &&
	hcurl GET /jobs/progress/..%2F..%2Fetc >n2 && test "$(cat code)" = 404 &&
	hcurl GET /nothing-here >n3 && test "$(cat code)" = 404 && jq_ok n3 ".error | test(\"no such endpoint\")" &&
	hcurl PUT /jobs/submit >n4 && test "$(cat code)" = 405
'

# bad_body NAME CODE ERROR-RE [curl data args...]: the answer is CODE with
# a JSON error matching ERROR-RE, and nothing was queued.
bad_body() {
	local name=$1 want=$2 re=$3 before
	shift 3
	before=$(queued)
	hcurl POST /jobs/submit "$@" >"$name" &&
	test "$(cat code)" = "$want" &&
	jq -r .error "$name" | grep -E -- "$re" &&
	test "$(queued)" = "$before"
}

test_expect_success 'malformed JSON and YAML: 400, nothing queued' '
	bad_body m1 400 "^request:1: JSON syntax error" -d "{\"vm_path\": \"/a\", " &&
	bad_body m2 400 "^request:2: YAML syntax error" --data-binary "$(printf "vm_path: /a\n  - : : [\n")" &&
	bad_body m3 400 "expected a job" -d "42" &&
	bad_body m4 400 "no job in the list" -d "[]" &&
	bad_body m5 400 "JSON syntax error: text after the end" -d "{\"vm_path\":\"/a\",\"output_path\":\"/b\"} x" &&
	bad_body m6 400 "aliases are not allowed" --data-binary "$(printf "a: &x /a\nvm_path: *x\noutput_path: /b\n")" &&
	bad_body m7 400 "empty job file" -d ""
'

test_expect_success 'a 5 MB body: 413 (declared or chunked), nothing queued' '
	head -c 5000000 /dev/zero | tr "\0" " " >big &&
	bad_body b1 413 "larger than 4194304 bytes" --data-binary @big &&
	bad_body b2 413 "larger than 4194304 bytes" -H "Transfer-Encoding: chunked" --data-binary @big &&
	hcurl GET /health >h && jq_ok h ".status == \"healthy\""
'

test_expect_success '10,000 jobs in one request: 400 naming the cap, nothing queued, quickly' '
	python3 -c "
import json
print(json.dumps({\"jobs\": [{\"vm_path\": \"/dc/vm/v%d\" % i, \"output_path\": \"/o\"} for i in range(10000)]}))" >many.json &&
	t0=$(date +%s) &&
	bad_body many 400 "10000 jobs, more than 1000 in one request" --data-binary @many.json &&
	test $(( $(date +%s) - t0 )) -lt 20
'

# rejected NAME ERROR-RE BODY: 200, the one job rejected with ERROR-RE.
rejected() {
	local before=$(queued)
	hcurl POST /jobs/submit -d "$3" >"$1" &&
	test "$(cat code)" = 200 &&
	jq_ok "$1" ".accepted == 0 and .rejected == 1 and .job_ids == []" &&
	jq -r ".errors[0]" "$1" | grep -E -- "$2" &&
	test "$(queued)" = "$before"
}

test_expect_success 'wrong types: rejected in errors (200: the Go client reads it), nothing queued' '
	rejected w1 "key .vm_path.: expected a string, got 3" "{\"vm_path\":3,\"output_path\":\"/o\"}" &&
	rejected w2 "parallel_downloads.: expected an integer, got the string" "{\"vm_path\":\"/a\",\"output_path\":\"/o\",\"options\":{\"parallel_downloads\":\"4\"}}" &&
	rejected w3 "remove_cdrom.: expected true or false" "{\"vm_path\":\"/a\",\"output_path\":\"/o\",\"options\":{\"remove_cdrom\":1}}" &&
	rejected w4 "options.: expected a mapping, got a list" "{\"vm_path\":\"/a\",\"output_path\":\"/o\",\"options\":[]}" &&
	rejected w5 "missing" "{\"vm_path\":\"/a\"}" &&
	rejected w6 "output_path .o. is not absolute" "{\"vm_path\":\"/a\",\"output_path\":\"o\"}" &&
	rejected w7 "parallel_downloads.: 1000 is out of range" "{\"vm_path\":\"/a\",\"output_path\":\"/o\",\"options\":{\"parallel_downloads\":1000}}" &&
	rejected w8 "output_path and output_dir differ" "{\"vm_path\":\"/a\",\"output_path\":\"/o\",\"output_dir\":\"/p\"}" &&
	rejected w9 "an id is 1 to 95" "{\"vm_path\":\"/a\",\"output_path\":\"/o\",\"id\":\"../x\"}" &&
	rejected w10 "id .client-id-1. is already taken" "{\"vm_path\":\"/a\",\"output_path\":\"/o\",\"id\":\"client-id-1\"}" &&
	rejected w11 "key .format." "{\"vm_path\":\"/a\",\"output_path\":\"/o\",\"format\":\"no-such-format\"}" &&
	rejected w12 "expected a job \\(a mapping\\), got a scalar" "[1]"
'

test_expect_success 'control characters: refused, never echoed raw' '
	rejected c1 "key .name.: control character in value" "{\"name\":\"a\\u001b]0;pwned\\u0007b\",\"vm_path\":\"/a\",\"output_path\":\"/o\"}" &&
	! grep -q "$(printf "\033")" c1 &&
	bad_body c2 400 "JSON syntax error" -d "$(printf "{\"vm_path\":\"/a\033b\",\"output_path\":\"/o\"}")" &&
	! grep -q "$(printf "\033")" c2
'

test_expect_success 'credentials in a job: refused, the value never echoed nor stored' '
	rejected k1 "key .password.: credentials are not allowed" "{\"vm_path\":\"/a\",\"output_path\":\"/o\",\"password\":\"Sekr1t-K1-xyzzy\"}" &&
	rejected k2 "vcenter.server: the runner has no session" "{\"vm_path\":\"/a\",\"output_path\":\"/o\",\"vcenter\":{\"server\":\"vc.example.com\",\"username\":\"u\",\"password\":\"Sekr1t-K2-xyzzy\"}}" &&
	rejected k3 "vcenter.token.: unknown key" "{\"vm_path\":\"/a\",\"output_path\":\"/o\",\"vcenter\":{\"server\":\"vc\",\"token\":\"Sekr1t-K3-xyzzy\"}}" &&
	! grep -r "Sekr1t-K" k1 k2 k3 "$H2K_SPOOL" api.err
'

test_expect_success 'a batch with good and bad jobs: the good ones queued, the bad named' '
	before=$(queued) &&
	hcurl POST /jobs/submit -d "{\"jobs\":[{\"vm_path\":\"/dc/vm/g\",\"output_path\":\"/o\"},{\"vm_path\":\"/dc/vm/h\"}]}" >mix &&
	test "$(cat code)" = 200 &&
	jq_ok mix ".accepted == 1 and .rejected == 1 and (.job_ids | length) == 1" &&
	jq -r ".errors[0]" mix | grep "jobs\\[1\\].output_path.: missing" &&
	test "$(queued)" = $((before + 1))
'

# The same bytes as a file to `h2k-job submit` and as a body: the same
# verdict, the same message but for the name (FILE vs request).
test_expect_success 'a body is judged as h2k-job submit judges the same file' '
	i=0 &&
	for b in "{\"vm_path\":\"/a\",\"output_path\":\"/o\",\"options\":{\"snapshot\":true,\"shutdown\":true}}" \
		"{\"vm_path\":\"/a\",\"output_path\":\"/o\",\"extra\":1}" \
		"$(printf "vm_path: /a\noutput_path: /o\nvm_path: /b\n")" \
		"$(printf "vm_path: /a\noutput_path: /o\noptions:\n  ova: maybe\n")"; do
		i=$((i + 1)) &&
		printf "%s" "$b" >f$i &&
		expect_code 2 h2k-job submit f$i 2>e$i &&
		sed -n "1s/^h2k-job: f$i//p" e$i >want$i &&
		hcurl POST /jobs/submit --data-binary @f$i >a$i &&
		jq -r ".errors[0]" a$i | sed "s/^request//" >got$i &&
		test_cmp want$i got$i || return 1
	done
'

test_expect_success '/jobs/ID right after its record changed: the new record, not the cached one' '
	id=$(api_sid client-id-1) && test -n "$id" &&
	hcurl POST /jobs/query -d "{\"all\":true}" >q &&
	jq_ok q "[.jobs[] | select(.definition.id == \"client-id-1\")][0].status == \"pending\"" &&
	jq -c ".status = \"failed\" | .error = \"made up here\"" "$H2K_SPOOL/new/$id" >"$TRASH/rec" &&
	mv "$TRASH/rec" "$H2K_SPOOL/done/$id" && rm "$H2K_SPOOL/new/$id" &&
	hcurl GET /jobs/client-id-1 >j && test "$(cat code)" = 200 &&
	jq_ok j ".status == \"failed\"" &&
	hcurl GET /jobs/progress/$id >p && test "$(cat code)" = 200 &&
	mv "$H2K_SPOOL/done/$id" "$H2K_SPOOL/new/$id" &&
	hcurl GET /jobs/$id >j2 && jq_ok j2 ".status == \"failed\"" &&
	jq -c ".status = \"pending\" | del(.error)" "$H2K_SPOOL/new/$id" >"$TRASH/rec" &&
	mv "$TRASH/rec" "$H2K_SPOOL/new/$id" &&
	hcurl GET /jobs/$id >j3 && jq_ok j3 ".status == \"pending\""
'

test_expect_success 'cancel of a pending job; an unknown id fails with its reason' '
	hcurl POST /jobs/cancel -d "{\"job_ids\":[\"client-id-1\",\"no-such\"]}" >c &&
	test "$(cat code)" = 200 &&
	jq_ok c ".cancelled == [\"client-id-1\"] and .failed == [\"no-such\"] and .errors[\"no-such\"] == \"no job no-such\" and (.timestamp | $rfc3339)" &&
	test "$(h2k-job show "$(api_sid client-id-1)" | jq -r .status)" = cancelled &&
	hcurl GET /jobs/client-id-1 >j && jq_ok j ".status == \"cancelled\" and (.completed_at | $rfc3339)" &&
	hcurl POST /jobs/cancel -d "{\"job_ids\":\"client-id-1\"}" >c2 && test "$(cat code)" = 400 &&
	hcurl GET /status >s && jq_ok s ".cancelled_jobs == 1 and .total_jobs == 7 and .pending_jobs == 6"
'

test_expect_success 'bad queries: 400 with a JSON error' '
	hcurl POST /jobs/query -d "{\"all\":\"yes\"}" >b1 && test "$(cat code)" = 400 &&
	hcurl POST /jobs/query -d "{\"status\":[\"done\"]}" >b2 && test "$(cat code)" = 400 &&
	hcurl POST /jobs/query -d "{\"limit\":-1}" >b3 && test "$(cat code)" = 400 &&
	hcurl POST /jobs/query -d "nope" >b4 && test "$(cat code)" = 400 &&
	hcurl GET "/jobs/query?status=bogus" >b5 && test "$(cat code)" = 400 &&
	jq_ok b2 ".error | test(\"not one of pending\")"
'

test_expect_success 'a 100 KB header: refused (431), the server goes on' '
	code=$(curl -s -o /dev/null -w "%{http_code}" -H "X-Big: $(head -c 100000 /dev/zero | tr "\0" a)" "$API/health") &&
	test "$code" = 431 &&
	hcurl GET /health >h && jq_ok h ".status == \"healthy\""
'

test_expect_success '50 silent and 50 trickling clients do not stall another one' '
	python3 - "$API_PORT" <<-\PY
	import socket, sys, time, urllib.request
	port = int(sys.argv[1])
	idle = []
	for i in range(100):
	    s = socket.create_connection(("127.0.0.1", port))
	    if i % 2:
	        s.sendall(b"POST /jobs/submit HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
	    else:
	        s.sendall(b"GET /stat")
	    idle.append(s)
	t0 = time.monotonic()
	for _ in range(5):
	    r = urllib.request.urlopen("http://127.0.0.1:%d/health" % port, timeout=10)
	    assert r.status == 200
	took = time.monotonic() - t0
	assert took < 5, took
	for s in idle:
	    s.close()
	PY
'

test_expect_success 'the server lived through all of it' '
	kill -0 $API_PID &&
	hcurl GET /health >h && jq_ok h ".status == \"healthy\""
'

test_done
