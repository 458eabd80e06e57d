#!/usr/bin/env bash
# attack: the completion rule (only NAME.mf or NAME.ova marks a completed
# export) lets h2k-fetch take a folder holding a lone NAME.ovf: h2k-ovf
# killed (-9) between its descriptor and its manifest, or another VM's
# descriptor of the same name left there.  h2k-fetch then downloaded the
# disks again (here in another format) and left that NAME.ovf beside them:
# a descriptor naming disk-0.raw in a folder now holding disk-0.qcow2, or
# describing another VM altogether, under a final name, until some h2k-ovf
# replaced it.  Now: h2k-fetch taking the folder removes the lone
# descriptor (it vouches for nothing); h2k-ovf then writes both; a folder
# with NAME.mf is still refused (exit 12) and left as it is.
# SPDX-License-Identifier: LGPL-3.0-or-later
. "$(dirname "$0")/../lib.sh"

sim_start -vm 1 -disks 0 -disk-size 1M -disk-fill random -power off
h2k_login_sim || { echo "Bail out! login failed"; exit 1; }
VM=DC0_H0_VM0

cat >stall.c <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
/* the descriptor is renamed, the manifest is next: say so, wait for the kill */
int
renameat(int a, const char *from, int b, const char *to)
{
	int (*real)(int, const char *, int, const char *) =
	    (int (*)(int, const char *, int, const char *))dlsym(RTLD_NEXT, "renameat");
	const char *flag = getenv("STALL_FLAG");
	size_t n = strlen(to);
	if (flag && n > 3 && !strcmp(to + n - 3, ".mf")) {
		int fd = open(flag, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd >= 0)
			close(fd);
		for (;;)
			pause();
	}
	return real(a, from, b, to);
}
C

export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"

test_expect_success 'the shim builds; downloaded as raw' '
	cc -shared -fPIC -o stall.so stall.c -ldl &&
	h2k-lease /DC0/vm/$VM | h2k-fetch -q --format raw -o o >line &&
	d=$(jget line dir) && test -s "$d/disk-0.raw"
'

test_expect_success 'h2k-ovf killed between NAME.ovf and NAME.mf: a lone descriptor' '
	d=$(jget line dir) || exit 1
	STALL_FLAG="$TRASH/flag" LD_PRELOAD="$TRASH/stall.so" h2k-ovf --keep-lease <line >/dev/null 2>stop.err &
	pid=$! && deadline=$(($(date +%s) + 60)) &&
	while [ ! -e flag ]; do
		kill -0 $pid 2>/dev/null && [ "$(date +%s)" -le $deadline ] || { cat stop.err; exit 1; }
		sleep 0.05
	done &&
	kill -9 $pid && { wait $pid; test $? = 137; } &&
	test -s "$d/$VM.ovf" && test ! -e "$d/$VM.mf" && grep -q "disk-0.raw" "$d/$VM.ovf"
'

test_expect_success 'h2k-fetch (as qcow2) takes the folder and removes the lone descriptor' '
	d=$(jget line dir) &&
	h2k-lease /DC0/vm/$VM >lease2 &&
	expect_code 0 h2k-fetch -q --format qcow2 -o o <lease2 >line2 2>err2 &&
	test "$(jget line2 dir)" = "$d" && test -s "$d/disk-0.qcow2" &&
	test ! -e "$d/$VM.ovf"
'

test_expect_success 'h2k-ovf writes both, naming the qcow2' '
	d=$(jget line2 dir) &&
	expect_code 0 h2k-ovf --keep-lease <line2 >out2 2>err &&
	grep -q "disk-0.qcow2" "$d/$VM.ovf" && test -s "$d/$VM.mf"
'

test_expect_success 'another VM'"'"'s lone descriptor of the same name: removed too' '
	d=$(jget line2 dir) && rm "$d/$VM.mf" &&
	echo "<Envelope>another VM</Envelope>" >"$d/$VM.ovf" &&
	h2k-lease /DC0/vm/$VM >lease3 &&
	expect_code 0 h2k-fetch -q --format raw -o o <lease3 >line3 2>err3 &&
	test "$(jget line3 dir)" = "$d" && test ! -e "$d/$VM.ovf"
'

test_expect_success 'with NAME.mf beside it: a completed export, refused (exit 12), left as it is' '
	d=$(jget line3 dir) &&
	expect_code 0 h2k-ovf --keep-lease <line3 >out3 2>err &&
	sha256sum "$d/$VM.ovf" "$d/$VM.mf" >finals.sum &&
	h2k-lease /DC0/vm/$VM >lease4 &&
	expect_code 12 h2k-fetch -q --format raw -o o <lease4 >/dev/null 2>err4 &&
	grep -q "holds a completed export" err4 &&
	sha256sum -c --quiet finals.sum
'

test_done
