#!/usr/bin/env bash
# h2k-fetch --format raw hashes the image as it is written (no read-back):
# the SHA-256 it prints is sha256sum's of the final file for a disk that
# starts with a hole, alternates data and holes grain by grain (more runs
# than the hasher's queue holds), and ends in a hole; a cut restarts the
# hash from 0.
# SPDX-License-Identifier: LGPL-3.0-or-later
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/servers/nfcd-lib.sh"

if ! command -v qemu-img >/dev/null; then
	test_skip 'h2k-fetch --format raw hash' 'no qemu-img (scripts/deps installs qemu-utils)'
	test_done
fi

nfcd_start
# 1 MiB hole, 1100 x (64 KiB data, 64 KiB hole), data ending mid-grain,
# then a 3 MiB hole past it
python3 - <<'PY'
import os
with open("disk.raw", "wb") as f:
    f.seek(1 << 20)
    for i in range(1100):
        f.write(os.urandom(65536))
        f.seek(65536, 1)
    f.write(os.urandom(1000))
    f.truncate(f.tell() + (3 << 20) + 512 - 1000 % 512)
PY
qemu-img convert -f raw -O vmdk -o subformat=streamOptimized disk.raw srv/q
python3 "$TESTS_DIR/servers/mkstream.py" disk.raw srv/e
cp disk.raw srv/plain
want=$(sha256sum <disk.raw | cut -d" " -f1)
F="h2k-fetch --ca-file $NFCD_CERT --retry-delay 0.05 -q"

# fetch VM URL-TAIL: one disk device, to raw
fetch() {
	lease_line "$1" "$NFCD_URL/$2" | $F -o out --format raw >"$1.json" 2>"$1.err"
}

for src in q e plain; do
	test_expect_success "$src: the printed SHA-256 is the final file's" '
		fetch r-'$src' nolength=1/'$src' &&
		f=out/r-'$src'/disk-0.raw &&
		cmp $f disk.raw &&
		test "$(jget r-'$src'.json files.0.sha256)" = "$want" &&
		test "$(sha256sum <$f | cut -d" " -f1)" = "$want" &&
		test "$(jget r-'$src'.json files.0.size)" = "$(stat -c %s disk.raw)"
	'
done

test_expect_success 'a stream cut twice restarts the hash from 0' '
	fetch cut nolength=1,cut=rand,times=2/e &&
	cmp out/cut/disk-0.raw disk.raw &&
	test "$(jget cut.json files.0.sha256)" = "$want" &&
	requests /nolength=1,cut=rand,times=2/e >log && test_line_count = 3 log
'

test_expect_success 'a malformed grain late in the stream: nothing renamed' '
	python3 -c "
import sys
b = bytearray(open(\"srv/e\", \"rb\").read())
i = len(b) * 3 // 4
b[i:i + 4096] = bytes(4096)
open(\"srv/bad\", \"wb\").write(b)
" &&
	test_expect_code 3 fetch bad nolength=1/bad &&
	test ! -e out/bad/disk-0.raw
'

test_done
