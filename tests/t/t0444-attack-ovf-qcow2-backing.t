#!/usr/bin/env bash
# attack: h2k-ovf (no --hyper2kvm-manifest, no --deliver) on a line whose
# disk is an image that is not the whole disk: a qcow2 with a backing file
# (/etc/shadow), with an external data file, encrypted, marked corrupt or
# with an incompatible feature qemu does not know, a sparse VMDK naming a
# parent.  The line is untrusted input (h2k(7)): it says format qcow2 and
# the capacity the header gives.  h2k-ovf took the capacity from such a
# header and wrote a descriptor calling the file a standalone disk of that
# size (and packed it with --ova): a reader honouring the qcow2 format URI
# (virt-v2v -i ova, qemu-img) then reads /etc/shadow into the guest's disk,
# or cannot open it at all (qemu-img info: "Unsupported qcow2 feature").
# Now: exit 8, one line naming the file and why, nothing written; a plain
# qcow2 (dirty, zstd, extended L2 allowed) still goes.
# SPDX-License-Identifier: LGPL-3.0-or-later
. "$(dirname "$0")/../lib.sh"

command -v qemu-img >/dev/null 2>&1 || {
	echo "Bail out! qemu-img is missing (scripts/deps installs qemu-utils)"; exit 1; }

sim_start -vm 1 -disks 0 -disk-size 1M -disk-fill random -power off
h2k_login_sim || { echo "Bail out! login failed"; exit 1; }

# swap LINE FILE FORMAT [SUB] >OUT: the line's disk replaced by FILE, size,
# sha256, format and capacity_bytes (from qemu-img info) as the file says
swap() {
	python3 - "$@" <<-\PY
	import hashlib, json, shutil, subprocess, sys
	line = json.loads(open(sys.argv[1]).readline())
	f = line["files"][0]
	shutil.copyfile(sys.argv[2], f["path"])
	data = open(f["path"], "rb").read()
	f["size"] = len(data)
	f["sha256"] = hashlib.sha256(data).hexdigest()
	f["format"] = sys.argv[3]
	f.pop("vmdk_subformat", None)
	if len(sys.argv) > 4:
	    f["vmdk_subformat"] = sys.argv[4]
	info = subprocess.run(["qemu-img", "info", "-U", "--output=json", sys.argv[2]],
	    capture_output=True, text=True)
	f["capacity_bytes"] = json.loads(info.stdout)["virtual-size"] if info.returncode == 0 \
	    else 1048576
	print(json.dumps(line))
	PY
}

# refused LINE WHY [OPTION]: exit 8, one line matching WHY, nothing written
refused() {
	d=$(jget "$1" dir) && rm -f "$d"/*.ovf "$d"/*.mf "$d"/*.ova &&
	expect_code 8 h2k-ovf --keep-lease ${3:-} <"$1" >r.out 2>r.err &&
	grep -v "^h2k-ovf: warning: .*has already ended" r.err >r.e1 &&
	cat r.e1 && test_one_line r.e1 && grep -q -- "$2" r.e1 && test ! -s r.out &&
	test -z "$(ls -A "$d" | grep -i "\.ovf$\|\.mf$\|\.ova$\|\.pack$\|\.part$")"
}

# setb FILE OFFSET HEX...: bytes written at OFFSET
setb() {
	f=$1 o=$2 && shift 2 && printf "$(printf '\\x%s' "$@")" |
	dd of="$f" bs=1 seek="$o" conv=notrunc status=none
}

test_expect_success 'an export to tamper with; the images' '
	h2k-lease /DC0/vm/DC0_H0_VM0 | h2k-fetch -q --format qcow2 -o o >fetched &&
	qemu-img create -q -f qcow2 -b /etc/shadow -F raw back.qcow2 1M &&
	qemu-img create -q -f qcow2 -o data_file="$TRASH/ext.data" ext.qcow2 1M &&
	qemu-img create -q -f qcow2 plain.qcow2 1M &&
	cp plain.qcow2 crypt.qcow2 && setb crypt.qcow2 32 00 00 00 01 &&
	cp plain.qcow2 corrupt.qcow2 && setb corrupt.qcow2 79 02 &&
	cp plain.qcow2 unknown.qcow2 && setb unknown.qcow2 79 20 &&
	cp plain.qcow2 dirty.qcow2 && setb dirty.qcow2 79 19 &&
	qemu-img create -q -f vmdk base.vmdk 1M &&
	qemu-img create -q -f vmdk -b "$TRASH/base.vmdk" -F vmdk kid.vmdk
'

test_expect_success 'a qcow2 with a backing file: exit 8, no descriptor' '
	swap fetched back.qcow2 qcow2 >l1 && refused l1 "disk-0.qcow2: a qcow2 with a backing file"
'

test_expect_success '  nor with --ova' '
	refused l1 "disk-0.qcow2: a qcow2 with a backing file" --ova
'

test_expect_success 'a qcow2 with an external data file: exit 8' '
	swap fetched ext.qcow2 qcow2 >l2 && refused l2 "a qcow2 with an external data file"
'

test_expect_success 'an encrypted qcow2: exit 8' '
	swap fetched crypt.qcow2 qcow2 >l3 && refused l3 "an encrypted qcow2"
'

test_expect_success 'a qcow2 marked corrupt: exit 8' '
	swap fetched corrupt.qcow2 qcow2 >l4 && refused l4 "a qcow2 marked corrupt"
'

test_expect_success 'a qcow2 with an incompatible feature qemu-img cannot open: exit 8' '
	! qemu-img info unknown.qcow2 >/dev/null 2>&1 &&
	swap fetched unknown.qcow2 qcow2 >l5 && refused l5 "incompatible features 0x20 unknown"
'

test_expect_success 'a sparse VMDK naming a parent: exit 8' '
	swap fetched kid.vmdk vmdk monolithicSparse >l6 &&
	refused l6 "a VMDK with a parent"
'

test_expect_success 'a plain qcow2 (dirty, zstd and extended L2 bits set) still goes' '
	swap fetched dirty.qcow2 qcow2 >l7 &&
	expect_code 0 h2k-ovf --keep-lease <l7 >out7 2>err7 &&
	test -s "$(jget out7 ovf_path)"
'

test_done
