/*
 * diskimg.c - a saved disk image's capacity, from its headers.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * h2k-ovf writes each disk's capacity into the descriptor's DiskSection.
 * The h2k-fetch line that names the disk is user input (a pipe, an edited
 * file): the figure is taken from the image itself and the line only
 * checked against it.  Only headers are read (a qcow2 or sparse VMDK
 * header, a text descriptor of at most 64 KiB), never the image; every
 * field is bounded before it is used.  The layouts: qemu's
 * docs/interop/qcow2.txt (big-endian) and VMware's "Virtual Disk Format
 * 5.0" (SparseExtentHeader, little-endian; descriptor extent lines
 * "RW <sectors> <type> ...").
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "diskimg.h"
#include "h2k.h"

#define SECTOR          512
#define DESC_MAX        (64u << 10)
#define QCOW_V2_LEN     72
#define QCOW_V3_LEN     104
#define VMDK_DESC_SIZE  (20 * SECTOR)   /* what qemu reads of an embedded one */
#define MAX_SECTORS     ((unsigned long long)H2K_DISKIMG_MAX / SECTOR)

static const char desc_magic[] = "# Disk DescriptorFile";

static uint32_t
be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t
be64(const unsigned char *p)
{
	return (uint64_t)be32(p) << 32 | be32(p + 4);
}

/* Up to n bytes from offset 0; *got what there was. */
static int
head(int fd, const char *name, unsigned char *b, size_t n, size_t *got)
{
	size_t have = 0;

	while (have < n) {
		ssize_t r = pread(fd, b + have, n - have, (off_t)have);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return h2k_seterr(H2K_EX_IO, "%s: %s", name, strerror(errno));
		if (r == 0)
			break;
		have += (size_t)r;
	}
	*got = have;
	return 0;
}

static int
qcow2(const unsigned char *h, size_t n, const char *name, long long *cap)
{
	uint32_t ver, cbits, l1;
	uint64_t size, cs, per_l1;

	if (n < 4 || memcmp(h, "QFI\xfb", 4))
		/* h2kvm.c words the same finding so */
		return h2k_seterr(H2K_EX_IO, "%s: files[] says format qcow2, the bytes are %s",
		    name, n >= 4 && !memcmp(h, "KDMV", 4) ? "vmdk" : "raw");
	if (n < QCOW_V2_LEN)
		return h2k_seterr(H2K_EX_IO, "%s: a truncated qcow2 header", name);
	ver = be32(h + 4);
	if (ver != 2 && ver != 3)
		return h2k_seterr(H2K_EX_IO, "%s: qcow2 version %u (2 or 3 expected)", name, ver);
	cbits = be32(h + 20);
	if (cbits < 9 || cbits > 21)
		return h2k_seterr(H2K_EX_IO, "%s: qcow2 cluster_bits %u (9 to 21)", name, cbits);
	cs = 1ull << cbits;
	if (ver == 3) {
		uint32_t hl = n >= QCOW_V3_LEN ? be32(h + 100) : 0;
		if (hl < QCOW_V3_LEN || hl > cs)
			return h2k_seterr(H2K_EX_IO, "%s: qcow2 v3 header length %u (%d to %llu)",
			    name, hl, QCOW_V3_LEN, (unsigned long long)cs);
	}
	/* an image that is not the whole disk, or not readable alone: a
	 * descriptor calling it a standalone qcow2 of that size would lie, and
	 * a reader opening it as qcow2 would read the file it names */
	if (be64(h + 8))
		return h2k_seterr(H2K_EX_IO, "%s: a qcow2 with a backing file "
		    "(not the whole disk); refused", name);
	if (be32(h + 32))
		return h2k_seterr(H2K_EX_IO, "%s: an encrypted qcow2 (method %u); refused",
		    name, be32(h + 32));
	if (ver == 3) {
		/* incompatible features qemu knows and that keep the image
		 * whole and readable: dirty (0), compression type (3),
		 * extended L2 (4); corrupt (1), an external data file (2)
		 * and any unknown bit are refused */
		uint64_t inc = be64(h + 72) & ~(uint64_t)(1u | 1u << 3 | 1u << 4);
		if (inc & 4)
			return h2k_seterr(H2K_EX_IO, "%s: a qcow2 with an external data "
			    "file (not the whole disk); refused", name);
		if (inc & 2)
			return h2k_seterr(H2K_EX_IO, "%s: a qcow2 marked corrupt; refused",
			    name);
		if (inc)
			return h2k_seterr(H2K_EX_IO, "%s: qcow2 incompatible features "
			    "0x%llx unknown; refused", name, (unsigned long long)inc);
	}
	size = be64(h + 24);
	if (size == 0 || size > (uint64_t)H2K_DISKIMG_MAX)
		return h2k_seterr(H2K_EX_IO, "%s: qcow2 size of %llu bytes is absurd", name,
		    (unsigned long long)size);
	/* the L1 table must map the whole disk, as qemu requires */
	l1 = be32(h + 36);
	per_l1 = cs * (cs / 8);
	if ((uint64_t)l1 < (size + per_l1 - 1) / per_l1)
		return h2k_seterr(H2K_EX_IO, "%s: qcow2 L1 table of %u entries is too small "
		    "for %llu bytes", name, l1, (unsigned long long)size);
	*cap = (long long)size;
	return 0;
}

static int
sparse(const unsigned char *h, size_t n, const char *name, const char *subformat,
    long long *cap)
{
	uint32_t ver, fl;
	uint64_t sec;
	const char *is;

	if (n < SECTOR || memcmp(h, "KDMV", 4))
		return h2k_seterr(H2K_EX_IO, "%s: not a sparse VMDK (no KDMV header)", name);
	ver = h2k_le32(h + 4);
	if (ver < 1 || ver > 3)
		return h2k_seterr(H2K_EX_IO, "%s: VMDK version %u (1 to 3)", name, ver);
	/* compressed grains (bit 16) and markers (bit 17): streamOptimized, as
	 * h2k-fetch's sniff names it; the line's word goes into the format URI */
	fl = h2k_le32(h + 8);
	is = (fl & 1u << 16) && (fl & 1u << 17) ? "streamOptimized" : "monolithicSparse";
	if (subformat && strcmp(subformat, is))
		return h2k_seterr(H2K_EX_IO, "%s: files[] says a %s VMDK, the header is "
		    "%s's", name, subformat, is);
	sec = h2k_le64(h + 12);
	if (sec == 0 || sec > MAX_SECTORS)
		return h2k_seterr(H2K_EX_IO, "%s: VMDK capacity of %llu sectors is absurd", name,
		    (unsigned long long)sec);
	/* qemu reads the embedded descriptor from byte 512 (10 KiB of it)
	 * and takes a parentFileNameHint there for a parent: a delta disk,
	 * not the whole disk (h2kvm.c refuses the same) */
	if (n > SECTOR) {
		static const char hint[] = "parentFileNameHint";
		size_t m = n - SECTOR < VMDK_DESC_SIZE ? n - SECTOR : VMDK_DESC_SIZE;
		const unsigned char *p = memmem(h + SECTOR, m, hint, sizeof hint - 1);
		/* qemu skips 'parentFileNameHint="': an empty name is none */
		if (p && !((size_t)(p - h) + sizeof hint + 1 < n && p[sizeof hint + 1] == '"'))
			return h2k_seterr(H2K_EX_IO, "%s: a VMDK with a parent (%s, not "
			    "the whole disk); refused", name, hint);
	}
	*cap = (long long)sec * SECTOR;
	return 0;
}

/* A text descriptor: the sum of its extents' sizes in sectors. */
static int
descriptor(const unsigned char *b, size_t n, const char *name, long long *cap)
{
	static const char *const access[] = { "RW ", "RDONLY ", "NOACCESS " };
	unsigned long long sum = 0;
	int extents = 0;
	size_t i = 0;

	while (i < n) {
		const char *l = (const char *)b + i;
		const char *e = memchr(l, '\n', n - i);
		size_t len = e ? (size_t)(e - l) : n - i;

		i += len + 1;
		while (len && (*l == ' ' || *l == '\t')) {
			l++;
			len--;
		}
		for (size_t k = 0; k < 3; k++) {
			size_t al = strlen(access[k]);
			unsigned long long v = 0;
			size_t j = al, digits = 0;
			if (len <= al || memcmp(l, access[k], al))
				continue;
			for (; j < len && l[j] >= '0' && l[j] <= '9' && digits < 16; j++, digits++)
				v = v * 10 + (unsigned)(l[j] - '0');
			if (!digits || (j < len && l[j] != ' ' && l[j] != '\t' && l[j] != '\r'))
				return h2k_seterr(H2K_EX_IO, "%s: VMDK descriptor extent line "
				    "without a size in sectors", name);
			sum += v;
			if (sum > MAX_SECTORS)
				return h2k_seterr(H2K_EX_IO, "%s: VMDK descriptor extents of more "
				    "than %llu sectors", name, MAX_SECTORS);
			extents++;
		}
	}
	if (!extents || !sum)
		return h2k_seterr(H2K_EX_IO, "%s: VMDK descriptor without extents", name);
	*cap = (long long)sum * SECTOR;
	return 0;
}

int
h2k_diskimg_capacity(int fd, const char *name, const char *format,
    const char *subformat, long long *cap)
{
	unsigned char *b;
	struct stat st;
	size_t n = 0;
	int rc = -1;

	if (format && strcmp(format, "raw") && strcmp(format, "qcow2") && strcmp(format, "vmdk"))
		return h2k_seterr(H2K_EX_USAGE, "%s: format %s: not vmdk, raw or qcow2", name,
		    format);
	if (fstat(fd, &st) < 0)
		return h2k_seterr(H2K_EX_IO, "%s: %s", name, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return h2k_seterr(H2K_EX_IO, "%s: not a regular file", name);
	/* an empty file is no disk: its capacity 0 would leave the server's
	 * figure in the descriptor, describing bytes that are not there */
	if (st.st_size == 0)
		return h2k_seterr(H2K_EX_IO, "%s: an empty image (0 bytes)", name);
	if (format && !strcmp(format, "raw")) {
		*cap = (long long)st.st_size;
		return 0;
	}
	if (!(b = h2k_malloc(DESC_MAX)))
		return -1;
	if (head(fd, name, b, SECTOR, &n) < 0)
		goto out;
	if (format && !strcmp(format, "qcow2"))
		rc = qcow2(b, n, name, cap);
	else if (!format && n >= 4 && !memcmp(b, "QFI\xfb", 4))
		rc = qcow2(b, n, name, cap);
	else if (format && !subformat && n >= 4 && !memcmp(b, "KDMV", 4))
		/* a vmdk without subformat is the plain bytes of a disk, the
		 * raw format URI and the file's size: these bytes are not */
		rc = h2k_seterr(H2K_EX_IO, "%s: files[] says a VMDK of plain bytes "
		    "(no vmdk_subformat), the bytes are a sparse VMDK", name);
	else if (n >= 4 && !memcmp(b, "KDMV", 4)) {
		/* with the embedded descriptor qemu reads */
		if (head(fd, name, b, SECTOR + VMDK_DESC_SIZE, &n) == 0)
			rc = sparse(b, n, name, subformat, cap);
	} else if (subformat)
		rc = h2k_seterr(H2K_EX_IO, "%s: files[] says a %s VMDK, the file has no "
		    "sparse VMDK header", name, subformat);
	else if (n >= sizeof desc_magic - 1 && !memcmp(b, desc_magic, sizeof desc_magic - 1) &&
	    st.st_size <= (off_t)DESC_MAX) {
		/* larger than any descriptor: the plain bytes of a disk */
		if (head(fd, name, b, DESC_MAX, &n) == 0)
			rc = descriptor(b, n, name, cap);
	} else {
		*cap = (long long)st.st_size;
		rc = 0;
	}
out:
	free(b);
	return rc;
}
