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
/*
 * The same read from an ObjectContent of the lease (propSets state and
 * error), for h2k_lease_state and the unit tests: no state is
 * H2K_LEASE_GONE, an unknown one -1 (H2K_EX_NET); on H2K_LEASE_ERROR *msg
 * (if msg) is the fault's localizedMessage, else its type and reason.
 */
int h2k_lease_state_of(xmlNodePtr obj, const char *lease, char **msg);
/* HttpNfcLeaseProgress(percent 0..100): also what keeps the lease alive. */
int h2k_lease_progress(struct h2k_vim *v, const char *lease, int percent);
/*
 * The lease keepalive, one rule and one call for h2k-fetch and h2k-ovf
 * (lease.c says why this rule).  h2k_lease_keepalive_interval: seconds
 * between two keepalives of a lease whose timeout is timeout_s (<= 0:
 * unknown), or `every` when it is > 0 (h2k-fetch --keepalive); at least 1.
 * h2k_lease_keep: HttpNfcLeaseProgress(percent), then the lease's state
 * (returned as h2k_lease_state does, *msg likewise); a failed Progress the
 * state does not explain is a warning naming label.
 */
double h2k_lease_keepalive_interval(double timeout_s, double every);
int h2k_lease_keep(struct h2k_vim *v, const char *lease, int percent,
    const char *label, char **msg);
/* HttpNfcLeaseAbort with a LocalizedMethodFault carrying msg (may be NULL). */
int h2k_lease_abort(struct h2k_vim *v, const char *lease, const char *msg);
int h2k_lease_complete(struct h2k_vim *v, const char *lease);
/*
 * The device URLs the server lists for lease (info.deviceUrl[].url, a "*"
 * host replaced by the session's as h2k-lease does), read over the session:
 * what h2k-fetch trusts with the session cookie; pins[i] is the
 * sslThumbprint listed with urls[i] (h2k_thumbprint_norm), NULL if none.
 * Free both with h2k_lease_urls_free.
 */
#define H2K_LEASE_MAX_URLS 1024
int h2k_lease_device_urls(struct h2k_vim *v, const char *lease, char ***urls,
    char ***pins, size_t *n);
void h2k_lease_urls_free(char **urls, size_t n);
/*
 * The temporary snapshot h2k-lease takes of a running VM: its name is
 * H2K_SNAPSHOT_PREFIX and a UTC time, its description H2K_SNAPSHOT_DESC.
 */
#define H2K_SNAPSHOT_PREFIX "h2k-export-"
#define H2K_SNAPSHOT_DESC "Temporary snapshot taken by h2k-lease to " \
    "export a running VM; removed when the export ends."
/*
 * RemoveSnapshot_Task(removeChildren=false) and wait.  The snapshot's moref
 * comes from an input line (lease.snapshot), which anyone may have written:
 * only a temporary snapshot of h2k-lease (name and description above, read
 * from its VM's snapshot tree) is removed; any other is refused with
 * H2K_EX_STATE naming it, a missing one is H2K_EX_NOTFOUND.
 */
int h2k_snapshot_remove(struct h2k_vim *v, const char *snapshot, double timeout);

#endif
