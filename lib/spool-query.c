/*
 * spool-query.c - the spool seen by its readers: `h2k-job wait`'s loop
 * (poll until every job named has ended) and `h2k-job status`'s summary.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * Neither holds a lock or writes anything: any number of them may watch
 * a runner.  The wait loop reads done/ID every 0.2 s for each job not yet ended.
 * A job ends with its final record in done/, or without one: moved to
 * bad/ (by a runner, or by recovery), left in done/ with a record that
 * cannot be trusted (not the user's, hard-linked, damaged), or with a
 * status that is not final (a runner that could not write the outcome:
 * see "A full spool" in h2k-job(5)).  The last three count as failed and
 * are told to the caller with the reason: waiting for them would never
 * end.  Each job is told once, in the order the loop finds them.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "h2k.h"
#include "job.h"
#include "jsonl.h"
#include "spool.h"

struct waitjob {
	char id[H2K_SPOOL_IDMAX];
	int ended;
};

/*
 * The full id of each job named (a unique prefix is enough); a job
 * already moved aside, or whose file cannot be read, is known by the
 * name given.  -1 with H2K_EX_NOTFOUND for a job that is nowhere.
 */
static int
resolve(struct h2k_spool *sp, char *const *names, int n, struct waitjob *j)
{
	for (int i = 0; i < n; i++) {
		char nm[NAME_MAX + 1], why[512];
		const char *sub;
		cJSON *r = h2k_spool_find(sp, names[i], &sub, j[i].id);

		if (r) {
			cJSON_Delete(r);
			continue;
		}
		if (h2k_errcode() != H2K_EX_NOTFOUND || !h2k_spool_idok(names[i]))
			return -1;
		snprintf(j[i].id, sizeof j[i].id, "%s", names[i]);
		if (!h2k_spool_where(sp, j[i].id) && h2k_spool_lost(sp, j[i].id,
		    nm, sizeof nm, why, sizeof why) != 1)
			return h2k_seterr(H2K_EX_NOTFOUND, "no job %.64s in %s",
			    names[i], sp->dir);
	}
	return 0;
}

/*
 * Has job id ended?  0 not yet; 1 ended, *rec its final record (the
 * caller's) or NULL with why filled in (it counts as failed).
 */
static int
check(struct h2k_spool *sp, const char *id, cJSON **rec, char *why,
    size_t wn)
{
	char nm[NAME_MAX + 1], reason[512];
	const char *sub;
	cJSON *r = h2k_spool_read(sp, "done", id);

	*rec = NULL;
	if (!r && h2k_spool_lost(sp, id, nm, sizeof nm, reason,
	    sizeof reason) == 1) {
		snprintf(why, wn, "moved aside to %s/bad/%s: %s", sp->dir, nm,
		    reason);
		return 1;
	}
	if (!r && h2k_errcode() != H2K_EX_NOTFOUND &&
	    (sub = h2k_spool_where(sp, id)) && !strcmp(sub, "done")) {
		snprintf(why, wn, "its record %s/done/%s cannot be read: %s",
		    sp->dir, id, h2k_errmsg());
		return 1;
	}
	if (!r)
		return 0;
	if (!h2k_job_status_final(h2k_json_str(r, "status"))) {
		snprintf(why, wn, "ended, but its runner could not record how "
		    "(status '%s' in done/); see log/%s.log",
		    h2k_json_str(r, "status"), id);
		cJSON_Delete(r);
		return 1;
	}
	*rec = r;
	return 1;
}

/* The exit status for what ended (see h2k_spool_wait). */
static int
outcome(int completed, int failed, int cancelled)
{
	if (failed)
		return completed ? H2K_EX_PARTIAL : H2K_EX_FAIL;
	if (cancelled)
		return H2K_EX_CANCEL;
	return H2K_EX_OK;
}

int
h2k_spool_wait(struct h2k_spool *sp, char *const *names, int n,
    const struct h2k_spool_waitopts *o)
{
	int left = n, completed = 0, failed = 0, cancelled = 0, rc = -1;
	double t0 = h2k_monotime();
	struct waitjob *j;

	if (n < 1)
		return h2k_seterr(H2K_EX_USAGE, "no job to wait for");
	if (!(j = h2k_calloc((size_t)n, sizeof *j)) ||
	    resolve(sp, names, n, j) < 0)
		goto out;
	for (;;) {
		for (int i = 0; i < n; i++) {
			char why[1024];
			cJSON *r;
			if (j[i].ended || !check(sp, j[i].id, &r, why, sizeof why))
				continue;
			j[i].ended = 1;
			left--;
			if (!r) {
				failed++;
				o->ended(o->arg, j[i].id, NULL, why);
				continue;
			}
			const char *st = h2k_json_str(r, "status");
			completed += !strcmp(st, "completed");
			failed += !strcmp(st, "failed");
			cancelled += !strcmp(st, "cancelled");
			int e = o->ended(o->arg, j[i].id, r, NULL);
			cJSON_Delete(r);
			if (e < 0)
				goto out;
		}
		if (left == 0) {
			rc = outcome(completed, failed, cancelled);
			break;
		}
		if (o->stop && *o->stop) {
			rc = H2K_EX_CANCEL;
			break;
		}
		if (o->timeout >= 0 && h2k_monotime() - t0 > o->timeout) {
			h2k_seterr(H2K_EX_FAIL, "%d of %d jobs not finished after "
			    "%g s", left, n, o->timeout);
			break;
		}
		h2k_sleep(0.2);
	}
out:
	free(j);
	return rc;
}

/* --- status -------------------------------------------------------------- */

struct counts {
	int n[5];
	cJSON *runners;
};

static int
count_cb(void *arg, const char *sub, cJSON *rec)
{
	struct counts *c = arg;
	const char *st = h2k_json_str(rec, "status");

	(void)sub;
	for (int i = 0; i < 5; i++)
		if (!strcmp(st, h2k_job_statuses[i]))
			c->n[i]++;
	return 0;
}

/* A live runner's run/PID record, with its uptime for the reader. */
static int
runner_cb(void *arg, const char *sub, cJSON *rec)
{
	struct counts *c = arg;
	double t = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(rec,
	    "started_epoch"));
	cJSON *r = cJSON_Duplicate(rec, 1);

	(void)sub;
	if (!r)
		return h2k_seterr(H2K_EX_FAIL, "out of memory");
	cJSON_DeleteItemFromObjectCaseSensitive(r, "started_epoch");
	if (t == t)
		cJSON_AddNumberToObject(r, "uptime_s",
		    (double)(time(NULL) - (time_t)t));
	cJSON_AddItemToArray(c->runners, r);
	return 0;
}

cJSON *
h2k_spool_status(struct h2k_spool *sp)
{
	struct counts c = {{0}, NULL};
	int missing = sp->dfd < 0;
	cJSON *o, *cn;

	if (!(o = cJSON_CreateObject()) ||
	    !cJSON_AddStringToObject(o, "spool", sp->dir) ||
	    !(c.runners = cJSON_AddArrayToObject(o, "runners"))) {
		h2k_seterr(H2K_EX_FAIL, "out of memory");
		goto fail;
	}
	if (!missing && (h2k_spool_runners(sp, runner_cb, &c) < 0 ||
	    h2k_spool_each(sp, 1, count_cb, &c) < 0))
		goto fail;
	if (!(cn = cJSON_AddObjectToObject(o, "counts"))) {
		h2k_seterr(H2K_EX_FAIL, "out of memory");
		goto fail;
	}
	for (int i = 0; i < 5; i++)
		cJSON_AddNumberToObject(cn, h2k_job_statuses[i], c.n[i]);
	cJSON_AddNumberToObject(o, "bad", missing ? 0 :
	    h2k_spool_count_bad(sp));
	return o;
fail:
	cJSON_Delete(o);
	return NULL;
}
