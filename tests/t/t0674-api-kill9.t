#!/usr/bin/env bash
# h2k-job serve killed -9 in the middle of submits, again and again:
# every record in new/ is whole and valid, no client id is queued twice,
# every job a client was told about is there, nothing is moved aside;
# and systemd socket activation (LISTEN_FDS/LISTEN_PID) with the same
# loopback rule.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/t/t06-standins.sh"
. "$TESTS_DIR/t/t067-api.sh"

export H2K_SPOOL="$TRASH/spool"

# batch N TAG: a body of N jobs with client ids TAG-0..N-1.
batch() {
	python3 -c "
import json, sys
n, tag = int(sys.argv[1]), sys.argv[2]
print(json.dumps({'jobs': [{'id': '%s-%d' % (tag, i), 'vm_path': '/dc/vm/%s-%d' % (tag, i), 'output_path': '/o'} for i in range(n)]}))" "$1" "$2"
}

# in_flight N: poll (bounded) until the spool holds N more files in tmp/
# and new/ than $base: the server is in the middle of an enqueue.
in_flight() {
	local i=0
	while [ $(( $(ls "$H2K_SPOOL/tmp" "$H2K_SPOOL/new" 2>/dev/null | grep -c .) - base )) -lt "$1" ]; do
		i=$((i + 1))
		[ $i -le 2000 ] || return 1
		sleep 0.005
	done
}

test_expect_success 'kill -9 during submits, 6 rounds: nothing half-queued, nothing doubled' '
	touch told &&
	for r in 1 2 3 4 5 6; do
		batch 120 r$r >body$r &&
		api_start api$r.err &&
		base=$(ls "$H2K_SPOOL/tmp" "$H2K_SPOOL/new" 2>/dev/null | grep -c .)
		{ curl -sS -X POST --data-binary @body$r "$API/jobs/submit" >resp$r 2>/dev/null & } &&
		cpid=$! &&
		in_flight $((r * 15)) &&
		kill -9 $API_PID &&
		{ wait $cpid; wait $API_PID; } 2>/dev/null
		# a round the server finished first answered with its ids
		if [ -s resp$r ]; then jq -r ".job_ids[]" resp$r >>told; fi
	done &&
	python3 -c "
import json, os, sys
d = sys.argv[1]
for f in os.listdir(d):
    j = json.load(open(os.path.join(d, f)))
    assert j[\"status\"] == \"pending\" and isinstance(j[\"api_id\"], str), f
" "$H2K_SPOOL/new" &&
	test "$(ls "$H2K_SPOOL/new" | wc -l)" = "$(h2k-job ls | wc -l)" &&
	h2k-job ls | jq -r .api_id | sort >ids &&
	sort -u ids >uids && test_cmp uids ids &&
	sort told >told.s && comm -23 told.s ids >missing && test ! -s missing &&
	test "$(h2k-job status | jq .bad)" = 0 &&
	test -z "$(ls "$H2K_SPOOL/bad")" &&
	test -n "$(ls "$H2K_SPOOL/tmp")" &&
	say "$(wc -l <ids) jobs queued over 6 killed servers, $(wc -l <told.s) answered, $(ls "$H2K_SPOOL/tmp" | wc -l) tmp/ files left for recovery"
'

test_expect_success 'a restarted server sees them all and takes new submits' '
	api_start again.err &&
	curl -sS -X POST -d "{\"all\":true}" "$API/jobs/query" >q &&
	test "$(jq .total q)" = "$(wc -l <ids)" &&
	hcurl POST /jobs/submit -d "{\"vm_path\":\"/a\",\"output_path\":\"/o\",\"id\":\"after\"}" >a &&
	jq_ok a ".accepted == 1" &&
	api_stop
'

# activate ADDR CMD...: bind ADDR, then run CMD with the socket as fd 3
# and LISTEN_FDS=1, LISTEN_PID=its pid, as systemd does.
activate() {
	exec python3 - "$@" <<-\PY
	import os, socket, sys
	host, port = sys.argv[1].rsplit(":", 1)
	s = socket.socket()
	s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
	s.bind((host, int(port)))
	s.listen(16)
	print(s.getsockname()[1], flush=True)
	if s.fileno() != 3:
	    os.dup2(s.fileno(), 3)
	os.set_inheritable(3, True)
	os.environ["LISTEN_FDS"] = "1"
	os.environ["LISTEN_PID"] = str(os.getpid())
	os.execvp(sys.argv[2], sys.argv[2:])
	PY
}

test_expect_success 'socket activation: serves on the passed socket' '
	{ activate 127.0.0.1:0 h2k-job serve >port 2>act.err & } &&
	pid=$! && test_when_finished "kill $pid" &&
	wait_grep "serving .* on 127.0.0.1:" act.err &&
	port=$(cat port) &&
	curl -sS http://127.0.0.1:$port/jobs/after >j &&
	jq_ok j ".definition.id == \"after\"" &&
	grep "on 127.0.0.1:$port" act.err
'

test_expect_success 'socket activation on 0.0.0.0 without a key: exit 2' '
	expect_code 2 timeout 10 bash -c "$(declare -f activate); activate 0.0.0.0:0 h2k-job serve" >/dev/null 2>act2.err &&
	grep "the socket from systemd is not a loopback address: an API key is required" act2.err
'

if command -v systemd-socket-activate >/dev/null; then
	test_expect_success 'systemd-socket-activate starts it on the first connection' '
		port=$(python3 -c "import socket; s=socket.socket(); s.bind((\"127.0.0.1\",0)); print(s.getsockname()[1])") &&
		{ systemd-socket-activate -l 127.0.0.1:$port h2k-job serve 2>ssa.err & } &&
		pid=$! && test_when_finished "kill $pid" &&
		i=0 && until curl -sS -m 10 http://127.0.0.1:$port/health >h 2>/dev/null; do
			i=$((i + 1)); test $i -lt 100 || return 1; sleep 0.1
		done &&
		jq_ok h ".status == \"healthy\"" &&
		# it execs the server in its place on the first connection
		tr "\0" " " </proc/$pid/cmdline | grep "^h2k-job serve"
	'
else
	test_skip 'systemd-socket-activate starts it on the first connection' 'systemd-socket-activate not installed'
fi

test_done
