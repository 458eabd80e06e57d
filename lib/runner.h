/*
 * runner.h - the engine of `h2k-job run`: claims jobs from a spool and runs
 * each as the pipeline h2k-lease | h2k-fetch | h2k-ovf in its own process
 * group, relaying their lines, keeping their progress in the job's record
 * and finishing it through spool.c.  runner.c's top comment says how.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 */
#ifndef H2K_RUNNER_H
#define H2K_RUNNER_H

#include "spool.h"

struct h2k_runner_opts {
	struct h2k_spool *spool; /* open; the caller closes it afterwards */
	int workers;             /* jobs at a time (at least 1) */
	int once;                /* stop when the queue is empty */
	double grace;            /* seconds running jobs get after SIGTERM */
	const char *bindir;      /* where the pipeline is first looked for */
	const char *session;     /* -s for every stage (wins over credentials) */
	int download_workers;    /* default -j for h2k-fetch (0: its own) */
	/*
	 * SIGHUP: reload the caller's config; sets *download_workers.
	 * -1 (error set) keeps the old settings.  May be NULL.
	 */
	int (*reload)(void *arg, int *download_workers);
	void *reload_arg;
};

struct h2k_runner_result {
	int completed, failed; /* jobs this runner ended (failed: + recovery) */
	int stopped;           /* a signal stopped it */
};

/*
 * Run until a signal stops it (or, with once, until the queue is empty).
 * Installs handlers for SIGTERM, SIGINT, SIGHUP, SIGCHLD and ignores
 * SIGPIPE.  Returns the exit status for `h2k-job run` (0, H2K_EX_PARTIAL,
 * H2K_EX_FAIL, H2K_EX_IO), or -1 with the error set when it could not
 * start (or ran out of memory).  res may be NULL.
 */
int h2k_runner_run(const struct h2k_runner_opts *o,
    struct h2k_runner_result *res);

/*
 * `h2k-job cancel ID`: a pending job is cancelled here; a running one gets
 * cancel/ID and its runner stops it (or, when that runner is dead, its
 * left-over process group gets SIGTERM, then SIGKILL); waits up to limit
 * seconds for the job to be final.  emit gets the cancelled record (a job
 * already cancelled: its record); its -1 is returned.  -1 with the error
 * set: no such job, already final, or still running after limit.
 */
int h2k_runner_cancel(struct h2k_spool *sp, const char *arg, double limit,
    int (*emit)(const cJSON *rec));

#endif
