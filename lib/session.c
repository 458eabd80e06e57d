/*
 * session.c - the session file, and the secure read / atomic write helpers
 * every secret file goes through.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * Trust rule for a secret file (OpenSSH's, narrowed): it is opened with
 * O_NOFOLLOW and everything is decided on the fstat of that open
 * descriptor, so a file swapped between the check and the read cannot
 * slip through.  It must be a regular file, owned by the effective user
 * (or root where the caller allows it), with no group or other bits.  The
 * session file's directory must also not be writable by anyone else
 * (unless sticky, as /tmp), since whoever can write the directory can
 * replace the file; it is reached by the same walk as trust files (every
 * directory owned by the user or root, symlinks followed by hand only
 * where nobody else can re-point them) and the file is read, created and
 * renamed relative to that directory's descriptor.
 *
 * Trust rule for a trust file (config, CA; ssh_config's rule): the file
 * and every directory from "/" down to it must be owned by the effective
 * user or root and not writable by group or others (directories may be
 * if sticky).  The directories are opened one by one with O_NOFOLLOW from
 * their checked parent and the file with O_NOFOLLOW from the last, all
 * judged by fstat, so what is checked is what is read.  A symlink met on
 * the way is followed by hand (in a sticky directory it must be owned by
 * the user or root), and the walk goes on from its directory (or "/")
 * through its target, so the link's directories and the target's are all
 * checked.
 *
 * Atomic replace: the data goes to a fresh temporary name in the same
 * directory (mkostemp: O_CREAT|O_EXCL, so an attacker's symlink there is
 * never followed), gets the final mode by fchmod (umask cannot widen or
 * narrow it), is written in full and fsynced, then renamed over the final
 * name and the directory fsynced so the rename itself survives a crash.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "h2k.h"
#include "session.h"

/*
 * Walking a path needs search permission only, as mkdir and open by name
 * do: O_PATH opens a directory one may search but not list (mode 0711).
 */
#ifdef O_PATH
#define DIR_WALK (O_PATH | O_DIRECTORY | O_CLOEXEC)
#else
#define DIR_WALK (O_RDONLY | O_DIRECTORY | O_CLOEXEC)
#endif

/*
 * Room for a CA bundle of H2K_CA_MAX bytes, JSON-escaped: a control byte
 * becomes \u00XX, six bytes, and PEM text outside the BEGIN/END lines is
 * anything the file held.  A session login wrote must load again.
 */
#define SESSION_MAX (6 * H2K_CA_MAX + (1u << 20))

/* --- paths ---------------------------------------------------------------- */

static const char *
home_dir(void)
{
	const char *h = getenv("HOME");
	struct passwd *pw;

	if (h && *h == '/')
		return h;
	if ((pw = getpwuid(geteuid())) && pw->pw_dir && *pw->pw_dir == '/')
		return pw->pw_dir;
	return NULL;
}

char *
h2k_session_path(const char *explicit_path)
{
	const char *e, *home;

	if (explicit_path && *explicit_path)
		return h2k_strdup(explicit_path);
	if ((e = getenv("H2K_SESSION")) && *e)
		return h2k_strdup(e);
	/* The XDG spec says relative values are to be ignored. */
	if ((e = getenv("XDG_STATE_HOME")) && *e == '/')
		return h2k_asprintf("%s/h2k/session.json", e);
	if (!(home = home_dir())) {
		h2k_seterr(H2K_EX_USAGE, "cannot place the session file: no HOME; "
		    "use -s FILE or H2K_SESSION");
		return NULL;
	}
	return h2k_asprintf("%s/.local/state/h2k/session.json", home);
}

/* Directory part of path ("." when none); caller frees. */
static char *
dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *d;

	if (!slash)
		return h2k_strdup(".");
	if (slash == path)
		return h2k_strdup("/");
	if (!(d = h2k_malloc((size_t)(slash - path) + 1)))
		return NULL;
	memcpy(d, path, (size_t)(slash - path));
	d[slash - path] = '\0';
	return d;
}

int
h2k_mkdirs(const char *path, int mode)
{
	char *p, *comp, *next;
	int dfd, fd, rc = -1;

	if (!*path)
		return 0;
	if (!(p = h2k_strdup(path)))
		return -1;
	if ((dfd = open(*p == '/' ? "/" : ".", DIR_WALK)) < 0) {
		h2k_seterr(H2K_EX_IO, "cannot open directory %s: %s",
		    *p == '/' ? "/" : ".", strerror(errno));
		goto out;
	}
	/* p is cut after each component in turn, so it names the prefix. */
	for (comp = p; *comp; comp = next) {
		int created = 0;
		char save;

		while (*comp == '/')
			comp++;
		if (!*comp)
			break;
		next = comp + strcspn(comp, "/");
		save = *next;
		*next = '\0';
		if (mkdirat(dfd, comp, (mode_t)mode) == 0)
			created = 1;
		else if (errno != EEXIST) {
			h2k_seterr(H2K_EX_IO, "cannot create directory %s: %s",
			    p, strerror(errno));
			goto out;
		}
		/*
		 * What we just made must still be what we open: O_NOFOLLOW,
		 * so a symlink swapped in meanwhile is never chmod'ed through.
		 */
		fd = openat(dfd, comp, created ? O_RDONLY | O_DIRECTORY |
		    O_CLOEXEC | O_NOFOLLOW : DIR_WALK);
		if (fd < 0) {
			if (created)
				h2k_seterr(H2K_EX_SECRET, "directory %s was replaced "
				    "(%s) right after it was created; refusing it",
				    p, strerror(errno));
			else if (errno == ENOTDIR)
				h2k_seterr(H2K_EX_IO, "%s exists and is not a "
				    "directory", p);
			else
				h2k_seterr(H2K_EX_IO, "cannot open directory %s: %s",
				    p, strerror(errno));
			goto out;
		}
		/* The umask may have narrowed it; say exactly what we mean. */
		if (created && fchmod(fd, (mode_t)mode) < 0) {
			h2k_seterr(H2K_EX_IO, "chmod %s: %s", p, strerror(errno));
			close(fd);
			goto out;
		}
		close(dfd);
		dfd = fd;
		*next = save;
	}
	rc = 0;
out:
	if (dfd >= 0)
		close(dfd);
	free(p);
	return rc;
}

static int
fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return h2k_seterr(H2K_EX_IO, "open directory %s: %s", dir,
		    strerror(errno));
	/* Some file systems cannot fsync a directory; that is not data loss. */
	if (fsync(fd) < 0 && errno != EINVAL && errno != ENOTSUP) {
		int e = errno;
		close(fd);
		return h2k_seterr(H2K_EX_IO, "fsync %s: %s", dir, strerror(e));
	}
	close(fd);
	return 0;
}

/*
 * Write data as base in the open directory dfd (named dir in messages):
 * a fresh temporary name made with O_CREAT|O_EXCL|O_NOFOLLOW, fchmod,
 * write, fsync, rename over base, fsync of the directory.
 */
static int
atomic_write_at(int dfd, const char *dir, const char *base, const char *path,
    const void *data, size_t len, int mode)
{
	static const char az[] = "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	const char *p = data;
	char *tmp = NULL;
	int fd = -1, dd, rc = -1, e;

	for (int i = 0; fd < 0 && i < 100; i++) {
		unsigned char r[6];
		char sfx[7];

		if (getentropy(r, sizeof r) < 0)
			for (size_t j = 0; j < sizeof r; j++)
				r[j] = (unsigned char)random();
		for (size_t j = 0; j < sizeof r; j++)
			sfx[j] = az[r[j] % (sizeof az - 1)];
		sfx[6] = '\0';
		free(tmp);
		if (!(tmp = h2k_asprintf(".%s.%s", base, sfx)))
			return -1;
		fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_CLOEXEC, 0600);
		if (fd < 0 && errno != EEXIST)
			break;
	}
	if (fd < 0) {
		h2k_seterr(H2K_EX_IO, "cannot create a file in %s: %s", dir,
		    strerror(errno));
		free(tmp);
		return -1;
	}
	if (fchmod(fd, (mode_t)mode) < 0) {
		h2k_seterr(H2K_EX_IO, "chmod %s/%s: %s", dir, tmp, strerror(errno));
		goto out;
	}
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			h2k_seterr(H2K_EX_IO, "write %s: %s", path,
			    n < 0 ? strerror(errno) : "no progress");
			goto out;
		}
		p += n;
		len -= (size_t)n;
	}
	if (fsync(fd) < 0) {
		h2k_seterr(H2K_EX_IO, "fsync %s: %s", path, strerror(errno));
		goto out;
	}
	/* close can report a deferred write error (NFS). */
	e = close(fd);
	fd = -1;
	if (e < 0) {
		h2k_seterr(H2K_EX_IO, "close %s: %s", path, strerror(errno));
		goto out;
	}
	if (renameat(dfd, tmp, dfd, base) < 0) {
		h2k_seterr(H2K_EX_IO, "rename to %s: %s", path, strerror(errno));
		goto out;
	}
	free(tmp);
	tmp = NULL;
	/* Some file systems cannot fsync a directory; that is not data loss. */
	if ((dd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		rc = h2k_seterr(H2K_EX_IO, "open directory %s: %s", dir,
		    strerror(errno));
	else if (fsync(dd) < 0 && errno != EINVAL && errno != ENOTSUP) {
		e = errno;
		rc = h2k_seterr(H2K_EX_IO, "fsync %s: %s", dir, strerror(e));
	} else
		rc = 0;
	if (dd >= 0)
		close(dd);
out:
	if (fd >= 0)
		close(fd);
	if (tmp) {
		(void)unlinkat(dfd, tmp, 0);
		free(tmp);
	}
	return rc;
}

int
h2k_atomic_write(const char *path, const void *data, size_t len, int mode)
{
	char *dir;
	const char *base;
	int dfd, rc = -1;

	if (!(dir = dir_of(path)))
		return -1;
	base = strrchr(path, '/');
	base = base ? base + 1 : path;
	if (!*base) {
		h2k_seterr(H2K_EX_USAGE, "%s: not a file name", path);
		goto out;
	}
	if (h2k_mkdirs(dir, 0700) < 0)
		goto out;
	if ((dfd = open(dir, DIR_WALK)) < 0) {
		h2k_seterr(H2K_EX_IO, "open directory %s: %s", dir, strerror(errno));
		goto out;
	}
	rc = atomic_write_at(dfd, dir, base, path, data, len, mode);
	close(dfd);
out:
	free(dir);
	return rc;
}

/* --- secure read ---------------------------------------------------------- */

/* The worst problem with a file's mode bits, for the message. */
static const char *
mode_problem(mode_t m)
{
	if (m & S_IWOTH)
		return "world-writable";
	if (m & S_IROTH)
		return "world-readable";
	if (m & S_IWGRP)
		return "group-writable";
	if (m & S_IRGRP)
		return "group-readable";
	return "accessible by group or others";
}

static const char *
user_name(uid_t uid, char *buf, size_t n)
{
	struct passwd *pw = getpwuid(uid);

	snprintf(buf, n, "%s", pw && pw->pw_name ? pw->pw_name : "?");
	return buf;
}

static char *secure_read_fd(const char *what, const char *path, int fd,
    size_t max, size_t *len, int allow_root);

char *
h2k_secure_read_as(const char *what, const char *path, size_t max,
    size_t *len, int allow_root)
{
	struct stat st;
	int fd, e;

	/* O_NONBLOCK: a FIFO planted under the name must not hang us. */
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		e = errno;
		if (e == ELOOP && lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
			h2k_seterr(H2K_EX_SECRET, "%s %s is a symbolic link; "
			    "refusing to follow it", what, path);
		else if (e == ENOENT)
			h2k_seterr(H2K_EX_IO, "%s %s does not exist", what, path);
		else
			h2k_seterr(H2K_EX_IO, "cannot open %s %s: %s", what, path,
			    strerror(e));
		errno = e;
		return NULL;
	}
	return secure_read_fd(what, path, fd, max, len, allow_root);
}

/*
 * Read the want bytes fstat saw into one buffer of that size (+1 for the
 * NUL): growing it would leave unwiped copies of a secret in freed memory.
 * A file that shrank meanwhile gives what there is.  NULL after
 * h2k_seterr, the partial read wiped.
 */
static char *
read_sized(int fd, size_t want, const char *what, const char *path,
    size_t *gotp)
{
	char *buf;
	size_t got = 0;

	if (!(buf = h2k_malloc(want + 1)))
		return NULL;
	while (got < want) {
		ssize_t n = read(fd, buf + got, want - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			h2k_seterr(H2K_EX_IO, "read %s %s: %s", what, path,
			    strerror(errno));
			h2k_wipe(buf, got);
			free(buf);
			return NULL;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	buf[got] = '\0';
	*gotp = got;
	return buf;
}

/* The checks and the read of h2k_secure_read_as on an open file (closed). */
static char *
secure_read_fd(const char *what, const char *path, int fd, size_t max,
    size_t *len, int allow_root)
{
	struct stat st;
	char *buf = NULL, nm[64];
	size_t got = 0;
	int e;

	if (fstat(fd, &st) < 0) {
		h2k_seterr(H2K_EX_IO, "stat %s %s: %s", what, path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		h2k_seterr(H2K_EX_SECRET, "%s %s is not a regular file", what, path);
		goto fail;
	}
	if (st.st_uid != geteuid() && !(allow_root && st.st_uid == 0)) {
		char me[64];
		h2k_seterr(H2K_EX_SECRET, "%s %s is owned by uid %u (%s), not by "
		    "you (uid %u, %s); refusing it", what, path,
		    (unsigned)st.st_uid, user_name(st.st_uid, nm, sizeof nm),
		    (unsigned)geteuid(), user_name(geteuid(), me, sizeof me));
		goto fail;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		h2k_seterr(H2K_EX_SECRET, "%s %s is %s (mode %04o); chmod 600 it",
		    what, path, mode_problem(st.st_mode),
		    (unsigned)(st.st_mode & 07777));
		goto fail;
	}
	if ((unsigned long long)st.st_size > max) {
		h2k_seterr(H2K_EX_SECRET, "%s %s is larger than %zu bytes", what,
		    path, max);
		goto fail;
	}
	if (!(buf = read_sized(fd, (size_t)st.st_size, what, path, &got)))
		goto fail;
	close(fd);
	if (len)
		*len = got;
	return buf;
fail:
	e = errno;
	close(fd);
	errno = e == ENOENT ? EIO : e;
	return NULL;
}

char *
h2k_secure_read(const char *path, size_t max, size_t *len, int allow_root)
{
	return h2k_secure_read_as("file", path, max, len, allow_root);
}

/* --- trust files --------------------------------------------------------- */

/*
 * One directory on the way to a trust file: whoever owns it or can write
 * it (sticky directories such as /tmp aside) can put another file under
 * the name.
 */
static int
check_trust_dir(const char *what, const char *path, const char *dir, int fd,
    int owner_only)
{
	struct stat st;
	char nm[64];

	if (fstat(fd, &st) < 0)
		return h2k_seterr(H2K_EX_IO, "stat directory %s: %s", dir,
		    strerror(errno));
	if (st.st_uid != geteuid() && st.st_uid != 0)
		return h2k_seterr(H2K_EX_SECRET, "%s %s: directory %s is owned "
		    "by uid %u (%s), not by you or root; refusing it", what, path,
		    dir, (unsigned)st.st_uid, user_name(st.st_uid, nm, sizeof nm));
	if (!owner_only && (st.st_mode & (S_IWGRP | S_IWOTH)) &&
	    !(st.st_mode & S_ISVTX))
		return h2k_seterr(H2K_EX_SECRET, "%s %s: directory %s is %s "
		    "(mode %04o); refusing it", what, path, dir,
		    st.st_mode & S_IWOTH ? "world-writable" : "group-writable",
		    (unsigned)(st.st_mode & 07777));
	return 0;
}

/* path with its last component cut off ("/" stays "/"); NULL on ENOMEM. */
static char *
parent_of(const char *path)
{
	char *d = dir_of(path);

	return d && !*d ? (free(d), h2k_strdup("/")) : d;
}

/* path + "/" + name, without a doubled slash after "/". */
static char *
join(const char *path, const char *name)
{
	return h2k_asprintf("%s%s%s", path, strcmp(path, "/") ? "/" : "", name);
}

/* What a walk is for, and so how it judges what it passes. */
struct walk {
	const char *what;  /* "config file", "session file": for messages */
	const char *path;  /* as named: for messages */
	int session;       /* the session rule, not the trust-file rule */
	int want_dir;      /* hand back the directory holding the last name */
};

static int session_dir_ok(const char *dir, int dfd);

/*
 * Open path as the kernel would resolve it, but one component at a time
 * from "/", so that every step is judged on what was actually opened.
 *
 * Trust files: each directory passed through (those a symlink leads to,
 * and "..", included) must pass check_trust_dir, and each symlink
 * followed in a sticky directory others may write must be owned by the
 * effective user or root (its owner can replace it there).  So a symlink
 * is followed only when nobody but the user or root could have made it
 * point elsewhere: the link's own directory chain and the target's are
 * both checked, which OpenSSH's follow-and-check-the-file does not do.
 * The file itself is opened with O_NOFOLLOW from its checked directory,
 * and followed by hand the same way if it is a symlink.
 *
 * Session files (narrower about the file, wider about the way): each
 * directory passed through must be owned by the user or root, a symlink
 * on the way may not sit in a directory others can write (sticky ones
 * aside, where it must be the user's or root's), the directory holding
 * the file must pass session_dir_ok, and the file itself is never a
 * symlink.  With want_dir, that directory is handed back instead.
 */
static int
walk_open(const struct walk *w)
{
	const char *what = w->what, *path = w->path;
	char *rest = NULL, *cur = NULL, *t, *comp, *after;
	char link[PATH_MAX];
	struct stat st, dst;
	int dfd = -1, fd = -1, links = 0, e = 0;

	if (*path == '/')
		rest = h2k_strdup(path);
	else if ((t = getcwd(NULL, 0))) {
		rest = h2k_asprintf("%s/%s", t, path);
		free(t);
	} else {
		e = errno;
		h2k_seterr(H2K_EX_IO, "%s %s: cannot find the current directory: "
		    "%s", what, path, strerror(e));
		goto fail;
	}
	if (!rest)
		goto fail_nomem;
root:
	if (dfd >= 0)
		close(dfd);
	free(cur);
	if (!(cur = h2k_strdup("/")))
		goto fail_nomem;
	if ((dfd = open("/", DIR_WALK)) < 0) {
		e = errno;
		h2k_seterr(H2K_EX_IO, "open directory /: %s", strerror(e));
		goto fail;
	}
	if (check_trust_dir(what, path, "/", dfd, w->session) < 0)
		goto fail_secret;
	for (comp = rest;;) {
		int last;
		char save, *nc;

		while (*comp == '/')
			comp++;
		if (!*comp) {
			/* The name ends in a directory ("/", "x/..", a link to one). */
			e = EISDIR;
			h2k_seterr(H2K_EX_SECRET, "%s %s is not a regular file",
			    what, path);
			goto fail;
		}
		after = comp + strcspn(comp, "/");
		save = *after;
		*after = '\0';
		last = !after[save ? 1 + strspn(after + 1, "/") : 0];
		if (!strcmp(comp, ".")) {
			*after = save;
			comp = after;
			continue;
		}
		if (!strcmp(comp, "..")) {
			if ((fd = openat(dfd, "..", DIR_WALK)) < 0) {
				e = errno;
				h2k_seterr(H2K_EX_IO, "%s %s: directory %s/..: %s",
				    what, path, cur, strerror(e));
				goto fail;
			}
			close(dfd);
			dfd = fd;
			fd = -1;
			if (!(t = parent_of(cur)))
				goto fail_nomem;
			free(cur);
			cur = t;
			if (check_trust_dir(what, path, cur, dfd, w->session) < 0)
				goto fail_secret;
			*after = save;
			comp = after;
			continue;
		}
		if (last && w->session) {
			if (session_dir_ok(cur, dfd) < 0)
				goto fail_secret;
			if (w->want_dir) {
				free(cur);
				free(rest);
				return dfd;
			}
		}
		/* O_NONBLOCK: a FIFO planted under the name must not hang us. */
		fd = openat(dfd, comp, last ? O_RDONLY | O_NOFOLLOW | O_CLOEXEC |
		    O_NONBLOCK | O_NOCTTY : DIR_WALK | O_NOFOLLOW);
		if (fd >= 0 && last) {
			close(dfd);
			free(cur);
			free(rest);
			return fd;
		}
		if (fd >= 0) {
			close(dfd);
			dfd = fd;
			fd = -1;
			if (!(t = join(cur, comp)))
				goto fail_nomem;
			free(cur);
			cur = t;
			if (check_trust_dir(what, path, cur, dfd, w->session) < 0)
				goto fail_secret;
			*after = save;
			comp = after;
			continue;
		}
		e = errno;
		if (e != ELOOP && e != ENOTDIR) {
			if (e == ENOENT)
				h2k_seterr(H2K_EX_IO, "%s %s does not exist", what,
				    path);
			else if (last)
				h2k_seterr(H2K_EX_IO, "cannot open %s %s: %s", what,
				    path, strerror(e));
			else
				h2k_seterr(H2K_EX_IO, "%s %s: directory %s%s%s: %s",
				    what, path, cur, strcmp(cur, "/") ? "/" : "",
				    comp, strerror(e));
			goto fail;
		}
		/* ELOOP or ENOTDIR: a symlink, or not a directory at all. */
		if (fstatat(dfd, comp, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISLNK(st.st_mode)) {
			if (e == ENOTDIR)
				h2k_seterr(H2K_EX_IO, "%s %s: %s%s%s is not a "
				    "directory", what, path, cur,
				    strcmp(cur, "/") ? "/" : "", comp);
			else
				h2k_seterr(H2K_EX_SECRET, "%s %s: %s%s%s changed "
				    "while being checked; refusing it", what, path,
				    cur, strcmp(cur, "/") ? "/" : "", comp);
			goto fail;
		}
		if (last && w->session) {
			e = ELOOP;
			h2k_seterr(H2K_EX_SECRET, "%s %s is a symbolic link; "
			    "refusing to follow it", what, path);
			goto fail;
		}
		if (fstat(dfd, &dst) < 0) {
			e = errno;
			h2k_seterr(H2K_EX_IO, "stat directory %s: %s", cur,
			    strerror(e));
			goto fail;
		}
		/* Only the session walk gets here through such a directory. */
		if ((dst.st_mode & (S_IWGRP | S_IWOTH)) &&
		    !(dst.st_mode & S_ISVTX)) {
			h2k_seterr(H2K_EX_SECRET, "%s %s: symbolic link %s%s%s is in "
			    "a directory others can write (mode %04o), so anyone "
			    "may re-point it; refusing it", what, path, cur,
			    strcmp(cur, "/") ? "/" : "", comp,
			    (unsigned)(dst.st_mode & 07777));
			goto fail_secret;
		}
		/*
		 * Only in a sticky directory others may write can the link's
		 * owner replace it; elsewhere the directory check covered it.
		 */
		if (st.st_uid != geteuid() && st.st_uid != 0 &&
		    (dst.st_mode & (S_IWGRP | S_IWOTH))) {
			char nm[64];

			h2k_seterr(H2K_EX_SECRET, "%s %s: symbolic link %s%s%s is "
			    "owned by uid %u (%s), not by you or root; refusing it",
			    what, path, cur, strcmp(cur, "/") ? "/" : "", comp,
			    (unsigned)st.st_uid, user_name(st.st_uid, nm, sizeof nm));
			goto fail_secret;
		}
		if (++links > 40) {
			e = ELOOP;
			h2k_seterr(H2K_EX_IO, "%s %s: %s", what, path, strerror(e));
			goto fail;
		}
		{
			ssize_t n = readlinkat(dfd, comp, link, sizeof link);

			if (n < 0 || (size_t)n >= sizeof link || n == 0) {
				e = n < 0 ? errno : ENAMETOOLONG;
				h2k_seterr(H2K_EX_IO, "%s %s: symbolic link %s%s%s: %s",
				    what, path, cur, strcmp(cur, "/") ? "/" : "",
				    comp, strerror(e));
				goto fail;
			}
			link[n] = '\0';
		}
		/* The link's target takes the link's place in what is left. */
		*after = save;
		if (!(nc = h2k_asprintf("%s%s", link, after)))
			goto fail_nomem;
		free(rest);
		rest = nc;
		if (*rest == '/')
			goto root;
		comp = rest;
	}
fail_nomem:
	e = ENOMEM;
	goto fail;
fail_secret:
	e = EPERM;
fail:
	if (dfd >= 0)
		close(dfd);
	free(cur);
	free(rest);
	errno = e ? e : EIO;
	return -1;
}

char *
h2k_trust_read(const char *what, const char *path, size_t max, size_t *len,
    unsigned *mode)
{
	struct stat st;
	const char *base;
	char *buf = NULL, nm[64];
	size_t got = 0;
	int fd = -1, e;

	base = strrchr(path, '/');
	base = base ? base + 1 : path;
	if (!*base || !strcmp(base, ".") || !strcmp(base, "..")) {
		h2k_seterr(H2K_EX_USAGE, "%s %s: not a file name", what, path);
		errno = EINVAL;
		return NULL;
	}
	if ((fd = walk_open(&(struct walk){what, path, 0, 0})) < 0)
		return NULL;
	if (fstat(fd, &st) < 0) {
		h2k_seterr(H2K_EX_IO, "stat %s %s: %s", what, path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		h2k_seterr(H2K_EX_SECRET, "%s %s is not a regular file", what, path);
		goto fail;
	}
	if (st.st_uid != geteuid() && st.st_uid != 0) {
		h2k_seterr(H2K_EX_SECRET, "%s %s is owned by uid %u (%s), not by "
		    "you or root; refusing it", what, path, (unsigned)st.st_uid,
		    user_name(st.st_uid, nm, sizeof nm));
		goto fail;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		h2k_seterr(H2K_EX_SECRET, "%s %s is %s (mode %04o); refusing it; "
		    "chmod go-w it", what, path, st.st_mode & S_IWOTH ?
		    "world-writable" : "group-writable",
		    (unsigned)(st.st_mode & 07777));
		goto fail;
	}
	if ((unsigned long long)st.st_size > max) {
		h2k_seterr(H2K_EX_USAGE, "%s %s is larger than %zu bytes", what,
		    path, max);
		goto fail;
	}
	/* a config may hold a secret: read_sized allocates once */
	if (!(buf = read_sized(fd, (size_t)st.st_size, what, path, &got)))
		goto fail;
	close(fd);
	if (len)
		*len = got;
	if (mode)
		*mode = (unsigned)(st.st_mode & 07777);
	return buf;
fail:
	e = errno;
	close(fd);
	errno = e == ENOENT ? EIO : e;
	return NULL;
}

/* --- the session file ----------------------------------------------------- */

/*
 * Whoever can write the directory can put their own file under the name;
 * the owner check catches a foreign file, but not one of ours moved in
 * from elsewhere, so the directory has to be private too (sticky is fine).
 */
static int
session_dir_ok(const char *dir, int dfd)
{
	struct stat st;

	if (fstat(dfd, &st) < 0)
		return h2k_seterr(H2K_EX_IO, "stat directory %s: %s", dir,
		    strerror(errno));
	if (st.st_uid != geteuid() && st.st_uid != 0)
		return h2k_seterr(H2K_EX_SECRET, "session directory %s is owned by "
		    "uid %u, not by you; refusing the session file in it",
		    dir, (unsigned)st.st_uid);
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX))
		return h2k_seterr(H2K_EX_SECRET, "session directory %s is writable "
		    "by others (mode %04o); chmod 700 it", dir,
		    (unsigned)(st.st_mode & 07777));
	return 0;
}

/*
 * The session file's directory, walked from "/" and checked on the
 * descriptors (walk_open's session rule); -1 with errno ENOENT when it
 * does not exist yet.
 */
static int
session_dir_open(const char *path)
{
	return walk_open(&(struct walk){"session file", path, 1, 1});
}

int
h2k_session_check_dir(const char *path)
{
	int dfd = session_dir_open(path);

	if (dfd < 0)
		return errno == ENOENT ? (h2k_clearerr(), 0) : -1;
	close(dfd);
	return 0;
}

static int
take_str(cJSON *o, const char *key, char **dst, int required, const char *path)
{
	cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	if (!v || cJSON_IsNull(v)) {
		if (required)
			return h2k_seterr(H2K_EX_SESSION, "session file %s has no "
			    "\"%s\"; run h2k-login", path, key);
		return 0;
	}
	if (!cJSON_IsString(v) || !v->valuestring)
		return h2k_seterr(H2K_EX_SESSION, "session file %s: \"%s\" is not "
		    "a string; run h2k-login", path, key);
	if (required && !*v->valuestring)
		return h2k_seterr(H2K_EX_SESSION, "session file %s has an empty "
		    "\"%s\"; run h2k-login", path, key);
	return (*dst = h2k_strdup(v->valuestring)) ? 0 : -1;
}

int
h2k_session_load(const char *path, struct h2k_session *s)
{
	char *text = NULL;
	size_t len;
	cJSON *o, *v;
	int rc = -1, fd;

	memset(s, 0, sizeof *s);
	/* Walked and opened from checked descriptors: nothing by name twice. */
	if ((fd = walk_open(&(struct walk){"session file", path, 1, 0})) < 0 ||
	    !(text = secure_read_fd("session file", path, fd, SESSION_MAX, &len,
	    0))) {
		if (errno == ENOENT)
			h2k_seterr(H2K_EX_SESSION, "not logged in: no session file "
			    "%s; run h2k-login", path);
		return -1;
	}
	o = cJSON_ParseWithLength(text, len);
	h2k_wipe(text, len);
	free(text);
	if (!o || !cJSON_IsObject(o)) {
		cJSON_Delete(o);
		return h2k_seterr(H2K_EX_SESSION, "session file %s is not a JSON "
		    "object (damaged?); run h2k-login", path);
	}
	if (take_str(o, "url", &s->url, 1, path) < 0 ||
	    take_str(o, "cookie", &s->cookie, 1, path) < 0 ||
	    take_str(o, "thumbprint", &s->thumbprint, 0, path) < 0 ||
	    take_str(o, "ca_file", &s->ca_file, 0, path) < 0 ||
	    take_str(o, "ca_pem", &s->ca_pem, 0, path) < 0 ||
	    take_str(o, "server_type", &s->server_type, 0, path) < 0 ||
	    take_str(o, "server_version", &s->server_version, 0, path) < 0 ||
	    take_str(o, "api_version", &s->api_version, 0, path) < 0 ||
	    take_str(o, "user", &s->user, 0, path) < 0 ||
	    take_str(o, "created_at", &s->created_at, 0, path) < 0)
		goto out;
	v = cJSON_GetObjectItemCaseSensitive(o, "insecure");
	if (v && !cJSON_IsBool(v) && !cJSON_IsNull(v)) {
		h2k_seterr(H2K_EX_SESSION, "session file %s: \"insecure\" is not "
		    "true or false; run h2k-login", path);
		goto out;
	}
	s->insecure = cJSON_IsTrue(v);
	/*
	 * A session from before ca_pem: the CA file is read now, but only if
	 * it still passes the trust check - and only if it is used at all:
	 * with -k or a pin the CA file plays no part (http.c), and a stale
	 * one must not break such a session.
	 */
	if (s->ca_file && !s->ca_pem && !s->insecure &&
	    !(s->thumbprint && *s->thumbprint) &&
	    !(s->ca_pem = h2k_trust_read("CA file", s->ca_file, H2K_CA_MAX,
	    NULL, NULL))) {
		h2k_adderr("session file %s", path);
		goto out;
	}
	rc = 0;
out:
	/* The cookie is a credential: wipe the parsed copy too. */
	v = cJSON_GetObjectItemCaseSensitive(o, "cookie");
	if (cJSON_IsString(v) && v->valuestring)
		h2k_wipe(v->valuestring, strlen(v->valuestring));
	cJSON_Delete(o);
	if (rc < 0)
		h2k_session_free(s);
	return rc;
}

static int
put_str(cJSON *o, const char *key, const char *val)
{
	cJSON *v = val ? cJSON_CreateString(val) : cJSON_CreateNull();

	if (!v || !cJSON_AddItemToObject(o, key, v)) {
		cJSON_Delete(v);
		return h2k_seterr(H2K_EX_FAIL, "out of memory");
	}
	return 0;
}

/*
 * The session file replaced in the directory the session walk checked:
 * what was judged is where the cookie goes.
 */
/*
 * -1 (H2K_EX_SECRET) when base, in dfd, exists and is neither a regular
 * file nor a symbolic link (which the rename replaces, not follows): the
 * rename would put the session in place of a device, a FIFO or a
 * directory ("-s /dev/null" as root made /dev/null a file), and
 * --logout would unlink it.
 */
static int
not_a_file_at(int dfd, const char *base, const char *path)
{
	struct stat st;

	if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    S_ISREG(st.st_mode) || S_ISLNK(st.st_mode))
		return 0;
	return h2k_seterr(H2K_EX_SECRET, "session file %s is not a regular "
	    "file; left as it is", path);
}

static int
session_write(const char *path, const char *text, size_t len)
{
	char *dir;
	const char *base = strrchr(path, '/');
	int dfd, rc = -1;

	base = base ? base + 1 : path;
	if (!*base)
		return h2k_seterr(H2K_EX_USAGE, "%s: not a file name", path);
	if (!(dir = dir_of(path)))
		return -1;
	if (h2k_mkdirs(dir, 0700) < 0)
		goto out;
	if ((dfd = session_dir_open(path)) < 0)
		goto out;
	if (not_a_file_at(dfd, base, path) < 0) {
		close(dfd);
		goto out;
	}
	rc = atomic_write_at(dfd, dir, base, path, text, len, 0600);
	close(dfd);
out:
	free(dir);
	return rc;
}

int
h2k_session_save(const char *path, const struct h2k_session *s)
{
	cJSON *o, *v;
	char *text = NULL;
	int rc = -1;

	if (!s->url || !s->cookie)
		return h2k_seterr(H2K_EX_FAIL, "session without url or cookie");
	if (h2k_session_check_dir(path) < 0)
		return -1;
	if (!(o = cJSON_CreateObject()))
		return h2k_seterr(H2K_EX_FAIL, "out of memory");
	if (put_str(o, "url", s->url) < 0 || put_str(o, "cookie", s->cookie) < 0 ||
	    put_str(o, "thumbprint", s->thumbprint) < 0 ||
	    !cJSON_AddBoolToObject(o, "insecure", s->insecure ? 1 : 0) ||
	    put_str(o, "ca_file", s->ca_file) < 0 ||
	    put_str(o, "ca_pem", s->ca_pem) < 0 ||
	    put_str(o, "server_type", s->server_type) < 0 ||
	    put_str(o, "server_version", s->server_version) < 0 ||
	    put_str(o, "api_version", s->api_version) < 0 ||
	    put_str(o, "user", s->user) < 0 ||
	    put_str(o, "created_at", s->created_at) < 0) {
		h2k_seterr(H2K_EX_FAIL, "out of memory");
		goto out;
	}
	if (!(text = cJSON_Print(o))) {
		h2k_seterr(H2K_EX_FAIL, "out of memory");
		goto out;
	}
	{
		size_t n = strlen(text);
		char *t2 = h2k_malloc(n + 2);

		if (!t2)
			goto out;
		memcpy(t2, text, n);
		t2[n] = '\n';
		t2[n + 1] = '\0';
		rc = session_write(path, t2, n + 1);
		if (rc < 0)
			h2k_adderr("session file");
		h2k_wipe(t2, n + 1);
		free(t2);
	}
out:
	if (text) {
		h2k_wipe(text, strlen(text));
		free(text);
	}
	v = cJSON_GetObjectItemCaseSensitive(o, "cookie");
	if (cJSON_IsString(v) && v->valuestring)
		h2k_wipe(v->valuestring, strlen(v->valuestring));
	cJSON_Delete(o);
	return rc;
}

int
h2k_session_remove(const char *path)
{
	char *dir;

	if (not_a_file_at(AT_FDCWD, path, path) < 0)
		return -1;
	if (unlink(path) < 0) {
		if (errno == ENOENT)
			return h2k_seterr(H2K_EX_SESSION, "not logged in: no "
			    "session file %s", path);
		return h2k_seterr(H2K_EX_IO, "cannot remove session file %s: %s",
		    path, strerror(errno));
	}
	if (!(dir = dir_of(path)))
		return -1;
	(void)fsync_dir(dir);
	free(dir);
	return 0;
}

void
h2k_session_free(struct h2k_session *s)
{
	free(s->url);
	h2k_freesecret(s->cookie);
	free(s->thumbprint);
	free(s->ca_file);
	free(s->ca_pem);
	free(s->server_type);
	free(s->server_version);
	free(s->api_version);
	free(s->user);
	free(s->created_at);
	memset(s, 0, sizeof *s);
}
