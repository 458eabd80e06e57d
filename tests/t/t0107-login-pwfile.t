#!/usr/bin/env bash
# h2k-login: a NUL byte in a password is refused with a message naming
# where it came from (exit 2), never taken as the end of the password --
# from a password file, a FIFO, stdin, or as %00 in a URL's user part
# (H2K_URL, a config file's VCenterURL, -u).  Nothing is logged in and no
# session file is written.
. "$(dirname "$0")/../lib.sh"

sim_start -password "Zq7-h2k-S3cret"
S=$HOME/.local/state/h2k/session.json
L="h2k-login -k -u $SIM_URL -U $SIM_USER"

# refused FILE WHAT: exit 2 expected, one line on stderr naming WHAT and
# the NUL, no session file.
refused() {
	test_one_line err && grep -qF -- "$1" err && grep -q NUL err &&
	! grep -F "$SIM_PASSWORD" err && test ! -e "$S"
}

test_expect_success 'password file: the password then a NUL byte: refused, file named' '
	printf "%s\0junk\n" "$SIM_PASSWORD" >pwnul && chmod 600 pwnul &&
	expect_code 2 $L --password-file pwnul >out 2>err &&
	test_line_count = 0 out && refused pwnul
'

test_expect_success 'password file: a NUL byte in the middle: refused, not "login refused"' '
	printf "Zq7\0-h2k-S3cret\n" >pwmid && chmod 600 pwmid &&
	expect_code 2 $L --password-file pwmid >out 2>err &&
	refused pwmid && ! grep -q "refused: incorrect" err
'

test_expect_success 'password file as a FIFO: a NUL byte refused' '
	mkfifo pwfifo &&
	{ printf "%s\0x\n" "$SIM_PASSWORD" >pwfifo & } &&
	expect_code 2 $L --password-file pwfifo >out 2>err &&
	wait && refused pwfifo
'

test_expect_success '--password-stdin: a NUL byte refused' '
	printf "%s\0x\n" "$SIM_PASSWORD" | expect_code 2 $L --password-stdin >out 2>err &&
	refused "standard input"
'

test_expect_success 'H2K_URL with %00 in the password: refused, variable named' '
	H2K_URL="https://$SIM_USER:$SIM_PASSWORD%00x@$SIM_HOST/sdk" \
		expect_code 2 h2k-login -k >out 2>err &&
	refused H2K_URL
'

test_expect_success 'VCenterURL in a config file with %00: refused, file named' '
	printf "VCenterURL: https://%s:%s%%00x@%s/sdk\nInsecure: true\n" \
		"$SIM_USER" "$SIM_PASSWORD" "$SIM_HOST" >cfg.yaml && chmod 600 cfg.yaml &&
	expect_code 2 h2k-login -c cfg.yaml >out 2>err &&
	refused cfg.yaml
'

test_expect_success '-u with %00 in the user name: refused' '
	printf "%s\n" "$SIM_PASSWORD" >pw && chmod 600 pw &&
	expect_code 2 h2k-login -k -u "https://$SIM_USER%00x@$SIM_HOST/sdk" \
		--password-file pw >out 2>err &&
	refused -u
'

test_expect_success 'the same password without the NUL logs in' '
	$L --password-file pw >out 2>err && test -s "$S"
'

test_done
