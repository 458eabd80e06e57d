/*
 * config.c - settings from flags, environment and YAML files; password input.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * Layering: each source (system file, user file, GOVC_* environment, H2K_*
 * environment) is read into a layer of its own, then layers are merged from
 * the highest down, a field taking the first layer that sets it.  Values
 * the caller already put in the config are flags and are never replaced.
 * Every field remembers where it came from so errors and -v can say it.
 *
 * Every config file is a trust file, whatever it holds: it names the
 * server the password goes to and whether its certificate is checked, so
 * whoever can replace it can take the password.  It is read through
 * h2k_trust_read (ssh_config's rule: owned by the user or root, not
 * writable by group or others, nor any directory above it or on the way
 * through a symlink, nor any symlink followed),
 * and refused with H2K_EX_SECRET otherwise.  World-readable is fine,
 * unless it turns out to hold a password: then it must be 0600.
 *
 * Secrets: the password is wiped in every buffer this file can reach:
 * the file text, libyaml's input buffers and document nodes, the terminal
 * line.  libyaml's scanner works on its own heap strings as well, which
 * are freed without wiping; that residue stays inside this process.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <yaml.h>

#include "config.h"
#include "h2k.h"
#include "num.h"
#include "session.h"

#define CONFIG_MAX (1u << 20)
#define PASSWORD_MAX 4096
/*
 * A line too long or holding a NUL is drained (the rest of stdin may be
 * someone else's), but only this far: /dev/zero or an endless pipe
 * without a newline must not keep h2k-login reading forever.
 */
#define DRAIN_MAX (1u << 20)
/* UTF-8 byte order mark, as Windows editors start a text file with */
#define BOM "\xef\xbb\xbf"

/* Paths named in *_from must outlive the struct: keep them here. */
static char sys_from[PATH_MAX + 16], user_from[PATH_MAX + 16];

void
h2k_config_init(struct h2k_config *c)
{
	memset(c, 0, sizeof *c);
	c->insecure = -1;
	c->log_level = -1;
}

void
h2k_config_free(struct h2k_config *c)
{
	free(c->url);
	free(c->username);
	h2k_freesecret(c->password);
	free(c->thumbprint);
	free(c->ca_file);
	free(c->spool);
	free(c->daemon_addr);
	h2k_config_init(c);
}

/* --- values --------------------------------------------------------------- */

/* YAML 1.1 booleans as Go's yaml and strconv.ParseBool take them. */
static int
parse_bool(const char *s)
{
	static const char *t[] = {"true", "yes", "on", "1", "t", "y"};
	static const char *f[] = {"false", "no", "off", "0", "f", "n"};

	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		if (!strcasecmp(s, t[i]))
			return 1;
		if (!strcasecmp(s, f[i]))
			return 0;
	}
	return -1;
}

/* Does [s, end) hold "%00"? */
static int
has_pct00(const char *s, const char *end)
{
	for (; s + 2 < end; s++)
		if (s[0] == '%' && s[1] == '0' && s[2] == '0')
			return 1;
	return 0;
}

int
h2k_url_userinfo(const char *in, char **url, char **user, char **password)
{
	const char *auth, *end, *at = NULL, *colon;
	char *u = NULL, *p = NULL, *rest = NULL;

	if (url)
		*url = NULL;
	if (user)
		*user = NULL;
	if (password)
		*password = NULL;
	auth = strstr(in, "://");
	auth = auth ? auth + 3 : in;
	end = auth + strcspn(auth, "/?#");
	/* The last '@' ends the user part, as Go's url.Parse has it. */
	for (const char *q = auth; q < end; q++)
		if (*q == '@')
			at = q;
	if (at) {
		colon = memchr(auth, ':', (size_t)(at - auth));
		if (!(u = h2k_pct_decode(auth, (size_t)((colon ? colon : at) - auth))))
			goto fail;
		if (colon && !(p = h2k_pct_decode(colon + 1, (size_t)(at - colon - 1))))
			goto fail;
		/* %00 would end the string early: another user, a wrong password */
		if (has_pct00(auth, at)) {
			h2k_seterr(H2K_EX_USAGE, "URL user name or password "
			    "holds a NUL byte (%%00)");
			goto fail;
		}
		if (!(rest = h2k_asprintf("%.*s%s", (int)(auth - in), in, at + 1)))
			goto fail;
	} else if (!(rest = h2k_strdup(in)))
		goto fail;
	if (url)
		*url = rest;
	else
		free(rest);
	if (user && u && *u)
		*user = u;
	else
		free(u);
	if (password && p)
		*password = p;
	else
		h2k_freesecret(p);
	return 0;
fail:
	free(u);
	h2k_freesecret(p);
	free(rest);
	return -1;
}

/* --- YAML files ----------------------------------------------------------- */

enum ktype { K_STR, K_SECRET, K_BOOL, K_LEVEL, K_INT, K_SECS, K_IGNORE };

static const struct key {
	const char *name;
	enum ktype type;
	size_t off;
} keys[] = {
	{"VCenterURL", K_STR, offsetof(struct h2k_config, url)},
	{"Username", K_STR, offsetof(struct h2k_config, username)},
	{"Password", K_SECRET, offsetof(struct h2k_config, password)},
	{"Insecure", K_BOOL, offsetof(struct h2k_config, insecure)},
	{"LogLevel", K_LEVEL, offsetof(struct h2k_config, log_level)},
	{"DownloadWorkers", K_INT, offsetof(struct h2k_config, download_workers)},
	{"DaemonAddr", K_STR, offsetof(struct h2k_config, daemon_addr)},
	{"Thumbprint", K_STR, offsetof(struct h2k_config, thumbprint)},
	{"CAFile", K_STR, offsetof(struct h2k_config, ca_file)},
	{"Spool", K_STR, offsetof(struct h2k_config, spool)},
	{"SoapTimeout", K_SECS, offsetof(struct h2k_config, soap_timeout)},
};

/*
 * Keys match without regard to case, '_' or '-': Go's yaml takes
 * "vcenterurl" for VCenterURL, and people write "ca_file".
 */
static int
key_eq(const char *a, const char *b)
{
	for (;;) {
		while (*a == '_' || *a == '-')
			a++;
		while (*b == '_' || *b == '-')
			b++;
		if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
			return 0;
		if (!*a)
			return 1;
		a++, b++;
	}
}

static int
is_null_scalar(const yaml_node_t *n)
{
	const char *v = (const char *)n->data.scalar.value;

	if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return n->data.scalar.length == 0;
	return !*v || !strcmp(v, "~") || !strcmp(v, "null") ||
	    !strcmp(v, "Null") || !strcmp(v, "NULL");
}

static int
set_key(struct h2k_config *c, const struct key *k, const yaml_node_t *val,
    const char *path, unsigned long line, int *has_password)
{
	const char *v;
	char *s;
	long long n;
	int b;

	if (k->type == K_IGNORE)
		return 0;
	if (val->type != YAML_SCALAR_NODE)
		return h2k_seterr(H2K_EX_USAGE, "config file %s:%lu: %s must be "
		    "a %s, not a %s", path, line, k->name,
		    k->type == K_BOOL ? "boolean" : k->type == K_INT ? "number" :
		    "string", val->type == YAML_MAPPING_NODE ? "mapping" : "list");
	if (is_null_scalar(val))
		return 0;
	v = (const char *)val->data.scalar.value;
	if (strlen(v) != val->data.scalar.length)
		return h2k_seterr(H2K_EX_USAGE, "config file %s:%lu: %s contains "
		    "a NUL byte", path, line, k->name);
	switch (k->type) {
	case K_SECRET:
		*has_password = 1;
		/* FALLTHROUGH */
	case K_STR:
		if (!(s = h2k_strdup(v)))
			return -1;
		if (k->type == K_SECRET)
			h2k_freesecret(*(char **)((char *)c + k->off));
		else
			free(*(char **)((char *)c + k->off));
		*(char **)((char *)c + k->off) = s;
		break;
	case K_BOOL:
		if ((b = parse_bool(v)) < 0)
			return h2k_seterr(H2K_EX_USAGE, "config file %s:%lu: %s must "
			    "be true or false, not \"%.40s\"", path, line, k->name, v);
		*(int *)((char *)c + k->off) = b;
		break;
	case K_LEVEL:
		if ((b = h2k_log_parselevel(v)) < 0)
			return h2k_seterr(H2K_EX_USAGE, "config file %s:%lu: %s must "
			    "be error, warn, info, debug or trace, not \"%.40s\"",
			    path, line, k->name, v);
		*(int *)((char *)c + k->off) = b;
		break;
	case K_INT:
		/* num.h's syntax; the message names the file, line and key. */
		if (h2k_parse_int(k->name, v, 1, 256, &n) < 0)
			return h2k_seterr(H2K_EX_USAGE, "config file %s:%lu: %s must "
			    "be a number from 1 to 256, not \"%.40s\"", path, line,
			    k->name, v);
		*(int *)((char *)c + k->off) = (int)n;
		break;
	case K_SECS:
		if (h2k_parse_int(k->name, v, 1, 86400, &n) < 0)
			return h2k_seterr(H2K_EX_USAGE, "config file %s:%lu: %s must "
			    "be a number of seconds from 1 to 86400, not \"%.40s\"",
			    path, line, k->name, v);
		*(int *)((char *)c + k->off) = (int)n;
		break;
	case K_IGNORE:
		break;
	}
	return 0;
}

static void
wipe_yaml(yaml_parser_t *p, yaml_document_t *d)
{
	if (p->raw_buffer.start)
		h2k_wipe(p->raw_buffer.start,
		    (size_t)(p->raw_buffer.end - p->raw_buffer.start));
	if (p->buffer.start)
		h2k_wipe(p->buffer.start, (size_t)(p->buffer.end - p->buffer.start));
	if (d && d->nodes.start)
		for (yaml_node_t *n = d->nodes.start; n < d->nodes.top; n++)
			if (n->type == YAML_SCALAR_NODE && n->data.scalar.value)
				h2k_wipe(n->data.scalar.value, n->data.scalar.length);
}

/* Parse text (from path) into layer c. */
static int
parse_config(const char *path, const char *text, size_t len,
    struct h2k_config *c, int *has_password)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_node_t *root;
	int rc = -1, seen[sizeof keys / sizeof keys[0]] = {0};

	*has_password = 0;
	if (memchr(text, '\0', len))
		return h2k_seterr(H2K_EX_USAGE, "config file %s contains a NUL "
		    "byte", path);
	if (!yaml_parser_initialize(&parser))
		return h2k_seterr(H2K_EX_FAIL, "out of memory");
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		h2k_seterr(H2K_EX_USAGE, "config file %s:%lu: %s%s%s", path,
		    (unsigned long)parser.problem_mark.line + 1,
		    parser.problem ? parser.problem : "malformed YAML",
		    parser.context ? " " : "", parser.context ? parser.context : "");
		wipe_yaml(&parser, NULL);
		yaml_parser_delete(&parser);
		return -1;
	}
	root = yaml_document_get_root_node(&doc);
	if (!root || (root->type == YAML_SCALAR_NODE && is_null_scalar(root))) {
		rc = 0; /* empty file */
		goto out;
	}
	if (root->type != YAML_MAPPING_NODE) {
		h2k_seterr(H2K_EX_USAGE, "config file %s:%lu: expected keys such "
		    "as \"VCenterURL: ...\", not a %s", path,
		    (unsigned long)root->start_mark.line + 1,
		    root->type == YAML_SCALAR_NODE ? "single value" : "list");
		goto out;
	}
	for (yaml_node_pair_t *pr = root->data.mapping.pairs.start;
	    pr < root->data.mapping.pairs.top; pr++) {
		yaml_node_t *k = yaml_document_get_node(&doc, pr->key);
		yaml_node_t *v = yaml_document_get_node(&doc, pr->value);
		unsigned long line;
		size_t i;

		if (!k || !v)
			continue;
		line = (unsigned long)k->start_mark.line + 1;
		if (k->type != YAML_SCALAR_NODE) {
			h2k_seterr(H2K_EX_USAGE, "config file %s:%lu: a key must be "
			    "a plain name", path, line);
			goto out;
		}
		for (i = 0; i < sizeof keys / sizeof keys[0]; i++)
			if (key_eq((const char *)k->data.scalar.value, keys[i].name))
				break;
		if (i == sizeof keys / sizeof keys[0]) {
			h2k_warn("config file %s:%lu: unknown key \"%.60s\" (ignored)",
			    path, line, (const char *)k->data.scalar.value);
			continue;
		}
		if (seen[i]) {
			h2k_seterr(H2K_EX_USAGE, "config file %s:%lu: %s given twice",
			    path, line, keys[i].name);
			goto out;
		}
		seen[i] = 1;
		if (set_key(c, &keys[i], v, path, line, has_password) < 0)
			goto out;
	}
	rc = 0;
out:
	wipe_yaml(&parser, &doc);
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	return rc;
}

/*
 * Load one file into layer c.  must_exist: the user named it.  is_system:
 * an unreadable system file (root's 0600 config, run as a user) is
 * skipped rather than fatal.
 */
static int
load_file(const char *path, int must_exist, int is_system, struct h2k_config *c)
{
	char *text, saved[1024] = "";
	size_t len = 0;
	unsigned mode = 0;
	int has_password = 0, secure = 1, rc;

	text = h2k_trust_read("config file", path, CONFIG_MAX, &len, &mode);
	if (!text) {
		int e = errno;

		if (e == ENOENT) {
			if (!must_exist)
				return 0;
			return h2k_seterr(H2K_EX_USAGE, "config file %s does not "
			    "exist", path);
		}
		if (e == EACCES && is_system) {
			h2k_debug("config file %s: %s (skipped)", path, strerror(e));
			return 0;
		}
		return -1;
	}
	if (mode & (S_IRWXG | S_IRWXO)) {
		snprintf(saved, sizeof saved, "config file %s is %s (mode %04o); "
		    "chmod 600 it", path, mode & S_IROTH ? "world-readable" :
		    mode & S_IRGRP ? "group-readable" :
		    "accessible by group or others", mode);
		secure = 0;
	}
	rc = parse_config(path, text, len, c, &has_password);
	h2k_wipe(text, len);
	free(text);
	if (rc == 0 && has_password && !secure)
		rc = h2k_seterr(H2K_EX_SECRET, "%s (it holds a Password)", saved);
	if (rc == 0 && c->url) {
		/* A password in VCenterURL is a password in the file. */
		char *pw = NULL;

		if (h2k_config_take_url(c, c->url, &pw) < 0)
			return h2k_adderr("config file %s: VCenterURL", path);
		if (pw && !secure) {
			h2k_freesecret(pw);
			return h2k_seterr(H2K_EX_SECRET, "%s (its VCenterURL holds a "
			    "password)", saved);
		}
		if (pw && !c->password)
			c->password = pw;
		else
			h2k_freesecret(pw);
	}
	return rc;
}

int
h2k_config_take_url(struct h2k_config *c, const char *in, char **password)
{
	char *u = NULL, *user = NULL;

	*password = NULL;
	if (h2k_url_userinfo(in, &u, &user, password) < 0)
		return -1;
	free(c->url);
	c->url = u;
	if (user && !c->username) {
		c->username = user;
		return 1;
	}
	free(user);
	return 0;
}

/* --- environment ---------------------------------------------------------- */

static const char *
env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

static int
env_str(char **dst, const char *name, const char **from)
{
	const char *v = env(name);

	if (!v || *dst)
		return 0;
	if (!(*dst = h2k_strdup(v)))
		return -1;
	if (from)
		*from = name;
	return 0;
}

static int
env_bool(int *dst, const char *name)
{
	const char *v = env(name);
	int b;

	if (!v || *dst >= 0)
		return 0;
	if ((b = parse_bool(v)) < 0)
		return h2k_seterr(H2K_EX_USAGE, "%s must be true or false (or 1 or "
		    "0), not \"%.40s\"", name, v);
	*dst = b;
	return 0;
}

/*
 * One environment layer: H2K_* or GOVC_*.  The URL may carry the
 * user and, since the environment is not visible in the process list,
 * the password; the separate variables win over those.
 */
static int
load_env(struct h2k_config *c, int h2k)
{
	/* Static names: *_from keeps pointing at them. */
	const char *n_url = h2k ? "H2K_URL" : "GOVC_URL";
	const char *n_user = h2k ? "H2K_USERNAME" : "GOVC_USERNAME";
	const char *n_pw = h2k ? "H2K_PASSWORD" : "GOVC_PASSWORD";
	const char *n_ins = h2k ? "H2K_INSECURE" : "GOVC_INSECURE";
	const char *v;

	if (env_str(&c->username, n_user, &c->username_from) < 0 ||
	    env_str(&c->password, n_pw, &c->password_from) < 0 ||
	    env_bool(&c->insecure, n_ins) < 0)
		return -1;
	if ((v = env(n_url))) {
		char *pw = NULL;
		int took;

		if ((took = h2k_config_take_url(c, v, &pw)) < 0)
			return h2k_adderr("%s", n_url);
		c->url_from = n_url;
		if (took)
			c->username_from = n_url;
		if (pw && !c->password) {
			c->password = pw;
			c->password_from = n_url;
		} else
			h2k_freesecret(pw);
	}
	if (h2k) {
		if (env_str(&c->thumbprint, "H2K_THUMBPRINT", NULL) < 0 ||
		    env_str(&c->ca_file, "H2K_CA_FILE", NULL) < 0 ||
		    env_str(&c->spool, "H2K_SPOOL", NULL) < 0 ||
		    env_str(&c->daemon_addr, "H2K_LISTEN", NULL) < 0)
			return -1;
		if ((v = env("H2K_LOG_LEVEL")) || (v = env("LOG_LEVEL"))) {
			int l = h2k_log_parselevel(v);

			if (l < 0)
				h2k_warn("log level \"%.40s\" from the environment is "
				    "not error, warn, info, debug or trace (ignored)", v);
			else
				c->log_level = l;
		}
	} else if (env_str(&c->ca_file, "GOVC_TLS_CA_CERTS", NULL) < 0)
		return -1;
	return 0;
}

/* --- merge ---------------------------------------------------------------- */

static void
take_str(char **dst, char **src)
{
	if (!*dst && *src) {
		*dst = *src;
		*src = NULL;
	}
}

/* Fill every field of c still unset from layer l (which is consumed). */
static void
merge(struct h2k_config *c, struct h2k_config *l, const char *from)
{
	if (!c->url && l->url)
		c->url_from = l->url_from ? l->url_from : from;
	if (!c->username && l->username)
		c->username_from = l->username_from ? l->username_from : from;
	if (!c->password && l->password)
		c->password_from = l->password_from ? l->password_from : from;
	take_str(&c->url, &l->url);
	take_str(&c->username, &l->username);
	take_str(&c->password, &l->password);
	take_str(&c->thumbprint, &l->thumbprint);
	take_str(&c->ca_file, &l->ca_file);
	take_str(&c->spool, &l->spool);
	take_str(&c->daemon_addr, &l->daemon_addr);
	if (c->insecure < 0)
		c->insecure = l->insecure;
	if (c->log_level < 0)
		c->log_level = l->log_level;
	if (!c->download_workers)
		c->download_workers = l->download_workers;
	if (!c->soap_timeout)
		c->soap_timeout = l->soap_timeout;
	h2k_config_free(l);
}

static char *
default_user_file(int *must_exist)
{
	const char *e;
	struct passwd *pw;

	*must_exist = 0;
	if ((e = env("H2K_CONFIG"))) {
		*must_exist = 1;
		return h2k_strdup(e);
	}
	if ((e = env("XDG_CONFIG_HOME")) && *e == '/')
		return h2k_asprintf("%s/h2k/config.yaml", e);
	if ((e = env("HOME")) && *e == '/')
		return h2k_asprintf("%s/.config/h2k/config.yaml", e);
	if ((pw = getpwuid(geteuid())) && pw->pw_dir)
		return h2k_asprintf("%s/.config/h2k/config.yaml", pw->pw_dir);
	return NULL;
}

int
h2k_config_load(struct h2k_config *c, const char *user_file)
{
	struct h2k_config sys, usr, genv, henv;
	const char *sysfile;
	char *ufile = NULL;
	int must = 1, rc = -1;

	h2k_config_init(&sys);
	h2k_config_init(&usr);
	h2k_config_init(&genv);
	h2k_config_init(&henv);
	if (c->url && !c->url_from)
		c->url_from = "flag";
	if (c->username && !c->username_from)
		c->username_from = "flag";
	if (c->password && !c->password_from)
		c->password_from = "flag";

	sysfile = env("H2K_SYSCONFIG");
	if (!sysfile)
		sysfile = "/etc/hyper2kvm/config.yaml";
	snprintf(sys_from, sizeof sys_from, "%s", sysfile);
	if (load_file(sysfile, 0, 1, &sys) < 0)
		goto out;

	/* A named file that cannot be copied is an error, not "no file". */
	if (user_file && !(ufile = h2k_strdup(user_file)))
		goto out;
	if (!user_file)
		ufile = default_user_file(&must);
	if (ufile) {
		snprintf(user_from, sizeof user_from, "%s", ufile);
		if (load_file(ufile, must, 0, &usr) < 0)
			goto out;
	}
	if (load_env(&genv, 0) < 0 || load_env(&henv, 1) < 0)
		goto out;

	merge(c, &henv, "environment");
	merge(c, &genv, "environment");
	merge(c, &usr, user_from);
	merge(c, &sys, sys_from);
	rc = 0;
out:
	free(ufile);
	h2k_config_free(&sys);
	h2k_config_free(&usr);
	h2k_config_free(&genv);
	h2k_config_free(&henv);
	return rc;
}

/* --- passwords ------------------------------------------------------------ */

static volatile sig_atomic_t got_sig;

static void
on_sig(int sig)
{
	got_sig = sig;
}

static const int tty_sigs[] = {SIGALRM, SIGHUP, SIGINT, SIGPIPE, SIGQUIT,
    SIGTERM, SIGTSTP, SIGTTIN, SIGTTOU};
#define NSIGS (sizeof tty_sigs / sizeof tty_sigs[0])

/*
 * Read one line from fd into a fresh PASSWORD_MAX buffer, a byte at a
 * time so nothing after the line is consumed (the rest of stdin may be
 * someone else's).  With echo_off and fd a terminal, echo is off while
 * reading and a signal restores the terminal before it takes effect, as
 * readpassphrase(3) does.
 */
static char *
read_line_fd(int fd, const char *what, int echo_off, int out_fd)
{
	struct termios old, quiet;
	struct sigaction sa, saved[NSIGS];
	char *buf;
	size_t n = 0, drained = 0;
	int restore = 0, installed = 0, e = 0, toolong = 0, nul = 0;

	if (!(buf = h2k_malloc(PASSWORD_MAX)))
		return NULL;
	if (echo_off && isatty(fd) && tcgetattr(fd, &old) == 0) {
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_sig;  /* no SA_RESTART: read returns EINTR */
		sigemptyset(&sa.sa_mask);
		got_sig = 0;
		for (size_t i = 0; i < NSIGS; i++)
			sigaction(tty_sigs[i], &sa, &saved[i]);
		installed = 1;
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
		quiet.c_lflag |= ICANON;
		if (tcsetattr(fd, TCSAFLUSH, &quiet) == 0)
			restore = 1;
	}
	for (;;) {
		char ch;
		ssize_t r = read(fd, &ch, 1);

		if (r < 0 && errno == EINTR && !got_sig)
			continue;
		if (r < 0) {
			e = got_sig ? EINTR : errno;
			break;
		}
		if (r == 0 || ch == '\n')
			break;
		if (ch == '\0')
			nul = 1;  /* the line is still drained */
		if (n >= PASSWORD_MAX - 1) {
			toolong = 1;
			/*
			 * A terminal's rest of the line would go to the shell
			 * after we exit: drain it (a terminal line is bounded,
			 * still at most DRAIN_MAX).  A pipe or file may never
			 * end a line (/dev/zero).
			 */
			if ((restore || isatty(fd)) && ++drained < DRAIN_MAX)
				continue;
			break;
		}
		if (nul && ++drained >= DRAIN_MAX)
			break;
		buf[n++] = ch;
	}
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	if (!restore && n >= 3 && !memcmp(buf, BOM, 3)) {
		/* a file saved with a byte order mark: it is not the password */
		memmove(buf, buf + 3, n - 2);
		n -= 3;
	}
	if (restore) {
		tcsetattr(fd, TCSAFLUSH, &old);
		if (out_fd >= 0)
			(void)!write(out_fd, "\n", 1);
	}
	if (installed) {
		for (size_t i = 0; i < NSIGS; i++)
			sigaction(tty_sigs[i], &saved[i], NULL);
		if (got_sig) {
			int s = got_sig;
			got_sig = 0;
			h2k_wipe(buf, PASSWORD_MAX);
			free(buf);
			raise(s);
			h2k_seterr(H2K_EX_CANCEL, "password entry interrupted");
			return NULL;
		}
	}
	if (e) {
		h2k_wipe(buf, PASSWORD_MAX);
		free(buf);
		h2k_seterr(H2K_EX_IO, "read password from %s: %s", what, strerror(e));
		return NULL;
	}
	/* Cut at the NUL, the password would be refused as a wrong one. */
	if (nul) {
		h2k_wipe(buf, PASSWORD_MAX);
		free(buf);
		h2k_seterr(H2K_EX_USAGE, "password from %s holds a NUL byte",
		    what);
		return NULL;
	}
	if (toolong) {
		h2k_wipe(buf, PASSWORD_MAX);
		free(buf);
		h2k_seterr(H2K_EX_USAGE, "password from %s is longer than %d bytes",
		    what, PASSWORD_MAX - 1);
		return NULL;
	}
	if (n == 0) {
		free(buf);
		h2k_seterr(H2K_EX_USAGE, "no password in %s (empty first line)",
		    what);
		return NULL;
	}
	/* The password is a C string from here on: it would be cut short. */
	if (memchr(buf, '\0', n)) {
		h2k_wipe(buf, PASSWORD_MAX);
		free(buf);
		h2k_seterr(H2K_EX_USAGE, "password from %s contains a NUL byte",
		    what);
		return NULL;
	}
	return buf;
}

static int
is_fd_path(const char *p)
{
	const char *d;

	if (!strncmp(p, "/dev/fd/", 8))
		d = p + 8;
	else if (!strncmp(p, "/proc/self/fd/", 14))
		d = p + 14;
	else
		return 0;
	if (!*d)
		return 0;
	for (; *d; d++)
		if (!isdigit((unsigned char)*d))
			return 0;
	return 1;
}

char *
h2k_password_file(const char *path)
{
	struct stat st, fst;
	char *text, *nl, *pw;
	size_t len;
	int fd, fifo = 0;

	if (!strcmp(path, "-") || !strcmp(path, "/dev/stdin"))
		return h2k_password_stdin();
	/*
	 * A descriptor the caller opened (bash's <(...), systemd credentials
	 * passed as fds) or a named pipe is handed over, not stored: no file
	 * mode to check.
	 */
	if (is_fd_path(path) ||
	    (fifo = (lstat(path, &st) == 0 && S_ISFIFO(st.st_mode)))) {
		char what[PATH_MAX + 32];

		/*
		 * The FIFO lstat saw must be what is opened: a symlink or file
		 * put under the name in between is refused, not read.
		 */
		if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY |
		    (fifo ? O_NOFOLLOW : 0))) < 0) {
			h2k_seterr(fifo && errno == ELOOP ? H2K_EX_SECRET :
			    H2K_EX_USAGE, "cannot open password file %s: %s",
			    path, strerror(errno));
			return NULL;
		}
		if (fifo && (fstat(fd, &fst) < 0 || !S_ISFIFO(fst.st_mode) ||
		    fst.st_dev != st.st_dev || fst.st_ino != st.st_ino)) {
			close(fd);
			h2k_seterr(H2K_EX_SECRET, "password file %s changed while "
			    "being opened; refusing it", path);
			return NULL;
		}
		/*
		 * A named pipe someone else made (mkfifo in /tmp that failed
		 * because theirs was there) is theirs to read from as well:
		 * whoever writes the password into it may be feeding them.
		 */
		if (fifo && fst.st_uid != geteuid()) {
			close(fd);
			h2k_seterr(H2K_EX_SECRET, "password file %s is a named pipe "
			    "owned by uid %u, not by you (uid %u); refusing it",
			    path, (unsigned)fst.st_uid, (unsigned)geteuid());
			return NULL;
		}
		snprintf(what, sizeof what, "password file %s", path);
		/* /dev/fd/0 on a terminal: typed, so not echoed. */
		pw = read_line_fd(fd, what, 1, isatty(fd) ? fd : -1);
		close(fd);
		return pw;
	}
	if (!(text = h2k_secure_read_as("password file", path, 64u << 10, &len,
	    0))) {
		if (errno == ENOENT)
			h2k_seterr(H2K_EX_USAGE, "password file %s does not exist",
			    path);
		return NULL;
	}
	{
		/* The first line, as read_line_fd takes it from a pipe. */
		size_t n = (nl = memchr(text, '\n', len)) ? (size_t)(nl - text) :
		    len;
		const char *why = NULL;

		/* A CRLF line: only the CR before the LF goes, as from a FIFO. */
		if (n > 0 && text[n - 1] == '\r')
			n--;
		text[n] = '\0';
		/* A byte order mark (Notepad's UTF-8) is not part of the password. */
		if (n >= 3 && !memcmp(text, BOM, 3)) {
			memmove(text, text + 3, n - 2);
			n -= 3;
		}
		if (!n)
			why = "no password in it (empty first line)";
		else if (memchr(text, '\0', n))
			why = "the password contains a NUL byte";
		else if (n > PASSWORD_MAX - 1)
			why = "the password is longer than 4095 bytes";
		if (why) {
			h2k_wipe(text, len);
			free(text);
			h2k_seterr(H2K_EX_USAGE, "password file %s: %s", path, why);
			return NULL;
		}
	}
	pw = h2k_strdup(text);
	h2k_wipe(text, len);
	free(text);
	return pw;
}

char *
h2k_password_stdin(void)
{
	return read_line_fd(STDIN_FILENO, "standard input", 1, STDERR_FILENO);
}

char *
h2k_password_prompt(const char *prompt)
{
	char *pw;
	int fd;

	if ((fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY)) < 0) {
		h2k_seterr(H2K_EX_USAGE, "no password: use --password-file, "
		    "--password-stdin or H2K_PASSWORD");
		return NULL;
	}
	if (prompt)
		(void)!write(fd, prompt, strlen(prompt));
	pw = read_line_fd(fd, "the terminal", 1, fd);
	close(fd);
	return pw;
}
