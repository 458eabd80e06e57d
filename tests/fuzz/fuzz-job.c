/*
 * fuzz-job.c - libFuzzer harness for the job file parser (YAML or JSON,
 * single or batch) that h2k-job submit runs on user files.
 * needs: lib/job.c
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * On refusal: a one-line message naming the file (H2K_EX_USAGE or, for
 * memory, H2K_EX_FAIL), and nothing appended.  On acceptance: every job
 * has a name, a vm_path and an output_path, parallel_downloads within
 * 0..H2K_JOB_MAX_PARALLEL, flags 0 or 1, and no job carries a credential.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h2k.h"
#include "job.h"

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct h2k_joblist l = {0};

	h2k_log_setlevel(H2K_LOG_ERROR);
	if (h2k_job_parse("fuzz.yaml", (const char *)data, size, &l) < 0) {
		const char *m = h2k_errmsg();
		if (l.n || strchr(m, '\n') || !strstr(m, "fuzz.yaml")) {
			fprintf(stderr, "fuzz-job: bad refusal (%zu jobs kept): %s\n", l.n, m);
			abort();
		}
		h2k_joblist_free(&l);
		return 0;
	}
	for (size_t i = 0; i < l.n; i++) {
		const struct h2k_jobspec *j = &l.v[i];
		if (!j->name || !*j->name || !j->vm_path || !*j->vm_path ||
		    !j->output_path || !*j->output_path) {
			fprintf(stderr, "fuzz-job: job %zu accepted without name/vm_path/output_path\n", i);
			abort();
		}
		if (j->parallel_downloads < 0 || j->parallel_downloads > H2K_JOB_MAX_PARALLEL ||
		    (unsigned)j->remove_cdrom > 1 || (unsigned)j->snapshot > 1 ||
		    (unsigned)j->shutdown > 1 || (unsigned)j->power_off > 1 ||
		    (unsigned)j->ova > 1) {
			fprintf(stderr, "fuzz-job: job %zu has an out-of-range option\n", i);
			abort();
		}
	}
	h2k_joblist_free(&l);
	return 0;
}
