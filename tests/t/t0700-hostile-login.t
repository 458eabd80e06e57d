#!/usr/bin/env bash
# h2k-login against a hostile server (tests/servers/soapd.py) while it is
# sending the password: DOCTYPE with external entities (file and http),
# billion laughs, 10,000-deep nesting, a 50 MB body, garbage, faults.
# Each case: the exit code, one line on stderr, no session file (nor a
# temporary one), the password and the server's cookie nowhere in the
# output, nothing of /etc/passwd anywhere, no fetch of the external entity.
. "$(dirname "$0")/../lib.sh"

. "$TESTS_DIR/servers/soapd-lib.sh"
PW='Pa55-canary-7f3e9b'
SOAPD_PASSWORD=$PW
COOKIE=52f1c0de-5a1e-4bad-a11e-000000000001
SESS=$XDG_STATE_HOME/h2k/session.json
printf '%s\n' "$PW" >pw && chmod 600 pw
# Expanded, the entities would take minutes and gigabytes; refused, moments
# (valgrind makes the moments long).
laughs_limit=10
[ -n "${H2K_VALGRIND:-}" ] && laughs_limit=60
passwd_line=$(head -1 /etc/passwd)

login() {
	h2k-login -u "$SOAPD_URL" -U user --password-file pw --thumbprint "$SOAPD_THUMBPRINT" "$@"
}

# clean: nothing secret or stolen anywhere, no session left behind.
clean() {
	local f
	for f in out err "$TRASH/soapd.out"; do
		if grep -qF -e "$PW" -e "$COOKIE" -e "$passwd_line" "$f"; then
			echo "secret or stolen data in $f:"; cat "$f"; return 1
		fi
	done
	[ ! -e "$SESS" ] || { echo "session file written"; return 1; }
	if [ -d "$(dirname "$SESS")" ] && ls -A "$(dirname "$SESS")" | grep -q .; then
		echo "left in the session folder:"; ls -la "$(dirname "$SESS")"; return 1
	fi
	if grep -q '"EVIL"' "$TRASH/soapd.log"; then echo "external entity fetched"; return 1; fi
}

# hostile MODE WHY: the Login answer is MODE; exit 9 naming WHY.
hostile() {
	soapd_start --mode "$1" --at Login || return 1
	expect_code 9 login >out 2>err &&
	test_one_line err && grep -q "^h2k-login: " err &&
	grep -Eq "$2" err &&
	grep -q '"method": "Login"' "$TRASH/soapd.log" &&
	test_line_count = 0 out && clean
}

test_expect_success 'control: the same server logs in, session 0600 without the password' '
	soapd_start &&
	H2K_LOG_LEVEL=trace login -v >out 2>err &&
	test "$(file_mode "$SESS")" = 600 &&
	! grep -qF "$PW" "$SESS" && ! grep -qF -e "$PW" -e "$COOKIE" out err &&
	grep -qF "$COOKIE" "$SESS" &&
	rm -f "$SESS"
'
test_expect_success 'Login answered with DOCTYPE + file:// entity: refused, file never read' '
	hostile doctype-file "DOCTYPE|DTD|entit"
'
test_expect_success 'Login answered with DOCTYPE + http:// entity: refused, never fetched' '
	hostile doctype-http "DOCTYPE|DTD|entit"
'
test_expect_success 'Login answered with billion laughs: refused at once' '
	start=$(date +%s) && hostile laughs "DOCTYPE|DTD|entit" &&
	took=$(( $(date +%s) - start )) && echo "took $took s" &&
	test $took -lt $laughs_limit
'
test_expect_success 'Login answered 10,000 deep: refused' '
	hostile deep "deep|depth|nest"
'
test_expect_success 'Login answered with a 50 MB body: refused' '
	hostile big "large|big|bytes|size|limit"
'
test_expect_success 'Login answered with garbage: a protocol error' '
	hostile garbage "XML|malformed"
'
test_expect_success 'InvalidLogin: exit 3, says the login was refused, no session' '
	soapd_start --mode fault:InvalidLogin --at Login &&
	expect_code 3 login >out 2>err && test_one_line err &&
	grep -qi "login" err && clean
'
test_expect_success 'NoPermission on Login: exit 9 with the fault type, no session' '
	soapd_start --mode fault:NoPermission --at Login &&
	expect_code 9 login >out 2>err && test_one_line err &&
	grep -q "NoPermission" err && clean
'
test_expect_success 'hostile ServiceContent: refused before the password is sent' '
	soapd_start --mode doctype-file --at RetrieveServiceContent &&
	expect_code 9 login >out 2>err && test_one_line err && clean &&
	! grep -q '"'"'"password_sent": true'"'"' "$TRASH/soapd.log"
'
test_expect_success 'certificate changes after the first connection: exit 4 before the password goes out' '
	soapd_start --cert-change &&
	expect_code 4 login >out 2>err && test_one_line err &&
	grep -q "^h2k-login: " err && clean &&
	grep -q "RetrieveServiceContent" "$TRASH/soapd.log" &&
	! grep -q "\"password_sent\": true" "$TRASH/soapd.log"
'
test_done
