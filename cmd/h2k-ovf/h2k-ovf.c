/*
 * h2k-ovf - finish exports: OVF descriptor, manifest, optional OVA, then
 * complete the lease and remove the temporary snapshot.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * Options, the session, signals; the engine is lib/finish.c
 * (h2k_finish_run).
 */
#include <err.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "finish.h"
#include "h2k.h"
#include "session.h"

static void
on_signal(int sig)
{
	h2k_finish_cancel(sig);
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: h2k-ovf [-hqVv] [-s session] [--deliver dir] [--hyper2kvm-fix]\n"
	    "               [--hyper2kvm-manifest] [--hyper2kvm-output dir] [--keep-files]\n"
	    "               [--keep-lease] [--ova] [--remove-cdrom] [--verify]\n");
	exit(H2K_EX_USAGE);
}

int
main(int argc, char **argv)
{
	enum { OPT_OVA = 256, OPT_CDROM, OPT_KEEP, OPT_VERIFY, OPT_DELIVER,
	    OPT_H2KVM_FIX, OPT_H2KVM_MANIFEST, OPT_H2KVM_OUTPUT, OPT_KEEPFILES };
	static const struct option longopts[] = {
		{ "deliver", required_argument, NULL, OPT_DELIVER },
		{ "help", no_argument, NULL, 'h' },
		{ "hyper2kvm-fix", no_argument, NULL, OPT_H2KVM_FIX },
		{ "hyper2kvm-manifest", no_argument, NULL, OPT_H2KVM_MANIFEST },
		{ "hyper2kvm-output", required_argument, NULL, OPT_H2KVM_OUTPUT },
		{ "keep-files", no_argument, NULL, OPT_KEEPFILES },
		{ "keep-lease", no_argument, NULL, OPT_KEEP },
		{ "ova", no_argument, NULL, OPT_OVA },
		{ "quiet", no_argument, NULL, 'q' },
		{ "remove-cdrom", no_argument, NULL, OPT_CDROM },
		{ "session", required_argument, NULL, 's' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "verify", no_argument, NULL, OPT_VERIFY },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct h2k_finish_opts o = { .progname = "h2k-ovf" };
	const char *spath = NULL;
	struct h2k_session sess = { 0 };
	struct sigaction sa;
	char *path;
	int ch, level = H2K_LOG_WARN, rc;

	h2k_log_init("h2k-ovf");
	/* it will hold a password or a session cookie */
	if (h2k_nodump() < 0)
		errx(h2k_errcode(), "%s", h2k_errmsg());
	if (getenv("H2K_LOG_LEVEL") &&
	    (ch = h2k_log_parselevel(getenv("H2K_LOG_LEVEL"))) >= 0)
		level = ch;
	while ((ch = getopt_long(argc, argv, "hqs:Vv", longopts, NULL)) != -1) {
		switch (ch) {
		case 'q':
			level = H2K_LOG_ERROR;
			break;
		case 's':
			spath = optarg;
			break;
		case 'V':
			printf("h2k-ovf %s\n", H2K_VERSION);
			return 0;
		case 'v':
			if (level < H2K_LOG_TRACE)
				level++;
			break;
		case OPT_OVA:
			o.ova = 1;
			break;
		case OPT_CDROM:
			o.remove_cdrom = 1;
			break;
		case OPT_KEEP:
			o.keep_lease = 1;
			break;
		case OPT_VERIFY:
			o.verify = 1;
			break;
		case OPT_KEEPFILES:
			o.keep_files = 1;
			break;
		case OPT_DELIVER:
			o.deliver = optarg;
			break;
		case OPT_H2KVM_FIX:
			o.hyper2kvm_fix = 1;
			break;
		case OPT_H2KVM_MANIFEST:
			o.hyper2kvm_manifest = 1;
			break;
		case OPT_H2KVM_OUTPUT:
			o.hyper2kvm_output = optarg;
			break;
		case 'h':
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	if (isatty(STDIN_FILENO))
		errx(H2K_EX_USAGE, "standard input is a terminal: h2k-ovf reads "
		    "the lines of h2k-fetch");
	h2k_log_setlevel(level);

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	path = h2k_session_path(spath);
	if (!path || h2k_session_load(path, &sess) < 0) {
		free(path);
		fprintf(stderr, "h2k-ovf: %s\n", h2k_errmsg());
		return h2k_errcode();
	}
	free(path);
	o.session = &sess;
	o.errors = stderr;
	rc = h2k_finish_run(&o, stdin, "stdin", stdout);
	h2k_session_free(&sess);
	return rc;
}
