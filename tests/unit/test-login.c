/*
 * test-login - lib/login.c: what h2k_login refuses before it contacts
 * anyone, and that the password is not read before the server answers.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "h2k.h"
#include "http.h"
#include "login.h"
#include "tap.h"

static char dir[] = "/tmp/test-login.XXXXXX";
static char spath[128];

/* h2k_login with c as given; its result code and message checked. */
static void
refused(struct h2k_config *c, int code, const char *msg, const char *what)
{
	/* Without a password in c, one from a file (never reached). */
	struct h2k_login_opts o = {.cfg = c, .session_path = spath,
	    .password_file = c->password ? NULL : "/nonexistent/pw"};
	struct h2k_session s;

	memset(&s, 0xa5, sizeof s);
	is_int(h2k_login(&o, &s), -1, "%s: refused", what);
	is_int(h2k_errcode(), code, "%s: exit class %d", what, code);
	ok(strstr(h2k_errmsg(), msg) != NULL, "%s: says '%s' (got '%s')", what,
	    msg, h2k_errmsg());
	ok(!s.url && !s.cookie && !s.user, "%s: nothing handed back", what);
	ok(access(spath, F_OK) < 0, "%s: no session file", what);
}

int
main(void)
{
	struct h2k_config c;

	if (!mkdtemp(dir) || h2k_http_global_init() < 0)
		return 1;
	snprintf(spath, sizeof spath, "%s/session.json", dir);
	h2k_config_init(&c);

	refused(&c, H2K_EX_USAGE, "no server URL", "no URL");
	c.url = strdup("https://127.0.0.1:1/sdk");
	refused(&c, H2K_EX_USAGE, "no user name", "no user");
	c.username = strdup("admin");
	c.thumbprint = strdup("zz:zz");
	refused(&c, H2K_EX_USAGE, "bad thumbprint 'zz:zz'", "bad thumbprint");
	free(c.thumbprint);
	c.thumbprint = NULL;
	c.ca_file = strdup("/nonexistent/ca.pem");
	refused(&c, H2K_EX_USAGE, "CA file /nonexistent/ca.pem: No such file",
	    "missing CA file");
	free(c.ca_file);
	c.ca_file = NULL;

	/* A session directory others may write: refused as unsafe. */
	chmod(dir, 0777);
	refused(&c, H2K_EX_SECRET, dir, "session directory mode 0777");
	chmod(dir, 0700);

	/*
	 * Nobody answers on 127.0.0.1:1: the login fails there, and the
	 * password (from the configuration here) is still the caller's,
	 * never read, let alone sent.
	 */
	c.password = strdup("s3cret");
	refused(&c, H2K_EX_NET, "127.0.0.1", "server not reachable");
	ok(c.password && !strcmp(c.password, "s3cret"),
	    "the password was not taken before the server answered");

	h2k_config_free(&c);
	rmdir(dir);
	return tap_done();
}
