#!/usr/bin/env bash
# h2k-ovf again on a line whose disks an earlier h2k-ovf --ova packed and
# removed (the line h2k-fetch wrote, or h2k-ovf's own with "removed":true):
# exit 6 in one line that says where the disks went, and the OVA, the
# descriptor and the manifest stay as they were.
# SPDX-License-Identifier: LGPL-3.0-or-later
. "$(dirname "$0")/../lib.sh"

sim_start -vm 1 -disks 0 -disk-size 256K -disk-fill random -power off
h2k_login_sim || { echo "Bail out! login failed"; exit 1; }

test_expect_success 'an export packed with --ova, disks removed' '
	h2k-lease /DC0/vm/DC0_H0_VM0 | h2k-fetch -q --format qcow2 -o o >line &&
	h2k-ovf --ova <line >out 2>err &&
	d=$(jget out dir) && test ! -e "$d/disk-0.qcow2" &&
	(cd "$d" && sha256sum DC0_H0_VM0.ova DC0_H0_VM0.ovf DC0_H0_VM0.mf) >sums
'

for which in line out; do
	test_expect_success "again on $which, with and without --ova: exit 6 naming the OVA, nothing touched" '
		d=$(jget out dir) &&
		for o in --ova ""; do
			expect_code 6 h2k-ovf $o <'$which' >out2 2>err2 || exit 1
			test_one_line err2 || exit 1
			grep -q "disk-0.qcow2: no such file: removed once packed in DC0_H0_VM0.ova (an earlier h2k-ovf --ova" err2 || exit 1
			test ! -s out2 || exit 1
		done &&
		(cd "$d" && sha256sum -c --quiet "$TRASH/sums") &&
		ls -A "$d" | sort | tr "\n" " " >files &&
		test "$(cat files)" = ".h2k-lock .h2k-vm DC0_H0_VM0.mf DC0_H0_VM0.ova DC0_H0_VM0.ovf "
	'
done

test_done
