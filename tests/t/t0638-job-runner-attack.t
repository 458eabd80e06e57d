#!/usr/bin/env bash
# Attacks on the runner's fixes of issue 10 items 5-7 that their own tests
# missed.
# - A stderr line longer than 64 KiB is cut in the job's log: the head
#   that is kept is escaped like every other line (h2k(7) SECURITY), not
#   written raw, so a stage cannot put terminal escapes in the log.
# - Runner liveness is the lock on run/PID: a FIFO there (not a runner's
#   file) must not hang cancel past --timeout, nor status.
# - Runner liveness is the lock on run/PID.  A runner whose pid is taken
#   by a live runner of another PID namespace on the same spool must not
#   truncate that runner's run/PID (status would lose it), and says why
#   it cannot start.
# - A stage that leaves a process behind (a daemon that keeps the stage's
#   pipes, or ignores SIGTERM): the next stage still gets the end of its
#   input once the stage exited and its pipe is idle, and nothing of the
#   job's group outlives the job - also after cancel.  The runner reaps
#   the group's leader last, so its kill(-pgid) cannot reach a reused
#   group while it does so.
# - Back-pressure: a stage whose next stage does not read gets no more
#   than about a line's worth held for it (queue plus the line being
#   read), not a full queue plus another 16 MiB line plus the partial one:
#   both relays stuffed with 16 MiB lines kept a runner at 108 MB.
# - The job's log is bounded: a stage that writes 300 MB of short stderr
#   lines made a 300 MB log/ID.log; at most 64 MiB of the stages' stderr
#   goes there an attempt, then one line says the rest was dropped.
#
# Every case that may signal runs in a PID namespace of its own.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/t/t06-standins.sh"

export H2K_SPOOL="$TRASH/spool" OUT="$TRASH/out"
standins_install "$TRASH/bin"
standins_vm vm1 30000
mkdir -p "$TRASH/real"
for s in h2k-lease h2k-fetch h2k-ovf; do
	ln -s "$TRASH/bin/h2k-standin" "$TRASH/real/$s"
done

# stage NAME <SCRIPT: replace stage NAME by the sh SCRIPT.
stage() {
	{ echo "#!/bin/sh"; cat; } >"$TRASH/bin/$1.new" &&
	chmod +x "$TRASH/bin/$1.new" && mv -f "$TRASH/bin/$1.new" "$TRASH/bin/$1"
}
restore() {
	for s in h2k-lease h2k-fetch h2k-ovf; do
		rm -f "$TRASH/bin/$s" && ln -s h2k-standin "$TRASH/bin/$s" || return 1
	done
}
submit1() {
	job_yaml j1 vm1 "$OUT" | h2k-job submit - | jq -r .id
}
# the runner's peak RSS bound (KiB); ASan keeps freed blocks a while
rsslimit=92160
if ldd "$(command -v h2k-job)" 2>/dev/null | grep -q libasan; then
	rsslimit=262144
fi
esc=$(printf '\033')
bel=$(printf '\007')

test_expect_success 'an overlong stderr line: the head kept in the log is escaped' '
	stage h2k-fetch <<-EOF &&
	{ printf "\\033]0;owned\\007\\033[2J"; head -c 100000 /dev/zero | tr "\\000" y; echo; } >&2
	exec "$TRASH/real/h2k-fetch" "\$@"
	EOF
	id=$(submit1) &&
	expect_code 0 h2k-job run --once 2>run.err &&
	test "$(field $id .status)" = completed &&
	log=$H2K_SPOOL/log/$id.log &&
	grep -q "line cut: longer than 64 KiB" "$log" &&
	grep -q "\\\\e\\]0;owned\\\\x07\\\\e\\[2J" "$log" &&
	! grep -q "$esc" "$log" && ! grep -q "$bel" "$log"
'

test_expect_success 'a short stderr line with escapes and NUL: escaped too' '
	restore && rm -rf "$OUT" &&
	stage h2k-fetch <<-EOF &&
	printf "\\033[31mred\\000nul\\n" >&2
	exec "$TRASH/real/h2k-fetch" "\$@"
	EOF
	id=$(submit1) &&
	expect_code 0 h2k-job run --once 2>run.err &&
	log=$H2K_SPOOL/log/$id.log &&
	grep -q "\\\\e\\[31mred\\\\x00nul" "$log" &&
	! grep -q "$esc" "$log"
'
restore

if ! unshare --pid --fork --mount-proc true 2>/dev/null; then
	test_skip 'runners of two PID namespaces' 'no PID namespaces here (unshare --pid)'
	job_cleanup
	test_done
fi

# ns_runner ERRFILE: `h2k-job run` as pid 1 of a new PID namespace.
ns_runner() {
	timeout -s KILL 30 unshare --pid --fork --kill-child --mount-proc \
	    bash -c 'exec h2k-job run 2>"$1"' ns "$1"
}

test_expect_success 'the same pid in two PID namespaces: the live runner keeps its run/PID' '
	rm -rf "$H2K_SPOOL" &&
	{ timeout -s KILL 30 unshare --pid --fork --kill-child --mount-proc \
	    bash -c "exec h2k-job run 2>r1.err" & ns1=$!; } &&
	wait_for -s "$H2K_SPOOL/run/1" &&
	test "$(jq -r .pid "$H2K_SPOOL/run/1")" = 1 &&
	expect_code 1 ns_runner r2.err &&
	test_one_line r2.err &&
	grep "run/1: held by another runner" r2.err &&
	test "$(jq -r .pid "$H2K_SPOOL/run/1")" = 1 &&
	test "$(h2k-job status | jq ".runners | length")" = 1 &&
	kill $ns1 && { wait $ns1 || true; } &&
	wait_for ! -e "$H2K_SPOOL/run/1"
'

# fifo.sh: in the namespace, a job orphaned in cur/ whose record names
# runner 77777 and a sentinel group with a valid proof; run/77777 is a
# FIFO.  cancel must neither hang nor signal (the FIFO is no runner's
# file, so it is left to be: the job is cancelled when its lock is free).
cat >fifo.sh <<'SH'
set -u
setsid sleep 300 &
s=$!
sleep 0.2
id=$(h2k-job submit job.yaml | jq -r .id) || exit 1
echo "$id" >id
start=$(sed "s/.*) //" /proc/$s/stat | cut -d" " -f20)
jq --argjson pg "$s" --argjson st "$start" \
    --arg b "$(cat /proc/sys/kernel/random/boot_id)" \
    --arg ns "$(readlink /proc/self/ns/pid)" \
    '.status = "running" | .attempts = 1 | .runner_pid = 77777 |
     .pgid = $pg | .boot_id = $b | .pidns = $ns |
     .procs = [{pid: $pg, start: $st}]' "$H2K_SPOOL/new/$id" >rec.tmp &&
chmod 600 rec.tmp && mv rec.tmp "$H2K_SPOOL/cur/$id" && rm "$H2K_SPOOL/new/$id" &&
mkfifo "$H2K_SPOOL/run/77777" || exit 1
timeout -s KILL 10 h2k-job cancel --timeout 2 "$id" >cancel.out 2>cancel.err
echo $? >rc
timeout -s KILL 10 h2k-job status >status.out 2>status.err
echo $? >status.rc
kill -0 $s 2>/dev/null && echo alive >alive.out
kill -9 $s
exit 0
SH
job_yaml j1 vm1 "$OUT" >job.yaml

test_expect_success 'run/PID of the record is a FIFO: cancel and status do not hang' '
	rm -rf "$H2K_SPOOL" rc status.rc alive.out &&
	timeout -s KILL 60 unshare --pid --fork --kill-child --mount-proc bash fifo.sh &&
	test "$(cat rc)" = 0 &&
	test "$(cat alive.out)" = alive &&
	test "$(field $(cat id) .status)" = cancelled &&
	test "$(cat status.rc)" = 0 &&
	test "$(jq ".runners | length" status.out)" = 0
'

# daemon.sh MODE: in the namespace, a job whose h2k-lease leaves a
# SIGTERM-ignoring `sleep 3001` behind.  MODE pipe: it keeps h2k-lease's
# stdout and stderr (h2k-fetch waits for the end of its input); the job
# must still complete.  MODE cancel: it holds nothing, h2k-fetch is slow;
# the job is cancelled.  daemon.out says whether the sleep outlived the job.
cat >daemon.sh <<'SH'
set -u
mode=$1
id=$(h2k-job submit job.yaml | jq -r .id) || exit 1
echo "$id" >id
if [ "$mode" = pipe ]; then
	STANDIN_DELAY=0 h2k-job run --once 2>run.err
	echo $? >rc
else
	STANDIN_DELAY=0.2 STANDIN_CHUNK=1024 h2k-job run --once 2>run.err &
	r=$!
	i=0
	until pgrep -f "sleep 3001" >/dev/null && [ -s "$OUT/vm1/disk-0.vmdk.part" ]; do
		i=$((i + 1)); [ $i -gt 200 ] && { echo "no download" >&2; exit 1; }
		sleep 0.1
	done
	h2k-job cancel --timeout 40 "$id" >cancel.out 2>cancel.err
	echo $? >crc
	wait $r
	echo $? >rc
fi
if pgrep -f "sleep 3001" >/dev/null; then echo left >daemon.out; else echo gone >daemon.out; fi
pkill -9 -f "sleep 3001"
exit 0
SH

test_expect_success 'a daemon left by h2k-lease keeps its stdout: the job still ends, the daemon with it' '
	rm -rf "$H2K_SPOOL" "$OUT" rc daemon.out &&
	stage h2k-lease <<-EOF &&
	( trap "" TERM; exec sleep 3001 ) &
	exec "$TRASH/real/h2k-lease" "\$@"
	EOF
	timeout -s KILL 60 unshare --pid --fork --kill-child --mount-proc bash daemon.sh pipe &&
	test "$(cat rc)" = 0 &&
	test "$(field $(cat id) .status)" = completed &&
	test "$(cat daemon.out)" = gone &&
	grep -q "h2k-lease exited; a process it left holds its output: closed" \
	    "$H2K_SPOOL/log/$(cat id).log"
'

test_expect_success 'cancel: a SIGTERM-ignoring daemon of the job does not outlive it' '
	rm -rf "$H2K_SPOOL" "$OUT" rc crc daemon.out &&
	stage h2k-lease <<-EOF &&
	( trap "" TERM; exec sleep 3001 ) </dev/null >/dev/null 2>&1 &
	exec "$TRASH/real/h2k-lease" "\$@"
	EOF
	timeout -s KILL 90 unshare --pid --fork --kill-child --mount-proc bash daemon.sh cancel &&
	test "$(cat crc)" = 0 &&
	test "$(field $(cat id) .status)" = cancelled &&
	test "$(cat daemon.out)" = gone
'
restore

test_expect_success 'both relays stuffed with 16 MiB lines: the runner stays under 90 MB' '
	rm -rf "$H2K_SPOOL" "$OUT" &&
	head -c 16777215 /dev/zero | tr "\000" a >l16 &&
	stage h2k-lease <<-EOF &&
	for i in 1 2 3 4 5; do cat "$TRASH/l16"; echo; done; sleep 60
	EOF
	stage h2k-fetch <<-EOF &&
	for i in 1 2 3 4 5; do cat "$TRASH/l16"; echo; done; sleep 60
	EOF
	stage h2k-ovf <<-EOF &&
	sleep 60
	EOF
	submit1 >/dev/null &&
	rm -f hwm &&
	timeout -s KILL 60 unshare --pid --fork --kill-child --mount-proc bash -c "
		h2k-job run --once 2>run.err & r=\$!
		sleep 15
		awk \"/^VmHWM:/ {print \\\$2}\" /proc/\$r/status >hwm
		kill -9 \$r" &&
	hwm=$(cat hwm) &&
	echo "runner peak RSS: $hwm KiB" &&
	test "$hwm" -lt $rsslimit
'
restore

test_expect_success 'a stage writing 80 MB of short stderr lines: the log stops at 64 MiB' '
	rm -rf "$H2K_SPOOL" "$OUT" &&
	stage h2k-fetch <<-EOF &&
	yes "h2k-fetch: warning: chatty" | head -c 80000000 >&2
	exec "$TRASH/real/h2k-fetch" "\$@"
	EOF
	id=$(submit1) &&
	expect_code 0 h2k-job run --once 2>run.err &&
	test "$(field $id .status)" = completed &&
	log=$H2K_SPOOL/log/$id.log &&
	sz=$(stat -c %s "$log") &&
	echo "log: $sz bytes" &&
	test "$sz" -lt $((64 * 1048576 + 65536)) &&
	test "$sz" -gt $((60 * 1048576)) &&
	grep -q "log cut: the job.s commands wrote more than 64 MiB" "$log" &&
	tail -1 "$log" | grep -q "completed after"
'
restore

job_cleanup
test_done
