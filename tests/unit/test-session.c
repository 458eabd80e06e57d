/* Unit tests for lib/session.c. SPDX-License-Identifier: LGPL-3.0-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "h2k.h"
#include "session.h"
#include "tap.h"

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
mode_of(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (int)(st.st_mode & 07777) : -1;
}

static int
contains(const char *hay, const char *needle)
{
	int r = strstr(hay, needle) != NULL;

	if (!r)
		printf("#   '%s' not in '%s'\n", needle, hay);
	return r;
}

/*
 * The race of issue 10 item 10, made deterministic: this program's mkdir
 * and mkdirat replace libc's for libh2k.a too.  With swap_to set, the
 * next directory made is at once moved aside and a symlink to swap_to
 * put under its name, as an attacker writing the parent would.
 */
static const char *swap_to;

int
mkdirat(int dfd, const char *name, mode_t mode)
{
	int r = (int)syscall(SYS_mkdirat, dfd, name, mode);
	const char *t = swap_to;
	char moved[300];

	if (r == 0 && t) {
		swap_to = NULL;
		snprintf(moved, sizeof moved, "%s.moved", name);
		if (renameat(dfd, name, dfd, moved) < 0 ||
		    symlinkat(t, dfd, name) < 0)
			perror("swap");
	}
	return r;
}

int
mkdir(const char *name, mode_t mode)
{
	return mkdirat(AT_FDCWD, name, mode);
}

/* Entries in d other than . and .. */
static int
count_entries(const char *d)
{
	DIR *dp = opendir(d);
	struct dirent *e;
	int n = 0;

	if (!dp)
		return -1;
	while ((e = readdir(dp)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(dp);
	return n;
}

static void
paths(void)
{
	char *p;

	setenv("HOME", "/home/u", 1);
	unsetenv("XDG_STATE_HOME");
	unsetenv("H2K_SESSION");
	is_str(p = h2k_session_path(NULL), "/home/u/.local/state/h2k/session.json",
	    "default under HOME");
	free(p);
	setenv("XDG_STATE_HOME", "relative/state", 1);
	is_str(p = h2k_session_path(NULL), "/home/u/.local/state/h2k/session.json",
	    "relative XDG_STATE_HOME ignored");
	free(p);
	setenv("XDG_STATE_HOME", "/xdg", 1);
	is_str(p = h2k_session_path(NULL), "/xdg/h2k/session.json",
	    "XDG_STATE_HOME used");
	free(p);
	setenv("H2K_SESSION", "/s/env.json", 1);
	is_str(p = h2k_session_path(NULL), "/s/env.json", "H2K_SESSION over XDG");
	free(p);
	is_str(p = h2k_session_path("/s/flag.json"), "/s/flag.json",
	    "-s over H2K_SESSION");
	free(p);
	unsetenv("H2K_SESSION");
	unsetenv("XDG_STATE_HOME");
}

static void
atomic(void)
{
	char *d = P("new/deeper/x.json");

	umask(0);
	is_int(h2k_atomic_write(d, "hello\n", 6, 0600), 0,
	    "atomic write creates missing parents");
	is_int(mode_of(d), 0600, "file is 0600 under umask 000");
	is_int(mode_of(P("new")), 0700, "created parent is 0700 under umask 000");
	is_int(mode_of(P("new/deeper")), 0700, "and the next one");
	is_int(h2k_atomic_write(d, "bye\n", 4, 0644), 0, "atomic replace");
	is_int(mode_of(d), 0644, "mode exactly as asked");
	is_int(count_entries(P("new/deeper")), 1, "no temporary left behind");
	umask(0777);
	is_int(h2k_atomic_write(d, "x", 1, 0600), 0, "write under umask 777");
	is_int(mode_of(d), 0600, "still 0600 under umask 777");
	umask(022);

	/* A symlink at the final name is replaced, its target untouched. */
	put(P("target"), "keep", 0600);
	(void)!symlink(P("target"), P("link.json"));
	is_int(h2k_atomic_write(P("link.json"), "new", 3, 0600), 0,
	    "write over a symlink");
	{
		struct stat st;
		char buf[16] = "";
		int fd = open(P("target"), O_RDONLY);

		(void)!read(fd, buf, sizeof buf - 1);
		close(fd);
		is_str(buf, "keep", "symlink target not written through");
		ok(lstat(P("link.json"), &st) == 0 && S_ISREG(st.st_mode),
		    "the name is now a regular file");
	}

	mkdir(P("ro"), 0500);
	if (geteuid() != 0) {
		is_int(h2k_atomic_write(P("ro/f"), "x", 1, 0600), -1,
		    "unwritable directory fails");
		is_int(h2k_errcode(), H2K_EX_IO, "as an I/O error");
	}
	put(P("plainfile"), "", 0600);
	is_int(h2k_mkdirs(P("plainfile/sub"), 0700), -1,
	    "mkdirs through a file fails");
	ok(contains(h2k_errmsg(), "plainfile"), "naming it");
}

static void
mkdirs_race(void)
{
	mkdir(P("victim"), 0755);
	chmod(P("victim"), 0755);
	mkdir(P("race"), 0700);
	swap_to = P("victim");
	is_int(h2k_mkdirs(P("race/new/sub"), 0700), -1,
	    "mkdirs: a directory swapped for a symlink after mkdir is refused");
	is_int(h2k_errcode(), H2K_EX_SECRET, "as SECRET");
	ok(contains(h2k_errmsg(), "race/new was replaced"), "naming it");
	is_int(mode_of(P("victim")), 0755, "the symlink target is not chmod'ed");
	ok(access(P("victim/sub"), F_OK) < 0, "nothing made inside the target");

	swap_to = P("victim");
	is_int(h2k_atomic_write(P("race2/s.json"), "x", 1, 0600), -1,
	    "atomic write into a swapped directory fails");
	is_int(mode_of(P("victim")), 0755, "target mode unchanged");
	ok(access(P("victim/s.json"), F_OK) < 0, "nothing written through it");
	swap_to = NULL;

	/* An existing symlink is the user's layout: followed, never chmod'ed. */
	(void)!symlink(P("victim"), P("vlink"));
	is_int(h2k_mkdirs(P("vlink/made"), 0700), 0, "existing symlink followed");
	is_int(mode_of(P("victim")), 0755, "its target keeps its mode");
	is_int(mode_of(P("victim/made")), 0700, "made below it with the mode");
	umask(077);
	is_int(h2k_mkdirs(P("um/a"), 0755), 0, "mkdirs under umask 077");
	is_int(mode_of(P("um/a")), 0755, "mode set by fchmod, not the umask");
	umask(022);
}

static void
trust(void)
{
	char *s;
	unsigned mode = 0;

	mkdir(P("t"), 0755);
	chmod(P("t"), 0755);
	put(P("t/ok"), "a: b\n", 0644);
	s = h2k_trust_read("config file", P("t/ok"), 100, NULL, &mode);
	is_str(s, "a: b\n", "trust file 0644 in a 0755 directory read");
	is_int((int)mode, 0644, "mode handed back");
	free(s);
	put(P("t/ww"), "x", 0646);
	ok(h2k_trust_read("CA file", P("t/ww"), 100, NULL, NULL) == NULL,
	    "world-writable trust file refused");
	is_int(h2k_errcode(), H2K_EX_SECRET, "as SECRET");
	ok(contains(h2k_errmsg(), "CA file"), "named as what");
	/*
	 * Symlinks are followed only where nobody but the user or root
	 * could have made them point elsewhere: the link's directories and
	 * the target's are all checked, and the link's owner too.
	 */
	(void)!symlink(P("t/ok"), P("t/sym"));
	ok((s = h2k_trust_read("config file", P("t/sym"), 100, NULL, NULL)) &&
	    !strcmp(s, "a: b\n"), "symlink in a safe directory to a safe file read");
	free(s);
	(void)!symlink("../t/./ok", P("t/rel"));
	ok((s = h2k_trust_read("config file", P("t/rel"), 100, NULL, NULL)) &&
	    !strcmp(s, "a: b\n"), "relative symlink with .. and . read");
	free(s);
	(void)!symlink(P("t/ww"), P("t/sym-ww"));
	ok(h2k_trust_read("config file", P("t/sym-ww"), 100, NULL, NULL) ==
	    NULL && h2k_errcode() == H2K_EX_SECRET, "symlink to an unsafe file refused");
	ok(contains(h2k_errmsg(), "world-writable"), "says why");
	(void)!symlink("loop", P("t/loop"));
	errno = 0;
	ok(h2k_trust_read("config file", P("t/loop"), 100, NULL, NULL) == NULL &&
	    errno == ELOOP, "symlink loop: ELOOP");
	(void)!symlink(P("t"), P("tlink"));
	ok((s = h2k_trust_read("config file", P("tlink/ok"), 100, NULL, NULL))
	    != NULL, "symlinked safe directory followed");
	free(s);
	mkfifo(P("t/fifo"), 0644);
	ok(h2k_trust_read("config file", P("t/fifo"), 100, NULL, NULL) == NULL,
	    "FIFO refused without hanging");
	errno = 0;
	ok(h2k_trust_read("config file", P("t/nope"), 100, NULL, NULL) == NULL,
	    "missing trust file");
	is_int(errno, ENOENT, "errno ENOENT");
	ok(h2k_trust_read("config file", P("nodir/x"), 100, NULL, NULL) == NULL &&
	    errno == ENOENT, "missing directory: ENOENT too");
	mkdir(P("t/open"), 0777);
	chmod(P("t/open"), 0777);
	put(P("t/open/c"), "x", 0644);
	ok(h2k_trust_read("config file", P("t/open/c"), 100, NULL, NULL) == NULL,
	    "trust file in a world-writable directory refused");
	ok(contains(h2k_errmsg(), "world-writable (mode 0777)"), "says why");
	/* Anyone can re-point a link there: what it points to does not matter. */
	(void)!symlink(P("t/ok"), P("t/open/flink"));
	ok(h2k_trust_read("config file", P("t/open/flink"), 100, NULL, NULL) ==
	    NULL && h2k_errcode() == H2K_EX_SECRET,
	    "symlink in a world-writable directory to a safe file refused");
	(void)!symlink(P("t"), P("t/open/dlink"));
	ok(h2k_trust_read("config file", P("t/open/dlink/ok"), 100, NULL, NULL)
	    == NULL && h2k_errcode() == H2K_EX_SECRET,
	    "directory symlink in a world-writable directory refused");
	ok(contains(h2k_errmsg(), "world-writable (mode 0777)"), "says why");
	chmod(P("t/open"), 01777);
	ok((s = h2k_trust_read("config file", P("t/open/c"), 100, NULL, NULL))
	    != NULL, "sticky directory accepted");
	free(s);
	mkdir(P("t/grp"), 0775);
	chmod(P("t/grp"), 0775);
	mkdir(P("t/grp/deep"), 0755);
	put(P("t/grp/deep/c"), "x", 0644);
	ok(h2k_trust_read("config file", P("t/grp/deep/c"), 100, NULL, NULL) ==
	    NULL, "group-writable directory two levels up refused");
	if (geteuid() == 0) {
		put(P("t/foreign"), "x", 0644);
		(void)!chown(P("t/foreign"), 65534, 65534);
		ok(h2k_trust_read("config file", P("t/foreign"), 100, NULL, NULL)
		    == NULL, "trust file of another uid refused");
		ok(contains(h2k_errmsg(), "owned by uid 65534"), "names the owner");
		/* In a sticky directory the link's owner can re-point it. */
		(void)!symlink(P("t/ok"), P("t/open/theirs"));
		(void)!lchown(P("t/open/theirs"), 65534, 65534);
		ok(h2k_trust_read("config file", P("t/open/theirs"), 100, NULL,
		    NULL) == NULL && h2k_errcode() == H2K_EX_SECRET,
		    "symlink of another uid in a sticky directory refused");
		ok(contains(h2k_errmsg(), "symbolic link") &&
		    contains(h2k_errmsg(), "owned by uid 65534"), "says whose link");
		/* Elsewhere only root could have made it; nobody can change it. */
		(void)!symlink(P("t/ok"), P("t/rootmade"));
		(void)!lchown(P("t/rootmade"), 65534, 65534);
		ok((s = h2k_trust_read("config file", P("t/rootmade"), 100, NULL,
		    NULL)) != NULL, "symlink of another uid in a 0755 directory followed");
		free(s);
	} else {
		skip(5, "foreign owner needs root");
	}
}

static void
secure(void)
{
	char *s;
	size_t len;

	put(P("ok"), "secret\n", 0600);
	s = h2k_secure_read(P("ok"), 100, &len, 0);
	is_str(s, "secret\n", "0600 own file read");
	is_int(len, 7, "length");
	free(s);
	put(P("ro400"), "x", 0400);
	ok((s = h2k_secure_read(P("ro400"), 100, NULL, 0)) != NULL, "0400 read");
	free(s);

	put(P("grp"), "secret", 0640);
	ok(h2k_secure_read_as("session file", P("grp"), 100, NULL, 0) == NULL,
	    "group-readable refused");
	is_int(h2k_errcode(), H2K_EX_SECRET, "exit class SECRET");
	{
		char want[300];
		snprintf(want, sizeof want, "session file %s is group-readable "
		    "(mode 0640); chmod 600 it", P("grp"));
		is_str(h2k_errmsg(), want, "message names file, problem and fix");
	}
	put(P("world"), "secret", 0606);
	ok(h2k_secure_read(P("world"), 100, NULL, 0) == NULL, "world-writable refused");
	ok(contains(h2k_errmsg(), "world-writable (mode 0606)"), "named world-writable");
	put(P("gx"), "secret", 0610);
	ok(h2k_secure_read(P("gx"), 100, NULL, 0) == NULL, "group-execute refused");

	(void)!symlink(P("ok"), P("sym"));
	ok(h2k_secure_read(P("sym"), 100, NULL, 0) == NULL, "symlink refused");
	is_int(h2k_errcode(), H2K_EX_SECRET, "as SECRET");
	ok(contains(h2k_errmsg(), "symbolic link"), "says symbolic link");

	mkfifo(P("fifo"), 0600);
	ok(h2k_secure_read(P("fifo"), 100, NULL, 0) == NULL,
	    "FIFO refused without hanging");
	ok(contains(h2k_errmsg(), "not a regular file"), "not a regular file");
	mkdir(P("adir"), 0700);
	ok(h2k_secure_read(P("adir"), 100, NULL, 0) == NULL, "directory refused");

	ok(h2k_secure_read(P("ok"), 3, NULL, 0) == NULL, "over max refused");
	ok(contains(h2k_errmsg(), "larger than 3 bytes"), "says how large");

	errno = 0;
	ok(h2k_secure_read(P("nope"), 100, NULL, 0) == NULL, "missing file");
	is_int(errno, ENOENT, "errno ENOENT kept for the caller");

	if (geteuid() == 0) {
		put(P("foreign"), "secret", 0600);
		(void)!chown(P("foreign"), 65534, 65534);
		ok(h2k_secure_read(P("foreign"), 100, NULL, 1) == NULL,
		    "file of another uid refused");
		is_int(h2k_errcode(), H2K_EX_SECRET, "as SECRET");
		ok(contains(h2k_errmsg(), "owned by uid 65534"), "names the owner");
	} else {
		skip(3, "foreign owner needs root");
	}
}

static void
sessions(void)
{
	struct h2k_session s = {0}, t;
	char *path = P("st/h2k/session.json");
	char want[300], *text;

	umask(0);
	s.url = "https://vc.example/sdk";
	s.cookie = "\"52a1-cookie\"";
	s.thumbprint = "AB:CD";
	s.insecure = 0;
	s.server_type = "VirtualCenter";
	s.server_version = "8.0.3";
	s.api_version = "8.0.3.0";
	s.user = "admin@vsphere.local";
	s.created_at = "2026-11-25T17:18:57Z";
	is_int(h2k_session_save(path, &s), 0, "session saved");
	is_int(mode_of(path), 0600, "session file 0600 under umask 000");
	is_int(mode_of(P("st/h2k")), 0700, "session dir 0700");
	umask(022);
	is_int(h2k_session_load(path, &t), 0, "session loaded");
	is_str(t.url, s.url, "url round trip");
	is_str(t.cookie, s.cookie, "cookie round trip (quotes kept)");
	is_str(t.thumbprint, "AB:CD", "thumbprint");
	is_int(t.insecure, 0, "insecure");
	ok(t.ca_file == NULL, "null ca_file stays NULL");
	is_str(t.server_type, "VirtualCenter", "server_type");
	is_str(t.api_version, "8.0.3.0", "api_version");
	is_str(t.user, s.user, "user");
	is_str(t.created_at, s.created_at, "created_at");
	h2k_session_free(&t);
	text = h2k_secure_read(path, 1 << 16, NULL, 0);
	ok(text && !strstr(text, "password"), "no password field in the file");
	free(text);

	chmod(path, 0644);
	is_int(h2k_session_load(path, &t), -1, "world-readable session refused");
	is_int(h2k_errcode(), H2K_EX_SECRET, "exit 11");
	chmod(path, 0600);

	chmod(P("st/h2k"), 0777);
	is_int(h2k_session_load(path, &t), -1, "session in a world-writable dir refused");
	is_int(h2k_errcode(), H2K_EX_SECRET, "exit 11");
	ok(contains(h2k_errmsg(), "writable by others (mode 0777)"), "says so");
	chmod(P("st/h2k"), 01777);
	is_int(h2k_session_load(path, &t), 0, "sticky world-writable dir (/tmp) allowed");
	h2k_session_free(&t);
	chmod(P("st/h2k"), 0700);

	is_int(h2k_session_load(P("st/none.json"), &t), -1, "missing session");
	is_int(h2k_errcode(), H2K_EX_SESSION, "exit 3");
	snprintf(want, sizeof want, "not logged in: no session file %s; run "
	    "h2k-login", P("st/none.json"));
	is_str(h2k_errmsg(), want, "message");

	put(P("st/bad.json"), "{\"url\": ", 0600);
	is_int(h2k_session_load(P("st/bad.json"), &t), -1, "bad JSON refused");
	is_int(h2k_errcode(), H2K_EX_SESSION, "exit 3");
	ok(contains(h2k_errmsg(), "is not a JSON object"), "says so");
	put(P("st/nocookie.json"), "{\"url\":\"https://h/sdk\"}", 0600);
	is_int(h2k_session_load(P("st/nocookie.json"), &t), -1, "no cookie refused");
	ok(contains(h2k_errmsg(), "has no \"cookie\""), "names the field");
	put(P("st/type.json"), "{\"url\":\"https://h/sdk\",\"cookie\":\"c\","
	    "\"insecure\":\"yes\"}", 0600);
	is_int(h2k_session_load(P("st/type.json"), &t), -1, "wrong type refused");
	ok(contains(h2k_errmsg(), "\"insecure\""), "names the field");

	is_int(h2k_session_remove(path), 0, "remove");
	ok(access(path, F_OK) < 0, "gone");
	is_int(h2k_session_remove(path), -1, "second remove fails");
	is_int(h2k_errcode(), H2K_EX_SESSION, "as not logged in");
}

int
main(void)
{
	char cmd[256];

	snprintf(dir, sizeof dir, "/tmp/h2k-test-session.XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	paths();
	atomic();
	mkdirs_race();
	trust();
	secure();
	sessions();
	snprintf(cmd, sizeof cmd, "chmod -R u+rwx %s; rm -rf %s", dir, dir);
	if (system(cmd) != 0)
		printf("# cleanup of %s failed\n", dir);
	return tap_done();
}
