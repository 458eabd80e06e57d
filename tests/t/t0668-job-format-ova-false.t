#!/usr/bin/env bash
# format: ova with options.ova: false says two opposite things: refused at
# submit (exit 2, naming the line of the option), in YAML, in JSON and in
# a REST submission, instead of one being dropped without a word; format:
# ova with ova: true, and format: raw with ova: false, stay accepted.
# SPDX-License-Identifier: LGPL-3.0-or-later
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/t/t06-standins.sh"
. "$TESTS_DIR/t/t067-api.sh"

export H2K_SPOOL="$TRASH/spool" OUT="$TRASH/out"
job_trap

test_expect_success 'YAML: format: ova, options.ova: false: exit 2, nothing queued' '
	printf "vm_path: /DC0/vm/x\noutput_path: %s\nformat: ova\noptions:\n  ova: false\n" "$OUT" >a.yaml &&
	expect_code 2 h2k-job submit a.yaml >out 2>err &&
	test ! -s out &&
	grep -q "^h2k-job: a.yaml:5: key .options.ova.: false, but format is ova" err &&
	test -z "$(h2k-job ls --all 2>/dev/null)"
'

test_expect_success 'JSON batch: the same in jobs[1] is named; nothing queued' '
	printf "{\"jobs\": [{\"vm_path\": \"/DC0/vm/x\", \"output_path\": \"%s\"},\n{\"vm_path\": \"/DC0/vm/y\", \"output_path\": \"%s\", \"options\": {\"ova\": false}, \"format\": \"ova\"}]}\n" "$OUT" "$OUT" >b.json &&
	expect_code 2 h2k-job submit b.json >out 2>err &&
	grep -q "key .jobs\[1\]\.options\.ova.: false, but format is ova" err &&
	test -z "$(h2k-job ls --all 2>/dev/null)"
'

test_expect_success 'format: ova with ova: true, format: raw with ova: false: accepted' '
	printf "vm_path: /DC0/vm/x\noutput_path: %s\nformat: ova\noptions: {ova: true}\n" "$OUT" >c.yaml &&
	h2k-job submit c.yaml >rec &&
	test "$(jq -r .options.ova rec)" = true &&
	printf "vm_path: /DC0/vm/x\noutput_path: %s\nformat: raw\noptions: {ova: false}\n" "$OUT" >d.yaml &&
	h2k-job submit d.yaml >rec &&
	test "$(jq -r .options.ova rec)" = false && test "$(jq -r .options.format rec)" = raw
'

api_start api.err || exit 1
test_expect_success 'REST: the contradiction is rejected, the job not queued' '
	n=$(h2k-job ls --all | wc -l) &&
	printf "{\"vm_path\":\"/DC0/vm/z\",\"output_path\":\"%s\",\"format\":\"ova\",\"options\":{\"ova\":false}}" "$OUT" >body &&
	hcurl POST /jobs/submit -H "Content-Type: application/json" --data-binary @body >resp &&
	jq_ok resp ".accepted == 0 and .rejected == 1" &&
	jq -r ".errors[0]" resp | grep -q "false, but format is ova" &&
	test "$(h2k-job ls --all | wc -l)" = "$n"
'

test_done
