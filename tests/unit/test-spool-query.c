/*
 * test-spool-query - lib/spool-query.c (h2k_spool_wait, h2k_spool_status)
 * and h2k_spool_submit: what `h2k-job submit`, `wait` and `status` get
 * from the library.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "h2k.h"
#include "job.h"
#include "spool.h"
#include "tap.h"

static char dir[256];

struct seen {
	int n, records;
	char why[1024];
	char ids[4][H2K_SPOOL_IDMAX];
};

static int
ended(void *arg, const char *id, const cJSON *rec, const char *why)
{
	struct seen *s = arg;

	if (s->n < 4)
		snprintf(s->ids[s->n], sizeof s->ids[0], "%s", id);
	s->n++;
	if (rec)
		s->records++;
	else
		snprintf(s->why, sizeof s->why, "%s", why);
	return 0;
}

static int
count(cJSON *st, const char *status)
{
	return (int)cJSON_GetNumberValue(cJSON_GetObjectItem(
	    cJSON_GetObjectItem(st, "counts"), status));
}

/* Claim the oldest pending job and finish it with status. */
static void
run_one(struct h2k_spool *sp, const char *status)
{
	struct h2k_claim c;

	if (h2k_spool_claim(sp, &c) != 1)
		return;
	h2k_job_set_status(c.rec, status);
	h2k_spool_finish(sp, &c);
	h2k_spool_release(&c);
}

int
main(void)
{
	struct h2k_jobspec specs[3] = {
		{.name = "a", .vm_path = "/DC0/vm/a", .output_path = "/out"},
		{.name = "b", .vm_path = "/DC0/vm/b", .output_path = "/out"},
		{.name = "c", .vm_path = "/DC0/vm/c", .output_path = "/out"},
	};
	struct h2k_joblist l = {specs, 3};
	struct h2k_spool sp, none = {.dir = "/nonexistent/spool", .dfd = -1};
	volatile sig_atomic_t stop = 0;
	struct seen s = {0};
	struct h2k_spool_waitopts w = {.timeout = 0.3, .stop = &stop,
	    .ended = ended, .arg = &s};
	char *ids[3], cmd[300];
	cJSON **recs, *st;
	double t0;

	snprintf(dir, sizeof dir, "/tmp/h2k-test-spool-query.%d", (int)getpid());
	if (h2k_spool_open(&sp, dir, 1) < 0)
		return 1;

	/* --- submit --- */
	recs = h2k_spool_submit(&sp, &l);
	ok(recs && recs[0] && recs[1] && recs[2] && !recs[3],
	    "submit: three records, NULL-terminated");
	if (!recs)
		return tap_done();
	for (int i = 0; i < 3; i++)
		ids[i] = cJSON_GetStringValue(cJSON_GetObjectItem(recs[i], "id"));
	ok(strcmp(ids[0], ids[1]) && strcmp(ids[1], ids[2]), "each its own id");

	/* --- status --- */
	st = h2k_spool_status(&sp);
	ok(st != NULL, "status");
	is_str(cJSON_GetStringValue(cJSON_GetObjectItem(st, "spool")), dir,
	    "status names the spool");
	is_int(count(st, "pending"), 3, "three pending");
	is_int(count(st, "completed"), 0, "none completed");
	is_int(cJSON_GetArraySize(cJSON_GetObjectItem(st, "runners")), 0,
	    "no runner");
	is_int((int)cJSON_GetNumberValue(cJSON_GetObjectItem(st, "bad")), 0,
	    "nothing moved aside");
	cJSON_Delete(st);
	st = h2k_spool_status(&none);
	ok(st && count(st, "pending") == 0 && cJSON_GetArraySize(
	    cJSON_GetObjectItem(st, "runners")) == 0,
	    "a spool that does not exist: all zero");
	cJSON_Delete(st);

	/* --- wait: timeout keeps its fraction --- */
	t0 = h2k_monotime();
	is_int(h2k_spool_wait(&sp, ids, 2, &w), -1, "wait times out");
	ok(h2k_monotime() - t0 >= 0.3, "... after 0.3 s, not 0 (%.3f s)",
	    h2k_monotime() - t0);
	is_int(h2k_errcode(), H2K_EX_FAIL, "... exit 1");
	is_str(h2k_errmsg(), "2 of 2 jobs not finished after 0.3 s",
	    "... saying how many and how long");
	is_int(s.n, 0, "... and nothing told as ended");

	/* --- a stop (a signal) ends the wait: 10 --- */
	stop = 1;
	is_int(h2k_spool_wait(&sp, ids, 1, &w), H2K_EX_CANCEL,
	    "a stop request ends the wait with 10");
	stop = 0;

	/* --- unknown id --- */
	is_int(h2k_spool_wait(&sp, (char *[]){"99.99.99.dead"}, 1, &w), -1,
	    "unknown id");
	is_int(h2k_errcode(), H2K_EX_NOTFOUND, "... exit 6");

	/* --- one completed, one failed: 5; each told once --- */
	run_one(&sp, "completed");
	run_one(&sp, "failed");
	w.timeout = 10;
	is_int(h2k_spool_wait(&sp, ids, 2, &w), H2K_EX_PARTIAL,
	    "completed beside failed: 5");
	is_int(s.n, 2, "both told");
	is_int(s.records, 2, "... with their records");
	is_int(h2k_spool_wait(&sp, ids, 1, &w), H2K_EX_OK, "completed alone: 0");
	is_int(h2k_spool_wait(&sp, ids + 1, 1, &w), H2K_EX_FAIL,
	    "failed alone: 1");

	/* --- moved aside: ended, without a record, why given --- */
	s = (struct seen){0};
	is_int(h2k_spool_moveaside(&sp, "new", ids[2], "test: damaged"), 0,
	    "move the third aside");
	is_int(h2k_spool_wait(&sp, ids + 2, 1, &w), H2K_EX_FAIL,
	    "a job moved aside counts as failed");
	is_int(s.n, 1, "it is told");
	is_int(s.records, 0, "... without a record");
	ok(strstr(s.why, "moved aside to ") && strstr(s.why, "test: damaged"),
	    "... saying where and why (%s)", s.why);
	is_str(s.ids[0], ids[2], "... under its id");

	st = h2k_spool_status(&sp);
	ok(st && count(st, "completed") == 1 && count(st, "failed") == 1 &&
	    count(st, "pending") == 0 &&
	    cJSON_GetNumberValue(cJSON_GetObjectItem(st, "bad")) >= 1,
	    "status: 1 completed, 1 failed, 1 moved aside");
	cJSON_Delete(st);

	h2k_spool_recs_free(recs);
	h2k_spool_close(&sp);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		return 1;
	return tap_done();
}
