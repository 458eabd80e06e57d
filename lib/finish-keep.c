/*
 * finish-keep.c - h2k-ovf's keeper thread: the leases of lines read and
 * not yet finished, kept alive.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * h2k-fetch keeps every lease alive while it runs, but it may exit while
 * lines still wait in h2k-ovf behind a VM being packed into an OVA
 * (minutes for big disks), and a lease that hears nothing for its timeout
 * is lost.  The reader thread (finish.c) lists each line's lease in
 * finish_q.ka as soon as the line arrives, with its next keepalive due
 * now; this thread keeps each on its own clock, by the rule and with the
 * call h2k-fetch uses (lease.c: h2k_lease_keepalive_interval,
 * h2k_lease_keep; 99 percent: the bytes are all here, the export is not
 * done), over its own connection so it never waits for the main one.  A
 * lease found ended (gone, completed, in error) has nothing left to keep
 * and leaves the list; the main thread, which finishes the line, asks the
 * state itself and says what it found.  The caller's thread drops a lease
 * when its line is done, and sets finish_q.stop at the end of the run.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "finish-int.h"
#include "h2k.h"
#include "lease.h"

/* Sleep on finish_q.cv until `next` (between 50 ms and 1 s; mu held):
 * a lease that arrives meanwhile wakes it. */
static void
keep_wait(double now, double next)
{
	double wait = next - now;

	if (wait < 0.05)
		wait = 0.05;
	if (wait > 1)
		wait = 1;
	h2k_cond_wait(&finish_q.cv, &finish_q.mu, wait);
}

void *
finish_keep_main(void *arg)
{
	struct h2k_vim *kv = arg;
	struct finish_q *q = &finish_q;

	pthread_mutex_lock(&q->mu);
	while (!q->stop) {
		double now = h2k_monotime(), next = now + 1;
		char *lease = NULL, *lmsg = NULL;

		for (size_t i = 0; i < q->nka; i++) {
			struct finish_alive *a = &q->ka[i];
			if (!lease && a->next <= now) {
				if (!(lease = h2k_strdup(a->lease)))
					break;
				a->next = now + h2k_lease_keepalive_interval(
				    a->timeout, 0);
			}
			if (a->next < next)
				next = a->next;
		}
		if (!lease) {
			keep_wait(now, next);
			continue;
		}
		pthread_mutex_unlock(&q->mu);
		int st = h2k_lease_keep(kv, lease, 99, lease, &lmsg);
		if (st < 0)
			h2k_debug("keepalive: %s", h2k_errmsg());
		free(lmsg);
		pthread_mutex_lock(&q->mu);
		if (st == H2K_LEASE_GONE || st == H2K_LEASE_DONE ||
		    st == H2K_LEASE_ERROR)
			finish_ka_drop(lease);
		free(lease);
	}
	pthread_mutex_unlock(&q->mu);
	return NULL;
}
