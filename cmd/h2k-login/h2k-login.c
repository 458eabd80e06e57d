/*
 * h2k-login - log in to vCenter/ESXi and keep the session in a file.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * Options, then one call: the login sequence (and why its order matters)
 * is lib/login.c; --status and --logout are a few calls each.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cmd.h"
#include "config.h"
#include "h2k.h"
#include "http.h"
#include "jsonl.h"
#include "login.h"
#include "session.h"
#include "vim.h"

static void
usage(void)
{
	h2k_usage(
	    "usage: h2k-login [-kqv] [-c config] [-s session] [-U user] [-u url]\n"
	    "                 [--ca-file file] [--password-file file | --password-stdin]\n"
	    "                 [--thumbprint hex]\n"
	    "       h2k-login [-qv] [-s session] --status\n"
	    "       h2k-login [-qv] [-s session] --logout\n");
}

/* The one JSON line describing a session (never the cookie). */
static void
print_session(const struct h2k_session *s, const char *path, int valid)
{
	cJSON *o = cJSON_CreateObject();

#define STR(k, v) ((v) ? cJSON_AddStringToObject(o, k, v) : cJSON_AddNullToObject(o, k))
	if (!o || !STR("url", s->url) || !STR("user", s->user) ||
	    !STR("server_type", s->server_type) ||
	    !STR("server_version", s->server_version) ||
	    !STR("api_version", s->api_version) ||
	    !STR("thumbprint", s->thumbprint) ||
	    !cJSON_AddBoolToObject(o, "insecure", s->insecure) ||
	    !STR("ca_file", s->ca_file) || !STR("session_file", path) ||
	    !STR("created_at", s->created_at) ||
	    (valid >= 0 && !cJSON_AddBoolToObject(o, "valid", valid))) {
		cJSON_Delete(o);
		h2k_diex(H2K_EX_FAIL, "out of memory");
	}
#undef STR
	if (h2k_json_write(stdout, o) < 0) {
		cJSON_Delete(o);
		h2k_die();
	}
	cJSON_Delete(o);
}

static int
do_status(const char *path)
{
	static struct h2k_session s;	/* static: see the note above main */
	static struct h2k_vim *v;
	int alive;

	if (h2k_session_load(path, &s) < 0)
		h2k_die();
	if (!(v = h2k_vim_from_session(&s)))
		h2k_die();
	alive = h2k_vim_session_alive(v, NULL);
	h2k_vim_free(v);
	if (alive < 0)
		h2k_die();
	print_session(&s, path, alive);
	if (!alive) {
		h2k_say("session %s for %s has expired or was ended on the "
		    "server; run h2k-login", path, s.url);
		h2k_session_free(&s);
		return H2K_EX_SESSION;
	}
	h2k_session_free(&s);
	return 0;
}

/*
 * The server session is ended first; the file goes whether or not the
 * server could be reached (the cookie is a credential and the user asked
 * for it gone), but an unreachable server is still reported.
 */
static int
do_logout(const char *path)
{
	static struct h2k_session s;	/* static: see the note above main */
	static struct h2k_vim *v;
	char msg[1024] = "";
	int code = 0;

	if (h2k_session_load(path, &s) < 0)
		h2k_die();
	if (!(v = h2k_vim_from_session(&s)) || h2k_vim_logout(v) < 0) {
		if (h2k_errcode() == H2K_EX_SESSION) {
			h2k_info("session on %s had already ended", s.url);
		} else {
			snprintf(msg, sizeof msg, "%s", h2k_errmsg());
			code = h2k_errcode();
		}
	} else
		h2k_info("logged out of %s", s.url);
	h2k_vim_free(v);
	if (h2k_session_remove(path) < 0) {
		h2k_session_free(&s);
		h2k_die();
	}
	h2k_session_free(&s);
	if (code) {
		h2k_say("could not end the session on the server (%s); "
		    "removed %s anyway", msg, path);
		return code;
	}
	return 0;
}

enum {
	OPT_PASSWORD_FILE = 256,
	OPT_PASSWORD_STDIN,
	OPT_THUMBPRINT,
	OPT_CA_FILE,
	OPT_STATUS,
	OPT_LOGOUT,
};

/* -u URL: a user in it is taken (unless -U came first), a password refused. */
static void
opt_url(struct h2k_config *c, char *arg)
{
	char *p;

	if (h2k_config_take_url(c, arg, &p) < 0) {
		h2k_adderr("-u");
		h2k_die();
	}
	if (p) {
		/* Too late to keep it out of ps, but not out of
		 * /proc/PID/cmdline for the rest of our life. */
		h2k_freesecret(p);
		h2k_wipe(arg, strlen(arg));
		h2k_diex(H2K_EX_USAGE, "password in the server URL refused "
		    "(command lines are visible to other users); use "
		    "--password-file, --password-stdin or H2K_PASSWORD");
	}
}

/*
 * What main and the helpers own lives in static storage: h2k_die() and
 * h2k_diex() exit without unwinding, and LeakSanitizer would count memory reachable
 * only from locals the compiler considers dead on that path as leaked,
 * turning a documented exit status into 125 under ASan.
 */
int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{"ca-file", required_argument, NULL, OPT_CA_FILE},
		{"config", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{"insecure", no_argument, NULL, 'k'},
		{"logout", no_argument, NULL, OPT_LOGOUT},
		{"password-file", required_argument, NULL, OPT_PASSWORD_FILE},
		{"password-stdin", no_argument, NULL, OPT_PASSWORD_STDIN},
		{"quiet", no_argument, NULL, 'q'},
		{"session", required_argument, NULL, 's'},
		{"status", no_argument, NULL, OPT_STATUS},
		{"thumbprint", required_argument, NULL, OPT_THUMBPRINT},
		{"url", required_argument, NULL, 'u'},
		{"user", required_argument, NULL, 'U'},
		{"verbose", no_argument, NULL, 'v'},
		{NULL, 0, NULL, 0},
	};
	static struct h2k_config c;
	static struct h2k_session s;
	static char *path;
	struct h2k_login_opts lo = {0};
	const char *cfile = NULL, *sflag = NULL, *pwfile = NULL;
	int ch, verbose = 0, quiet = 0, pwstdin = 0, status = 0, logout = 0;
	int login_opts = 0;

	h2k_cmd_init("h2k-login");
	h2k_config_init(&c);
	while ((ch = getopt_long(argc, argv, "U:c:hkqs:u:v", longopts, NULL)) != -1) {
		switch (ch) {
		case 'U':
			free(c.username);
			if (!(c.username = h2k_strdup(optarg)))
				h2k_die();
			login_opts = 1;
			break;
		case 'c':
			cfile = optarg;
			break;
		case 'k':
			c.insecure = 1;
			login_opts = 1;
			break;
		case 'q':
			quiet = 1;
			break;
		case 's':
			sflag = optarg;
			break;
		case 'u':
			opt_url(&c, optarg);
			login_opts = 1;
			break;
		case 'v':
			verbose++;
			break;
		case OPT_CA_FILE:
			free(c.ca_file);
			if (!(c.ca_file = h2k_strdup(optarg)))
				h2k_die();
			login_opts = 1;
			break;
		case OPT_PASSWORD_FILE:
			pwfile = optarg;
			login_opts = 1;
			break;
		case OPT_PASSWORD_STDIN:
			pwstdin = 1;
			login_opts = 1;
			break;
		case OPT_STATUS:
			status = 1;
			break;
		case OPT_LOGOUT:
			logout = 1;
			break;
		case OPT_THUMBPRINT:
			free(c.thumbprint);
			if (!(c.thumbprint = h2k_strdup(optarg)))
				h2k_die();
			login_opts = 1;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	if (status + logout > 1 || ((status || logout) && (login_opts || cfile)))
		usage();
	if (pwfile && pwstdin)
		h2k_diex(H2K_EX_USAGE, "--password-file and --password-stdin exclude "
		    "each other");
	if (quiet)
		h2k_log_setlevel(H2K_LOG_ERROR);
	else if (verbose)
		h2k_log_setlevel(H2K_LOG_WARN + verbose);
	if (h2k_http_global_init() < 0)
		h2k_die();

	if (!(path = h2k_session_path(sflag)))
		h2k_die();
	if (status || logout) {
		int rc = status ? do_status(path) : do_logout(path);

		free(path);
		return rc;
	}

	if (h2k_config_load(&c, cfile) < 0)
		h2k_die();
	if (c.soap_timeout > 0 && h2k_soap_set_timeout_config(c.soap_timeout) < 0)
		h2k_die();
	if (!quiet && !verbose && c.log_level >= 0)
		h2k_log_setlevel(c.log_level);
	lo.cfg = &c;
	lo.session_path = path;
	lo.password_file = pwfile;
	lo.password_stdin = pwstdin;
	if (h2k_login(&lo, &s) < 0)
		h2k_die();
	print_session(&s, path, -1);
	h2k_session_free(&s);
	h2k_config_free(&c);
	free(path);
	return 0;
}
