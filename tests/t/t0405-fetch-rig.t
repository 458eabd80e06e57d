#!/usr/bin/env bash
# h2k-fetch against the vSphere rig: byte-identical disks, the lease kept
# alive past its timeout, abort (or not) on a fatal failure.
. "$(dirname "$0")/../lib.sh"

# 2 MiB disks at 300 kB/s: each download takes ~7 s, the lease times out
# after 6 (under valgrind, where every command is slow: 40 s and 30 s).
# The proof of the keepalive is that the download outlives the timeout
# (the rig cuts downloads of an expired lease); checks of the lease state
# after a command are only made where a slow machine cannot fake them.
LT=6 BPS=300000
[ -z "${H2K_VALGRIND:-}" ] || LT=30 BPS=50000
sim_start -vm 1 -disks 1 -disk-size 2M -disk-fill random -power off \
	-lease-timeout $LT -nfc-bps $BPS -trace
SESSION="$XDG_STATE_HOME/h2k/session.json"
state() { python3 "$TESTS_DIR/servers/lease-state.py" "$SESSION" "$1"; }
moref() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['lease']['moref'])" "$1"; }
DS="$SIM_DSDIR/DC0-LocalDS_0"

test_expect_success 'log in, lease a powered-off VM with two disks' '
	h2k_login_sim && h2k-lease /DC0/vm/DC0_H0_VM0 >lease0.json &&
	grep -q "\"timeout_s\":$LT" lease0.json
'

test_expect_success 'two random disks downloaded byte-identical, lease alive past its timeout' '
	t0=$(date +%s.%N) &&
	H2K_LOG_LEVEL=debug h2k-fetch -o out <lease0.json >out0.json 2>err0 &&
	t1=$(date +%s.%N) &&
	python3 -c "import sys; d=$t1-$t0; print(\"took\", d); sys.exit(0 if d > $LT + 0.5 else 1)" &&
	python3 - "$TRASH/out0.json" "$DS/DC0_H0_VM0" <<-\PY &&
	import json, sys, hashlib, os
	o = json.loads(open(sys.argv[1]).read())
	assert len(o["files"]) == 2, o["files"]
	urls = {d["key"]: d["url"] for d in o["devices"]}
	for f in o["files"]:
	    src = os.path.join(sys.argv[2], urls[f["key"]].rsplit("/", 1)[1])
	    want = open(src, "rb").read()
	    got = open(f["path"], "rb").read()
	    assert len(want) == 2 << 20 and got == want, f
	    assert f["sha256"] == hashlib.sha256(want).hexdigest()
	PY
	n=$(grep -c "<HttpNfcLeaseProgress" sim.log) && echo "progress calls: $n" &&
	test "$n" -ge 3 && ! grep -q "received no progress" sim.log
'

test_expect_success 'negative control: a keepalive slower than the timeout loses the lease' '
	h2k-lease /DC0/vm/DC0_C0_RP0_VM0 >lease1.json &&
	expect_code 7 h2k-fetch -o out --keepalive 3600 <lease1.json >out1.json 2>err1 &&
	test_one_line err1 && grep -q "is in error: .*no progress" err1 &&
	state "$(moref lease1.json)" | grep -q "^error: .*no progress" &&
	test ! -e out/DC0_C0_RP0_VM0/disk-0.vmdk && test -e out/DC0_C0_RP0_VM0/disk-0.vmdk.part
'

test_expect_success 'a fatal failure aborts the lease (HttpNfcLeaseAbort), .part kept' '
	h2k-lease /DC0/vm/DC0_C0_RP0_VM0 >lease2.json &&
	mkdir -p out2/DC0_C0_RP0_VM0/disk-1.vmdk.part &&
	expect_code 8 h2k-fetch -o out2 <lease2.json >out2.json 2>err2 &&
	test ! -s out2.json && grep -q "disk-1.vmdk.part" err2 &&
	m=$(moref lease2.json) &&
	grep -q "<HttpNfcLeaseAbort" sim.log &&
	case "$(state "$m")" in gone|error*) ;; *) false;; esac &&
	test ! -e out2/DC0_C0_RP0_VM0/disk-0.vmdk
'

test_expect_success '--keep-lease: the same failure leaves the lease ready' '
	h2k-lease /DC0/vm/DC0_H0_VM0 >lease3.json &&
	mkdir -p out3/DC0_H0_VM0/disk-1.vmdk.part &&
	n=$(grep -c "<HttpNfcLeaseAbort" sim.log) &&
	expect_code 8 h2k-fetch -o out3 --keep-lease <lease3.json 2>err3 &&
	st=$(state "$(moref lease3.json)") && echo "$st" &&
	case "$st" in ready|*"no progress"*) ;; *) false ;; esac &&
	test "$(grep -c "<HttpNfcLeaseAbort" sim.log)" = "$n"
'

test_done
