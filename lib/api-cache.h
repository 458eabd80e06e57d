/*
 * api-cache.h - the cache of rendered JOBs behind `h2k-job serve` (api.c).
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * One entry per record in new/, cur/ and done/, keyed by the spool's id and
 * the client's id (api_id), holding the JOB (api-json.c's shape) rendered
 * once and re-rendered only when the record's inode, size or mtime change.
 * A scan re-lists the spool at most every H2K_APICACHE_EVERY seconds unless
 * dirty is set (a submit or a cancel sets it).  The caller serialises every
 * call on one cache with a lock of its own; blobs are reference-counted so
 * that a response can stream them after that lock is dropped.
 */
#ifndef H2K_API_CACHE_H
#define H2K_API_CACHE_H

#include <stdatomic.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "spool.h"

#define H2K_APICACHE_EVERY 0.2

/* A rendered JOB, shared by the cache and the responses streaming it. */
struct blob {
	atomic_int ref;
	size_t len;
	char s[];
};

struct ent {
	char id[H2K_SPOOL_IDMAX];
	char api_id[H2K_SPOOL_IDMAX]; /* the client's id, or "" */
	char created[32];
	char status[12];
	int sub;                 /* 0 new, 1 cur, 2 done */
	ino_t ino;
	off_t size;
	struct timespec mtime;
	unsigned gen;            /* scan that last saw it */
	struct blob *job;
};

struct h2k_apicache {
	struct h2k_spool *sp;     /* read only */
	struct ent *v;
	size_t n, cap;
	size_t *idx;             /* open addressing: v index + 1, 0 empty */
	size_t nidx;
	unsigned gen;
	double last;             /* monotonic time of the last scan */
	int dirty;
	struct timespec dmtime[3]; /* new/, cur/, done/ when last listed */
	int dstable[3];          /* that mtime was a second old: trust it */
};

/* Bring the cache up to the spool; -1 (h2k_seterr) on error. */
int h2k_apicache_scan(struct h2k_apicache *c);
/* Re-read one entry's record if it changed since the last scan: 0; 1,
 * the record is gone or no longer one (the next scan drops it). */
int h2k_apicache_fresh(struct h2k_apicache *c, struct ent *e);
/* The entry of a spool id or client id, NULL: none (as of the last scan). */
struct ent *h2k_apicache_find(struct h2k_apicache *c, const char *id);
/* Take and drop a reference to a rendered JOB. */
struct blob *h2k_apicache_get(struct blob *b);
void h2k_apicache_put(struct blob *b);

#endif
