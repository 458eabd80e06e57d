#!/usr/bin/env bash
# h2k-fetch's cookie policy (issue 10 item 19): the session cookie goes over
# https only, to the session's own server and to the device URLs the server
# lists for the line's lease; a line naming any other URL (a file someone
# else wrote) gets its download without the cookie.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/servers/nfcd-lib.sh"
. "$TESTS_DIR/servers/soapd-lib.sh"

nfcd_start
mkdisk d1 100000
mkdisk d2 100000
# soapd plays the vCenter: its lease lists one device URL, on nfcd (an
# "ESXi host" other than the vCenter, as in real vSphere).
soapd_start --lease-url "$NFCD_URL/cookie=1/d1" || exit 1
F="h2k-fetch --ca-file $NFCD_CERT -s sess/s.json"

mkdir -p -m 700 sess
(umask 077 && printf '{"url":"%s","cookie":"\\"c0ffee\\"","thumbprint":"%s","insecure":false,"ca_file":null,"user":"u","created_at":"2026-01-01T00:00:00Z"}\n' \
	"$SOAPD_URL" "$SOAPD_THUMBPRINT" >sess/s.json)

# line VM LEASE URL: an h2k-lease line; LEASE "" for none.
line() {
	local lease=
	[ -n "$2" ] && lease="\"lease\":{\"moref\":\"$2\",\"timeout_s\":300},"
	printf '{"name":"%s",%s"devices":[{"key":"k0","target_id":"disk-0.vmdk","disk":true,"url":"%s"}]}\n' \
		"$1" "$lease" "$3"
}

# cookie_sent FILTER true|false: every request whose path has FILTER
cookie_sent() {
	requests "$1" >req && test -s req &&
	! grep -v "\"cookie\": $2" req
}

test_expect_success 'a device URL the server lists for the lease gets the cookie' '
	line vm1 "session[1]lease-1" "$NFCD_URL/cookie=1/d1" >in &&
	$F -o out <in >actual 2>err &&
	cmp out/vm1/disk-0.vmdk srv/d1 &&
	cookie_sent /cookie=1/d1 true &&
	grep -q "\"type\": \"HttpNfcLease\"\|HttpNfcLease" "$TRASH/soapd.log"
'

test_expect_success 'a URL the lease does not list gets no cookie: 401, exit 3, says why' '
	line vm2 "session[1]lease-1" "$NFCD_URL/cookie=1/d2" >in &&
	expect_code 3 $F -o out <in >actual 2>err &&
	test ! -s actual && test ! -e out/vm2/disk-0.vmdk &&
	grep -F "HTTP 401: the session cookie was not sent: the URL is not one of the device URLs the server lists for lease session[1]lease-1" err &&
	cookie_sent /cookie=1/d2 false
'

test_expect_success 'a plain URL line (no lease) off the session host: no cookie' '
	line vm3 "" "$NFCD_URL/-/d2" >in &&
	$F -o out <in >actual 2>err &&
	cmp out/vm3/disk-0.vmdk srv/d2 &&
	cookie_sent /-/d2 false
'

test_expect_success 'without a cookie requirement the unlisted URL still downloads, cookie-less' '
	line vm4 "session[1]lease-1" "$NFCD_URL/times=0/d2" >in &&
	$F -o out <in >actual 2>err &&
	cmp out/vm4/disk-0.vmdk srv/d2 &&
	cookie_sent /times=0/d2 false
'

test_expect_success 'a redirect is not followed, so the cookie goes nowhere else' '
	line vm5 "session[1]lease-1" "$NFCD_URL/cookie=1,redirect=https/d1" >in &&
	soapd_start --lease-url "$NFCD_URL/cookie=1,redirect=https/d1" &&
	sed -i "s|https://127.0.0.1:[0-9]*/sdk|$SOAPD_URL|; s|\"thumbprint\":\"[^\"]*\"|\"thumbprint\":\"$SOAPD_THUMBPRINT\"|" sess/s.json &&
	expect_code 9 $F -o out <in >actual 2>err &&
	test "$(requests /f/-/d1 | wc -l)" = 0 &&
	cookie_sent "/cookie=1,redirect=https/d1" true
'

test_expect_success 'http:// never carries the cookie, even to the session host:port' '
	nfcd_stop && nfcd_start --http && test_when_finished "nfcd_stop; soapd_stop" &&
	(umask 077 && printf "{\"url\":\"https://127.0.0.1:%s/sdk\",\"cookie\":\"c0ffee\",\"insecure\":true,\"user\":\"u\",\"created_at\":\"2026-01-01T00:00:00Z\"}\n" \
		"$NFCD_PORT" >sess/h.json) &&
	line vm6 "" "$NFCD_URL/-/d1" >in &&
	case "$NFCD_URL" in http://*) ;; *) echo "not http: $NFCD_URL"; false ;; esac &&
	h2k-fetch --allow-http -s sess/h.json -o out <in >actual 2>err &&
	cmp out/vm6/disk-0.vmdk srv/d1 &&
	cookie_sent /-/d1 false
'

test_done
