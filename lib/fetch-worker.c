/*
 * fetch-worker.c - the download workers, and the resume rule.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * Each of the -j N worker threads takes files off the run's queue
 * (fetch.c), downloads each into NAME.part in its VM's folder with one curl
 * easy handle kept from file to file, retries what is transient, and
 * renames the .part once complete and hashed; it settles the file with the
 * VM bookkeeping (under run.mu).  It shares with its hasher thread
 * (fetch-hash.c) the .part's fd, the SHA-256 state and the rehash buffer,
 * by the park/attach protocol described there; with the lease thread only
 * the file's done/total counters (atomics) and vm.failed.
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
 *    file) are every 10 s or 512 MiB, made by the hasher (fetch-hash.c) so the
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
 *
 * Retries.  Resets, timeouts, stalls below the low-speed limit, 408, 429
 * and 5xx are transient: the worker waits (capped exponential backoff with
 * full jitter, at least the server's Retry-After, see backoff.h) and
 * resumes.  opts.retries failed attempts in a row without new bytes give
 * up; an attempt that moved the high-water mark of the file resets the
 * count (a server that cuts every few megabytes still gets the whole disk)
 * and a hard cap bounds the total.  401/403 (session), 404 (lease gone),
 * TLS failures and local I/O errors are not retried.  A converted disk of
 * plain bytes and no stated length that ends cleanly short of the
 * capacity from the line is retried as a cut: a chunked end or a close
 * comes more often from a network or a server hiccup than from a wrong
 * disk, and the decoder's error is the one given when the retries run
 * out, or at once when an attempt ends at the same byte as the one
 * before: a cut does not fall on the same byte twice, a short disk does.
 *
 * Bounds.  A disk saved as served (--format vmdk) is followed by an
 * observe-only decoder from byte 0 (kept across a resume of this run,
 * since it took every byte kept; fed the kept bytes as they are read back
 * for the digest on the resume of a .part of an earlier run) and bounded
 * as a conversion is (save_most): a server sending no length could
 * otherwise fill the file system.  It also tells where the stream ends
 * (save_whole): a body of no length that ends early is resumed as a cut,
 * not renamed as a disk that looks whole.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backoff.h"
#include "crange.h"
#include "fetch-int.h"

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
	char *hp = fetch_url_hostport(url);
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
	m->ident = id && !fetch_has_ctl(id) ? h2k_strdup(id) : NULL;
	m->etag = e && !fetch_has_ctl(e) && strlen(e) < 256 ? h2k_strdup(e) : NULL;
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
int
fetch_meta_write(int dirfd, const char *name, const char *url, const char *ident,
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

static int
truncate_part(struct xfer *x)
{
	struct file *f = x->f;

	/* first: a write the hasher is making must not land after the cut */
	fetch_hz_park(x->w);
	if (ftruncate(x->fd, 0) < 0 || fdatasync(x->fd) < 0) {
		x->io_err = errno;
		x->io_op = "truncate";
		return -1;
	}
	x->have = 0;
	x->synced = 0;
	x->wb_mark = 0;
	if (x->dec) {
		/* a converted disk is decoded from byte 0 of a stream, always */
		h2k_vmdks_reset(x->dec);
		h2k_diskout_reset(x->out);
	}
	if (x->obs) {
		h2k_vmdks_reset(x->obs);
		x->obs_sync = 1;
	}
	x->last_sync = h2k_monotime();
	EVP_DigestInit_ex(x->w->sha, EVP_sha256(), NULL);
	(void)fetch_meta_write(f->vm->dirfd, f->meta, f->url, f->ident, x->etag, x->total, 0);
	fetch_hz_attach(x->w, x);
	return 0;
}

static void observe(struct xfer *x, const char *data, size_t n);

/* Rebuild the digest from the first x->have bytes on disk; with observe,
 * feed them to the observer too (reset: a prefix it did not follow). */
static int
rehash(struct xfer *x, int observe_it)
{
	long long pos = 0;

	h2k_progress_phase(x->w->run->prog, x->f->prog, H2K_PH_VERIFY);
	fetch_hz_park(x->w);
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
		if (observe_it && x->obs_sync)
			observe(x, (const char *)x->w->rbuf, (size_t)n);
		pos += n;
		if (fetch_cancelled)
			return -1;
	}
	fetch_hz_attach(x->w, x);
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

void
fetch_set_pos(struct xfer *x, long long pos)
{
	atomic_store(&x->f->pos, pos >= 0 ? pos : -1);
	h2k_progress_pos(x->w->run->prog, x->f->prog, pos);
}

/* A streamOptimized disk: its header's capacity and the decoder's position
 * measure a stream of unknown length (compressed bytes would not). */
static void
stream_pos(struct xfer *x, const struct h2k_vmdks *d)
{
	struct file *f = x->f;
	long long cap;

	if (h2k_vmdks_is_vmdk(d) != 1)
		return;
	cap = h2k_vmdks_capacity(d);
	if (cap > 0 && atomic_exchange(&f->cap_hint, cap) != cap)
		h2k_progress_capacity(x->w->run->prog, f->prog, cap);
	fetch_set_pos(x, h2k_vmdks_pos(d));
}

/*
 * A disk saved as it comes (--format vmdk) is bounded as a conversion is,
 * whatever the server says of its length: by what the observer learnt
 * from byte 0 (plain bytes: the capacity from the line; streamOptimized:
 * the longest stream of its header's capacity, or the end-of-stream
 * marker plus its padding), else, when the observer could not read the
 * header ("KDMV" but no header it takes), by the longest stream of the
 * line's capacity.  A .part left by an earlier run is fed to the observer
 * as rehash reads it back.  -1: no bound known (yet).
 */
static long long
save_most(const struct xfer *x)
{
	int kind;

	if (!x->obs)
		return -1;
	kind = h2k_vmdks_is_vmdk(x->obs);
	if (kind == 0)
		return x->line_cap > 0 ? x->line_cap : -1;
	if (kind == 1)
		return h2k_vmdks_most(x->obs);
	if (!x->obs_sync && x->line_cap > 0)
		return h2k_vmdk_stream_most(x->line_cap);
	return -1;
}

/* What the bound most is, in words, and the stream offset to name. */
static void
save_words(const struct xfer *x, long long most, char *buf, size_t n, long long *at)
{
	int kind = h2k_vmdks_is_vmdk(x->obs);
	long long eos = h2k_vmdks_eos(x->obs);

	*at = most;
	if (kind == 0)
		snprintf(buf, n, "plain bytes longer than its capacity %lld bytes", most);
	else if (eos >= 0) {
		*at = eos;
		snprintf(buf, n, "more than %lld bytes of padding after the end-of-stream "
		    "marker", most - eos);
	} else
		snprintf(buf, n, "longer than a streamOptimized VMDK of capacity %lld bytes "
		    "can be (%lld bytes)", kind == 1 ? h2k_vmdks_capacity(x->obs) :
		    x->line_cap, most);
}

/* The server's failure, not retried (judge): the same lease would send
 * the same bytes. */
static void
bound_fail(struct xfer *x, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(x->conv_msg, sizeof x->conv_msg, fmt, ap);
	va_end(ap);
	x->conv_err = 1;
	x->conv_code = H2K_EX_NET;
}

/* A length announced past the bound fails before a byte of it is written;
 * before the first sector, a VMDK's bound from the line's capacity is the
 * largest a valid stream may be. */
static int
save_announced(struct xfer *x)
{
	long long most = save_most(x), at;
	char w[256];

	if (!x->obs || x->total < 0)
		return 0;
	/* the observer follows from byte 0: held against the stream's own
	 * bound with its first bytes, before any is written (a header may
	 * state more than the line's capacity) */
	if (most < 0 && x->obs_sync)
		return 0;
	if (most < 0 && x->line_cap > 0)
		most = h2k_vmdk_stream_most(x->line_cap);
	if (most < 0 || x->total <= most)
		return 0;
	save_words(x, most, w, sizeof w, &at);
	bound_fail(x, "length %lld announced: %s", x->total, w);
	return -1;
}

/* n bytes of the stream, in order from byte 0, to the observer: a stream
 * it cannot follow is saved all the same, bounded by what it learnt;
 * plain bytes are their own position */
static void
observe(struct xfer *x, const char *data, size_t n)
{
	if (h2k_vmdks_feed(x->obs, data, n) < 0 || h2k_vmdks_is_vmdk(x->obs) == 0)
		x->obs_sync = 0;
}

/* Kept bytes up to upto past the bound: conv_err said, -1. */
static int
past_bound(struct xfer *x, long long upto)
{
	long long most = save_most(x), at;
	char w[256];

	if (most < 0 || upto <= most)
		return 0;
	save_words(x, most, w, sizeof w, &at);
	bound_fail(x, "offset %lld: %s", at, w);
	return -1;
}

/* n more bytes for a disk saved as it comes: observed (from byte 0 only),
 * then held against the bound; -1 (conv_err set) past it. */
static int
save_room(struct xfer *x, const char *data, size_t n)
{
	if (x->obs_sync) {
		observe(x, data, n);
		if (h2k_vmdks_is_vmdk(x->obs) >= 0 && save_announced(x) < 0)
			return -1;
	}
	return past_bound(x, x->have + (long long)n);
}

/*
 * A disk saved as it comes whose body ended: whole, as far as the
 * observer tells?  A streamOptimized stream it followed to the end must
 * end as a conversion's would (its end-of-stream marker, or every grain
 * its tables list): its own word, not the line's.  Plain bytes are not
 * held to the line's capacity here (a line may overstate it, t0441).
 * -1 and msg said when not (the observer then re-reads the kept bytes on
 * a resume: its end was taken).
 */
static int
save_whole(struct xfer *x, char *msg, size_t n)
{
	if (!x->obs_sync || h2k_vmdks_is_vmdk(x->obs) != 1)
		return 0;
	if (h2k_vmdks_finish(x->obs) < 0) {
		snprintf(msg, n, "%s", h2k_errmsg());
		x->obs_sync = 0;
		return -1;
	}
	return 0;
}

/* Before the kept bytes are read back: the observer goes on if it took
 * every one (a cut of this run); a prefix left by an earlier run (or one
 * it lost, or whose end it took) is fed to it again from byte 0, as the
 * bytes are read for the digest.  1: to feed. */
static int
obs_refeed(struct xfer *x)
{
	if (!x->obs || (x->obs_sync && h2k_vmdks_consumed(x->obs) == x->have))
		return 0;
	h2k_vmdks_reset(x->obs);
	x->obs_sync = 1;
	return 1;
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
		return save_announced(x);
	case H2K_RESUME_APPEND: {
		struct h2k_crange cr;
		int refeed = obs_refeed(x);
		if (h2k_crange_parse(x->cr, strlen(x->cr), &cr) == 0 && cr.has_total)
			x->total = (long long)cr.total;
		if (!x->etag && ne) {
			x->etag = h2k_strdup(ne);
			(void)fetch_meta_write(f->vm->dirfd, f->meta, f->url, f->ident, x->etag, x->total, x->synced);
		}
		if (rehash(x, refeed) < 0)
			return -1;
		publish(x);
		if (x->obs && x->obs_sync)
			stream_pos(x, x->obs);
		/* kept past the bound (an older run's): no more of it */
		if (x->obs && past_bound(x, x->have) < 0)
			return -1;
		return save_announced(x);
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
		if (fetch_has_ctl(x->new_etag))
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

/* The decoder or the image failed: keep why for judge(). */
static void
conv_fail(struct xfer *x)
{
	x->conv_err = 1;
	x->conv_code = h2k_errcode();
	snprintf(x->conv_msg, sizeof x->conv_msg, "%s", h2k_errmsg());
}

/* A raw image hashed as it is written (fetch-hash.c), not read back. */
static int
raw_inflight(const struct xfer *x)
{
	return x->dec && x->f->conv == H2K_FMT_RAW && x->w->hz_on;
}

/* The decoder's sink: the image, then the hasher told what is final. */
static int
conv_put(void *arg, long long off, const unsigned char *buf, size_t len)
{
	struct xfer *x = arg;
	long long had = h2k_diskout_data(x->out);
	const char *op = NULL;
	int e, later = 0;

	/* a direct image's grains are written by the hasher, from its ring:
	 * the socket's thread does not wait for the disk */
	if (raw_inflight(x) && x->w->hz_ring) {
		if ((later = h2k_diskout_put_later(x->out, off, buf, len)) < 0)
			return -1;
	} else if (h2k_diskout_put(x->out, off, buf, len) < 0)
		return -1;
	if (!raw_inflight(x))
		return 0;
	e = h2k_diskout_data(x->out) != had ? fetch_hz_grain(x->w, off, buf, len, later, &op) :
	    fetch_hz_raw(x->w, -1, off + (long long)len, &op);
	if (e)
		return h2k_seterr(H2K_EX_IO, "%s/%s: %s: %s", x->f->vm->dir, x->f->part,
		    op ? op : "read back for SHA-256", strerror(e));
	return 0;
}

/* The inline checkpoint, without a hasher thread. */
static int
checkpoint(struct xfer *x)
{
	int e = fetch_make_durable(x, x->have);

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
	if (x->dec) {
		/* decoded as it arrives; hashed once complete (see finish) */
		if (h2k_vmdks_feed(x->dec, data, n) < 0 ||
		    (h2k_vmdks_is_vmdk(x->dec) == 1 &&
		    h2k_diskout_size(x->out, h2k_vmdks_capacity(x->dec)) < 0)) {
			conv_fail(x);
			return 0;
		}
		x->have += (long long)n;
		x->got += (long long)n;
		/* both images are written front to back: start writeback of
		 * what lies behind, or the final fsync has it all to do (the
		 * hasher does it for a raw image it follows) */
		if (!raw_inflight(x))
			x->wb_mark = fetch_write_behind(x->fd, x->wb_mark, h2k_diskout_end(x->out));
		publish(x);
		stream_pos(x, x->dec);
		return n;
	}
	if (x->obs && save_room(x, data, n) < 0)
		return 0;
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
		int e = fetch_hz_feed(x->w, x->have, &op);
		if (e) {
			x->io_err = e;
			x->io_op = op;
			return 0;
		}
	} else {
		EVP_DigestUpdate(x->w->sha, data, n);
		x->wb_mark = fetch_write_behind(x->fd, x->wb_mark, x->have);
		if (fetch_ckpt_due(x->have, x->synced, x->last_sync) && checkpoint(x) < 0)
			return 0;
	}
	publish(x);
	if (x->obs && x->obs_sync)
		stream_pos(x, x->obs);
	return n;
}

static int
xferinfo_cb(void *arg, curl_off_t dlt, curl_off_t dln, curl_off_t ult, curl_off_t uln)
{
	struct xfer *x = arg;

	(void)dlt; (void)dln; (void)ult; (void)uln;
	if (fetch_cancelled || x->f->vm->failed) {
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

	while (!fetch_cancelled && !f->vm->failed) {
		double left = end - h2k_monotime();
		if (left <= 0)
			break;
		struct timespec ts = { 0, 0 };
		left = left > 0.1 ? 0.1 : left;
		ts.tv_nsec = (long)(left * 1e9);
		nanosleep(&ts, NULL);
	}
}

/*
 * A qcow2 image is not written in file order, so the hasher cannot follow
 * its writes: its header, L1 and refcount tables come first in the file
 * and are known only at the end (where the L2 tables land, how many
 * clusters hold data), and reserving them up front would still leave
 * their bytes unknown.  The complete file is read back once, from the
 * page cache, before the rename (a raw image too when no hasher thread
 * could be had; else it is hashed as it is written, fetch-hash.c).
 * Holes are not read (SEEK_DATA): their zeros are hashed from a constant
 * buffer, which halves the cost of a sparse disk (the kernel's zero-fill
 * of every page read cost more than the hash itself).
 */
static const unsigned char zeros[REHASH_BUF];

/* 0, -1 with errno, or -2 when cancelled. */
static int
hash_file(struct xfer *x, long long *size)
{
	struct stat st;
	long long pos = 0, data_end = 0;

	if (fstat(x->fd, &st) < 0)
		return -1;
	EVP_DigestInit_ex(x->w->sha, EVP_sha256(), NULL);
	while (pos < st.st_size) {
		if (pos >= data_end) {
			off_t d = lseek(x->fd, pos, SEEK_DATA);
			if (d < 0 && errno != ENXIO)
				d = pos;        /* no SEEK_DATA here: read it all */
			if (d < 0 || d > st.st_size)
				d = st.st_size;
			while (pos < d) {
				size_t z = d - pos < REHASH_BUF ? (size_t)(d - pos) : REHASH_BUF;
				EVP_DigestUpdate(x->w->sha, zeros, z);
				pos += (long long)z;
				if (fetch_cancelled || x->f->vm->failed)
					return -2;
			}
			if (pos >= st.st_size)
				break;
			off_t h = lseek(x->fd, pos, SEEK_HOLE);
			data_end = h > pos && h <= st.st_size ? h : st.st_size;
		}
		size_t want = data_end - pos < REHASH_BUF ? (size_t)(data_end - pos) : REHASH_BUF;
		ssize_t n = pread(x->fd, x->w->rbuf, want, pos);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return -1;
		}
		EVP_DigestUpdate(x->w->sha, x->w->rbuf, (size_t)n);
		pos += n;
		if (fetch_cancelled || x->f->vm->failed)
			return -2;
	}
	*size = pos;
	return 0;
}

/* A disk saved as served: what kind of VMDK (if any), how large a disk. */
static void
sniff(struct xfer *x)
{
	struct file *f = x->f;
	unsigned char sec[512];
	ssize_t n = pread(x->fd, sec, sizeof sec, 0);
	long long cap = -1;
	const char *sub = NULL;

	if (!f->disk)
		return;
	if (n > 0 && h2k_vmdk_sniff(sec, (size_t)n, &sub, &cap))
		f->subformat = sub;
	else
		cap = x->have;  /* plain bytes: they are the disk */
	f->capacity = cap;
}

static int
finish(struct xfer *x)
{
	struct file *f = x->f;
	struct vm *vm = f->vm;
	long long size = x->have;

	h2k_progress_phase(x->w->run->prog, f->prog, H2K_PH_VERIFY);
	if (x->dec) {
		const char *op = NULL;
		f->capacity = h2k_vmdks_capacity(x->dec);
		/* the hasher's writes first: the size is set, and the fsync
		 * made, on the whole image */
		int e = raw_inflight(x) ? fetch_hz_written(x->w, &op) : 0;
		if (e == ECANCELED && (fetch_cancelled || vm->failed))
			return -2;
		if (e)
			return h2k_seterr(H2K_EX_IO, "%s/%s: %s: %s", vm->dir, f->part,
			    op ? op : "write", strerror(e));
		if (h2k_diskout_finish(x->out, f->capacity) < 0)
			return -1;
		if (raw_inflight(x)) {
			/* the tail's zeros, hashed while the fsync runs */
			if ((e = fetch_hz_raw(x->w, -1, f->capacity, &op)))
				return h2k_seterr(H2K_EX_IO, "%s/%s: %s: %s", vm->dir, f->part,
				    op ? op : "read back for SHA-256", strerror(e));
			size = f->capacity;
		}
	} else
		sniff(x);
	if (fsync(x->fd) < 0) {
		int e = errno;
		return h2k_seterr(H2K_EX_IO, "%s/%s: fsync: %s", vm->dir, f->part, strerror(e));
	}
	const char *op = NULL;
	int e = fetch_hz_drain(x->w, &op);
	if (e == ECANCELED && (fetch_cancelled || vm->failed))
		return -2;
	if (e)
		return h2k_seterr(H2K_EX_IO, "%s/%s: %s: %s", vm->dir, f->part,
		    op ? op : "read back for SHA-256", strerror(e));
	if (x->dec && !raw_inflight(x) && (e = hash_file(x, &size)) < 0) {
		/* a sparse raw disk hashes its holes too (a TiB takes
		 * minutes): a cancel stops it, and nothing is renamed */
		if (e == -2)
			return -2;
		return h2k_seterr(H2K_EX_IO, "%s/%s: read back for SHA-256: %s", vm->dir,
		    f->part, strerror(errno));
	}
	int fd = x->fd;
	struct stat a, b;
	if (fstat(fd, &a) < 0 || fstatat(vm->dirfd, f->part, &b, AT_SYMLINK_NOFOLLOW) < 0 ||
	    a.st_dev != b.st_dev || a.st_ino != b.st_ino)
		/* another user swapped the name: what we wrote and hashed is
		 * not the file that would get the final name */
		return h2k_seterr(H2K_EX_IO, "%s/%s: replaced by another file while written",
		    vm->dir, f->part);
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
	f->bytes = size;
	atomic_store(&f->done, x->have);
	atomic_store(&f->total, x->have);
	h2k_progress_set(x->w->run->prog, f->prog, x->have, x->have);
	h2k_progress_phase(x->w->run->prog, f->prog, H2K_PH_DONE);
	return 0;
}

enum { DL_OK = 0, DL_FAIL = -1, DL_CANCEL = -2, DL_RETRY = 1 };

/* finish() as an attempt's outcome: -2 is a cancel (nothing renamed). */
static int
finished(struct xfer *x)
{
	int e = finish(x);

	return e == -2 ? DL_CANCEL : e < 0 ? DL_FAIL : DL_OK;
}

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
		if (!f->conv && meta_read(vm->dirfd, f->meta, &m) == 0 && same_source(f, &m) &&
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
	if (x->have == 0 && fetch_meta_write(vm->dirfd, f->meta, f->url, f->ident, NULL, -1, 0) < 0)
		return h2k_seterr(H2K_EX_IO, "%s/%s: %s", vm->dir, f->meta, strerror(errno));
	return 0;
}

/* Forget the last attempt's answer: this one asks from x->have. */
static void
xfer_reset(struct xfer *x)
{
	x->offset = x->have;
	x->status = 0;
	x->cr[0] = x->new_etag[0] = x->retry_after[0] = '\0';
	x->clen = -1;
	x->decided = x->discard = x->restart = x->complete = x->io_err = x->cancelled = 0;
	x->io_op = NULL;
	x->discarded = 0;
	x->got = 0;
	x->plain_short = 0;
}

/* The curl handle for one attempt: a Range from x->offset, with If-Range
 * when a strong validator is known.  *hdrs and *ifr are the caller's to
 * free, range[48] outlives the transfer. */
static int
setup_attempt(struct worker *w, struct xfer *x, struct curl_slist **hdrs, char **ifr,
    char *range)
{
	struct run *r = w->run;
	struct file *f = x->f;

	curl_easy_reset(w->h);
	if (h2k_http_setup(w->h, &w->tls, &w->peer) < 0)
		return -1;
	curl_slist_free_all(*hdrs);
	*hdrs = NULL;
	free(*ifr);
	*ifr = NULL;
	curl_easy_setopt(w->h, CURLOPT_URL, f->url);
	curl_easy_setopt(w->h, CURLOPT_BUFFERSIZE, (long)RECV_BUF);
	curl_easy_setopt(w->h, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(w->h, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(w->h, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(w->h, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(w->h, CURLOPT_XFERINFOFUNCTION, xferinfo_cb);
	curl_easy_setopt(w->h, CURLOPT_XFERINFODATA, x);
	curl_easy_setopt(w->h, CURLOPT_NOPROGRESS, 0L);
	/* the stream is a VMDK: compression would only cost CPU */
	curl_easy_setopt(w->h, CURLOPT_ACCEPT_ENCODING, NULL);
	if (r->cookie && f->cookie)
		curl_easy_setopt(w->h, CURLOPT_COOKIE, r->cookie);
	if (x->offset > 0) {
		snprintf(range, 48, "%lld-", x->offset);
		curl_easy_setopt(w->h, CURLOPT_RANGE, range);
		/* a weak validator must not go in If-Range (RFC 9110 13.1.5) */
		if (x->etag && strncmp(x->etag, "W/", 2) != 0) {
			*ifr = h2k_asprintf("If-Range: %s", x->etag);
			if (!*ifr || !(*hdrs = curl_slist_append(NULL, *ifr)))
				return -1;
			curl_easy_setopt(w->h, CURLOPT_HTTPHEADER, *hdrs);
		}
	}
	return 0;
}

/* Drop the kept bytes and the validator: the next attempt asks from 0. */
static int
start_over(struct xfer *x)
{
	free(x->etag);
	x->etag = NULL;
	x->total = -1;
	if (truncate_part(x) < 0)
		return h2k_seterr(H2K_EX_IO, "%s/%s: truncate: %s", x->f->vm->dir, x->f->part,
		    strerror(x->io_err));
	return 0;
}

/* A body that ended: all of the file, or only a piece?  DL_OK, DL_FAIL,
 * or DL_RETRY with lasterr said. */
static int
body_done(struct xfer *x, const char *what, char *lasterr, size_t ll)
{
	if (x->total >= 0 && x->have < x->total) {
		snprintf(lasterr, ll, "short body: %lld of %lld bytes", x->have, x->total);
		return DL_RETRY;
	}
	if (x->total < 0 && x->status == 206) {
		/* unknown length: the end of this piece is not the end of the file */
		struct h2k_crange cr;
		if (h2k_crange_parse(x->cr, strlen(x->cr), &cr) < 0 ||
		    x->offset + x->got != (long long)cr.last + 1) {
			snprintf(lasterr, ll, "short body");
			return DL_RETRY;
		}
	}
	if (x->dec && h2k_vmdks_finish(x->dec) < 0) {
		if (x->total < 0 && h2k_vmdks_is_vmdk(x->dec) == 0 && x->line_cap > 0 &&
		    x->have < x->line_cap && h2k_errcode() == H2K_EX_NET) {
			/* plain bytes of no stated length ended cleanly short
			 * of the capacity: more often a cut than a wrong
			 * disk; retried from 0, the error kept for the end */
			snprintf(lasterr, ll, "%s", h2k_errmsg());
			x->plain_short = 1;
			return DL_RETRY;
		}
		conv_fail(x);
		h2k_seterr(x->conv_code, "%s: %s", what, x->conv_msg);
		return DL_FAIL;
	}
	if (!x->dec && x->obs) {
		char msg[512];
		if (save_whole(x, msg, sizeof msg) < 0) {
			if (x->total < 0) {
				/* no stated length: a cut first, resumed from
				 * here (a conversion's is retried from 0) */
				snprintf(lasterr, ll, "%s", msg);
				x->plain_short = 1;
				return DL_RETRY;
			}
			/* all the length the server stated: its word */
			h2k_seterr(H2K_EX_NET, "%s: %s", what, msg);
			return DL_FAIL;
		}
	}
	return finished(x);
}

/* An answer that is not a body: transient (DL_RETRY, *ra the server's
 * Retry-After or -1) or the end (DL_FAIL, the error set). */
static int
bad_status(struct xfer *x, const char *what, char *lasterr, size_t ll, double *ra)
{
	const struct h2k_fetch_opts *o = x->w->run->o;
	struct file *f = x->f;
	long s = x->status;

	if (transient_status(s)) {
		snprintf(lasterr, ll, "HTTP %ld", s);
		if (x->retry_after[0]) {
			*ra = h2k_retry_after(x->retry_after, time(NULL), o->retry_after_max);
			if (*ra >= 0)
				snprintf(lasterr, ll, "HTTP %ld (Retry-After %s)", s, x->retry_after);
		}
		return DL_RETRY;
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
		snprintf(lasterr, ll, "HTTP 416 for offset %lld", x->offset);
		return start_over(x) < 0 ? DL_FAIL : DL_RETRY;
	} else
		h2k_seterr(H2K_EX_NET, "%s: HTTP %ld from the server", what, s);
	return DL_FAIL;
}

/* What one attempt came to: DL_OK, DL_FAIL (error set), DL_CANCEL, or
 * DL_RETRY with lasterr and *ra said. */
static int
judge(struct xfer *x, CURLcode cc, const char *what, char *lasterr, size_t ll, double *ra)
{
	struct worker *w = x->w;
	struct file *f = x->f;

	if (x->cancelled || fetch_cancelled || f->vm->failed)
		return DL_CANCEL;
	if (x->io_err) {
		h2k_seterr(H2K_EX_IO, "%s/%s: %s: %s", f->vm->dir, f->part,
		    x->io_op ? x->io_op : "write", strerror(x->io_err));
		return DL_FAIL;
	}
	if (x->conv_err) {
		/* a malformed stream is the server's failure, not retried:
		 * the same lease would serve the same bytes */
		h2k_seterr(x->conv_code, "%s: %s", what, x->conv_msg);
		return DL_FAIL;
	}
	if (x->restart) {
		snprintf(lasterr, ll, "answer did not continue the kept bytes");
		if (start_over(x) < 0)
			return DL_FAIL;
		publish(x);
		return DL_RETRY;
	}
	if (cc == CURLE_OK && x->complete) {
		/* the .part already held the whole stream (killed before
		 * rename): the server's word on its length, the observer's
		 * on its end */
		char msg[512];
		if (rehash(x, obs_refeed(x)) < 0) {
			h2k_seterr(H2K_EX_IO, "%s/%s: read: %s", f->vm->dir, f->part,
			    strerror(x->io_err));
			return DL_FAIL;
		}
		if (!x->dec && x->obs && save_whole(x, msg, sizeof msg) < 0) {
			h2k_seterr(H2K_EX_NET, "%s: %s", what, msg);
			return DL_FAIL;
		}
		return finished(x);
	}
	if (cc == CURLE_OK && (x->status == 200 || x->status == 206))
		return body_done(x, what, lasterr, ll);
	if (cc == CURLE_OK)
		return bad_status(x, what, lasterr, ll, ra);
	if (w->peer.pin_mismatch || !transient_curl(cc) ||
	    (cc == CURLE_SSL_CONNECT_ERROR && strstr(w->peer.errbuf, "certificate"))) {
		h2k_http_fail(cc, &w->peer, what);
		return DL_FAIL;
	}
	snprintf(lasterr, ll, "%s", w->peer.errbuf[0] ? w->peer.errbuf : curl_easy_strerror(cc));
	return DL_RETRY;
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
	long long hwm, short_at = -1;
	int rc = DL_FAIL;
	struct curl_slist *hdrs = NULL;

	memset(&x, 0, sizeof x);
	x.w = w;
	x.f = f;
	x.fd = -1;
	x.line_cap = atomic_load(&f->cap_hint);
	snprintf(what, sizeof what, "%s: %s", f->vm->name, f->name);
	if (open_part(&x) < 0)
		goto out;
	if (f->conv) {
		char *nm = h2k_asprintf("%s/%s", f->vm->dir, f->part);
		x.out = nm ? h2k_diskout_new(x.fd, f->conv, nm) : NULL;
		if (x.out)
			(void)h2k_diskout_direct(x.out, f->vm->dirfd, f->part);
		x.dec = x.out ? h2k_vmdks_new(conv_put, &x) : NULL;
		free(nm);
		if (!x.dec) {
			h2k_seterr(H2K_EX_IO, "%s: out of memory", what);
			goto out;
		}
		/* plain bytes: no more than the disk the line says (the lease's
		 * capacity), else 64 TiB; a VMDK header states its own */
		h2k_vmdks_limit(x.dec, x.line_cap);
	} else if (f->disk)
		x.obs = h2k_vmdks_new(NULL, NULL);  /* NULL: no position, no harm */
	hwm = x.have;
	h2k_backoff_init(&bo, o->retry_delay, o->retry_max_delay);
	w->tls = o->tls;
	w->tls.thumbprint = (char *)pin_for(r, f);
	for (;;) {
		double ra = -1;

		if (fetch_cancelled || f->vm->failed) {
			rc = DL_CANCEL;
			goto out;
		}
		attempts++;
		/* a converted disk cannot resume from a range: from 0 */
		if (x.dec && x.have > 0 && start_over(&x) < 0)
			goto out;
		xfer_reset(&x);
		fetch_hz_park(w);
		EVP_DigestInit_ex(w->sha, EVP_sha256(), NULL);
		/* the position first: a line between the two would show the
		 * old attempt's position beside this one's bytes */
		h2k_progress_restart(r->prog, f->prog);
		atomic_store(&f->pos, -1);
		publish(&x);
		h2k_progress_phase(r->prog, f->prog, H2K_PH_DOWNLOAD);
		if (setup_attempt(w, &x, &hdrs, &ifr, range) < 0)
			goto out;
		CURLcode cc = curl_easy_perform(w->h);
		if ((rc = judge(&x, cc, what, lasterr, sizeof lasterr, &ra)) != DL_RETRY)
			goto out;
		rc = DL_FAIL;
		if (x.have > hwm) {
			/* this attempt brought new bytes: the server is not dead */
			hwm = x.have;
			fails = 0;
			h2k_backoff_reset(&bo);
		} else
			fails++;
		/*
		 * A converted stream starts over from 0: ending short at the
		 * same byte twice is the server's answer, not a cut.
		 */
		int again = x.plain_short && x.dec && x.have == short_at;
		short_at = x.plain_short && x.dec ? x.have : -1;
		if ((fails > o->retries || attempts >= maxattempts || again) && x.plain_short) {
			/* the stream's own words, as when it was not retried */
			h2k_seterr(H2K_EX_NET, "%s: %s", what, lasterr);
			goto out;
		}
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
	fetch_hz_park(w);  /* before the close: the hasher must not read a reused fd */
	if (x.fd >= 0) {
		/* keep the .part: durable up to here for a later resume */
		if (x.have > x.synced && fdatasync(x.fd) == 0)
			(void)fetch_meta_write(f->vm->dirfd, f->meta, f->url, f->ident, x.etag, x.total, x.have);
		close(x.fd);
	}
	curl_slist_free_all(hdrs);
	free(ifr);
	free(x.etag);
	h2k_vmdks_free(x.dec);
	h2k_vmdks_free(x.obs);
	h2k_diskout_free(x.out);
	return rc;
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
		if (fetch_cancelled) {
			char *m = h2k_asprintf("%s: cancelled; .part files kept for a later run",
			    vm->name);
			fetch_vm_fail(vm, H2K_EX_CANCEL, m ? m : "cancelled");
			free(m);
		}
	} else {
		f->state = FS_FAILED;
		h2k_progress_phase(r->prog, f->prog, H2K_PH_FAILED);
		fetch_vm_fail(vm, h2k_errcode(), h2k_errmsg());
	}
	if (--vm->pending == 0)
		fetch_vm_settled(vm);
	pthread_mutex_unlock(&r->mu);
}

void *
fetch_worker_main(void *arg)
{
	struct worker *w = arg;
	struct run *r = w->run;

	fetch_hz_start(w);
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
		int rc = (fetch_cancelled || f->vm->failed) ? DL_CANCEL : download(w, f);
		settle(f, rc);
	}
	fetch_hz_stop(w);
	return NULL;
}
