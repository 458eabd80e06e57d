#!/usr/bin/env bash
# The files h2k leaves for people to look at (issue 10 item 14, attack):
# the job records in the spool and the .h2k-vm marker of a VM folder are
# JSON that quotes outside strings (job names, VM names from the server).
# They were written with cJSON alone, which leaves C1 controls (U+009B is
# CSI), bidi overrides and U+2028 raw, so "cat spool/new/ID" or "cat
# DIR/.h2k-vm" put them on the terminal.  Written through h2k_json_print
# now: the same JSON strings, escaped as \uXXXX.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/servers/nfcd-lib.sh"

export H2K_SPOOL="$TRASH/spool"

# clean FILE: nothing a terminal obeys (as in t0730-terminal.t)
clean() {
	python3 - "$@" <<-\PY
	import re, sys
	d = open(sys.argv[1], "rb").read()
	m = re.search(rb"[\x00-\x08\x0b-\x1f\x7f]|\xc2[\x80-\x9f]|\xe2\x80[\xa8-\xae]|\xe2\x81[\xa6-\xa9]", d)
	if m:
	    sys.exit("raw control %r at byte %d: %r" % (m.group(), m.start(), d[max(0, m.start() - 40):m.start() + 20]))
	d.decode("utf-8")
	PY
}

nfcd_start
mkdisk d1 30000

test_expect_success 'job record in the spool: C1, bidi and U+2028 escaped, string exact' '
	printf "%s\n" "vm_path: \"/dc/vm/x\\u202e\\x9b\"" "output_path: /srv/o" \
		"name: \"n\\x9b""2J\\u202egpj\\L\"" >job.yaml &&
	h2k-job submit job.yaml >out 2>err && test ! -s err &&
	id=$(python3 -c "import json; print(json.load(open(\"out\"))[\"id\"])") &&
	rec="$H2K_SPOOL/new/$id" && test -f "$rec" && cat "$rec" &&
	clean "$rec" &&
	python3 -c "import json, sys; r = json.load(open(sys.argv[1])); assert r[\"name\"] == \"n\x9b2J\u202egpj\u2028\", r[\"name\"]; assert r[\"vm_path\"] == \"/dc/vm/x\u202e\x9b\"" "$rec" &&
	h2k-job show "$id" >show && clean show
'

test_expect_success '.h2k-vm marker: the VM name escaped, string exact' '
	printf "{\"name\":\"vm\\\\u009b2J\\\\u202ex\\\\u2029\",\"devices\":[{\"key\":\"k\",\"target_id\":\"disk-0.vmdk\",\"url\":\"%s/-/d1\"}]}\n" \
		"$NFCD_URL" >in && cat in &&
	h2k-fetch --ca-file "$NFCD_CERT" -o o <in >out 2>err && test ! -s err &&
	m=$(ls -d o/*/.h2k-vm) && cat "$m" &&
	clean "$m" &&
	python3 -c "import json, sys; r = json.load(open(sys.argv[1])); assert r[\"name\"] == \"vm\x9b2J\u202ex\u2029\", r" "$m"
'

nfcd_stop
test_done
