/*
 * api.h - `h2k-job serve`: hyper2kvm-providers' REST API over the spool.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * The server queues (through spool.c's enqueue, as `h2k-job submit`) and
 * reports (reading the records the runner keeps); it never runs a job.
 * api.c is the HTTP side (libmicrohttpd daemon, routing, auth, limits);
 * api-json.c turns spool records into the product's JSON shapes.
 */
#ifndef H2K_API_H
#define H2K_API_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <cjson/cJSON.h>

#include "spool.h"

/* Default address, as the product's DaemonAddr "localhost:8080". */
#define H2K_API_LISTEN "127.0.0.1:8080"
/* Jobs one POST /jobs/submit may carry. */
#define H2K_API_MAX_JOBS 1000
/* Ids one query or cancel may name. */
#define H2K_API_MAX_IDS 10000
/* Connections at once, from one address, and idle seconds allowed. */
#define H2K_API_MAX_CONN 256
#define H2K_API_MAX_PER_IP 128
#define H2K_API_TIMEOUT 30
/*
 * Seconds a client has to send a request's line and headers (from the
 * connection or its previous answer) and, again, its body: trickling a
 * byte now and then does not keep a connection past them.
 */
#define H2K_API_DEADLINE 30
/* Request line and headers of one connection (MHD's memory pool). */
#define H2K_API_MAX_HEADER (32u << 10)
/* An API key file, and the shortest key taken. */
#define H2K_API_KEY_MAX 4096
#define H2K_API_KEY_MIN 16

struct h2k_api_opts {
	struct h2k_spool *spool;  /* open; the caller closes it */
	const char *listen;       /* ADDR:PORT, or NULL: H2K_API_LISTEN */
	const char *key_file;     /* API key file, or NULL */
	const char *cert, *key;   /* TLS, both or neither */
	const char *session;      /* the runner's session file (-s), or NULL */
	double cancel_wait;       /* seconds /jobs/cancel waits for a running job */
};

/*
 * Serve until SIGTERM or SIGINT.  A socket passed by systemd (LISTEN_FDS,
 * LISTEN_PID) is used instead of listen.  Without an API key the address
 * must be loopback (127.0.0.0/8, ::1): else -1 with H2K_EX_USAGE before
 * anything listens.  0 on a signal; -1 with the error set when it could
 * not start.
 */
int h2k_api_serve(const struct h2k_api_opts *o);

/* --- api-json.c ---------------------------------------------------------- */

/* "2026-11-30T01:54:26Z" -> time; -1 when s is not that shape. */
int h2k_api_parse_time(const char *s, time_t *t);
/* A Go time.Duration string ("4.031176186s", "1m2s", "350ms"). */
void h2k_api_go_duration(int64_t ns, char *buf, size_t n);
/*
 * The product's JOB for a record: definition, status, progress, result
 * (for completed jobs), error, started_at, completed_at, updated_at
 * (mtime).  Never holds anything the record does not (no credential can
 * be in a record: job.c refuses them).  NULL on ENOMEM.
 */
cJSON *h2k_api_job(const cJSON *rec, time_t mtime);
/* The JOB's progress object alone (GET /jobs/progress/ID). */
cJSON *h2k_api_progress(const cJSON *rec);
/*
 * "host:port" of a URL or host name, lower case, port 443 when not given,
 * for comparing a job's vcenter.server with the session's.  -1 if bad.
 */
int h2k_api_server_key(const char *s, char *out, size_t n);

#endif
