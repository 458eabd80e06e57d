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
	/* run */
	int once, workers, max_attempts;
	double grace;
	/* ls */
	int all;
	const char *status;
	/* wait, cancel */
	double timeout;
	/* serve */
	const char *listen, *api_key_file, *cert, *key;
	char *cfg_listen;       /* DaemonAddr (or H2K_LISTEN) */
	/* where the pipeline commands are: dir of argv[0] when it has one */
	char *bindir;
	/* from the config file */
	int download_workers;   /* DownloadWorkers: default -j for h2k-fetch */
	char *cfg_spool;        /* Spool (or H2K_SPOOL) */
	int level_set;          /* -v/-q given: config LogLevel does not apply */
} opt = {.workers = 2, .max_attempts = H2K_SPOOL_MAX_ATTEMPTS, .grace = 60,
    .timeout = -1};

static int
json_out(const cJSON *o)
{
	char *s = h2k_json_print(o);

	if (!s)
		return -1;
	int r = printf("%s\n", s) < 0 || fflush(stdout) == EOF;
	free(s);
	return r ? h2k_seterr(H2K_EX_IO, "stdout: %s", strerror(errno)) : 0;
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
 * Open the spool.  Only submit and run create it: a mistyped --spool given
 * to ls must not leave directories behind.  Returns 0, or 1 when the spool
 * does not exist and create is not set (sp->dir then holds the name).
 */
static int
open_spool_opt(struct h2k_spool *sp, int create)
{
	char *dir = NULL;
	const char *d = opt.spool;

	if (!d)
		d = opt.cfg_spool;
	if (!d || !*d) {
		if (!(dir = h2k_spool_default()))
			h2k_die();
		d = dir;
	}
	if (!create && access(d, F_OK) < 0 && errno == ENOENT) {
		memset(sp, 0, sizeof *sp);
		sp->dfd = -1;
		if (!(sp->dir = h2k_strdup(d)))
			h2k_die();
		free(dir);
		return 1;
	}
	if (h2k_spool_open(sp, d, create) < 0)
		h2k_die();
	sp->max_attempts = opt.max_attempts;
	free(dir);
	return 0;
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
	struct h2k_runner_opts ro = {0};
	int rc;

	(void)argv;
	if (argc)
		usage();
	if (!opt.quiet && h2k_log_getlevel() < H2K_LOG_INFO)
		h2k_log_setlevel(H2K_LOG_INFO + opt.verbose);
	open_spool(&sp);
	ro.spool = &sp;
	ro.workers = opt.workers;
	ro.once = opt.once;
	ro.grace = opt.grace;
	ro.bindir = opt.bindir;
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
	struct h2k_api_opts ao = {0};

	(void)argv;
	if (argc)
		usage();
	if (!opt.quiet && h2k_log_getlevel() < H2K_LOG_INFO)
		h2k_log_setlevel(H2K_LOG_INFO + opt.verbose);
	open_spool(&sp);
	ao.spool = &sp;
	ao.listen = opt.listen ? opt.listen : opt.cfg_listen;
	ao.key_file = opt.api_key_file;
	ao.cert = opt.cert;
	ao.key = opt.key;
	ao.session = opt.session;
	ao.cancel_wait = 10;
	if (h2k_api_serve(&ao) < 0)
		h2k_die();
	h2k_spool_close(&sp);
	return 0;
}

/* --- main ------------------------------------------------------------------ */

int
main(int argc, char **argv)
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
	const char *cmd;
	int ch, run_only = 0, ls_only = 0, wait_only = 0, serve_only = 0;

	h2k_cmd_init("h2k-job");
	/* H2K_BINDIR: where a package keeps the pipeline (a libexec dir). */
	if (getenv("H2K_BINDIR") && *getenv("H2K_BINDIR"))
		opt.bindir = strdup(getenv("H2K_BINDIR"));
	else if (strchr(argv[0], '/')) {
		char *d = strdup(argv[0]);
		if (d) {
			*strrchr(d, '/') = '\0';
			opt.bindir = d;
		}
	}
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
			opt.once = 1;
			run_only = 1;
			break;
		case O_WORKERS:
			opt.workers = (int)h2k_opt_int("--workers", optarg, 1,
			    256);
			run_only = 1;
			break;
		case O_MAXATT:
			opt.max_attempts = (int)h2k_opt_int("--max-attempts",
			    optarg, 1, 1000);
			break;
		case O_GRACE:
			opt.grace = h2k_opt_secs("--grace", optarg, 0, 86400);
			run_only = 1;
			break;
		case O_ALL:
			opt.all = 1;
			ls_only = 1;
			break;
		case O_STATUS:
			opt.status = optarg;
			ls_only = 1;
			break;
		case O_TIMEOUT:
			opt.timeout = h2k_opt_secs("--timeout", optarg,
			    H2K_NUM_ABOVE0, 1e9);
			wait_only = 1;
			break;
		case O_LISTEN:
			opt.listen = optarg;
			serve_only = 1;
			break;
		case O_APIKEY:
			opt.api_key_file = optarg;
			serve_only = 1;
			break;
		case O_CERT:
			opt.cert = optarg;
			serve_only = 1;
			break;
		case O_KEY:
			opt.key = optarg;
			serve_only = 1;
			break;
		case O_VERSION:
			h2k_version();
		case 'h':
		default:
			usage();
		}
	}
	if (optind >= argc)
		usage();
	cmd = argv[optind++];
	argc -= optind;
	argv += optind;
	if ((run_only && strcmp(cmd, "run")) || (ls_only && strcmp(cmd, "ls")) ||
	    (wait_only && strcmp(cmd, "wait") && strcmp(cmd, "cancel")) ||
	    (serve_only && strcmp(cmd, "serve")))
		h2k_diex(H2K_EX_USAGE, "option not valid for '%s'", cmd);
	if (load_config() < 0)
		h2k_die();
	if (!strcmp(cmd, "submit"))
		return cmd_submit(argc, argv);
	if (!strcmp(cmd, "run"))
		return cmd_run(argc, argv);
	if (!strcmp(cmd, "ls"))
		return cmd_ls(argc, argv);
	if (!strcmp(cmd, "show"))
		return cmd_show(argc, argv);
	if (!strcmp(cmd, "cancel"))
		return cmd_cancel(argc, argv);
	if (!strcmp(cmd, "status"))
		return cmd_status(argc, argv);
	if (!strcmp(cmd, "serve"))
		return cmd_serve(argc, argv);
	if (!strcmp(cmd, "wait")) {
		signal(SIGINT, on_signal);
		signal(SIGTERM, on_signal);
		return cmd_wait(argc, argv);
	}
	h2k_say("unknown command '%s'", cmd);
	usage();
}
