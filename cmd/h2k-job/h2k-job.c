/*
 * h2k-job - spool-directory job runner for VM exports.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * The subcommands: option handling, one call into the library, printing
 * and exit codes.  The runner (`h2k-job run`) is lib/runner.c, whose top
 * comment says how a job runs; the spool and its records are lib/spool.c.
 */
#include <err.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "config.h"
#include "h2k.h"
#include "job.h"
#include "jsonl.h"
#include "runner.h"
#include "spool.h"

static void
usage(void)
{
	fprintf(stderr,
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
	exit(H2K_EX_USAGE);
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

static void
die(void)
{
	fprintf(stderr, "h2k-job: %s\n", h2k_errmsg());
	exit(h2k_errcode());
}

static int
positive(const char *s, const char *what, double max)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (!*s || *end || errno || v < 0 || v > max) {
		fprintf(stderr, "h2k-job: %s: '%s' is not a number from 0 to "
		    "%g\n", what, s, max);
		exit(H2K_EX_USAGE);
	}
	return (int)v;
}

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
 * Open the spool.  Only submit and run create it: a mistyped --spool given
 * to ls must not leave directories behind.  Returns 0, or 1 when the spool
 * does not exist and create is not set (sp->dir then holds the name).
 */
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

static int
open_spool_opt(struct h2k_spool *sp, int create)
{
	char *dir = NULL;
	const char *d = opt.spool;

	if (!d)
		d = opt.cfg_spool;
	if (!d || !*d) {
		if (!(dir = h2k_spool_default()))
			die();
		d = dir;
	}
	if (!create && access(d, F_OK) < 0 && errno == ENOENT) {
		memset(sp, 0, sizeof *sp);
		sp->dfd = -1;
		if (!(sp->dir = h2k_strdup(d)))
			die();
		free(dir);
		return 1;
	}
	if (h2k_spool_open(sp, d, create) < 0)
		die();
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
	if (open_spool_opt(sp, 0) == 1) {
		fprintf(stderr, "h2k-job: no job %s (spool %s does not "
		    "exist)\n", what, sp->dir);
		exit(H2K_EX_NOTFOUND);
	}
}

/* --- submit -------------------------------------------------------------- */

static int
cmd_submit(int argc, char **argv)
{
	struct h2k_joblist l = {0};
	struct h2k_spool sp;
	int bad = 0, stdin_seen = 0;

	if (argc < 1)
		usage();
	/* Validate every file before anything is queued. */
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "-") && stdin_seen++) {
			fprintf(stderr, "h2k-job: stdin given twice\n");
			return H2K_EX_USAGE;
		}
		if (h2k_job_load(argv[i], &l) < 0) {
			fprintf(stderr, "h2k-job: %s\n", h2k_errmsg());
			bad = bad ? bad : h2k_errcode();
		}
	}
	if (bad) {
		h2k_joblist_free(&l);
		fprintf(stderr, "h2k-job: nothing submitted\n");
		return bad;
	}
	if (h2k_job_resolve(&l) < 0)
		die();
	open_spool(&sp);
	cJSON **recs = h2k_calloc(l.n, sizeof *recs);
	if (!recs)
		die();
	for (size_t i = 0; i < l.n; i++) {
		char id[H2K_SPOOL_IDMAX];
		h2k_spool_newid(id, sizeof id);
		if (!(recs[i] = h2k_job_record_new(&l.v[i], id)))
			die();
	}
	int rc = H2K_EX_OK;
	if (h2k_spool_enqueue(&sp, recs, l.n) < 0) {
		fprintf(stderr, "h2k-job: %s; nothing submitted\n", h2k_errmsg());
		rc = h2k_errcode();
	} else {
		for (size_t i = 0; i < l.n; i++)
			if (json_out(recs[i]) < 0) {
				/* Queued all the same: say so, not "failed". */
				fprintf(stderr, "h2k-job: %s (the jobs were "
				    "queued)\n", h2k_errmsg());
				rc = h2k_errcode();
				break;
			}
	}
	for (size_t i = 0; i < l.n; i++)
		cJSON_Delete(recs[i]);
	free(recs);
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
	if (opt.status && !h2k_job_status_valid(opt.status)) {
		fprintf(stderr, "h2k-job: --status: '%s' is not one of pending, "
		    "running, completed, failed, cancelled\n", opt.status);
		return H2K_EX_USAGE;
	}
	if (open_spool_opt(&sp, 0) == 1) {
		h2k_spool_close(&sp);
		return 0;
	}
	int done = opt.all || (opt.status && h2k_job_status_final(opt.status));
	if (h2k_spool_each(&sp, done, ls_cb, NULL) < 0)
		die();
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
		die();
	if (json_out(r) < 0)
		die();
	cJSON_Delete(r);
	h2k_spool_close(&sp);
	return 0;
}

struct counts {
	int n[5];
	cJSON *runners;
};

static int
count_cb(void *arg, const char *sub, cJSON *rec)
{
	struct counts *c = arg;
	const char *st = h2k_json_str(rec, "status");

	(void)sub;
	for (int i = 0; i < 5; i++)
		if (!strcmp(st, h2k_job_statuses[i]))
			c->n[i]++;
	return 0;
}

static int
runner_cb(void *arg, const char *sub, cJSON *rec)
{
	struct counts *c = arg;
	double t = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(rec,
	    "started_epoch"));
	cJSON *r = cJSON_Duplicate(rec, 1);

	(void)sub;
	if (!r)
		return h2k_seterr(H2K_EX_FAIL, "out of memory");
	cJSON_DeleteItemFromObjectCaseSensitive(r, "started_epoch");
	if (t == t)
		cJSON_AddNumberToObject(r, "uptime_s",
		    (double)(time(NULL) - (time_t)t));
	cJSON_AddItemToArray(c->runners, r);
	return 0;
}

static int
cmd_status(int argc, char **argv)
{
	struct h2k_spool sp;
	struct counts c = {{0}, NULL};
	cJSON *o, *cn;

	(void)argv;
	if (argc)
		usage();
	int missing = open_spool_opt(&sp, 0) == 1;
	if (!(o = cJSON_CreateObject()) ||
	    !cJSON_AddStringToObject(o, "spool", sp.dir) ||
	    !(c.runners = cJSON_AddArrayToObject(o, "runners")))
		die();
	if (!missing && (h2k_spool_runners(&sp, runner_cb, &c) < 0 ||
	    h2k_spool_each(&sp, 1, count_cb, &c) < 0))
		die();
	if (!(cn = cJSON_AddObjectToObject(o, "counts")))
		die();
	for (int i = 0; i < 5; i++)
		cJSON_AddNumberToObject(cn, h2k_job_statuses[i], c.n[i]);
	cJSON_AddNumberToObject(o, "bad", missing ? 0 :
	    h2k_spool_count_bad(&sp));
	if (json_out(o) < 0)
		die();
	cJSON_Delete(o);
	h2k_spool_close(&sp);
	return 0;
}

/* --- wait, cancel ----------------------------------------------------------- */

static volatile sig_atomic_t got_term, got_hup, got_int;

static void
on_signal(int sig)
{
	if (sig == SIGTERM)
		got_term++;
	else if (sig == SIGINT)
		got_int++;
	else if (sig == SIGHUP)
		got_hup = 1;
}

/*
 * Poll until every job is final.  Prints each final record once.  Exit:
 * 0 all completed; 10 any cancelled (none failed); 5 failed beside
 * completed; 1 all failed; 6 unknown id.  A job moved to bad/, or left in
 * done/ by a runner that could not record its outcome, counts as failed
 * (with a line on stderr): waiting for it would never end.
 */
static int
cmd_wait(int argc, char **argv)
{
	struct h2k_spool sp;
	int n = argc, left = argc, completed = 0, failed = 0, cancelled = 0;
	int rc = -1;
	char (*ids)[H2K_SPOOL_IDMAX];
	int *fin;
	double t0 = h2k_monotime();

	if (argc < 1)
		usage();
	open_spool_ro(&sp, argv[0]);
	ids = h2k_calloc((size_t)n, sizeof *ids);
	fin = h2k_calloc((size_t)n, sizeof *fin);
	if (!ids || !fin)
		die();
	for (int i = 0; i < n; i++) {
		const char *sub;
		cJSON *r = h2k_spool_find(&sp, argv[i], &sub, ids[i]);
		if (!r) {
			if (h2k_errcode() != H2K_EX_NOTFOUND ||
			    !h2k_spool_idok(argv[i]))
				die();
			/* Already moved aside: reported below, not unknown. */
			snprintf(ids[i], sizeof ids[i], "%s", argv[i]);
			char nm[NAME_MAX + 1], why[512];
			/*
			 * A file that is there but cannot be read (another
			 * owner, a second link) is reported below, not
			 * "no job".
			 */
			if (!h2k_spool_where(&sp, ids[i]) &&
			    h2k_spool_lost(&sp, ids[i], nm, sizeof nm, why,
			    sizeof why) != 1) {
				h2k_seterr(H2K_EX_NOTFOUND, "no job %.64s in %s",
				    argv[i], sp.dir);
				die();
			}
		}
		cJSON_Delete(r);
	}
	while (left > 0) {
		for (int i = 0; i < n; i++) {
			char nm[NAME_MAX + 1], why[512];
			const char *sub;
			if (fin[i])
				continue;
			cJSON *r = h2k_spool_read(&sp, "done", ids[i]);
			if (!r && h2k_spool_lost(&sp, ids[i], nm, sizeof nm,
			    why, sizeof why) == 1) {
				fprintf(stderr, "h2k-job: job %s: moved aside "
				    "to %s/bad/%s: %s\n", ids[i], sp.dir, nm,
				    why);
				fin[i] = 1;
				left--;
				failed++;
				continue;
			}
			if (!r && h2k_errcode() != H2K_EX_NOTFOUND &&
			    (sub = h2k_spool_where(&sp, ids[i])) &&
			    !strcmp(sub, "done")) {
				/*
				 * Finished, but its record cannot be trusted
				 * (not ours, hard-linked, damaged): polling
				 * would never end.
				 */
				fprintf(stderr, "h2k-job: job %s: its record "
				    "%s/done/%s cannot be read: %s\n", ids[i],
				    sp.dir, ids[i], h2k_errmsg());
				fin[i] = 1;
				left--;
				failed++;
				continue;
			}
			if (!r)
				continue;
			if (!h2k_job_status_final(h2k_json_str(r, "status"))) {
				/* Its runner could not write the outcome. */
				fprintf(stderr, "h2k-job: job %s: ended, but its "
				    "runner could not record how (status '%s' "
				    "in done/); see log/%s.log\n", ids[i],
				    h2k_json_str(r, "status"), ids[i]);
				fin[i] = 1;
				left--;
				failed++;
				cJSON_Delete(r);
				continue;
			}
			const char *st = h2k_json_str(r, "status");
			fin[i] = 1;
			left--;
			completed += !strcmp(st, "completed");
			failed += !strcmp(st, "failed");
			cancelled += !strcmp(st, "cancelled");
			if (json_out(r) < 0)
				die();
			cJSON_Delete(r);
		}
		if (left == 0)
			break;
		if (got_int || got_term) {
			rc = H2K_EX_CANCEL;
			goto out;
		}
		if (opt.timeout >= 0 && h2k_monotime() - t0 > opt.timeout) {
			fprintf(stderr, "h2k-job: %d of %d jobs not finished "
			    "after %g s\n", left, n, opt.timeout);
			rc = H2K_EX_FAIL;
			goto out;
		}
		h2k_sleep(0.2);
	}
out:
	free(ids);
	free(fin);
	h2k_spool_close(&sp);
	if (rc >= 0)
		return rc;
	if (failed)
		return completed ? H2K_EX_PARTIAL : H2K_EX_FAIL;
	if (cancelled)
		return H2K_EX_CANCEL;
	return H2K_EX_OK;
}

/*
 * Kill a process group that outlived its runner.  The record only names
 * numbers; the group is signalled only while h2k_job_group proves one of
 * the job's own processes is still in it, before every signal.  Returns
 * 0 when nothing is (still) to be done, -1 with why (the group is not
 * provably the job's) when it left the group alone.
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
			fprintf(stderr, "h2k-job: %s\n", h2k_errmsg());
			rc = rc ? rc : h2k_errcode();
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
		die();
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
		die();
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

	h2k_log_init(argv[0]);
	/* it will hold a password or a session cookie */
	if (h2k_nodump() < 0)
		errx(h2k_errcode(), "%s", h2k_errmsg());
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
			opt.workers = positive(optarg, "--workers", 256);
			if (opt.workers < 1) {
				fprintf(stderr, "h2k-job: --workers: must be "
				    "at least 1\n");
				return H2K_EX_USAGE;
			}
			run_only = 1;
			break;
		case O_MAXATT:
			opt.max_attempts = positive(optarg, "--max-attempts",
			    1000);
			if (opt.max_attempts < 1) {
				fprintf(stderr, "h2k-job: --max-attempts: must "
				    "be at least 1\n");
				return H2K_EX_USAGE;
			}
			break;
		case O_GRACE:
			opt.grace = positive(optarg, "--grace", 86400);
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
			opt.timeout = positive(optarg, "--timeout", 1e9);
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
			printf("h2k-job %s\n", H2K_VERSION);
			return 0;
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
	    (serve_only && strcmp(cmd, "serve"))) {
		fprintf(stderr, "h2k-job: option not valid for '%s'\n", cmd);
		return H2K_EX_USAGE;
	}
	if (load_config() < 0)
		die();
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
	fprintf(stderr, "h2k-job: unknown command '%s'\n", cmd);
	usage();
}
