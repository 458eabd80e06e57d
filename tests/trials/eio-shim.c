/*
 * eio-shim.c - LD_PRELOAD library that makes writing one file fail, to
 * prove h2k notices ENOSPC and EIO wherever the kernel reports them.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 *   H2K_EIO_MATCH  substring of the path of the file to break ("disk-1.vmdk.part"),
 *                  or with a trailing '$' its end ("disk-1.vmdk.part$")
 *   H2K_EIO_OP     write | fsync | fsynconly | close: where the error is
 *                  reported (fsync covers fdatasync too, fsynconly does not)
 *   H2K_EIO_ERRNO  EIO | ENOSPC | EDQUOT (default EIO)
 *   H2K_EIO_AFTER  with write: bytes that succeed before the failing write
 *   H2K_EIO_LOG    file that gets one line per rename ("rename A B") and
 *                  per injected failure ("inject OP PATH")
 *
 * A file opened (open, openat, creat, mkstemp, mkostemp) with a matching path is watched.
 * write: once AFTER bytes went to it, every later write/pwrite fails, as
 * on a full disk.  fsync: fsync and fdatasync fail (the kernel reports a
 * writeback error there).  close: close releases the descriptor, as Linux
 * always does, and returns the error (NFS and some FUSE file systems report
 * write-back failures only there).  Renames are only logged.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAXFD 4096

static int watched[MAXFD];
static long long written[MAXFD];
static char paths[MAXFD][128];

static const char *
env(const char *n)
{
	const char *v = getenv(n);
	return v && *v ? v : NULL;
}

static void
logline(const char *what, const char *a, const char *b)
{
	const char *f = env("H2K_EIO_LOG");
	char line[1024];
	int fd, n;

	if (!f)
		return;
	n = snprintf(line, sizeof line, "%s %s%s%s\n", what, a, b ? " " : "", b ? b : "");
	if ((fd = ((int (*)(const char *, int, ...))dlsym(RTLD_NEXT, "open"))(f,
	    O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600)) < 0)
		return;
	(void)!((ssize_t (*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write"))(fd, line, (size_t)n);
	((int (*)(int))dlsym(RTLD_NEXT, "close"))(fd);
}

static int
err_no(void)
{
	const char *e = env("H2K_EIO_ERRNO");

	if (e && !strcmp(e, "ENOSPC"))
		return ENOSPC;
	if (e && !strcmp(e, "EDQUOT"))
		return EDQUOT;
	return EIO;
}

static int
is_op(const char *op)
{
	const char *o = env("H2K_EIO_OP");
	return o && !strcmp(o, op);
}

static void
watch(int fd, const char *path)
{
	const char *m = env("H2K_EIO_MATCH");

	if (fd < 0 || fd >= MAXFD)
		return;
	size_t ml = m ? strlen(m) : 0, pl = path ? strlen(path) : 0;
	if (m && ml && m[ml - 1] == '$')  /* "NAME$": the path ends in NAME */
		watched[fd] = path && pl >= ml - 1 && !strncmp(path + pl - (ml - 1), m, ml - 1);
	else
		watched[fd] = m && path && strstr(path, m);
	written[fd] = 0;
	if (watched[fd])
		snprintf(paths[fd], sizeof paths[fd], "%s", path);
}

#define REAL(ret, name, ...) \
	static ret (*real_##name)(__VA_ARGS__); \
	if (!real_##name) real_##name = (ret (*)(__VA_ARGS__))dlsym(RTLD_NEXT, #name)

static int
mode_arg(int flags, va_list ap)
{
	return (flags & (O_CREAT | O_TMPFILE)) ? va_arg(ap, int) : 0;
}

int
open(const char *path, int flags, ...)
{
	va_list ap;
	REAL(int, open, const char *, int, ...);
	va_start(ap, flags);
	int mode = mode_arg(flags, ap);
	va_end(ap);
	int fd = real_open(path, flags, mode);
	watch(fd, path);
	return fd;
}

int
open64(const char *path, int flags, ...)
{
	va_list ap;
	REAL(int, open64, const char *, int, ...);
	va_start(ap, flags);
	int mode = mode_arg(flags, ap);
	va_end(ap);
	int fd = real_open64(path, flags, mode);
	watch(fd, path);
	return fd;
}

int
openat(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	REAL(int, openat, int, const char *, int, ...);
	va_start(ap, flags);
	int mode = mode_arg(flags, ap);
	va_end(ap);
	int fd = real_openat(dirfd, path, flags, mode);
	watch(fd, path);
	return fd;
}

int
openat64(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	REAL(int, openat64, int, const char *, int, ...);
	va_start(ap, flags);
	int mode = mode_arg(flags, ap);
	va_end(ap);
	int fd = real_openat64(dirfd, path, flags, mode);
	watch(fd, path);
	return fd;
}

int
creat(const char *path, mode_t mode)
{
	REAL(int, creat, const char *, mode_t);
	int fd = real_creat(path, mode);
	watch(fd, path);
	return fd;
}

/* glibc's mkstemp family opens with an internal call: wrap them too. */
int
mkostemp(char *tmpl, int flags)
{
	REAL(int, mkostemp, char *, int);
	int fd = real_mkostemp(tmpl, flags);
	watch(fd, tmpl);
	return fd;
}

int
mkstemp(char *tmpl)
{
	REAL(int, mkstemp, char *);
	int fd = real_mkstemp(tmpl);
	watch(fd, tmpl);
	return fd;
}

/* How many of n bytes may go to fd; -1 (errno set) when none may. */
static ssize_t
allow(int fd, size_t n)
{
	long long after;

	if (fd < 0 || fd >= MAXFD || !watched[fd] || !is_op("write"))
		return (ssize_t)n;
	after = env("H2K_EIO_AFTER") ? atoll(env("H2K_EIO_AFTER")) : 0;
	if (written[fd] >= after) {
		logline("inject write", paths[fd], NULL);
		errno = err_no();
		return -1;
	}
	if (written[fd] + (long long)n > after)
		n = (size_t)(after - written[fd]); /* a short write, then the error */
	return (ssize_t)n;
}

ssize_t
write(int fd, const void *p, size_t n)
{
	REAL(ssize_t, write, int, const void *, size_t);
	ssize_t k = allow(fd, n), r;
	if (k < 0)
		return -1;
	r = real_write(fd, p, (size_t)k);
	if (r > 0 && fd < MAXFD)
		written[fd] += r;
	return r;
}

ssize_t
pwrite(int fd, const void *p, size_t n, off_t off)
{
	REAL(ssize_t, pwrite, int, const void *, size_t, off_t);
	ssize_t k = allow(fd, n), r;
	if (k < 0)
		return -1;
	r = real_pwrite(fd, p, (size_t)k, off);
	if (r > 0 && fd < MAXFD)
		written[fd] += r;
	return r;
}

ssize_t
pwrite64(int fd, const void *p, size_t n, off_t off)
{
	return pwrite(fd, p, n, off);
}

ssize_t
writev(int fd, const struct iovec *iov, int cnt)
{
	REAL(ssize_t, writev, int, const struct iovec *, int);
	size_t total = 0;
	for (int i = 0; i < cnt; i++)
		total += iov[i].iov_len;
	if (fd >= 0 && fd < MAXFD && watched[fd] && is_op("write")) {
		/* Rare for h2k: break it whole rather than split vectors. */
		if (allow(fd, total) < (ssize_t)total) {
			errno = err_no();
			return -1;
		}
	}
	ssize_t r = real_writev(fd, iov, cnt);
	if (r > 0 && fd >= 0 && fd < MAXFD)
		written[fd] += r;
	return r;
}

int
fsync(int fd)
{
	REAL(int, fsync, int);
	if (fd >= 0 && fd < MAXFD && watched[fd] && (is_op("fsync") || is_op("fsynconly"))) {
		logline("inject fsync", paths[fd], NULL);
		errno = err_no();
		return -1;
	}
	return real_fsync(fd);
}

int
fdatasync(int fd)
{
	REAL(int, fdatasync, int);
	if (fd >= 0 && fd < MAXFD && watched[fd] && is_op("fsync")) {
		logline("inject fdatasync", paths[fd], NULL);
		errno = err_no();
		return -1;
	}
	return real_fdatasync(fd);
}

int
close(int fd)
{
	REAL(int, close, int);
	int w = fd >= 0 && fd < MAXFD && watched[fd];
	char path[sizeof paths[0]] = "";
	/*
	 * Forgotten before the real close: once it returns, another thread
	 * may open the watched file under this very number (h2k-fetch's
	 * workers do), and clearing the mark after would unwatch it.
	 */
	if (w)
		memcpy(path, paths[fd], sizeof path);
	if (fd >= 0 && fd < MAXFD)
		watched[fd] = 0;
	int r = real_close(fd);
	if (w && r == 0 && is_op("close")) {
		logline("inject close", path, NULL);
		errno = err_no();
		return -1;
	}
	return r;
}

int
rename(const char *a, const char *b)
{
	REAL(int, rename, const char *, const char *);
	logline("rename", a, b);
	return real_rename(a, b);
}

int
renameat(int fa, const char *a, int fb, const char *b)
{
	REAL(int, renameat, int, const char *, int, const char *);
	logline("rename", a, b);
	return real_renameat(fa, a, fb, b);
}

int
renameat2(int fa, const char *a, int fb, const char *b, unsigned flags)
{
	REAL(int, renameat2, int, const char *, int, const char *, unsigned);
	logline("rename", a, b);
	return real_renameat2(fa, a, fb, b, flags);
}
