/*
 * tap.h - minimal TAP producer for the unit tests of lib/.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 */
#ifndef H2K_TAP_H
#define H2K_TAP_H
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_n, tap_fail;

#define ok(cond, ...) do { \
	int ok_c_ = !!(cond); \
	printf("%sok %d - ", ok_c_ ? "" : "not ", ++tap_n); \
	printf(__VA_ARGS__); \
	printf("\n"); \
	if (!ok_c_) { tap_fail++; printf("#   failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); } \
} while (0)

#define is_str(got, want, ...) do { \
	const char *g_ = (got), *w_ = (want); \
	int e_ = (g_ && w_) ? strcmp(g_, w_) == 0 : g_ == w_; \
	ok(e_, __VA_ARGS__); \
	if (!e_) printf("#   got: '%s'\n#   want: '%s'\n", g_ ? g_ : "(null)", w_ ? w_ : "(null)"); \
} while (0)

#define is_int(got, want, ...) do { \
	long long g_ = (long long)(got), w_ = (long long)(want); \
	ok(g_ == w_, __VA_ARGS__); \
	if (g_ != w_) printf("#   got: %lld\n#   want: %lld\n", g_, w_); \
} while (0)

/*
 * skip(n, reason...): n tests that cannot run here, as TAP directives
 * ("ok N # skip reason") so run-suite counts them apart from passes.
 */
#define skip(n, ...) do { \
	for (int sk_i_ = 0; sk_i_ < (n); sk_i_++) { \
		printf("ok %d # skip ", ++tap_n); \
		printf(__VA_ARGS__); \
		printf("\n"); \
	} \
} while (0)

/* Run a shell command made like printf: the tests' way to the oracles
 * (qemu-img) and to fixtures; system(3)'s status. */
static inline int sh(const char *fmt, ...) {
	char cmd[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	return system(cmd);
}

static inline int tap_done(void) {
	printf("1..%d\n", tap_n);
	return tap_fail ? 1 : 0;
}
#endif
