/*
 * api-cache.c - the cache of rendered JOBs behind `h2k-job serve`: see
 * api-cache.h.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * A query over 10,000 jobs is a few thousand fstatat(2) calls and a copy
 * of cached text; a hundred pollers cost one directory scan.  An index by
 * open addressing maps both ids of an entry to it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "api-cache.h"
#include "api.h"
#include "h2k.h"
#include "job.h"
#include "jsonl.h"
#include "spool.h"

static const char *const subs[] = {"new", "cur", "done"};

/* --- the cache ----------------------------------------------------------- */

void
h2k_apicache_put(struct blob *b)
{
	if (b && atomic_fetch_sub(&b->ref, 1) == 1)
		free(b);
}

struct blob *
h2k_apicache_get(struct blob *b)
{
	atomic_fetch_add(&b->ref, 1);
	return b;
}

static size_t
hash_id(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ull;
	return (size_t)h;
}

struct ent *
h2k_apicache_find(struct h2k_apicache *c, const char *id)
{

	if (!c->nidx)
		return NULL;
	for (size_t i = hash_id(id) % c->nidx;; i = (i + 1) % c->nidx) {
		if (!c->idx[i])
			return NULL;
		const struct ent *e = &c->v[c->idx[i] - 1];
		if (!strcmp(e->id, id) || !strcmp(e->api_id, id))
			return &c->v[c->idx[i] - 1];
	}
}

/* Entry k under its id and, when it has one, its client's id. */
static void
index_add(struct h2k_apicache *c, size_t *idx, size_t n, size_t k)
{
	for (int a = 0; a < 2; a++) {
		const char *key = a ? c->v[k].api_id : c->v[k].id;
		if (!*key)
			continue;
		size_t i = hash_id(key) % n;
		while (idx[i])
			i = (i + 1) % n;
		idx[i] = k + 1;
	}
}

static int
reindex(struct h2k_apicache *c)
{
	size_t n = c->n * 4 + 16;
	size_t *idx = h2k_calloc(n, sizeof *idx);

	if (!idx)
		return -1;
	for (size_t k = 0; k < c->n; k++)
		index_add(c, idx, n, k);
	free(c->idx);
	c->idx = idx;
	c->nidx = n;
	return 0;
}

/* Oldest first: created_at, then id (ids from h2k-job sort by time). */
static int
ent_cmp(const void *a, const void *b)
{
	const struct ent *x = a, *y = b;
	int r = strcmp(x->created, y->created);

	return r ? r : strcmp(x->id, y->id);
}

/* Render one record into e (e->id, sub, stat filled); -1 to skip it. */
static int
render(struct h2k_apicache *c, struct ent *e, const struct stat *st)
{
	cJSON *rec = h2k_spool_read(c->sp, subs[e->sub], e->id), *job;
	char *s;

	if (!rec)
		return -1; /* moved meanwhile, or not a record: not ours to judge */
	job = h2k_api_job(rec, st->st_mtim.tv_sec);
	snprintf(e->status, sizeof e->status, "%s",
	    h2k_json_str(rec, "status") ? h2k_json_str(rec, "status") : "");
	snprintf(e->api_id, sizeof e->api_id, "%.95s",
	    h2k_json_str(rec, "api_id") ? h2k_json_str(rec, "api_id") : "");
	snprintf(e->created, sizeof e->created, "%s",
	    h2k_json_str(rec, "created_at") ? h2k_json_str(rec, "created_at") :
	    "");
	cJSON_Delete(rec);
	if (!job || !(s = h2k_json_print(job))) {
		cJSON_Delete(job);
		return -1;
	}
	cJSON_Delete(job);
	size_t len = strlen(s);
	struct blob *b = malloc(sizeof *b + len + 1);
	if (!b) {
		free(s);
		return -1;
	}
	atomic_init(&b->ref, 1);
	b->len = len;
	memcpy(b->s, s, len + 1);
	free(s);
	h2k_apicache_put(e->job);
	e->job = b;
	e->ino = st->st_ino;
	e->size = st->st_size;
	e->mtime = st->st_mtim;
	return 0;
}

static int
scan_sub(struct h2k_apicache *c, int sub)
{
	int dfd = openat(c->sp->dfd, subs[sub], O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC);
	DIR *d;
	struct dirent *de;

	if (dfd < 0 || !(d = fdopendir(dfd))) {
		if (dfd >= 0)
			close(dfd);
		return h2k_seterr(H2K_EX_IO, "%s/%s: %s", c->sp->dir, subs[sub],
		    strerror(errno));
	}
	while ((de = readdir(d))) {
		struct stat st;
		struct ent *e;

		if (!h2k_spool_idok(de->d_name) ||
		    fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		if ((e = h2k_apicache_find(c, de->d_name)) && e->gen == c->gen &&
		    e->sub > sub)
			continue; /* already seen further on */
		if (e && e->sub == sub && e->ino == st.st_ino &&
		    e->size == st.st_size &&
		    e->mtime.tv_sec == st.st_mtim.tv_sec &&
		    e->mtime.tv_nsec == st.st_mtim.tv_nsec) {
			e->gen = c->gen;
			continue;
		}
		if (!e) {
			if (c->n == c->cap) {
				size_t cap = c->cap ? c->cap * 2 : 256;
				struct ent *v = h2k_realloc(c->v, cap * sizeof *v);
				if (!v) {
					closedir(d);
					return -1;
				}
				c->v = v;
				c->cap = cap;
			}
			e = &c->v[c->n];
			memset(e, 0, sizeof *e);
			snprintf(e->id, sizeof e->id, "%.95s", de->d_name);
			e->sub = sub;
			if (render(c, e, &st) < 0)
				continue;
			e->gen = c->gen;
			c->n++;
			if (c->n * 4 > c->nidx) {
				if (reindex(c) < 0) {
					closedir(d);
					return -1;
				}
			} else
				index_add(c, c->idx, c->nidx, c->n - 1);
			continue;
		}
		e->sub = sub;
		if (render(c, e, &st) == 0)
			e->gen = c->gen;
	}
	closedir(d);
	return 0;
}

/*
 * A scan may be H2K_APICACHE_EVERY old; one job asked for by id must not
 * be (a client that saw `h2k-job wait` return reads it next).  Its record
 * is looked for in the order jobs move (new, cur, done), so that one moving
 * on meanwhile is still found; twice, for one moving back (a requeue: cur
 * to new) between two looks.  Not found, or no longer a record (moved
 * aside to bad/, replaced by something else), it is what the next scan
 * drops: 1, and the cache is marked for a scan.
 */
int
h2k_apicache_fresh(struct h2k_apicache *c, struct ent *e)
{
	for (int pass = 0; pass < 2; pass++) {
		for (int sub = 0; sub < 3; sub++) {
			struct stat st;
			char p[H2K_SPOOL_IDMAX + 8], api_id[sizeof e->api_id];

			snprintf(p, sizeof p, "%s/%s", subs[sub], e->id);
			if (fstatat(c->sp->dfd, p, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
			    !S_ISREG(st.st_mode))
				continue;
			if (e->sub == sub && e->ino == st.st_ino &&
			    e->size == st.st_size &&
			    e->mtime.tv_sec == st.st_mtim.tv_sec &&
			    e->mtime.tv_nsec == st.st_mtim.tv_nsec)
				return 0;
			int was = e->sub;
			memcpy(api_id, e->api_id, sizeof api_id);
			e->sub = sub;
			if (render(c, e, &st) < 0) {
				e->sub = was;
				break; /* moved meanwhile, or not a record */
			}
			/* the index knows the entry by its old client id */
			if (strcmp(api_id, e->api_id))
				c->dirty = 1;
			return 0;
		}
	}
	c->dirty = 1;
	return 1;
}

int
h2k_apicache_scan(struct h2k_apicache *c)
{
	double now = h2k_monotime();
	size_t k = 0;

	if (!c->dirty && c->last && now - c->last < H2K_APICACHE_EVERY)
		return 0;
	c->gen++;
	for (int sub = 0; sub < 3; sub++) {
		struct stat st;
		struct timespec wall;
		/*
		 * Every change to a record is a rename into its directory,
		 * which changes the directory's mtime: a directory unchanged
		 * since it was listed (done/, mostly) need not be listed and
		 * its records not stat'ed again.  Timestamps are coarse (a
		 * clock tick), so only an mtime already a second old when it
		 * was seen is trusted.
		 */
		if (fstatat(c->sp->dfd, subs[sub], &st, 0) < 0)
			return h2k_seterr(H2K_EX_IO, "%s/%s: %s", c->sp->dir,
			    subs[sub], strerror(errno));
		if (c->dstable[sub] &&
		    st.st_mtim.tv_sec == c->dmtime[sub].tv_sec &&
		    st.st_mtim.tv_nsec == c->dmtime[sub].tv_nsec) {
			for (size_t i = 0; i < c->n; i++)
				if (c->v[i].sub == sub && c->v[i].gen == c->gen - 1)
					c->v[i].gen = c->gen;
			continue;
		}
		clock_gettime(CLOCK_REALTIME, &wall);
		if (scan_sub(c, sub) < 0)
			return -1;
		c->dmtime[sub] = st.st_mtim;
		c->dstable[sub] = difftime(wall.tv_sec, st.st_mtim.tv_sec) > 1;
	}
	/* drop what is gone, keep the rest in order */
	for (size_t i = 0; i < c->n; i++) {
		if (c->v[i].gen != c->gen) {
			h2k_apicache_put(c->v[i].job);
			continue;
		}
		c->v[k++] = c->v[i];
	}
	c->n = k;
	if (c->n)
		qsort(c->v, c->n, sizeof *c->v, ent_cmp);
	if (reindex(c) < 0)
		return -1;
	c->last = h2k_monotime();
	c->dirty = 0;
	return 0;
}

