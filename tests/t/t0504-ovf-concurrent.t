#!/usr/bin/env bash
# attack (issue 10 item 2): two h2k-ovf on one VM folder at once -- the
# same line run again while the first still packs the OVA.  Both wrote
# NAME.ova.part (the second unlinked the first's and one renamed the
# other's half-written file into NAME.ova) and the one that lost removed
# NAME.mf, while the other said exit 0 with an mf_path that was gone.  Now
# the second is refused at once with exit 12 naming the folder, ends
# nothing (the lease is the first one's to complete), and the first
# finishes: complete OVA, manifest present and right, lease completed.
# The same in a folder with no marker.
. "$(dirname "$0")/../lib.sh"

sim_start -vm 1 -disks 1 -disk-size 200M -power off
h2k_login_sim || { echo "Bail out! login failed"; exit 1; }
VM=DC0_H0_VM0

test_expect_success 'setup: one downloaded VM' '
	h2k-lease /DC0/vm/$VM | h2k-fetch -q -o exp >line &&
	D=$(jget line dir) && test -d "$D"
'
D=$(jget line dir)

test_expect_success 'a second h2k-ovf while the first packs: exit 12, the first unharmed' '
	{ h2k-ovf --ova --keep-files <line >o1 2>e1; echo $? >rc1; } &
	i=0; while [ ! -e "$D/$VM.ova.part" ] && [ ! -e rc1 ]; do
		i=$((i + 1)); [ $i -lt 600 ] || break; sleep 0.05; done &&
	test -e "$D/$VM.ova.part" &&
	expect_code 12 h2k-ovf --ova --keep-files <line >o2 2>e2 &&
	test_one_line e2 && grep -qF "$D" e2 && grep -q "another h2k-ovf" e2 &&
	test_line_count = 0 o2 &&
	wait && test "$(cat rc1)" = 0 &&
	test "$(jget o1 lease.state)" = completed &&
	test -f "$D/$VM.mf" && test ! -e "$D/$VM.ova.part" &&
	(cd "$D" && sha256sum -c "$VM.mf" >/dev/null) &&
	mkdir x && tar -xf "$D/$VM.ova" -C x &&
	cmp x/$VM.mf "$D/$VM.mf" && cmp x/$VM.ovf "$D/$VM.ovf" &&
	for f in $(jget line files.*.path); do cmp "$f" "x/${f##*/}" || exit 1; done
'

test_expect_success 'once the first is done, the line runs again (lease already ended)' '
	h2k-ovf --ova --keep-files <line >o3 2>e3 && grep -q "already ended" e3 &&
	test "$(jget o3 lease.state)" = completed
'

# A folder with no marker (made by hand, or by an older h2k): no lock file
# of h2k's in it, yet the two h2k-ovf must not both write (they did).
test_expect_success 'setup: downloaded again, the marker removed' '
	h2k-lease /DC0/vm/$VM | h2k-fetch -q -o exp2 >line2 &&
	D2=$(jget line2 dir) && rm "$D2/.h2k-vm" "$D2/.h2k-lock"
'
D2=$(jget line2 dir)

test_expect_success 'a folder with no marker: the second h2k-ovf is refused all the same' '
	{ h2k-ovf --ova --keep-files <line2 >p1 2>f1; echo $? >rc2; } &
	i=0; while [ ! -e "$D2/$VM.ova.part" ] && [ ! -e rc2 ]; do
		i=$((i + 1)); [ $i -lt 600 ] || break; sleep 0.05; done &&
	test -e "$D2/$VM.ova.part" &&
	expect_code 12 h2k-ovf --ova --keep-files <line2 >p2 2>f2 &&
	test_one_line f2 && grep -qF "$D2: in use by another h2k-ovf" f2 &&
	test_line_count = 0 p2 &&
	wait && test "$(cat rc2)" = 0 &&
	test "$(jget p1 lease.state)" = completed &&
	(cd "$D2" && sha256sum -c "$VM.mf" >/dev/null) &&
	test ! -e "$D2/.h2k-lock" &&
	mkdir y && tar -xf "$D2/$VM.ova" -C y && cmp y/$VM.mf "$D2/$VM.mf"
'

test_done
