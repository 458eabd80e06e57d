#!/usr/bin/env bash
# h2k-fetch: input lines that cJSON alone would let through (issue 10,
# item 15): an escaped NUL cutting a string short, invalid UTF-8, a key
# given twice.  Each is a bad line named by its number; the good lines
# still go through, and the exit is 5.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/servers/nfcd-lib.sh"

nfcd_start
mkdisk d1 20000
F="h2k-fetch --ca-file $NFCD_CERT"

# good VM, then the bad line, then another good VM; the bad line must be
# refused with its number and leave nothing on disk or on stdout
strict() { # DESC BADLINE WHY-REGEX
	lease_line good1 "$NFCD_URL/-/d1" >in &&
	printf '%s\n' "$1" >>in &&
	lease_line good2 "$NFCD_URL/-/d1" >>in &&
	expect_code 5 $F -o out <in >actual 2>err &&
	test_line_count = 2 actual &&
	grep "^h2k-fetch: stdin:2: $2" err &&
	test_line_count = 1 err &&
	ls out >dirs && printf "good1\ngood2\n" >want && test_cmp want dirs
}

test_expect_success '\u0000 inside the name: refused, not cut to vm-64' '
	strict "{\"name\":\"vm-64\\u0000x\",\"devices\":[{\"key\":\"k\",\"target_id\":\"disk-0.vmdk\",\"url\":\"$NFCD_URL/-/d1\"}]}" \
		"\\\\u0000 in a string (column [0-9]*)$"
'

test_expect_success '\u0000 inside a device URL: refused' '
	strict "{\"name\":\"vm-u\",\"devices\":[{\"key\":\"k\",\"target_id\":\"disk-0.vmdk\",\"url\":\"$NFCD_URL/-/d1\\u0000/../x\"}]}" \
		"\\\\u0000 in a string"
'

test_expect_success 'invalid UTF-8 in the name: refused, never sent on' '
	strict "$(printf "{\"name\":\"vm-\377\376\",\"devices\":[{\"key\":\"k\",\"target_id\":\"disk-0.vmdk\",\"url\":\"%s/-/d1\"}]}" "$NFCD_URL")" \
		"invalid UTF-8 (column 13)$" &&
	! grep -a "$(printf "\377")" err
'

test_expect_success 'UTF-8 surrogate (CESU) in a target id: refused' '
	strict "$(printf "{\"name\":\"vm-s\",\"devices\":[{\"key\":\"k\",\"target_id\":\"d\355\240\200.vmdk\",\"url\":\"%s/-/d1\"}]}" "$NFCD_URL")" \
		"invalid UTF-8"
'

test_expect_success 'duplicate top-level key: refused, not first-wins' '
	strict "{\"name\":\"vm-d\",\"name\":\"other\",\"devices\":[{\"key\":\"k\",\"target_id\":\"disk-0.vmdk\",\"url\":\"$NFCD_URL/-/d1\"}]}" \
		"duplicate key \"name\"$"
'

test_expect_success 'duplicate key inside a device: refused' '
	strict "{\"name\":\"vm-n\",\"devices\":[{\"key\":\"k\",\"target_id\":\"disk-0.vmdk\",\"url\":\"$NFCD_URL/-/d1\",\"url\":\"https://127.0.0.1:1/x\"}]}" \
		"duplicate key \"url\"$"
'

test_expect_success 'the same key in two objects and an escaped backslash are fine' '
	printf "{\"name\":\"vm-ok\",\"note\":\"a\\\\\\\\u0000\",\"x\":{\"k\":1},\"devices\":[{\"key\":\"k\",\"target_id\":\"disk-0.vmdk\",\"url\":\"%s/-/d1\"}]}\n" \
		"$NFCD_URL" >in && cat in &&
	$F -o out <in >actual 2>err &&
	test_line_count = 1 actual && test ! -s err &&
	python3 -c "import json,sys; o=json.load(open(\"actual\")); assert o[\"note\"]==\"a\\\\u0000\", o[\"note\"]" &&
	cmp out/vm-ok/disk-0.vmdk srv/d1
'

test_expect_success 'a line of NUL bytes is not blank: refused by number (attack)' '
	lease_line good1 "$NFCD_URL/-/d1" >in &&
	printf "\\000\\000 \\000\\n" >>in &&
	lease_line good2 "$NFCD_URL/-/d1" >>in &&
	test "$(sed -n 2p in | wc -c)" = 5 &&
	expect_code 5 $F -o out <in >actual 2>err && cat err &&
	test_line_count = 2 actual &&
	grep "^h2k-fetch: stdin:2: NUL byte in line$" err && test_line_count = 1 err
'

test_expect_code 2 'only a bad line: exit 2' '
	printf "{\"name\":\"a\",\"name\":\"b\"}\n" | $F -o out >actual 2>err; rc=$?
	grep -q "stdin:1: duplicate key" err && exit $rc
'

nfcd_stop
test_done
