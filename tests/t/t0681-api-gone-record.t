#!/usr/bin/env bash
# GET /jobs/ID re-reads that one job's record when it changed since the
# last scan (h2k_apicache_fresh), so a client that saw `h2k-job wait`
# return does not read a stale record.  A record that is gone from new/,
# cur/ and done/ (moved aside to bad/: `h2k-job wait` reports it) or is no
# longer a regular file kept being served from the cache, as "pending",
# until the next scan, while the next scan (and /jobs/query) no longer
# knows it.  Each GET below follows the change within milliseconds, well
# inside the cache's 0.2 s: each must answer as a scan would, 404.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/t/t06-standins.sh"
. "$TESTS_DIR/t/t067-api.sh"

export H2K_SPOOL="$TRASH/spool" OUT="$TRASH/out"
api_start api.err || exit 1

test_expect_success 'setup: 12 pending jobs, with client ids' '
	for i in $(seq 1 12); do
		hcurl POST /jobs/submit -d "{\"vm_path\":\"/dc/vm/v$i\",\"output_path\":\"$OUT\",\"id\":\"cid-$i\"}" >r &&
		jq_ok r ".accepted == 1" || return 1
	done &&
	test "$(ls "$H2K_SPOOL/new" | wc -l)" = 12
'

# get_after HOW CLIENT-ID...: for each job, GET it (200), change its record
# HOW (aside: renamed into bad/ as h2k-job moves a job aside; symlink, fifo:
# its name replaced), GET it again by spool id and by client id at once;
# prints one line per job: the three statuses.
get_after() {
	python3 - "$API_PORT" "$H2K_SPOOL" "$@" <<'PY'
import http.client, json, os, stat, sys
port, spool, how = int(sys.argv[1]), sys.argv[2], sys.argv[3]
def get(p):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", p)
    r = c.getresponse()
    r.read()
    c.close()
    return r.status
for cid in sys.argv[4:]:
    # the records only: the names replaced before are no longer files
    sid = next(n for n in os.listdir(spool + "/new")
               if stat.S_ISREG(os.lstat(spool + "/new/" + n).st_mode) and
               json.load(open(spool + "/new/" + n)).get("api_id") == cid)
    rec = spool + "/new/" + sid
    a = get("/jobs/" + sid)
    if how == "aside":
        os.rename(rec, spool + "/bad/" + sid + ".0badf00d")
    elif how == "symlink":
        os.rename(rec, spool + "/tmp/" + sid)
        os.symlink(spool + "/tmp/" + sid, rec)
    elif how == "fifo":
        os.unlink(rec)
        os.mkfifo(rec, 0o600)
    print(a, get("/jobs/" + sid), get("/jobs/" + cid))
PY
}

test_expect_success 'a job moved aside to bad/: 404 at once, by either id' '
	get_after aside cid-1 cid-2 cid-3 cid-4 >st &&
	cat st &&
	test_line_count = 4 st &&
	! grep -v "^200 404 404\$" st
'

test_expect_success 'a record replaced by a symbolic link: 404 at once' '
	get_after symlink cid-5 cid-6 cid-7 cid-8 >st2 &&
	cat st2 &&
	test_line_count = 4 st2 &&
	! grep -v "^200 404 404\$" st2
'

test_expect_success 'a record replaced by a FIFO: 404 at once, no hang' '
	get_after fifo cid-9 cid-10 >st3 &&
	cat st3 &&
	test_line_count = 2 st3 &&
	! grep -v "^200 404 404\$" st3
'

test_expect_success 'what /jobs/query says agrees: 2 jobs left' '
	hcurl POST /jobs/query -d "{\"all\":true}" >q && test "$(cat code)" = 200 &&
	jq_ok q ".total == 2" &&
	hcurl GET /jobs/cid-11 >j && test "$(cat code)" = 200 &&
	jq_ok j ".status == \"pending\""
'

test_expect_success 'the server is still up' '
	kill -0 $API_PID && hcurl GET /health >h && test "$(cat code)" = 200
'

api_stop
test_done
