#!/usr/bin/env bash
# h2k-login TLS: verification by default, pins (SHA-256 and SHA-1) checked
# before any credential is sent, --ca-file, -k, and the pin enforced later.
. "$(dirname "$0")/../lib.sh"

sim_start -trace -password "Zq7-h2k-S3cret"

# SOAP requests the rig has received so far (it logs each with -trace).
requests() { grep -c '^Request:' "$TRASH/sim.log" || :; }
logins() { grep -c '<Login' "$TRASH/sim.log" || :; }

printf '%s\n' "$SIM_PASSWORD" >pw && chmod 600 pw
login() { h2k-login -u "$SIM_URL" -U "$SIM_USER" --password-file pw "$@"; }
# A pin that is well-formed but not the rig's: the real one with its last byte flipped.
last=${SIM_THUMBPRINT##*:}
if [ "$last" = 00 ]; then WRONG=${SIM_THUMBPRINT%:*}:01; else WRONG=${SIM_THUMBPRINT%:*}:00; fi

test_expect_success 'default verification rejects the self-signed cert: exit 4, thumbprint shown' '
	expect_code 4 login -s d.json >out 2>err &&
	test_one_line err && test ! -s out &&
	grep -qF "$SIM_THUMBPRINT" err &&
	grep -q -- "--thumbprint" err && grep -q -- "-k" err &&
	test ! -e d.json
'

test_expect_success 'the rig logs requests (control for the pin test below)' '
	n=$(logins) &&
	login -k -s ctl.json >/dev/null &&
	test "$(logins)" -gt "$n"
'

test_expect_success 'wrong pin: exit 4 before any request, so before the password' '
	n=$(requests) &&
	expect_code 4 login --thumbprint "$WRONG" -s w.json >out 2>err &&
	test_one_line err &&
	grep -q "does not match the pinned thumbprint" err &&
	grep -qF "$SIM_THUMBPRINT" err &&
	test "$(requests)" = "$n" && test ! -e w.json
'

test_expect_success 'wrong pin: the password is not even read' '
	mkfifo pwfifo &&
	expect_code 4 timeout 20 h2k-login -u "$SIM_URL" -U "$SIM_USER" \
		--password-file pwfifo --thumbprint "$WRONG" -s w2.json 2>err &&
	grep -q "does not match" err
'

test_expect_success 'wrong pin with -k still refused (the pin wins over -k)' '
	n=$(requests) &&
	expect_code 4 login -k --thumbprint "$WRONG" -s w3.json 2>err &&
	test "$(requests)" = "$n"
'

test_expect_success 'SHA-256 pin works and is stored in the session file' '
	login --thumbprint "$SIM_THUMBPRINT" -s p.json >out &&
	test "$(jfield out thumbprint)" = "$SIM_THUMBPRINT" &&
	test "$(jfield out insecure)" = false &&
	test "$(jfield p.json thumbprint)" = "$SIM_THUMBPRINT" &&
	h2k-login -s p.json --status >/dev/null
'

test_expect_success 'SHA-1 pin works' '
	login --thumbprint "$SIM_THUMBPRINT_SHA1" -s p1.json >out &&
	test "$(jfield out thumbprint)" = "$SIM_THUMBPRINT_SHA1" &&
	h2k-login -s p1.json --status >/dev/null
'

test_expect_success 'pin accepted in lower case without colons' '
	pin=$(printf %s "$SIM_THUMBPRINT" | tr -d : | tr A-F a-f) &&
	login --thumbprint "$pin" -s p2.json >out &&
	test "$(jfield out thumbprint)" = "$SIM_THUMBPRINT"
'

test_expect_success 'the stored pin is enforced by later use of the session' '
	python3 -c "import json,sys
p=sys.argv[1]; o=json.load(open(p)); o[\"thumbprint\"]=sys.argv[2]
open(p,\"w\").write(json.dumps(o))" p.json "$WRONG" &&
	n=$(requests) &&
	expect_code 4 h2k-login -s p.json --status 2>err &&
	grep -q "does not match the pinned thumbprint" err &&
	test "$(requests)" = "$n"
'

test_expect_success 'a malformed pin is a usage error' '
	expect_code 2 login --thumbprint "AB:CD" -s m.json 2>err &&
	test_one_line err && grep -q "bad thumbprint" err
'

test_expect_success '--ca-file with the rig certificate verifies; path stored absolute' '
	cp "$SIM_CERT" ca.pem &&
	login --ca-file ca.pem -s ca.json >out &&
	test "$(jfield out ca_file)" = "$TRASH/ca.pem" &&
	test "$(jfield out insecure)" = false && test "$(jfield out thumbprint)" = null &&
	h2k-login -s ca.json --status >/dev/null
'

if command -v openssl >/dev/null 2>&1; then
	test_expect_success '--ca-file with some other CA fails with exit 4' '
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-keyout other.key -out other.pem -subj /CN=other -days 1 2>/dev/null &&
		expect_code 4 login --ca-file other.pem -s ca2.json 2>err && test_one_line err &&
		test ! -e ca2.json
	'
else
	test_skip '--ca-file with some other CA fails with exit 4' 'no openssl command'
fi

test_expect_success 'a missing --ca-file is a usage error' '
	expect_code 2 login --ca-file nope.pem -s ca3.json 2>err &&
	grep -q "CA file nope.pem" err
'

test_expect_success '-k skips verification; insecure stored and used later' '
	login -k -s k.json >out &&
	test "$(jfield out insecure)" = true && test "$(jfield k.json insecure)" = true &&
	h2k-login -s k.json --status >/dev/null
'

test_expect_success 'TLS settings from the environment: H2K_THUMBPRINT, H2K_CA_FILE, GOVC_INSECURE' '
	H2K_THUMBPRINT=$SIM_THUMBPRINT login -s e1.json >out &&
	test "$(jfield out thumbprint)" = "$SIM_THUMBPRINT" &&
	H2K_CA_FILE=$SIM_CERT login -s e2.json >/dev/null &&
	GOVC_INSECURE=1 login -s e3.json >out && test "$(jfield out insecure)" = true &&
	H2K_INSECURE=0 GOVC_INSECURE=1 expect_code 4 login -s e4.json 2>err
'

test_expect_success 'plain http is refused' '
	expect_code 2 login -u "http://$SIM_HOST/sdk" -s h.json 2>err &&
	test_one_line err && grep -q "https" err
'

test_done
