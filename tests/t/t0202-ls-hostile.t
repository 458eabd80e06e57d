#!/usr/bin/env bash
# h2k-ls against tests/servers/soapd.py: TLS trust (pin, SHA-1 pin, -k,
# certificate changing under a pin) and hostile SOAP answers.
. "$(dirname "$0")/../lib.sh"

. "$TESTS_DIR/servers/soapd-lib.sh"

# session THUMBPRINT INSECURE: a session file for the running soapd.
session() {
	local tp=null
	[ -n "$1" ] && tp="\"$1\""
	mkdir -p "$XDG_STATE_HOME/h2k" && chmod 700 "$XDG_STATE_HOME/h2k" &&
	(umask 077 && printf '{"url":"%s","cookie":"\\"52f1c0de\\"","thumbprint":%s,"insecure":%s,"ca_file":null,"server_type":"VirtualCenter","server_version":"8.0.3","api_version":"8.0.3.0","user":"user","created_at":"2026-11-25T17:00:00Z"}\n' \
		"$SOAPD_URL" "$tp" "$2" >"$XDG_STATE_HOME/h2k/session.json")
}

# No SOAP request at all reached the server.
nothing_sent() {
	if grep -v '"method": "GET' "$TRASH/soapd.log" | grep -q .; then
		echo "requests reached the server:"; cat "$TRASH/soapd.log"; return 1
	fi
}

soapd_start || exit 1

test_expect_success 'pinned SHA-256 thumbprint: empty inventory lists nothing, exit 0' '
	session "$SOAPD_THUMBPRINT" false &&
	h2k-ls >out 2>err &&
	test_line_count = 0 out && test_line_count = 0 err &&
	grep -q "\"method\": \"CreateContainerView\", \"cookie\": true" "$TRASH/soapd.log"
'

test_expect_success 'pin given as lower-case SHA-1 without colons works' '
	tp=$(printf %s "$SOAPD_THUMBPRINT_SHA1" | tr -d : | tr A-F a-f) &&
	session "$tp" false &&
	h2k-ls >out 2>err && test_line_count = 0 err
'

test_expect_success '-k session (insecure) works' '
	session "" true &&
	h2k-ls >out 2>err && test_line_count = 0 err
'

test_expect_success 'unverified certificate: exit 4, one line with the thumbprint, nothing sent' '
	: >"$TRASH/soapd.log" &&
	session "" false &&
	expect_code 4 h2k-ls >out 2>err &&
	test_one_line err &&
	grep -F "h2k-ls: $SOAPD_HOST: certificate not trusted" err &&
	grep -F "SHA-256 thumbprint $SOAPD_THUMBPRINT" err &&
	grep -F -- "--thumbprint $SOAPD_THUMBPRINT" err &&
	test_line_count = 0 out && nothing_sent
'

test_expect_success 'wrong pin: exit 4 before any request byte' '
	: >"$TRASH/soapd.log" &&
	session "$SOAPD_THUMBPRINT_B" false &&
	expect_code 4 h2k-ls 2>err &&
	test_one_line err &&
	grep -F "does not match the pinned thumbprint" err &&
	grep -F "$SOAPD_THUMBPRINT" err &&
	nothing_sent
'

test_expect_success 'CA file: the server certificate as CA verifies it' '
	session "" false &&
	sed -i "s|\"ca_file\":null|\"ca_file\":\"$SOAPD_CERT\"|" "$XDG_STATE_HOME/h2k/session.json" &&
	h2k-ls >out 2>err && test_line_count = 0 err
'

test_expect_success 'certificate that changes after the first connection fails under the pin' '
	soapd_start --cert-change &&
	session "$SOAPD_THUMBPRINT" false &&
	expect_code 4 h2k-ls 2>err &&
	test_one_line err &&
	grep -F "does not match the pinned thumbprint (server presents SHA-256 $SOAPD_THUMBPRINT_B)" err &&
	grep -q RetrieveServiceContent "$TRASH/soapd.log" &&
	! grep -q CreateContainerView "$TRASH/soapd.log"
'

# hostile MODE WANT: the listing answer is MODE; h2k-ls must exit 9 with one
# line naming WANT.
hostile() {
	soapd_start --mode "$1" &&
	session "$SOAPD_THUMBPRINT" false &&
	expect_code 9 h2k-ls >out 2>err &&
	test_one_line err && grep -F "$2" err && test_line_count = 0 out
}

test_expect_success 'DOCTYPE with a file:// external entity is refused' '
	hostile doctype-file "RetrievePropertiesEx response: XML refused: DOCTYPE" &&
	! grep -q root: out err
'
test_expect_success 'DOCTYPE with an http:// external entity is refused, never fetched' '
	hostile doctype-http "XML refused: DOCTYPE" &&
	! grep -q EVIL "$TRASH/soapd.log"
'
test_expect_success 'billion laughs is refused' '
	hostile laughs "XML refused: DOCTYPE"
'
test_expect_success 'nesting 10,000 deep is refused' '
	hostile deep "XML refused: nesting deeper than 256 elements"
'
test_expect_success '50 MB answer is refused while it arrives' '
	hostile big "RetrievePropertiesEx response: XML refused: a text node, name or attribute over" &&
	test "$(grep -c RetrievePropertiesEx "$TRASH/soapd.log")" = 1
'
test_expect_success '50 MB of small elements is cut at 32 MiB' '
	hostile bigmany "RetrievePropertiesEx: response larger than 33554432 bytes refused"
'
test_expect_success 'an answer that is not XML is a protocol error' '
	hostile garbage "RetrievePropertiesEx response: malformed XML"
'
test_expect_success 'HTTP 404 is named' '
	hostile status:404 "RetrievePropertiesEx: HTTP 404 from 127.0.0.1:" &&
	grep -F "$SOAPD_HOST" err
'
test_expect_success 'a redirect is not followed' '
	hostile status:302 "RetrievePropertiesEx: HTTP 302 from 127.0.0.1:"
'
test_expect_success 'the view is destroyed even when the listing fails' '
	hostile deep "nesting" &&
	grep -q "\"method\": \"DestroyView\"" "$TRASH/soapd.log"
'

test_expect_success 'NotAuthenticated (expired session): exit 3, tells to log in' '
	soapd_start --mode fault:NotAuthenticated --at CreateContainerView &&
	session "$SOAPD_THUMBPRINT" false &&
	expect_code 3 h2k-ls 2>err &&
	test_one_line err &&
	grep -F "session expired or not valid" err && grep -F "h2k-login" err
'
test_expect_success 'other faults keep their type and text: exit 9' '
	soapd_start --mode fault:SystemError --at CreateContainerView &&
	session "$SOAPD_THUMBPRINT" false &&
	expect_code 9 h2k-ls 2>err &&
	test_one_line err &&
	grep -F "CreateContainerView: SystemError: soapd says SystemError" err
'
test_expect_success 'ManagedObjectNotFound maps to exit 6' '
	soapd_start --mode fault:ManagedObjectNotFound --at CreateContainerView &&
	session "$SOAPD_THUMBPRINT" false &&
	expect_code 6 h2k-ls 2>err && test_one_line err
'
test_expect_success 'a 503 is retried, then reported' '
	soapd_start --mode status:503 --at RetrieveServiceContent --times 2 &&
	session "$SOAPD_THUMBPRINT" false &&
	h2k-ls 2>err && test_line_count = 0 err &&
	test "$(grep -c RetrieveServiceContent "$TRASH/soapd.log")" = 3
'
test_expect_success 'no session file: exit 3' '
	rm -f "$XDG_STATE_HOME/h2k/session.json" &&
	expect_code 3 h2k-ls 2>err && test_one_line err && grep -F h2k-login err
'
test_expect_success 'connection refused: exit 9 naming the server' '
	session "$SOAPD_THUMBPRINT" false && soapd_stop &&
	expect_code 9 h2k-ls 2>err && test_one_line err && grep -F "$SOAPD_HOST" err
'
test_expect_success 'proxy variables of curl are ignored; H2K_PROXY is used' '
	soapd_start && session "$SOAPD_THUMBPRINT" false &&
	https_proxy=http://127.0.0.1:1 HTTPS_PROXY=http://127.0.0.1:1 all_proxy=http://127.0.0.1:1 \
		h2k-ls >out 2>err && test_line_count = 0 err &&
	expect_code 9 env H2K_PROXY=http://127.0.0.1:1 h2k-ls 2>err &&
	test_one_line err && grep -F "127.0.0.1" err
'
test_expect_code 2 'bad --power is a usage error' 'h2k-ls --power sideways'
test_expect_code 2 'unknown option is a usage error' 'h2k-ls --bogus'

test_done
