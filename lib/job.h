/*
 * job.h - h2k-job's job files and status records.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * Job files are those of hyper2kvm-providers, YAML or JSON, single
 *   {name, vm_path, output_path, options: {parallel_downloads, remove_cdrom,
 *    snapshot, shutdown, power_off, ova, overwrite, format,
 *    hyper2kvm_manifest, hyper2kvm_watch_dir}}
 * or batch {jobs: [JOB, ...]}.  Every error names FILE:LINE and the key
 * ("jobs[2].options.snapshot") with H2K_EX_USAGE.  A job that carries
 * credentials (Password, Username, credentials, ...) is refused: jobs run
 * with the runner's session; the value is never echoed.
 *
 * A status record is one JSON object per job, the shape of
 * hyper2kvm-providers' job: id, name, status, vm_path, output_path,
 * options, progress {phase, percent_complete, bytes_done, bytes_total},
 * result, error, created_at, started_at, finished_at, attempts.
 */
#ifndef H2K_JOB_H
#define H2K_JOB_H

#include <stddef.h>
#include <sys/types.h>
#include <cjson/cJSON.h>

/* Biggest job file read: a batch of thousands of VMs fits easily. */
#define H2K_JOB_MAX_FILE (4u << 20)
/* parallel_downloads bounds (h2k-fetch -j) */
#define H2K_JOB_MAX_PARALLEL 64

struct h2k_jobspec {
	char *name;
	char *vm_path;
	char *output_path;       /* absolute once h2k_job_resolve ran */
	int parallel_downloads;  /* 0: the runner's default (DownloadWorkers) */
	int remove_cdrom, snapshot, shutdown, power_off, ova;
	size_t ova_line;         /* line of an options.ova given, 0: none */
	int overwrite;           /* h2k-fetch --overwrite */
	const char *format;      /* "raw", "qcow2", "vmdk" (h2k-fetch --format),
	                          * "ova" (VMDKs in an OVA: the record's ova), NULL */
	int hyper2kvm_manifest;  /* h2k-ovf --hyper2kvm-manifest */
	char *hyper2kvm_watch_dir; /* h2k-ovf --deliver; absolute once resolved */
	char *source;            /* "FILE:LINE" of the job, for messages */
};

struct h2k_joblist {
	struct h2k_jobspec *v;
	size_t n;
};

/*
 * Parse a job file held in buf (len bytes; need not be NUL-terminated).
 * name is used in messages.  JSON (first non-blank byte '{' or '[' and
 * valid JSON) is held to JSON's types; otherwise YAML 1.1 plain scalars
 * apply.  Jobs are appended to out; on error nothing is appended.
 */
int h2k_job_parse(const char *name, const char *buf, size_t len,
    struct h2k_joblist *out);
/*
 * A job of a REST request (h2k-job serve): the spec as a job file gives
 * it, the client's id, the vcenter block's server (its username and
 * password are dropped unread), or err, why this job is refused.
 */
struct h2k_apijob {
	struct h2k_jobspec spec;
	char *id;       /* client's "id", or NULL */
	char *vcenter;  /* vcenter.server, or NULL */
	char *err;      /* NULL: a good job */
};

struct h2k_apijobs {
	struct h2k_apijob *v;
	size_t n;
};

/*
 * Parse a request body: one job, {jobs: [...]} or a list of jobs, each
 * judged as h2k_job_parse judges a job in a file, plus the product's keys
 * id, output_dir (output_path's other name) and vcenter {server,
 * username, password, insecure}.  A bad job gets err and the others go
 * on; -1 (H2K_EX_USAGE) only when the body as a whole is bad (syntax,
 * shape, size, more than max jobs).
 */
int h2k_job_parse_api(const char *name, const char *buf, size_t len,
    size_t max, struct h2k_apijobs *out);
void h2k_apijobs_free(struct h2k_apijobs *l);
/* Read path ("-" is stdin, named "stdin") and parse it. */
int h2k_job_load(const char *path, struct h2k_joblist *out);
/* Make every relative output_path and hyper2kvm_watch_dir absolute against cwd. */
int h2k_job_resolve(struct h2k_joblist *l);
void h2k_joblist_free(struct h2k_joblist *l);

/* Status values, in the order ls prints counts. */
extern const char *const h2k_job_statuses[5];
int h2k_job_status_valid(const char *s);
/* completed, failed or cancelled */
int h2k_job_status_final(const char *s);

/* A new pending record for spec under id (caller cJSON_Delete). */
cJSON *h2k_job_record_new(const struct h2k_jobspec *spec, const char *id);
/*
 * Check a record read back from the spool: an object whose id equals id
 * (when id non-NULL), with a known status and the fields the runner needs.
 * -1 with a one-line reason (H2K_EX_FAIL) when it is not.
 */
int h2k_job_record_check(const cJSON *rec, const char *id);
/* Set a string field (NULL: JSON null).  -1 on ENOMEM. */
int h2k_job_set_str(cJSON *rec, const char *key, const char *val);
int h2k_job_set_num(cJSON *rec, const char *key, double val);
/* Set status and, for final statuses, finished_at = now. */
int h2k_job_set_status(cJSON *rec, const char *status);

/*
 * The processes of a running job.  The runner records, next to runner_pid,
 * the job's process group (pgid), this boot (boot_id), its PID namespace
 * (pidns) and each stage's pid with its start time from /proc/PID/stat
 * (procs: [{pid, start}]).  Whoever signals the group from the record must
 * first prove it is still the job's with h2k_job_group: a pgid is only a
 * number, and once the job is gone it may name anybody's group.
 */
/* Biggest pid Linux hands out (PID_MAX_LIMIT). */
#define H2K_JOB_PID_MAX 4194304
#define H2K_JOB_MAX_PROCS 8
/* start: field 22 (starttime) of /proc/PID/stat; pgrp: field 5. */
int h2k_proc_stat(pid_t pid, unsigned long long *start, pid_t *pgrp);
/* The same from the text of a /proc/PID/stat (NUL-terminated). */
int h2k_proc_stat_parse(const char *buf, unsigned long long *start,
    pid_t *pgrp);
/* /proc/sys/kernel/random/boot_id into out (36 characters + NUL). */
int h2k_boot_id(char out[37]);
/* Record pgid, boot_id, pidns and procs for the n stage pids. */
int h2k_job_set_procs(cJSON *rec, pid_t pgid, const pid_t *pids, int n);
/* Remove runner_pid and the fields above (the job no longer runs). */
void h2k_job_clear_procs(cJSON *rec);
/*
 * The record's pgid if one of the recorded processes (same pid, same
 * start time, same boot and PID namespace) is still in that group; else
 * -1 with the reason (H2K_EX_STATE).  Never returns 0, 1 or a negative
 * group.
 */
pid_t h2k_job_group(const cJSON *rec);

/*
 * Whether the environment entry "NAME=value" is passed to a stage: PATH,
 * HOME, USER, LOGNAME, LANG, LANGUAGE, LC_*, TZ, TMPDIR, LOG_LEVEL,
 * XDG_STATE_HOME, XDG_CONFIG_HOME, XDG_RUNTIME_DIR, SSL_CERT_FILE,
 * SSL_CERT_DIR, LD_LIBRARY_PATH, *SAN_OPTIONS, H2K_* and the names in
 * extra (H2K_JOB_KEEPENV: separated by blanks or commas) - but never
 * GOVC_*, H2K_PASSWORD, H2K_URL (it may carry user:password) or
 * CREDENTIALS_DIRECTORY.
 */
int h2k_job_env_keep(const char *entry, const char *extra);

#endif
