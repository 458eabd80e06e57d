/*
 * diskout.c - raw and qcow2 images written from a disk stream in one pass.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * raw: each piece that is not all zeros is pwritten at its own offset; the
 * rest stays a hole; the end sets the size.  Direct I/O (h2k_diskout_direct):
 * the page-cache copy of every byte was near half of h2k-fetch's CPU, so
 * each full grain at an aligned offset from an aligned buffer goes through
 * a second, O_DIRECT descriptor of the same file; anything else (a short
 * last grain, plain bytes' odd pieces) through the buffered one.  A file
 * system that refuses O_DIRECT (EINVAL at the open or the first write:
 * some FUSE or NFS mounts) gets buffered writes for the whole file.
 * h2k-fetch has the direct writes made by another thread
 * (h2k_diskout_put_later, h2k_diskout_writev; see fetch-hash.c).  The
 * caller's fsync of the buffered descriptor covers both: it is per inode,
 * and flushes the device cache that O_DIRECT does not.
 *
 * qcow2 (version 3, as `qemu-img create -f qcow2` makes: 64 KiB clusters,
 * 16-bit refcounts, no backing file, no extensions): cluster 0 is the
 * header, written last.  Data clusters are appended in arrival order from
 * cluster 1.  The pieces come in increasing offset order, so an L2 table
 * (8192 entries, 512 MiB of disk) is complete as soon as a piece lands
 * beyond its range: it is appended then and only one is held in memory;
 * the L1 table (8 bytes per 512 MiB) is kept whole.  At the end: the L1
 * table, then the refcount table and blocks, which describe clusters
 * 0..N-1 each used once (every cluster is referenced exactly once), N
 * counting the refcount structures themselves; then the header.  Every
 * entry carries QCOW_OFLAG_COPIED, as qemu-img check wants for refcount 1.
 * Until the header is written the file is not a valid image, and the
 * caller only renames after fsync: a crash leaves a .part, never a
 * valid-looking wrong image.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "diskout.h"
#include "h2k.h"
#include "vmdkstream.h"

#define CL_BITS         16
#define CL              (1u << CL_BITS)
#define L2_ENTRIES      (CL / 8)
#define RB_ENTRIES      (CL / 2)        /* refcount_order 4 */
#define RT_ENTRIES      (CL / 8)
#define OFLAG_COPIED    (1ull << 63)

struct h2k_diskout {
	int fd;
	enum h2k_disk_format fmt;
	char *name;
	long long data;
	int sized;              /* raw: ftruncated to the capacity already */
	int dfd;                /* raw: the O_DIRECT descriptor, -1 none */
	int dwrote;             /* a direct write went through: EINVAL is an error now */
	unsigned dalign, dmem;  /* its offset/length and memory alignment */
	/* qcow2 */
	unsigned char *cl;      /* one cluster: the L2 table being filled, or scratch */
	unsigned char *pad;     /* a short last piece, padded to a cluster */
	long long l2_idx;       /* the L2 table in cl, -1 none */
	uint64_t *l1;
	size_t l1_len;
	long long next;         /* next free cluster */
	long long last_off;
	long long end;          /* end of the last write */
};

const char *
h2k_disk_format_name(enum h2k_disk_format f)
{
	return f == H2K_FMT_RAW ? "raw" : f == H2K_FMT_QCOW2 ? "qcow2" : "vmdk";
}

static void
be64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

static void
be32(unsigned char *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

struct h2k_diskout *
h2k_diskout_new(int fd, enum h2k_disk_format fmt, const char *name)
{
	struct h2k_diskout *o = calloc(1, sizeof *o);

	if (!o || !(o->name = strdup(name)) ||
	    (fmt == H2K_FMT_QCOW2 && (!(o->cl = malloc(CL)) || !(o->pad = malloc(CL))))) {
		h2k_diskout_free(o);
		h2k_seterr(H2K_EX_IO, "%s: out of memory", name);
		return NULL;
	}
	o->fd = fd;
	o->dfd = -1;
	o->fmt = fmt;
	h2k_diskout_reset(o);
	return o;
}

void
h2k_diskout_free(struct h2k_diskout *o)
{
	if (!o)
		return;
	if (o->dfd >= 0)
		close(o->dfd);
	free(o->name);
	free(o->cl);
	free(o->pad);
	free(o->l1);
	free(o);
}

void
h2k_diskout_reset(struct h2k_diskout *o)
{
	o->data = 0;
	o->end = 0;
	o->sized = 0;
	o->l2_idx = -1;
	o->next = 1;
	o->last_off = -1;
	free(o->l1);
	o->l1 = NULL;
	o->l1_len = 0;
}

long long
h2k_diskout_end(const struct h2k_diskout *o)
{
	return o->end;
}

long long
h2k_diskout_data(const struct h2k_diskout *o)
{
	return o->data;
}

/*
 * len bytes at off through fd, the rest of a short write through buffered
 * (a short direct write's rest is no longer aligned).  0 or an errno, no
 * message and no state touched: the hasher thread writes with it too.
 */
static int
write_full(int fd, int buffered, const unsigned char *p, size_t len, long long off)
{
	while (len > 0) {
		ssize_t w = pwrite(fd, p, len, off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? errno : ENOSPC;
		p += w;
		off += w;
		len -= (size_t)w;
		fd = buffered;
	}
	return 0;
}

static int
pwrite_fd(struct h2k_diskout *o, int fd, const void *buf, size_t len, long long off)
{
	int e = write_full(fd, o->fd, buf, len, off);

	if (e)
		return h2k_seterr(H2K_EX_IO, "%s: write: %s", o->name, strerror(e));
	if (off + (long long)len > o->end)
		o->end = off + (long long)len;
	return 0;
}

static int
pwrite_all(struct h2k_diskout *o, const void *buf, size_t len, long long off)
{
	return pwrite_fd(o, o->fd, buf, len, off);
}

/* The alignment direct I/O wants on fd: statx's, else the page size. */
static void
dio_align(int fd, unsigned *align, unsigned *mem)
{
	*align = *mem = 4096;
#ifdef STATX_DIOALIGN
	struct statx sx;
	if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 &&
	    (sx.stx_mask & STATX_DIOALIGN) && sx.stx_dio_offset_align > 0) {
		/* 4096 at least: the decoder's grains are aligned to it, and
		 * a smaller figure gains nothing here */
		if (sx.stx_dio_offset_align > *align)
			*align = sx.stx_dio_offset_align;
		if (sx.stx_dio_mem_align > *mem)
			*mem = sx.stx_dio_mem_align;
	}
#endif
}

int
h2k_diskout_direct(struct h2k_diskout *o, int dirfd, const char *part)
{
	struct stat a, b;
	const char *e = getenv("H2K_FETCH_NO_DIRECT");
	int fd;

	if (o->fmt != H2K_FMT_RAW || o->dfd >= 0 || (e && *e && strcmp(e, "0") != 0))
		return o->dfd >= 0;
	/* O_NONBLOCK: a FIFO swapped in for the name must not block the open
	 * (it is no regular file: the inode check below turns it down) */
	fd = openat(dirfd, part, O_WRONLY | O_DIRECT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return 0;
	/* the name may have been replaced since the .part was opened */
	if (fstat(fd, &a) < 0 || fstat(o->fd, &b) < 0 || a.st_dev != b.st_dev ||
	    a.st_ino != b.st_ino) {
		close(fd);
		return 0;
	}
	dio_align(fd, &o->dalign, &o->dmem);
	if (o->dalign > H2K_VMDK_GRAIN || H2K_VMDK_GRAIN % o->dalign ||
	    o->dmem > H2K_DISKOUT_MEMALIGN || H2K_DISKOUT_MEMALIGN % o->dmem) {
		close(fd);
		return 0;
	}
	o->dfd = fd;
	o->dwrote = 0;
	return 1;
}

int
h2k_diskout_is_direct(const struct h2k_diskout *o)
{
	return o->dfd >= 0;
}

/* A raw piece: directly if it is aligned, else through the page cache. */
static int
raw_put(struct h2k_diskout *o, long long off, const unsigned char *buf, size_t len)
{
	if (o->dfd < 0 || off % o->dalign || len % o->dalign || (uintptr_t)buf % o->dmem)
		return pwrite_all(o, buf, len, off);
	if (!o->dwrote) {
		ssize_t w;
		do
			w = pwrite(o->dfd, buf, len, off);
		while (w < 0 && errno == EINTR);
		if (w < 0 && errno == EINVAL) {
			/* O_DIRECT opened but refused: buffered from now on */
			close(o->dfd);
			o->dfd = -1;
			return pwrite_all(o, buf, len, off);
		}
		if (w < 0)
			return h2k_seterr(H2K_EX_IO, "%s: write: %s", o->name, strerror(errno));
		o->dwrote = 1;
		if ((size_t)w == len) {
			if (off + w > o->end)
				o->end = off + w;
			return 0;
		}
		/* a short direct write: the rest aligned or not, buffered */
		return pwrite_all(o, buf + w, len - (size_t)w, off + w);
	}
	return pwrite_fd(o, o->dfd, buf, len, off);
}

static int
all_zero(const unsigned char *b, size_t n)
{
	return n == 0 || (b[0] == 0 && memcmp(b, b + 1, n - 1) == 0);
}

/* Room for L1 entry i. */
static int
l1_grow(struct h2k_diskout *o, size_t i)
{
	if (i < o->l1_len)
		return 0;
	size_t n = o->l1_len ? o->l1_len : 16;
	while (n <= i)
		n *= 2;
	uint64_t *p = realloc(o->l1, n * sizeof *p);
	if (!p)
		return h2k_seterr(H2K_EX_IO, "%s: out of memory", o->name);
	memset(p + o->l1_len, 0, (n - o->l1_len) * sizeof *p);
	o->l1 = p;
	o->l1_len = n;
	return 0;
}

/* Append the L2 table being filled, and point the L1 table at it. */
static int
l2_flush(struct h2k_diskout *o)
{
	if (o->l2_idx < 0)
		return 0;
	long long at = o->next * (long long)CL;
	if (pwrite_all(o, o->cl, CL, at) < 0 || l1_grow(o, (size_t)o->l2_idx) < 0)
		return -1;
	o->l1[o->l2_idx] = (uint64_t)at | OFLAG_COPIED;
	o->next++;
	o->l2_idx = -1;
	return 0;
}

static int
qcow2_put(struct h2k_diskout *o, long long off, const unsigned char *buf, size_t len)
{
	long long c = off >> CL_BITS, l2 = c / L2_ENTRIES;

	if (off % CL || len > CL || off <= o->last_off || (o->l2_idx >= 0 && l2 < o->l2_idx))
		return h2k_seterr(H2K_EX_IO, "%s: piece at %lld out of order", o->name, off);
	o->last_off = off;
	if (l2 != o->l2_idx) {
		if (l2_flush(o) < 0)
			return -1;
		memset(o->cl, 0, CL);
		o->l2_idx = l2;
	}
	if (len < CL) {
		memcpy(o->pad, buf, len);
		memset(o->pad + len, 0, CL - len);
		buf = o->pad;
	}
	long long at = o->next * (long long)CL;
	if (pwrite_all(o, buf, CL, at) < 0)
		return -1;
	be64(o->cl + (c % L2_ENTRIES) * 8, (uint64_t)at | OFLAG_COPIED);
	o->next++;
	return 0;
}

int
h2k_diskout_put_later(struct h2k_diskout *o, long long off, const unsigned char *buf,
    size_t len)
{
	/* the first direct write is made here: it may turn direct I/O off */
	if (o->fmt != H2K_FMT_RAW || o->dfd < 0 || !o->dwrote || off % o->dalign ||
	    len % o->dalign)
		return h2k_diskout_put(o, off, buf, len) < 0 ? -1 : 0;
	if (all_zero(buf, len))
		return 0;
	o->data += (long long)len;
	if (off + (long long)len > o->end)
		o->end = off + (long long)len;
	return 1;
}

int
h2k_diskout_writev(struct h2k_diskout *o, struct iovec *iov, int n, long long off)
{
	ssize_t w;

	do
		w = pwritev(o->dfd, iov, n, off);
	while (w < 0 && errno == EINTR);
	if (w < 0)
		return errno;
	/* a short direct write: the rest, no longer aligned, buffered */
	for (int i = 0; i < n; i++) {
		size_t skip = (size_t)w < iov[i].iov_len ? (size_t)w : iov[i].iov_len;
		int e = write_full(o->fd, o->fd, (const unsigned char *)iov[i].iov_base + skip,
		    iov[i].iov_len - skip, off + (long long)skip);
		if (e)
			return e;
		w -= (ssize_t)skip;
		off += (long long)iov[i].iov_len;
	}
	return 0;
}

int
h2k_diskout_put(void *arg, long long off, const unsigned char *buf, size_t len)
{
	struct h2k_diskout *o = arg;

	if (all_zero(buf, len))
		return 0;
	o->data += (long long)len;
	if (o->fmt == H2K_FMT_QCOW2)
		return qcow2_put(o, off, buf, len);
	return raw_put(o, off, buf, len);
}

/* Write n 8-byte big-endian entries produced by f(i) at cluster `at`. */
static int
write_table(struct h2k_diskout *o, long long at, long long n, long long clusters,
    uint64_t (*f)(struct h2k_diskout *, long long, long long), long long base)
{
	for (long long k = 0; k < clusters; k++) {
		memset(o->cl, 0, CL);
		for (long long j = 0; j < L2_ENTRIES && k * L2_ENTRIES + j < n; j++)
			be64(o->cl + j * 8, f(o, k * L2_ENTRIES + j, base));
		if (pwrite_all(o, o->cl, CL, (at + k) * (long long)CL) < 0)
			return -1;
	}
	return 0;
}

static uint64_t
l1_entry(struct h2k_diskout *o, long long i, long long base)
{
	(void)base;
	return (size_t)i < o->l1_len ? o->l1[i] : 0;
}

static uint64_t
rt_entry(struct h2k_diskout *o, long long i, long long base)
{
	(void)o;
	return (uint64_t)(base + i) * CL;
}

static int
qcow2_finish(struct h2k_diskout *o, long long capacity)
{
	unsigned long long size = ((unsigned long long)capacity + 511) & ~511ull;
	long long l1_size = (long long)((size + (unsigned long long)CL * L2_ENTRIES - 1) /
	    ((unsigned long long)CL * L2_ENTRIES));
	long long l1_cl = (l1_size * 8 + CL - 1) / CL, n, rb, rt;

	if (l2_flush(o) < 0)
		return -1;
	if (l1_size > (long long)INT32_MAX / 8)
		return h2k_seterr(H2K_EX_IO, "%s: disk too large for qcow2", o->name);
	if ((size_t)l1_size < o->l1_len) {
		for (size_t i = (size_t)l1_size; i < o->l1_len; i++)
			if (o->l1[i])
				return h2k_seterr(H2K_EX_IO, "%s: data beyond the capacity", o->name);
	}
	/* an empty disk has no L1 table: a cluster for it would be one
	 * that nothing references, a leak for qemu-img check (and its
	 * offset is 0, as qemu-img create writes it) */
	long long l1_at = l1_cl ? o->next : 0;
	if (write_table(o, l1_at, l1_size, l1_cl, l1_entry, 0) < 0)
		return -1;
	o->next += l1_cl;
	/* the refcount structures count themselves: grow until it holds */
	rb = rt = 1;
	for (;;) {
		n = o->next + rt + rb;
		long long rb2 = (n + RB_ENTRIES - 1) / RB_ENTRIES;
		long long rt2 = (rb2 + RT_ENTRIES - 1) / RT_ENTRIES;
		if (rb2 == rb && rt2 == rt)
			break;
		rb = rb2;
		rt = rt2;
	}
	long long rt_at = o->next, rb_at = o->next + rt;
	if (write_table(o, rt_at, rb, rt, rt_entry, rb_at) < 0)
		return -1;
	for (long long k = 0; k < rb; k++) {
		memset(o->cl, 0, CL);
		for (long long j = 0; j < RB_ENTRIES && k * RB_ENTRIES + j < n; j++)
			o->cl[j * 2 + 1] = 1;
		if (pwrite_all(o, o->cl, CL, (rb_at + k) * (long long)CL) < 0)
			return -1;
	}
	/* the header last: until now the file is no image */
	unsigned char h[112];
	memset(h, 0, sizeof h);
	be32(h, 0x514649fb);
	be32(h + 4, 3);
	be32(h + 20, CL_BITS);
	be64(h + 24, size);
	be32(h + 36, (uint32_t)l1_size);
	be64(h + 40, (uint64_t)l1_at * CL);
	be64(h + 48, (uint64_t)rt_at * CL);
	be32(h + 56, (uint32_t)rt);
	be32(h + 96, 4);
	be32(h + 100, 104);
	/* 104..111: the end of the header extensions, zeros */
	return pwrite_all(o, h, sizeof h, 0);
}

int
h2k_diskout_size(struct h2k_diskout *o, long long capacity)
{
	if (o->fmt != H2K_FMT_RAW || o->sized || capacity < 0)
		return 0;
	if (ftruncate(o->fd, capacity) < 0)
		return h2k_seterr(H2K_EX_IO, "%s: truncate to %lld bytes: %s", o->name,
		    capacity, strerror(errno));
	o->sized = 1;
	return 0;
}

int
h2k_diskout_finish(struct h2k_diskout *o, long long capacity)
{
	if (o->fmt == H2K_FMT_QCOW2)
		return qcow2_finish(o, capacity);
	if (ftruncate(o->fd, capacity) < 0)
		return h2k_seterr(H2K_EX_IO, "%s: truncate to %lld bytes: %s", o->name,
		    capacity, strerror(errno));
	return 0;
}
