#!/usr/bin/env bash
# h2k-ovf --ova removes the packed disks by their names in the locked VM
# folder, not through the paths of the line: a line whose files[] reach
# the folder through a symbolic link to it, re-pointed elsewhere after the
# OVA is verified, must not get a file outside the folder removed; a disk
# replaced by another file after packing is left in place (a warning).
# The race is made deterministic by an LD_PRELOAD shim that swaps the link
# when the first disk is about to be removed.
# SPDX-License-Identifier: LGPL-3.0-or-later
. "$(dirname "$0")/../lib.sh"

sim_start -vm 2 -disks 1 -disk-size 256K -disk-fill random -power off
h2k_login_sim || { echo "Bail out! login failed"; exit 1; }

cat >swap.c <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
static int done;
static void
swap(const char *name)
{
	const char *on = getenv("SWAP_ON"), *from = getenv("SWAP_FROM"),
	    *to = getenv("SWAP_TO");
	size_t n = strlen(name), m = on ? strlen(on) : 0;
	if (done || !on || !from || !to || n < m || strcmp(name + n - m, on))
		return;
	done = 1;
	if (rename(from, to) < 0)
		perror("swap");
}
int
unlink(const char *p)
{
	int (*real)(const char *) = (int (*)(const char *))dlsym(RTLD_NEXT, "unlink");
	swap(p);
	return real(p);
}
int
unlinkat(int fd, const char *p, int fl)
{
	int (*real)(int, const char *, int) =
	    (int (*)(int, const char *, int))dlsym(RTLD_NEXT, "unlinkat");
	swap(p);
	return real(fd, p, fl);
}
C

export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"

test_expect_success 'the shim builds; two VMs downloaded as raw' '
	cc -shared -fPIC -o swap.so swap.c -ldl &&
	h2k-lease /DC0/vm/DC0_H0_VM0 | h2k-fetch -q --format raw -o o >line0 &&
	h2k-lease /DC0/vm/DC0_H0_VM1 | h2k-fetch -q --format raw -o o >line1 &&
	test -f "$(jget line0 files.0.path)" && test -f "$(jget line1 files.0.path)"
'

test_expect_success 'files[] through a link re-pointed after verify: nothing outside the folder removed' '
	d=$(jget line0 dir) &&
	mkdir decoy && echo precious >decoy/disk-0.raw && echo precious >decoy/disk-1.raw &&
	ln -s "$d" L && ln -s "$TRASH/decoy" L.new &&
	jq -c ".files |= map(.path = (\"$TRASH/L/\" + (.path | split(\"/\") | last)))" line0 >linel &&
	grep -q "\"$TRASH/L/disk-0.raw\"" linel &&
	expect_code 0 env SWAP_ON=disk-0.raw SWAP_FROM="$TRASH/L.new" SWAP_TO="$TRASH/L" \
		LD_PRELOAD="$TRASH/swap.so" h2k-ovf --ova <linel >out0 2>err0 &&
	test "$(readlink L)" = "$TRASH/decoy" &&
	test "$(cat decoy/disk-0.raw)" = precious && test "$(cat decoy/disk-1.raw)" = precious &&
	test ! -e "$d/disk-0.raw" && test ! -e "$d/disk-1.raw" &&
	test -f "$(jget out0 ova_path)" &&
	test "$(jget out0 files.*.removed | sort -u)" = true
'

test_expect_success 'a disk replaced after the OVA was verified is left in place, a warning' '
	d=$(jget line1 dir) &&
	echo other >"$d/new" &&
	expect_code 0 env SWAP_ON=disk-0.raw SWAP_FROM="$d/new" SWAP_TO="$d/disk-1.raw" \
		LD_PRELOAD="$TRASH/swap.so" h2k-ovf --ova <line1 >out1 2>err1 &&
	test ! -e "$d/disk-0.raw" && test "$(cat "$d/disk-1.raw")" = other &&
	grep -q "disk-1.raw: not the file packed in the OVA any more; left in place" err1 &&
	test "$(jget out1 files.0.removed)" = true && test "$(jget out1 files.1.removed)" = ""
'

test_done
