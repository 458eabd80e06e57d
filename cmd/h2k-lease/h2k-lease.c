/*
 * h2k-lease - open export leases on VMs: one JSON line per VM with the
 * lease and its device URLs, for h2k-fetch.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * VMs come from the arguments (inventory path, moref or unique name) or,
 * with none, from h2k-ls lines on stdin.  Each VM is done on its own: a
 * failure is reported on stderr and the others go on.  Each VM's step is
 * lib/export.c h2k_export_line: it removes a temporary snapshot and aborts
 * the lease whenever anything fails after their creation, including a
 * signal; once the line is written, the stages downstream own them.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cmd.h"
#include "export.h"
#include "h2k.h"
#include "jsonl.h"
#include "num.h"
#include "session.h"
#include "vim.h"

static volatile sig_atomic_t got_signal;

static void
on_signal(int sig)
{
	got_signal = sig;
}

static void
usage(void)
{
	h2k_usage(
	    "usage: h2k-lease [-hqVv] [-s session] [--snapshot | --shutdown | --power-off]\n"
	    "                 [--timeout seconds] [vm ...]\n");
}

struct run {
	struct h2k_vim *v;
	struct h2k_export_opts opts;
	int ok, failed, first_code;
	int said_cancel;  /* a VM's "interrupted" line is out: one is enough */
};

static void
fail(struct run *r, const char *where)
{
	if (where)
		h2k_say("%s: %s", where, h2k_errmsg());
	else
		h2k_report();
	if (!r->failed++)
		r->first_code = h2k_errcode();
	if (h2k_errcode() == H2K_EX_CANCEL)
		r->said_cancel = 1;
}

/* One VM: lib/export.c h2k_export_line, which undoes what it started on failure. */
static int
one(struct run *r, cJSON *line)
{
	return h2k_export_line(r->v, line, &r->opts, stdout, "stdout");
}

/* The VMs named on the command line, looked up as h2k_export_vm_lookup says. */
static void
from_args(struct run *r, int argc, char **argv)
{
	for (int i = 0; i < argc && !got_signal; i++) {
		cJSON *line = h2k_export_vm_lookup(r->v, argv[i]);
		if (!line || one(r, line) < 0)
			fail(r, NULL);
		else
			r->ok++;
		cJSON_Delete(line);
		if (h2k_errcode() == H2K_EX_SESSION && r->failed && !r->ok)
			break; /* every other VM would fail the same way */
	}
}

/* h2k-ls lines on stdin; a bad line is reported and the others go on. */
static void
from_stdin(struct run *r)
{
	struct h2k_jsonl in;
	cJSON *line;
	int rc;

	h2k_jsonl_init(&in, stdin, "stdin");
	while (!got_signal && (rc = h2k_jsonl_next(&in, &line)) != 0) {
		char where[64];
		snprintf(where, sizeof where, "stdin:%ld", in.lineno);
		if (rc < 0) {
			fail(r, NULL);
			/* a read error, not a bad line: nothing more
			 * will come (stdin a directory fails forever) */
			if (h2k_errcode() != H2K_EX_USAGE)
				break;
			continue;
		}
		if (one(r, line) < 0)
			fail(r, where);
		else
			r->ok++;
		cJSON_Delete(line);
	}
	h2k_jsonl_free(&in);
}

int
main(int argc, char **argv)
{
	enum { OPT_SNAPSHOT = 256, OPT_SHUTDOWN, OPT_POWEROFF, OPT_TIMEOUT };
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "power-off", no_argument, NULL, OPT_POWEROFF },
		{ "quiet", no_argument, NULL, 'q' },
		{ "session", required_argument, NULL, 's' },
		{ "shutdown", no_argument, NULL, OPT_SHUTDOWN },
		{ "snapshot", no_argument, NULL, OPT_SNAPSHOT },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct run r = { 0 };
	const char *spath = NULL;
	struct h2k_session sess = { 0 };
	char *path;
	int ch, level, modes = 0;

	h2k_cmd_init("h2k-lease");
	/* H2K_LOG_LEVEL, else LOG_LEVEL, else warn (h2k_log_init) */
	level = h2k_log_getlevel();
	r.opts.power = H2K_POWER_REFUSE;
	while ((ch = getopt_long(argc, argv, "hqs:Vv", longopts, NULL)) != -1) {
		switch (ch) {
		case 'q':
		case 'v':
			h2k_cmd_loglevel(ch, &level);
			break;
		case 's':
			spath = optarg;
			break;
		case 'V':
			h2k_version();
		case OPT_SNAPSHOT:
			r.opts.power = H2K_POWER_SNAPSHOT;
			modes++;
			break;
		case OPT_SHUTDOWN:
			r.opts.power = H2K_POWER_SHUTDOWN;
			modes++;
			break;
		case OPT_POWEROFF:
			r.opts.power = H2K_POWER_OFF;
			modes++;
			break;
		case OPT_TIMEOUT:
			r.opts.ready_timeout = r.opts.shutdown_timeout =
			    h2k_opt_secs("--timeout", optarg, H2K_NUM_ABOVE0,
			    86400);
			break;
		case 'h':
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (modes > 1)
		h2k_diex(H2K_EX_USAGE, "--snapshot, --shutdown and --power-off "
		    "exclude each other");
	if (argc == 0 && isatty(STDIN_FILENO))
		h2k_diex(H2K_EX_USAGE, "no VM named and standard input is a "
		    "terminal: name VMs, or pipe h2k-ls into h2k-lease");
	h2k_log_setlevel(level);

	/*
	 * Signals only set a flag: the work in progress notices it at the
	 * next step and undoes what it created.  No SA_RESTART so a sleep
	 * ends early.  SIGPIPE becomes EPIPE on the write, handled as a
	 * failure of that VM (and its lease is given back).
	 */
	h2k_cmd_signals(on_signal);
	r.opts.cancel = &got_signal;

	path = h2k_session_path(spath);
	if (!path || h2k_session_load(path, &sess) < 0) {
		free(path);
		return h2k_report();
	}
	free(path);
	r.v = h2k_vim_from_session(&sess);
	h2k_session_free(&sess);
	if (!r.v)
		return h2k_report();

	if (argc > 0)
		from_args(&r, argc, argv);
	else
		from_stdin(&r);
	h2k_vim_free(r.v);
	if (got_signal) {
		if (!r.said_cancel)
			h2k_say("interrupted by signal %d", (int)got_signal);
		return H2K_EX_CANCEL;
	}
	if (!r.failed)
		return r.ok || argc == 0 ? 0 : H2K_EX_FAIL;
	return r.ok ? H2K_EX_PARTIAL : r.first_code;
}
