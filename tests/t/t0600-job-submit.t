#!/usr/bin/env bash
# h2k-job submit: job files of hyper2kvm-providers in YAML and JSON, single
# and batch; every invalid file refused with FILE:LINE and the key, exit 2,
# nothing enqueued.
. "$(dirname "$0")/../lib.sh"

export H2K_SPOOL="$TRASH/spool"
queued() { ls "$H2K_SPOOL/new" | wc -l; }

# refused FILE LINE KEY: submit must exit 2 naming FILE:LINE and KEY, one
# line on stderr plus "nothing submitted", and leave the queue empty.
refused() {
	expect_code 2 h2k-job submit "$1" >out 2>err &&
	test ! -s out &&
	grep -F "h2k-job: $1:$2: " err &&
	grep -F "'$3'" err &&
	grep -Fx "h2k-job: nothing submitted" err &&
	test_line_count = 2 err &&
	test "$(queued)" = 0
}

cat >single.yaml <<'Y'
# the README's single VM
name: "vm-export-1"
vm_path: "/datacenter/vm/my-vm"
output_path: "/tmp/export"
options:
  parallel_downloads: 4
  remove_cdrom: true
Y
cat >batch.yaml <<'Y'
jobs:
  - name: "vm-1"
    vm_path: "/datacenter/vm/vm-1"
    output_path: "/tmp/export-1"

  - name: "vm-2"
    vm_path: "/datacenter/vm/vm-2"
    output_path: "/tmp/export-2"
    options: {snapshot: yes, ova: on}
Y
cat >single.json <<'J'
{"name": "my-export", "vm_path": "/datacenter/vm/my-vm",
 "output_path": "/tmp/export",
 "options": {"parallel_downloads": 4, "remove_cdrom": true}}
J
cat >batch.json <<'J'
{"jobs": [
  {"vm_path": "/dc/vm/a", "output_path": "rel/out"},
  {"vm_path": "/dc/vm/b", "output_path": "/o", "options": {"power_off": true}},
  {"vm_path": "/dc/vm/c", "output_path": "/o", "options": {"shutdown": false}}
]}
J

test_expect_success 'single YAML job: one JSON line, pending, with id and options' '
	h2k-job submit single.yaml >out &&
	test_line_count = 1 out &&
	python3 -c "
import json,sys
j=json.loads(open(\"out\").read())
assert j[\"status\"]==\"pending\" and j[\"name\"]==\"vm-export-1\", j
assert j[\"vm_path\"]==\"/datacenter/vm/my-vm\" and j[\"output_path\"]==\"/tmp/export\"
assert j[\"options\"][\"parallel_downloads\"]==4 and j[\"options\"][\"remove_cdrom\"] is True
assert j[\"options\"][\"snapshot\"] is False and j[\"attempts\"]==0
assert j[\"progress\"]=={\"phase\":\"queued\",\"percent_complete\":0,\"bytes_done\":0,\"bytes_total\":0}
for k in (\"result\",\"error\",\"started_at\",\"finished_at\"): assert j[k] is None, k
assert j[\"source\"]==\"single.yaml:2\"
" &&
	test "$(queued)" = 1 &&
	test "$(file_mode "$H2K_SPOOL")" = 700 &&
	test "$(file_mode "$H2K_SPOOL/new")" = 700
'

test_expect_success 'the record in new/ is the line printed, and ls shows it' '
	id=$(python3 -c "import json;print(json.load(open(\"out\"))[\"id\"])") &&
	test -f "$H2K_SPOOL/new/$id" &&
	test "$(file_mode "$H2K_SPOOL/new/$id")" = 600 &&
	h2k-job ls >ls.out && test_cmp out ls.out &&
	h2k-job show "$id" >show.out && test_cmp out show.out &&
	h2k-job show "${id%.*}" >prefix.out && test_cmp out prefix.out
'

test_expect_success 'batch YAML: one line per job, in file order, options parsed' '
	rm -rf "$H2K_SPOOL" &&
	h2k-job submit batch.yaml >out &&
	test_line_count = 2 out &&
	python3 -c "
import json
a,b=[json.loads(l) for l in open(\"out\")]
assert (a[\"name\"],b[\"name\"])==(\"vm-1\",\"vm-2\")
assert b[\"options\"][\"snapshot\"] is True and b[\"options\"][\"ova\"] is True
assert \"parallel_downloads\" not in a[\"options\"]
assert a[\"source\"]==\"batch.yaml:2\" and b[\"source\"]==\"batch.yaml:6\"
assert a[\"id\"]!=b[\"id\"]
" &&
	h2k-job ls >ls.out && test_cmp out ls.out
'

test_expect_success 'single and batch JSON, relative output_path made absolute' '
	rm -rf "$H2K_SPOOL" &&
	h2k-job submit single.json batch.json >out &&
	test_line_count = 4 out &&
	python3 -c "
import json,os
j=[json.loads(l) for l in open(\"out\")]
assert j[0][\"name\"]==\"my-export\" and j[0][\"options\"][\"parallel_downloads\"]==4
assert j[1][\"name\"]==\"a\" and j[1][\"output_path\"]==os.getcwd()+\"/rel/out\", j[1]
assert j[2][\"options\"][\"power_off\"] is True
" &&
	test "$(queued)" = 4
'

test_expect_success 'a job file on stdin' '
	rm -rf "$H2K_SPOOL" &&
	h2k-job submit - <single.json >out &&
	test_line_count = 1 out && test "$(queued)" = 1
'

rm -rf "$H2K_SPOOL"

cat >unknown.yaml <<'Y'
name: x
vm_path: /dc/vm/x
output_path: /o
compress: true
Y
test_expect_success 'unknown key: refused with file:line and key' '
	refused unknown.yaml 4 compress
'

cat >unknown-opt.yaml <<'Y'
jobs:
  - vm_path: /dc/vm/x
    output_path: /o
  - vm_path: /dc/vm/y
    output_path: /o
    options:
      remove_cdrom: true
      turbo: 11
Y
test_expect_success 'unknown option in the second job of a batch: jobs[1].options.turbo' '
	refused unknown-opt.yaml 8 jobs[1].options.turbo
'

cat >type.yaml <<'Y'
vm_path: /dc/vm/x
output_path: /o
options:
  parallel_downloads: four
Y
test_expect_success 'wrong type (integer expected): refused with line and key' '
	refused type.yaml 4 options.parallel_downloads &&
	grep "expected an integer" err
'

cat >type2.yaml <<'Y'
vm_path: /dc/vm/x
output_path: [a, b]
Y
test_expect_success 'wrong type (a list for a path): refused' '
	refused type2.yaml 2 output_path
'

cat >range.yaml <<'Y'
vm_path: /dc/vm/x
output_path: /o
options: {parallel_downloads: 0}
Y
test_expect_success 'parallel_downloads out of range: refused' '
	refused range.yaml 3 options.parallel_downloads
'

cat >missing.yaml <<'Y'
name: x
vm_path: /dc/vm/x
Y
test_expect_success 'missing output_path: refused naming the key' '
	refused missing.yaml 1 output_path
'

cat >missing-batch.json <<'J'
{"jobs": [
  {"vm_path": "/dc/vm/a", "output_path": "/o"},
  {"output_path": "/o"}
]}
J
test_expect_success 'missing vm_path in a JSON batch: refused with its line' '
	refused missing-batch.json 3 jobs[1].vm_path
'

cat >syntax.yaml <<'Y'
name: x
vm_path: /dc/vm/x
  output_path: /o
options: {remove_cdrom: true
Y
test_expect_success 'bad YAML syntax: refused with a line number' '
	expect_code 2 h2k-job submit syntax.yaml 2>err &&
	grep -E "^h2k-job: syntax.yaml:[0-9]+: YAML syntax error" err &&
	test "$(queued)" = 0
'

cat >syntax.json <<'J'
{"vm_path": "/dc/vm/x",
 "output_path": "/o",
 "options": {"ova": true,}
}
J
test_expect_success 'bad JSON syntax: refused with its line' '
	expect_code 2 h2k-job submit syntax.json 2>err &&
	grep -E "^h2k-job: syntax.json:3: JSON syntax error" err &&
	test "$(queued)" = 0
'

cat >jtype.json <<'J'
{"vm_path": "/dc/vm/x", "output_path": "/o",
 "options": {"parallel_downloads": "4", "remove_cdrom": "yes"}}
J
test_expect_success 'JSON keeps its types: "4" is a string, not an integer' '
	refused jtype.json 2 options.parallel_downloads
'

cat >cred.yaml <<'Y'
name: x
vm_path: /dc/vm/x
output_path: /o
Password: "hunter2-secret"
Y
test_expect_success 'a job with a Password is refused and the value never echoed' '
	refused cred.yaml 4 Password &&
	grep "credentials are not allowed" err &&
	! grep -r hunter2 err out "$H2K_SPOOL"
'

cat >cred.json <<'J'
{"jobs": [{"vm_path": "/dc/vm/x", "output_path": "/o",
           "credentials": {"user": "root", "password": "hunter2-secret"}}]}
J
test_expect_success 'credentials in a JSON batch job are refused too' '
	refused cred.json 2 jobs[0].credentials &&
	! grep hunter2 err
'

cat >dup.yaml <<'Y'
vm_path: /dc/vm/x
output_path: /o
vm_path: /dc/vm/y
Y
test_expect_success 'a duplicate key is refused, naming both lines' '
	refused dup.yaml 3 vm_path && grep "first on line 1" err
'

cat >alias.yaml <<'Y'
a: &x [1, 2]
jobs:
  - vm_path: *x
    output_path: /o
Y
test_expect_success 'YAML aliases are refused (no billion laughs)' '
	expect_code 2 h2k-job submit alias.yaml 2>err &&
	grep -F "alias.yaml:3: YAML aliases are not allowed" err
'

cat >excl.yaml <<'Y'
vm_path: /dc/vm/x
output_path: /o
options: {snapshot: true, power_off: true}
Y
test_expect_success 'snapshot and power_off together are refused' '
	refused excl.yaml 3 options
'

test_expect_success 'one bad file among good ones: nothing at all is queued' '
	expect_code 2 h2k-job submit single.yaml batch.json unknown.yaml >out 2>err &&
	test ! -s out && test "$(queued)" = 0 &&
	grep -F "unknown.yaml:4" err
'

test_expect_success 'every bad file is reported, not just the first' '
	expect_code 2 h2k-job submit unknown.yaml type.yaml 2>err &&
	grep -F "unknown.yaml:4" err && grep -F "type.yaml:4" err
'

test_expect_code 6 'a missing job file: exit 6' '
	h2k-job submit no-such.yaml
'

test_expect_success 'empty file and a bare scalar are refused' '
	: >empty.yaml && echo hello >scalar.yaml &&
	expect_code 2 h2k-job submit empty.yaml 2>err &&
	grep -F "empty.yaml" err &&
	expect_code 2 h2k-job submit scalar.yaml 2>err &&
	grep -F "scalar.yaml:1" err
'

test_expect_success 'ls --status and show of an unknown id' '
	rm -rf "$H2K_SPOOL" &&
	h2k-job submit batch.yaml >/dev/null &&
	h2k-job ls --status pending >p && test_line_count = 2 p &&
	h2k-job ls --status completed >c && test_line_count = 0 c &&
	expect_code 2 h2k-job ls --status bogus 2>err &&
	grep -F "bogus" err &&
	expect_code 6 h2k-job show 123.456.789.abcd 2>err &&
	test_one_line err
'

test_expect_success 'status counts jobs by status' '
	h2k-job status >st &&
	python3 -c "
import json
s=json.load(open(\"st\"))
assert s[\"counts\"]=={\"pending\":2,\"running\":0,\"completed\":0,\"failed\":0,\"cancelled\":0}, s
assert s[\"runners\"]==[] and s[\"bad\"]==0
"
'

test_expect_code 11 'a group-writable spool is refused (exit 11)' '
	chmod 770 "$H2K_SPOOL" && h2k-job --spool "$H2K_SPOOL" ls
'

test_expect_success '--spool beats H2K_SPOOL' '
	chmod 700 "$H2K_SPOOL" &&
	h2k-job --spool "$TRASH/other" submit single.yaml >/dev/null &&
	test "$(ls "$TRASH/other/new" | wc -l)" = 1
'

# The default is not created by read-only commands, so this is safe as root.
if [ "$(id -u)" = 0 ]; then want=/var/spool/h2k; else want=$XDG_STATE_HOME/h2k/spool; fi
test_expect_success "default spool is $want; ls/status do not create it" '
	(unset H2K_SPOOL; h2k-job status >st) &&
	python3 -c "import json,sys; assert json.load(open(\"st\"))[\"spool\"]==sys.argv[1]" "$want" &&
	h2k-job --spool "$TRASH/nope" ls >out && test ! -s out &&
	test ! -e "$TRASH/nope" &&
	expect_code 6 h2k-job --spool "$TRASH/nope" show 1.2.3.4 2>err &&
	test_one_line err && test ! -e "$TRASH/nope"
'

test_expect_code 2 'options of another command are refused' '
	h2k-job ls --workers 3
'

test_done
