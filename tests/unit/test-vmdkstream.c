/*
 * Unit tests for lib/vmdkstream.c and lib/diskout.c: streams made by
 * qemu-img (the oracle) and by an ESXi-style writer below, decoded in
 * chunks of every size into raw and qcow2 images that qemu-img compares
 * identical and checks clean; every malformed case, crafted by mutating a
 * real stream, fails with the offset.  Needs qemu-img (scripts/deps
 * installs qemu-utils); without it those cases skip.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "diskout.h"
#include "h2k.h"
#include "tap.h"
#include "vmdkstream.h"

#define G H2K_VMDK_GRAIN

static char dir[256];
static int have_qemu;
static long long limit;         /* h2k_vmdks_limit of decode(), 0: none */

static char *
path(const char *name)
{
	static char p[4][512];
	static int i;
	i = (i + 1) % 4;
	snprintf(p[i], sizeof p[i], "%s/%s", dir, name);
	return p[i];
}

static unsigned char *
slurp(const char *p, size_t *n)
{
	FILE *fp = fopen(p, "rb");
	unsigned char *b = NULL;
	long len;

	if (!fp)
		return NULL;
	fseek(fp, 0, SEEK_END);
	len = ftell(fp);
	rewind(fp);
	b = malloc(len ? (size_t)len : 1);
	if (b && fread(b, 1, (size_t)len, fp) != (size_t)len) {
		free(b);
		b = NULL;
	}
	fclose(fp);
	*n = (size_t)len;
	return b;
}

static int
spit(const char *p, const void *b, size_t n)
{
	FILE *fp = fopen(p, "wb");
	int rc = fp && fwrite(b, 1, n, fp) == n ? 0 : -1;
	if (fp && fclose(fp) != 0)
		rc = -1;
	return rc;
}

/* A disk of n bytes: random grains, repeated ones, holes, a grain with one
 * byte at its very end, and a short last piece. */
static unsigned char *
make_disk(size_t n)
{
	unsigned char *b = calloc(1, n);
	uint32_t s = 12345;

	for (size_t g = 0; g * G < n; g++) {
		size_t len = n - g * G < G ? n - g * G : G;
		switch (g % 5) {
		case 0:
		case 3:
			for (size_t i = 0; i < len; i++) {
				s = s * 1103515245 + 12345;
				b[g * G + i] = (unsigned char)(s >> 16);
			}
			break;
		case 1:
			memset(b + g * G, 'h', len);
			break;
		case 2:
			break;  /* a hole */
		case 4:
			b[g * G + len - 1] = 1;
			break;
		}
	}
	return b;
}

/* Decode buf in chunks of `chunk` bytes (0: growing odd sizes) into file
 * out of format fmt.  0, or -1 with the error set. */
static int
decode(const unsigned char *buf, size_t n, size_t chunk, const char *out,
    enum h2k_disk_format fmt, long long *cap)
{
	int fd = open(out, O_RDWR | O_CREAT | O_TRUNC, 0600);
	struct h2k_diskout *o = h2k_diskout_new(fd, fmt, out);
	struct h2k_vmdks *d = h2k_vmdks_new(h2k_diskout_put, o);
	size_t off = 0, k = 1;
	int rc = -1;

	if (limit)
		h2k_vmdks_limit(d, limit);

	while (off < n) {
		size_t c = chunk ? chunk : (k = k * 7 % 9973 + 1);
		if (c > n - off)
			c = n - off;
		if (h2k_vmdks_feed(d, buf + off, c) < 0)
			goto out;
		off += c;
	}
	if (h2k_vmdks_finish(d) < 0)
		goto out;
	*cap = h2k_vmdks_capacity(d);
	if (h2k_diskout_finish(o, *cap) < 0)
		goto out;
	rc = 0;
out:
	h2k_vmdks_free(d);
	h2k_diskout_free(o);
	close(fd);
	return rc;
}

/* Expect decoding buf to fail with exit 9 and "offset N:" */
static void
bad(const unsigned char *buf, size_t n, long long off, const char *what, const char *name)
{
	long long cap;
	char want[64];

	snprintf(want, sizeof want, "offset %lld: ", off);
	h2k_clearerr();
	int rc = decode(buf, n, 4096, path("bad.raw"), H2K_FMT_RAW, &cap);
	ok(rc < 0 && h2k_errcode() == H2K_EX_NET && strncmp(h2k_errmsg(), want, strlen(want)) == 0 &&
	    strstr(h2k_errmsg(), what), "%s: fails at offset %lld naming '%s'", name, off, what);
	if (rc == 0 || !strstr(h2k_errmsg(), what) || strncmp(h2k_errmsg(), want, strlen(want)))
		printf("#   got: rc %d, %d '%s'\n", rc, h2k_errcode(), h2k_errmsg());
}

static uint32_t rd32(const unsigned char *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t rd64(const unsigned char *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }
static void wr32(unsigned char *p, uint32_t v) { for (int i = 0; i < 4; i++, v >>= 8) p[i] = (unsigned char)v; }
static void wr64(unsigned char *p, uint64_t v) { for (int i = 0; i < 8; i++, v >>= 8) p[i] = (unsigned char)v; }

/* Where the markers of a stream are: grains[] and the first metadata one. */
struct layout {
	size_t grains[64];
	int ngrains;
	size_t meta[16];
	int nmeta;
	size_t end;
};

static void
walk(const unsigned char *s, size_t n, struct layout *l)
{
	size_t p = (size_t)rd64(s + 64) * 512;

	memset(l, 0, sizeof *l);
	while (p + 16 <= n) {
		uint32_t size = rd32(s + p + 8);
		if (size) {
			if (l->ngrains < 64)
				l->grains[l->ngrains++] = p;
			p += (12 + size + 511) / 512 * 512;
		} else {
			if (l->nmeta < 16)
				l->meta[l->nmeta++] = p;
			uint32_t type = rd32(s + p + 12);
			p += 512 + rd64(s + p) * 512;
			if (type == 0)
				break;
		}
	}
	l->end = p;
}

/*
 * An ESXi-style stream of disk[0..n): header with gdOffset = GD_AT_END,
 * descriptor, grains (zero grains left out), grain tables, grain
 * directory, footer, end-of-stream marker.  Malloc'ed, *len bytes.
 */
static unsigned char *
esxi_stream(const unsigned char *disk, size_t n, size_t *len)
{
	size_t cap_sec = (n + 511) / 512, ngr = (cap_sec + 127) / 128;
	size_t ngt = (ngr + 511) / 512, cap = 65536 + ngr * (G + 1024) + ngt * 2560 + 8192;
	unsigned char *s = calloc(1, cap), hdr[512];
	uint32_t *gt = calloc(ngt * 512, 4);
	uint64_t *gtpos = calloc(ngt, 8);
	size_t p;

	memset(hdr, 0, sizeof hdr);
	wr32(hdr, 0x564d444b);
	wr32(hdr + 4, 3);
	wr32(hdr + 8, 0x30001);
	wr64(hdr + 12, cap_sec);
	wr64(hdr + 20, 128);
	wr64(hdr + 28, 1);
	wr64(hdr + 36, 1);
	wr32(hdr + 44, 512);
	wr64(hdr + 56, ~0ull);
	wr64(hdr + 64, 128);
	hdr[73] = '\n'; hdr[74] = ' '; hdr[75] = '\r'; hdr[76] = '\n';
	hdr[77] = 1;
	memcpy(s, hdr, 512);
	snprintf((char *)s + 512, 512, "# Disk DescriptorFile\nversion=1\nCID=fffffffe\n"
	    "parentCID=ffffffff\ncreateType=\"streamOptimized\"\n\n"
	    "RW %zu SPARSE \"x.vmdk\"\n\nddb.adapterType = \"lsilogic\"\n", cap_sec);
	p = 128 * 512;
	for (size_t g = 0; g < ngr; g++) {
		size_t l = n - g * G < G ? n - g * G : G;
		int zero = 1;
		for (size_t i = 0; i < l && zero; i++)
			zero = !disk[g * G + i];
		if (zero)
			continue;
		uLongf cl = (uLongf)(cap - p - 12);
		compress2(s + p + 12, &cl, disk + g * G, (uLong)l, 6);
		wr64(s + p, g * 128);
		wr32(s + p + 8, (uint32_t)cl);
		gt[g] = (uint32_t)(p / 512);
		p += (12 + cl + 511) / 512 * 512;
	}
	for (size_t t = 0; t < ngt; t++) {
		wr64(s + p, 4);
		wr32(s + p + 12, 1);
		p += 512;
		gtpos[t] = p / 512;
		for (size_t i = 0; i < 512; i++)
			wr32(s + p + i * 4, gt[t * 512 + i]);
		p += 2048;
	}
	size_t gdsec = (ngt * 4 + 511) / 512;
	wr64(s + p, gdsec);
	wr32(s + p + 12, 2);
	p += 512;
	size_t gd = p / 512;
	for (size_t t = 0; t < ngt; t++)
		wr32(s + p + t * 4, (uint32_t)gtpos[t]);
	p += gdsec * 512;
	wr64(s + p, 1);
	wr32(s + p + 12, 3);
	p += 512;
	memcpy(s + p, hdr, 512);
	wr64(s + p + 56, gd);
	p += 512;
	p += 512;  /* end-of-stream: a zero marker */
	free(gt);
	free(gtpos);
	*len = p;
	return s;
}

static void
roundtrip(const char *what, const unsigned char *s, size_t n, const char *orig0,
    const unsigned char *disk, size_t disklen)
{
	long long cap = -1, data = 0;
	char orig[512];

	snprintf(orig, sizeof orig, "%s", orig0);  /* path() reuses its buffers */
	for (size_t g = 0; g * G < disklen; g++) {
		size_t l = disklen - g * G < G ? disklen - g * G : G;
		for (size_t i = 0; i < l; i++)
			if (disk[g * G + i]) {
				data += (long long)l;
				break;
			}
	}
	static const size_t chunks[] = { 0, 1, 511, 512, 513, 65536, 1 << 20 };

	for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
		if (chunks[i] == 1 && n > (8u << 20))
			continue;
		int rc = decode(s, n, chunks[i], path("out.raw"), H2K_FMT_RAW, &cap);
		if (rc < 0)
			printf("#   %s\n", h2k_errmsg());
		size_t m;
		unsigned char *got = rc == 0 ? slurp(path("out.raw"), &m) : NULL;
		unsigned char *want = got ? slurp(orig, &m) : NULL;
		size_t gl = 0;
		if (got) {
			struct stat st;
			stat(path("out.raw"), &st);
			gl = (size_t)st.st_size;
		}
		ok(rc == 0 && got && want && gl == disklen && memcmp(got, want, disklen) == 0,
		    "%s, chunks of %zu: raw identical (%zu bytes)", what, chunks[i], disklen);
		free(got);
		free(want);
	}
	is_int(cap, (long long)disklen, "%s: capacity", what);
	{
		struct stat st;
		stat(path("out.raw"), &st);
		/* the grains that hold data, no more */
		ok((long long)st.st_blocks * 512 <= data + 64 * 1024 &&
		    (long long)st.st_blocks * 512 < (long long)disklen * 9 / 10,
		    "%s: raw is sparse (%lld bytes allocated of %zu)", what,
		    (long long)st.st_blocks * 512, disklen);
	}
	int rc = decode(s, n, 0, path("out.qcow2"), H2K_FMT_QCOW2, &cap);
	ok(rc == 0, "%s: into qcow2", what);
	if (!have_qemu) {
		skip(2, "no qemu-img");
		return;
	}
	ok(sh("qemu-img check -q %s", path("out.qcow2")) == 0, "%s: qemu-img check clean", what);
	ok(sh("qemu-img compare -q -f raw -F qcow2 %s %s", orig, path("out.qcow2")) == 0,
	    "%s: qemu-img compare identical", what);
}

static void
malformed(const unsigned char *s0, size_t n, const struct layout *l)
{
	unsigned char *s = malloc(n + 4096);
	size_t g0 = l->grains[0], g1 = l->grains[1];

#define FRESH() memcpy(s, s0, n)
	FRESH(); wr32(s + 4, 9);
	bad(s, n, 4, "version 9", "version 9");
	FRESH(); wr32(s + 8, 0x30001 | (1u << 20));
	bad(s, n, 8, "unknown flags", "unknown flag");
	FRESH(); wr32(s + 8, 0x1);
	bad(s, n, 8, "not streamOptimized", "monolithicSparse");
	FRESH(); wr64(s + 12, 0);
	bad(s, n, 12, "capacity of 0 sectors", "capacity 0");
	FRESH(); wr64(s + 12, 1ull << 60);
	bad(s, n, 12, "absurd", "absurd capacity");
	FRESH(); wr64(s + 12, (1ull << 37) + 128);
	bad(s, n, 12, "absurd", "capacity beyond 64 TiB");
	FRESH(); wr64(s + 20, 64);
	bad(s, n, 20, "grain size of 64", "grain size 64");
	FRESH(); wr64(s + 64, 1ull << 40);
	bad(s, n, 64, "overhead", "absurd overhead");
	FRESH(); s[77] = 2;
	bad(s, n, 77, "compression 2", "compression algorithm");
	FRESH(); wr64(s + g0, (rd64(s + 12) + 127) / 128 * 128);
	bad(s, n, (long long)g0, "beyond the capacity", "grain LBA beyond capacity");
	FRESH(); wr64(s + g0, 64);
	bad(s, n, (long long)g0, "grain boundary", "grain LBA not aligned");
	FRESH(); wr64(s + g1, rd64(s + g0));
	bad(s, n, (long long)g1, "not after the last one", "grain LBA repeated");
	FRESH(); wr64(s + g1, 0); wr64(s + g0, 128);
	bad(s, n, (long long)g1, "not after the last one", "grain LBA going backwards");
	FRESH(); s[g0 + 12] = 0xff; s[g0 + 13] = 0xff;
	bad(s, n, (long long)g0, "inflate error", "corrupt zlib data");
	FRESH(); wr32(s + g0 + 8, 0x7fffffff);
	bad(s, n, (long long)g0, "compressed bytes is absurd", "absurd grain size");
	FRESH(); wr32(s + g0 + 8, 20);
	bad(s, n, (long long)g0, "compressed data ends early", "grain size too small");
	FRESH();
	bad(s, g0 + 3000, (long long)g0 + 3000, "ends inside a grain", "truncated grain");
	FRESH();
	bad(s, g0 + 6, (long long)g0 + 6, "ends inside a marker", "truncated marker");
	FRESH();
	bad(s, 300, 300, "ends inside the header", "truncated header");
	if (l->nmeta >= 4) {
		size_t gtm = l->meta[0], eos = l->meta[l->nmeta - 1], foot = l->meta[l->nmeta - 2];
		FRESH(); wr32(s + gtm + 12, 7);
		bad(s, n, (long long)gtm + 12, "unknown type 7", "unknown marker type");
		FRESH(); wr64(s + gtm, 1000000);
		bad(s, n, (long long)gtm, "grain table marker with 1000000", "absurd grain table");
		FRESH(); wr32(s + foot + 512, 0x12345678);
		bad(s, n, (long long)foot + 512, "footer without the KDMV magic", "footer bad magic");
		FRESH();
		bad(s, eos, (long long)eos, "without an end-of-stream marker", "stream cut before EOS");
		FRESH(); wr64(s + eos, 3);
		bad(s, n, (long long)eos, "end-of-stream marker with 3", "EOS with sectors");
		FRESH(); memset(s + n, 0, 4096); s[n + 100] = 'x';
		bad(s, n + 4096, (long long)n + 100, "after the end-of-stream", "data after EOS");
		FRESH(); memset(s + n, 0, 4096);
		long long cap;
		ok(decode(s, n + 4096, 0, path("pad.raw"), H2K_FMT_RAW, &cap) == 0,
		    "zeros after EOS are padding");
	} else
		skip(7, "no metadata markers in this stream");
	{
		/* a bomb: one grain inflating to 128 KiB */
		unsigned char *z = calloc(1, 2 * G);
		uLongf cl = compressBound(2 * G);
		unsigned char *c = malloc(cl);
		compress2(c, &cl, z, 2 * G, 9);
		memcpy(s, s0, g0);
		memset(s + g0, 0, 512);
		wr64(s + g0, 0);
		wr32(s + g0 + 8, (uint32_t)cl);
		memcpy(s + g0 + 12, c, cl);
		bad(s, g0 + 12 + cl, (long long)g0, "inflates beyond", "decompression bomb");
		free(z);
		free(c);
	}
	free(s);
}

/*
 * gdOffset 0 in the header: grain tables the decoder does not count.  Only
 * the end-of-stream marker then tells the end from a cut between grains.
 */
static void
uncounted(const unsigned char *s0, size_t n, const struct layout *l, const char *what)
{
	unsigned char *s = malloc(n);
	int has_eos = l->nmeta > 0 && rd32(s0 + l->meta[l->nmeta - 1] + 12) == 0;
	size_t cut = has_eos ? l->meta[l->nmeta - 1] : n;
	long long cap;
	char name[96];

	memcpy(s, s0, n);
	wr64(s + 56, 0);
	snprintf(name, sizeof name, "%s, tables not counted, no end marker", what);
	bad(s, cut, (long long)cut, "ends without an end-of-stream marker (and its grain "
	    "tables could not be counted)", name);
	snprintf(name, sizeof name, "%s, tables not counted, cut after its first grain", what);
	bad(s, l->grains[1], (long long)l->grains[1], "ends without an end-of-stream marker",
	    name);
	if (!has_eos) {
		skip(1, "no end-of-stream marker in this stream");
		free(s);
		return;
	}
	ok(decode(s, n, 0, path("unc.raw"), H2K_FMT_RAW, &cap) == 0 && cap == (long long)rd64(s + 12) * 512,
	    "%s, tables not counted, with its end marker: whole", what);
	free(s);
}

/* A raw image through O_DIRECT: aligned grains direct, the rest buffered,
 * the same bytes either way; the name checked to be the open file. */
static void
direct_tests(void)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	int fd = open(path("d.raw.part"), O_RDWR | O_CREAT | O_TRUNC, 0600);
	unsigned char *a = NULL, *want = calloc(1, 3 * G + 1000);
	struct h2k_diskout *o;

	if (dfd < 0 || fd < 0 || posix_memalign((void **)&a, 4096, G + 1) != 0 || !want) {
		ok(0, "direct: set up");
		return;
	}
	o = h2k_diskout_new(fd, H2K_FMT_RAW, "d.raw.part");
	unsetenv("H2K_FETCH_NO_DIRECT");
	if (!h2k_diskout_direct(o, dfd, "d.raw.part")) {
		skip(3, "no O_DIRECT on this file system");
	} else {
		ok(h2k_diskout_is_direct(o), "direct: on for a raw .part");
		for (size_t i = 0; i < G + 1; i++)
			a[i] = (unsigned char)(i * 7 + 1);
		memcpy(want, a, G);                     /* aligned: direct */
		memcpy(want + 2 * G, a + 1, G);         /* buffer unaligned: buffered */
		memcpy(want + 3 * G, a, 1000);          /* short: buffered */
		int rc = h2k_diskout_put(o, 0, a, G) | h2k_diskout_put(o, 2 * G, a + 1, G) |
		    h2k_diskout_put(o, 3 * G, a, 1000) | h2k_diskout_finish(o, 3 * G + 1000);
		size_t n = 0;
		unsigned char *got = rc == 0 && fsync(fd) == 0 ? slurp(path("d.raw.part"), &n) : NULL;
		ok(got && n == 3 * G + 1000 && memcmp(got, want, n) == 0,
		    "direct: the file holds the grains, aligned or not, and the hole");
		ok(h2k_diskout_data(o) == 2 * G + 1000, "direct: data counted");
		free(got);
	}
	h2k_diskout_free(o);

	o = h2k_diskout_new(fd, H2K_FMT_RAW, "d.raw.part");
	setenv("H2K_FETCH_NO_DIRECT", "1", 1);
	ok(!h2k_diskout_direct(o, dfd, "d.raw.part") && !h2k_diskout_is_direct(o),
	    "direct: H2K_FETCH_NO_DIRECT=1 keeps it off");
	unsetenv("H2K_FETCH_NO_DIRECT");
	/* the name now another file's: not the descriptor's file, no direct */
	close(open(path("other"), O_WRONLY | O_CREAT, 0600));
	ok(rename(path("other"), path("d.raw.part")) == 0 &&
	    !h2k_diskout_direct(o, dfd, "d.raw.part"), "direct: off when the name is another file");
	h2k_diskout_free(o);
	o = h2k_diskout_new(fd, H2K_FMT_QCOW2, "d.qcow2.part");
	ok(!h2k_diskout_direct(o, dfd, "d.raw.part"), "direct: never for qcow2");
	h2k_diskout_free(o);
	close(fd);
	close(dfd);
	free(a);
	free(want);
}

int
main(void)
{
	const char *tmp = getenv("TMPDIR");
	size_t disklen = 40 * G + 32 * 1024;    /* a short last grain */
	unsigned char *disk = make_disk(disklen);

	snprintf(dir, sizeof dir, "%s/h2k-vmdks-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	have_qemu = system("qemu-img --version >/dev/null 2>&1") == 0;
	spit(path("disk.raw"), disk, disklen);

	/* plain bytes: the stream is the disk */
	roundtrip("plain bytes", disk, disklen, path("disk.raw"), disk, disklen);
	{
		struct h2k_vmdks *d = h2k_vmdks_new(NULL, NULL);
		h2k_vmdks_feed(d, disk, 100);
		is_int(h2k_vmdks_finish(d), 0, "plain: shorter than a sector");
		is_int(h2k_vmdks_capacity(d), 100, "plain: capacity of 100 bytes");
		is_int(h2k_vmdks_is_vmdk(d), 0, "plain: not a VMDK");
		h2k_vmdks_reset(d);
		is_int(h2k_vmdks_finish(d), 0, "plain: empty stream is an empty disk");
		is_int(h2k_vmdks_capacity(d), 0, "plain: capacity 0");
		h2k_vmdks_free(d);
	}

	{
		/* plain bytes bounded by the disk's capacity: the bytes up to
		 * it are a disk; one more fails before reaching the image */
		long long cap;
		struct stat st;
		limit = (long long)disklen;
		ok(decode(disk, disklen, 0, path("lim.raw"), H2K_FMT_RAW, &cap) == 0 &&
		    cap == (long long)disklen, "plain: exactly its capacity");
		limit = (long long)disklen - 1;
		bad(disk, disklen, (long long)disklen - 1, "plain bytes longer than its "
		    "capacity", "plain: one byte past its capacity");
		ok(stat(path("bad.raw"), &st) == 0 && st.st_size < (long long)disklen,
		    "plain: nothing past the capacity written (%lld bytes)",
		    (long long)st.st_size);
		limit = 40 * G;
		bad(disk, disklen, 40 * G, "longer than its capacity 2621440 bytes",
		    "plain: a grain past its capacity");
		limit = 100;
		ok(decode(disk, 100, 1, path("lim.raw"), H2K_FMT_RAW, &cap) == 0 && cap == 100,
		    "plain: 100 bytes, capacity 100");
		bad(disk, 101, 100, "longer than its capacity 100 bytes",
		    "plain: 101 bytes, capacity 100");
		bad(disk, 600, 100, "longer than its capacity 100 bytes",
		    "plain: a sector and more, capacity 100");
		/* attack-left: a known capacity is also the least (a cut body
		 * of unknown length ends as cleanly as a whole one) */
		limit = (long long)disklen + 1;
		bad(disk, disklen, (long long)disklen, "plain bytes end short of its capacity",
		    "plain: one byte short of its capacity");
		limit = 101;
		bad(disk, 100, 100, "end short of its capacity 101 bytes",
		    "plain: 100 bytes (less than a sector), capacity 101");
		bad(disk, 0, 0, "end short of its capacity 101 bytes",
		    "plain: no bytes at all, capacity 101");
		limit = 0;
	}

	/* ESXi's layout, checked against the oracle too */
	size_t en;
	unsigned char *es = esxi_stream(disk, disklen, &en);
	spit(path("esxi.vmdk"), es, en);
	if (have_qemu)
		ok(sh("qemu-img compare -q -f vmdk -F raw %s %s", path("esxi.vmdk"),
		    path("disk.raw")) == 0, "our ESXi-style stream reads right in qemu-img");
	else
		skip(1, "no qemu-img");
	roundtrip("ESXi stream", es, en, path("disk.raw"), disk, disklen);
	{
		const char *sub = NULL;
		long long cap = 0;
		ok(h2k_vmdk_sniff(es, 512, &sub, &cap) == 1 && sub &&
		    strcmp(sub, "streamOptimized") == 0 && cap == (long long)disklen,
		    "sniff: streamOptimized, capacity");
		ok(h2k_vmdk_sniff(disk, 512, &sub, &cap) == 0, "sniff: plain bytes");
	}
	{
		/* observing only: position and capacity, nothing inflated */
		struct h2k_vmdks *d = h2k_vmdks_new(NULL, NULL);
		struct layout l;
		walk(es, en, &l);
		h2k_vmdks_feed(d, es, l.grains[2] + 20);
		is_int(h2k_vmdks_pos(d), 2 * G, "observe: position after two grains");
		h2k_vmdks_feed(d, es + l.grains[2] + 20, en - l.grains[2] - 20);
		is_int(h2k_vmdks_finish(d), 0, "observe: whole stream");
		is_int(h2k_vmdks_pos(d), (long long)disklen, "observe: position at the end");
		is_int(h2k_vmdks_consumed(d), (long long)en, "observe: bytes consumed");
		h2k_vmdks_free(d);
		malformed(es, en, &l);
		uncounted(es, en, &l, "ESXi stream");

		/* the bound of a stream saved as it comes */
		d = h2k_vmdks_new(NULL, NULL);
		is_int(h2k_vmdks_most(d), -1, "most: not known before the header");
		h2k_vmdks_feed(d, es, 512);
		long long most = h2k_vmdks_most(d), grains = ((long long)disklen + G - 1) / G;
		ok(most >= (long long)en + (1 << 20) && most < (long long)disklen * 6 / 5 +
		    (long long)rd64(es + 64) * 512 + (1 << 20) + 8192,
		    "most: the header's bound holds the stream and its padding (%lld)", most);
		ok(most >= grains * 147 * 512, "most: every grain at 147 sectors");
		is_int(h2k_vmdks_eos(d), -1, "eos: not yet");
		h2k_vmdks_feed(d, es + 512, l.end - 512);
		is_int(h2k_vmdks_eos(d), (long long)l.end, "eos: just past the end marker");
		is_int(h2k_vmdks_most(d), (long long)l.end + (1 << 20),
		    "most: then 1 MiB of padding after it");
		ok(h2k_vmdk_stream_most((long long)disklen) >= most,
		    "most: from the capacity alone, at least the header's");
		is_int(h2k_vmdk_stream_most(1 << 20), 35830784LL,
		    "most: 1 MiB, overhead unknown: 32 MiB + 16 * (147 + 2) sectors + 11 + 3 sectors + 1 MiB");
		is_int(h2k_vmdk_stream_most(0), h2k_vmdk_stream_most(64LL << 40),
		    "most: no capacity: that of 64 TiB");
		h2k_vmdks_reset(d);
		h2k_vmdks_feed(d, disk, 4096);
		is_int(h2k_vmdks_most(d), -1, "most: none for plain bytes");
		h2k_vmdks_free(d);
	}

	if (have_qemu) {
		/* what qemu-img itself writes (tables up front, no end marker) */
		size_t qn;
		sh("qemu-img convert -f raw -O vmdk -o subformat=streamOptimized %s %s",
		    path("disk.raw"), path("q.vmdk"));
		unsigned char *qs = slurp(path("q.vmdk"), &qn);
		ok(qs != NULL, "qemu-img made a streamOptimized VMDK");
		if (qs) {
			struct layout l;
			roundtrip("qemu-img stream", qs, qn, path("disk.raw"), disk, disklen);
			walk(qs, qn, &l);
			malformed(qs, qn, &l);
			uncounted(qs, qn, &l, "qemu-img stream");
			/* no end marker here: a cut between grains shows
			 * against the grain tables up front */
			size_t last = l.grains[l.ngrains - 1];
			char why[80];
			snprintf(why, sizeof why, "ends after %d of the %d grains", l.ngrains - 1,
			    l.ngrains);
			bad(qs, last, (long long)last, why, "qemu-img stream cut between grains");
			bad(qs, l.grains[1], (long long)l.grains[1], "ends after 1 of the",
			    "qemu-img stream cut after its first grain");
			free(qs);
		}
	} else
		skip(1, "no qemu-img");

	{
		/* the image's write errors are the sink's: H2K_EX_IO */
		struct h2k_diskout *o = h2k_diskout_new(-1, H2K_FMT_RAW, "closed.raw");
		struct h2k_vmdks *d = h2k_vmdks_new(h2k_diskout_put, o);
		int rc = h2k_vmdks_feed(d, disk, G);
		ok(rc < 0 && h2k_errcode() == H2K_EX_IO && strstr(h2k_errmsg(), "closed.raw: write"),
		    "a write error fails with exit 8 naming the file");
		ok(h2k_vmdks_feed(d, disk, 1) < 0 && h2k_errcode() == H2K_EX_IO,
		    "and keeps failing");
		h2k_vmdks_free(d);
		h2k_diskout_free(o);
	}

	direct_tests();

	free(disk);
	free(es);
	if (!getenv("H2K_TEST_KEEP"))
		sh("rm -rf '%s'", dir);
	return tap_done();
}
