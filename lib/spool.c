/*
 * spool.c - the h2k-job spool: a directory that never loses or double-runs
 * a job, in the manner of Maildir, qmail's queue and nq.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * Layout (all 0700, one file per job in exactly one of new/, cur/, done/):
 *   tmp/   records being written (never read by anyone else)
 *   new/   pending jobs, one JSON status record each, named by job id
 *   cur/   claimed jobs (running, or orphaned by a runner that died)
 *   done/  finished records: completed, failed, cancelled
 *   bad/   files moved aside (corrupt, unreadable, not ours) + NAME.reason
 *   lock/  lock/ID, the job's lock file
 *   log/   log/ID.log, the job's processes' output, every attempt appended
 *   cancel/ cancel/ID, a request to cancel a running job
 *   run/   run/PID, one per live runner, flocked while it lives
 *
 * Enqueue: write the record to tmp/ under a unique name, fsync, rename into
 * new/, fsync new/.  A reader sees no file or a whole one, and a crash
 * before the rename leaves only debris in tmp/ (cleaned after a day).
 * A batch of records is all or none: after all of them are durable in tmp/,
 * a journal tmp/batch.ID.jnl naming them is made durable (the commit point)
 * and flocked by its writer; then they are renamed into new/ and the journal
 * removed.  A writer that dies in between leaves the journal unlocked, and
 * the next recovery (every runner's, h2k-job serve's start) renames the
 * rest of the batch into new/.
 *
 * Lock: flock(LOCK_EX|LOCK_NB) on lock/ID, not on the record, because
 * status updates replace the record (temp + rename, so readers never see a
 * torn record) and a lock on a replaced inode would protect nothing.  The
 * lock file may be unlinked by its holder when the job ends, so a locker
 * checks after flock that the inode it locked is still the one at lock/ID
 * (else it locked an orphan and retries): two lockers can never both hold
 * "the" lock.  The runner opens it O_CLOEXEC, but gives each job's child
 * processes (and only that job's) an inherited copy: the lock is free only
 * once the runner and every process of the job are gone, so a job is never
 * taken over while an old h2k-fetch could still be writing its .part files.
 *
 * Claim: lock lock/ID first, then rename new/ID -> cur/ID.  The lock comes
 * first so that there is no moment when cur/ID exists unlocked while its
 * claimer lives: recovery treats "in cur/ and lockable" as "owner dead".
 * Of two runners only one gets the lock; if the rename then fails with
 * ENOENT the job was claimed and finished meanwhile, and is skipped.  The
 * claimed record is rewritten (running, attempts+1, started_at) durably.
 *
 * Finish: rewrite cur/ID with its final status, rename it into done/, fsync
 * done/, unlink the lock file, close it.  A crash between the two leaves a
 * finished record in cur/, which recovery moves to done/ - never reruns.
 *
 * A full spool must not turn a finished export into one that runs again:
 * the claim reserves tmp/ID.slot (the record's size and 64 KiB more,
 * allocated, not sparse) before any work starts, and the runner reserves
 * room at the end of log/ID.final, h2k-ovf's proof of completion, before
 * starting the pipeline.  When the final record cannot be written the
 * normal way it is written into the slot (overwriting allocated blocks
 * needs no space), and the slot renamed over cur/ID.  Should even that
 * fail, the record goes to done/ as it is: not run again, and h2k-job
 * wait says its outcome was not recorded.
 *
 * Recovery (every runner, at start and periodically): each cur/ID whose
 * lock can be taken lost its runner.  A finished record goes to done/; a
 * job started max_attempts times is failed with the reason, unless
 * log/ID.final proves that its export completed; any other (and that one)
 * is renamed back to new/ as pending and runs again, its downloads
 * resuming from the .part files under the same output_path, or, with the
 * proof, is recorded as completed by the claim without running.  A
 * graceful requeue on a full spool goes through the slot too.
 *
 * Logs: log/ID.log and log/ID.final are opened by h2k_spool_open_log,
 * which takes only the runner's own regular files with one link (a
 * planted .final would be taken as proof of an export that never ran, a
 * FIFO would stop the runner in open(2), a file of another user would get
 * the job's output) and moves any other to bad/.  While the recoverer
 * holds the lock no claimer can take the job (claimers lock first).
 *
 * Corrupt files: a file in new/ or cur/ that does not parse as a record
 * whose id matches its name is renamed into bad/ with a .reason file; the
 * runner logs it and goes on.
 *
 * Why local disk only: this relies on rename(2) being atomic and on flock
 * locks being shared with the kernel of every runner; on NFS flock is
 * emulated with POSIX locks or is local to one client, and a rename that
 * times out may or may not have happened.  h2k-job(5) says so.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "h2k.h"
#include "job.h"
#include "jsonl.h"
#include "session.h"
#include "spool.h"

static const char *const subdirs[] = {"tmp", "new", "cur", "done", "bad",
    "lock", "log", "cancel", "run"};

/* --- small helpers ------------------------------------------------------ */

static int
fsync_dir(struct h2k_spool *sp, const char *sub)
{
	int fd = openat(sp->dfd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return h2k_seterr(H2K_EX_IO, "%s/%s: %s", sp->dir, sub,
		    strerror(errno));
	if (fsync(fd) < 0 && errno != EINVAL) {
		int e = errno;
		close(fd);
		return h2k_seterr(H2K_EX_IO, "%s/%s: fsync: %s", sp->dir, sub,
		    strerror(e));
	}
	close(fd);
	return 0;
}

char *
h2k_spool_path(struct h2k_spool *sp, const char *sub, const char *name)
{
	return h2k_asprintf("%s/%s/%s", sp->dir, sub, name);
}

int
h2k_spool_idok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= H2K_SPOOL_IDMAX || s[0] == '.')
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= '0' && *s <= '9') || *s == '.' || *s == '-' ||
		    *s == '_'))
			return 0;
	return 1;
}

int
h2k_spool_newid(char *buf, size_t bufsize)
{
	static unsigned seq;
	struct timeval tv;
	unsigned r = 0;

	gettimeofday(&tv, NULL);
	if (getrandom(&r, sizeof r, GRND_NONBLOCK) != sizeof r)
		r = (unsigned)tv.tv_usec ^ ((unsigned)getpid() << 16);
	/*
	 * Seconds and microseconds first so that ids sort by submission time
	 * (claim order is FIFO); seq keeps a batch in file order even within
	 * one microsecond; pid and random make it unique across submitters.
	 */
	snprintf(buf, bufsize, "%lld.%06ld%03u.%d.%04x",
	    (long long)tv.tv_sec, (long)tv.tv_usec, seq++ % 1000,
	    (int)getpid(), r & 0xffff);
	return 0;
}

/* Oldest first: compare the numeric fields, then the rest. */
static int
idcmp(const void *a, const void *b)
{
	const char *x = *(char *const *)a, *y = *(char *const *)b;
	unsigned long long xs = strtoull(x, NULL, 10), ys = strtoull(y, NULL, 10);
	const char *xd = strchr(x, '.'), *yd = strchr(y, '.');

	if (xs != ys)
		return xs < ys ? -1 : 1;
	if (xd && yd) {
		unsigned long long xu = strtoull(xd + 1, NULL, 10);
		unsigned long long yu = strtoull(yd + 1, NULL, 10);
		if (xu != yu)
			return xu < yu ? -1 : 1;
	}
	return strcmp(x, y);
}

struct names {
	char **v;
	size_t n, cap;
};

static void
names_free(struct names *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}

/* Entries of sub/ except . and .., sorted oldest first. */
static int
list_dir(struct h2k_spool *sp, const char *sub, struct names *l)
{
	int fd = openat(sp->dfd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *de;
	DIR *d;

	memset(l, 0, sizeof *l);
	if (fd < 0)
		return h2k_seterr(H2K_EX_IO, "%s/%s: %s", sp->dir, sub,
		    strerror(errno));
	if (!(d = fdopendir(fd))) {
		close(fd);
		return h2k_seterr(H2K_EX_IO, "%s/%s: %s", sp->dir, sub,
		    strerror(errno));
	}
	while ((errno = 0, de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (l->n == l->cap) {
			size_t cap = l->cap ? l->cap * 2 : 64;
			char **v = h2k_realloc(l->v, cap * sizeof *v);
			if (!v)
				goto fail;
			l->v = v;
			l->cap = cap;
		}
		if (!(l->v[l->n] = h2k_strdup(de->d_name)))
			goto fail;
		l->n++;
	}
	if (errno) {
		h2k_seterr(H2K_EX_IO, "%s/%s: %s", sp->dir, sub, strerror(errno));
		goto fail;
	}
	closedir(d);
	if (l->n > 1)
		qsort(l->v, l->n, sizeof *l->v, idcmp);
	return 0;
fail:
	closedir(d);
	names_free(l);
	return -1;
}

/* Is there a file sub/id (of any kind)? */
static int
present(struct h2k_spool *sp, const char *sub, const char *id)
{
	char p[H2K_SPOOL_IDMAX + 8];

	snprintf(p, sizeof p, "%s/%s", sub, id);
	return faccessat(sp->dfd, p, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

static int
in_queue(struct h2k_spool *sp, const char *id)
{
	return present(sp, "new", id) || present(sp, "cur", id) ||
	    present(sp, "done", id);
}

static int
is_reason(const char *n)
{
	size_t l = strlen(n);
	return l > 7 && !strcmp(n + l - 7, ".reason");
}

/*
 * Write data to tmp/ and rename it to sub/name.  durable: fsync the file
 * and the target directory (state changes); progress updates skip that:
 * the rename alone keeps readers from seeing a torn record.
 */
static int
write_file(struct h2k_spool *sp, const char *sub, const char *name,
    const char *data, size_t len, int durable)
{
	/* dst whole: a reason's name (NAME.X.reason, NAME up to 200
	 * bytes) cut short would be no reason, and be counted as a job */
	char tmp[H2K_SPOOL_IDMAX + 64], dst[NAME_MAX + 16];
	unsigned r = 0;
	int fd;

	if (strlen(name) > NAME_MAX)
		return h2k_seterr(H2K_EX_IO, "%s/%s/%.64s...: name too long",
		    sp->dir, sub, name);
	(void)!getrandom(&r, sizeof r, GRND_NONBLOCK);
	snprintf(tmp, sizeof tmp, "tmp/%.*s.%d.%08x", H2K_SPOOL_IDMAX, name,
	    (int)getpid(), r);
	snprintf(dst, sizeof dst, "%s/%s", sub, name);
	fd = openat(sp->dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
	    O_NOFOLLOW, 0600);
	if (fd < 0)
		return h2k_seterr(H2K_EX_IO, "%s/%s: %s", sp->dir, tmp,
		    strerror(errno));
	for (size_t off = 0; off < len;) {
		ssize_t w = write(fd, data + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			int e = errno;
			close(fd);
			unlinkat(sp->dfd, tmp, 0);
			return h2k_seterr(H2K_EX_IO, "%s/%s: write: %s",
			    sp->dir, tmp, strerror(e));
		}
		off += (size_t)w;
	}
	if ((durable && fsync(fd) < 0) || close(fd) < 0) {
		int e = errno;
		if (durable)
			close(fd);
		unlinkat(sp->dfd, tmp, 0);
		return h2k_seterr(H2K_EX_IO, "%s/%s: %s", sp->dir, tmp,
		    strerror(e));
	}
	if (renameat(sp->dfd, tmp, sp->dfd, dst) < 0) {
		int e = errno;
		unlinkat(sp->dfd, tmp, 0);
		return h2k_seterr(H2K_EX_IO, "rename into %s/%s: %s", sp->dir,
		    dst, strerror(e));
	}
	return durable ? fsync_dir(sp, sub) : 0;
}

static int
write_record(struct h2k_spool *sp, const char *sub, const char *id,
    const cJSON *rec, int durable)
{
	char *s = h2k_json_print(rec);
	int r;

	if (!s)
		return h2k_seterr(H2K_EX_FAIL, "out of memory");
	size_t n = strlen(s);
	char *t = realloc(s, n + 2);
	if (!t) {
		free(s);
		return h2k_seterr(H2K_EX_FAIL, "out of memory");
	}
	t[n] = '\n';
	t[n + 1] = '\0';
	r = write_file(sp, sub, id, t, n + 1, durable);
	free(t);
	return r;
}

/* --- open ---------------------------------------------------------------- */

char *
h2k_spool_default(void)
{
	const char *x = getenv("XDG_STATE_HOME"), *home = getenv("HOME");

	if (geteuid() == 0)
		return h2k_strdup("/var/spool/h2k");
	if (x && x[0] == '/')
		return h2k_asprintf("%s/h2k/spool", x);
	if (!home || home[0] != '/') {
		struct passwd *pw = getpwuid(geteuid());
		home = pw ? pw->pw_dir : NULL;
	}
	if (!home) {
		h2k_seterr(H2K_EX_USAGE, "no home directory; use --spool DIR");
		return NULL;
	}
	return h2k_asprintf("%s/.local/state/h2k/spool", home);
}

int
h2k_spool_open(struct h2k_spool *sp, const char *dir, int create)
{
	struct stat st;

	memset(sp, 0, sizeof *sp);
	sp->dfd = -1;
	sp->max_attempts = H2K_SPOOL_MAX_ATTEMPTS;
	if (!dir || !dir[0])
		return h2k_seterr(H2K_EX_USAGE, "empty spool directory name");
	if (strlen(dir) >= PATH_MAX)
		return h2k_seterr(H2K_EX_USAGE, "%s: path too long", dir);
	/* h2k_mkdirs: a symlink swapped in for a directory it just made is
	 * refused; the checks below are on what was opened */
	if (create && h2k_mkdirs(dir, 0700) < 0)
		return -1;
	sp->dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sp->dfd < 0)
		return h2k_seterr(errno == ENOENT ? H2K_EX_NOTFOUND : H2K_EX_IO,
		    "spool %s: %s", dir, strerror(errno));
	if (fstat(sp->dfd, &st) < 0) {
		h2k_seterr(H2K_EX_IO, "spool %s: %s", dir, strerror(errno));
		goto fail;
	}
	if (st.st_uid != geteuid()) {
		h2k_seterr(H2K_EX_SECRET, "spool %s: owned by uid %u, not by "
		    "you (uid %u)", dir, (unsigned)st.st_uid,
		    (unsigned)geteuid());
		goto fail;
	}
	if (st.st_mode & 022) {
		h2k_seterr(H2K_EX_SECRET, "spool %s: writable by group or "
		    "others (mode %03o); chmod 700 it", dir,
		    (unsigned)st.st_mode & 0777);
		goto fail;
	}
	if (!(sp->dir = h2k_strdup(dir)))
		goto fail;
	for (size_t i = 0; i < sizeof subdirs / sizeof subdirs[0]; i++) {
		if (mkdirat(sp->dfd, subdirs[i], 0700) < 0 && errno != EEXIST) {
			h2k_seterr(H2K_EX_IO, "spool %s/%s: %s", dir,
			    subdirs[i], strerror(errno));
			goto fail;
		}
		/*
		 * Whoever can add a file to new/ or cur/ chooses what the
		 * runner exports and where it writes; a symbolic link would
		 * take the checks below somewhere else.  The spool itself is
		 * ours and closed to others, so what is checked here cannot
		 * be swapped afterwards.
		 */
		if (fstatat(sp->dfd, subdirs[i], &st, AT_SYMLINK_NOFOLLOW) < 0) {
			h2k_seterr(H2K_EX_IO, "spool %s/%s: %s", dir,
			    subdirs[i], strerror(errno));
			goto fail;
		}
		if (!S_ISDIR(st.st_mode)) {
			h2k_seterr(H2K_EX_SECRET, "spool %s/%s: not a directory "
			    "(%s)", dir, subdirs[i], S_ISLNK(st.st_mode) ?
			    "a symbolic link" : "another kind of file");
			goto fail;
		}
		if (st.st_uid != geteuid()) {
			h2k_seterr(H2K_EX_SECRET, "spool %s/%s: owned by uid "
			    "%u, not by you (uid %u)", dir, subdirs[i],
			    (unsigned)st.st_uid, (unsigned)geteuid());
			goto fail;
		}
		if (st.st_mode & 022) {
			h2k_seterr(H2K_EX_SECRET, "spool %s/%s: writable by "
			    "group or others (mode %03o); chmod 700 it", dir,
			    subdirs[i], (unsigned)st.st_mode & 0777);
			goto fail;
		}
	}
	return 0;
fail:
	h2k_spool_close(sp);
	return -1;
}

int
h2k_spool_open_default(struct h2k_spool *sp, const char *dir, int create)
{
	char *def = NULL;
	int r = 0;

	if ((!dir || !*dir) && !(dir = def = h2k_spool_default()))
		return -1;
	if (!create && access(dir, F_OK) < 0 && errno == ENOENT) {
		memset(sp, 0, sizeof *sp);
		sp->dfd = -1;
		sp->max_attempts = H2K_SPOOL_MAX_ATTEMPTS;
		r = (sp->dir = h2k_strdup(dir)) ? 1 : -1;
	} else
		r = h2k_spool_open(sp, dir, create);
	free(def);
	return r;
}

void
h2k_spool_close(struct h2k_spool *sp)
{
	if (sp->dfd >= 0)
		close(sp->dfd);
	sp->dfd = -1;
	free(sp->dir);
	sp->dir = NULL;
}

/* --- locks ---------------------------------------------------------------- */

/*
 * Lock lock/ID without waiting: fd (>= 0), -2 if someone holds it, -1 on
 * error.  See the header comment for why the inode is compared.
 */
static int
lock_job(struct h2k_spool *sp, const char *id)
{
	char path[H2K_SPOOL_IDMAX + 8];

	snprintf(path, sizeof path, "lock/%s", id);
	for (int tries = 0; tries < 100; tries++) {
		struct stat a, b;
		int fd = openat(sp->dfd, path, O_RDWR | O_CREAT | O_CLOEXEC |
		    O_NOFOLLOW, 0600);

		if (fd < 0)
			return h2k_seterr(H2K_EX_IO, "%s/%s: %s", sp->dir, path,
			    strerror(errno));
		if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			int e = errno;
			close(fd);
			if (e == EWOULDBLOCK)
				return -2;
			return h2k_seterr(H2K_EX_IO, "%s/%s: flock: %s",
			    sp->dir, path, strerror(e));
		}
		if (fstat(fd, &a) == 0 &&
		    fstatat(sp->dfd, path, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
		    a.st_ino == b.st_ino && a.st_dev == b.st_dev)
			return fd;
		close(fd); /* locked an inode its holder just unlinked */
	}
	return h2k_seterr(H2K_EX_IO, "%s/lock/%s: lock file keeps changing",
	    sp->dir, id);
}

/* Unlink the lock file (we hold it) and close it. */
static void
unlock_job(struct h2k_spool *sp, const char *id, int fd)
{
	char path[H2K_SPOOL_IDMAX + 8];

	snprintf(path, sizeof path, "lock/%s", id);
	unlinkat(sp->dfd, path, 0);
	close(fd);
}

void
h2k_spool_release(struct h2k_claim *c)
{
	if (c->lockfd >= 0)
		close(c->lockfd);
	c->lockfd = -1;
	if (c->slotfd >= 0)
		close(c->slotfd);
	c->slotfd = -1;
	cJSON_Delete(c->rec);
	c->rec = NULL;
}

/* --- records -------------------------------------------------------------- */

cJSON *
h2k_spool_read(struct h2k_spool *sp, const char *sub, const char *id)
{
	char path[H2K_SPOOL_IDMAX + 8];
	struct h2k_buf b = {.max = H2K_SPOOL_MAX_RECORD};
	struct stat st;
	cJSON *rec;
	int fd;

	if (!h2k_spool_idok(id)) {
		h2k_seterr(H2K_EX_FAIL, "name is not a job id");
		return NULL;
	}
	snprintf(path, sizeof path, "%s/%s", sub, id);
	fd = openat(sp->dfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC |
	    O_NONBLOCK);
	if (fd < 0) {
		h2k_seterr(errno == ENOENT ? H2K_EX_NOTFOUND : H2K_EX_FAIL,
		    "cannot open: %s", errno == ELOOP ? "a symbolic link" :
		    strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		h2k_seterr(H2K_EX_FAIL, "not a regular file");
		return NULL;
	}
	/*
	 * Only the runner's user writes records (the directories are closed
	 * to others); a file of another owner was planted, and a second
	 * link means the same bytes are reachable, and changeable, from
	 * outside the spool.
	 */
	if (st.st_uid != geteuid()) {
		close(fd);
		h2k_seterr(H2K_EX_SECRET, "owned by uid %u, not by the "
		    "runner's user (uid %u)", (unsigned)st.st_uid,
		    (unsigned)geteuid());
		return NULL;
	}
	if (st.st_nlink != 1) {
		close(fd);
		h2k_seterr(H2K_EX_SECRET, "has %lu hard links (a record has "
		    "one)", (unsigned long)st.st_nlink);
		return NULL;
	}
	if (h2k_buf_readfd(&b, fd) < 0) {
		if (errno == EFBIG || errno == ENOMEM)
			h2k_seterr(H2K_EX_FAIL, "larger than %u bytes",
			    H2K_SPOOL_MAX_RECORD);
		else
			h2k_seterr(H2K_EX_FAIL, "read: %s", strerror(errno));
		goto fail;
	}
	close(fd);
	if (!b.len) {
		h2k_seterr(H2K_EX_FAIL, "empty file");
		h2k_buf_free(&b);
		return NULL;
	}
	rec = cJSON_ParseWithLength(b.data, b.len);
	h2k_buf_free(&b);
	if (!rec) {
		h2k_seterr(H2K_EX_FAIL, "not valid JSON");
		return NULL;
	}
	if (h2k_job_record_check(rec, id) < 0) {
		cJSON_Delete(rec);
		return NULL;
	}
	return rec;
fail:
	close(fd);
	h2k_buf_free(&b);
	return NULL;
}

int
h2k_spool_moveaside(struct h2k_spool *sp, const char *sub, const char *name,
    const char *reason)
{
	char from[NAME_MAX + 16], to[NAME_MAX + 16], rname[NAME_MAX + 16];
	char now[32], *text;
	unsigned r = 0;

	(void)!getrandom(&r, sizeof r, GRND_NONBLOCK);
	snprintf(from, sizeof from, "%s/%s", sub, name);
	/* bad/ keeps every version: a name may go bad more than once. */
	snprintf(to, sizeof to, "bad/%.200s.%08x", name, r);
	snprintf(rname, sizeof rname, "%.200s.%08x.reason", name, r);
	/*
	 * The reason goes first: h2k-job wait reports a job once it sees
	 * bad/NAME.X, and must find NAME.X.reason by then.  It is best
	 * effort (a full spool still moves the job aside).
	 */
	if (!(text = h2k_asprintf("%s: %s/%s: %s\n", h2k_now_rfc3339(now),
	    sp->dir, from, reason)))
		return -1;
	int have = write_file(sp, "bad", rname, text, strlen(text), 1) == 0;
	free(text);
	if (renameat(sp->dfd, from, sp->dfd, to) < 0) {
		int e = errno;
		char rp[NAME_MAX + 24];
		snprintf(rp, sizeof rp, "bad/%s", rname);
		if (have)
			unlinkat(sp->dfd, rp, 0);
		if (e == ENOENT)
			return 0; /* someone else moved it */
		return h2k_seterr(H2K_EX_IO, "move %s/%s aside: %s", sp->dir,
		    from, strerror(e));
	}
	/* the reason's fsync of bad/ came before the rename: this one
	 * makes the move itself durable (best effort, as the reason) */
	(void)fsync_dir(sp, "bad");
	h2k_warn("%s/%s: %s; moved to %s/%s", sp->dir, from, reason, sp->dir,
	    to);
	return 0;
}

/* Exactly what h2k_spool_newid makes: DIGITS.DIGITS.DIGITS.HEX */
static int
id_strict(const char *s)
{
	int field = 0;

	if (!h2k_spool_idok(s))
		return 0;
	for (const char *p = s; ; p++) {
		const char *start = p;
		while (field < 3 ? (*p >= '0' && *p <= '9') :
		    ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			p++;
		if (p == start)
			return 0;
		if (*p == '\0')
			return field == 3;
		if (*p != '.' || ++field > 3)
			return 0;
	}
}

/* Move every non-record out of new/ or cur/ while scanning: 1 if moved. */
static int
aside_if_not_id(struct h2k_spool *sp, const char *sub, const char *name)
{
	if (id_strict(name))
		return 0;
	h2k_spool_moveaside(sp, sub, name, "not a job id (files in this "
	    "directory are made by h2k-job only)");
	return 1;
}

/* --- enqueue -------------------------------------------------------------- */

cJSON **
h2k_spool_submit(struct h2k_spool *sp, const struct h2k_joblist *l)
{
	cJSON **recs = h2k_calloc(l->n + 1, sizeof *recs);

	if (!recs)
		return NULL;
	for (size_t i = 0; i < l->n; i++) {
		char id[H2K_SPOOL_IDMAX];
		h2k_spool_newid(id, sizeof id);
		if (!(recs[i] = h2k_job_record_new(&l->v[i], id)))
			goto fail;
	}
	if (h2k_spool_enqueue(sp, recs, l->n) == 0)
		return recs;
	char msg[1024];
	snprintf(msg, sizeof msg, "%s", h2k_errmsg());
	h2k_seterr(h2k_errcode(), "%s; nothing submitted", msg);
fail:
	h2k_spool_recs_free(recs);
	return NULL;
}

void
h2k_spool_recs_free(cJSON **recs)
{
	for (size_t i = 0; recs && recs[i]; i++)
		cJSON_Delete(recs[i]);
	free(recs);
}

static const char *
rec_id(const cJSON *rec)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rec, "id"));
}

/*
 * The commit point of a batch: tmp/batch.ID0.jnl names every record of it,
 * written whole (tmp/batch.ID0.part, fsync, rename, fsync tmp/) and flocked
 * by its writer as long as it lives.  Returns the locked fd, -1 on error.
 */
static int
journal_write(struct h2k_spool *sp, cJSON *const *recs, size_t n,
    char *jname, size_t jn)
{
	char part[H2K_SPOOL_IDMAX + 32];
	struct h2k_buf b = {0};
	int fd, e = 0;

	snprintf(part, sizeof part, "tmp/batch.%s.part", rec_id(recs[0]));
	snprintf(jname, jn, "tmp/batch.%s.jnl", rec_id(recs[0]));
	for (size_t i = 0; i < n; i++)
		if (h2k_buf_append(&b, rec_id(recs[i]), strlen(rec_id(recs[i])))
		    < 0 || h2k_buf_append(&b, "\n", 1) < 0) {
			h2k_buf_free(&b);
			return h2k_seterr(H2K_EX_FAIL, "out of memory");
		}
	fd = openat(sp->dfd, part, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600);
	errno = 0;
	if (fd < 0 || flock(fd, LOCK_EX) < 0 ||
	    write(fd, b.data, b.len) != (ssize_t)b.len || fsync(fd) < 0 ||
	    renameat(sp->dfd, part, sp->dfd, jname) < 0)
		e = errno ? errno : EIO;
	h2k_buf_free(&b);
	if (e) {
		if (fd >= 0) {
			unlinkat(sp->dfd, part, 0);
			close(fd);
		}
		return h2k_seterr(H2K_EX_IO, "%s/%s: %s", sp->dir, part,
		    strerror(e));
	}
	if (fsync_dir(sp, "tmp") < 0) {
		unlinkat(sp->dfd, jname, 0);
		close(fd);
		return -1;
	}
	return fd;
}

int
h2k_spool_roll_batches(struct h2k_spool *sp)
{
	struct names l;
	int count = 0;

	if (list_dir(sp, "tmp", &l) < 0)
		return -1;
	for (size_t i = 0; i < l.n; i++) {
		const char *nm = l.v[i];
		size_t len = strlen(nm);
		char p[NAME_MAX + 8], buf[64 * 1024];
		struct stat st;
		ssize_t r;
		int fd, moved = 0;

		if (strncmp(nm, "batch.", 6) || len < 11 ||
		    strcmp(nm + len - 4, ".jnl"))
			continue;
		snprintf(p, sizeof p, "tmp/%s", nm);
		fd = openat(sp->dfd, p, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
		    O_CLOEXEC);
		if (fd < 0)
			continue;
		/* locked: its writer lives and is moving it now */
		if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
		    flock(fd, LOCK_EX | LOCK_NB) < 0 ||
		    fstat(fd, &st) < 0 || st.st_nlink == 0) {
			close(fd);
			continue;
		}
		struct h2k_buf b = {.max = 16u << 20};
		while ((r = read(fd, buf, sizeof buf)) > 0)
			if (h2k_buf_append(&b, buf, (size_t)r) < 0)
				break;
		if (r != 0 || h2k_buf_append(&b, "", 1) < 0) {
			h2k_warn("%s/%s: cannot be read; left as it is",
			    sp->dir, p);
			h2k_buf_free(&b);
			close(fd);
			continue;
		}
		for (char *line = b.data, *nl; *line; line = nl + 1) {
			char src[H2K_SPOOL_IDMAX + 16], dst[H2K_SPOOL_IDMAX + 8];
			if (!(nl = strchr(line, '\n')))
				break;
			*nl = '\0';
			if (!h2k_spool_idok(line))
				continue;
			snprintf(src, sizeof src, "tmp/%s.new", line);
			snprintf(dst, sizeof dst, "new/%s", line);
			/* ENOENT: moved before the writer died */
			if (renameat(sp->dfd, src, sp->dfd, dst) == 0)
				moved++;
		}
		h2k_buf_free(&b);
		if (fsync_dir(sp, "new") == 0)
			unlinkat(sp->dfd, p, 0);
		close(fd);
		if (moved)
			h2k_info("spool %s: queued the rest of an interrupted "
			    "batch (%d job%s)", sp->dir, moved,
			    moved == 1 ? "" : "s");
		count += moved;
	}
	names_free(&l);
	return count;
}

int
h2k_spool_enqueue(struct h2k_spool *sp, cJSON *const *recs, size_t n)
{
	char (*tmps)[H2K_SPOOL_IDMAX + 32] = NULL;
	char jname[H2K_SPOOL_IDMAX + 32];
	size_t written = 0, moved = 0;
	int rc = -1, jfd = -1;
	const char *die = getenv("H2K_SPOOL_TEST_DIE_AFTER_MOVES");

	if (n == 0)
		return 0;
	if (!(tmps = h2k_calloc(n, sizeof *tmps)))
		return -1;
	/* Every record durable in tmp/ before any becomes visible. */
	for (; written < n; written++) {
		const char *id = rec_id(recs[written]);
		char name[H2K_SPOOL_IDMAX + 16];
		if (!id || !h2k_spool_idok(id)) {
			h2k_seterr(H2K_EX_FAIL, "record without a valid id");
			goto out;
		}
		snprintf(name, sizeof name, "%s.new", id);
		if (write_record(sp, "tmp", name, recs[written], 1) < 0)
			goto out;
		snprintf(tmps[written], sizeof tmps[0], "tmp/%s", name);
	}
	/*
	 * A batch is all or nothing: once its journal is durable it is
	 * queued, by us below or, should we die while moving it, by the next
	 * h2k_spool_roll_batches (every runner's recovery, serve's start).
	 */
	if (n > 1 && (jfd = journal_write(sp, recs, n, jname,
	    sizeof jname)) < 0)
		goto out;
	for (; moved < n; moved++) {
		char dst[H2K_SPOOL_IDMAX + 8];
		/* Test hook for the crash tests: die in the middle. */
		if (die && *die && moved == (size_t)atoi(die))
			raise(SIGKILL);
		snprintf(dst, sizeof dst, "new/%s", rec_id(recs[moved]));
		if (renameat(sp->dfd, tmps[moved], sp->dfd, dst) < 0) {
			h2k_seterr(H2K_EX_IO, "rename into %s/%s: %s", sp->dir,
			    dst, strerror(errno));
			/* Take back those already queued: all or none. */
			while (moved > 0) {
				moved--;
				snprintf(dst, sizeof dst, "new/%s",
				    rec_id(recs[moved]));
				unlinkat(sp->dfd, dst, 0);
			}
			goto out;
		}
		tmps[moved][0] = '\0';
	}
	rc = fsync_dir(sp, "new");
out:
	for (size_t i = 0; i < written; i++)
		if (tmps[i][0])
			unlinkat(sp->dfd, tmps[i], 0);
	if (jfd >= 0) {
		/* done (or taken back): the journal goes before its lock */
		unlinkat(sp->dfd, jname, 0);
		close(jfd);
	}
	free(tmps);
	return rc;
}

/* --- claim, update, finish ------------------------------------------------- */

int
h2k_spool_reserve(int fd, const char *what, size_t n)
{
	struct stat st;
	int e;

	if (fstat(fd, &st) < 0)
		return h2k_seterr(H2K_EX_IO, "%s: %s", what, strerror(errno));
	if (fallocate(fd, FALLOC_FL_KEEP_SIZE, st.st_size, (off_t)n) == 0)
		return 0;
	e = errno;
	if (e == ENOSPC || e == EDQUOT)
		return h2k_seterr(H2K_EX_IO, "%s: cannot reserve %zu bytes: %s",
		    what, n, strerror(e));
	return 0; /* cannot reserve here (EOPNOTSUPP): do without */
}

/* tmp/ID.slot: room for c's final record, allocated now. */
static int
make_slot(struct h2k_spool *sp, struct h2k_claim *c)
{
	char name[H2K_SPOOL_IDMAX + 16];
	char *text = h2k_json_print(c->rec);
	int e;

	if (!text)
		return h2k_seterr(H2K_EX_FAIL, "out of memory");
	c->slotsize = strlen(text) + 65536;
	free(text);
	snprintf(name, sizeof name, "tmp/%s.slot", c->id);
	c->slotfd = openat(sp->dfd, name, O_RDWR | O_CREAT | O_TRUNC |
	    O_CLOEXEC | O_NOFOLLOW, 0600);
	if (c->slotfd < 0)
		return h2k_seterr(H2K_EX_IO, "%s/%s: %s", sp->dir, name,
		    strerror(errno));
	/* posix_fallocate writes zeros where fallocate(2) is missing. */
	if ((e = posix_fallocate(c->slotfd, 0, (off_t)c->slotsize)) != 0 ||
	    (fsync(c->slotfd) < 0 && (e = errno))) {
		close(c->slotfd);
		c->slotfd = -1;
		unlinkat(sp->dfd, name, 0);
		return h2k_seterr(H2K_EX_IO, "%s/%s: cannot reserve %zu bytes "
		    "for the final record: %s", sp->dir, name, c->slotsize,
		    strerror(e));
	}
	return 0;
}

int
h2k_spool_grow_slot(struct h2k_spool *sp, struct h2k_claim *c, size_t n)
{
	char *text;
	size_t want;
	int e;

	if (c->slotfd < 0)
		return 0;
	if (!(text = cJSON_PrintUnformatted(c->rec)))
		return h2k_seterr(H2K_EX_FAIL, "out of memory");
	want = strlen(text) + n + 65536;
	free(text);
	if (want <= c->slotsize)
		return 0;
	if ((e = posix_fallocate(c->slotfd, 0, (off_t)want)) != 0)
		return h2k_seterr(H2K_EX_IO, "%s/tmp/%s.slot: cannot reserve "
		    "%zu bytes for the final record: %s", sp->dir, c->id, want,
		    strerror(e));
	c->slotsize = want;
	return 0;
}

/* The final record into the slot, and the slot over cur/ID. */
static int
write_slot(struct h2k_spool *sp, struct h2k_claim *c)
{
	char name[H2K_SPOOL_IDMAX + 16], dst[H2K_SPOOL_IDMAX + 8];
	char *text = h2k_json_print(c->rec);
	size_t len;

	if (!text)
		return h2k_seterr(H2K_EX_FAIL, "out of memory");
	len = strlen(text);
	snprintf(name, sizeof name, "tmp/%s.slot", c->id);
	if (len + 1 > c->slotsize) {
		free(text);
		return h2k_seterr(H2K_EX_IO, "%s/%s: final record larger than "
		    "the %zu bytes reserved", sp->dir, name, c->slotsize);
	}
	text[len] = '\n'; /* the NUL goes, the length is known */
	for (size_t off = 0; off < len + 1;) {
		ssize_t w = pwrite(c->slotfd, text + off, len + 1 - off,
		    (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			int e = errno;
			free(text);
			return h2k_seterr(H2K_EX_IO, "%s/%s: write: %s",
			    sp->dir, name, strerror(e));
		}
		off += (size_t)w;
	}
	free(text);
	snprintf(dst, sizeof dst, "cur/%s", c->id);
	if (ftruncate(c->slotfd, (off_t)len + 1) < 0 || fsync(c->slotfd) < 0 ||
	    renameat(sp->dfd, name, sp->dfd, dst) < 0)
		return h2k_seterr(H2K_EX_IO, "%s/%s: %s", sp->dir, name,
		    strerror(errno));
	close(c->slotfd);
	c->slotfd = -1;
	return fsync_dir(sp, "cur");
}

static void
drop_slot(struct h2k_spool *sp, struct h2k_claim *c)
{
	char name[H2K_SPOOL_IDMAX + 16];

	if (c->slotfd < 0)
		return;
	snprintf(name, sizeof name, "tmp/%s.slot", c->id);
	unlinkat(sp->dfd, name, 0);
	close(c->slotfd);
	c->slotfd = -1;
}

static int claim_id(struct h2k_spool *sp, const char *id,
    struct h2k_claim *c, int slot);

int
h2k_spool_claim_id(struct h2k_spool *sp, const char *id, struct h2k_claim *c)
{
	return claim_id(sp, id, c, 1);
}

int
h2k_spool_claim_id_noslot(struct h2k_spool *sp, const char *id,
    struct h2k_claim *c)
{
	return claim_id(sp, id, c, 0);
}

/*
 * The start of a claim or an adoption: c emptied, then id's lock taken.
 * Its descriptor; -2 when id is no job id or another runner holds it
 * (nothing to do), -1 on error.
 */
static int
claim_lock(struct h2k_spool *sp, const char *id, struct h2k_claim *c)
{
	memset(c, 0, sizeof *c);
	c->lockfd = c->slotfd = -1;
	if (!h2k_spool_idok(id))
		return -2;
	return lock_job(sp, id);
}

static int
claim_id(struct h2k_spool *sp, const char *id, struct h2k_claim *c, int slot)
{
	char from[H2K_SPOOL_IDMAX + 8], to[H2K_SPOOL_IDMAX + 8], now[32];
	cJSON *rec;
	int fd;

	if ((fd = claim_lock(sp, id, c)) == -2)
		return 0;
	if (fd < 0)
		return -1;
	snprintf(from, sizeof from, "new/%s", id);
	snprintf(to, sizeof to, "cur/%s", id);
	if (renameat(sp->dfd, from, sp->dfd, to) < 0) {
		int e = errno;
		/* ENOENT: claimed and finished by another runner meanwhile. */
		if (e == ENOENT) {
			close(fd);
			return 0;
		}
		unlock_job(sp, id, fd);
		return h2k_seterr(H2K_EX_IO, "claim %s/%s: %s", sp->dir, from,
		    strerror(e));
	}
	if (!(rec = h2k_spool_read(sp, "cur", id))) {
		char why[600];
		snprintf(why, sizeof why, "%s", h2k_errmsg());
		h2k_spool_moveaside(sp, "cur", id, why);
		unlock_job(sp, id, fd);
		return 0;
	}
	const char *st = cJSON_GetStringValue(
	    cJSON_GetObjectItemCaseSensitive(rec, "status"));
	if (strcmp(st, "pending")) {
		/* Only pending jobs belong in new/; do not run it again. */
		char why[128];
		snprintf(why, sizeof why, "status '%s' in new/", st);
		cJSON_Delete(rec);
		h2k_spool_moveaside(sp, "cur", id, why);
		unlock_job(sp, id, fd);
		return 0;
	}
	snprintf(c->id, sizeof c->id, "%s", id);
	c->lockfd = fd;
	c->rec = rec;
	double att = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(rec,
	    "attempts"));
	if (h2k_job_set_str(rec, "status", "running") < 0 ||
	    h2k_job_set_str(rec, "started_at", h2k_now_rfc3339(now)) < 0 ||
	    h2k_job_set_num(rec, "attempts", att + 1) < 0 ||
	    h2k_spool_update(sp, c, 1) < 0) {
		/* Leave it claimed but unlocked: recovery requeues it. */
		h2k_spool_release(c);
		return -1;
	}
	if (slot && make_slot(sp, c) < 0) {
		/* Nothing started: back to new/, the attempt not counted. */
		char why[600];
		snprintf(why, sizeof why, "%s", h2k_errmsg());
		h2k_spool_requeue(sp, c);
		h2k_spool_release(c);
		return h2k_seterr(H2K_EX_IO, "job %s not started: %s", id, why);
	}
	return 1;
}

int
h2k_spool_claim(struct h2k_spool *sp, struct h2k_claim *c)
{
	struct names l;
	int r = 0;

	memset(c, 0, sizeof *c);
	c->lockfd = c->slotfd = -1;
	if (list_dir(sp, "new", &l) < 0)
		return -1;
	for (size_t i = 0; i < l.n && r == 0; i++) {
		if (aside_if_not_id(sp, "new", l.v[i]))
			continue;
		r = h2k_spool_claim_id(sp, l.v[i], c);
	}
	names_free(&l);
	return r;
}

int
h2k_spool_update(struct h2k_spool *sp, struct h2k_claim *c, int durable)
{
	return write_record(sp, "cur", c->id, c->rec, durable);
}

int
h2k_spool_finish(struct h2k_spool *sp, struct h2k_claim *c)
{
	char from[H2K_SPOOL_IDMAX + 8], to[H2K_SPOOL_IDMAX + 8];
	char why[600] = "";

	if (h2k_spool_update(sp, c, 1) < 0) {
		snprintf(why, sizeof why, "%s", h2k_errmsg());
		if (c->slotfd >= 0 && write_slot(sp, c) == 0)
			why[0] = '\0';
	}
	snprintf(from, sizeof from, "cur/%s", c->id);
	snprintf(to, sizeof to, "done/%s", c->id);
	if (renameat(sp->dfd, from, sp->dfd, to) < 0)
		return h2k_seterr(H2K_EX_IO, "rename %s/%s to done/: %s",
		    sp->dir, from, strerror(errno));
	drop_slot(sp, c);
	if (fsync_dir(sp, "done") < 0 || fsync_dir(sp, "cur") < 0)
		return -1;
	h2k_spool_unmark_cancel(sp, c->id);
	unlock_job(sp, c->id, c->lockfd);
	c->lockfd = -1;
	if (why[0])
		return h2k_seterr(H2K_EX_IO, "job %s: final status '%s' not "
		    "recorded (%s); moved to done/ as it was, not to run again",
		    c->id, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
		    c->rec, "status")), why);
	return 0;
}

int
h2k_spool_requeue(struct h2k_spool *sp, struct h2k_claim *c)
{
	char from[H2K_SPOOL_IDMAX + 8], to[H2K_SPOOL_IDMAX + 8];
	double att = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(
	    c->rec, "attempts"));

	if (h2k_job_set_str(c->rec, "status", "pending") < 0 ||
	    h2k_job_set_num(c->rec, "attempts", att > 0 ? att - 1 : 0) < 0)
		return -1;
	/*
	 * A full spool must not turn a graceful stop into a "runner died"
	 * that counts the attempt: the slot holds the pending record too.
	 */
	if (h2k_spool_update(sp, c, 1) < 0 &&
	    (c->slotfd < 0 || write_slot(sp, c) < 0))
		return -1;
	snprintf(from, sizeof from, "cur/%s", c->id);
	snprintf(to, sizeof to, "new/%s", c->id);
	if (renameat(sp->dfd, from, sp->dfd, to) < 0)
		return h2k_seterr(H2K_EX_IO, "rename %s/%s to new/: %s",
		    sp->dir, from, strerror(errno));
	drop_slot(sp, c);
	if (fsync_dir(sp, "new") < 0)
		return -1;
	unlock_job(sp, c->id, c->lockfd);
	c->lockfd = -1;
	return 0;
}

int
h2k_spool_adopt(struct h2k_spool *sp, const char *id, struct h2k_claim *c)
{
	int fd;

	if ((fd = claim_lock(sp, id, c)) == -2)
		return 0;
	if (fd < 0)
		return -1;
	if (!(c->rec = h2k_spool_read(sp, "cur", id))) {
		if (h2k_errcode() != H2K_EX_NOTFOUND) {
			char why[600];
			snprintf(why, sizeof why, "%s", h2k_errmsg());
			h2k_spool_moveaside(sp, "cur", id, why);
		}
		unlock_job(sp, id, fd);
		return 0;
	}
	snprintf(c->id, sizeof c->id, "%s", id);
	c->lockfd = fd;
	return 1;
}

/* Append a line to the job's log (best effort: the record says it too). */
static void
joblog(struct h2k_spool *sp, const char *id, const char *msg)
{
	char path[H2K_SPOOL_IDMAX + 16], now[32];
	int fd;

	snprintf(path, sizeof path, "%s.log", id);
	fd = h2k_spool_open_log(sp, path, O_WRONLY | O_CREAT | O_APPEND);
	if (fd < 0)
		return;
	dprintf(fd, "%s h2k-job: %s\n", h2k_now_rfc3339(now), msg);
	close(fd);
}

int
h2k_spool_recover(struct h2k_spool *sp)
{
	struct names l;
	int count = 0;

	/* a batch whose writer died while moving it into new/ */
	if (h2k_spool_roll_batches(sp) < 0)
		h2k_warn("%s", h2k_errmsg());
	if (list_dir(sp, "cur", &l) < 0)
		return -1;
	for (size_t i = 0; i < l.n; i++) {
		struct h2k_claim c;
		cJSON *fin = NULL;
		char msg[512];
		int r;

		if (aside_if_not_id(sp, "cur", l.v[i]))
			continue;
		if ((r = h2k_spool_adopt(sp, l.v[i], &c)) <= 0) {
			if (r < 0)
				h2k_warn("%s", h2k_errmsg());
			continue;
		}
		const char *st = cJSON_GetStringValue(
		    cJSON_GetObjectItemCaseSensitive(c.rec, "status"));
		int att = (int)cJSON_GetNumberValue(
		    cJSON_GetObjectItemCaseSensitive(c.rec, "attempts"));
		if (h2k_job_status_final(st)) {
			/* Died between writing the result and moving it. */
			r = h2k_spool_finish(sp, &c);
		} else if (h2k_spool_cancel_marked(sp, c.id)) {
			snprintf(msg, sizeof msg, "cancelled while its runner "
			    "was gone (attempt %d)", att);
			joblog(sp, c.id, msg);
			r = h2k_job_set_status(c.rec, "cancelled");
			if (r == 0)
				r = h2k_spool_finish(sp, &c);
			count++;
		} else if (att >= sp->max_attempts &&
		    !(fin = h2k_spool_read_final(sp, c.id))) {
			snprintf(msg, sizeof msg, "runner died during attempt "
			    "%d of %d; giving up (see log/%s.log)", att,
			    sp->max_attempts, c.id);
			joblog(sp, c.id, msg);
			h2k_warn("job %s: %s", c.id, msg);
			r = h2k_job_set_status(c.rec, "failed");
			if (r == 0)
				r = h2k_job_set_str(c.rec, "error", msg);
			cJSON *pr = cJSON_GetObjectItemCaseSensitive(c.rec,
			    "progress");
			if (r == 0 && cJSON_IsObject(pr))
				r = h2k_job_set_str(pr, "phase", "failed");
			if (r == 0)
				r = h2k_spool_finish(sp, &c);
			if (r == 0)
				sp->recover_failed++;
			count++;
		} else {
			char from[H2K_SPOOL_IDMAX + 8], to[H2K_SPOOL_IDMAX + 8];

			snprintf(msg, sizeof msg, "runner died during attempt "
			    "%d; requeued%s", att, fin ? " (log/ID.final "
			    "holds the completed export: it is recorded, not "
			    "run again)" : "");
			joblog(sp, c.id, msg);
			h2k_info("job %s: %s", c.id, msg);
			r = h2k_job_set_str(c.rec, "status", "pending");
			if (r == 0)
				r = h2k_spool_update(sp, &c, 1);
			snprintf(from, sizeof from, "cur/%s", c.id);
			snprintf(to, sizeof to, "new/%s", c.id);
			if (r == 0 && renameat(sp->dfd, from, sp->dfd, to) < 0)
				r = h2k_seterr(H2K_EX_IO, "requeue %s: %s",
				    c.id, strerror(errno));
			if (r == 0)
				r = fsync_dir(sp, "new");
			if (r == 0) {
				unlock_job(sp, c.id, c.lockfd);
				c.lockfd = -1;
			}
			count++;
		}
		if (r < 0)
			h2k_warn("%s", h2k_errmsg());
		cJSON_Delete(fin);
		h2k_spool_release(&c);
	}
	names_free(&l);

	/* Debris: tmp/ files of writers that died, lock files of gone jobs. */
	if (list_dir(sp, "tmp", &l) == 0) {
		time_t now = time(NULL);
		for (size_t i = 0; i < l.n; i++) {
			char p[NAME_MAX + 8];
			struct stat st;
			size_t n = strlen(l.v[i]);
			snprintf(p, sizeof p, "tmp/%s", l.v[i]);
			/* A slot lives as long as its job is claimed. */
			if (n > 5 && !strcmp(l.v[i] + n - 5, ".slot")) {
				char id[H2K_SPOOL_IDMAX];
				snprintf(id, sizeof id, "%.*s", (int)(n - 5),
				    l.v[i]);
				if (!present(sp, "cur", id))
					unlinkat(sp->dfd, p, 0);
				continue;
			}
			if (fstatat(sp->dfd, p, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    now - st.st_mtime > 24 * 3600)
				unlinkat(sp->dfd, p, 0);
		}
		names_free(&l);
	}
	if (list_dir(sp, "lock", &l) == 0) {
		for (size_t i = 0; i < l.n; i++) {
			char p[NAME_MAX + 8];
			int fd;
			snprintf(p, sizeof p, "cur/%s", l.v[i]);
			if (!h2k_spool_idok(l.v[i]) ||
			    faccessat(sp->dfd, p, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
				continue;
			snprintf(p, sizeof p, "new/%s", l.v[i]);
			if (faccessat(sp->dfd, p, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
				continue;
			if ((fd = lock_job(sp, l.v[i])) >= 0)
				unlock_job(sp, l.v[i], fd);
		}
		names_free(&l);
	}
	return count;
}

/* --- lookup ----------------------------------------------------------------- */

cJSON *
h2k_spool_find(struct h2k_spool *sp, const char *id, const char **sub,
    char idout[H2K_SPOOL_IDMAX])
{
	static const char *const subs[] = {"new", "cur", "done"};
	char found[H2K_SPOOL_IDMAX] = "";
	int matches = 0;

	if (!h2k_spool_idok(id)) {
		h2k_seterr(H2K_EX_USAGE, "'%.64s' is not a job id", id);
		return NULL;
	}
	/*
	 * A job moves new -> cur -> done while we look; try the exact name
	 * in that order twice before falling back to a prefix search.
	 */
	for (int round = 0; round < 2; round++)
		for (size_t i = 0; i < 3; i++) {
			cJSON *r = h2k_spool_read(sp, subs[i], id);
			if (r) {
				*sub = subs[i];
				snprintf(idout, H2K_SPOOL_IDMAX, "%s", id);
				return r;
			}
		}
	for (size_t i = 0; i < 3; i++) {
		struct names l;
		if (list_dir(sp, subs[i], &l) < 0)
			return NULL;
		for (size_t k = 0; k < l.n; k++)
			if (!strncmp(l.v[k], id, strlen(id)) &&
			    strcmp(l.v[k], found)) {
				if (matches++ == 0)
					snprintf(found, sizeof found, "%s",
					    l.v[k]);
			}
		names_free(&l);
	}
	if (matches == 1) {
		for (int round = 0; round < 2; round++)
			for (size_t i = 0; i < 3; i++) {
				cJSON *r = h2k_spool_read(sp, subs[i], found);
				if (r) {
					*sub = subs[i];
					snprintf(idout, H2K_SPOOL_IDMAX, "%s",
					    found);
					return r;
				}
			}
	}
	if (matches > 1)
		h2k_seterr(H2K_EX_USAGE, "job id prefix '%.64s' is ambiguous "
		    "(%d jobs)", id, matches);
	else
		h2k_seterr(H2K_EX_NOTFOUND, "no job %.64s in %s", id, sp->dir);
	return NULL;
}

int
h2k_spool_each(struct h2k_spool *sp, int done, h2k_spool_fn fn, void *arg)
{
	static const char *const subs[] = {"new", "cur", "done"};

	for (size_t i = 0; i < (done ? 3u : 2u); i++) {
		struct names l;
		if (list_dir(sp, subs[i], &l) < 0)
			return -1;
		for (size_t k = 0; k < l.n; k++) {
			cJSON *r = h2k_spool_read(sp, subs[i], l.v[k]);
			if (!r)
				continue;
			int rc = fn(arg, subs[i], r);
			cJSON_Delete(r);
			if (rc < 0) {
				names_free(&l);
				return -1;
			}
		}
		names_free(&l);
	}
	return 0;
}

int
h2k_spool_lost(struct h2k_spool *sp, const char *id, char *name, size_t nn,
    char *why, size_t wn)
{
	size_t idlen = strlen(id);
	struct names l;
	int found = 0;

	if (!h2k_spool_idok(id) || in_queue(sp, id))
		return 0;
	if (list_dir(sp, "bad", &l) < 0)
		return -1;
	/* bad/ID.XXXXXXXX (8 hex digits): the last one listed will do. */
	for (size_t i = 0; i < l.n; i++) {
		const char *v = l.v[i];
		if (strncmp(v, id, idlen) || v[idlen] != '.' ||
		    strlen(v + idlen + 1) != 8 ||
		    strspn(v + idlen + 1, "0123456789abcdef") != 8)
			continue;
		snprintf(name, nn, "%s", v);
		found = 1;
	}
	names_free(&l);
	/*
	 * A job moves new -> cur -> new (requeue) -> ...; seen in none of
	 * them twice, with an earlier bad/ copy between, it is really gone.
	 */
	if (!found || in_queue(sp, id))
		return 0;
	snprintf(why, wn, "no reason recorded");
	char rp[NAME_MAX + 16];
	snprintf(rp, sizeof rp, "bad/%s.reason", name);
	int fd = openat(sp->dfd, rp, O_RDONLY | O_CLOEXEC | O_NOFOLLOW |
	    O_NONBLOCK);
	if (fd >= 0) {
		char buf[1024];
		ssize_t r = read(fd, buf, sizeof buf - 1);
		close(fd);
		if (r > 0) {
			buf[r] = '\0';
			buf[strcspn(buf, "\n")] = '\0';
			/* "TIME: PATH: why" -> why */
			char *w = strstr(buf, ": ");
			w = w ? strstr(w + 2, ": ") : NULL;
			snprintf(why, wn, "%s", w ? w + 2 : buf);
		}
	}
	return 1;
}

const char *
h2k_spool_where(struct h2k_spool *sp, const char *id)
{
	static const char *const subs[] = {"new", "cur", "done"};

	if (!h2k_spool_idok(id))
		return NULL;
	for (size_t i = 0; i < 3; i++)
		if (present(sp, subs[i], id))
			return subs[i];
	return NULL;
}

int
h2k_spool_open_log(struct h2k_spool *sp, const char *name, int flags)
{
	char path[NAME_MAX + 8], why[160];

	snprintf(path, sizeof path, "log/%s", name);
	for (int tries = 0; tries < 3; tries++) {
		struct stat st;
		/* O_NONBLOCK: a FIFO must not stop the runner in open(2). */
		int fd = openat(sp->dfd, path, flags | O_NOFOLLOW | O_CLOEXEC |
		    O_NONBLOCK, 0600);

		if (fd < 0 && errno != ELOOP && errno != ENXIO)
			return h2k_seterr(errno == ENOENT ? H2K_EX_NOTFOUND :
			    H2K_EX_IO, "%s/%s: %s", sp->dir, path,
			    strerror(errno));
		if (fd < 0)
			snprintf(why, sizeof why, "%s", errno == ELOOP ?
			    "a symbolic link" : "not a regular file");
		else if (fstat(fd, &st) < 0) {
			int e = errno;
			close(fd);
			return h2k_seterr(H2K_EX_IO, "%s/%s: %s", sp->dir, path,
			    strerror(e));
		} else if (!S_ISREG(st.st_mode))
			snprintf(why, sizeof why, "not a regular file");
		else if (st.st_uid != geteuid())
			snprintf(why, sizeof why, "owned by uid %u, not by the "
			    "runner's user (uid %u)", (unsigned)st.st_uid,
			    (unsigned)geteuid());
		else if (st.st_nlink != 1)
			snprintf(why, sizeof why, "has %lu hard links (a log "
			    "has one)", (unsigned long)st.st_nlink);
		else {
			int fl = fcntl(fd, F_GETFL);
			if (fl >= 0)
				fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
			return fd;
		}
		if (fd >= 0)
			close(fd);
		/* Not the runner's own: never trusted, never written to. */
		if (h2k_spool_moveaside(sp, "log", name, why) < 0)
			return -1;
		if (!(flags & O_CREAT))
			return h2k_seterr(H2K_EX_NOTFOUND, "%s/%s: %s; moved "
			    "to bad/", sp->dir, path, why);
	}
	return h2k_seterr(H2K_EX_IO, "%s/%s: keeps being replaced", sp->dir,
	    path);
}

cJSON *
h2k_spool_read_final(struct h2k_spool *sp, const char *id)
{
	char name[H2K_SPOOL_IDMAX + 16];
	struct h2k_buf b = {.max = 16u << 20};
	cJSON *found = NULL;
	int fd;

	snprintf(name, sizeof name, "%s.final", id);
	if ((fd = h2k_spool_open_log(sp, name, O_RDONLY)) < 0)
		return NULL;
	/* what could be read is searched: a cut log still names its lines */
	(void)h2k_buf_readfd(&b, fd);
	close(fd);
	for (char *line = b.data, *nl; line && *line; line = nl ? nl + 1 : NULL) {
		if ((nl = strchr(line, '\n')))
			*nl = '\0';
		else
			break;  /* no newline: not a whole line */
		cJSON *o = cJSON_Parse(line);
		if (o && cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o,
		    "ovf_path"))) {
			cJSON_Delete(found);
			found = o;
		} else
			cJSON_Delete(o);
	}
	h2k_buf_free(&b);
	return found;
}

int
h2k_spool_count_bad(struct h2k_spool *sp)
{
	struct names l;
	int n = 0;

	if (list_dir(sp, "bad", &l) < 0)
		return -1;
	for (size_t i = 0; i < l.n; i++)
		if (!is_reason(l.v[i]) && strncmp(l.v[i], "tmp", 3))
			n++;
	names_free(&l);
	return n;
}

/* --- runners and cancel markers ------------------------------------------- */

int
h2k_spool_register(struct h2k_spool *sp, int workers)
{
	char name[32], now[32], *text;
	int fd;

	snprintf(name, sizeof name, "run/%d", (int)getpid());
	/*
	 * Not O_TRUNC: the file may be a live runner's (the same pid in
	 * another PID namespace); only its lock holder may rewrite it.
	 */
	fd = openat(sp->dfd, name, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
	    0600);
	if (fd < 0)
		return h2k_seterr(H2K_EX_IO, "%s/%s: %s", sp->dir, name,
		    strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		close(fd);
		if (e == EWOULDBLOCK)
			return h2k_seterr(H2K_EX_FAIL, "%s/%s: held by another "
			    "runner with pid %d (in another PID namespace)",
			    sp->dir, name, (int)getpid());
		return h2k_seterr(H2K_EX_IO, "%s/%s: flock: %s", sp->dir, name,
		    strerror(e));
	}
	if (ftruncate(fd, 0) < 0) {
		close(fd);
		return h2k_seterr(H2K_EX_IO, "%s/%s: %s", sp->dir, name,
		    strerror(errno));
	}
	if (!(text = h2k_asprintf("{\"pid\":%d,\"started_at\":\"%s\","
	    "\"started_epoch\":%lld,\"workers\":%d}\n", (int)getpid(),
	    h2k_now_rfc3339(now), (long long)time(NULL), workers))) {
		close(fd);
		return -1;
	}
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
		free(text);
		close(fd);
		return h2k_seterr(H2K_EX_IO, "%s/%s: write failed", sp->dir,
		    name);
	}
	free(text);
	return fd;
}

int
h2k_spool_runners(struct h2k_spool *sp, h2k_spool_fn fn, void *arg)
{
	struct names l;

	if (list_dir(sp, "run", &l) < 0)
		return -1;
	for (size_t i = 0; i < l.n; i++) {
		char p[NAME_MAX + 8], buf[512];
		ssize_t n;
		int fd;

		/* run/ also holds session.json and the like: pids only. */
		if (strspn(l.v[i], "0123456789") != strlen(l.v[i]))
			continue;
		snprintf(p, sizeof p, "run/%s", l.v[i]);
		/* O_NONBLOCK: a FIFO there must not hang status */
		fd = openat(sp->dfd, p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW |
		    O_NONBLOCK);
		if (fd < 0)
			continue;
		struct stat sb;
		if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
			close(fd);
			continue;
		}
		/* Readable lock free: the runner is gone; tidy up. */
		if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
			unlinkat(sp->dfd, p, 0);
			close(fd);
			continue;
		}
		n = read(fd, buf, sizeof buf - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		cJSON *r = cJSON_Parse(buf);
		if (!r)
			continue;
		int rc = fn(arg, "run", r);
		cJSON_Delete(r);
		if (rc < 0)
			break;
	}
	names_free(&l);
	return 0;
}

int
h2k_spool_mark_cancel(struct h2k_spool *sp, const char *id)
{
	char now[32];

	h2k_now_rfc3339(now);
	return write_file(sp, "cancel", id, now, strlen(now), 1);
}

int
h2k_spool_cancel_marked(struct h2k_spool *sp, const char *id)
{
	char p[H2K_SPOOL_IDMAX + 8];

	snprintf(p, sizeof p, "cancel/%s", id);
	return faccessat(sp->dfd, p, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

void
h2k_spool_unmark_cancel(struct h2k_spool *sp, const char *id)
{
	char p[H2K_SPOOL_IDMAX + 8];

	snprintf(p, sizeof p, "cancel/%s", id);
	unlinkat(sp->dfd, p, 0);
}
