/*
 * h2k-lease - open export leases on VMs: one JSON line per VM with the
 * lease and its device URLs, for h2k-fetch.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * VMs come from the arguments (inventory path, moref or unique name) or,
 * with none, from h2k-ls lines on stdin.  Each VM is done on its own: a
 * failure is reported on stderr and the others go on.  A temporary
 * snapshot is removed here whenever anything fails after its creation,
 * including a signal; once the line is written, the stages downstream own
 * the lease and the snapshot.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "export.h"
#include "h2k.h"
#include "jsonl.h"
#include "lease.h"
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

/*
 * One VM: line holds what we know of it (h2k-ls fields or the lookup's);
 * it gets "lease" and "devices" and goes to stdout.
 */
static int
one(struct run *r, cJSON *line)
{
	const char *moref = NULL, *name = NULL;
	cJSON *m = cJSON_GetObjectItemCaseSensitive(line, "moref");
	cJSON *n = cJSON_GetObjectItemCaseSensitive(line, "name");
	struct h2k_export e;
	char *ps, label[512];
	cJSON *lj, *dj;

	if (cJSON_IsString(m))
		moref = m->valuestring;
	if (cJSON_IsString(n))
		name = n->valuestring;
	if (!moref || !*moref)
		return h2k_seterr(H2K_EX_USAGE, "no \"moref\" field");
	snprintf(label, sizeof label, "%s", name ? name : moref);

	/* The line may be old: the power state that matters is today's. */
	ps = h2k_export_power_state(r->v, moref);
	if (!ps) {
		if (h2k_errcode() == H2K_EX_NOTFOUND)
			h2k_seterr(H2K_EX_NOTFOUND, "%s: no such VM (%s)",
			    label, moref);
		return -1;
	}
	if (h2k_export_start(r->v, moref, label, ps, &r->opts, &e) < 0) {
		free(ps);
		return -1;
	}
	free(ps);
	lj = h2k_export_lease_json(&e);
	dj = h2k_export_devices_json(&e);
	if (!lj || !dj) {
		cJSON_Delete(lj);
		cJSON_Delete(dj);
		goto undo;
	}
	cJSON_DeleteItemFromObjectCaseSensitive(line, "lease");
	cJSON_DeleteItemFromObjectCaseSensitive(line, "devices");
	cJSON_AddItemToObject(line, "lease", lj);
	cJSON_AddItemToObject(line, "devices", dj);
	if (e.power_action) {
		/* We changed it: the line must not carry the old state on. */
		cJSON_DeleteItemFromObjectCaseSensitive(line, "power_state");
		cJSON_AddStringToObject(line, "power_state", "poweredOff");
	}
	if (got_signal) {
		h2k_seterr(H2K_EX_CANCEL, "%s: interrupted", label);
		goto undo;
	}
	if (h2k_json_write(stdout, line) < 0) {
		h2k_adderr("%s: writing stdout", label);
		goto undo;
	}
	h2k_info("%s: lease %s ready, %zu device(s)%s", label, e.lease, e.ndev,
	    e.snapshot ? " (from a temporary snapshot)" : "");
	h2k_export_free(&e);
	return 0;
undo:
	/* Nobody downstream has seen this lease: it and its snapshot are ours. */
	h2k_export_undo(r->v, &e, got_signal ? "export cancelled by h2k-lease" :
	    "export failed in h2k-lease");
	h2k_export_free(&e);
	return -1;
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

	if (argc > 0) {
		for (int i = 0; i < argc && !got_signal; i++) {
			cJSON *line = h2k_export_vm_lookup(r.v, argv[i]);
			if (!line || one(&r, line) < 0)
				fail(&r, NULL);
			else
				r.ok++;
			cJSON_Delete(line);
			if (h2k_errcode() == H2K_EX_SESSION && r.failed && !r.ok)
				break; /* every other VM would fail the same way */
		}
	} else {
		struct h2k_jsonl in;
		cJSON *line;
		int rc;

		h2k_jsonl_init(&in, stdin, "stdin");
		while (!got_signal && (rc = h2k_jsonl_next(&in, &line)) != 0) {
			char where[64];
			snprintf(where, sizeof where, "stdin:%ld", in.lineno);
			if (rc < 0) {
				fail(&r, NULL);
				/* a read error, not a bad line: nothing more
				 * will come (stdin a directory fails forever) */
				if (h2k_errcode() != H2K_EX_USAGE)
					break;
				continue;
			}
			if (one(&r, line) < 0)
				fail(&r, where);
			else
				r.ok++;
			cJSON_Delete(line);
		}
		h2k_jsonl_free(&in);
	}
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
