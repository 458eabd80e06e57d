/*
 * h2k.h - the one table every h2k command shares: exit codes, error
 * reporting, logging and small helpers.
 *
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * Library rule: nothing under lib/ exits or writes to stdout.  A function
 * that fails returns -1 (or NULL) after h2k_seterr() recorded a one-line
 * message and an exit class; the command reports it with h2k_errmsg() and
 * exits with h2k_errcode().  The error slot is thread-local so download
 * threads do not trample each other.
 */
#ifndef H2K_H
#define H2K_H

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define H2K_VERSION "0.1.0"
#define H2K_USER_AGENT "h2k/" H2K_VERSION

/*
 * Exit codes.  Listed under EXIT STATUS in every man page (man/h2k.7 is the
 * reference).  Keep this table and the man pages in step.
 */
enum h2k_exit {
	H2K_EX_OK = 0,       /* success */
	H2K_EX_FAIL = 1,     /* failure not covered below */
	H2K_EX_USAGE = 2,    /* bad usage, bad input line, bad config or job file */
	H2K_EX_SESSION = 3,  /* not logged in, session expired or rejected, bad login */
	H2K_EX_TLS = 4,      /* TLS trust failure: unverified certificate, pin mismatch */
	H2K_EX_PARTIAL = 5,  /* some items (VMs, jobs) failed, others succeeded */
	H2K_EX_NOTFOUND = 6, /* a named VM, path, job or object does not exist */
	H2K_EX_STATE = 7,    /* object in the wrong state (VM powered on, lease in error) */
	H2K_EX_IO = 8,       /* local I/O failure: disk full, EIO, permission */
	H2K_EX_NET = 9,      /* network or server failure after retries, protocol error */
	H2K_EX_CANCEL = 10,  /* cancelled (signal, h2k-job cancel) */
	H2K_EX_SECRET = 11,  /* a secret, session, config, CA or spool file is unsafe */
	H2K_EX_EXISTS = 12,  /* output belongs to another export, is complete, or is in use */
};

/* Record an error: printf-style one-line message and exit class. Returns -1. */
int h2k_seterr(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Prefix the current message with "what: " to add context. Returns -1. */
int h2k_adderr(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *h2k_errmsg(void);
int h2k_errcode(void);
void h2k_clearerr(void);

/* Logging to stderr; level from -v/-q, H2K_LOG_LEVEL or config LogLevel. */
enum h2k_loglevel {
	H2K_LOG_ERROR = 0,
	H2K_LOG_WARN = 1,
	H2K_LOG_INFO = 2,
	H2K_LOG_DEBUG = 3,
	H2K_LOG_TRACE = 4,
};
void h2k_log_init(const char *progname);
void h2k_log_setlevel(int level);
int h2k_log_getlevel(void);
/* Parse "error|warn|info|debug|trace" (also "warning"); -1 if unknown. */
int h2k_log_parselevel(const char *s);
void h2k_log(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
#define h2k_warn(...)  h2k_log(H2K_LOG_WARN, __VA_ARGS__)
#define h2k_info(...)  h2k_log(H2K_LOG_INFO, __VA_ARGS__)
#define h2k_debug(...) h2k_log(H2K_LOG_DEBUG, __VA_ARGS__)

/* Allocation that records ENOMEM as an h2k error (returns NULL). */
void *h2k_malloc(size_t n);
void *h2k_calloc(size_t n, size_t m);
void *h2k_realloc(void *p, size_t n);
char *h2k_strdup(const char *s);
char *h2k_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* s[0..n) percent-decoded into a new string; a '%' without two hex digits
 * after it stays as it is.  "%00" becomes a NUL: callers that care check. */
char *h2k_pct_decode(const char *s, size_t n);

/* Growable byte buffer, always NUL-terminated. */
struct h2k_buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max; /* 0: unbounded; else appends past max fail */
	int secret; /* holds a credential: growth wipes the old block */
};
int h2k_buf_append(struct h2k_buf *b, const void *p, size_t n);
int h2k_buf_printf(struct h2k_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Append s with XML special characters escaped. */
int h2k_buf_xmlesc(struct h2k_buf *b, const char *s);
void h2k_buf_free(struct h2k_buf *b);
/*
 * Append what fd holds, up to its end, to b (EINTR retried; b->max bounds
 * it).  0 at the end; -1 with errno EFBIG past b->max, ENOMEM, or read(2)'s
 * errno: the caller names the file in its message.  What was read stays.
 */
int h2k_buf_readfd(struct h2k_buf *b, int fd);

/*
 * Strings from outside (server names and faults, JSON input, job files,
 * stage stderr) shown on a terminal.  Unsafe: C0 controls and DEL, the C1
 * controls U+0080-U+009F (U+009B is CSI), the bidi embeddings, overrides
 * and isolates (U+202A-U+202E, U+2066-U+2069) and the line and paragraph
 * separators U+2028/U+2029.  They are shown as ls -b and git do: "\e",
 * "\n", "\r", "\t", "\xNN" (other C0, DEL, bytes of invalid UTF-8),
 * "\uXXXX" (the others).  A backslash is not doubled: the result is for
 * reading, never parsed back, and escaping it again changes nothing, so a
 * message may go through h2k_seterr twice.
 */
/* Length (1-4) of the valid UTF-8 sequence at s[0..n) and its code point
 * in *cp; 0 if invalid (overlong, surrogate, past U+10FFFF, cut short). */
size_t h2k_utf8_seq(const unsigned char *s, size_t n, unsigned *cp);
/* Column (1-based) of the first byte of s[0..n) that is not valid
 * UTF-8, 0 if none.  JSON strings are UTF-8: a path that is not cannot
 * go down the pipeline. */
size_t h2k_utf8_bad(const char *s, size_t n);
/* 1 if s is 64 hexadecimal digits (a SHA-256 as text), either case. */
int h2k_is_hex64(const char *s);
/* Little-endian integers of on-disk headers (VMDK). */
uint32_t h2k_le32(const unsigned char *p);
uint64_t h2k_le64(const unsigned char *p);
/* 1 if the code point must not reach a terminal raw (list above). */
int h2k_cp_unsafe(unsigned cp);
#define H2K_ESC_KEEPNL  1  /* newline passes raw (line-oriented streams) */
#define H2K_ESC_KEEPTAB 2  /* tab passes raw */
/* Append s[0..n) escaped. */
int h2k_buf_ttyesc(struct h2k_buf *b, const char *s, size_t n, int flags);
/* s escaped into buf (cut on an escape boundary to fit); returns buf. */
const char *h2k_ttystr(const char *s, char *buf, size_t len);
/*
 * Route the stdio stream stderr through the escaping (newline and tab
 * pass), so err(3), warnx(3) and fprintf(stderr) in the commands cannot
 * put a server's string raw on the terminal.  h2k_log_init calls it; fd 2
 * itself is untouched (the progress bars draw with write(2)).
 */
int h2k_stderr_escape(void);

/*
 * The first repeat among keys[0..n) (all non-NULL): *second is the lowest
 * index whose key came before, *first that earlier index.  1 if found, 0
 * if all differ, -1 on ENOMEM (error set).  Sorts, O(n log n) whatever the
 * keys: a hash set with a fixed hash lets crafted keys share one bucket.
 */
int h2k_first_dup(const char *const *keys, size_t n, size_t *first,
    size_t *second);

/*
 * A hash for tables keyed by strings from outside (a server's morefs):
 * seeded per process, so nobody can pick keys that share a bucket.
 * Thread-safe; the same string hashes the same within a process.
 */
uint64_t h2k_strhash(const char *s);

/* Wipe memory that held a secret, in a way the compiler keeps. */
void h2k_wipe(void *p, size_t n);
/* Free a secret string after wiping it. */
void h2k_freesecret(char *s);
/*
 * For every command that holds a password or a session cookie, first thing
 * in main: no core file (RLIMIT_CORE 0, soft and hard) and not dumpable
 * (PR_SET_DUMPABLE 0: no ptrace, /proc/PID/mem or environ for the same user).
 */
int h2k_nodump(void);

/* Current time as RFC 3339 UTC ("2026-11-25T17:18:57Z") into buf[32]. */
const char *h2k_now_rfc3339(char buf[32]);
/* Monotonic clock in seconds. */
double h2k_monotime(void);
/* Sleep s seconds; a signal ends it early (EINTR), which the callers want. */
void h2k_sleep(double s);
/* pthread_cond_timedwait on cv (mu held) for at most s seconds from now;
 * its result (0: woken, ETIMEDOUT). */
int h2k_cond_wait(pthread_cond_t *cv, pthread_mutex_t *mu, double s);

#endif
