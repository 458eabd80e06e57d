#!/usr/bin/env bash
# attack: a request with both Content-Length and Transfer-Encoding was
# answered by its chunked body and the connection kept open, so a request
# hidden after it (what a proxy in front taking Content-Length would see as
# body) was answered too: request smuggling.  Now: 400 and the connection
# closed (RFC 9112 6.1).
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/t/t06-standins.sh"
. "$TESTS_DIR/t/t067-api.sh"

export H2K_SPOOL="$TRASH/spool"

test_expect_success 'CL + TE: 400, closed, the smuggled request not answered' '
	api_start api.err &&
	python3 - "$API_PORT" >out <<-\PY &&
	import socket, sys
	s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
	s.settimeout(10)
	s.sendall(b"POST /jobs/query HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
	    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
	    b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n")
	out = b""
	while True:
	    d = s.recv(65536)
	    if not d:
	        break
	    out += d
	sys.stdout.write(out.decode())
	PY
	head -1 out | grep "^HTTP/1.1 400" &&
	grep -i "^Connection: close" out &&
	grep "both Content-Length and Transfer-Encoding" out &&
	test "$(grep -c "^HTTP/1.1" out)" = 1 &&
	! grep uptime out &&
	api_stop
'

test_expect_success 'chunked alone still works' '
	api_start api2.err &&
	printf "{\"all\":true}" | curl -sS -H "Transfer-Encoding: chunked" -X POST --data-binary @- "$API/jobs/query" >q &&
	jq_ok q ".total == 0" &&
	api_stop
'

test_done
