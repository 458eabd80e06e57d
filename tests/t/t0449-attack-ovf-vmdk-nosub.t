#!/usr/bin/env bash
# attack: a line whose files[] says format vmdk without vmdk_subformat
# (user input: the key dropped) over the streamOptimized VMDK h2k-fetch
# saved.  A vmdk without subformat is the plain bytes of a disk to the
# descriptor (the raw format URI, h2k-ovf(1) DISK FORMATS), yet h2k-ovf took
# the capacity from the sparse header: the descriptor called a compressed
# VMDK a raw disk of 1 MiB, and a reader taking it at its word reads the
# VMDK's container bytes as the guest's disk.  Now: exit 8, one line
# naming the file, nothing written; the line as h2k-fetch wrote it goes.
# SPDX-License-Identifier: LGPL-3.0-or-later
. "$(dirname "$0")/../lib.sh"

set -- -vm 1 -disks 0 -disk-size 1M -disk-fill random -power off
"$SIM_BIN" -h 2>&1 | grep -q -- -stream-vmdk && set -- "$@" -stream-vmdk
sim_start "$@"
h2k_login_sim || { echo "Bail out! login failed"; exit 1; }

test_expect_success 'downloaded as vmdk: streamOptimized, the line says so' '
	h2k-lease /DC0/vm/DC0_H0_VM0 | h2k-fetch -q --format vmdk -o o >line &&
	test "$(jget line files.0.vmdk_subformat)" = streamOptimized
'

test_expect_success 'vmdk_subformat dropped: exit 8, nothing written' '
	jq -c "del(.files[0].vmdk_subformat)" line >l &&
	d=$(jget l dir) && p=$(jget l files.0.path) &&
	expect_code 8 h2k-ovf --keep-lease <l >r.out 2>r.err &&
	grep -v "^h2k-ovf: warning: .*has already ended" r.err >r.e1 &&
	cat r.e1 && test_one_line r.e1 &&
	grep -q "^h2k-ovf: stdin:1: DC0_H0_VM0: $p: files\[\] says a VMDK of plain bytes (no vmdk_subformat), the bytes are a sparse VMDK$" r.e1 &&
	test ! -s r.out && test -z "$(ls "$d" | grep "\.ovf$\|\.mf$\|\.ova$")"
'

test_expect_success 'the line as h2k-fetch wrote it: the streamOptimized URI' '
	expect_code 0 h2k-ovf --keep-lease <line >out 2>err &&
	grep -q "vmdk.html#streamOptimized" "$(jget out ovf_path)"
'

test_done
