#!/usr/bin/env bash
# A strict Go client of the REST API (tests/apiclient: time.Time for every
# time, time.Duration and int64 for durations and sizes) accepts every
# answer of h2k-job serve while a runner (stand-in pipeline) exports the
# job it submitted, until the job's result.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/t/t06-standins.sh"
. "$TESTS_DIR/t/t067-api.sh"

export H2K_SPOOL="$TRASH/spool" OUT="$TRASH/out"
standins_install "$TRASH/bin"
standins_vm vm1 300000

# The Go toolchain scripts/build-sim uses, with the user's build cache
# (the tests' HOME is a fresh one: a cold cache compiles net/http anew).
GO=$(command -v go || echo /usr/local/go/bin/go)
realhome=$(getent passwd "$(id -u)" | cut -d: -f6)
if [ ! -x "$GO" ]; then
	test_skip 'the strict Go client accepts every answer' 'no Go toolchain'
	test_done
fi

test_expect_success 'the Go client builds (stdlib only)' '
	gocache=${H2K_GOCACHE:-$(HOME=$realhome "$GO" env GOCACHE)} &&
	(cd "$SRC_DIR/tests/apiclient" &&
	 GOCACHE=$gocache GOTOOLCHAIN=local GOFLAGS=-mod=mod timeout 300 \
		"$GO" build -o "$TRASH/apiclient" .) &&
	test -x apiclient
'

api_start api.err || exit 1
start_runner run.err --workers 1

test_expect_success 'the strict Go client accepts every answer' '
	runner_ready &&
	./apiclient "$API" /DC0/vm/vm1 "$OUT" >go.out 2>go.err &&
	grep "^ok [^ ]* $OUT/vm1/vm1.ovf 300000 bytes in " go.out
'

test_expect_success 'and fails on a shape it cannot decode (a number for a time)' '
	python3 - >fake.py <<-\PY &&
	print("""
	import http.server, json
	class H(http.server.BaseHTTPRequestHandler):
	    def do_GET(self):
	        b = json.dumps({"status": "healthy", "timestamp": 1764467666}).encode()
	        self.send_response(200); self.send_header("Content-Length", str(len(b)))
	        self.end_headers(); self.wfile.write(b)
	    def log_message(self, *a): pass
	s = http.server.HTTPServer(("127.0.0.1", 0), H)
	print(s.server_port, flush=True)
	s.handle_request()
	""")
	PY
	{ timeout 20 python3 fake.py >fport & } &&
	i=0 && until [ -s fport ]; do i=$((i + 1)); test $i -lt 100 || return 1; sleep 0.1; done &&
	expect_code 1 ./apiclient "http://127.0.0.1:$(cat fport)" /x /y 2>bad.err &&
	grep "GET /health: decoding \*main.Health" bad.err
'

test_done
