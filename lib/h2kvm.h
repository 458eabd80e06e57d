/*
 * h2kvm.h - the hand-off to hyper2kvm: its Artifact Manifest v1
 * (NAME.hyper2kvm.json) and delivery into the directory its daemon watches.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 */
#ifndef H2K_H2KVM_H
#define H2K_H2KVM_H

#include <signal.h>
#include <stddef.h>
#include <cjson/cJSON.h>

/* The manifest's file name after the VM's safe name: NAME.hyper2kvm.json */
#define H2K_H2KVM_SUFFIX ".hyper2kvm.json"

struct h2k_h2kvm_opts {
	int fix;             /* pipeline inspect and fix enabled too */
	const char *outdir;  /* output.directory is outdir/FOLDER, FOLDER the
	                      * export folder's name; NULL: the export folder */
	const char *outfmt;  /* output.format; NULL: qcow2 */
};

/*
 * What the bytes of a disk file are, from its first sector: "vmdk"
 * (KDMV: sparse or streamOptimized), "qcow2" (QFI\xfb) or "raw".  A VMDK
 * text descriptor (it names other files) is refused: H2K_EX_USAGE.
 * *sub gets "streamOptimized"/"monolithicSparse" for a sparse VMDK, else
 * NULL.
 */
int h2k_h2kvm_sniff(const char *path, const char **fmt, const char **sub);

/*
 * The Artifact Manifest of one VM from its h2k-fetch/h2k-ovf line: the
 * disks are the files[] entries with "disk": true whose file names are
 * among names[0..n) (the descriptor's references), in files[] order.
 * dir is the export folder (absolute or relative to the working
 * directory).  Every local_path and output.directory is absolute:
 * hyper2kvm resolves them against its own working directory.  NULL with
 * H2K_EX_USAGE naming the field when the line lacks what the manifest
 * needs, H2K_EX_IO when a disk cannot be read, when its bytes are not
 * what files[].format says.
 */
cJSON *h2k_h2kvm_manifest(const cJSON *line, const char *dir,
    const char *const *names, size_t n, const struct h2k_h2kvm_opts *o);

/* Write m to path atomically (path.part, fsync, rename), mode 0644. */
int h2k_h2kvm_write(const char *path, const cJSON *m);

/*
 * Delivery into a watched directory.  h2k_deliver_open opens dir as the
 * directory itself (O_DIRECTORY|O_NOFOLLOW: a symlink in its place is
 * refused) and checks the caller may write it; every later step works
 * relative to that descriptor.  H2K_EX_NOTFOUND when missing, H2K_EX_IO
 * otherwise.
 */
int h2k_deliver_open(const char *dir);
/* H2K_EX_EXISTS if name is already in the directory (even a symlink). */
int h2k_deliver_check(int dfd, const char *dir, const char *name);
/*
 * Put src into the directory as name: a hard link when on the same file
 * system, else a copy through an O_TMPFILE or a .part of this call's own
 * (fsync, then linked in under name without replacing anything, .part
 * removed).  Never replaces an existing name (H2K_EX_EXISTS, nothing
 * changed).  dir is for messages.  A copy stops when *cancel (may be
 * NULL) becomes non-zero: H2K_EX_CANCEL, nothing left.
 */
int h2k_deliver(int dfd, const char *dir, const char *src, const char *name,
    const volatile sig_atomic_t *cancel);

/*
 * The hand-off as h2k-ovf does it for one VM.  deliver_fd is the watched
 * directory (h2k_deliver_open) or -1.  Delivery puts NAME.ova there with
 * ova, else NAME.hyper2kvm.json (so deliver implies the manifest).
 */
struct h2k_handoff {
	int manifest;            /* write NAME.hyper2kvm.json */
	int ova;                 /* the export is packed as NAME.ova */
	struct h2k_h2kvm_opts mo;
	int deliver_fd;
	const char *deliver_dir; /* for messages and delivered_path */
	const volatile sig_atomic_t *cancel; /* stops a copy; may be NULL */
};

/*
 * Before any work: H2K_EX_USAGE when the directory to deliver into is the
 * export folder (dirfd, -1: not known), H2K_EX_EXISTS when the name to
 * deliver is taken.
 */
int h2k_handoff_precheck(const struct h2k_handoff *h, int dirfd,
    const char *safe);
/*
 * Write dir/NAME.hyper2kvm.json (when asked or delivering) for the files
 * named names[0..n); sets "hyper2kvm_manifest_path" in line.
 */
int h2k_handoff_manifest(const struct h2k_handoff *h, cJSON *line,
    const char *dir, const char *safe, const char *const *names, size_t n);
/*
 * Once the export is complete: deliver ova_path (with ova) or the
 * manifest; sets "delivered_path" in line.  Nothing to do without a
 * directory.
 */
int h2k_handoff_deliver(const struct h2k_handoff *h, cJSON *line,
    const char *safe, const char *ova_path);

#endif
