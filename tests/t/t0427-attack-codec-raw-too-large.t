#!/usr/bin/env bash
# attack (issue 13): a raw disk whose capacity the output file system
# cannot hold (64 TiB on ext4, whose files stop at 16 TiB) was only found
# out at the very end, by the final truncate: after the whole stream had
# been downloaded and decoded (hours, for a real disk).  The raw file is
# now sized as soon as the stream's header tells the capacity: exit 8
# at once, naming the file, nothing renamed.  Here the server stalls right
# after the header and first grain: the error must not wait for it.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/servers/nfcd-lib.sh"

if truncate -s 64T "$TRASH/probe" 2>/dev/null; then
	rm -f "$TRASH/probe"
	test_skip 'a raw disk larger than the file system allows' 'this file system holds 64 TiB files'
	test_done
fi
nfcd_start
python3 - "$TRASH/srv/huge" <<-\PY
import struct, sys, zlib
cap = (64 << 40) // 512
h = struct.pack("<IIIQQQQIQQQB4sH", 0x564d444b, 3, 0x30001, cap, 128, 1, 1, 512, 0,
                0xffffffffffffffff, 128, 0, b"\n \r\n", 1)
out = h + b"\0" * (128 * 512 - len(h))
c = zlib.compress(bytes(range(256)) * 256)
for lba in range(0, 128 * 64, 128):
    g = struct.pack("<QI", lba, len(c)) + c
    out += g + b"\0" * (-len(g) % 512)
out += struct.pack("<QII", 0, 0, 0) + b"\0" * 496
open(sys.argv[1], "wb").write(out)
PY

test_expect_success '64 TiB raw on a file system that cannot: exit 8 before the stream ends' '
	lease_line huge "$NFCD_URL/nolength=1,stall=70000,stalltime=30/huge" >h.in &&
	t0=$(date +%s); expect_code 8 h2k-fetch --ca-file $NFCD_CERT -q -o out --format raw \
		<h.in >h.json 2>h.err; rc=$?; t1=$(date +%s); cat h.err; echo "# $((t1 - t0)) s";
	test "$rc" = 0 && test $((t1 - t0)) -lt 10 && test_one_line h.err &&
	grep -q "^h2k-fetch: huge: disk-0.raw: .*/out/huge/disk-0.raw.part: truncate to 70368744177664 bytes: File too large" h.err &&
	test ! -e out/huge/disk-0.raw && test ! -s h.json
'

test_done
