/*
 * fetch-lease.c - the lease thread: keepalive, state, abort.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * The lease keepalive.  vSphere drops an NFC lease that hears nothing for
 * its timeout (lease.timeout_s, 300 s by default).  The lease thread calls
 * HttpNfcLeaseProgress for every lease every min(timeout/3, 60) seconds (or
 * --keepalive; the rule and the call are lease.c's, shared with h2k-ovf's
 * keeper in finish-keep.c), with the real percent of that VM's bytes done
 * (never 100 before every file is complete), and reads the lease state in
 * the same round: a lease in error fails that VM with the server's message, a lease
 * that is gone fails it too.  Only this thread talks SOAP, so a slow call
 * never delays a download.  When a VM fails (its files settled), this
 * thread aborts its lease (HttpNfcLeaseAbort, unless --keep-lease) and
 * removes the temporary snapshot named in lease.snapshot; .part files are
 * kept (the main thread makes one more kind of SOAP call, the lease's
 * device URLs for the cookie policy, before a line's files are queued).
 * A VM that completed keeps its keepalive until h2k-fetch exits, so
 * the next stage finds the lease alive.  Input lines without a lease (plain
 * URLs) need no session and get no keepalive; a line with a lease and no
 * usable session fails, since nothing would keep that lease alive.
 *
 * Shared, under run.mu: the run's VM list (each vm's lease, snapshot,
 * vstate, next_keepalive, lease_gone), read for the percent from the files'
 * atomic done/total counters; it fails VMs through fetch_vm_fail and wakes
 * on run.lease_cv.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fetch-int.h"
#include "lease.h"
#include "vim.h"

/* --- the lease thread ----------------------------------------------------- */

/* Sums in double: capacities come from the line and the stream's header,
 * each below 9e18, and a few of them overflow a long long. */
static int
vm_percent(struct vm *vm)
{
	double done = 0, total = 0;
	int unknown = 0, complete = 0;

	for (int i = 0; i < vm->nfiles; i++) {
		struct file *f = &vm->files[i];
		long long d = atomic_load(&f->done), t = atomic_load(&f->total);
		if (f->state == FS_OK)
			complete++;
		if (t < 0)
			t = f->size_hint;
		long long cap = atomic_load(&f->cap_hint);
		if (t <= 0 && cap > 0) {
			/* a stream: how far into the disk it has come */
			long long p = atomic_load(&f->pos);
			d = p >= 0 ? p : d;
			t = cap;
		}
		if (t <= 0 || d > t) {
			unknown = 1;
			continue;
		}
		done += (double)d;
		total += (double)t;
	}
	if (vm->nfiles > 0 && complete == vm->nfiles)
		return 100;
	int pct = unknown ? (vm->nfiles ? 100 * complete / vm->nfiles : 0) :
	    total > 0 ? (int)(100.0 * done / total) : 0;
	return pct > 99 ? 99 : pct < 0 ? 0 : pct;
}

struct lease_job {
	struct vm *vm;
	char *lease, *snapshot;
	int percent, end;  /* end: abort + snapshot removal */
	int deferred;      /* the VM's error is ours to print */
	char *why;
};

/* The lease thread's own SOAP session, made at its first job. */
struct keeper {
	struct run *r;
	struct h2k_vim *v;
	int vim_failed, vim_code;
	char *vim_err;
};

/*
 * The next piece of work, soonest first (caller holds r->mu): a failed
 * VM's lease to end, else a keepalive that is due.  0 when there is none:
 * *next is when one falls due, *pending_end whether ends are still owed.
 */
static int
pick_job(struct run *r, double now, struct lease_job *job, double *next, int *pending_end)
{
	*next = now + 1;
	*pending_end = 0;
	for (size_t i = 0; i < r->nvms; i++) {
		struct vm *vm = r->vms[i];
		if (!vm->lease)
			continue;
		/* even with the lease gone, its snapshot is still ours to remove */
		if (vm->vstate == V_FAILED_PENDING) {
			*pending_end = 1;
			if (!job->vm) {
				job->vm = vm;
				job->end = 1;
			}
			continue;
		}
		if (vm->lease_gone)
			continue;
		if (vm->vstate == V_DONE && !vm->ok)
			continue;
		if (!job->vm && vm->next_keepalive <= now && !vm->failed) {
			job->vm = vm;
			job->percent = vm_percent(vm);
		} else if (vm->next_keepalive < *next)
			*next = vm->next_keepalive;
	}
	return job->vm != NULL;
}

/* Sleep on lease_cv until `next` (between 50 ms and 1 s; r->mu held). */
static void
lease_wait(struct run *r, double now, double next)
{
	double wait = next - now;

	if (wait < 0.05)
		wait = 0.05;
	if (wait > 1)
		wait = 1;
	h2k_cond_wait(&r->lease_cv, &r->mu, wait);
}

/* The session for the SOAP calls, once; after a failure, never again. */
static void
keeper_vim(struct keeper *k)
{
	if (k->v || k->vim_failed)
		return;
	if (!k->r->o->session) {
		k->vim_failed = 1;
		k->vim_code = H2K_EX_SESSION;
		k->vim_err = h2k_strdup("no session: cannot keep the lease alive "
		    "(run h2k-login, or give -s)");
	} else if (!(k->v = h2k_vim_from_session(k->r->o->session))) {
		k->vim_failed = 1;
		k->vim_code = h2k_errcode();
		k->vim_err = h2k_strdup(h2k_errmsg());
	}
}

/* End a failed VM's lease: abort it and remove its snapshot, or say why
 * not; a deferred 404 gets its cause printed in its place. */
static void
lease_end(struct keeper *k, struct vm *vm, const struct lease_job *job)
{
	struct run *r = k->r;
	struct h2k_vim *v = k->v;
	/* a lease already in error or gone has nothing to abort: say why instead */
	char *lmsg = NULL;
	int st = v && job->lease ? h2k_lease_state(v, job->lease, &lmsg) : -1;

	if (st == H2K_LEASE_ERROR && job->deferred) {
		/* the cause, in place of the 404 it led to */
		fetch_msg(r, "%s: lease %s is in error: %s", vm->name, job->lease,
		    lmsg ? lmsg : "no message from the server");
		pthread_mutex_lock(&r->mu);
		vm->errcode = H2K_EX_STATE;
		if (r->first_vm == vm)
			r->first_code = H2K_EX_STATE;
		pthread_mutex_unlock(&r->mu);
	} else if (job->deferred)
		fetch_msg(r, "%s", job->why);
	if (st == H2K_LEASE_ERROR) {
		/* the VM's line is out: this state, or what left the
		 * lease to time out */
		if (!job->deferred)
			h2k_info("%s: lease %s is in error: %s", vm->name,
			    job->lease, lmsg ? lmsg : "no message from the server");
	} else if (st == H2K_LEASE_GONE) {
		h2k_info("%s: lease %s is gone already", vm->name, job->lease);
	} else if (v && job->lease && !r->o->keep_lease) {
		if (h2k_lease_abort(v, job->lease, job->why) < 0)
			fetch_msg(r, "%s: lease %s: abort failed: %s", vm->name, job->lease,
			    h2k_errmsg());
		else
			h2k_info("%s: lease %s aborted", vm->name, job->lease);
	}
	free(lmsg);
	/* the snapshot backs the lease: kept with it under --keep-lease */
	if (v && job->snapshot && !r->o->keep_lease) {
		if (h2k_snapshot_remove(v, job->snapshot, 600) < 0)
			fetch_msg(r, "%s: snapshot %s: not removed: %s", vm->name,
			    job->snapshot, h2k_errmsg());
		else
			h2k_info("%s: temporary snapshot %s removed", vm->name,
			    job->snapshot);
	}
	/* without a session the VM's own error said so; the snapshot is news */
	if (!v && !r->o->keep_lease && job->snapshot)
		fetch_msg(r, "%s: lease %s left to time out%s: %s", vm->name, job->lease,
		    job->snapshot ? " and snapshot not removed" : "",
		    k->vim_err ? k->vim_err : "no session");
}

/* One keepalive: HttpNfcLeaseProgress, then the lease's state.  Returns
 * the exit code the VM fails with (and *failmsg why), or 0. */
static int
lease_keep(struct keeper *k, struct vm *vm, const struct lease_job *job, char **failmsg)
{
	struct h2k_vim *v = k->v;
	char *lmsg = NULL;
	int st, failcode = 0;

	if (k->vim_failed) {
		*failmsg = h2k_asprintf("%s: lease %s: %s", vm->name, job->lease, k->vim_err);
		return k->vim_code;
	}
	st = h2k_lease_keep(v, job->lease, job->percent, vm->name, &lmsg);
	if (st == H2K_LEASE_ERROR) {
		failcode = H2K_EX_STATE;
		*failmsg = h2k_asprintf("%s: lease %s is in error: %s", vm->name,
		    job->lease, lmsg ? lmsg : "no message from the server");
	} else if (st == H2K_LEASE_GONE) {
		failcode = H2K_EX_STATE;
		*failmsg = h2k_asprintf("%s: lease %s is gone (timed out, "
		    "completed or aborted on the server)", vm->name, job->lease);
	} else if (st == H2K_LEASE_DONE && !vm->ok) {
		failcode = H2K_EX_STATE;
		*failmsg = h2k_asprintf("%s: lease %s was completed by someone else",
		    vm->name, job->lease);
	} else if (st < 0)
		h2k_warn("%s: lease %s: state: %s", vm->name, job->lease, h2k_errmsg());
	free(lmsg);
	return failcode;
}

void *
fetch_lease_main(void *arg)
{
	struct keeper k = { .r = arg };
	struct run *r = k.r;

	pthread_mutex_lock(&r->mu);
	for (;;) {
		struct lease_job job = {0};
		double now = h2k_monotime(), next;
		int pending_end;
		if (!pick_job(r, now, &job, &next, &pending_end)) {
			if (r->lease_stop && !pending_end)
				break;
			lease_wait(r, now, next);
			continue;
		}
		struct vm *vm = job.vm;
		job.lease = h2k_strdup(vm->lease);
		job.snapshot = vm->snapshot ? h2k_strdup(vm->snapshot) : NULL;
		job.why = h2k_strdup(vm->errmsg ? vm->errmsg : "h2k-fetch failed");
		job.deferred = job.end && vm->deferred;
		if (!job.end)
			vm->next_keepalive = now +
			    h2k_lease_keepalive_interval(vm->timeout, r->o->keepalive);
		pthread_mutex_unlock(&r->mu);

		/* SOAP, without the lock */
		int failcode = 0;
		char *failmsg = NULL;
		keeper_vim(&k);
		if (job.end)
			lease_end(&k, vm, &job);
		else
			failcode = lease_keep(&k, vm, &job, &failmsg);

		pthread_mutex_lock(&r->mu);
		if (job.end) {
			vm->vstate = V_DONE;
			vm->lease_gone = 1;
			pthread_cond_broadcast(&r->cv);
		} else if (failcode) {
			if (vm->ok || vm->vstate == V_DONE) {
				/* complete already: the lease is the next stage's now */
				vm->lease_gone = 1;
			} else {
				if (failcode == H2K_EX_STATE)
					vm->lease_gone = 1;  /* nothing to abort */
				fetch_vm_fail(vm, failcode, failmsg ? failmsg : "lease failure");
			}
		}
		free(failmsg);
		free(job.lease);
		free(job.snapshot);
		free(job.why);
	}
	pthread_mutex_unlock(&r->mu);
	h2k_vim_free(k.v);
	free(k.vim_err);
	return NULL;
}
