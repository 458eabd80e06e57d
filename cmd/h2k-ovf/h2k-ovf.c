/*
 * h2k-ovf - finish exports: OVF descriptor, manifest, optional OVA, then
 * complete the lease and remove the temporary snapshot.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * Per h2k-fetch line:
 *   1. every file named in files[] must be a regular file in the VM's
 *      folder, under a name h2k-ovf does not write itself (NAME.ovf, .mf,
 *      .ova and their temporary names: the descriptor would replace the
 *      disk), with the size h2k-fetch recorded (--verify: and the SHA-256,
 *      by reading it again; --ova verifies the digests anyway, as the bytes
 *      pass through for packing) -- no manifest for bytes not checked;
 *   2. the lease must not be in error (an export the server gave up on is
 *      not finished, whatever is on disk);
 *   3. OvfManager.CreateDescriptor with the files (device key, name, size),
 *      based on the snapshot when there is one; --remove-cdrom edits it;
 *   4. NAME.ovf and NAME.mf written atomically; --ova packs NAME.ova;
 *   5. HttpNfcLeaseComplete, then RemoveSnapshot of lease.snapshot.
 * A failure at steps 1-4 aborts the lease and removes the snapshot (the
 * export ends here) unless --keep-lease; the downloaded files stay.
 *
 * Keepalive: h2k-fetch keeps every lease alive while it runs, but it may
 * exit while lines still wait here behind a VM being packed into an OVA
 * (minutes for big disks), and a lease that hears nothing for its timeout
 * is lost.  So a reader thread takes each line as soon as it arrives, and a
 * keepalive thread sends HttpNfcLeaseProgress, over its own connection, for
 * every lease read and not yet finished, every min(timeout_s)/3 seconds
 * (1 to 60).  Signals go to the main thread only.
 */
#include <err.h>
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "h2k.h"
#include "jsonl.h"
#include "lease.h"
#include "ovf.h"
#include "session.h"
#include "vim.h"
#include "vmdir.h"

#define SNAPSHOT_TIMEOUT 900.0

static volatile sig_atomic_t got_signal;

static void
on_signal(int sig)
{
	got_signal = sig;
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: h2k-ovf [-hqVv] [-s session] [--keep-lease] [--ova] [--remove-cdrom]\n"
	    "               [--verify]\n");
	exit(H2K_EX_USAGE);
}

struct opts {
	int ova, remove_cdrom, keep_lease, verify;
};

struct file {
	const char *key, *path, *sha256;
	char *base;
	long long size;
	int used;
};

static int
is_hex64(const char *s)
{
	if (!s || strlen(s) != 64)
		return 0;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') ||
		    (*s >= 'A' && *s <= 'F')))
			return 0;
	return 1;
}

/* Same directory, by inode: the descriptor names files relative to itself. */
static int
same_dir(const char *a, const char *b)
{
	struct stat sa, sb;

	return stat(a, &sa) == 0 && stat(b, &sb) == 0 &&
	    sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static int
check_files(cJSON *files, const char *dir, const char *safe,
    const char *label, const struct opts *o, struct file **out, size_t *nout)
{
	size_t n = (size_t)cJSON_GetArraySize(files), i = 0;
	struct file *f;
	cJSON *it;

	*out = NULL;
	*nout = 0;
	if (n == 0)
		return h2k_seterr(H2K_EX_USAGE, "%s: \"files\" is empty",
		    label);
	f = h2k_calloc(n, sizeof *f);
	if (!f)
		return -1;
	*out = f;
	cJSON_ArrayForEach(it, files) {
		struct file *x = &f[i++];
		struct stat st;
		char *d;

		*nout = i;
		x->key = h2k_json_str(it, "key");
		x->path = h2k_json_str(it, "path");
		x->sha256 = h2k_json_str(it, "sha256");
		x->size = (long long)h2k_json_num(it, "size", -1);
		if (!x->key || !x->path || !*x->path || x->size < 0)
			return h2k_seterr(H2K_EX_USAGE, "%s: files[%zu] lacks "
			    "key, path or size", label, i - 1);
		if (!is_hex64(x->sha256))
			return h2k_seterr(H2K_EX_USAGE, "%s: %s: no sha256 from "
			    "h2k-fetch", label, x->path);
		if (!(d = h2k_strdup(x->path)))
			return -1;
		x->base = h2k_strdup(basename(d));
		free(d);
		if (!x->base)
			return -1;
		if (!(d = h2k_strdup(x->path)))
			return -1;
		int same = same_dir(dirname(d), dir);
		free(d);
		if (!same)
			return h2k_seterr(H2K_EX_USAGE, "%s: %s is not in %s",
			    label, x->path, dir);
		/* Writing the descriptor would replace the download. */
		if (h2k_ovf_output_name(safe, x->base))
			return h2k_seterr(H2K_EX_USAGE, "%s: %s: a name h2k-ovf "
			    "writes itself (descriptor, manifest or OVA); refused",
			    label, x->path);
		for (size_t j = 0; j + 1 < i; j++)
			if (!strcmp(f[j].base, x->base))
				return h2k_seterr(H2K_EX_USAGE, "%s: %s listed "
				    "twice", label, x->base);
		if (lstat(x->path, &st) < 0)
			return h2k_seterr(errno == ENOENT ? H2K_EX_NOTFOUND :
			    H2K_EX_IO, "%s: %s: %s", label, x->path,
			    strerror(errno));
		if (!S_ISREG(st.st_mode))
			return h2k_seterr(H2K_EX_IO, "%s: %s: not a regular "
			    "file", label, x->path);
		if ((long long)st.st_size != x->size)
			return h2k_seterr(H2K_EX_IO, "%s: %s: %lld bytes on "
			    "disk, h2k-fetch wrote %lld", label, x->path,
			    (long long)st.st_size, x->size);
		if (o->verify) {
			char hex[65];
			long long sz;
			if (h2k_sha256_file(x->path, hex, &sz) < 0)
				return h2k_adderr("%s", label);
			if (strcasecmp(hex, x->sha256))
				return h2k_seterr(H2K_EX_IO, "%s: %s: SHA-256 "
				    "%s, h2k-fetch recorded %s", label,
				    x->path, hex, x->sha256);
		}
	}
	return 0;
}

static void
free_files(struct file *f, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(f[i].base);
	free(f);
}

static int
find_file(struct file *f, size_t n, const char *base)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(f[i].base, base))
			return (int)i;
	return -1;
}

/*
 * One line.  *ended tells the caller what cleanup is still due after a
 * failure: ENDED_LEASE once the lease needs nothing more (completed, or
 * already dead on the server), ENDED_ALL once the snapshot is dealt with too.
 */
#define ENDED_LEASE 1
#define ENDED_ALL 2
static int
one(struct h2k_vim *v, cJSON *line, const struct opts *o, int *ended)
{
	const char *name = h2k_json_str(line, "name");
	const char *moref = h2k_json_str(line, "moref");
	cJSON *lease = cJSON_GetObjectItemCaseSensitive(line, "lease");
	cJSON *files = cJSON_GetObjectItemCaseSensitive(line, "files");
	const char *lmoref = h2k_json_str(lease, "moref");
	const char *snap = h2k_json_str(lease, "snapshot");
	const char *dirf = h2k_json_str(line, "dir");
	char label[256], *safe = NULL, *dir = NULL, *ovfp = NULL, *mfp = NULL,
	    *ovap = NULL, *lmsg = NULL, *desc = NULL;
	struct h2k_ovf_desc pd = { 0 };
	struct h2k_vmid vid;
	struct h2k_vmdir vd = { .dirfd = -1, .lockfd = -1 };
	struct h2k_ovf_file *of = NULL;
	struct h2k_ova_member *mem = NULL;
	struct h2k_buf mf = { 0 };
	struct file *f = NULL;
	size_t nf = 0, dlen;
	int rc = -1, st, gone = 0;
	char hex[65];

	*ended = 0;
	snprintf(label, sizeof label, "%s", name ? name : moref ? moref : "?");
	if (!name || !moref || !lmoref || !cJSON_IsArray(files))
		return h2k_seterr(H2K_EX_USAGE, "%s: not an h2k-fetch line "
		    "(needs name, moref, lease.moref, files)", label);
	if (dirf)
		dir = h2k_strdup(dirf);
	else {
		const char *p0 = h2k_json_str(cJSON_GetArrayItem(files, 0), "path");
		char *t = h2k_strdup(p0 ? p0 : ".");
		dir = t ? h2k_strdup(dirname(t)) : NULL;
		free(t);
	}
	if (!dir || !(safe = h2k_ovf_safe_name(name)))
		goto out;
	/* the folder must be this VM's and no export may still be writing it */
	h2k_vmid_from_json(&vid, line);
	if (h2k_vmdir_check(dir, &vid, &vd) < 0) {
		/*
		 * Another h2k-ovf is finishing this very line (a second run
		 * started while the first packs): its export is not ours to end.
		 */
		if (vd.writer_busy)
			*ended = ENDED_ALL;
		goto out;
	}
	if (check_files(files, dir, safe, label, o, &f, &nf) < 0)
		goto out;

	st = h2k_lease_state(v, lmoref, &lmsg);
	if (st < 0) {
		h2k_adderr("%s", label);
		goto out;
	}
	if (st == H2K_LEASE_ERROR) {
		h2k_seterr(H2K_EX_STATE, "%s: export lease in error: %s", label,
		    lmsg ? lmsg : "no message");
		*ended = ENDED_LEASE;
		goto out;
	}
	if (st == H2K_LEASE_GONE || st == H2K_LEASE_DONE) {
		/* Completed by an earlier run of h2k-ovf on this line. */
		h2k_warn("%s: lease %s has already ended; writing the "
		    "descriptor anyway", label, lmoref);
		gone = 1;
	}

	of = h2k_calloc(nf, sizeof *of);
	if (!of)
		goto out;
	for (size_t i = 0; i < nf; i++) {
		of[i].device_id = f[i].key;
		of[i].path = f[i].base;
		of[i].size = f[i].size;
	}
	desc = h2k_ovf_create_descriptor(v, moref, snap, name, of, nf, &dlen);
	if (!desc) {
		h2k_adderr("%s", label);
		goto out;
	}
	if (h2k_ovf_process(desc, dlen, o->remove_cdrom, &pd) < 0) {
		h2k_adderr("%s", label);
		goto out;
	}
	if (pd.cdroms)
		h2k_info("%s: removed %d CD-ROM item(s)", label, pd.cdroms);
	for (size_t i = 0; i < pd.nhrefs; i++) {
		int k = find_file(f, nf, pd.hrefs[i]);
		if (k < 0) {
			h2k_seterr(H2K_EX_NET, "%s: the descriptor references "
			    "%s, which h2k-fetch did not download", label,
			    pd.hrefs[i]);
			goto out;
		}
		f[k].used = 1;
	}
	for (size_t i = 0; i < nf; i++)
		if (!f[i].used)
			h2k_warn("%s: %s is not in the descriptor; left out of "
			    "the manifest%s", label, f[i].base,
			    o->ova ? " and the OVA" : "");

	ovfp = h2k_asprintf("%s/%s.ovf", dir, safe);
	mfp = h2k_asprintf("%s/%s.mf", dir, safe);
	if (!ovfp || !mfp)
		goto out;
	h2k_sha256_hex(pd.text, pd.len, hex);
	if (h2k_mf_add(&mf, "SHA256", strrchr(ovfp, '/') + 1, hex) < 0)
		goto out;
	for (size_t i = 0; i < pd.nhrefs; i++) {
		int k = find_file(f, nf, pd.hrefs[i]);
		char lc[65];
		for (int j = 0; j < 65; j++)
			lc[j] = (char)(f[k].sha256[j] >= 'A' &&
			    f[k].sha256[j] <= 'F' ? f[k].sha256[j] + 32 :
			    f[k].sha256[j]);
		if (h2k_mf_add(&mf, "SHA256", f[k].base, lc) < 0)
			goto out;
	}
	if (got_signal) {
		h2k_seterr(H2K_EX_CANCEL, "%s: interrupted", label);
		goto out;
	}
	if (h2k_atomic_write(ovfp, pd.text, pd.len, 0600) < 0 ||
	    h2k_atomic_write(mfp, mf.data, mf.len, 0600) < 0) {
		h2k_adderr("%s", label);
		goto out;
	}
	if (o->ova) {
		size_t nm = 0;
		mem = h2k_calloc(pd.nhrefs + 2, sizeof *mem);
		ovap = h2k_asprintf("%s/%s.ova", dir, safe);
		if (!mem || !ovap)
			goto out;
		mem[nm].name = strrchr(ovfp, '/') + 1;
		mem[nm++].path = ovfp;
		mem[nm].name = strrchr(mfp, '/') + 1;
		mem[nm++].path = mfp;
		for (size_t i = 0; i < pd.nhrefs; i++) {
			int k = find_file(f, nf, pd.hrefs[i]);
			mem[nm].name = f[k].base;
			mem[nm].path = f[k].path;
			mem[nm++].sha256 = f[k].sha256;
		}
		if (h2k_ova_write(ovap, mem, nm, &got_signal) < 0) {
			/* The manifest vouches for bytes that did not match. */
			if (h2k_errcode() != H2K_EX_CANCEL)
				unlink(mfp);
			h2k_adderr("%s", label);
			goto out;
		}
	}
	if (!gone && h2k_lease_complete(v, lmoref) < 0) {
		if (h2k_errcode() != H2K_EX_NOTFOUND) {
			h2k_adderr("%s", label);
			goto out;
		}
		h2k_warn("%s: lease %s ended before it could be completed",
		    label, lmoref);
	}
	*ended = ENDED_LEASE;
	if (snap && h2k_snapshot_remove(v, snap, SNAPSHOT_TIMEOUT) < 0) {
		if (h2k_errcode() != H2K_EX_NOTFOUND) {
			h2k_adderr("%s", label);
			goto out;
		}
	}
	*ended = ENDED_ALL;

	cJSON_DeleteItemFromObjectCaseSensitive(line, "ovf_path");
	cJSON_DeleteItemFromObjectCaseSensitive(line, "mf_path");
	cJSON_DeleteItemFromObjectCaseSensitive(line, "ova_path");
	cJSON_AddStringToObject(line, "ovf_path", ovfp);
	cJSON_AddStringToObject(line, "mf_path", mfp);
	if (ovap)
		cJSON_AddStringToObject(line, "ova_path", ovap);
	if (cJSON_IsObject(lease)) {
		cJSON_DeleteItemFromObjectCaseSensitive(lease, "state");
		cJSON_AddStringToObject(lease, "state", "completed");
	}
	if (pd.cdroms)
		cJSON_AddNumberToObject(line, "cdroms_removed", pd.cdroms);
	if (h2k_json_write(stdout, line) < 0) {
		h2k_adderr("%s: writing stdout", label);
		goto out;
	}
	rc = 0;
out:
	h2k_vmdir_close(&vd);
	free(safe);
	free(dir);
	free(ovfp);
	free(mfp);
	free(ovap);
	free(lmsg);
	free(desc);
	free(of);
	free(mem);
	h2k_buf_free(&mf);
	h2k_ovf_desc_free(&pd);
	free_files(f, nf);
	return rc;
}

/* The export ends here after a failure: give the lease back, drop the snapshot. */
static void
end_export(struct h2k_vim *v, cJSON *line, int ended, const char *why)
{
	cJSON *lease = cJSON_GetObjectItemCaseSensitive(line, "lease");
	const char *lmoref = h2k_json_str(lease, "moref");
	const char *snap = h2k_json_str(lease, "snapshot");
	char msg[1024];
	int code = h2k_errcode();

	snprintf(msg, sizeof msg, "%s", h2k_errmsg());
	if (ended == ENDED_ALL)
		return;
	if (ended < ENDED_LEASE && lmoref && h2k_lease_abort(v, lmoref, why) < 0 &&
	    h2k_errcode() != H2K_EX_NOTFOUND)
		h2k_warn("%s", h2k_errmsg());
	if (snap) {
		/* not h2k's (H2K_EX_STATE): the user's, not to remove */
		if (h2k_snapshot_remove(v, snap, SNAPSHOT_TIMEOUT) < 0 &&
		    h2k_errcode() != H2K_EX_NOTFOUND)
			h2k_warn("%s%s", h2k_errmsg(), h2k_errcode() ==
			    H2K_EX_STATE ? "" : " (remove it by hand)");
	}
	h2k_seterr(code, "%s", msg);
}

struct item {
	cJSON *line;     /* NULL: a bad line, msg and code say why */
	long lineno;
	int code;
	char *msg;
	struct item *next;
};

struct alive {
	char *lease;
	double timeout;
};

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;      /* a line arrived, input ended, or stop */
	struct item *head, *tail;
	int eof, stop;
	struct alive *ka;       /* leases read and not yet finished */
	size_t nka;
	struct h2k_jsonl in;
} q = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

/* Called with q.mu held. */
static void
ka_drop(const char *lease)
{
	for (size_t i = 0; i < q.nka; i++)
		if (!strcmp(q.ka[i].lease, lease)) {
			free(q.ka[i].lease);
			q.ka[i] = q.ka[--q.nka];
			return;
		}
}

static void *
reader(void *arg)
{
	for (;;) {
		struct item *it = calloc(1, sizeof *it);
		cJSON *line = NULL;
		int rc = h2k_jsonl_next(&q.in, &line);

		if (rc == 0 || !it) {
			free(it);
			cJSON_Delete(line);
			break;
		}
		it->lineno = q.in.lineno;
		if (rc < 0) {
			it->code = h2k_errcode();
			it->msg = strdup(h2k_errmsg());
		} else
			it->line = line;
		pthread_mutex_lock(&q.mu);
		const char *lease = line ? h2k_json_str(cJSON_GetObjectItemCaseSensitive(
		    line, "lease"), "moref") : NULL;
		if (lease) {
			struct alive *n = realloc(q.ka, (q.nka + 1) * sizeof *n);
			if (n) {
				q.ka = n;
				q.ka[q.nka].lease = strdup(lease);
				q.ka[q.nka].timeout = h2k_json_num(
				    cJSON_GetObjectItemCaseSensitive(line, "lease"),
				    "timeout_s", 300);
				if (q.ka[q.nka].lease)
					q.nka++;
			}
		}
		if (q.tail)
			q.tail->next = it;
		else
			q.head = it;
		q.tail = it;
		pthread_cond_broadcast(&q.cv);
		pthread_mutex_unlock(&q.mu);
	}
	pthread_mutex_lock(&q.mu);
	q.eof = 1;
	pthread_cond_broadcast(&q.cv);
	pthread_mutex_unlock(&q.mu);
	return arg;
}

static void *
keepalive(void *arg)
{
	struct h2k_vim *kv = arg;

	pthread_mutex_lock(&q.mu);
	while (!q.stop) {
		double period = 60;
		char **leases = NULL;
		size_t n = 0;

		for (size_t i = 0; i < q.nka; i++)
			if (q.ka[i].timeout / 3 < period)
				period = q.ka[i].timeout / 3;
		/*
		 * Idle (no lease yet) means a 1 s tick with no network
		 * call, so the first lease to arrive is kept within 1 s.
		 */
		if (period < 1 || q.nka == 0)
			period = 1;
		if (q.nka && (leases = calloc(q.nka, sizeof *leases)))
			for (size_t i = 0; i < q.nka; i++)
				if ((leases[n] = strdup(q.ka[i].lease)))
					n++;
		pthread_mutex_unlock(&q.mu);
		for (size_t i = 0; i < n; i++) {
			/* 99: the bytes are all here, the export is not done. */
			if (h2k_lease_progress(kv, leases[i], 99) < 0) {
				h2k_debug("keepalive: %s", h2k_errmsg());
				if (h2k_errcode() == H2K_EX_NOTFOUND) {
					pthread_mutex_lock(&q.mu);
					ka_drop(leases[i]);
					pthread_mutex_unlock(&q.mu);
				}
			}
			free(leases[i]);
		}
		free(leases);
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += (time_t)period;
		ts.tv_nsec += (long)((period - (double)(time_t)period) * 1e9);
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&q.mu);
		while (!q.stop && pthread_cond_timedwait(&q.cv, &q.mu, &ts) == 0)
			; /* woken for a new line: keep sleeping till the period ends */
	}
	pthread_mutex_unlock(&q.mu);
	return NULL;
}

/* Next line for the main thread; NULL at the end of input or on a signal. */
static struct item *
next_item(void)
{
	struct item *it = NULL;

	pthread_mutex_lock(&q.mu);
	while (!q.head && !q.eof && !got_signal) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 200000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&q.cv, &q.mu, &ts);
	}
	if (q.head && !got_signal) {
		it = q.head;
		q.head = it->next;
		if (!q.head)
			q.tail = NULL;
	}
	pthread_mutex_unlock(&q.mu);
	return it;
}

static void
item_done(struct item *it)
{
	const char *lease = it->line ? h2k_json_str(
	    cJSON_GetObjectItemCaseSensitive(it->line, "lease"), "moref") : NULL;

	if (lease) {
		pthread_mutex_lock(&q.mu);
		ka_drop(lease);
		pthread_mutex_unlock(&q.mu);
	}
	cJSON_Delete(it->line);
	free(it->msg);
	free(it);
}

int
main(int argc, char **argv)
{
	enum { OPT_OVA = 256, OPT_CDROM, OPT_KEEP, OPT_VERIFY };
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "keep-lease", no_argument, NULL, OPT_KEEP },
		{ "ova", no_argument, NULL, OPT_OVA },
		{ "quiet", no_argument, NULL, 'q' },
		{ "remove-cdrom", no_argument, NULL, OPT_CDROM },
		{ "session", required_argument, NULL, 's' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "verify", no_argument, NULL, OPT_VERIFY },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { 0 };
	const char *spath = NULL;
	struct h2k_session sess = { 0 };
	struct h2k_vim *v, *kv;
	struct sigaction sa;
	char *path;
	int ch, level = H2K_LOG_WARN, ok = 0, failed = 0, first = 0;
	int said_cancel = 0;  /* a VM's "interrupted" line is out: one is enough */

	h2k_log_init("h2k-ovf");
	/* it will hold a password or a session cookie */
	if (h2k_nodump() < 0)
		errx(h2k_errcode(), "%s", h2k_errmsg());
	if (getenv("H2K_LOG_LEVEL") &&
	    (ch = h2k_log_parselevel(getenv("H2K_LOG_LEVEL"))) >= 0)
		level = ch;
	while ((ch = getopt_long(argc, argv, "hqs:Vv", longopts, NULL)) != -1) {
		switch (ch) {
		case 'q':
			level = H2K_LOG_ERROR;
			break;
		case 's':
			spath = optarg;
			break;
		case 'V':
			printf("h2k-ovf %s\n", H2K_VERSION);
			return 0;
		case 'v':
			if (level < H2K_LOG_TRACE)
				level++;
			break;
		case OPT_OVA:
			o.ova = 1;
			break;
		case OPT_CDROM:
			o.remove_cdrom = 1;
			break;
		case OPT_KEEP:
			o.keep_lease = 1;
			break;
		case OPT_VERIFY:
			o.verify = 1;
			break;
		case 'h':
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	if (isatty(STDIN_FILENO))
		errx(H2K_EX_USAGE, "standard input is a terminal: h2k-ovf reads "
		    "the lines of h2k-fetch");
	h2k_log_setlevel(level);

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	path = h2k_session_path(spath);
	if (!path || h2k_session_load(path, &sess) < 0) {
		free(path);
		fprintf(stderr, "h2k-ovf: %s\n", h2k_errmsg());
		return h2k_errcode();
	}
	free(path);
	v = h2k_vim_from_session(&sess);
	/* A second connection: the keepalive must not wait for the main one. */
	kv = v ? h2k_vim_from_session(&sess) : NULL;
	h2k_session_free(&sess);
	if (!v) {
		fprintf(stderr, "h2k-ovf: %s\n", h2k_errmsg());
		return h2k_errcode();
	}
	if (!kv)
		h2k_warn("no keepalive connection: %s", h2k_errmsg());

	/* The helpers block signals: they reach the main thread only. */
	sigset_t all, old;
	pthread_t rt, kt;
	struct item *it;
	int have_kt;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	h2k_jsonl_init(&q.in, stdin, "stdin");
	if (pthread_create(&rt, NULL, reader, NULL) != 0)
		errx(H2K_EX_FAIL, "cannot start a thread");
	have_kt = kv && pthread_create(&kt, NULL, keepalive, kv) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);

	while ((it = next_item())) {
		int ended = 0;
		if (!it->line) {
			fprintf(stderr, "h2k-ovf: %s\n", it->msg ? it->msg :
			    "bad line");
			if (!failed++)
				first = it->code;
			item_done(it);
			continue;
		}
		if (one(v, it->line, &o, &ended) < 0) {
			if (!o.keep_lease && h2k_errcode() != H2K_EX_USAGE)
				end_export(v, it->line, ended, got_signal ?
				    "export cancelled by h2k-ovf" :
				    "export failed in h2k-ovf");
			/* after a signal, whatever broke (a write cut short by
			 * EINTR, say) is the signal's doing: its line says so */
			int cancel = h2k_errcode() == H2K_EX_CANCEL;
			if (!got_signal || cancel)
				fprintf(stderr, "h2k-ovf: stdin:%ld: %s\n", it->lineno,
				    h2k_errmsg());
			said_cancel |= cancel;
			if (!failed++)
				first = h2k_errcode();
		} else
			ok++;
		item_done(it);
	}
	pthread_mutex_lock(&q.mu);
	q.stop = 1;
	pthread_cond_broadcast(&q.cv);
	/*
	 * Interrupted: the exports whose lines were read but not finished
	 * end here too (lease aborted, temporary snapshot removed), or their
	 * snapshots would outlive the export on a production VM.
	 */
	while (got_signal && (it = q.head)) {
		q.head = it->next;
		pthread_mutex_unlock(&q.mu);
		if (it->line && !o.keep_lease) {
			end_export(v, it->line, 0, "export cancelled by h2k-ovf");
			h2k_info("stdin:%ld: export ended unfinished", it->lineno);
		}
		item_done(it);
		pthread_mutex_lock(&q.mu);
	}
	q.tail = q.head;
	pthread_mutex_unlock(&q.mu);
	if (have_kt)
		pthread_join(kt, NULL);
	h2k_vim_free(kv);
	h2k_vim_free(v);
	if (!got_signal) {
		/* Input ended: the reader is done. */
		pthread_join(rt, NULL);
		h2k_jsonl_free(&q.in);
		for (size_t i = 0; i < q.nka; i++)
			free(q.ka[i].lease);
		free(q.ka);
	}
	/* On a signal the reader may sit in read(2): the process exit ends it. */
	if (got_signal) {
		if (!said_cancel)
			fprintf(stderr, "h2k-ovf: interrupted by signal %d\n",
			    (int)got_signal);
		return H2K_EX_CANCEL;
	}
	if (!failed)
		return 0;
	return ok ? H2K_EX_PARTIAL : first;
}
