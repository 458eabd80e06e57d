/*
 * fuzz-record.c - libFuzzer harness for job status records read back from
 * the spool (h2k_job_record_check), the /proc/PID/stat parser and the
 * stages' environment allow-list.
 * needs: lib/job.c
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * A record that passes the check is one every reader may act on: status
 * known, output_path absolute, attempts a whole count, and the process
 * fields that cancel turns into kill(2) - pgid, runner_pid - whole numbers
 * from 2 to H2K_JOB_PID_MAX when present.  h2k_job_group on it returns
 * -1 or that pgid, never 0, 1 or a negative group.  The stat parser gives
 * a pgrp from 1 to H2K_JOB_PID_MAX or refuses.  The allow-list never
 * keeps GOVC_*, H2K_PASSWORD, H2K_URL or CREDENTIALS_DIRECTORY.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h2k.h"
#include "job.h"

static void
check_pid(const cJSON *rec, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, key);
	double d;

	if (!v)
		return;
	d = cJSON_GetNumberValue(v);
	if (!cJSON_IsNumber(v) || !(d >= 2 && d <= H2K_JOB_PID_MAX) ||
	    d != (double)(long)d) {
		fprintf(stderr, "fuzz-record: accepted %s %g\n", key, d);
		abort();
	}
}

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	char *s = malloc(size + 1);
	cJSON *rec;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	h2k_log_setlevel(H2K_LOG_ERROR);

	if ((rec = cJSON_ParseWithLength((const char *)data, size))) {
		if (h2k_job_record_check(rec, NULL) == 0) {
			const cJSON *a = cJSON_GetObjectItemCaseSensitive(rec,
			    "attempts");
			const char *op = cJSON_GetStringValue(
			    cJSON_GetObjectItemCaseSensitive(rec, "output_path"));
			if (!h2k_job_status_valid(cJSON_GetStringValue(
			    cJSON_GetObjectItemCaseSensitive(rec, "status"))) ||
			    !op || op[0] != '/' || !cJSON_IsNumber(a) ||
			    a->valuedouble < 0 || a->valuedouble > 1e6 ||
			    a->valuedouble != (double)(long)a->valuedouble) {
				fprintf(stderr, "fuzz-record: accepted a bad record\n");
				abort();
			}
			check_pid(rec, "pgid");
			check_pid(rec, "runner_pid");
			pid_t g = h2k_job_group(rec);
			if (g != -1 && (g < 2 || g != (pid_t)cJSON_GetNumberValue(
			    cJSON_GetObjectItemCaseSensitive(rec, "pgid")))) {
				fprintf(stderr, "fuzz-record: group %d\n", (int)g);
				abort();
			}
		} else if (strchr(h2k_errmsg(), '\n')) {
			fprintf(stderr, "fuzz-record: multi-line refusal\n");
			abort();
		}
		cJSON_Delete(rec);
	}

	unsigned long long start;
	pid_t pg;
	if (h2k_proc_stat_parse(s, &start, &pg) == 0 &&
	    (pg < 1 || pg > H2K_JOB_PID_MAX)) {
		fprintf(stderr, "fuzz-record: stat pgrp %d\n", (int)pg);
		abort();
	}

	/* first line: an environment entry; the rest: H2K_JOB_KEEPENV */
	char *nl = strchr(s, '\n');
	if (nl)
		*nl = '\0';
	if (h2k_job_env_keep(s, nl ? nl + 1 : NULL) &&
	    (!strncmp(s, "GOVC_", 5) || !strncmp(s, "H2K_PASSWORD=", 13) ||
	    !strncmp(s, "H2K_URL=", 8) ||
	    !strncmp(s, "CREDENTIALS_DIRECTORY=", 22))) {
		fprintf(stderr, "fuzz-record: kept %s\n", s);
		abort();
	}
	free(s);
	return 0;
}
