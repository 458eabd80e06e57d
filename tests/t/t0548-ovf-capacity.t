#!/usr/bin/env bash
# h2k-ovf takes each disk's capacity for the DiskSection from the image
# (raw: its size; qcow2: its header; a sparse VMDK: its header), not from
# the line: a line whose files[].capacity_bytes disagrees is refused, exit
# 8, one line naming the file and both numbers, nothing written; a line
# without capacity_bytes still gets the image's; an image whose header
# does not hold (a qcow2 of version 4) is refused the same way.
# SPDX-License-Identifier: LGPL-3.0-or-later
. "$(dirname "$0")/../lib.sh"

set -- -vm 3 -disks 0 -disk-size 2M -disk-fill random -power off
"$SIM_BIN" -h 2>&1 | grep -q -- -stream-vmdk && set -- "$@" -stream-vmdk
sim_start "$@"
h2k_login_sim || { echo "Bail out! login failed"; exit 1; }

cap=2097152

# capacity LINE: the ovf:capacity of the descriptor's one Disk
capacity() {
	python3 - "$1" <<-\PY
	import json, sys, xml.etree.ElementTree as ET
	o = json.loads(open(sys.argv[1]).read())
	ns = "{http://schemas.dmtf.org/ovf/envelope/1}"
	d = ET.parse(o["ovf_path"]).getroot().findall(".//%sDiskSection/%sDisk" % (ns, ns))
	print(" ".join(x.get(ns + "capacity") for x in d))
	PY
}

# refused LINE WHY: exit 8, one line matching WHY, no descriptor or manifest
refused() {
	expect_code 8 h2k-ovf --keep-lease <"$1" >r.out 2>r.err &&
	cat r.err && test_one_line r.err && grep -q -- "$2" r.err && test ! -s r.out &&
	! ls "$(jget "$1" dir)" | grep -q "\.ovf$\|\.mf$\|\.ova$"
}

i=0
for fmt in qcow2 raw vmdk; do
	vm=DC0_H0_VM$i
	i=$((i + 1))
	test_expect_success "$fmt: downloaded, capacity $cap in the line" '
		h2k-lease /DC0/vm/'$vm' | h2k-fetch -q --format '$fmt' -o o >line-'$fmt' &&
		test "$(jget line-'$fmt' files.0.capacity_bytes)" = $cap
	'
	test_expect_success "$fmt: a line saying 64 KiB more is refused naming both numbers" '
		jq -c ".files[0].capacity_bytes = $((cap + 65536))" line-'$fmt' >l &&
		p=$(jget l files.0.path) &&
		refused l "^h2k-ovf: stdin:1: '$vm': $p: files\[\] says capacity_bytes $((cap + 65536)), the image holds $cap bytes$"
	'
	test_expect_success "$fmt: a capacity_bytes that is not a number is refused" '
		jq -c ".files[0].capacity_bytes = \"$cap\"" line-'$fmt' >l &&
		refused l "capacity_bytes that is not a number, the image holds $cap bytes"
	'
	test_expect_success "$fmt: no capacity_bytes in the line: the image gives it" '
		jq -c "del(.files[].capacity_bytes)" line-'$fmt' >l &&
		expect_code 0 h2k-ovf <l >out-'$fmt' 2>err &&
		test "$(capacity out-'$fmt')" = $cap
	'
done

test_expect_success 'a qcow2 whose header says version 4: refused, nothing written' '
	p=$(jget line-qcow2 files.0.path) && d=$(jget line-qcow2 dir) &&
	rm -f "$d"/*.ovf "$d"/*.mf &&
	printf "\000\000\000\004" | dd of="$p" bs=1 seek=4 conv=notrunc status=none &&
	refused line-qcow2 "$p: qcow2 version 4 (2 or 3 expected)"
'

test_expect_success 'a qcow2 whose header size disagrees with the line: refused' '
	p=$(jget line-qcow2 files.0.path) &&
	printf "\000\000\000\003" | dd of="$p" bs=1 seek=4 conv=notrunc status=none &&
	printf "\000\000\000\000\000\100\000\000" | dd of="$p" bs=1 seek=24 conv=notrunc status=none &&
	refused line-qcow2 "files\[\] says capacity_bytes $cap, the image holds 4194304 bytes"
'

test_done
