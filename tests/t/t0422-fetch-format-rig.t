#!/usr/bin/env bash
# h2k-fetch --format against the vSphere rig: disks served as ESXi streams
# them (-stream-vmdk: streamOptimized, chunked, no ranges) when the rig
# can, else as plain bytes, into raw and qcow2 images identical to the
# datastore's disk files (qemu-img compare), the qcow2 clean (qemu-img
# check); a cut stream restarts and ends identical.
. "$(dirname "$0")/../lib.sh"

if ! command -v qemu-img >/dev/null; then
	test_skip 'h2k-fetch --format on the rig' 'no qemu-img (scripts/deps installs qemu-utils)'
	test_done
fi
# the rig's streamOptimized mode, when this rig has it
mode=plain fill=pattern
if "$SIM_BIN" -h 2>&1 | grep -q -- -stream-vmdk; then
	mode=stream fill=mix
fi
set -- -vm 1 -disks 1 -disk-size 3M -disk-fill $fill -power off
[ $mode = plain ] || set -- "$@" -stream-vmdk -nfc-cut-random 2
say "rig mode: $mode"
sim_start "$@"
DS="$SIM_DSDIR/DC0-LocalDS_0"

# src JSON N: the datastore file behind files[N]
src() {
	python3 - "$1" "$2" "$DS" <<-\PY
	import json, os, sys
	o = json.loads(open(sys.argv[1]).read())
	f = o["files"][int(sys.argv[2])]
	url = {d["key"]: d["url"] for d in o["devices"]}[f["key"]]
	print(os.path.join(sys.argv[3], o["name"], url.rsplit("/", 1)[1]))
	PY
}

test_expect_success 'log in, lease the VM' '
	h2k_login_sim && h2k-lease /DC0/vm/DC0_H0_VM0 >lease.json
'

test_expect_success "--format qcow2 ($mode): two disks identical, check clean" '
	H2K_LOG_LEVEL=info h2k-fetch -o out --format qcow2 <lease.json >q.json 2>q.err &&
	test "$(jget q.json files.*.format | sort -u)" = qcow2 &&
	if [ $mode = stream ]; then
		# the rig cut both streams once: each restarted from 0
		grep "; retry" q.err && test "$(grep -c "; retry" q.err)" = 2
	fi &&
	for i in 0 1; do
		f=$(jget q.json files.$i.path) && s=$(src q.json $i) &&
		echo "$f <- $s" && case $f in *.qcow2) ;; *) false ;; esac &&
		qemu-img check -q "$f" &&
		qemu-img compare -q -f raw -F qcow2 "$s" "$f" &&
		test "$(jget q.json files.$i.capacity_bytes)" = "$(stat -c %s "$s")" &&
		test "$(jget q.json files.$i.sha256)" = "$(sha256sum <"$f" | cut -d" " -f1)" || return 1
	done
'

test_expect_success "--format raw ($mode): identical to the disk files" '
	h2k-lease /DC0/vm/DC0_H0_VM0 >lease2.json &&
	h2k-fetch -q -o out --overwrite --format raw <lease2.json >r.json &&
	for i in 0 1; do
		f=$(jget r.json files.$i.path) && s=$(src r.json $i) &&
		case $f in *.raw) ;; *) false ;; esac && cmp "$s" "$f" || return 1
	done
'

test_expect_success "--format vmdk ($mode): saved as served, the kind said" '
	h2k-lease /DC0/vm/DC0_H0_VM0 >lease3.json &&
	h2k-fetch -q -o out3 <lease3.json >v.json &&
	f=$(jget v.json files.0.path) && s=$(src v.json 0) &&
	if [ $mode = stream ]; then
		test "$(jget v.json files.0.format)" = vmdk &&
		test "$(jget v.json files.0.vmdk_subformat)" = streamOptimized &&
		qemu-img compare -q -f vmdk -F raw "$f" "$s"
	else
		test "$(jget v.json files.0.format)" = raw &&
		test -z "$(jget v.json files.0.vmdk_subformat)" && cmp "$f" "$s"
	fi
'

test_done
