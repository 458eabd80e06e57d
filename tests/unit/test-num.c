/*
 * test-num - lib/num.c: the one number parser.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 */
#include <limits.h>
#include <string.h>

#include "h2k.h"
#include "num.h"
#include "tap.h"

/* A refusal: -1, exit class 2, *out untouched, the message as given. */
static void
int_bad(const char *s, long long lo, long long hi, const char *msg)
{
	long long v = 77;

	is_int(h2k_parse_int("--n", s, lo, hi, &v), -1, "int '%s' refused", s);
	is_int(h2k_errcode(), H2K_EX_USAGE, "int '%s': exit class 2", s);
	is_int(v, 77, "int '%s': out untouched", s);
	is_str(h2k_errmsg(), msg, "int '%s': message", s);
}

static void
int_good(const char *s, long long lo, long long hi, long long want)
{
	long long v = 77;

	is_int(h2k_parse_int("--n", s, lo, hi, &v), 0, "int '%s' taken", s);
	is_int(v, want, "int '%s' is %lld", s, want);
}

static void
bytes_bad(const char *s, long long lo, long long hi, const char *msg)
{
	long long v = 77;

	is_int(h2k_parse_bytes("--size", s, lo, hi, &v), -1, "bytes '%s' refused",
	    s);
	is_int(v, 77, "bytes '%s': out untouched", s);
	is_str(h2k_errmsg(), msg, "bytes '%s': message", s);
}

static void
bytes_good(const char *s, long long hi, long long want)
{
	long long v = 77;

	is_int(h2k_parse_bytes("--size", s, 0, hi, &v), 0, "bytes '%s' taken", s);
	is_int(v, want, "bytes '%s' is %lld", s, want);
}

static void
secs_bad(const char *s, double lo, double hi, const char *msg)
{
	double v = 77;

	is_int(h2k_parse_secs("--timeout", s, lo, hi, &v), -1,
	    "secs '%s' refused", s);
	is_int(h2k_errcode(), H2K_EX_USAGE, "secs '%s': exit class 2", s);
	ok(v == 77, "secs '%s': out untouched", s);
	is_str(h2k_errmsg(), msg, "secs '%s': message", s);
}

static void
secs_good(const char *s, double lo, double hi, double want)
{
	double v = 77;

	is_int(h2k_parse_secs("--timeout", s, lo, hi, &v), 0, "secs '%s' taken",
	    s);
	ok(v == want, "secs '%s' is %g (got %g)", s, want, v);
}

int
main(void)
{
	/* whole numbers */
	int_good("1", 1, 64, 1);
	int_good("64", 1, 64, 64);
	int_good("007", 0, 10, 7);
	int_good("-5", -10, 10, -5);
	int_good("9223372036854775807", 0, LLONG_MAX, LLONG_MAX);
	int_good("-9223372036854775808", LLONG_MIN, 0, LLONG_MIN);
	int_bad("0", 1, 64, "--n: 0: too small, want 1 to 64");
	int_bad("65", 1, 64, "--n: 65: too large, want 1 to 64");
	int_bad("-1", 0, 1000, "--n: -1: too small, want 0 to 1000");
	int_bad("", 0, 10, "--n: : not a number");
	int_bad("-", 0, 10, "--n: -: not a number");
	int_bad("3x", 0, 10, "--n: 3x: not a number");
	int_bad("3 ", 0, 10, "--n: 3 : not a number");
	int_bad(" 3", 0, 10, "--n:  3: not a number");
	int_bad("+3", 0, 10, "--n: +3: not a number");
	int_bad("0x10", 0, 100, "--n: 0x10: not a number");
	int_bad("1.5", 0, 10, "--n: 1.5: not a number");
	int_bad("1e3", 0, 10000, "--n: 1e3: not a number");
	int_bad("nan", 0, 10, "--n: nan: not a number");
	int_bad("9223372036854775808", 0, LLONG_MAX,
	    "--n: 9223372036854775808: too large, want 0 to 9223372036854775807");
	int_bad("99999999999999999999999", 0, 10,
	    "--n: 99999999999999999999999: too large, want 0 to 10");
	int_bad("-99999999999999999999999", 0, 10,
	    "--n: -99999999999999999999999: too small, want 0 to 10");
	/* a value too long to show is cut, not echoed whole */
	{
		char big[200];
		long long v;
		memset(big, '7', sizeof big - 1);
		big[sizeof big - 1] = '\0';
		h2k_parse_int("--n", big, 0, 10, &v);
		ok(strlen(h2k_errmsg()) < 100, "a long value is cut in the "
		    "message (%zu bytes)", strlen(h2k_errmsg()));
	}

	/* byte counts and their units */
	bytes_good("0", 100, 0);
	bytes_good("1024", 1LL << 40, 1024);
	bytes_good("1K", 1LL << 40, 1024);
	bytes_good("1KiB", 1LL << 40, 1024);
	bytes_good("3M", 1LL << 40, 3LL << 20);
	bytes_good("3MiB", 1LL << 40, 3LL << 20);
	bytes_good("2G", 1LL << 40, 2LL << 30);
	bytes_good("2GiB", 1LL << 40, 2LL << 30);
	bytes_good("1T", 1LL << 40, 1LL << 40);
	bytes_good("1TiB", 1LL << 40, 1LL << 40);
	bytes_bad("2T", 1, 1LL << 40,
	    "--size: 2T: too large, want 1 to 1099511627776");
	bytes_bad("0K", 1, 100, "--size: 0K: too small, want 1 to 100");
	bytes_bad("-1K", 0, 100, "--size: -1K: too small, want 0 to 100");
	bytes_bad("8388608T", 0, LLONG_MAX,
	    "--size: 8388608T: too large, want 0 to 9223372036854775807");
	bytes_bad("99999999999999999999G", 0, 100,
	    "--size: 99999999999999999999G: too large, want 0 to 100");
	bytes_bad("1k", 0, 1LL << 40, "--size: 1k: not a number of bytes (a "
	    "unit is K, M, G, T, KiB, MiB, GiB or TiB)");
	bytes_bad("1KB", 0, 1LL << 40, "--size: 1KB: not a number of bytes (a "
	    "unit is K, M, G, T, KiB, MiB, GiB or TiB)");
	bytes_bad("1 K", 0, 1LL << 40, "--size: 1 K: not a number of bytes (a "
	    "unit is K, M, G, T, KiB, MiB, GiB or TiB)");
	bytes_bad("K", 0, 1LL << 40, "--size: K: not a number of bytes (a "
	    "unit is K, M, G, T, KiB, MiB, GiB or TiB)");
	bytes_bad("1.5M", 0, 1LL << 40, "--size: 1.5M: not a number of bytes (a "
	    "unit is K, M, G, T, KiB, MiB, GiB or TiB)");

	/* durations: fractions kept, 0 refused where it must be positive */
	secs_good("0.5", H2K_NUM_ABOVE0, 1e9, 0.5);
	secs_good("0.001", H2K_NUM_ABOVE0, 1e9, 0.001);
	secs_good("3", H2K_NUM_ABOVE0, 1e9, 3);
	secs_good("0", 0, 86400, 0);
	secs_good("0.0", 0, 86400, 0);
	secs_good("86400", 0, 86400, 86400);
	secs_good("1.25", 1, 2, 1.25);
	secs_bad("0", H2K_NUM_ABOVE0, 1e9,
	    "--timeout: 0: too small, want more than 0 and at most 1e+09 seconds");
	secs_bad("0.000", H2K_NUM_ABOVE0, 60,
	    "--timeout: 0.000: too small, want more than 0 and at most 60 seconds");
	secs_bad("0.5", 1, 3600,
	    "--timeout: 0.5: too small, want 1 to 3600 seconds");
	secs_bad("86400.5", 0, 86400,
	    "--timeout: 86400.5: too large, want 0 to 86400 seconds");
	secs_bad("-1", 0, 60, "--timeout: -1: too small, want 0 to 60 seconds");
	secs_bad("0x10", 0, 60, "--timeout: 0x10: not a number of seconds");
	secs_bad("", 0, 60, "--timeout: : not a number of seconds");
	secs_bad(" 1", 0, 60, "--timeout:  1: not a number of seconds");
	secs_bad("1 ", 0, 60, "--timeout: 1 : not a number of seconds");
	secs_bad("1s", 0, 60, "--timeout: 1s: not a number of seconds");
	secs_bad("nan", 0, 60, "--timeout: nan: not a number of seconds");
	secs_bad("inf", 0, 60, "--timeout: inf: not a number of seconds");
	secs_bad("-inf", 0, 60, "--timeout: -inf: not a number of seconds");
	secs_bad("1e3", 0, 1e9, "--timeout: 1e3: not a number of seconds");
	secs_bad(".5", 0, 60, "--timeout: .5: not a number of seconds");
	secs_bad("5.", 0, 60, "--timeout: 5.: not a number of seconds");
	secs_bad("+5", 0, 60, "--timeout: +5: not a number of seconds");
	{
		/* 400 digits: strtod's HUGE_VAL, still "too large" */
		char big[402];
		memset(big, '9', 400);
		strcpy(big + 400, "");
		double v = 77;
		is_int(h2k_parse_secs("--t", big, 0, 60, &v), -1,
		    "400 digits of seconds refused");
		ok(strstr(h2k_errmsg(), "too large") != NULL, "... as too large");
	}
	/* an escape in the value reaches the message escaped */
	secs_bad("1\033[2J", 0, 60, "--timeout: 1\\e[2J: not a number of seconds");
	return tap_done();
}
