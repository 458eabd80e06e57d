/*
 * util.c - error slot, logging, allocation and buffers.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "h2k.h"

static const char *ttystr(const char *s, char *buf, size_t len, int flags);

static _Thread_local char errbuf[1024];
static _Thread_local int errcode;

int
h2k_seterr(int code, const char *fmt, ...)
{
	char raw[sizeof errbuf];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(raw, sizeof raw, fmt, ap);
	va_end(ap);
	/*
	 * Messages quote server strings (names, faults): escaped here, so
	 * every path that shows h2k_errmsg() shows it safely, on one line.
	 */
	h2k_ttystr(raw, errbuf, sizeof errbuf);
	errcode = code ? code : H2K_EX_FAIL;
	return -1;
}

int
h2k_adderr(const char *fmt, ...)
{
	char raw[512], pre[512], old[sizeof errbuf];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(raw, sizeof raw, fmt, ap);
	va_end(ap);
	h2k_ttystr(raw, pre, sizeof pre);
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

/*
 * A command started with stdin, stdout or stderr closed would get that
 * number back from its first open(2) (a curl socket, a lock file) and
 * write its JSON lines or messages into it.  Each closed one is opened on
 * /dev/null the wrong way round (stdin write-only, stdout and stderr
 * read-only): the number stays taken and a write fails (EBADF), which
 * the command reports like any failed write (h2k-ovf >&-: exit 8).
 */
static void
std_fds(void)
{
	for (int fd = 0; fd <= 2; fd++)
		if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
			int n = open("/dev/null", fd ? O_RDONLY : O_WRONLY);
			if (n >= 0 && n != fd)
				close(n);  /* a lower one was closed: taken now */
		}
}

void
h2k_log_init(const char *progname)
{
	const char *s, *e;
	int l;

	std_fds();
	if (progname) {
		const char *slash = strrchr(progname, '/');
		logprog = slash ? slash + 1 : progname;
	}
	e = getenv("H2K_LOG_LEVEL");
	s = e ? e : getenv("LOG_LEVEL");
	if (s && (l = h2k_log_parselevel(s)) >= 0)
		loglevel = l;
	(void)h2k_stderr_escape();
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
	char line[2048], raw[2048];
	va_list ap;
	int n;

	if (level > loglevel)
		return;
	n = snprintf(line, sizeof line, "%s: %s: ", logprog,
	    tag[level < 0 ? 0 : level > 4 ? 4 : level]);
	va_start(ap, fmt);
	vsnprintf(raw, sizeof raw, fmt, ap);
	va_end(ap);
	/* One line, nothing a terminal would obey: names come from servers. */
	ttystr(raw, line + n, sizeof line - (size_t)n, H2K_ESC_KEEPTAB);
	/* One write so lines from threads do not interleave. */
	size_t len = strlen(line);
	line[len < sizeof line - 1 ? len : sizeof line - 2] = '\n';
	len = len < sizeof line - 1 ? len + 1 : sizeof line - 1;
	(void)!write(STDERR_FILENO, line, len);
}

/* --- terminal escaping (see h2k.h) -------------------------------------- */

size_t
h2k_utf8_seq(const unsigned char *s, size_t n, unsigned *cp)
{
	unsigned c, v;
	size_t k;

	if (n == 0)
		return 0;
	c = s[0];
	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		k = 2;
		v = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		k = 3;
		v = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		k = 4;
		v = c & 0x07;
	} else
		return 0;
	if (k > n)
		return 0;
	for (size_t i = 1; i < k; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		v = (v << 6) | (s[i] & 0x3f);
	}
	if ((k == 3 && v < 0x800) || (k == 4 && v < 0x10000) || v > 0x10ffff ||
	    (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return k;
}

int
h2k_is_hex64(const char *s)
{
	if (!s || strlen(s) != 64)
		return 0;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') ||
		    (*s >= 'A' && *s <= 'F')))
			return 0;
	return 1;
}

uint32_t
h2k_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

uint64_t
h2k_le64(const unsigned char *p)
{
	return (uint64_t)h2k_le32(p) | (uint64_t)h2k_le32(p + 4) << 32;
}

size_t
h2k_utf8_bad(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	unsigned cp;

	for (size_t i = 0; i < n;) {
		size_t k = u[i] < 0x80 ? 1 : h2k_utf8_seq(u + i, n - i, &cp);
		if (!k)
			return i + 1;
		i += k;
	}
	return 0;
}

int
h2k_cp_unsafe(unsigned cp)
{
	return cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f) ||
	    (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) ||
	    cp == 0x2028 || cp == 0x2029;
}

/*
 * The escape for the sequence at s[0..n) into out[16]: its length, and
 * *adv the input bytes it stands for.  0 when the bytes pass as they are.
 */
static size_t
esc_one(const unsigned char *s, size_t n, int flags, char out[16], size_t *adv)
{
	unsigned cp;
	size_t k = h2k_utf8_seq(s, n, &cp);

	*adv = k ? k : 1;
	if (k == 0)
		return (size_t)snprintf(out, 16, "\\x%02x", s[0]);
	if (!h2k_cp_unsafe(cp))
		return 0;
	switch (cp) {
	case '\n':
		if (flags & H2K_ESC_KEEPNL)
			return 0;
		return (size_t)snprintf(out, 16, "\\n");
	case '\t':
		if (flags & H2K_ESC_KEEPTAB)
			return 0;
		return (size_t)snprintf(out, 16, "\\t");
	case '\r':
		return (size_t)snprintf(out, 16, "\\r");
	case 0x1b:
		return (size_t)snprintf(out, 16, "\\e");
	}
	if (cp < 0x80)
		return (size_t)snprintf(out, 16, "\\x%02x", cp);
	return (size_t)snprintf(out, 16, "\\u%04x", cp);
}

int
h2k_buf_ttyesc(struct h2k_buf *b, const char *s, size_t n, int flags)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, run = 0;

	while (i < n) {
		char e[16];
		size_t adv, el = esc_one(u + i, n - i, flags, e, &adv);

		if (el) {
			if (h2k_buf_append(b, s + run, i - run) < 0 ||
			    h2k_buf_append(b, e, el) < 0)
				return -1;
			run = i + adv;
		}
		i += adv;
	}
	return h2k_buf_append(b, s + run, n - run);
}

static const char *
ttystr(const char *s, char *buf, size_t len, int flags)
{
	const unsigned char *u = (const unsigned char *)(s ? s : "");
	size_t n = strlen((const char *)u), i = 0, o = 0;

	if (len == 0)
		return buf;
	while (i < n) {
		char e[16];
		size_t adv, el = esc_one(u + i, n - i, flags, e, &adv);
		const char *src = el ? e : (const char *)u + i;
		size_t sl = el ? el : adv;

		/* whole escapes and whole characters only */
		if (o + sl >= len)
			break;
		memcpy(buf + o, src, sl);
		o += sl;
		i += adv;
	}
	buf[o] = '\0';
	return buf;
}

const char *
h2k_ttystr(const char *s, char *buf, size_t len)
{
	return ttystr(s, buf, len, 0);
}

/*
 * The stderr filter.  Unbuffered, so its lines keep their order with the
 * write(2)s of h2k_log and the bars; a character split over two writes is
 * held back (carry) until the rest comes.
 */
struct esc_cookie {
	int fd;
	unsigned char carry[4];
	size_t ncarry;
};

static void
put_fd(int fd, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

/* Bytes at the end of s[0..n) that may start a character not yet whole. */
static size_t
partial_tail(const unsigned char *s, size_t n)
{
	for (size_t back = 1; back <= 3 && back <= n; back++) {
		unsigned c = s[n - back];
		size_t need = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 && c <= 0xef ?
		    3 : c >= 0xc2 && c <= 0xdf ? 2 : 0;
		if ((c & 0xc0) == 0x80)
			continue;
		return need > back ? back : 0;
	}
	return 0;
}

static ssize_t
esc_write(void *arg, const char *s, size_t n)
{
	struct esc_cookie *c = arg;
	struct h2k_buf in = {0}, out = {0};

	if (h2k_buf_append(&in, c->carry, c->ncarry) < 0 ||
	    h2k_buf_append(&in, s, n) < 0)
		goto raw;
	c->ncarry = partial_tail((unsigned char *)in.data, in.len);
	memcpy(c->carry, in.data + in.len - c->ncarry, c->ncarry);
	if (h2k_buf_ttyesc(&out, in.data, in.len - c->ncarry,
	    H2K_ESC_KEEPNL | H2K_ESC_KEEPTAB) < 0)
		goto raw;
	put_fd(c->fd, out.data, out.len);
	h2k_buf_free(&in);
	h2k_buf_free(&out);
	return (ssize_t)n;
raw:
	/* Out of memory: drop the message rather than show it raw. */
	h2k_buf_free(&in);
	h2k_buf_free(&out);
	c->ncarry = 0;
	return (ssize_t)n;
}

static int
esc_close(void *arg)
{
	struct esc_cookie *c = arg;
	struct h2k_buf out = {0};

	if (c->ncarry && h2k_buf_ttyesc(&out, (char *)c->carry, c->ncarry, 0) == 0)
		put_fd(c->fd, out.data, out.len);
	h2k_buf_free(&out);
	c->ncarry = 0;
	return 0;
}

int
h2k_stderr_escape(void)
{
	/* static: stderr is never closed, and the cookie must outlive it */
	static struct esc_cookie c = { .fd = STDERR_FILENO };
	static int done;
	cookie_io_functions_t io = { .write = esc_write, .close = esc_close };
	FILE *fp;

	if (done)
		return 0;
	if (!(fp = fopencookie(&c, "w", io)))
		return h2k_seterr(H2K_EX_FAIL, "stderr: %s", strerror(errno));
	setvbuf(fp, NULL, _IONBF, 0);
	fflush(stderr);
	stderr = fp;
	done = 1;
	return 0;
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

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

char *
h2k_pct_decode(const char *s, size_t n)
{
	char *out = h2k_malloc(n + 1), *o = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		int h, l;

		if (s[i] == '%' && i + 2 < n &&
		    (h = hexval((unsigned char)s[i + 1])) >= 0 &&
		    (l = hexval((unsigned char)s[i + 2])) >= 0) {
			*o++ = (char)(h << 4 | l);
			i += 2;
		} else
			*o++ = s[i];
	}
	*o = '\0';
	return out;
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
h2k_buf_readfd(struct h2k_buf *b, int fd)
{
	char chunk[65536];

	for (;;) {
		ssize_t r = read(fd, chunk, sizeof chunk);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			return 0;
		if (b->max && b->len + (size_t)r > b->max) {
			errno = EFBIG;
			return -1;
		}
		if (h2k_buf_append(b, chunk, (size_t)r) < 0) {
			errno = ENOMEM;
			return -1;
		}
	}
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

/* --- duplicate keys ---------------------------------------------------- */

struct keyat {
	const char *k;
	size_t i;
};

static int
keyat_cmp(const void *a, const void *b)
{
	const struct keyat *x = a, *y = b;
	int r = strcmp(x->k, y->k);

	return r ? r : x->i < y->i ? -1 : x->i > y->i;
}

/*
 * Not a hash set: FNV-1a's low bits depend only on the low bits of its
 * state, so keys that collide in them are easy to make, and with a fixed
 * hash 60000 such keys took 27 s (a 12 MB JSON line, minutes).  Sorting
 * (key, index) puts each key's occurrences together in input order.
 */
int
h2k_first_dup(const char *const *keys, size_t n, size_t *first,
    size_t *second)
{
	struct keyat *v;
	size_t best = SIZE_MAX, bfirst = 0;

	if (n < 2)
		return 0;
	if (!(v = h2k_calloc(n, sizeof *v)))
		return -1;
	for (size_t i = 0; i < n; i++) {
		v[i].k = keys[i];
		v[i].i = i;
	}
	qsort(v, n, sizeof *v, keyat_cmp);
	for (size_t i = 1; i < n; i++) {
		/* v[i - 1] is the first of its run only if it starts it */
		if (!strcmp(v[i - 1].k, v[i].k) &&
		    (i < 2 || strcmp(v[i - 2].k, v[i].k)) && v[i].i < best) {
			best = v[i].i;
			bfirst = v[i - 1].i;
		}
	}
	free(v);
	if (best == SIZE_MAX)
		return 0;
	*first = bfirst;
	*second = best;
	return 1;
}

/*
 * FNV-1a from a random start per process, then murmur3's finaliser so
 * the low bits a table uses depend on every bit of the state.  With a
 * fixed FNV-1a, 100000 morefs a server picked to share one bucket of
 * h2k-ls's table took 41 s to insert (0.2 s for ordinary ones), and an
 * inventory may hold 1000000 objects.
 */
static _Atomic uint64_t hash_seed;

uint64_t
h2k_strhash(const char *s)
{
	uint64_t h = atomic_load_explicit(&hash_seed, memory_order_relaxed);

	if (!h) {
		uint64_t r = 0, zero = 0;

		if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
			r = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15u ^
			    (uint64_t)getpid() ^ (uint64_t)(uintptr_t)&r;
		r |= 1;  /* 0 means not yet chosen */
		/* every thread ends up with the first value stored */
		atomic_compare_exchange_strong(&hash_seed, &zero, r);
		h = atomic_load(&hash_seed);
	}
	h ^= 0xcbf29ce484222325u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3u;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdu;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53u;
	h ^= h >> 33;
	return h;
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

void
h2k_sleep(double s)
{
	struct timespec ts;

	ts.tv_sec = (time_t)s;
	ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
	nanosleep(&ts, NULL);
}

int
h2k_cond_wait(pthread_cond_t *cv, pthread_mutex_t *mu, double s)
{
	struct timespec ts;

	/* the condition variables use the default clock, CLOCK_REALTIME */
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)s;
	ts.tv_nsec += (long)((s - (double)(time_t)s) * 1e9);
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return pthread_cond_timedwait(cv, mu, &ts);
}
