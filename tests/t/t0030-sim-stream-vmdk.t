#!/usr/bin/env bash
# The rig's -stream-vmdk mode: every export disk URL streams a
# streamOptimized VMDK encoded from the disk's bytes, as ESXi does.  The
# oracle is qemu-img (qemu-utils): it must read the stream back into exactly
# the disk's bytes.  Also the lease sizes of a stream (no fileSize, capacity
# known), the manifest, -disk-fill mix and the flags' errors.
# SPDX-License-Identifier: LGPL-3.0-or-later
. "$(dirname "$0")/../lib.sh"

. "$TESTS_DIR/sim/soap.sh"

command -v qemu-img >/dev/null || { echo "Bail out! qemu-img missing (scripts/deps installs qemu-utils)"; exit 1; }

# nonzero_grains FILE: how many 64 KiB grains of FILE hold a byte that is
# not zero.
nonzero_grains() {
	python3 - "$1" <<'EOF'
import sys
n = 0
with open(sys.argv[1], 'rb') as f:
    while True:
        g = f.read(65536)
        if not g:
            break
        n += g.count(0) != len(g)
print(n)
EOF
}

# u32 FILE OFFSET / u64 FILE OFFSET: little-endian integers of a file.
u32() { od -An -tu4 -j "$2" -N4 "$1" | tr -d ' '; }
u64() { od -An -tu8 -j "$2" -N8 "$1" | tr -d ' '; }

sim_start -power off -vm 1 -cluster 0 -disks 1 -disk-size 6M -disk-capacity 8M \
	-disk-fill mix -seed 3 -stream-vmdk
D0=$SIM_DSDIR/DC0-LocalDS_0/DC0_H0_VM0/disk1.vmdk
D1=$SIM_DSDIR/DC0-LocalDS_0/DC0_H0_VM0/DC0_H0_VM0.vmdk

test_expect_success 'lease: no fileSize, capacity of both disks in totalDiskCapacityInKB' '
	soap_login >/dev/null && vm=$(sim_moref /DC0/vm/DC0_H0_VM0) &&
	lease=$(soap_export "$vm" | soap_lease_ref) && test -n "$lease" &&
	test "$(soap_lease_wait "$lease")" = ready &&
	echo "$lease" >lease &&
	soap_lease_prop "$lease" info >info.xml &&
	grep -q "<totalDiskCapacityInKB>16384</totalDiskCapacityInKB>" info.xml &&
	test "$(grep -o "<deviceUrl>" info.xml | wc -l)" = 2 &&
	! grep -q "<fileSize>" info.xml &&
	soap_lease_urls "$lease" >urls && test_line_count = 2 urls
'

test_expect_success 'a Range request gets 200, chunked, no length, the streamVmdk type' '
	u=$(sed -n 1p urls) && case $u in */disk1.vmdk) ;; *) exit 1;; esac &&
	curl -sS --fail --cacert "$SIM_CERT" -D hdr -r 512-1023 -o d0.vmdk "$u" &&
	grep -q "^HTTP/[0-9.]* 200" hdr && ! grep -qi "^content-length:" hdr &&
	! grep -qi "^content-range:" hdr &&
	grep -qi "^transfer-encoding: chunked" hdr &&
	grep -qi "^content-type: application/x-vnd.vmware-streamVmdk" hdr &&
	test "$(stat -c %s d0.vmdk)" -gt 65536
'

test_expect_success 'header: KDMV v3, COMPRESS|MARKER|newline flags, grain 128, gdOffset at end' '
	test "$(head -c 4 d0.vmdk)" = KDMV &&
	test "$(u32 d0.vmdk 4)" = 3 &&
	test "$(printf %x "$(u32 d0.vmdk 8)")" = 30001 &&
	test "$(u64 d0.vmdk 12)" = 16384 &&
	test "$(u64 d0.vmdk 20)" = 128 &&
	test "$(u64 d0.vmdk 28)" = 1 &&
	test "$(u32 d0.vmdk 44)" = 512 &&
	test "$(u64 d0.vmdk 56)" = 18446744073709551615 &&
	test "$(od -An -c -j73 -N4 d0.vmdk | tr -d " ")" = "\\n\\r\\n" &&
	test "$(od -An -tu2 -j77 -N2 d0.vmdk | tr -d " ")" = 1 &&
	dd if=d0.vmdk bs=512 skip=1 count=1 2>/dev/null | grep -a -q "^createType=\"streamOptimized\"" &&
	dd if=d0.vmdk bs=512 skip=1 count=1 2>/dev/null | grep -a -q "^RW 16384 SPARSE \"disk1.vmdk\""
'

test_expect_success 'tail: footer marker, header copy with the real gdOffset, end-of-stream marker' '
	n=$(stat -c %s d0.vmdk) && test $((n % 512)) = 0 &&
	tail -c 1536 d0.vmdk >tail &&
	test "$(u64 tail 0)" = 1 && test "$(u32 tail 8)" = 0 && test "$(u32 tail 12)" = 3 &&
	test "$(dd if=tail bs=1 skip=512 count=4 2>/dev/null)" = KDMV &&
	gd=$(u64 tail 568) && test "$gd" -gt 128 && test "$gd" -lt $((n / 512)) &&
	test "$(printf %x "$(u32 tail 520)")" = 30001 &&
	dd if=tail bs=512 skip=2 2>/dev/null | cmp - /dev/zero 2>&1 | grep -q "EOF on -" &&
	gdm=$(( (gd - 1) * 512 )) &&
	test "$(u32 d0.vmdk $((gdm + 12)))" = 2 && test "$(u64 d0.vmdk $gdm)" = 1
'

test_expect_success 'qemu-img: streamOptimized, compressed, capacity, no errors' '
	qemu-img info d0.vmdk >info &&
	grep -q "^file format: vmdk" info &&
	grep -q "create type: streamOptimized" info &&
	grep -q "compressed: true" info &&
	grep -q "virtual size: .*(8388608 bytes)" info &&
	qemu-img check d0.vmdk
'

test_expect_success 'qemu-img convert -f vmdk -O raw gives back the disk bytes, zeros to the capacity' '
	qemu-img convert -f vmdk -O raw d0.vmdk d0.raw &&
	test "$(stat -c %s d0.raw)" = 8388608 &&
	cmp -n 6291456 d0.raw "$D0" &&
	cmp -i 6291456:0 -n 2097152 d0.raw /dev/zero
'

test_expect_success 'the other disk too (its own bytes: seed, VM, disk index)' '
	u=$(sed -n 2p urls) &&
	curl -sS --fail --cacert "$SIM_CERT" -o d1.vmdk "$u" &&
	qemu-img convert -f vmdk -O raw d1.vmdk d1.raw &&
	cmp -n 6291456 d1.raw "$D1" && ! cmp -s "$D0" "$D1"
'

test_expect_success 'zero grains are left out: one grain marker per non-zero grain' '
	want=$(nonzero_grains "$D0") && test "$want" -gt 0 &&
	test "$want" -lt 96 &&
	qemu-img map --output=json d0.vmdk >map.json &&
	got=$(python3 -c "import json,sys; print(sum(e[\"length\"] for e in json.load(open(\"map.json\")) if e[\"data\"]) // 65536)") &&
	test "$got" = "$want"
'

test_expect_success 'the stream is a function of the disk: a second download is identical' '
	u=$(sed -n 1p urls) &&
	curl -sS --fail --cacert "$SIM_CERT" -o again.vmdk "$u" && cmp d0.vmdk again.vmdk
'

test_expect_success 'HttpNfcLeaseGetManifest: SHA-1 and size of the stream sent, capacity' '
	soap_lease_call HttpNfcLeaseGetManifest "$(cat lease)" >man.xml &&
	sha=$(sha1sum d0.vmdk | cut -d" " -f1) &&
	grep -q "<sha1>$sha</sha1><size>$(stat -c %s d0.vmdk)</size><disk>true</disk><capacity>8388608</capacity>" man.xml
'

test_expect_success 'HEAD: 200 and the type, no body' '
	u=$(sed -n 1p urls) &&
	curl -sS --fail --cacert "$SIM_CERT" -I -o head "$u" &&
	grep -q "^HTTP/[0-9.]* 200" head && grep -qi "^content-type: application/x-vnd.vmware-streamVmdk" head
'

test_expect_success 'govc export.ovf saves the streams; qemu-img reads each back' '
	mkdir ovf && govc_ export.ovf -vm DC0_H0_VM0 ovf >/dev/null 2>&1 &&
	ls ovf/DC0_H0_VM0/*.vmdk >vmdks && test_line_count = 2 vmdks &&
	qemu-img convert -f vmdk -O raw ovf/DC0_H0_VM0/DC0_H0_VM0-disk-0.vmdk g0.raw &&
	cmp -n 6291456 g0.raw "$D0" && test "$(stat -c %s g0.raw)" = 8388608
'

test_expect_success '-disk-fill mix: extents of random, repeated and holes (sparse file)' '
	test "$(stat -c %s "$D0")" = 6291456 &&
	test "$(( $(stat -c %b "$D0") * $(stat -c %B "$D0") ))" -lt 6291456 &&
	python3 - "$D0" <<-\EOF
	import sys
	d = open(sys.argv[1], "rb").read()
	kinds = set()
	for i in range(0, len(d), 4096):
	    b = d[i:i + 4096]
	    if b.count(0) == len(b):
	        kinds.add("hole")
	    elif i + 8192 <= len(d) and d[i + 4096:i + 8192] == b:
	        kinds.add("repeat")
	    elif len(set(b)) > 200:
	        kinds.add("random")
	sys.exit(0 if kinds == {"hole", "repeat", "random"} else 1)
	EOF
'

sim_stop

test_expect_code 2 '-disk-fill mix with no weight is refused' '
	"$SIM_BIN" -disk-fill mix:0:0:0 2>err
'
test_expect_success '... in one line naming the flag; so are bad mixes, cuts, modes' '
	test_one_line err && grep -q -- "-disk-fill" err &&
	expect_code 2 "$SIM_BIN" -disk-fill mix:1:x:1 2>err && grep -q -- "-disk-fill" err &&
	expect_code 2 "$SIM_BIN" -disk-fill mix:1:1 2>err && grep -q -- "-disk-fill" err &&
	expect_code 2 "$SIM_BIN" -stream-vmdk -nfc-stream 2>err && test_one_line err &&
	grep -q -- "-stream-vmdk" err &&
	expect_code 2 "$SIM_BIN" -stream-cache 2>err && test_one_line err &&
	grep -q -- "-stream-cache" err &&
	expect_code 2 "$SIM_BIN" -nfc-cut 1x 2>err && grep -q -- "-nfc-cut" err &&
	expect_code 2 "$SIM_BIN" -nfc-cut 10:0 2>err && grep -q -- "-nfc-cut" err &&
	expect_code 2 "$SIM_BIN" -nfc-cut-random -1 2>err && grep -q -- "-nfc-cut-random" err &&
	"$SIM_BIN" -h >usage &&
	for f in stream-vmdk stream-cache nfc-cut nfc-cut-random; do
		grep -q "^  -$f\b" usage || { echo "-$f missing"; exit 1; }
	done
'

test_done
