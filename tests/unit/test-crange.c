/* Unit tests for lib/crange.c. SPDX-License-Identifier: LGPL-3.0-or-later */
#include <string.h>

#include "crange.h"
#include "tap.h"

static int
parse(const char *s, struct h2k_crange *cr)
{
	return h2k_crange_parse(s, strlen(s), cr);
}

int
main(void)
{
	struct h2k_crange cr;

	is_int(parse("bytes 0-99/100", &cr), 0, "full range");
	ok(cr.has_range && cr.has_total && cr.first == 0 && cr.last == 99 &&
	    cr.total == 100, "fields of bytes 0-99/100");
	is_int(parse("bytes 500-999/*\r\n", &cr), 0, "unknown total, CRLF tail");
	ok(cr.has_range && !cr.has_total && cr.first == 500 && cr.last == 999,
	    "fields of bytes 500-999/*");
	is_int(parse("bytes */4096", &cr), 0, "unsatisfied form");
	ok(!cr.has_range && cr.has_total && cr.total == 4096, "fields of bytes */4096");
	is_int(parse("  BYTES 1-1/2 ", &cr), 0, "unit case-blind, outer spaces");
	is_int(parse("bytes 999999999999999998-999999999999999998/999999999999999999", &cr), 0,
	    "18-digit numbers");
	ok(cr.total == 999999999999999999ULL, "18-digit total kept exactly");
	/* a header value that is not NUL-terminated */
	const char buf[] = "bytes 0-9/10XXXX";
	is_int(h2k_crange_parse(buf, 12, &cr), 0, "length bounds the parse");

	const char *bad[] = {
		"", "bytes", "bytes ", "bytes 0-99", "bytes 0-99/", "bytes -99/100",
		"bytes 0-/100", "bytes 100-99/200", "bytes 0-100/100", "bytes 0-99/99",
		"bytes */*", "bytes 0 -99/100", "bytes 0- 99/100", "bytes +0-99/100",
		"bytes 0-99/+100", "bytes 0x0-99/100", "items 0-99/100", "bytes=0-99/100",
		"bytes 0-99/100 junk", "bytes 0-99/100/100",
		"bytes 0-9999999999999999999/99999999999999999999",
		"bytes 18446744073709551615-18446744073709551615/18446744073709551616",
		"bytes 0-1234567890123456789/1234567890123456790",
		"bytes\t0-99/100", "bytes 0-99\n/100",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		is_int(parse(bad[i], &cr), -1, "malformed refused: #%zu", i);
	/* an embedded NUL inside the given length is malformed */
	is_int(h2k_crange_parse("bytes 0-9/10\0", 13, &cr), -1, "embedded NUL refused");
	return tap_done();
}
