/*
 * vmdir.c - the per-VM output folder: naming rule, identity marker, locks.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * The rule is in vmdir.h.  Why a marker and not the name alone: VM names
 * are unique only within a folder of the inventory, and two VMs called
 * "web01" in two datacenters exported into one OUTDIR once shared a folder
 * and a NAME.part, one job ending "completed" with the other's disk.  Why
 * two passes over the candidates: a folder already marked for this VM wins
 * over an earlier free one, so a rerun resumes where its .part files are
 * even when the folder that was taken at the first run has been freed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "h2k.h"
#include "jsonl.h"
#include "ovf.h"
#include "pathsafe.h"
#include "vmdir.h"

#define MARKER_MAX (8u << 10)
#define ID_CANDIDATES 10        /* NAME, NAME--ID, NAME--ID-2 .. -9 */
#define ANON_CANDIDATES 100     /* NAME, NAME-2 .. NAME-100 */
#define CLAIM_WAIT 20.0         /* seconds to wait for another claimer */

static const char *
nz(const char *s)
{
	return s && *s ? s : NULL;
}

void
h2k_vmid_from_json(struct h2k_vmid *id, const cJSON *line)
{
	const cJSON *lease = cJSON_GetObjectItemCaseSensitive(line, "lease");

	memset(id, 0, sizeof *id);
	id->moref = nz(h2k_json_str(line, "moref"));
	id->instance_uuid = nz(h2k_json_str(line, "instance_uuid"));
	id->name = nz(h2k_json_str(line, "name"));
	id->server = cJSON_IsObject(lease) ? nz(h2k_json_str(lease, "server")) : NULL;
}

int
h2k_vmid_anonymous(const struct h2k_vmid *id)
{
	return !nz(id->moref) && !nz(id->instance_uuid);
}

/* -1: not known on both sides; 0: differ; 1: equal */
static int
cmp_field(const char *a, const char *b)
{
	if (!nz(a) || !nz(b))
		return -1;
	return strcmp(a, b) == 0;
}

int
h2k_vmid_match(const struct h2k_vmid *a, const struct h2k_vmid *b)
{
	int s = cmp_field(a->server, b->server);
	int i = cmp_field(a->instance_uuid, b->instance_uuid);
	int m = cmp_field(a->moref, b->moref);

	if (h2k_vmid_anonymous(a) || h2k_vmid_anonymous(b))
		return h2k_vmid_anonymous(a) && h2k_vmid_anonymous(b);
	if (s == 0 || i == 0 || m == 0)
		return 0;
	return i == 1 || m == 1;
}

char *
h2k_vmdir_name(const char *safe, const struct h2k_vmid *id, int n)
{
	errno = 0;
	if (n < 0)
		return NULL;
	if (n == 0)
		return h2k_strdup(safe);
	if (h2k_vmid_anonymous(id)) {
		if (n >= ANON_CANDIDATES)
			return NULL;
		return h2k_asprintf("%.*s-%d", H2K_PATHSAFE_MAX - 4, safe, n + 1);
	}
	if (n >= ID_CANDIDATES)
		return NULL;
	char *ids = h2k_pathsafe(nz(id->moref) ? id->moref : id->instance_uuid, "vm");
	if (!ids)
		return NULL;
	/* the disambiguator is kept whole; the name gives way (on a UTF-8
	 * boundary) so the result stays within H2K_PATHSAFE_MAX */
	size_t il = strlen(ids), room = H2K_PATHSAFE_MAX - 4 - (il > 64 ? 64 : il);
	size_t sl = strlen(safe);
	if (sl > room) {
		sl = room;
		while (sl > 0 && ((unsigned char)safe[sl] & 0xc0) == 0x80)
			sl--;
	}
	char *r = n == 1 ? h2k_asprintf("%.*s--%.64s", (int)sl, safe, ids) :
	    h2k_asprintf("%.*s--%.64s-%d", (int)sl, safe, ids, n);
	free(ids);
	return r;
}

/* --- the marker ------------------------------------------------------------ */

struct marker {
	cJSON *o;                   /* owns the strings of id */
	struct h2k_vmid id;
};

/* 0 read, 1 absent, -1 present but unreadable (counts as another VM's) */
static int
marker_read(int dirfd, struct marker *mk)
{
	char buf[MARKER_MAX + 1];
	/* O_NONBLOCK: a FIFO planted under the marker's name must not hang
	 * the claim (and every other claimer, behind OUTDIR's flock) */
	int fd = openat(dirfd, H2K_VMDIR_MARKER, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	struct stat st;
	ssize_t n;

	memset(mk, 0, sizeof *mk);
	if (fd < 0)
		return errno == ENOENT ? 1 : -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -1;
	}
	n = read(fd, buf, MARKER_MAX);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	if (!(mk->o = cJSON_Parse(buf)) || !cJSON_IsObject(mk->o)) {
		cJSON_Delete(mk->o);
		mk->o = NULL;
		return -1;
	}
	mk->id.server = nz(h2k_json_str(mk->o, "server"));
	mk->id.moref = nz(h2k_json_str(mk->o, "moref"));
	mk->id.instance_uuid = nz(h2k_json_str(mk->o, "instance_uuid"));
	mk->id.name = nz(h2k_json_str(mk->o, "name"));
	mk->id.job = nz(h2k_json_str(mk->o, "job"));
	return 0;
}

static void
marker_free(struct marker *mk)
{
	cJSON_Delete(mk->o);
	memset(mk, 0, sizeof *mk);
}

static const char *
marker_who(const struct h2k_vmid *id, char *buf, size_t len)
{
	snprintf(buf, len, "%s (%s)", nz(id->name) ? id->name : "?",
	    nz(id->moref) ? id->moref : nz(id->instance_uuid) ? id->instance_uuid : "no moref");
	return buf;
}

/* Written to a temporary name, fsynced and renamed: never half a marker. */
static int
marker_write(int dirfd, const char *dir, const struct h2k_vmid *id)
{
	cJSON *o = cJSON_CreateObject();
	char *txt = NULL;
	const char *tmp = H2K_VMDIR_MARKER ".tmp";
	int fd = -1, rc = -1;

	if (!o)
		return h2k_seterr(H2K_EX_FAIL, "out of memory");
	if (nz(id->server))
		cJSON_AddStringToObject(o, "server", id->server);
	if (nz(id->moref))
		cJSON_AddStringToObject(o, "moref", id->moref);
	if (nz(id->instance_uuid))
		cJSON_AddStringToObject(o, "instance_uuid", id->instance_uuid);
	if (nz(id->name))
		cJSON_AddStringToObject(o, "name", id->name);
	if (nz(id->job))
		cJSON_AddStringToObject(o, "job", id->job);
	if (!(txt = h2k_json_print(o))) {
		h2k_seterr(H2K_EX_FAIL, "out of memory");
		goto out;
	}
	if (strlen(txt) > MARKER_MAX && nz(id->name)) {
		/* the name only informs; a marker that cannot be read back
		 * would make the folder nobody's (and the next run's NAME--ID) */
		cJSON_DeleteItemFromObjectCaseSensitive(o, "name");
		free(txt);
		if (!(txt = cJSON_PrintUnformatted(o))) {
			h2k_seterr(H2K_EX_FAIL, "out of memory");
			goto out;
		}
	}
	if (strlen(txt) > MARKER_MAX) {
		h2k_seterr(H2K_EX_USAGE, "%s/%s: the VM's server, moref and instance UUID "
		    "are too long (over %u bytes)", dir, H2K_VMDIR_MARKER, MARKER_MAX);
		goto out;
	}
	(void)unlinkat(dirfd, tmp, 0);
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	size_t len = strlen(txt);
	if (fd < 0 || write(fd, txt, len) != (ssize_t)len || fsync(fd) < 0 ||
	    renameat(dirfd, tmp, dirfd, H2K_VMDIR_MARKER) < 0 || fsync(dirfd) < 0) {
		h2k_seterr(H2K_EX_IO, "%s/%s: %s", dir, H2K_VMDIR_MARKER, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	free(txt);
	cJSON_Delete(o);
	return rc;
}

/* --- locks ---------------------------------------------------------------- */

/*
 * The lock file's bytes: byte 0 is the folder (h2k-fetch exclusive while it
 * downloads, then shared; h2k-ovf shared), byte 1 the descriptor writer
 * (h2k-ovf exclusive: two at once would clobber each other's NAME.ova.part
 * and delete each other's NAME.mf).
 */
#define LOCK_FOLDER 0
#define LOCK_WRITER 1

/* OFD lock on one byte of the lock file; 0, or -1 with errno (EAGAIN: held) */
static int
ofd_lock_at(int fd, short type, off_t at)
{
	struct flock fl;

	memset(&fl, 0, sizeof fl);
	fl.l_type = type;
	fl.l_whence = SEEK_SET;
	fl.l_start = at;
	fl.l_len = 1;
	return fcntl(fd, F_OFD_SETLK, &fl);
}

static int
ofd_lock(int fd, short type)
{
	return ofd_lock_at(fd, type, LOCK_FOLDER);
}

static int
lock_open(int dirfd)
{
	int fd = openat(dirfd, H2K_VMDIR_LOCK, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	struct stat st;

	if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))) {
		close(fd);
		errno = EINVAL;
		return -1;
	}
	return fd;
}

/* --- what is in a folder -------------------------------------------------- */

static int
ends_with(const char *s, const char *suf)
{
	size_t n = strlen(s), m = strlen(suf);
	return n >= m && strcmp(s + n - m, suf) == 0;
}

/*
 * The files h2k-ovf leaves once an export is complete: NAME.ovf, NAME.mf
 * and NAME.ova, NAME the VM name as h2k-ovf sanitises it -- exactly those,
 * not any *.ovf: a device whose target id is NAME.ovf is downloaded as
 * NAME-2.ovf, and a server may call a disk notes.mf; such a download is no
 * completed export (a rerun would be refused, --overwrite would delete it).
 * safe[]: the VM's name now and the one in its marker (a renamed VM's old
 * descriptor still describes the disks in the folder).
 */
struct finals {
	char *safe[2];
	size_t n;
};

static int
finals_init(struct finals *f, const char *name, const char *oldname)
{
	f->n = 0;
	if (!(f->safe[f->n++] = h2k_ovf_safe_name(name ? name : "")))
		return -1;
	if (oldname && !(f->safe[f->n++] = h2k_ovf_safe_name(oldname)))
		return -1;
	return 0;
}

static void
finals_free(struct finals *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->safe[i]);
	f->n = 0;
}

static int
is_final_export(const char *n, const struct finals *f)
{
	for (size_t i = 0; f && i < f->n; i++) {
		size_t l = strlen(f->safe[i]);
		/* ASCII case ignored, as h2k_ovf_output_name does */
		if (!strncasecmp(n, f->safe[i], l) && (!strcasecmp(n + l, ".ovf") ||
		    !strcasecmp(n + l, ".mf") || !strcasecmp(n + l, ".ova")))
			return 1;
	}
	return 0;
}

/*
 * The export is complete once its manifest or its OVA is there: h2k-ovf
 * writes NAME.ovf before NAME.mf (and with --ova both only after
 * NAME.ova), so a run killed between the two leaves a lone NAME.ovf,
 * which vouches for nothing: the next h2k-fetch that takes the folder
 * removes it, the next h2k-ovf replaces it.
 */
static int
is_completion(const char *n, const struct finals *f)
{
	size_t l = strlen(n);
	return is_final_export(n, f) && !(l >= 4 && !strcasecmp(n + l - 4, ".ovf"));
}

static int
is_own_temp(const char *n)
{
	return n[0] == '.' || ends_with(n, ".part") || ends_with(n, ".part.meta");
}

/*
 * Does the folder hold a completed export?  Returns the name of one file
 * that says so (caller frees), or NULL.  In a folder without a marker any
 * file but h2k's temporary ones counts: nothing says whose it is.
 */
static char *
completed_file(int dirfd, int marked, const struct finals *f)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dp = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	char *hit = NULL;

	if (!dp) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	while (!hit && (de = readdir(dp)))
		if (is_completion(de->d_name, f) ||
		    (!marked && !is_own_temp(de->d_name)))
			hit = h2k_strdup(de->d_name);
	closedir(dp);
	return hit;
}

static int
remove_final_exports(int dirfd, const char *dir, const struct finals *f)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dp = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	int rc = 0;

	if (!dp) {
		if (fd >= 0)
			close(fd);
		return h2k_seterr(H2K_EX_IO, "%s: %s", dir, strerror(errno));
	}
	while ((de = readdir(dp)))
		if (is_final_export(de->d_name, f) && unlinkat(dirfd, de->d_name, 0) < 0 &&
		    errno != ENOENT) {
			rc = h2k_seterr(H2K_EX_IO, "%s/%s: %s", dir, de->d_name, strerror(errno));
			break;
		}
	closedir(dp);
	return rc;
}

/* --- claiming --------------------------------------------------------------- */

void
h2k_vmdir_close(struct h2k_vmdir *d)
{
	if (d->lockfd >= 0)
		close(d->lockfd);
	if (d->dirfd >= 0)
		close(d->dirfd);
	free(d->path);
	d->path = NULL;
	d->dirfd = d->lockfd = -1;
}

/*
 * Lock candidate folder dfd exclusively and check what is in it.
 * 0 taken; 1 busy (held by another export); -1 error set.
 */
static int
take(struct h2k_vmdir *d, int dfd, const char *path, int marked,
    const struct h2k_vmid *id, const char *oldname, int flags)
{
	struct finals fin;
	int lfd, rc = -1;
	char *hit;

	if (finals_init(&fin, id->name, oldname) < 0) {
		finals_free(&fin);
		return h2k_seterr(H2K_EX_FAIL, "out of memory");
	}
	if ((lfd = lock_open(dfd)) < 0) {
		h2k_seterr(H2K_EX_IO, "%s/%s: %s", path, H2K_VMDIR_LOCK, strerror(errno));
		goto out;
	}
	if (ofd_lock(lfd, F_WRLCK) < 0) {
		int e = errno;
		if (e == EAGAIN || e == EACCES)
			rc = 1;
		else
			h2k_seterr(H2K_EX_IO, "%s/%s: lock: %s", path, H2K_VMDIR_LOCK,
			    strerror(e));
		goto out;
	}
	if ((hit = completed_file(dfd, marked, &fin))) {
		if (!(flags & H2K_VMDIR_OVERWRITE)) {
			h2k_seterr(H2K_EX_EXISTS, "%s: holds a completed export (%s); "
			    "not replaced without --overwrite", path, hit);
			free(hit);
			goto out;
		}
		free(hit);
	}
	/* with --overwrite the old export; else at most a lone NAME.ovf (an
	 * h2k-ovf killed before its manifest, or another VM's of that name):
	 * it would describe the files of another run beside this one's */
	if (remove_final_exports(dfd, path, &fin) < 0)
		goto out;
	if (marker_write(dfd, path, id) < 0)
		goto out;
	d->dirfd = dfd;
	d->lockfd = lfd;
	lfd = -1;
	rc = 0;
out:
	if (lfd >= 0)
		close(lfd);
	finals_free(&fin);
	return rc;
}

/*
 * A candidate folder, opened; -1 (errno ENOENT only when missing) also for
 * a folder of another user: in a shared OUTDIR (mode 1777) anyone can make
 * OUTDIR/NAME first, and plant in it a NAME.part of theirs, mode 0666, that
 * we would fill with the guest's disk.  Such a folder is never free.
 */
static int
open_dir(int outfd, const char *name)
{
	int fd = openat(outfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;

	if (fd >= 0 && (fstat(fd, &st) < 0 || st.st_uid != geteuid())) {
		close(fd);
		errno = EPERM;
		return -1;
	}
	return fd;
}

/* id, with the fields it does not know taken from old: a rerun from a line
 * that lacks one (no instance UUID, no lease) must not make the marker
 * forget it, or the next VM of that moref would match the folder */
static void
merge_id(struct h2k_vmid *m, const struct h2k_vmid *id, const struct h2k_vmid *old)
{
	*m = *id;
	if (!nz(m->server))
		m->server = old->server;
	if (!nz(m->moref))
		m->moref = old->moref;
	if (!nz(m->instance_uuid))
		m->instance_uuid = old->instance_uuid;
	if (!nz(m->name))
		m->name = old->name;
}

int
h2k_vmdir_claim(const char *outabs, const struct h2k_vmid *id, int flags,
    struct h2k_vmdir *d)
{
	int outfd = -1, glock = -1, rc = -1, n;
	char *safe = NULL, *cand = NULL, who[512];
	int anon = h2k_vmid_anonymous(id);

	d->path = NULL;
	d->dirfd = d->lockfd = -1;
	if ((outfd = open(outabs, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return h2k_seterr(H2K_EX_IO, "%s: %s", outabs, strerror(errno));
	/* claims are short and local: wait for the other claimer, but not
	 * for ever (a stopped process, or in a shared OUTDIR another user,
	 * could hold it); the lock file must be ours, or anyone could */
	glock = openat(outfd, H2K_VMDIR_LOCK, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC, 0600);
	struct stat gst;
	if (glock < 0 || fstat(glock, &gst) < 0) {
		h2k_seterr(H2K_EX_IO, "%s/%s: %s", outabs, H2K_VMDIR_LOCK, strerror(errno));
		goto out;
	}
	if (!S_ISREG(gst.st_mode) || gst.st_uid != geteuid()) {
		h2k_seterr(H2K_EX_EXISTS, "%s/%s: not a file of this user (uid %u); "
		    "refusing the output directory", outabs, H2K_VMDIR_LOCK, (unsigned)gst.st_uid);
		goto out;
	}
	for (double t0 = h2k_monotime(); flock(glock, LOCK_EX | LOCK_NB) < 0; ) {
		if (errno != EWOULDBLOCK && errno != EINTR) {
			h2k_seterr(H2K_EX_IO, "%s/%s: %s", outabs, H2K_VMDIR_LOCK, strerror(errno));
			goto out;
		}
		if (h2k_monotime() - t0 > CLAIM_WAIT) {
			h2k_seterr(H2K_EX_EXISTS, "%s/%s: held by another process for over "
			    "%.0f s; not waiting longer", outabs, H2K_VMDIR_LOCK, CLAIM_WAIT);
			goto out;
		}
		(void)poll(NULL, 0, 50);
	}
	if (!(safe = h2k_pathsafe(nz(id->name) ? id->name : nz(id->moref) ? id->moref : NULL, "vm")))
		goto oom;

	/* pass 1: a folder already marked for this VM */
	for (n = 0; (cand = h2k_vmdir_name(safe, id, n)); n++, free(cand)) {
		struct marker mk;
		int dfd = open_dir(outfd, cand);
		if (dfd < 0)
			continue;
		if (marker_read(dfd, &mk) != 0 || !h2k_vmid_match(&mk.id, id)) {
			marker_free(&mk);
			close(dfd);
			continue;
		}
		/* its old name: a renamed VM's descriptor is still an export */
		char *oldname = nz(mk.id.name) ? h2k_strdup(mk.id.name) : NULL;
		struct h2k_vmid merged;
		merge_id(&merged, id, &mk.id);
		/* the same job's earlier attempt: its export, to be redone */
		int same_job = nz(id->job) && nz(mk.id.job) && strcmp(id->job, mk.id.job) == 0;
		d->path = h2k_asprintf("%s/%s", outabs, cand);
		int t = d->path ? take(d, dfd, d->path, 1, &merged, oldname,
		    flags | (same_job ? H2K_VMDIR_OVERWRITE : 0)) : -1;
		free(oldname);
		marker_free(&mk);
		if (t == 0) {
			rc = 0;
			goto out;
		}
		close(dfd);
		if (t == 1 && anon) {
			free(d->path);
			d->path = NULL;
			continue;
		}
		if (t == 1)
			h2k_seterr(H2K_EX_EXISTS, "%s: in use by another export of %s", d->path,
			    marker_who(id, who, sizeof who));
		else if (!d->path)
			h2k_seterr(H2K_EX_FAIL, "out of memory");
		goto out;
	}
	if (errno)
		goto oom;

	/* pass 2: the first free folder (missing, or without a marker) */
	for (n = 0; (cand = h2k_vmdir_name(safe, id, n)); n++, free(cand)) {
		struct marker mk;
		int fresh = 0, dfd = open_dir(outfd, cand);
		if (dfd < 0 && errno == ENOENT) {
			if (mkdirat(outfd, cand, 0700) < 0) {
				h2k_seterr(H2K_EX_IO, "%s/%s: %s", outabs, cand, strerror(errno));
				goto out;
			}
			fresh = 1;
			dfd = open_dir(outfd, cand);
		}
		if (dfd < 0)
			continue;   /* a file or a symlink under that name: not ours */
		if (!fresh && marker_read(dfd, &mk) != 1) {
			marker_free(&mk);
			close(dfd);
			continue;
		}
		if (fresh)
			(void)fsync(outfd);
		d->path = h2k_asprintf("%s/%s", outabs, cand);
		int t = d->path ? take(d, dfd, d->path, 0, id, NULL, flags) : -1;
		if (t == 0) {
			rc = 0;
			goto out;
		}
		close(dfd);
		if (t == 1) {
			free(d->path);
			d->path = NULL;
			continue;
		}
		if (!d->path)
			h2k_seterr(H2K_EX_FAIL, "out of memory");
		goto out;
	}
	if (errno)
		goto oom;
	h2k_seterr(H2K_EX_EXISTS, "%s/%s: no free folder for %s (all taken by other VMs)",
	    outabs, safe, marker_who(id, who, sizeof who));
	goto out;
oom:
	h2k_seterr(H2K_EX_FAIL, "out of memory");
out:
	free(cand);
	free(safe);
	if (rc < 0) {
		free(d->path);
		d->path = NULL;
	}
	if (glock >= 0)
		close(glock);
	if (outfd >= 0)
		close(outfd);
	return rc;
}

int
h2k_vmdir_share(struct h2k_vmdir *d)
{
	if (d->lockfd < 0)
		return 0;
	if (ofd_lock(d->lockfd, F_RDLCK) < 0)
		return h2k_seterr(H2K_EX_IO, "%s/%s: lock: %s", d->path, H2K_VMDIR_LOCK,
		    strerror(errno));
	return 0;
}

int
h2k_vmdir_check(const char *dir, const struct h2k_vmid *id, struct h2k_vmdir *d)
{
	struct marker mk;
	struct stat st;
	char who[512], whose[512];
	int m, busy = 0;

	d->path = NULL;
	d->dirfd = d->lockfd = -1;
	d->writer_busy = 0;
	if ((d->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
	    fstat(d->dirfd, &st) < 0) {
		h2k_seterr(H2K_EX_IO, "%s: %s", dir, strerror(errno));
		h2k_vmdir_close(d);
		return -1;
	}
	if (st.st_uid != geteuid()) {
		/* h2k-fetch never writes a VM into another user's folder */
		h2k_seterr(H2K_EX_EXISTS, "%s: belongs to another user (uid %u), "
		    "not written by this export", dir, (unsigned)st.st_uid);
		h2k_vmdir_close(d);
		return -1;
	}
	if ((m = marker_read(d->dirfd, &mk)) == 1) {
		/*
		 * A folder made by hand or by an older h2k: nothing to check,
		 * and no lock file of ours in it.  Two h2k-ovf writing its
		 * descriptor at once would still clobber each other's .part
		 * files: they take turns by the folder's own flock.
		 */
		if (flock(d->dirfd, LOCK_EX | LOCK_NB) < 0) {
			int e = errno;
			if (e == EWOULDBLOCK) {
				h2k_seterr(H2K_EX_EXISTS, "%s: in use by another h2k-ovf "
				    "writing its descriptor", dir);
				busy = 1;
			} else
				h2k_seterr(H2K_EX_IO, "%s: lock: %s", dir, strerror(e));
			goto fail;
		}
		return 0;
	}
	if (m < 0 || !h2k_vmid_match(&mk.id, id)) {
		h2k_seterr(H2K_EX_EXISTS, "%s: belongs to %s, not to %s", dir,
		    m < 0 ? "another export (unreadable " H2K_VMDIR_MARKER ")" :
		    marker_who(&mk.id, whose, sizeof whose), marker_who(id, who, sizeof who));
		goto fail;
	}
	marker_free(&mk);
	if ((d->lockfd = lock_open(d->dirfd)) < 0) {
		h2k_seterr(H2K_EX_IO, "%s/%s: %s", dir, H2K_VMDIR_LOCK, strerror(errno));
		goto fail;
	}
	if (ofd_lock(d->lockfd, F_RDLCK) < 0) {
		int e = errno;
		if (e == EAGAIN || e == EACCES)
			h2k_seterr(H2K_EX_EXISTS, "%s: in use by an export still downloading", dir);
		else
			h2k_seterr(H2K_EX_IO, "%s/%s: lock: %s", dir, H2K_VMDIR_LOCK, strerror(e));
		goto fail;
	}
	if (ofd_lock_at(d->lockfd, F_WRLCK, LOCK_WRITER) < 0) {
		int e = errno;
		if (e == EAGAIN || e == EACCES) {
			h2k_seterr(H2K_EX_EXISTS, "%s: in use by another h2k-ovf writing "
			    "its descriptor", dir);
			busy = 1;
		} else
			h2k_seterr(H2K_EX_IO, "%s/%s: lock: %s", dir, H2K_VMDIR_LOCK, strerror(e));
		goto fail;
	}
	return 0;
fail:
	marker_free(&mk);
	h2k_vmdir_close(d);
	d->writer_busy = busy;
	return -1;
}
