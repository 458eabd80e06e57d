/* Unit tests for lib/spool.c. SPDX-License-Identifier: LGPL-3.0-or-later */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "h2k.h"
#include "job.h"
#include "spool.h"
#include "tap.h"

static char dir[256];

static cJSON *
mkrec(const char *vm)
{
	struct h2k_jobspec s = {.name = (char *)vm, .vm_path = (char *)vm,
	    .output_path = "/out"};
	char id[H2K_SPOOL_IDMAX];

	h2k_spool_newid(id, sizeof id);
	return h2k_job_record_new(&s, id);
}

static int
count(const char *sub)
{
	char cmd[512];
	snprintf(cmd, sizeof cmd, "exit $(ls -A %s/%s | wc -l)", dir, sub);
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static const char *
status_of(cJSON *r)
{
	return cJSON_GetStringValue(cJSON_GetObjectItem(r, "status"));
}

int
main(void)
{
	struct h2k_spool sp;
	struct h2k_claim c, c2;
	char id1[H2K_SPOOL_IDMAX], id2[H2K_SPOOL_IDMAX];

	snprintf(dir, sizeof dir, "/tmp/h2k-test-spool.%d", (int)getpid());

	/* --- ids --- */
	h2k_spool_newid(id1, sizeof id1);
	h2k_spool_newid(id2, sizeof id2);
	ok(strcmp(id1, id2) != 0, "ids differ");
	ok(h2k_spool_idok(id1), "an id is a safe name");
	ok(!h2k_spool_idok("../x") && !h2k_spool_idok(".hidden") && !h2k_spool_idok(""),
	    "unsafe names refused");

	/* --- open --- */
	is_int(h2k_spool_open(&sp, dir, 0), -1, "missing spool not created without create");
	is_int(h2k_errcode(), H2K_EX_NOTFOUND, "... exit 6");
	is_int(h2k_spool_open(&sp, dir, 1), 0, "created");
	struct stat st;
	stat(dir, &st);
	is_int(st.st_mode & 0777, 0700, "spool is 0700");
	h2k_spool_close(&sp);
	chmod(dir, 0770);
	is_int(h2k_spool_open(&sp, dir, 1), -1, "group-writable spool refused");
	is_int(h2k_errcode(), H2K_EX_SECRET, "... exit 11");
	chmod(dir, 0700);
	is_int(h2k_spool_open(&sp, dir, 1), 0, "reopened");

	/* --- enqueue, claim, finish --- */
	cJSON *recs[3] = {mkrec("a"), mkrec("b"), mkrec("c")};
	is_int(h2k_spool_enqueue(&sp, recs, 3), 0, "enqueue 3");
	is_int(count("new"), 3, "3 in new/");
	is_int(count("tmp"), 0, "tmp/ empty after enqueue");
	is_int(h2k_spool_claim(&sp, &c), 1, "claim");
	is_str(c.id, cJSON_GetStringValue(cJSON_GetObjectItem(recs[0], "id")), "oldest first");
	is_str(status_of(c.rec), "running", "claimed record is running");
	is_int((int)cJSON_GetNumberValue(cJSON_GetObjectItem(c.rec, "attempts")), 1, "attempts 1");
	is_int(count("cur"), 1, "1 in cur/");
	is_int(h2k_spool_adopt(&sp, c.id, &c2), 0, "a held job cannot be adopted");
	is_int(h2k_spool_recover(&sp), 0, "recovery leaves a live claim alone");
	h2k_job_set_status(c.rec, "completed");
	is_int(h2k_spool_finish(&sp, &c), 0, "finish");
	h2k_spool_release(&c);
	is_int(count("done"), 1, "1 in done/");
	is_int(count("lock"), 0, "lock file removed");

	/* --- requeue (graceful stop) does not count the attempt --- */
	is_int(h2k_spool_claim(&sp, &c), 1, "claim b");
	is_int(h2k_spool_requeue(&sp, &c), 0, "requeue");
	h2k_spool_release(&c);
	cJSON *r = h2k_spool_read(&sp, "new", cJSON_GetStringValue(cJSON_GetObjectItem(recs[1], "id")));
	ok(r && !strcmp(status_of(r), "pending"), "requeued job pending in new/");
	is_int((int)cJSON_GetNumberValue(cJSON_GetObjectItem(r, "attempts")), 0, "attempt not counted");
	cJSON_Delete(r);

	/* --- a claimer that dies: recovery requeues, then fails at the limit --- */
	sp.max_attempts = 2;
	for (int round = 1; round <= 2; round++) {
		pid_t pid = fork();
		if (pid == 0) {
			struct h2k_claim cc;
			_exit(h2k_spool_claim(&sp, &cc) == 1 ? 0 : 1); /* dies holding it */
		}
		int ws;
		waitpid(pid, &ws, 0);
		is_int(WEXITSTATUS(ws), 0, "round %d: a child claimed and died", round);
		is_int(count("cur"), 1, "round %d: orphan in cur/", round);
		is_int(h2k_spool_recover(&sp), 1, "round %d: recovery acted on it", round);
		/* requeued in round 1, failed in round 2: counted for run --once */
		is_int(sp.recover_failed, round - 1, "round %d: jobs recovery failed", round);
	}
	r = h2k_spool_read(&sp, "done", cJSON_GetStringValue(cJSON_GetObjectItem(recs[1], "id")));
	ok(r && !strcmp(status_of(r), "failed"), "after the limit the job failed");
	ok(r && strstr(cJSON_GetStringValue(cJSON_GetObjectItem(r, "error")), "attempt 2 of 2"),
	    "with the reason");
	cJSON_Delete(r);

	/* --- find --- */
	const char *sub;
	char full[H2K_SPOOL_IDMAX];
	const char *cid = cJSON_GetStringValue(cJSON_GetObjectItem(recs[2], "id"));
	r = h2k_spool_find(&sp, cid, &sub, full);
	ok(r && !strcmp(sub, "new"), "find pending job in new/");
	cJSON_Delete(r);
	char pre[H2K_SPOOL_IDMAX];
	snprintf(pre, sizeof pre, "%s", cid);
	pre[strlen(pre) - 2] = '\0';
	r = h2k_spool_find(&sp, pre, &sub, full);
	ok(r && !strcmp(full, cid), "find by unique prefix");
	cJSON_Delete(r);
	ok(!h2k_spool_find(&sp, "1", &sub, full) && h2k_errcode() == H2K_EX_USAGE,
	    "ambiguous prefix refused");
	ok(!h2k_spool_find(&sp, "9.9.9.ffff", &sub, full) && h2k_errcode() == H2K_EX_NOTFOUND,
	    "unknown id: not found");
	ok(!h2k_spool_find(&sp, "../../etc", &sub, full) && h2k_errcode() == H2K_EX_USAGE,
	    "path-like id refused");

	/* --- corrupt files are moved aside --- */
	char p[512];
	snprintf(p, sizeof p, "%s/new/1000.000000000.1.dead", dir);
	FILE *f = fopen(p, "w");
	fputs("{\"id\":", f);
	fclose(f);
	snprintf(p, sizeof p, "%s/new/junk name", dir);
	f = fopen(p, "w");
	fclose(f);
	is_int(h2k_spool_claim(&sp, &c), 1, "claim skips the corrupt files");
	is_str(c.id, cid, "... and takes the good one");
	h2k_job_set_status(c.rec, "cancelled");
	h2k_spool_finish(&sp, &c);
	h2k_spool_release(&c);
	is_int(count("new"), 0, "new/ empty");
	is_int(h2k_spool_count_bad(&sp), 2, "2 files in bad/");
	is_int(count("bad"), 4, "each with a .reason");

	/* --- claim race: 4 processes, 40 jobs, each claimed exactly once --- */
	cJSON *many[40];
	for (int i = 0; i < 40; i++)
		many[i] = mkrec("m");
	is_int(h2k_spool_enqueue(&sp, many, 40), 0, "enqueue 40");
	int pfd[2];
	if (pipe(pfd) < 0)
		return 1;
	for (int k = 0; k < 4; k++) {
		if (fork() == 0) {
			struct h2k_claim cc;
			close(pfd[0]);
			while (h2k_spool_claim(&sp, &cc) == 1) {
				dprintf(pfd[1], "%s\n", cc.id);
				h2k_job_set_status(cc.rec, "completed");
				h2k_spool_finish(&sp, &cc);
				h2k_spool_release(&cc);
			}
			_exit(0);
		}
	}
	close(pfd[1]);
	char buf[8192] = "";
	size_t n = 0;
	ssize_t rd;
	while ((rd = read(pfd[0], buf + n, sizeof buf - 1 - n)) > 0)
		n += (size_t)rd;
	buf[n] = '\0';
	close(pfd[0]);
	while (wait(NULL) > 0)
		;
	int claimed = 0, dup = 0, missing = 0;
	for (char *s = buf; *s; s = strchr(s, '\n') + 1)
		claimed++;
	for (int i = 0; i < 40; i++) {
		const char *mid = cJSON_GetStringValue(cJSON_GetObjectItem(many[i], "id"));
		char *a = strstr(buf, mid);
		if (!a)
			missing++;
		else if (strstr(a + 1, mid))
			dup++;
	}
	is_int(claimed, 40, "40 claims in all");
	is_int(dup, 0, "no job claimed twice");
	is_int(missing, 0, "no job left out");
	is_int(count("new") + count("cur"), 0, "queue drained");

	/* --- runners --- */
	int rfd = h2k_spool_register(&sp, 3);
	ok(rfd >= 0, "runner registered");
	snprintf(p, sizeof p, "%s/run/%d", dir, (int)getpid());
	int probe = open(p, O_RDONLY);
	ok(probe >= 0 && flock(probe, LOCK_SH | LOCK_NB) < 0, "run/PID is locked while we live");
	close(probe);
	close(rfd);

	/* --- cancel markers --- */
	is_int(h2k_spool_mark_cancel(&sp, "1.2.3.abcd"), 0, "mark cancel");
	ok(h2k_spool_cancel_marked(&sp, "1.2.3.abcd"), "marked");
	h2k_spool_unmark_cancel(&sp, "1.2.3.abcd");
	ok(!h2k_spool_cancel_marked(&sp, "1.2.3.abcd"), "unmarked");

	/* --- trust: records not ours, hard links, directories (item 11) --- */
	{
		cJSON *t = mkrec("trust");
		const char *tid = cJSON_GetStringValue(cJSON_GetObjectItem(t, "id"));
		char lp[600];
		is_int(h2k_spool_enqueue(&sp, &t, 1), 0, "enqueue a record");
		snprintf(p, sizeof p, "%s/new/%s", dir, tid);
		snprintf(lp, sizeof lp, "%s/link", dir);
		ok(link(p, lp) == 0, "second link made");
		cJSON *rr = h2k_spool_read(&sp, "new", tid);
		ok(!rr && h2k_errcode() == H2K_EX_SECRET &&
		    strstr(h2k_errmsg(), "2 hard links"), "hard-linked record refused");
		cJSON_Delete(rr);
		unlink(lp);
		if (geteuid() == 0) {
			ok(chown(p, 65534, 65534) == 0, "record given away");
			rr = h2k_spool_read(&sp, "new", tid);
			ok(!rr && h2k_errcode() == H2K_EX_SECRET &&
			    strstr(h2k_errmsg(), "owned by uid 65534"),
			    "record of another owner refused");
			cJSON_Delete(rr);
			is_int(h2k_spool_claim(&sp, &c), 0, "not claimed");
			char nm[300], why[512];
			is_int(h2k_spool_lost(&sp, tid, nm, sizeof nm, why,
			    sizeof why), 1, "lost: moved to bad/");
			ok(!strncmp(nm, tid, strlen(tid)) &&
			    strstr(why, "owned by uid 65534"), "bad/ name and reason");
			snprintf(lp, sizeof lp, "%s/lock", dir);
			ok(chown(lp, 65534, 65534) == 0, "lock/ given away");
			struct h2k_spool sp2;
			ok(h2k_spool_open(&sp2, dir, 0) < 0 &&
			    h2k_errcode() == H2K_EX_SECRET &&
			    strstr(h2k_errmsg(), "/lock: owned by uid 65534"),
			    "spool with lock/ of another owner refused");
			ok(chown(lp, 0, 0) == 0, "lock/ taken back");
		} else {
			skip(6, "not root");
			unlink(p);
		}
		char nm[300], why[512];
		is_int(h2k_spool_lost(&sp, "1.2.3.ffff", nm, sizeof nm, why,
		    sizeof why), 0, "an unknown id is not lost");
		snprintf(lp, sizeof lp, "%s/cancel", dir);
		ok(chmod(lp, 0707) == 0, "cancel/ opened to others");
		struct h2k_spool sp3;
		ok(h2k_spool_open(&sp3, dir, 0) < 0 &&
		    h2k_errcode() == H2K_EX_SECRET &&
		    strstr(h2k_errmsg(), "/cancel: writable by group or others"),
		    "spool with cancel/ writable by others refused");
		chmod(lp, 0700);
		cJSON_Delete(t);
	}

	/* --- finish when no record can be written (item 3) --- */
	{
		cJSON *t = mkrec("full");
		const char *tid = cJSON_GetStringValue(cJSON_GetObjectItem(t, "id"));
		char tp[600], tp2[600];
		is_int(h2k_spool_enqueue(&sp, &t, 1), 0, "enqueue");
		is_int(h2k_spool_claim(&sp, &c), 1, "claimed");
		snprintf(p, sizeof p, "%s/tmp/%s.slot", dir, tid);
		struct stat sst;
		ok(stat(p, &sst) == 0 && sst.st_size >= 65536 &&
		    sst.st_blocks * 512 >= 65536, "slot allocated");
		/* tmp/ unusable: neither the record nor the slot can land. */
		snprintf(tp, sizeof tp, "%s/tmp", dir);
		snprintf(tp2, sizeof tp2, "%s/tmp.away", dir);
		ok(rename(tp, tp2) == 0 && close(open(tp, O_CREAT | O_WRONLY,
		    0600)) == 0, "tmp/ replaced by a file");
		h2k_job_set_status(c.rec, "completed");
		ok(h2k_spool_finish(&sp, &c) < 0 && strstr(h2k_errmsg(),
		    "final status 'completed' not recorded"), "finish says so");
		h2k_spool_release(&c);
		unlink(tp);
		rename(tp2, tp);
		cJSON *rr = h2k_spool_read(&sp, "done", tid);
		ok(rr && !strcmp(status_of(rr), "running"),
		    "record in done/ as it was: never run again");
		cJSON_Delete(rr);
		is_int(count("cur") + count("new"), 0, "nothing queued");
		snprintf(p, sizeof p, "%s/lock/%s", dir, tid);
		ok(access(p, F_OK) < 0, "lock file gone");
		/* And with a working tmp/: the slot is gone after finish. */
		cJSON_Delete(t);
		t = mkrec("ok");
		tid = cJSON_GetStringValue(cJSON_GetObjectItem(t, "id"));
		is_int(h2k_spool_enqueue(&sp, &t, 1), 0, "enqueue");
		is_int(h2k_spool_claim(&sp, &c), 1, "claimed");
		h2k_job_set_status(c.rec, "failed");
		is_int(h2k_spool_finish(&sp, &c), 0, "finished");
		h2k_spool_release(&c);
		snprintf(p, sizeof p, "%s/tmp/%s.slot", dir, tid);
		ok(access(p, F_OK) < 0, "slot removed");
		cJSON_Delete(t);
	}

	for (int i = 0; i < 3; i++)
		cJSON_Delete(recs[i]);
	for (int i = 0; i < 40; i++)
		cJSON_Delete(many[i]);
	h2k_spool_close(&sp);

	/* --- h2k_spool_open_default: a read never makes a spool --- */
	{
		char miss[512], home[300];
		struct stat sb;

		snprintf(miss, sizeof miss, "%s/not-there", dir);
		is_int(h2k_spool_open_default(&sp, miss, 0), 1,
		    "missing spool, no create: 1");
		ok(sp.dfd == -1 && sp.dir && !strcmp(sp.dir, miss),
		    "names the spool it did not find");
		ok(stat(miss, &sb) < 0, "and did not create it");
		h2k_spool_close(&sp);
		is_int(h2k_spool_open_default(&sp, miss, 1), 0, "create: opened");
		ok(sp.dfd >= 0 && stat(miss, &sb) == 0 && S_ISDIR(sb.st_mode),
		    "created");
		h2k_spool_close(&sp);
		is_int(h2k_spool_open_default(&sp, miss, 0), 0,
		    "existing spool, no create: opened");
		h2k_spool_close(&sp);
		/* NULL and "" take the default (XDG_STATE_HOME for a user) */
		if (geteuid() != 0) {
			snprintf(home, sizeof home, "%s/xdg", dir);
			setenv("XDG_STATE_HOME", home, 1);
			snprintf(miss, sizeof miss, "%s/h2k/spool", home);
			is_int(h2k_spool_open_default(&sp, NULL, 0), 1,
			    "NULL: the default, missing");
			is_str(sp.dir, miss, "the default's name");
			h2k_spool_close(&sp);
			is_int(h2k_spool_open_default(&sp, "", 0), 1,
			    "\"\": the default as well");
			h2k_spool_close(&sp);
			ok(stat(miss, &sb) < 0, "default not created by a read");
		} else
			skip(5, "root's default spool is /var/spool/h2k");
	}

	snprintf(p, sizeof p, "rm -rf %s", dir);
	if (system(p) != 0)
		return 1;
	return tap_done();
}
