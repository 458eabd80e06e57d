/*
 * diskout.h - the disk images h2k-fetch --format writes: raw and qcow2.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * A sink for the grains of lib/vmdkstream.c: 64 KiB pieces of the disk in
 * increasing offset order.  All-zero pieces are never written: the raw
 * file keeps a hole there, the qcow2 image leaves the cluster
 * unallocated.  h2k_diskout_finish writes what only the end can tell (the
 * raw file's size; the qcow2 tables and, last, its header): the caller
 * then fsyncs and renames.
 */
#ifndef H2K_DISKOUT_H
#define H2K_DISKOUT_H

#include <stddef.h>
#include <sys/uio.h>

enum h2k_disk_format { H2K_FMT_VMDK, H2K_FMT_RAW, H2K_FMT_QCOW2 };

struct h2k_diskout;

/* fd: the open, empty .part; name: for messages.  NULL on ENOMEM. */
struct h2k_diskout *h2k_diskout_new(int fd, enum h2k_disk_format fmt, const char *name);
void h2k_diskout_free(struct h2k_diskout *o);
/* The file was truncated to 0: start again. */
void h2k_diskout_reset(struct h2k_diskout *o);
/* The sink (vmdkstream.h): arg is the h2k_diskout.  -1 with H2K_EX_IO. */
int h2k_diskout_put(void *arg, long long off, const unsigned char *buf, size_t len);
/* The disk is capacity bytes long: complete the image.  -1 with H2K_EX_IO. */
int h2k_diskout_finish(struct h2k_diskout *o, long long capacity);
/* The capacity is known (a stream's header): a raw file is sized to it
 * now, once, so that a file system that cannot hold a file that large
 * fails the disk before the download rather than after.  -1 with
 * H2K_EX_IO. */
int h2k_diskout_size(struct h2k_diskout *o, long long capacity);
/* A raw image: write its aligned grains through a second descriptor of
 * the .part opened with O_DIRECT (part, relative to dirfd; checked to be
 * the same file), unless H2K_FETCH_NO_DIRECT is set.  1 when on, 0 when
 * not (not raw, refused, or asked not to): never an error. */
int h2k_diskout_direct(struct h2k_diskout *o, int dirfd, const char *part);
/*
 * The sink's work without the direct write, for a caller that makes it
 * later from another thread (fetch-hash.c): 1, the piece (not all zeros,
 * aligned, after a first direct write went through) is counted and is the
 * caller's to write with h2k_diskout_writev from memory aligned to
 * H2K_DISKOUT_MEMALIGN; 0, done here (written or a hole); -1 with H2K_EX_IO.
 */
int h2k_diskout_put_later(struct h2k_diskout *o, long long off, const unsigned char *buf,
    size_t len);
#define H2K_DISKOUT_MEMALIGN 4096
/* Write n pieces, contiguous from off, through the direct descriptor (any
 * short write's rest buffered).  Safe beside the sink in another thread:
 * they write different bytes.  0 or an errno; no message set. */
int h2k_diskout_writev(struct h2k_diskout *o, struct iovec *iov, int n, long long off);
/* Direct writes are on: the page cache does not hold the data written. */
int h2k_diskout_is_direct(const struct h2k_diskout *o);
/* The end of the last write in the file: writes only ever move it up. */
long long h2k_diskout_end(const struct h2k_diskout *o);
/* Bytes of disk data written (the zero pieces left out). */
long long h2k_diskout_data(const struct h2k_diskout *o);
/* "raw", "qcow2", "vmdk" */
const char *h2k_disk_format_name(enum h2k_disk_format f);

#endif
