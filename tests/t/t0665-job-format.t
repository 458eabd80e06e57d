#!/usr/bin/env bash
# format: in job files (vmdk, raw, qcow2, ova): checked at submit, kept in
# the record, given to h2k-fetch as --format (ova: the ova option); a
# record with a bad format is not run; the job's percent for streams of
# unknown length comes from their capacity.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/t/t06-standins.sh"

export H2K_SPOOL="$TRASH/spool" OUT="$TRASH/out"
standins_install "$TRASH/bin"
standins_vm vmq 40000
standins_vm vmv 30000
standins_vm vms 200000 100000

test_expect_success 'format: qcow2 (YAML) is kept in the record options' '
	printf "vm_path: /DC0/vm/vmq\noutput_path: %s\nformat: qcow2\n" "$OUT" >q.yaml &&
	h2k-job submit q.yaml >rec &&
	test "$(jq -r .options.format rec)" = qcow2 &&
	test "$(jq -r .options.ova rec)" = false &&
	jq -r .id rec >id.q
'

test_expect_success 'format: ova is the ova option (VMDKs in an OVA), no format' '
	printf "{\"vm_path\": \"/DC0/vm/vmv\", \"output_path\": \"%s\", \"format\": \"ova\"}\n" "$OUT" >v.json &&
	h2k-job submit v.json >rec &&
	test "$(jq -r .options.ova rec)" = true &&
	test "$(jq -r ".options | has(\"format\")" rec)" = false &&
	jq -r .id rec >id.v
'

test_expect_success 'the runner gives h2k-fetch --format; ova goes to h2k-ovf' '
	rm -f "$STANDIN_STATE/argv" &&
	h2k-job run --once 2>run.err &&
	test "$(field "$(cat id.q)" .status)" = completed &&
	test "$(field "$(cat id.v)" .status)" = completed &&
	grep -Fx "h2k-fetch --progress json -o $OUT --format qcow2" "$STANDIN_STATE/argv" &&
	grep -Fx "h2k-fetch --progress json -o $OUT" "$STANDIN_STATE/argv" &&
	grep -Fx "h2k-ovf --ova" "$STANDIN_STATE/argv" &&
	test "$(grep -c -- --format "$STANDIN_STATE/argv")" = 1
'

test_expect_success 'an unknown format is refused with file:line and key, nothing queued' '
	printf "jobs:\n  - vm_path: /DC0/vm/a\n    output_path: /o\n  - vm_path: /DC0/vm/b\n    output_path: /o\n    format: vhdx\n" >bad.yaml &&
	expect_code 2 h2k-job submit bad.yaml >sub.out 2>err &&
	test ! -s sub.out &&
	grep -F "h2k-job: bad.yaml:6: key '"'"'jobs[1].format'"'"': expected vmdk, raw, qcow2 or ova" err &&
	test -z "$(ls "$H2K_SPOOL/new")"
'

test_expect_success 'format in JSON must be a string; case matters' '
	printf "{\"vm_path\": \"/a\", \"output_path\": \"/o\", \"format\": 5}\n" >n.json &&
	expect_code 2 h2k-job submit n.json 2>err &&
	grep -F "'"'"'format'"'"'" err &&
	printf "vm_path: /a\noutput_path: /o\nformat: QCOW2\n" >c.yaml &&
	expect_code 2 h2k-job submit c.yaml 2>err &&
	grep -F "expected vmdk, raw, qcow2 or ova" err &&
	test -z "$(ls "$H2K_SPOOL/new")"
'

test_expect_success 'a record whose options.format is not a format is moved aside, not run' '
	printf "vm_path: /DC0/vm/vmq\noutput_path: %s\nformat: raw\n" "$OUT" >r.yaml &&
	id=$(h2k-job submit r.yaml | jq -r .id) &&
	f="$H2K_SPOOL/new/$id" &&
	jq -c ".options.format = \"--help\"" "$f" >"$TRASH/rec.tmp" &&
	cat "$TRASH/rec.tmp" >"$f" &&
	rm -f "$STANDIN_STATE/argv" &&
	h2k-job run --once 2>run2.err &&
	ls "$H2K_SPOOL/bad/$id".* >/dev/null &&
	grep -F "options.format" run2.err &&
	! grep -q "h2k-fetch" "$STANDIN_STATE/argv" 2>/dev/null
'

test_expect_success 'streams of unknown length: the job percent from their capacities' '
	id=$(submit_vms vms) &&
	{ STANDIN_STREAM=1 STANDIN_CHUNK=10000 STANDIN_DELAY=0.1 h2k-job run --once 2>run3.err & } &&
	pid=$! &&
	: >pcts &&
	i=0 && while kill -0 $pid 2>/dev/null && [ $i -lt 400 ]; do
		f=$(ls "$H2K_SPOOL/cur/$id" "$H2K_SPOOL/done/$id" 2>/dev/null | head -1) &&
		[ -n "$f" ] && jq -r "[.progress.phase, .progress.percent_complete] | @tsv" "$f" >>pcts 2>/dev/null
		i=$((i + 1)); sleep 0.05
	done &&
	wait $pid &&
	test "$(field $id .status)" = completed &&
	test "$(field $id .progress.percent_complete)" = 100 &&
	# mid-download percents strictly between 0 and 100, never falling
	awk -F"\t" "\$1 == \"download\" && \$2 > 0 && \$2 < 100 { n++ } END { exit !(n > 0) }" pcts &&
	awk -F"\t" "\$1 == \"download\" { if (\$2 < last) exit 1; last = \$2 }" pcts
'

test_done
