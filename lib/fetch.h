/*
 * fetch.h - the download engine behind h2k-fetch.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * h2k_fetch_run() reads h2k-lease JSON lines, downloads every device of
 * every lease into OUTDIR/<VM folder>/<target id> in parallel (the folder
 * is the VM's alone and locked while in use, see vmdir.h), keeps the leases
 * alive while it does, and writes one JSON line per VM whose files are all
 * complete.  The algorithms (threads, the resume rule, the keepalive) are
 * described at the top of fetch.c and of the files beside it
 * (fetch-int.h lists them).
 */
#ifndef H2K_FETCH_H
#define H2K_FETCH_H

#include <stdio.h>

#include "diskout.h"
#include "http.h"
#include "progress.h"
#include "session.h"

struct h2k_fetch_pin {
	const char *host;       /* "host" or "host:port" */
	const char *thumbprint;
};

struct h2k_fetch_opts {
	const char *outdir;
	/* TLS for device URLs: insecure, ca_file, allow_http, timeouts and
	 * the low-speed limit; thumbprint is ignored (see pins). */
	struct h2k_tls tls;
	/* certificate pins by host (host NULL or "": every host); then a
	 * device's ssl_thumbprint; then the session's pin for its own host */
	const struct h2k_fetch_pin *pins;
	int npins;
	/* the session: its cookie goes with every device GET and it is used
	 * for the lease keepalive; NULL: no cookie, lines with a lease fail */
	const struct h2k_session *session;
	int jobs;               /* parallel downloads, >= 1 */
	int retries;            /* failed attempts in a row before giving up */
	double retry_delay;     /* backoff base, seconds */
	double retry_max_delay; /* backoff cap, seconds */
	double retry_after_max; /* cap on a server's Retry-After, seconds */
	double keepalive;       /* seconds; 0: min(timeout/3, 60) */
	int keep_lease;         /* do not abort leases on failure */
	int disks_only;         /* skip devices with "disk":false */
	int overwrite;          /* replace a completed export in the VM's folder */
	/* disks (devices with "disk":true) as served (H2K_FMT_VMDK), or
	 * decoded as they arrive into NAME.raw / NAME.qcow2 (diskout.h) */
	enum h2k_disk_format format;
	const char *job_id;     /* h2k-job's job (H2K_JOB_ID), NULL outside one:
	                         * a later attempt of the same job redoes the
	                         * export its dead runner's attempt completed */
	enum h2k_progress_mode progress;
	int progress_fd;        /* usually 2 */
	const char *progname;   /* prefix of error lines */
	/* where the error lines go, each whole ("PROG: VM: why\n"), from any
	 * thread; with progress (bar or json) they go through the progress
	 * display on progress_fd instead, so the bars are cleared first.
	 * NULL: not written (the exit status still tells) */
	FILE *errors;
};

/*
 * Run.  Returns the exit status (enum h2k_exit): 0 when every line was
 * good and every VM complete; H2K_EX_PARTIAL when some VMs (or lines)
 * failed and others succeeded; when nothing succeeded, the class of the
 * first failure (H2K_EX_USAGE for bad lines only).  Errors are printed as
 * they happen, one line each, "PROG: VM: why" or "PROG: stdin:N: why",
 * to o->errors (see there).
 */
int h2k_fetch_run(const struct h2k_fetch_opts *o, FILE *in, const char *inname,
    FILE *out);

/*
 * Async-signal-safe: stop everything, keep .part files, exit 10.  It sets
 * a flag only: a read of IN the signal interrupted is the caller's to end
 * (h2k-fetch dup2s /dev/null over its stdin in the handler).
 */
void h2k_fetch_cancel(void);

/*
 * The resume decision, exposed for the unit tests.  Given what we asked
 * for (offset: bytes kept on disk, 0 when no Range was sent), what we know
 * (total: stream length, -1 unknown; etag: validator from an earlier
 * response or NULL) and what the server answered (status, Content-Range
 * header or NULL, ETag header or NULL), returns:
 */
enum h2k_resume {
	H2K_RESUME_APPEND,   /* 206 that continues exactly at offset: keep */
	H2K_RESUME_FROM0,    /* 200 (or 206 from 0): truncate and take this body */
	H2K_RESUME_RESTART,  /* mismatch: drop this answer, truncate, ask again */
	H2K_RESUME_COMPLETE, /* 416 "bytes * / total" with total == offset */
	H2K_RESUME_OTHER,    /* not a success status: the retry logic decides */
};
enum h2k_resume h2k_resume_decide(long status, long long offset,
    long long total, const char *etag, const char *content_range,
    const char *new_etag);

/*
 * The resume rule's first half, for the unit tests: may a .part whose
 * meta file says (m_url, m_ident, m_etag) be resumed by the file at url
 * whose VM/device identity is ident (NULL: none)?  1 yes, 0 no.
 */
int h2k_fetch_same_source(const char *url, const char *ident, const char *m_url,
    const char *m_ident, const char *m_etag);

#endif
