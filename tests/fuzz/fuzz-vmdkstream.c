/*
 * fuzz-vmdkstream.c - libFuzzer harness for the streamOptimized VMDK
 * decoder h2k-fetch --format runs on bytes straight from the server.
 * needs: lib/vmdkstream.c lib/diskout.c
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * The first byte picks the chunk sizes the input is fed in; the rest is
 * the stream, decoded twice (once in chunks, once whole, once more only
 * observed).  Checked on everything: the grains come at increasing,
 * grain-aligned offsets inside the capacity and never longer than a
 * grain; the chunked and the whole decoding agree (same grains' digest,
 * same verdict, same message); the position never passes the capacity;
 * an error is exit 9 naming an offset no greater than the bytes fed.
 * Seeds: tests/fuzz/corpus/vmdkstream, made by qemu-img and by
 * tests/servers/mkstream.py with --overhead 2 (see there).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h2k.h"
#include "vmdkstream.h"

struct seen {
	long long last, grains;
	uint64_t sum;
	struct h2k_vmdks *d;
};

static int
sink(void *arg, long long off, const unsigned char *buf, size_t len)
{
	struct seen *s = arg;
	long long cap = h2k_vmdks_capacity(s->d);

	if (off <= s->last || len == 0 || len > H2K_VMDK_GRAIN || off % H2K_VMDK_GRAIN)
		abort();
	if (h2k_vmdks_is_vmdk(s->d) == 1 && off + (long long)len > cap)
		abort();
	s->last = off;
	s->grains++;
	for (size_t i = 0; i < len; i += 997)
		s->sum = s->sum * 31 + buf[i] + (uint64_t)off;
	return 0;
}

static int
run(const unsigned char *p, size_t n, size_t chunk, struct seen *s, char *msg, size_t ml)
{
	struct h2k_vmdks *d = h2k_vmdks_new(sink, s);
	size_t off = 0;
	int rc = 0;

	if (!d)
		abort();
	memset(s, 0, sizeof *s);
	s->last = -1;
	s->d = d;
	while (off < n && rc == 0) {
		size_t c = chunk && chunk < n - off ? chunk : n - off;
		rc = h2k_vmdks_feed(d, p + off, c);
		off += c;
		if (h2k_vmdks_capacity(d) >= 0 && h2k_vmdks_is_vmdk(d) == 1 &&
		    h2k_vmdks_pos(d) > h2k_vmdks_capacity(d))
			abort();
	}
	if (rc == 0)
		rc = h2k_vmdks_finish(d);
	msg[0] = '\0';
	if (rc < 0) {
		long long at;
		if (h2k_errcode() != H2K_EX_NET || sscanf(h2k_errmsg(), "offset %lld:", &at) != 1 ||
		    at < 0 || at > (long long)n)
			abort();
		snprintf(msg, ml, "%s", h2k_errmsg());
	}
	h2k_vmdks_free(d);
	return rc;
}

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	static const size_t chunks[] = { 1, 3, 12, 511, 512, 4096 };
	struct seen a, b;
	char ma[300], mb[300];

	if (size < 1)
		return 0;
	size_t chunk = chunks[data[0] % 6];
	data++;
	size--;
	int ra = run(data, size, chunk, &a, ma, sizeof ma);
	int rb = run(data, size, 0, &b, mb, sizeof mb);
	if (ra != rb || a.grains != b.grains || a.sum != b.sum || strcmp(ma, mb) != 0) {
		fprintf(stderr, "fuzz-vmdkstream: chunks of %zu: %d '%s' vs whole: %d '%s'\n",
		    chunk, ra, ma, rb, mb);
		abort();
	}
	/* observing only follows the same markers to the same verdict on
	 * the structure (it inflates nothing, so inflate errors differ) */
	struct h2k_vmdks *o = h2k_vmdks_new(NULL, NULL);
	if (!o)
		abort();
	if (h2k_vmdks_feed(o, data, size) == 0 && h2k_vmdks_finish(o) == 0 && ra == 0 &&
	    h2k_vmdks_pos(o) != h2k_vmdks_capacity(o) && h2k_vmdks_is_vmdk(o) == 1)
		abort();
	h2k_vmdks_free(o);
	return 0;
}
