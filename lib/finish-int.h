/*
 * finish-int.h - what the threads of the h2k-ovf engine share.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * Private to lib/finish*.c.  The engine is split by role:
 *   finish.c        the run: the caller's thread takes lines off the queue
 *                   and finishes them; the reader thread fills the queue
 *   finish-line.c   one line's finish (checks, descriptor, manifest, OVA,
 *                   lease completion) and the end of a failed export
 *   finish-keep.c   the keeper thread: the leases of queued lines kept alive
 * finish_q is guarded by finish_q.mu.
 */
#ifndef H2K_FINISH_INT_H
#define H2K_FINISH_INT_H

#include <pthread.h>
#include <signal.h>

#include <cjson/cJSON.h>

#include "finish.h"
#include "h2kvm.h"
#include "jsonl.h"
#include "vim.h"

/* set by h2k_finish_cancel: the signal's number */
extern volatile sig_atomic_t finish_signal;

struct finish_item {
	cJSON *line;            /* NULL: a bad line, msg and code say why */
	long lineno;
	int code;
	char *msg;
	struct finish_item *next;
};

/* a lease read and not yet finished */
struct finish_alive {
	char *lease;
	double timeout;         /* lease.timeout_s */
	double next;            /* monotonic time of its next keepalive */
};

struct finish_q {
	pthread_mutex_t mu;
	pthread_cond_t cv;      /* a line arrived, input ended, or stop */
	struct finish_item *head, *tail;
	int eof, stop;
	struct finish_alive *ka;
	size_t nka;
	struct h2k_jsonl in;
};
extern struct finish_q finish_q;

/* finish.c; caller holds finish_q.mu */
void finish_ka_drop(const char *lease);

/* finish-line.c: what is still due after a failed line */
#define FINISH_ENDED_LEASE 1    /* the lease needs nothing more */
#define FINISH_ENDED_ALL 2      /* nor the snapshot */
int finish_line(struct h2k_vim *v, cJSON *line, const struct h2k_finish_opts *o,
    const struct h2k_handoff *h, FILE *out, int *ended);
void finish_end_export(struct h2k_vim *v, cJSON *line, int ended, const char *why);

/* finish-keep.c: the keeper thread, arg its own connection */
void *finish_keep_main(void *arg);

#endif
