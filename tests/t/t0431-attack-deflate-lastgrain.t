#!/usr/bin/env bash
# attack (issue 13): a disk whose capacity is not a multiple of 64 KiB,
# its last grain compressed whole (64 KiB, as a writer padding the grain
# does).  h2k-fetch.1 refuses only a grain that "inflates beyond 64 KiB
# or to less than its share of the disk", and qemu-img reads it (the bytes
# past the capacity dropped), but the decoder gave the inflater only the
# grain's share: exit 9, "inflates beyond its 512 bytes".  Now converted,
# identical to qemu-img's reading; 64 KiB + 1 is still a bomb and a grain
# short of its share still refused.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/servers/nfcd-lib.sh"

nfcd_start
python3 - "$TRASH/srv" <<-\PY
import struct, sys, zlib
d = sys.argv[1]
G = 65536
def header(cap, gd=0xffffffffffffffff):
    h = struct.pack("<IIIQQQQIQQQB4sH", 0x564d444b, 3, 0x30001, cap, 128, 1, 1, 512, 0,
                    gd, 2, 0, b"\n \r\n", 1)
    return h + b"\0" * (512 - len(h))
def desc(sec):
    t = ('# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n'
         'createType="streamOptimized"\n\nRW %d SPARSE "disk.vmdk"\n' % sec).encode()
    return t + b"\0" * (512 - len(t))
def meta(n, t):
    return struct.pack("<QII", n, 0, t) + b"\0" * 496
def stream(cap, grains):
    s = header(cap // 512) + desc(cap // 512)
    gt = [0] * 512
    for i, data in enumerate(grains):
        z = zlib.compress(data)
        gt[i] = len(s) // 512
        g = struct.pack("<QI", i * 128, len(z)) + z
        s += g + b"\0" * (-len(g) % 512)
    s += meta(4, 1)
    at = len(s) // 512
    s += struct.pack("<512I", *gt) + meta(1, 2)
    gd = len(s) // 512
    s += struct.pack("<I", at) + b"\0" * 508 + meta(1, 3) + header(cap // 512, gd) + meta(0, 0)
    return s
rnd = bytes((i * 7919 + (i >> 9) * 131) & 255 for i in range(3 * G))
for cap in (512, 65024, 66048):
    full = [rnd[i * G:(i + 1) * G] for i in range((cap + G - 1) // G)]
    disk = b"".join(full)[:cap]
    open("%s/whole-%d" % (d, cap), "wb").write(stream(cap, full))
    open("%s/whole-%d.raw" % (d, cap), "wb").write(disk)
    open("%s/bomb-%d" % (d, cap), "wb").write(stream(cap, full[:-1] + [full[-1] + b"x"]))
    n = (cap - 1) % G          # one byte short of the last grain's share
    open("%s/short-%d" % (d, cap), "wb").write(stream(cap, full[:-1] + [full[-1][:n]]))
PY
F="h2k-fetch --ca-file $NFCD_CERT --retry-delay 0.01 --retries 1 -q"

for cap in 512 65024 66048; do
	off=1024; [ $cap = 66048 ] && off=$(python3 -c "
import sys, struct
d = open('srv/whole-66048', 'rb').read()
n = struct.unpack('<I', d[1032:1036])[0]
print(1024 + (12 + n + 511) // 512 * 512)")
	if command -v qemu-img >/dev/null; then
		test_expect_success "whole-$cap: qemu-img (the oracle) reads the disk" '
			expect_code 0 qemu-img convert -f vmdk -O raw srv/whole-'$cap' q-'$cap'.raw &&
			cmp q-'$cap'.raw srv/whole-'$cap'.raw
		'
	fi
	for fmt in raw qcow2; do
		test_expect_success "whole-$cap ($fmt): last grain of 64 KiB converted, identical" '
			lease_line w'$cap-$fmt' "$NFCD_URL/nolength=1/whole-'$cap'" |
			expect_code 0 $F -o out --format '$fmt' >w.json 2>w.err &&
			test ! -s w.err &&
			if [ '$fmt' = raw ]; then
				cmp out/w'$cap-$fmt'/disk-0.raw srv/whole-'$cap'.raw
			else
				! command -v qemu-img >/dev/null ||
				qemu-img compare -q -f qcow2 -F raw out/w'$cap-$fmt'/disk-0.qcow2 srv/whole-'$cap'.raw
			fi
		'
	done
	test_expect_success "bomb-$cap: 64 KiB + 1 still exit 9 at offset $off, nothing renamed" '
		lease_line b'$cap' "$NFCD_URL/nolength=1/bomb-'$cap'" |
		expect_code 9 $F -o out --format raw >b.json 2>b.err &&
		cat b.err && test_one_line b.err &&
		grep -q "^h2k-fetch: b'$cap': disk-0.raw: offset '$off': grain at LBA [0-9]* inflates beyond its 65536 bytes$" b.err &&
		test ! -e out/b'$cap'/disk-0.raw
	'
	test_expect_success "short-$cap: a byte short of its share still exit 9" '
		lease_line s'$cap' "$NFCD_URL/nolength=1/short-'$cap'" |
		expect_code 9 $F -o out --format raw >s.json 2>s.err &&
		cat s.err && test_one_line s.err &&
		grep -q "^h2k-fetch: s'$cap': disk-0.raw: offset '$off': grain at LBA [0-9]* inflates to only" s.err
	'
done

test_done
