/*
 * login.h - h2k-login's sequence: check what was given, reach the server,
 * only then read the password, log in, write the session file.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 */
#ifndef H2K_LOGIN_H
#define H2K_LOGIN_H

#include "config.h"
#include "session.h"

struct h2k_login_opts {
	struct h2k_config *cfg;    /* loaded (flags > env > files); its
	                            * password is taken (set to NULL) */
	const char *session_path;  /* where the session goes */
	const char *password_file; /* --password-file, or NULL */
	int password_stdin;        /* --password-stdin */
};

/*
 * Log in and write the session file; *out gets what was written (the
 * caller frees it with h2k_session_free).  A session this one replaces on
 * the same server is ended.  -1 with the error: H2K_EX_USAGE for what is
 * missing or malformed (URL, user, thumbprint, CA file, no way to get a
 * password), H2K_EX_TLS, H2K_EX_SESSION (login refused), H2K_EX_SECRET
 * (unsafe CA file or session directory), ...  When the file cannot be
 * written the server session is ended again ("... (logged out again)").
 */
int h2k_login(struct h2k_login_opts *o, struct h2k_session *out);

#endif
