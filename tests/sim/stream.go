// SPDX-License-Identifier: LGPL-3.0-or-later

// streamOptimized VMDK, encoded on the fly from a disk's bytes (-stream-vmdk).
//
// An ESXi/vCenter export lease does not serve a disk's file: its NFC URL
// streams the disk as a streamOptimized VMDK (VMware "Virtual Disk Format
// 5.0", the stream-optimized compressed sparse extent): a sparse header whose
// gdOffset is GD_AT_END, the embedded descriptor, then, one grain table's
// span (512 grains of 128 sectors, 32 MiB) at a time, every grain that is not
// all zeros as a marker {lba, size} followed by its zlib-compressed 64 KiB and
// padding to a sector, then that span's grain table behind a GT marker; at
// the end the grain directory behind a GD marker, a footer marker with a copy
// of the header carrying the real gdOffset, and the end-of-stream marker.
// Grain tables whose grains are all zero are left out (GD entry 0), as are the
// zero grains themselves (GT entry 0).  The encoder holds one grain, its
// compressed form, one grain table and the directory (4 bytes per 32 MiB of
// capacity): memory stays flat whatever the disk size.  The output is a
// function of the file's bytes and the capacity only, so the SHA-1 of two
// streams of one disk (and the manifest's) agree.
package main

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path"
)

const (
	sectorSize   = 512
	grainSectors = 128
	grainSize    = grainSectors * sectorSize // 64 KiB
	gtEntries    = 512
	gdAtEnd      = ^uint64(0)
	vmdkMagic    = 0x564d444b // "KDMV" little-endian
	// flags: bit 0 valid newline detection, bit 16 compressed grains,
	// bit 17 markers.
	vmdkFlags = 1 | 1<<16 | 1<<17
	// The first grain starts at sector 128, as in ESXi's streams: the
	// header's overHead.
	overHead = 128

	markerEOS    = 0
	markerGT     = 1
	markerGD     = 2
	markerFooter = 3

	streamVMDKType = "application/x-vnd.vmware-streamVmdk"
)

// vmdkHeader is the SparseExtentHeader (512 bytes, little-endian).
func vmdkHeader(capSectors, descSectors, gdOffset uint64) []byte {
	h := make([]byte, sectorSize)
	le := binary.LittleEndian
	le.PutUint32(h[0:], vmdkMagic)
	le.PutUint32(h[4:], 3) // version 3, as ESXi writes streamOptimized
	le.PutUint32(h[8:], vmdkFlags)
	le.PutUint64(h[12:], capSectors)
	le.PutUint64(h[20:], grainSectors)
	le.PutUint64(h[28:], 1) // descriptorOffset
	le.PutUint64(h[36:], descSectors)
	le.PutUint32(h[44:], gtEntries)
	le.PutUint64(h[48:], 0) // rgdOffset: no redundant tables in a stream
	le.PutUint64(h[56:], gdOffset)
	le.PutUint64(h[64:], overHead)
	h[72] = 0 // uncleanShutdown
	h[73], h[74], h[75], h[76] = '\n', ' ', '\r', '\n'
	le.PutUint16(h[77:], 1) // compressAlgorithm: deflate
	return h
}

// vmdkMarker is a metadata marker: {numSectors, size 0, type}, one sector.
func vmdkMarker(numSectors uint64, typ uint32) []byte {
	m := make([]byte, sectorSize)
	binary.LittleEndian.PutUint64(m[0:], numSectors)
	binary.LittleEndian.PutUint32(m[12:], typ)
	return m
}

// vmdkDescriptor is the embedded descriptor, as ESXi writes it for a stream.
// CID is derived from the extent name so that the stream stays a function of
// the disk.
func vmdkDescriptor(name string, capSectors uint64) []byte {
	cyl := capSectors / (255 * 63)
	if cyl > 65535 {
		cyl = 65535
	}
	d := fmt.Sprintf(`# Disk DescriptorFile
version=1
encoding="UTF-8"
CID=%08x
parentCID=ffffffff
createType="streamOptimized"

# Extent description
RW %d SPARSE "%s"

# The Disk Data Base
#DDB

ddb.adapterType = "lsilogic"
ddb.geometry.cylinders = "%d"
ddb.geometry.heads = "255"
ddb.geometry.sectors = "63"
ddb.longContentID = "%032x"
ddb.virtualHWVersion = "4"
`, crc32.ChecksumIEEE([]byte(name)), capSectors, name, cyl, crc32.ChecksumIEEE([]byte("h2k-sim "+name)))
	n := (len(d) + sectorSize - 1) / sectorSize
	b := make([]byte, n*sectorSize)
	copy(b, d)
	return b
}

// streamEncoder writes one stream, counting sectors as it goes.
type streamEncoder struct {
	w   *bufio.Writer
	off uint64 // bytes written so far (always a multiple of 512 between writes)
	err error
}

func (e *streamEncoder) write(p []byte) {
	if e.err != nil {
		return
	}
	_, e.err = e.w.Write(p)
	e.off += uint64(len(p))
}

// pad writes zeros up to the next sector boundary.
func (e *streamEncoder) pad() {
	var zero [sectorSize]byte
	if r := e.off % sectorSize; r != 0 {
		e.write(zero[:sectorSize-r])
	}
}

func (e *streamEncoder) sector() uint64 { return e.off / sectorSize }

// encodeStreamVMDK writes the streamOptimized VMDK of file (capacity bytes;
// the file's own size if larger) to w and returns the bytes written.  The
// extent is named after the file.
func encodeStreamVMDK(w io.Writer, file string, capacity int64) (int64, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := st.Size()
	capacity = max(capacity, size)
	capSectors := uint64((capacity + sectorSize - 1) / sectorSize)
	grains := (capSectors + grainSectors - 1) / grainSectors
	nGT := (grains + gtEntries - 1) / gtEntries

	bw := bufio.NewWriterSize(w, 256<<10)
	e := &streamEncoder{w: bw}
	desc := vmdkDescriptor(path.Base(file), capSectors)
	descSectors := uint64(len(desc) / sectorSize)
	e.write(vmdkHeader(capSectors, descSectors, gdAtEnd))
	e.write(desc)
	if e.sector() < overHead {
		e.write(make([]byte, (overHead-e.sector())*sectorSize))
	}

	grain := make([]byte, grainSize)
	zero := make([]byte, grainSize)
	var comp bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&comp, zlib.BestSpeed)
	gt := make([]byte, gtEntries*4)
	gd := make([]byte, nGT*4)
	hdr := make([]byte, 12)
	for t := uint64(0); t < nGT && e.err == nil; t++ {
		clear(gt)
		used := false
		for i := uint64(0); i < gtEntries; i++ {
			g := t*gtEntries + i
			if g >= grains {
				break
			}
			pos := int64(g) * grainSize
			clear(grain)
			if pos < size {
				n := int(min(int64(grainSize), size-pos))
				if _, err := f.ReadAt(grain[:n], pos); err != nil && err != io.EOF {
					return int64(e.off), fmt.Errorf("%s: %v", file, err)
				}
			}
			if bytes.Equal(grain, zero) {
				continue
			}
			comp.Reset()
			zw.Reset(&comp)
			zw.Write(grain)
			if err := zw.Close(); err != nil {
				return int64(e.off), err
			}
			binary.LittleEndian.PutUint32(gt[i*4:], uint32(e.sector()))
			binary.LittleEndian.PutUint64(hdr[0:], g*grainSectors)
			binary.LittleEndian.PutUint32(hdr[8:], uint32(comp.Len()))
			e.write(hdr)
			e.write(comp.Bytes())
			e.pad()
			used = true
		}
		if used {
			e.write(vmdkMarker(gtEntries*4/sectorSize, markerGT))
			binary.LittleEndian.PutUint32(gd[t*4:], uint32(e.sector()))
			e.write(gt)
		}
	}
	gdSectors := (uint64(len(gd)) + sectorSize - 1) / sectorSize
	e.write(vmdkMarker(gdSectors, markerGD))
	gdOffset := e.sector()
	e.write(gd)
	e.pad()
	e.write(vmdkMarker(1, markerFooter))
	e.write(vmdkHeader(capSectors, descSectors, gdOffset))
	e.write(vmdkMarker(0, markerEOS))
	if e.err == nil {
		e.err = bw.Flush()
	}
	return int64(e.off), e.err
}
