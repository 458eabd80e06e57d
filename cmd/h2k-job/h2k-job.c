/*
 * h2k-job - spool-directory job runner for VM exports.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * The subcommands: option handling, one call into the library, printing
 * and exit codes.  The runner (`h2k-job run`) is lib/runner.c, whose top
 * comment says how a job runs; the spool and its records are lib/spool.c.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "cmd.h"
#include "config.h"
#include "h2k.h"
#include "job.h"
#include "jsonl.h"
#include "num.h"
#include "runner.h"
#include "spool.h"

static void
usage(void)
{
	h2k_usage(
	    "usage: h2k-job [--spool dir] [-c config] [-s session] [-qv] command ...\n"
	    "       h2k-job submit file ... | -\n"
	    "       h2k-job run [--once] [--workers n] [--max-attempts n] [--grace seconds]\n"
	    "       h2k-job ls [--all] [--status status]\n"
	    "       h2k-job show id\n"
	    "       h2k-job cancel [--timeout seconds] id ...\n"
	    "       h2k-job status\n"
	    "       h2k-job wait [--timeout seconds] id ...\n"
	    "       h2k-job serve [--listen addr:port] [--api-key-file file]\n"
	    "                     [--cert file --key file]\n");
}

/* --- options ------------------------------------------------------------- */

static struct {
	const char *spool;
	const char *config;
	const char *session;
	int verbose, quiet;
	int max_attempts;
	/* ls */
	int all;
	const char *status;
	/* wait, cancel */
	double timeout;
	char *cfg_listen;       /* DaemonAddr (or H2K_LISTEN) */
	/* from the config file */
	int download_workers;   /* DownloadWorkers: default -j for h2k-fetch */
	char *cfg_spool;        /* Spool (or H2K_SPOOL) */
	int level_set;          /* -v/-q given: config LogLevel does not apply */
} opt = {.max_attempts = H2K_SPOOL_MAX_ATTEMPTS, .timeout = -1};

/* run's and serve's options go straight where lib/ takes them. */
static struct h2k_runner_opts ro = {.workers = 2, .grace = 60};
static struct h2k_api_opts ao = {.cancel_wait = 10};

/* A record on stdout, one line (the callback h2k_runner_cancel takes). */
static int
json_out(const cJSON *o)
{
	return h2k_json_write(stdout, o);
}

/*
 * The config file (-c, else the default search): Spool, DownloadWorkers,
 * LogLevel.  The password it may hold is not ours to keep: h2k-login is
 * the one that logs in.  Called again on SIGHUP; -1 keeps the old values.
 */
static int
load_config(void)
{
	struct h2k_config c;

	h2k_config_init(&c);
	if (h2k_config_load(&c, opt.config) < 0) {
		h2k_config_free(&c);
		return -1;
	}
	free(opt.cfg_spool);
	opt.cfg_spool = c.spool && *c.spool ? h2k_strdup(c.spool) : NULL;
	opt.download_workers = c.download_workers > 0 ? c.download_workers : 0;
	free(opt.cfg_listen);
	opt.cfg_listen = c.daemon_addr && *c.daemon_addr ?
	    h2k_strdup(c.daemon_addr) : NULL;
	if (!opt.level_set && c.log_level >= 0)
		h2k_log_setlevel(c.log_level);
	h2k_config_free(&c);
	return 0;
}

/*
 * Open the spool (--spool, else the config's Spool, else the default).
 * Only submit, run and serve create it (lib/spool.c
 * h2k_spool_open_default): 1 when it does not exist and create is not set.
 */
static int
open_spool_opt(struct h2k_spool *sp, int create)
{
	int r = h2k_spool_open_default(sp, opt.spool ? opt.spool :
	    opt.cfg_spool, create);

	if (r < 0)
		h2k_die();
	sp->max_attempts = opt.max_attempts;
	return r;
}

static void
open_spool(struct h2k_spool *sp)
{
	open_spool_opt(sp, 1);
}

/* For commands that need jobs: a missing spool has none. */
static void
open_spool_ro(struct h2k_spool *sp, const char *what)
{
	if (open_spool_opt(sp, 0) == 1)
		h2k_diex(H2K_EX_NOTFOUND, "no job %s (spool %s does not exist)",
		    what, sp->dir);
}

/* run and serve are daemons: they say what they do unless -q. */
static void
open_spool_daemon(struct h2k_spool *sp)
{
	if (!opt.quiet && h2k_log_getlevel() < H2K_LOG_INFO)
		h2k_log_setlevel(H2K_LOG_INFO + opt.verbose);
	open_spool(sp);
}

/* --- submit -------------------------------------------------------------- */

static int
cmd_submit(int argc, char **argv)
{
	struct h2k_joblist l = {0};
	struct h2k_spool sp;
	cJSON **recs;
	int bad = 0, stdin_seen = 0, rc = H2K_EX_OK;

	if (argc < 1)
		usage();
	/* Validate every file before anything is queued. */
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "-") && stdin_seen++)
			h2k_diex(H2K_EX_USAGE, "stdin given twice");
		if (h2k_job_load(argv[i], &l) < 0) {
			int e = h2k_report();
			bad = bad ? bad : e;
		}
	}
	if (bad) {
		h2k_joblist_free(&l);
		h2k_say("nothing submitted");
		return bad;
	}
	if (h2k_job_resolve(&l) < 0)
		h2k_die();
	open_spool(&sp);
	if (!(recs = h2k_spool_submit(&sp, &l)))
		h2k_die();
	for (size_t i = 0; recs[i]; i++)
		if (json_out(recs[i]) < 0) {
			/* Queued all the same: say so, not "failed". */
			h2k_say("%s (the jobs were queued)", h2k_errmsg());
			rc = h2k_errcode();
			break;
		}
	h2k_spool_recs_free(recs);
	h2k_joblist_free(&l);
	h2k_spool_close(&sp);
	return rc;
}

/* --- ls, show, status ---------------------------------------------------- */

static int
ls_cb(void *arg, const char *sub, cJSON *rec)
{
	const char *st = h2k_json_str(rec, "status");

	(void)arg;
	(void)sub;
	if (opt.status && strcmp(st, opt.status))
		return 0;
	return json_out(rec);
}

static int
cmd_ls(int argc, char **argv)
{
	struct h2k_spool sp;

	(void)argv;
	if (argc)
		usage();
	if (opt.status && !h2k_job_status_valid(opt.status))
		h2k_diex(H2K_EX_USAGE, "--status: '%s' is not one of pending, "
		    "running, completed, failed, cancelled", opt.status);
	if (open_spool_opt(&sp, 0) == 1) {
		h2k_spool_close(&sp);
		return 0;
	}
	int done = opt.all || (opt.status && h2k_job_status_final(opt.status));
	if (h2k_spool_each(&sp, done, ls_cb, NULL) < 0)
		h2k_die();
	h2k_spool_close(&sp);
	return 0;
}

static int
cmd_show(int argc, char **argv)
{
	struct h2k_spool sp;
	char id[H2K_SPOOL_IDMAX];
	const char *sub;
	cJSON *r;

	if (argc != 1)
		usage();
	open_spool_ro(&sp, argv[0]);
	if (!(r = h2k_spool_find(&sp, argv[0], &sub, id)))
		h2k_die();
	if (json_out(r) < 0)
		h2k_die();
	cJSON_Delete(r);
	h2k_spool_close(&sp);
	return 0;
}

static int
cmd_status(int argc, char **argv)
{
	struct h2k_spool sp;
	cJSON *o;

	(void)argv;
	if (argc)
		usage();
	(void)open_spool_opt(&sp, 0);
	if (!(o = h2k_spool_status(&sp)) || json_out(o) < 0)
		h2k_die();
	cJSON_Delete(o);
	h2k_spool_close(&sp);
	return 0;
}

/* --- wait, cancel ----------------------------------------------------------- */

static volatile sig_atomic_t got_stop;

static void
on_signal(int sig)
{
	(void)sig;
	got_stop = 1;
}

/* A job has ended: its final record on stdout, or why on stderr. */
static int
wait_ended(void *arg, const char *id, const cJSON *rec, const char *why)
{
	(void)arg;
	if (rec)
		return json_out(rec);
	h2k_say("job %s: %s", id, why);
	return 0;
}

/* The loop and the exit codes are h2k_spool_wait's (lib/spool-query.c). */
static int
cmd_wait(int argc, char **argv)
{
	struct h2k_spool sp;
	struct h2k_spool_waitopts w = {.timeout = opt.timeout, .stop = &got_stop,
	    .ended = wait_ended};
	int rc;

	if (argc < 1)
		usage();
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	open_spool_ro(&sp, argv[0]);
	if ((rc = h2k_spool_wait(&sp, argv, argc, &w)) < 0)
		h2k_die();
	h2k_spool_close(&sp);
	return rc;
}

/*
 * Each job in turn: h2k_runner_cancel (lib/runner.c) does the cancel and
 * its checks and prints the final record; exit 5 when some failed.
 */
static int
cmd_cancel(int argc, char **argv)
{
	struct h2k_spool sp;
	int rc = 0, bad = 0;

	if (argc < 1)
		usage();
	open_spool_ro(&sp, argv[0]);
	for (int i = 0; i < argc; i++)
		if (h2k_runner_cancel(&sp, argv[i], opt.timeout >= 0 ?
		    opt.timeout : 60, json_out) < 0) {
			int e = h2k_report();
			rc = rc ? rc : e;
			bad++;
		}
	h2k_spool_close(&sp);
	if (bad && bad < argc)
		return H2K_EX_PARTIAL;
	return rc;
}

/* --- run ---------------------------------------------------------------- */

static int
reload_config(void *arg, int *download_workers)
{
	(void)arg;
	if (load_config() < 0)
		return -1;
	*download_workers = opt.download_workers;
	return 0;
}

static int
cmd_run(int argc, char **argv)
{
	struct h2k_spool sp;
	int rc;

	(void)argv;
	if (argc)
		usage();
	open_spool_daemon(&sp);
	ro.spool = &sp;
	ro.session = opt.session;
	ro.download_workers = opt.download_workers;
	ro.reload = reload_config;
	if ((rc = h2k_runner_run(&ro, NULL)) < 0)
		h2k_die();
	h2k_spool_close(&sp);
	return rc;
}

/* --- serve -------------------------------------------------------------- */

static int
cmd_serve(int argc, char **argv)
{
	struct h2k_spool sp;

	(void)argv;
	if (argc)
		usage();
	open_spool_daemon(&sp);
	ao.spool = &sp;
	if (!ao.listen)
		ao.listen = opt.cfg_listen;
	ao.session = opt.session;
	if (h2k_api_serve(&ao) < 0)
		h2k_die();
	h2k_spool_close(&sp);
	return 0;
}

/* --- main ------------------------------------------------------------------ */

/* H2K_BINDIR (where a package keeps the pipeline, a libexec dir), else argv[0]'s dir. */
static void
find_bindir(const char *argv0)
{
	const char *e = getenv("H2K_BINDIR");

	if (e && *e)
		ro.bindir = strdup(e);
	else if (strchr(argv0, '/')) {
		char *d = strdup(argv0);
		if (d) {
			*strrchr(d, '/') = '\0';
			ro.bindir = d;
		}
	}
}

/* The subcommands, and the options only one of them takes (bits). */
enum { ONLY_RUN = 1, ONLY_LS = 2, ONLY_WAIT = 4, ONLY_SERVE = 8 };
static const struct {
	const char *name;
	int (*fn)(int, char **);
	int only;
} cmds[] = {
	{"submit", cmd_submit, 0}, {"run", cmd_run, ONLY_RUN},
	{"ls", cmd_ls, ONLY_LS}, {"show", cmd_show, 0},
	{"cancel", cmd_cancel, ONLY_WAIT}, {"status", cmd_status, 0},
	{"serve", cmd_serve, ONLY_SERVE}, {"wait", cmd_wait, ONLY_WAIT},
};

/* The global and subcommand options; returns the ONLY_ bits of those seen. */
static int
parse_opts(int argc, char **argv)
{
	enum { O_SPOOL = 256, O_ONCE, O_WORKERS, O_MAXATT, O_GRACE, O_ALL,
	    O_STATUS, O_TIMEOUT, O_VERSION, O_LISTEN, O_APIKEY, O_CERT, O_KEY };
	static const struct option longopts[] = {
		{"all", no_argument, NULL, O_ALL},
		{"api-key-file", required_argument, NULL, O_APIKEY},
		{"cert", required_argument, NULL, O_CERT},
		{"config", required_argument, NULL, 'c'},
		{"grace", required_argument, NULL, O_GRACE},
		{"help", no_argument, NULL, 'h'},
		{"key", required_argument, NULL, O_KEY},
		{"listen", required_argument, NULL, O_LISTEN},
		{"max-attempts", required_argument, NULL, O_MAXATT},
		{"once", no_argument, NULL, O_ONCE},
		{"quiet", no_argument, NULL, 'q'},
		{"session", required_argument, NULL, 's'},
		{"spool", required_argument, NULL, O_SPOOL},
		{"status", required_argument, NULL, O_STATUS},
		{"timeout", required_argument, NULL, O_TIMEOUT},
		{"verbose", no_argument, NULL, 'v'},
		{"version", no_argument, NULL, O_VERSION},
		{"workers", required_argument, NULL, O_WORKERS},
		{NULL, 0, NULL, 0},
	};
	int ch, only = 0;

	while ((ch = getopt_long(argc, argv, "c:hqs:v", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			opt.config = optarg;
			break;
		case 'q':
			opt.quiet = 1;
			opt.level_set = 1;
			h2k_log_setlevel(H2K_LOG_ERROR);
			break;
		case 's':
			opt.session = optarg;
			break;
		case 'v':
			opt.verbose++;
			opt.level_set = 1;
			h2k_log_setlevel(h2k_log_getlevel() + 1);
			break;
		case O_SPOOL:
			opt.spool = optarg;
			break;
		case O_ONCE:
			ro.once = 1;
			only |= ONLY_RUN;
			break;
		case O_WORKERS:
			ro.workers = (int)h2k_opt_int("--workers", optarg, 1,
			    256);
			only |= ONLY_RUN;
			break;
		case O_MAXATT:
			opt.max_attempts = (int)h2k_opt_int("--max-attempts",
			    optarg, 1, 1000);
			break;
		case O_GRACE:
			ro.grace = h2k_opt_secs("--grace", optarg, 0, 86400);
			only |= ONLY_RUN;
			break;
		case O_ALL:
			opt.all = 1;
			only |= ONLY_LS;
			break;
		case O_STATUS:
			opt.status = optarg;
			only |= ONLY_LS;
			break;
		case O_TIMEOUT:
			opt.timeout = h2k_opt_secs("--timeout", optarg,
			    H2K_NUM_ABOVE0, 1e9);
			only |= ONLY_WAIT;
			break;
		case O_LISTEN:
			ao.listen = optarg;
			only |= ONLY_SERVE;
			break;
		case O_APIKEY:
			ao.key_file = optarg;
			only |= ONLY_SERVE;
			break;
		case O_CERT:
			ao.cert = optarg;
			only |= ONLY_SERVE;
			break;
		case O_KEY:
			ao.key = optarg;
			only |= ONLY_SERVE;
			break;
		case O_VERSION:
			h2k_version();
		case 'h':
		default:
			usage();
		}
	}
	return only;
}

int
main(int argc, char **argv)
{
	const char *cmd;
	int only, i, n = sizeof cmds / sizeof cmds[0];

	h2k_cmd_init("h2k-job");
	find_bindir(argv[0]);
	only = parse_opts(argc, argv);
	if (optind >= argc)
		usage();
	cmd = argv[optind++];
	argc -= optind;
	argv += optind;
	for (i = 0; i < n && strcmp(cmd, cmds[i].name); i++)
		;
	if (only & ~(i < n ? cmds[i].only : 0))
		h2k_diex(H2K_EX_USAGE, "option not valid for '%s'", cmd);
	if (load_config() < 0)
		h2k_die();
	if (i < n)
		return cmds[i].fn(argc, argv);
	h2k_say("unknown command '%s'", cmd);
	usage();
}
