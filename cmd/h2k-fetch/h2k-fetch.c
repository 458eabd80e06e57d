/*
 * h2k-fetch - download the disks of NFC export leases, in parallel,
 * resumable, verified.  Reads h2k-lease JSON lines on stdin, writes one
 * line per VM whose files are all complete.  The engine is lib/fetch*.c.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "config.h"
#include "fetch.h"
#include "h2k.h"
#include "http.h"
#include "soap.h"
#include "session.h"

#define MAXPINS 32

static void
usage(void)
{
	h2k_usage(
	    "usage: h2k-fetch [-kqv] [-j jobs] -o dir [-s session] [--allow-http]\n"
	    "                 [--ca-file file] [--disks-only] [--format vmdk|raw|qcow2]\n"
	    "                 [--keep-lease] [--keepalive seconds] [--overwrite]\n"
	    "                 [--progress auto|bar|json|none]\n"
	    "                 [--retries n] [--retry-delay seconds] [--speed-limit bytes]\n"
	    "                 [--speed-time seconds] [--thumbprint [host=]sha256]\n");
}

static int devnull = -1;

static void
on_signal(int sig)
{
	int e = errno;

	(void)sig;
	h2k_fetch_cancel();
	/* the run may sit in a read of stdin: give it an EOF */
	if (devnull >= 0)
		(void)dup2(devnull, STDIN_FILENO);
	errno = e;
}

/* --progress: auto draws bars when stderr is a terminal, else nothing. */
static int
progress_mode(const char *s)
{
	if (!strcmp(s, "auto"))
		return isatty(STDERR_FILENO) ? H2K_PROGRESS_BAR :
		    H2K_PROGRESS_NONE;
	if (!strcmp(s, "bar"))
		return H2K_PROGRESS_BAR;
	if (!strcmp(s, "json"))
		return H2K_PROGRESS_JSON;
	if (!strcmp(s, "none"))
		return H2K_PROGRESS_NONE;
	h2k_diex(H2K_EX_USAGE, "--progress %s: want auto, bar, json or none", s);
}

static enum h2k_disk_format
disk_format(const char *s)
{
	if (!strcmp(s, "vmdk"))
		return H2K_FMT_VMDK;
	if (!strcmp(s, "raw"))
		return H2K_FMT_RAW;
	if (!strcmp(s, "qcow2"))
		return H2K_FMT_QCOW2;
	h2k_diex(H2K_EX_USAGE, "--format %s: want vmdk, raw or qcow2", s);
}

/* --thumbprint [host[:port]=]hex: pins[o->npins], o->pins (MAXPINS). */
static void
add_pin(struct h2k_fetch_opts *o, struct h2k_fetch_pin *pins, char **store,
    const char *arg)
{
	const char *eq = strchr(arg, '=');
	char *tp = h2k_thumbprint_norm(eq ? eq + 1 : arg);

	if (!tp)
		h2k_diex(H2K_EX_USAGE, "--thumbprint %s: want [host[:port]=]SHA-256 "
		    "(64 hex digits) or SHA-1 (40), colons optional", arg);
	if (o->npins == MAXPINS)
		h2k_diex(H2K_EX_USAGE, "--thumbprint: at most %d", MAXPINS);
	pins[o->npins].host = eq ? strndup(arg, (size_t)(eq - arg)) : NULL;
	pins[o->npins].thumbprint = tp;
	store[o->npins] = tp;
	o->npins++;
}

/* What h2k-fetch(1) says holds without an option. */
static void
defaults(struct h2k_fetch_opts *o, struct h2k_fetch_pin *pins)
{
	memset(o, 0, sizeof *o);
	o->retries = 8;
	o->retry_delay = 1;
	o->retry_max_delay = 60;
	o->retry_after_max = 300;
	o->tls.low_speed_limit = 1024;
	o->tls.low_speed_time = 60;
	o->progress_fd = STDERR_FILENO;
	o->progress = progress_mode("auto");
	o->progname = "h2k-fetch";
	o->errors = stderr;
	o->pins = pins;
	/* set by h2k-job for its pipeline: see h2k_fetch_opts.job_id */
	o->job_id = getenv("H2K_JOB_ID");
	if (o->job_id && !*o->job_id)
		o->job_id = NULL;
}

/*
 * The configuration files count for DownloadWorkers (the -j default),
 * SoapTimeout and LogLevel.  Returns the number of download workers.
 */
static int
config_jobs(int jobs)
{
	struct h2k_config cfg;

	h2k_config_init(&cfg);
	if (h2k_config_load(&cfg, NULL) < 0)
		h2k_die();
	if (cfg.soap_timeout > 0 &&
	    h2k_soap_set_timeout_config(cfg.soap_timeout) < 0)
		h2k_die();
	if (!jobs)
		jobs = cfg.download_workers > 0 ? cfg.download_workers : 4;
	h2k_config_free(&cfg);
	return jobs > 64 ? 64 : jobs;
}

/*
 * The session: required with -s or $H2K_SESSION; the default one is used
 * when it exists.  Without any, plain device URLs still work (no cookie)
 * and lines carrying a lease fail (nothing to keep it alive).  Returns 1
 * when the session was made with -k (insecure), else 0.
 */
static int
use_session(struct h2k_fetch_opts *o, const char *sflag,
    struct h2k_session *sess)
{
	char *spath;

	if (!(spath = h2k_session_path(sflag)))
		h2k_die();
	if (h2k_session_load(spath, sess) < 0) {
		if (sflag || getenv("H2K_SESSION") || errno != ENOENT ||
		    h2k_errcode() != H2K_EX_SESSION) {
			free(spath);  /* valgrind counts it lost at exit otherwise */
			h2k_die();
		}
		free(spath);
		return 0;
	}
	free(spath);
	o->session = sess;
	if (!o->tls.ca_file && sess->ca_pem) {
		o->tls.ca_file = sess->ca_file;
		o->tls.ca_pem = sess->ca_pem;
	}
	return sess->insecure != 0;
}

static char *capem;	/* static: h2k_die paths, see LeakSanitizer */

/* After the options: the -j default, the CA file, the session and -k. */
static void
prepare(struct h2k_fetch_opts *o, int jobs, const char *sflag,
    struct h2k_session *sess, int insecure)
{
	o->jobs = config_jobs(jobs);
	/* A CA file is a trust file: checked, then used as read. */
	if (o->tls.ca_file && !(o->tls.ca_pem = capem = h2k_trust_read(
	    "CA file", o->tls.ca_file, H2K_CA_MAX, NULL, NULL)))
		h2k_die();
	if (use_session(o, sflag, sess))
		insecure = 1;
	o->tls.insecure = insecure;
}

int
main(int argc, char **argv)
{
	enum { O_ALLOWHTTP = 256, O_CAFILE, O_DISKSONLY, O_FORMAT, O_KEEPLEASE, O_KEEPALIVE,
	    O_OVERWRITE, O_PROGRESS, O_RETRIES, O_RETRYDELAY, O_SPEEDLIMIT, O_SPEEDTIME,
	    O_THUMBPRINT, O_VERSION };
	static const struct option longopts[] = {
		{ "allow-http", no_argument, NULL, O_ALLOWHTTP },
		{ "ca-file", required_argument, NULL, O_CAFILE },
		{ "disks-only", no_argument, NULL, O_DISKSONLY },
		{ "format", required_argument, NULL, O_FORMAT },
		{ "help", no_argument, NULL, 'h' },
		{ "insecure", no_argument, NULL, 'k' },
		{ "jobs", required_argument, NULL, 'j' },
		{ "keep-lease", no_argument, NULL, O_KEEPLEASE },
		{ "keepalive", required_argument, NULL, O_KEEPALIVE },
		{ "output", required_argument, NULL, 'o' },
		{ "overwrite", no_argument, NULL, O_OVERWRITE },
		{ "progress", required_argument, NULL, O_PROGRESS },
		{ "quiet", no_argument, NULL, 'q' },
		{ "retries", required_argument, NULL, O_RETRIES },
		{ "retry-delay", required_argument, NULL, O_RETRYDELAY },
		{ "session", required_argument, NULL, 's' },
		{ "speed-limit", required_argument, NULL, O_SPEEDLIMIT },
		{ "speed-time", required_argument, NULL, O_SPEEDTIME },
		{ "thumbprint", required_argument, NULL, O_THUMBPRINT },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, O_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	struct h2k_fetch_opts o;
	struct h2k_fetch_pin pins[MAXPINS];
	struct h2k_session sess = { 0 };
	const char *sflag = NULL;
	char *pinstore[MAXPINS];
	int c, verbose, jobs = 0, insecure = 0, rc;

	defaults(&o, pins);
	h2k_cmd_init("h2k-fetch");
	verbose = h2k_log_getlevel();
	while ((c = getopt_long(argc, argv, "hj:ko:qs:v", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			jobs = (int)h2k_opt_int("-j", optarg, 1, 64);
			break;
		case 'k':
			insecure = 1;
			break;
		case 'o':
			o.outdir = optarg;
			break;
		case 'q':
		case 'v':
			h2k_cmd_loglevel(c, &verbose);
			break;
		case 's':
			sflag = optarg;
			break;
		case O_ALLOWHTTP:
			o.tls.allow_http = 1;
			break;
		case O_CAFILE:
			if (access(optarg, R_OK) < 0)
				h2k_diex(H2K_EX_USAGE, "--ca-file %s: %s", optarg,
				    strerror(errno));
			o.tls.ca_file = optarg;
			break;
		case O_DISKSONLY:
			o.disks_only = 1;
			break;
		case O_FORMAT:
			o.format = disk_format(optarg);
			break;
		case O_OVERWRITE:
			o.overwrite = 1;
			break;
		case O_KEEPLEASE:
			o.keep_lease = 1;
			break;
		case O_KEEPALIVE:
			o.keepalive = h2k_opt_secs("--keepalive", optarg, 1, 3600);
			break;
		case O_PROGRESS:
			o.progress = progress_mode(optarg);
			break;
		case O_RETRIES:
			o.retries = (int)h2k_opt_int("--retries", optarg, 0, 1000);
			break;
		case O_RETRYDELAY:
			o.retry_delay = h2k_opt_secs("--retry-delay", optarg,
			    0.001, 600);
			if (o.retry_max_delay < o.retry_delay)
				o.retry_max_delay = o.retry_delay;
			break;
		case O_SPEEDLIMIT:
			o.tls.low_speed_limit = h2k_opt_bytes("--speed-limit",
			    optarg, 1, 1LL << 40);
			break;
		case O_SPEEDTIME:
			o.tls.low_speed_time = h2k_opt_int("--speed-time", optarg,
			    1, 86400);
			break;
		case O_THUMBPRINT:
			add_pin(&o, pins, pinstore, optarg);
			break;
		case O_VERSION:
			h2k_version();
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	if (!o.outdir)
		h2k_diex(H2K_EX_USAGE, "-o DIR is required: where the VM folders "
		    "go");
	h2k_log_setlevel(verbose);

	prepare(&o, jobs, sflag, &sess, insecure);

	/* no SA_RESTART: a read of stdin must return so the run can stop */
	devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	h2k_cmd_signals(on_signal);

	rc = h2k_fetch_run(&o, stdin, "stdin", stdout);

	for (int i = 0; i < o.npins; i++) {
		free((char *)pins[i].host);
		free(pinstore[i]);
	}
	h2k_session_free(&sess);
	free(capem);
	return rc;
}
