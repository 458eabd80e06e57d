/*
 * fuzz-jsonl.c - libFuzzer harness for the JSON lines reader every
 * pipeline stage uses on stdin, and the writer it answers with.
 * needs: lib/jsonl.c
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * Properties checked on every input: the reader ends (EOF) after at most
 * one record per newline; a bad line leaves a one-line "stdin:N: why"
 * error and the reader usable; every object it returns survives a
 * round trip through h2k_json_write and the reader unchanged; every
 * object it returns has valid UTF-8 in all keys and strings, no key twice
 * in one object, and no string cut short by a \u0000 (its raw line holds
 * no such escape); what the writer prints is valid UTF-8 without a raw
 * C1, bidi or U+2028/U+2029 character.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h2k.h"
#include "jsonl.h"

static int
utf8_ok(const char *s, int terminal)
{
	size_t n = strlen(s);
	unsigned cp;

	for (size_t i = 0; i < n;) {
		size_t k = h2k_utf8_seq((const unsigned char *)s + i, n - i, &cp);
		if (!k || (terminal && k > 1 && h2k_cp_unsafe(cp)))
			return 0;
		i += k;
	}
	return 1;
}

static void
check_tree(const cJSON *v)
{
	for (const cJSON *c = v->child; c; c = c->next) {
		if ((c->string && !utf8_ok(c->string, 0)) ||
		    (cJSON_IsString(c) && !utf8_ok(c->valuestring, 0))) {
			fprintf(stderr, "fuzz-jsonl: invalid UTF-8 passed the reader\n");
			abort();
		}
		check_tree(c);
	}
	/* the reader's own check is a hash set: compare with the slow way */
	if (cJSON_IsObject(v))
		for (const cJSON *a = v->child; a; a = a->next)
			for (const cJSON *b = a->next; b; b = b->next)
				if (!strcmp(a->string, b->string)) {
					fprintf(stderr, "fuzz-jsonl: duplicate key "
					    "passed the reader\n");
					abort();
				}
}

/* A \u0000 escape inside a string of a raw line the reader accepted. */
static void
check_nul(const char *line)
{
	int in = 0;

	for (const char *p = line; *p; p++) {
		if (*p == '"')
			in = !in;
		else if (in && *p == '\\') {
			if (!strncmp(p, "\\u0000", 6)) {
				fprintf(stderr, "fuzz-jsonl: \\u0000 passed the reader\n");
				abort();
			}
			if (p[1])
				p++;
		}
	}
}

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
	if (!utf8_ok(buf, 1)) {
		fprintf(stderr, "fuzz-jsonl: writer printed a terminal control\n");
		abort();
	}
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
		check_tree(o);
		check_nul(r.line);
		(void)h2k_json_str(o, "name");
		(void)h2k_json_num(o, "size", -1);
		roundtrip(o);
		cJSON_Delete(o);
	}
	h2k_jsonl_free(&r);
	fclose(f);
	return 0;
}
