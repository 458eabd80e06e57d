/*
 * backoff.c - capped exponential backoff with full jitter; Retry-After.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 */
#include <ctype.h>
#include <math.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "backoff.h"

/* splitmix64: tiny, good enough to spread retries; not for secrets. */
static uint64_t
next64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void
h2k_backoff_init(struct h2k_backoff *b, double base, double cap)
{
	uint64_t seed = 0;

	b->base = base > 0 ? base : 0.001;
	b->cap = cap >= b->base ? cap : b->base;
	b->attempt = 0;
	if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed)
		seed = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)b;
	b->rng = seed ? seed : 1;
}

void
h2k_backoff_reset(struct h2k_backoff *b)
{
	b->attempt = 0;
}

double
h2k_backoff_ceiling(const struct h2k_backoff *b)
{
	/* 2^attempt overflows nothing as a double, but stop early anyway. */
	if (b->attempt >= 62)
		return b->cap;
	double c = b->base * ldexp(1.0, (int)b->attempt);
	return c < b->cap ? c : b->cap;
}

double
h2k_backoff_next(struct h2k_backoff *b, double retry_after,
    double cap_retry_after)
{
	double ceil = h2k_backoff_ceiling(b);
	/* 53 random bits -> uniform in [0, 1]. */
	double u = (double)(next64(&b->rng) >> 11) / (double)((1ULL << 53) - 1);
	double d = u * ceil;

	if (b->attempt < 1000)
		b->attempt++;
	if (retry_after >= 0) {
		if (retry_after > cap_retry_after)
			retry_after = cap_retry_after;
		if (d < retry_after)
			d = retry_after;
	}
	return d;
}

/* --- Retry-After --------------------------------------------------------- */

static const char *const wkday[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
static const char *const weekday[] = { "Sunday", "Monday", "Tuesday",
	"Wednesday", "Thursday", "Friday", "Saturday" };
static const char *const month[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
	"Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

/* Exactly n digits (or 1..n when lax) -> *v; returns chars used or 0. */
static int
digits(const char *s, int n, int lax, int *v)
{
	int i = 0, x = 0;

	while (i < n && isdigit((unsigned char)s[i])) {
		x = x * 10 + (s[i] - '0');
		i++;
	}
	if (i == 0 || (!lax && i != n))
		return 0;
	*v = x;
	return i;
}

static int
name_index(const char *s, const char *const *names, int count, size_t *used)
{
	for (int i = 0; i < count; i++) {
		size_t l = strlen(names[i]);
		if (strncmp(s, names[i], l) == 0) {
			*used = l;
			return i;
		}
	}
	return -1;
}

/* "HH:MM:SS" */
static int
hms(const char *s, struct tm *tm)
{
	if (!digits(s, 2, 0, &tm->tm_hour) || s[2] != ':' ||
	    !digits(s + 3, 2, 0, &tm->tm_min) || s[5] != ':' ||
	    !digits(s + 6, 2, 0, &tm->tm_sec))
		return 0;
	if (tm->tm_hour > 23 || tm->tm_min > 59 || tm->tm_sec > 60)
		return 0;
	return 8;
}

/*
 * IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT", RFC 850
 * "Sunday, 06-Nov-94 08:49:37 GMT", asctime "Sun Nov  6 08:49:37 1994".
 * Returns 0 and *t on success.
 */
static int
http_date(const char *s, time_t *t)
{
	struct tm tm;
	size_t u;
	int n, wd;

	memset(&tm, 0, sizeof tm);
	if ((wd = name_index(s, weekday, 7, &u)) >= 0 && s[u] == ',') {
		/* RFC 850: two-digit year, interpreted per RFC 9110 7.1.1.1 */
		s += u + 1;
		if (*s++ != ' ' || !(n = digits(s, 2, 0, &tm.tm_mday)) || s[2] != '-')
			return -1;
		s += 3;
		if ((tm.tm_mon = name_index(s, month, 12, &u)) < 0 || s[3] != '-')
			return -1;
		s += 4;
		if (!digits(s, 2, 0, &tm.tm_year) || s[2] != ' ')
			return -1;
		/* "more than 50 years in the future" means the past century */
		tm.tm_year += tm.tm_year < 70 ? 100 : 0;
		s += 3;
		if (!(n = hms(s, &tm)) || strcmp(s + n, " GMT") != 0)
			return -1;
	} else if ((wd = name_index(s, wkday, 7, &u)) >= 0 && s[u] == ',') {
		s += u + 1;
		if (*s++ != ' ' || !digits(s, 2, 0, &tm.tm_mday) || s[2] != ' ')
			return -1;
		s += 3;
		if ((tm.tm_mon = name_index(s, month, 12, &u)) < 0 || s[3] != ' ')
			return -1;
		s += 4;
		if (!digits(s, 4, 0, &tm.tm_year) || s[4] != ' ')
			return -1;
		tm.tm_year -= 1900;
		s += 5;
		if (!(n = hms(s, &tm)) || strcmp(s + n, " GMT") != 0)
			return -1;
	} else if (wd >= 0 && s[u] == ' ') {
		s += u + 1;
		if ((tm.tm_mon = name_index(s, month, 12, &u)) < 0 || s[3] != ' ')
			return -1;
		s += 4;
		/* day is "DD" or " D" */
		if (s[0] == ' ') {
			if (!digits(s + 1, 1, 0, &tm.tm_mday))
				return -1;
		} else if (!digits(s, 2, 0, &tm.tm_mday))
			return -1;
		s += 2;
		if (*s++ != ' ' || !(n = hms(s, &tm)) || s[n] != ' ')
			return -1;
		s += n + 1;
		if (!digits(s, 4, 0, &tm.tm_year) || s[4] != '\0')
			return -1;
		tm.tm_year -= 1900;
	} else
		return -1;
	if (tm.tm_mday < 1 || tm.tm_mday > 31)
		return -1;
	time_t r = timegm(&tm);
	if (r == (time_t)-1)
		return -1;
	*t = r;
	return 0;
}

double
h2k_retry_after(const char *value, time_t now, double cap)
{
	char buf[64];
	size_t n;

	if (!value)
		return -1;
	while (*value == ' ' || *value == '\t')
		value++;
	n = strlen(value);
	while (n > 0 && (value[n - 1] == ' ' || value[n - 1] == '\t' ||
	    value[n - 1] == '\r' || value[n - 1] == '\n'))
		n--;
	if (n == 0 || n >= sizeof buf)
		return -1;
	memcpy(buf, value, n);
	buf[n] = '\0';
	if (isdigit((unsigned char)buf[0])) {
		double secs = 0;
		for (size_t i = 0; i < n; i++) {
			if (!isdigit((unsigned char)buf[i]))
				return -1;
			/* saturate instead of overflowing: it is capped below */
			if (secs < 1e15)
				secs = secs * 10 + (buf[i] - '0');
		}
		return secs < cap ? secs : cap;
	}
	time_t t;
	if (http_date(buf, &t) < 0)
		return -1;
	if (t <= now)
		return 0;
	double d = difftime(t, now);
	return d < cap ? d : cap;
}
