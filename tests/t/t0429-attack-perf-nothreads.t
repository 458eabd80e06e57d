#!/usr/bin/env bash
# h2k-fetch when threads cannot be had (an LD_PRELOAD shim failing
# pthread_create): with no worker thread at all, exit 1 (a failure, not
# the 10 of a cancel) with one line; with no hasher thread (creates from
# the workers fail), a --format raw disk is hashed by the read-back and the
# printed SHA-256 is still sha256sum's of the file.
# SPDX-License-Identifier: LGPL-3.0-or-later
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/servers/nfcd-lib.sh"

cat >nothr.c <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>
/* NOTHR=all: every pthread_create fails; NOTHR=sub: those not made by
 * the main thread (the hashers) */
int
pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*f)(void *), void *arg)
{
	const char *m = getenv("NOTHR");
	int (*real)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

	if (m && (m[0] == 'a' || gettid() != getpid()))
		return EAGAIN;
	real = (int (*)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *))
	    dlsym(RTLD_NEXT, "pthread_create");
	return real(t, a, f, arg);
}
C
if ! cc -shared -fPIC -o "$TRASH/nothr.so" nothr.c -ldl 2>cc.err; then
	test_skip 'no threads' "cannot build the shim: $(head -n 1 cc.err)"
	test_done
fi
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
nfcd_start
python3 - <<'PY'
import os
with open("disk.raw", "wb") as f:
    for i in range(40):
        f.write(os.urandom(65536) if i % 3 else bytes(65536))
    f.write(os.urandom(1000))
    f.truncate(f.tell() + (1 << 20) + 512 - 1000 % 512)
PY
python3 "$TESTS_DIR/servers/mkstream.py" disk.raw srv/e
want=$(sha256sum <disk.raw | cut -d" " -f1)

fetch() { # VM NOTHR
	lease_line "$1" "$NFCD_URL/nolength=1/e" |
	LD_PRELOAD="$TRASH/nothr.so" NOTHR=$2 \
		h2k-fetch --ca-file "$NFCD_CERT" -q --retry-delay 0.01 -o out --format raw \
		>"$1.json" 2>"$1.err"
}

test_expect_success 'no thread at all: exit 1, not the 10 of a cancel' '
	expect_code 1 fetch none all &&
	test_one_line none.err &&
	grep -q "cannot start threads" none.err &&
	test ! -e out/none/disk-0.raw && test ! -s none.json
'

test_expect_success 'no hasher thread: the raw image read back, SHA-256 right' '
	fetch nohz sub &&
	cmp out/nohz/disk-0.raw disk.raw &&
	test "$(jget nohz.json files.0.sha256)" = "$want"
'

test_done
