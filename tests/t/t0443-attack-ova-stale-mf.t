#!/usr/bin/env bash
# attack: h2k-ovf --ova on a line whose disk no longer has the digest
# h2k-fetch recorded, in a folder where an earlier h2k-ovf (without --ova)
# left NAME.ovf and NAME.mf.  h2k-ovf(1): "a mismatch removes the OVA and
# the manifest".  Since the --ova path writes its manifest under a
# temporary name (.NAME.mf.pack), the packing failure only removed that
# one: the earlier NAME.mf stayed, vouching for bytes h2k-ovf just proved
# wrong, and the folder went on reading as a completed export (h2k-fetch
# exit 12).  Now: exit 8 (the lease, completed by the first run, only
# warned of), no NAME.mf, no NAME.ova, no temporary file, and
# h2k-fetch takes the folder again.  A packing failure that proves nothing
# against the bytes (the OVA cannot be written) leaves NAME.mf alone.
# SPDX-License-Identifier: LGPL-3.0-or-later
. "$(dirname "$0")/../lib.sh"

sim_start -vm 1 -disks 0 -disk-size 1M -disk-fill random -power off
h2k_login_sim || { echo "Bail out! login failed"; exit 1; }

for keep in "" --keep-files; do
	test_expect_success "downloaded, finished without --ova (${keep:-no option})" '
		rm -rf o && h2k-lease /DC0/vm/DC0_H0_VM0 >lease &&
		h2k-fetch -q --format raw -o o <lease >line &&
		expect_code 0 h2k-ovf <line >out 2>err &&
		d=$(jget line dir) && test -s "$d/DC0_H0_VM0.mf"
	'
	test_expect_success "one byte flipped, h2k-ovf --ova $keep: exit 8, the manifest goes" '
		d=$(jget line dir) && p=$(jget line files.0.path) &&
		printf "\\377" | dd of="$p" bs=1 seek=1000 conv=notrunc status=none &&
		expect_code 8 h2k-ovf --ova --keep-lease '"$keep"' <line >out 2>err &&
		grep -v "^h2k-ovf: warning: .*has already ended" err >e1 && cat e1 &&
		test_one_line e1 && grep -q "recorded when it was downloaded" e1 &&
		test ! -e "$d/DC0_H0_VM0.mf" && test ! -e "$d/DC0_H0_VM0.ova" &&
		test "$(ls -A "$d" | grep -c "\.part$\|\.pack$")" = 0 &&
		test -e "$p"
	'
	test_expect_success "h2k-fetch does not take the folder for a completed export ($keep)" '
		h2k-lease /DC0/vm/DC0_H0_VM0 >lease2 &&
		expect_code 0 h2k-fetch -q --format raw -o o <lease2 >line2 2>ferr &&
		test "$(jget line2 dir)" = "$(jget line dir)"
	'
done

# Any other packing failure proves nothing against the bytes: the earlier
# manifest still tells the truth, and stays.
test_expect_success 'the OVA cannot be written (a directory in the way of its .part): NAME.mf stays' '
	rm -rf o && h2k-lease /DC0/vm/DC0_H0_VM0 >lease &&
	h2k-fetch -q --format raw -o o <lease >line &&
	expect_code 0 h2k-ovf <line >out 2>err &&
	d=$(jget line dir) && cp "$d/DC0_H0_VM0.mf" mf.before &&
	mkdir -p "$d/DC0_H0_VM0.ova.part/x" &&
	expect_code 8 h2k-ovf --ova --keep-lease <line >out 2>err &&
	grep -q "DC0_H0_VM0.ova.part" err &&
	cmp mf.before "$d/DC0_H0_VM0.mf" && test ! -e "$d/DC0_H0_VM0.ova"
'

test_done
