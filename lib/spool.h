/*
 * spool.h - h2k-job's spool directory: enqueue, claim, lock, requeue,
 * move-aside and status records.  The algorithm is described at the top of
 * spool.c; the format in h2k-job(5).
 * SPDX-License-Identifier: LGPL-3.0-or-later
 */
#ifndef H2K_SPOOL_H
#define H2K_SPOOL_H

#include <signal.h>
#include <stddef.h>
#include <cjson/cJSON.h>

#define H2K_SPOOL_IDMAX 96
#define H2K_SPOOL_MAX_ATTEMPTS 3
#define H2K_SPOOL_MAX_RECORD (16u << 20)

struct h2k_spool {
	char *dir;
	int dfd;            /* the spool directory, O_DIRECTORY */
	int max_attempts;   /* a job started this many times is failed on recovery */
	int recover_failed; /* jobs recovery failed so far (max_attempts reached) */
};

/*
 * The default spool: /var/spool/h2k for root, else
 * $XDG_STATE_HOME/h2k/spool, else ~/.local/state/h2k/spool.  Caller frees.
 * (--spool and H2K_SPOOL and the config's Spool are the caller's.)
 */
char *h2k_spool_default(void);
/*
 * Open dir, creating it and its subdirectories 0700 when create is set.
 * The directory must be owned by the effective user and not writable by
 * group or others (H2K_EX_SECRET otherwise): whoever can write it can make
 * the runner export anything to anywhere.
 */
int h2k_spool_open(struct h2k_spool *sp, const char *dir, int create);
/*
 * The commands' way in: dir, or h2k_spool_default() when dir is NULL or
 * empty, opened by h2k_spool_open.  Without create a spool that does not
 * exist is not made (a mistyped name must not leave directories behind):
 * 1, with sp->dir naming it and sp->dfd -1 (h2k_spool_close frees it).
 */
int h2k_spool_open_default(struct h2k_spool *sp, const char *dir, int create);
void h2k_spool_close(struct h2k_spool *sp);

/* A fresh, unique, sortable job id: "SECONDS.USEC.PID.RAND" (bufsize >= 64). */
int h2k_spool_newid(char *buf, size_t bufsize);
/* Is s shaped like an id (safe as a file name)? */
int h2k_spool_idok(const char *s);

/*
 * Enqueue n pending records (each holding its "id"): all are written and
 * fsynced under tmp/ first, then renamed into new/, and new/ is fsynced.
 * If any write fails, none is enqueued.
 */
int h2k_spool_enqueue(struct h2k_spool *sp, cJSON *const *recs, size_t n);
/*
 * `h2k-job submit`: a fresh id and pending record for each job of l (all
 * validated and resolved), enqueued all or none.  Returns the records,
 * NULL-terminated (free with h2k_spool_recs_free), or NULL with the error
 * (after enqueue failed: "...; nothing submitted").
 */
struct h2k_joblist;
cJSON **h2k_spool_submit(struct h2k_spool *sp, const struct h2k_joblist *l);
void h2k_spool_recs_free(cJSON **recs);

/* A claimed job: its id, the held lock and the record (owned). */
struct h2k_claim {
	char id[H2K_SPOOL_IDMAX];
	int lockfd;       /* O_CLOEXEC; flock(LOCK_EX) held */
	int slotfd;       /* tmp/ID.slot, space reserved for the final record */
	size_t slotsize;
	cJSON *rec;
};

/*
 * Claim the oldest pending job: 1 and *c filled, 0 when none is pending,
 * -1 on error.  Files in new/ that are not valid records are moved to bad/
 * (with a .reason file and a warning) and skipped.  The claimed record has
 * status "running", started_at now, attempts + 1, and is written durably.
 */
int h2k_spool_claim(struct h2k_spool *sp, struct h2k_claim *c);
/* Claim one given pending job (0 if it is not pending or is being claimed). */
int h2k_spool_claim_id(struct h2k_spool *sp, const char *id,
    struct h2k_claim *c);
/*
 * The same without the slot, for a job that will not run (cancel of a
 * pending job): a spool too full for a slot must not stop a cancel.
 */
int h2k_spool_claim_id_noslot(struct h2k_spool *sp, const char *id,
    struct h2k_claim *c);
/* Rewrite cur/ID from c->rec.  durable: fsync (state changes), else not. */
int h2k_spool_update(struct h2k_spool *sp, struct h2k_claim *c, int durable);
/*
 * c->rec holds a final status: write it, move it to done/, release.  When
 * the spool is full the record goes through the space reserved at claim
 * time; when even that fails the record is moved to done/ as it stands
 * (its status not final, which h2k-job wait reports) so that it is never
 * run again, and -1 is returned.
 */
int h2k_spool_finish(struct h2k_spool *sp, struct h2k_claim *c);
/*
 * Reserve n bytes past the end of fd (log/ID.final before the pipeline
 * starts), so that what a stage appends after the export's work is done
 * cannot fail for want of space.  0 also when the file system cannot
 * reserve; -1 (H2K_EX_IO) when it is full.
 */
int h2k_spool_reserve(int fd, const char *what, size_t n);
/*
 * Grow c's slot so that a final record n bytes larger than the claimed one
 * still fits (a result with many files).  -1 (H2K_EX_IO) when the spool
 * has no room.
 */
int h2k_spool_grow_slot(struct h2k_spool *sp, struct h2k_claim *c, size_t n);
/*
 * Put the job back in new/ as pending (a graceful stop: the attempt does
 * not count), then release.
 */
int h2k_spool_requeue(struct h2k_spool *sp, struct h2k_claim *c);
/* Drop the lock and the record without touching the spool. */
void h2k_spool_release(struct h2k_claim *c);
/*
 * Take the lock of a job in cur/ whose runner is gone: 1 locked (c filled),
 * 0 still owned (lock busy) or no longer in cur/, -1 error.  A file in cur/
 * that is not a valid record is moved to bad/ and 0 returned.
 */
int h2k_spool_adopt(struct h2k_spool *sp, const char *id, struct h2k_claim *c);

/*
 * Recovery: every job in cur/ whose lock can be taken belongs to a runner
 * that died.  Finished records go to done/; others go back to new/ unless
 * they were started max_attempts times, then they fail with the reason.
 * Also removes tmp/ files older than a day and lock files of finished
 * jobs.  Returns the number of jobs requeued or failed, -1 on error.
 */
int h2k_spool_recover(struct h2k_spool *sp);

/*
 * Queue the rest of every batch whose writer died while moving it into
 * new/ (tmp/batch.ID.jnl, unlocked).  Returns the number of records moved,
 * -1 on error.  h2k_spool_recover calls it first.
 */
int h2k_spool_roll_batches(struct h2k_spool *sp);

/* Move sub/name to bad/ and write bad/name.reason. */
int h2k_spool_moveaside(struct h2k_spool *sp, const char *sub,
    const char *name, const char *reason);

/* Read and check the record sub/id (sub: "new", "cur", "done"). NULL + error. */
cJSON *h2k_spool_read(struct h2k_spool *sp, const char *sub, const char *id);
/*
 * Find a job by id (or a unique prefix of one): *sub gets "new", "cur" or
 * "done" and the full id is written to idout.  NULL with H2K_EX_NOTFOUND
 * (or H2K_EX_USAGE when the prefix is ambiguous).
 */
cJSON *h2k_spool_find(struct h2k_spool *sp, const char *id, const char **sub,
    char idout[H2K_SPOOL_IDMAX]);

/*
 * Call fn for every record in new/, cur/ and (with done set) done/, oldest
 * first within each.  Unreadable files are skipped (they are the runner's
 * to move aside).  fn returns -1 to stop.
 */
typedef int (*h2k_spool_fn)(void *arg, const char *sub, cJSON *rec);
int h2k_spool_each(struct h2k_spool *sp, int done, h2k_spool_fn fn, void *arg);

/*
 * Was job id moved aside?  1 when it is in none of new/, cur/, done/ and
 * bad/ holds it: name gets the file's name in bad/, why its reason; 0 if
 * not, -1 on error.
 */
int h2k_spool_lost(struct h2k_spool *sp, const char *id, char *name,
    size_t nn, char *why, size_t wn);

/*
 * Open log/NAME (flags as for open(2); O_NOFOLLOW and O_CLOEXEC are
 * added).  The file must be a regular file of the effective user with one
 * link: whoever else wrote it could forge h2k-ovf's proof of completion or
 * read the job's output.  One that is not is moved to bad/ (with a reason
 * and a warning) and, with O_CREAT, a fresh one is made.  -1 with
 * H2K_EX_NOTFOUND when it does not exist (without O_CREAT).
 */
int h2k_spool_open_log(struct h2k_spool *sp, const char *name, int flags);
/*
 * The last whole line with an "ovf_path" that h2k-ovf wrote to
 * log/ID.final: the proof that an attempt completed the export.  NULL when
 * there is none (a torn last line does not count).
 */
cJSON *h2k_spool_read_final(struct h2k_spool *sp, const char *id);
/* Where job id's file is: "new", "cur", "done", or NULL (readable or not). */
const char *h2k_spool_where(struct h2k_spool *sp, const char *id);

/*
 * Wait until every job named (ids, or unique prefixes) has ended: the
 * loop of lib/spool-wait.c.  ended is called once per job as it ends,
 * with its final record, or with rec NULL and why (moved to bad/, its
 * record unreadable, its outcome not recorded: it counts as failed); it
 * returns -1 (error set) to stop.  Returns the exit status: 0 all
 * completed, 10 any cancelled and none failed, 5 failed beside
 * completed, 1 all failed; 10 as soon as *stop is set.  -1 with the
 * error: H2K_EX_NOTFOUND for a job that is nowhere, H2K_EX_FAIL when
 * timeout (seconds, < 0 for none) passes first.
 */
struct h2k_spool_waitopts {
	double timeout;
	volatile sig_atomic_t *stop;
	int (*ended)(void *arg, const char *id, const cJSON *rec,
	    const char *why);
	void *arg;
};
int h2k_spool_wait(struct h2k_spool *sp, char *const *names, int n,
    const struct h2k_spool_waitopts *o);

/*
 * `h2k-job status`'s line: {"spool", "runners": live runners' run/PID
 * records with uptime_s, "counts": jobs per status, "bad": files moved
 * aside}.  A spool not opened (dfd < 0: it does not exist) has none.
 */
cJSON *h2k_spool_status(struct h2k_spool *sp);

/* Files moved aside into bad/ (not counting .reason files). */
int h2k_spool_count_bad(struct h2k_spool *sp);

/* Per-job paths inside the spool (caller frees). */
char *h2k_spool_path(struct h2k_spool *sp, const char *sub, const char *name);

/*
 * Runner registration: run/PID holds {pid, started_at, workers} and is
 * flocked for the runner's life.  Returns the fd to keep open (O_CLOEXEC).
 * A run/PID locked by a live runner (the same pid in another PID
 * namespace) is left as it is: -1, H2K_EX_FAIL.
 */
int h2k_spool_register(struct h2k_spool *sp, int workers);
/* Live runners' records (stale ones are removed); fn as above, sub "run". */
int h2k_spool_runners(struct h2k_spool *sp, h2k_spool_fn fn, void *arg);

/* Cancellation markers: cancel/ID, which the owning runner polls. */
int h2k_spool_mark_cancel(struct h2k_spool *sp, const char *id);
int h2k_spool_cancel_marked(struct h2k_spool *sp, const char *id);
void h2k_spool_unmark_cancel(struct h2k_spool *sp, const char *id);

#endif
