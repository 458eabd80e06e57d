/*
 * fetch.c - the h2k-fetch download engine.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * Threads.  A small pool of -j N workers, each driving one curl easy handle
 * with curl_easy_perform(), rather than one thread driving a curl multi:
 * every disk costs disk writes, fsyncs and, on resume, a rehash of the kept
 * prefix, all of which block; in a single multi loop one disk's fsync or
 * rehash would stall every other transfer past its low-speed limit.  With
 * a worker per transfer those waits stay private, and the retry/backoff
 * logic is straight-line code.  Each worker keeps its easy handle (and so
 * its connection) from one file to the next, so connections to a host are
 * reused.  Memory is curl's receive buffer plus one rehash buffer per
 * worker: nothing grows with the disk.  Beside the workers: the main thread
 * reads the input lines and queues files (downloads start with the first
 * line, while h2k-lease is still preparing the next VM), one thread draws
 * progress, and one "lease thread" does all the SOAP work.
 *
 * The folder.  Each VM writes in a folder of its own, claimed and locked
 * for the whole run (vmdir.h: the naming rule, the .h2k-vm marker, the
 * lock): two VMs of one name never share a folder or a .part.
 *
 * The resume rule.  A file is written as NAME.part; NAME.part.meta records
 * the URL, the VM and device it is ("ident": VM moref, instance UUID,
 * device key, target id), the validator (ETag), the stream length when
 * known, how many bytes were last fsynced ("synced") and the kernel's boot
 * id.  Bytes on disk are kept only when:
 *  - the meta file names this VM and device (never another's), and they
 *    come from this same URL, or from another lease of the same
 *    device of the same VM whose earlier answer carried a strong ETag, which
 *    goes out as If-Range so a changed disk is answered 200 (an h2k-job
 *    retry after a dead runner resumes this way); anything else is
 *    truncated, since its content may differ; when they
 *    were left by an earlier run, all of them if the machine has not
 *    rebooted since (same boot id: a killed process loses nothing the
 *    kernel has), else only up to "synced" (bytes past the last fsync may
 *    be garbage after a power cut).  Checkpoints (fdatasync, then the meta
 *    file) are every 10 s or 512 MiB, made by the hasher (below) so the
 *    socket is read on meanwhile; only a power cut costs up to that much;
 *  - the server answers the Range request 206 with a Content-Range that
 *    starts exactly at the requested offset, whose complete length matches
 *    the one we know, and, when we had an ETag (sent as If-Range unless it
 *    is weak), with the same ETag.
 * A 200 answer means the server sends the whole stream again: the .part is
 * truncated and this body is taken from byte 0.  Any other 206 (a
 * Content-Range that starts elsewhere, a different length, a changed or
 * missing ETag, a malformed header) is refused: the transfer is dropped,
 * the .part truncated and the file asked for again from 0.  Bytes from two
 * answers are never spliced unless the second one proved it continues the
 * first.  When a resume is accepted, the SHA-256 state is rebuilt by
 * reading the kept prefix back from disk, so the digest we print is that of
 * the bytes in the file, not of what we believe we wrote.
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
 * Retries.  Resets, timeouts, stalls below the low-speed limit, 408, 429
 * and 5xx are transient: the worker waits (capped exponential backoff with
 * full jitter, at least the server's Retry-After, see backoff.h) and
 * resumes.  opts.retries failed attempts in a row without new bytes give
 * up; an attempt that moved the high-water mark of the file resets the
 * count (a server that cuts every few megabytes still gets the whole disk)
 * and a hard cap bounds the total.  401/403 (session), 404 (lease gone),
 * TLS failures and local I/O errors are not retried.
 *
 * The lease keepalive.  vSphere drops an NFC lease that hears nothing for
 * its timeout (lease.timeout_s, 300 s by default).  The lease thread calls
 * HttpNfcLeaseProgress for every lease every min(timeout/3, 60) seconds (or
 * --keepalive), with the real percent of that VM's bytes done (never 100
 * before every file is complete), and reads the lease state in the same
 * round: a lease in error fails that VM with the server's message, a lease
 * that is gone fails it too.  Only this thread talks SOAP, so a slow call
 * never delays a download.  When a VM fails (its files settled), this
 * thread aborts its lease (HttpNfcLeaseAbort, unless --keep-lease) and
 * removes the temporary snapshot named in lease.snapshot; .part files are
 * kept (the main thread makes one more kind of SOAP call, the lease's
 * device URLs for the cookie policy, before a line's files are queued).
 * A VM that completed keeps its keepalive until h2k-fetch exits, so
 * the next stage finds the lease alive.  Input lines without a lease (plain
 * URLs) need no session and get no keepalive; a line with a lease and no
 * usable session fails, since nothing would keep that lease alive.
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

#include <curl/curl.h>
#include <openssl/evp.h>

#include "backoff.h"
#include "crange.h"
#include "fetch.h"
#include "h2k.h"
#include "jsonl.h"
#include "lease.h"
#include "ovf.h"
#include "pathsafe.h"
#include "vim.h"
#include "vmdir.h"

#define RECV_BUF       (256u << 10)  /* curl's receive buffer per worker */
#define REHASH_BUF     (256u << 10)
#define WRITEBEHIND    (8u << 20)    /* start writeback every 8 MiB */
#define SYNC_BYTES     (512u << 20)  /* checkpoint (fdatasync + meta) */
#define SYNC_SECS      10.0
#define MAX_DISCARD    (64u << 10)   /* body of an error answer we read */
#define META_MAX       (16u << 10)

/* set by the signal handler, read by every thread: lock-free atomic */
static atomic_int g_cancel;
static int g_devnull = -1;

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
	char *name;             /* sanitised final name in the VM folder */
	char *part, *meta;
	char *ident;            /* "VM moref|device key|target id": same device across leases */
	int prog;               /* progress slot */
	enum fstate state;
	/* result */
	long long bytes;
	char sha256[65];
	/* live, read by the lease thread for the percent */
	_Atomic long long done, total;
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
	/* the hasher thread (see "Hashing" above); hz_mu guards the rest */
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
};

void
h2k_fetch_cancel(void)
{
	int e = errno;

	g_cancel = 1;
	/* The main thread may sit in a read of stdin: give it an EOF. */
	if (g_devnull >= 0)
		(void)dup2(g_devnull, STDIN_FILENO);
	errno = e;
}

/* --- messages ------------------------------------------------------------ */

static void
msg(struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
msg(struct run *r, const char *fmt, ...)
{
	char raw[2048], line[2048];
	va_list ap;
	int n = snprintf(line, sizeof line, "%s: ", r->o->progname ? r->o->progname : "h2k-fetch");

	va_start(ap, fmt);
	vsnprintf(raw, sizeof raw, fmt, ap);
	va_end(ap);
	/* one line, nothing a terminal obeys: server strings (h2k.h) */
	h2k_ttystr(raw, line + n, sizeof line - (size_t)n - 1);
	strcat(line, "\n");
	h2k_progress_msg(r->prog, line);
}

/* --- the resume decision ------------------------------------------------- */

enum h2k_resume
h2k_resume_decide(long status, long long offset, long long total,
    const char *etag, const char *content_range, const char *new_etag)
{
	struct h2k_crange cr;
	int same_etag = !etag || (new_etag && strcmp(etag, new_etag) == 0);

	if (status == 200)
		return H2K_RESUME_FROM0;
	if (status == 206) {
		if (!content_range || h2k_crange_parse(content_range,
		    strlen(content_range), &cr) < 0 || !cr.has_range)
			return H2K_RESUME_RESTART;
		if ((unsigned long long)offset != cr.first)
			return H2K_RESUME_RESTART;
		if (total >= 0 && (!cr.has_total || cr.total != (unsigned long long)total))
			return H2K_RESUME_RESTART;
		if (offset == 0)
			return H2K_RESUME_FROM0;
		if (!same_etag)
			return H2K_RESUME_RESTART;
		return H2K_RESUME_APPEND;
	}
	if (status == 416) {
		if (offset > 0 && content_range && h2k_crange_parse(content_range,
		    strlen(content_range), &cr) == 0 && !cr.has_range &&
		    cr.total == (unsigned long long)offset &&
		    (total < 0 || total == offset) && same_etag)
			return H2K_RESUME_COMPLETE;
		return H2K_RESUME_RESTART;
	}
	return H2K_RESUME_OTHER;
}

/* --- small helpers ------------------------------------------------------- */

static int
has_ctl(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

/* "host:port" of a URL (port defaulted from the scheme), or NULL. */
static char *
url_hostport(const char *url)
{
	CURLU *u = curl_url();
	char *host = NULL, *port = NULL, *out = NULL;

	if (!u)
		return NULL;
	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK)
		out = h2k_asprintf("%s:%s", host, port);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return out;
}

/*
 * The pin for a device URL, strongest word first: --thumbprint for that
 * host; the sslThumbprint the lease gave for the device (vCenter tells us
 * the ESXi host's certificate over the session, as govc uses it); the
 * session's own pin when the URL is on the session's host.  NULL: verify
 * with the CAs (or not at all with -k).
 */
static const char *
pin_for(struct run *r, const struct file *f)
{
	const struct h2k_fetch_opts *o = r->o;
	const char *url = f->url;
	char *hp = url_hostport(url);
	const char *pin = NULL;

	if (!hp)
		return NULL;
	for (int i = 0; i < o->npins && !pin; i++) {
		const char *h = o->pins[i].host;
		size_t hl = h ? strlen(h) : 0;
		/* no host: every host; "host" any port; "host:port" that one
		 * (host names compare without case, as in cookie_policy) */
		if (!h || !*h || strcasecmp(h, hp) == 0 ||
		    (strchr(h, ':') == NULL && strncasecmp(hp, h, hl) == 0 && hp[hl] == ':'))
			pin = o->pins[i].thumbprint;
	}
	if (!pin && f->pin)
		pin = f->pin;
	/* the cookie goes to the session host in any case spelling: so does
	 * the session's pin */
	if (!pin && o->session && o->session->thumbprint && r->session_host &&
	    strcasecmp(hp, r->session_host) == 0)
		pin = o->session->thumbprint;
	free(hp);
	return pin;
}

static void
hexdigest(EVP_MD_CTX *c, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	static const char hx[] = "0123456789abcdef";

	EVP_DigestFinal_ex(c, md, &n);
	for (unsigned i = 0; i < n && i < 32; i++) {
		out[2 * i] = hx[md[i] >> 4];
		out[2 * i + 1] = hx[md[i] & 15];
	}
	out[64] = '\0';
}

static int
fsync_dir(int dirfd, const char *dir)
{
	if (fsync(dirfd) < 0 && errno != EINVAL)
		return h2k_seterr(H2K_EX_IO, "%s: fsync: %s", dir, strerror(errno));
	return 0;
}

/* --- the .part.meta companion -------------------------------------------- */

struct meta {
	char *url, *etag, *ident;
	long long total, synced;
	int same_boot;          /* written since the last boot */
};

static char g_boot_id[64];
static pthread_once_t g_boot_once = PTHREAD_ONCE_INIT;

static void
read_boot_id(void)
{
	FILE *fp = fopen("/proc/sys/kernel/random/boot_id", "re");

	if (fp) {
		if (!fgets(g_boot_id, sizeof g_boot_id, fp))
			g_boot_id[0] = '\0';
		g_boot_id[strcspn(g_boot_id, "\n")] = '\0';
		fclose(fp);
	}
}

/* The kernel's boot id, or "" (then every earlier run counts as another boot). */
static const char *
boot_id(void)
{
	pthread_once(&g_boot_once, read_boot_id);
	return g_boot_id;
}

static void
meta_free(struct meta *m)
{
	free(m->url);
	free(m->etag);
	free(m->ident);
	memset(m, 0, sizeof *m);
}

static int
meta_read(int dirfd, const char *name, struct meta *m)
{
	char buf[META_MAX + 1];
	/* O_NONBLOCK: a FIFO under the meta's name must not hang the worker */
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	struct stat st;
	ssize_t n;
	cJSON *o;

	memset(m, 0, sizeof *m);
	m->total = m->synced = -1;
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -1;
	}
	n = read(fd, buf, META_MAX);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	if (!(o = cJSON_Parse(buf)))
		return -1;
	const char *u = h2k_json_str(o, "url"), *e = h2k_json_str(o, "etag");
	const char *id = h2k_json_str(o, "ident");
	m->url = u ? h2k_strdup(u) : NULL;
	m->ident = id && !has_ctl(id) ? h2k_strdup(id) : NULL;
	m->etag = e && !has_ctl(e) && strlen(e) < 256 ? h2k_strdup(e) : NULL;
	m->total = (long long)h2k_json_num(o, "total", -1);
	m->synced = (long long)h2k_json_num(o, "synced", -1);
	const char *b = h2k_json_str(o, "boot_id");
	m->same_boot = b && *b && *boot_id() && strcmp(b, boot_id()) == 0;
	cJSON_Delete(o);
	return m->url ? 0 : -1;
}

/*
 * Not fsynced on purpose: a lost or stale meta file can only make the next
 * run start over or send a stale If-Range (answered 200), never splice;
 * the callers order their writes so that holds (truncate, fdatasync, then
 * meta).
 */
static int
meta_write(int dirfd, const char *name, const char *url, const char *ident,
    const char *etag, long long total, long long synced)
{
	cJSON *o = cJSON_CreateObject();
	char *txt = NULL;
	int fd = -1, rc = -1;

	if (!o)
		return -1;
	cJSON_AddStringToObject(o, "url", url);
	if (ident)
		cJSON_AddStringToObject(o, "ident", ident);
	if (etag)
		cJSON_AddStringToObject(o, "etag", etag);
	if (total >= 0)
		cJSON_AddNumberToObject(o, "total", (double)total);
	cJSON_AddNumberToObject(o, "synced", (double)(synced > 0 ? synced : 0));
	if (*boot_id())
		cJSON_AddStringToObject(o, "boot_id", boot_id());
	if (!(txt = h2k_json_print(o)))
		goto out;
	/* O_NONBLOCK and S_ISREG: never block on, or write to, a FIFO */
	fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
	if (fd < 0)
		goto out;
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || ftruncate(fd, 0) < 0)
		goto out;
	size_t len = strlen(txt);
	if (write(fd, txt, len) == (ssize_t)len)
		rc = 0;
out:
	if (fd >= 0 && close(fd) < 0)
		rc = -1;
	free(txt);
	cJSON_Delete(o);
	return rc;
}

/* --- one download --------------------------------------------------------- */

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
};

static void
copy_hval(char *dst, size_t cap, const char *v, size_t n)
{
	while (n > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		n--;
	}
	while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == '\n' ||
	    v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	if (n >= cap) {
		/* too long to be honest: make it unparseable */
		snprintf(dst, cap, "!");
		return;
	}
	memcpy(dst, v, n);
	dst[n] = '\0';
}

static int
hname(const char *line, size_t n, const char *name, const char **val, size_t *vlen)
{
	size_t l = strlen(name);

	if (n <= l || strncasecmp(line, name, l) != 0 || line[l] != ':')
		return 0;
	*val = line + l + 1;
	*vlen = n - l - 1;
	return 1;
}

/* --- durability: the hasher's, or inline without one --------------------- */

/* With `have` bytes written, a checkpoint is due: see "The resume rule". */
static int
ckpt_due(long long have, long long synced, double last_sync)
{
	return have > synced && (have - synced >= (long long)SYNC_BYTES ||
	    h2k_monotime() - last_sync >= SYNC_SECS);
}

/*
 * Start writeback of each finished WRITEBEHIND chunk below `upto` without
 * waiting for it: the kernel writes while the socket is read on, and the
 * checkpoints and the final fsync find little left to do.  The new mark.
 */
static long long
write_behind(int fd, long long mark, long long upto)
{
	while (upto - mark >= (long long)WRITEBEHIND) {
		(void)sync_file_range(fd, mark, WRITEBEHIND, SYNC_FILE_RANGE_WRITE);
		mark += WRITEBEHIND;
	}
	return mark;
}

/* Make the first `upto` bytes of x's .part durable and say so in the meta
 * file: 0, or the errno of the fdatasync. */
static int
make_durable(const struct xfer *x, long long upto)
{
	if (fdatasync(x->fd) < 0)
		return errno;
	(void)meta_write(x->f->vm->dirfd, x->f->meta, x->f->url, x->f->ident,
	    x->etag, x->total, upto);
	return 0;
}

/* --- the hasher ---------------------------------------------------------- */

/* A checkpoint is due (hz_mu held). */
static int
hz_ckpt_due(const struct worker *w)
{
	return ckpt_due(w->hz_target, w->hz_synced, w->hz_last_sync);
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
			int e = make_durable(x, upto);
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
		long long from = w->hz_hashed, left = w->hz_target - w->hz_hashed;
		size_t want = left < (long long)REHASH_BUF ? (size_t)left : REHASH_BUF;
		long long wb = w->hz_wb;
		w->hz_busy = 1;
		pthread_mutex_unlock(&w->hz_mu);
		ssize_t n;
		do
			n = pread(fd, w->rbuf, want, from);
		while (n < 0 && errno == EINTR);
		int e = n < 0 ? errno : EIO;
		if (n > 0)
			EVP_DigestUpdate(w->sha, w->rbuf, (size_t)n);
		/* here, not in the socket's thread: a busy disk's queue can
		 * block even sync_file_range */
		if (n > 0)
			wb = write_behind(fd, wb, from + n);
		pthread_mutex_lock(&w->hz_mu);
		w->hz_busy = 0;
		w->hz_wb = wb;
		if (n > 0)
			w->hz_hashed += n;
		else {
			w->hz_err = e;  /* the file is shorter than we wrote: say so */
			w->hz_errop = "read back for SHA-256";
		}
	}
	pthread_mutex_unlock(&w->hz_mu);
	return NULL;
}

/* Start w's hasher; without one (no thread to be had) hashing is inline. */
static void
hz_start(struct worker *w)
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

static void
hz_stop(struct worker *w)
{
	if (!w->hz_on)
		return;
	pthread_mutex_lock(&w->hz_mu);
	w->hz_stop = 1;
	pthread_cond_signal(&w->hz_work);
	pthread_mutex_unlock(&w->hz_mu);
	pthread_join(w->hz_thr, NULL);
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
static void
hz_park(struct worker *w)
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
static void
hz_attach(struct worker *w, struct xfer *x)
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
	pthread_mutex_unlock(&w->hz_mu);
}

/* Bytes below `upto` are written.  Wake the hasher only for a batch of
 * them, or a checkpoint: a wakeup per TLS record would cost more than the
 * hash.  0, or the errno the hasher failed with (*op says at what). */
static int
hz_feed(struct worker *w, long long upto, const char **op)
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

/* Wait until every written byte is hashed, then park.  0, or an errno
 * and in *op what failed. */
static int
hz_drain(struct worker *w, const char **op)
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

static int
truncate_part(struct xfer *x)
{
	struct file *f = x->f;

	if (ftruncate(x->fd, 0) < 0 || fdatasync(x->fd) < 0) {
		x->io_err = errno;
		x->io_op = "truncate";
		return -1;
	}
	x->have = 0;
	x->synced = 0;
	x->wb_mark = 0;
	hz_park(x->w);
	x->last_sync = h2k_monotime();
	EVP_DigestInit_ex(x->w->sha, EVP_sha256(), NULL);
	(void)meta_write(f->vm->dirfd, f->meta, f->url, f->ident, x->etag, x->total, 0);
	hz_attach(x->w, x);
	return 0;
}

/* Rebuild the digest from the first x->have bytes on disk. */
static int
rehash(struct xfer *x)
{
	long long pos = 0;

	h2k_progress_phase(x->w->run->prog, x->f->prog, H2K_PH_VERIFY);
	hz_park(x->w);
	EVP_DigestInit_ex(x->w->sha, EVP_sha256(), NULL);
	while (pos < x->have) {
		size_t want = x->have - pos < REHASH_BUF ? (size_t)(x->have - pos) : REHASH_BUF;
		ssize_t n = pread(x->fd, x->w->rbuf, want, pos);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			x->io_err = n < 0 ? errno : EIO;
			x->io_op = "read";
			return -1;
		}
		EVP_DigestUpdate(x->w->sha, x->w->rbuf, (size_t)n);
		pos += n;
		if (g_cancel)
			return -1;
	}
	hz_attach(x->w, x);
	h2k_progress_phase(x->w->run->prog, x->f->prog, H2K_PH_DOWNLOAD);
	return 0;
}

static void
publish(struct xfer *x)
{
	struct file *f = x->f;
	long long tot = x->total >= 0 ? x->total : f->size_hint;

	atomic_store(&f->done, x->have);
	atomic_store(&f->total, x->total);
	h2k_progress_set(x->w->run->prog, f->prog, x->have, tot >= 0 ? tot : -1);
}

/* The answer's headers are all in: decide what its body means. */
static int
decide(struct xfer *x)
{
	struct file *f = x->f;
	CURL *h = x->w->h;
	enum h2k_resume d;
	const char *ne = x->new_etag[0] ? x->new_etag : NULL;

	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &x->status);
	if (x->status < 200)
		return 0;  /* 100 Continue and friends: more headers follow */
	x->decided = 1;
	d = h2k_resume_decide(x->status, x->offset, x->total, x->offset > 0 ? x->etag : NULL,
	    x->cr[0] ? x->cr : NULL, ne);
	switch (d) {
	case H2K_RESUME_FROM0:
		if (x->offset > 0)
			h2k_debug("%s: server sent the whole file again (HTTP %ld): starting over",
			    f->part, x->status);
		free(x->etag);
		x->etag = ne ? h2k_strdup(ne) : NULL;
		x->total = x->clen;
		if (x->status == 206) {
			struct h2k_crange cr;
			if (h2k_crange_parse(x->cr, strlen(x->cr), &cr) == 0 && cr.has_total)
				x->total = (long long)cr.total;
		}
		if (truncate_part(x) < 0)
			return -1;
		publish(x);
		return 0;
	case H2K_RESUME_APPEND: {
		struct h2k_crange cr;
		if (h2k_crange_parse(x->cr, strlen(x->cr), &cr) == 0 && cr.has_total)
			x->total = (long long)cr.total;
		if (!x->etag && ne) {
			x->etag = h2k_strdup(ne);
			(void)meta_write(f->vm->dirfd, f->meta, f->url, f->ident, x->etag, x->total, x->synced);
		}
		if (rehash(x) < 0)
			return -1;
		publish(x);
		return 0;
	}
	case H2K_RESUME_RESTART:
		h2k_info("%s: answer does not continue the kept bytes (HTTP %ld, "
		    "Content-Range '%s', ETag %s): starting over", f->part, x->status,
		    x->cr, ne ? ne : "none");
		x->restart = 1;
		return -1;
	case H2K_RESUME_COMPLETE:
		x->complete = 1;
		x->discard = 1;
		return 0;
	case H2K_RESUME_OTHER:
		x->discard = 1;
		return 0;
	}
	return 0;
}

static size_t
header_cb(char *line, size_t size, size_t nitems, void *arg)
{
	struct xfer *x = arg;
	size_t n = size * nitems;
	const char *v;
	size_t vl;

	if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
		/* a new answer (after 100 Continue): forget the last one's headers */
		x->cr[0] = x->new_etag[0] = x->retry_after[0] = '\0';
		x->clen = -1;
		return n;
	}
	if (n <= 2 && (line[0] == '\r' || line[0] == '\n')) {
		if (!x->decided && decide(x) < 0)
			return 0;  /* aborts the transfer */
		return n;
	}
	if (hname(line, n, "content-range", &v, &vl))
		copy_hval(x->cr, sizeof x->cr, v, vl);
	else if (hname(line, n, "etag", &v, &vl)) {
		copy_hval(x->new_etag, sizeof x->new_etag, v, vl);
		if (has_ctl(x->new_etag))
			x->new_etag[0] = '\0';
	} else if (hname(line, n, "retry-after", &v, &vl))
		copy_hval(x->retry_after, sizeof x->retry_after, v, vl);
	else if (hname(line, n, "content-length", &v, &vl)) {
		char tmp[32];
		char *end;
		copy_hval(tmp, sizeof tmp, v, vl);
		errno = 0;
		long long c = strtoll(tmp, &end, 10);
		x->clen = (errno || *end || end == tmp || c < 0 || tmp[0] == '-' ||
		    tmp[0] == '+') ? -1 : c;
	}
	return n;
}

/* The inline checkpoint, without a hasher thread. */
static int
checkpoint(struct xfer *x)
{
	int e = make_durable(x, x->have);

	if (e) {
		x->io_err = e;
		x->io_op = "fsync";
		return -1;
	}
	x->synced = x->have;
	x->last_sync = h2k_monotime();
	return 0;
}

static size_t
write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	size_t n = size * nmemb, off = 0;

	if (!x->decided || x->discard) {
		x->discarded += n;
		return x->discarded > MAX_DISCARD ? 0 : n;
	}
	if (x->total >= 0 && x->have + (long long)n > x->total) {
		/* more than the stream length the server announced */
		x->restart = 1;
		return 0;
	}
	while (off < n) {
		ssize_t w = pwrite(x->fd, data + off, n - off, x->have + (long long)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			x->io_err = w < 0 ? errno : ENOSPC;
			x->io_op = "write";
			/* the partial write is past x->have: not trusted later */
			return 0;
		}
		off += (size_t)w;
	}
	x->have += (long long)n;
	x->got += (long long)n;
	if (x->w->hz_on) {
		/* the hasher hashes, writes behind and checkpoints */
		const char *op = NULL;
		int e = hz_feed(x->w, x->have, &op);
		if (e) {
			x->io_err = e;
			x->io_op = op;
			return 0;
		}
	} else {
		EVP_DigestUpdate(x->w->sha, data, n);
		x->wb_mark = write_behind(x->fd, x->wb_mark, x->have);
		if (ckpt_due(x->have, x->synced, x->last_sync) && checkpoint(x) < 0)
			return 0;
	}
	publish(x);
	return n;
}

static int
xferinfo_cb(void *arg, curl_off_t dlt, curl_off_t dln, curl_off_t ult, curl_off_t uln)
{
	struct xfer *x = arg;

	(void)dlt; (void)dln; (void)ult; (void)uln;
	if (g_cancel || x->f->vm->failed) {
		x->cancelled = 1;
		return 1;
	}
	return 0;
}

static int
transient_curl(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_PARTIAL_FILE:
	case CURLE_GOT_NOTHING:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_WEIRD_SERVER_REPLY:
		return 1;
	default:
		return 0;
	}
}

static int
transient_status(long s)
{
	return s == 408 || s == 429 || s == 500 || s == 502 || s == 503 || s == 504;
}

/* Sleep d seconds unless cancelled. */
static void
nap(struct file *f, double d)
{
	double end = h2k_monotime() + d;

	while (!g_cancel && !f->vm->failed) {
		double left = end - h2k_monotime();
		if (left <= 0)
			break;
		struct timespec ts = { 0, 0 };
		left = left > 0.1 ? 0.1 : left;
		ts.tv_nsec = (long)(left * 1e9);
		nanosleep(&ts, NULL);
	}
}

static int
finish(struct xfer *x)
{
	struct file *f = x->f;
	struct vm *vm = f->vm;

	h2k_progress_phase(x->w->run->prog, f->prog, H2K_PH_VERIFY);
	if (fsync(x->fd) < 0) {
		int e = errno;
		return h2k_seterr(H2K_EX_IO, "%s/%s: fsync: %s", vm->dir, f->part, strerror(e));
	}
	const char *op = NULL;
	int e = hz_drain(x->w, &op);
	if (e)
		return h2k_seterr(H2K_EX_IO, "%s/%s: %s: %s", vm->dir, f->part,
		    op ? op : "read back for SHA-256", strerror(e));
	int fd = x->fd;
	x->fd = -1;
	if (close(fd) < 0)
		return h2k_seterr(H2K_EX_IO, "%s/%s: close: %s", vm->dir, f->part, strerror(errno));
	if (renameat(vm->dirfd, f->part, vm->dirfd, f->name) < 0)
		return h2k_seterr(H2K_EX_IO, "%s/%s: rename to %s: %s", vm->dir, f->part,
		    f->name, strerror(errno));
	if (fsync_dir(vm->dirfd, vm->dir) < 0)
		return -1;
	(void)unlinkat(vm->dirfd, f->meta, 0);
	hexdigest(x->w->sha, f->sha256);
	f->bytes = x->have;
	atomic_store(&f->done, x->have);
	atomic_store(&f->total, x->have);
	h2k_progress_set(x->w->run->prog, f->prog, x->have, x->have);
	h2k_progress_phase(x->w->run->prog, f->prog, H2K_PH_DONE);
	return 0;
}

enum { DL_OK = 0, DL_FAIL = -1, DL_CANCEL = -2 };

/*
 * May bytes left by an earlier run be offered for resumption?  Never when
 * the meta file names another VM or device than this file's (or only one
 * of the two names one): those bytes are someone else's disk, whatever
 * the URL.  From the same URL, yes (the 206 checks still apply).  From
 * another lease of the same device of the same VM (an h2k-job retry, or a
 * rerun after the lease was aborted), only when the earlier answer carried
 * a strong ETag: it goes out as If-Range, so a server whose disk changed
 * in between answers 200 and the .part is truncated; without a strong
 * validator nothing proves the bytes are the same and we start over.
 */
int
h2k_fetch_same_source(const char *url, const char *ident, const char *m_url,
    const char *m_ident, const char *m_etag)
{
	if (!m_url || !url)
		return 0;
	if (!ident != !m_ident || (ident && strcmp(ident, m_ident) != 0))
		return 0;
	if (strcmp(m_url, url) == 0)
		return 1;
	return ident && m_etag && m_etag[0] == '"';
}

static int
same_source(const struct file *f, const struct meta *m)
{
	return h2k_fetch_same_source(f->url, f->ident, m->url, m->ident, m->etag);
}

static int
open_part(struct xfer *x)
{
	struct file *f = x->f;
	struct vm *vm = f->vm;
	struct stat st;
	struct meta m;

	x->fd = openat(vm->dirfd, f->part, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (x->fd < 0)
		return h2k_seterr(H2K_EX_IO, "%s/%s: %s", vm->dir, f->part, strerror(errno));
	if (fstat(x->fd, &st) < 0 || !S_ISREG(st.st_mode))
		return h2k_seterr(H2K_EX_IO, "%s/%s: not a regular file", vm->dir, f->part);
	if (st.st_uid != geteuid()) {
		/* planted by another user (a folder made by hand, writable by
		 * others): its bytes are not ours to resume, and its mode may
		 * let that user read the guest's disk: replace it by our own */
		close(x->fd);
		x->fd = -1;
		if (unlinkat(vm->dirfd, f->part, 0) < 0 ||
		    (x->fd = openat(vm->dirfd, f->part, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_CLOEXEC, 0600)) < 0 || fstat(x->fd, &st) < 0) {
			return h2k_seterr(H2K_EX_IO, "%s/%s: another user's file, not replaced: %s",
			    vm->dir, f->part, strerror(errno));
		}
	}
	x->have = st.st_size;
	x->total = -1;
	if (x->have > 0) {
		/* left by an earlier run: only if it came from this very URL;
		 * all of it unless the machine rebooted since, then what that
		 * run fsynced */
		if (meta_read(vm->dirfd, f->meta, &m) == 0 && same_source(f, &m) &&
		    (m.same_boot || m.synced > 0)) {
			long long keep = m.same_boot || m.synced > x->have ? x->have : m.synced;
			if (keep < x->have && ftruncate(x->fd, keep) < 0)
				return h2k_seterr(H2K_EX_IO, "%s/%s: truncate: %s", vm->dir,
				    f->part, strerror(errno));
			x->have = keep;
			x->etag = m.etag;
			m.etag = NULL;
			x->total = m.total;
			h2k_info("%s/%s: resuming after %lld bytes kept from an earlier run",
			    vm->dir, f->part, keep);
		} else {
			h2k_info("%s/%s: not from this lease (or never synced): starting over",
			    vm->dir, f->part);
			if (ftruncate(x->fd, 0) < 0 || fdatasync(x->fd) < 0)
				return h2k_seterr(H2K_EX_IO, "%s/%s: truncate: %s", vm->dir,
				    f->part, strerror(errno));
			x->have = 0;
		}
		meta_free(&m);
	}
	x->synced = x->have;
	x->wb_mark = x->have - x->have % WRITEBEHIND;
	x->last_sync = h2k_monotime();
	if (x->have == 0 && meta_write(vm->dirfd, f->meta, f->url, f->ident, NULL, -1, 0) < 0)
		return h2k_seterr(H2K_EX_IO, "%s/%s: %s", vm->dir, f->meta, strerror(errno));
	return 0;
}

static int
download(struct worker *w, struct file *f)
{
	struct run *r = w->run;
	const struct h2k_fetch_opts *o = r->o;
	struct xfer x;
	struct h2k_backoff bo;
	char what[1024], lasterr[1024] = "", range[48], *ifr = NULL;
	int fails = 0, attempts = 0, maxattempts = o->retries * 10 > 100 ? o->retries * 10 : 100;
	long long hwm;
	int rc = DL_FAIL;
	struct curl_slist *hdrs = NULL;

	memset(&x, 0, sizeof x);
	x.w = w;
	x.f = f;
	x.fd = -1;
	snprintf(what, sizeof what, "%s: %s", f->vm->name, f->name);
	if (open_part(&x) < 0)
		goto out;
	hwm = x.have;
	h2k_backoff_init(&bo, o->retry_delay, o->retry_max_delay);
	w->tls = o->tls;
	w->tls.thumbprint = (char *)pin_for(r, f);
	for (;;) {
		CURLcode cc;
		double ra = -1;

		if (g_cancel || f->vm->failed) {
			rc = DL_CANCEL;
			goto out;
		}
		attempts++;
		x.offset = x.have;
		x.status = 0;
		x.cr[0] = x.new_etag[0] = x.retry_after[0] = '\0';
		x.clen = -1;
		x.decided = x.discard = x.restart = x.complete = x.io_err = x.cancelled = 0;
		x.io_op = NULL;
		x.discarded = 0;
		x.got = 0;
		hz_park(w);
		EVP_DigestInit_ex(w->sha, EVP_sha256(), NULL);
		publish(&x);
		h2k_progress_phase(r->prog, f->prog, H2K_PH_DOWNLOAD);
		h2k_progress_restart(r->prog, f->prog);

		curl_easy_reset(w->h);
		if (h2k_http_setup(w->h, &w->tls, &w->peer) < 0)
			goto out;
		curl_slist_free_all(hdrs);
		hdrs = NULL;
		free(ifr);
		ifr = NULL;
		curl_easy_setopt(w->h, CURLOPT_URL, f->url);
		curl_easy_setopt(w->h, CURLOPT_BUFFERSIZE, (long)RECV_BUF);
		curl_easy_setopt(w->h, CURLOPT_HEADERFUNCTION, header_cb);
		curl_easy_setopt(w->h, CURLOPT_HEADERDATA, &x);
		curl_easy_setopt(w->h, CURLOPT_WRITEFUNCTION, write_cb);
		curl_easy_setopt(w->h, CURLOPT_WRITEDATA, &x);
		curl_easy_setopt(w->h, CURLOPT_XFERINFOFUNCTION, xferinfo_cb);
		curl_easy_setopt(w->h, CURLOPT_XFERINFODATA, &x);
		curl_easy_setopt(w->h, CURLOPT_NOPROGRESS, 0L);
		/* the stream is a VMDK: compression would only cost CPU */
		curl_easy_setopt(w->h, CURLOPT_ACCEPT_ENCODING, NULL);
		if (r->cookie && f->cookie)
			curl_easy_setopt(w->h, CURLOPT_COOKIE, r->cookie);
		if (x.offset > 0) {
			snprintf(range, sizeof range, "%lld-", x.offset);
			curl_easy_setopt(w->h, CURLOPT_RANGE, range);
			/* a weak validator must not go in If-Range (RFC 9110 13.1.5) */
			if (x.etag && strncmp(x.etag, "W/", 2) != 0) {
				ifr = h2k_asprintf("If-Range: %s", x.etag);
				if (!ifr || !(hdrs = curl_slist_append(NULL, ifr)))
					goto out;
				curl_easy_setopt(w->h, CURLOPT_HTTPHEADER, hdrs);
			}
		}
		cc = curl_easy_perform(w->h);

		if (x.cancelled || g_cancel || f->vm->failed) {
			rc = DL_CANCEL;
			goto out;
		}
		if (x.io_err) {
			h2k_seterr(H2K_EX_IO, "%s/%s: %s: %s", f->vm->dir, f->part,
			    x.io_op ? x.io_op : "write", strerror(x.io_err));
			goto out;
		}
		if (x.restart) {
			snprintf(lasterr, sizeof lasterr, "answer did not continue the kept bytes");
			free(x.etag);
			x.etag = NULL;
			x.total = -1;
			if (truncate_part(&x) < 0) {
				h2k_seterr(H2K_EX_IO, "%s/%s: truncate: %s", f->vm->dir, f->part,
				    strerror(x.io_err));
				goto out;
			}
			publish(&x);
			goto retry;
		}
		if (cc == CURLE_OK && x.complete) {
			/* the .part already held the whole stream (killed before rename) */
			if (rehash(&x) < 0) {
				h2k_seterr(H2K_EX_IO, "%s/%s: read: %s", f->vm->dir, f->part,
				    strerror(x.io_err));
				goto out;
			}
			if (finish(&x) < 0)
				goto out;
			rc = DL_OK;
			goto out;
		}
		if (cc == CURLE_OK && (x.status == 200 || x.status == 206)) {
			if (x.total >= 0 && x.have < x.total) {
				snprintf(lasterr, sizeof lasterr, "short body: %lld of %lld bytes",
				    x.have, x.total);
				goto retry;
			}
			if (x.total < 0 && x.status == 206) {
				/* unknown length: the end of this piece is not the end of the file */
				struct h2k_crange cr;
				if (h2k_crange_parse(x.cr, strlen(x.cr), &cr) < 0 ||
				    x.offset + x.got != (long long)cr.last + 1) {
					snprintf(lasterr, sizeof lasterr, "short body");
					goto retry;
				}
			}
			if (finish(&x) < 0)
				goto out;
			rc = DL_OK;
			goto out;
		}
		if (cc == CURLE_OK) {
			long s = x.status;
			if (transient_status(s)) {
				snprintf(lasterr, sizeof lasterr, "HTTP %ld", s);
				if (x.retry_after[0]) {
					ra = h2k_retry_after(x.retry_after, time(NULL), o->retry_after_max);
					if (ra >= 0)
						snprintf(lasterr, sizeof lasterr, "HTTP %ld (Retry-After %s)",
						    s, x.retry_after);
				}
				goto retry;
			}
			if ((s == 401 || s == 403) && f->nocookie)
				h2k_seterr(H2K_EX_SESSION, "%s: HTTP %ld: the session cookie "
				    "was not sent: %s", what, s, f->nocookie);
			else if (s == 401 || s == 403)
				h2k_seterr(H2K_EX_SESSION, "%s: HTTP %ld: the server refused the "
				    "session (expired? run h2k-login and h2k-lease again)", what, s);
			else if (s == 404)
				h2k_seterr(H2K_EX_NOTFOUND, "%s: HTTP 404: no such file on the "
				    "server (lease gone?)", what);
			else if (s == 416) {
				snprintf(lasterr, sizeof lasterr, "HTTP 416 for offset %lld", x.offset);
				free(x.etag);
				x.etag = NULL;
				x.total = -1;
				if (truncate_part(&x) < 0) {
					h2k_seterr(H2K_EX_IO, "%s/%s: truncate: %s", f->vm->dir,
					    f->part, strerror(x.io_err));
					goto out;
				}
				goto retry;
			} else
				h2k_seterr(H2K_EX_NET, "%s: HTTP %ld from the server", what, s);
			goto out;
		}
		if (w->peer.pin_mismatch || !transient_curl(cc) ||
		    (cc == CURLE_SSL_CONNECT_ERROR && strstr(w->peer.errbuf, "certificate"))) {
			h2k_http_fail(cc, &w->peer, what);
			goto out;
		}
		snprintf(lasterr, sizeof lasterr, "%s", w->peer.errbuf[0] ?
		    w->peer.errbuf : curl_easy_strerror(cc));
retry:
		if (x.have > hwm) {
			/* this attempt brought new bytes: the server is not dead */
			hwm = x.have;
			fails = 0;
			h2k_backoff_reset(&bo);
		} else
			fails++;
		if (fails > o->retries || attempts >= maxattempts) {
			h2k_seterr(H2K_EX_NET, "%s: giving up after %d attempt%s: %s", what,
			    attempts, attempts == 1 ? "" : "s", lasterr);
			goto out;
		}
		double d = fails ? h2k_backoff_next(&bo, ra, o->retry_after_max) :
		    (ra > 0 ? ra : 0);
		h2k_info("%s: %s after %lld bytes; retry %d in %.1f s", what, lasterr,
		    x.have, fails, d);
		h2k_progress_phase(r->prog, f->prog, H2K_PH_RETRY);
		nap(f, d);
	}
out:
	hz_park(w);  /* before the close: the hasher must not read a reused fd */
	if (x.fd >= 0) {
		/* keep the .part: durable up to here for a later resume */
		if (x.have > x.synced && fdatasync(x.fd) == 0)
			(void)meta_write(f->vm->dirfd, f->meta, f->url, f->ident, x.etag, x.total, x.have);
		close(x.fd);
	}
	curl_slist_free_all(hdrs);
	free(ifr);
	free(x.etag);
	return rc;
}

/* --- VM bookkeeping ------------------------------------------------------- */

static void
vm_fail(struct vm *vm, int code, const char *why)
{
	struct run *r = vm->run;

	/* caller holds r->mu */
	if (vm->failed)
		return;
	vm->failed = 1;
	vm->errcode = code;
	vm->errmsg = h2k_strdup(why);
	/*
	 * A 404 on a leased URL usually means the lease died, and the lease
	 * thread, which ends the lease of a failed VM, learns why: let it
	 * print the one line for this VM.
	 */
	if (code == H2K_EX_NOTFOUND && vm->lease && r->lease_started && vm->errmsg)
		vm->deferred = 1;
	else
		msg(r, "%s", why);
}

static void
vm_free(struct vm *vm)
{
	for (int i = 0; i < vm->nfiles; i++) {
		struct file *f = &vm->files[i];
		free(f->key);
		free(f->target_id);
		free(f->url);
		free(f->pin);
		free(f->nocookie);
		free(f->name);
		free(f->part);
		free(f->meta);
		free(f->ident);
	}
	free(vm->files);
	vm->dir = NULL;         /* vm->vd's, freed below */
	h2k_vmdir_close(&vm->vd);
	h2k_pathset_free(&vm->names);
	cJSON_Delete(vm->line);
	free(vm->name);
	free(vm->dir);
	free(vm->lease);
	free(vm->snapshot);
	free(vm->errmsg);
	free(vm);
}

/* All files of vm settled (caller holds r->mu): report, or hand to abort. */
static void
vm_settled(struct vm *vm)
{
	struct run *r = vm->run;

	if (!vm->failed) {
		cJSON *o = cJSON_Duplicate(vm->line, 1), *files;
		int wrc = -1;
		/* h2k-ovf takes the folder's lock shared to add the .ovf/.mf:
		 * let it in, and keep everyone else out, before it reads this line */
		if (h2k_vmdir_share(&vm->vd) < 0 && !r->out_failed)
			msg(r, "%s", h2k_errmsg());
		if (o) {
			cJSON_DeleteItemFromObjectCaseSensitive(o, "dir");
			cJSON_DeleteItemFromObjectCaseSensitive(o, "files");
			cJSON_AddStringToObject(o, "dir", vm->dir);
			files = cJSON_AddArrayToObject(o, "files");
			for (int i = 0; files && i < vm->nfiles; i++) {
				struct file *f = &vm->files[i];
				if (f->state != FS_OK)
					continue;
				cJSON *e = cJSON_CreateObject();
				char *p = h2k_asprintf("%s/%s", vm->dir, f->name);
				if (!e || !p) {
					cJSON_Delete(e);
					free(p);
					continue;
				}
				cJSON_AddStringToObject(e, "key", f->key);
				cJSON_AddStringToObject(e, "target_id", f->target_id);
				cJSON_AddBoolToObject(e, "disk", f->disk);
				cJSON_AddStringToObject(e, "path", p);
				cJSON_AddNumberToObject(e, "size", (double)f->bytes);
				cJSON_AddStringToObject(e, "sha256", f->sha256);
				cJSON_AddItemToArray(files, e);
				free(p);
			}
			wrc = h2k_json_write(r->out, o);
			cJSON_Delete(o);
		}
		if (wrc < 0) {
			if (!r->out_failed)
				msg(r, "%s", h2k_errmsg());
			r->out_failed = 1;
			vm->failed = 1;
			vm->errcode = H2K_EX_IO;
		} else {
			vm->ok = 1;
			r->good_vms++;
			if (r->o->progress == H2K_PROGRESS_BAR) {
				/* the bars vanish: leave a line that says what was done */
				long long sum = 0;
				char hb[32];
				for (int i = 0; i < vm->nfiles; i++)
					sum += vm->files[i].bytes;
				double t = h2k_monotime() - vm->started;
				msg(r, "%s: %d file%s, %s in %.1f s", vm->name, vm->nfiles,
				    vm->nfiles == 1 ? "" : "s", h2k_human_bytes((double)sum, hb, sizeof hb),
				    t);
			} else
				h2k_info("%s: complete in %s", vm->name, vm->dir);
		}
	}
	if (vm->failed) {
		r->failed_vms++;
		if (!r->first_code) {
			r->first_code = vm->errcode;
			r->first_vm = vm;
		}
	}
	/* a failed VM with a lease still needs its lease ended by the lease thread */
	if (vm->failed && vm->lease && r->lease_started) {
		vm->vstate = V_FAILED_PENDING;
		pthread_cond_broadcast(&r->lease_cv);
	} else
		vm->vstate = V_DONE;
	pthread_cond_broadcast(&r->cv);
}

static void
settle(struct file *f, int rc)
{
	struct vm *vm = f->vm;
	struct run *r = vm->run;

	pthread_mutex_lock(&r->mu);
	if (rc == DL_OK)
		f->state = FS_OK;
	else if (rc == DL_CANCEL) {
		f->state = FS_CANCELLED;
		h2k_progress_phase(r->prog, f->prog, H2K_PH_FAILED);
		if (g_cancel) {
			char *m = h2k_asprintf("%s: cancelled; .part files kept for a later run",
			    vm->name);
			vm_fail(vm, H2K_EX_CANCEL, m ? m : "cancelled");
			free(m);
		}
	} else {
		f->state = FS_FAILED;
		h2k_progress_phase(r->prog, f->prog, H2K_PH_FAILED);
		vm_fail(vm, h2k_errcode(), h2k_errmsg());
	}
	if (--vm->pending == 0)
		vm_settled(vm);
	pthread_mutex_unlock(&r->mu);
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct run *r = w->run;

	hz_start(w);
	for (;;) {
		struct file *f = NULL;
		pthread_mutex_lock(&r->mu);
		while (!r->stop && r->qlen == 0)
			pthread_cond_wait(&r->cv, &r->mu);
		if (r->qlen > 0) {
			f = r->queue[r->qhead];
			r->qhead = (r->qhead + 1) % r->qcap;
			r->qlen--;
			f->state = FS_RUNNING;
		}
		pthread_mutex_unlock(&r->mu);
		if (!f)
			break;
		h2k_clearerr();
		int rc = (g_cancel || f->vm->failed) ? DL_CANCEL : download(w, f);
		settle(f, rc);
	}
	hz_stop(w);
	return NULL;
}

static int
enqueue(struct run *r, struct file *f)
{
	/* caller holds r->mu */
	if (r->qlen == r->qcap) {
		size_t nc = r->qcap ? r->qcap * 2 : 64;
		struct file **nq = h2k_malloc(nc * sizeof *nq);
		if (!nq)
			return -1;
		for (size_t i = 0; i < r->qlen; i++)
			nq[i] = r->queue[(r->qhead + i) % r->qcap];
		free(r->queue);
		r->queue = nq;
		r->qhead = 0;
		r->qcap = nc;
	}
	r->queue[(r->qhead + r->qlen) % r->qcap] = f;
	r->qlen++;
	pthread_cond_broadcast(&r->cv);
	return 0;
}

/* --- the lease thread ----------------------------------------------------- */

static int
vm_percent(struct vm *vm)
{
	long long done = 0, total = 0;
	int unknown = 0, complete = 0;

	for (int i = 0; i < vm->nfiles; i++) {
		struct file *f = &vm->files[i];
		long long d = atomic_load(&f->done), t = atomic_load(&f->total);
		if (f->state == FS_OK)
			complete++;
		if (t < 0)
			t = f->size_hint;
		if (t <= 0 || d > t) {
			unknown = 1;
			continue;
		}
		done += d;
		total += t;
	}
	if (vm->nfiles > 0 && complete == vm->nfiles)
		return 100;
	int pct = unknown ? (vm->nfiles ? 100 * complete / vm->nfiles : 0) :
	    total > 0 ? (int)(100.0 * (double)done / (double)total) : 0;
	return pct > 99 ? 99 : pct < 0 ? 0 : pct;
}

static double
keepalive_interval(const struct run *r, const struct vm *vm)
{
	double iv = r->o->keepalive;

	if (iv <= 0) {
		iv = vm->timeout > 0 ? vm->timeout / 3 : 60;
		if (iv > 60)
			iv = 60;
	}
	return iv < 1 ? 1 : iv;
}

struct lease_job {
	struct vm *vm;
	char *lease, *snapshot;
	int percent, end;  /* end: abort + snapshot removal */
	int deferred;      /* the VM's error is ours to print */
	char *why;
};

static void *
lease_main(void *arg)
{
	struct run *r = arg;
	struct h2k_vim *v = NULL;
	int vim_failed = 0;
	char *vim_err = NULL;
	int vim_code = 0;

	pthread_mutex_lock(&r->mu);
	for (;;) {
		/* pick the next piece of work, soonest first */
		struct lease_job job = {0};
		double now = h2k_monotime(), next = now + 1;
		int pending_end = 0, live = 0;
		for (size_t i = 0; i < r->nvms; i++) {
			struct vm *vm = r->vms[i];
			if (!vm->lease)
				continue;
			/* even with the lease gone, its snapshot is still ours to remove */
			if (vm->vstate == V_FAILED_PENDING) {
				pending_end = 1;
				if (!job.vm) {
					job.vm = vm;
					job.end = 1;
				}
				continue;
			}
			if (vm->lease_gone)
				continue;
			if (vm->vstate == V_DONE && !vm->ok)
				continue;
			live++;
			if (!job.vm && vm->next_keepalive <= now && !vm->failed) {
				job.vm = vm;
				job.percent = vm_percent(vm);
			} else if (vm->next_keepalive < next)
				next = vm->next_keepalive;
		}
		if (!job.vm) {
			if (r->lease_stop && !pending_end)
				break;
			(void)live;
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			double wait = next - now;
			if (wait < 0.05)
				wait = 0.05;
			if (wait > 1)
				wait = 1;
			ts.tv_sec += (time_t)wait;
			ts.tv_nsec += (long)((wait - (double)(time_t)wait) * 1e9);
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&r->lease_cv, &r->mu, &ts);
			continue;
		}
		struct vm *vm = job.vm;
		job.lease = h2k_strdup(vm->lease);
		job.snapshot = vm->snapshot ? h2k_strdup(vm->snapshot) : NULL;
		job.why = h2k_strdup(vm->errmsg ? vm->errmsg : "h2k-fetch failed");
		job.deferred = job.end && vm->deferred;
		if (!job.end)
			vm->next_keepalive = now + keepalive_interval(r, vm);
		pthread_mutex_unlock(&r->mu);

		/* SOAP, without the lock */
		int failcode = 0;
		char *failmsg = NULL;
		if (!v && !vim_failed) {
			if (!r->o->session) {
				vim_failed = 1;
				vim_code = H2K_EX_SESSION;
				vim_err = h2k_strdup("no session: cannot keep the lease alive "
				    "(run h2k-login, or give -s)");
			} else if (!(v = h2k_vim_from_session(r->o->session))) {
				vim_failed = 1;
				vim_code = h2k_errcode();
				vim_err = h2k_strdup(h2k_errmsg());
			}
		}
		if (job.end) {
			/* a lease already in error or gone has nothing to abort: say why instead */
			char *lmsg = NULL;
			int st = v && job.lease ? h2k_lease_state(v, job.lease, &lmsg) : -1;
			if (st == H2K_LEASE_ERROR && job.deferred) {
				/* the cause, in place of the 404 it led to */
				msg(r, "%s: lease %s is in error: %s", vm->name, job.lease,
				    lmsg ? lmsg : "no message from the server");
				pthread_mutex_lock(&r->mu);
				vm->errcode = H2K_EX_STATE;
				if (r->first_vm == vm)
					r->first_code = H2K_EX_STATE;
				pthread_mutex_unlock(&r->mu);
			} else if (job.deferred)
				msg(r, "%s", job.why);
			if (st == H2K_LEASE_ERROR) {
				/* the VM's line is out: this state, or what left the
				 * lease to time out */
				if (!job.deferred)
					h2k_info("%s: lease %s is in error: %s", vm->name,
					    job.lease, lmsg ? lmsg : "no message from the server");
			} else if (st == H2K_LEASE_GONE) {
				h2k_info("%s: lease %s is gone already", vm->name, job.lease);
			} else if (v && job.lease && !r->o->keep_lease) {
				if (h2k_lease_abort(v, job.lease, job.why) < 0)
					msg(r, "%s: lease %s: abort failed: %s", vm->name, job.lease,
					    h2k_errmsg());
				else
					h2k_info("%s: lease %s aborted", vm->name, job.lease);
			}
			free(lmsg);
			/* the snapshot backs the lease: kept with it under --keep-lease */
			if (v && job.snapshot && !r->o->keep_lease) {
				if (h2k_snapshot_remove(v, job.snapshot, 600) < 0)
					msg(r, "%s: snapshot %s: not removed: %s", vm->name,
					    job.snapshot, h2k_errmsg());
				else
					h2k_info("%s: temporary snapshot %s removed", vm->name,
					    job.snapshot);
			}
			/* without a session the VM's own error said so; the snapshot is news */
			if (!v && !r->o->keep_lease && job.snapshot)
				msg(r, "%s: lease %s left to time out%s: %s", vm->name, job.lease,
				    job.snapshot ? " and snapshot not removed" : "",
				    vim_err ? vim_err : "no session");
		} else if (vim_failed) {
			failcode = vim_code;
			failmsg = h2k_asprintf("%s: lease %s: %s", vm->name, job.lease, vim_err);
		} else {
			char *lmsg = NULL;
			int st;
			char *perr = NULL;
			h2k_clearerr();
			/* a failed Progress is only worth a warning when the lease's
			 * state, asked next, does not explain it */
			if (h2k_lease_progress(v, job.lease, job.percent) < 0 &&
			    h2k_errcode() != H2K_EX_NOTFOUND)
				perr = h2k_strdup(h2k_errmsg());
			st = h2k_lease_state(v, job.lease, &lmsg);
			if (perr && st != H2K_LEASE_ERROR && st != H2K_LEASE_GONE)
				h2k_warn("%s: %s", vm->name, perr);
			free(perr);
			if (st == H2K_LEASE_ERROR) {
				failcode = H2K_EX_STATE;
				failmsg = h2k_asprintf("%s: lease %s is in error: %s", vm->name,
				    job.lease, lmsg ? lmsg : "no message from the server");
			} else if (st == H2K_LEASE_GONE) {
				failcode = H2K_EX_STATE;
				failmsg = h2k_asprintf("%s: lease %s is gone (timed out, "
				    "completed or aborted on the server)", vm->name, job.lease);
			} else if (st == H2K_LEASE_DONE && !vm->ok) {
				failcode = H2K_EX_STATE;
				failmsg = h2k_asprintf("%s: lease %s was completed by someone else",
				    vm->name, job.lease);
			} else if (st < 0)
				h2k_warn("%s: lease %s: state: %s", vm->name, job.lease, h2k_errmsg());
			free(lmsg);
		}

		pthread_mutex_lock(&r->mu);
		if (job.end) {
			vm->vstate = V_DONE;
			vm->lease_gone = 1;
			pthread_cond_broadcast(&r->cv);
		} else if (failcode) {
			if (vm->ok || vm->vstate == V_DONE) {
				/* complete already: the lease is the next stage's now */
				vm->lease_gone = 1;
			} else {
				if (failcode == H2K_EX_STATE)
					vm->lease_gone = 1;  /* nothing to abort */
				vm_fail(vm, failcode, failmsg ? failmsg : "lease failure");
			}
		}
		free(failmsg);
		free(job.lease);
		free(job.snapshot);
		free(job.why);
	}
	pthread_mutex_unlock(&r->mu);
	h2k_vim_free(v);
	free(vim_err);
	return NULL;
}

/* --- input lines ---------------------------------------------------------- */

static int
bad_line(struct run *r, const char *inname, long lineno, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
bad_line(struct run *r, const char *inname, long lineno, const char *fmt, ...)
{
	char why[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	msg(r, "%s:%ld: %s", inname, lineno, why);
	r->bad_lines++;
	return -1;
}

static int
url_ok(struct run *r, const char *url, char *why, size_t wl)
{
	int https = strncasecmp(url, "https://", 8) == 0;
	int http = strncasecmp(url, "http://", 7) == 0;
	char *hp;

	if (has_ctl(url) || strchr(url, ' ')) {
		snprintf(why, wl, "URL has control characters or spaces");
		return 0;
	}
	if (!https && !(http && r->o->tls.allow_http)) {
		snprintf(why, wl, "URL '%.200s' is not https%s", url,
		    http ? " (use --allow-http to permit http)" : "");
		return 0;
	}
	/* curl would call "*" malformed: say what it really is */
	const char *host = url + (https ? 8 : 7);
	if (host[0] == '*' && (host[1] == '/' || host[1] == ':' || host[1] == '\0')) {
		snprintf(why, wl, "URL '%.200s' still has the host '*' (h2k-lease "
		    "substitutes it)", url);
		return 0;
	}
	if (!(hp = url_hostport(url))) {
		snprintf(why, wl, "malformed URL '%.200s'", url);
		return 0;
	}
	free(hp);
	return 1;
}

/*
 * The cookie policy.  The session cookie is the user's vCenter session, and
 * an input line may come from a file anyone wrote: the cookie goes only
 * over https, and only to the session's own host:port or to a URL that the
 * server itself lists, asked over the session now, among the device URLs of
 * the line's lease (an ESXi host, often not the vCenter).  Any other URL is
 * fetched without it; curl never follows a redirect (http.c), so the cookie
 * cannot be carried elsewhere either.  A pin replaces certificate
 * verification, so the line's "ssl_thumbprint" must not choose the
 * certificate the cookie is sent under: a download that carries the cookie
 * is pinned by --thumbprint, else by the session's pin (session host) or
 * the sslThumbprint the server lists with the device URL, else verified
 * with the CAs; the line's pin is dropped.  Runs in the main thread before
 * the files are queued; its one SOAP call per lease is bounded by the SOAP
 * deadline.
 */
static int
cookie_policy(struct run *r, struct vm *vm)
{
	char **urls = NULL, **pins = NULL, *err = NULL, *hp;
	size_t nurls = 0, j;
	int asked = 0, rc = -1;

	for (int i = 0; i < vm->nfiles; i++) {
		struct file *f = &vm->files[i];

		if (!r->cookie)
			continue;
		if (strncasecmp(f->url, "https://", 8) != 0) {
			if (!(f->nocookie = h2k_strdup("plain http never carries it")))
				goto out;
			continue;
		}
		hp = url_hostport(f->url);
		f->cookie = hp && r->session_host && !strcasecmp(hp, r->session_host);
		free(hp);
		if (f->cookie) {
			free(f->pin);   /* the session's own pin or CAs */
			f->pin = NULL;
			continue;
		}
		if (!vm->lease) {
			if (!(f->nocookie = h2k_asprintf("the URL is not on the "
			    "session's server %s and the line names no lease",
			    r->session_host ? r->session_host : "?")))
				goto out;
			continue;
		}
		if (!asked) {
			asked = 1;
			if (!r->pv && !r->pv_err &&
			    !(r->pv = h2k_vim_from_session(r->o->session)) &&
			    !(r->pv_err = h2k_strdup(h2k_errmsg())))
				goto out;
			if ((!r->pv && !(err = h2k_strdup(r->pv_err))) ||
			    (r->pv && h2k_lease_device_urls(r->pv, vm->lease,
			    &urls, &pins, &nurls) < 0 && !(err = h2k_strdup(h2k_errmsg()))))
				goto out;
		}
		for (j = 0; j < nurls && !f->cookie; j++)
			f->cookie = !strcmp(urls[j], f->url);
		if (f->cookie) {
			/* the server's pin for the device, not the line's */
			free(f->pin);
			f->pin = NULL;
			if (pins[j - 1] && !(f->pin = h2k_strdup(pins[j - 1])))
				goto out;
			continue;
		}
		if (!(f->nocookie = err ? h2k_asprintf("the device URLs of lease "
		    "%s could not be read: %s", vm->lease, err) :
		    h2k_asprintf("the URL is not one of the device URLs the "
		    "server lists for lease %s", vm->lease)))
			goto out;
		h2k_info("%s: %s: no session cookie: %s", vm->name, f->url,
		    f->nocookie);
	}
	rc = 0;
out:
	free(err);
	h2k_lease_urls_free(urls, nurls);
	h2k_lease_urls_free(pins, nurls);
	return rc;
}

/* Parse one h2k-lease line into a VM and queue its files. */
static int
add_line(struct run *r, cJSON *line, const char *inname, long lineno)
{
	const cJSON *devs = cJSON_GetObjectItemCaseSensitive(line, "devices");
	const cJSON *lease = cJSON_GetObjectItemCaseSensitive(line, "lease");
	const char *name = h2k_json_str(line, "name");
	const char *moref = h2k_json_str(line, "moref");
	char why[512];
	struct vm *vm;
	int n = 0, i;
	const cJSON *d;

	if (!cJSON_IsArray(devs))
		return bad_line(r, inname, lineno, "no \"devices\" array (is this h2k-lease output?)");
	if (lease && !cJSON_IsNull(lease) && !cJSON_IsObject(lease))
		return bad_line(r, inname, lineno, "\"lease\" is not an object");
	if (cJSON_IsObject(lease) && !h2k_json_str(lease, "moref"))
		return bad_line(r, inname, lineno, "\"lease\" has no moref");
	i = 0;
	cJSON_ArrayForEach(d, devs) {
		const char *u = h2k_json_str(d, "url");
		const cJSON *tid = cJSON_GetObjectItemCaseSensitive(d, "target_id");
		if (!cJSON_IsObject(d))
			return bad_line(r, inname, lineno, "devices[%d] is not an object", i);
		if (!u)
			return bad_line(r, inname, lineno, "devices[%d] has no url", i);
		if (!url_ok(r, u, why, sizeof why))
			return bad_line(r, inname, lineno, "devices[%d]: %s", i, why);
		if (tid && !cJSON_IsString(tid))
			return bad_line(r, inname, lineno, "devices[%d].target_id is not a string", i);
		const char *tp = h2k_json_str(d, "ssl_thumbprint");
		char *tpn = tp && *tp ? h2k_thumbprint_norm(tp) : NULL;
		if (tp && *tp && !tpn)
			return bad_line(r, inname, lineno, "devices[%d].ssl_thumbprint is "
			    "not a SHA-1 or SHA-256 thumbprint", i);
		free(tpn);
		const cJSON *sz = cJSON_GetObjectItemCaseSensitive(d, "size");
		if (sz && !cJSON_IsNull(sz) && (!cJSON_IsNumber(sz) || sz->valuedouble < 0 ||
		    sz->valuedouble > 9e18))
			return bad_line(r, inname, lineno, "devices[%d].size is not a byte count", i);
		const cJSON *dk = cJSON_GetObjectItemCaseSensitive(d, "disk");
		if (r->o->disks_only && cJSON_IsFalse(dk)) {
			i++;
			continue;
		}
		n++;
		i++;
	}

	if (!(vm = h2k_calloc(1, sizeof *vm)))
		return -1;
	vm->run = r;
	vm->dirfd = -1;
	vm->vd.dirfd = vm->vd.lockfd = -1;
	vm->started = h2k_monotime();
	vm->line = line;
	vm->lineno = lineno;
	vm->name = h2k_strdup(name && *name ? name : moref ? moref : "unnamed");
	if (cJSON_IsObject(lease)) {
		vm->lease = h2k_strdup(h2k_json_str(lease, "moref"));
		const char *snap = h2k_json_str(lease, "snapshot");
		vm->snapshot = snap && *snap ? h2k_strdup(snap) : NULL;
		vm->timeout = h2k_json_num(lease, "timeout_s", 300);
	}
	if (!(vm->files = h2k_calloc(n ? (size_t)n : 1, sizeof *vm->files)))
		goto fail;

	/*
	 * The names h2k-ovf writes in this folder (NAME.ovf, NAME.mf,
	 * NAME.ova) are taken first: a device whose target id is one of them
	 * gets NAME-2.ovf, or the descriptor would replace the disk.
	 */
	{
		static const char *const ext[] = { "ovf", "mf", "ova" };
		char *ov = h2k_ovf_safe_name(name ? name : "");
		for (size_t k = 0; ov && k < sizeof ext / sizeof ext[0]; k++) {
			char *t = h2k_asprintf("%s.%s", ov, ext[k]);
			char *c = t ? h2k_pathset_claim(&vm->names, t) : NULL;
			free(t);
			if (!c) {
				free(ov);
				ov = NULL;
				break;
			}
			free(c);
		}
		if (!ov)
			goto fail;
		free(ov);
	}

	i = 0;
	cJSON_ArrayForEach(d, devs) {
		const cJSON *dk = cJSON_GetObjectItemCaseSensitive(d, "disk");
		if (r->o->disks_only && cJSON_IsFalse(dk))
			continue;
		struct file *f = &vm->files[i];
		const cJSON *key = cJSON_GetObjectItemCaseSensitive(d, "key");
		const char *tid = h2k_json_str(d, "target_id");
		char *fb = h2k_asprintf("device-%d", i);
		f->vm = vm;
		f->idx = i;
		f->prog = -1;
		vm->nfiles++;  /* counted now, so a failure below frees what it holds */
		f->url = h2k_strdup(h2k_json_str(d, "url"));
		const char *tp = h2k_json_str(d, "ssl_thumbprint");
		f->pin = tp && *tp ? h2k_thumbprint_norm(tp) : NULL;
		f->key = cJSON_IsString(key) ? h2k_strdup(key->valuestring) :
		    cJSON_IsNumber(key) ? h2k_asprintf("%.0f", key->valuedouble) : h2k_strdup("");
		f->target_id = h2k_strdup(tid ? tid : fb ? fb : "");
		f->disk = !cJSON_IsFalse(dk);
		f->size_hint = (long long)h2k_json_num(d, "size", -1);
		char *s = h2k_pathsafe(tid, fb);
		f->name = s ? h2k_pathset_claim(&vm->names, s) : NULL;
		free(s);
		free(fb);
		if (!f->url || !f->key || !f->target_id || !f->name)
			goto fail;
		f->part = h2k_asprintf("%s.part", f->name);
		f->meta = h2k_asprintf("%s.part.meta", f->name);
		{
			/* which VM and device the bytes of the .part are */
			const char *mo = h2k_json_str(vm->line, "moref");
			const char *iu = h2k_json_str(vm->line, "instance_uuid");
			f->ident = ((mo && *mo) || (iu && *iu)) && *f->key ?
			    h2k_asprintf("%s|%s|%s|%s", mo ? mo : "", iu ? iu : "", f->key,
			    f->target_id) : NULL;
		}
		if (!f->part || !f->meta)
			goto fail;
		atomic_store(&f->total, -1);
		f->prog = h2k_progress_add(r->prog, vm->name, f->name);
		h2k_progress_set(r->prog, f->prog, 0, f->size_hint);
		i++;
	}

	if (cookie_policy(r, vm) < 0)
		goto fail;

	/* the folder (vmdir.h): this VM's alone, locked until we exit, opened
	 * once: every file operation is relative to it */
	{
		struct h2k_vmid id;
		h2k_vmid_from_json(&id, vm->line);
		id.job = r->o->job_id;
		if (h2k_vmdir_claim(r->outabs, &id, r->o->overwrite ? H2K_VMDIR_OVERWRITE : 0,
		    &vm->vd) < 0)
			goto fail;
		vm->dir = vm->vd.path;
		vm->dirfd = vm->vd.dirfd;
	}

	pthread_mutex_lock(&r->mu);
	if (r->nvms == r->capvms) {
		size_t nc = r->capvms ? r->capvms * 2 : 16;
		struct vm **nv = h2k_realloc(r->vms, nc * sizeof *nv);
		if (!nv)
			goto fail_locked;
		r->vms = nv;
		r->capvms = nc;
	}
	r->vms[r->nvms++] = vm;
	vm->pending = vm->nfiles;
	vm->next_keepalive = 0;  /* first keepalive (and state check) at once */
	for (i = 0; i < vm->nfiles; i++)
		if (enqueue(r, &vm->files[i]) < 0) {
			/* cannot queue: the rest never run */
			vm_fail(vm, H2K_EX_FAIL, "out of memory");
			vm->pending -= vm->nfiles - i;
			break;
		}
	if (vm->nfiles == 0 || vm->pending == 0)
		vm_settled(vm);
	pthread_cond_broadcast(&r->lease_cv);
	pthread_mutex_unlock(&r->mu);
	return 0;

fail:
	pthread_mutex_lock(&r->mu);
fail_locked:
	/* the VM is registered (so its lease is ended) but fails at once */
	if (r->nvms == r->capvms) {
		size_t nc = r->capvms ? r->capvms * 2 : 16;
		struct vm **nv = h2k_realloc(r->vms, nc * sizeof *nv);
		if (!nv) {
			pthread_mutex_unlock(&r->mu);
			vm->line = NULL;
			vm_free(vm);
			return -1;
		}
		r->vms = nv;
		r->capvms = nc;
	}
	r->vms[r->nvms++] = vm;
	{
		char *m = h2k_asprintf("%s: %s", vm->name ? vm->name : "?", h2k_errmsg());
		vm_fail(vm, h2k_errcode(), m ? m : h2k_errmsg());
		free(m);
	}
	for (int k = 0; k < vm->nfiles; k++)
		vm->files[k].state = FS_CANCELLED;
	vm->pending = 0;
	vm_settled(vm);
	pthread_mutex_unlock(&r->mu);
	return 0;
}

/* --- the run ---------------------------------------------------------------- */

static void *
progress_main(void *arg)
{
	struct run *r = arg;

	pthread_mutex_lock(&r->mu);
	while (!r->stop) {
		struct timespec ts;
		pthread_mutex_unlock(&r->mu);
		h2k_progress_tick(r->prog);
		pthread_mutex_lock(&r->mu);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&r->cv, &r->mu, &ts);
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

static int
all_done(struct run *r)
{
	for (size_t i = 0; i < r->nvms; i++)
		if (r->vms[i]->vstate != V_DONE)
			return 0;
	return 1;
}

int
h2k_fetch_run(const struct h2k_fetch_opts *o, FILE *in, const char *inname, FILE *out)
{
	struct run r;
	struct worker *ws = NULL;
	pthread_t *wt = NULL, pt;
	int nw = o->jobs > 0 ? o->jobs : 4, started = 0, prog_started = 0, code;
	struct h2k_jsonl rd;
	sigset_t all, old;

	memset(&r, 0, sizeof r);
	r.o = o;
	r.out = out;
	pthread_mutex_init(&r.mu, NULL);
	pthread_cond_init(&r.cv, NULL);
	pthread_cond_init(&r.lease_cv, NULL);
	if (g_devnull < 0)
		g_devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);

	if (h2k_http_global_init() < 0)
		return h2k_errcode();
	if (h2k_mkdirs(o->outdir, 0700) < 0) {
		msg(&r, "%s", h2k_errmsg());
		return h2k_errcode();
	}
	if (!(r.outabs = realpath(o->outdir, NULL))) {
		msg(&r, "%s: %s", o->outdir, strerror(errno));
		return H2K_EX_IO;
	}
	/* it goes into every line as "dir": the next stage would refuse it */
	if (h2k_utf8_bad(r.outabs, strlen(r.outabs))) {
		msg(&r, "%s: not valid UTF-8, which the JSON lines cannot carry",
		    r.outabs);
		free(r.outabs);
		return H2K_EX_USAGE;
	}
	if (o->session && o->session->cookie) {
		const char *c = o->session->cookie;
		if (has_ctl(c) || strchr(c, ';')) {
			msg(&r, "session cookie has characters a cookie cannot have");
			free(r.outabs);
			return H2K_EX_SESSION;
		}
		r.cookie = strncmp(c, "vmware_soap_session=", 20) == 0 ?
		    h2k_strdup(c) : h2k_asprintf("vmware_soap_session=%s", c);
		if (o->session->url)
			r.session_host = url_hostport(o->session->url);
	}
	r.prog = h2k_progress_new(o->progress_fd, o->progress);

	/* only the main thread takes signals: its read of stdin is interrupted */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	if (!(ws = h2k_calloc((size_t)nw, sizeof *ws)) || !(wt = h2k_calloc((size_t)nw, sizeof *wt)))
		goto early;
	for (int i = 0; i < nw; i++) {
		ws[i].run = &r;
		if (!(ws[i].h = curl_easy_init()) || !(ws[i].rbuf = h2k_malloc(REHASH_BUF)) ||
		    !(ws[i].sha = EVP_MD_CTX_new()))
			goto early;
	}
	for (int i = 0; i < nw; i++, started++)
		if (pthread_create(&wt[i], NULL, worker_main, &ws[i]) != 0)
			break;
	if (pthread_create(&r.lease_thr, NULL, lease_main, &r) == 0)
		r.lease_started = 1;
	if (o->progress != H2K_PROGRESS_NONE && pthread_create(&pt, NULL, progress_main, &r) == 0)
		prog_started = 1;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (started == 0 || !r.lease_started) {
		msg(&r, "cannot start threads");
		g_cancel = 1;
	}

	h2k_jsonl_init(&rd, in, inname);
	while (!g_cancel) {
		cJSON *obj = NULL;
		h2k_clearerr();
		int rc = h2k_jsonl_next(&rd, &obj);
		if (g_cancel) {
			cJSON_Delete(obj);
			break;
		}
		if (rc == 0)
			break;
		if (rc < 0) {
			msg(&r, "%s", h2k_errmsg());
			if (h2k_errcode() != H2K_EX_USAGE) {
				if (!r.first_code)
					r.first_code = h2k_errcode();
				r.bad_lines++;
				break;  /* read error: nothing more will come */
			}
			r.bad_lines++;
			continue;
		}
		if (add_line(&r, obj, inname, rd.lineno) < 0)
			cJSON_Delete(obj);
	}
	h2k_jsonl_free(&rd);

	/* wait for every VM; on cancel the workers notice within a second */
	pthread_mutex_lock(&r.mu);
	r.eof = 1;
	while (!all_done(&r) || r.qlen > 0) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&r.cv, &r.mu, &ts);
	}
	r.stop = 1;
	r.lease_stop = 1;
	pthread_cond_broadcast(&r.cv);
	pthread_cond_broadcast(&r.lease_cv);
	pthread_mutex_unlock(&r.mu);

early:
	pthread_mutex_lock(&r.mu);
	r.stop = 1;
	r.lease_stop = 1;
	pthread_cond_broadcast(&r.cv);
	pthread_cond_broadcast(&r.lease_cv);
	pthread_mutex_unlock(&r.mu);
	for (int i = 0; i < started; i++)
		pthread_join(wt[i], NULL);
	if (r.lease_started)
		pthread_join(r.lease_thr, NULL);
	if (prog_started)
		pthread_join(pt, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	h2k_progress_free(r.prog);
	r.prog = NULL;
	for (int i = 0; ws && i < nw; i++) {
		if (ws[i].h)
			curl_easy_cleanup(ws[i].h);
		free(ws[i].rbuf);
		EVP_MD_CTX_free(ws[i].sha);
	}
	free(ws);
	free(wt);

	if (g_cancel)
		code = H2K_EX_CANCEL;
	else if (r.failed_vms == 0 && r.bad_lines == 0)
		code = started ? H2K_EX_OK : H2K_EX_FAIL;
	else if (r.good_vms > 0)
		code = H2K_EX_PARTIAL;
	else if (r.failed_vms == 0)
		code = r.first_code ? r.first_code : H2K_EX_USAGE;
	else
		code = r.first_code ? r.first_code : H2K_EX_FAIL;
	for (size_t i = 0; i < r.nvms; i++)
		vm_free(r.vms[i]);
	free(r.vms);
	free(r.queue);
	free(r.outabs);
	if (r.cookie)
		h2k_freesecret(r.cookie);
	free(r.session_host);
	h2k_vim_free(r.pv);
	free(r.pv_err);
	pthread_mutex_destroy(&r.mu);
	pthread_cond_destroy(&r.cv);
	pthread_cond_destroy(&r.lease_cv);
	return code;
}
