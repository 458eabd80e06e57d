#!/usr/bin/env bash
# h2k-fetch on the rig serving disks as vSphere streams them (chunked, no
# length, no ranges), from a snapshot of a running VM: a killed run is
# redone from 0 and ends identical; a failure removes the snapshot.
. "$(dirname "$0")/../lib.sh"

sim_start -vm 1 -disk-size 2M -disk-fill random -power on -nfc-stream \
	-nfc-bps 500000 -lease-timeout 30
DS="$SIM_DSDIR/DC0-LocalDS_0"
snaps() { govc_ snapshot.tree -vm "$1" 2>/dev/null | grep -c . || :; }

test_expect_success 'a snapshot lease of a running VM' '
	h2k_login_sim && h2k-lease --snapshot /DC0/vm/DC0_H0_VM0 >lease0.json &&
	grep -q "\"mode\":\"snapshot\"" lease0.json &&
	test "$(snaps /DC0/vm/DC0_H0_VM0)" -ge 1
'

test_expect_success 'kill -9 mid-stream, rerun: the stream is taken again from 0, identical' '
	h2k-fetch -o out <lease0.json >out0.json 2>err0 &
	pid=$! && i=0 &&
	while [ "$(stat -c %s out/DC0_H0_VM0/disk1.vmdk.part 2>/dev/null || echo 0)" -lt 500000 ] &&
		[ $i -lt 600 ] && kill -0 $pid 2>/dev/null; do i=$((i + 1)); sleep 0.1; done &&
	kill -9 $pid; wait $pid; test $? = 137 &&
	test -s out/DC0_H0_VM0/disk1.vmdk.part &&
	h2k-fetch -o out --progress json <lease0.json >out0.json 2>prog0 &&
	cmp out/DC0_H0_VM0/disk1.vmdk "$DS/DC0_H0_VM0/disk1.vmdk" &&
	grep -q "\"sha256\":\"$(sha256sum <"$DS/DC0_H0_VM0/disk1.vmdk" | cut -d" " -f1)\"" out0.json &&
	python3 - "$TRASH/prog0" <<-\PY
	import json, sys
	for line in open(sys.argv[1]):
	    o = json.loads(line)
	    # no length, no device size: the percent is of the lease capacity
	    assert o["bytes_total"] is None or o["phase"] == "done", o
	    assert o["capacity_bytes"] == 2097152, o
	    if o["phase"] != "done":
	        assert 0 <= o["percent_complete"] <= 99.9, o
	    else:
	        assert o["percent_complete"] == 100
	PY
'

test_expect_success 'a failure aborts the lease and removes the temporary snapshot' '
	h2k-lease --snapshot /DC0/vm/DC0_C0_RP0_VM0 >lease1.json &&
	n=$(snaps /DC0/vm/DC0_C0_RP0_VM0) && test "$n" -ge 1 &&
	mkdir -p out1/DC0_C0_RP0_VM0/disk1.vmdk.part &&
	expect_code 8 h2k-fetch -o out1 <lease1.json >out1.json 2>err1 &&
	test_one_line err1 &&
	test "$(snaps /DC0/vm/DC0_C0_RP0_VM0)" = 0
'

test_expect_success '--keep-lease keeps the snapshot too' '
	h2k-lease --snapshot /DC0/vm/DC0_C0_RP0_VM0 >lease2.json &&
	expect_code 8 h2k-fetch -o out1 --keep-lease <lease2.json 2>err2 &&
	test "$(snaps /DC0/vm/DC0_C0_RP0_VM0)" -ge 1
'

test_done
