/*
 * fetch-hash.c - the hasher threads: read-back SHA-256, write-behind,
 * checkpoints.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * Hashing.  SHA-256 costs about as much CPU as TLS does, so it does not
 * run in the thread that reads the socket: each worker has a hasher thread
 * that follows the writes, reading the bytes back from the .part (from the
 * page cache, in REHASH_BUF pieces) and hashing them, on the other core.
 * The worker publishes how far it wrote (hz_target); the hasher only ever
 * touches bytes below it, and the worker parks the hasher (waits until it
 * is idle and detached) before it truncates, rehashes or closes the file,
 * or reads the digest: between park and attach the digest belongs to the
 * worker alone.  The digest so is that of the bytes in the file, read
 * back, and finish() waits for it to catch up before the rename.  Memory
 * stays flat: the hasher reads into the worker's one rehash buffer.  The
 * hasher also does the blocking disk work the stream must not wait for:
 * it starts writeback of each 8 MiB behind the writes (sync_file_range),
 * and makes the checkpoints, fdatasync of the bytes below hz_target, then
 * the meta file; a failure there fails the file at the next write.  (A
 * checkpoint in the socket's thread stalled the stream half a second per
 * 512 MiB on a disk that writes about as fast as the network delivers.)
 *
 * A raw image (--format raw) is not written in file order: its zero
 * grains stay holes.  But the decoder hands the grains on in increasing
 * offset order, so the file's bytes below the position it covered are
 * final: the worker queues each run of data it wrote (hz_ext, adjacent
 * grains merged) and moves hz_target to that position; the hasher reads
 * the runs back and hashes the gaps from a constant zero block (reading
 * a hole back costs the kernel a zero-fill per page, more than the hash),
 * and at the end the tail up to the capacity.  A full ring merges the new
 * run into the last one: the gap between is then read back, zeros all
 * the same.  Writes never go below hz_target, so the digest is that of
 * the final file with no read-back after the download; a cancel stops the
 * hasher (ECANCELED), since the zeros of a large disk take minutes.  The
 * qcow2 image keeps its read-back in fetch-worker.c (see hash_file).
 *
 * A raw image written with O_DIRECT (diskout.c) is not in the page cache:
 * reading it back would go to the disk.  The worker copies each grain
 * into a ring of HZ_SLOTS grain-sized slots (fetch_hz_grain; one run per
 * slot, blocking while the ring is full: the hasher's pace is the
 * stream's) and the hasher hashes the slots in order, the gaps from the
 * zero block as above.  A slot is the hasher's from its push until its
 * run is hashed and popped, under hz_mu; the worker fills only the slot
 * past the last queued one.  The hasher also writes the slots marked put
 * (all but the first direct write, which may find direct I/O refused):
 * a direct write returns only once the device has the data, and made by
 * the thread that reads the socket it set the stream's pace to the
 * disk's.  At a slot's first touch the hasher writes it and the queued
 * slots that continue it on disk in one pwritev (a few large direct
 * writes, not one per grain), then hashes it; a failed write fails the
 * file at the next feed ("write").  The worker waits for the ring to
 * empty (fetch_hz_written) before its fsync, and parks the hasher before
 * it truncates the .part, so no write lands after the cut.
 *
 * Shared with the worker, under worker.hz_mu: hz_fd, hz_target (written
 * so far), hz_hashed, the sync state (copied back to the xfer on park) and
 * hz_err.  The checkpoints write the .part.meta file (fetch-worker.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fetch-int.h"

/* --- durability: the hasher's, or inline without one --------------------- */

/* With `have` bytes written, a checkpoint is due: see "The resume rule"
 * in fetch-worker.c. */
int
fetch_ckpt_due(long long have, long long synced, double last_sync)
{
	return have > synced && (have - synced >= (long long)SYNC_BYTES ||
	    h2k_monotime() - last_sync >= SYNC_SECS);
}

/*
 * Start writeback of each finished WRITEBEHIND chunk below `upto` without
 * waiting for it: the kernel writes while the socket is read on, and the
 * checkpoints and the final fsync find little left to do.  The new mark.
 */
long long
fetch_write_behind(int fd, long long mark, long long upto)
{
	while (upto - mark >= (long long)WRITEBEHIND) {
		(void)sync_file_range(fd, mark, WRITEBEHIND, SYNC_FILE_RANGE_WRITE);
		mark += WRITEBEHIND;
	}
	return mark;
}

/* Make the first `upto` bytes of x's .part durable and say so in the meta
 * file: 0, or the errno of the fdatasync. */
int
fetch_make_durable(const struct xfer *x, long long upto)
{
	if (fdatasync(x->fd) < 0)
		return errno;
	(void)fetch_meta_write(x->f->vm->dirfd, x->f->meta, x->f->url, x->f->ident,
	    x->etag, x->total, upto);
	return 0;
}

/* --- the hasher ---------------------------------------------------------- */

static const unsigned char zeros[REHASH_BUF];

/* A checkpoint is due (hz_mu held). */
static int
hz_ckpt_due(const struct worker *w)
{
	/* a converted image is never resumed: nothing to make durable early */
	return !w->hz_raw && fetch_ckpt_due(w->hz_target, w->hz_synced, w->hz_last_sync);
}

static void *
hasher_main(void *arg)
{
	struct worker *w = arg;

	pthread_mutex_lock(&w->hz_mu);
	for (;;) {
		while (!w->hz_stop && (w->hz_fd < 0 || w->hz_err ||
		    (w->hz_hashed >= w->hz_target && !hz_ckpt_due(w)))) {
			w->hz_idle = 1;
			pthread_cond_broadcast(&w->hz_done);
			pthread_cond_wait(&w->hz_work, &w->hz_mu);
		}
		w->hz_idle = 0;
		if (w->hz_stop)
			break;
		int fd = w->hz_fd;
		if (hz_ckpt_due(w)) {
			/*
			 * Bytes below hz_target are written (in the page cache):
			 * after the fdatasync they are on disk, and the meta file
			 * may say so.  The socket keeps being read meanwhile.
			 */
			long long upto = w->hz_target;
			struct xfer *x = w->hz_x;
			w->hz_busy = 1;
			pthread_mutex_unlock(&w->hz_mu);
			int e = fetch_make_durable(x, upto);
			pthread_mutex_lock(&w->hz_mu);
			w->hz_busy = 0;
			if (e) {
				w->hz_err = e;
				w->hz_errop = "fsync";
			} else {
				w->hz_synced = upto;
				w->hz_last_sync = h2k_monotime();
			}
			continue;
		}
		long long from = w->hz_hashed, lim = w->hz_target;
		int zero = 0;
		const unsigned char *slot = NULL;
		if (w->hz_raw) {
			while (w->hz_en && w->hz_ext[w->hz_eh].end <= from) {
				w->hz_eh = (w->hz_eh + 1) % HZ_EXTS;
				w->hz_en--;
			}
			long long s = w->hz_en ? w->hz_ext[w->hz_eh].start : lim;
			if (s > from)
				zero = 1;
			lim = zero ? (s < lim ? s : lim) :
			    (w->hz_ext[w->hz_eh].end < lim ? w->hz_ext[w->hz_eh].end : lim);
			if (!zero && w->hz_ring)
				slot = w->hz_slot + (size_t)(w->hz_eh % HZ_SLOTS) * H2K_VMDK_GRAIN +
				    (from - s);
		}
		long long left = lim - from;
		size_t want = left < (long long)REHASH_BUF ? (size_t)left : REHASH_BUF;
		long long wb = w->hz_wb;
		struct xfer *hx = w->hz_x;
		/* slots still to be written: this one and the queued ones
		 * after it that continue it on disk, in one call */
		struct iovec iov[HZ_SLOTS];
		int niov = 0;
		long long put_at = 0;
		if (slot && w->hz_ext[w->hz_eh].put) {
			put_at = w->hz_ext[w->hz_eh].start;
			for (unsigned k = 0, i = w->hz_eh; k < w->hz_en; k++, i = (i + 1) % HZ_EXTS) {
				if (!w->hz_ext[i].put || (k && w->hz_ext[i].start !=
				    w->hz_ext[(i + HZ_EXTS - 1) % HZ_EXTS].end))
					break;
				w->hz_ext[i].put = 0;
				iov[niov].iov_base = w->hz_slot + (size_t)(i % HZ_SLOTS) * H2K_VMDK_GRAIN;
				iov[niov].iov_len = (size_t)(w->hz_ext[i].end - w->hz_ext[i].start);
				niov++;
			}
		}
		struct h2k_diskout *out = w->hz_out;
		w->hz_busy = 1;
		pthread_mutex_unlock(&w->hz_mu);
		ssize_t n;
		int we = niov ? h2k_diskout_writev(out, iov, niov, put_at) : 0;
		if (we) {
			pthread_mutex_lock(&w->hz_mu);
			w->hz_busy = 0;
			w->hz_err = we;
			w->hz_errop = "write";
			continue;
		}
		if (zero || slot)
			n = (ssize_t)want;
		else do
			n = pread(fd, w->rbuf, want, from);
		while (n < 0 && errno == EINTR);
		int e = n < 0 ? errno : EIO;
		if (n > 0)
			EVP_DigestUpdate(w->sha, zero ? zeros : slot ? slot : w->rbuf, (size_t)n);
		if (w->hz_raw && (fetch_cancelled || (hx && hx->f->vm->failed))) {
			n = -1;
			e = ECANCELED;
		}
		/* here, not in the socket's thread: a busy disk's queue can
		 * block even sync_file_range */
		if (n > 0 && !zero && !slot)
			wb = fetch_write_behind(fd, wb, from + n);
		pthread_mutex_lock(&w->hz_mu);
		w->hz_busy = 0;
		w->hz_wb = wb;
		if (n > 0) {
			w->hz_hashed += n;
			if (slot && w->hz_ext[w->hz_eh].end <= w->hz_hashed) {
				/* the slot is free: a worker may wait for it */
				w->hz_eh = (w->hz_eh + 1) % HZ_EXTS;
				w->hz_en--;
				pthread_cond_broadcast(&w->hz_done);
			}
		} else {
			w->hz_err = e;  /* the file is shorter than we wrote: say so */
			w->hz_errop = e == ECANCELED ? "SHA-256" : "read back for SHA-256";
		}
	}
	pthread_mutex_unlock(&w->hz_mu);
	return NULL;
}

/* Start w's hasher; without one (no thread to be had) hashing is inline. */
void
fetch_hz_start(struct worker *w)
{
	w->hz_fd = -1;
	if (pthread_mutex_init(&w->hz_mu, NULL) != 0)
		return;
	if (pthread_cond_init(&w->hz_work, NULL) != 0)
		goto mu;
	if (pthread_cond_init(&w->hz_done, NULL) != 0)
		goto work;
	if (pthread_create(&w->hz_thr, NULL, hasher_main, w) == 0) {
		w->hz_on = 1;
		return;
	}
	pthread_cond_destroy(&w->hz_done);
work:
	pthread_cond_destroy(&w->hz_work);
mu:
	pthread_mutex_destroy(&w->hz_mu);
}

void
fetch_hz_stop(struct worker *w)
{
	if (!w->hz_on)
		return;
	pthread_mutex_lock(&w->hz_mu);
	w->hz_stop = 1;
	pthread_cond_signal(&w->hz_work);
	pthread_mutex_unlock(&w->hz_mu);
	pthread_join(w->hz_thr, NULL);
	free(w->hz_slot);
	w->hz_slot = NULL;
	pthread_cond_destroy(&w->hz_work);
	pthread_cond_destroy(&w->hz_done);
	pthread_mutex_destroy(&w->hz_mu);
	w->hz_on = 0;
}

/* The hasher is idle (hz_mu held): hand its durability state back. */
static void
hz_detach(struct worker *w)
{
	struct xfer *x = w->hz_x;

	if (x) {
		x->synced = w->hz_synced;
		x->wb_mark = w->hz_wb;
		x->last_sync = w->hz_last_sync;
	}
	w->hz_x = NULL;
}

/* Detach the hasher and wait until it is idle: sha and rbuf are ours. */
void
fetch_hz_park(struct worker *w)
{
	if (!w->hz_on)
		return;
	pthread_mutex_lock(&w->hz_mu);
	w->hz_fd = -1;
	while (w->hz_busy)
		pthread_cond_wait(&w->hz_done, &w->hz_mu);
	hz_detach(w);
	pthread_mutex_unlock(&w->hz_mu);
}

/* sha holds the first x->have bytes of x->fd: hash the rest as it is
 * written, and make it durable.  Until the park, x's etag, total and
 * sync state are the hasher's. */
void
fetch_hz_attach(struct worker *w, struct xfer *x)
{
	if (!w->hz_on)
		return;
	pthread_mutex_lock(&w->hz_mu);
	w->hz_fd = x->fd;
	w->hz_x = x;
	w->hz_hashed = w->hz_target = x->have;
	w->hz_synced = x->synced;
	w->hz_wb = x->wb_mark;
	w->hz_last_sync = x->last_sync;
	w->hz_err = 0;
	w->hz_errop = NULL;
	w->hz_raw = x->dec && x->f->conv == H2K_FMT_RAW;
	w->hz_eh = w->hz_en = 0;
	void *ring = NULL;
	w->hz_ring = w->hz_raw && x->out && h2k_diskout_is_direct(x->out) &&
	    (w->hz_slot || (posix_memalign(&ring, H2K_DISKOUT_MEMALIGN,
	    (size_t)HZ_SLOTS * H2K_VMDK_GRAIN) == 0 && (w->hz_slot = ring)));
	w->hz_out = x->out;
	pthread_mutex_unlock(&w->hz_mu);
}

/* Bytes below `upto` are written.  Wake the hasher only for a batch of
 * them, or a checkpoint: a wakeup per TLS record would cost more than the
 * hash.  0, or the errno the hasher failed with (*op says at what). */
int
fetch_hz_feed(struct worker *w, long long upto, const char **op)
{
	int e;

	pthread_mutex_lock(&w->hz_mu);
	w->hz_target = upto;
	if (w->hz_idle && (upto - w->hz_hashed >= (long long)(4 * REHASH_BUF) ||
	    hz_ckpt_due(w)))
		pthread_cond_signal(&w->hz_work);
	e = w->hz_err;
	*op = w->hz_errop;
	pthread_mutex_unlock(&w->hz_mu);
	return e;
}

/* A raw image: the disk below `upto` is final, and if data >= 0 the
 * bytes from data to upto were written (the rest are holes).  As
 * fetch_hz_feed. */
int
fetch_hz_raw(struct worker *w, long long data, long long upto, const char **op)
{
	pthread_mutex_lock(&w->hz_mu);
	if (data >= 0) {
		unsigned last = (w->hz_eh + w->hz_en + HZ_EXTS - 1) % HZ_EXTS;
		if (w->hz_en && (w->hz_ext[last].end == data || w->hz_en == HZ_EXTS))
			w->hz_ext[last].end = upto;
		else {
			last = (w->hz_eh + w->hz_en) % HZ_EXTS;
			w->hz_ext[last].start = data;
			w->hz_ext[last].end = upto;
			w->hz_ext[last].put = 0;
			w->hz_en++;
		}
	}
	pthread_mutex_unlock(&w->hz_mu);
	return fetch_hz_feed(w, upto, op);
}

/* A raw image: the grain at off (len bytes of buf) was written and the
 * disk below off + len is final.  With the ring (a direct image), a copy
 * of the bytes goes to the hasher, waiting for a free slot; else as
 * fetch_hz_raw.  As fetch_hz_feed. */
int
fetch_hz_grain(struct worker *w, long long off, const unsigned char *buf, size_t len, int put,
    const char **op)
{
	unsigned i;
	int e;

	pthread_mutex_lock(&w->hz_mu);
	if (!w->hz_ring || len > H2K_VMDK_GRAIN) {
		pthread_mutex_unlock(&w->hz_mu);
		if (put) {
			*op = "write";
			return EINVAL; /* the caller asked for a ring it has not */
		}
		return fetch_hz_raw(w, off, off + (long long)len, op);
	}
	while (w->hz_en >= HZ_SLOTS && !w->hz_err && w->hz_fd >= 0) {
		pthread_cond_signal(&w->hz_work);
		pthread_cond_wait(&w->hz_done, &w->hz_mu);
	}
	if ((e = w->hz_err) || w->hz_en >= HZ_SLOTS) {
		*op = e ? w->hz_errop : "SHA-256";
		pthread_mutex_unlock(&w->hz_mu);
		return e ? e : EIO;
	}
	i = (w->hz_eh + w->hz_en) % HZ_EXTS;
	pthread_mutex_unlock(&w->hz_mu);
	/* past the queued runs: the hasher does not look at this slot */
	memcpy(w->hz_slot + (size_t)(i % HZ_SLOTS) * H2K_VMDK_GRAIN, buf, len);
	pthread_mutex_lock(&w->hz_mu);
	w->hz_ext[i].start = off;
	w->hz_ext[i].end = off + (long long)len;
	w->hz_ext[i].put = put;
	w->hz_en++;
	pthread_mutex_unlock(&w->hz_mu);
	return fetch_hz_feed(w, off + (long long)len, op);
}

/* Wait until the hasher wrote every slot it was given to write (a raw
 * image's fsync must come after).  0, or an errno and in *op what failed. */
int
fetch_hz_written(struct worker *w, const char **op)
{
	int e;

	if (!w->hz_on)
		return 0;
	pthread_mutex_lock(&w->hz_mu);
	pthread_cond_signal(&w->hz_work);
	/* a slot is written before it is hashed and popped */
	while (w->hz_ring && w->hz_fd >= 0 && !w->hz_err && w->hz_en > 0)
		pthread_cond_wait(&w->hz_done, &w->hz_mu);
	e = w->hz_err;
	if (e)
		*op = w->hz_errop;
	pthread_mutex_unlock(&w->hz_mu);
	return e;
}

/* Wait until every written byte is hashed, then park.  0, or an errno
 * and in *op what failed. */
int
fetch_hz_drain(struct worker *w, const char **op)
{
	int e;

	if (!w->hz_on)
		return 0;
	pthread_mutex_lock(&w->hz_mu);
	pthread_cond_signal(&w->hz_work);
	while (w->hz_fd >= 0 && !w->hz_err && (w->hz_busy || w->hz_hashed < w->hz_target))
		pthread_cond_wait(&w->hz_done, &w->hz_mu);
	e = w->hz_err;
	if (e)
		*op = w->hz_errop;
	w->hz_fd = -1;
	while (w->hz_busy)
		pthread_cond_wait(&w->hz_done, &w->hz_mu);
	hz_detach(w);
	pthread_mutex_unlock(&w->hz_mu);
	return e;
}
