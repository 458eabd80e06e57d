#!/usr/bin/env bash
# attack: a line whose disk is an empty file (a raw image of 0 bytes, or a
# VMDK of plain bytes of 0 bytes) with capacity_bytes 0.  h2k-ovf read the
# image's capacity as 0, which the line matched, and 0 means "keep the
# server's" to the DiskSection: the descriptor said ovf:capacity 1048576
# for a file of 0 bytes (qemu-img info: virtual size 0), packed as is with
# --ova.  A qcow2 or sparse VMDK header of capacity 0 was already refused.
# Now: exit 8, one line naming the file, nothing written.
# SPDX-License-Identifier: LGPL-3.0-or-later
. "$(dirname "$0")/../lib.sh"

sim_start -vm 2 -disks 0 -disk-size 1M -disk-fill random -power off
h2k_login_sim || { echo "Bail out! login failed"; exit 1; }

# empty LINE >OUT: the line's disk emptied, size, sha256 and capacity_bytes
# as h2k-fetch would have written them for an empty stream
empty() {
	p=$(jget "$1" files.0.path) && : >"$p" &&
	jq -c ".files[0].size = 0 | .files[0].capacity_bytes = 0 |
		.files[0].sha256 = \"$(sha256sum <"$p" | cut -d" " -f1)\"" "$1"
}

i=0
for fmt in raw vmdk; do
	vm=DC0_H0_VM$i
	i=$((i + 1))
	test_expect_success "$fmt: an empty disk file with capacity_bytes 0: exit 8, nothing written" '
		h2k-lease /DC0/vm/'$vm' | h2k-fetch -q --format '$fmt' -o o >line-'$fmt' &&
		empty line-'$fmt' >l &&
		d=$(jget l dir) && p=$(jget l files.0.path) &&
		expect_code 8 h2k-ovf --keep-lease <l >r.out 2>r.err &&
		grep -v "^h2k-ovf: warning: .*has already ended" r.err >r.e1 &&
		cat r.e1 && test_one_line r.e1 &&
		grep -q "^h2k-ovf: stdin:1: '$vm': $p: an empty image (0 bytes)$" r.e1 &&
		test ! -s r.out && test -z "$(ls "$d" | grep "\.ovf$\|\.mf$\|\.ova$")"
	'
	test_expect_success "$fmt: nor with --ova" '
		d=$(jget l dir) &&
		expect_code 8 h2k-ovf --keep-lease --ova <l >r.out 2>r.err &&
		test -z "$(ls -A "$d" | grep "\.ovf$\|\.mf$\|\.ova$\|\.pack$\|\.part$")"
	'
done

test_done
