/*
 * cmd.h - what every command shares on the command side: the start of
 * main, the way an error reaches the user, option numbers.  Linked into
 * each bin/h2k-*, never into libh2k.a (the library must not exit).
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * In the manner of git's usage.c: one place prints "h2k-X: why" and
 * exits with the code of lib/h2k.h's table.  A failing lib call has set
 * the error slot: h2k_die() reports it; a command's own check uses
 * h2k_diex() with an exit code; a bad option value is exit 2.
 */
#ifndef H2K_CMD_H
#define H2K_CMD_H

#include "h2k.h"

/* The command's name, as it prefixes every message. */
extern const char *h2k_progname;

/*
 * First thing in main: name the command, set up logging (H2K_LOG_LEVEL,
 * stderr escaping), and make the process undumpable (it will hold a
 * password or a session cookie).  Exits on failure.
 */
void h2k_cmd_init(const char *name);

/*
 * fn for SIGINT, SIGTERM and SIGHUP, without SA_RESTART (a blocked read or
 * sleep returns, so the work notices and stops), and SIGPIPE ignored (a
 * closed stdout is EPIPE on the write, handled there).
 */
void h2k_cmd_signals(void (*fn)(int));

/* --version: "NAME VERSION" on stdout, exit 0. */
_Noreturn void h2k_version(void);
/*
 * -q (only errors) and -v (one level more, up to trace) onto *level,
 * which starts at h2k_log_getlevel() (H2K_LOG_LEVEL, else LOG_LEVEL).
 */
void h2k_cmd_loglevel(int ch, int *level);

/* "NAME: <h2k_errmsg()>" on stderr, then exit(h2k_errcode()). */
_Noreturn void h2k_die(void);
/* "NAME: <fmt>" on stderr, then exit(code). */
_Noreturn void h2k_diex(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The usage text on stderr, then exit 2. */
_Noreturn void h2k_usage(const char *text);
/* "NAME: <h2k_errmsg()>" on stderr; returns h2k_errcode(). */
int h2k_report(void);
/* "NAME: <fmt>" on stderr. */
void h2k_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Option values through lib/num.h; a bad one is "NAME: OPT: VALUE: why", exit 2. */
long long h2k_opt_int(const char *opt, const char *s, long long lo,
    long long hi);
long long h2k_opt_bytes(const char *opt, const char *s, long long lo,
    long long hi);
double h2k_opt_secs(const char *opt, const char *s, double lo, double hi);

#endif
