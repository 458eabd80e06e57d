/*
 * ovf.h - OVF descriptor, manifest and OVA package.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 */
#ifndef H2K_OVF_H
#define H2K_OVF_H

#include <signal.h>
#include <stddef.h>

#include "h2k.h"
#include "vim.h"

/* One downloaded file, as OvfManager.CreateDescriptor wants it. */
struct h2k_ovf_file {
	const char *device_id; /* the lease's deviceUrl key */
	const char *path;      /* file name in the descriptor (no directory) */
	long long size;        /* real size of the downloaded file */
};

/*
 * OvfManager.CreateDescriptor for vm (moref value), based on snapshot when
 * non-NULL.  Returns the descriptor text (caller frees), length in *len.
 * Errors the server lists in the result fail the call with its message;
 * warnings are logged.
 */
char *h2k_ovf_create_descriptor(struct h2k_vim *v, const char *vm,
    const char *snapshot, const char *name, const struct h2k_ovf_file *files,
    size_t nfiles, size_t *len);

/* A descriptor after h2k_ovf_process. */
struct h2k_ovf_desc {
	char *text;        /* what to write as NAME.ovf */
	size_t len;
	char **hrefs;      /* References/File hrefs still in the descriptor */
	size_t nhrefs;
	char **dropped;    /* hrefs of files only the removed CD-ROMs used */
	size_t ndropped;
	int cdroms;        /* CD-ROM/DVD items removed */
};

/*
 * Parse a descriptor that came from the network (h2k_xml_parse: no DTD,
 * no entities, bounded), require an Envelope with at most one References,
 * collect the file references (each a plain file name, none listed twice,
 * one href and one id each: with href and ovf:href a reader could take the
 * one not checked), and with remove_cdrom
 * drop every Item whose rasd:ResourceType is 15 (CD drive) or 16 (DVD
 * drive) together with the References/File entries only those items used.  When nothing is removed
 * the text is kept byte for byte.  H2K_EX_NET on a malformed descriptor.
 */
int h2k_ovf_process(const char *text, size_t len, int remove_cdrom,
    struct h2k_ovf_desc *out);
void h2k_ovf_desc_free(struct h2k_ovf_desc *d);

/* What a downloaded file is, for its References/File and DiskSection/Disk. */
struct h2k_ovf_disk {
	const char *href;       /* the File's href: the file name written */
	const char *format_uri; /* ovf:format, or NULL: leave the server's */
	long long size;         /* the File's ovf:size, -1: leave it */
	long long capacity;     /* ovf:capacity in bytes, <= 0: leave it */
	long long populated;    /* ovf:populatedSize, -1: leave it */
};

/*
 * The ovf:format URI for a file of h2k-fetch's files[]: format vmdk, raw,
 * qcow2; vmdk_subformat streamOptimized or monolithicSparse (a VMDK without
 * one is the plain bytes of a disk: raw).  NULL: unknown format.
 */
const char *h2k_ovf_format_uri(const char *format, const char *vmdk_subformat);

/*
 * Make the descriptor say what each file is: for the File whose href is
 * dk[i].href, its ovf:size, and on every Disk whose ovf:fileRef is that
 * File's id, ovf:format, ovf:capacity (in bytes: ovf:capacityAllocationUnits
 * is dropped) and ovf:populatedSize.  The text is serialised again.
 */
int h2k_ovf_set_disks(struct h2k_ovf_desc *d, const struct h2k_ovf_disk *dk,
    size_t n);

/*
 * Is base a name h2k-ovf writes in the folder of the VM whose safe name is
 * safe: NAME.ovf, NAME.mf, NAME.ova, NAME.hyper2kvm.json, or one of their
 * temporary names?  A
 * downloaded file must never have one (it would be overwritten).
 */
int h2k_ovf_output_name(const char *safe, const char *base);

/* --- manifest (NAME.mf) -------------------------------------------------- */

/* Append "SHA256(file)= hex\n"; algo is "SHA1", "SHA256" or "SHA512". */
int h2k_mf_add(struct h2k_buf *b, const char *algo, const char *file,
    const char *hex);

struct h2k_mf_entry {
	char algo[8];   /* "SHA1", "SHA256", "SHA512" */
	char *file;
	char hex[129];  /* lower case */
};

/*
 * Parse a manifest: lines "ALGO(file)= hex" (spaces around "=" optional,
 * CRLF accepted, blank lines skipped).  H2K_EX_USAGE "line N: why" on a
 * malformed line, a digest of the wrong length or a file named twice.
 */
int h2k_mf_parse(const char *buf, size_t len, struct h2k_mf_entry **out,
    size_t *n);
void h2k_mf_free(struct h2k_mf_entry *e, size_t n);

/* --- digests --------------------------------------------------------------- */

void h2k_sha256_hex(const void *p, size_t n, char hex[65]);
/* SHA-256 of a file (regular file, not a symlink); *size gets its length. */
int h2k_sha256_file(const char *path, char hex[65], long long *size);
/* The same, of the file want describes (lstat'ed before): another file
 * under the name since is an error, not hashed. */
struct stat;
int h2k_sha256_file_id(const char *path, const struct stat *want, char hex[65],
    long long *size);

/* --- OVA ------------------------------------------------------------------- */

struct h2k_ova_member {
	const char *name;    /* member name in the archive */
	const char *path;    /* file on disk */
	const char *sha256;  /* when non-NULL, the bytes packed must hash to it */
};

/*
 * Pack members, in the given order (descriptor first, as OVF requires), into
 * path: tar in ustar format (GNU base-256 sizes only if a member is 8 GiB
 * or more, or a name longer than ustar's 99 bytes), streamed in 1 MiB reads, written to path.part, fsynced, renamed.
 * A member whose bytes do not match its sha256 or its size at open time
 * fails the whole package and nothing is left under path or path.part;
 * so does *cancel becoming non-zero (H2K_EX_CANCEL).  0; -2 when a
 * member's bytes were not those recorded (its digest or size), -1 for
 * any other failure.
 */
int h2k_ova_write(const char *path, const struct h2k_ova_member *m, size_t n,
    volatile sig_atomic_t *cancel);

/*
 * Read the OVA at path back: its members must be exactly m[] (by name, once
 * each), each hashing to m[i].sha256.  H2K_EX_IO naming the member that
 * differs, is missing or was not expected.
 */
int h2k_ova_verify(const char *path, const struct h2k_ova_member *m, size_t n,
    volatile sig_atomic_t *cancel);

#endif
