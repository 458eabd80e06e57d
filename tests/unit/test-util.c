/* Unit tests for lib/util.c. SPDX-License-Identifier: LGPL-3.0-or-later */
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <errno.h>
#include <unistd.h>

#include "h2k.h"
#include "tap.h"

/*
 * Keys whose plain FNV-1a hashes agree in their low 16 bits: at each of
 * 11 positions, two 3-byte blocks that lead from the same state to the
 * same state (low 16 bits; they depend on nothing else), so any choice
 * of blocks collides: 2048 keys, one bucket of a 65536-slot table.
 */
#define NPOS 11
static uint64_t
fnv_step(uint64_t h, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)b[i]) * 0x100000001b3u;
	return h;
}

static int
flood_keys(char keys[][3 * NPOS + 2], size_t *nkeys)
{
	static const char al[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	static uint16_t seen[1 << 16][2];  /* state -> block index + 1 */
	char blk[NPOS][2][3];
	uint64_t st = fnv_step(0xcbf29ce484222325u, "x", 1);

	for (int p = 0; p < NPOS; p++) {
		int found = 0;
		memset(seen, 0, sizeof seen);
		for (int a = 0; a < 36 && !found; a++)
			for (int b = 0; b < 36 && !found; b++)
				for (int c = 0; c < 36 && !found; c++) {
					char t[3] = { al[a], al[b], al[c] };
					uint64_t h = fnv_step(st, t, 3) & 0xffff;
					int idx = (a * 36 + b) * 36 + c + 1;
					if (seen[h][0]) {
						int o = seen[h][0] - 1;
						blk[p][0][0] = al[o / 1296];
						blk[p][0][1] = al[o / 36 % 36];
						blk[p][0][2] = al[o % 36];
						memcpy(blk[p][1], t, 3);
						/* only the low 16 bits matter */
						st = h;
						found = 1;
					} else
						seen[h][0] = (uint16_t)idx;
				}
		if (!found)
			return -1;
	}
	*nkeys = 1u << NPOS;
	for (size_t k = 0; k < *nkeys; k++) {
		keys[k][0] = 'x';
		for (int p = 0; p < NPOS; p++)
			memcpy(keys[k] + 1 + 3 * p, blk[p][(k >> p) & 1], 3);
		keys[k][1 + 3 * NPOS] = '\0';
	}
	return 0;
}

static size_t
buckets(char keys[][3 * NPOS + 2], size_t n, int seeded)
{
	static unsigned char used[1 << 16];
	size_t nb = 0;

	memset(used, 0, sizeof used);
	for (size_t k = 0; k < n; k++) {
		uint64_t h = seeded ? h2k_strhash(keys[k]) :
		    fnv_step(0xcbf29ce484222325u, keys[k], strlen(keys[k]));
		if (!used[h & 0xffff]) {
			used[h & 0xffff] = 1;
			nb++;
		}
	}
	return nb;
}

int
main(void)
{
	struct h2k_buf b = {0};

	is_int(h2k_seterr(H2K_EX_TLS, "bad %s\nline", "cert"), -1, "seterr returns -1");
	is_str(h2k_errmsg(), "bad cert\\nline", "newline escaped to keep one line");
	is_int(h2k_errcode(), H2K_EX_TLS, "exit class kept");
	h2k_adderr("login");
	is_str(h2k_errmsg(), "login: bad cert\\nline", "adderr prefixes");
	{
		char t[64];
		/* terminal escaping: ESC, C1 CSI, bidi override, U+2028,
		 * invalid UTF-8, DEL; safe UTF-8 passes */
		is_str(h2k_ttystr("a\033]0;x\007b\033[2J", t, sizeof t),
		    "a\\e]0;x\\x07b\\e[2J", "ESC and BEL escaped");
		is_str(h2k_ttystr("\xc2\x9b" "1m\xe2\x80\xae" "x\xe2\x80\xa8",
		    t, sizeof t), "\\u009b1m\\u202ex\\u2028",
		    "C1, bidi and line separator as \\uXXXX");
		is_str(h2k_ttystr("\x9b\xff\x7f\xc3\xa9\xe2\x81\xa6", t, sizeof t),
		    "\\x9b\\xff\\x7f\xc3\xa9\\u2066",
		    "invalid UTF-8 and DEL as \\xNN, e-acute kept");
		is_str(h2k_ttystr("\\e is \\ kept", t, sizeof t),
		    "\\e is \\ kept", "idempotent: backslash not doubled");
		is_str(h2k_ttystr("abc\033", t, 5), "abc", "cut on an escape boundary");
		h2k_seterr(H2K_EX_NET, "vm \xe2\x80\xae" "gpj.exe\x1b[31m");
		is_str(h2k_errmsg(), "vm \\u202egpj.exe\\e[31m", "seterr escapes");
		h2k_buf_ttyesc(&b, "a\tb\nc\033", 6, H2K_ESC_KEEPNL | H2K_ESC_KEEPTAB);
		is_str(b.data, "a\tb\nc\\e", "stream mode keeps tab and newline");
		h2k_buf_free(&b);
	}
	{
		/* one percent-decoder for config.c and http.c */
		char *d = h2k_pct_decode("a%41%6a%2F%zz%4", 15);
		is_str(d, "aAj/%zz%4", "pct_decode: both cases, bad escapes kept");
		free(d);
		d = h2k_pct_decode("%41%42", 5);
		is_str(d, "A%4", "pct_decode reads no byte past n");
		free(d);
		d = h2k_pct_decode("x%00y", 5);
		ok(d && d[0] == 'x' && d[1] == '\0' && d[2] == 'y',
		    "pct_decode: %%00 is a NUL byte (the callers refuse it)");
		free(d);
	}
	h2k_buf_xmlesc(&b, "a<b>&\"'c");
	is_str(b.data, "a&lt;b&gt;&amp;&quot;&apos;c", "xml escape");
	h2k_buf_free(&b);
	/* XML turns a bare CR into LF: a password holding one must survive. */
	h2k_buf_xmlesc(&b, "p\rw\r\nx\ty");
	is_str(b.data, "p&#13;w&#13;\nx\ty", "xml escape keeps CR as a reference");
	h2k_buf_free(&b);
	b.max = 4;
	is_int(h2k_buf_append(&b, "12345", 5), -1, "bounded buffer refuses overflow");
	is_int(h2k_errcode(), H2K_EX_NET, "overflow is a network error");
	h2k_buf_free(&b);
	{
		/* h2k_buf_readfd: a pipe of 200000 bytes (more than one read),
		 * whole; then the same past a bound: EFBIG, what fit kept */
		int pfd[2];
		struct h2k_buf rb = {0}, small = {.max = 100000};
		static char big[200000];
		memset(big, 'z', sizeof big);
		big[sizeof big - 1] = 'E';
		for (int pass = 0; pass < 2; pass++) {
			struct h2k_buf *t = pass ? &small : &rb;
			int rc;
			if (pipe(pfd) < 0)
				break;
			pid_t pid = fork();
			if (pid == 0) {
				close(pfd[0]);
				(void)!write(pfd[1], big, sizeof big);
				_exit(0);
			}
			close(pfd[1]);
			errno = 0;
			rc = h2k_buf_readfd(t, pfd[0]);
			if (pass == 0)
				ok(rc == 0 && rb.len == sizeof big &&
				    rb.data[sizeof big - 1] == 'E' &&
				    rb.data[sizeof big] == '\0',
				    "buf_readfd: a pipe read to its end (%zu bytes)", rb.len);
			else
				ok(rc == -1 && errno == EFBIG && small.len <= 100000 &&
				    small.len > 0, "buf_readfd: past max is EFBIG "
				    "(%zu kept)", small.len);
			close(pfd[0]);
			waitpid(pid, NULL, 0);
		}
		h2k_buf_free(&rb);
		h2k_buf_free(&small);
		is_int(h2k_buf_readfd(&rb, -1), -1, "buf_readfd: a bad fd fails");
		is_int(errno, EBADF, "with read's errno");
	}
	{
		/* h2k_cond_wait: nobody signals, so it times out after s */
		pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
		pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
		pthread_mutex_lock(&mu);
		double t0 = h2k_monotime();
		int rc = h2k_cond_wait(&cv, &mu, 0.25);
		double dt = h2k_monotime() - t0;
		pthread_mutex_unlock(&mu);
		ok(rc == ETIMEDOUT && dt >= 0.24 && dt < 5,
		    "cond_wait: times out after the time given (%.3f s)", dt);
	}
	/* A secret buffer keeps its content across growth. */
	struct h2k_buf sb = {.secret = 1};
	for (int i = 0; i < 100; i++)
		h2k_buf_append(&sb, "0123456789", 10);
	ok(sb.len == 1000 && sb.cap >= 1001 && !memcmp(sb.data + 990, "0123456789", 10),
	    "secret buffer grows with its content");
	h2k_buf_free(&sb);
	ok(sb.data == NULL && sb.cap == 0, "and frees");
	struct rlimit rl;
	is_int(h2k_nodump(), 0, "h2k_nodump");
	is_int(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0, "not dumpable");
	ok(getrlimit(RLIMIT_CORE, &rl) == 0 && rl.rlim_cur == 0 && rl.rlim_max == 0,
	    "core limit 0, soft and hard");
	is_int(h2k_log_parselevel("DEBUG"), H2K_LOG_DEBUG, "level names are case-blind");
	is_int(h2k_log_parselevel("loud"), -1, "unknown level refused");

	/* h2k_first_dup: the earliest repeat, and where its key came first */
	const char *k1[] = {"b", "a", "c", "a", "b", "b"};
	size_t f = 99, sec = 99;
	is_int(h2k_first_dup(k1, 6, &f, &sec), 1, "first_dup: found");
	ok(f == 1 && sec == 3, "first_dup: 'a' at 3, first at 1 (got %zu %zu)",
	    f, sec);
	const char *k2[] = {"x", "y", "z", "X", "x\t"};
	is_int(h2k_first_dup(k2, 5, &f, &sec), 0, "first_dup: case matters");
	is_int(h2k_first_dup(k2, 0, &f, &sec), 0, "first_dup: no keys");
	const char *k3[] = {"q", "p", "p", "q"};
	ok(h2k_first_dup(k3, 4, &f, &sec) == 1 && f == 1 && sec == 2,
	    "first_dup: the lower second index wins (got %zu %zu)", f, sec);
	const char *k4[] = {"", "", ""};
	ok(h2k_first_dup(k4, 3, &f, &sec) == 1 && f == 0 && sec == 1,
	    "first_dup: empty keys");

	/* h2k_strhash: keys made to share a plain FNV-1a bucket spread out */
	static char fk[1 << NPOS][3 * NPOS + 2];
	size_t nfk = 0;
	ok(flood_keys(fk, &nfk) == 0 && nfk == 2048, "flood keys made");
	is_int((int)buckets(fk, nfk, 0), 1, "plain FNV-1a: all in one bucket");
	size_t nb = buckets(fk, nfk, 1);
	ok(nb > 1500, "h2k_strhash: spread over %zu buckets of 65536", nb);
	ok(h2k_strhash("vm-1") == h2k_strhash("vm-1") &&
	    h2k_strhash("vm-1") != h2k_strhash("vm-2"), "h2k_strhash: stable");
	return tap_done();
}
