#!/usr/bin/env bash
# attack: 20 clients each holding 3 MiB of an unfinished body spent the
# 64 MiB body budget, and every other submit, however small, got 503 until
# they went away.  A body of up to 64 KiB is taken anyway; big ones still
# get 503 while the budget is spent.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/t/t06-standins.sh"
. "$TESTS_DIR/t/t067-api.sh"

export H2K_SPOOL="$TRASH/spool"

test_expect_success 'budget spent by hoarders: a small submit is served, a big one gets 503' '
	api_start api.err &&
	python3 - "$API_PORT" >out <<-\PY &&
	import json, socket, subprocess, sys, time
	port = int(sys.argv[1])
	ss = []
	for i in range(20):
	    s = socket.create_connection(("127.0.0.1", port))
	    s.sendall(b"POST /jobs/submit HTTP/1.1\r\nHost: x\r\nContent-Length: 4194000\r\n\r\n" +
	        b"{\"vm_path\":\"/a\",\"output_path\":\"/o\",\"name\":\"" + b"A" * (3 << 20))
	    ss.append(s)
	time.sleep(2)
	def post(body):
	    return subprocess.run(["curl", "-s", "-m", "10", "-w", " %{http_code}",
	        "-X", "POST", "--data-binary", "@-",
	        "http://127.0.0.1:%d/jobs/submit" % port], input=body,
	        capture_output=True, text=True).stdout
	print("small", post(json.dumps({"vm_path": "/a", "output_path": "/o", "id": "small"})).split()[-1])
	print("big", post(json.dumps({"vm_path": "/a", "output_path": "/o", "name": "B" * (1 << 20)})).split()[-1])
	for s in ss:
	    s.close()
	PY
	cat out &&
	grep "^small 200$" out &&
	grep "^big 503$" out &&
	curl -sS "$API/jobs/small" >j &&
	jq_ok j ".definition.id == \"small\"" &&
	api_stop
'

test_done
