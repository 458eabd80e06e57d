/*
 * fuzz-ovf.c - libFuzzer harness for the OVF descriptor processing that
 * h2k-ovf applies to CreateDescriptor's answer (network XML): parse,
 * collect file references, optionally drop CD-ROM items.
 * needs: lib/ovf.c lib/soap.c
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * Every href it hands back becomes a file name next to the disks, so each
 * must be a plain name (no '/', no '\\', no control byte, not "." or "..");
 * a descriptor with nothing removed is kept byte for byte; the processed
 * text must itself be accepted again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h2k.h"
#include "ovf.h"

static void
plain(const char *s)
{
	if (!*s || !strcmp(s, ".") || !strcmp(s, "..") || strpbrk(s, "/\\")) {
		fprintf(stderr, "fuzz-ovf: href '%s' is not a plain file name\n", s);
		abort();
	}
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f) {
			fprintf(stderr, "fuzz-ovf: href with a control byte\n");
			abort();
		}
}

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct h2k_ovf_desc d, d2;

	for (int rm = 0; rm < 2; rm++) {
		if (h2k_ovf_process((const char *)data, size, rm, &d) < 0)
			return 0;
		for (size_t i = 0; i < d.nhrefs; i++)
			plain(d.hrefs[i]);
		for (size_t i = 0; i < d.ndropped; i++)
			plain(d.dropped[i]);
		if (!d.cdroms && (d.len != size || memcmp(d.text, data, size))) {
			fprintf(stderr, "fuzz-ovf: descriptor changed with nothing removed\n");
			abort();
		}
		if (h2k_ovf_process(d.text, d.len, rm, &d2) < 0) {
			fprintf(stderr, "fuzz-ovf: processed descriptor refused: %s\n",
			    h2k_errmsg());
			abort();
		}
		h2k_ovf_desc_free(&d2);
		h2k_ovf_desc_free(&d);
	}
	return 0;
}
