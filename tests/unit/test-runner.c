/*
 * Unit tests for lib/runner.c: h2k_runner_cancel over a real spool in a
 * temporary directory (no pipeline is started).
 * SPDX-License-Identifier: LGPL-3.0-or-later
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "h2k.h"
#include "job.h"
#include "jsonl.h"
#include "runner.h"
#include "spool.h"
#include "tap.h"

static int nemit, emit_rc;
static char emitted[64], emitted_err[64];

static int
emit(const cJSON *rec)
{
	nemit++;
	snprintf(emitted, sizeof emitted, "%s", h2k_json_str(rec, "status") ?
	    h2k_json_str(rec, "status") : "?");
	snprintf(emitted_err, sizeof emitted_err, "%s", h2k_json_str(rec,
	    "error") ? h2k_json_str(rec, "error") : "");
	return emit_rc;
}

static int
enqueue(struct h2k_spool *sp, const char *vm, char id[H2K_SPOOL_IDMAX])
{
	struct h2k_jobspec s = {.name = (char *)vm, .vm_path = (char *)vm,
	    .output_path = "/out"};
	cJSON *rec;
	int rc;

	h2k_spool_newid(id, H2K_SPOOL_IDMAX);
	rec = h2k_job_record_new(&s, id);
	rc = rec ? h2k_spool_enqueue(sp, &rec, 1) : -1;
	cJSON_Delete(rec);
	return rc;
}

int
main(void)
{
	struct h2k_spool sp;
	struct h2k_claim c;
	char dir[256], id[H2K_SPOOL_IDMAX], id2[H2K_SPOOL_IDMAX];
	char cmd[300];

	snprintf(dir, sizeof dir, "/tmp/h2k-test-runner.%d", (int)getpid());
	if (h2k_spool_open(&sp, dir, 1) < 0) {
		skip(18, "no spool in /tmp: %s", h2k_errmsg());
		return tap_done();
	}

	/* a pending job: nobody runs it, the cancel ends it here */
	ok(enqueue(&sp, "/DC0/vm/a", id) == 0, "a pending job");
	nemit = 0;
	is_int(h2k_runner_cancel(&sp, id, 5, emit), 0, "cancel a pending job");
	ok(nemit == 1 && !strcmp(emitted, "cancelled") &&
	    !strcmp(emitted_err, "cancelled"), "its record, cancelled, is emitted "
	    "(%d, %s)", nemit, emitted);
	cJSON *r = h2k_spool_read(&sp, "done", id);
	ok(r && !strcmp(h2k_json_str(r, "status"), "cancelled"),
	    "and is final in done/");
	cJSON_Delete(r);

	/* again: the cancelled record once more, the emitter's answer returned */
	nemit = 0;
	emit_rc = -1;
	is_int(h2k_runner_cancel(&sp, id, 5, emit), -1,
	    "a cancelled job again: the emitter's -1 comes back");
	ok(nemit == 1 && !strcmp(emitted, "cancelled"), "with its record");
	emit_rc = 0;

	/* a prefix of the id finds it too */
	char pfx[16];
	snprintf(pfx, sizeof pfx, "%.12s", id);
	nemit = 0;
	is_int(h2k_runner_cancel(&sp, pfx, 5, emit), 0, "an id prefix names it");

	/* a completed job is not cancelled */
	ok(enqueue(&sp, "/DC0/vm/b", id2) == 0, "a second job");
	ok(h2k_spool_claim_id(&sp, id2, &c) == 1 &&
	    h2k_job_set_status(c.rec, "completed") == 0 &&
	    h2k_spool_finish(&sp, &c) == 0, "completed by a runner");
	h2k_spool_release(&c);
	nemit = 0;
	is_int(h2k_runner_cancel(&sp, id2, 5, emit), -1, "cancel a completed job");
	ok(h2k_errcode() == H2K_EX_STATE && strstr(h2k_errmsg(), "already completed"),
	    "refused: already completed (%s)", h2k_errmsg());
	is_int(nemit, 0, "nothing emitted");

	/* a running job whose runner lives (we hold its lock): marked, waited
	 * for up to the limit, then reported */
	ok(enqueue(&sp, "/DC0/vm/c", id2) == 0 &&
	    h2k_spool_claim_id(&sp, id2, &c) == 1, "a running job");
	double t0 = h2k_monotime();
	nemit = 0;
	is_int(h2k_runner_cancel(&sp, id2, 0.3, emit), -1,
	    "its runner does not stop it within the limit");
	double took = h2k_monotime() - t0;
	ok(h2k_errcode() == H2K_EX_FAIL && strstr(h2k_errmsg(), "still running") &&
	    took >= 0.3 && took < 5, "said so after %.2f s (%s)", took, h2k_errmsg());
	ok(h2k_spool_cancel_marked(&sp, id2) == 1 && nemit == 0,
	    "the cancel marker is left for its runner");
	h2k_spool_release(&c);

	/* no such job */
	is_int(h2k_runner_cancel(&sp, "20260101T000000Z-nosuchjob", 1, emit), -1,
	    "an unknown id");
	is_int(h2k_errcode(), H2K_EX_NOTFOUND, "is not found");

	h2k_spool_close(&sp);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", dir);
	return tap_done();
}
