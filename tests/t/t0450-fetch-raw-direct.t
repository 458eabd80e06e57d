#!/usr/bin/env bash
# h2k-fetch --format raw writes the full grains of a raw image with O_DIRECT
# (a second descriptor of the .part) and hashes the decoded grains, not the
# file read back: the file and the printed SHA-256 are the same as with
# H2K_FETCH_NO_DIRECT=1 (buffered writes, read back), on disk and on
# tmpfs; a file system that refuses O_DIRECT at the first write gets
# buffered writes; EIO on a direct write fails the disk, nothing renamed.
# SPDX-License-Identifier: LGPL-3.0-or-later
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/servers/nfcd-lib.sh"

if ! command -v qemu-img >/dev/null; then
	test_skip 'h2k-fetch --format raw with O_DIRECT' 'no qemu-img (scripts/deps installs qemu-utils)'
	test_done
fi

nfcd_start
# 512 KiB hole, 6 MiB of data in a row (more grains than the hasher's
# ring holds: the worker waits for it), 40 x (64 KiB data, 64 KiB hole),
# data ending mid-grain (a short last piece: buffered), a 1 MiB hole
python3 - <<'PY'
import os
with open("disk.raw", "wb") as f:
    f.seek(512 << 10)
    f.write(os.urandom(6 << 20))
    for i in range(40):
        f.write(os.urandom(65536))
        f.seek(65536, 1)
    f.write(os.urandom(1000))
    f.truncate(f.tell() + (1 << 20) + 512 - 1000 % 512)
PY
qemu-img convert -f raw -O vmdk -o subformat=streamOptimized disk.raw srv/q
cp disk.raw srv/plain
want=$(sha256sum <disk.raw | cut -d" " -f1)
F="h2k-fetch --ca-file $NFCD_CERT --retry-delay 0.05 -q"

# fetch OUT VM URL-TAIL: one disk device, to raw under OUT
fetch() {
	lease_line "$2" "$NFCD_URL/$3" | $F -o "$1" --format raw >"$2.json" 2>"$2.err"
}

# same OUT VM: the image and the digest are disk.raw's
same() {
	cmp "$1/$2/disk-0.raw" disk.raw &&
	test "$(jget $2.json files.0.sha256)" = "$want" &&
	test "$(sha256sum <"$1/$2/disk-0.raw" | cut -d" " -f1)" = "$want"
}


for src in q plain; do
	test_expect_success "$src: direct and buffered give the same file and digest" '
		fetch out d-'$src' nolength=1/'$src' &&
		same out d-'$src' &&
		H2K_FETCH_NO_DIRECT=1 fetch out b-'$src' nolength=1/'$src' &&
		same out b-'$src'
	'
done

if ! strace -f -o /dev/null true 2>/dev/null; then
	test_skip 'O_DIRECT seen in the descriptors opened' 'no strace that runs here (scripts/deps installs it)'
else test_expect_success 'the grains go through an O_DIRECT descriptor; H2K_FETCH_NO_DIRECT=1: none' '
	# LeakSanitizer cannot run under ptrace (an ASan build)
	export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" &&
	lease_line st "$NFCD_URL/nolength=1/q" |
		strace -f -e trace=openat,pwrite64,pwritev -o st.trace $F -o out --format raw >st.json &&
	same out st &&
	grep "disk-0.raw.part" st.trace | grep -q O_DIRECT &&
	# the socket thread makes the first direct write (it may turn direct
	# I/O off); the rest go from the hasher thread, several grains a call
	dfd=$(grep "disk-0.raw.part.*O_DIRECT" st.trace | sed -n "s/.*= \([0-9][0-9]*\)\$/\1/p") &&
	test -n "$dfd" &&
	grep -E "^[0-9]+ +pwrite64\($dfd, " st.trace >probe &&
	test_line_count = 1 probe &&
	grep -E "^[0-9]+ +pwritev\($dfd, " st.trace >later &&
	test "$(wc -l <later)" -gt 1 &&
	test "$(cut -d" " -f1 probe)" != "$(cut -d" " -f1 later | sort -u)" &&
	test "$(cut -d" " -f1 later | sort -u | wc -l)" = 1 &&
	test "$(awk "{print \$NF}" later | sort -n | tail -n 1)" -gt 65536 &&
	lease_line stb "$NFCD_URL/nolength=1/q" | H2K_FETCH_NO_DIRECT=1 \
		strace -f -e trace=openat -o stb.trace $F -o out --format raw >stb.json &&
	same out stb &&
	grep "disk-0.raw.part" stb.trace >opens &&
	test -s opens && ! grep -q O_DIRECT opens
'
fi

test_expect_success 'a stream cut twice restarts the ring and the hash from 0' '
	fetch out cut nolength=1,cut=rand,times=2/q &&
	same out cut &&
	requests /nolength=1,cut=rand,times=2/q >log && test_line_count = 3 log
'

if [ -d /dev/shm ] && [ -w /dev/shm ] && shm=$(mktemp -d /dev/shm/h2k-t0450.XXXXXX); then
	test_atexit "rm -rf '$shm'"
	test_expect_success 'on tmpfs: the same file and digest, direct or not' '
		fetch "$shm" m-q nolength=1/q && same "$shm" m-q &&
		H2K_FETCH_NO_DIRECT=1 fetch "$shm" mb-q nolength=1/q && same "$shm" mb-q
	'
else
	test_skip 'on tmpfs' 'no writable /dev/shm'
fi

if ! cc -shared -fPIC -o "$TRASH/failio.so" "$TESTS_DIR/servers/failio.c" -ldl 2>cc.err; then
	test_skip 'O_DIRECT refused, EIO on a direct write' "cannot build the shim: $(head -n 1 cc.err)"
	nfcd_stop
	test_done
fi
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"

test_expect_success 'O_DIRECT refused at the first write: buffered, silently' '
	lease_line ev "$NFCD_URL/nolength=1/q" |
		LD_PRELOAD="$TRASH/failio.so" FAILIO=direct $F -o out --format raw >ev.json 2>ev.err &&
	same out ev && test ! -s ev.err
'

test_expect_success 'EIO on a direct write: exit 8, the file named, nothing renamed' '
	lease_line eio "$NFCD_URL/nolength=1/q" |
		LD_PRELOAD="$TRASH/failio.so" FAILIO=write:3000000 \
		expect_code 8 $F -o out --format raw --retries 0 >eio.json 2>eio.err &&
	test_one_line eio.err &&
	grep -q "out/eio/disk-0.raw.part: write: Input/output error" eio.err &&
	test ! -e out/eio/disk-0.raw && test ! -s eio.json
'

nfcd_stop
test_done
