#!/usr/bin/env bash
# h2k-job with the real pipeline (h2k-lease | h2k-fetch | h2k-ovf) against
# the rig: 20 jobs with --workers 4, every exported disk byte-identical to
# the rig's datastore file, manifests verified; two runners on one spool.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/t/t06-standins.sh"

sim_start -vm 10 -disk-size 192K -disk-fill random -power off -password h2k-Job-S3cret-7q
job_trap
export H2K_SPOOL="$TRASH/spool" OUT="$TRASH/out"

govc_ find / -type m | sort >vms
test_expect_success 'the rig has 20 powered-off VMs; log in' '
	test_line_count = 20 vms &&
	h2k_login_sim
'

# submit_paths FILE: one job per VM path in FILE, ids on stdout.
submit_paths() {
	{ echo "jobs:"; while read -r p; do
		printf '  - vm_path: "%s"\n    output_path: "%s"\n' "$p" "$OUT"
	done <"$1"; } >batch.yaml &&
	h2k-job submit batch.yaml | jq -r .id
}

# verify_all IDS: every job completed once; each disk equals the rig's
# datastore file; the .mf checks out; one python for all (start-up time).
verify_all() {
	python3 - "$1" "$H2K_SPOOL" "$OUT" "$SIM_DSDIR" <<-\PY
	import hashlib, json, os, sys
	ids, spool, out, ds = sys.argv[1:]
	bad = 0
	def sha(p): return hashlib.sha256(open(p, "rb").read()).hexdigest()
	for id in open(ids).read().split():
	    j = json.load(open(os.path.join(spool, "done", id)))
	    n, r = j["name"], j["result"]
	    try:
	        assert j["status"] == "completed" and j["attempts"] == 1, j["status"]
	        assert r["dir"] == os.path.join(out, n), r["dir"]
	        assert os.path.isfile(r["ovf_path"])
	        disk = open(os.path.join(r["dir"], "disk-0.vmdk"), "rb").read()
	        assert disk == open(os.path.join(ds, "DC0-LocalDS_0", n, "disk1.vmdk"), "rb").read(), "disk differs"
	        for l in open(r["mf_path"]):
	            f, h = l.strip()[len("SHA256("):].split(")= ")
	            assert sha(os.path.join(r["dir"], f)) == h, "mf: " + f
	        assert j["progress"]["bytes_done"] == len(disk) == 196608
	        assert j["progress"]["percent_complete"] == 100
	        log = open(os.path.join(spool, "log", id + ".log")).read()
	        assert log.count("attempt 1 by runner") == 1
	    except Exception as e:
	        print("job %s (%s): %r" % (id, n, e), file=sys.stderr)
	        bad += 1
	sys.exit(1 if bad else 0)
	PY
}

test_expect_success '20 jobs, --workers 4 --once: all complete, disks identical to the rig' '
	submit_paths vms >ids &&
	test_line_count = 20 ids &&
	h2k-job run --once --workers 4 2>run.err &&
	verify_all ids &&
	test "$(grep -c ": claimed" run.err)" = 20 &&
	test -z "$(find "$H2K_SPOOL/new" "$H2K_SPOOL/cur" -mindepth 1)" &&
	test "$(jqget "$(h2k-job status)" ".counts.completed")" = 20
'

test_expect_success 'at most 4 pipelines ran at once' '
	python3 - "$H2K_SPOOL" <<-\PY
	import json, os, sys
	d = sys.argv[1] + "/done"
	ev = []
	for f in os.listdir(d):
	    j = json.load(open(os.path.join(d, f)))
	    ev += [(j["started_at"], 1), (j["finished_at"], -1)]
	# second resolution: ends before starts within one second
	ev.sort(key=lambda e: (e[0], e[1]))
	n = peak = 0
	for _, e in ev:
	    n += e
	    peak = max(peak, n)
	assert peak <= 4, peak
	PY
'

test_expect_success 'two runners on one spool, 20 jobs: each job exported exactly once' '
	rm -rf "$H2K_SPOOL" "$OUT" &&
	submit_paths vms >ids &&
	start_runner r1.err --once --workers 2 && p1=$RUNNER &&
	start_runner r2.err --once --workers 2 && p2=$RUNNER &&
	wait $p1 && wait $p2 &&
	verify_all ids &&
	c1=$(grep -c ": claimed" r1.err) && c2=$(grep -c ": claimed" r2.err) &&
	test $((c1 + c2)) = 20 &&
	for id in $(cat ids); do
		test "$(cat r1.err r2.err | grep -c "job $id (.*): claimed")" = 1 || return 1
	done
'

test_expect_success 'a job for a VM the rig does not have fails with the lease error' '
	rm -rf "$H2K_SPOOL" &&
	printf "vm_path: /DC0/vm/no-such-vm\noutput_path: %s\n" "$OUT" >bad.yaml &&
	id=$(h2k-job submit bad.yaml | jq -r .id) &&
	expect_code 1 h2k-job run --once 2>run.err &&
	test "$(field $id ".status")" = failed &&
	field $id ".error" | grep "^h2k-lease: .*no-such-vm" &&
	expect_code 1 h2k-job wait $id >/dev/null
'

test_expect_success 'a config credential: the runner logs in itself, the password stays put' '
	rm -rf "$H2K_SPOOL" "$OUT" &&
	mkdir -p cred && chmod 700 cred &&
	printf "VCenterURL: %s\nUsername: %s\nPassword: %s\nInsecure: true\n" \
		"$SIM_URL" "$SIM_USER" "$SIM_PASSWORD" >cred/config &&
	chmod 600 cred/config &&
	head -1 vms >one &&
	id=$(submit_paths one) &&
	XDG_STATE_HOME=$TRASH/empty-state CREDENTIALS_DIRECTORY=$TRASH/cred \
		h2k-job run --once 2>run.err &&
	test "$(field $id .status)" = completed &&
	test -f "$H2K_SPOOL/run/session.json" &&
	test "$(file_mode "$H2K_SPOOL/run/session.json")" = 600 &&
	test ! -e "$TRASH/empty-state/h2k/session.json" &&
	! grep -rF "$SIM_PASSWORD" "$H2K_SPOOL" run.err
'

test_expect_success 'session gone while the runner idles: it logs in again, the job completes' '
	rm -rf "$H2K_SPOOL" "$OUT" &&
	XDG_STATE_HOME=$TRASH/empty-state CREDENTIALS_DIRECTORY=$TRASH/cred \
		start_runner run2.err && rp=$RUNNER &&
	runner_up && wait_for -f "$H2K_SPOOL/run/session.json" &&
	h2k-login --logout -s "$H2K_SPOOL/run/session.json" >/dev/null &&
	test ! -e "$H2K_SPOOL/run/session.json" &&
	id=$(submit_paths one) &&
	WAIT_S=60 wait_for -f "$H2K_SPOOL/done/$id" &&
	test "$(field $id .status)" = completed &&
	test "$(field $id .attempts)" = 1 &&
	grep "logging in again" "$H2K_SPOOL/log/$id.log" &&
	grep "session renewed; requeued" run2.err &&
	kill -TERM $rp && wait $rp
'

job_cleanup
test_done
