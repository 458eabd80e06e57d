/*
 * failmalloc.c - allocation-failure injection in the style of curl's
 * torture tests, linked into the sweep driver.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * The executable defines malloc, calloc, realloc, free, strdup, strndup,
 * reallocarray, posix_memalign and aligned_alloc.  Symbols of the
 * executable come first in the dynamic linker's lookup order, so every
 * allocation of the process goes through here: ours, libc's own (fopen,
 * getline, vasprintf), libxml2's, libyaml's and cJSON's.  Each forwards to
 * the real allocator: ASan's interceptors when built with
 * -fsanitize=address (they are exported as __interceptor_NAME, the plain
 * names being weak aliases we override), glibc's __libc_NAME otherwise.
 *
 * Inside a window opened by fm_arm(k), allocations are numbered from 1 and
 * number k fails with ENOMEM.  Every pointer handed out in the window is
 * kept in an open-addressing table (no allocation of our own) and dropped
 * when freed, so what is left after the operation cleaned up is a leak,
 * even a leak still reachable from a global that LeakSanitizer would miss.
 * Not thread-safe: the driver is single-threaded.
 */
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "failmalloc.h"

#if defined(__SANITIZE_ADDRESS__)
#define FM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FM_ASAN 1
#endif
#endif

#ifdef FM_ASAN
#define REAL(f) __interceptor_##f
#else
#define REAL(f) __libc_##f
#endif

void *REAL(malloc)(size_t);
void *REAL(calloc)(size_t, size_t);
void *REAL(realloc)(void *, size_t);
void REAL(free)(void *);
#ifdef FM_ASAN
int REAL(posix_memalign)(void **, size_t, size_t);
void *REAL(aligned_alloc)(size_t, size_t);
#else
void *__libc_memalign(size_t, size_t);
#endif

#define NSLOT (1u << 17)
#define TOMB ((void *)1)

static struct slot {
	void *p;
	size_t size;
	long idx;
	void *site;  /* return address of the allocating call */
} slots[NSLOT];
static unsigned long nlive, nused;
static int armed, injected, overflow;
static long count, fail_at, trace_at;

static size_t
hash(const void *p)
{
	uintptr_t x = (uintptr_t)p;

	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return (size_t)x & (NSLOT - 1);
}

static void
track_add(void *p, size_t size, long idx, void *site)
{
	size_t i;

	if (nused >= NSLOT / 4 * 3) {
		overflow = 1;
		return;
	}
	for (i = hash(p); slots[i].p && slots[i].p != TOMB; i = (i + 1) & (NSLOT - 1))
		;
	if (!slots[i].p)
		nused++;
	slots[i] = (struct slot){p, size, idx, site};
	nlive++;
}

/* 1 if p was tracked (and now is not). */
static int
track_del(void *p)
{
	size_t i;

	if (!p || !nlive)
		return 0;
	for (i = hash(p); slots[i].p; i = (i + 1) & (NSLOT - 1))
		if (slots[i].p == p) {
			slots[i].p = TOMB;
			nlive--;
			return 1;
		}
	return 0;
}

static void
trace(void)
{
	void *bt[64];
	int n = backtrace(bt, 64);
	static const char hdr[] = "failmalloc: backtrace of the traced allocation:\n";

	(void)!write(2, hdr, sizeof hdr - 1);
	backtrace_symbols_fd(bt, n, 2);
}

/* Decide the fate of one allocation: 1 means fail it. */
static int
should_fail(void)
{
	if (!armed)
		return 0;
	count++;
	if (count == trace_at)
		trace();
	if (count == fail_at) {
		injected = 1;
		return 1;
	}
	return 0;
}

static void *
got(void *p, size_t size, void *site)
{
	if (p && armed)
		track_add(p, size, count, site);
	return p;
}
#define SITE __builtin_return_address(0)

void *
malloc(size_t n)
{
	if (should_fail()) {
		errno = ENOMEM;
		return NULL;
	}
	return got(REAL(malloc)(n), n, SITE);
}

void *
calloc(size_t n, size_t m)
{
	if (should_fail()) {
		errno = ENOMEM;
		return NULL;
	}
	return got(REAL(calloc)(n, m), n * m, SITE);
}

void *
realloc(void *p, size_t n)
{
	void *q;
	int was;

	if (should_fail()) {
		errno = ENOMEM;
		return NULL;
	}
	q = REAL(realloc)(p, n);
	if (!q)
		return NULL;
	/*
	 * A block allocated before the window and grown inside it is not the
	 * window's to free; one allocated inside it still is, at its new address.
	 */
	was = track_del(p);
	if (was || (armed && !p))
		track_add(q, n, count, SITE);
	return q;
}

void *
reallocarray(void *p, size_t n, size_t m)
{
	if (m && n > SIZE_MAX / m) {
		errno = ENOMEM;
		return NULL;
	}
	return realloc(p, n * m);
}

void
free(void *p)
{
	track_del(p);
	REAL(free)(p);
}

char *
strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p;

	if (should_fail()) {
		errno = ENOMEM;
		return NULL;
	}
	if ((p = got(REAL(malloc)(n), n, SITE)))
		memcpy(p, s, n);
	return p;
}

char *
strndup(const char *s, size_t max)
{
	size_t n = strnlen(s, max);
	char *p;

	if (should_fail()) {
		errno = ENOMEM;
		return NULL;
	}
	if ((p = got(REAL(malloc)(n + 1), n + 1, SITE))) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

int
posix_memalign(void **out, size_t align, size_t n)
{
	void *p;

	if (should_fail())
		return ENOMEM;
#ifdef FM_ASAN
	int rc = REAL(posix_memalign)(&p, align, n);
	if (rc)
		return rc;
#else
	if (!(p = __libc_memalign(align, n)))
		return ENOMEM;
#endif
	*out = got(p, n, SITE);
	return 0;
}

void *
aligned_alloc(size_t align, size_t n)
{
	if (should_fail()) {
		errno = ENOMEM;
		return NULL;
	}
#ifdef FM_ASAN
	return got(REAL(aligned_alloc)(align, n), n, SITE);
#else
	return got(__libc_memalign(align, n), n, SITE);
#endif
}

void
fm_arm(long k)
{
	count = 0;
	fail_at = k;
	injected = 0;
	armed = 1;
}

long
fm_disarm(void)
{
	armed = 0;
	return count;
}

int
fm_injected(void)
{
	return injected;
}

/* Short name of the object holding address a ("libxml2.so.2", "sweep"). */
static const char *
site_object(void *a)
{
	Dl_info di;
	const char *s;

	if (!a || !dladdr(a, &di) || !di.dli_fname)
		return "?";
	s = strrchr(di.dli_fname, '/');
	return s ? s + 1 : di.dli_fname;
}

long
fm_leaks(char *buf, size_t bufsz, const char *exempt, long *nexempt)
{
	size_t off = 0;
	int shown = 0;
	long n = 0, nx = 0;

	if (bufsz)
		buf[0] = '\0';
	if (overflow)
		snprintf(buf, bufsz, "tracking table overflowed; ");
	off = strlen(buf);
	for (size_t i = 0; i < NSLOT; i++) {
		if (!slots[i].p || slots[i].p == TOMB)
			continue;
		const char *obj = site_object(slots[i].site);
		if (exempt && !strncmp(obj, exempt, strlen(exempt))) {
			nx++;
			continue;
		}
		n++;
		if (shown >= 5)
			continue;
		int w = snprintf(buf + off, bufsz - off, "%s#%ld (%zu bytes, from %s)",
		    shown ? ", " : "", slots[i].idx, slots[i].size, obj);
		if (w < 0 || (size_t)w >= bufsz - off)
			continue;
		off += (size_t)w;
		shown++;
	}
	if (nexempt)
		*nexempt = nx;
	return n + (overflow ? 1 : 0);
}

void
fm_reset(void)
{
	memset(slots, 0, sizeof slots);
	nlive = nused = 0;
	overflow = 0;
}

void
fm_trace_at(long n)
{
	void *bt[4];

	/* backtrace() loads libgcc_s on first use; do that outside a window. */
	backtrace(bt, 4);
	trace_at = n;
}
