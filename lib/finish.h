/*
 * finish.h - the engine behind h2k-ovf: finish the exports h2k-fetch
 * downloaded (OVF descriptor, manifest, optional OVA), then complete each
 * lease and remove its temporary snapshot.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * The steps of one line are described at the top of finish-line.c, the
 * threads (reader, keeper, the caller's) at the top of finish.c.
 */
#ifndef H2K_FINISH_H
#define H2K_FINISH_H

#include <signal.h>
#include <stdio.h>

#include "session.h"

struct h2k_finish_opts {
	int ova;                /* also pack NAME.ova */
	int keep_files;         /* with ova: keep the disks packed in it */
	int remove_cdrom;       /* drop CD-ROM/DVD drives from the descriptor */
	int keep_lease;         /* on failure leave the lease and snapshot */
	int verify;             /* read every file again for its SHA-256 */
	/* the hand-off to hyper2kvm (h2kvm.h) */
	int hyper2kvm_manifest; /* write NAME.hyper2kvm.json */
	int hyper2kvm_fix;      /* its pipeline runs inspect and fix too */
	const char *hyper2kvm_output; /* its output.directory; NULL: the VM's folder */
	const char *deliver;    /* the watched directory, or NULL */
	/* the session: the main connection and the keeper's are made from it */
	const struct h2k_session *session;
	const char *progname;   /* prefix of error lines */
	/* where the error lines go, each whole ("PROG: stdin:N: why\n");
	 * NULL: not written (the exit status still tells) */
	FILE *errors;
};

/*
 * Run over the h2k-fetch lines of `in` (named inname in messages), writing
 * each finished line to out.  Returns the exit status (enum h2k_exit): 0
 * when every line was finished; H2K_EX_PARTIAL when some failed and others
 * succeeded; else the class of the first failure; H2K_EX_CANCEL after
 * h2k_finish_cancel.  One run per process: after a cancel the reader
 * thread may still sit in a read of `in`, which the process exit ends.
 */
int h2k_finish_run(const struct h2k_finish_opts *o, FILE *in, const char *inname,
    FILE *out);

/* Async-signal-safe: the run stops after the step in progress (sig names
 * the signal in the last message). */
void h2k_finish_cancel(int sig);

#endif
