/*
 * runner.c - the engine of `h2k-job run`: the spool runner.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * The runner is one single-threaded process.  Each job is the pipeline
 *   h2k-lease [--snapshot|--shutdown|--power-off] VM
 *     | h2k-fetch --progress json -o OUTPUT [-j N] [--overwrite] [--format F] | h2k-ovf [--remove-cdrom] [--ova]
 *       [--hyper2kvm-manifest] [--deliver DIR]
 * started as three children in one new process group, with the runner in
 * the middle of every pipe: it relays each JSON line to the next stage
 * (so it learns the lease moref and the final ovf_path without parsing
 * logs), reads h2k-fetch's JSON progress lines off its stderr into the
 * job's record, and appends every stage's stderr to log/ID.log.  One
 * ppoll() loop serves all jobs; signals are blocked except inside ppoll,
 * so a SIGTERM/SIGHUP/SIGCHLD is never lost between a check and the wait.
 * Each round of the loop: claim jobs into free worker slots, check the
 * per-job timers (cancel markers, the stop deadline, SIGKILL after
 * SIGTERM), write dirty records, ppoll, drain and relay every pipe, reap,
 * and end the jobs whose processes are all gone.
 *
 * Processes it owns: the three stages of each running job (one process
 * group per job, the first stage its leader), h2k-lease children that
 * clean up a lease a job left behind, and h2k-login when it logs in with a
 * config credential.  It installs handlers for SIGTERM, SIGINT, SIGHUP and
 * SIGCHLD and ignores SIGPIPE for the rest of the process.
 *
 * Shared with spool.c: the spool (opened by the caller), its job locks
 * (claim, adopt, release), the record (update, finish, requeue),
 * recovery, run/PID registration and the log/ID.log and log/ID.final
 * files; spool.c says how a lock outlives a dead runner.
 *
 * The children inherit the job's lock (spool.c explains why) and get
 * PR_SET_PDEATHSIG(SIGTERM): if the runner is killed with -9 they stop
 * (h2k-fetch aborts the lease and keeps its .part files), and only when
 * the last of them is gone can another runner take the job over.
 *
 * Exactly once.  h2k-ovf's stdout is not a pipe to the runner but the file
 * log/ID.final (append): its line with ovf_path is the proof that the
 * export completed, and a file outlives a runner killed between h2k-ovf
 * printing it and the record saying "completed".  A runner that claims a
 * job whose log/ID.final already holds such a line (left by an attempt
 * whose runner died) marks it completed from that line instead of
 * exporting the VM a second time.  Room for that line is reserved before
 * the pipeline starts, so a full spool cannot lose it (spool.c says how
 * the final record survives a full spool too).
 *
 * Cancel: `h2k-job cancel` (h2k_runner_cancel, below) drops cancel/ID,
 * and when the job's runner is dead signals its left-over process group
 * itself (the /proc proof is h2k_job_group's).  The owning runner sees it
 * within a tick, sends SIGTERM to the job's process group (h2k-fetch
 * aborts the lease on SIGTERM), SIGKILL after a bound, and marks the job
 * cancelled once every process of the group is reaped.
 *
 * The group's leader (the first stage) is reaped only when the job ends:
 * until then its zombie holds the group id, so the runner's kill(-pgid)
 * can only reach the job's group - also a grandchild left in it after
 * every stage exited, which gets SIGKILL when the job ends.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "h2k.h"
#include "job.h"
#include "jsonl.h"
#include "lease.h"
#include "runner.h"
#include "session.h"
#include "spool.h"
#include "vim.h"

#define NSTAGE 3
static const char *const stage_cmd[NSTAGE] = {"h2k-lease", "h2k-fetch",
    "h2k-ovf"};

/* The caller's options (a copy) and spool. */
static struct h2k_runner_opts ro;
static struct h2k_spool *rsp;
/* DownloadWorkers: the default -j for h2k-fetch; a SIGHUP may change it */
static int download_workers;

static volatile sig_atomic_t got_term, got_hup, got_int;

static void
on_signal(int sig)
{
	if (sig == SIGTERM)
		got_term++;
	else if (sig == SIGINT)
		got_int++;
	else if (sig == SIGHUP)
		got_hup = 1;
}

struct stage {
	pid_t pid;
	int status;          /* wait status once reaped */
	int exited;          /* it ended (the leader: seen, not yet reaped) */
	int reaped;          /* its pid is released (the leader: at the end) */
	int in;              /* runner -> stage stdin (-1: closed/none) */
	int out, err;        /* stage stdout/stderr -> runner (-1 at EOF) */
	struct h2k_buf obuf, ebuf, qbuf; /* partial lines; queued for in */
	char *lasterr;       /* last non-progress stderr line */
	int lines;           /* JSON lines read from stdout */
	int closing_in;      /* close in once qbuf drains */
	int oskip, eskip;    /* dropping the rest of an overlong line */
	double t_eof;        /* exited, pipes still open: when to stop waiting */
};

struct filep {
	char *file;
	double done, total;
	double cap, pct;      /* a stream's capacity and percent (-1: none) */
};

struct job {
	struct h2k_claim c;
	struct stage st[NSTAGE];
	pid_t pgid;
	int logfd;
	size_t logged;        /* bytes of the stages' stderr in the log */
	double t_start, t_update, t_cancel_check, t_kill, t_eof;
	int cancelling, interrupting, killed;
	int dirty;            /* record changed since last write */
	cJSON *final;         /* h2k-ovf's line */
	char *lease_moref;
	struct filep *files;
	size_t nfiles;
	double tot_done, tot_total;
	double est_pct;       /* from streams' capacities (on_progress), -1: none */
	double cap_total;     /* the lease's disk_capacity_bytes, 0: unknown */
	double pct_hi;        /* the highest percent this attempt recorded */
	char *fail;           /* the runner failed the job: why */
};

/* Lease clean-up children still running: the runner waits for them. */
static pid_t cleaners[64];
static int ncleaners;
static struct job **jobs;
static int njobs;
/* Jobs this runner ended, for run --once's exit status. */
static int n_completed, n_failed;
static int claim_failed; /* the last claim failed (spool full...) */
static char *session_path; /* -s for every stage, or NULL */
/* The config credential the runner logs in with, to log in again when
 * the session expires; and when it last did. */
static char *login_config;
static double login_at;

static void
logjob(struct job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void
logjob(struct job *j, const char *fmt, ...)
{
	char now[32], line[2048], raw[2048];
	va_list ap;
	int n;

	if (j->logfd < 0)
		return;
	n = snprintf(line, sizeof line, "%s h2k-job: ", h2k_now_rfc3339(now));
	va_start(ap, fmt);
	vsnprintf(raw, sizeof raw, fmt, ap);
	va_end(ap);
	/* job names and VM paths are the submitter's: escaped (h2k.h) */
	h2k_ttystr(raw, line + n, sizeof line - (size_t)n - 1);
	n = (int)strlen(line);
	line[n++] = '\n';
	(void)!write(j->logfd, line, (size_t)n);
}

/* Full path of a pipeline command: next to h2k-job first, then PATH. */
static char *
find_cmd(const char *name)
{
	char *p;

	if (ro.bindir) {
		if (!(p = h2k_asprintf("%s/%s", ro.bindir, name)))
			return NULL;
		if (access(p, X_OK) == 0)
			return p;
		free(p);
	}
	const char *path = getenv("PATH");
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		size_t n = strcspn(path, ":");
		if (n > 0) {
			if (!(p = h2k_asprintf("%.*s/%s", (int)n, path, name)))
				return NULL;
			if (access(p, X_OK) == 0)
				return p;
			free(p);
		}
		path += n + (path[n] == ':');
	}
	h2k_seterr(H2K_EX_NOTFOUND, "%s: command not found (next to h2k-job "
	    "or on PATH)", name);
	return NULL;
}

static int
optbool(const cJSON *o, const char *k)
{
	return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, k));
}

/* argv for stage i of job rec; NULL-terminated, strings owned by caller. */
static char **
stage_argv(int i, const cJSON *rec)
{
	const cJSON *o = cJSON_GetObjectItemCaseSensitive(rec, "options");
	char **v = h2k_calloc(16, sizeof *v);
	int n = 0;

	if (!v || !(v[n++] = find_cmd(stage_cmd[i])))
		goto fail;
	if (session_path) {
		if (!(v[n++] = h2k_strdup("-s")) ||
		    !(v[n++] = h2k_strdup(session_path)))
			goto fail;
	}
	if (i == 0) {
		const char *f = optbool(o, "snapshot") ? "--snapshot" :
		    optbool(o, "shutdown") ? "--shutdown" :
		    optbool(o, "power_off") ? "--power-off" : NULL;
		if (f && !(v[n++] = h2k_strdup(f)))
			goto fail;
		/* "--" so a VM path can never be taken for an option. */
		if (!(v[n++] = h2k_strdup("--")) ||
		    !(v[n++] = h2k_strdup(h2k_json_str(rec, "vm_path"))))
			goto fail;
	} else if (i == 1) {
		double pd = cJSON_GetNumberValue(
		    cJSON_GetObjectItemCaseSensitive(o, "parallel_downloads"));
		if (!(v[n++] = h2k_strdup("--progress")) ||
		    !(v[n++] = h2k_strdup("json")) ||
		    !(v[n++] = h2k_strdup("-o")) ||
		    !(v[n++] = h2k_strdup(h2k_json_str(rec, "output_path"))))
			goto fail;
		if (!(pd == pd && pd >= 1) && download_workers > 0)
			pd = download_workers;
		if (pd == pd && pd >= 1 && (!(v[n++] = h2k_strdup("-j")) ||
		    !(v[n++] = h2k_asprintf("%d", (int)pd))))
			goto fail;
		if (optbool(o, "overwrite") && !(v[n++] = h2k_strdup("--overwrite")))
			goto fail;
		/* the record was checked (h2k_job_record_check): a known format */
		const char *fmt = h2k_json_str(o, "format");
		if (fmt && (!(v[n++] = h2k_strdup("--format")) ||
		    !(v[n++] = h2k_strdup(fmt))))
			goto fail;
	} else {
		if (optbool(o, "remove_cdrom") &&
		    !(v[n++] = h2k_strdup("--remove-cdrom")))
			goto fail;
		if (optbool(o, "ova") && !(v[n++] = h2k_strdup("--ova")))
			goto fail;
		if (optbool(o, "hyper2kvm_manifest") &&
		    !(v[n++] = h2k_strdup("--hyper2kvm-manifest")))
			goto fail;
		if (h2k_json_str(o, "hyper2kvm_watch_dir") &&
		    (!(v[n++] = h2k_strdup("--deliver")) ||
		    !(v[n++] = h2k_strdup(h2k_json_str(o, "hyper2kvm_watch_dir")))))
			goto fail;
	}
	return v;
fail:
	for (int k = 0; k < 16; k++)
		free(v ? v[k] : NULL);
	free(v);
	return NULL;
}

static void
argv_free(char **v)
{
	for (int k = 0; v && v[k]; k++)
		free(v[k]);
	free(v);
}

static sigset_t origmask;
static pid_t runner_pid;

/*
 * fork + exec one stage.  Runs in the child between fork and exec: only
 * what the child needs is set up, then exec or _exit(127).
 */
static pid_t
spawn(struct job *j, int i, char **argv, int fd_in, int fd_out, int fd_err)
{
	pid_t pid = fork();

	if (pid < 0)
		return h2k_seterr(H2K_EX_FAIL, "fork: %s", strerror(errno));
	if (pid > 0) {
		/* Both sides set the group: no race with the first kill. */
		setpgid(pid, j->pgid ? j->pgid : pid);
		return pid;
	}
	setpgid(0, j->pgid ? j->pgid : 0);
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != runner_pid)
		_exit(127);
	if (dup2(fd_in, 0) < 0 || dup2(fd_out, 1) < 0 || dup2(fd_err, 2) < 0)
		_exit(127);
	/* This job's lock, and only this one's, lives as long as we do. */
	int fl = fcntl(j->c.lockfd, F_GETFD);
	if (fl >= 0)
		fcntl(j->c.lockfd, F_SETFD, fl & ~FD_CLOEXEC);
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
	sigprocmask(SIG_SETMASK, &origmask, NULL);
	setenv("H2K_JOB_ID", j->c.id, 1);
	/* The job log is all there is to read afterwards: make it tell. */
	if (!getenv("H2K_LOG_LEVEL"))
		setenv("H2K_LOG_LEVEL", "info", 1);
	char att[16];
	snprintf(att, sizeof att, "%d", (int)cJSON_GetNumberValue(
	    cJSON_GetObjectItemCaseSensitive(j->c.rec, "attempts")));
	setenv("H2K_JOB_ATTEMPT", att, 1);
	(void)i;
	/*
	 * No stage logs in: it gets an allow-list of the runner's
	 * environment, never a password or the credentials directory.
	 */
	extern char **environ;
	const char *keep = getenv("H2K_JOB_KEEPENV");
	size_t ne = 0, k = 0;
	while (environ[ne])
		ne++;
	char **envp = calloc(ne + 1, sizeof *envp);
	if (!envp)
		_exit(127);
	for (size_t e = 0; e < ne; e++)
		if (h2k_job_env_keep(environ[e], keep))
			envp[k++] = environ[e];
	execve(argv[0], argv, envp);
	dprintf(2, "h2k-job: %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

static void
setnb(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static int
set_progress(struct job *j, const char *phase)
{
	cJSON *p = cJSON_GetObjectItemCaseSensitive(j->c.rec, "progress");

	if (!cJSON_IsObject(p)) {
		cJSON_DeleteItemFromObjectCaseSensitive(j->c.rec, "progress");
		if (!(p = cJSON_AddObjectToObject(j->c.rec, "progress")))
			return -1;
	}
	if (phase && (!h2k_json_str(p, "phase") || strcmp(h2k_json_str(p, "phase"), phase)))
		j->t_update = 0; /* a new phase is written at once */
	if (phase && h2k_job_set_str(p, "phase", phase) < 0)
		return -1;
	/*
	 * The sums come from the stages' lines: keep them to what a record
	 * may hold (readers refuse a record with a negative or unbounded
	 * count, and JSON has no infinity).
	 */
	if (!(j->tot_done >= 0))
		j->tot_done = 0;
	if (!(j->tot_total >= 0))
		j->tot_total = 0;
	if (j->tot_done > 1e18)
		j->tot_done = 1e18;
	if (j->tot_total > 1e18)
		j->tot_total = 1e18;
	double pct = j->tot_total > 0 ? j->tot_done * 100.0 / j->tot_total : 0;
	if (j->est_pct >= 0 && j->est_pct <= 100)
		pct = j->est_pct;
	if (pct > 100)
		pct = 100;
	if (phase && !strcmp(phase, "completed"))
		pct = 100;
	/*
	 * Never back within an attempt: a stream cut and restarted from its
	 * start (or a disk whose figure turns unknown) holds the job's
	 * percent until the work catches up.
	 */
	if (pct < j->pct_hi)
		pct = j->pct_hi;
	j->pct_hi = pct;
	h2k_job_set_num(p, "percent_complete", (double)(long)(pct * 10) / 10);
	h2k_job_set_num(p, "bytes_done", j->tot_done);
	h2k_job_set_num(p, "bytes_total", j->tot_total);
	j->dirty = 1;
	return 0;
}

static int
start_job(struct job *j)
{
	char **av[NSTAGE] = {0};
	char lp[H2K_SPOOL_IDMAX + 16];
	int p_in[NSTAGE][2], p_out[NSTAGE][2], p_err[NSTAGE][2];
	int devnull = -1, rc = -1;

	for (int i = 0; i < NSTAGE; i++) {
		p_in[i][0] = p_in[i][1] = p_out[i][0] = p_out[i][1] = -1;
		p_err[i][0] = p_err[i][1] = -1;
		j->st[i].in = j->st[i].out = j->st[i].err = -1;
	}
	snprintf(lp, sizeof lp, "%s.log", j->c.id);
	if (j->logfd < 0 && (j->logfd = h2k_spool_open_log(rsp, lp,
	    O_WRONLY | O_CREAT | O_APPEND)) < 0)
		return -1;
	for (int i = 0; i < NSTAGE; i++)
		if (!(av[i] = stage_argv(i, j->c.rec)))
			goto out;
	if ((devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
		h2k_seterr(H2K_EX_IO, "/dev/null: %s", strerror(errno));
		goto out;
	}
	for (int i = 0; i < NSTAGE; i++) {
		if ((i > 0 && pipe2(p_in[i], O_CLOEXEC) < 0) ||
		    (i < NSTAGE - 1 && pipe2(p_out[i], O_CLOEXEC) < 0) ||
		    pipe2(p_err[i], O_CLOEXEC) < 0) {
			h2k_seterr(H2K_EX_IO, "pipe: %s", strerror(errno));
			goto out;
		}
	}
	/* The last stage writes its result where a dead runner cannot lose it. */
	snprintf(lp, sizeof lp, "%s.final", j->c.id);
	if ((p_out[NSTAGE - 1][1] = h2k_spool_open_log(rsp, lp, O_WRONLY |
	    O_CREAT | O_APPEND)) < 0)
		goto out;
	/* A full spool must not lose that line after the export is done. */
	char fpath[PATH_MAX];
	snprintf(fpath, sizeof fpath, "%s/log/%s", rsp->dir, lp);
	if (h2k_spool_reserve(p_out[NSTAGE - 1][1], fpath, 64u << 10) < 0)
		goto out;
	logjob(j, "attempt %d by runner %d: %s %s | %s ... | %s ...",
	    (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(j->c.rec,
	    "attempts")), (int)getpid(), av[0][0], h2k_json_str(j->c.rec, "vm_path"),
	    av[1][0], av[2][0]);
	j->pgid = 0;
	for (int i = 0; i < NSTAGE; i++) {
		pid_t pid = spawn(j, i, av[i], i ? p_in[i][0] : devnull,
		    p_out[i][1], p_err[i][1]);
		if (pid < 0)
			goto out;
		if (!j->pgid)
			j->pgid = pid;
		j->st[i].pid = pid;
		close(p_out[i][1]);
		close(p_err[i][1]);
		p_out[i][1] = p_err[i][1] = -1;
		if (i > 0) {
			close(p_in[i][0]);
			p_in[i][0] = -1;
			j->st[i].in = p_in[i][1];
			p_in[i][1] = -1;
			setnb(j->st[i].in);
		}
		j->st[i].out = p_out[i][0];
		j->st[i].err = p_err[i][0];
		p_out[i][0] = p_err[i][0] = -1;
		if (j->st[i].out >= 0)
			setnb(j->st[i].out);
		setnb(j->st[i].err);
	}
	j->t_start = h2k_monotime();
	h2k_job_set_num(j->c.rec, "runner_pid", getpid());
	/* What cancel needs to tell the job's group from a reused number. */
	pid_t pids[NSTAGE];
	for (int i = 0; i < NSTAGE; i++)
		pids[i] = j->st[i].pid;
	if (h2k_job_set_procs(j->c.rec, j->pgid, pids, NSTAGE) < 0) {
		h2k_warn("job %s: %s", j->c.id, h2k_errmsg());
		h2k_job_set_num(j->c.rec, "pgid", j->pgid);
	}
	set_progress(j, "lease");
	if (h2k_spool_update(rsp, &j->c, 1) < 0)
		h2k_warn("job %s: %s", j->c.id, h2k_errmsg());
	j->dirty = 0;
	rc = 0;
out:
	for (int i = 0; i < NSTAGE; i++) {
		argv_free(av[i]);
		for (int k = 0; k < 2; k++) {
			if (p_in[i][k] >= 0)
				close(p_in[i][k]);
			if (p_out[i][k] >= 0)
				close(p_out[i][k]);
			if (p_err[i][k] >= 0)
				close(p_err[i][k]);
		}
	}
	if (devnull >= 0)
		close(devnull);
	if (rc < 0 && j->pgid > 1) {
		/* Half a pipeline is no pipeline. */
		kill(-j->pgid, SIGKILL);
		j->killed = 1;
	}
	return rc;
}

static void signal_job(struct job *j, int sig);

/* Room for a result line of about 2 * len bytes: log/ID.final, the slot. */
static int
make_room(struct job *j, size_t len)
{
	char name[H2K_SPOOL_IDMAX + 16], path[PATH_MAX];
	size_t n = 2 * len + (64u << 10);
	int fd, r;

	if (n <= (64u << 10) + 8192)
		return 0; /* what start_job reserved will do */
	snprintf(name, sizeof name, "%s.final", j->c.id);
	snprintf(path, sizeof path, "%s/log/%s", rsp->dir, name);
	if ((fd = h2k_spool_open_log(rsp, name, O_WRONLY | O_APPEND)) < 0)
		return -1;
	r = h2k_spool_reserve(fd, path, n);
	close(fd);
	if (r < 0)
		return -1;
	return h2k_spool_grow_slot(rsp, &j->c, 2 * len);
}

static void fail_job(struct job *, const char *);

/* A JSON line from stage i's stdout. */
static void
on_line(struct job *j, int i, char *line, size_t len)
{
	cJSON *o;

	if (j->fail)
		return;  /* the job is being stopped: nothing more goes on */
	/* h2k-fetch's line is only relayed: no need to hold it parsed too */
	o = i == 1 ? NULL : cJSON_ParseWithLength(line, len);
	j->st[i].lines++;
	if (i == 0 && o) {
		const cJSON *l = cJSON_GetObjectItemCaseSensitive(o, "lease");
		const char *m = h2k_json_str(l, "moref");
		if (m) {
			free(j->lease_moref);
			j->lease_moref = h2k_strdup(m);
			logjob(j, "lease %s%s%s", m,
			    h2k_json_str(l, "snapshot") ? " snapshot " : "",
			    h2k_json_str(l, "snapshot") ? h2k_json_str(l, "snapshot") : "");
			cJSON *rl = cJSON_CreateObject();
			if (rl) {
				cJSON_AddStringToObject(rl, "moref", m);
				if (h2k_json_str(l, "snapshot"))
					cJSON_AddStringToObject(rl, "snapshot",
					    h2k_json_str(l, "snapshot"));
				cJSON_DeleteItemFromObjectCaseSensitive(j->c.rec,
				    "lease");
				cJSON_AddItemToObject(j->c.rec, "lease", rl);
			}
		}
		/* Sizes known up front make a truthful bytes_total. */
		double tot = 0;
		const cJSON *d;
		cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(o,
		    "devices"))
			if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d,
			    "disk")))
				tot += h2k_json_num(d, "size", 0);
		if (tot > j->tot_total)
			j->tot_total = tot;
		/* streams not started yet weigh in the job's percent too */
		double cap = h2k_json_num(l, "disk_capacity_bytes", 0);
		if (cap > 0 && cap < 1e18)
			j->cap_total = cap;
		set_progress(j, "download");
	} else if (i == 1) {
		set_progress(j, "ovf");
		/*
		 * h2k-ovf's result line is this line and a few paths, and the
		 * final record holds its files: make room for both before
		 * h2k-ovf completes the lease, or fail the job now (the lease
		 * is aborted) rather than lose the line of a finished export.
		 */
		if (make_room(j, len) < 0) {
			char why[1024];
			snprintf(why, sizeof why, "%s; stopping it before h2k-ovf",
			    h2k_errmsg());
			fail_job(j, why);
		}
		if (j->fail) {
			cJSON_Delete(o);
			return;
		}
	} else if (i == 2 && o) {
		cJSON_Delete(j->final);
		j->final = o;
		o = NULL;
	}
	cJSON_Delete(o);
	if (i + 1 < NSTAGE && j->st[i + 1].in >= 0) {
		if (h2k_buf_append(&j->st[i + 1].qbuf, line, len) < 0 ||
		    h2k_buf_append(&j->st[i + 1].qbuf, "\n", 1) < 0)
			h2k_warn("job %s: %s", j->c.id, h2k_errmsg());
	}
}

/*
 * A stream has no bytes_total: its line gives a percent of the disk's
 * capacity instead.  When any file is such a stream, the job's percent is
 * weighted by each file's total or capacity, over at least the lease's
 * capacity (files not begun count as 0%); -1 when a file gives neither
 * (no honest figure) or none is a stream (bytes over totals then).
 */
static double
est_percent(const struct job *j)
{
	double w = 0, got = 0;
	int streams = 0;

	for (size_t k = 0; k < j->nfiles; k++) {
		const struct filep *f = &j->files[k];
		if (f->total > 0 && f->total < 1e18) {
			got += f->done < f->total ? f->done : f->total;
			w += f->total;
		} else if (f->cap > 0 && f->cap < 1e18 && f->pct >= 0 && f->pct <= 100) {
			got += f->cap * f->pct / 100;
			w += f->cap;
			streams++;
		} else
			return -1;
	}
	if (streams && j->cap_total > w)
		w = j->cap_total;
	return streams && w > 0 ? 100 * got / w : -1;
}

/* h2k-fetch's JSON progress line: per file, or a total (no "file"). */
static int
on_progress(struct job *j, const char *line, size_t len)
{
	cJSON *o = cJSON_ParseWithLength(line, len);
	double done, total;
	const char *file;

	if (!cJSON_IsObject(o) || !cJSON_IsNumber(
	    cJSON_GetObjectItemCaseSensitive(o, "bytes_done"))) {
		cJSON_Delete(o);
		return 0;
	}
	done = h2k_json_num(o, "bytes_done", 0);
	total = h2k_json_num(o, "bytes_total", 0);
	file = h2k_json_str(o, "file");
	if (!file) {
		j->tot_done = done;
		if (total > 0)
			j->tot_total = total;
		j->nfiles = (size_t)-1 / 2; /* totals given: ignore per-file sums */
	} else if (j->nfiles < (size_t)-1 / 2) {
		size_t k;
		for (k = 0; k < j->nfiles; k++)
			if (!strcmp(j->files[k].file, file))
				break;
		if (k == j->nfiles) {
			struct filep *f = h2k_realloc(j->files,
			    (j->nfiles + 1) * sizeof *f);
			if (!f || !(f[k].file = h2k_strdup(file))) {
				if (f)
					j->files = f;
				cJSON_Delete(o);
				return -1;
			}
			j->files = f;
			j->nfiles++;
		}
		j->files[k].done = done;
		j->files[k].total = total;
		j->files[k].cap = h2k_json_num(o, "capacity_bytes", -1);
		j->files[k].pct = h2k_json_num(o, "percent_complete", -1);
		double d = 0, t = 0;
		for (k = 0; k < j->nfiles; k++) {
			d += j->files[k].done;
			t += j->files[k].total;
		}
		j->tot_done = d;
		if (t > j->tot_total)
			j->tot_total = t;
		j->est_pct = est_percent(j);
	}
	/* h2k-fetch's own "done" is not the job's: h2k-ovf is still to run. */
	const char *ph = h2k_json_str(o, "phase");
	set_progress(j, ph && !strcmp(ph, "verify") ? "verify" : "download");
	cJSON_Delete(o);
	return 1;
}

/*
 * The stages' stderr in the job's log, at most LOG_MAX bytes an attempt:
 * a stage that never stops talking must not fill the spool's disk (the
 * runner's own lines, a few per event, still go in).
 */
#define LOG_MAX (64u << 20)

static void
logstage(struct job *j, const char *buf, size_t len)
{
	static const char cut[] = "h2k-job: [log cut: the job's commands "
	    "wrote more than 64 MiB to standard error; the rest is dropped]\n";

	if (j->logfd < 0 || j->logged > LOG_MAX)
		return;
	if (j->logged + len > LOG_MAX) {
		j->logged = LOG_MAX + 1;
		(void)!write(j->logfd, cut, sizeof cut - 1);
		return;
	}
	j->logged += len;
	(void)!write(j->logfd, buf, len);
}

static void
on_errline(struct job *j, int i, char *line, size_t len)
{
	if (i == 1 && len > 0 && line[0] == '{' && on_progress(j, line, len))
		return;
	/*
	 * A stage is any program in the path: what it says is shown escaped
	 * in the log and in the record's error (h2k.h), never raw.
	 */
	struct h2k_buf e = {0};
	if (h2k_buf_ttyesc(&e, line, len, H2K_ESC_KEEPTAB) < 0)
		return;
	if (j->logfd >= 0 && h2k_buf_append(&e, "\n", 1) == 0) {
		logstage(j, e.data, e.len);
		e.data[--e.len] = '\0';
	}
	/* the stages run at H2K_LOG_LEVEL=info: a "PROG: info: ..." line
	 * said after the error (such as "lease ... aborted") is not the
	 * reason, and must not hide it in the record */
	const char *sep = memmem(line, len, ": ", 2);
	size_t rest = sep ? len - (size_t)(sep + 2 - line) : 0;
	int chatter = sep && ((rest >= 6 && !memcmp(sep + 2, "info: ", 6)) ||
	    (rest >= 7 && !memcmp(sep + 2, "debug: ", 7)) ||
	    (rest >= 7 && !memcmp(sep + 2, "trace: ", 7)));
	if (len > 0 && (!chatter || !j->st[i].lasterr)) {
		/* cut on a character boundary */
		size_t n = e.len > 400 ? 400 : e.len;
		while (n > 0 && n < e.len && ((unsigned char)e.data[n] & 0xc0) == 0x80)
			n--;
		free(j->st[i].lasterr);
		j->st[i].lasterr = h2k_asprintf("%.*s", (int)n, e.data);
	}
	h2k_buf_free(&e);
}

/*
 * Line bounds.  A stage's stdout line is relayed whole to the next stage,
 * which takes lines up to H2K_JSONL_MAX_LINE: a longer one fails the job
 * (nothing downstream could use it) and is never held whole.  A stderr
 * line only goes to the log: past ERRLINE_MAX it is cut there.
 */
#define OUTLINE_MAX H2K_JSONL_MAX_LINE
#define ERRLINE_MAX (64u << 10)
/* Bytes read from one pipe per round, so one chatty stage cannot starve
 * the other jobs. */
#define DRAIN_MAX (1u << 20)

static void signal_job(struct job *j, int sig);

/* Whether stage i's stdout waits: the next stage has not taken what is
 * queued for it, and the queue and the line being read together hold a
 * line's worth (an empty queue never holds: the line must complete). */
static int
out_held(const struct job *j, int i)
{
	if (i + 1 >= NSTAGE || j->st[i + 1].in < 0 || !j->st[i + 1].qbuf.len)
		return 0;
	return j->st[i + 1].qbuf.len + j->st[i].obuf.len >= OUTLINE_MAX;
}

static void
fail_job(struct job *j, const char *why)
{
	if (j->fail || j->cancelling)
		return;
	j->fail = h2k_strdup(why);
	logjob(j, "%s; stopping the job", why);
	h2k_warn("job %s: %s", j->c.id, why);
	signal_job(j, SIGTERM);
	j->t_kill = h2k_monotime() + 10;
}

static void
overlong(struct job *j, int i, struct h2k_buf *b, int isout)
{
	char why[128];

	if (isout) {
		snprintf(why, sizeof why, "%s printed a line longer than %u "
		    "bytes", stage_cmd[i], OUTLINE_MAX);
		fail_job(j, why);
	} else if (j->logfd >= 0) {
		/* escaped like every other line of the log (on_errline) */
		static const char cut[] = " [line cut: longer than 64 KiB]\n";
		struct h2k_buf e = {0};
		if (h2k_buf_ttyesc(&e, b->data, b->len, H2K_ESC_KEEPTAB) == 0 &&
		    h2k_buf_append(&e, cut, sizeof cut - 1) == 0)
			logstage(j, e.data, e.len);
		h2k_buf_free(&e);
	}
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

/*
 * Read what fd has and hand over complete lines; at EOF the last partial
 * line too.  b holds at most one partial line of at most the bound.
 * Returns 0 at EOF (fd closed), 1 otherwise.
 */
static int
drain(struct job *j, int i, int *fd, struct h2k_buf *b, int isout)
{
	char chunk[65536];
	int eof = 0, *skip = isout ? &j->st[i].oskip : &j->st[i].eskip;
	size_t max = isout ? OUTLINE_MAX : ERRLINE_MAX, total = 0;

	while (total < DRAIN_MAX) {
		ssize_t r = read(*fd, chunk, sizeof chunk);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			break;
		if (r <= 0) {
			eof = 1;
			break;
		}
		total += (size_t)r;
		for (size_t off = 0; off < (size_t)r;) {
			char *p = chunk + off;
			char *nl = memchr(p, '\n', (size_t)r - off);
			size_t n = nl ? (size_t)(nl - p) : (size_t)r - off;

			if (*skip)
				;
			else if (b->len + n > max) {
				/* the log shows the head of a stderr line */
				if (!isout)
					(void)h2k_buf_append(b, p, max - b->len);
				overlong(j, i, b, isout);
				*skip = 1;
			} else if (h2k_buf_append(b, p, n) < 0) {
				h2k_warn("job %s: %s", j->c.id, h2k_errmsg());
				b->len = 0;
				*skip = 1;
			} else if (nl) {
				if (isout)
					on_line(j, i, b->data, b->len);
				else
					on_errline(j, i, b->data, b->len);
				b->len = 0;
				b->data[0] = '\0';
			}
			if (nl)
				*skip = 0;
			off += n + (nl != NULL);
		}
		if (r < (ssize_t)sizeof chunk)
			break;
	}
	if (eof && b->len > 0 && !*skip) {
		if (isout)
			on_line(j, i, b->data, b->len);
		else
			on_errline(j, i, b->data, b->len);
	}
	if (eof) {
		b->len = 0;
		*skip = 0;
		close(*fd);
		*fd = -1;
		if (isout && i + 1 < NSTAGE)
			j->st[i + 1].closing_in = 1;
		return 0;
	}
	return 1;
}

/*
 * Stage i exited, but a process it left (a daemon) keeps its pipes open:
 * after 5 s with nothing left to read they count as closed, so the next
 * stage sees the end of its input instead of waiting for the daemon.
 */
static void
stage_gone(struct job *j, int i, double now)
{
	struct stage *s = &j->st[i];
	int n;

	if (!s->exited || (s->out < 0 && s->err < 0))
		return;
	if (s->t_eof == 0)
		s->t_eof = now + 5;
	if (now < s->t_eof)
		return;
	if (s->out >= 0 && !out_held(j, i) &&
	    ioctl(s->out, FIONREAD, &n) == 0 && n == 0) {
		if (s->obuf.len > 0 && !s->oskip)
			on_line(j, i, s->obuf.data, s->obuf.len);
		s->obuf.len = 0;
		s->oskip = 0;
		close(s->out);
		s->out = -1;
		if (i + 1 < NSTAGE)
			j->st[i + 1].closing_in = 1;
		logjob(j, "%s exited; a process it left holds its output: "
		    "closed", stage_cmd[i]);
	}
	if (s->err >= 0 && ioctl(s->err, FIONREAD, &n) == 0 && n == 0) {
		if (s->ebuf.len > 0 && !s->eskip)
			on_errline(j, i, s->ebuf.data, s->ebuf.len);
		s->ebuf.len = 0;
		s->eskip = 0;
		close(s->err);
		s->err = -1;
	}
}

/* Feed stage i's stdin from its queue; close it when upstream is done. */
static void
feed(struct job *j, int i)
{
	struct stage *s = &j->st[i];

	while (s->in >= 0 && s->qbuf.len > 0) {
		ssize_t w = write(s->in, s->qbuf.data, s->qbuf.len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			return;
		if (w < 0) {
			/* EPIPE: the stage is gone; its exit status says why. */
			s->qbuf.len = 0;
			break;
		}
		memmove(s->qbuf.data, s->qbuf.data + w, s->qbuf.len - (size_t)w);
		s->qbuf.len -= (size_t)w;
	}
	if (s->in >= 0 && s->closing_in && s->qbuf.len == 0) {
		close(s->in);
		s->in = -1;
	}
}

/* Whether a stage is still running. */
static int
group_alive(const struct job *j)
{
	for (int i = 0; i < NSTAGE; i++)
		if (j->st[i].pid > 0 && !j->st[i].exited)
			return 1;
	return 0;
}

static void
signal_job(struct job *j, int sig)
{
	/*
	 * Only while the leader is unreaped can the group id not be reused;
	 * the runner reaps it last (reap, end_leader).
	 */
	if (j->pgid > 1 && j->st[0].pid == j->pgid && !j->st[0].reaped)
		kill(-j->pgid, sig);
}

/*
 * The job is over: nothing of its group outlives it (a grandchild that
 * kept a pipe or ignored SIGTERM), then the leader is reaped.
 */
static void
end_leader(struct job *j)
{
	struct stage *s = &j->st[0];
	int status;

	signal_job(j, SIGKILL);
	if (s->pid > 0 && !s->reaped) {
		while (waitpid(s->pid, &status, 0) < 0 && errno == EINTR)
			;
		s->status = status;
		s->reaped = 1;
	}
}

static void
describe_exit(char *buf, size_t n, int i, int status)
{
	if (WIFSIGNALED(status))
		snprintf(buf, n, "%s killed by signal %d", stage_cmd[i],
		    WTERMSIG(status));
	else
		snprintf(buf, n, "%s exited with status %d", stage_cmd[i],
		    WEXITSTATUS(status));
}

static cJSON *
make_result(const cJSON *f)
{
	static const char *keys[] = {"ovf_path", "mf_path", "ova_path", "dir",
	    "name", "moref", "hyper2kvm_manifest_path", "delivered_path"};
	cJSON *r = cJSON_CreateObject(), *files;
	const cJSON *fl;

	if (!r)
		return NULL;
	for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
		if (h2k_json_str(f, keys[k]))
			cJSON_AddStringToObject(r, keys[k], h2k_json_str(f, keys[k]));
	if ((files = cJSON_AddArrayToObject(r, "files"))) {
		cJSON_ArrayForEach(fl, cJSON_GetObjectItemCaseSensitive(f,
		    "files")) {
			cJSON *e = cJSON_CreateObject();
			if (!e)
				break;
			if (h2k_json_str(fl, "path"))
				cJSON_AddStringToObject(e, "path",
				    h2k_json_str(fl, "path"));
			if (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(fl,
			    "size")))
				cJSON_AddNumberToObject(e, "size",
				    h2k_json_num(fl, "size", 0));
			if (h2k_json_str(fl, "sha256"))
				cJSON_AddStringToObject(e, "sha256",
				    h2k_json_str(fl, "sha256"));
			cJSON_AddItemToArray(files, e);
		}
	}
	return r;
}

static void
job_free(struct job *j)
{
	for (int i = 0; i < NSTAGE; i++) {
		struct stage *s = &j->st[i];
		if (s->in >= 0)
			close(s->in);
		if (s->out >= 0)
			close(s->out);
		if (s->err >= 0)
			close(s->err);
		h2k_buf_free(&s->obuf);
		h2k_buf_free(&s->ebuf);
		h2k_buf_free(&s->qbuf);
		free(s->lasterr);
	}
	if (j->logfd >= 0)
		close(j->logfd);
	if (j->nfiles < (size_t)-1 / 2)
		for (size_t k = 0; k < j->nfiles; k++)
			free(j->files[k].file);
	free(j->files);
	free(j->lease_moref);
	free(j->fail);
	cJSON_Delete(j->final);
	h2k_spool_release(&j->c);
	free(j);
}

/*
 * A job that did not complete may leave its lease open (h2k-fetch was
 * killed before it could abort it, or h2k-ovf failed after the download)
 * and, with --snapshot, the temporary snapshot.  A child process checks
 * the lease and aborts it when it is still initializing or ready, then
 * removes the snapshot: network calls with their own timeouts must not
 * stall the runner's loop.  The child is reaped like any other.
 */
static void
cleanup_lease(struct job *j)
{
	const cJSON *l = cJSON_GetObjectItemCaseSensitive(j->c.rec, "lease");
	const char *snap = h2k_json_str(l, "snapshot");
	struct h2k_session s;
	char *path;
	pid_t pid;

	if (!j->lease_moref)
		return;
	if (j->final && h2k_json_str(cJSON_GetObjectItemCaseSensitive(j->final,
	    "lease"), "state") && !strcmp(h2k_json_str(
	    cJSON_GetObjectItemCaseSensitive(j->final, "lease"), "state"),
	    "completed"))
		return;
	if (ncleaners == (int)(sizeof cleaners / sizeof cleaners[0])) {
		h2k_warn("job %s: too many lease clean-ups at once; lease %s "
		    "left to time out", j->c.id, j->lease_moref);
		return;
	}
	if ((pid = fork()) != 0) {
		if (pid < 0)
			h2k_warn("job %s: fork: %s", j->c.id, strerror(errno));
		else
			cleaners[ncleaners++] = pid;
		return;
	}
	sigprocmask(SIG_SETMASK, &origmask, NULL);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	/*
	 * Drop every inherited pipe and lock but this job's log: a copy of
	 * another job's pipe would keep its stage from ever seeing EOF.
	 */
	if (j->logfd > 3)
		close_range(3, (unsigned)j->logfd - 1, 0);
	close_range((unsigned)(j->logfd >= 3 ? j->logfd + 1 : 3), ~0U, 0);
	memset(&s, 0, sizeof s);
	path = h2k_session_path(session_path);
	if (!path || h2k_session_load(path, &s) < 0) {
		logjob(j, "cannot check lease %s: %s", j->lease_moref,
		    h2k_errmsg());
		_exit(1);
	}
	struct h2k_vim *v = h2k_vim_from_session(&s);
	if (!v) {
		logjob(j, "cannot check lease %s: %s", j->lease_moref,
		    h2k_errmsg());
		_exit(1);
	}
	char *msg = NULL;
	int st = h2k_lease_state(v, j->lease_moref, &msg);
	free(msg);
	if (st == H2K_LEASE_READY || st == H2K_LEASE_INITIALIZING) {
		if (h2k_lease_abort(v, j->lease_moref, j->cancelling ?
		    "cancelled (h2k-job cancel)" : "export did not complete") < 0)
			logjob(j, "abort of lease %s failed: %s", j->lease_moref,
			    h2k_errmsg());
		else
			logjob(j, "lease %s aborted", j->lease_moref);
	}
	if (snap) {
		if (h2k_snapshot_remove(v, snap, 300) == 0)
			logjob(j, "temporary snapshot %s removed", snap);
		else if (h2k_errcode() != H2K_EX_NOTFOUND)
			logjob(j, "removal of snapshot %s failed: %s", snap,
			    h2k_errmsg());
	}
	h2k_vim_free(v);
	h2k_session_free(&s);
	free(path);
	_exit(0);
}

static int relogin(struct job *j);

/* Every process reaped and every pipe drained: record the outcome. */
static void
end_job(struct job *j)
{
	char why[600] = "";
	const char *st;
	double secs = h2k_monotime() - j->t_start;

	h2k_job_clear_procs(j->c.rec);
	if (j->interrupting && !j->cancelling && !j->fail) {
		cleanup_lease(j);
		logjob(j, "interrupted: the runner is stopping; requeued");
		h2k_info("job %s: interrupted after %.1f s; requeued", j->c.id,
		    secs);
		set_progress(j, "queued");
		if (h2k_spool_requeue(rsp, &j->c) < 0)
			h2k_warn("job %s: %s", j->c.id, h2k_errmsg());
		return;
	}
	if (!j->final)
		j->final = h2k_spool_read_final(rsp, j->c.id);
	int bad = -1;
	for (int i = 0; i < NSTAGE; i++)
		if (!WIFEXITED(j->st[i].status) ||
		    WEXITSTATUS(j->st[i].status) != 0) {
			bad = i;
			break;
		}
	if (!j->cancelling && !j->fail && bad >= 0 &&
	    WIFEXITED(j->st[bad].status) &&
	    WEXITSTATUS(j->st[bad].status) == H2K_EX_SESSION && relogin(j)) {
		cleanup_lease(j);
		logjob(j, "logged in again; requeued");
		h2k_info("job %s: session renewed; requeued", j->c.id);
		set_progress(j, "queued");
		if (h2k_spool_requeue(rsp, &j->c) < 0)
			h2k_warn("job %s: %s", j->c.id, h2k_errmsg());
		return;
	}
	if (j->cancelling) {
		st = "cancelled";
		snprintf(why, sizeof why, "cancelled");
	} else if (j->fail) {
		st = "failed";
		snprintf(why, sizeof why, "%s", j->fail);
	} else if (bad >= 0) {
		st = "failed";
		if (j->st[bad].lasterr)
			snprintf(why, sizeof why, "%s", j->st[bad].lasterr);
		else
			describe_exit(why, sizeof why, bad, j->st[bad].status);
	} else if (!j->final || !h2k_json_str(j->final, "ovf_path")) {
		st = "failed";
		snprintf(why, sizeof why, "h2k-ovf ended without an ovf_path");
	} else {
		st = "completed";
	}
	if (strcmp(st, "completed"))
		cleanup_lease(j);
	if (!strcmp(st, "completed")) {
		cJSON *r = make_result(j->final);
		if (r) {
			cJSON_DeleteItemFromObjectCaseSensitive(j->c.rec, "result");
			cJSON_AddItemToObject(j->c.rec, "result", r);
		}
		h2k_job_set_str(j->c.rec, "error", NULL);
		if (j->tot_total > 0)
			j->tot_done = j->tot_total;
	} else {
		h2k_job_set_str(j->c.rec, "error", why);
	}
	n_completed += !strcmp(st, "completed");
	n_failed += !strcmp(st, "failed");
	set_progress(j, st);
	h2k_job_set_status(j->c.rec, st);
	logjob(j, "%s after %.1f s%s%s", st, secs, why[0] ? ": " : "", why);
	if (h2k_spool_finish(rsp, &j->c) < 0)
		h2k_warn("job %s: %s", j->c.id, h2k_errmsg());
	if (!strcmp(st, "completed"))
		h2k_info("job %s (%s): completed in %.1f s: %s", j->c.id,
		    h2k_json_str(j->c.rec, "name"), secs, h2k_json_str(j->final, "ovf_path"));
	else
		h2k_log(!strcmp(st, "failed") ? H2K_LOG_WARN : H2K_LOG_INFO,
		    "job %s (%s): %s: %s", j->c.id, h2k_json_str(j->c.rec, "name"), st,
		    why);
}

static void
reap(void)
{
	int status;
	pid_t pid;

	/*
	 * Child by child, not waitpid(-1): a job's leader is only looked at
	 * (WNOWAIT) and reaped when the job ends (end_leader).
	 */
	for (int k = 0; k < ncleaners; k++)
		if ((pid = waitpid(cleaners[k], &status, WNOHANG)) > 0 ||
		    (pid < 0 && errno == ECHILD))
			cleaners[k--] = cleaners[--ncleaners];
	for (int k = 0; k < njobs; k++)
		for (int i = 0; i < NSTAGE; i++) {
			struct stage *s = &jobs[k]->st[i];
			if (s->pid <= 0 || s->exited)
				continue;
			if (i == 0) {
				siginfo_t si;
				memset(&si, 0, sizeof si);
				int w = waitid(P_PID, (id_t)s->pid, &si, WEXITED |
				    WNOHANG | WNOWAIT);
				if (w == 0 && si.si_pid == s->pid)
					s->exited = 1;
				else if (w < 0 && errno == ECHILD)
					s->exited = s->reaped = 1;
				continue;
			}
			if ((pid = waitpid(s->pid, &status, WNOHANG)) == s->pid) {
				s->exited = s->reaped = 1;
				s->status = status;
			} else if (pid < 0 && errno == ECHILD)
				s->exited = s->reaped = 1;
		}
}

static int
claim_more(void)
{
	/* After a failed claim (spool full...), not again at every tick. */
	static double hold;
	int started = 0;

	if (h2k_monotime() < hold)
		return 0;
	while (njobs < ro.workers) {
		struct job *j = h2k_calloc(1, sizeof *j);
		int r;

		if (!j)
			return -1;
		j->logfd = -1;
		j->est_pct = -1;
		if ((r = h2k_spool_claim(rsp, &j->c)) <= 0) {
			free(j);
			if (r < 0) {
				h2k_warn("%s", h2k_errmsg());
				hold = h2k_monotime() + 5;
			}
			claim_failed = r < 0;
			return started;
		}
		h2k_info("job %s (%s): claimed, attempt %d", j->c.id,
		    h2k_json_str(j->c.rec, "name"), (int)h2k_json_num(j->c.rec, "attempts", 0));
		/*
		 * Test hook for the crash tests: stop dead right after a
		 * durable claim, before any process is started, so a kill -9
		 * lands exactly there.  The named file says we are there.
		 */
		const char *hook = getenv("H2K_JOB_TEST_STOP_AFTER_CLAIM");
		if (hook && *hook) {
			int fd = open(hook, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
			if (fd >= 0)
				close(fd);
			for (;;)
				pause();
		}
		if ((j->final = h2k_spool_read_final(rsp, j->c.id))) {
			char lp[H2K_SPOOL_IDMAX + 16];
			snprintf(lp, sizeof lp, "%s.log", j->c.id);
			j->logfd = h2k_spool_open_log(rsp, lp, O_WRONLY |
			    O_CREAT | O_APPEND);
			logjob(j, "an earlier attempt completed the export "
			    "(log/%s.final); not run again", j->c.id);
			for (int i = 0; i < NSTAGE; i++) {
				j->st[i].in = j->st[i].out = j->st[i].err = -1;
				j->st[i].exited = j->st[i].reaped = 1;
				j->st[i].status = 0;
			}
			j->t_start = h2k_monotime();
			end_job(j);
			job_free(j);
			continue;
		}
		jobs[njobs++] = j;
		started++;
		if (start_job(j) < 0) {
			char why[600];
			snprintf(why, sizeof why, "cannot start: %s",
			    h2k_errmsg());
			h2k_warn("job %s: %s", j->c.id, why);
			for (int i = 0; i < NSTAGE; i++) {
				if (j->st[i].pid > 0)
					continue;
				j->st[i].exited = j->st[i].reaped = 1;
				j->st[i].status = 127 << 8;
			}
			free(j->st[0].lasterr);
			j->st[0].lasterr = h2k_strdup(why);
		}
	}
	return started;
}

/* Log in with a config credential so jobs have a session to run with. */
static int
login_from_config(const char *config, const char *session)
{
	char *login = find_cmd("h2k-login");
	pid_t pid;
	int status;

	if (!login)
		return -1;
	h2k_info("logging in with %s", config);
	if ((pid = fork()) < 0) {
		free(login);
		return h2k_seterr(H2K_EX_FAIL, "fork: %s", strerror(errno));
	}
	if (pid == 0) {
		int fd = open("/dev/null", O_RDWR);
		if (fd >= 0) {
			dup2(fd, 0);
			dup2(fd, 1);
		}
		sigprocmask(SIG_SETMASK, &origmask, NULL);
		execl(login, "h2k-login", "-c", config, "-s", session,
		    (char *)NULL);
		_exit(127);
	}
	free(login);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return h2k_seterr(WIFEXITED(status) && WEXITSTATUS(status) != 127
		    ? WEXITSTATUS(status) : H2K_EX_SESSION,
		    "h2k-login -c %s failed; jobs will fail until it works",
		    config);
	return 0;
}

/*
 * systemd's LoadCredential: a `session` credential is used as the session
 * file; a `config` credential (URL, Username, Password) is used to log in
 * into a session file inside the spool.  Flags win over credentials.
 */
static void
credentials(void)
{
	const char *cd = getenv("CREDENTIALS_DIRECTORY");
	char *p;

	if (ro.session) {
		free(session_path);
		session_path = h2k_strdup(ro.session);
		return;
	}
	if (!cd || !*cd)
		return;
	if ((p = h2k_asprintf("%s/session", cd)) && access(p, R_OK) == 0) {
		free(session_path);
		session_path = p;
		return;
	}
	free(p);
	if ((p = h2k_asprintf("%s/config", cd)) && access(p, R_OK) == 0) {
		char *s = h2k_spool_path(rsp, "run", "session.json");
		if (s && login_from_config(p, s) < 0)
			h2k_warn("%s", h2k_errmsg());
		login_at = h2k_monotime();
		free(session_path);
		session_path = s;
		free(login_config);
		login_config = p;
		return;
	}
	free(p);
}

/*
 * A stage said the session is gone (exit 3: expired, logged out, missing).
 * With a config credential, log in again and let the job run again - but
 * only if the job started before the last login: a job that failed with a
 * fresh session would fail again, so it fails instead of looping.
 */
static int
relogin(struct job *j)
{
	double now = h2k_monotime();

	if (!login_config || !session_path || login_at > j->t_start)
		return 0;
	login_at = now;
	logjob(j, "the session is no longer valid: logging in again");
	if (login_from_config(login_config, session_path) < 0) {
		h2k_warn("%s", h2k_errmsg());
		return 0;
	}
	return 1;
}

/* --- cancel ------------------------------------------------------------ */

/*
 * Whether the job's runner lives.  Not kill(pid, 0): the pid may be
 * anybody's by now.  A live runner holds the lock on its run/PID.
 */
static int
runner_alive(struct h2k_spool *sp, const cJSON *rec)
{
	const cJSON *rp = cJSON_GetObjectItemCaseSensitive(rec, "runner_pid");
	char p[32];
	int fd, alive;

	if (!cJSON_IsNumber(rp))
		return 0;
	snprintf(p, sizeof p, "run/%d", (int)rp->valuedouble);
	/* O_NONBLOCK: a FIFO there must not hang cancel past --timeout */
	if ((fd = openat(sp->dfd, p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW |
	    O_NONBLOCK)) < 0)
		return errno != ENOENT; /* unreadable: leave it to its runner */
	struct stat sb;
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return 1; /* not a runner's file: leave it alone */
	}
	alive = flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK;
	close(fd);
	return alive;
}

static int
kill_orphans(struct h2k_spool *sp, cJSON *rec)
{
	pid_t pg;

	if (!cJSON_GetObjectItemCaseSensitive(rec, "pgid"))
		return 0;
	/* The runner lives: it does the killing itself. */
	if (runner_alive(sp, rec))
		return 0;
	if ((pg = h2k_job_group(rec)) < 0)
		return -1;
	if (kill(-pg, SIGTERM) < 0)
		return 0;
	for (int i = 0; i < 50; i++) {
		h2k_sleep(0.1);
		if (h2k_job_group(rec) < 0)
			return 0; /* every process of the job is gone */
	}
	if (h2k_job_group(rec) == pg)
		kill(-pg, SIGKILL);
	return 0;
}

/*
 * find said "no job": when the file is there but its record was refused
 * (a field of the wrong type or range), say that instead.
 */
static void
why_not_found(struct h2k_spool *sp, const char *arg)
{
	static const char *const subs[] = {"new", "cur", "done"};
	char p[H2K_SPOOL_IDMAX + 8], m[512];

	if (h2k_errcode() != H2K_EX_NOTFOUND || !h2k_spool_idok(arg))
		return;
	for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
		snprintf(p, sizeof p, "%s/%s", subs[i], arg);
		if (faccessat(sp->dfd, p, F_OK, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		cJSON *r = h2k_spool_read(sp, subs[i], arg);
		if (r) {
			cJSON_Delete(r);
			continue;
		}
		snprintf(m, sizeof m, "%s", h2k_errmsg());
		h2k_seterr(H2K_EX_FAIL, "job %.64s: %s/%s: %s", arg, sp->dir, p,
		    m);
		return;
	}
}

int
h2k_runner_cancel(struct h2k_spool *sp, const char *arg, double limit,
    int (*emit)(const cJSON *rec))
{
	char id[H2K_SPOOL_IDMAX];
	double t0 = h2k_monotime();
	int marked = 0;
	char why[256] = "";

	for (;;) {
		struct h2k_claim c;
		const char *sub;
		cJSON *r = h2k_spool_find(sp, arg, &sub, id);
		int got;

		if (!r) {
			why_not_found(sp, arg);
			return -1;
		}
		if (!strcmp(sub, "done")) {
			const char *st = h2k_json_str(r, "status");
			if (!strcmp(st, "cancelled")) {
				int rc = emit(r);
				cJSON_Delete(r);
				return rc;
			}
			if (h2k_job_status_final(st))
				h2k_seterr(H2K_EX_STATE, "job %s already %s", id,
				    st);
			else
				h2k_seterr(H2K_EX_STATE, "job %s ended, but its "
				    "runner could not record how (status '%s' "
				    "in done/)", id, st);
			cJSON_Delete(r);
			return -1;
		}
		if (!strcmp(sub, "new")) {
			cJSON_Delete(r);
			if ((got = h2k_spool_claim_id_noslot(sp, id, &c)) < 0)
				return -1;
		} else {
			if (!marked && h2k_spool_mark_cancel(sp, id) < 0) {
				cJSON_Delete(r);
				return -1;
			}
			marked = 1;
			/* Its runner may be gone while its processes live on. */
			if (kill_orphans(sp, r) < 0)
				snprintf(why, sizeof why, "; %s, not signalled",
				    h2k_errmsg());
			else
				why[0] = '\0';
			cJSON_Delete(r);
			if ((got = h2k_spool_adopt(sp, id, &c)) < 0)
				return -1;
		}
		if (got == 1) {
			/* Nobody runs it: cancel it ourselves. */
			if (h2k_job_set_status(c.rec, "cancelled") < 0 ||
			    h2k_job_set_str(c.rec, "error", "cancelled") < 0 ||
			    h2k_spool_finish(sp, &c) < 0) {
				h2k_spool_release(&c);
				return -1;
			}
			int rc = emit(c.rec);
			h2k_spool_release(&c);
			return rc;
		}
		if (h2k_monotime() - t0 > limit)
			return h2k_seterr(H2K_EX_FAIL, "job %s: cancel "
			    "requested, still running after %g s%s", id, limit,
			    why);
		h2k_sleep(0.1);
	}
}

/* --- the loop ---------------------------------------------------------- */

/* Signals are blocked except inside ppoll (see the top). */
static void
catch_signals(void)
{
	struct sigaction sa;
	sigset_t block;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sa.sa_handler = on_signal; /* a handler, so ppoll wakes on SIGCHLD */
	sa.sa_flags = SA_NOCLDSTOP;
	sigaction(SIGCHLD, &sa, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGCHLD);
	sigprocmask(SIG_BLOCK, &block, &origmask);
}

/* inotify on new/, so a submitted job starts at once; -1 if none. */
static int
watch_new(void)
{
	char *nd = h2k_spool_path(rsp, "new", "");
	int ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);

	if (ino >= 0 && nd && inotify_add_watch(ino, nd,
	    IN_MOVED_TO | IN_CREATE) < 0) {
		close(ino);
		ino = -1;
	}
	free(nd);
	return ino;
}

/* Per-job timers: cancel markers, stop deadline, SIGKILL; dirty records. */
static void
job_timers(double now, int stopping, double t_stop)
{
	for (int k = 0; k < njobs; k++) {
		struct job *j = jobs[k];
		if (!j->cancelling && now >= j->t_cancel_check) {
			j->t_cancel_check = now + 0.25;
			if (h2k_spool_cancel_marked(rsp, j->c.id)) {
				h2k_info("job %s: cancelling", j->c.id);
				logjob(j, "cancel requested");
				j->cancelling = 1;
				signal_job(j, SIGTERM);
				j->t_kill = now + 10;
			}
		}
		if (stopping && now >= t_stop && !j->interrupting &&
		    !j->cancelling) {
			j->interrupting = 1;
			logjob(j, "runner stopping: SIGTERM to the job");
			signal_job(j, SIGTERM);
			j->t_kill = now + 10;
		}
		if (j->t_kill > 0 && now >= j->t_kill && !j->killed &&
		    group_alive(j)) {
			logjob(j, "still running 10 s after SIGTERM: "
			    "SIGKILL");
			signal_job(j, SIGKILL);
			j->killed = 1;
		}
		if (j->dirty && now - j->t_update >= 1) {
			if (h2k_spool_update(rsp, &j->c, 0) < 0)
				h2k_warn("job %s: %s", j->c.id,
				    h2k_errmsg());
			j->dirty = 0;
			j->t_update = now;
		}
	}
}

/*
 * One wait: every open pipe of every job and inotify, at most 200 ms (a
 * signal ends it sooner); then drain and relay every pipe and reap.  An
 * inotify event zeroes *t_claim.  -1 (error set): out of memory.
 */
static int
poll_round(int ino, double *t_claim)
{
	struct pollfd pf[1 + 8 * 8];
	struct pollfd *pfd = pf;
	int npf = 0, cap = (int)(sizeof pf / sizeof pf[0]);
	struct pollfd *heap = NULL;
	if (1 + njobs * 8 > cap) {
		cap = 1 + njobs * 8;
		/* as fatal as it was when the command exited here */
		if (!(heap = h2k_calloc((size_t)cap, sizeof *heap)))
			return -1;
		pfd = heap;
	}
	if (ino >= 0)
		pfd[npf++] = (struct pollfd){ino, POLLIN, 0};
	for (int k = 0; k < njobs; k++)
		for (int i = 0; i < NSTAGE; i++) {
			struct stage *s = &jobs[k]->st[i];
			if (s->out >= 0 && !out_held(jobs[k], i))
				pfd[npf++] = (struct pollfd){s->out,
				    POLLIN, 0};
			if (s->err >= 0)
				pfd[npf++] = (struct pollfd){s->err,
				    POLLIN, 0};
			if (s->in >= 0 && s->qbuf.len)
				pfd[npf++] = (struct pollfd){s->in,
				    POLLOUT, 0};
		}
	struct timespec ts = {0, 200 * 1000 * 1000};
	int pr = ppoll(pfd, (nfds_t)npf, &ts, &origmask);
	free(heap);
	if (pr < 0 && errno != EINTR)
		h2k_warn("ppoll: %s", strerror(errno));
	if (ino >= 0) {
		char evbuf[4096];
		while (read(ino, evbuf, sizeof evbuf) > 0)
			*t_claim = 0;
	}
	/*
	 * Drain every pipe each round rather than matching pollfds:
	 * reads are non-blocking and the set is small.
	 */
	for (int k = 0; k < njobs; k++) {
		struct job *j = jobs[k];
		for (int i = 0; i < NSTAGE; i++) {
			struct stage *s = &j->st[i];
			if (s->out >= 0 && !out_held(j, i))
				drain(j, i, &s->out, &s->obuf, 1);
			if (s->err >= 0)
				drain(j, i, &s->err, &s->ebuf, 0);
		}
		for (int i = 1; i < NSTAGE; i++)
			feed(j, i);
	}
	reap();
	return 0;
}

/* End the jobs whose processes are all gone and pipes all drained; 1 if any. */
static int
end_finished(void)
{
	double now = h2k_monotime();
	int ended = 0;

	for (int k = 0; k < njobs; k++) {
		struct job *j = jobs[k];
		int open_fds = 0;
		for (int i = 0; i < NSTAGE; i++)
			stage_gone(j, i, now);
		if (group_alive(j))
			continue;
		for (int i = 0; i < NSTAGE; i++)
			open_fds += (j->st[i].out >= 0) +
			    (j->st[i].err >= 0);
		if (open_fds) {
			/* A grandchild keeps a pipe: not forever. */
			if (j->t_eof == 0)
				j->t_eof = now + 5;
			if (now < j->t_eof)
				continue;
		}
		end_leader(j);
		end_job(j);
		job_free(j);
		jobs[k] = jobs[--njobs];
		k--;
		ended = 1;
	}
	return ended;
}

int
h2k_runner_run(const struct h2k_runner_opts *o, struct h2k_runner_result *res)
{
	int regfd, ino = -1;
	double t_stop = 0, t_recover, t_claim = 0;
	int stopping = 0;

	ro = *o;
	rsp = o->spool;
	download_workers = o->download_workers;
	if (ro.workers < 1)
		ro.workers = 1;
	runner_pid = getpid();
	catch_signals();
	if (!(jobs = h2k_calloc((size_t)ro.workers, sizeof *jobs)))
		return -1;
	if ((regfd = h2k_spool_register(rsp, ro.workers)) < 0)
		return -1;
	credentials();
	if (h2k_spool_recover(rsp) < 0)
		h2k_warn("recovery: %s", h2k_errmsg());
	t_recover = h2k_monotime();
	if (!ro.once)
		ino = watch_new();
	h2k_info("runner %d on %s: %d workers%s", (int)getpid(), rsp->dir,
	    ro.workers, ro.once ? ", until the queue is empty" : "");

	for (;;) {
		double now = h2k_monotime();

		if (got_term || got_int) {
			if (!stopping) {
				h2k_info("stopping: no new jobs; %d running "
				    "get %g s to finish", njobs, ro.grace);
				stopping = 1;
				t_stop = now + ro.grace;
			} else if (got_term + got_int > 1 && t_stop > now) {
				h2k_info("stopping now");
				t_stop = now;
			}
		}
		if (got_hup) {
			got_hup = 0;
			h2k_info("SIGHUP: reloading the config and credentials");
			if (ro.reload && ro.reload(ro.reload_arg,
			    &download_workers) < 0)
				h2k_warn("config: %s; keeping the old settings",
				    h2k_errmsg());
			credentials();
		}
		if (!stopping && (now >= t_claim || njobs < ro.workers)) {
			int r = claim_more();
			t_claim = now + 1;
			if (ro.once && r == 0 && njobs == 0 && ncleaners == 0)
				break;
		}
		if (stopping && njobs == 0 && ncleaners == 0)
			break;
		if (!ro.once && now - t_recover > 30) {
			h2k_spool_recover(rsp);
			t_recover = now;
		}

		job_timers(now, stopping, t_stop);

		if (poll_round(ino, &t_claim) < 0)
			return -1;

		if (end_finished())
			t_claim = 0;
	}
	if (ino >= 0)
		close(ino);
	/* --once answers for the jobs it ended, as wait does; a runner
	 * stopped by a signal requeued its jobs and says nothing of them */
	int failed = n_failed + rsp->recover_failed, rc = H2K_EX_OK;
	if (ro.once && !stopping && failed)
		rc = n_completed ? H2K_EX_PARTIAL : H2K_EX_FAIL;
	else if (ro.once && !stopping && claim_failed) {
		/* Jobs left pending that could not be claimed: say so. */
		h2k_warn("jobs are left pending in %s/new: they could not be "
		    "claimed (see above)", rsp->dir);
		rc = H2K_EX_IO;
	}
	h2k_info("runner %d: stopped; %d job%s completed, %d failed", (int)getpid(),
	    n_completed, n_completed == 1 ? "" : "s", failed);
	char rp[32];
	snprintf(rp, sizeof rp, "run/%d", (int)getpid());
	unlinkat(rsp->dfd, rp, 0);
	close(regfd);
	free(jobs);
	free(session_path);
	free(login_config);
	if (res) {
		res->completed = n_completed;
		res->failed = failed;
		res->stopped = stopping;
	}
	return rc;
}
