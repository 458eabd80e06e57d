/* Unit tests for lib/jsonl.c. SPDX-License-Identifier: LGPL-3.0-or-later */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "h2k.h"
#include "jsonl.h"
#include "tap.h"

static FILE *
mem(const char *s, size_t n)
{
	FILE *f = tmpfile();

	fwrite(s, 1, n, f);
	rewind(f);
	return f;
}

static void
reader_basics(void)
{
	static const char in[] =
	    "{\"name\":\"a\",\"n\":1}\n"     /* 1 good */
	    "\n"                             /* 2 blank, skipped */
	    "  \t \r\n"                      /* 3 whitespace, skipped */
	    "[1,2]\n"                        /* 4 array */
	    "{\"name\":\n"                   /* 5 truncated */
	    "{\"a\":1} x\n"                  /* 6 trailing text */
	    "\"str\"\n"                      /* 7 string */
	    "  {\"name\":\"b\"}  \r\n"       /* 8 good, CRLF, padded */
	    "{\"name\":\"c\"}";              /* 9 good, no final newline */
	struct h2k_jsonl r;
	cJSON *o;
	FILE *f = mem(in, sizeof in - 1);

	h2k_jsonl_init(&r, f, NULL);
	is_int(h2k_jsonl_next(&r, &o), 1, "first line is an object");
	is_str(h2k_json_str(o, "name"), "a", "string field read");
	is_int((long)h2k_json_num(o, "n", -1), 1, "number field read");
	is_int((long)h2k_json_num(o, "missing", -7), -7, "missing number gives default");
	ok(h2k_json_str(o, "n") == NULL, "number is not a string");
	cJSON_Delete(o);

	is_int(h2k_jsonl_next(&r, &o), -1, "array line refused");
	is_str(h2k_errmsg(), "stdin:4: expected a JSON object, got an array",
	    "blank lines skipped but counted; array named");
	is_int(h2k_errcode(), H2K_EX_USAGE, "bad line is a usage error");
	ok(o == NULL, "no object on a bad line");

	is_int(h2k_jsonl_next(&r, &o), -1, "truncated JSON refused");
	ok(!strncmp(h2k_errmsg(), "stdin:5: not valid JSON", 23), "line 5 named: %s",
	    h2k_errmsg());
	is_int(h2k_jsonl_next(&r, &o), -1, "trailing text refused");
	is_str(h2k_errmsg(), "stdin:6: text after the JSON value (column 9)",
	    "trailing text column");
	is_int(h2k_jsonl_next(&r, &o), -1, "string line refused");
	is_str(h2k_errmsg(), "stdin:7: expected a JSON object, got a string",
	    "string named");

	is_int(h2k_jsonl_next(&r, &o), 1, "reader recovers after bad lines");
	is_str(h2k_json_str(o, "name"), "b", "padded CRLF line read");
	cJSON_Delete(o);
	is_int(h2k_jsonl_next(&r, &o), 1, "last line without newline read");
	is_str(h2k_json_str(o, "name"), "c", "its content");
	is_int(r.lineno, 9, "nine lines counted");
	cJSON_Delete(o);
	is_int(h2k_jsonl_next(&r, &o), 0, "EOF");
	is_int(h2k_jsonl_next(&r, &o), 0, "EOF again");
	h2k_jsonl_free(&r);
	fclose(f);
}

/*
 * The bound is inclusive, as the runner (h2k-job) relays it: a line of
 * exactly H2K_JSONL_MAX_LINE bytes is read, one byte more is refused.
 */
static void
reader_bound(void)
{
	size_t len = H2K_JSONL_MAX_LINE;
	char *s = malloc(2 * (len + 2));
	struct h2k_jsonl r;
	cJSON *o = NULL;
	FILE *f;
	size_t n = 0;

	for (int k = 0; k < 2; k++) {
		size_t l = len + (size_t)k;
		memcpy(s + n, "{\"a\":\"", 6);
		memset(s + n + 6, 'x', l - 8);
		memcpy(s + n + l - 2, "\"}\n", 3);
		n += l + 1;
	}
	f = mem(s, n);
	free(s);
	h2k_jsonl_init(&r, f, "in.jsonl");
	is_int(h2k_jsonl_next(&r, &o), 1, "a line of exactly the bound is read");
	ok(cJSON_IsString(cJSON_GetObjectItem(o, "a")) &&
	    strlen(cJSON_GetStringValue(cJSON_GetObjectItem(o, "a"))) == len - 8,
	    "whole");
	cJSON_Delete(o);
	is_int(h2k_jsonl_next(&r, &o), -1, "one byte more is refused");
	ok(strstr(h2k_errmsg(), "in.jsonl:2: line longer than 16777216 bytes")
	    != NULL, "saying so: %s", h2k_errmsg());
	h2k_jsonl_free(&r);
	fclose(f);
}

static void
reader_limits(void)
{
	size_t big = H2K_JSONL_MAX_LINE + 100;
	char *s = malloc(big + 64);
	struct h2k_jsonl r;
	cJSON *o;
	FILE *f;
	size_t n = 0;

	/* A too-long line, then a NUL line, then a good one. */
	s[n++] = '{';
	s[n++] = '"';
	memset(s + n, 'x', big);
	n += big;
	memcpy(s + n, "\":1}\n", 5);
	n += 5;
	memcpy(s + n, "{\"a\":\0}\n{\"ok\":true}\n", 20);
	n += 20;
	f = mem(s, n);
	free(s);
	h2k_jsonl_init(&r, f, "in.jsonl");
	is_int(h2k_jsonl_next(&r, &o), -1, "overlong line refused");
	ok(strstr(h2k_errmsg(), "in.jsonl:1: line longer than") != NULL,
	    "overlong line named with the reader's name: %s", h2k_errmsg());
	ok(r.cap <= H2K_JSONL_MAX_LINE + 1, "buffer stayed bounded (%zu)", r.cap);
	is_int(h2k_jsonl_next(&r, &o), -1, "NUL byte refused");
	is_str(h2k_errmsg(), "in.jsonl:2: NUL byte in line", "NUL line named");
	is_int(h2k_jsonl_next(&r, &o), 1, "line after them read");
	ok(cJSON_IsTrue(cJSON_GetObjectItem(o, "ok")), "its content");
	cJSON_Delete(o);
	is_int(h2k_jsonl_next(&r, &o), 0, "EOF");
	h2k_jsonl_free(&r);
	fclose(f);

	/* Nesting beyond cJSON's limit is a bad line, not a crash. */
	s = malloc(200001);
	memcpy(s, "{\"a\":", 5);
	memset(s + 5, '[', 100000);
	s[100005] = '\n';
	f = mem(s, 100006);
	free(s);
	h2k_jsonl_init(&r, f, NULL);
	is_int(h2k_jsonl_next(&r, &o), -1, "absurd nesting refused");
	h2k_jsonl_free(&r);
	fclose(f);
}

static void
writer(void)
{
	cJSON *o = cJSON_CreateObject();
	char buf[256] = "";
	FILE *f = tmpfile();
	int p[2];

	cJSON_AddStringToObject(o, "name", "vm \"1\"\n");
	cJSON_AddNumberToObject(o, "size", 1099511627776.0);
	cJSON_AddItemToObject(o, "list", cJSON_CreateArray());
	is_int(h2k_json_write(f, o), 0, "write to a file");
	rewind(f);
	ok(fgets(buf, sizeof buf, f) != NULL, "one line written");
	is_str(buf, "{\"name\":\"vm \\\"1\\\"\\n\",\"size\":1099511627776,\"list\":[]}\n",
	    "compact, escaped, large integer exact, newline-terminated");
	ok(fgets(buf, sizeof buf, f) == NULL, "nothing else");
	fclose(f);

	/* A closed pipe with SIGPIPE ignored: EPIPE becomes an I/O error. */
	signal(SIGPIPE, SIG_IGN);
	if (pipe(p) == 0) {
		close(p[0]);
		f = fdopen(p[1], "w");
		is_int(h2k_json_write(f, o), -1, "write to a closed pipe fails");
		is_int(h2k_errcode(), H2K_EX_IO, "as an I/O error");
		ok(strstr(h2k_errmsg(), "Broken pipe") != NULL, "naming EPIPE: %s",
		    h2k_errmsg());
		fclose(f);
	}
	cJSON_Delete(o);
}

static volatile sig_atomic_t alarmed;
static int feed_fd = -1;
static const char *feed;

/*
 * The timer interrupts the blocked read; the handler then supplies the
 * rest of the input, so the test does not depend on scheduling.
 */
static void
on_alarm(int sig)
{
	(void)sig;
	alarmed = 1;
	(void)!write(feed_fd, feed, strlen(feed));
}

static FILE *
interrupted_pipe(const char *now, const char *later)
{
	struct itimerval it = {{0, 0}, {0, 50000}};
	int p[2];

	if (pipe(p) < 0)
		return NULL;
	(void)!write(p[1], now, strlen(now));
	feed_fd = p[1];
	feed = later;
	alarmed = 0;
	setitimer(ITIMER_REAL, &it, NULL);
	return fdopen(p[0], "r");
}

static void
signals(void)
{
	struct sigaction sa;
	struct h2k_jsonl r;
	cJSON *o;
	FILE *f;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_alarm; /* no SA_RESTART, as the stages do */
	sigaction(SIGALRM, &sa, NULL);

	f = interrupted_pipe("{\"a\":", "1}\n");
	h2k_jsonl_init(&r, f, NULL);
	is_int(h2k_jsonl_next(&r, &o), 1, "signal in the middle of a line is ridden out");
	ok(alarmed, "the signal did arrive");
	is_int((long)h2k_json_num(o, "a", 0), 1, "and the whole line was read");
	cJSON_Delete(o);
	h2k_jsonl_free(&r);
	fclose(f);
	close(feed_fd);

	f = interrupted_pipe("", "{\"b\":2}\n");
	h2k_jsonl_init(&r, f, NULL);
	is_int(h2k_jsonl_next(&r, &o), -1, "signal while waiting for a line returns");
	is_int(h2k_errcode(), H2K_EX_CANCEL, "as cancelled");
	is_str(h2k_errmsg(), "stdin: read interrupted by a signal", "message");
	is_int(h2k_jsonl_next(&r, &o), 1, "the reader is still usable");
	is_int((long)h2k_json_num(o, "b", 0), 2, "next line read");
	is_int(r.lineno, 1, "line count not disturbed");
	cJSON_Delete(o);
	h2k_jsonl_free(&r);
	fclose(f);
	close(feed_fd);
	signal(SIGALRM, SIG_DFL);
}

/* Item 15: what cJSON lets through must not reach a server. */
static void
reader_strict(void)
{
	static const char in[] =
	    "{\"moref\":\"vm-64\\u0000x\"}\n"          /* 1 \u0000 in a value */
	    "{\"a\\u0000\":1}\n"                         /* 2 in a key */
	    "{\"name\":\"a\xff\xfe\"}\n"                 /* 3 invalid UTF-8 */
	    "{\"name\":\"\xc0\xaf\"}\n"                  /* 4 overlong */
	    "{\"name\":\"\xed\xa0\x80\"}\n"             /* 5 surrogate */
	    "{\"moref\":\"vm-1\",\"moref\":\"vm-2\"}\n"  /* 6 duplicate */
	    "{\"d\":[{\"k\":1,\"x\":2,\"k\":3}]}\n"      /* 7 nested */
	    "{\"name\":\"a\\\\u0000\",\"k\":\"\\\"\\u0001\"}\n" /* 8 good */
	    "{\"name\":\"\xc3\xa9\xe2\x80\xae\",\"a\":{\"k\":1},\"b\":{\"k\":2}}\n"; /* 9 */
	struct h2k_jsonl r;
	cJSON *o;
	FILE *f = mem(in, sizeof in - 1);

	h2k_jsonl_init(&r, f, NULL);
	is_int(h2k_jsonl_next(&r, &o), -1, "\\u0000 in a string refused");
	is_str(h2k_errmsg(), "stdin:1: \\u0000 in a string (column 16)",
	    "\\u0000 named with its line and column");
	is_int(h2k_errcode(), H2K_EX_USAGE, "a usage error");
	is_int(h2k_jsonl_next(&r, &o), -1, "\\u0000 in a key refused");
	is_str(h2k_errmsg(), "stdin:2: \\u0000 in a string (column 4)",
	    "key \\u0000 named");
	is_int(h2k_jsonl_next(&r, &o), -1, "invalid UTF-8 refused");
	is_str(h2k_errmsg(), "stdin:3: invalid UTF-8 (column 11)",
	    "invalid UTF-8 named");
	is_int(h2k_jsonl_next(&r, &o), -1, "overlong UTF-8 refused");
	is_int(h2k_jsonl_next(&r, &o), -1, "encoded surrogate refused");
	is_str(h2k_errmsg(), "stdin:5: invalid UTF-8 (column 10)",
	    "surrogate named");
	is_int(h2k_jsonl_next(&r, &o), -1, "duplicate key refused");
	is_str(h2k_errmsg(), "stdin:6: duplicate key \"moref\"",
	    "duplicate named");
	is_int(h2k_jsonl_next(&r, &o), -1, "nested duplicate key refused");
	is_str(h2k_errmsg(), "stdin:7: duplicate key \"k\"",
	    "nested duplicate named");
	is_int(h2k_jsonl_next(&r, &o), 1, "escaped backslash before u0000 is fine");
	is_str(h2k_json_str(o, "name"), "a\\u0000", "literal text kept");
	is_str(h2k_json_str(o, "k"), "\"\001", "\\u0001 is a character, kept");
	cJSON_Delete(o);
	is_int(h2k_jsonl_next(&r, &o), 1, "same key in two objects is fine");
	is_str(h2k_json_str(o, "name"), "\xc3\xa9\xe2\x80\xae", "UTF-8 kept");
	cJSON_Delete(o);
	is_int(h2k_jsonl_next(&r, &o), 0, "EOF");
	h2k_jsonl_free(&r);
	fclose(f);
}

/* Many keys: the duplicate check is linear (was: first value won). */
static void
many_keys(void)
{
	size_t n = 200000;
	struct h2k_buf b = {0};
	struct h2k_jsonl r;
	cJSON *o;

	h2k_buf_append(&b, "{", 1);
	for (size_t i = 0; i < n; i++)
		h2k_buf_printf(&b, "\"k%zu\":%zu,", i, i);
	h2k_buf_append(&b, "\"k7\":0}\n", 9);
	FILE *f = mem(b.data, b.len);
	double t0 = h2k_monotime();
	h2k_jsonl_init(&r, f, NULL);
	is_int(h2k_jsonl_next(&r, &o), -1, "duplicate among 200k keys refused");
	is_str(h2k_errmsg(), "stdin:1: duplicate key \"k7\"", "and named");
	ok(h2k_monotime() - t0 < 2, "in under 2 s (%.2f s)", h2k_monotime() - t0);
	h2k_jsonl_free(&r);
	fclose(f);
	h2k_buf_free(&b);
}

/* Output stays exact JSON but carries nothing a terminal obeys. */
static void
writer_safe(void)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "name", "a\033]0;t\007\xc2\x9b\xe2\x80\xae\xe2\x80\xa8\xc3\xa9");
	char *s = h2k_json_print(o);
	is_str(s, "{\"name\":\"a\\u001b]0;t\\u0007\\u009b\\u202e\\u2028\xc3\xa9\"}",
	    "C1, bidi, U+2028 written as \\uXXXX, e-acute raw");
	cJSON *back = cJSON_Parse(s);
	is_str(h2k_json_str(back, "name"), h2k_json_str(o, "name"),
	    "and it reads back as the same string");
	cJSON_Delete(back);
	cJSON_Delete(o);
	free(s);
}

int
main(void)
{
	reader_strict();
	many_keys();
	writer_safe();
	reader_basics();
	reader_limits();
	reader_bound();
	writer();
	signals();
	return tap_done();
}
