/*
 * h2k-fetch - download the disks of NFC export leases, in parallel,
 * resumable, verified.  Reads h2k-lease JSON lines on stdin, writes one
 * line per VM whose files are all complete.  The engine is lib/fetch*.c.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 */
#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
	fprintf(stderr,
	    "usage: h2k-fetch [-kqv] [-j jobs] -o dir [-s session] [--allow-http]\n"
	    "                 [--ca-file file] [--disks-only] [--format vmdk|raw|qcow2]\n"
	    "                 [--keep-lease] [--keepalive seconds] [--overwrite]\n"
	    "                 [--progress auto|bar|json|none]\n"
	    "                 [--retries n] [--retry-delay seconds] [--speed-limit bytes]\n"
	    "                 [--speed-time seconds] [--thumbprint [host=]sha256]\n");
	exit(H2K_EX_USAGE);
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

static long
num(const char *opt, const char *s, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		errx(H2K_EX_USAGE, "%s %s: want a whole number from %ld to %ld", opt, s, lo, hi);
	return v;
}

static double
secs(const char *opt, const char *s, double lo, double hi)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= lo && v <= hi))
		errx(H2K_EX_USAGE, "%s %s: want seconds from %g to %g", opt, s, lo, hi);
	return v;
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
	static char *capem;	/* static: errx paths, see LeakSanitizer */
	struct h2k_config cfg;
	const char *sflag = NULL, *progress = "auto";
	char *spath = NULL, *pinstore[MAXPINS];
	int c, verbose, jobs = 0, insecure = 0, have_session = 0, rc;
	struct sigaction sa;

	memset(&o, 0, sizeof o);
	o.retries = 8;
	o.retry_delay = 1;
	o.retry_max_delay = 60;
	o.retry_after_max = 300;
	o.tls.low_speed_limit = 1024;
	o.tls.low_speed_time = 60;
	o.progress_fd = STDERR_FILENO;
	o.progname = "h2k-fetch";
	o.errors = stderr;
	o.pins = pins;
	h2k_log_init(argv[0]);
	/* it will hold a password or a session cookie */
	if (h2k_nodump() < 0)
		errx(h2k_errcode(), "%s", h2k_errmsg());
	verbose = h2k_log_getlevel();
	/* set by h2k-job for its pipeline: see h2k_fetch_opts.job_id */
	o.job_id = getenv("H2K_JOB_ID");
	if (o.job_id && !*o.job_id)
		o.job_id = NULL;
	while ((c = getopt_long(argc, argv, "hj:ko:qs:v", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			jobs = (int)num("-j", optarg, 1, 64);
			break;
		case 'k':
			insecure = 1;
			break;
		case 'o':
			o.outdir = optarg;
			break;
		case 'q':
			verbose = H2K_LOG_ERROR;
			break;
		case 's':
			sflag = optarg;
			break;
		case 'v':
			verbose++;
			break;
		case O_ALLOWHTTP:
			o.tls.allow_http = 1;
			break;
		case O_CAFILE:
			if (access(optarg, R_OK) < 0)
				err(H2K_EX_USAGE, "--ca-file %s", optarg);
			o.tls.ca_file = optarg;
			break;
		case O_DISKSONLY:
			o.disks_only = 1;
			break;
		case O_FORMAT:
			if (!strcmp(optarg, "vmdk"))
				o.format = H2K_FMT_VMDK;
			else if (!strcmp(optarg, "raw"))
				o.format = H2K_FMT_RAW;
			else if (!strcmp(optarg, "qcow2"))
				o.format = H2K_FMT_QCOW2;
			else
				errx(H2K_EX_USAGE, "--format %s: want vmdk, raw or qcow2", optarg);
			break;
		case O_OVERWRITE:
			o.overwrite = 1;
			break;
		case O_KEEPLEASE:
			o.keep_lease = 1;
			break;
		case O_KEEPALIVE:
			o.keepalive = secs("--keepalive", optarg, 1, 3600);
			break;
		case O_PROGRESS:
			if (strcmp(optarg, "auto") && strcmp(optarg, "bar") &&
			    strcmp(optarg, "json") && strcmp(optarg, "none"))
				errx(H2K_EX_USAGE, "--progress %s: want auto, bar, json or none", optarg);
			progress = optarg;
			break;
		case O_RETRIES:
			o.retries = (int)num("--retries", optarg, 0, 1000);
			break;
		case O_RETRYDELAY:
			o.retry_delay = secs("--retry-delay", optarg, 0.001, 600);
			if (o.retry_max_delay < o.retry_delay)
				o.retry_max_delay = o.retry_delay;
			break;
		case O_SPEEDLIMIT:
			o.tls.low_speed_limit = num("--speed-limit", optarg, 1, 1L << 40);
			break;
		case O_SPEEDTIME:
			o.tls.low_speed_time = num("--speed-time", optarg, 1, 86400);
			break;
		case O_THUMBPRINT: {
			char *eq = strchr(optarg, '=');
			char *tp = h2k_thumbprint_norm(eq ? eq + 1 : optarg);
			if (!tp)
				errx(H2K_EX_USAGE, "--thumbprint %s: want [host[:port]=]SHA-256 "
				    "(64 hex digits) or SHA-1 (40), colons optional", optarg);
			if (o.npins == MAXPINS)
				errx(H2K_EX_USAGE, "--thumbprint: at most %d", MAXPINS);
			pins[o.npins].host = eq ? strndup(optarg, (size_t)(eq - optarg)) : NULL;
			pins[o.npins].thumbprint = tp;
			pinstore[o.npins] = tp;
			o.npins++;
			break;
		}
		case O_VERSION:
			printf("h2k-fetch %s\n", H2K_VERSION);
			return 0;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	if (!o.outdir)
		errx(H2K_EX_USAGE, "-o DIR is required: where the VM folders go");
	h2k_log_setlevel(verbose);

	/* DownloadWorkers and LogLevel from the config files */
	h2k_config_init(&cfg);
	if (h2k_config_load(&cfg, NULL) < 0)
		errx(h2k_errcode(), "%s", h2k_errmsg());
	if (cfg.soap_timeout > 0 &&
	    h2k_soap_set_timeout_config(cfg.soap_timeout) < 0)
		errx(h2k_errcode(), "%s", h2k_errmsg());
	if (!jobs)
		jobs = cfg.download_workers > 0 ? cfg.download_workers : 4;
	if (jobs > 64)
		jobs = 64;
	o.jobs = jobs;
	h2k_config_free(&cfg);
	/* A CA file is a trust file: checked, then used as read. */
	if (o.tls.ca_file && !(o.tls.ca_pem = capem = h2k_trust_read("CA file",
	    o.tls.ca_file, H2K_CA_MAX, NULL, NULL)))
		errx(h2k_errcode(), "%s", h2k_errmsg());

	/*
	 * The session: required with -s or $H2K_SESSION; the default one is
	 * used when it exists.  Without any, plain device URLs still work (no
	 * cookie) and lines carrying a lease fail (nothing to keep it alive).
	 */
	if (!(spath = h2k_session_path(sflag)))
		errx(h2k_errcode(), "%s", h2k_errmsg());
	if (h2k_session_load(spath, &sess) == 0)
		have_session = 1;
	else if (sflag || getenv("H2K_SESSION") || errno != ENOENT ||
	    h2k_errcode() != H2K_EX_SESSION) {
		free(spath);  /* valgrind counts it lost at exit otherwise */
		errx(h2k_errcode(), "%s", h2k_errmsg());
	}
	free(spath);
	if (have_session) {
		o.session = &sess;
		if (sess.insecure)
			insecure = 1;
		if (!o.tls.ca_file && sess.ca_pem) {
			o.tls.ca_file = sess.ca_file;
			o.tls.ca_pem = sess.ca_pem;
		}
	}
	o.tls.insecure = insecure;

	if (!strcmp(progress, "auto"))
		o.progress = isatty(STDERR_FILENO) ? H2K_PROGRESS_BAR : H2K_PROGRESS_NONE;
	else if (!strcmp(progress, "bar"))
		o.progress = H2K_PROGRESS_BAR;
	else if (!strcmp(progress, "json"))
		o.progress = H2K_PROGRESS_JSON;
	else
		o.progress = H2K_PROGRESS_NONE;

	/* no SA_RESTART: a read of stdin must return so the run can stop */
	devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	rc = h2k_fetch_run(&o, stdin, "stdin", stdout);

	for (int i = 0; i < o.npins; i++) {
		free((char *)pins[i].host);
		free(pinstore[i]);
	}
	h2k_session_free(&sess);
	free(capem);
	return rc;
}
