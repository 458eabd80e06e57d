/*
 * fuzz-pathsafe.c - libFuzzer harness for the sanitiser of server-supplied
 * names (NFC target ids, VM names) that become file names under -o DIR.
 * needs: lib/pathsafe.c
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * Checks pathsafe.h's rules on every output: one non-empty component of
 * at most H2K_PATHSAFE_MAX bytes (a claimed name: short enough for
 * ".part.meta" under NAME_MAX), valid UTF-8, no '/', '\\', control
 * character, C1 control or bidi override, no leading '.' or '-', no
 * ".part"/".meta" suffix; the same input gives the same name; names
 * claimed in one folder are all different.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pathsafe.h"

static void
fail(const char *why, const char *s)
{
	fprintf(stderr, "fuzz-pathsafe: %s: \"%s\"\n", why, s);
	abort();
}

/*
 * A sanitised name is at most H2K_PATHSAFE_MAX bytes; a claimed one may
 * carry a uniquifier ("-2") past that, but with ".part.meta" added it must
 * still fit NAME_MAX (255), which is what the margin is for.
 */
static void
check(const char *s, size_t max)
{
	size_t n = strlen(s);
	const unsigned char *p = (const unsigned char *)s;

	if (!n || n > max)
		fail("empty or too long", s);
	if (s[0] == '.' || s[0] == '-')
		fail("leading dot or dash", s);
	if ((n >= 5 && !strcmp(s + n - 5, ".part")) || (n >= 5 && !strcmp(s + n - 5, ".meta")))
		fail("temporary suffix", s);
	while (*p) {
		unsigned c = *p, len, cp;

		if (c == '/' || c == '\\' || c < 0x20 || c == 0x7f)
			fail("separator or control", s);
		if (c < 0x80) {
			p++;
			continue;
		}
		len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
		if (!len || c > 0xf4)
			fail("invalid UTF-8", s);
		cp = c & (0x3f >> (len - 1));
		for (unsigned i = 1; i < len; i++) {
			if ((p[i] & 0xc0) != 0x80)
				fail("invalid UTF-8", s);
			cp = cp << 6 | (p[i] & 0x3f);
		}
		if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
		    (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			fail("overlong or surrogate UTF-8", s);
		if ((cp >= 0x80 && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) ||
		    (cp >= 0x2066 && cp <= 0x2069))
			fail("C1 control or bidi override", s);
		p += len;
	}
}

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct h2k_pathset set = {0};
	char *names[8] = {0};
	size_t nn = 0;
	const char *p = (const char *)data, *e = p + size;

	/* Up to 8 NUL-separated names, claimed in one folder. */
	while (p <= e && nn < 8) {
		const char *q = memchr(p, '\0', (size_t)(e - p));
		size_t n = q ? (size_t)(q - p) : (size_t)(e - p);
		char *in = strndup(p, n), *a, *b;

		if (!in)
			break;
		a = h2k_pathsafe(in, "disk");
		b = h2k_pathsafe(in, "disk");
		if (!a || !b)
			abort();
		check(a, H2K_PATHSAFE_MAX);
		if (strcmp(a, b))
			fail("not a function of its input", a);
		names[nn] = h2k_pathset_claim(&set, a);
		if (!names[nn])
			abort();
		check(names[nn], 255 - strlen(".part.meta"));
		for (size_t i = 0; i < nn; i++)
			if (!strcmp(names[i], names[nn]))
				fail("two claims gave the same name", names[nn]);
		nn++;
		free(in);
		free(a);
		free(b);
		if (!q)
			break;
		p = q + 1;
	}
	for (size_t i = 0; i < nn; i++)
		free(names[i]);
	h2k_pathset_free(&set);
	return 0;
}
