/*
 * backoff.h - retry delays: capped exponential backoff with full jitter,
 * and the server's Retry-After.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * Full jitter (the AWS architecture blog's name): the n-th retry (n from 0)
 * sleeps a uniformly random time in [0, min(cap, base * 2^n)].  Many
 * clients cut by the same outage then spread out instead of hammering the
 * server in lockstep, and the expected wait still grows exponentially.
 * A Retry-After from the server is a floor, not a suggestion to ignore:
 * the delay is max(jitter, retry_after), and retry_after itself is capped
 * so a hostile "Retry-After: 999999999" cannot park us for years.
 */
#ifndef H2K_BACKOFF_H
#define H2K_BACKOFF_H

#include <stdint.h>
#include <time.h>

struct h2k_backoff {
	double base;      /* seconds, first ceiling (> 0) */
	double cap;       /* seconds, largest ceiling and largest delay */
	unsigned attempt; /* retries done so far */
	uint64_t rng;     /* private generator state; never 0 */
};

/* base/cap in seconds; the generator is seeded from getrandom(2). */
void h2k_backoff_init(struct h2k_backoff *b, double base, double cap);
/* The ceiling of the next delay: min(cap, base * 2^attempt). */
double h2k_backoff_ceiling(const struct h2k_backoff *b);
/*
 * The next delay in seconds, in [0, ceiling]; retry_after >= 0 raises it to
 * at least min(retry_after, cap_retry_after) (pass -1 when the server sent
 * none).  Advances attempt.
 */
double h2k_backoff_next(struct h2k_backoff *b, double retry_after,
    double cap_retry_after);
void h2k_backoff_reset(struct h2k_backoff *b);

/*
 * A Retry-After header value: delta-seconds ("120") or an HTTP-date in any
 * of the three forms of RFC 9110 (IMF-fixdate, RFC 850, asctime), relative
 * to now.  Returns seconds in [0, cap] (a date in the past is 0, a huge
 * number is cap), or -1 when the value is malformed.  Surrounding spaces
 * and tabs are allowed, nothing else.
 */
double h2k_retry_after(const char *value, time_t now, double cap);

#endif
