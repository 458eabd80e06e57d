#!/usr/bin/env bash
# h2k-login against the rig: good and bad password, the session file's
# safety checks, --status, --logout, and where the password must never go.
. "$(dirname "$0")/../lib.sh"

# A password no message could contain by accident ("pass" is in "password").
sim_start -trace -password "Zq7-h2k-S3cret"
S=$HOME/.local/state/h2k/session.json

requests() { grep -c '^Request:' "$TRASH/sim.log" || :; }

printf '%s\n' "$SIM_PASSWORD" >pw && chmod 600 pw
printf 'not-%s\n' "$SIM_PASSWORD" >badpw && chmod 600 badpw

test_expect_success 'good password: one JSON line, session file 0600' '
	h2k-login -k -u "$SIM_URL" -U "$SIM_USER" --password-file pw >out 2>err &&
	test_line_count = 1 out && test ! -s err &&
	test "$(jfield out url)" = "$SIM_URL" &&
	test "$(jfield out user)" = "$SIM_USER" &&
	test "$(jfield out server_type)" = VirtualCenter &&
	test "$(jfield out server_version)" != null &&
	test "$(jfield out api_version)" != null &&
	test "$(jfield out insecure)" = true &&
	test "$(jfield out session_file)" = "$S" &&
	jfield out created_at | grep -Eq "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$" &&
	test "$(file_mode "$S")" = 600 &&
	test "$(file_mode "$(dirname "$S")")" = 700
'

test_expect_success 'the output never holds the cookie, the file never the password' '
	cookie=$(jfield "$S" cookie) && test -n "$cookie" && test "$cookie" != null &&
	! grep -F "$cookie" out &&
	! grep -q cookie out &&
	! grep -F "$SIM_PASSWORD" "$S" && ! grep -qi password "$S"
'

test_expect_success '--status: valid session prints valid:true, exit 0' '
	h2k-login --status >st &&
	test "$(jfield st valid)" = true &&
	test "$(jfield st url)" = "$SIM_URL" && ! grep -q cookie st
'

test_expect_success 'bad password: exit 3, one line, no session file' '
	expect_code 3 h2k-login -k -u "$SIM_URL" -U "$SIM_USER" --password-file badpw \
		-s new.json >out 2>err &&
	test_one_line err && grep -q "h2k-login: .*refused" err &&
	! grep -F "not-$SIM_PASSWORD" err && test ! -s out &&
	test ! -e new.json && ! ls .new.json* 2>/dev/null
'

test_expect_success 'bad password leaves an existing session untouched' '
	cp -p "$S" before &&
	expect_code 3 h2k-login -k -u "$SIM_URL" -U "$SIM_USER" --password-file badpw 2>err &&
	cmp before "$S"
'

test_expect_success 'unknown user: exit 3' '
	expect_code 3 h2k-login -k -u "$SIM_URL" -U nosuchuser --password-file pw 2>err &&
	test_one_line err
'

test_expect_success 'session file 0600 and directory 0700 even with umask 000' '
	(umask 000 && h2k-login -k -u "$SIM_URL" -U "$SIM_USER" --password-file pw \
		-s um/deep/s.json >/dev/null) &&
	test "$(file_mode um/deep/s.json)" = 600 &&
	test "$(file_mode um/deep)" = 700 && test "$(file_mode um)" = 700
'

test_expect_code 3 'no session file: --status exits 3' '
	h2k-login -s none.json --status 2>err; rc=$?
	test_one_line err &&
	grep -q "not logged in: no session file none.json; run h2k-login" err && exit $rc
'

test_expect_success 'group-readable session file refused with exit 11' '
	cp -p "$S" grp.json && chmod 640 grp.json &&
	expect_code 11 h2k-login -s grp.json --status 2>err &&
	test_one_line err &&
	grep -q "session file grp.json is group-readable (mode 0640); chmod 600 it" err
'

test_expect_success 'world-readable session file refused with exit 11' '
	cp -p "$S" wr.json && chmod 604 wr.json &&
	expect_code 11 h2k-login -s wr.json --status 2>err &&
	grep -q "world-readable (mode 0604)" err
'

test_expect_success 'symlinked session file refused with exit 11' '
	ln -s "$S" link.json &&
	expect_code 11 h2k-login -s link.json --status 2>err &&
	test_one_line err && grep -q "link.json is a symbolic link" err
'

if [ "$(id -u)" = 0 ]; then
	test_expect_success 'session file owned by another uid refused with exit 11' '
		cp -p "$S" foreign.json && chown nobody foreign.json &&
		expect_code 11 h2k-login -s foreign.json --status 2>err &&
		test_one_line err && grep -q "foreign.json is owned by uid $(id -u nobody)" err
	'
else
	test_skip 'session file owned by another uid refused' 'needs root to chown'
fi

test_expect_success 'session file in a directory others can write is refused' '
	mkdir -p open && chmod 777 open && cp -p "$S" open/s.json &&
	expect_code 11 h2k-login -s open/s.json --status 2>err &&
	grep -q "writable by others (mode 0777)" err &&
	expect_code 11 h2k-login -k -u "$SIM_URL" -U "$SIM_USER" --password-file pw \
		-s open/new.json 2>err && test ! -e open/new.json
'

test_expect_success 'damaged session file: exit 3 with a clear message' '
	printf "{\"url\": " >bad.json && chmod 600 bad.json &&
	expect_code 3 h2k-login -s bad.json --status 2>err &&
	test_one_line err && grep -q "bad.json is not a JSON object" err
'

test_expect_success '--logout ends the server session and removes the file' '
	h2k-login -k -u "$SIM_URL" -U "$SIM_USER" --password-file pw -s lo.json >/dev/null &&
	cp -p lo.json lo-copy.json &&
	h2k-login -s lo-copy.json --status >/dev/null &&
	h2k-login -s lo.json --logout >out 2>err && test ! -s out && test ! -s err &&
	test ! -e lo.json &&
	expect_code 3 h2k-login -s lo-copy.json --status >st 2>err &&
	test "$(jfield st valid)" = false && grep -q "has expired or was ended" err
'

test_expect_success '--logout of a session the server already ended: exit 0, file gone' '
	h2k-login -s lo-copy.json --logout 2>err && test ! -e lo-copy.json
'

test_expect_code 3 '--logout without a session file exits 3' '
	h2k-login -s lo.json --logout
'

test_expect_success 'password never in /proc/PID/cmdline (stdin, file, env)' '
	mkfifo fifo &&
	{ h2k-login -k -u "$SIM_URL" -U "$SIM_USER" --password-stdin -s p1.json <fifo >/dev/null & } &&
	pid=$! && exec 7>fifo &&
	for i in $(seq 100); do
		tr "\0" " " </proc/$pid/cmdline >cmdline 2>/dev/null &&
			grep -q -- "--password-stdin" cmdline && break
		sleep 0.1
	done &&
	grep -q -- "--password-stdin" cmdline &&
	! grep -F "$SIM_PASSWORD" cmdline &&
	printf "%s\n" "$SIM_PASSWORD" >&7 && exec 7>&- && wait $pid && test -s p1.json &&
	h2k-login -k -u "$SIM_URL" -U "$SIM_USER" --password-file pw -s p2.json >/dev/null &&
	H2K_PASSWORD=$SIM_PASSWORD h2k-login -k -u "$SIM_URL" -U "$SIM_USER" -s p3.json >/dev/null &&
	test -s p2.json && test -s p3.json
'

test_expect_success 'password never on stderr at trace level, good or bad' '
	H2K_PASSWORD=$SIM_PASSWORD h2k-login -vvvv -k -u "$SIM_URL" -U "$SIM_USER" \
		-s t1.json >/dev/null 2>err1 &&
	grep -q "debug: " err1 &&
	! grep -F "$SIM_PASSWORD" err1 &&
	H2K_LOG_LEVEL=trace expect_code 3 h2k-login -k -u "$SIM_URL" -U "$SIM_USER" \
		--password-file badpw -s t2.json 2>err2 &&
	! grep -F "$SIM_PASSWORD" err2
'

test_expect_success 'a URL with a password in it is refused before contacting anyone' '
	n=$(requests) &&
	host=${SIM_URL#https://} &&
	expect_code 2 h2k-login -k -u "https://$SIM_USER:$SIM_PASSWORD@$host" -s up.json 2>err &&
	test_one_line err && grep -q "password in the server URL refused" err &&
	! grep -F "$SIM_PASSWORD" err &&
	test "$(requests)" = "$n" && test ! -e up.json
'

test_expect_success 'a new login ends the session it replaces on the same server' '
	h2k-login -k -u "$SIM_URL" -U "$SIM_USER" --password-file pw -s r.json >/dev/null &&
	cp -p r.json r-old.json && h2k-login -s r-old.json --status >/dev/null &&
	h2k-login -k -u "$SIM_URL" -U "$SIM_USER" --password-file pw -s r.json >/dev/null &&
	h2k-login -s r.json --status >/dev/null &&
	expect_code 3 h2k-login -s r-old.json --status >/dev/null 2>&1
'

test_expect_success 'the user may come in the URL' '
	host=${SIM_URL#https://} &&
	h2k-login -k -u "$SIM_USER@$host" --password-file pw -s uu.json >out &&
	test "$(jfield out user)" = "$SIM_USER"
'

test_expect_success 'URL forms as govc takes them: host:port, https://host:port' '
	h2k-login -k -u "$SIM_HOST" -U "$SIM_USER" --password-file pw -s f1.json >out &&
	test "$(jfield out url)" = "$SIM_URL" &&
	h2k-login -k -u "https://$SIM_HOST" -U "$SIM_USER" --password-file pw -s f2.json >out &&
	test "$(jfield out url)" = "$SIM_URL"
'

test_expect_success 'password sources: --password-stdin, --password-file -, <(...)' '
	printf "%s\n" "$SIM_PASSWORD" | h2k-login -k -u "$SIM_URL" -U "$SIM_USER" \
		--password-stdin -s s1.json >/dev/null &&
	printf "%s\n" "$SIM_PASSWORD" | h2k-login -k -u "$SIM_URL" -U "$SIM_USER" \
		--password-file - -s s2.json >/dev/null &&
	h2k-login -k -u "$SIM_URL" -U "$SIM_USER" \
		--password-file <(printf "%s\n" "$SIM_PASSWORD") -s s3.json >/dev/null &&
	test -s s1.json && test -s s2.json && test -s s3.json
'

test_expect_success 'group-readable password file refused with exit 11' '
	cp pw pw640 && chmod 640 pw640 &&
	expect_code 11 h2k-login -k -u "$SIM_URL" -U "$SIM_USER" --password-file pw640 \
		-s g.json 2>err &&
	test_one_line err && grep -q "password file pw640 is group-readable" err &&
	test ! -e g.json
'

test_expect_success 'no password and no terminal: exit 2 saying how, server not contacted' '
	n=$(requests) &&
	expect_code 2 setsid -w h2k-login -k -u "$SIM_URL" -U "$SIM_USER" -s np.json \
		</dev/null 2>err &&
	test_one_line err && test "$(requests)" = "$n" &&
	grep -q "no password: use --password-file, --password-stdin or H2K_PASSWORD" err
'

test_expect_success 'with a terminal: prompt, no echo, login works' '
	python3 - "$SIM_URL" "$SIM_USER" "$SIM_PASSWORD" >pty.out 2>&1 <<-\EOF
	import os, pty, sys, time, select
	url, user, pw = sys.argv[1:4]
	pid, fd = pty.fork()
	if pid == 0:
	    os.execvp("h2k-login", ["h2k-login", "-k", "-u", url, "-U", user, "-s", "tty.json"])
	buf = b""
	deadline = time.time() + 20
	sent = False
	while time.time() < deadline:
	    r, _, _ = select.select([fd], [], [], 0.2)
	    if r:
	        try:
	            d = os.read(fd, 1024)
	        except OSError:
	            break
	        if not d:
	            break
	        buf += d
	    if not sent and b"Password for " + user.encode() in buf:
	        time.sleep(0.2)
	        os.write(fd, pw.encode() + b"\n")
	        sent = True
	_, st = os.waitpid(pid, 0)
	sys.stdout.write(buf.decode(errors="replace"))
	sys.exit(0 if sent and os.WEXITSTATUS(st) == 0 else 1)
	EOF
	grep -q "Password for $SIM_USER@127.0.0.1" pty.out &&
	! grep -F "$SIM_PASSWORD" pty.out &&
	grep -q "\"session_file\":\"tty.json\"" pty.out && test -s tty.json
'

# On Linux the pty master reports the line discipline's flags, so the test
# can see echo go off while the prompt waits and come back after a signal.
test_expect_success 'prompt: echo off while asking, restored when interrupted' '
	python3 - "$SIM_URL" "$SIM_USER" >pty2.out 2>&1 <<-\EOF
	import os, pty, signal, sys, termios, time, select
	url, user = sys.argv[1:3]
	pid, fd = pty.fork()
	if pid == 0:
	    os.execvp("h2k-login", ["h2k-login", "-k", "-u", url, "-U", user, "-s", "int.json"])
	echo = lambda: bool(termios.tcgetattr(fd)[3] & termios.ECHO)
	before = echo()
	buf = b""
	deadline = time.time() + 20
	while time.time() < deadline and b"Password for" not in buf:
	    if select.select([fd], [], [], 0.2)[0]:
	        buf += os.read(fd, 1024)
	time.sleep(0.2)
	during = echo()
	os.kill(pid, signal.SIGINT)
	_, st = os.waitpid(pid, 0)
	after = echo()
	# Killed by SIGINT; under valgrind the wrapper reports it as an exit code.
	stopped = os.WIFSIGNALED(st) or os.WEXITSTATUS(st) != 0
	print("before", before, "during", during, "after", after, "stopped", stopped)
	sys.exit(0 if before and not during and after and stopped else 1)
	EOF
	grep -q "before True during False after True stopped True" pty2.out &&
	test ! -e int.json
'

test_expect_success '--password-stdin from a terminal reads without echo' '
	python3 - "$SIM_URL" "$SIM_USER" "$SIM_PASSWORD" >pty3.out 2>&1 <<-\EOF
	import os, pty, sys, termios, time, select
	url, user, pw = sys.argv[1:4]
	pid, fd = pty.fork()
	if pid == 0:
	    os.execvp("h2k-login", ["h2k-login", "-k", "-u", url, "-U", user,
	              "--password-stdin", "-s", "stdin-tty.json"])
	deadline = time.time() + 20
	while time.time() < deadline and termios.tcgetattr(fd)[3] & termios.ECHO:
	    time.sleep(0.05)
	os.write(fd, pw.encode() + b"\n")
	buf = b""
	while True:
	    if select.select([fd], [], [], 0.2)[0]:
	        try:
	            d = os.read(fd, 1024)
	        except OSError:
	            break
	        if not d:
	            break
	        buf += d
	    elif os.waitpid(pid, os.WNOHANG)[0]:
	        break
	sys.stdout.write(buf.decode(errors="replace"))
	EOF
	! grep -F "$SIM_PASSWORD" pty3.out && test -s stdin-tty.json
'

test_expect_success 'long options: --url --user --session --insecure --quiet' '
	h2k-login --insecure --url="$SIM_URL" --user "$SIM_USER" --password-file pw \
		--session=long.json --quiet >out 2>err &&
	test ! -s err && test "$(jfield out session_file)" = long.json &&
	h2k-login --session long.json --status >/dev/null
'

test_expect_success 'usage errors exit 2 with the synopsis' '
	expect_code 2 h2k-login -x 2>err && grep -q "^usage: h2k-login" err &&
	expect_code 2 h2k-login extra 2>err && grep -q "^usage: h2k-login" err &&
	expect_code 2 h2k-login --status -u "$SIM_URL" 2>err &&
	expect_code 2 h2k-login --status --logout 2>err &&
	expect_code 2 h2k-login -u "$SIM_URL" --password-file pw --password-stdin 2>err &&
	test_one_line err
'

test_expect_success 'no URL or no user: exit 2 naming the sources' '
	expect_code 2 h2k-login --password-file pw 2>err && test_one_line err &&
	grep -q "no server URL: use -u, H2K_URL, GOVC_URL or VCenterURL" err &&
	expect_code 2 h2k-login -k -u "$SIM_URL" --password-file pw 2>err &&
	grep -q "no user name" err
'

test_done
