/*
 * session.h - the session token file every command after h2k-login reads.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * A JSON object, mode 0600, in a 0700 directory:
 *   {"url":..., "cookie":..., "thumbprint":..., "insecure":false,
 *    "ca_file":..., "ca_pem":..., "server_type":..., "server_version":...,
 *    "api_version":..., "user":..., "created_at":"RFC3339"}
 * Written to a temporary name in the same directory, fsynced, renamed,
 * directory fsynced.  Read only if it is a regular file (O_NOFOLLOW),
 * owned by the effective user and not readable or writable by group or
 * others; otherwise H2K_EX_SECRET naming the file and the problem.
 * Never holds the password.  ca_pem is the content of the CA file as
 * checked and trusted at login: later commands verify the server against
 * it, not against whatever the file at ca_file holds by then.
 */
#ifndef H2K_SESSION_H
#define H2K_SESSION_H

#include <stddef.h>

struct h2k_session {
	char *url;
	char *cookie;
	char *thumbprint;   /* pinned, or NULL */
	int insecure;
	char *ca_file;      /* where ca_pem came from, for display */
	char *ca_pem;       /* CA bundle trusted at login, or NULL */
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
/* Biggest CA file h2k-login takes into a session. */
#define H2K_CA_MAX (1u << 20)
int h2k_session_save(const char *path, const struct h2k_session *s);
int h2k_session_remove(const char *path);
/*
 * Refuse (H2K_EX_SECRET) a session file location whose directory others
 * can write (sticky directories such as /tmp excepted) or own, below a
 * directory others own, or reached through a symlink others can re-point;
 * 0 when the location is safe or does not exist yet.  Load and save walk
 * the path the same way (from "/", openat with O_NOFOLLOW, symlinks by
 * hand) and then read, create and rename relative to the checked
 * directory descriptor, never by name again.
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
/*
 * mkdir -p with mode for each created component.  Each component is
 * reached by openat from its parent; a component this call creates is
 * opened with O_NOFOLLOW and given its mode by fchmod on that descriptor,
 * so a symlink swapped in after the mkdir is refused, never chmod'ed
 * through.  Components that already exist are the caller's layout and
 * may be symlinks to directories.
 */
int h2k_mkdirs(const char *path, int mode);

/*
 * Trust files (config files, CA files): read whole (at most max bytes),
 * as ssh reads ssh_config, but race-free.  path (made absolute with the
 * current directory) is walked one component at a time from "/" with
 * O_NOFOLLOW; each directory passed through must be owned by the
 * effective user or root and not writable by group or others unless
 * sticky.  A symlink met on the way (directory or file) is followed by
 * hand, its target walked the same way, so the link's directories and
 * the target's are checked; in a sticky directory the link must be owned
 * by the effective user or root, since its owner can replace it there.
 * The file itself is opened with O_NOFOLLOW from its checked directory
 * and must be a regular file owned by the effective user or root, not
 * writable by group or others.  Everything
 * is decided on fstat of the open descriptors.  Refusal: H2K_EX_SECRET
 * naming what, the file and the problem.  A missing file: H2K_EX_IO with
 * errno ENOENT; an unreadable one: errno EACCES.  *mode (may be NULL)
 * gets the file's permission bits, for callers with stricter needs.
 */
char *h2k_trust_read(const char *what, const char *path, size_t max,
    size_t *len, unsigned *mode);

#endif
