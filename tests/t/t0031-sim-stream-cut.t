#!/usr/bin/env bash
# The rig's cuts for trials: -nfc-cut BYTES[:COUNT] and -nfc-cut-random N
# drop the connection in the middle of an NFC download (no end of the chunked
# body), in the -stream-vmdk mode (with and without -stream-cache) and in the
# plain one.
# SPDX-License-Identifier: LGPL-3.0-or-later
. "$(dirname "$0")/../lib.sh"

. "$TESTS_DIR/sim/soap.sh"

# lease_url: export DC0_H0_VM0 and print its first disk URL.
lease_url() {
	local vm lease
	soap_login >/dev/null && vm=$(sim_moref /DC0/vm/DC0_H0_VM0) &&
	lease=$(soap_export "$vm" | soap_lease_ref) && test -n "$lease" &&
	test "$(soap_lease_wait "$lease")" = ready &&
	soap_lease_urls "$lease" | sed -n 1p
}

# disk: the file behind DC0_H0_VM0's first disk in the running rig.
disk() { echo "$SIM_DSDIR/DC0-LocalDS_0/DC0_H0_VM0/disk1.vmdk"; }

# get URL OUT: download; prints curl's exit code.
get() {
	local rc=0
	curl -sS --cacert "$SIM_CERT" -o "$2" "$1" 2>>curl.err || rc=$?
	echo $rc
}

sim_start -power off -vm 1 -cluster 0 -disk-size 3M -disk-fill random -seed 5 \
	-stream-vmdk -nfc-cut-random 3

test_expect_success '-nfc-cut-random 3: three downloads cut short, each a prefix of the stream' '
	u=$(lease_url) && test -n "$u" &&
	for i in 1 2 3; do
		test "$(get "$u" cut$i)" = 18 || exit 1
	done &&
	test "$(get "$u" full)" = 0 &&
	n=$(stat -c %s full) &&
	for i in 1 2 3; do
		k=$(stat -c %s cut$i) && test "$k" -lt "$n" &&
		cmp -n "$k" cut$i full || exit 1
	done &&
	qemu-img convert -f vmdk -O raw full full.raw && cmp full.raw "$(disk)"
'

test_expect_success '... at the offsets the rig logs, drawn apart, within the stream' '
	grep "cut after" "$TRASH/sim.log" >cuts && test_line_count = 3 cuts &&
	for i in 1 2 3; do
		k=$(stat -c %s cut$i) &&
		grep -q "^h2k-sim: download $i (disk1.vmdk): cut after $k bytes$" cuts || exit 1
	done &&
	test "$(stat -c %s cut1 cut2 cut3 | sort -u | wc -l)" = 3
'

test_expect_success 'a cut stream is refused by qemu-img (no footer)' '
	! qemu-img convert -f vmdk -O raw cut1 cut1.raw 2>err && test -s err
'
sim_stop

sim_start -power off -vm 1 -cluster 0 -disk-size 3M -disk-fill random -seed 5 \
	-stream-vmdk -nfc-cut 70000:2

test_expect_success '-nfc-cut 70000:2: the first two downloads end after exactly 70000 bytes' '
	u=$(lease_url) && test -n "$u" &&
	test "$(get "$u" a)" = 18 && test "$(get "$u" b)" = 18 &&
	test "$(get "$u" c)" = 0 &&
	test "$(stat -c %s a)" = 70000 && cmp a b && cmp -n 70000 a c &&
	qemu-img convert -f vmdk -O raw c c.raw && cmp c.raw "$(disk)"
'
sim_stop

sim_start -power off -vm 1 -cluster 0 -disk-size 3M -disk-fill random -seed 5 \
	-stream-vmdk -stream-cache -nfc-cut-random 1

test_expect_success '-stream-cache serves the same stream (encoded at start), cuts included' '
	test -n "$(ls "$(dirname "$SIM_DSDIR")"/streams/*.vmdk)" &&
	u=$(lease_url) && test -n "$u" &&
	test "$(get "$u" cached-cut)" = 18 && test "$(get "$u" cached)" = 0 &&
	cmp cached full &&
	k=$(stat -c %s cached-cut) && test "$k" -lt "$(stat -c %s full)" &&
	cmp -n "$k" cached-cut full
'
sim_stop

sim_start -power off -vm 1 -cluster 0 -disk-size 1M -disk-fill random -nfc-cut 4096

test_expect_success '-nfc-cut without COUNT cuts every download, plain mode included' '
	u=$(lease_url) && test -n "$u" &&
	test "$(get "$u" p1)" = 18 && test "$(get "$u" p2)" = 18 &&
	test "$(stat -c %s p1)" = 4096 && cmp -n 4096 p1 "$(disk)" && cmp p1 p2
'
test_done
