#!/usr/bin/env bash
# h2k-fetch --format raw|qcow2 of a disk served as plain bytes (not
# streamOptimized) is bounded by the disk's capacity from the line (the
# device's capacity_bytes, or the lease's disk_capacity_bytes, vSphere's
# totalDiskCapacityInKB): a server sending one byte more fails the disk,
# exit 9, one line naming the disk, the offset and the capacity; nothing
# is renamed and the raw .part never grows past the capacity.  A stream of
# exactly the capacity converts whole.
# SPDX-License-Identifier: LGPL-3.0-or-later
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/servers/nfcd-lib.sh"

nfcd_start
cap=1048576
head -c $cap /dev/urandom >srv/exact
{ cat srv/exact; head -c 1000 /dev/urandom; } >srv/long
{ cat srv/exact; head -c 3145728 /dev/urandom; } >srv/longer
F="h2k-fetch --ca-file $NFCD_CERT --retry-delay 0.01 --retries 2 -q"

# line VM URL: the capacity on the device, as h2k-lease passes it on
line() { cap_line "$1" "$2" "$cap"; }

for fmt in raw qcow2; do
	for src in nolength=1/long -/long nolength=1/longer; do
		vm=l-$fmt-${src%%/*}-${src##*/}
		vm=${vm//=/}
		test_expect_success "$fmt, ${src%%/*} ${src##*/}: exit 9, offset $cap named, nothing renamed" '
			line '$vm' "$NFCD_URL/'$src'" |
			expect_code 9 $F -o out --format '$fmt' >b.json 2>b.err &&
			cat b.err && test_one_line b.err && test ! -s b.json &&
			grep -q "^h2k-fetch: '$vm': disk-0.'$fmt': offset '$cap': plain bytes longer than its capacity '$cap' bytes" b.err &&
			test ! -e out/'$vm'/disk-0.'$fmt' &&
			test -e out/'$vm'/disk-0.'$fmt'.part &&
			if [ '$fmt' = raw ]; then
				test "$(stat -c %s out/'$vm'/disk-0.raw.part)" -le '$cap'
			fi
		'
	done
	test_expect_success "$fmt, exactly the capacity: converted whole" '
		line e-'$fmt' "$NFCD_URL/nolength=1/exact" |
		expect_code 0 $F -o out --format '$fmt' >e.json 2>e.err &&
		test ! -s e.err &&
		test "$(jget e.json files.0.capacity_bytes)" = '$cap' &&
		if [ '$fmt' = raw ]; then
			cmp out/e-'$fmt'/disk-0.raw srv/exact
		elif command -v qemu-img >/dev/null; then
			qemu-img compare -q -f qcow2 -F raw out/e-'$fmt'/disk-0.qcow2 srv/exact
		fi
	'
done

test_expect_success 'no capacity known: the plain stream is the disk (bounded at 64 TiB)' '
	lease_line nocap "$NFCD_URL/nolength=1/long" |
	expect_code 0 $F -o out --format raw >n.json 2>n.err &&
	cmp out/nocap/disk-0.raw srv/long &&
	test "$(jget n.json files.0.capacity_bytes)" = $((cap + 1000))
'

# The lease's own figure (vSphere's totalDiskCapacityInKB): a real lease
# of the rig, its disk URL pointed at the hostile server.
sim_start -vm 1 -disks 0 -disk-size 1M -disk-fill random -power off
h2k_login_sim || { echo "Bail out! login failed"; exit 1; }
test_expect_success 'the capacity in the lease (disk_capacity_bytes): one byte more fails the disk' '
	h2k-lease /DC0/vm/DC0_H0_VM0 >lease.json &&
	test "$(jget lease.json lease.disk_capacity_bytes)" = $cap &&
	jq -c "del(.disks) | .devices |= map(if .disk then .url = \"$NFCD_URL/nolength=1/long\" | del(.ssl_thumbprint) else . end)" \
		lease.json >l.json &&
	expect_code 9 $F --disks-only -o out --format raw <l.json >b.json 2>b.err &&
	cat b.err && test_one_line b.err &&
	grep -q ": disk-0.raw: offset $cap: plain bytes longer than its capacity $cap bytes" b.err &&
	test ! -e "$(ls -d out/DC0_H0_VM0*)/disk-0.raw"
'

test_done
