/*
 * api.c - `h2k-job serve`: the HTTP side of the REST API (libmicrohttpd).
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * Threads: the main thread makes (or takes from systemd) the listening
 * socket, starts the daemon and waits in sigwait(2) for SIGTERM/SIGINT;
 * libmicrohttpd's polling thread accepts, and every connection gets a
 * thread of its own (bounded by H2K_API_MAX_CONN, H2K_API_MAX_PER_IP, an
 * idle timeout and a header memory pool), so a slow or silent client only
 * ever holds its own thread.  Bodies are read by us, up to the job-file
 * cap each and 64 MiB over all connections, then parsed with job.c.
 *
 * The spool is only read, except through spool.c's own enqueue (submit)
 * and the runner's cancel: the server can be killed at any moment.  Job
 * listings come from a cache of rendered JOBs keyed by id and checked
 * against each record's inode, size and mtime (api-cache.c); rendered
 * JOBs are reference-counted so that a response can be streamed out of
 * the cache after the lock is dropped.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "api.h"
#include "api-cache.h"
#include "h2k.h"
#include "job.h"
#include "jsonl.h"
#include "runner.h"
#include "session.h"
#include "spool.h"

#define BODY_BUDGET (64u << 20)
/*
 * A body up to this size is taken even when the budget is spent, so that
 * clients holding 64 MiB of unfinished bodies cannot turn every small
 * submit away (at most H2K_API_MAX_CONN of them: 16 MiB more).
 */
#define BODY_SMALL (64u << 10)
#define SD_LISTEN_FDS_START 3


static struct {
	const struct h2k_api_opts *o;
	struct h2k_spool *sp;
	unsigned char key[SHA256_DIGEST_LENGTH];
	int have_key;
	double t0;
	pthread_mutex_t lock;    /* the cache */
	pthread_mutex_t submit;  /* one submit at a time: id checks + enqueue */
	struct h2k_apicache c;   /* under lock */
	atomic_size_t inflight;  /* body bytes held by all connections */
	pthread_mutex_t wlock;   /* the watched connections */
	struct watch *watched;
	int stop;                /* the watchdog's end */
} S = {.lock = PTHREAD_MUTEX_INITIALIZER,
    .submit = PTHREAD_MUTEX_INITIALIZER,
    .wlock = PTHREAD_MUTEX_INITIALIZER};

/*
 * A connection as the watchdog sees it: while it waits for a request's
 * line and headers (busy 0), it has H2K_API_DEADLINE seconds from since;
 * then the watchdog shuts its socket down (its thread then closes it).
 * MHD's idle timeout alone would let a byte every 29 s hold a slot for
 * days, and 128 such from 127.0.0.1 lock every local client out.
 */
struct watch {
	int fd;
	int busy;
	double since;
	struct watch *prev, *next;
};

/* --- responses ----------------------------------------------------------- */

struct stream {
	struct blob **v;
	size_t n, i, off;        /* item i, offset into head/item/tail */
	int part;                /* 0 head, 1 items, 2 tail */
	char head[64], tail[160];
};

static void
stream_free(void *cls)
{
	struct stream *s = cls;

	for (size_t i = 0; i < s->n; i++)
		h2k_apicache_put(s->v[i]);
	free(s->v);
	free(s);
}

static ssize_t
stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct stream *s = cls;
	size_t out = 0;

	(void)pos;
	while (out < max) {
		const char *src;
		size_t len;
		if (s->part == 0)
			src = s->head, len = strlen(s->head);
		else if (s->part == 1 && s->i < s->n) {
			/* a comma before every item but the first */
			if (s->i > 0 && s->off == 0) {
				buf[out++] = ',';
				s->off = (size_t)-1;
				continue;
			}
			size_t off = s->off == (size_t)-1 ? 0 : s->off;
			src = s->v[s->i]->s + off;
			len = s->v[s->i]->len - off;
			size_t k = len < max - out ? len : max - out;
			memcpy(buf + out, src, k);
			out += k;
			if (k == len) {
				s->i++;
				s->off = 0;
			} else
				s->off = off + k;
			continue;
		} else if (s->part == 1) {
			s->part = 2;
			s->off = 0;
			continue;
		} else if (s->part == 2)
			src = s->tail, len = strlen(s->tail);
		else
			break;
		size_t k = len - s->off < max - out ? len - s->off : max - out;
		memcpy(buf + out, src + s->off, k);
		out += k;
		s->off += k;
		if (s->off == len) {
			s->part++;
			s->off = 0;
		}
	}
	if (out == 0)
		return MHD_CONTENT_READER_END_OF_STREAM;
	return (ssize_t)out;
}

/* The next answer of this thread's connection closes it (bad framing). */
static _Thread_local int close_after;

static enum MHD_Result
send_text(struct MHD_Connection *con, unsigned code, const char *type,
    char *text)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	if (!text)
		text = h2k_strdup("{\"error\":\"out of memory\"}");
	if (!text)
		return MHD_NO;
	r = MHD_create_response_from_buffer(strlen(text), text,
	    MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", type);
	if (close_after) {
		MHD_add_response_header(r, "Connection", "close");
		close_after = 0;
	}
	ret = MHD_queue_response(con, code, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
send_json(struct MHD_Connection *con, unsigned code, cJSON *o)
{
	char *s = NULL, now[32];

	if (o && cJSON_AddStringToObject(o, "timestamp", h2k_now_rfc3339(now)))
		s = h2k_json_print(o);
	cJSON_Delete(o);
	if (s) {
		size_t n = strlen(s);
		char *t = realloc(s, n + 2);
		if (t) {
			s = t;
			memcpy(s + n, "\n", 2);
		}
	}
	return send_text(con, s ? code : 500, "application/json", s);
}

static enum MHD_Result
send_err(struct MHD_Connection *con, unsigned code, const char *fmt, ...)
{
	char msg[1024], esc[1024];
	va_list ap;
	cJSON *o = cJSON_CreateObject();

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	h2k_ttystr(msg, esc, sizeof esc);
	if (o && !cJSON_AddStringToObject(o, "error", esc)) {
		cJSON_Delete(o);
		o = NULL;
	}
	return send_json(con, code, o);
}

/* --- endpoints ------------------------------------------------------------ */

static enum MHD_Result
ep_health(struct MHD_Connection *con)
{
	cJSON *o = cJSON_CreateObject();

	if (o && !cJSON_AddStringToObject(o, "status", "healthy")) {
		cJSON_Delete(o);
		o = NULL;
	}
	return send_json(con, 200, o);
}

static enum MHD_Result
ep_status(struct MHD_Connection *con)
{
	int n[5] = {0};
	char up[64];
	cJSON *o;

	pthread_mutex_lock(&S.lock);
	if (h2k_apicache_scan(&S.c) < 0) {
		pthread_mutex_unlock(&S.lock);
		return send_err(con, 500, "%s", h2k_errmsg());
	}
	size_t total = S.c.n;
	for (size_t i = 0; i < S.c.n; i++)
		for (int k = 0; k < 5; k++)
			if (!strcmp(S.c.v[i].status, h2k_job_statuses[k]))
				n[k]++;
	pthread_mutex_unlock(&S.lock);
	h2k_api_go_duration((int64_t)((h2k_monotime() - S.t0) * 1e9), up,
	    sizeof up);
	if (!(o = cJSON_CreateObject()) ||
	    !cJSON_AddStringToObject(o, "version", H2K_VERSION) ||
	    !cJSON_AddStringToObject(o, "uptime", up) ||
	    !cJSON_AddNumberToObject(o, "total_jobs", (double)total) ||
	    !cJSON_AddNumberToObject(o, "running_jobs", n[1]) ||
	    !cJSON_AddNumberToObject(o, "completed_jobs", n[2]) ||
	    !cJSON_AddNumberToObject(o, "failed_jobs", n[3]) ||
	    !cJSON_AddNumberToObject(o, "cancelled_jobs", n[4]) ||
	    !cJSON_AddNumberToObject(o, "pending_jobs", n[0])) {
		cJSON_Delete(o);
		o = NULL;
	}
	return send_json(con, 200, o);
}

/*
 * A query: ids (exact ids, NULL: any), statuses (bit per h2k_job_statuses
 * index, 0: any), all, limit (0: none; the newest that many).
 */
struct query {
	char **ids;
	size_t nids;
	unsigned statuses;
	int all;
	long limit;
};

static void
query_free(struct query *q)
{
	for (size_t i = 0; i < q->nids; i++)
		free(q->ids[i]);
	free(q->ids);
}

static int
status_bit(const char *s)
{
	for (int k = 0; k < 5; k++)
		if (!strcmp(s, h2k_job_statuses[k]))
			return 1 << k;
	return 0;
}

static int
ent_match(const struct query *q, const struct ent *e)
{
	return !q->statuses || (q->statuses & (unsigned)status_bit(e->status));
}

static enum MHD_Result
run_query(struct MHD_Connection *con, struct query *q)
{
	struct stream *s = h2k_calloc(1, sizeof *s);
	struct MHD_Response *r;
	size_t n = 0, size;
	char now[32];

	if (!s)
		return send_err(con, 500, "out of memory");
	pthread_mutex_lock(&S.lock);
	if (h2k_apicache_scan(&S.c) < 0) {
		pthread_mutex_unlock(&S.lock);
		free(s);
		return send_err(con, 500, "%s", h2k_errmsg());
	}
	size_t cap = q->ids ? q->nids : S.c.n;
	if (!q->ids && !q->all && !q->statuses)
		cap = 0;
	if (!(s->v = h2k_calloc(cap ? cap : 1, sizeof *s->v))) {
		pthread_mutex_unlock(&S.lock);
		free(s);
		return send_err(con, 500, "out of memory");
	}
	if (q->ids) {
		for (size_t i = 0; i < q->nids; i++) {
			struct ent *e = h2k_apicache_find(&S.c, q->ids[i]);
			/* unknown ids are left out, as the product does */
			if (e && ent_match(q, e))
				s->v[n++] = h2k_apicache_get(e->job);
		}
	} else if (cap) {
		for (size_t i = 0; i < S.c.n; i++)
			if (ent_match(q, &S.c.v[i]))
				s->v[n++] = h2k_apicache_get(S.c.v[i].job);
	}
	pthread_mutex_unlock(&S.lock);
	if (q->limit > 0 && n > (size_t)q->limit) {
		size_t drop = n - (size_t)q->limit;
		for (size_t i = 0; i < drop; i++)
			h2k_apicache_put(s->v[i]);
		memmove(s->v, s->v + drop, (size_t)q->limit * sizeof *s->v);
		n = (size_t)q->limit;
	}
	s->n = n;
	snprintf(s->head, sizeof s->head, "{\"jobs\":[");
	snprintf(s->tail, sizeof s->tail, "],\"total\":%zu,\"timestamp\":"
	    "\"%s\"}\n", n, h2k_now_rfc3339(now));
	size = strlen(s->head) + strlen(s->tail) + (n ? n - 1 : 0);
	for (size_t i = 0; i < n; i++)
		size += s->v[i]->len;
	r = MHD_create_response_from_callback(size, 64 * 1024, stream_read, s,
	    stream_free);
	if (!r) {
		stream_free(s);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", "application/json");
	enum MHD_Result ret = MHD_queue_response(con, 200, r);
	MHD_destroy_response(r);
	return ret;
}

static int
add_id(struct query *q, const char *id, size_t len)
{
	if (q->nids >= H2K_API_MAX_IDS)
		return h2k_seterr(H2K_EX_USAGE, "more than %d job ids",
		    H2K_API_MAX_IDS);
	if (!q->ids && !(q->ids = h2k_calloc(H2K_API_MAX_IDS, sizeof *q->ids)))
		return -1;
	if (!(q->ids[q->nids] = h2k_calloc(1, len + 1)))
		return -1;
	memcpy(q->ids[q->nids++], id, len);
	return 0;
}

/* The body of POST /jobs/query; -1 with the reason for a 400. */
static int
parse_query(const char *body, size_t len, struct query *q)
{
	cJSON *o = cJSON_ParseWithLength(body, len), *v, *e;
	int rc = -1;

	if (!o) {
		h2k_seterr(H2K_EX_USAGE, "request body is not JSON");
		return -1;
	}
	if (!cJSON_IsObject(o)) {
		h2k_seterr(H2K_EX_USAGE, "expected a JSON object");
		goto out;
	}
	cJSON_ArrayForEach(v, o) {
		const char *k = v->string;
		if (!strcmp(k, "all")) {
			if (!cJSON_IsBool(v)) {
				h2k_seterr(H2K_EX_USAGE, "'all': expected true "
				    "or false");
				goto out;
			}
			q->all = cJSON_IsTrue(v);
		} else if (!strcmp(k, "limit")) {
			if (!cJSON_IsNumber(v) || v->valuedouble < 0 ||
			    v->valuedouble > 1e9 ||
			    v->valuedouble != (double)(long)v->valuedouble) {
				h2k_seterr(H2K_EX_USAGE, "'limit': expected an "
				    "integer from 0");
				goto out;
			}
			q->limit = (long)v->valuedouble;
		} else if (!strcmp(k, "job_ids")) {
			if (!cJSON_IsArray(v) && !cJSON_IsNull(v)) {
				h2k_seterr(H2K_EX_USAGE, "'job_ids': expected a "
				    "list of strings");
				goto out;
			}
			cJSON_ArrayForEach(e, v) {
				if (!cJSON_IsString(e)) {
					h2k_seterr(H2K_EX_USAGE, "'job_ids': "
					    "expected a list of strings");
					goto out;
				}
				if (add_id(q, e->valuestring,
				    strlen(e->valuestring)) < 0)
					goto out;
			}
		} else if (!strcmp(k, "status")) {
			if (!cJSON_IsArray(v) && !cJSON_IsString(v) &&
			    !cJSON_IsNull(v)) {
				h2k_seterr(H2K_EX_USAGE, "'status': expected a "
				    "list of statuses");
				goto out;
			}
			if (cJSON_IsString(v) && !(q->statuses |=
			    (unsigned)status_bit(v->valuestring))) {
				h2k_seterr(H2K_EX_USAGE, "'status': not one of "
				    "pending, running, completed, failed, "
				    "cancelled");
				goto out;
			}
			if (cJSON_IsArray(v))
				cJSON_ArrayForEach(e, v) {
					int b = cJSON_IsString(e) ?
					    status_bit(e->valuestring) : 0;
					if (!b) {
						h2k_seterr(H2K_EX_USAGE, "'status': "
						    "not one of pending, running, "
						    "completed, failed, cancelled");
						goto out;
					}
					q->statuses |= (unsigned)b;
				}
		}
		/* other keys: ignored, as Go's decoder does */
	}
	rc = 0;
out:
	cJSON_Delete(o);
	return rc;
}

static enum MHD_Result
ep_query_post(struct MHD_Connection *con, const char *body, size_t len)
{
	struct query q = {0};
	enum MHD_Result r;

	if (parse_query(body, len, &q) < 0) {
		query_free(&q);
		return send_err(con, 400, "%s", h2k_errmsg());
	}
	r = run_query(con, &q);
	query_free(&q);
	return r;
}

static enum MHD_Result
ep_query_get(struct MHD_Connection *con)
{
	struct query q = {0};
	const char *v;
	enum MHD_Result r;

	if ((v = MHD_lookup_connection_value(con, MHD_GET_ARGUMENT_KIND,
	    "all")))
		q.all = !strcmp(v, "true") || !strcmp(v, "1");
	if ((v = MHD_lookup_connection_value(con, MHD_GET_ARGUMENT_KIND,
	    "limit"))) {
		char *end;
		errno = 0;
		long l = strtol(v, &end, 10);
		if (!*v || *end || errno || l < 0)
			return send_err(con, 400, "limit: expected an integer "
			    "from 0");
		q.limit = l;
	}
	if ((v = MHD_lookup_connection_value(con, MHD_GET_ARGUMENT_KIND,
	    "status"))) {
		for (const char *p = v; *p;) {
			size_t k = strcspn(p, ",");
			char st[16];
			snprintf(st, sizeof st, "%.*s", (int)(k < 15 ? k : 15), p);
			int b = k < 15 ? status_bit(st) : 0;
			if (!b)
				return send_err(con, 400, "status: not one of "
				    "pending, running, completed, failed, "
				    "cancelled");
			q.statuses |= (unsigned)b;
			p += k + (p[k] == ',');
		}
	}
	if ((v = MHD_lookup_connection_value(con, MHD_GET_ARGUMENT_KIND,
	    "job_ids"))) {
		for (const char *p = v; *p;) {
			size_t k = strcspn(p, ",");
			if (add_id(&q, p, k) < 0) {
				query_free(&q);
				return send_err(con, 400, "%s", h2k_errmsg());
			}
			p += k + (p[k] == ',');
		}
	}
	r = run_query(con, &q);
	query_free(&q);
	return r;
}

/*
 * The cached JOB of an exact id or client id, parsed (caller deletes);
 * NULL: unknown.  sid (may be NULL) gets the spool's id.
 */
static cJSON *
job_of(const char *id, char sid[H2K_SPOOL_IDMAX])
{
	struct blob *b = NULL;
	cJSON *j;

	if (!h2k_spool_idok(id))
		return NULL;
	pthread_mutex_lock(&S.lock);
	if (h2k_apicache_scan(&S.c) == 0) {
		struct ent *e = h2k_apicache_find(&S.c, id);
		if (e && h2k_apicache_fresh(&S.c, e) == 0) {
			b = h2k_apicache_get(e->job);
			if (sid)
				snprintf(sid, H2K_SPOOL_IDMAX, "%s", e->id);
		}
	}
	pthread_mutex_unlock(&S.lock);
	if (!b)
		return NULL;
	j = cJSON_ParseWithLength(b->s, b->len);
	h2k_apicache_put(b);
	return j;
}

static enum MHD_Result
ep_job(struct MHD_Connection *con, const char *id, int progress)
{
	cJSON *j = job_of(id, NULL);

	if (!j)
		return send_err(con, 404, "no job %.64s", id);
	if (progress) {
		cJSON *p = cJSON_DetachItemFromObjectCaseSensitive(j, "progress");
		cJSON_Delete(j);
		return send_json(con, 200, p);
	}
	return send_json(con, 200, j);
}

static enum MHD_Result
ep_logs(struct MHD_Connection *con, const char *id)
{
	char p[H2K_SPOOL_IDMAX + 16];
	struct stat st;
	struct MHD_Response *r;
	int fd;
	char sid[H2K_SPOOL_IDMAX];
	cJSON *j = job_of(id, sid);

	if (!j)
		return send_err(con, 404, "no job %.64s", id);
	cJSON_Delete(j);
	snprintf(p, sizeof p, "log/%s.log", sid);
	fd = openat(S.sp->dfd, p, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return send_text(con, 200, "text/plain; charset=utf-8",
		    h2k_strdup(""));
	/* the runner's own regular file, as h2k_spool_open_log takes it */
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_uid != geteuid() || st.st_nlink != 1) {
		if (fd >= 0)
			close(fd);
		return send_err(con, 500, "job %s: its log cannot be read", id);
	}
	if (!(r = MHD_create_response_from_fd((uint64_t)st.st_size, fd))) {
		close(fd);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
	enum MHD_Result ret = MHD_queue_response(con, 200, r);
	MHD_destroy_response(r);
	return ret;
}

/* The server of the runner's session, as h2k_api_server_key; -1: none. */
static int
session_server(char *out, size_t n)
{
	struct h2k_session s;
	char *path = h2k_session_path(S.o->session);
	int rc = -1;

	memset(&s, 0, sizeof s);
	if (path && h2k_session_load(path, &s) == 0)
		rc = h2k_api_server_key(s.url, out, n);
	h2k_session_free(&s);
	free(path);
	return rc;
}

/* The id a client knows a record by. */
static const char *
api_id(const cJSON *rec)
{
	const char *a = h2k_json_str(rec, "api_id");

	return a ? a : h2k_json_str(rec, "id");
}

static int
reject(cJSON *errs, size_t i, const char *fmt, ...)
{
	char msg[1024], esc[1024];
	va_list ap;
	int k;

	k = snprintf(msg, sizeof msg, "request: jobs[%zu]: ", i);
	va_start(ap, fmt);
	vsnprintf(msg + k, sizeof msg - (size_t)k, fmt, ap);
	va_end(ap);
	h2k_ttystr(msg, esc, sizeof esc);
	return cJSON_AddItemToArray(errs, cJSON_CreateString(esc)) ? 0 : -1;
}

static enum MHD_Result
ep_submit(struct MHD_Connection *con, const char *body, size_t len)
{
	struct h2k_apijobs l;
	cJSON *o, *ids, *errs, **recs = NULL;
	char have[300];
	int have_server = -2;
	size_t nrec = 0, rejected = 0;

	if (h2k_job_parse_api("request", body ? body : "", len,
	    H2K_API_MAX_JOBS, &l) < 0)
		return send_err(con, 400, "%s", h2k_errmsg());
	if (!(o = cJSON_CreateObject()) ||
	    !(ids = cJSON_AddArrayToObject(o, "job_ids")) ||
	    !(errs = cJSON_CreateArray()) ||
	    !(recs = h2k_calloc(l.n, sizeof *recs))) {
		cJSON_Delete(o);
		h2k_apijobs_free(&l);
		return send_err(con, 500, "out of memory");
	}
	/*
	 * Submits one at a time, so that a client's id is checked and queued
	 * before the next submit checks its own; the cache's lock is not held
	 * over the enqueue's fsyncs, so queries go on meanwhile.
	 */
	pthread_mutex_lock(&S.submit);
	pthread_mutex_lock(&S.lock);
	/* a client's id must be new: the cache knows every id and client id */
	S.c.dirty = 1;
	if (h2k_apicache_scan(&S.c) < 0) {
		pthread_mutex_unlock(&S.lock);
		pthread_mutex_unlock(&S.submit);
		cJSON_Delete(o);
		cJSON_Delete(errs);
		free(recs);
		h2k_apijobs_free(&l);
		return send_err(con, 500, "%s", h2k_errmsg());
	}
	for (size_t i = 0; i < l.n; i++) {
		struct h2k_apijob *a = &l.v[i];
		char id[H2K_SPOOL_IDMAX], want[300];
		int r = 0;

		if (a->err) {
			/* job.c's message names the line and the key */
			char esc[1024];
			h2k_ttystr(a->err, esc, sizeof esc);
			r = cJSON_AddItemToArray(errs, cJSON_CreateString(esc)) ?
			    0 : -1;
			rejected++;
			if (r < 0)
				break;
			continue;
		}
		if (a->vcenter) {
			if (have_server == -2)
				have_server = session_server(have, sizeof have);
			if (have_server < 0) {
				reject(errs, i, "vcenter.server: the runner has "
				    "no session to compare it with (jobs run "
				    "with the runner's session; run h2k-login)");
				rejected++;
				continue;
			}
			if (h2k_api_server_key(a->vcenter, want, sizeof want) < 0 ||
			    strcmp(want, have)) {
				reject(errs, i, "vcenter.server '%.200s' is not "
				    "the server the runner is logged in to (%s); "
				    "jobs run with the runner's session",
				    a->vcenter, have);
				rejected++;
				continue;
			}
		}
		if (a->spec.output_path[0] != '/') {
			reject(errs, i, "output_path '%.200s' is not absolute",
			    a->spec.output_path);
			rejected++;
			continue;
		}
		if (a->id) {
			int dup = h2k_apicache_find(&S.c, a->id) ||
			    h2k_spool_where(S.sp, a->id) != NULL;
			for (size_t k = 0; k < nrec && !dup; k++)
				dup = !strcmp(api_id(recs[k]), a->id);
			if (dup) {
				reject(errs, i, "id '%s' is already taken",
				    a->id);
				rejected++;
				continue;
			}
		}
		/*
		 * The spool names jobs itself (a runner moves any other name
		 * aside); the client's id rides in the record as api_id.
		 */
		h2k_spool_newid(id, sizeof id);
		if (!(recs[nrec] = h2k_job_record_new(&a->spec, id)))
			break;
		if (a->id && !cJSON_AddStringToObject(recs[nrec], "api_id",
		    a->id)) {
			cJSON_Delete(recs[nrec]);
			break;
		}
		nrec++;
	}
	pthread_mutex_unlock(&S.lock);
	int ok = nrec + rejected == l.n;
	if (ok && nrec > 0 && h2k_spool_enqueue(S.sp, recs, nrec) < 0)
		ok = 0;
	pthread_mutex_lock(&S.lock);
	S.c.dirty = 1;
	pthread_mutex_unlock(&S.lock);
	pthread_mutex_unlock(&S.submit);
	enum MHD_Result ret;
	if (!ok) {
		ret = send_err(con, 500, "%s; nothing queued", h2k_errmsg());
		cJSON_Delete(o);
		cJSON_Delete(errs);
	} else {
		for (size_t i = 0; i < nrec; i++)
			cJSON_AddItemToArray(ids, cJSON_CreateString(
			    api_id(recs[i])));
		cJSON_AddNumberToObject(o, "accepted", (double)nrec);
		cJSON_AddNumberToObject(o, "rejected", (double)rejected);
		cJSON_AddItemToObject(o, "errors", errs);
		if (nrec)
			h2k_info("queued %zu job%s from %s", nrec,
			    nrec == 1 ? "" : "s", "POST /jobs/submit");
		ret = send_json(con, 200, o);
	}
	for (size_t i = 0; i < nrec; i++)
		cJSON_Delete(recs[i]);
	free(recs);
	h2k_apijobs_free(&l);
	return ret;
}

static int
emit_none(const cJSON *rec)
{
	(void)rec;
	return 0;
}

static enum MHD_Result
ep_cancel(struct MHD_Connection *con, const char *body, size_t len)
{
	struct query q = {0};
	cJSON *o, *done, *failed, *errs;

	if (parse_query(body, len, &q) < 0) {
		query_free(&q);
		return send_err(con, 400, "%s", h2k_errmsg());
	}
	if (!q.nids) {
		query_free(&q);
		return send_err(con, 400, "'job_ids': expected a list of job "
		    "ids");
	}
	if (!(o = cJSON_CreateObject()) ||
	    !(done = cJSON_AddArrayToObject(o, "cancelled")) ||
	    !(failed = cJSON_AddArrayToObject(o, "failed")) ||
	    !(errs = cJSON_AddObjectToObject(o, "errors"))) {
		cJSON_Delete(o);
		query_free(&q);
		return send_err(con, 500, "out of memory");
	}
	for (size_t i = 0; i < q.nids; i++) {
		const char *id = q.ids[i];
		char esc[1024], idesc[256];
		int r;

		char sid[H2K_SPOOL_IDMAX];
		cJSON *j;

		/* exact ids only: h2k-job cancel's prefixes are for people */
		if (!(j = job_of(id, sid)))
			r = h2k_seterr(H2K_EX_NOTFOUND, "no job %.64s", id);
		else
			r = h2k_runner_cancel(S.sp, sid, S.o->cancel_wait,
			    emit_none);
		cJSON_Delete(j);
		h2k_ttystr(id, idesc, sizeof idesc);
		if (r == 0) {
			cJSON_AddItemToArray(done, cJSON_CreateString(idesc));
			h2k_info("job %s cancelled through the API", idesc);
		} else {
			h2k_ttystr(h2k_errmsg(), esc, sizeof esc);
			cJSON_AddItemToArray(failed, cJSON_CreateString(idesc));
			if (!cJSON_GetObjectItemCaseSensitive(errs, idesc))
				cJSON_AddStringToObject(errs, idesc, esc);
		}
	}
	pthread_mutex_lock(&S.lock);
	S.c.dirty = 1;
	pthread_mutex_unlock(&S.lock);
	query_free(&q);
	return send_json(con, 200, o);
}

/* --- the request handler ---------------------------------------------------- */

static void watch_busy(struct MHD_Connection *con, int busy);

struct req {
	double t0;               /* when its headers came */
	struct h2k_buf body;
	int too_big;
	int answered;
};

static int
authorized(struct MHD_Connection *con)
{
	const char *k = MHD_lookup_connection_value(con, MHD_HEADER_KIND,
	    "X-API-Key");
	unsigned char h[SHA256_DIGEST_LENGTH];

	if (!k) {
		const char *a = MHD_lookup_connection_value(con,
		    MHD_HEADER_KIND, "Authorization");
		if (a && !strncasecmp(a, "Bearer ", 7))
			for (k = a + 7; *k == ' '; k++)
				;
	}
	if (!k)
		return 0;
	/* digests of equal length: the compare takes the same time for any key */
	SHA256((const unsigned char *)k, strlen(k), h);
	return CRYPTO_memcmp(h, S.key, sizeof h) == 0;
}

static void
req_done(void *cls, struct MHD_Connection *con, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct req *r = *con_cls;

	(void)cls;
	(void)toe;
	watch_busy(con, 0);
	if (!r)
		return;
	atomic_fetch_sub(&S.inflight, r->body.cap);
	h2k_buf_free(&r->body);
	free(r);
	*con_cls = NULL;
}

static enum MHD_Result
route(struct MHD_Connection *con, const char *url, const char *method,
    struct req *r)
{
	int get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
	int post = !strcmp(method, "POST");
	const char *body = r->body.data;
	size_t len = r->body.len;

	if (!strcmp(url, "/health"))
		return get ? ep_health(con) : send_err(con, 405, "use GET");
	if (!strcmp(url, "/status"))
		return get ? ep_status(con) : send_err(con, 405, "use GET");
	if (!strcmp(url, "/jobs/submit"))
		return post ? ep_submit(con, body, len) :
		    send_err(con, 405, "use POST");
	if (!strcmp(url, "/jobs/query"))
		return post ? ep_query_post(con, body ? body : "", len) :
		    get ? ep_query_get(con) : send_err(con, 405, "use GET or "
		    "POST");
	if (!strcmp(url, "/jobs/cancel"))
		return post ? ep_cancel(con, body ? body : "", len) :
		    send_err(con, 405, "use POST");
	if (!strncmp(url, "/jobs/progress/", 15))
		return get ? ep_job(con, url + 15, 1) :
		    send_err(con, 405, "use GET");
	if (!strncmp(url, "/jobs/logs/", 11))
		return get ? ep_logs(con, url + 11) :
		    send_err(con, 405, "use GET");
	if (!strncmp(url, "/jobs/", 6) && !strchr(url + 6, '/'))
		return get ? ep_job(con, url + 6, 0) :
		    send_err(con, 405, "use GET");
	return send_err(con, 404, "no such endpoint: %.200s", url);
}

static struct watch *
watch_of(struct MHD_Connection *con)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(con,
	    MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci ? ci->socket_context : NULL;
}

static void
notify_conn(void *cls, struct MHD_Connection *con, void **socket_context,
    enum MHD_ConnectionNotificationCode toe)
{
	struct watch *w = *socket_context;

	(void)cls;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
		    con, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (!ci || !(w = h2k_calloc(1, sizeof *w)))
			return;
		w->fd = ci->connect_fd;
		w->since = h2k_monotime();
		pthread_mutex_lock(&S.wlock);
		if ((w->next = S.watched))
			w->next->prev = w;
		S.watched = w;
		pthread_mutex_unlock(&S.wlock);
		*socket_context = w;
	} else if (toe == MHD_CONNECTION_NOTIFY_CLOSED && w) {
		pthread_mutex_lock(&S.wlock);
		if (w->prev)
			w->prev->next = w->next;
		else
			S.watched = w->next;
		if (w->next)
			w->next->prev = w->prev;
		pthread_mutex_unlock(&S.wlock);
		free(w);
		*socket_context = NULL;
	}
}

/* busy: a request's headers came (its body has its own deadline); 0: done */
static void
watch_busy(struct MHD_Connection *con, int busy)
{
	struct watch *w = watch_of(con);

	if (!w)
		return;
	pthread_mutex_lock(&S.wlock);
	w->busy = busy;
	w->since = h2k_monotime();
	pthread_mutex_unlock(&S.wlock);
}

static void *
watchdog(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&S.wlock);
	while (!S.stop) {
		double now = h2k_monotime();
		for (struct watch *w = S.watched; w; w = w->next)
			if (!w->busy && w->fd >= 0 &&
			    now - w->since > H2K_API_DEADLINE) {
				/* closed by its thread, under this lock: no reuse */
				shutdown(w->fd, SHUT_RDWR);
				w->fd = -1;
			}
		pthread_mutex_unlock(&S.wlock);
		usleep(250 * 1000);
		pthread_mutex_lock(&S.wlock);
	}
	pthread_mutex_unlock(&S.wlock);
	return NULL;
}

static enum MHD_Result
handler(void *cls, struct MHD_Connection *con, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_size, void **con_cls)
{
	struct req *r = *con_cls;

	(void)cls;
	(void)version;
	if (!r) {
		const char *cl;
		if (!(r = h2k_calloc(1, sizeof *r)))
			return MHD_NO;
		*con_cls = r;
		r->t0 = h2k_monotime();
		watch_busy(con, 1);
		if (strcmp(url, "/health") && S.have_key && !authorized(con)) {
			r->answered = 1;
			return send_err(con, 401, "missing or wrong API key "
			    "(X-API-Key or Authorization: Bearer)");
		}
		cl = MHD_lookup_connection_value(con, MHD_HEADER_KIND,
		    MHD_HTTP_HEADER_CONTENT_LENGTH);
		/*
		 * Both framings: a proxy in front may have taken the other
		 * one, so what follows could be a smuggled request (RFC 9112
		 * 6.1: reject, and close the connection in any case).
		 */
		if (cl && MHD_lookup_connection_value(con, MHD_HEADER_KIND,
		    MHD_HTTP_HEADER_TRANSFER_ENCODING)) {
			r->answered = 1;
			close_after = 1;
			return send_err(con, 400, "request with both "
			    "Content-Length and Transfer-Encoding");
		}
		if (cl && strtoull(cl, NULL, 10) > H2K_JOB_MAX_FILE) {
			r->answered = 1;
			return send_err(con, 413, "request body larger than %u "
			    "bytes", H2K_JOB_MAX_FILE);
		}
		return MHD_YES;
	}
	if (*upload_size) {
		size_t n = *upload_size;
		*upload_size = 0;
		/* a body trickled slower than the deadline: drop the connection */
		if (h2k_monotime() - r->t0 > H2K_API_DEADLINE)
			return MHD_NO;
		if (r->answered || r->too_big)
			return MHD_YES;
		if (r->body.len + n > H2K_JOB_MAX_FILE) {
			r->too_big = 1;
			return MHD_YES;
		}
		size_t before = r->body.cap;
		if ((r->body.len + n > BODY_SMALL &&
		    atomic_load(&S.inflight) + n > BODY_BUDGET) ||
		    h2k_buf_append(&r->body, upload, n) < 0) {
			r->too_big = 2;
			return MHD_YES;
		}
		atomic_fetch_add(&S.inflight, r->body.cap - before);
		return MHD_YES;
	}
	if (r->answered)
		return MHD_YES;
	r->answered = 1;
	if (r->too_big == 1)
		return send_err(con, 413, "request body larger than %u bytes",
		    H2K_JOB_MAX_FILE);
	if (r->too_big)
		return send_err(con, 503, "server busy: too many request bodies "
		    "in memory; try again");
	return route(con, url, method, r);
}

/* --- starting ------------------------------------------------------------ */

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];

	(void)cls;
	vsnprintf(msg, sizeof msg, fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	h2k_debug("http: %s", msg);
}

static int
is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)ss;
		return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)ss;
		if (IN6_IS_ADDR_LOOPBACK(&a->sin6_addr))
			return 1;
		/* ::ffff:127.x.y.z */
		return IN6_IS_ADDR_V4MAPPED(&a->sin6_addr) &&
		    a->sin6_addr.s6_addr[12] == 127;
	}
	return ss->ss_family == AF_UNIX;
}

/* "ADDR:PORT", "[V6]:PORT", "localhost:PORT", ":PORT" (every address). */
static int
parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *sl)
{
	char host[64];
	const char *port;
	char *end;
	long p;

	memset(ss, 0, sizeof *ss);
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');
		if (!rb || rb[1] != ':' || (size_t)(rb - s - 1) >= sizeof host)
			goto bad;
		snprintf(host, sizeof host, "%.*s", (int)(rb - s - 1), s + 1);
		port = rb + 2;
	} else {
		const char *c = strrchr(s, ':');
		if (!c || (size_t)(c - s) >= sizeof host)
			goto bad;
		snprintf(host, sizeof host, "%.*s", (int)(c - s), s);
		port = c + 1;
	}
	errno = 0;
	p = strtol(port, &end, 10);
	if (!*port || *end || errno || p < 0 || p > 65535)
		goto bad;
	if (!strcmp(host, "localhost"))
		snprintf(host, sizeof host, "127.0.0.1");
	struct sockaddr_in *a4 = (void *)ss;
	struct sockaddr_in6 *a6 = (void *)ss;
	if (!host[0] || inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)p);
		if (!host[0])
			a4->sin_addr.s_addr = htonl(INADDR_ANY);
		*sl = sizeof *a4;
		return 0;
	}
	if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)p);
		*sl = sizeof *a6;
		return 0;
	}
bad:
	return h2k_seterr(H2K_EX_USAGE, "listen address '%.100s': expected "
	    "ADDR:PORT with a numeric address, [V6]:PORT or localhost:PORT", s);
}

/* A socket passed by systemd: LISTEN_PID is us, LISTEN_FDS at least 1. */
static int
activated_fd(void)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");

	if (!pid || !fds || atol(pid) != (long)getpid() || atoi(fds) < 1)
		return -1;
	if (atoi(fds) > 1)
		h2k_warn("systemd passed %d sockets; serving the first",
		    atoi(fds));
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	fcntl(SD_LISTEN_FDS_START, F_SETFD, FD_CLOEXEC);
	return SD_LISTEN_FDS_START;
}

/* The API key: --api-key-file, else the systemd credential h2k-api-key. */
static int
load_key(const char *file)
{
	char *path = NULL, *k;
	const char *cd = getenv("CREDENTIALS_DIRECTORY");
	size_t len;

	if (!file && cd && *cd) {
		if (!(path = h2k_asprintf("%s/h2k-api-key", cd)))
			return -1;
		if (access(path, F_OK) < 0) {
			free(path);
			return 0;
		}
		file = path;
	}
	if (!file)
		return 0;
	k = h2k_secure_read_as("API key file", file, H2K_API_KEY_MAX, &len, 0);
	if (!k) {
		free(path);
		return -1;
	}
	while (len && (k[len - 1] == '\n' || k[len - 1] == '\r'))
		k[--len] = '\0';
	int bad = len < H2K_API_KEY_MIN || strlen(k) != len;
	for (size_t i = 0; i < len && !bad; i++)
		bad = (unsigned char)k[i] <= ' ' || k[i] == 0x7f;
	if (bad) {
		h2k_seterr(H2K_EX_USAGE, "API key file %s: the key must be one "
		    "line of at least %d printable characters without blanks",
		    file, H2K_API_KEY_MIN);
		h2k_freesecret(k);
		free(path);
		return -1;
	}
	SHA256((unsigned char *)k, len, S.key);
	S.have_key = 1;
	h2k_freesecret(k);
	free(path);
	return 0;
}

static char *
read_pem(const char *what, const char *path, int secret)
{
	size_t len;

	if (secret)
		return h2k_secure_read_as(what, path, 1u << 20, &len, 0);
	struct h2k_buf b = {.max = 1u << 20};
	char chunk[8192];
	ssize_t r;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		h2k_seterr(errno == ENOENT ? H2K_EX_NOTFOUND : H2K_EX_IO,
		    "%s %s: %s", what, path, strerror(errno));
		return NULL;
	}
	while ((r = read(fd, chunk, sizeof chunk)) > 0)
		if (h2k_buf_append(&b, chunk, (size_t)r) < 0) {
			h2k_seterr(H2K_EX_USAGE, "%s %s: larger than 1 MiB",
			    what, path);
			r = -1;
			break;
		}
	close(fd);
	if (r < 0 || h2k_buf_append(&b, "", 1) < 0) {
		h2k_buf_free(&b);
		if (r < 0 && h2k_errcode() != H2K_EX_USAGE)
			h2k_seterr(H2K_EX_IO, "%s %s: %s", what, path,
			    strerror(errno));
		return NULL;
	}
	return b.data;
}

int
h2k_api_serve(const struct h2k_api_opts *o)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	const char *listen_on = o->listen ? o->listen : H2K_API_LISTEN;
	char *cert = NULL, *key = NULL;
	struct MHD_Daemon *d;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD |
	    MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL | MHD_USE_ERROR_LOG;
	int fd, rc = -1, sig;
	sigset_t set;

	S.o = o;
	S.sp = o->spool;
	S.c.sp = o->spool;
	S.t0 = h2k_monotime();
	if ((o->cert != NULL) != (o->key != NULL))
		return h2k_seterr(H2K_EX_USAGE, "--cert and --key go together");
	if (o->cert && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
		return h2k_seterr(H2K_EX_USAGE, "--cert: this libmicrohttpd "
		    "was built without TLS");
	if (load_key(o->key_file) < 0)
		return -1;
	/* Everything is checked before anything listens. */
	if ((fd = activated_fd()) >= 0) {
		if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
			return h2k_seterr(H2K_EX_IO, "socket from systemd: %s",
			    strerror(errno));
		listen_on = "the socket from systemd";
	} else if (parse_listen(listen_on, &ss, &sl) < 0)
		return -1;
	if (!S.have_key && !is_loopback(&ss)) {
		if (fd >= 0)
			close(fd);
		return h2k_seterr(H2K_EX_USAGE, "%s is not a loopback address: "
		    "an API key is required (--api-key-file, or the systemd "
		    "credential h2k-api-key)", listen_on);
	}
	if (o->cert && (!(cert = read_pem("certificate", o->cert, 0)) ||
	    !(key = read_pem("key file", o->key, 1))))
		goto out;
	if (fd < 0) {
		int one = 1;
		if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
		    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
		    (ss.ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6,
		    IPV6_V6ONLY, &one, sizeof one) < 0) ||
		    bind(fd, (struct sockaddr *)&ss, sl) < 0 ||
		    listen(fd, 128) < 0) {
			h2k_seterr(H2K_EX_IO, "listen on %s: %s", listen_on,
			    strerror(errno));
			if (fd >= 0)
				close(fd);
			goto out;
		}
	}
	/* A batch a killed server was moving into new/ is queued whole. */
	if (h2k_spool_roll_batches(S.sp) < 0)
		h2k_warn("%s", h2k_errmsg());
	/* The first client should not wait for every record to be read. */
	pthread_mutex_lock(&S.lock);
	if (h2k_apicache_scan(&S.c) < 0)
		h2k_warn("%s", h2k_errmsg());
	pthread_mutex_unlock(&S.lock);
	/* Connection threads inherit this mask: only sigwait takes these. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (cert)
		flags |= MHD_USE_TLS;
	d = MHD_start_daemon(flags, 0, NULL, NULL, handler, NULL,
	    MHD_OPTION_LISTEN_SOCKET, fd,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)H2K_API_MAX_CONN,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)H2K_API_MAX_PER_IP,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)H2K_API_TIMEOUT,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)H2K_API_MAX_HEADER,
	    MHD_OPTION_THREAD_STACK_SIZE, (size_t)(1u << 20),
	    MHD_OPTION_NOTIFY_COMPLETED, req_done, NULL,
	    MHD_OPTION_NOTIFY_CONNECTION, notify_conn, NULL,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
	    cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, cert,
	    MHD_OPTION_HTTPS_MEM_KEY, key,
	    MHD_OPTION_END);
	if (!d) {
		close(fd);
		h2k_seterr(H2K_EX_IO, "cannot start the HTTP server on %s%s",
		    listen_on, cert ? " (is the certificate and key a pair?)" :
		    "");
		goto out;
	}
	/* the real port (":0" asks for any free one) */
	char where[80];
	sl = sizeof ss;
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 &&
	    (ss.ss_family == AF_INET || ss.ss_family == AF_INET6)) {
		char a[INET6_ADDRSTRLEN];
		const struct sockaddr_in *a4 = (const void *)&ss;
		const struct sockaddr_in6 *a6 = (const void *)&ss;
		int v6 = ss.ss_family == AF_INET6;
		inet_ntop(ss.ss_family, v6 ? (const void *)&a6->sin6_addr :
		    (const void *)&a4->sin_addr, a, sizeof a);
		snprintf(where, sizeof where, "%s%s%s:%u", v6 ? "[" : "", a,
		    v6 ? "]" : "", ntohs(v6 ? a6->sin6_port : a4->sin_port));
		listen_on = where;
	}
	pthread_t wd;
	int have_wd = pthread_create(&wd, NULL, watchdog, NULL) == 0;
	if (!have_wd)
		h2k_warn("no watchdog thread: slow clients are left to the "
		    "idle timeout");
	h2k_info("serving %s on %s%s%s", S.sp->dir, listen_on,
	    cert ? " (TLS)" : "", S.have_key ? " (API key required)" : "");
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP)
			continue;
		break;
	}
	h2k_info("signal %d: stopping", sig);
	MHD_stop_daemon(d);
	if (have_wd) {
		pthread_mutex_lock(&S.wlock);
		S.stop = 1;
		pthread_mutex_unlock(&S.wlock);
		pthread_join(wd, NULL);
	}
	rc = 0;
out:
	if (key)
		h2k_freesecret(key);
	free(cert);
	pthread_mutex_lock(&S.lock);
	for (size_t i = 0; i < S.c.n; i++)
		h2k_apicache_put(S.c.v[i].job);
	free(S.c.v);
	free(S.c.idx);
	memset(&S.c, 0, sizeof S.c);
	pthread_mutex_unlock(&S.lock);
	return rc;
}
