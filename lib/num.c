/*
 * num.c - the one number parser (num.h).
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * The syntax is checked by hand before strtoll/strtod convert: both take
 * leading whitespace, a '+', hex ("0x10", and hex floats), "inf", "nan"
 * and exponents, none of which a user means in an option.  The value is
 * shown cut to 40 bytes; h2k_seterr escapes it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "h2k.h"
#include "num.h"

#define SHOW "%.40s"

/* Length of "-?[0-9]+" at s (with frac: "-?[0-9]+(\.[0-9]+)?"), 0 if none. */
static size_t
digits(const char *s, int frac)
{
	size_t i = s[0] == '-', d = i;

	while (s[i] >= '0' && s[i] <= '9')
		i++;
	if (i == d)
		return 0;
	if (frac && s[i] == '.') {
		size_t f = ++i;
		while (s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == f)
			return 0;
	}
	return i;
}

static int
range_err(const char *what, const char *s, int small, long long lo,
    long long hi)
{
	return h2k_seterr(H2K_EX_USAGE, "%s: " SHOW ": too %s, want %lld to %lld",
	    what, s, small ? "small" : "large", lo, hi);
}

static int
whole(const char *what, const char *s, size_t n, long long lo, long long hi,
    long long *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if ((size_t)(end - s) != n)
		return h2k_seterr(H2K_EX_USAGE, "%s: " SHOW ": not a number",
		    what, s);
	if (errno == ERANGE || v < lo || v > hi)
		return range_err(what, s, errno == ERANGE ? s[0] == '-' :
		    v < lo, lo, hi);
	*out = v;
	return 0;
}

int
h2k_parse_int(const char *what, const char *s, long long lo, long long hi,
    long long *out)
{
	size_t n = digits(s, 0);

	if (!n || s[n])
		return h2k_seterr(H2K_EX_USAGE, "%s: " SHOW ": not a number",
		    what, s);
	return whole(what, s, n, lo, hi, out);
}

int
h2k_parse_bytes(const char *what, const char *s, long long lo, long long hi,
    long long *out)
{
	static const struct { const char *u; int shift; } units[] = {
		{"", 0}, {"K", 10}, {"KiB", 10}, {"M", 20}, {"MiB", 20},
		{"G", 30}, {"GiB", 30}, {"T", 40}, {"TiB", 40},
	};
	size_t n = digits(s, 0);
	long long v;
	int shift = -1;

	for (size_t i = 0; n && i < sizeof units / sizeof units[0]; i++)
		if (!strcmp(s + n, units[i].u))
			shift = units[i].shift;
	if (!n || shift < 0)
		return h2k_seterr(H2K_EX_USAGE, "%s: " SHOW ": not a number of "
		    "bytes (a unit is K, M, G, T, KiB, MiB, GiB or TiB)", what, s);
	/* The digits alone first, over the widest range: the unit scales. */
	if (whole(what, s, n, -(1LL << 62), 1LL << 62, &v) < 0)
		return range_err(what, s, s[0] == '-', lo, hi);
	if (v < 0 || v > (hi >> shift) || v * (1LL << shift) < lo)
		return range_err(what, s, v <= (hi >> shift), lo, hi);
	*out = v * (1LL << shift);
	return 0;
}

static int
secs_err(const char *what, const char *s, const char *how, double lo,
    double hi)
{
	if (lo == H2K_NUM_ABOVE0)
		return h2k_seterr(H2K_EX_USAGE, "%s: " SHOW ": too %s, want "
		    "more than 0 and at most %g seconds", what, s, how, hi);
	return h2k_seterr(H2K_EX_USAGE, "%s: " SHOW ": too %s, want %g to %g "
	    "seconds", what, s, how, lo, hi);
}

int
h2k_parse_secs(const char *what, const char *s, double lo, double hi,
    double *out)
{
	size_t n = digits(s, 1);
	char *end;
	double v;

	if (!n || s[n])
		return h2k_seterr(H2K_EX_USAGE, "%s: " SHOW ": not a number of "
		    "seconds", what, s);
	v = strtod(s, &end);
	if ((size_t)(end - s) != n)   /* a locale whose radix is not '.' */
		return h2k_seterr(H2K_EX_USAGE, "%s: " SHOW ": not a number of "
		    "seconds", what, s);
	/* Overflow is HUGE_VAL, above any hi; underflow 0 or tiny: compared. */
	if (lo == H2K_NUM_ABOVE0 ? !(v > 0) : !(v >= lo))
		return secs_err(what, s, "small", lo, hi);
	if (!(v <= hi))
		return secs_err(what, s, "large", lo, hi);
	*out = v;
	return 0;
}
