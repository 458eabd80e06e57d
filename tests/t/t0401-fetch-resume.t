#!/usr/bin/env bash
# h2k-fetch against a misbehaving server: cuts, ignored ranges, bad
# Content-Range, changing ETags, stalls, 503 + Retry-After, giving up.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/servers/nfcd-lib.sh"

nfcd_start
mkdisk d1 3000000
mkdisk d2 2500000
mkdisk v 2000000
mkdisk v.v2 2000000
F="h2k-fetch --ca-file $NFCD_CERT --retry-delay 0.05 -q"

# fetch VM SPEC FILE [flags]: one device, prints nothing, keeps the exit code
fetch() {
	local vm=$1 spec=$2 file=$3
	shift 3
	lease_line "$vm" "$NFCD_URL/$spec/$file" | $F -o out "$@" >"$vm.json" 2>"$vm.err"
}

# the sha256 h2k-fetch printed equals that of the file and of the source
sha_ok() { # VM SRC
	local want
	want=$(sha256sum <"$2" | cut -d" " -f1) &&
	grep -q "\"sha256\":\"$want\"" "$1.json" &&
	test "$(sha256sum <out/$1/disk-0.vmdk | cut -d" " -f1)" = "$want"
}

test_expect_success 'cut at a random offset, server honours ranges: resumed, identical' '
	fetch cut1 cut=rand d1 && cmp out/cut1/disk-0.vmdk srv/d1 && sha_ok cut1 srv/d1 &&
	requests /cut=rand/d1 >log && test_line_count = 2 log &&
	off=$(sed -n 1p log | python3 -c "import json,sys; print(json.load(sys.stdin)[\"sent\"])") &&
	sed -n 2p log | grep -q "\"range\": \"bytes=$off-\"" &&
	sed -n 2p log | grep -q "\"status\": 206" &&
	test ! -e out/cut1/disk-0.vmdk.part && test ! -e out/cut1/disk-0.vmdk.part.meta
'

test_expect_success 'cut at a random offset, server ignores ranges (200): restarted, identical' '
	fetch cut2 ranges=0,cut=rand d1 && cmp out/cut2/disk-0.vmdk srv/d1 && sha_ok cut2 srv/d1 &&
	requests /ranges=0,cut=rand/d1 >log && test_line_count = 2 log &&
	sed -n 2p log | grep -q "\"range\": \"bytes=" &&
	sed -n 2p log | grep -q "\"status\": 200"
'

test_expect_success 'several cuts in a row (ranges honoured) still end identical' '
	fetch cut3 cut=rand,times=4 d2 && cmp out/cut3/disk-0.vmdk srv/d2 && sha_ok cut3 srv/d2 &&
	requests /cut=rand,times=4/d2 >log && test_line_count = 5 log
'

test_expect_success 'several cuts, ranges ignored: never spliced' '
	fetch cut4 ranges=0,cut=rand,times=3 d2 && cmp out/cut4/disk-0.vmdk srv/d2 && sha_ok cut4 srv/d2
'

test_expect_success 'connection reset (RST) mid-body: resumed, identical' '
	fetch rst reset=700000 d1 && cmp out/rst/disk-0.vmdk srv/d1 && sha_ok rst srv/d1
'

test_expect_success 'chunked body cut mid-stream: detected and resumed' '
	fetch chk nolength=1,cut=1234567 d1 && cmp out/chk/disk-0.vmdk srv/d1 && sha_ok chk srv/d1 &&
	requests /nolength=1,cut=1234567/d1 | sed -n 2p | grep -q "bytes=1234567-"
'

# asks LOGFILTER: the distinct requests (range, if_range) the client made,
# in order; a dropped answer may be logged twice or late by the server
asks() {
	requests "$1" | python3 -c '
import json, sys
seen = []
for line in sys.stdin:
    o = json.loads(line)
    k = (o["range"], o["if_range"], o["status"], o.get("start"), o.get("limit"))
    if k not in seen:
        seen.append(k)
for k in seen:
    print(*k[:4])
'
}

test_expect_success 'a Content-Range that does not start at the offset: restart, not splice' '
	fetch bcr badcr=1,cut=1000000,times=2 d1 && cmp out/bcr/disk-0.vmdk srv/d1 && sha_ok bcr srv/d1 &&
	asks /badcr=1 >log && cat log &&
	grep -qx "bytes=1000000- None 206 1000001" log &&
	test "$(grep -c "^None None 200 0$" log)" = 2 && test_line_count = 3 log
'

test_expect_success 'ETag changes (server honours If-Range): the new file, whole' '
	fetch et1 etag=change,cut=700000 v && cmp out/et1/disk-0.vmdk srv/v.v2 && sha_ok et1 srv/v.v2 &&
	asks /etag=change,cut=700000/ >log && cat log &&
	grep -qx "bytes=700000- \"v1\" 200 0" log
'

test_expect_success 'ETag changes (server ignores If-Range, 206 of new content): restart' '
	fetch et2 etag=change,ifrange=0,cut=700000 v && cmp out/et2/disk-0.vmdk srv/v.v2 &&
	sha_ok et2 srv/v.v2 &&
	asks /etag=change,ifrange=0 >log && cat log &&
	grep -qx "bytes=700000- \"v1\" 206 700000" log &&
	test "$(grep -c "^None None 200 0$" log)" = 2 && test_line_count = 3 log
'

# The server stalls for longer than the whole run may take: a run that
# waited for it instead of dropping the connection would fail the bound.
if [ -n "${H2K_VALGRIND:-}" ]; then stall_s=90 bound=60; else stall_s=20 bound=10; fi
test_expect_success 'stall below the speed limit: dropped and retried' '
	start=$(date +%s) &&
	fetch stall stall=500000,stalltime=$stall_s d1 --speed-limit 1000 --speed-time 1 &&
	end=$(date +%s) && test $((end - start)) -lt $bound &&
	cmp out/stall/disk-0.vmdk srv/d1 &&
	requests /stall= | sed -n 2p | grep -q "bytes=500000-"
'

test_expect_success '503 with Retry-After: 2 is honoured (waits >= 2 s), then succeeds' '
	t0=$(date +%s.%N) &&
	fetch r503 status=503,retryafter=2,times=1 d2 &&
	t1=$(date +%s.%N) &&
	python3 -c "import sys; d=$t1-$t0; print(\"elapsed\", d); sys.exit(0 if d >= 2 else 1)" &&
	cmp out/r503/disk-0.vmdk srv/d2 && requests /status=503 >log && test_line_count = 2 log
'

test_expect_success '503 with an HTTP-date Retry-After is honoured too' '
	when=$(date -u -d "@$(( $(date +%s) + 2 ))" "+%a, %d %b %Y %H:%M:%S GMT" | sed -e "s/ /%20/g" -e "s/,/%2C/g") &&
	t0=$(date +%s.%N) &&
	fetch rdate "status=503,retryafter=$when,times=1" d2 &&
	t1=$(date +%s.%N) &&
	python3 -c "import sys; d=$t1-$t0; sys.exit(0 if d >= 1 else 1)" &&
	cmp out/rdate/disk-0.vmdk srv/d2
'

test_expect_success 'retries exhausted: exit 9, one-line error, .part kept, no final file' '
	expect_code 9 fetch gone cut=0,times=0 d1 --retries 2 &&
	test_one_line gone.err &&
	grep -q "gone: disk-0.vmdk: giving up after 3 attempts" gone.err &&
	test ! -s gone.json &&
	test -f out/gone/disk-0.vmdk.part && test ! -e out/gone/disk-0.vmdk
'

test_expect_success '500 every time: exit 9 after the retries' '
	expect_code 9 fetch e500 status=500,times=0 d1 --retries 1 &&
	grep -q "HTTP 500" e500.err && test ! -e out/e500/disk-0.vmdk
'

test_expect_success '404 is not retried: exit 6' '
	expect_code 6 fetch nf - nosuchfile && grep -q "HTTP 404" nf.err &&
	test "$(requests /-/nosuchfile | wc -l)" = 1
'

test_expect_success 'a redirect (to http:// or file://) is not followed: exit 9' '
	expect_code 9 fetch redir "status=302,times=0,location=file%3A%2F%2F%2Fetc%2Fpasswd" d1 &&
	grep -q "HTTP 302" redir.err && test ! -e out/redir/disk-0.vmdk &&
	expect_code 9 fetch redir2 "status=301,times=0,location=http%3A%2F%2F127.0.0.1%3A1%2Fx" d1 &&
	test "$(requests /status=30 | wc -l)" = 2
'

test_expect_success 'one VM failing does not stop the others (exit 5)' '
	{ lease_line ok1 "$NFCD_URL/-/d1"; lease_line bad1 "$NFCD_URL/cut=0,times=0/d2";
	  lease_line ok2 "$NFCD_URL/cut=rand/d2"; } |
	expect_code 5 $F -o out --retries 1 >mixed.json 2>mixed.err &&
	test_line_count = 2 mixed.json &&
	grep -q "\"name\":\"ok1\"" mixed.json && grep -q "\"name\":\"ok2\"" mixed.json &&
	cmp out/ok1/disk-0.vmdk srv/d1 && cmp out/ok2/disk-0.vmdk srv/d2 &&
	test ! -e out/bad1/disk-0.vmdk
'

test_expect_success 'JSON progress: well-formed lines, percent never above 100' '
	lease_line pj "$NFCD_URL/bps=2000000,cut=rand/d1" |
	h2k-fetch --ca-file "$NFCD_CERT" --retry-delay 0.05 -o out --progress json >/dev/null 2>prog &&
	python3 - "$TRASH/prog" <<-\PY
	import json, sys
	n = 0
	phases = set()
	for line in open(sys.argv[1]):
	    o = json.loads(line)
	    assert set(o) == {"phase", "vm", "file", "bytes_done", "bytes_total",
	                      "percent_complete", "rate_bps", "eta_s"}, o
	    assert o["vm"] == "pj" and o["file"] == "disk-0.vmdk"
	    p = o["percent_complete"]
	    if p is not None:
	        assert 0 <= p <= 100, o
	        assert p < 100 or o["phase"] == "done", o
	        assert o["bytes_done"] <= o["bytes_total"], o
	    phases.add(o["phase"])
	    n += 1
	assert n >= 3 and "download" in phases and "done" in phases, (n, phases)
	last = o
	assert last["phase"] == "done" and last["percent_complete"] == 100
	assert last["bytes_done"] == 3000000
	PY
'

test_expect_success 'device size smaller than the stream: no percent past 100, then unknown' '
	printf "{\"name\":\"lie\",\"devices\":[{\"key\":\"k\",\"target_id\":\"disk-0.vmdk\",\"size\":1000000,\"url\":\"%s\"}]}\n" \
		"$NFCD_URL/nolength=1,bps=2000000/d1" |
	h2k-fetch --ca-file "$NFCD_CERT" -o out --progress json >/dev/null 2>prog &&
	cmp out/lie/disk-0.vmdk srv/d1 &&
	python3 - "$TRASH/prog" <<-\PY
	import json, sys
	past = False
	for line in open(sys.argv[1]):
	    o = json.loads(line)
	    p = o["percent_complete"]
	    assert p is None or p <= 100, o
	    if o["bytes_done"] > 1000000 and o["phase"] != "done":
	        assert p is None and o["eta_s"] is None and o["bytes_total"] is None, o
	        past = True
	assert past
	PY
'

nfcd_stop
test_done
