#!/usr/bin/env bash
# Attack on h2k-fetch's cookie policy (issue 10 item 19) through the TLS
# pin: the URL may be one the cookie may go to (the session's host, or a
# device URL the server lists for the lease), but the input line also
# carries "ssl_thumbprint", and a pin replaces certificate verification.
# A line written by someone else must not choose the certificate the
# session cookie is sent under: for a download that carries the cookie the
# pin is the session's (session host) or the one the server lists for the
# device, read over the session, never the line's.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/servers/nfcd-lib.sh"
. "$TESTS_DIR/servers/soapd-lib.sh"

nfcd_start
mkdisk d1 100000
PORT=${NFCD_URL#https://127.0.0.1:}; PORT=${PORT%%/*}
# nfcd plays an impostor with its own certificate; FAKE is the thumbprint
# of the real server's certificate, which the impostor does not have.
TPN=$(openssl x509 -in "$NFCD_CERT" -noout -fingerprint -sha256 | sed 's/.*=//')
FAKE=$(printf real-vcenter | sha256sum | sed 's/ .*//; s/../&:/g; s/:$//' | tr a-f A-F)
mkdir -p -m 700 sess

# line VM LEASE URL TP: an h2k-lease line; LEASE or TP "" for none.
line() {
	local lease= tp=
	[ -n "$2" ] && lease="\"lease\":{\"moref\":\"$2\",\"timeout_s\":300},"
	[ -n "$4" ] && tp=",\"ssl_thumbprint\":\"$4\""
	printf '{"name":"%s",%s"devices":[{"key":"k0","target_id":"disk-0.vmdk","disk":true,"url":"%s"%s}]}\n' \
		"$1" "$lease" "$3" "$tp"
}
no_cookie_sent() { ! grep -F "\"path\": \"$1\"" srv/requests.log | grep -q '"cookie": true'; }

test_expect_success 'session host, session pinned, line pins the impostor: exit 4, no cookie' '
	(umask 077 && printf "{\"url\":\"https://127.0.0.1:%s/sdk\",\"cookie\":\"c0ffee\",\"thumbprint\":\"%s\",\"insecure\":false,\"ca_file\":null,\"user\":\"u\",\"created_at\":\"2026-01-01T00:00:00Z\"}\n" \
		"$PORT" "$FAKE" >sess/pinned.json) &&
	line vm1 "" "https://127.0.0.1:$PORT/f/cookie=1,times=0/a1" "$TPN" >in &&
	cp srv/d1 srv/a1 &&
	expect_code 4 h2k-fetch -s sess/pinned.json -o out <in >actual 2>err &&
	no_cookie_sent /f/cookie=1,times=0/a1 && test ! -e out/vm1/disk-0.vmdk
'

soapd_start --lease-url "https://127.0.0.1:$PORT/f/cookie=1,times=0/d1" || exit 1
(umask 077 && printf '{"url":"%s","cookie":"c0ffee","thumbprint":"%s","insecure":false,"ca_file":null,"user":"u","created_at":"2026-01-01T00:00:00Z"}\n' \
	"$SOAPD_URL" "$SOAPD_THUMBPRINT" >sess/s.json)

test_expect_success 'a listed device URL the server gives no pin for, line pins it: exit 4, no cookie' '
	line vm2 "session[1]lease-1" "https://127.0.0.1:$PORT/f/cookie=1,times=0/d1" "$TPN" >in &&
	expect_code 4 h2k-fetch -s sess/s.json -o out <in >actual 2>err &&
	no_cookie_sent /f/cookie=1,times=0/d1 && test ! -e out/vm2/disk-0.vmdk
'

test_expect_success 'the server lists the pin: the cookie goes under it, whatever the line says' '
	soapd_start --lease-url "https://127.0.0.1:$PORT/f/cookie=1,times=0/d1" --lease-thumbprint "$TPN" &&
	sed -i "s|\"url\":\"[^\"]*\"|\"url\":\"$SOAPD_URL\"|; s|\"thumbprint\":\"[^\"]*\"|\"thumbprint\":\"$SOAPD_THUMBPRINT\"|" sess/s.json &&
	line vm3 "session[1]lease-1" "https://127.0.0.1:$PORT/f/cookie=1,times=0/d1" "$FAKE" >in &&
	h2k-fetch -s sess/s.json -o out <in >actual 2>err &&
	cmp out/vm3/disk-0.vmdk srv/d1 &&
	grep -F "\"path\": \"/f/cookie=1,times=0/d1\"" srv/requests.log | tail -1 | grep -q "\"cookie\": true"
'

test_expect_success 'a URL the cookie does not go to still takes the line pin' '
	line vm4 "" "https://127.0.0.1:$PORT/f/-/d1" "$TPN" >in &&
	h2k-fetch -s sess/s.json -o out <in >actual 2>err &&
	cmp out/vm4/disk-0.vmdk srv/d1 && no_cookie_sent /f/-/d1
'

test_done
