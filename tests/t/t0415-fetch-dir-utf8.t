#!/usr/bin/env bash
# An output folder whose path is not valid UTF-8 (a Latin-1 name, a
# non-UTF-8 current directory): JSON strings are UTF-8, and since issue
# 10 item 15 every stage refuses a line that is not.  h2k-fetch used to
# download everything and write "dir" and "path" with the raw bytes,
# which h2k-ovf then refused (and which reached the terminal raw through
# any tool showing the line); h2k-job submit recorded such a path for the
# runner.  Both now refuse it up front, exit 2.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/servers/nfcd-lib.sh"

nfcd_start
mkdisk d1 20000
F="h2k-fetch --ca-file $NFCD_CERT"
L1=$(printf 'caf\351')      # "cafe" with e-acute in Latin-1
export H2K_SPOOL="$TRASH/spool"

test_expect_success 'h2k-fetch -o LATIN1-DIR: exit 2 before any download' '
	lease_line vm1 "$NFCD_URL/-/d1" >in &&
	expect_code 2 $F -o "$L1/x" <in >out 2>err && cat err &&
	test ! -s out && test_one_line err &&
	grep "^h2k-fetch: .*/caf\\\\xe9/x: not valid UTF-8" err &&
	! grep -a "$(printf "\351")" err &&
	test -z "$(ls "$L1/x")" &&
	! requests /d1
'

test_expect_success 'relative -o under a Latin-1 current directory: exit 2' '
	mkdir -p "$L1" && lease_line vm2 "$NFCD_URL/-/d1" >in &&
	(cd "$L1" && expect_code 2 $F -o rel <../in >../out 2>../err) &&
	test ! -s out && grep "not valid UTF-8" err
'

test_expect_success 'a UTF-8 folder name still works, and the next stage reads the line' '
	lease_line vm3 "$NFCD_URL/-/d1" >in &&
	$F -o "café" <in >out 2>err && test ! -s err &&
	grep "\"dir\":\"[^\"]*/café/vm3\"" out &&
	$F -o again <out >out2 2>err2 && test ! -s err2 && test_line_count = 1 out2
'

test_expect_success 'h2k-job submit from a Latin-1 directory, relative output_path: exit 2' '
	printf "vm_path: /dc/vm/x\noutput_path: out\n" >"$L1/job.yaml" &&
	(cd "$L1" && expect_code 2 h2k-job submit job.yaml >../out 2>../err) &&
	cat err && test ! -s out &&
	grep "^h2k-job: output_path .out.: the current directory .*caf\\\\xe9 is not valid UTF-8" err &&
	test -z "$(ls "$H2K_SPOOL/new" 2>/dev/null)"
'

test_expect_success 'the same job with an absolute output_path is fine' '
	printf "vm_path: /dc/vm/x\noutput_path: /srv/out\n" >"$L1/job2.yaml" &&
	(cd "$L1" && h2k-job submit job2.yaml >../out 2>../err) &&
	test -s out && test ! -s err
'

test_expect_success 'h2k-job submit LATIN1-NAME.yaml: the record names it escaped, valid UTF-8' '
	f=$(printf "\233""2J\351.yaml") &&
	printf "vm_path: /dc/vm/y\noutput_path: /srv/out\n" >"$f" &&
	h2k-job submit "$f" >out 2>err && test ! -s err &&
	h2k-job ls >ls 2>err && test ! -s err &&
	grep -F "\"source\":\"\\\\x9b2J\\\\xe9.yaml:1\"" ls &&
	python3 -c "import sys, json; [json.loads(l) for l in open(\"ls\", \"rb\")]" &&
	! grep -a "$(printf "\233")" ls
'

nfcd_stop
test_done
