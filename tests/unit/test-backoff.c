/* Unit tests for lib/backoff.c. SPDX-License-Identifier: LGPL-3.0-or-later */
#include <math.h>
#include <time.h>

#include "backoff.h"
#include "h2k.h"
#include "tap.h"

int
main(void)
{
	struct h2k_backoff b;
	time_t now = 784111777; /* Sun, 06 Nov 1994 08:49:37 GMT */

	h2k_backoff_init(&b, 0.5, 8);
	is_int((long long)(h2k_backoff_ceiling(&b) * 1000), 500, "first ceiling is base");
	/* ceilings double up to the cap and stay there */
	double want[] = { 0.5, 1, 2, 4, 8, 8, 8 };
	int inrange = 1, capped = 1;
	for (int i = 0; i < 7; i++) {
		double c = h2k_backoff_ceiling(&b);
		if (fabs(c - want[i]) > 1e-9)
			capped = 0;
		double d = h2k_backoff_next(&b, -1, 60);
		if (d < 0 || d > c)
			inrange = 0;
	}
	ok(capped, "ceiling doubles and is capped at 8 s");
	ok(inrange, "each delay lies in [0, ceiling]");

	/* full jitter: many draws spread over the whole range, mean ~ ceiling/2 */
	double lo = 1e9, hi = -1, sum = 0;
	int n = 20000;
	for (int i = 0; i < n; i++) {
		b.attempt = 4; /* ceiling 8 */
		double d = h2k_backoff_next(&b, -1, 60);
		sum += d;
		lo = d < lo ? d : lo;
		hi = d > hi ? d : hi;
	}
	ok(lo >= 0 && lo < 0.1, "jitter reaches near 0 (min %.4f)", lo);
	ok(hi <= 8 && hi > 7.9, "jitter reaches near the cap (max %.4f)", hi);
	ok(fabs(sum / n - 4) < 0.15, "jitter is uniform: mean %.3f ~ 4", sum / n);

	h2k_backoff_reset(&b);
	is_int(b.attempt, 0, "reset starts over");
	b.attempt = 5000;
	ok(h2k_backoff_ceiling(&b) == 8, "huge attempt count stays at the cap");

	/* Retry-After is a floor, capped */
	h2k_backoff_init(&b, 0.1, 1);
	ok(h2k_backoff_next(&b, 5, 30) >= 5, "Retry-After 5 raises the delay to 5");
	ok(h2k_backoff_next(&b, 500, 30) == 30, "Retry-After beyond its cap is cut to the cap");
	ok(h2k_backoff_next(&b, -1, 30) <= 1, "without Retry-After the jitter cap holds");

	/* Retry-After parsing */
	ok(h2k_retry_after("120", now, 300) == 120, "delta-seconds");
	ok(h2k_retry_after("  7\r\n", now, 300) == 7, "surrounding white space and CRLF");
	ok(h2k_retry_after("0", now, 300) == 0, "zero");
	ok(h2k_retry_after("99999999999999999999999", now, 300) == 300, "huge delta capped, no overflow");
	ok(h2k_retry_after("Sun, 06 Nov 1994 08:50:37 GMT", now, 300) == 60, "IMF-fixdate 60 s ahead");
	ok(h2k_retry_after("Sunday, 06-Nov-94 08:51:37 GMT", now, 300) == 120, "RFC 850 date");
	ok(h2k_retry_after("Sun Nov  6 08:49:47 1994", now, 300) == 10, "asctime date");
	ok(h2k_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now, 300) == 0, "date in the past is 0");
	ok(h2k_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now, 300) == 300, "far future date capped");
	ok(h2k_retry_after("-5", now, 300) == -1, "negative refused");
	ok(h2k_retry_after("5s", now, 300) == -1, "trailing garbage refused");
	ok(h2k_retry_after("1.5", now, 300) == -1, "fraction refused");
	ok(h2k_retry_after("", now, 300) == -1, "empty refused");
	ok(h2k_retry_after(NULL, now, 300) == -1, "missing refused");
	ok(h2k_retry_after("Sun, 06 Nov 1994 08:49:37 UTC", now, 300) == -1, "zone other than GMT refused");
	ok(h2k_retry_after("Sun, 32 Nov 1994 08:49:37 GMT", now, 300) == -1, "day 32 refused");
	ok(h2k_retry_after("Sun, 06 Foo 1994 08:49:37 GMT", now, 300) == -1, "bad month refused");
	ok(h2k_retry_after("Sun, 06 Nov 1994 25:49:37 GMT", now, 300) == -1, "hour 25 refused");
	ok(h2k_retry_after("tomorrow", now, 300) == -1, "words refused");
	return tap_done();
}
