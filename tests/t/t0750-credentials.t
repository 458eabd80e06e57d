#!/usr/bin/env bash
# Credentials and secret files (issue 5): the session file is 0600 even
# with umask 000; a group-readable, foreign-owned, symlinked session (or
# one in a folder others can write) is refused by every command with exit
# 11; the password never appears in /proc/*/cmdline or environ of any
# process while h2k-login runs (password from stdin or a file); neither
# the password nor the session cookie appears in any log at trace level,
# along the whole pipeline.
. "$(dirname "$0")/../lib.sh"

sim_start -disks 1 -disk-size 1M -power off -vm 1 -host 1 -cluster 0 -password 'Se3ret-canary-Q7z'
SESS=$XDG_STATE_HOME/h2k/session.json
PW=$SIM_PASSWORD
printf '%s\n' "$PW" >pw && chmod 600 pw
# The rig's own password variable stays out of h2k's environment.
login() { env -u SIM_PASSWORD h2k-login -u "$SIM_URL" -U "$SIM_USER" --thumbprint "$SIM_THUMBPRINT" "$@"; }

test_expect_success 'umask 000: session file 0600, its folder 0700, no password in it' '
	(umask 000 && login --password-file pw >out 2>err) &&
	test "$(file_mode "$SESS")" = 600 &&
	test "$(file_mode "$(dirname "$SESS")")" = 700 &&
	! grep -qF "$PW" "$SESS" && ! grep -qF "$PW" out err
'
cp "$SESS" good-session.json
COOKIE=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["cookie"].strip("\""))' "$SESS")
h2k-ls --name DC0_H0_VM0 >vm.json
h2k-lease <vm.json >lease.json

restore() { rm -rf "$(dirname "$SESS")" && mkdir -p "$(dirname "$SESS")" && chmod 700 "$(dirname "$SESS")" &&
	cp good-session.json "$SESS" && chmod 600 "$SESS"; }

# refused WHY: every command that reads the session exits 11 with one line
# naming the session file (or its folder) and WHY, and sends nothing.
refused() {
	local c
	for c in "h2k-login --status" "h2k-ls" "h2k-lease" "h2k-fetch -o exp --progress none" "h2k-ovf"; do
		case $c in
		h2k-lease*) in=vm.json ;;
		h2k-fetch*|h2k-ovf*) in=lease.json ;;
		*) in=/dev/null ;;
		esac
		$c <$in >out 2>err; rc=$?
		if [ $rc != 11 ] || [ "$(wc -l <err)" != 1 ] || ! grep -Eq "$1" err ||
		   ! grep -q "session" err; then
			echo "$c: exit $rc:"; cat err; return 1
		fi
		test_line_count = 0 out || return 1
	done
	! test -e exp/DC0_H0_VM0
}

test_expect_success 'group-readable session file: refused by every command (exit 11)' '
	restore && chmod 640 "$SESS" && refused "mode|readable|0640|640"
'
test_expect_success 'world-readable session file: refused' '
	restore && chmod 604 "$SESS" && refused "mode|readable|604"
'
test_expect_success 'session file owned by another user: refused' '
	restore && chown nobody "$SESS" && refused "owned|owner|uid"
'
test_expect_success 'symlinked session file: refused, the target never read' '
	restore && mv "$SESS" "$TRASH/elsewhere.json" && ln -s "$TRASH/elsewhere.json" "$SESS" &&
	refused "symbolic|symlink|link"
'
test_expect_success 'session file in a folder others can write: refused' '
	restore && chmod 777 "$(dirname "$SESS")" && refused "writable|0777|777"
'
test_expect_success 'a symlink to a secret is refused without echoing it' '
	restore && printf "SECRET-CONTENT-41\n" >secret && chmod 600 secret &&
	rm "$SESS" && ln -s "$TRASH/secret" "$SESS" &&
	expect_code 11 h2k-ls >out 2>err && ! grep -q SECRET-CONTENT out err
'
restore

# watch_procs SECRET STOPFILE REPORT: until STOPFILE exists, read the
# cmdline and environ of every h2k process over and over; REPORT gets the number of
# sweeps, how many saw an h2k-login process, and every place SECRET was seen.
cat >watch.py <<'PY'
import os, sys
secret, stop, report = sys.argv[1].encode(), sys.argv[2], sys.argv[3]
here = os.getcwd()
sweeps = seen_login = 0
found = []
while not os.path.exists(stop) or sweeps < 3:
    sweeps += 1
    login = False
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        try:
            with open("/proc/%s/environ" % pid, "rb") as f:
                env = f.read()
        except PermissionError:
            env = b""  # not dumpable (h2k_nodump): closed to us, so to others
        except OSError:
            continue
        # h2k's processes (and valgrind running one), not the rig
        argv = cmd.split(b"\0")
        names = [os.path.basename(a) for a in argv[:8]]
        try:  # this test's processes only (others run h2k on this machine)
            if os.readlink("/proc/%s/cwd" % pid) != here:
                continue
        except PermissionError:
            # not dumpable and not root: this test's if in our session
            try:
                with open("/proc/%s/stat" % pid) as f:
                    sid = int(f.read().rsplit(")", 1)[1].split()[3])
            except (OSError, ValueError, IndexError):
                continue
            if sid != os.getsid(0):
                continue
        except OSError:
            continue
        if names[0].startswith(b"valgrind"):
            names = [n for n in names if n.startswith(b"h2k-")][:1] or [b""]
        if not names[0].startswith(b"h2k-") or names[0] == b"h2k-sim":
            continue
        if names[0] == b"h2k-login":
            login = True
            if not os.path.exists("seen"):
                open("seen", "w").close()
        for what, data in (("cmdline", cmd), ("environ", env)):
            if secret in data:
                found.append("%s %s: %r" % (pid, what, data[:200]))
    seen_login += login
with open(report, "w") as f:
    f.write("%d %d\n" % (sweeps, seen_login))
    f.write("\n".join(found))
PY
watch_start() { rm -f stop report seen; python3 watch.py "$PW" stop report & WATCH=$!; }
# wait_seen: until the watcher has seen h2k-login running (it waits for its password).
wait_seen() { local n=0; while [ ! -e seen ] && [ $n -lt 400 ]; do sleep 0.05; n=$((n + 1)); done; }
watch_end() { touch stop; wait $WATCH; cat report; }
# watched: the watcher saw the login process and never the password.
watched() {
	read -r sweeps logins <report &&
	test "$logins" -gt 0 && test "$(wc -l <report)" = 1 || {
		echo "password seen, or login never sampled ($sweeps sweeps, $logins with login)"; false; }
}

test_expect_success 'password from stdin: never in /proc/*/cmdline or environ while login runs' '
	rm -f "$SESS" rc && mkfifo pwfifo || exit 1
	exec 7<>pwfifo
	watch_start
	( login --password-stdin <pwfifo >out 2>err; echo $? >rc ) &
	wait_seen
	printf "%s\n" "$PW" >&7
	n=0; while [ ! -s rc ] && [ $n -lt 400 ]; do sleep 0.05; n=$((n + 1)); done
	exec 7>&-
	watch_end && test "$(cat rc)" = 0 && test -e "$SESS" && watched
'
test_expect_success 'password from a file (a FIFO, so login waits on it): never in /proc' '
	rm -f "$SESS" rc && mkfifo pwfile || exit 1
	watch_start
	( login --password-file pwfile >out 2>err; echo $? >rc ) &
	wait_seen
	printf "%s\n" "$PW" >pwfile
	n=0; while [ ! -s rc ] && [ $n -lt 400 ]; do sleep 0.05; n=$((n + 1)); done
	watch_end && test "$(cat rc)" = 0 && test -e "$SESS" && watched
'

# unsecret FILE: FILE without the places the rig itself puts the session
# key: vcsim names a lease "session[KEY]ID" and KEY is the cookie there.
unsecret() { sed -e "s/session\[$COOKIE\]/session[KEY]/g" -e "s/session%5B$COOKIE%5D/session%5BKEY%5D/g" "$1"; }

test_expect_success 'trace level along the whole pipeline: no password, no cookie in any log' '
	rm -f "$SESS" &&
	export H2K_LOG_LEVEL=trace &&
	login -v --password-file pw >login.out 2>login.err &&
	COOKIE=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[\"cookie\"].strip(\"\\\"\"))" "$SESS") &&
	test -n "$COOKIE" &&
	h2k-ls -v --name DC0_H0_VM0 2>ls.err | h2k-lease -v 2>lease.err |
		h2k-fetch -v -o exp2 --progress json 2>fetch.err | h2k-ovf -v >final.json 2>ovf.err &&
	test -s final.json &&
	cat login.err ls.err lease.err fetch.err ovf.err >all.err &&
	test -s all.err &&
	unsecret all.err >all.clean &&
	! grep -F -e "$PW" -e "$COOKIE" all.clean &&
	! grep -i "vmware_soap_session=[^ ;]" all.clean &&
	! grep -F "$PW" login.out final.json
'
test_done
