/*
 * util.c - error slot, logging, allocation and buffers.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "h2k.h"

static _Thread_local char errbuf[1024];
static _Thread_local int errcode;

int
h2k_seterr(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errbuf, sizeof errbuf, fmt, ap);
	va_end(ap);
	/* One line: a newline from a server string must not forge log lines. */
	for (char *p = errbuf; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	errcode = code ? code : H2K_EX_FAIL;
	return -1;
}

int
h2k_adderr(const char *fmt, ...)
{
	char pre[512], old[sizeof errbuf];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(pre, sizeof pre, fmt, ap);
	va_end(ap);
	memcpy(old, errbuf, sizeof old);
	/* Truncation is fine: the message is for a human. */
	size_t n = strlen(pre);
	if (n > sizeof errbuf - 3)
		n = sizeof errbuf - 3;
	memcpy(errbuf, pre, n);
	memcpy(errbuf + n, ": ", 3);
	const char *o = old[0] ? old : "failed";
	size_t m = strnlen(o, sizeof errbuf - n - 3);
	memcpy(errbuf + n + 2, o, m);
	errbuf[n + 2 + m] = '\0';
	if (!errcode)
		errcode = H2K_EX_FAIL;
	return -1;
}

const char *
h2k_errmsg(void)
{
	return errbuf[0] ? errbuf : "unknown error";
}

int
h2k_errcode(void)
{
	return errcode ? errcode : H2K_EX_FAIL;
}

void
h2k_clearerr(void)
{
	errbuf[0] = '\0';
	errcode = 0;
}

/* --- logging ---------------------------------------------------------- */

static const char *logprog = "h2k";
static int loglevel = H2K_LOG_WARN;

void
h2k_log_init(const char *progname)
{
	const char *s, *e;
	int l;

	if (progname) {
		const char *slash = strrchr(progname, '/');
		logprog = slash ? slash + 1 : progname;
	}
	e = getenv("H2K_LOG_LEVEL");
	s = e ? e : getenv("LOG_LEVEL");
	if (s && (l = h2k_log_parselevel(s)) >= 0)
		loglevel = l;
}

void
h2k_log_setlevel(int level)
{
	if (level < H2K_LOG_ERROR)
		level = H2K_LOG_ERROR;
	if (level > H2K_LOG_TRACE)
		level = H2K_LOG_TRACE;
	loglevel = level;
}

int
h2k_log_getlevel(void)
{
	return loglevel;
}

int
h2k_log_parselevel(const char *s)
{
	static const char *names[] = {"error", "warn", "info", "debug", "trace"};

	if (!strcasecmp(s, "warning"))
		return H2K_LOG_WARN;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (!strcasecmp(s, names[i]))
			return (int)i;
	return -1;
}

void
h2k_log(int level, const char *fmt, ...)
{
	static const char *tag[] = {"error", "warning", "info", "debug", "trace"};
	char line[2048];
	va_list ap;
	int n;

	if (level > loglevel)
		return;
	n = snprintf(line, sizeof line, "%s: %s: ", logprog,
	    tag[level < 0 ? 0 : level > 4 ? 4 : level]);
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
	va_end(ap);
	for (char *p = line + n; *p; p++)
		if ((unsigned char)*p < 0x20 && *p != '\t')
			*p = ' ';
	/* One write so lines from threads do not interleave. */
	size_t len = strlen(line);
	line[len < sizeof line - 1 ? len : sizeof line - 2] = '\n';
	len = len < sizeof line - 1 ? len + 1 : sizeof line - 1;
	(void)!write(STDERR_FILENO, line, len);
}

/* --- allocation ------------------------------------------------------- */

void *
h2k_malloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		h2k_seterr(H2K_EX_FAIL, "out of memory");
	return p;
}

void *
h2k_calloc(size_t n, size_t m)
{
	void *p = calloc(n ? n : 1, m ? m : 1);

	if (!p)
		h2k_seterr(H2K_EX_FAIL, "out of memory");
	return p;
}

void *
h2k_realloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (!q)
		h2k_seterr(H2K_EX_FAIL, "out of memory");
	return q;
}

char *
h2k_strdup(const char *s)
{
	char *p = strdup(s ? s : "");

	if (!p)
		h2k_seterr(H2K_EX_FAIL, "out of memory");
	return p;
}

char *
h2k_asprintf(const char *fmt, ...)
{
	va_list ap;
	char *p;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&p, fmt, ap);
	va_end(ap);
	if (n < 0) {
		h2k_seterr(H2K_EX_FAIL, "out of memory");
		return NULL;
	}
	return p;
}

/* --- buffers ---------------------------------------------------------- */

int
h2k_buf_append(struct h2k_buf *b, const void *p, size_t n)
{
	if (b->max && b->len + n > b->max)
		return h2k_seterr(H2K_EX_NET, "response larger than %zu bytes",
		    b->max);
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *d;

		while (cap < b->len + n + 1)
			cap *= 2;
		if (b->secret) {
			/* realloc would free the old block unwiped */
			if (!(d = h2k_malloc(cap)))
				return -1;
			if (b->data) {
				memcpy(d, b->data, b->len + 1);
				h2k_wipe(b->data, b->cap);
				free(b->data);
			}
		} else if (!(d = h2k_realloc(b->data, cap)))
			return -1;
		b->data = d;
		b->cap = cap;
	}
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int
h2k_buf_printf(struct h2k_buf *b, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n, r;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		return h2k_seterr(H2K_EX_FAIL, "out of memory");
	r = h2k_buf_append(b, s, (size_t)n);
	free(s);
	return r;
}

int
h2k_buf_xmlesc(struct h2k_buf *b, const char *s)
{
	const char *run = s;

	for (; *s; s++) {
		const char *rep;

		switch (*s) {
		case '&': rep = "&amp;"; break;
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '"': rep = "&quot;"; break;
		case '\'': rep = "&apos;"; break;
		/* A bare CR reaches the server as LF (XML end-of-line rule):
		 * a password holding one would never match. */
		case '\r': rep = "&#13;"; break;
		default: continue;
		}
		if (h2k_buf_append(b, run, (size_t)(s - run)) < 0 ||
		    h2k_buf_append(b, rep, strlen(rep)) < 0)
			return -1;
		run = s + 1;
	}
	return h2k_buf_append(b, run, (size_t)(s - run));
}

void
h2k_buf_free(struct h2k_buf *b)
{
	if (b->secret && b->data)
		h2k_wipe(b->data, b->cap);
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

void
h2k_wipe(void *p, size_t n)
{
	if (p && n)
		explicit_bzero(p, n);
}

void
h2k_freesecret(char *s)
{
	if (s) {
		h2k_wipe(s, strlen(s));
		free(s);
	}
}

/*
 * A core file (ulimit -c, a crash) or a debugger of the same user would
 * read the password or the session cookie straight out of memory.  The
 * hard limit is lowered too, so nothing this process runs can raise it
 * again.  Not dumpable also makes /proc/PID/environ, mem and maps
 * unreadable to the same user; /proc/PID/stat and cmdline stay readable.
 */
int
h2k_nodump(void)
{
	struct rlimit rl = { 0, 0 };

	if (setrlimit(RLIMIT_CORE, &rl) < 0)
		return h2k_seterr(H2K_EX_FAIL, "cannot turn off core dumps: %s",
		    strerror(errno));
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return h2k_seterr(H2K_EX_FAIL, "cannot make the process "
		    "non-dumpable: %s", strerror(errno));
	return 0;
}

const char *
h2k_now_rfc3339(char buf[32])
{
	struct tm tm;
	time_t t = time(NULL);

	gmtime_r(&t, &tm);
	strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

double
h2k_monotime(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
