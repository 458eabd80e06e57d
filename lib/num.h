/*
 * num.h - the one parser for numbers given by a user: options, environment
 * variables.  In the manner of OpenBSD's strtonum(3): the whole string or
 * nothing, bounds checked, one error naming the option and the value.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * Accepted: decimal digits with an optional leading '-' (no '+', no
 * whitespace, no hex or octal, no exponent); durations may have a
 * fraction ("0.5" stays 0.5); sizes may end in K, M, G, T or KiB, MiB,
 * GiB, TiB (all powers of 1024; sizes are never negative).  NaN and infinities are not numbers.
 * On failure: -1 and h2k_seterr(H2K_EX_USAGE, "WHAT: VALUE: why"), *out
 * untouched.  WHAT names the thing: "--timeout", "H2K_LS_JOBS".
 */
#ifndef H2K_NUM_H
#define H2K_NUM_H

/* As lo of h2k_parse_secs: any duration above 0 (0 itself refused). */
#define H2K_NUM_ABOVE0 (-1.0)

/* A whole number from lo to hi. */
int h2k_parse_int(const char *what, const char *s, long long lo, long long hi,
    long long *out);
/* A byte count from lo to hi, with an optional unit. */
int h2k_parse_bytes(const char *what, const char *s, long long lo,
    long long hi, long long *out);
/* Seconds from lo to hi (lo may be H2K_NUM_ABOVE0), fraction allowed. */
int h2k_parse_secs(const char *what, const char *s, double lo, double hi,
    double *out);

#endif
