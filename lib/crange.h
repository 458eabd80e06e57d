/*
 * crange.h - strict parser for the Content-Range response header.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * RFC 9110 14.4: "bytes FIRST-LAST/COMPLETE", the same with an unknown
 * length (a star for COMPLETE), and the unsatisfied-range form with a star
 * for FIRST-LAST and a known COMPLETE.  Strict because the resume rule trusts it to decide whether bytes on disk may be kept: digits only
 * (no sign, no space inside), at most 18 digits per number so every value
 * fits in int64/off_t, FIRST <= LAST, LAST < COMPLETE when COMPLETE is
 * known.  The unit is compared case-insensitively; surrounding spaces and
 * tabs (and a trailing CR LF, as libcurl hands headers over) are allowed.
 */
#ifndef H2K_CRANGE_H
#define H2K_CRANGE_H

#include <stddef.h>
#include <stdint.h>

struct h2k_crange {
	int has_range;      /* 0 for the unsatisfied form (no FIRST-LAST) */
	int has_total;      /* 0 when COMPLETE is "*" */
	uint64_t first, last, total;
};

/* Parse len bytes of s (need not be NUL-terminated). 0 ok, -1 malformed. */
int h2k_crange_parse(const char *s, size_t len, struct h2k_crange *cr);

#endif
