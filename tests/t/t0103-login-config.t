#!/usr/bin/env bash
# h2k-login settings: each source alone, and precedence
#   flags > H2K_* > GOVC_* > user config file > system config file.
# Each pair is tried both ways round, the higher source carrying the right
# value and the lower a wrong one, then the reverse, so the outcome shows
# which one won.  A wrong URL points at a closed port (exit 9), a wrong
# password is refused (exit 3).
. "$(dirname "$0")/../lib.sh"

sim_start -username alice -password "Right-Pw-7"

GOOD_URL=$SIM_URL
BAD_URL=https://127.0.0.1:1/sdk
GOOD_PW=$SIM_PASSWORD
BAD_PW=Wrong-Pw-9
UCONF=$XDG_CONFIG_HOME/h2k/config.yaml
mkdir -p "$XDG_CONFIG_HOME/h2k"

# conf FILE LINES...: a private config file.
conf() {
	local f=$1
	shift
	printf '%s\n' "$@" >"$f" && chmod 600 "$f"
}
reset() { rm -f "$H2K_SYSCONFIG" "$UCONF"; }
pwfile() { printf '%s\n' "$1" >pwf && chmod 600 pwf; }

test_expect_success 'system config file alone' '
	reset && conf "$H2K_SYSCONFIG" "VCenterURL: $GOOD_URL" "Username: alice" \
		"Password: $GOOD_PW" "Insecure: true" &&
	h2k-login -s a.json >out && test "$(jfield out user)" = alice &&
	test "$(jfield out url)" = "$GOOD_URL" && test "$(jfield out insecure)" = true
'

test_expect_success 'user config file alone' '
	reset && conf "$UCONF" "VCenterURL: $GOOD_URL" "Username: alice" \
		"Password: \"$GOOD_PW\"" "Insecure: yes" &&
	h2k-login -s a.json >out && test "$(jfield out user)" = alice
'

test_expect_success 'H2K_* environment alone' '
	reset &&
	H2K_URL=$GOOD_URL H2K_USERNAME=alice H2K_PASSWORD=$GOOD_PW H2K_INSECURE=true \
		h2k-login -s a.json >out && test "$(jfield out user)" = alice
'

test_expect_success 'GOVC_* environment alone' '
	reset &&
	GOVC_URL=$GOOD_URL GOVC_USERNAME=alice GOVC_PASSWORD=$GOOD_PW GOVC_INSECURE=1 \
		h2k-login -s a.json >out && test "$(jfield out user)" = alice
'

test_expect_success 'GOVC_URL carrying user:password (environment only)' '
	reset && host=${GOOD_URL#https://} &&
	GOVC_URL="https://alice:$GOOD_PW@$host" GOVC_INSECURE=1 h2k-login -s a.json >out &&
	test "$(jfield out user)" = alice && test "$(jfield out url)" = "$GOOD_URL"
'

test_expect_success 'flags alone' '
	reset && pwfile "$GOOD_PW" &&
	h2k-login -k -u "$GOOD_URL" -U alice --password-file pwf -s a.json >/dev/null
'

# --- password precedence ----------------------------------------------------

test_expect_success 'password: user file beats system file' '
	reset && conf "$H2K_SYSCONFIG" "VCenterURL: $GOOD_URL" "Username: alice" \
		"Insecure: true" "Password: $BAD_PW" &&
	conf "$UCONF" "Password: $GOOD_PW" &&
	h2k-login -s a.json >/dev/null &&
	conf "$H2K_SYSCONFIG" "VCenterURL: $GOOD_URL" "Username: alice" \
		"Insecure: true" "Password: $GOOD_PW" &&
	conf "$UCONF" "Password: $BAD_PW" &&
	expect_code 3 h2k-login -s a.json 2>err
'

test_expect_success 'password: GOVC_PASSWORD beats the user file' '
	reset && conf "$UCONF" "VCenterURL: $GOOD_URL" "Username: alice" \
		"Insecure: true" "Password: $BAD_PW" &&
	GOVC_PASSWORD=$GOOD_PW h2k-login -s a.json >/dev/null &&
	conf "$UCONF" "VCenterURL: $GOOD_URL" "Username: alice" \
		"Insecure: true" "Password: $GOOD_PW" &&
	GOVC_PASSWORD=$BAD_PW expect_code 3 h2k-login -s a.json 2>err
'

test_expect_success 'password: H2K_PASSWORD beats GOVC_PASSWORD' '
	reset && export H2K_URL=$GOOD_URL H2K_USERNAME=alice H2K_INSECURE=1 &&
	H2K_PASSWORD=$GOOD_PW GOVC_PASSWORD=$BAD_PW h2k-login -s a.json >/dev/null &&
	H2K_PASSWORD=$BAD_PW GOVC_PASSWORD=$GOOD_PW expect_code 3 h2k-login -s a.json 2>err
'

test_expect_success 'password: GOVC_PASSWORD beats a password in GOVC_URL' '
	reset && host=${GOOD_URL#https://} &&
	GOVC_URL="https://alice:$BAD_PW@$host" GOVC_PASSWORD=$GOOD_PW GOVC_INSECURE=1 \
		h2k-login -s a.json >/dev/null &&
	GOVC_URL="https://alice:$GOOD_PW@$host" GOVC_PASSWORD=$BAD_PW GOVC_INSECURE=1 \
		expect_code 3 h2k-login -s a.json 2>err
'

test_expect_success 'password: --password-file beats H2K_PASSWORD' '
	reset && export H2K_URL=$GOOD_URL H2K_USERNAME=alice H2K_INSECURE=1 &&
	pwfile "$GOOD_PW" && H2K_PASSWORD=$BAD_PW h2k-login --password-file pwf -s a.json >/dev/null &&
	pwfile "$BAD_PW" && H2K_PASSWORD=$GOOD_PW expect_code 3 h2k-login --password-file pwf -s a.json 2>err
'

test_expect_success 'password: --password-stdin beats H2K_PASSWORD' '
	reset && export H2K_URL=$GOOD_URL H2K_USERNAME=alice H2K_INSECURE=1 &&
	echo "$BAD_PW" | H2K_PASSWORD=$GOOD_PW expect_code 3 h2k-login --password-stdin -s a.json 2>err
'

# --- URL precedence ---------------------------------------------------------

test_expect_success 'URL: user file beats system file' '
	reset && export H2K_USERNAME=alice H2K_PASSWORD=$GOOD_PW H2K_INSECURE=1 &&
	conf "$H2K_SYSCONFIG" "VCenterURL: $BAD_URL" && conf "$UCONF" "VCenterURL: $GOOD_URL" &&
	h2k-login -s a.json >/dev/null &&
	conf "$H2K_SYSCONFIG" "VCenterURL: $GOOD_URL" && conf "$UCONF" "VCenterURL: $BAD_URL" &&
	expect_code 9 h2k-login -s a.json 2>err
'

test_expect_success 'URL: GOVC_URL beats the user file' '
	reset && export H2K_USERNAME=alice H2K_PASSWORD=$GOOD_PW H2K_INSECURE=1 &&
	conf "$UCONF" "VCenterURL: $BAD_URL" && GOVC_URL=$GOOD_URL h2k-login -s a.json >/dev/null &&
	conf "$UCONF" "VCenterURL: $GOOD_URL" && GOVC_URL=$BAD_URL expect_code 9 h2k-login -s a.json 2>err
'

test_expect_success 'URL: H2K_URL beats GOVC_URL' '
	reset && export H2K_USERNAME=alice H2K_PASSWORD=$GOOD_PW H2K_INSECURE=1 &&
	H2K_URL=$GOOD_URL GOVC_URL=$BAD_URL h2k-login -s a.json >/dev/null &&
	H2K_URL=$BAD_URL GOVC_URL=$GOOD_URL expect_code 9 h2k-login -s a.json 2>err
'

test_expect_success 'URL: -u beats H2K_URL' '
	reset && export H2K_USERNAME=alice H2K_PASSWORD=$GOOD_PW H2K_INSECURE=1 &&
	H2K_URL=$BAD_URL h2k-login -u "$GOOD_URL" -s a.json >/dev/null &&
	H2K_URL=$GOOD_URL expect_code 9 h2k-login -u "$BAD_URL" -s a.json 2>err
'

# --- user precedence ----------------------------------------------------------

test_expect_success 'user: user file beats system file, GOVC_USERNAME beats both' '
	reset && export H2K_URL=$GOOD_URL H2K_PASSWORD=$GOOD_PW H2K_INSECURE=1 &&
	conf "$H2K_SYSCONFIG" "Username: mallory" && conf "$UCONF" "Username: alice" &&
	h2k-login -s a.json >out && test "$(jfield out user)" = alice &&
	conf "$H2K_SYSCONFIG" "Username: alice" && conf "$UCONF" "Username: mallory" &&
	expect_code 3 h2k-login -s a.json 2>err &&
	GOVC_USERNAME=alice h2k-login -s a.json >out && test "$(jfield out user)" = alice &&
	conf "$UCONF" "Username: alice" &&
	GOVC_USERNAME=mallory expect_code 3 h2k-login -s a.json 2>err
'

test_expect_success 'user: H2K_USERNAME beats GOVC_USERNAME, -U beats H2K_USERNAME' '
	reset && export H2K_URL=$GOOD_URL H2K_PASSWORD=$GOOD_PW H2K_INSECURE=1 &&
	H2K_USERNAME=alice GOVC_USERNAME=mallory h2k-login -s a.json >/dev/null &&
	H2K_USERNAME=mallory GOVC_USERNAME=alice expect_code 3 h2k-login -s a.json 2>err &&
	H2K_USERNAME=mallory h2k-login -U alice -s a.json >/dev/null &&
	H2K_USERNAME=alice expect_code 3 h2k-login -U mallory -s a.json 2>err
'

test_expect_success 'user: the user in -u beats H2K_USERNAME, -U beats the one in -u' '
	reset && export H2K_PASSWORD=$GOOD_PW H2K_INSECURE=1 && host=${GOOD_URL#https://} &&
	H2K_USERNAME=mallory h2k-login -u "alice@$host" -s a.json >/dev/null &&
	expect_code 3 h2k-login -U mallory -u "alice@$host" -s a.json 2>err
'

test_expect_success 'Insecure: user file false beats system file true (then exit 4)' '
	reset && export H2K_URL=$GOOD_URL H2K_USERNAME=alice H2K_PASSWORD=$GOOD_PW &&
	conf "$H2K_SYSCONFIG" "Insecure: true" && h2k-login -s a.json >/dev/null &&
	conf "$UCONF" "Insecure: false" && expect_code 4 h2k-login -s a.json 2>err &&
	H2K_INSECURE=yes h2k-login -s a.json >/dev/null &&
	h2k-login -k -s a.json >/dev/null
'

# --- config file errors -----------------------------------------------------

test_expect_success 'config file with a Password readable by others: exit 11' '
	reset && conf "$UCONF" "VCenterURL: $GOOD_URL" "Username: alice" \
		"Password: $GOOD_PW" "Insecure: true" && chmod 644 "$UCONF" &&
	expect_code 11 h2k-login -s sec.json 2>err && test_one_line err &&
	grep -qF "config file $UCONF is world-readable (mode 0644); chmod 600 it" err &&
	! grep -F "$GOOD_PW" err && test ! -e sec.json
'

test_expect_success 'world-readable config without a password is fine' '
	reset && rm -f a.json && conf "$UCONF" "VCenterURL: $GOOD_URL" "Username: alice" \
		"Insecure: true" && chmod 644 "$UCONF" &&
	H2K_PASSWORD=$GOOD_PW h2k-login -s a.json >/dev/null && test -s a.json
'

test_expect_success 'unknown key: warning naming file:line:key, login goes on' '
	reset && conf "$UCONF" "VCenterURL: $GOOD_URL" "Username: alice" \
		"Insecure: true" "DaemonAddr: localhost:8080" "Colour: blue" &&
	H2K_PASSWORD=$GOOD_PW h2k-login -s a.json >/dev/null 2>err &&
	test_one_line err &&
	grep -qF "config file $UCONF:5: unknown key \"Colour\"" err
'

test_expect_success 'malformed YAML: exit 2 naming file and line' '
	reset && conf "$UCONF" "VCenterURL: $GOOD_URL" "Username: [alice" "Insecure: true" &&
	H2K_PASSWORD=$GOOD_PW expect_code 2 h2k-login -s a.json 2>err && test_one_line err &&
	grep -qE "config file $UCONF:[23]: " err
'

test_expect_success 'wrong type: exit 2 naming file:line:key' '
	reset && conf "$H2K_SYSCONFIG" "VCenterURL: $GOOD_URL" "Insecure: sometimes" &&
	H2K_PASSWORD=$GOOD_PW expect_code 2 h2k-login -U alice -s a.json 2>err &&
	test_one_line err &&
	grep -qF "config file $H2K_SYSCONFIG:2: Insecure must be true or false" err
'

test_expect_success '-c and H2K_CONFIG name the user file; a missing one is exit 2' '
	reset && conf other.yaml "VCenterURL: $GOOD_URL" "Username: alice" \
		"Password: $GOOD_PW" "Insecure: true" &&
	h2k-login -c other.yaml -s a.json >/dev/null &&
	H2K_CONFIG=other.yaml h2k-login -s a.json >/dev/null &&
	expect_code 2 h2k-login -c missing.yaml -s a.json 2>err &&
	grep -q "config file missing.yaml does not exist" err &&
	H2K_CONFIG=missing.yaml expect_code 2 h2k-login -s a.json 2>err
'

test_expect_success 'LogLevel from the config file; -q overrides it' '
	reset && conf "$UCONF" "VCenterURL: $GOOD_URL" "Username: alice" \
		"Password: $GOOD_PW" "Insecure: true" "LogLevel: debug" &&
	h2k-login -s a.json >/dev/null 2>err && grep -q "debug: " err &&
	! grep -F "$GOOD_PW" err &&
	h2k-login -q -s a.json >/dev/null 2>err && test ! -s err
'

test_done
