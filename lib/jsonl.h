/*
 * jsonl.h - JSON lines in and out (cJSON).
 * SPDX-License-Identifier: LGPL-3.0-or-later
 */
#ifndef H2K_JSONL_H
#define H2K_JSONL_H

#include <stdio.h>
#include <cjson/cJSON.h>

#define H2K_JSONL_MAX_LINE (16u << 20)

struct h2k_jsonl {
	FILE *fp;
	const char *name;  /* "stdin" or the file name, for messages */
	long lineno;
	char *line;
	size_t cap;
};

void h2k_jsonl_init(struct h2k_jsonl *r, FILE *fp, const char *name);
/*
 * Next object.  Returns 1 and *out (caller cJSON_Delete) on success, 0 at
 * EOF, -1 on a bad line: error "stdin:LINE: why" with H2K_EX_USAGE; the
 * reader stays usable so the caller can go on with the next line.  Blank
 * lines are skipped.  A line that is valid JSON but not an object is bad,
 * and so is one with invalid UTF-8, a \u0000 in a string or a key twice
 * in one object.
 * A signal (handler without SA_RESTART) while waiting for a line gives -1
 * with H2K_EX_CANCEL; one arriving in the middle of a line is ridden out.
 */
int h2k_jsonl_next(struct h2k_jsonl *r, cJSON **out);
void h2k_jsonl_free(struct h2k_jsonl *r);

/*
 * 1 and *key if some object in the tree at v has a key twice (*key is
 * one such key), 0 if none, -1 on ENOMEM.  O(n log n) in the keys of each
 * object, whatever they are (h2k_first_dup).
 */
int h2k_json_dupkey(const cJSON *v, const char **key);

/*
 * obj as one compact line (caller frees), with the code points a terminal
 * would obey (C1, bidi controls, U+2028/U+2029; h2k.h) written as \uXXXX:
 * the same string to any JSON reader.  NULL + error on ENOMEM.
 */
char *h2k_json_print(const cJSON *obj);

/*
 * Write obj as one line (h2k_json_print) plus newline to fp and flush (pipelines see
 * each VM as soon as it is done).  -1 with H2K_EX_IO on write error (EPIPE).
 */
int h2k_json_write(FILE *fp, const cJSON *obj);

/* Accessors that tolerate missing/wrong-typed fields: NULL/def. */
const char *h2k_json_str(const cJSON *o, const char *key);
double h2k_json_num(const cJSON *o, const char *key, double def);

#endif
