/*
 * lease.h - HttpNfcLease operations shared by h2k-lease, h2k-fetch, h2k-ovf.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 */
#ifndef H2K_LEASE_H
#define H2K_LEASE_H

#include "vim.h"

enum h2k_lease_state {
	H2K_LEASE_INITIALIZING,
	H2K_LEASE_READY,
	H2K_LEASE_DONE,
	H2K_LEASE_ERROR,
	H2K_LEASE_GONE, /* ManagedObjectNotFound: completed, aborted or timed out */
};

/* state; on H2K_LEASE_ERROR *msg gets the server's message (caller frees). */
int h2k_lease_state(struct h2k_vim *v, const char *lease, char **msg);
/* HttpNfcLeaseProgress(percent 0..100): also what keeps the lease alive. */
int h2k_lease_progress(struct h2k_vim *v, const char *lease, int percent);
/* HttpNfcLeaseAbort with a LocalizedMethodFault carrying msg (may be NULL). */
int h2k_lease_abort(struct h2k_vim *v, const char *lease, const char *msg);
int h2k_lease_complete(struct h2k_vim *v, const char *lease);
/*
 * The device URLs the server lists for lease (info.deviceUrl[].url, a "*"
 * host replaced by the session's as h2k-lease does), read over the session:
 * what h2k-fetch trusts with the session cookie.  Free with
 * h2k_lease_urls_free.
 */
#define H2K_LEASE_MAX_URLS 1024
int h2k_lease_device_urls(struct h2k_vim *v, const char *lease, char ***urls,
    size_t *n);
void h2k_lease_urls_free(char **urls, size_t n);
/* RemoveSnapshot_Task(removeChildren=false) and wait. */
int h2k_snapshot_remove(struct h2k_vim *v, const char *snapshot, double timeout);

#endif
