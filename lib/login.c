/*
 * login.c - h2k-login's sequence (login.h).
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
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "h2k.h"
#include "http.h"
#include "login.h"
#include "session.h"
#include "soap.h"
#include "vim.h"

/*
 * The CA file, checked as a trust file: whoever can replace it can read
 * the session cookie.  What was checked is kept in the session so later
 * commands never read the file again.  The name as given (made absolute,
 * not resolved) is what is checked: a symlink on the way is followed only
 * if the directories it sits in pass as well as those it leads to.
 * *abs gets the resolved name, stored for later commands (which may run
 * elsewhere); returns the PEM.
 */
static char *
ca_read(const char *ca_file, char **abs)
{
	char *named, *pem;

	if (!(*abs = realpath(ca_file, NULL)) || access(*abs, R_OK) < 0) {
		h2k_seterr(H2K_EX_USAGE, "CA file %s: %s", ca_file,
		    strerror(errno));
		goto fail;
	}
	if (*ca_file == '/')
		named = h2k_strdup(ca_file);
	else if ((named = getcwd(NULL, 0))) {
		char *t = h2k_asprintf("%s/%s", named, ca_file);

		free(named);
		named = t;
	}
	if (!named) {
		h2k_seterr(H2K_EX_IO, "CA file %s: %s", ca_file, strerror(errno));
		goto fail;
	}
	pem = h2k_trust_read("CA file", named, H2K_CA_MAX, NULL, NULL);
	free(named);
	if (pem)
		return pem;
fail:
	free(*abs);
	*abs = NULL;
	return NULL;
}

/* What must be there before anyone is contacted. */
static int
check_given(struct h2k_login_opts *o, struct h2k_tls *tls, char **url)
{
	struct h2k_config *c = o->cfg;

	if (!c->url)
		return h2k_seterr(H2K_EX_USAGE, "no server URL: use -u, H2K_URL, "
		    "GOVC_URL or VCenterURL in the config file");
	if (!(*url = h2k_url_normalize(c->url, 0, NULL)))
		return -1;
	if (!c->username)
		return h2k_seterr(H2K_EX_USAGE, "no user name: use -U, "
		    "H2K_USERNAME, GOVC_USERNAME or Username in the config file");
	if (c->thumbprint && !(tls->thumbprint =
	    h2k_thumbprint_norm(c->thumbprint)))
		return h2k_seterr(H2K_EX_USAGE, "bad thumbprint '%s': want SHA-256 "
		    "(64 hex digits) or SHA-1 (40), colons optional",
		    c->thumbprint);
	if (c->ca_file && !(tls->ca_pem = ca_read(c->ca_file,
	    &tls->ca_file)))
		return -1;
	if (h2k_session_check_dir(o->session_path) < 0)
		return -1;
	/* Nowhere to get a password from: say so before contacting anyone. */
	if (!o->password_file && !o->password_stdin && !c->password) {
		int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);

		if (fd < 0)
			return h2k_seterr(H2K_EX_USAGE, "no password: use "
			    "--password-file, --password-stdin or H2K_PASSWORD");
		close(fd);
	}
	tls->insecure = c->insecure > 0;
	return 0;
}

static char *
read_password(struct h2k_login_opts *o, struct h2k_vim *v)
{
	struct h2k_config *c = o->cfg;
	char prompt[512], *pw;

	if (o->password_file)
		return h2k_password_file(o->password_file);
	if (o->password_stdin)
		return h2k_password_stdin();
	if (c->password) {
		h2k_debug("password from %s", c->password_from ?
		    c->password_from : "?");
		pw = c->password;
		c->password = NULL;
		return pw;
	}
	snprintf(prompt, sizeof prompt, "Password for %s@%s: ", c->username,
	    h2k_soap_host(v->soap));
	return h2k_password_prompt(prompt);
}

/* out from what the login gave; every string its own. */
static int
fill(struct h2k_session *s, struct h2k_vim *v, const char *user)
{
	char created[32];

	if (!(s->cookie = h2k_strdup(h2k_soap_cookie(v->soap))) ||
	    (v->about_type && !(s->server_type = h2k_strdup(v->about_type))) ||
	    (v->about_version &&
	    !(s->server_version = h2k_strdup(v->about_version))) ||
	    (v->about_api_version &&
	    !(s->api_version = h2k_strdup(v->about_api_version))) ||
	    !(s->user = h2k_strdup(user)) ||
	    !(s->created_at = h2k_strdup(h2k_now_rfc3339(created))))
		return -1;
	return 0;
}

/*
 * The session this login replaces: once the file is overwritten nobody
 * holds its cookie any more, and vCenter limits concurrent sessions, so
 * end it.  Only for the same server (just reached, so no long timeout)
 * and only as a courtesy: failures are ignored.
 */
static void
end_replaced(struct h2k_session *old, const struct h2k_session *s)
{
	if (old->url && !strcmp(old->url, s->url) &&
	    strcmp(old->cookie, s->cookie)) {
		struct h2k_vim *ov = h2k_vim_from_session(old);

		if (ov && h2k_vim_logout(ov) == 0)
			h2k_debug("ended the session this login replaced");
		else
			h2k_debug("previous session not ended: %s", h2k_errmsg());
		h2k_vim_free(ov);
		h2k_clearerr();
	}
}

int
h2k_login(struct h2k_login_opts *o, struct h2k_session *out)
{
	struct h2k_config *c = o->cfg;
	struct h2k_session old = {0};
	struct h2k_tls tls = {0};
	struct h2k_vim *v = NULL;
	char *url = NULL, *pw;
	int rc = -1;

	memset(out, 0, sizeof *out);
	if (check_given(o, &tls, &url) < 0)
		goto out;
	h2k_debug("connecting to %s (URL from %s, user from %s)", url,
	    c->url_from ? c->url_from : "?",
	    c->username_from ? c->username_from : "?");
	if (!(v = h2k_vim_connect(url, &tls, NULL)) ||
	    !(pw = read_password(o, v)))
		goto out;
	if (h2k_vim_login(v, c->username, pw) < 0) {
		h2k_freesecret(pw);
		goto out;
	}
	h2k_freesecret(pw);
	out->url = url;
	out->thumbprint = tls.thumbprint;
	out->insecure = tls.insecure;
	out->ca_file = tls.ca_file;
	out->ca_pem = (char *)tls.ca_pem;
	url = NULL;
	memset(&tls, 0, sizeof tls);
	if (fill(out, v, c->username) < 0)
		goto out;
	if (h2k_session_load(o->session_path, &old) < 0) {
		h2k_clearerr();
		memset(&old, 0, sizeof old);
	}
	if (h2k_session_save(o->session_path, out) < 0) {
		char msg[1024];
		int code = h2k_errcode();

		snprintf(msg, sizeof msg, "%s", h2k_errmsg());
		(void)h2k_vim_logout(v);
		h2k_seterr(code, "%s (logged out again)", msg);
		goto out;
	}
	end_replaced(&old, out);
	h2k_info("logged in to %s as %s (%s %s); session in %s", out->url,
	    c->username, v->about_type ? v->about_type : "?",
	    v->about_version ? v->about_version : "?", o->session_path);
	rc = 0;
out:
	if (rc < 0)
		h2k_session_free(out);
	h2k_session_free(&old);
	h2k_vim_free(v);
	free(url);
	free(tls.thumbprint);
	free(tls.ca_file);
	free((char *)tls.ca_pem);
	return rc;
}
