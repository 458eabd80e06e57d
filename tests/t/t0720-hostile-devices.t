#!/usr/bin/env bash
# Hostile device URLs and NFC servers against h2k-fetch, seen from the
# outside: for each case the exit code, one line on stderr, no file read
# or written outside the output folder, no final-named file that differs
# from the source.  Redirects off https (to http:// or file://), target
# ids that try to escape (../../etc/cron.d/x, absolute, control
# characters), a plain http URL without --allow-http, and a lease of the
# rig that turns to error during the download.  (Cuts, resets, 200 to a
# range request, bad Content-Range, ETag changes, stalls and 503 +
# Retry-After are t0401's; the trials repeat the cut at random offsets.)
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/servers/nfcd-lib.sh"

nfcd_start
mkdisk d1 300000
passwd_line=$(head -1 /etc/passwd)
F="h2k-fetch --ca-file $NFCD_CERT --retry-delay 0.05 --retries 2 --progress none"

# outside_untouched: nothing new below $TRASH except in the output folders
# and the servers' (the test's own scratch files sit at its top level), no
# file named x near it, nothing in /etc/cron.d or / named x.
outside_untouched() {
	local s
	s=$(cd "$TRASH" && find . -mindepth 2 \( -path "./out/*" -o -path "./exp/*" -o \
		-path "./srv/*" -o -path "./home/*" -o -path "./bin/*" \) -prune -o \
		-newer "$TRASH/.mark" -print)
	s="$s$(find "$(dirname "$TRASH")" -maxdepth 4 -name x -newer "$TRASH/.mark" 2>/dev/null)"
	[ -z "$s" ] || { echo "written outside the output folder: $s"; return 1; }
	[ ! -e /etc/cron.d/x ] && [ ! -e /x ] || { echo "escaped to /etc/cron.d/x or /x"; return 1; }
}
# finals_ok DIR SRC: every final-named file under DIR equals SRC
finals_ok() {
	local f
	for f in $(find "$1" -type f ! -name "*.part" ! -name "*.meta" ! -name ".h2k-*" 2>/dev/null); do
		cmp -s "$f" "$2" || { echo "$f is final-named but differs from the source"; return 1; }
	done
}
touch "$TRASH/.mark"

for r in http file; do
	test_expect_success "302 to $r:// is not followed: exit 9, one line, nothing written" '
		lease_line vm-'$r' "$NFCD_URL/redirect='$r',times=0/d1" | $F -o out >json 2>err
		rc=$?
		test $rc = 9 || { echo "exit $rc"; cat err; false; } &&
		test_one_line err && grep -q "vm-'$r'" err &&
		test_line_count = 0 json &&
		! grep -rqF "$passwd_line" out 2>/dev/null &&
		finals_ok out/vm-'$r' srv/d1 && test ! -e out/vm-'$r'/disk-0.vmdk &&
		requests "redirect='$r'" >log && test_line_count -ge 1 log &&
		! grep -q "\"path\": \"/f/-/d1\"" srv/requests.log &&
		outside_untouched
	'
done

test_expect_success 'target ids that try to escape stay inside the VM folder' '
	printf "{\"name\":\"esc\",\"devices\":[%s,%s,%s]}\n" \
		"{\"key\":\"a\",\"target_id\":\"../../etc/cron.d/x\",\"disk\":true,\"url\":\"$NFCD_URL/-/d1\"}" \
		"{\"key\":\"b\",\"target_id\":\"/etc/cron.d/x\",\"disk\":true,\"url\":\"$NFCD_URL/-/d1\"}" \
		"{\"key\":\"c\",\"target_id\":\"x\\u001b[2J\\nroot::0:0\",\"disk\":true,\"url\":\"$NFCD_URL/-/d1\"}" |
		$F -o out >json 2>err &&
	test_line_count = 0 err &&
	find out/esc -type f ! -name ".h2k-*" >files && test_line_count = 3 files &&
	find out -newer "$TRASH/.mark" -path "*x*" ! -path "out/esc/*" >bad && test_line_count = 0 bad &&
	! grep -q "$(printf "\\033")" files &&
	finals_ok out/esc srv/d1 && outside_untouched
'
test_expect_success 'a VM name that tries to escape gets a folder inside -o' '
	lease_line "../../../x" "$NFCD_URL/-/d1" | $F -o out >json 2>err &&
	find out -type f ! -name ".h2k-*" -newer "$TRASH/.mark" | grep -v "^out/[^/]*/[^/]*$" >bad; test_line_count = 0 bad &&
	ls -d out/*x* >dirs && test_line_count = 1 dirs && ! grep -q "^out/.*/" dirs &&
	outside_untouched
'
test_expect_success 'http:// device URL without --allow-http: refused, never requested' '
	lease_line plain "http://127.0.0.1:$NFCD_PORT/f/-/d1" | expect_code 2 $F -o out >json 2>err &&
	test_one_line err && grep -qi "http" err && test ! -e out/plain/disk-0.vmdk &&
	! grep -q "\"path\": \"/f/-/d1\".*plain" srv/requests.log
'
nfcd_stop

# A lease of the rig that turns to error during the download: the rig
# times it out because h2k-fetch was told to renew it too rarely.
sim_start -disks 1 -disk-size 6M -nfc-bps 1500000 -lease-timeout 2 -power off -vm 1 -host 1 -cluster 0
h2k_login_sim --thumbprint "$SIM_THUMBPRINT"
test_expect_success 'lease in error mid-download: exit 7, one line with the server message, .part kept, no final file' '
	h2k-ls --name DC0_H0_VM0 | h2k-lease >lease.json &&
	h2k-fetch -o exp --progress none --keepalive 30 <lease.json >json 2>err
	rc=$?
	cat err
	test $rc = 7 && test_line_count = 0 json && test_one_line err &&
	grep -q "^h2k-fetch: DC0_H0_VM0: lease .* is in error: .*received no progress" err &&
	ls exp/DC0_H0_VM0/*.part >parts && test_line_count -ge 1 parts &&
	! ls exp/DC0_H0_VM0/*.vmdk 2>/dev/null
'
if [ -n "${H2K_VALGRIND:-}" ]; then
	test_skip 'rerun on a new lease' 'the rig'"'"'s 2 s lease timeout is shorter than a start under valgrind'
else
test_expect_success 'a rerun on a new lease resumes nothing foreign and ends identical' '
	h2k-ls --name DC0_H0_VM0 | h2k-lease >lease2.json &&
	h2k-fetch -o exp --progress none <lease2.json >fetched.json &&
	for f in exp/DC0_H0_VM0/*.vmdk; do
		ls "$SIM_DSDIR"/*/DC0_H0_VM0/*.vmdk | while read -r s; do cmp -s "$s" "$f" && echo y; done | grep -q y || exit 1
	done &&
	! ls exp/DC0_H0_VM0/*.part 2>/dev/null
'
fi
test_done
