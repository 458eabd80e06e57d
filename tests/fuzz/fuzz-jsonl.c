/*
 * fuzz-jsonl.c - libFuzzer harness for the JSON lines reader every
 * pipeline stage uses on stdin, and the writer it answers with.
 * needs: lib/jsonl.c
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * Properties checked on every input: the reader ends (EOF) after at most
 * one record per newline; a bad line leaves a one-line "stdin:N: why"
 * error and the reader usable; every object it returns survives a
 * round trip through h2k_json_write and the reader unchanged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h2k.h"
#include "jsonl.h"

static void
roundtrip(const cJSON *o)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *w = open_memstream(&buf, &len);
	struct h2k_jsonl r;
	cJSON *back = NULL;

	if (!w)
		return;
	if (h2k_json_write(w, o) < 0) {
		fclose(w);
		free(buf);
		return;
	}
	fclose(w);
	if (!len || buf[len - 1] != '\n' || memchr(buf, '\n', len - 1)) {
		fprintf(stderr, "fuzz-jsonl: writer did not produce exactly one line\n");
		abort();
	}
	FILE *rf = fmemopen(buf, len, "r");
	h2k_jsonl_init(&r, rf, "roundtrip");
	/*
	 * Compare serialisations, not cJSON_Compare: it looks keys up by
	 * name, so an object with a duplicate key never equals itself.
	 */
	int same = 0;
	if (h2k_jsonl_next(&r, &back) == 1) {
		char *a = cJSON_PrintUnformatted(o), *b = cJSON_PrintUnformatted(back);
		same = a && b && !strcmp(a, b);
		free(a);
		free(b);
	}
	if (!same) {
		fprintf(stderr, "fuzz-jsonl: object changed in a write/read round trip: %s\n",
		    h2k_errmsg());
		abort();
	}
	cJSON_Delete(back);
	h2k_jsonl_free(&r);
	fclose(rf);
	free(buf);
}

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	FILE *f;
	struct h2k_jsonl r;
	cJSON *o;
	int rc;
	long records = 0, newlines = 0;

	if (size == 0)
		return 0;
	for (size_t i = 0; i < size; i++)
		newlines += data[i] == '\n';
	if (!(f = fmemopen((void *)data, size, "r")))
		return 0;
	h2k_jsonl_init(&r, f, "stdin");
	while ((rc = h2k_jsonl_next(&r, &o)) != 0) {
		if (++records > newlines + 1) {
			fprintf(stderr, "fuzz-jsonl: more records than lines\n");
			abort();
		}
		if (rc < 0) {
			const char *m = h2k_errmsg();
			if (strncmp(m, "stdin:", 6) || strchr(m, '\n')) {
				fprintf(stderr, "fuzz-jsonl: bad-line error not \"stdin:N: why\": %s\n", m);
				abort();
			}
			continue;
		}
		if (!cJSON_IsObject(o)) {
			fprintf(stderr, "fuzz-jsonl: a non-object was returned\n");
			abort();
		}
		(void)h2k_json_str(o, "name");
		(void)h2k_json_num(o, "size", -1);
		roundtrip(o);
		cJSON_Delete(o);
	}
	h2k_jsonl_free(&r);
	fclose(f);
	return 0;
}
