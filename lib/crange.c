/*
 * crange.c - Content-Range parser (see crange.h for the grammar).
 * SPDX-License-Identifier: LGPL-3.0-or-later
 */
#include <string.h>
#include <strings.h>

#include "crange.h"

#define MAXDIGITS 18  /* 10^18 - 1 < INT64_MAX: no overflow, fits off_t */

static int
num(const char **p, const char *end, uint64_t *v)
{
	const char *s = *p;
	uint64_t x = 0;
	int n = 0;

	while (s < end && *s >= '0' && *s <= '9') {
		if (++n > MAXDIGITS)
			return -1;
		x = x * 10 + (uint64_t)(*s - '0');
		s++;
	}
	if (n == 0)
		return -1;
	*p = s;
	*v = x;
	return 0;
}

int
h2k_crange_parse(const char *s, size_t len, struct h2k_crange *cr)
{
	const char *end = s + len;

	memset(cr, 0, sizeof *cr);
	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' ||
	    end[-1] == '\r' || end[-1] == '\n'))
		end--;
	if (end - s < 6 || strncasecmp(s, "bytes", 5) != 0 || s[5] != ' ')
		return -1;
	s += 6;
	if (s < end && *s == '*') {
		s++;
	} else {
		if (num(&s, end, &cr->first) < 0 || s >= end || *s++ != '-' ||
		    num(&s, end, &cr->last) < 0 || cr->first > cr->last)
			return -1;
		cr->has_range = 1;
	}
	if (s >= end || *s++ != '/')
		return -1;
	if (s < end && *s == '*') {
		s++;
		if (!cr->has_range)
			return -1;  /* star for both says nothing */
	} else {
		if (num(&s, end, &cr->total) < 0)
			return -1;
		cr->has_total = 1;
		if (cr->has_range && cr->last >= cr->total)
			return -1;
	}
	return s == end ? 0 : -1;
}
