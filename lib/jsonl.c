/*
 * jsonl.c - JSON lines in and out.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * Reader: a line is read whole up to H2K_JSONL_MAX_LINE bytes; a longer
 * one is discarded up to its newline and reported as one bad line, so a
 * stray binary blob on stdin costs bounded memory and the lines after it
 * still go through.  Each bad line is an error naming NAME:LINE; the
 * reader stays positioned at the next line.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "h2k.h"
#include "jsonl.h"

void
h2k_jsonl_init(struct h2k_jsonl *r, FILE *fp, const char *name)
{
	memset(r, 0, sizeof *r);
	r->fp = fp;
	r->name = name ? name : "stdin";
}

void
h2k_jsonl_free(struct h2k_jsonl *r)
{
	free(r->line);
	r->line = NULL;
	r->cap = 0;
}

/*
 * Read one line (without its newline) into r->line.  Returns 1 with *len,
 * 0 at EOF before any byte, 2 when the line was too long (dropped),
 * -1 on a read error or ENOMEM.
 */
static int
read_line(struct h2k_jsonl *r, size_t *len)
{
	size_t n = 0;
	int c, any = 0, toolong = 0;

	flockfile(r->fp);
again:
	while ((c = getc_unlocked(r->fp)) != EOF) {
		any = 1;
		if (c == '\n')
			break;
		if (toolong)
			continue;
		if (n + 1 >= r->cap) {
			size_t cap = r->cap ? r->cap * 2 : 4096;
			char *p;

			/* up to H2K_JSONL_MAX_LINE bytes, and the NUL */
			if (n >= H2K_JSONL_MAX_LINE) {
				toolong = 1;
				continue;
			}
			if (cap > H2K_JSONL_MAX_LINE + 1)
				cap = H2K_JSONL_MAX_LINE + 1;
			if (!(p = h2k_realloc(r->line, cap))) {
				funlockfile(r->fp);
				return -1;
			}
			r->line = p;
			r->cap = cap;
		}
		r->line[n++] = (char)c;
	}
	/*
	 * A signal handler without SA_RESTART interrupts the read.  Between
	 * lines that is how a stage notices SIGTERM while its input is idle:
	 * report it (H2K_EX_CANCEL) and let the caller look at its flag.  In
	 * the middle of a line, resume: what was read must not be lost.
	 */
	if (c == EOF && ferror(r->fp) && errno == EINTR) {
		clearerr_unlocked(r->fp);
		if (any)
			goto again;
		funlockfile(r->fp);
		h2k_seterr(H2K_EX_CANCEL, "%s: read interrupted by a signal",
		    r->name);
		return -1;
	}
	funlockfile(r->fp);
	if (c == EOF && ferror(r->fp)) {
		h2k_seterr(H2K_EX_IO, "%s: read error: %s", r->name,
		    strerror(errno));
		clearerr(r->fp);
		return -1;
	}
	if (!any)
		return 0;
	r->lineno++;
	if (toolong)
		return 2;
	if (!r->line && !(r->line = h2k_malloc(1)))
		return -1;
	r->line[n] = '\0';
	*len = n;
	return 1;
}

/* Column of a \u0000 escape inside a string, 0 if none. */
static size_t
escaped_nul(const char *s, size_t n)
{
	int in = 0;

	for (size_t i = 0; i < n; i++) {
		if (!in) {
			in = s[i] == '"';
			continue;
		}
		if (s[i] == '"') {
			in = 0;
		} else if (s[i] == '\\' && i + 1 < n) {
			if (s[i + 1] == 'u' && i + 5 < n &&
			    !memcmp(s + i + 2, "0000", 4))
				return i + 1;
			i++;  /* the escaped character, maybe a quote */
		}
	}
	return 0;
}

/*
 * The first key that repeats in one object of the tree at v, or NULL
 * (also on ENOMEM, with the error set: *oom = 1).  Each object's keys are
 * sorted (h2k_first_dup): O(n log n) in the size of the tree, whatever
 * the keys.
 */
static const char *
dup_key(const cJSON *v, int depth, int *oom)
{
	const char *found = NULL;
	const cJSON *c;
	size_t n = 0, i, first, second;

	if (!v || depth > CJSON_NESTING_LIMIT)
		return NULL;
	for (c = v->child; c; c = c->next) {
		n++;
		if ((cJSON_IsObject(c) || cJSON_IsArray(c)) &&
		    (found = dup_key(c, depth + 1, oom)))
			return found;
		if (*oom)
			return NULL;
	}
	if (!cJSON_IsObject(v) || n < 2)
		return NULL;
	const char **keys = h2k_calloc(n, sizeof *keys);
	if (!keys) {
		*oom = 1;
		return NULL;
	}
	for (c = v->child, i = 0; c; c = c->next, i++)
		keys[i] = c->string ? c->string : "";
	switch (h2k_first_dup(keys, n, &first, &second)) {
	case -1:
		*oom = 1;
		break;
	case 1:
		found = keys[second];
		break;
	}
	free(keys);
	return found;
}

int
h2k_json_dupkey(const cJSON *v, const char **key)
{
	int oom = 0;

	*key = dup_key(v, 0, &oom);
	return oom ? -1 : *key != NULL;
}

char *
h2k_json_print(const cJSON *o)
{
	char *s = cJSON_PrintUnformatted(o);
	struct h2k_buf b = {0};
	size_t n, run = 0;

	if (!s) {
		h2k_seterr(H2K_EX_FAIL, "out of memory");
		return NULL;
	}
	n = strlen(s);
	/*
	 * cJSON writes these code points as raw UTF-8; "\uXXXX" is the same
	 * string to a JSON reader and inert on a terminal.  They can only be
	 * inside strings, where the escape is valid.
	 */
	for (size_t i = 0; i < n;) {
		unsigned cp;
		size_t k = (unsigned char)s[i] < 0x80 ? 1 :
		    h2k_utf8_seq((unsigned char *)s + i, n - i, &cp);

		if (k > 1 && h2k_cp_unsafe(cp)) {
			if (h2k_buf_append(&b, s + run, i - run) < 0 ||
			    h2k_buf_printf(&b, "\\u%04x", cp) < 0)
				goto fail;
			run = i + k;
		}
		i += k ? k : 1;
	}
	if (run == 0)
		return s;
	if (h2k_buf_append(&b, s + run, n - run) < 0)
		goto fail;
	free(s);
	return b.data;
fail:
	free(s);
	h2k_buf_free(&b);
	return NULL;
}

static const char *
kind(const cJSON *v)
{
	if (cJSON_IsArray(v))
		return "an array";
	if (cJSON_IsString(v))
		return "a string";
	if (cJSON_IsNumber(v))
		return "a number";
	if (cJSON_IsBool(v))
		return "a boolean";
	if (cJSON_IsNull(v))
		return "null";
	return "not an object";
}

int
h2k_jsonl_next(struct h2k_jsonl *r, cJSON **out)
{
	size_t len, i;
	const char *end = NULL;
	cJSON *v;
	int rc;

	*out = NULL;
	for (;;) {
		if ((rc = read_line(r, &len)) <= 0)
			return rc;
		if (rc == 2)
			return h2k_seterr(H2K_EX_USAGE, "%s:%ld: line longer than "
			    "%u bytes", r->name, r->lineno, H2K_JSONL_MAX_LINE);
		/* strchr finds the NUL too: a line of NULs is not blank */
		for (i = 0; i < len && r->line[i] &&
		    strchr(" \t\r\f\v", r->line[i]); i++)
			;
		if (i < len)
			break;
	}
	if (memchr(r->line, '\0', len))
		return h2k_seterr(H2K_EX_USAGE, "%s:%ld: NUL byte in line",
		    r->name, r->lineno);
	if ((i = h2k_utf8_bad(r->line, len)))
		return h2k_seterr(H2K_EX_USAGE, "%s:%ld: invalid UTF-8 "
		    "(column %zu)", r->name, r->lineno, i);
	if ((i = escaped_nul(r->line, len)))
		return h2k_seterr(H2K_EX_USAGE, "%s:%ld: \\u0000 in a string "
		    "(column %zu)", r->name, r->lineno, i);
	v = cJSON_ParseWithLengthOpts(r->line, len + 1, &end, 0);
	if (!v) {
		const char *ep = cJSON_GetErrorPtr();
		long col = ep && ep >= r->line && ep <= r->line + len ?
		    (long)(ep - r->line) + 1 : 0;

		if (col)
			return h2k_seterr(H2K_EX_USAGE, "%s:%ld: not valid JSON "
			    "(column %ld)", r->name, r->lineno, col);
		return h2k_seterr(H2K_EX_USAGE, "%s:%ld: not valid JSON",
		    r->name, r->lineno);
	}
	for (; end && end < r->line + len && *end &&
	    strchr(" \t\r\f\v", *end); end++)
		;
	if (end && end < r->line + len) {
		cJSON_Delete(v);
		return h2k_seterr(H2K_EX_USAGE, "%s:%ld: text after the JSON value "
		    "(column %ld)", r->name, r->lineno, (long)(end - r->line) + 1);
	}
	if (!cJSON_IsObject(v)) {
		rc = h2k_seterr(H2K_EX_USAGE, "%s:%ld: expected a JSON object, got "
		    "%s", r->name, r->lineno, kind(v));
		cJSON_Delete(v);
		return rc;
	}
	const char *dup;
	if ((rc = h2k_json_dupkey(v, &dup)) != 0) {
		if (rc > 0)
			h2k_seterr(H2K_EX_USAGE, "%s:%ld: duplicate key \"%s\"",
			    r->name, r->lineno, dup);
		cJSON_Delete(v);
		return -1;
	}
	*out = v;
	return 1;
}

int
h2k_json_write(FILE *fp, const cJSON *obj)
{
	char *s = h2k_json_print(obj);
	const char *name = fp == stdout ? "stdout" : "output";
	size_t n;
	int e;

	if (!s)
		return -1;
	n = strlen(s);
	errno = 0;
	if (fwrite(s, 1, n, fp) != n || putc('\n', fp) == EOF ||
	    fflush(fp) == EOF) {
		e = errno;
		free(s);
		clearerr(fp);
		return h2k_seterr(H2K_EX_IO, "%s: write error: %s", name,
		    e ? strerror(e) : "short write");
	}
	free(s);
	return 0;
}

const char *
h2k_json_str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

double
h2k_json_num(const cJSON *o, const char *key, double def)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsNumber(v) && v->valuedouble == v->valuedouble ?
	    v->valuedouble : def;
}
