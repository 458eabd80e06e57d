/*
 * session.h - the session token file every command after h2k-login reads.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * A JSON object, mode 0600, in a 0700 directory:
 *   {"url":..., "cookie":..., "thumbprint":..., "insecure":false,
 *    "ca_file":..., "server_type":..., "server_version":...,
 *    "api_version":..., "user":..., "created_at":"RFC3339"}
 * Written to a temporary name in the same directory, fsynced, renamed,
 * directory fsynced.  Read only if it is a regular file (O_NOFOLLOW),
 * owned by the effective user and not readable or writable by group or
 * others; otherwise H2K_EX_SECRET naming the file and the problem.
 * Never holds the password.
 */
#ifndef H2K_SESSION_H
#define H2K_SESSION_H

#include <stddef.h>

struct h2k_session {
	char *url;
	char *cookie;
	char *thumbprint;   /* pinned, or NULL */
	int insecure;
	char *ca_file;
	char *server_type;
	char *server_version;
	char *api_version;
	char *user;
	char *created_at;
};

/*
 * The session file path: explicit (-s) if given, else $H2K_SESSION, else
 * $XDG_STATE_HOME/h2k/session.json, else ~/.local/state/h2k/session.json.
 * Caller frees.
 */
char *h2k_session_path(const char *explicit_path);
/*
 * Missing file: H2K_EX_SESSION "not logged in: no session file FILE; run
 * h2k-login".  Unsafe file or directory: H2K_EX_SECRET.  Damaged: H2K_EX_SESSION.
 */
int h2k_session_load(const char *path, struct h2k_session *s);
int h2k_session_save(const char *path, const struct h2k_session *s);
int h2k_session_remove(const char *path);
/*
 * Refuse (H2K_EX_SECRET) a session file location whose directory others
 * can write (sticky directories such as /tmp excepted) or own; 0 when the
 * directory is safe or does not exist yet.  Load and save check it too.
 */
int h2k_session_check_dir(const char *path);
void h2k_session_free(struct h2k_session *s);

/*
 * Secure file helpers shared with the config and password files.
 * h2k_secure_read: read a whole file (at most max bytes) that must be a
 * regular file, not a symlink, owned by euid (or root when allow_root),
 * mode without group/other bits.  NUL-terminated; *len may be NULL.
 */
char *h2k_secure_read(const char *path, size_t max, size_t *len, int allow_root);
/*
 * The same, naming the file as what ("session file", "password file") in
 * the message.  A missing file leaves errno ENOENT (message names it too).
 */
char *h2k_secure_read_as(const char *what, const char *path, size_t max,
    size_t *len, int allow_root);
/*
 * Atomically replace path with data: temp file in the same directory
 * created with mode, written, fsynced, renamed, directory fsynced.  Parent
 * directories are created 0700 when missing.
 */
int h2k_atomic_write(const char *path, const void *data, size_t len, int mode);
/* mkdir -p with mode for each created component. */
int h2k_mkdirs(const char *path, int mode);

#endif
