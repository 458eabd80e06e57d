/*
 * vmdir.h - the per-VM output folder: which folder belongs to which VM,
 * and who may write in it.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * The rule.  A VM's folder is OUTDIR/NAME (NAME: the sanitised VM name)
 * when that folder is free or already this VM's (and in both cases a
 * directory owned by the effective user, never a symlink); else OUTDIR/NAME--ID,
 * then NAME--ID-2 ... NAME--ID-9, where ID is the sanitised VM moref (or
 * instance UUID when there is no moref).  Whose a folder is, is said by
 * the marker .h2k-vm in it (JSON: server, moref, instance_uuid, name),
 * written atomically when the folder is claimed (a rerun whose line lacks a
 * field the marker knows keeps that field).  Two identities are the
 * same VM when every field known on both sides is equal (server, instance
 * UUID, moref) and at least one of moref and instance UUID is known on
 * both; lines with neither ("anonymous", plain URLs) are told apart only
 * by the lock, and take NAME, NAME-2, NAME-3, ...  The choice is a
 * function of the folders on disk, not of input order, so a rerun finds
 * the folder of the interrupted export again.
 *
 * Claiming (choosing, creating, marking) runs under an flock(2) on
 * OUTDIR/.h2k-lock, so two processes never pick one folder for two VMs
 * (a lock file of another user is refused, and the wait is bounded).
 * Writing runs under an open-file-description lock (F_OFD_SETLK) on
 * FOLDER/.h2k-lock: exclusive while h2k-fetch downloads, downgraded
 * atomically to shared when the VM's files are complete, so h2k-ovf (which
 * takes it shared) can add the .ovf/.mf while h2k-fetch lives on, and no
 * other export can take the folder until both are done.  A folder locked
 * by another export is refused (H2K_EX_EXISTS), never waited for.  (The
 * folder lock is byte 0 of the file; byte 1, taken exclusively, lets one
 * h2k-ovf at a time write the descriptor, manifest and OVA.)
 *
 * A folder already holding a completed export (NAME.ovf, NAME.mf or
 * NAME.ova as h2k-ovf names them, h2k_ovf_safe_name of the VM's name or of
 * the marker's: a download merely ending in .ovf is not one; or, in a
 * folder without a marker, any file that is not h2k's own temporary file)
 * is refused with H2K_EX_EXISTS and left untouched, unless the caller
 * passes H2K_VMDIR_OVERWRITE: then those NAME.ovf/.mf/.ova are removed first,
 * so no manifest outlives the disks it describes.  The marker also records
 * the h2k-job job (id->job) whose attempt claimed the folder: a later
 * attempt of that same job (its runner died after h2k-ovf wrote the .ovf,
 * before the job's result was recorded) redoes the export as if given
 * H2K_VMDIR_OVERWRITE, as h2k-job(1) promises.
 */
#ifndef H2K_VMDIR_H
#define H2K_VMDIR_H

#include <cjson/cJSON.h>

#define H2K_VMDIR_MARKER ".h2k-vm"
#define H2K_VMDIR_LOCK   ".h2k-lock"
#define H2K_VMDIR_OVERWRITE 1

/* Who a VM is; the strings are borrowed (NULL or "" unknown). */
struct h2k_vmid {
	const char *server;         /* lease.server: the vCenter */
	const char *moref;
	const char *instance_uuid;
	const char *name;
	const char *job;            /* the h2k-job job claiming it (not identity) */
};

/* Fill id from an h2k-ls/h2k-lease/h2k-fetch line (pointers into line). */
void h2k_vmid_from_json(struct h2k_vmid *id, const cJSON *line);
/* 1 when a and b name the same VM (rule above), else 0. */
int h2k_vmid_match(const struct h2k_vmid *a, const struct h2k_vmid *b);
/* 1 when id has neither moref nor instance UUID. */
int h2k_vmid_anonymous(const struct h2k_vmid *id);

/* The n-th candidate folder name (n from 0) for a VM whose sanitised name
 * is safe; NULL past the last candidate (errno 0) or on allocation failure. */
char *h2k_vmdir_name(const char *safe, const struct h2k_vmid *id, int n);

struct h2k_vmdir {
	char *path;                 /* absolute folder */
	int dirfd;
	int lockfd;                 /* holds the folder lock */
	int writer_busy;            /* h2k_vmdir_check: another h2k-ovf writes */
};

/*
 * Claim the folder of VM id under outabs (an absolute, existing folder) and
 * lock it exclusively.  0, or -1 after h2k_seterr (H2K_EX_EXISTS: in use,
 * or holds a completed export; H2K_EX_IO).
 */
int h2k_vmdir_claim(const char *outabs, const struct h2k_vmid *id, int flags,
    struct h2k_vmdir *d);
/* Turn the exclusive lock into a shared one, atomically. */
int h2k_vmdir_share(struct h2k_vmdir *d);
/*
 * For the stages after h2k-fetch: take the lock of folder dir shared, and
 * the writer's exclusively (one h2k-ovf at a time per folder), and check
 * its marker, if any, names VM id.  A folder without a marker is neither
 * checked nor locked; one owned by another user is refused.  -1 after
 * h2k_seterr (H2K_EX_EXISTS: another VM's or another user's folder, or
 * being written by an export or by another h2k-ovf).
 */
int h2k_vmdir_check(const char *dir, const struct h2k_vmid *id, struct h2k_vmdir *d);
void h2k_vmdir_close(struct h2k_vmdir *d);

#endif
