#!/usr/bin/env bash
# h2k-ovf --ova killed (-9) while it packs, or once the OVA (and the loose
# descriptor) are renamed but before the manifest is: the folder reads as a
# completed export (NAME.mf or NAME.ova under a final name) only when
# NAME.ova is whole, so h2k-fetch on the same lease is not refused (exit
# 12) while the OVA is missing; a rerun of h2k-ovf --ova finishes the job
# from the downloaded disks, which are never lost, and leaves no temporary
# file.  An LD_PRELOAD shim stops h2k-ovf at the chosen point (it writes a
# flag file, then waits to be killed): no timing guesses.
# SPDX-License-Identifier: LGPL-3.0-or-later
. "$(dirname "$0")/../lib.sh"

sim_start -vm 2 -disks 0 -disk-size 4M -disk-fill random -power off
h2k_login_sim || { echo "Bail out! login failed"; exit 1; }

cat >stall.c <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
static size_t written;
static int
ends(const char *s, const char *suf)
{
	size_t n = strlen(s), m = strlen(suf);
	return n >= m && !strcmp(s + n - m, suf);
}
/* the chosen point is reached: say so, then wait for the kill */
static void
stall(const char *at)
{
	const char *on = getenv("STALL_ON"), *flag = getenv("STALL_FLAG");
	if (!on || !flag || strcmp(on, at))
		return;
	int fd = open(flag, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd >= 0)
		close(fd);
	for (;;)
		pause();
}
ssize_t
write(int fd, const void *b, size_t n)
{
	ssize_t (*real)(int, const void *, size_t) =
	    (ssize_t (*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
	char p[64], t[4096];
	ssize_t l;
	snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
	if ((l = readlink(p, t, sizeof t - 1)) > 0) {
		t[l] = '\0';
		/* packing: past the first MiB of the OVA */
		if (ends(t, ".ova.part") && (written += n) > (1u << 20))
			stall("pack");
	}
	return real(fd, b, n);
}
int
renameat(int a, const char *from, int b, const char *to)
{
	int (*real)(int, const char *, int, const char *) =
	    (int (*)(int, const char *, int, const char *))dlsym(RTLD_NEXT, "renameat");
	/* the OVA and then the loose descriptor are renamed, the loose
	 * manifest (the mark of a completed export) is next */
	if (ends(to, ".mf"))
		stall("loose");
	return real(a, from, b, to);
}
C

export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"

# stop_at POINT LINE: h2k-ovf --ova on LINE stopped at POINT, then killed -9
stop_at() {
	rm -f flag
	STALL_ON=$1 STALL_FLAG="$TRASH/flag" LD_PRELOAD="$TRASH/stall.so" \
		h2k-ovf --ova <"$2" >/dev/null 2>stop.err &
	pid=$!
	deadline=$(($(date +%s) + 60))
	while [ ! -e flag ]; do
		if ! kill -0 $pid 2>/dev/null || [ "$(date +%s)" -gt $deadline ]; then
			kill -9 $pid 2>/dev/null
			wait $pid
			echo "h2k-ovf did not reach $1:"; cat stop.err
			return 1
		fi
		sleep 0.05
	done
	kill -9 $pid && wait $pid
	test $? = 137
}

# finals DIR: the files under a final name h2k-ovf writes, sorted
finals() {
	ls "$1" | grep "\.ovf$\|\.mf$\|\.ova$" | sort | tr "\n" " "
}

test_expect_success 'the shim builds; two VMs downloaded as raw' '
	cc -shared -fPIC -o stall.so stall.c -ldl &&
	h2k-lease /DC0/vm/DC0_H0_VM0 >lease0 && h2k-fetch -q --format raw -o o <lease0 >line0 &&
	h2k-lease /DC0/vm/DC0_H0_VM1 >lease1 && h2k-fetch -q --format raw -o o <lease1 >line1 &&
	sha256sum "$(jget line0 files.0.path)" "$(jget line1 files.0.path)" >disks.sum
'

test_expect_success 'killed while packing: no final name, the disks are there' '
	stop_at pack line0 &&
	d=$(jget line0 dir) &&
	test -e "$d/DC0_H0_VM0.ova.part" &&
	test "$(finals "$d")" = "" &&
	sha256sum -c --quiet disks.sum
'

test_expect_success 'killed while packing: h2k-fetch does not take the folder for a completed export' '
	expect_code 0 h2k-fetch -q --format raw -o o <lease0 >line0b 2>fetch.err &&
	test "$(jget line0b dir)" = "$(jget line0 dir)" &&
	sha256sum -c --quiet disks.sum
'

test_expect_success 'killed while packing: a rerun finishes, nothing temporary left' '
	d=$(jget line0 dir) &&
	expect_code 0 h2k-ovf --ova <line0b >out0 2>err0 &&
	test "$(finals "$d")" = "DC0_H0_VM0.mf DC0_H0_VM0.ova DC0_H0_VM0.ovf " &&
	tar tf "$d/DC0_H0_VM0.ova" >members &&
	printf "%s\n" DC0_H0_VM0.ovf DC0_H0_VM0.mf disk-0.raw >expect && test_cmp expect members &&
	mkdir x0 && tar xf "$d/DC0_H0_VM0.ova" -C x0 &&
	cmp x0/DC0_H0_VM0.ovf "$d/DC0_H0_VM0.ovf" && cmp x0/DC0_H0_VM0.mf "$d/DC0_H0_VM0.mf" &&
	test "$(sha256sum <x0/disk-0.raw | cut -d" " -f1)" = "$(jget line0 files.0.sha256)" &&
	test ! -e "$d/disk-0.raw" &&
	test "$(ls -A "$d" | grep -c "\.part$\|\.pack$")" = 0
'

test_expect_success 'killed once the OVA is renamed: the OVA is whole, a rerun finishes' '
	d=$(jget line1 dir) &&
	stop_at loose line1 &&
	test "$(finals "$d")" = "DC0_H0_VM1.ova DC0_H0_VM1.ovf " &&
	tar tf "$d/DC0_H0_VM1.ova" >members &&
	printf "%s\n" DC0_H0_VM1.ovf DC0_H0_VM1.mf disk-0.raw >expect && test_cmp expect members &&
	expect_code 12 h2k-fetch -q --format raw -o o <lease1 >/dev/null 2>fetch1.err &&
	grep -q "holds a completed export (DC0_H0_VM1.ova)" fetch1.err &&
	expect_code 0 h2k-ovf --ova <line1 >out1 2>err1 &&
	test "$(finals "$d")" = "DC0_H0_VM1.mf DC0_H0_VM1.ova DC0_H0_VM1.ovf " &&
	test ! -e "$d/disk-0.raw" &&
	test "$(ls -A "$d" | grep -c "\.part$\|\.pack$")" = 0
'

test_done
