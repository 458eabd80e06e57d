/*
 * h2k-login - log in to vCenter/ESXi and keep the session in a file.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * Order matters for safety: the server is contacted (RetrieveServiceContent,
 * which carries no credential) before the password is even read, so a
 * certificate that fails verification or the pin costs nothing secret and
 * no prompt is shown to an impostor.  Only after a successful Login is the
 * session file written; if writing it fails, the new server session is
 * ended again rather than left orphaned.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cmd.h"
#include "config.h"
#include "h2k.h"
#include "http.h"
#include "jsonl.h"
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
	static struct h2k_session old;
	static struct h2k_vim *v;
	static char *path, *url, *pin, *cafile, *capem;
	struct h2k_tls tls = {0};
	struct h2k_session s = {0};
	const char *cfile = NULL, *sflag = NULL, *pwfile = NULL;
	char *pw = NULL;
	char created[32], prompt[512];
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
		case 'u': {
			char *u, *user, *p;

			if (h2k_url_userinfo(optarg, &u, &user, &p) < 0) {
				h2k_adderr("-u");
				h2k_die();
			}
			if (p) {
				/* Too late to keep it out of ps, but not out of
				 * /proc/PID/cmdline for the rest of our life. */
				h2k_freesecret(p);
				h2k_wipe(optarg, strlen(optarg));
				h2k_diex(H2K_EX_USAGE, "password in the server URL refused "
				    "(command lines are visible to other users); use "
				    "--password-file, --password-stdin or H2K_PASSWORD");
			}
			free(c.url);
			c.url = u;
			if (user && !c.username)
				c.username = user;
			else
				free(user);
			login_opts = 1;
			break;
		}
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
	if (!c.url)
		h2k_diex(H2K_EX_USAGE, "no server URL: use -u, H2K_URL, GOVC_URL or "
		    "VCenterURL in the config file");
	if (!(url = h2k_url_normalize(c.url, 0, NULL)))
		h2k_die();
	if (!c.username)
		h2k_diex(H2K_EX_USAGE, "no user name: use -U, H2K_USERNAME, "
		    "GOVC_USERNAME or Username in the config file");
	if (c.thumbprint && !(pin = h2k_thumbprint_norm(c.thumbprint)))
		h2k_diex(H2K_EX_USAGE, "bad thumbprint '%s': want SHA-256 (64 hex "
		    "digits) or SHA-1 (40), colons optional", c.thumbprint);
	if (c.ca_file) {
		char *named;

		/* Stored for later commands, which may run elsewhere. */
		if (!(cafile = realpath(c.ca_file, NULL)) ||
		    access(cafile, R_OK) < 0)
			h2k_diex(H2K_EX_USAGE, "CA file %s: %s", c.ca_file,
			    strerror(errno));
		/*
		 * Whoever can replace the CA file can read the session cookie:
		 * check it as a trust file, and keep what was checked in the
		 * session so later commands never read the file again.  The
		 * name as given (made absolute, not resolved) is what is
		 * checked: a symlink on the way is followed only if the
		 * directories it sits in pass as well as those it leads to.
		 */
		if (*c.ca_file == '/')
			named = h2k_strdup(c.ca_file);
		else if ((named = getcwd(NULL, 0))) {
			char *t = h2k_asprintf("%s/%s", named, c.ca_file);

			free(named);
			named = t;
		}
		if (!named)
			h2k_diex(H2K_EX_IO, "CA file %s: %s", c.ca_file, strerror(errno));
		capem = h2k_trust_read("CA file", named, H2K_CA_MAX, NULL, NULL);
		free(named);
		if (!capem)
			h2k_die();
	}
	if (h2k_session_check_dir(path) < 0)
		h2k_die();
	/* Nowhere to get a password from: say so before contacting anyone. */
	if (!pwfile && !pwstdin && !c.password) {
		int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);

		if (fd < 0)
			h2k_diex(H2K_EX_USAGE, "no password: use --password-file, "
			    "--password-stdin or H2K_PASSWORD");
		close(fd);
	}
	tls.insecure = c.insecure > 0;
	tls.thumbprint = pin;
	tls.ca_file = cafile;
	tls.ca_pem = capem;
	h2k_debug("connecting to %s (URL from %s, user from %s)", url,
	    c.url_from ? c.url_from : "?", c.username_from ? c.username_from : "?");

	if (!(v = h2k_vim_connect(url, &tls, NULL)))
		h2k_die();

	if (pwfile)
		pw = h2k_password_file(pwfile);
	else if (pwstdin)
		pw = h2k_password_stdin();
	else if (c.password) {
		h2k_debug("password from %s", c.password_from ? c.password_from : "?");
		pw = c.password;
		c.password = NULL;
	} else {
		snprintf(prompt, sizeof prompt, "Password for %s@%s: ", c.username,
		    h2k_soap_host(v->soap));
		pw = h2k_password_prompt(prompt);
	}
	if (!pw)
		h2k_die();
	if (h2k_vim_login(v, c.username, pw) < 0) {
		h2k_freesecret(pw);
		h2k_die();
	}
	h2k_freesecret(pw);

	s.url = url;
	s.cookie = (char *)h2k_soap_cookie(v->soap);
	s.thumbprint = pin;
	s.insecure = tls.insecure;
	s.ca_file = cafile;
	s.ca_pem = capem;
	s.server_type = v->about_type;
	s.server_version = v->about_version;
	s.api_version = v->about_api_version;
	s.user = c.username;
	s.created_at = (char *)h2k_now_rfc3339(created);
	/*
	 * The session this login replaces: once the file is overwritten nobody
	 * holds its cookie any more, and vCenter limits concurrent sessions,
	 * so end it.  Only for the same server (just reached, so no long
	 * timeout) and only as a courtesy: failures are ignored.
	 */
	if (h2k_session_load(path, &old) < 0) {
		h2k_clearerr();
		memset(&old, 0, sizeof old);
	}
	if (h2k_session_save(path, &s) < 0) {
		char msg[1024];
		int code = h2k_errcode();

		snprintf(msg, sizeof msg, "%s", h2k_errmsg());
		(void)h2k_vim_logout(v);
		/* LeakSanitizer sees what main no longer references at exit. */
		free(path);
		h2k_diex(code, "%s (logged out again)", msg);
	}
	if (old.url && !strcmp(old.url, url) && strcmp(old.cookie, s.cookie)) {
		struct h2k_vim *ov = h2k_vim_from_session(&old);

		if (ov && h2k_vim_logout(ov) == 0)
			h2k_debug("ended the session this login replaced");
		else
			h2k_debug("previous session not ended: %s", h2k_errmsg());
		h2k_vim_free(ov);
		h2k_clearerr();
	}
	h2k_session_free(&old);
	h2k_info("logged in to %s as %s (%s %s); session in %s", url, c.username,
	    v->about_type ? v->about_type : "?",
	    v->about_version ? v->about_version : "?", path);
	print_session(&s, path, -1);
	h2k_vim_free(v);
	h2k_config_free(&c);
	free(url);
	free(pin);
	free(cafile);
	free(capem);
	free(path);
	return 0;
}
