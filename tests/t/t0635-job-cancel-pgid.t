#!/usr/bin/env bash
# h2k-job cancel signals a process group named in a job's record only
# while it is provably the job's (issue 10, item 5).  A record whose pgid
# is not a process group id ("1.5", -1, 0, 1, "abc", huge) is refused as
# a whole: nothing is signalled, cancel fails (exit 1) naming the field.
# A valid pgid that names a group the job has no process in (an unrelated
# `setsid sleep`) is left alone and cancel says so.  The job's own group
# is still stopped.
#
# Every case runs in a PID namespace of its own (unshare --pid --fork
# --mount-proc): a regression that reaches kill(-1) can only hit the
# namespace, never the machine.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/t/t06-standins.sh"

export H2K_SPOOL="$TRASH/spool" OUT="$TRASH/out"
standins_install "$TRASH/bin"
standins_vm vm1 400000

if ! unshare --pid --fork --mount-proc true 2>/dev/null; then
	test_skip 'cancel and record pgids' 'no PID namespaces here (unshare --pid)'
	test_done
fi

# in_ns SCRIPT ARGS...: run the bash SCRIPT in a new PID namespace, bounded.
in_ns() {
	timeout -s KILL 60 unshare --pid --fork --kill-child --mount-proc bash "$@"
}

# forge.sh PGID-JSON RC-FILE: in the namespace, a sentinel process group
# (setsid sleep) and a job orphaned in cur/ (its runner gone) whose record
# says pgid PGID-JSON ("S" is the sentinel's group); then cancel the job.
# RC-FILE gets cancel's exit status, alive.out "alive" if the sentinel
# outlived the cancel.
cat >forge.sh <<'SH'
set -u
pg=$1 rcf=$2
setsid sleep 300 &
sentinel=$!
sleep 0.2
[ "$pg" = S ] && pg=$sentinel
id=$(h2k-job submit job.yaml | jq -r .id) || exit 1
jq --argjson pg "$pg" '.status = "running" | .attempts = 1 |
    .runner_pid = 99999 | .pgid = $pg' "$H2K_SPOOL/new/$id" >rec.tmp &&
chmod 600 rec.tmp && mv rec.tmp "$H2K_SPOOL/cur/$id" && rm "$H2K_SPOOL/new/$id" || exit 1
echo "$id" >id
h2k-job cancel --timeout 2 "$id" >cancel.out 2>cancel.err
echo $? >"$rcf"
kill -0 "$sentinel" 2>/dev/null && echo alive >alive.out
kill -9 "$sentinel" 2>/dev/null
exit 0
SH
job_yaml j1 vm1 "$OUT" >job.yaml

# refused PGID-JSON: the record is refused, nothing signalled.
refused() {
	rm -rf "$H2K_SPOOL" alive.out rc cancel.err &&
	in_ns forge.sh "$1" rc &&
	test "$(cat alive.out)" = alive &&
	if test "$(cat rc)" != 1; then
		echo "cancel exited $(cat rc), not 1:"; cat cancel.out cancel.err; return 1
	fi &&
	test_one_line cancel.err && grep "pgid" cancel.err
}

test_expect_success 'pgid 1.5 (kill(-1) once truncated): nothing signalled, cancel fails' '
	refused 1.5 && grep "record field .pgid. is not a process group id" cancel.err
'
test_expect_success 'pgid -1: refused' 'refused -1'
test_expect_success 'pgid 0: refused' 'refused 0'
test_expect_success 'pgid 1: refused' 'refused 1'
test_expect_success 'pgid "abc": refused' 'refused "\"abc\""'
test_expect_success 'pgid 4294967297 and 1e300: refused' '
	refused 4294967297 && refused 1e300
'

test_expect_success 'a record from before pgid proofs (pgid only) naming a live group: left alone' '
	rm -rf "$H2K_SPOOL" alive.out rc &&
	in_ns forge.sh S rc &&
	test "$(cat alive.out)" = alive &&
	test "$(cat rc)" = 0 &&
	test "$(field $(cat id) .status)" = cancelled
'

# live.sh MODE: in the namespace, a runner exports vm1 slowly; kill -9
# the runner while h2k-fetch is busy aborting (it holds the job), then
# cancel.  MODE "foreign": first the record's pgid is turned into an
# unrelated live group's (a sentinel); "own": the record is left as is.
cat >live.sh <<'SH'
set -u
mode=$1
setsid sleep 300 &
sentinel=$!
id=$(h2k-job submit job.yaml | jq -r .id) || exit 1
echo "$id" >id
STANDIN_DELAY=0.05 STANDIN_CHUNK=4096 STANDIN_TERM_DELAY=30 h2k-job run --once 2>run.err &
runner=$!
i=0
until [ -s "$OUT/vm1/disk-0.vmdk.part" ]; do
	i=$((i + 1)); [ $i -gt 200 ] && { echo "no download" >&2; exit 1; }
	sleep 0.1
done
pg=$(jq -r .pgid "$H2K_SPOOL/cur/$id")
echo "$pg" >pg
kill -9 $runner
wait $runner
if [ "$mode" = foreign ]; then
	jq --argjson pg "$sentinel" '.pgid = $pg' "$H2K_SPOOL/cur/$id" >rec.tmp &&
	chmod 600 rec.tmp && mv rec.tmp "$H2K_SPOOL/cur/$id" || exit 1
fi
h2k-job cancel --timeout 3 "$id" >cancel.out 2>cancel.err
echo $? >rc
kill -0 "$sentinel" 2>/dev/null && echo alive >alive.out
# is anything of the job left? (its group, or the fetch still aborting)
if pgrep -g "$pg" >/dev/null; then echo left >job.out; else echo gone >job.out; fi
kill -9 "$sentinel" 2>/dev/null
exit 0
SH

test_expect_success 'pgid of an unrelated live group: that group survives, cancel fails saying why' '
	rm -rf "$H2K_SPOOL" "$OUT" alive.out rc &&
	in_ns live.sh foreign &&
	test "$(cat alive.out)" = alive &&
	test "$(cat rc)" = 1 &&
	test_one_line cancel.err &&
	grep "still running" cancel.err &&
	grep "not signalled" cancel.err &&
	test "$(cat job.out)" = left
'

test_expect_success 'the job'"'"'s own group (runner dead): stopped by cancel, job cancelled' '
	rm -rf "$H2K_SPOOL" "$OUT" alive.out rc &&
	in_ns live.sh own &&
	test "$(cat rc)" = 0 &&
	test "$(cat alive.out)" = alive &&
	test "$(cat job.out)" = gone &&
	test "$(field $(cat id) .status)" = cancelled
'

test_expect_success 'a running record carries the proof: boot_id, pidns, the stages'"'"' start times' '
	rm -rf "$H2K_SPOOL" "$OUT" &&
	id=$(h2k-job submit job.yaml | jq -r .id) &&
	STANDIN_DELAY=$SLOW STANDIN_CHUNK=4096 start_runner run.err --once &&
	wait_for -s "$OUT/vm1/disk-0.vmdk.part" &&
	rec=$(h2k-job show $id) &&
	test "$(jqget "$rec" .boot_id)" = "$(cat /proc/sys/kernel/random/boot_id)" &&
	test "$(jqget "$rec" .pidns)" = "$(readlink /proc/self/ns/pid)" &&
	pg=$(jqget "$rec" .pgid) &&
	test "$(jqget "$rec" ".procs | length")" = 3 &&
	p0=$(jqget "$rec" ".procs[1].pid") &&
	test "$(jqget "$rec" ".procs[1].start")" = "$(sed "s/.*) //" /proc/$p0/stat | cut -d" " -f20)" &&
	h2k-job cancel $id >/dev/null &&
	group_gone $pg && { wait $RUNNER || true; } &&
	rec=$(h2k-job show $id) &&
	test "$(jqget "$rec" "has(\"procs\") or has(\"boot_id\") or has(\"pgid\")")" = false
'

# A stand-in h2k-fetch whose first progress line is out of any range.
mkdir -p real && ln -s "$TRASH/bin/h2k-standin" real/h2k-fetch
cat >wild-fetch <<SH
#!/bin/sh
: >"$TRASH/wild-ran"
echo '{"bytes_done":-5,"bytes_total":1e400}' >&2
exec "$TRASH/real/h2k-fetch" "\$@"
SH
chmod +x wild-fetch

test_expect_success 'stage progress out of range never makes a record readers refuse' '
	rm -rf "$H2K_SPOOL" "$OUT" &&
	ln -sf "$TRASH/wild-fetch" "$TRASH/bin/h2k-fetch" &&
	id=$(h2k-job submit job.yaml | jq -r .id) &&
	h2k-job run --once 2>run.err; rc=$?
	ln -sf h2k-standin "$TRASH/bin/h2k-fetch" &&
	test $rc = 0 && test -e wild-ran &&
	test "$(field $id .status)" = completed &&
	test -z "$(ls "$H2K_SPOOL/bad")"
'

job_cleanup
test_done
