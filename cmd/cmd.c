/*
 * cmd.c - the commands' shared prologue and error reporting (cmd.h).
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * Messages go through stdio's stderr, which h2k_log_init routes through
 * the terminal escaping (h2k.h): a server's string in h2k_errmsg() or in
 * a command's own message cannot reach the terminal raw.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "num.h"

const char *h2k_progname = "h2k";

void
h2k_cmd_init(const char *name)
{
	h2k_progname = name;
	h2k_log_init(name);
	if (h2k_nodump() < 0)
		h2k_die();
}

void
h2k_cmd_signals(void (*fn)(int))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = fn;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

void
h2k_version(void)
{
	printf("%s %s\n", h2k_progname, H2K_VERSION);
	exit(H2K_EX_OK);
}

void
h2k_cmd_loglevel(int ch, int *level)
{
	if (ch == 'q')
		*level = H2K_LOG_ERROR;
	else if (ch == 'v' && *level < H2K_LOG_TRACE)
		(*level)++;
}

static void
vsay(const char *fmt, va_list ap)
{
	fprintf(stderr, "%s: ", h2k_progname);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void
h2k_say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay(fmt, ap);
	va_end(ap);
}

int
h2k_report(void)
{
	h2k_say("%s", h2k_errmsg());
	return h2k_errcode();
}

void
h2k_die(void)
{
	exit(h2k_report());
}

void
h2k_diex(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay(fmt, ap);
	va_end(ap);
	exit(code);
}

void
h2k_usage(const char *text)
{
	fputs(text, stderr);
	exit(H2K_EX_USAGE);
}

long long
h2k_opt_int(const char *opt, const char *s, long long lo, long long hi)
{
	long long v;

	if (h2k_parse_int(opt, s, lo, hi, &v) < 0)
		h2k_die();
	return v;
}

long long
h2k_opt_bytes(const char *opt, const char *s, long long lo, long long hi)
{
	long long v;

	if (h2k_parse_bytes(opt, s, lo, hi, &v) < 0)
		h2k_die();
	return v;
}

double
h2k_opt_secs(const char *opt, const char *s, double lo, double hi)
{
	double v;

	if (h2k_parse_secs(opt, s, lo, hi, &v) < 0)
		h2k_die();
	return v;
}
