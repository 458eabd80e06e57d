#!/usr/bin/env bash
# attack: 128 connections from 127.0.0.1 (the per-address cap) each
# trickling one header byte every 10 s, under the 30 s idle timeout, held
# their slots for good and locked every other local client out.  A request
# has H2K_API_DEADLINE (30 s) for its line and headers: after it, the
# tricklers are dropped and other clients are served again.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/t/t06-standins.sh"
. "$TESTS_DIR/t/t067-api.sh"

export H2K_SPOOL="$TRASH/spool"

test_expect_success '128 tricklers from one address are dropped after the deadline' '
	api_start api.err &&
	python3 - "$API_PORT" >out <<-\PY &&
	import socket, subprocess, sys, time
	port = int(sys.argv[1])
	def probe():
	    return subprocess.run(["curl", "-s", "-m", "5", "-o", "/dev/null",
	        "-w", "%{http_code}", "http://127.0.0.1:%d/health" % port],
	        capture_output=True, text=True).stdout
	ss = []
	for i in range(128):
	    s = socket.create_connection(("127.0.0.1", port))
	    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
	    ss.append(s)
	time.sleep(1)
	print("full", probe())
	code = ""
	for t in range(6):
	    time.sleep(10)
	    for s in ss:
	        try:
	            s.sendall(b"X")
	        except OSError:
	            pass
	    code = probe()
	    if code == "200":
	        break
	print("after", code, 10 * (t + 1))
	PY
	cat out &&
	grep "^full 000" out &&
	grep "^after 200 [1-6]0$" out &&
	kill -0 $API_PID &&
	api_stop
'

test_done
