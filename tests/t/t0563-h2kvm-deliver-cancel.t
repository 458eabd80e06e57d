#!/usr/bin/env bash
# A copy into --deliver DIR on another file system is cancellable: SIGTERM
# mid-copy ends h2k-ovf with exit 10 promptly, nothing delivered, no
# partial file left (it used to copy the whole OVA, however big, and exit
# 0).  The copy is slowed down by an LD_PRELOAD shim on read(2).  Empty
# --deliver and --hyper2kvm-output are refused (exit 2) instead of meaning
# the working directory without saying so.
. "$(dirname "$0")/../lib.sh"

test_expect_success 'empty --deliver or --hyper2kvm-output: exit 2, one line' '
	expect_code 2 h2k-ovf --deliver "" </dev/null >o 2>e &&
	test_one_line e && grep -q "deliver" e &&
	expect_code 2 h2k-ovf --hyper2kvm-output "" </dev/null >o 2>e2 &&
	test_one_line e2 && grep -q "hyper2kvm-output" e2
'

if ! command -v cc >/dev/null 2>&1; then
	test_skip "cancel mid-copy" "no C compiler for the read(2) shim"; test_done
fi
if ! [ -d /dev/shm ] || ! [ -w /dev/shm ] ||
   [ "$(stat -c %d /dev/shm)" = "$(stat -c %d "$TRASH")" ]; then
	test_skip "cancel mid-copy" "/dev/shm is not another writable file system"
	test_done
fi

sim_start -vm 1 -disks 1 -disk-size 8M -disk-fill random -power off
h2k_login_sim || { echo "Bail out! login failed"; exit 1; }
W=$(mktemp -d /dev/shm/h2k-t0563.XXXXXX) && test_atexit "rm -rf '$W'"
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0

cat >slow.c <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <unistd.h>
ssize_t
read(int fd, void *b, size_t n)
{
	static ssize_t (*r)(int, void *, size_t);
	if (!r)
		r = (ssize_t (*)(int, void *, size_t))dlsym(RTLD_NEXT, "read");
	if (n >= 65536)
		usleep(40000);
	return r(fd, b, n);
}
C

test_expect_success 'a read(2) shim and an OVA' '
	cc -shared -fPIC -o slow.so slow.c -ldl &&
	h2k-lease /DC0/vm/DC0_H0_VM0 | h2k-fetch -o exp | h2k-ovf --ova --keep-files >line 2>err &&
	test_line_count = 1 line && stat -c %i "$(jget line ova_path)" >ino0
'

test_expect_success 'SIGTERM mid-copy: exit 10, nothing in DIR' '
	ova=$(jget line ova_path) &&
	printf "%s\n" "LD_PRELOAD=\"\$1\" h2k-ovf --ova --deliver \"\$2\" <line >o2 2>e2 &" \
		"echo \$! >pid; wait \$!; echo \$? >rc" >run.sh &&
	{ sh run.sh "$TRASH/slow.so" "$W" & } &&
	i=0 && while [ "$(stat -c %i "$ova" 2>/dev/null)" = "$(cat ino0)" ] && [ $i -lt 600 ]; do
		sleep 0.05; i=$((i + 1)); done &&
	sleep 0.3 && kill -TERM "$(cat pid)" &&
	i=0 && while [ ! -s rc ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i + 1)); done &&
	{ test "$(cat rc)" = 10 || { cat rc e2; false; }; } &&
	test -z "$(ls -A "$W")" && grep -q "interrupted" e2
'

test_done
