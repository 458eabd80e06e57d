#!/usr/bin/env bash
# attack (issue 13): a grain whose zlib data ends cleanly after fewer bytes
# than the grain covers (100 of 65536).  h2k made up the rest as zeros and
# exited 0; qemu-img refuses to read that part of such a disk (EINVAL).
# Now it is a malformed stream: exit 9, the offset named, nothing renamed.
# A last grain that covers exactly up to a capacity that is not a multiple
# of the grain still converts.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/servers/nfcd-lib.sh"

nfcd_start
python3 - "$TRASH/srv" <<-\PY
import struct, sys, zlib
d = sys.argv[1]
def stream(cap, grains):
    h = struct.pack("<IIIQQQQIQQQB4sH", 0x564d444b, 3, 0x30001, cap, 128, 1, 1, 512, 0,
                    0xffffffffffffffff, 128, 0, b"\n \r\n", 1)
    out = h + b"\0" * (128 * 512 - len(h))
    for lba, data in grains:
        c = zlib.compress(data)
        g = struct.pack("<QI", lba, len(c)) + c
        out += g + b"\0" * (-len(g) % 512)
    return out + struct.pack("<QII", 0, 0, 0) + b"\0" * 496
full = bytes(range(256)) * 256
open(d + "/short", "wb").write(stream(1024, [(0, full), (128, b"\1" * 100)]))
tail = bytes(range(256)) * 208                      # 104 sectors
open(d + "/tail", "wb").write(stream(1000, [(0, full), (896, tail)]))
open(d + "/tail.raw", "wb").write(full + b"\0" * (896 * 512 - len(full)) + tail)
PY
F="h2k-fetch --ca-file $NFCD_CERT --retry-delay 0.01 --retries 1 -q"

for fmt in raw qcow2; do
	test_expect_success "a grain inflating to 100 of its 65536 bytes ($fmt): exit 9, offset 66560" '
		lease_line s'$fmt' "$NFCD_URL/nolength=1/short" |
		expect_code 9 $F -o out --format '$fmt' >s.json 2>s.err &&
		cat s.err && test_one_line s.err &&
		grep -q "^h2k-fetch: s'$fmt': disk-0.'$fmt': offset 66560: grain at LBA 128 inflates to only 100 of its 65536 bytes" s.err &&
		test ! -e out/s'$fmt'/disk-0.'$fmt' && test ! -s s.json
	'
done

test_expect_success 'a last grain covering exactly up to an odd capacity: converted, identical' '
	lease_line tail "$NFCD_URL/nolength=1/tail" |
	expect_code 0 $F -o out --format raw >t.json &&
	cmp out/tail/disk-0.raw srv/tail.raw
'

test_done
