#!/usr/bin/env bash
# h2k-ovf --hyper2kvm-manifest handed to the real consumer, hyper2kvm
# 0.2.1: the manifest of a two-disk VM of the rig passes hyper2kvm's loader
# as written, both checksums are verified, each converted qcow2 is
# identical to the exported disk, and one flipped byte makes hyper2kvm
# refuse; every field is what h2k knows.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/h2kvm-lib.sh"

h2kvm_need

# Every rig VM has two disks (its own and one added) of random bytes.
sim_start -vm 2 -disks 1 -disk-size 1M -disk-fill random -power off
h2k_login_sim || { echo "Bail out! login failed"; exit 1; }
VM=/DC0/vm/DC0_H0_VM1

# check_fields MANIFEST LINE [fix OUTDIR]: the manifest says what the line
# and the files on disk say.
check_fields() {
	python3 - "$@" <<'PY'
import hashlib, json, math, os, sys
m = json.load(open(sys.argv[1], encoding="utf-8"))
line = json.loads(open(sys.argv[2]).readline())
fix = len(sys.argv) > 3
def need(c, what):
    if not c:
        sys.exit("wrong: " + what)
need(m["manifest_version"] == "1.0", "manifest_version")
need(m["source"]["provider"] == "vsphere", "provider")
need(m["source"]["vm_name"] == line["name"], "vm_name")
need(m["source"]["vm_id"] == line["moref"], "vm_id")
need(m["vm"]["cpu"] == line["num_cpu"], "cpu")
need(m["vm"]["mem_gb"] == max(1, math.ceil(line["memory_mb"] / 1024)), "mem_gb")
need(m["vm"]["firmware"] == {"bios": "bios", "efi": "uefi"}[line["firmware"]], "firmware")
need([n["network"] for n in m["nics"]] == [n["network"] for n in line["nics"]], "nics")
need([n["mac"] for n in m["nics"]] == [n["mac"] for n in line["nics"]], "nics mac")
disks = m["disks"]
need(len(disks) == 2 and len(line["files"]) == 2, "two disks")
need(len({d["id"] for d in disks}) == 2, "unique ids")
for d, f in zip(disks, line["files"]):
    p = os.path.realpath(f["path"])
    need(d["local_path"] == p and os.path.isabs(d["local_path"]), "local_path " + d["local_path"])
    data = open(p, "rb").read()
    need(d["checksum"] == "sha256:" + hashlib.sha256(data).hexdigest(), "checksum")
    need(d["bytes"] == len(data) == f["size"], "bytes")
    need(d["source_format"] == "raw" and data[:4] != b"KDMV", "source_format raw")
    need(d["capacity_bytes"] == 1048576, "capacity from h2k-ls")
    need(d["label"] == f["target_id"], "label")
    unit = int(f["key"].rsplit(":", 1)[1])
    need(d["boot_order_hint"] == unit, "boot order by unit number")
    need(d["disk_type"] == ("boot" if unit == 0 else "data"), "disk_type")
st = m["pipeline"]
need(st["convert"]["enabled"] and st["validate"]["enabled"], "convert, validate")
need(st["inspect"]["enabled"] == fix and st["fix"]["enabled"] == fix, "inspect, fix")
folder = os.path.basename(os.path.realpath(line["dir"]))
out = os.path.join(os.path.realpath(sys.argv[4]), folder) if fix else os.path.realpath(line["dir"])
need(m["output"]["directory"] == out, "output.directory " + m["output"]["directory"])
need(m["output"]["format"] == "qcow2", "output.format")
PY
}

# pairs MANIFEST: "OUTPUT.qcow2 LOCAL_PATH" per disk, where hyper2kvm
# writes each (output.directory/ID.FORMAT).
pairs() {
	python3 -c 'import json, sys
m = json.load(open(sys.argv[1]))
for d in m["disks"]:
    print(m["output"]["directory"] + "/" + d["id"] + "." + m["output"]["format"], d["local_path"])' "$1"
}

# flip FILE OFFSET: invert the low bit of one byte, in place.
flip() {
	python3 -c 'import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2])); b = f.read(1); f.seek(int(sys.argv[2])); f.write(bytes([b[0] ^ 1]))' "$1" "$2"
}

test_expect_success 'a two-disk VM exported with --hyper2kvm-manifest' '
	h2k-ls "$VM" | h2k-lease | h2k-fetch -o exp | h2k-ovf --hyper2kvm-manifest >line 2>err &&
	test_line_count = 1 line &&
	m=$(jget line hyper2kvm_manifest_path) &&
	test "$m" = "$(jget line dir)/DC0_H0_VM1.hyper2kvm.json" &&
	test "$(file_mode "$m")" = 644 && test_line_count = 1 "$m" &&
	! ls "$(jget line dir)" | grep -q "part\|XXXX" &&
	test "$(jget line lease.state)" = completed
'

test_expect_success 'every field is what the line and the files say' '
	check_fields "$(jget line hyper2kvm_manifest_path)" line
'

test_expect_success 'hyper2kvm --manifest on the file as written: exit 0, two checksums verified' '
	h2kvm --manifest "$(jget line hyper2kvm_manifest_path)" >h2kvm.log 2>&1 ||
		{ tail -n 20 h2kvm.log; false; } &&
	grep "Checksum verified" h2kvm.log >verified && test_line_count = 2 verified &&
	grep -q "Verified 2 checksum" h2kvm.log &&
	grep -q "Pipeline completed successfully" h2kvm.log
'

test_expect_success 'each qcow2 hyper2kvm wrote is identical to the exported disk' '
	pairs "$(jget line hyper2kvm_manifest_path)" >pairs && test_line_count = 2 pairs &&
	while read -r q src; do
		qemu-img info --output=json "$q" | grep -q "\"format\": \"qcow2\"" &&
		qemu-img compare -f qcow2 -F raw "$q" "$src" || exit 1
	done <pairs &&
	# and the two disks differ, so the comparison can fail
	read -r q0 s0 <pairs && s1=$(sed -n 2p pairs | cut -d" " -f2) &&
	! qemu-img compare -q -f qcow2 -F raw "$q0" "$s1"
'

test_expect_success 'one byte of a disk flipped: hyper2kvm refuses (Checksum mismatch)' '
	src=$(sed -n 2p pairs | cut -d" " -f2) && cp "$src" saved &&
	test_when_finished "cp saved \"$src\"" &&
	flip "$src" 4096 &&
	! cmp -s saved "$src" &&
	expect_code 1 h2kvm --manifest "$(jget line hyper2kvm_manifest_path)" >bad.log 2>&1 &&
	grep -q "Checksum mismatch" bad.log &&
	! grep -q "Pipeline completed successfully" bad.log
'

test_expect_success 'a rerun with --hyper2kvm-fix and --hyper2kvm-output rewrites the manifest' '
	h2k-ovf --hyper2kvm-manifest --hyper2kvm-fix --hyper2kvm-output kvm <line >line2 2>err2 &&
	test_line_count = 1 line2 &&
	check_fields "$(jget line2 hyper2kvm_manifest_path)" line2 fix kvm
'

test_expect_success 'hyper2kvm converts into the --hyper2kvm-output directory' '
	h2k-ovf --hyper2kvm-manifest --hyper2kvm-output "$TRASH/kvm2" <line >line3 2>err3 &&
	h2kvm --manifest "$(jget line3 hyper2kvm_manifest_path)" >h3.log 2>&1 &&
	pairs "$(jget line3 hyper2kvm_manifest_path)" >pairs3 &&
	test "$(cut -d" " -f1 pairs3 | xargs -n1 dirname | sort -u)" = "$TRASH/kvm2/DC0_H0_VM1" &&
	while read -r q src; do qemu-img compare -q -f qcow2 -F raw "$q" "$src" || exit 1; done <pairs3
'

test_expect_success 'a files[].format the bytes contradict: exit 8, one line, no manifest' '
	m=$(jget line hyper2kvm_manifest_path) && rm -f "$m" &&
	jq -c ".files[0].format = \"qcow2\"" line >badline &&
	expect_code 8 h2k-ovf --hyper2kvm-manifest <badline >out 2>err &&
	test_line_count = 0 out &&
	grep -v "^h2k-ovf: warning: .* has already ended" err >errs && test_one_line errs &&
	grep -q "disk-0.vmdk: files\[\] says format qcow2, the bytes are raw" errs &&
	test ! -e "$m"
'

test_done
