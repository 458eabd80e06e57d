#!/usr/bin/env bash
# -stream-vmdk on disks with holes: zero grains never enter the stream (an
# empty disk streams as metadata only, a half-empty one as about its data),
# and the rig's memory stays flat while it encodes a disk far larger than it.
# SPDX-License-Identifier: LGPL-3.0-or-later
. "$(dirname "$0")/../lib.sh"

. "$TESTS_DIR/sim/soap.sh"

lease_urls() {
	local vm lease
	soap_login >/dev/null && vm=$(sim_moref /DC0/vm/DC0_H0_VM0) &&
	lease=$(soap_export "$vm" | soap_lease_ref) && test -n "$lease" &&
	test "$(soap_lease_wait "$lease")" = ready &&
	soap_lease_urls "$lease"
}
disk() { echo "$SIM_DSDIR/DC0-LocalDS_0/DC0_H0_VM0/disk1.vmdk"; }
hwm() { sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$SIM_PID/status"; }

sim_start -power off -vm 1 -cluster 0 -disk-size 256M -disk-fill zero -stream-vmdk

test_expect_success 'an all-zero 256 MiB disk streams as header, descriptor, GD, footer: 68096 bytes' '
	u=$(lease_urls | sed -n 1p) && test -n "$u" &&
	curl -sS --fail --cacert "$SIM_CERT" -o z.vmdk "$u" &&
	test "$(stat -c %s z.vmdk)" = $((65536 + 512 + 512 + 1536)) &&
	qemu-img convert -f vmdk -O raw z.vmdk z.raw &&
	test "$(stat -c %s z.raw)" = 268435456 && cmp z.raw "$(disk)"
'
sim_stop

sim_start -power off -vm 1 -cluster 0 -disk-size 192M -disk-capacity 1G \
	-disk-fill mix:1:0:1 -seed 11 -stream-vmdk

test_expect_success 'half random, half holes: the stream is about the data, not the capacity' '
	u=$(lease_urls | sed -n 1p) && test -n "$u" &&
	before=$(hwm) && test -n "$before" &&
	curl -sS --fail --cacert "$SIM_CERT" -o m.vmdk "$u" &&
	after=$(hwm) &&
	echo "rig VmHWM ${before} kB -> ${after} kB" &&
	test $((after - before)) -lt 65536 &&
	data=$(( $(stat -c %b "$(disk)") * $(stat -c %B "$(disk)") )) &&
	n=$(stat -c %s m.vmdk) && echo "stream $n bytes, data $data bytes" &&
	test "$data" -gt $((50 << 20)) && test "$data" -lt $((150 << 20)) &&
	test "$n" -lt $((data + (4 << 20))) && test "$n" -gt $((data - (8 << 20)))
'

test_expect_success '... and qemu-img reads it back: the disk bytes, then zeros to 1 GiB' '
	qemu-img convert -f vmdk -O raw m.vmdk m.raw &&
	test "$(stat -c %s m.raw)" = 1073741824 &&
	cmp -n 201326592 m.raw "$(disk)" &&
	cmp -i 201326592:0 -n $((1073741824 - 201326592)) m.raw /dev/zero
'
test_done
