/*
 * fetch-int.h - what the threads of the h2k-fetch engine share.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * Private to lib/fetch*.c.  The engine is split by thread role:
 *   fetch.c         the run: h2k_fetch_run, the shared structs' lifecycle,
 *                   VM bookkeeping, the work queue, the progress thread
 *   fetch-input.c   the main thread's input: JSON lines -> VMs and queued files
 *   fetch-worker.c  the download workers and the resume rule
 *   fetch-hash.c    each worker's hasher thread: read-back SHA-256,
 *                   write-behind, checkpoints
 *   fetch-lease.c   the lease thread: HttpNfcLeaseProgress keepalive, abort
 * struct run (one per h2k_fetch_run) is guarded by run.mu; struct vm and
 * struct file belong to it; struct worker and struct xfer are one worker's,
 * shared with its hasher under worker.hz_mu.
 */
#ifndef H2K_FETCH_INT_H
#define H2K_FETCH_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "fetch.h"
#include "h2k.h"
#include "http.h"
#include "jsonl.h"
#include "diskout.h"
#include "pathsafe.h"
#include "progress.h"
#include "vmdir.h"
#include "vmdkstream.h"

#define RECV_BUF       (256u << 10)  /* curl's receive buffer per worker */
#define REHASH_BUF     (256u << 10)
#define WRITEBEHIND    (8u << 20)    /* start writeback every 8 MiB */
#define SYNC_BYTES     (512u << 20)  /* checkpoint (fdatasync + meta) */
#define SYNC_SECS      10.0
#define MAX_DISCARD    (64u << 10)   /* body of an error answer we read */
#define META_MAX       (16u << 10)
#define HZ_EXTS        1024          /* data runs of a raw image queued for the hasher */
#define HZ_SLOTS       64            /* grains of a direct raw image queued: 4 MiB */

/* set by h2k_fetch_cancel (a signal handler), read by every thread */
extern atomic_int fetch_cancelled;

enum fstate { FS_QUEUED, FS_RUNNING, FS_OK, FS_FAILED, FS_CANCELLED };

struct vm;
struct xfer;

struct file {
	struct vm *vm;
	int idx;
	char *key, *target_id, *url;
	char *pin;              /* the lease's sslThumbprint for this URL, or NULL
	                         * (the server's when the cookie goes, see
	                         * cookie_policy) */
	int cookie;             /* send the session cookie (see cookie_policy) */
	char *nocookie;         /* why it is withheld, for a 401/403 message */
	int disk;
	long long size_hint;    /* device size from the lease, -1 unknown */
	_Atomic long long cap_hint;  /* the disk's capacity from the line (fetch-input.c
	                         * disk_capacity) or the stream's header, -1 unknown */
	char *name;             /* sanitised final name in the VM folder */
	char *part, *meta;
	char *ident;            /* "VM moref|device key|target id": same device across leases */
	int prog;               /* progress slot */
	enum fstate state;
	enum h2k_disk_format conv;  /* decoded into this format; VMDK: as served */
	/* result */
	long long bytes;
	char sha256[65];
	const char *subformat;  /* a VMDK saved as served: its kind, or NULL */
	long long capacity;     /* the disk's size when known, else -1 */
	/* live, read by the lease thread for the percent; pos: the disk
	 * position a stream decoder has covered, -1 none (fetch_set_pos) */
	_Atomic long long done, total, pos;
};

enum vstate { V_ACTIVE, V_FAILED_PENDING, V_DONE };

struct vm {
	struct run *run;
	cJSON *line;
	long lineno;
	char *name;             /* for messages */
	char *dir;              /* absolute folder */
	int dirfd;
	struct h2k_vmdir vd;    /* the folder's lock (vmdir.h); owns dir and dirfd */
	struct h2k_pathset names;
	char *lease, *snapshot;
	double timeout;
	struct file *files;
	int nfiles, pending;
	_Atomic int failed;     /* read by workers without the lock */
	int errcode;
	int deferred;           /* errmsg not printed yet: the lease may say why */
	char *errmsg;
	int ok;                 /* all files complete and line written */
	enum vstate vstate;
	double next_keepalive;
	int lease_gone;
	double started;
};

struct run {
	const struct h2k_fetch_opts *o;
	FILE *out;
	pthread_mutex_t mu;
	pthread_cond_t cv;      /* queue, VM states */
	struct file **queue;
	size_t qhead, qlen, qcap;
	struct vm **vms;
	size_t nvms, capvms;
	int eof, stop;
	struct h2k_progress *prog;
	char *outabs;
	char *cookie;           /* "vmware_soap_session=..." or NULL */
	char *session_host;     /* host:port of the session URL */
	struct h2k_vim *pv;     /* main thread's session, for cookie_policy */
	char *pv_err;           /* why it could not be had */
	int bad_lines, good_vms, failed_vms, first_code;
	struct vm *first_vm;    /* the VM that set first_code */
	int out_failed;
	/* lease thread */
	pthread_t lease_thr;
	int lease_started;
	pthread_cond_t lease_cv;
	int lease_stop;
};

struct worker {
	struct run *run;
	CURL *h;
	struct h2k_http_peer peer;
	struct h2k_tls tls;     /* per host: pins differ */
	unsigned char *rbuf;    /* the hasher's read buffer, or rehash's */
	EVP_MD_CTX *sha;
	/* the hasher thread (fetch-hash.c); hz_mu guards the rest */
	pthread_t hz_thr;
	int hz_on;              /* thread running; else hashing is inline */
	pthread_mutex_t hz_mu;
	pthread_cond_t hz_work, hz_done;
	int hz_fd;              /* file being hashed, -1 while parked */
	long long hz_hashed;    /* bytes of hz_fd in sha */
	long long hz_target;    /* bytes of hz_fd written so far */
	int hz_busy, hz_idle, hz_err, hz_stop;
	const char *hz_errop;   /* the step hz_err failed: "fsync", "read back for SHA-256" */
	/* durability follows the writes too; copied back to hz_x on park */
	struct xfer *hz_x;      /* the transfer attached, NULL while parked */
	long long hz_synced;    /* bytes covered by the last fdatasync */
	long long hz_wb;        /* write-behind position */
	double hz_last_sync;
	/* a raw image (--format raw): hz_target is the disk position the
	 * decoder covered; below it the bytes are the data runs queued in
	 * hz_ext (a ring), zeros elsewhere; no checkpoints */
	int hz_raw;
	/* put: the slot's bytes are still to be written, by the hasher */
	struct { long long start, end; int put; } hz_ext[HZ_EXTS];
	unsigned hz_eh, hz_en;
	/* a raw image written with O_DIRECT: each run is one grain whose
	 * bytes wait in hz_slot[ring index % HZ_SLOTS] (HZ_SLOTS divides
	 * HZ_EXTS), never merged; the worker blocks while all are queued */
	int hz_ring;
	unsigned char *hz_slot;   /* H2K_DISKOUT_MEMALIGN-aligned */
	struct h2k_diskout *hz_out; /* the image the slots to put go to */
};

struct xfer {
	struct worker *w;
	struct file *f;
	int fd;
	long long offset;       /* what we asked for */
	long long have;         /* bytes valid in the .part */
	long long total;        /* stream length, -1 unknown */
	long long synced;       /* bytes covered by the last fdatasync */
	long long wb_mark;      /* write-behind position */
	double last_sync;
	char *etag;             /* known validator */
	/* this attempt's answer */
	long status;
	char cr[256], new_etag[256], retry_after[128];
	long long clen;
	int decided, discard, restart, complete, io_err, cancelled;
	const char *io_op;      /* the step that failed: write, fsync, ... */
	size_t discarded;
	long long got;
	/* --format raw|qcow2: the decoder and the image it writes */
	struct h2k_vmdks *dec;
	struct h2k_diskout *out;
	/* a disk saved as served: an observe-only decoder for the disk
	 * position (progress), fed while it has seen every byte from 0 */
	struct h2k_vmdks *obs;
	int obs_sync;
	/* the capacity the line said (obs keeps what it learnt of the
	 * stream from byte 0 when it loses track: h2k_vmdks_is_vmdk) */
	long long line_cap;
	int plain_short;        /* the attempt ended as plain bytes short of line_cap */
	int conv_err;           /* the stream or the image failed: conv_msg */
	int conv_code;
	char conv_msg[512];
};

/* fetch.c: messages, helpers, VM bookkeeping (callers hold r->mu where said) */
void fetch_msg(struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int fetch_has_ctl(const char *s);
char *fetch_url_hostport(const char *url);
void fetch_vm_fail(struct vm *vm, int code, const char *why);
void fetch_vm_free(struct vm *vm);
void fetch_vm_settled(struct vm *vm);
int fetch_enqueue(struct run *r, struct file *f);

/* fetch-input.c: the main thread */
int fetch_add_line(struct run *r, cJSON *line, const char *inname, long lineno);

/* fetch-worker.c */
void *fetch_worker_main(void *arg);
/* A stream decoder's disk position (-1: forget it): progress and keepalive
 * measure a stream of unknown length by it against the capacity. */
void fetch_set_pos(struct xfer *x, long long pos);
int fetch_meta_write(int dirfd, const char *name, const char *url, const char *ident,
    const char *etag, long long total, long long synced);

/* fetch-hash.c: durability, and the hasher a worker drives */
int fetch_ckpt_due(long long have, long long synced, double last_sync);
long long fetch_write_behind(int fd, long long mark, long long upto);
int fetch_make_durable(const struct xfer *x, long long upto);
void fetch_hz_start(struct worker *w);
void fetch_hz_stop(struct worker *w);
void fetch_hz_park(struct worker *w);
void fetch_hz_attach(struct worker *w, struct xfer *x);
int fetch_hz_feed(struct worker *w, long long upto, const char **op);
int fetch_hz_raw(struct worker *w, long long data, long long upto, const char **op);
int fetch_hz_grain(struct worker *w, long long off, const unsigned char *buf, size_t len, int put,
    const char **op);
int fetch_hz_written(struct worker *w, const char **op);
int fetch_hz_drain(struct worker *w, const char **op);

/* fetch-lease.c */
void *fetch_lease_main(void *arg);

#endif
