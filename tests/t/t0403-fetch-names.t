#!/usr/bin/env bash
# h2k-fetch: names from the server cannot escape the output folder or clash.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/servers/nfcd-lib.sh"

nfcd_start
mkdisk d 50000
U="$NFCD_URL/-/d"
F="h2k-fetch --ca-file $NFCD_CERT -q"

# a line with hostile target ids (JSON-escaped control characters)
cat >in <<EOF2
{"name":"evil","devices":[
{"key":"a","target_id":"../../etc/cron.d/x","url":"$U"},
{"key":"b","target_id":"/etc/passwd","url":"$U"},
{"key":"c","target_id":"a\nb\u001b[2Jc","url":"$U"},
{"key":"d","target_id":"","url":"$U"},
{"key":"e","target_id":".","url":"$U"},
{"key":"f","target_id":"..","url":"$U"},
{"key":"g","target_id":"disk.vmdk","url":"$U"},
{"key":"h","target_id":"disk.vmdk","url":"$U"},
{"key":"i","target_id":"disk.vmdk.part","url":"$U"},
{"key":"j","target_id":"-rf","url":"$U"},
{"key":"k","target_id":"$(printf 'x%.0s' $(seq 300)).vmdk","url":"$U"}]}
EOF2
tr -d '\n' <in | sed 's/$/\n/' >in1

test_expect_success 'hostile target ids land inside the VM folder, all distinct' '
	mkdir -p canary && : >canary/keep &&
	$F -o out/x <in1 >actual &&
	test "$(find out -type f -not -name ".h2k-*" | wc -l)" = 11 &&
	test "$(find "$TRASH" -newer canary/keep -type f -not -path "$TRASH/out/*" \
		-not -path "$TRASH/srv/*" -not -name actual -not -name ".out" | wc -l)" = 0 &&
	test "$(find out/x -mindepth 2 -type d | wc -l)" = 0 &&
	for f in out/x/evil/*; do cmp "$f" srv/d || exit 1; done
'

test_expect_success 'the expected safe names' '
	ls out/x/evil | LC_ALL=C sort >names &&
	for n in ___.._etc_cron.d_x _etc_passwd a_b_[2Jc device-3 _ __ disk.vmdk disk-2.vmdk \
		disk.vmdk.part_ _rf; do
		grep -qxF -- "$n" names || { echo "missing $n"; cat names; exit 1; }
	done &&
	long=$(grep "^xxx" names) && test ${#long} = 200 && case $long in *.vmdk) ;; *) false;; esac
'

test_expect_success 'the output maps each key to its own path, target ids kept verbatim' '
	python3 - "$TRASH/actual" <<-\PY
	import json, sys, os
	o = json.loads(open(sys.argv[1]).read())
	paths = [f["path"] for f in o["files"]]
	assert len(paths) == len(set(paths)) == 11
	for f in o["files"]:
	    assert os.path.dirname(f["path"]) == o["dir"], f
	    assert os.path.isfile(f["path"])
	assert o["files"][0]["target_id"] == "../../etc/cron.d/x"
	PY
'

test_expect_success 'hostile VM names become one folder each; same names do not clash' '
	{ lease_line "../../../tmp/escape" "$U"; lease_line "../../../tmp/escape" "$U";
	  lease_line ".." "$U"; lease_line "" "$U"; } >in2 &&
	$F -o out/y <in2 >actual2 &&
	test_line_count = 4 actual2 &&
	test "$(ls out/y | wc -l)" = 4 && test ! -e "$TRASH/tmp" &&
	test -f out/y/___.._.._tmp_escape/disk-0.vmdk &&
	test -f out/y/___.._.._tmp_escape-2/disk-0.vmdk &&
	test -f out/y/__/disk-0.vmdk && test -f out/y/vm/disk-0.vmdk
'

test_expect_success 'a symlink planted at NAME.part is not followed' '
	mkdir -p out/z/sym && ln -s "$TRASH/victim" out/z/sym/disk-0.vmdk.part &&
	lease_line sym "$U" >in3 &&
	expect_code 8 $F -o out/z <in3 2>err &&
	test ! -e "$TRASH/victim" && grep -q "disk-0.vmdk.part" err
'

nfcd_stop
test_done
