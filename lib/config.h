/*
 * config.h - settings from flags, environment and YAML config files.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * Precedence, highest first: command-line flags, environment
 * (H2K_* before the govc names GOVC_*), the user config file
 * (-c FILE, else $H2K_CONFIG, else ~/.config/h2k/config.yaml), the system
 * config file ($H2K_SYSCONFIG, else /etc/hyper2kvm/config.yaml).
 * Keys are those of hyper2kvm-providers: VCenterURL, Username, Password,
 * Insecure, LogLevel, DownloadWorkers, and h2k's Thumbprint, CAFile, Spool,
 * SoapTimeout and DaemonAddr (h2k-job serve's address; H2K_LISTEN)
 * (unknown keys are a warning).  Every config file must pass h2k_trust_read (owner,
 * mode, directories, symlinks), and one that holds a Password must
 * also be 0600; otherwise H2K_EX_SECRET.  A malformed file is H2K_EX_USAGE
 * naming file and line.
 */
#ifndef H2K_CONFIG_H
#define H2K_CONFIG_H

struct h2k_config {
	char *url;
	char *username;
	char *password;        /* wiped on free */
	int insecure;          /* -1 unset, 0, 1 */
	char *thumbprint;
	char *ca_file;
	int log_level;         /* -1 unset */
	int download_workers;  /* 0 unset */
	char *spool;           /* Spool: h2k-job spool directory, or NULL */
	char *daemon_addr;     /* DaemonAddr (or H2K_LISTEN): h2k-job serve */
	int soap_timeout;      /* SoapTimeout: seconds, 0 unset (see soap.h;
	                        * H2K_SOAP_TIMEOUT is read there) */
	/* where each value came from, for --status/-v: "flag", "env", path */
	const char *url_from, *username_from, *password_from;
};

void h2k_config_init(struct h2k_config *c);   /* all unset */
/*
 * Load files then environment into c; values already set in c (from
 * flags) are kept.  user_file NULL: the default search.
 */
int h2k_config_load(struct h2k_config *c, const char *user_file);
void h2k_config_free(struct h2k_config *c);

/*
 * Read a password: from file (first line, trailing newline dropped, file
 * must be a secure file unless it is "-" or /dev/stdin, or a
 * /proc/self/fd path), or from stdin (first line), or from the terminal
 * without echo.  A NUL byte in the line is refused (H2K_EX_USAGE), not
 * taken as its end.  Caller frees with h2k_freesecret.
 */
char *h2k_password_file(const char *path);
/* First line of stdin; a terminal on stdin is read without echo. */
char *h2k_password_stdin(void);
char *h2k_password_prompt(const char *prompt); /* NULL if no terminal */

/*
 * Split the user part off a URL: "https://u:p@host/sdk" -> *url
 * "https://host/sdk", *user "u", *password "p" (percent-decoded; NULL
 * when absent; password wiped by the caller with h2k_freesecret).  Any of
 * the outputs may be NULL when the caller does not want it.  "%00" in the
 * user part is refused (H2K_EX_USAGE): it would cut the name or password.
 */
int h2k_url_userinfo(const char *in, char **url, char **user, char **password);
/*
 * A server URL for c (-u, VCenterURL, H2K_URL/GOVC_URL): c->url becomes in
 * without its user part, whose user is taken when c has none yet (1, else
 * 0); *password gets the URL's password or NULL, the caller's to judge
 * and to h2k_freesecret.  in may be c->url.  -1 as h2k_url_userinfo.
 */
int h2k_config_take_url(struct h2k_config *c, const char *in, char **password);

#endif
