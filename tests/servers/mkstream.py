#!/usr/bin/env python3
# tests/servers/mkstream.py - write a disk as ESXi streams it for export: a
# streamOptimized VMDK with gdOffset at the end, zlib grains of 64 KiB (all-
# zero grains left out), grain tables, grain directory, footer and
# end-of-stream markers; or a malformed variant of it, for the hostile
# tests of h2k-fetch --format.  Python 3 standard library only.
# SPDX-License-Identifier: LGPL-3.0-or-later
#
#   mkstream.py RAW OUT [--bad KIND] [--overhead SECTORS]
#
# --overhead 2 (header and descriptor, then the grains at once) makes the
# small seeds of tests/fuzz/corpus/vmdkstream.
#
# KIND: magic (footer magic), version, flags, beyond (grain past the
# capacity), backwards (second grain's LBA below the first), inflate
# (corrupt zlib data), bomb (a grain inflating to 128 KiB), marker (unknown
# marker type), truncgrain (stream ends inside a grain), noeos (no end-of-
# stream marker), hugegrain (absurd compressed size), uncounted (header
# gdOffset 0: grain tables the decoder cannot count, and no end-of-stream
# marker).  Prints the offset in the stream where the fault is on stdout.
import argparse, struct, sys, zlib

G = 65536


def header(cap_sec, gd=0xffffffffffffffff, version=3, flags=0x30001, over=128):
    h = struct.pack("<IIIQQQQIQQQB4sH", 0x564d444b, version, flags, cap_sec, 128,
                    1, 1, 512, 0, gd, over, 0, b"\n \r\n", 1)
    return h + b"\0" * (512 - len(h))


def pad(b):
    return b + b"\0" * (-len(b) % 512)


def meta(nsec, typ):
    return struct.pack("<QII", nsec, 0, typ) + b"\0" * 496


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("raw")
    ap.add_argument("out")
    ap.add_argument("--bad", default="")
    ap.add_argument("--overhead", type=int, default=128)
    a = ap.parse_args()
    disk = open(a.raw, "rb").read()
    cap_sec = (len(disk) + 511) // 512
    ngr = (cap_sec + 127) // 128
    bad, where = a.bad, -1
    hv = {"version": dict(version=7), "flags": dict(flags=0x1)}.get(bad, {})
    hv["over"] = a.overhead
    if bad == "uncounted":
        hv["gd"] = 0
    out = bytearray(header(cap_sec, **hv))
    if bad in ("version", "flags"):
        where = 4 if bad == "version" else 8
    desc = ('# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n'
            'createType="streamOptimized"\n\nRW %d SPARSE "disk.vmdk"\n' % cap_sec).encode()
    out += pad(desc)
    out = out[:a.overhead * 512]
    out += b"\0" * (a.overhead * 512 - len(out))
    gt = [0] * (((ngr + 511) // 512) * 512)
    ngrains = 0
    for g in range(ngr):
        data = disk[g * G:(g + 1) * G]
        if not data.strip(b"\0"):
            continue
        lba = g * 128
        z = zlib.compress(data, 6)
        if bad == "beyond" and ngrains == 1:
            lba, where = ((cap_sec + 127) // 128) * 128, len(out)
        if bad == "backwards" and ngrains == 1:
            lba, where = 0, len(out)
        if bad == "inflate" and ngrains == 1:
            z, where = b"\xff\xff" + z[2:], len(out)
        if bad == "bomb" and ngrains == 1:
            z, where = zlib.compress(b"\0" * (2 * G)), len(out)
        size = len(z)
        if bad == "hugegrain" and ngrains == 1:
            size, where = 0x40000000, len(out)
        if bad == "truncgrain" and ngrains == 1:
            where = len(out) + 12 + len(z) // 2
            out += struct.pack("<QI", lba, size) + z
            open(a.out, "wb").write(out[:where])
            print(where)
            return
        gt[g] = len(out) // 512
        out += pad(struct.pack("<QI", lba, size) + z)
        ngrains += 1
    gtpos = []
    for t in range(len(gt) // 512):
        if bad == "marker" and t == 0:
            where = len(out) + 12
            out += meta(4, 9)
        else:
            out += meta(4, 1)
        gtpos.append(len(out) // 512)
        out += struct.pack("<512I", *gt[t * 512:(t + 1) * 512])
    gdsec = (len(gtpos) * 4 + 511) // 512
    out += meta(gdsec, 2)
    gd = len(out) // 512
    out += pad(struct.pack("<%dI" % len(gtpos), *gtpos))
    out += meta(1, 3)
    foot = bytearray(header(cap_sec, gd, over=a.overhead))
    if bad == "magic":
        foot[0:4], where = b"XXXX", len(out)
    out += foot
    if bad in ("noeos", "uncounted"):
        where = len(out)
    else:
        out += meta(0, 0)
    open(a.out, "wb").write(out)
    if bad:
        print(where)


if __name__ == "__main__":
    sys.exit(main())
