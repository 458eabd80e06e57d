/* Unit tests for lib/config.c. SPDX-License-Identifier: LGPL-3.0-or-later */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "h2k.h"
#include "session.h"
#include "tap.h"

/*
 * The lstat-then-open race of issue 10 item 10, made deterministic: this
 * lstat replaces libc's for libh2k.a too.  With swap_fifo_to set, a FIFO
 * it reports is replaced at once by a symlink to that file.
 */
static const char *swap_fifo_to;

int
lstat(const char *path, struct stat *st)
{
	int r = fstatat(AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW);
	const char *t = swap_fifo_to;

	if (r == 0 && t && S_ISFIFO(st->st_mode)) {
		swap_fifo_to = NULL;
		if (unlink(path) < 0 || symlink(t, path) < 0)
			perror("swap");
	}
	return r;
}

static char dir[64];

static char *
P(const char *name)
{
	static char buf[8][256];
	static int i;

	i = (i + 1) % 8;
	snprintf(buf[i], sizeof buf[i], "%s/%s", dir, name);
	return buf[i];
}

static void
put(const char *path, const char *text, int mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || write(fd, text, strlen(text)) < 0)
		perror(path);
	fchmod(fd, (mode_t)mode);
	close(fd);
}

static int
contains(const char *hay, const char *needle)
{
	int r = hay && strstr(hay, needle) != NULL;

	if (!r)
		printf("#   '%s' not in '%s'\n", needle, hay ? hay : "(null)");
	return r;
}

static void
clean_env(void)
{
	static const char *v[] = {"H2K_URL", "H2K_USERNAME", "H2K_PASSWORD",
	    "H2K_INSECURE", "H2K_THUMBPRINT", "H2K_CA_FILE", "H2K_SPOOL",
	    "H2K_CONFIG", "H2K_LOG_LEVEL", "LOG_LEVEL", "GOVC_URL",
	    "GOVC_USERNAME", "GOVC_PASSWORD", "GOVC_INSECURE",
	    "GOVC_TLS_CA_CERTS", "XDG_CONFIG_HOME"};

	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
		unsetenv(v[i]);
	setenv("H2K_SYSCONFIG", P("sys.yaml"), 1);
	setenv("HOME", P("home"), 1);
}

/* Load with flags (url/user may be NULL); returns the load result. */
static int
load(struct h2k_config *c, const char *flag_url, const char *user_file)
{
	h2k_config_init(c);
	if (flag_url)
		c->url = strdup(flag_url);
	h2k_clearerr();
	return h2k_config_load(c, user_file);
}

/* Run fn with stderr captured into buf. */
static void
capture_stderr(char *buf, size_t n, int (*fn)(void))
{
	int saved = dup(2), fd = open(P("stderr"), O_RDWR | O_CREAT | O_TRUNC, 0600);
	ssize_t r;

	dup2(fd, 2);
	fn();
	dup2(saved, 2);
	close(saved);
	lseek(fd, 0, SEEK_SET);
	r = read(fd, buf, n - 1);
	buf[r > 0 ? r : 0] = '\0';
	close(fd);
}

static void
precedence(void)
{
	struct h2k_config c;

	clean_env();
	mkdir(P("home"), 0700);
	mkdir(P("home/.config"), 0700);
	mkdir(P("home/.config/h2k"), 0700);
	put(P("sys.yaml"), "VCenterURL: https://sys/sdk\nUsername: sysuser\n"
	    "Password: syspw\nInsecure: true\nLogLevel: debug\n"
	    "DownloadWorkers: 3\nDaemonAddr: localhost:8080\n", 0600);

	is_int(load(&c, NULL, NULL), 0, "system file alone loads");
	is_str(c.url, "https://sys/sdk", "url from system file");
	is_str(c.url_from, P("sys.yaml"), "url_from names the system file");
	is_str(c.username, "sysuser", "user from system file");
	is_str(c.password, "syspw", "password from the secure system file");
	is_int(c.insecure, 1, "Insecure true");
	is_int(c.log_level, H2K_LOG_DEBUG, "LogLevel debug");
	is_int(c.download_workers, 3, "DownloadWorkers 3");
	h2k_config_free(&c);

	put(P("home/.config/h2k/config.yaml"), "VCenterURL: https://user/sdk\n"
	    "Insecure: no\n", 0644);
	is_int(load(&c, NULL, NULL), 0, "user file (default path) loads");
	is_str(c.url, "https://user/sdk", "user file beats system file");
	is_str(c.username, "sysuser", "unset keys still from system file");
	is_int(c.insecure, 0, "Insecure: no in user file beats system true");
	h2k_config_free(&c);

	setenv("XDG_CONFIG_HOME", P("xdg"), 1);
	mkdir(P("xdg"), 0700);
	mkdir(P("xdg/h2k"), 0700);
	put(P("xdg/h2k/config.yaml"), "VCenterURL: https://xdg/sdk\n", 0644);
	is_int(load(&c, NULL, NULL), 0, "XDG_CONFIG_HOME file loads");
	is_str(c.url, "https://xdg/sdk", "XDG_CONFIG_HOME used for the user file");
	h2k_config_free(&c);
	setenv("H2K_CONFIG", P("explicit.yaml"), 1);
	put(P("explicit.yaml"), "VCenterURL: https://h2kconfig/sdk\n", 0644);
	is_int(load(&c, NULL, NULL), 0, "H2K_CONFIG loads");
	is_str(c.url, "https://h2kconfig/sdk", "H2K_CONFIG beats XDG path");
	h2k_config_free(&c);
	put(P("dashc.yaml"), "VCenterURL: https://dashc/sdk\n", 0644);
	is_int(load(&c, NULL, P("dashc.yaml")), 0, "-c file loads");
	is_str(c.url, "https://dashc/sdk", "-c beats H2K_CONFIG");
	h2k_config_free(&c);

	setenv("GOVC_URL", "https://govc/sdk", 1);
	setenv("GOVC_USERNAME", "govcuser", 1);
	setenv("GOVC_INSECURE", "1", 1);
	is_int(load(&c, NULL, P("dashc.yaml")), 0, "GOVC_ env loads");
	is_str(c.url, "https://govc/sdk", "GOVC_URL beats the user file");
	is_str(c.url_from, "GOVC_URL", "url_from GOVC_URL");
	is_str(c.username, "govcuser", "GOVC_USERNAME beats the system file");
	is_int(c.insecure, 1, "GOVC_INSECURE=1");
	h2k_config_free(&c);

	setenv("H2K_URL", "https://h2k/sdk", 1);
	setenv("H2K_INSECURE", "false", 1);
	setenv("H2K_LOG_LEVEL", "trace", 1);
	is_int(load(&c, NULL, P("dashc.yaml")), 0, "H2K_ env loads");
	is_str(c.url, "https://h2k/sdk", "H2K_URL beats GOVC_URL");
	is_str(c.url_from, "H2K_URL", "url_from H2K_URL");
	is_int(c.insecure, 0, "H2K_INSECURE=false beats GOVC_INSECURE=1");
	is_int(c.log_level, H2K_LOG_TRACE, "H2K_LOG_LEVEL beats LogLevel");
	h2k_config_free(&c);

	is_int(load(&c, "https://flag/sdk", P("dashc.yaml")), 0, "flags kept");
	is_str(c.url, "https://flag/sdk", "flag beats H2K_URL");
	is_str(c.url_from, "flag", "url_from flag");
	h2k_config_free(&c);

	setenv("H2K_INSECURE", "maybe", 1);
	is_int(load(&c, NULL, NULL), -1, "bad H2K_INSECURE refused");
	is_int(h2k_errcode(), H2K_EX_USAGE, "as usage");
	ok(contains(h2k_errmsg(), "H2K_INSECURE"), "naming the variable");
	h2k_config_free(&c);
	clean_env();
}

static void
userinfo(void)
{
	struct h2k_config c;
	char *u, *user, *pw;

	is_int(h2k_url_userinfo("https://a%40b:p%3Aw@@host:443/sdk", &u, &user, &pw),
	    0, "split URL");
	is_str(u, "https://host:443/sdk", "url without user part");
	is_str(user, "a@b", "user percent-decoded");
	is_str(pw, "p:w@", "password decoded, last @ splits");
	free(u);
	free(user);
	h2k_freesecret(pw);
	is_int(h2k_url_userinfo("host/sdk?x=a@b", &u, &user, &pw), 0, "no user part");
	is_str(u, "host/sdk?x=a@b", "an @ after the path is not a user part");
	ok(!user && !pw, "no user, no password");
	free(u);
	u = user = pw = NULL;
	is_int(h2k_url_userinfo("https://u:pa%00ss@host/sdk", &u, &user, &pw), -1,
	    "%%00 in the password refused");
	is_int(h2k_errcode(), H2K_EX_USAGE, "as usage");
	ok(contains(h2k_errmsg(), "NUL"), "says NUL");
	ok(!u && !user && !pw, "nothing handed out");
	is_int(h2k_url_userinfo("https://u%00x@host/sdk", &u, &user, &pw), -1,
	    "%%00 in the user refused");
	is_int(h2k_url_userinfo("https://host/sdk?a=%00", &u, &user, &pw), 0,
	    "%%00 after the host is not the user part");
	free(u);
	is_int(h2k_url_userinfo("bob@host", &u, &user, &pw), 0, "bare host with user");
	is_str(u, "host", "host kept");
	is_str(user, "bob", "user");
	ok(pw == NULL, "no password");
	free(u);
	free(user);

	/* h2k_config_take_url: -u, VCenterURL and H2K_URL's one step */
	h2k_config_init(&c);
	is_int(h2k_config_take_url(&c, "https://ann:s3@vc/sdk", &pw), 1,
	    "take_url: user taken");
	is_str(c.url, "https://vc/sdk", "take_url: url without user part");
	is_str(c.username, "ann", "take_url: user");
	is_str(pw, "s3", "take_url: password handed back");
	h2k_freesecret(pw);
	is_int(h2k_config_take_url(&c, c.url, &pw), 0,
	    "take_url: in may be c->url");
	is_str(c.url, "https://vc/sdk", "take_url: same url");
	is_int(h2k_config_take_url(&c, "https://bob@vc2/sdk", &pw), 0,
	    "take_url: a user already there stays");
	is_str(c.username, "ann", "take_url: first user kept");
	is_str(c.url, "https://vc2/sdk", "take_url: the new url");
	ok(pw == NULL, "take_url: no password");
	is_int(h2k_config_take_url(&c, "https://u%00x@vc3/sdk", &pw), -1,
	    "take_url: %%00 refused");
	is_str(c.url, "https://vc2/sdk", "take_url: url unchanged on failure");
	h2k_config_free(&c);

	clean_env();
	setenv("GOVC_URL", "https://urluser:urlpw@govc/sdk", 1);
	is_int(load(&c, NULL, NULL), 0, "GOVC_URL with user:pass");
	is_str(c.url, "https://govc/sdk", "URL stripped");
	is_str(c.username, "urluser", "user from GOVC_URL");
	is_str(c.password, "urlpw", "password from GOVC_URL (environment)");
	is_str(c.password_from, "GOVC_URL", "password_from GOVC_URL");
	h2k_config_free(&c);
	setenv("GOVC_USERNAME", "envuser", 1);
	setenv("GOVC_PASSWORD", "envpw", 1);
	is_int(load(&c, NULL, NULL), 0, "GOVC_USERNAME/PASSWORD with GOVC_URL");
	is_str(c.username, "envuser", "GOVC_USERNAME beats the URL's user");
	is_str(c.password, "envpw", "GOVC_PASSWORD beats the URL's password");
	h2k_config_free(&c);
	setenv("H2K_PASSWORD", "h2kpw", 1);
	is_int(load(&c, NULL, NULL), 0, "H2K_PASSWORD");
	is_str(c.password, "h2kpw", "H2K_PASSWORD beats GOVC_PASSWORD");
	is_str(c.password_from, "H2K_PASSWORD", "password_from");
	h2k_config_free(&c);
	clean_env();
}

static int
load_unknown(void)
{
	struct h2k_config c;
	int r = load(&c, NULL, P("unknown.yaml"));

	h2k_config_free(&c);
	return r;
}

static void
files(void)
{
	struct h2k_config c;
	char err[1024];
	char want[300];

	clean_env();
	setenv("H2K_SYSCONFIG", P("nosys.yaml"), 1);
	put(P("bad.yaml"), "VCenterURL: https://x/sdk\nUsername: [a, b\n"
	    "Insecure: true\n", 0644);
	is_int(load(&c, NULL, P("bad.yaml")), -1, "malformed YAML refused");
	is_int(h2k_errcode(), H2K_EX_USAGE, "as usage");
	snprintf(want, sizeof want, "config file %s:", P("bad.yaml"));
	ok(contains(h2k_errmsg(), want), "names the file");
	ok(contains(h2k_errmsg(), ".yaml:3:") || contains(h2k_errmsg(), ".yaml:2:"),
	    "and a line");
	h2k_config_free(&c);

	put(P("type.yaml"), "VCenterURL: https://x/sdk\nInsecure: maybe\n", 0644);
	is_int(load(&c, NULL, P("type.yaml")), -1, "wrong bool refused");
	snprintf(want, sizeof want, "config file %s:2: Insecure must be true or "
	    "false, not \"maybe\"", P("type.yaml"));
	is_str(h2k_errmsg(), want, "file:line:key named");
	h2k_config_free(&c);
	put(P("type2.yaml"), "Username:\n  - a\n  - b\n", 0644);
	is_int(load(&c, NULL, P("type2.yaml")), -1, "list for a string refused");
	ok(contains(h2k_errmsg(), "type2.yaml:1: Username must be a string, not a list"),
	    "names key and type");
	h2k_config_free(&c);
	put(P("secs.yaml"), "SoapTimeout: 45\n", 0644);
	is_int(load(&c, NULL, P("secs.yaml")), 0, "SoapTimeout loads");
	is_int(c.soap_timeout, 45, "SoapTimeout 45");
	h2k_config_free(&c);
	put(P("secs2.yaml"), "soap_timeout: 0\n", 0644);
	ok(load(&c, NULL, P("secs2.yaml")) < 0 &&
	    contains(h2k_errmsg(), ":1: SoapTimeout must be a number of seconds"),
	    "SoapTimeout 0 refused, named with file:line");
	h2k_config_free(&c);
	put(P("type3.yaml"), "DownloadWorkers: lots\n", 0644);
	is_int(load(&c, NULL, P("type3.yaml")), -1, "non-number refused");
	ok(contains(h2k_errmsg(), ":1: DownloadWorkers must be a number"), "named");
	h2k_config_free(&c);
	put(P("type4.yaml"), "LogLevel: loud\n", 0644);
	is_int(load(&c, NULL, P("type4.yaml")), -1, "unknown level refused");
	h2k_config_free(&c);
	put(P("dup.yaml"), "Username: a\nusername: b\n", 0644);
	is_int(load(&c, NULL, P("dup.yaml")), -1, "duplicate key refused");
	ok(contains(h2k_errmsg(), "dup.yaml:2: Username given twice"), "named");
	h2k_config_free(&c);
	put(P("list.yaml"), "- a\n- b\n", 0644);
	is_int(load(&c, NULL, P("list.yaml")), -1, "top-level list refused");
	h2k_config_free(&c);

	put(P("unknown.yaml"), "# comment\nVCenterURL: https://x/sdk\nFoo: 1\n"
	    "vcenter-url: ignored?\n", 0644);
	h2k_log_setlevel(H2K_LOG_WARN);
	capture_stderr(err, sizeof err, load_unknown);
	snprintf(want, sizeof want, "config file %s:3: unknown key \"Foo\"",
	    P("unknown.yaml"));
	ok(contains(err, want), "unknown key warned with file:line:key");
	ok(contains(h2k_errmsg(), "VCenterURL given twice"),
	    "keys match without case or dashes (vcenter-url is VCenterURL)");

	put(P("empty.yaml"), "", 0644);
	is_int(load(&c, NULL, P("empty.yaml")), 0, "empty file is fine");
	ok(c.url == NULL, "and sets nothing");
	h2k_config_free(&c);
	put(P("comments.yaml"), "# nothing\n---\n", 0644);
	is_int(load(&c, NULL, P("comments.yaml")), 0, "comments only is fine");
	h2k_config_free(&c);
	put(P("nulls.yaml"), "Username:\nPassword: ~\nca_file: /x.pem\n"
	    "thumbprint: 'AA:BB'\nspool: /var/spool/h2k\n", 0644);
	is_int(load(&c, NULL, P("nulls.yaml")), 0, "null values are unset");
	ok(c.username == NULL && c.password == NULL, "username/password unset");
	is_str(c.ca_file, "/x.pem", "ca_file key (snake case)");
	is_str(c.thumbprint, "AA:BB", "thumbprint");
	is_str(c.spool, "/var/spool/h2k", "spool");
	h2k_config_free(&c);

	is_int(load(&c, NULL, P("missing.yaml")), -1, "-c missing file refused");
	is_int(h2k_errcode(), H2K_EX_USAGE, "as usage");
	ok(contains(h2k_errmsg(), "missing.yaml does not exist"), "says so");
	h2k_config_free(&c);
	is_int(load(&c, NULL, NULL), 0, "default user file may be missing");
	h2k_config_free(&c);

	put(P("pw644.yaml"), "VCenterURL: https://x/sdk\nPassword: s3cret\n", 0644);
	is_int(load(&c, NULL, P("pw644.yaml")), -1, "readable config with Password refused");
	is_int(h2k_errcode(), H2K_EX_SECRET, "exit 11");
	snprintf(want, sizeof want, "config file %s is world-readable (mode 0644); "
	    "chmod 600 it (it holds a Password)", P("pw644.yaml"));
	is_str(h2k_errmsg(), want, "message names file, mode, fix and why");
	h2k_config_free(&c);
	put(P("urlpw.yaml"), "VCenterURL: https://u:p@x/sdk\n", 0644);
	is_int(load(&c, NULL, P("urlpw.yaml")), -1,
	    "readable config with a password in VCenterURL refused");
	is_int(h2k_errcode(), H2K_EX_SECRET, "exit 11");
	h2k_config_free(&c);
	chmod(P("urlpw.yaml"), 0600);
	is_int(load(&c, NULL, P("urlpw.yaml")), 0, "private one accepted");
	is_str(c.username, "u", "user from VCenterURL");
	is_str(c.password, "p", "password from VCenterURL");
	is_str(c.url, "https://x/sdk", "url stripped");
	h2k_config_free(&c);
	chmod(P("pw644.yaml"), 0600);
	is_int(load(&c, NULL, P("pw644.yaml")), 0, "0600 config with Password accepted");
	is_str(c.password, "s3cret", "password read");
	h2k_config_free(&c);
	/*
	 * A symlink (dotfile managers, ConfigMaps) is followed as ssh does,
	 * and the file it leads to judged: 0600 with a Password is fine.
	 */
	(void)!symlink(P("pw644.yaml"), P("pwlink.yaml"));
	is_int(load(&c, NULL, P("pwlink.yaml")), 0,
	    "symlink to a 0600 config with Password accepted");
	is_str(c.password, "s3cret", "password read through the link");
	h2k_config_free(&c);
	chmod(P("pw644.yaml"), 0644);
	is_int(load(&c, NULL, P("pwlink.yaml")), -1,
	    "symlink to a 0644 config with Password refused");
	is_int(h2k_errcode(), H2K_EX_SECRET, "exit 11");
	chmod(P("pw644.yaml"), 0600);
	h2k_config_free(&c);
	mkdir(P("stk"), 01777);
	chmod(P("stk"), 01777);
	(void)!symlink(P("comments.yaml"), P("stk/link2.yaml"));
	if (geteuid() == 0) {
		(void)!lchown(P("stk/link2.yaml"), 65534, 65534);
		/* A config names the server and Insecure: a trust file. */
		is_int(load(&c, NULL, P("stk/link2.yaml")), -1,
		    "config symlink of another user in a sticky directory refused");
		is_int(h2k_errcode(), H2K_EX_SECRET, "exit 11");
		ok(contains(h2k_errmsg(), "symbolic link"), "says symlink");
	} else {
		skip(3, "lchown needs root");
	}
	h2k_config_free(&c);
	put(P("ww.yaml"), "VCenterURL: https://evil/sdk\nInsecure: true\n", 0666);
	is_int(load(&c, NULL, P("ww.yaml")), -1,
	    "world-writable config without a password refused");
	is_int(h2k_errcode(), H2K_EX_SECRET, "exit 11");
	ok(contains(h2k_errmsg(), "world-writable (mode 0666)"), "says why");
	h2k_config_free(&c);
	chmod(P("ww.yaml"), 0620);
	is_int(load(&c, NULL, P("ww.yaml")), -1,
	    "group-writable config refused");
	h2k_config_free(&c);
	if (geteuid() == 0) {
		put(P("foreign2.yaml"), "VCenterURL: https://evil/sdk\n", 0644);
		(void)!chown(P("foreign2.yaml"), 65534, 65534);
		is_int(load(&c, NULL, P("foreign2.yaml")), -1,
		    "foreign-owned config without a password refused");
		is_int(h2k_errcode(), H2K_EX_SECRET, "exit 11");
		h2k_config_free(&c);
	}
	if (geteuid() == 0) {
		put(P("foreign.yaml"), "Password: x\n", 0600);
		(void)!chown(P("foreign.yaml"), 65534, 65534);
		is_int(load(&c, NULL, P("foreign.yaml")), -1,
		    "foreign-owned config with Password refused");
		ok(contains(h2k_errmsg(), "owned by uid 65534"), "names the owner");
		h2k_config_free(&c);
	}
	clean_env();
}

static void
passwords(void)
{
	char *pw;
	int p[2], saved;
	char path[64];

	put(P("pw"), "hunter2\r\nsecond line\n", 0600);
	is_str(pw = h2k_password_file(P("pw")), "hunter2", "first line, CRLF dropped");
	h2k_freesecret(pw);
	put(P("pwnonl"), "nonl", 0600);
	is_str(pw = h2k_password_file(P("pwnonl")), "nonl", "no final newline");
	h2k_freesecret(pw);
	put(P("pw640"), "x\n", 0640);
	ok(h2k_password_file(P("pw640")) == NULL, "group-readable password file refused");
	is_int(h2k_errcode(), H2K_EX_SECRET, "exit 11");
	ok(contains(h2k_errmsg(), "password file"), "names it a password file");
	(void)!symlink(P("pw"), P("pwlink"));
	ok(h2k_password_file(P("pwlink")) == NULL, "symlinked password file refused");
	is_int(h2k_errcode(), H2K_EX_SECRET, "exit 11");
	put(P("pwempty"), "\nx\n", 0600);
	ok(h2k_password_file(P("pwempty")) == NULL, "empty first line refused");
	is_int(h2k_errcode(), H2K_EX_USAGE, "as usage");
	ok(h2k_password_file(P("pwnone")) == NULL, "missing file refused");
	ok(contains(h2k_errmsg(), "does not exist"), "says so");
	/* A NUL would cut the password short without a word. */
	{
		int fd = open(P("pwnul"), O_WRONLY | O_CREAT | O_TRUNC, 0600);

		(void)!write(fd, "ab\0cd\n", 6);
		close(fd);
	}
	ok(h2k_password_file(P("pwnul")) == NULL, "password with a NUL refused");
	is_int(h2k_errcode(), H2K_EX_USAGE, "as usage");
	ok(contains(h2k_errmsg(), "NUL byte"), "says so");
	if (pipe(p) == 0) {
		(void)!write(p[1], "ab\0cd\n", 6);
		close(p[1]);
		snprintf(path, sizeof path, "/dev/fd/%d", p[0]);
		ok(h2k_password_file(path) == NULL, "NUL from a pipe refused too");
		ok(contains(h2k_errmsg(), "NUL byte"), "says so");
		close(p[0]);
	}
	/* The same limit as from a pipe or the terminal. */
	{
		char big[5001];

		memset(big, 'x', sizeof big - 1);
		big[4095] = '\n';
		big[4096] = '\0';
		put(P("pw4095"), big, 0600);
		ok((pw = h2k_password_file(P("pw4095"))) && strlen(pw) == 4095,
		    "4095-byte password from a file taken");
		h2k_freesecret(pw);
		memset(big, 'x', sizeof big - 1);
		big[sizeof big - 1] = '\0';
		put(P("pw5000"), big, 0600);
		ok(h2k_password_file(P("pw5000")) == NULL,
		    "5000-byte password from a file refused");
		is_int(h2k_errcode(), H2K_EX_USAGE, "as usage");
		ok(contains(h2k_errmsg(), "longer than 4095"), "says so");
	}

	/* A NUL byte would cut the password short: refused, file named. */
	{
		int fd = open(P("pwnul"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
		(void)!write(fd, "hun\0ter2\n", 9);
		close(fd);
		ok(h2k_password_file(P("pwnul")) == NULL, "NUL in a password file refused");
		is_int(h2k_errcode(), H2K_EX_USAGE, "as usage");
		ok(contains(h2k_errmsg(), P("pwnul")) && contains(h2k_errmsg(), "NUL"),
		    "names the file and the NUL");
		fd = open(P("pwnul2"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
		(void)!write(fd, "hunter2\nx\0y\n", 12);
		close(fd);
		is_str(pw = h2k_password_file(P("pwnul2")), "hunter2",
		    "a NUL after the first line is not the password's");
		h2k_freesecret(pw);
	}

	/* A pipe handed over as /dev/fd/N or /proc/self/fd/N needs no mode. */
	if (pipe(p) == 0) {
		(void)!write(p[1], "frompipe\nrest", 13);
		close(p[1]);
		snprintf(path, sizeof path, "/dev/fd/%d", p[0]);
		is_str(pw = h2k_password_file(path), "frompipe", "/dev/fd/N pipe");
		h2k_freesecret(pw);
		close(p[0]);
	}
	if (pipe(p) == 0) {
		(void)!write(p[1], "procpipe\n", 9);
		close(p[1]);
		snprintf(path, sizeof path, "/proc/self/fd/%d", p[0]);
		is_str(pw = h2k_password_file(path), "procpipe", "/proc/self/fd/N pipe");
		h2k_freesecret(pw);
		close(p[0]);
	}
	mkfifo(P("fifo"), 0644);
	if (fork() == 0) {
		int fd = open(P("fifo"), O_WRONLY);
		(void)!write(fd, "fifopw\n", 7);
		_exit(0);
	}
	is_str(pw = h2k_password_file(P("fifo")), "fifopw", "named pipe");
	h2k_freesecret(pw);
	wait(NULL);
	/* A FIFO swapped for a symlink to a file anyone may write. */
	put(P("planted"), "planted-pw\n", 0666);
	mkfifo(P("fifo2"), 0600);
	swap_fifo_to = P("planted");
	pw = h2k_password_file(P("fifo2"));
	ok(pw == NULL, "FIFO swapped for a symlink after lstat: refused");
	is_int(h2k_errcode(), H2K_EX_SECRET, "exit 11");
	h2k_freesecret(pw);
	swap_fifo_to = NULL;

	/* stdin: only the first line is consumed. */
	saved = dup(0);
	if (pipe(p) == 0) {
		(void)!write(p[1], "stdinpw\nnext\n", 13);
		close(p[1]);
		dup2(p[0], 0);
		close(p[0]);
		is_str(pw = h2k_password_stdin(), "stdinpw", "--password-stdin first line");
		h2k_freesecret(pw);
		{
			char rest[16] = "";
			(void)!read(0, rest, sizeof rest - 1);
			is_str(rest, "next\n", "rest of stdin left unread");
		}
	}
	if (pipe(p) == 0) {
		(void)!write(p[1], "viadash\n", 8);
		close(p[1]);
		dup2(p[0], 0);
		close(p[0]);
		is_str(pw = h2k_password_file("-"), "viadash", "--password-file -");
		h2k_freesecret(pw);
	}
	if (pipe(p) == 0) {
		(void)!write(p[1], "ab\0cd\nnext\n", 11);
		close(p[1]);
		dup2(p[0], 0);
		close(p[0]);
		ok(h2k_password_stdin() == NULL, "NUL on stdin refused");
		is_int(h2k_errcode(), H2K_EX_USAGE, "as usage");
		ok(contains(h2k_errmsg(), "standard input") &&
		    contains(h2k_errmsg(), "NUL"), "names stdin and the NUL");
		{
			char rest[16] = "";
			(void)!read(0, rest, sizeof rest - 1);
			is_str(rest, "next\n", "the whole line consumed, no more");
		}
	}
	if (pipe(p) == 0) {
		close(p[1]);
		dup2(p[0], 0);
		close(p[0]);
		ok(h2k_password_stdin() == NULL, "empty stdin refused");
		is_int(h2k_errcode(), H2K_EX_USAGE, "as usage");
	}
	dup2(saved, 0);
	close(saved);

	/* Without a controlling terminal there is no prompt. */
	if (fork() == 0) {
		setsid();
		pw = h2k_password_prompt("Password: ");
		_exit(pw == NULL && h2k_errcode() == H2K_EX_USAGE &&
		    strstr(h2k_errmsg(), "--password-stdin") ? 0 : 1);
	} else {
		int st;
		wait(&st);
		ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		    "no terminal: prompt refuses with the how-to message");
	}
}

int
main(void)
{
	char cmd[256];

	snprintf(dir, sizeof dir, "/tmp/h2k-test-config.XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	precedence();
	userinfo();
	files();
	passwords();
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		printf("# cleanup of %s failed\n", dir);
	return tap_done();
}
