#!/usr/bin/env bash
# attack: a body with a password left unquoted, {"password":HUNTER2...},
# was answered "JSON syntax error near 'HUNTER2...'": the credential came
# back in the error (and `h2k-job submit FILE` printed it the same way).
# A syntax error near a credential key is reported without quoting.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/t/t06-standins.sh"
. "$TESTS_DIR/t/t067-api.sh"

export H2K_SPOOL="$TRASH/spool"

test_expect_success 'serve: the error does not echo the credential' '
	api_start api.err -v &&
	hcurl POST /jobs/submit --data-binary "{\"vm_path\":\"/a\",\"output_path\":\"/o\",\"vcenter\":{\"server\":\"s\",\"password\":HUNTER2-SECRET}}" >r1 &&
	test "$(cat code)" = 400 &&
	cat r1 &&
	jq_ok r1 ".error == \"request:1: JSON syntax error near a credential key (not quoted)\"" &&
	hcurl POST /jobs/submit --data-binary "{\"vm_path\":\"/a\",\"output_path\":\"/o\",\"api_key\":  HUNTER2-SECRET}" >r2 &&
	test "$(cat code)" = 400 &&
	! grep HUNTER2 r1 r2 api.err &&
	! grep -r HUNTER2 "$H2K_SPOOL" &&
	# other syntax errors still show where
	hcurl POST /jobs/submit --data-binary "{\"vm_path\":\"/a\" oops}" >r3 &&
	jq_ok r3 ".error == \"request:1: JSON syntax error near '"'"'oops}'"'"'\"" &&
	api_stop
'

test_expect_success 'h2k-job submit FILE: the same' '
	printf "{\"vm_path\":\"/a\",\"output_path\":\"/o\",\n \"token\": HUNTER2-SECRET}\n" >f.json &&
	expect_code 2 h2k-job submit f.json 2>err &&
	cat err &&
	grep "f.json:2: JSON syntax error near a credential key (not quoted)" err &&
	! grep HUNTER2 err
'

test_done
