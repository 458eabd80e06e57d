#!/usr/bin/env bash
# --deliver into the VM's own export folder: refused up front with exit 2
# and one line saying so, before the lease is completed or anything is
# written (a watcher there would see the loose disks beside the OVA, and
# the name to deliver is the one the run itself writes, which used to end
# in a misleading exit 12 after the whole export).  The export root (the
# folder's parent) is fine.
. "$(dirname "$0")/../lib.sh"

sim_start -vm 1 -disks 2 -disk-size 512K -disk-fill random -power off
h2k_login_sim || { echo "Bail out! login failed"; exit 1; }

test_expect_success 'an export' '
	h2k-lease /DC0/vm/DC0_H0_VM0 | h2k-fetch -o exp >fetched 2>err &&
	test_line_count = 1 fetched && d=$(jget fetched dir) && test -d "$d"
'

test_expect_success '--ova --deliver into its own folder: exit 2, nothing written' '
	d=$(jget fetched dir) && ls -A "$d" >before &&
	expect_code 2 h2k-ovf --ova --deliver "$d" <fetched >out 2>err2 &&
	test_line_count = 0 out && test_one_line err2 &&
	grep -q "export folder" err2 &&
	ls -A "$d" >after && test_cmp before after
'

test_expect_success 'the same folder by another name (a symlink to its parent): exit 2' '
	d=$(jget fetched dir) && ln -s exp alias &&
	expect_code 2 h2k-ovf --deliver "alias/$(basename "$d")" <fetched >out3 2>err3 &&
	test_one_line err3 && grep -q "export folder" err3
'

test_expect_success 'the lease was left for the run that delivers right' '
	h2k-ovf --ova --deliver exp <fetched >out4 2>err4 &&
	! grep -q "already ended" err4 &&
	test -f exp/DC0_H0_VM0.ova &&
	cmp "$(jget out4 ova_path)" exp/DC0_H0_VM0.ova
'

test_done
