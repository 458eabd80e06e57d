#!/usr/bin/env bash
# Attacks on h2k-fetch's cookie policy (issue 10 item 19) by host spelling:
# a URL that names the session's host in another case is the session's
# host (the cookie goes there), so it must also be held to the session's
# pin, not to weaker trust.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/servers/nfcd-lib.sh"

nfcd_start
mkdisk d1 100000
PORT=${NFCD_URL#https://127.0.0.1:}; PORT=${PORT%%/*}
TP=$(openssl x509 -in "$NFCD_CERT" -noout -fingerprint -sha256 | sed 's/.*=//')

mkdir -p -m 700 sess
# The session is on localhost:PORT (nfcd plays the vCenter), pinned to its
# certificate; no CA file, so only the pin can make nfcd trusted.
(umask 077 && printf '{"url":"https://localhost:%s/sdk","cookie":"c0ffee","thumbprint":"%s","insecure":false,"ca_file":null,"user":"u","created_at":"2026-01-01T00:00:00Z"}\n' \
	"$PORT" "$TP" >sess/s.json)

cookie_sent() {
	requests "$1" >req && test -s req &&
	! grep -v "\"cookie\": $2" req
}

test_expect_success 'control: the session host gets the cookie under the session pin' '
	lease_line vm0 "https://localhost:$PORT/f/cookie=1,times=0/d1" >in &&
	h2k-fetch -s sess/s.json -o out <in >actual 2>err &&
	cmp out/vm0/disk-0.vmdk srv/d1 &&
	cookie_sent "/f/cookie=1,times=0/d1" true
'

test_expect_success 'the session host in upper case: cookie sent and the session pin holds' '
	lease_line vm1 "https://LOCALHOST:$PORT/f/cookie=1,times=0/d1" >in &&
	h2k-fetch -s sess/s.json -o out <in >actual 2>err &&
	cmp out/vm1/disk-0.vmdk srv/d1 &&
	cookie_sent "/f/cookie=1,times=0/d1" true
'

test_done
