#!/usr/bin/env bash
# attack (issue 13): a streamOptimized stream that never ends and never
# writes: grain table markers without end, footers or grain directories
# repeated, zeros after the end-of-stream marker without end.  Each kept
# h2k-fetch (and the lease it keeps alive) busy for as long as the server
# liked.  Each metadata marker is now bounded by what the disk holds (as
# many grain tables as the capacity needs, one directory, one footer) and
# the padding after the end marker by 1 MiB: exit 9, offset named,
# nothing renamed.  A stream with each marker once, and a MiB of padding,
# still converts.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/servers/nfcd-lib.sh"

nfcd_start
python3 - "$TRASH/srv" <<-\PY
import struct, sys, zlib
d = sys.argv[1]
def header(cap):
    h = struct.pack("<IIIQQQQIQQQB4sH", 0x564d444b, 3, 0x30001, cap, 128, 1, 1, 512, 0,
                    0xffffffffffffffff, 128, 0, b"\n \r\n", 1)
    return h + b"\0" * (512 - len(h))
def meta(n, t):
    return struct.pack("<QII", n, 0, t) + b"\0" * 496
data = bytes(range(256)) * 256
c = zlib.compress(data)
g = struct.pack("<QI", 0, len(c)) + c
g += b"\0" * (-len(g) % 512)
head = header(1024) + b"\0" * (127 * 512) + g      # grain at 65536, then 66560
gt, gd, foot, eos = meta(4, 1) + b"\0" * 2048, meta(1, 2) + b"\0" * 512, meta(1, 3) + header(1024), meta(0, 0)
streams = {
    "gtloop": head + gt * 4000 + eos,           # second GT at 66560 + 2560
    "gd2": head + gd * 2 + eos,                 # second GD at 66560 + 1024
    "foot2": head + foot * 2 + eos,             # second footer at 66560 + 1024
    "pad": head + eos + b"\0" * (2 << 20),      # padding from 67072
    "legit": head + gt + gd + foot + eos + b"\0" * (1 << 20),
}
for k, v in streams.items():
    open(d + "/" + k, "wb").write(v)
open(d + "/legit.raw", "wb").write(data + b"\0" * (1024 * 512 - len(data)))
PY
F="h2k-fetch --ca-file $NFCD_CERT --retry-delay 0.01 --retries 1 -q"

while read -r kind off why; do
	test_expect_success "$kind: exit 9 at offset $off ($why), nothing renamed" '
		lease_line '$kind' "$NFCD_URL/nolength=1/'$kind'" |
		expect_code 9 $F -o out --format raw >e.json 2>e.err &&
		cat e.err && test_one_line e.err &&
		grep -q "^h2k-fetch: '$kind': disk-0.raw: offset '$off': .*'"$why"'" e.err &&
		test ! -e out/'$kind'/disk-0.raw && test ! -s e.json
	'
done <<-\EOF
	gtloop 69120 more than the 1 tables of this disk
	gd2 67584 a second grain directory marker
	foot2 67584 a second footer marker
	pad 67072 bytes of padding after the end-of-stream marker
EOF

test_expect_success 'each marker once and 1 MiB of padding: converted, identical' '
	lease_line legit "$NFCD_URL/nolength=1/legit" |
	expect_code 0 $F -o out --format raw >l.json &&
	cmp out/legit/disk-0.raw srv/legit.raw
'

test_done
