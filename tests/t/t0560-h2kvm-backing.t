#!/usr/bin/env bash
# A disk whose bytes name another file is refused for the hand-off: a
# qcow2 with a backing file (or an external data file), a QED image, a
# sparse VMDK with a parent hint.  hyper2kvm runs qemu-img convert without
# -f, so qemu would open the named file (/etc/shadow) and copy it into the
# converted disk.  h2k-ovf --hyper2kvm-manifest, and --ova --deliver (the
# daemon converts the OVA's disks the same way), exit 2, write no manifest
# and deliver nothing; an image that names another file is no whole disk
# for the descriptor either (diskimg.c, t0444), so those whose header says
# so are refused before, exit 8.
. "$(dirname "$0")/../lib.sh"

command -v qemu-img >/dev/null 2>&1 || {
	echo "Bail out! qemu-img is missing (scripts/deps installs qemu-utils)"; exit 1; }

sim_start -vm 1 -disks 1 -disk-size 512K -disk-fill random -power off
h2k_login_sim || { echo "Bail out! login failed"; exit 1; }
VM=/DC0/vm/DC0_H0_VM0

# swap LINE FILE OUT: the line's first disk replaced by FILE (size, sha256
# and format updated as h2k-fetch would have written them).
swap() {
	python3 - "$@" <<'PY'
import hashlib, json, os, shutil, sys
line = json.loads(open(sys.argv[1]).readline())
f = line["files"][0]
shutil.copyfile(sys.argv[2], f["path"])
data = open(f["path"], "rb").read()
f["size"] = len(data)
f["sha256"] = hashlib.sha256(data).hexdigest()
f.pop("format", None)
f.pop("capacity_bytes", None)  # the image's own is taken (t0548)
open(sys.argv[3], "w").write(json.dumps(line) + "\n")
PY
}

test_expect_success 'an export to tamper with' '
	h2k-lease "$VM" | h2k-fetch -o exp >fetched 2>err &&
	test_line_count = 1 fetched
'

test_expect_success 'a qcow2 with a backing file: exit 8, no manifest' '
	qemu-img create -q -f qcow2 -b /etc/shadow -F raw evil.qcow2 1M &&
	swap fetched evil.qcow2 line &&
	expect_code 8 h2k-ovf --hyper2kvm-manifest <line >out 2>err &&
	test_line_count = 0 out && test_one_line err &&
	grep -q "backing file" err &&
	test -z "$(ls exp/*/*.hyper2kvm.json 2>/dev/null)"
'

test_expect_success 'a qcow2 with an external data file: exit 8' '
	qemu-img create -q -f qcow2 -o data_file=evil.data evil2.qcow2 1M &&
	swap fetched evil2.qcow2 line2 &&
	expect_code 8 h2k-ovf --hyper2kvm-manifest <line2 >out2 2>err2 &&
	test_one_line err2 && grep -q "data file" err2
'

test_expect_success 'a QED image (a backing file is one of its features): exit 2' '
	qemu-img create -q -f qed -b /etc/shadow -F raw evil.qed 1M &&
	swap fetched evil.qed line3 &&
	expect_code 2 h2k-ovf --hyper2kvm-manifest <line3 >out3 2>err3 &&
	grep -v "^h2k-ovf: warning: .*has already ended" err3 >e3 &&
	test_one_line e3 && grep -q "a QED image" e3
'

test_expect_success 'a sparse VMDK with a parent file hint: exit 8' '
	qemu-img create -q -f vmdk base.vmdk 1M &&
	qemu-img create -q -f vmdk -b "$TRASH/base.vmdk" -F vmdk evil.vmdk 1M &&
	swap fetched evil.vmdk line4 &&
	expect_code 8 h2k-ovf --hyper2kvm-manifest <line4 >out4 2>err4 &&
	test_one_line err4 && grep -q "parent" err4
'

test_expect_success '--ova --deliver: the daemon would convert the OVA disk; exit 8, nothing delivered' '
	mkdir inbox && swap fetched evil.qcow2 line5 &&
	expect_code 8 h2k-ovf --ova --deliver inbox <line5 >out5 2>err5 &&
	test_one_line err5 && grep -q "backing file" err5 &&
	test -z "$(ls -A inbox)"
'

test_expect_success 'a plain qcow2 still goes' '
	qemu-img create -q -f qcow2 plain.qcow2 1M &&
	swap fetched plain.qcow2 line6 &&
	h2k-ovf --hyper2kvm-manifest <line6 >out6 2>err6 &&
	m=$(jget out6 hyper2kvm_manifest_path) &&
	grep -q "\"source_format\":\"qcow2\"" "$m"
'

test_done
