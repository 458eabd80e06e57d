/*
 * vmdkstream.c - push decoder of streamOptimized VMDK streams.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * The format (VMware's "Virtual Disk Format 5.0", Stream-Optimized
 * Compressed Sparse Extents; qemu's block/vmdk.c reads the same): a
 * 512-byte SparseExtentHeader ("KDMV", flags COMPRESS|MARKER, capacity and
 * grain size in sectors, overHead = where the markers start), the text
 * descriptor, then from sector overHead on a run of sector-aligned markers:
 *   grain     u64 lba, u32 size (> 0), size bytes of zlib data, padding
 *   metadata  u64 numSectors, u32 0, u32 type, 496 bytes of padding, then
 *             numSectors sectors: type 0 end-of-stream (numSectors 0),
 *             1 grain table, 2 grain directory, 3 footer (a copy of the
 *             header whose gdOffset is true)
 * The grain and directory tables only repeat what the grain markers said
 * (where each grain is): a reader of the stream in order does not need
 * them, so they are skipped, bounded.  ESXi writes them after the grains
 * (header gdOffset = GD_AT_END) and ends with the end-of-stream marker,
 * which is then required; qemu-img writes them inside the overhead, before
 * the grains, and no end marker: such a stream is whole once it brought
 * as many grains as those tables list.  They are counted as the overhead
 * streams past (the directory says where the tables are; they must follow
 * it, contiguous, inside the overhead, as qemu-img lays them out; a
 * stream of any other layout needs the end-of-stream marker too, or a
 * cut after any whole grain would pass for the end).  Grains come in
 * increasing LBA
 * order (the writer emits the disk front to back; qemu's and ESXi's do):
 * a grain at or below the last one's LBA is refused, so no byte of the
 * disk is written twice and a sink may append.
 *
 * The decoder is a state machine over whatever chunks arrive: the bytes it
 * needs whole (a header, a marker, one compressed grain) are gathered in
 * buffers of fixed size, everything else is counted past.  Each grain is
 * inflated whole into one 64 KiB buffer: output that does not fit is a
 * bomb.  The inflater is zlib's, raw, behind zlib's own header checks:
 * it refuses exactly what qemu-img (zlib's uncompress) refuses.
 * libdeflate's whole-buffer inflater was faster but is laxer: it decodes
 * distance codes 30-31 and length codes 286-287, more than 286/30 code
 * lengths, and the unused half of a one-code tree, all of which zlib and
 * qemu-img refuse (attack-deflate, t0430).  The adler32 of the output is
 * libdeflate's (SIMD; the check is kept: it is the only end-to-end check
 * of the bytes ESXi compressed).
 * Errors name the stream offset of the item at fault.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libdeflate.h>
#include <zlib.h>

#include "h2k.h"
#include "vmdkstream.h"

#define SECTOR          512
#define KDMV            0x564d444bu     /* "KDMV" little-endian */
#define FL_NEWLINE      (1u << 0)
#define FL_RGD          (1u << 1)
#define FL_ZEROGRAIN    (1u << 2)
#define FL_COMPRESS     (1u << 16)
#define FL_MARKER       (1u << 17)
#define GRAIN_SECTORS   (H2K_VMDK_GRAIN / SECTOR)
#define MAX_CAP_SECTORS (1ull << 37)    /* 64 TiB: VMFS stops at 62 TiB */
#define MAX_OVERHEAD    65536ull        /* sectors before the first marker */
#define MAX_CSIZE       (2u * H2K_VMDK_GRAIN)
#define MT_EOS          0
#define MT_GT           1
#define MT_GD           2
#define MT_FOOTER       3
#define MAX_EOS_PAD     (1ll << 20)     /* zero padding after the end marker */

enum st { ST_HEAD, ST_PLAIN, ST_SKIP, ST_MHEAD, ST_META, ST_GRAIN, ST_FOOTER, ST_END,
    ST_FAILED };

struct h2k_vmdks {
	h2k_vmdks_sink sink;
	void *arg;
	enum st st, after_skip;
	long long off;          /* stream bytes taken */
	long long mark;         /* stream offset of the item being read */
	unsigned char acc[SECTOR];
	size_t alen, aneed;
	unsigned char *cbuf;    /* one compressed grain */
	size_t clen, cneed;
	unsigned char *gbuf;    /* one decoded grain, or plain bytes */
	size_t glen;
	long long skip;
	long long cap, pos, last_lba, overhead, gd_max;
	long long limit;        /* plain bytes: the most the disk may hold */
	long long want;         /* plain bytes: the capacity known, else -1 */
	unsigned gtes;
	long long glba;         /* the grain being read */
	int is_vmdk;
	int gd_at_end;          /* tables after the grains (ESXi): EOS required */
	/* tables up front (qemu-img): the grains they list, counted */
	int count_on;
	long long gd_at, gd_len, gt_at, gt_len, gt_sec, gd_first;
	unsigned char ent[4];
	long long expect, grains;
	/* metadata markers seen, each bounded by what the disk can hold: an
	 * endless run of them (or of padding) would be a stream that never
	 * ends and never writes */
	long long n_gt, n_gd, n_footer, max_gt;
	long long eos;          /* stream offset just past the end marker, or -1 */
	int failcode;
	char failmsg[256];
	z_stream z;
	int z_ok;
};

static int
fail(struct h2k_vmdks *d, long long at, const char *fmt, ...)
{
	char m[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(m, sizeof m, fmt, ap);
	va_end(ap);
	snprintf(d->failmsg, sizeof d->failmsg, "offset %lld: %s", at, m);
	d->failcode = H2K_EX_NET;
	d->st = ST_FAILED;
	return h2k_seterr(d->failcode, "%s", d->failmsg);
}

/* The sink failed: keep its error for later calls. */
static int
sink_fail(struct h2k_vmdks *d)
{
	snprintf(d->failmsg, sizeof d->failmsg, "%s", h2k_errmsg());
	d->failcode = h2k_errcode();
	d->st = ST_FAILED;
	return -1;
}

struct h2k_vmdks *
h2k_vmdks_new(h2k_vmdks_sink sink, void *arg)
{
	struct h2k_vmdks *d = calloc(1, sizeof *d);

	if (!d) {
		h2k_seterr(H2K_EX_IO, "decoder: out of memory");
		return NULL;
	}
	d->sink = sink;
	d->arg = arg;
	/* page-aligned: a raw image writes grains from here with O_DIRECT */
	void *g = NULL;
	d->gbuf = posix_memalign(&g, 4096, H2K_VMDK_GRAIN) == 0 ? g : NULL;
	d->cbuf = malloc(MAX_CSIZE);
	if (!d->gbuf || !d->cbuf || inflateInit2(&d->z, -15) != Z_OK) {
		h2k_vmdks_free(d);
		h2k_seterr(H2K_EX_IO, "decoder: out of memory");
		return NULL;
	}
	d->z_ok = 1;
	d->limit = MAX_CAP_SECTORS * SECTOR;
	d->want = -1;
	h2k_vmdks_reset(d);
	return d;
}

void
h2k_vmdks_free(struct h2k_vmdks *d)
{
	if (!d)
		return;
	if (d->z_ok)
		inflateEnd(&d->z);
	free(d->gbuf);
	free(d->cbuf);
	free(d);
}

void
h2k_vmdks_reset(struct h2k_vmdks *d)
{
	d->st = ST_HEAD;
	d->off = d->mark = 0;
	d->alen = 0;
	d->aneed = SECTOR;
	d->clen = d->cneed = d->glen = 0;
	d->skip = 0;
	d->cap = -1;
	d->pos = 0;
	d->last_lba = -1;
	d->is_vmdk = -1;
	d->count_on = 0;
	d->expect = d->grains = 0;
	d->n_gt = d->n_gd = d->n_footer = d->max_gt = 0;
	d->eos = -1;
	d->failcode = 0;
	d->failmsg[0] = '\0';
}

long long
h2k_vmdks_consumed(const struct h2k_vmdks *d)
{
	return d->off;
}

long long
h2k_vmdks_pos(const struct h2k_vmdks *d)
{
	return d->pos;
}

long long
h2k_vmdks_capacity(const struct h2k_vmdks *d)
{
	return d->cap;
}

int
h2k_vmdks_is_vmdk(const struct h2k_vmdks *d)
{
	return d->is_vmdk;
}

void
h2k_vmdks_limit(struct h2k_vmdks *d, long long capacity)
{
	d->limit = capacity > 0 && capacity < (long long)(MAX_CAP_SECTORS * SECTOR) ?
	    capacity : (long long)(MAX_CAP_SECTORS * SECTOR);
	d->want = capacity > 0 && capacity < (long long)(MAX_CAP_SECTORS * SECTOR) ?
	    capacity : -1;
}

/*
 * The longest stream this decoder takes for a disk of cap bytes whose
 * header says over sectors of overhead (<= 0: the most a header may say).
 * Every item is counted at the most marker_head and marker_meta let
 * through, except a grain's compressed size: a 64 KiB grain is taken at
 * zlib's deflateBound for any parameters (n + n/8 + n/64 + 5, plus 6 of
 * zlib header and adler32), not the 128 KiB the decoder accepts, since no
 * deflate writer makes more of incompressible data.  So, G grains of the
 * capacity: the overhead, G grain markers (12 bytes, the data, sector
 * padding), at most G grain tables (a table of one entry each, the worst
 * header) with their markers, one directory (gd_max) and its marker, the
 * footer and its marker, the end-of-stream marker and the padding after
 * it.
 */
static long long
stream_most(long long cap, long long over)
{
	long long g = (cap + H2K_VMDK_GRAIN - 1) / H2K_VMDK_GRAIN;
	long long z = H2K_VMDK_GRAIN, gmax = 12 + z + (z + 7) / 8 + (z + 63) / 64 + 5 + 6;
	long long gd = ((g * 4 + SECTOR - 1) / SECTOR) * 2 + 8;

	if (over <= 0 || over > (long long)MAX_OVERHEAD)
		over = MAX_OVERHEAD;
	gmax = (gmax + SECTOR - 1) / SECTOR * SECTOR;
	return over * SECTOR + g * gmax + g * 2 * SECTOR + (1 + gd) * SECTOR +
	    2 * SECTOR + SECTOR + MAX_EOS_PAD;
}

long long
h2k_vmdk_stream_most(long long capacity)
{
	if (capacity <= 0 || capacity > (long long)(MAX_CAP_SECTORS * SECTOR))
		capacity = MAX_CAP_SECTORS * SECTOR;
	return stream_most(capacity, 0);
}

long long
h2k_vmdks_most(const struct h2k_vmdks *d)
{
	if (d->is_vmdk != 1)
		return -1;
	if (d->eos >= 0)
		return d->eos + MAX_EOS_PAD;
	return stream_most(d->cap, d->overhead);
}

long long
h2k_vmdks_eos(const struct h2k_vmdks *d)
{
	return d->is_vmdk == 1 ? d->eos : -1;
}

/* Plain bytes that end at end: short of a capacity known, the stream was
 * cut (a clean end of a body of unknown length looks the same), and the
 * disk written would be shorter than the VM's */
static int
plain_whole(struct h2k_vmdks *d, long long end)
{
	if (d->want < 0 || end >= d->want)
		return 0;
	return fail(d, end, "plain bytes end short of its capacity %lld bytes", d->want);
}

/* Plain bytes up to stream offset end: none past the disk's capacity
 * reaches the sink (a server sending more would fill the file system). */
static int
plain_room(struct h2k_vmdks *d, long long end)
{
	if (end <= d->limit)
		return 0;
	return fail(d, d->limit, "plain bytes longer than its capacity %lld bytes", d->limit);
}

int
h2k_vmdk_sniff(const unsigned char *sec, size_t n, const char **sub, long long *capacity)
{
	if (n < 28 || h2k_le32(sec) != KDMV)
		return 0;
	uint32_t fl = h2k_le32(sec + 8);
	uint64_t cap = h2k_le64(sec + 12);
	*sub = (fl & FL_COMPRESS) && (fl & FL_MARKER) ? "streamOptimized" : "monolithicSparse";
	*capacity = cap <= MAX_CAP_SECTORS ? (long long)cap * SECTOR : -1;
	return 1;
}

/* The header sector is in acc: check it and set up the markers' reading. */
static int
parse_header(struct h2k_vmdks *d)
{
	const unsigned char *h = d->acc;
	uint32_t ver = h2k_le32(h + 4), fl = h2k_le32(h + 8);
	uint64_t cap = h2k_le64(h + 12), gs = h2k_le64(h + 20), doff = h2k_le64(h + 28);
	uint64_t dsz = h2k_le64(h + 36), over = h2k_le64(h + 64);
	uint32_t gtes = h2k_le32(h + 44);
	unsigned alg = (unsigned)h[77] | (unsigned)h[78] << 8;

	if (ver < 1 || ver > 3)
		return fail(d, 4, "VMDK version %u not supported (1 to 3)", ver);
	if (fl & ~(FL_NEWLINE | FL_RGD | FL_ZEROGRAIN | FL_COMPRESS | FL_MARKER))
		return fail(d, 8, "VMDK flags 0x%x: unknown flags", fl);
	if (!(fl & FL_COMPRESS) || !(fl & FL_MARKER))
		return fail(d, 8, "VMDK flags 0x%x: a sparse VMDK that is not "
		    "streamOptimized (compressed grains and markers)", fl);
	if (alg != 1)
		return fail(d, 77, "VMDK compression %u not supported (1, deflate)", alg);
	if (cap == 0 || cap > MAX_CAP_SECTORS)
		return fail(d, 12, "capacity of %llu sectors is absurd", (unsigned long long)cap);
	if (gs != GRAIN_SECTORS)
		return fail(d, 20, "grain size of %llu sectors not supported (128)",
		    (unsigned long long)gs);
	if (gtes == 0 || gtes > 512)
		return fail(d, 44, "%u grain table entries per table: absurd", gtes);
	if (over < 1 || over > MAX_OVERHEAD)
		return fail(d, 64, "overhead of %llu sectors is absurd", (unsigned long long)over);
	if (doff && (doff >= over || dsz > over - doff))
		return fail(d, 28, "descriptor (sectors %llu+%llu) outside the %llu sectors "
		    "before the grains", (unsigned long long)doff, (unsigned long long)dsz,
		    (unsigned long long)over);
	d->is_vmdk = 1;
	d->gd_at_end = h2k_le64(h + 56) == ~0ull;
	d->cap = (long long)cap * SECTOR;
	d->overhead = (long long)over;
	d->gtes = gtes;
	{
		/* sectors a grain directory of this disk takes, with room */
		unsigned long long grains = (cap + gs - 1) / gs;
		unsigned long long gts = (grains + gtes - 1) / gtes;
		uint64_t gd = h2k_le64(h + 56);
		d->gd_max = (long long)((gts * 4 + SECTOR - 1) / SECTOR) * 2 + 8;
		d->gt_sec = ((long long)gtes * 4 + SECTOR - 1) / SECTOR;
		d->gd_len = (long long)gts * 4;
		d->max_gt = (long long)gts;
		d->gt_len = (long long)gts * d->gt_sec * SECTOR;
		d->gt_at = -1;
		/* gd < over bounds the products: over is at most MAX_OVERHEAD */
		d->count_on = !d->gd_at_end && gd > 1 && gd < over &&
		    (long long)gd * SECTOR + d->gd_len <= (long long)over * SECTOR;
		d->gd_at = d->count_on ? (long long)gd * SECTOR : 0;
	}
	d->skip = (long long)over * SECTOR - SECTOR;
	d->after_skip = ST_MHEAD;
	d->st = d->skip ? ST_SKIP : ST_MHEAD;
	d->alen = 0;
	d->aneed = 12;
	d->mark = (long long)over * SECTOR;
	return 0;
}

/* One entry of the grain directory or of a grain table, up front. */
static void
table_entry(struct h2k_vmdks *d, int in_gd, long long i, uint32_t v)
{
	long long end = d->overhead * SECTOR;

	if (!in_gd) {
		d->expect += v > 1;     /* 0: not there, 1: a zero grain */
		return;
	}
	if (i == 0) {
		d->gd_first = v;
		d->gt_at = (long long)v * SECTOR;
		if (d->gt_at < d->gd_at + d->gd_len || d->gt_at + d->gt_len > end)
			d->count_on = 0;
	} else if ((long long)v != d->gd_first + i * d->gt_sec)
		d->count_on = 0;
}

/* n skipped bytes of the overhead at stream offset `at`: the tables. */
static void
tables(struct h2k_vmdks *d, const unsigned char *p, size_t n, long long at)
{
	for (size_t k = 0; k < n && d->count_on; k++) {
		long long a = at + (long long)k, r;
		int in_gd = a >= d->gd_at && a < d->gd_at + d->gd_len;
		if (in_gd)
			r = a - d->gd_at;
		else if (d->gt_at >= 0 && a >= d->gt_at && a < d->gt_at + d->gt_len)
			r = a - d->gt_at;
		else
			continue;
		d->ent[r % 4] = p[k];
		if (r % 4 == 3)
			table_entry(d, in_gd, r / 4, h2k_le32(d->ent));
	}
}

/* The piece at off of the disk (len bytes in gbuf) to the sink. */
static int
emit(struct h2k_vmdks *d, long long off, size_t len)
{
	if (d->sink && d->sink(d->arg, off, d->gbuf, len) < 0)
		return sink_fail(d);
	d->pos = off + (long long)len;
	return 0;
}

static uint32_t
be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The compressed grain is in cbuf. */
static int
grain(struct h2k_vmdks *d)
{
	long long off = d->glba * SECTOR;
	size_t len = d->cap - off < (long long)H2K_VMDK_GRAIN ? (size_t)(d->cap - off) :
	    H2K_VMDK_GRAIN;

	if (!d->sink) {
		d->pos = off + (long long)len;
		return 0;
	}
	const unsigned char *c = d->cbuf;
	if (d->clen < 2)
		return fail(d, d->mark, "grain at LBA %lld: compressed data ends early", d->glba);
	/* zlib's own header checks, in its order and words */
	if ((c[0] << 8 | c[1]) % 31)
		return fail(d, d->mark, "grain at LBA %lld: inflate error: incorrect header check",
		    d->glba);
	if ((c[0] & 0x0f) != Z_DEFLATED)
		return fail(d, d->mark, "grain at LBA %lld: inflate error: unknown compression method",
		    d->glba);
	if ((c[0] >> 4) + 8 > 15)
		return fail(d, d->mark, "grain at LBA %lld: inflate error: invalid window size",
		    d->glba);
	if (c[1] & 0x20)
		return fail(d, d->mark, "grain at LBA %lld: inflate error: needs a preset dictionary",
		    d->glba);
	if (inflateReset(&d->z) != Z_OK)
		return fail(d, d->mark, "inflate: cannot reset");
	d->z.next_in = d->cbuf + 2;
	d->z.avail_in = (uInt)d->clen - 2;
	d->z.next_out = d->gbuf;
	/* a whole grain's room even for the last, partial one: qemu's and
	 * VMware's writers may compress it whole (the bytes past the
	 * capacity are dropped, as qemu-img does); beyond 64 KiB is a bomb */
	d->z.avail_out = H2K_VMDK_GRAIN;
	int zr = inflate(&d->z, Z_FINISH);
	if (zr == Z_MEM_ERROR) {
		/* zlib's window, allocated for a grain that ends early: not
		 * the stream's fault (zlib's own message would be none) */
		h2k_seterr(H2K_EX_IO, "offset %lld: grain at LBA %lld: inflate: out of memory",
		    d->mark, d->glba);
		return sink_fail(d);
	}
	if (zr != Z_STREAM_END) {
		if (d->z.avail_out == 0)
			return fail(d, d->mark, "grain at LBA %lld inflates beyond its %u bytes",
			    d->glba, H2K_VMDK_GRAIN);
		if (zr == Z_BUF_ERROR || zr == Z_OK)
			return fail(d, d->mark, "grain at LBA %lld: compressed data ends early",
			    d->glba);
		return fail(d, d->mark, "grain at LBA %lld: inflate error: %s", d->glba,
		    d->z.msg ? d->z.msg : "bad data");
	}
	/* the adler32 after the deflate data; bytes after it, up to the
	 * marker's size, are padding to ignore (as zlib and qemu-img do) */
	if (d->z.avail_in < 4)
		return fail(d, d->mark, "grain at LBA %lld: compressed data ends early", d->glba);
	size_t got = H2K_VMDK_GRAIN - d->z.avail_out;
	if (libdeflate_adler32(1, d->gbuf, got) != be32(d->z.next_in))
		return fail(d, d->mark, "grain at LBA %lld: inflate error: incorrect data check",
		    d->glba);
	if (got < len)
		/* the rest of the grain would be made up zeros: qemu-img
		 * refuses to read that part of the disk, so does h2k */
		return fail(d, d->mark, "grain at LBA %lld inflates to only %zu of its %zu bytes",
		    d->glba, got, len);
	return emit(d, off, len);
}

/* The first 12 bytes of a marker are in acc. */
static int
marker_head(struct h2k_vmdks *d)
{
	uint64_t val = h2k_le64(d->acc);
	uint32_t size = h2k_le32(d->acc + 8);

	if (size == 0) {
		d->aneed = SECTOR;  /* the rest of the metadata marker's sector */
		d->st = ST_META;
		return 0;
	}
	if (val % GRAIN_SECTORS)
		return fail(d, d->mark, "grain at LBA %llu: not on a grain boundary",
		    (unsigned long long)val);
	if (val >= (uint64_t)d->cap / SECTOR)
		return fail(d, d->mark, "grain at LBA %llu: beyond the capacity of %lld sectors",
		    (unsigned long long)val, d->cap / SECTOR);
	if ((long long)val <= d->last_lba)
		return fail(d, d->mark, "grain at LBA %llu: not after the last one (LBA %lld)",
		    (unsigned long long)val, d->last_lba);
	if (size > MAX_CSIZE)
		return fail(d, d->mark, "grain at LBA %llu: %u compressed bytes is absurd",
		    (unsigned long long)val, size);
	d->glba = (long long)val;
	d->last_lba = (long long)val;
	d->grains++;
	d->clen = 0;
	d->cneed = size;
	d->st = ST_GRAIN;
	return 0;
}

/* A whole metadata marker sector is in acc. */
static int
marker_meta(struct h2k_vmdks *d)
{
	uint64_t ns = h2k_le64(d->acc);
	uint32_t type = h2k_le32(d->acc + 12);
	long long max;

	switch (type) {
	case MT_EOS:
		if (ns != 0)
			return fail(d, d->mark, "end-of-stream marker with %llu sectors",
			    (unsigned long long)ns);
		d->pos = d->cap;
		d->mark += SECTOR;      /* where padding would start */
		d->eos = d->mark;
		d->st = ST_END;
		return 0;
	case MT_GT:
		max = ((long long)d->gtes * 4 + SECTOR - 1) / SECTOR;
		if (++d->n_gt > d->max_gt)
			return fail(d, d->mark, "grain table marker %lld: more than the %lld "
			    "tables of this disk", d->n_gt, d->max_gt);
		break;
	case MT_GD:
		max = d->gd_max;
		if (++d->n_gd > 1)
			return fail(d, d->mark, "a second grain directory marker");
		break;
	case MT_FOOTER:
		if (++d->n_footer > 1)
			return fail(d, d->mark, "a second footer marker");
		if (ns != 1)
			return fail(d, d->mark, "footer marker with %llu sectors (1)",
			    (unsigned long long)ns);
		d->mark += SECTOR;
		d->alen = 0;
		d->aneed = SECTOR;
		d->st = ST_FOOTER;
		return 0;
	default:
		return fail(d, d->mark + 12, "marker of unknown type %u", type);
	}
	if (ns > (uint64_t)max)
		return fail(d, d->mark, "%s marker with %llu sectors (at most %lld here)",
		    type == MT_GT ? "grain table" : "grain directory", (unsigned long long)ns, max);
	d->skip = (long long)ns * SECTOR;
	d->after_skip = ST_MHEAD;
	d->st = d->skip ? ST_SKIP : ST_MHEAD;
	d->mark += SECTOR + d->skip;
	d->alen = 0;
	d->aneed = 12;
	return 0;
}

/* Plain bytes: fill gbuf and hand on each whole 64 KiB piece. */
static size_t
plain(struct h2k_vmdks *d, const unsigned char *p, size_t n)
{
	size_t k = H2K_VMDK_GRAIN - d->glen < n ? H2K_VMDK_GRAIN - d->glen : n;

	memcpy(d->gbuf + d->glen, p, k);
	d->glen += k;
	if (d->glen == H2K_VMDK_GRAIN) {
		if (emit(d, d->off + (long long)k - H2K_VMDK_GRAIN, H2K_VMDK_GRAIN) < 0)
			return 0;
		d->glen = 0;
	}
	return k;
}

/* Gather into acc up to aneed bytes; the count taken. */
static size_t
gather(struct h2k_vmdks *d, const unsigned char *p, size_t n)
{
	size_t k = d->aneed - d->alen < n ? d->aneed - d->alen : n;

	memcpy(d->acc + d->alen, p, k);
	d->alen += k;
	return k;
}

static int
step(struct h2k_vmdks *d, const unsigned char *p, size_t n, size_t *used)
{
	size_t k = 0;

	switch (d->st) {
	case ST_HEAD:
		k = gather(d, p, n);
		d->off += k;
		*used = k;
		if (d->alen < SECTOR)
			return 0;
		if (h2k_le32(d->acc) == KDMV)
			return parse_header(d);
		/* not a sparse VMDK: the bytes are the disk */
		d->is_vmdk = 0;
		if (plain_room(d, SECTOR) < 0)
			return -1;
		d->st = ST_PLAIN;
		d->off = 0;
		d->glen = 0;
		k = plain(d, d->acc, SECTOR);
		d->off = SECTOR;
		return d->st == ST_FAILED ? -1 : 0;
	case ST_PLAIN:
		if (plain_room(d, d->off + (long long)n) < 0)
			return -1;
		k = plain(d, p, n);
		if (d->st == ST_FAILED)
			return -1;
		break;
	case ST_SKIP:
		k = (long long)n < d->skip ? n : (size_t)d->skip;
		if (d->count_on && d->off < d->overhead * SECTOR)
			tables(d, p, k, d->off);
		d->skip -= (long long)k;
		if (!d->skip)
			d->st = d->after_skip;
		break;
	case ST_MHEAD:
		k = gather(d, p, n);
		if (d->alen == d->aneed) {
			d->off += k;
			*used = k;
			return marker_head(d);
		}
		break;
	case ST_META:
		k = gather(d, p, n);
		if (d->alen == d->aneed) {
			d->off += k;
			*used = k;
			return marker_meta(d);
		}
		break;
	case ST_GRAIN:
		k = d->cneed - d->clen < n ? d->cneed - d->clen : n;
		memcpy(d->cbuf + d->clen, p, k);
		d->clen += k;
		if (d->clen == d->cneed) {
			long long pad = (SECTOR - (long long)(12 + d->cneed) % SECTOR) % SECTOR;
			d->off += k;
			*used = k;
			if (grain(d) < 0)
				return -1;
			d->mark += 12 + (long long)d->cneed + pad;
			d->skip = pad;
			d->after_skip = ST_MHEAD;
			d->st = pad ? ST_SKIP : ST_MHEAD;
			d->alen = 0;
			d->aneed = 12;
			return 0;
		}
		break;
	case ST_FOOTER:
		k = gather(d, p, n);
		if (d->alen == d->aneed) {
			d->off += k;
			*used = k;
			if (h2k_le32(d->acc) != KDMV)
				return fail(d, d->mark, "footer without the KDMV magic");
			if (h2k_le64(d->acc + 12) != (uint64_t)d->cap / SECTOR)
				return fail(d, d->mark + 12, "footer capacity differs from the header's");
			d->mark += SECTOR;
			d->alen = 0;
			d->aneed = 12;
			d->st = ST_MHEAD;
			return 0;
		}
		break;
	case ST_END:
		/* a writer may pad its last sector (or block): zeros only,
		 * and not forever */
		for (k = 0; k < n; k++)
			if (p[k])
				return fail(d, d->off + (long long)k, "data after the end-of-stream marker");
		if (d->is_vmdk == 1 && d->off + (long long)n - d->mark > MAX_EOS_PAD)
			return fail(d, d->mark, "more than %lld bytes of padding after the "
			    "end-of-stream marker", MAX_EOS_PAD);
		break;
	case ST_FAILED:
		return -1;
	}
	d->off += (long long)k;
	*used = k;
	return 0;
}

int
h2k_vmdks_feed(struct h2k_vmdks *d, const void *buf, size_t n)
{
	const unsigned char *p = buf;

	while (n > 0 || d->st == ST_FAILED) {
		size_t used = 0;
		if (d->st == ST_FAILED)
			return h2k_seterr(d->failcode, "%s", d->failmsg);
		if (step(d, p, n, &used) < 0)
			return -1;
		p += used;
		n -= used;
	}
	return 0;
}

int
h2k_vmdks_finish(struct h2k_vmdks *d)
{
	const char *in = NULL;

	switch (d->st) {
	case ST_FAILED:
		return h2k_seterr(d->failcode, "%s", d->failmsg);
	case ST_END:
		return 0;
	case ST_PLAIN:
		if (plain_whole(d, d->off) < 0)
			return -1;
		if (d->glen && emit(d, d->off - (long long)d->glen, d->glen) < 0)
			return -1;
		d->glen = 0;
		d->cap = d->off;
		d->st = ST_END;
		return 0;
	case ST_HEAD:
		if (d->alen == 0) {
			/* an empty disk of plain bytes */
			d->is_vmdk = 0;
			if (plain_whole(d, 0) < 0)
				return -1;
			d->cap = 0;
			d->st = ST_END;
			return 0;
		}
		if (d->alen >= 4 && h2k_le32(d->acc) == KDMV)
			in = "the header";
		else {
			/* less than a sector of plain bytes */
			d->is_vmdk = 0;
			if (plain_room(d, (long long)d->alen) < 0 ||
			    plain_whole(d, (long long)d->alen) < 0)
				return -1;
			memcpy(d->gbuf, d->acc, d->alen);
			d->off = (long long)d->alen;
			if (emit(d, 0, d->alen) < 0)
				return -1;
			d->cap = d->off;
			d->st = ST_END;
			return 0;
		}
		break;
	case ST_SKIP:
		in = "metadata or padding";
		break;
	case ST_MHEAD:
		if (!d->alen && d->count_on) {
			/* qemu-img writes its tables up front and no end marker:
			 * a stream that ends between markers is whole when it
			 * brought every grain they list */
			if (d->grains < d->expect)
				return fail(d, d->off, "stream ends after %lld of the %lld "
				    "grains its grain tables list", d->grains, d->expect);
			d->pos = d->cap;
			d->st = ST_END;
			return 0;
		}
		if (!d->alen && !d->gd_at_end)
			/* tables nobody counted: nothing tells a cut between
			 * grains from the end, and ESXi always ends with a marker */
			return fail(d, d->off, "stream ends without an end-of-stream "
			    "marker (and its grain tables could not be counted)");
		in = d->alen ? "a marker" : NULL;
		break;
	case ST_META:
		in = "a marker";
		break;
	case ST_GRAIN:
		in = "a grain";
		break;
	case ST_FOOTER:
		in = "the footer";
		break;
	}
	if (in)
		return fail(d, d->off, "stream ends inside %s", in);
	return fail(d, d->off, "stream ends without an end-of-stream marker");
}
