/*
 * job.h - h2k-job's job files and status records.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * Job files are those of hyper2kvm-providers, YAML or JSON, single
 *   {name, vm_path, output_path, options: {parallel_downloads, remove_cdrom,
 *    snapshot, shutdown, power_off, ova, overwrite}}
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
	int overwrite;           /* h2k-fetch --overwrite */
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
/* Read path ("-" is stdin, named "stdin") and parse it. */
int h2k_job_load(const char *path, struct h2k_joblist *out);
/* Make every relative output_path absolute against cwd. */
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

#endif
