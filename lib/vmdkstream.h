/*
 * vmdkstream.h - incremental decoder of streamOptimized VMDK streams.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * Push the bytes of a disk stream as they arrive, in any chunks; the
 * decoder hands each decoded grain to a sink as (byte offset in the
 * virtual disk, bytes, length).  The first sector decides: "KDMV" with the
 * COMPRESS and MARKER flags is a streamOptimized VMDK (header, descriptor,
 * then grain and metadata markers up to the end-of-stream marker);
 * anything else is the plain bytes of the disk, handed on in 64 KiB
 * pieces at their own offsets.  Memory is one compressed grain and one
 * decoded grain, whatever the disk size.
 */
#ifndef H2K_VMDKSTREAM_H
#define H2K_VMDKSTREAM_H

#include <stddef.h>

#define H2K_VMDK_GRAIN (64u << 10)      /* the grain this decoder takes */

/*
 * The sink: a grain of the disk at byte offset off, len bytes (len is
 * H2K_VMDK_GRAIN except for the last piece of a disk).  0, or -1 after
 * h2k_seterr (the decoder then fails with that error).
 */
typedef int (*h2k_vmdks_sink)(void *arg, long long off, const unsigned char *buf,
    size_t len);

struct h2k_vmdks;

/* A decoder.  sink NULL: observe only (markers followed, grains not
 * inflated), for progress over a stream saved as it is. */
struct h2k_vmdks *h2k_vmdks_new(h2k_vmdks_sink sink, void *arg);
void h2k_vmdks_free(struct h2k_vmdks *d);
/* Forget everything: the next byte is the first of a new stream. */
void h2k_vmdks_reset(struct h2k_vmdks *d);

/*
 * Feed n bytes.  0, or -1 with the error set (H2K_EX_NET, "offset N: why"
 * for a malformed stream; the sink's own error otherwise).  After an
 * error every call fails the same way until a reset.
 */
int h2k_vmdks_feed(struct h2k_vmdks *d, const void *buf, size_t n);

/* The stream has ended: 0 if it was whole (end-of-stream marker seen;
 * tables up front, as qemu-img writes them, counted and every grain they
 * list brought; or plain bytes: their last piece goes to the sink), else
 * -1 with the error set ("offset N: stream ends inside ...", "... without
 * an end-of-stream marker"). */
int h2k_vmdks_finish(struct h2k_vmdks *d);

/*
 * Plain bytes (not a VMDK) are the disk: at most capacity bytes of them
 * (<= 0: unknown, 64 TiB, the largest capacity a VMDK header may give).
 * One byte more fails the stream, "offset CAPACITY: plain bytes longer
 * than its capacity N bytes", before any of it reaches the sink; a known
 * capacity is also the least: plain bytes that end short of it fail the
 * stream at its end, "offset N: plain bytes end short of its capacity N
 * bytes" (a cut stream of unknown length ends as cleanly).  Kept across
 * resets.
 */
void h2k_vmdks_limit(struct h2k_vmdks *d, long long capacity);

/* Bytes of the stream taken so far. */
long long h2k_vmdks_consumed(const struct h2k_vmdks *d);
/* Bytes of the virtual disk covered so far (the end of the last grain
 * reached): the progress of a stream whose length nobody knows. */
long long h2k_vmdks_pos(const struct h2k_vmdks *d);
/* The disk's size in bytes: from the header; for plain bytes, -1 until
 * the finish, then their count. */
long long h2k_vmdks_capacity(const struct h2k_vmdks *d);
/* 1 streamOptimized, 0 plain bytes, -1 not known yet (no whole sector). */
int h2k_vmdks_is_vmdk(const struct h2k_vmdks *d);

/*
 * The bound of a stream saved as it comes (h2k-fetch --format vmdk), in
 * bytes: the longest streamOptimized stream of a disk of capacity bytes
 * can be (every grain incompressible, every table and marker the decoder
 * lets through, 1 MiB of padding after the end-of-stream marker; roughly
 * 1.17 times the capacity plus 33 MiB: the overhead a header may state is
 * not known).  h2k_vmdks_most: the same for the stream being read, with
 * its header's capacity and overhead, and once its end-of-stream marker
 * went by, that marker's end plus the padding allowed; -1 while the first
 * sector is not in, or for plain bytes.  h2k_vmdks_eos: the stream offset
 * just past the end-of-stream marker, -1 before.
 */
long long h2k_vmdk_stream_most(long long capacity);
long long h2k_vmdks_most(const struct h2k_vmdks *d);
long long h2k_vmdks_eos(const struct h2k_vmdks *d);

/*
 * What the first sector of a saved file says: a sparse VMDK header
 * ("streamOptimized" with COMPRESS|MARKER, else "monolithicSparse") in
 * *sub with *capacity in bytes: 1; not a sparse VMDK: 0.
 */
int h2k_vmdk_sniff(const unsigned char *sec, size_t n, const char **sub,
    long long *capacity);

#endif
