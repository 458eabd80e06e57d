/*
 * diskimg.h - what a saved disk image says of its own size.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 */
#ifndef H2K_DISKIMG_H
#define H2K_DISKIMG_H

/* The largest capacity taken: 64 TiB (VMFS stops at 62 TiB). */
#define H2K_DISKIMG_MAX (1ll << 46)

/*
 * The capacity in bytes of the disk image open at fd (a regular file;
 * name for messages), read as format says, from its headers only:
 *   "raw"    the file's size (an empty file is refused, as any format);
 *   "qcow2"  the header's size (magic, version 2 or 3, cluster size, a
 *            v3 header's length, an L1 table large enough: checked;
 *            a backing file, an external data file, encryption, the
 *            corrupt bit or an unknown incompatible feature refused);
 *   "vmdk"   a sparse header's capacity (sectors x 512) when the file
 *            starts with "KDMV" (a parentFileNameHint in the embedded
 *            descriptor refused), the sum of the extents of a text
 *            descriptor ("# Disk DescriptorFile", at most 64 KiB), else
 *            the file's size (the plain bytes of a disk);
 *            subformat (streamOptimized, monolithicSparse) non-NULL
 *            requires the sparse header, of that kind (its flags), and
 *            NULL refuses it (a vmdk line without one is plain bytes);
 *   NULL     whichever of those the first bytes show.
 * Never more than 64 KiB is read.  0, or -1 with H2K_EX_IO naming the
 * file (H2K_EX_USAGE for a format it does not know).
 */
int h2k_diskimg_capacity(int fd, const char *name, const char *format,
    const char *subformat, long long *cap);

#endif
