#!/usr/bin/env bash
# h2k-login -s PATH where PATH is not a regular file (a device, a FIFO, a
# directory): refused, exit 11, the thing left as it was.  Found by attack:
# `h2k-login -s /dev/null` run as root renamed the new session over
# /dev/null, which became a regular 0600 file holding the session cookie
# (and --logout unlinked it).  Here a FIFO and (as root) a character device
# made in the test's own directory stand in for /dev/null.
. "$(dirname "$0")/../lib.sh"

sim_start -vm 1 -disks 0 -power off

pwfile() { printf '%s\n' "$SIM_PASSWORD" >pw && chmod 600 pw; }
login() { timeout -s KILL 30 h2k-login -k -u "$SIM_URL" -U "$SIM_USER" --password-file pw "$@" </dev/null; }

test_expect_success 'a FIFO as the session file: refused, exit 11, still a FIFO' '
	pwfile && mkdir -m 700 s && mkfifo -m 600 s/fifo &&
	expect_code 11 login -s s/fifo >out 2>err &&
	test ! -s out && test_one_line err &&
	grep -q "s/fifo" err && grep -q "not a regular file" err &&
	test -p s/fifo
'

test_expect_success 'h2k-login --logout -s FIFO: refused, exit 11, still there' '
	expect_code 11 h2k-login --logout -s s/fifo </dev/null >out 2>err &&
	test_one_line err && grep -q "not a regular file" err &&
	test -p s/fifo
'

test_expect_success 'a directory as the session file: refused, exit 11' '
	mkdir -m 700 s/dir &&
	expect_code 11 login -s s/dir >out 2>err &&
	test_one_line err && grep -q "not a regular file" err &&
	test -d s/dir
'

if [ "$(id -u)" = 0 ] && mknod -m 666 s/null c 1 3 2>/dev/null; then
	test_expect_success 'a character device (a /dev/null of our own): refused, exit 11' '
		expect_code 11 login -s s/null >out 2>err &&
		test_one_line err && grep -q "not a regular file" err &&
		test -c s/null
	'
else
	test_skip 'a character device as the session file' 'needs root and mknod'
fi

test_expect_success 'a regular session file is still written and replaced' '
	login -s s/ok.json >out &&
	test -f s/ok.json && test "$(file_mode s/ok.json)" = 600 &&
	login -s s/ok.json >out && test -f s/ok.json
'

test_done
