/*
 * pathsafe.h - turn server-supplied strings (VM names, NFC target ids)
 * into one safe file-name component, and keep names unique in a folder.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * The rules, in order:
 *  - '/' and '\\', ASCII control characters (0x00-0x1f, 0x7f), invalid
 *    UTF-8, C1 controls (U+0080-U+009F) and the bidirectional overrides
 *    and isolates (U+202A-U+202E, U+2066-U+2069, which make a name read
 *    differently from what it is) and the line and paragraph separators
 *    U+2028/U+2029 each become '_';
 *  - leading dots become '_' (no hidden files, so no ".", "..", ".ssh");
 *  - a leading '-' becomes '_' (the name is not taken for an option by a
 *    tool it is later handed to);
 *  - names ending in ".part" or ".meta" (in any case) get a '_' appended: those suffixes
 *    are h2k's temporary files, and a final name must never equal another
 *    file's temporary name;
 *  - the result is cut to H2K_PATHSAFE_MAX bytes on a UTF-8 boundary,
 *    keeping the extension (a last '.' and 1-15 letters or digits, such as
 *    ".vmdk") so the file type survives;
 *  - an empty result becomes the fallback.
 * Sanitising is a function of the input alone, so a rerun derives the same
 * names and finds its .part files again.
 */
#ifndef H2K_PATHSAFE_H
#define H2K_PATHSAFE_H

#include <stddef.h>

/* Leaves room for ".part.meta" and a uniquifier under NAME_MAX (255). */
#define H2K_PATHSAFE_MAX 200

/* Sanitised copy of s (NULL is treated as empty); caller frees. */
char *h2k_pathsafe(const char *s, const char *fallback);

/*
 * The names already handed out in one folder.  h2k_pathset_claim returns a
 * name (caller frees) not yet in the set and records it: the name itself,
 * else "stem-2.ext", "stem-3.ext", ...  Comparison ignores ASCII case:
 * the folder may be on a file system that does (exFAT, NTFS, an SMB share,
 * ext4 casefold), where "Disk.vmdk" and "disk.vmdk", or a device "VM.OVF"
 * and the descriptor VM.ovf, are one file.  NULL only on allocation failure.
 */
struct h2k_pathset {
	char **names;
	size_t n, cap;
};
char *h2k_pathset_claim(struct h2k_pathset *set, const char *safe);
void h2k_pathset_free(struct h2k_pathset *set);

/* A file name made from a VM name: no "/", "\", control bytes, leading
 * dot, at most 80 bytes (ustar names: room for ".ovf", ".mf"). */
char *h2k_ovf_safe_name(const char *name);

#endif
