/*
 * fuzz-crange.c - libFuzzer harness for the Content-Range parser the
 * resume rule trusts to decide whether bytes on disk may be kept.
 * needs: lib/crange.c
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * Checks crange.h's promises on everything accepted: FIRST <= LAST,
 * LAST < COMPLETE when known, values below 10^18; and that the parse
 * agrees with an independent reference parser (sscanf-free, below) on
 * every input, so a lenient shortcut in either shows up as a finding.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "crange.h"

/* Digits only, 1..18 of them. */
static int
num(const char **p, const char *e, uint64_t *v)
{
	const char *s = *p;

	*v = 0;
	while (*p < e && isdigit((unsigned char)**p) && *p - s < 19)
		*v = *v * 10 + (uint64_t)(*(*p)++ - '0');
	return *p > s && *p - s <= 18 && !(*p < e && isdigit((unsigned char)**p));
}

/* The reference reading of RFC 9110 14.4 with crange.h's strictness. */
static int
ref_parse(const char *s, size_t len, struct h2k_crange *cr)
{
	const char *p = s, *e = s + len;

	memset(cr, 0, sizeof *cr);
	while (p < e && (*p == ' ' || *p == '\t'))
		p++;
	while (e > p && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
		e--;
	if (e - p < 6 || strncasecmp(p, "bytes", 5) || p[5] != ' ')
		return -1;
	p += 6;
	if (p < e && *p == '*') {
		p++;
	} else {
		if (!num(&p, e, &cr->first) || p >= e || *p++ != '-' ||
		    !num(&p, e, &cr->last) || cr->first > cr->last)
			return -1;
		cr->has_range = 1;
	}
	if (p >= e || *p++ != '/')
		return -1;
	if (p < e && *p == '*' && p + 1 == e) {
		if (!cr->has_range)
			return -1;
		return 0;
	}
	if (!num(&p, e, &cr->total) || p != e)
		return -1;
	cr->has_total = 1;
	if (cr->has_range && (cr->first > cr->last || cr->last >= cr->total))
		return -1;
	return 0;
}

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct h2k_crange a, b;
	int ra, rb;

	memset(&a, 0x5a, sizeof a);
	ra = h2k_crange_parse((const char *)data, size, &a);
	rb = ref_parse((const char *)data, size, &b);
	if (ra == 0) {
		if (a.has_range && a.first > a.last)
			abort();
		if (a.has_range && a.has_total && a.last >= a.total)
			abort();
		if (a.first >= 1000000000000000000ULL || a.last >= 1000000000000000000ULL ||
		    a.total >= 1000000000000000000ULL)
			abort();
		if (!a.has_range && !a.has_total)
			abort(); /* a star for both parts is not a Content-Range */
	}
	if ((ra == 0) != (rb == 0) ||
	    (ra == 0 && (a.has_range != b.has_range || a.has_total != b.has_total ||
	    (a.has_range && (a.first != b.first || a.last != b.last)) ||
	    (a.has_total && a.total != b.total)))) {
		fprintf(stderr, "fuzz-crange: h2k says %d, reference says %d for \"%.*s\"\n",
		    ra, rb, (int)(size > 80 ? 80 : size), (const char *)data);
		abort();
	}
	return 0;
}
