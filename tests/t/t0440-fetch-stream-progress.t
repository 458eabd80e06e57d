#!/usr/bin/env bash
# h2k-fetch on disks of unknown length (chunked, no ranges, no size in the
# lease, as vSphere streams them): percent, ETA and the lease keepalive's
# percent come from the disk's capacity; a cut stream restarts from 0 and
# ends identical; bad capacities are ignored.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/servers/nfcd-lib.sh"

nfcd_start
mkdisk a.img 1048576
mkdisk b.img 1572864

# progress_check FILE: every line honest; per file, at least one download
# line with a percent strictly between 0 and 100 and a number for eta_s,
# and its capacity_bytes as given.  Prints "file capacity" per file.
progress_check() {
	python3 - "$1" <<-\PY
	import json, sys
	seen = {}
	for line in open(sys.argv[1]):
	    o = json.loads(line)
	    f = o["file"]
	    s = seen.setdefault(f, {"mid": 0, "eta": 0, "cap": None, "done": 0})
	    assert o["bytes_total"] is None or o["phase"] == "done", o
	    s["cap"] = o.get("capacity_bytes")
	    p = o["percent_complete"]
	    if o["phase"] == "done":
	        assert p == 100 and o["eta_s"] == 0, o
	        s["done"] = 1
	        continue
	    assert p is None or 0 <= p <= 99.9, o
	    if o["phase"] == "download" and p is not None and 0 < p < 100:
	        s["mid"] += 1
	        if isinstance(o["eta_s"], (int, float)) and o["eta_s"] >= 0:
	            s["eta"] += 1
	for f, s in sorted(seen.items()):
	    assert s["done"] and s["mid"] > 0 and s["eta"] > 0, (f, s)
	    print(f, s["cap"])
	PY
}

test_expect_success 'two streams: percent and ETA from the capacities in disks[]' '
	u="$NFCD_URL/nolength=1,ranges=0,bps=400000,times=0" &&
	lease_line vm1 "$u/a.img" "$u/b.img" | python3 -c "
import json, sys
o = json.loads(sys.stdin.read())
o[\"disks\"] = [{\"key\": 1, \"capacity_bytes\": 1048576}, {\"key\": 2, \"capacity_bytes\": 1572864}]
print(json.dumps(o))" >in1 &&
	h2k-fetch --ca-file "$NFCD_CERT" --progress json -o out <in1 >out1.json 2>prog1 &&
	cmp out/vm1/disk-0.vmdk "$TRASH/srv/a.img" &&
	cmp out/vm1/disk-1.vmdk "$TRASH/srv/b.img" &&
	jget out1.json files.*.size >actual &&
	printf "%s\n" 1048576 1572864 >expect && test_cmp expect actual &&
	progress_check prog1 >actual &&
	printf "%s\n" "disk-0.vmdk 1048576" "disk-1.vmdk 1572864" >expect &&
	test_cmp expect actual
'

test_expect_success 'the bar shows the disk size, a percent and an ETA' '
	u="$NFCD_URL/nolength=1,ranges=0,bps=500000,times=0" &&
	lease_line vm2 "$u/a.img" | sed "s/\"disk\":true/&,\"capacity_bytes\":1048576/" >in2 &&
	h2k-fetch --ca-file "$NFCD_CERT" --progress bar -o out <in2 >out2.json 2>bar2 &&
	cmp out/vm2/disk-0.vmdk "$TRASH/srv/a.img" &&
	tr "\r" "\n" <bar2 | grep "vm2/disk-0.vmdk" >lines &&
	grep -E " [0-9]+% .*\(disk 1\.0 MiB\) .* ETA [0-9]+:[0-9]{2}" lines &&
	! grep -E " (1[0-9][0-9]|[2-9][0-9][0-9])% " lines
'

test_expect_success 'a stream cut three times restarts from 0 and ends identical' '
	u="$NFCD_URL/nolength=1,ranges=0,cut=rand,times=3,bps=2000000" &&
	lease_line vm3 "$u/b.img" | sed "s/\"disk\":true/&,\"capacity_bytes\":1572864/" >in3 &&
	h2k-fetch --ca-file "$NFCD_CERT" --progress json --retries 5 -o out <in3 >out3.json 2>prog3 &&
	cmp out/vm3/disk-0.vmdk "$TRASH/srv/b.img" &&
	test "$(jget out3.json files.0.size)" = 1572864 &&
	test "$(jget out3.json files.0.sha256)" = "$(sha256sum <"$TRASH/srv/b.img" | cut -d" " -f1)" &&
	requests "cut=rand" >reqs &&
	test_line_count = 4 reqs &&
	# every answer was the whole stream again (200): nothing was appended
	python3 - reqs <<-\PY &&
	import json, sys
	rs = [json.loads(l) for l in open(sys.argv[1])]
	assert all(r["status"] == 200 for r in rs), rs
	assert [r["how"] for r in rs].count("cut") == 3, rs
	PY
	grep -q "\"phase\":\"retry\"" prog3 &&
	python3 -c "
import json, sys
for l in open(sys.argv[1]):
    o = json.loads(l)
    p = o[\"percent_complete\"]
    assert p is None or p <= (100 if o[\"phase\"] == \"done\" else 99.9), o
" prog3
'

test_expect_success 'capacities that are not byte counts are ignored: no percent, no ETA' '
	u="$NFCD_URL/nolength=1,ranges=0,bps=1000000,times=0" &&
	lease_line vm4 "$u/a.img" "$u/b.img" | python3 -c "
import json, sys
o = json.loads(sys.stdin.read())
o[\"devices\"][0][\"capacity_bytes\"] = -5
o[\"devices\"][1][\"capacity_bytes\"] = \"1572864\"
o[\"disks\"] = [{\"capacity_bytes\": 1e30}]
o[\"lease\"] = None
print(json.dumps(o))" >in4 &&
	h2k-fetch --ca-file "$NFCD_CERT" --progress json -o out <in4 >out4.json 2>prog4 &&
	cmp out/vm4/disk-1.vmdk "$TRASH/srv/b.img" &&
	python3 -c "
import json, sys
n = 0
for l in open(sys.argv[1]):
    o = json.loads(l)
    assert \"capacity_bytes\" not in o, o
    if o[\"phase\"] != \"done\":
        n += 1
        assert o[\"percent_complete\"] is None and o[\"eta_s\"] is None, o
assert n > 0
" prog4
'

test_expect_success 'disks[] of another length than the disk devices is not used' '
	u="$NFCD_URL/nolength=1,ranges=0,bps=1000000,times=0" &&
	lease_line vm5 "$u/a.img" | python3 -c "
import json, sys
o = json.loads(sys.stdin.read())
o[\"disks\"] = [{\"capacity_bytes\": 1048576}, {\"capacity_bytes\": 2097152}]
print(json.dumps(o))" >in5 &&
	h2k-fetch --ca-file "$NFCD_CERT" --progress json -o out <in5 >out5.json 2>prog5 &&
	! grep -q capacity_bytes prog5
'
nfcd_stop

# The rig: a stream lease (no fileSize), the capacity from the lease's
# totalDiskCapacityInKB; the keepalive's percents are in the SOAP trace.
sim_start -vm 1 -disk-size 3M -disk-fill random -power off -nfc-stream \
	-nfc-bps 600000 -trace
DS="$SIM_DSDIR/DC0-LocalDS_0"

test_expect_success 'rig stream: percent from the lease capacity, keepalive percent between 0 and 100' '
	h2k_login_sim && h2k-lease /DC0/vm/DC0_H0_VM0 >lease.json &&
	test "$(jget lease.json lease.disk_capacity_bytes)" = 3145728 &&
	! grep -q "\"size\"" lease.json &&
	h2k-fetch -o rout --keepalive 1 --progress json <lease.json >rout.json 2>rprog &&
	cmp rout/DC0_H0_VM0/disk-0.vmdk "$DS/DC0_H0_VM0/disk1.vmdk" &&
	progress_check rprog >actual &&
	echo "disk-0.vmdk 3145728" >expect && test_cmp expect actual &&
	grep -o "<percent>[0-9]*</percent>" "$TRASH/sim.log" | tr -dc "0-9\n" >pcts &&
	python3 -c "
import sys
p = [int(x) for x in open(sys.argv[1]) if x.strip()]
assert len(p) >= 2 and any(0 < x < 100 for x in p), p
assert p == sorted(p) and max(p) < 100, p
" pcts
'

# ESXi's streams (the rig's -stream-vmdk, when it has it): compressed, so
# the bytes run behind the disk; decoded (--format raw), the percent is the
# decoder's disk position over the capacity from the stream's header.
if ! "$SIM_BIN" -h 2>&1 | grep -q -- -stream-vmdk; then
	test_skip 'decoded stream: percent from the disk position' 'this rig has no -stream-vmdk'
	test_done
fi
sim_stop
sim_start -vm 1 -disk-size 8M -disk-fill mix:1:1:2 -power off -stream-vmdk \
	-nfc-bps 700000
DS="$SIM_DSDIR/DC0-LocalDS_0"

test_expect_success 'decoded stream: percent from the disk position, ahead of the bytes' '
	h2k_login_sim && h2k-lease /DC0/vm/DC0_H0_VM0 | python3 -c "
import json, sys
o = json.loads(sys.stdin.read())
del o[\"lease\"][\"disk_capacity_bytes\"]   # the header alone gives it
print(json.dumps(o))" >slease.json &&
	h2k-fetch -o sout --format raw --progress json <slease.json >sout.json 2>sprog &&
	cmp sout/DC0_H0_VM0/disk-0.raw "$DS/DC0_H0_VM0/disk1.vmdk" &&
	progress_check sprog >actual &&
	echo "disk-0.raw 8388608" >expect && test_cmp expect actual &&
	python3 -c "
import json, sys
ahead = 0
for l in open(sys.argv[1]):
    o = json.loads(l)
    if o[\"phase\"] == \"download\" and o[\"percent_complete\"]:
        ahead += o[\"percent_complete\"] > 100.0 * o[\"bytes_done\"] / 8388608 + 5
assert ahead > 0
" sprog
'

test_expect_success 'saved as served (vmdk): the same position, from an observing decoder' '
	h2k-lease /DC0/vm/DC0_H0_VM0 | python3 -c "
import json, sys
o = json.loads(sys.stdin.read())
del o[\"lease\"][\"disk_capacity_bytes\"]
print(json.dumps(o))" >vlease.json &&
	h2k-fetch -o vout --progress json <vlease.json >vout.json 2>vprog &&
	test "$(jget vout.json files.0.vmdk_subformat)" = streamOptimized &&
	progress_check vprog >actual &&
	echo "disk-0.vmdk 8388608" >expect && test_cmp expect actual &&
	python3 -c "
import json, sys
ahead = 0
for l in open(sys.argv[1]):
    o = json.loads(l)
    if o[\"phase\"] == \"download\" and o[\"percent_complete\"]:
        ahead += o[\"percent_complete\"] > 100.0 * o[\"bytes_done\"] / 8388608 + 5
assert ahead > 0
" vprog
'

test_done
