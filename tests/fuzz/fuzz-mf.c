/*
 * fuzz-mf.c - libFuzzer harness for the .mf manifest reader and writer.
 * needs: lib/ovf.c
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * Every manifest the reader accepts is written back with h2k_mf_add and
 * must read back to the same entries (algorithm, file, digest); digests
 * have the algorithm's length in lower-case hex; no file is named twice.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h2k.h"
#include "ovf.h"

static size_t
hexlen(const char *algo)
{
	return !strcmp(algo, "SHA1") ? 40 : !strcmp(algo, "SHA256") ? 64 :
	    !strcmp(algo, "SHA512") ? 128 : 0;
}

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct h2k_mf_entry *e = NULL, *f = NULL;
	struct h2k_buf b = {0};
	size_t n = 0, m = 0;

	if (h2k_mf_parse((const char *)data, size, &e, &n) < 0) {
		if (!strcmp(h2k_errmsg(), "unknown error"))
			abort();
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		size_t hl = hexlen(e[i].algo);
		if (!hl || strlen(e[i].hex) != hl ||
		    strspn(e[i].hex, "0123456789abcdef") != hl) {
			fprintf(stderr, "fuzz-mf: accepted digest '%s' for %s\n",
			    e[i].hex, e[i].algo);
			abort();
		}
		for (size_t j = 0; j < i; j++)
			if (!strcmp(e[i].file, e[j].file)) {
				fprintf(stderr, "fuzz-mf: file named twice accepted\n");
				abort();
			}
		if (h2k_mf_add(&b, e[i].algo, e[i].file, e[i].hex) < 0)
			goto done; /* a name the writer refuses: fine */
	}
	if (h2k_mf_parse(b.data ? b.data : "", b.len, &f, &m) < 0 || m != n) {
		fprintf(stderr, "fuzz-mf: written manifest does not read back: %s\n",
		    h2k_errmsg());
		abort();
	}
	for (size_t i = 0; i < n; i++)
		if (strcmp(e[i].algo, f[i].algo) || strcmp(e[i].file, f[i].file) ||
		    strcmp(e[i].hex, f[i].hex)) {
			fprintf(stderr, "fuzz-mf: entry %zu changed in a round trip\n", i);
			abort();
		}
	h2k_mf_free(f, m);
done:
	h2k_mf_free(e, n);
	h2k_buf_free(&b);
	return 0;
}
