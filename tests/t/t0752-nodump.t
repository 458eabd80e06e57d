#!/usr/bin/env bash
# Every command that holds a password or a session cookie leaves no core
# file when it crashes, even under `ulimit -c unlimited`: its core limit
# reads 0 (soft and hard) while it runs, and SIGSEGV kills it without a
# core file.  (Not dumpable, PR_SET_DUMPABLE 0, is checked by test-util:
# run as root, as here, it cannot be told from the outside.)  Each command
# is caught while it waits: h2k-login for its password, h2k-lease, h2k-fetch
# and h2k-ovf on stdin, h2k-ls on a server that never answers, h2k-job run
# on an empty spool.
. "$(dirname "$0")/../lib.sh"

sim_start -vm 1 -disks 1 -disk-size 64K -power off
h2k_login_sim || { echo "Bail out! login failed"; exit 1; }
SESS=$XDG_STATE_HOME/h2k/session.json

# Core files land in the crashing process's folder only with a plain
# core_pattern; a pipe (systemd-coredump, apport) or a path elsewhere
# takes them out of sight, and only the limit is checked then.
case $(cat /proc/sys/kernel/core_pattern) in
'|'* | */*) SEE_CORES= ;;
*) SEE_CORES=1 ;;
esac
say "core_pattern: $(cat /proc/sys/kernel/core_pattern)${SEE_CORES:+ (core files visible)}"

# A server that accepts connections and never says a word.
cat >stall.py <<'PY'
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(16)
s.settimeout(0.5)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(s.getsockname()[1]))
import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
held, end = [], time.time() + 60
while time.time() < end:
    try:
        held.append(s.accept()[0])
    except socket.timeout:
        pass
PY
python3 stall.py port & STALL=$!
test_atexit 'kill $STALL 2>/dev/null'
n=0; while [ ! -s port ] && [ $n -lt 100 ]; do sleep 0.05; n=$((n + 1)); done
python3 - "$SESS" "$(cat port)" >stall.json <<'PY'
import json, sys
o = json.load(open(sys.argv[1]))
o["url"] = "https://127.0.0.1:%s/sdk" % sys.argv[2]
print(json.dumps(o))
PY
chmod 600 stall.json

# crash NAME CMD...: CMD runs in folder NAME with core files on and stdin
# a FIFO nobody writes; its core limit must read "0 0" within 3 s, then
# SIGSEGV must kill it without leaving a core file.
crash() {
	local name=$1 pid i=0 lim= rc
	shift
	mkdir "$name" && mkfifo "$name/in" || return 1
	exec 8<>"$name/in"
	(cd "$name" && { ulimit -c unlimited 2>/dev/null || :; } && exec "$@" <in >out 2>err) &
	pid=$!
	while [ $i -lt 60 ]; do
		lim=$(prlimit --pid $pid --core --raw --noheadings -o SOFT,HARD 2>/dev/null |
			tr -s " " " " | sed "s/^ //")
		[ "$lim" = "0 0" ] && break
		sleep 0.05; i=$((i + 1))
	done
	sleep 0.2  # past h2k_nodump: into the wait
	kill -0 $pid 2>/dev/null || { echo "$name exited early:"; cat "$name/err"; exec 8>&-; return 1; }
	kill -SEGV $pid; wait $pid; rc=$?
	exec 8>&-
	ls -A "$name" | grep "^core" >"$name.cores"
	echo "$name: core limit '$lim', exit $rc, core files: $(cat "$name.cores")"
	test "$lim" = "0 0" && test $rc != 0 &&
	{ [ -z "$SEE_CORES" ] || test_line_count = 0 "$name.cores"; }
}

test_expect_success 'h2k-login waiting for its password: no core' '
	crash login h2k-login -k -u "$SIM_URL" -U "$SIM_USER" --password-stdin -s "$TRASH/new.json"
'
test_expect_success 'h2k-ls waiting on a silent server: no core' '
	crash ls h2k-ls -s "$TRASH/stall.json"
'
test_expect_success 'h2k-lease waiting on stdin: no core' '
	crash lease h2k-lease
'
test_expect_success 'h2k-fetch waiting on stdin: no core' '
	crash fetch h2k-fetch -o "$TRASH/exp"
'
test_expect_success 'h2k-ovf waiting on stdin: no core' '
	crash ovf h2k-ovf
'
test_expect_success 'h2k-job run on an empty spool: no core' '
	crash job h2k-job --spool "$TRASH/spool" run
'
if [ -n "$SEE_CORES" ]; then
	test_expect_success 'control: a process that does not turn dumps off leaves a core here' '
		mkdir ctl || exit 1
		(cd ctl && ulimit -c unlimited && exec sleep 30) &
		pid=$!
		sleep 0.3 && kill -SEGV $pid; wait $pid
		ls -A ctl | grep -q "^core"
	'
fi

kill $STALL 2>/dev/null
test_done
