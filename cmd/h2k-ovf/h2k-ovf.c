/*
 * h2k-ovf - finish exports: OVF descriptor, manifest, optional OVA, then
 * complete the lease and remove the temporary snapshot.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * Options, the session, signals; the engine is lib/finish.c
 * (h2k_finish_run).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cmd.h"
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
	h2k_usage(
	    "usage: h2k-ovf [-hqVv] [-s session] [--deliver dir] [--hyper2kvm-fix]\n"
	    "               [--hyper2kvm-manifest] [--hyper2kvm-output dir] [--keep-files]\n"
	    "               [--keep-lease] [--ova] [--remove-cdrom] [--verify]\n");
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
	char *path;
	int ch, level, rc;

	h2k_cmd_init("h2k-ovf");
	/* H2K_LOG_LEVEL, else LOG_LEVEL, else warn (h2k_log_init) */
	level = h2k_log_getlevel();
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
	/* "" would be the working directory without saying so */
	if (o.deliver && !*o.deliver)
		h2k_diex(H2K_EX_USAGE, "--deliver: an empty directory name");
	if (o.hyper2kvm_output && !*o.hyper2kvm_output)
		h2k_diex(H2K_EX_USAGE, "--hyper2kvm-output: an empty directory name");
	if (isatty(STDIN_FILENO))
		h2k_diex(H2K_EX_USAGE, "standard input is a terminal: h2k-ovf "
		    "reads the lines of h2k-fetch");
	h2k_log_setlevel(level);

	h2k_cmd_signals(on_signal);

	path = h2k_session_path(spath);
	if (!path || h2k_session_load(path, &sess) < 0) {
		free(path);
		return h2k_report();
	}
	free(path);
	o.session = &sess;
	o.errors = stderr;
	rc = h2k_finish_run(&o, stdin, "stdin", stdout);
	h2k_session_free(&sess);
	return rc;
}
