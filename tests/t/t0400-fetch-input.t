#!/usr/bin/env bash
# h2k-fetch: usage, input lines, URL policy, session rules.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/servers/nfcd-lib.sh"

nfcd_start
mkdisk d1 100000
F="h2k-fetch --ca-file $NFCD_CERT"

test_expect_success 'no -o is a usage error naming -o' '
	echo | expect_code 2 h2k-fetch 2>err && grep -q -- "-o DIR is required" err
'
test_expect_code 2 'bad --progress value' 'h2k-fetch -o out --progress loud </dev/null'
test_expect_code 2 'bad -j value' 'h2k-fetch -o out -j 0 </dev/null'
test_expect_code 2 'malformed --thumbprint' 'h2k-fetch -o out --thumbprint host=abc </dev/null'

if command -v groff >/dev/null; then
test_expect_success 'usage text equals the man page SYNOPSIS' '
	expect_code 2 h2k-fetch --help 2>usage &&
	sed -e "s/^usage: //" usage | tr -s " \t\n" "   " | sed "s/ *$//" >want &&
	groff -Tascii -mandoc "$SRC_DIR/man/h2k-fetch.1" 2>/dev/null | col -b |
		sed -n "/^SYNOPSIS/,/^DESCRIPTION/p" | sed "1d;\$d" |
		tr -s " \t\n" "   " | sed -e "s/^ *//" -e "s/ *$//" >got &&
	test -s got && test_cmp want got
'
else
	test_skip 'usage text equals the man page SYNOPSIS' 'groff not installed'
fi

test_expect_code 0 'empty input: nothing to do, success' '
	h2k-fetch -o out </dev/null >actual && test ! -s actual && exit 0
'

test_expect_success 'bad lines are named by number, good ones go through (exit 5)' '
	{ lease_line vm1 "$NFCD_URL/-/d1"; echo "{not json"; echo "[1,2]";
	  echo "{\"name\":\"x\"}"; lease_line vm2 "$NFCD_URL/-/d1"; } >in &&
	expect_code 5 $F -o out <in >actual 2>err &&
	test_line_count = 2 actual &&
	grep -q "^h2k-fetch: stdin:2: " err && grep -q "^h2k-fetch: stdin:3: " err &&
	grep -q "^h2k-fetch: stdin:4: no \"devices\"" err &&
	test_line_count = 3 err &&
	cmp out/vm1/disk-0.vmdk srv/d1 && cmp out/vm2/disk-0.vmdk srv/d1
'

test_expect_code 2 'only bad lines: exit 2' '
	printf "{}\n[]\n" | $F -o out >actual 2>err; rc=$?; test_line_count = 2 err && exit $rc
'

test_expect_success 'output line carries the input fields plus dir and files' '
	printf "{\"name\":\"vm3\",\"extra\":{\"a\":1},\"devices\":[{\"key\":\"/vm-1/ctl0:0\",\"target_id\":\"disk-0.vmdk\",\"disk\":true,\"size\":100000,\"url\":\"%s\"}]}\n" \
		"$NFCD_URL/-/d1" | $F -o out >actual &&
	python3 - "$TRASH" <<-\PY
	import json, sys, hashlib, os
	t = sys.argv[1]
	o = json.loads(open(t + "/actual").read())
	assert o["extra"] == {"a": 1}, o
	assert o["dir"] == os.path.realpath(t + "/out/vm3"), o["dir"]
	f, = o["files"]
	assert f["key"] == "/vm-1/ctl0:0" and f["target_id"] == "disk-0.vmdk"
	assert f["path"] == o["dir"] + "/disk-0.vmdk"
	data = open(f["path"], "rb").read()
	assert f["size"] == len(data) == 100000
	assert f["sha256"] == hashlib.sha256(data).hexdigest()
	PY
'

test_expect_success 'http device URL refused without --allow-http, bad line' '
	lease_line vm4 "http://127.0.0.1:1/f/-/d1" >in &&
	expect_code 2 $F -o out <in 2>err &&
	grep -q "stdin:1: devices\[0\]: URL .* is not https (use --allow-http" err &&
	test ! -e out/vm4
'

test_expect_success 'unsubstituted * host refused' '
	lease_line vm5 "https://*/nfc/x/disk-0.vmdk" >in &&
	expect_code 2 $F -o out <in 2>err &&
	grep -q "still has the host" err
'

test_expect_success 'certificate not trusted without --ca-file: exit 4, nothing written' '
	lease_line vm6 "$NFCD_URL/-/d1" >in &&
	expect_code 4 h2k-fetch -o out <in 2>err &&
	test_one_line err && grep -q "certificate" err &&
	test ! -e out/vm6/disk-0.vmdk
'

test_expect_success 'pinned thumbprint accepted, wrong pin refused (exit 4)' '
	fp=$(openssl x509 -in "$NFCD_CERT" -noout -fingerprint -sha256 | cut -d= -f2) &&
	lease_line vm7 "$NFCD_URL/-/d1" >in &&
	h2k-fetch -o out --thumbprint "127.0.0.1=$fp" <in >/dev/null &&
	cmp out/vm7/disk-0.vmdk srv/d1 &&
	lease_line vm8 "$NFCD_URL/-/d1" >in &&
	expect_code 4 h2k-fetch -o out --thumbprint "127.0.0.1=$(echo $fp | tr 0-9A-F 1-9A-F0)" <in 2>err &&
	grep -q "pinned thumbprint" err && test ! -e out/vm8/disk-0.vmdk
'

test_expect_code 3 'a missing explicit session file is an error' '
	lease_line vm9 "$NFCD_URL/-/d1" | $F -s "$TRASH/nope.json" -o out
'

test_expect_success 'a lease line without a session fails that VM (no keepalive), exit 3' '
	printf "{\"name\":\"vm10\",\"lease\":{\"moref\":\"session[1]lease\",\"timeout_s\":300},\"devices\":[{\"key\":\"k\",\"target_id\":\"d.vmdk\",\"url\":\"%s\"}]}\n" \
		"$NFCD_URL/bps=200000/d1" >in &&
	expect_code 3 $F -o out <in >actual 2>err &&
	grep -q "vm10: lease session\[1\]lease: no session" err &&
	test ! -s actual && test ! -e out/vm10/d.vmdk
'

test_expect_success 'session cookie is sent with every device GET on the session host' '
	mkdir -p -m 700 sess &&
	printf "{\"url\":\"https://127.0.0.1:$NFCD_PORT/sdk\",\"cookie\":\"c0ffee\",\"insecure\":false,\"user\":\"u\",\"created_at\":\"2026-01-01T00:00:00Z\"}\n" >sess/s.json &&
	chmod 600 sess/s.json &&
	lease_line vm11 "$NFCD_URL/cookie=1/d1" >in &&
	$F -s sess/s.json -o out <in >actual &&
	cmp out/vm11/disk-0.vmdk srv/d1 &&
	requests "/cookie=1/" | grep -q "\"cookie\": true"
'

test_expect_success 'without a session no cookie: a server that wants one gets 401, exit 3' '
	lease_line vm12 "$NFCD_URL/cookie=1/d1" >in &&
	expect_code 3 $F -o out <in 2>err &&
	grep -q "HTTP 401" err && test ! -e out/vm12/disk-0.vmdk
'

test_expect_success '--disks-only skips non-disk devices; default takes them' '
	printf "{\"name\":\"vm13\",\"devices\":[{\"key\":\"a\",\"target_id\":\"disk-0.vmdk\",\"disk\":true,\"url\":\"%s\"},{\"key\":\"b\",\"target_id\":\"vm.nvram\",\"disk\":false,\"url\":\"%s\"}]}\n" \
		"$NFCD_URL/-/d1" "$NFCD_URL/-/d1" >in &&
	$F -o all <in >a1 && $F --disks-only -o only <in >a2 &&
	test -f all/vm13/vm.nvram && test ! -e only/vm13/vm.nvram &&
	grep -o "\"files\":.*" a1 | grep -q "vm.nvram\",\"disk\":false" &&
	! grep -o "\"files\":.*" a2 | grep -q nvram
'

nfcd_stop
test_done
