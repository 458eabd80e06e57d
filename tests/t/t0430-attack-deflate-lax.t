#!/usr/bin/env bash
# attack (issue 13, libdeflate swap): libdeflate's whole-buffer inflater is
# laxer than zlib's.  It decodes distance codes 30-31 (as 24577 + 13 bits)
# and length codes 286-287 (as 258), takes more than 286/30 code lengths in
# a dynamic header, and gives the unused codeword of a one-code tree to
# that code: all of which RFC 1951 rules out and zlib, hence qemu-img,
# refuses.  h2k-fetch --format raw converted such grains (adler32 right
# over libdeflate's reading) into disks qemu-img will not read.  Now: exit
# 9, one line naming the disk, the offset and zlib's reason; the same
# one-code tree used with its real codeword still converts.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/servers/nfcd-lib.sh"

nfcd_start
python3 - "$TRASH/srv" <<-\PY
import struct, sys, zlib
d = sys.argv[1]
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
def stream(out, z):
    # one grain at LBA 0 (offset 1024), its table, directory, footer, end
    cap = len(out) // 512
    s = header(cap) + desc(cap)
    g = struct.pack("<QI", 0, len(z)) + z
    s += g + b"\0" * (-len(g) % 512)
    s += meta(4, 1)
    gt = len(s) // 512
    s += struct.pack("<512I", 2, *[0] * 511) + meta(1, 2)
    gd = len(s) // 512
    s += struct.pack("<I", gt) + b"\0" * 508 + meta(1, 3) + header(cap, gd) + meta(0, 0)
    return s
class BW:
    def __init__(s): s.b = []
    def w(s, v, n): s.b += [(v >> i) & 1 for i in range(n)]
    def h(s, code, n): s.b += [(code >> i) & 1 for i in range(n - 1, -1, -1)]
    def align(s): s.b += [0] * (-len(s.b) % 8)
    def stored(s, data, final):
        s.w(final, 1); s.w(0, 2); s.align(); s.w(len(data), 16); s.w(len(data) ^ 0xffff, 16)
        for x in data: s.w(x, 8)
    def zlib(s, out):
        s.align()
        raw = bytes(sum(s.b[i + k] << k for k in range(8)) for i in range(0, len(s.b), 8))
        return b"\x78\x9c" + raw + struct.pack(">I", zlib.adler32(out))
def fixlit(bw, sym):
    if sym < 144: bw.h(0x30 + sym, 8)
    elif sym < 256: bw.h(0x190 + sym - 144, 9)
    elif sym < 280: bw.h(sym - 256, 7)
    else: bw.h(0xc0 + sym - 280, 8)
def end_stored(bw):
    bw.w(1, 1); bw.w(0, 2); bw.align(); bw.w(0, 16); bw.w(0xffff, 16)
rnd = bytes((i * 7919 + (i >> 8) * 31) & 255 for i in range(40000))
cases = {}
for dsym in (30, 31):       # fixed block: 127 matches of 258 at distance 24577
    bw = BW(); bw.stored(rnd[:32770], 0); bw.w(0, 1); bw.w(1, 2)
    out = bytearray(rnd[:32770])
    for _ in range(127):
        fixlit(bw, 285); bw.h(dsym, 5); bw.w(0, 13)
        for _ in range(258): out.append(out[-24577])
    fixlit(bw, 256); end_stored(bw)
    cases["dist%d" % dsym] = (bytes(out), bw)
for lsym in (286, 287):     # fixed block: length code 286/287 as 258 at distance 1
    bw = BW(); bw.stored(rnd[:1278], 0); bw.w(0, 1); bw.w(1, 2)
    fixlit(bw, lsym); bw.h(0, 5); fixlit(bw, 256); end_stored(bw)
    cases["len%d" % lsym] = (rnd[:1278] + rnd[1277:1278] * 258, bw)
def canon(lens):
    code, nxt, out = 0, {}, {}
    bl = [sum(1 for l in lens.values() if l == b) for b in range(16)]
    bl[0] = 0
    for b in range(1, 16):
        code = (code + bl[b - 1]) << 1; nxt[b] = code
    for s in sorted(lens):
        if lens[s]: out[s] = (nxt[lens[s]], lens[s]); nxt[lens[s]] += 1
    return out
def dyn(bw, ll, dl):
    order = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]
    bw.w(1, 1); bw.w(2, 2); bw.w(len(ll) - 257, 5); bw.w(len(dl) - 1, 5); bw.w(15, 4)
    for s in order: bw.w(4 if s < 16 else 0, 3)
    pc = canon({s: 4 for s in range(16)})
    for l in ll + dl: bw.h(*pc[l])
    return canon({i: l for i, l in enumerate(ll) if l})
# one distance code of length 1: 'A', 170 matches of 3 at distance 1, 'A'
for bit in (0, 1):
    ll = [0] * 258; ll[65] = 1; ll[256] = 2; ll[257] = 2
    bw = BW(); lc = dyn(bw, ll, [1])
    bw.h(*lc[65])
    for _ in range(170): bw.h(*lc[257]); bw.w(bit, 1)
    bw.h(*lc[65]); bw.h(*lc[256])
    cases["onedist%d" % bit] = (b"A" * 512, bw)
# 288 literal/length and 32 distance code lengths
ll = [0] * 288; ll[65] = 1; ll[256] = 2; ll[287] = 2
bw = BW(); lc = dyn(bw, ll, [0] * 31 + [1])
for _ in range(512): bw.h(*lc[65])
bw.h(*lc[256])
cases["hlit288"] = (b"A" * 512, bw)
for k, (out, bw) in cases.items():
    open(d + "/" + k, "wb").write(stream(out, bw.zlib(out)))
    open(d + "/" + k + ".raw", "wb").write(out)
PY
F="h2k-fetch --ca-file $NFCD_CERT --retry-delay 0.01 --retries 1 -q"

while read -r kind why; do
	if command -v qemu-img >/dev/null; then
		test_expect_success "$kind: qemu-img (the oracle) refuses it" '
			expect_code 1 qemu-img convert -f vmdk -O raw srv/'$kind' q.raw 2>q.err &&
			grep -q "error while reading at byte 0" q.err
		'
	fi
	for fmt in raw qcow2; do
		test_expect_success "$kind ($fmt): exit 9 at offset 1024 ($why), nothing renamed" '
			lease_line '$kind-$fmt' "$NFCD_URL/nolength=1/'$kind'" |
			expect_code 9 $F -o out --format '$fmt' >e.json 2>e.err &&
			cat e.err && test_one_line e.err &&
			grep -q "^h2k-fetch: '$kind-$fmt': disk-0.'$fmt': offset 1024: grain at LBA 0: inflate error: '"$why"'$" e.err &&
			test ! -e out/'$kind-$fmt'/disk-0.'$fmt' && test ! -s e.json
		'
	done
done <<-\EOF
	dist30 invalid distance code
	dist31 invalid distance code
	len286 invalid literal/length code
	len287 invalid literal/length code
	onedist1 invalid distance code
	hlit288 too many length or distance symbols
EOF

test_expect_success 'the one-code tree used with its codeword: converted, identical' '
	lease_line onedist0 "$NFCD_URL/nolength=1/onedist0" |
	expect_code 0 $F -o out --format raw >l.json &&
	cmp out/onedist0/disk-0.raw srv/onedist0.raw
'

test_done
