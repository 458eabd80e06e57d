#!/usr/bin/env bash
# Attacks on the trust-file rule (issue 10 items 8-10) that its own tests
# did not try: a symlink on the way to a config or CA file is followed
# only when nobody but the user or root could have made it point
# elsewhere (the link's directories, its owner, and the target's
# directories are all checked); a session written by login loads again
# whatever the CA file held; a password pipe made by someone else is
# refused, and one that never ends a line does not hang login.
. "$(dirname "$0")/../lib.sh"

sim_start -trace -password "Tr-u5t-Pw2"

logins() { grep -c '<Login' "$TRASH/sim.log" || :; }
printf '%s\n' "$SIM_PASSWORD" >pw && chmod 600 pw
evil() { printf 'VCenterURL: %s\nUsername: %s\nInsecure: true\n' \
	"$SIM_URL" "$SIM_USER" >"$1" && chmod "${2:-644}" "$1"; }
cfglogin() { h2k-login --password-file pw -s "$@"; }
login() { h2k-login -u "$SIM_URL" -U "$SIM_USER" --password-file pw "$@"; }
refused() {
	test_one_line err && grep -qF "$1" err && grep -qE "$2" err &&
	test "$(logins)" = "$n"
}
mkdir -m 755 safe cadir && evil safe/c.yaml 644 &&
cp "$SIM_CERT" cadir/ca.pem && chmod 644 cadir/ca.pem || exit 1
mkdir open && chmod 777 open || exit 1

# Before: realpath() resolved the link, and only the target's directories
# were checked, so whoever can write open/ chose which config was read.
test_expect_success 'a directory symlink in a world-writable directory: config refused (exit 11)' '
	ln -s "$TRASH/safe" open/dlink && n=$(logins) &&
	expect_code 11 cfglogin s1.json -c open/dlink/c.yaml 2>err &&
	refused "config file open/dlink/c.yaml" "directory $TRASH/open is world-writable" &&
	test ! -e s1.json
'

test_expect_success 'a CA file symlink in a world-writable directory: refused at login (exit 11), as by h2k-fetch' '
	ln -s "$TRASH/cadir/ca.pem" open/ca.pem && n=$(logins) &&
	expect_code 11 login --ca-file open/ca.pem -s s2.json 2>err &&
	refused "CA file $TRASH/open/ca.pem" "directory $TRASH/open is world-writable" &&
	test ! -e s2.json &&
	expect_code 11 h2k-fetch -o fo --ca-file open/ca.pem --progress none </dev/null 2>err &&
	test_one_line err && grep -q "directory $TRASH/open is world-writable" err
'

test_expect_success 'a CA file symlink in a safe directory: login and h2k-fetch both take it' '
	ln -s ca.pem cadir/link.pem &&
	login --ca-file cadir/link.pem -s s3.json >out &&
	test "$(jfield out ca_file)" = "$TRASH/cadir/ca.pem" &&
	h2k-ls -s s3.json >vms && test -s vms &&
	h2k-fetch -o fo --ca-file cadir/link.pem --progress none </dev/null >fout &&
	test ! -s fout
'

test_expect_success 'a user config that is a symlink (dotfile manager) is used' '
	mkdir -p "$XDG_CONFIG_HOME/h2k" && ln -s "$TRASH/safe/c.yaml" "$XDG_CONFIG_HOME/h2k/config.yaml" &&
	cfglogin s4.json >out && test "$(jfield out insecure)" = true
'
rm -f "$XDG_CONFIG_HOME/h2k/config.yaml"

if [ "$(id -u)" = 0 ]; then
	test_expect_success 'a config symlink owned by another user in a sticky directory: refused (exit 11)' '
		mkdir sticky && chmod 1777 sticky && ln -s "$TRASH/safe/c.yaml" sticky/c.yaml &&
		chown -h 65534 sticky/c.yaml && n=$(logins) &&
		expect_code 11 cfglogin s5.json -c sticky/c.yaml 2>err &&
		refused "config file sticky/c.yaml" "symbolic link $TRASH/sticky/c.yaml is owned by uid 65534"
	'
else
	test_skip 'a config symlink owned by another user in a sticky directory: refused (exit 11)' 'needs root'
fi

# Before: a CA file of 1 MiB (the limit) with control bytes outside the PEM
# block made a 6 MB session that every later command refused with exit 11.
test_expect_success 'a session login wrote from a 1 MiB CA file loads again' '
	python3 -c "import sys
pem = open(sys.argv[1], \"rb\").read()
sys.stdout.buffer.write(pem + b\"\\x01\" * ((1 << 20) - len(pem)))" "$SIM_CERT" >cadir/big.pem &&
	chmod 644 cadir/big.pem && test "$(wc -c <cadir/big.pem)" = 1048576 &&
	login --ca-file cadir/big.pem -s s6.json >/dev/null &&
	h2k-ls -s s6.json >vms6 && test_cmp vms vms6
'

if [ "$(id -u)" = 0 ]; then
	# mkfifo in /tmp failed because theirs was there: whoever made it can
	# read what is written into it.
	test_expect_success 'a password FIFO owned by another user: refused (exit 11), no Login' '
		mkfifo theirs.fifo && chmod 666 theirs.fifo && chown 65534 theirs.fifo &&
		{ printf "%s\n" "$SIM_PASSWORD" >theirs.fifo & } && n=$(logins) &&
		expect_code 11 h2k-login -k -u "$SIM_URL" -U "$SIM_USER" \
			--password-file theirs.fifo -s s7.json 2>err &&
		refused "password file theirs.fifo" "named pipe owned by uid 65534" &&
		test ! -e s7.json && wait
	'
else
	test_skip 'a password FIFO owned by another user: refused (exit 11), no Login' 'needs root'
fi

test_expect_success 'control: the user own FIFO still works' '
	mkfifo mine.fifo && { printf "%s\n" "$SIM_PASSWORD" >mine.fifo & } &&
	h2k-login -k -u "$SIM_URL" -U "$SIM_USER" --password-file mine.fifo -s s8.json >/dev/null &&
	test -s s8.json && wait
'

# Before: the over-long line was drained to its end, which never comes.
test_expect_success 'a password pipe that never ends its line: exit 2 at once, no hang, no Login' '
	n=$(logins) &&
	expect_code 2 timeout 20 h2k-login -k -u "$SIM_URL" -U "$SIM_USER" \
		--password-file /dev/fd/3 -s s9.json 3</dev/zero 2>err &&
	refused "password file /dev/fd/3" "longer than 4095 bytes|holds a NUL byte" && test ! -e s9.json &&
	n=$(logins) &&
	expect_code 2 timeout 20 h2k-login -k -u "$SIM_URL" -U "$SIM_USER" \
		--password-stdin -s s9.json </dev/zero 2>err &&
	refused "standard input" "longer than 4095 bytes|holds a NUL byte"
'

# --- the session file's directory ---------------------------------------------
# Before: h2k_session_check_dir stat()ed the directory by name (through any
# symlink) and the file was then opened, written and renamed by name again.
# Whoever can re-point a symlink on the way chose which session file every
# command used and where login put the new one.
mkdir -m 700 sdir sdir2 || exit 1

test_expect_success 'session directory reached through a symlink in a world-writable directory: refused (exit 11)' '
	ln -s "$TRASH/sdir" open/slink && n=$(logins) &&
	expect_code 11 login -k -s open/slink/s.json 2>err &&
	refused "session file open/slink/s.json" "symbolic link $TRASH/open/slink is in a directory others can write" &&
	test ! -e sdir/s.json
'

if [ "$(id -u)" = 0 ]; then
	test_expect_success 'session directory through a symlink another user owns in a sticky directory: refused (exit 11)' '
		mkdir -p sticky && chmod 1777 sticky && login -k -s sdir2/s.json >/dev/null &&
		ln -s "$TRASH/sdir2" sticky/theirs && chown -h 65534 sticky/theirs &&
		expect_code 11 h2k-ls -s sticky/theirs/s.json >out 2>err && test ! -s out &&
		test_one_line err && grep -q "symbolic link $TRASH/sticky/theirs is owned by uid 65534" err
	'

	test_expect_success 'session directory below a directory another user owns: refused (exit 11)' '
		mkdir -m 755 theirs && mkdir -m 700 theirs/mine && chown 65534 theirs &&
		n=$(logins) && expect_code 11 login -k -s theirs/mine/s.json 2>err &&
		refused "session file theirs/mine/s.json" "directory $TRASH/theirs is owned by uid 65534" &&
		test ! -e theirs/mine/s.json
	'
else
	test_skip 'session directory through a symlink another user owns in a sticky directory: refused (exit 11)' 'needs root'
	test_skip 'session directory below a directory another user owns: refused (exit 11)' 'needs root'
fi

test_expect_success 'control: a session directory reached through the user own symlink in a safe directory works' '
	ln -s "$TRASH/sdir" mylink && login -k -s mylink/s.json >/dev/null &&
	test -s sdir/s.json && h2k-ls -s mylink/s.json >vms10 && test_cmp vms vms10 &&
	test "$(file_mode sdir/s.json)" = 600
'

# Before: a session from before ca_pem re-read its CA file even when -k or
# a pin made it irrelevant, so a stale ca_file broke a working session
# (and the t0790 sweep seed session-insecure.json).
legacy() { # SESSION CAFILE [insecure|pin]
	python3 -c "import json,sys; s=json.load(open(sys.argv[1])); s.pop(\"ca_pem\", None)
s[\"ca_file\"]=sys.argv[2]
open(sys.argv[1],\"w\").write(json.dumps(s))" "$1" "$2"; }
test_expect_success 'legacy session, -k, its CA file gone: still works' '
	login -k -s l1.json >/dev/null && legacy l1.json "$TRASH/gone.pem" &&
	h2k-ls -s l1.json >vms11 && test_cmp vms vms11
'
test_expect_success 'legacy session, pinned, its CA file gone: still works' '
	login --thumbprint "$SIM_THUMBPRINT" -s l2.json >/dev/null &&
	legacy l2.json "$TRASH/gone.pem" && h2k-ls -s l2.json >vms12 && test_cmp vms vms12
'
test_expect_success 'legacy session verified by its CA file, now world-writable: still refused (exit 11)' '
	login --ca-file cadir/ca.pem -s l3.json >/dev/null && cp cadir/ca.pem cadir/l3.pem &&
	legacy l3.json "$TRASH/cadir/l3.pem" && h2k-ls -s l3.json >/dev/null &&
	chmod 666 cadir/l3.pem && expect_code 11 h2k-ls -s l3.json >out 2>err &&
	test ! -s out && test_one_line err && grep -q "CA file $TRASH/cadir/l3.pem is world-writable" err
'

# Before: "-" and /dev/stdin were read with echo off, /dev/fd/0 with echo on.
test_expect_success '--password-file /dev/fd/0 on a terminal: typed without echo' '
	python3 - "$SIM_URL" "$SIM_USER" "$SIM_PASSWORD" >pty.out 2>&1 <<-\EOF
	import os, pty, sys, termios, time, select
	url, user, pw = sys.argv[1:4]
	pid, fd = pty.fork()
	if pid == 0:
	    os.execvp("h2k-login", ["h2k-login", "-k", "-u", url, "-U", user,
	              "--password-file", "/dev/fd/0", "-s", "fd0.json"])
	buf = b""
	start = time.time()
	sent = False
	while time.time() < start + 20:
	    r, _, _ = select.select([fd], [], [], 0.1)
	    if r:
	        try:
	            d = os.read(fd, 1024)
	        except OSError:
	            break
	        if not d:
	            break
	        buf += d
	    # echo going off says it is reading; without that, type after 3 s
	    quiet = not (termios.tcgetattr(fd)[3] & termios.ECHO)
	    if not sent and (quiet or time.time() > start + 3):
	        os.write(fd, pw.encode() + b"\n")
	        sent = True
	_, st = os.waitpid(pid, 0)
	sys.stdout.write(buf.decode(errors="replace"))
	sys.exit(0 if sent and os.WEXITSTATUS(st) == 0 else 1)
	EOF
	! grep -F "$SIM_PASSWORD" pty.out && test -s fd0.json
'

test_done
