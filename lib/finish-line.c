/*
 * finish-line.c - one h2k-fetch line finished (runs on the caller's thread
 * of h2k_finish_run), or its export ended after a failure.
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
 *   4. NAME.ovf and NAME.mf written atomically, in that order (the
 *      manifest is what makes the folder a completed export to vmdir.c,
 *      so it must not show before the descriptor); --ova packs NAME.ova;
 *      --hyper2kvm-manifest writes NAME.hyper2kvm.json (after the OVA:
 *      it vouches for the digests the OVA packing checked).  With --ova
 *      the folder reads as a completed export (vmdir.c: NAME.mf or
 *      NAME.ova) only once NAME.ova is whole: the descriptor and the
 *      manifest are written under temporary names (".NAME.ovf.pack",
 *      ".NAME.mf.pack": h2k's own temporary files to h2k-fetch), packed
 *      from there, and renamed only after the OVA was renamed and read
 *      back; a run killed before that leaves no final name, and a rerun
 *      writes the same temporary names again and finishes;
 *   5. HttpNfcLeaseComplete, then RemoveSnapshot of lease.snapshot;
 *   6. --deliver links the OVA or the manifest into the watched folder.
 * The name step 6 takes is checked free before step 2, so a refusal
 * costs no packing; a failure at step 6 leaves the export complete.
 * A failure at steps 1-4 aborts the lease and removes the snapshot (the
 * export ends here, finish_end_export) unless --keep-lease; the downloaded
 * files stay.  Shares nothing with the other threads but finish_signal.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "diskimg.h"
#include "finish-int.h"
#include "h2k.h"
#include "lease.h"
#include "ovf.h"
#include "pathsafe.h"
#include "session.h"
#include "vmdir.h"

#define SNAPSHOT_TIMEOUT 900.0

struct file {
	const char *key, *path, *sha256;
	const char *format, *subformat;  /* as h2k-fetch wrote them, or NULL */
	char *base;
	long long size, capacity, allocated;
	dev_t dev;  /* the file checked (lstat): only it is removed */
	ino_t ino;
	int used;
};

/* Same directory, by inode: the descriptor names files relative to itself. */
static int
same_dir(const char *a, const char *b)
{
	struct stat sa, sb;

	return stat(a, &sa) == 0 && stat(b, &sb) == 0 &&
	    sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/*
 * Each file as written: its format URI, capacity, and for a converted
 * image the bytes it holds (its allocated blocks, at most the capacity;
 * a VMDK keeps the server's figure).
 */
static int
set_disks(struct h2k_ovf_desc *pd, const struct file *f, size_t nf)
{
	struct h2k_ovf_disk *dk = h2k_calloc(nf ? nf : 1, sizeof *dk);
	int rc;

	if (!dk)
		return -1;
	for (size_t i = 0; i < nf; i++) {
		const char *uri = h2k_ovf_format_uri(f[i].format, f[i].subformat);
		int conv = uri && f[i].format && strcmp(f[i].format, "vmdk");
		dk[i].href = f[i].base;
		dk[i].format_uri = uri;
		dk[i].size = f[i].size;
		dk[i].capacity = f[i].capacity;
		dk[i].populated = -1;
		if (conv || (uri && !f[i].subformat))
			dk[i].populated = f[i].capacity > 0 &&
			    f[i].allocated > f[i].capacity ? f[i].capacity :
			    f[i].allocated;
	}
	rc = h2k_ovf_set_disks(pd, dk, nf);
	free(dk);
	return rc;
}

/*
 * The OVA read back and every member as the manifest says: only then are
 * the disks packed in it removed (unless --keep-files).  A bad OVA is
 * removed instead, and the export fails with the disks in place.
 */
static int
verify_ova(const char *ovap, struct h2k_ova_member *mem, size_t nm,
    const char *ovf_hex, const struct h2k_buf *mf, const char *label)
{
	char mf_hex[65];

	h2k_sha256_hex(mf->data, mf->len, mf_hex);
	mem[0].sha256 = ovf_hex;
	mem[1].sha256 = mf_hex;
	if (h2k_ova_verify(ovap, mem, nm, &finish_signal) < 0) {
		if (h2k_errcode() != H2K_EX_CANCEL)
			unlink(ovap);
		h2k_adderr("%s", label);
		mem[0].sha256 = mem[1].sha256 = NULL;
		return -1;
	}
	mem[0].sha256 = mem[1].sha256 = NULL;
	return 0;
}

/*
 * The export is complete and its OVA verified: the loose disks go.  Each
 * is removed by its name in the locked VM folder (dirfd), never through
 * the path the line gave (its directories may be symbolic links that
 * point elsewhere by now), and only if it is still the file checked.
 */
static void
remove_packed(int dirfd, struct file *f, size_t nf, cJSON *files,
    const char *label)
{
	for (size_t i = 0; i < nf; i++) {
		struct stat st;
		int gone;
		if (!f[i].used)
			continue;
		gone = fstatat(dirfd, f[i].base, &st, AT_SYMLINK_NOFOLLOW) < 0;
		if (gone && errno != ENOENT) {
			h2k_warn("%s: %s: cannot remove it after packing: %s",
			    label, f[i].path, strerror(errno));
			continue;
		}
		if (!gone && (!S_ISREG(st.st_mode) || st.st_dev != f[i].dev ||
		    st.st_ino != f[i].ino)) {
			h2k_warn("%s: %s: not the file packed in the OVA any "
			    "more; left in place", label, f[i].path);
			continue;
		}
		if (!gone && unlinkat(dirfd, f[i].base, 0) < 0 && errno != ENOENT) {
			h2k_warn("%s: %s: cannot remove it after packing: %s",
			    label, f[i].path, strerror(errno));
			continue;
		}
		cJSON *e = cJSON_GetArrayItem(files, (int)i);
		cJSON_DeleteItemFromObjectCaseSensitive(e, "removed");
		cJSON_AddBoolToObject(e, "removed", 1);
	}
	(void)fsync(dirfd);
}

/*
 * A disk's capacity for the DiskSection, from the image (diskimg.h): the
 * line's capacity_bytes is user input, only checked against it.  The file
 * opened must be the one lstat'ed (dev, inode); O_NONBLOCK: a FIFO swapped
 * in meanwhile does not hang the open.
 */
static int
image_capacity(struct file *x, const cJSON *it, const char *label)
{
	const cJSON *lc = cJSON_GetObjectItemCaseSensitive(it, "capacity_bytes");
	int fd = open(x->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	struct stat st;
	long long cap = -1;
	int rc;

	if (fd < 0)
		return h2k_seterr(H2K_EX_IO, "%s: %s: %s", label, x->path, strerror(errno));
	if (fstat(fd, &st) < 0 || st.st_dev != x->dev || st.st_ino != x->ino) {
		close(fd);
		return h2k_seterr(H2K_EX_IO, "%s: %s: replaced while it was checked", label,
		    x->path);
	}
	rc = h2k_diskimg_capacity(fd, x->path, x->format, x->subformat, &cap);
	close(fd);
	if (rc < 0)
		return h2k_adderr("%s", label);
	if (lc && (!cJSON_IsNumber(lc) || lc->valuedouble != (double)cap)) {
		if (cJSON_IsNumber(lc))
			return h2k_seterr(H2K_EX_IO, "%s: %s: files[] says capacity_bytes "
			    "%.0f, the image holds %lld bytes", label, x->path,
			    lc->valuedouble, cap);
		return h2k_seterr(H2K_EX_IO, "%s: %s: files[] says a capacity_bytes that is "
		    "not a number, the image holds %lld bytes", label, x->path, cap);
	}
	x->capacity = cap;
	return 0;
}

/* With --ova: NAME.ovf or NAME.mf under its temporary name, fsynced. */
static int
write_pack(int dirfd, const char *dir, const char *tmp, const void *p, size_t n)
{
	const unsigned char *b = p;
	int fd, e;

	(void)unlinkat(dirfd, tmp, 0);  /* an interrupted run's */
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return h2k_seterr(H2K_EX_IO, "%s/%s: %s", dir, tmp, strerror(errno));
	while (n > 0) {
		ssize_t w = write(fd, b, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			goto fail;
		b += w;
		n -= (size_t)w;
	}
	if (fsync(fd) < 0)
		goto fail;
	if (close(fd) < 0) {
		fd = -1;
		goto fail;
	}
	return 0;
fail:
	e = errno ? errno : EIO;
	if (fd >= 0)
		close(fd);
	(void)unlinkat(dirfd, tmp, 0);
	return h2k_seterr(H2K_EX_IO, "%s/%s: %s", dir, tmp, strerror(e));
}

static int
check_files(cJSON *files, const char *dir, const char *safe,
    const char *label, const struct h2k_finish_opts *o, struct file **out, size_t *nout)
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
		x->format = h2k_json_str(it, "format");
		x->subformat = h2k_json_str(it, "vmdk_subformat");
		x->capacity = -1;
		if (!x->key || !x->path || !*x->path || x->size < 0)
			return h2k_seterr(H2K_EX_USAGE, "%s: files[%zu] lacks "
			    "key, path or size", label, i - 1);
		if (!h2k_is_hex64(x->sha256))
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
		if (lstat(x->path, &st) < 0) {
			int e = errno;
			char *ova = e == ENOENT ? h2k_asprintf("%s/%s.ova", dir,
			    safe) : NULL;
			int packed = ova && lstat(ova, &st) == 0 && S_ISREG(st.st_mode);
			free(ova);
			if (packed)
				/* an earlier h2k-ovf --ova without --keep-files */
				return h2k_seterr(H2K_EX_NOTFOUND, "%s: %s: no such "
				    "file: removed once packed in %s.ova (an earlier "
				    "h2k-ovf --ova; --keep-files keeps the disks)",
				    label, x->path, safe);
			return h2k_seterr(e == ENOENT ? H2K_EX_NOTFOUND :
			    H2K_EX_IO, "%s: %s: %s", label, x->path,
			    strerror(e));
		}
		if (!S_ISREG(st.st_mode))
			return h2k_seterr(H2K_EX_IO, "%s: %s: not a regular "
			    "file", label, x->path);
		x->allocated = (long long)st.st_blocks * 512;
		x->dev = st.st_dev;
		x->ino = st.st_ino;
		if ((long long)st.st_size != x->size)
			return h2k_seterr(H2K_EX_IO, "%s: %s: %lld bytes on "
			    "disk, h2k-fetch wrote %lld", label, x->path,
			    (long long)st.st_size, x->size);
		if ((cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "disk")) || x->format ||
		    cJSON_GetObjectItemCaseSensitive(it, "capacity_bytes")) &&
		    image_capacity(x, it, label) < 0)
			return -1;
		if (o->verify) {
			char hex[65];
			long long sz;
			if (h2k_sha256_file_id(x->path, &st, hex, &sz) < 0)
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
 * failure: FINISH_ENDED_LEASE once the lease needs nothing more (completed,
 * or already dead on the server), FINISH_ENDED_ALL once the snapshot is
 * dealt with too.
 */
int
finish_line(struct h2k_vim *v, cJSON *line, const struct h2k_finish_opts *o,
    const struct h2k_handoff *h, FILE *out, int *ended)
{
	const char *name = h2k_json_str(line, "name");
	const char *moref = h2k_json_str(line, "moref");
	cJSON *lease = cJSON_GetObjectItemCaseSensitive(line, "lease");
	cJSON *files = cJSON_GetObjectItemCaseSensitive(line, "files");
	const char *lmoref = h2k_json_str(lease, "moref");
	const char *snap = h2k_json_str(lease, "snapshot");
	const char *dirf = h2k_json_str(line, "dir");
	char label[256], *safe = NULL, *dir = NULL, *ovfp = NULL, *mfp = NULL,
	    *ovap = NULL, *lmsg = NULL, *desc = NULL, *ovft = NULL, *mft = NULL;
	char *ovftp = NULL, *mftp = NULL;
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
			*ended = FINISH_ENDED_ALL;
		goto out;
	}
	if (check_files(files, dir, safe, label, o, &f, &nf) < 0)
		goto out;
	if (h2k_handoff_precheck(h, vd.dirfd, safe) < 0) {
		h2k_adderr("%s", label);
		goto out;
	}

	st = h2k_lease_state(v, lmoref, &lmsg);
	if (st < 0) {
		h2k_adderr("%s", label);
		goto out;
	}
	if (st == H2K_LEASE_ERROR) {
		h2k_seterr(H2K_EX_STATE, "%s: export lease in error: %s", label,
		    lmsg ? lmsg : "no message");
		*ended = FINISH_ENDED_LEASE;
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
	if (set_disks(&pd, f, nf) < 0) {
		h2k_adderr("%s", label);
		goto out;
	}
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

	/*
	 * hyper2kvm's daemon converts the OVA's disks with qemu-img, which
	 * opens any file a disk names (a qcow2 backing file): refused, as
	 * h2k_h2kvm_manifest refuses them for the manifest.
	 */
	for (size_t i = 0; h->deliver_fd >= 0 && h->ova && i < nf; i++) {
		const char *fmt, *sub;
		if (f[i].used && h2k_h2kvm_sniff(f[i].path, &fmt, &sub) < 0) {
			h2k_adderr("%s", label);
			goto out;
		}
	}

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
	if (finish_signal) {
		h2k_seterr(H2K_EX_CANCEL, "%s: interrupted", label);
		goto out;
	}
	if (!o->ova && (h2k_atomic_write(ovfp, pd.text, pd.len, 0600) < 0 ||
	    h2k_atomic_write(mfp, mf.data, mf.len, 0600) < 0)) {
		h2k_adderr("%s", label);
		goto out;
	}
	if (o->ova) {
		size_t nm = 0;
		mem = h2k_calloc(pd.nhrefs + 2, sizeof *mem);
		ovap = h2k_asprintf("%s/%s.ova", dir, safe);
		ovft = h2k_asprintf(".%s.ovf.pack", safe);
		mft = h2k_asprintf(".%s.mf.pack", safe);
		ovftp = h2k_asprintf("%s/.%s.ovf.pack", dir, safe);
		mftp = h2k_asprintf("%s/.%s.mf.pack", dir, safe);
		if (!mem || !ovap || !ovft || !mft || !ovftp || !mftp)
			goto out;
		if (write_pack(vd.dirfd, dir, ovft, pd.text, pd.len) < 0 ||
		    write_pack(vd.dirfd, dir, mft, mf.data, mf.len) < 0) {
			h2k_adderr("%s", label);
			goto out;
		}
		mem[nm].name = strrchr(ovfp, '/') + 1;
		mem[nm++].path = ovftp;
		mem[nm].name = strrchr(mfp, '/') + 1;
		mem[nm++].path = mftp;
		for (size_t i = 0; i < pd.nhrefs; i++) {
			int k = find_file(f, nf, pd.hrefs[i]);
			mem[nm].name = f[k].base;
			mem[nm].path = f[k].path;
			mem[nm++].sha256 = f[k].sha256;
		}
		int pr = h2k_ova_write(ovap, mem, nm, &finish_signal);
		if (pr < 0) {
			/* an earlier run's NAME.mf vouches for bytes that did
			 * not match (and marks the folder complete): it goes;
			 * after any other failure it still tells the truth */
			if (pr == -2)
				(void)unlinkat(vd.dirfd, strrchr(mfp, '/') + 1, 0);
			h2k_adderr("%s", label);
			goto out;
		}
		if (!o->keep_files &&
		    verify_ova(ovap, mem, nm, hex, &mf, label) < 0)
			goto out;
		/* the OVA is whole: the loose descriptor and manifest may show */
		if (renameat(vd.dirfd, ovft, vd.dirfd, strrchr(ovfp, '/') + 1) < 0 ||
		    renameat(vd.dirfd, mft, vd.dirfd, strrchr(mfp, '/') + 1) < 0) {
			h2k_seterr(H2K_EX_IO, "%s: %s: rename: %s", label, ovfp, strerror(errno));
			goto out;
		}
		free(ovft);
		free(mft);
		ovft = mft = NULL;
		if (fsync(vd.dirfd) < 0) {
			h2k_seterr(H2K_EX_IO, "%s: %s: fsync: %s", label, dir, strerror(errno));
			goto out;
		}
	}
	/* an earlier run's: this run writes and delivers its own, or none */
	cJSON_DeleteItemFromObjectCaseSensitive(line, "hyper2kvm_manifest_path");
	cJSON_DeleteItemFromObjectCaseSensitive(line, "delivered_path");
	if (h2k_handoff_manifest(h, line, dir, safe,
	    (const char *const *)pd.hrefs, pd.nhrefs) < 0) {
		h2k_adderr("%s", label);
		goto out;
	}
	if (!gone && h2k_lease_complete(v, lmoref) < 0) {
		if (h2k_errcode() != H2K_EX_NOTFOUND) {
			h2k_adderr("%s", label);
			goto out;
		}
		h2k_warn("%s: lease %s ended before it could be completed",
		    label, lmoref);
	}
	*ended = FINISH_ENDED_LEASE;
	if (snap && h2k_snapshot_remove(v, snap, SNAPSHOT_TIMEOUT) < 0) {
		if (h2k_errcode() != H2K_EX_NOTFOUND) {
			h2k_adderr("%s", label);
			goto out;
		}
	}
	*ended = FINISH_ENDED_ALL;
	if (h2k_handoff_deliver(h, line, safe, ovap) < 0) {
		h2k_adderr("%s", label);
		goto out;
	}
	/* a hyper2kvm manifest names the disks: they stay for it */
	if (ovap && !o->keep_files && !h2k_json_str(line, "hyper2kvm_manifest_path"))
		remove_packed(vd.dirfd, f, nf, files, label);

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
	if (h2k_json_write(out, line) < 0) {
		h2k_adderr("%s: writing the output", label);
		goto out;
	}
	rc = 0;
out:
	/* not packed, or packed into an OVA that did not hold: the
	 * temporary descriptor and manifest vouch for nothing */
	if (ovft)
		(void)unlinkat(vd.dirfd, ovft, 0);
	if (mft)
		(void)unlinkat(vd.dirfd, mft, 0);
	free(ovft);
	free(mft);
	free(ovftp);
	free(mftp);
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
void
finish_end_export(struct h2k_vim *v, cJSON *line, int ended, const char *why)
{
	cJSON *lease = cJSON_GetObjectItemCaseSensitive(line, "lease");
	const char *lmoref = h2k_json_str(lease, "moref");
	const char *snap = h2k_json_str(lease, "snapshot");
	char msg[1024];
	int code = h2k_errcode();

	snprintf(msg, sizeof msg, "%s", h2k_errmsg());
	if (ended == FINISH_ENDED_ALL)
		return;
	if (ended < FINISH_ENDED_LEASE && lmoref && h2k_lease_abort(v, lmoref, why) < 0 &&
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
