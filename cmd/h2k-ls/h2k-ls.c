/*
 * h2k-ls - list vSphere VMs as JSON lines (or a table).
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * Options, the session, then one call: the listing engine (its moref
 * table, the VM -> JSON mapping, the worker threads) is lib/inventory.c.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "config.h"
#include "h2k.h"
#include "inventory.h"
#include "session.h"
#include "vim.h"

#define JOBS_DEFAULT 4

static void
usage(void)
{
	h2k_usage(
	    "usage: h2k-ls [-qtv] [-s session] [--name glob] [--power on | off | suspended]\n"
	    "              [--soap-timeout seconds] [--templates | --no-templates]\n"
	    "              [path ...]\n");
}

static int
jobs_setting(void)
{
	const char *e = getenv("H2K_LS_JOBS");

	if (!e || !*e)
		return JOBS_DEFAULT;
	return (int)h2k_opt_int("H2K_LS_JOBS", e, 1, 32);
}

static const char *
power_short(const char *p)
{
	if (!p)
		return "?";
	if (!strcmp(p, "poweredOn"))
		return "on";
	if (!strcmp(p, "poweredOff"))
		return "off";
	return p;
}

/* The table is for a terminal: server names escaped (h2k.h). */
static void
print_table(struct h2k_inv_result *ls)
{
	int wn = 4, wp = 5;
	char mem[32];

	for (size_t i = 0; i < ls->nrows; i++) {
		struct h2k_inv_row *r = &ls->rows[i];
		struct h2k_buf n = {0}, p = {0}, w = {0};
		const char *pw = power_short(r->power);

		if (h2k_buf_ttyesc(&n, r->name, strlen(r->name), 0) < 0 ||
		    h2k_buf_ttyesc(&p, r->path, strlen(r->path), 0) < 0 ||
		    h2k_buf_ttyesc(&w, pw, strlen(pw), 0) < 0) {
			h2k_buf_free(&n);
			h2k_buf_free(&p);
			h2k_buf_free(&w);
			h2k_die();
		}
		free(r->name);
		free(r->path);
		free(r->power);
		r->name = n.data;
		r->path = p.data;
		r->power = w.data;
		if ((int)n.len > wn)
			wn = (int)n.len;
		if ((int)strlen(power_short(r->power)) > wp)
			wp = (int)strlen(power_short(r->power));
	}
	printf("%-*s  %-*s  %3s  %9s  %9s  %s\n", wn, "Name", wp, "Power", "CPU",
	    "Mem", "Disks GiB", "Path");
	for (size_t i = 0; i < ls->nrows; i++) {
		struct h2k_inv_row *r = &ls->rows[i];
		if (r->mem >= 1024 && r->mem % 1024 == 0)
			snprintf(mem, sizeof mem, "%ld GiB", r->mem / 1024);
		else
			snprintf(mem, sizeof mem, "%ld MiB", r->mem);
		printf("%-*s  %-*s  %3ld  %9s  %9.1f  %s\n", wn, r->name, wp,
		    power_short(r->power), r->cpu, mem, r->disk_gib, r->path);
	}
}

static int
session_err(const char *spath)
{
	if (h2k_errcode() == H2K_EX_SESSION && strstr(h2k_errmsg(),
	    "NotAuthenticated"))
		h2k_seterr(H2K_EX_SESSION, "session expired or not valid "
		    "(%s); run h2k-login", spath);
	return -1;
}

/* "web" -> "/web", "/DC0/vm/" -> "/DC0/vm": what the engine matches. */
static void
set_paths(struct h2k_inv_opts *o, int n, char **args)
{
	if (!(o->npaths = n))
		return;
	o->paths = calloc((size_t)n, sizeof *o->paths);
	o->found = calloc((size_t)n, sizeof *o->found);
	if (!o->paths || !o->found)
		h2k_diex(H2K_EX_FAIL, "out of memory");
	for (int i = 0; i < n; i++) {
		const char *a = args[i];
		size_t len = strlen(a);
		if (!len)
			h2k_diex(H2K_EX_USAGE, "empty path argument");
		while (len > 1 && a[len - 1] == '/')
			len--;
		if (asprintf(&o->paths[i], "%s%.*s", a[0] == '/' ? "" : "/",
		    (int)len, a) < 0)
			h2k_diex(H2K_EX_FAIL, "out of memory");
	}
}

/* The configuration files count for the SOAP deadline only. */
static int
config_timeout(void)
{
	struct h2k_config cfg;
	int r;

	h2k_config_init(&cfg);
	r = h2k_config_load(&cfg, NULL);
	if (r == 0 && cfg.soap_timeout > 0)
		r = h2k_soap_set_timeout_config(cfg.soap_timeout);
	h2k_config_free(&cfg);
	return r;
}

int
main(int argc, char **argv)
{
	enum { O_NAME = 256, O_POWER, O_TEMPLATES, O_NOTEMPLATES, O_VERSION,
		O_SOAPTIMEOUT };
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "name", required_argument, NULL, O_NAME },
		{ "no-templates", no_argument, NULL, O_NOTEMPLATES },
		{ "power", required_argument, NULL, O_POWER },
		{ "quiet", no_argument, NULL, 'q' },
		{ "session", required_argument, NULL, 's' },
		{ "soap-timeout", required_argument, NULL, O_SOAPTIMEOUT },
		{ "table", no_argument, NULL, 't' },
		{ "templates", no_argument, NULL, O_TEMPLATES },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, O_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	struct h2k_inv_opts o = { .templates = -1 };
	struct h2k_inv_result res = { 0 };
	struct h2k_session sess = { 0 };
	struct h2k_vim *v = NULL;
	const char *sflag = NULL;
	char *spath = NULL;
	int c, verbose = H2K_LOG_WARN, rc = H2K_EX_OK;

	h2k_cmd_init("h2k-ls");
	verbose = h2k_log_getlevel();
	while ((c = getopt_long(argc, argv, "hqs:tv", longopts, NULL)) != -1) {
		switch (c) {
		case 'q':
		case 'v':
			h2k_cmd_loglevel(c, &verbose);
			break;
		case 's':
			sflag = optarg;
			break;
		case 't':
			o.table = 1;
			break;
		case O_NAME:
			o.name_glob = optarg;
			break;
		case O_POWER:
			if (!strcmp(optarg, "on"))
				o.power = "poweredOn";
			else if (!strcmp(optarg, "off"))
				o.power = "poweredOff";
			else if (!strcmp(optarg, "suspended"))
				o.power = "suspended";
			else
				h2k_diex(H2K_EX_USAGE, "--power %s: want on, off "
				    "or suspended", optarg);
			break;
		case O_TEMPLATES:
			o.templates = 1;
			break;
		case O_NOTEMPLATES:
			o.templates = 0;
			break;
		case O_SOAPTIMEOUT: {
			double t;
			if (h2k_soap_parse_timeout(optarg, "--soap-timeout", &t) < 0 ||
			    h2k_soap_set_timeout(t) < 0)
				h2k_die();
			break;
		}
		case O_VERSION:
			h2k_version();
		default:
			usage();
		}
	}
	h2k_log_setlevel(verbose);
	set_paths(&o, argc - optind, argv + optind);
	o.jobs = jobs_setting();

	if (config_timeout() < 0 || !(spath = h2k_session_path(sflag)) ||
	    h2k_session_load(spath, &sess) < 0 ||
	    !(v = h2k_vim_from_session(&sess)))
		goto fail;
	if (h2k_inv_list(v, &sess, &o, stdout, &res) < 0) {
		session_err(spath);
		goto fail;
	}
	if (o.table)
		print_table(&res);
	for (int i = 0; i < o.npaths; i++)
		if (!o.found[i]) {
			h2k_say("%s: no such VM or folder", o.paths[i]);
			rc = H2K_EX_NOTFOUND;
		}
	h2k_debug("%ld VMs listed, %zu other objects", res.listed, res.others);
	goto out;
fail:
	rc = h2k_report();
out:
	if (fflush(stdout) == EOF || ferror(stdout)) {
		h2k_say("stdout: write error");
		if (rc == H2K_EX_OK)
			rc = H2K_EX_IO;
	}
	h2k_vim_free(v);
	h2k_session_free(&sess);
	free(spath);
	h2k_inv_result_free(&res);
	for (int i = 0; i < o.npaths; i++)
		free(o.paths[i]);
	free(o.paths);
	free(o.found);
	return rc;
}
