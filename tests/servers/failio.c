/*
 * tests/servers/failio.c - LD_PRELOAD shim that makes I/O on files whose
 * name ends in ".part" fail with EIO, to test what h2k-fetch does when the
 * disk fails at write, fsync or close (a full tmpfs only fails writes).
 *   FAILIO=write:N   pwrite/pwritev/write fail once N bytes went to the file
 *   FAILIO=direct    pwrite on an O_DIRECT descriptor fails with EINVAL:
 *                    a file system that opens O_DIRECT, then refuses it
 *   FAILIO=fifo      an openat with O_DIRECT of a name ending in ".part"
 *                    finds a FIFO there (another user swapped it for the
 *                    file h2k-fetch opened first)
 *   FAILIO=read:N    pread fails for bytes past offset N (the read-back
 *                    that h2k-fetch's SHA-256 is computed from)
 *   FAILIO=fsync     fsync fails
 *   FAILIO=fdatasync:N  fdatasync fails once the file holds more than N
 *                    bytes (the checkpoints during the stream)
 *   FAILIO=close     close fails (the descriptor is closed all the same)
 *   FAILIO=flipova:N read() of a file whose name ends in ".ova" returns
 *                    byte N inverted (the file is untouched): what an OVA
 *                    corrupted on its way to the disk reads back as
 * SPDX-License-Identifier: LGPL-3.0-or-later
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static int
is_part(int fd)
{
	char p[64], t[4096];
	ssize_t n;

	snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
	n = readlink(p, t, sizeof t - 1);
	if (n < 5)
		return 0;
	t[n] = '\0';
	return strcmp(t + n - 5, ".part") == 0;
}

static int
is_ova(int fd)
{
	char p[64], t[4096];
	ssize_t n;

	snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
	n = readlink(p, t, sizeof t - 1);
	if (n < 4)
		return 0;
	t[n] = '\0';
	return strcmp(t + n - 4, ".ova") == 0;
}

static int
mode(const char *m)
{
	const char *e = getenv("FAILIO");
	return e && strncmp(e, m, strlen(m)) == 0;
}

/* The errno a positioned write of n bytes at off is to fail with, or 0. */
static int
write_fails(int fd, off_t off, size_t n)
{
	if (mode("write:") && is_part(fd) && off + (off_t)n > atoll(getenv("FAILIO") + 6))
		return EIO;
	if (mode("direct") && is_part(fd) && (fcntl(fd, F_GETFL) & O_DIRECT))
		return EINVAL;
	return 0;
}

ssize_t
pwrite(int fd, const void *buf, size_t n, off_t off)
{
	static ssize_t (*real)(int, const void *, size_t, off_t);

	if (!real)
		real = (ssize_t (*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, "pwrite");
	if ((errno = write_fails(fd, off, n)))
		return -1;
	return real(fd, buf, n, off);
}

ssize_t
pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	static ssize_t (*real)(int, const struct iovec *, int, off_t);
	size_t n = 0;

	if (!real)
		real = (ssize_t (*)(int, const struct iovec *, int, off_t))dlsym(RTLD_NEXT,
		    "pwritev");
	for (int i = 0; i < cnt; i++)
		n += iov[i].iov_len;
	if ((errno = write_fails(fd, off, n)))
		return -1;
	return real(fd, iov, cnt, off);
}

ssize_t
pwritev64(int fd, const struct iovec *iov, int cnt, off_t off)
{
	return pwritev(fd, iov, cnt, off);
}

int
openat(int dirfd, const char *name, int flags, ...)
{
	static int (*real)(int, const char *, int, ...);
	mode_t m = 0;
	size_t n = strlen(name);

	if (!real)
		real = (int (*)(int, const char *, int, ...))dlsym(RTLD_NEXT, "openat");
	if (flags & (O_CREAT | O_TMPFILE)) {
		va_list ap;
		va_start(ap, flags);
		m = va_arg(ap, mode_t);
		va_end(ap);
	}
	if (mode("fifo") && (flags & O_DIRECT) && n >= 5 && strcmp(name + n - 5, ".part") == 0 &&
	    unlinkat(dirfd, name, 0) == 0)
		(void)mkfifoat(dirfd, name, 0600);
	return real(dirfd, name, flags, m);
}

int
openat64(int dirfd, const char *name, int flags, ...)
{
	mode_t m = 0;

	if (flags & (O_CREAT | O_TMPFILE)) {
		va_list ap;
		va_start(ap, flags);
		m = va_arg(ap, mode_t);
		va_end(ap);
	}
	return openat(dirfd, name, flags, m);
}

ssize_t
pwrite64(int fd, const void *buf, size_t n, off_t off)
{
	return pwrite(fd, buf, n, off);
}

ssize_t
pread(int fd, void *buf, size_t n, off_t off)
{
	static ssize_t (*real)(int, void *, size_t, off_t);

	if (!real)
		real = (ssize_t (*)(int, void *, size_t, off_t))dlsym(RTLD_NEXT, "pread");
	if (mode("read:") && is_part(fd) && off + (off_t)n > atoll(getenv("FAILIO") + 5)) {
		errno = EIO;
		return -1;
	}
	return real(fd, buf, n, off);
}

ssize_t
pread64(int fd, void *buf, size_t n, off_t off)
{
	return pread(fd, buf, n, off);
}

int
fsync(int fd)
{
	static int (*real)(int);

	if (!real)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
	if (mode("fsync") && is_part(fd)) {
		errno = EIO;
		return -1;
	}
	return real(fd);
}

int
fdatasync(int fd)
{
	static int (*real)(int);

	if (!real)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
	struct stat st;
	if (mode("fdatasync:") && is_part(fd) && fstat(fd, &st) == 0 &&
	    st.st_size > atoll(getenv("FAILIO") + 10)) {
		errno = EIO;
		return -1;
	}
	return real(fd);
}

int
close(int fd)
{
	static int (*real)(int);
	int fail;

	if (!real)
		real = (int (*)(int))dlsym(RTLD_NEXT, "close");
	fail = mode("close") && is_part(fd);
	if (real(fd) < 0)
		return -1;
	if (fail) {
		errno = EIO;
		return -1;
	}
	return 0;
}

ssize_t
read(int fd, void *buf, size_t n)
{
	static ssize_t (*real)(int, void *, size_t);
	off_t at = -1;
	ssize_t r;

	if (!real)
		real = (ssize_t (*)(int, void *, size_t))dlsym(RTLD_NEXT, "read");
	if (mode("flipova:") && is_ova(fd))
		at = lseek(fd, 0, SEEK_CUR);
	r = real(fd, buf, n);
	if (at >= 0 && r > 0) {
		off_t want = atoll(getenv("FAILIO") + 8);
		if (want >= at && want < at + r)
			((unsigned char *)buf)[want - at] ^= 0xff;
	}
	return r;
}
