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

			if (n + 1 >= H2K_JSONL_MAX_LINE) {
				toolong = 1;
				continue;
			}
			if (cap > H2K_JSONL_MAX_LINE)
				cap = H2K_JSONL_MAX_LINE;
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
		for (i = 0; i < len && strchr(" \t\r\f\v", r->line[i]); i++)
			;
		if (i < len)
			break;
	}
	if (memchr(r->line, '\0', len))
		return h2k_seterr(H2K_EX_USAGE, "%s:%ld: NUL byte in line",
		    r->name, r->lineno);
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
	for (; end && end < r->line + len && strchr(" \t\r\f\v", *end); end++)
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
	*out = v;
	return 1;
}

int
h2k_json_write(FILE *fp, const cJSON *obj)
{
	char *s = cJSON_PrintUnformatted(obj);
	const char *name = fp == stdout ? "stdout" : "output";
	size_t n;
	int e;

	if (!s)
		return h2k_seterr(H2K_EX_FAIL, "out of memory");
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

	return cJSON_IsNumber(v) ? v->valuedouble : def;
}
