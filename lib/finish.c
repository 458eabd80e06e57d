/*
 * finish.c - h2k_finish_run, the engine of h2k-ovf: its threads and queue.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * Three threads.  The reader takes each input line as soon as it arrives
 * and queues it (finish_q), listing its lease for the keeper; the keeper
 * (finish-keep.c) keeps those leases alive over its own connection; the
 * caller's thread takes the lines off the queue in order and finishes each
 * (finish-line.c), ending the export of a line that fails.  Lines must be
 * read ahead, not when their turn comes: h2k-fetch may have exited, and
 * nothing else keeps a waiting line's lease alive.  The helper threads
 * block every signal, so signals reach the caller's thread only, whose
 * handler calls h2k_finish_cancel: the line in progress stops at its next
 * check, and every line read but not finished has its export ended too
 * (lease aborted, temporary snapshot removed; not with keep_lease), or
 * its snapshot would outlive the export on a production VM.
 */
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "finish-int.h"
#include "h2k.h"
#include "vim.h"

volatile sig_atomic_t finish_signal;

struct finish_q finish_q = {
	.mu = PTHREAD_MUTEX_INITIALIZER,
	.cv = PTHREAD_COND_INITIALIZER,
};

void
h2k_finish_cancel(int sig)
{
	finish_signal = sig ? sig : SIGTERM;
}

static void
say(const struct h2k_finish_opts *o, const char *fmt, ...)
{
	va_list ap;

	if (!o->errors)
		return;
	fprintf(o->errors, "%s: ", o->progname ? o->progname : "h2k-ovf");
	va_start(ap, fmt);
	vfprintf(o->errors, fmt, ap);
	va_end(ap);
	fputc('\n', o->errors);
	fflush(o->errors);
}

void
finish_ka_drop(const char *lease)
{
	for (size_t i = 0; i < finish_q.nka; i++)
		if (!strcmp(finish_q.ka[i].lease, lease)) {
			free(finish_q.ka[i].lease);
			finish_q.ka[i] = finish_q.ka[--finish_q.nka];
			return;
		}
}

/* Called with finish_q.mu held: due at once, so the keeper takes it
 * within its 1 s tick. */
static void
ka_add(cJSON *line)
{
	cJSON *lease = cJSON_GetObjectItemCaseSensitive(line, "lease");
	const char *moref = h2k_json_str(lease, "moref");
	struct finish_alive *n;

	if (!moref)
		return;
	n = realloc(finish_q.ka, (finish_q.nka + 1) * sizeof *n);
	if (!n)
		return;
	finish_q.ka = n;
	n = &finish_q.ka[finish_q.nka];
	n->lease = strdup(moref);
	n->timeout = h2k_json_num(lease, "timeout_s", 300);
	n->next = 0;
	if (n->lease)
		finish_q.nka++;
}

static void *
reader(void *arg)
{
	struct finish_q *q = &finish_q;

	for (;;) {
		struct finish_item *it = calloc(1, sizeof *it);
		cJSON *line = NULL;
		int rc = h2k_jsonl_next(&q->in, &line);

		if (rc == 0 || !it) {
			free(it);
			cJSON_Delete(line);
			break;
		}
		it->lineno = q->in.lineno;
		if (rc < 0) {
			it->code = h2k_errcode();
			it->msg = strdup(h2k_errmsg());
		} else
			it->line = line;
		/* a read error (not a bad line) ends the input: reading again
		 * would fail again, forever (stdin a directory: EISDIR) */
		int last = rc < 0 && it->code != H2K_EX_USAGE;
		pthread_mutex_lock(&q->mu);
		if (line)
			ka_add(line);
		if (q->tail)
			q->tail->next = it;
		else
			q->head = it;
		q->tail = it;
		pthread_cond_broadcast(&q->cv);
		pthread_mutex_unlock(&q->mu);
		if (last)
			break;
	}
	pthread_mutex_lock(&q->mu);
	q->eof = 1;
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->mu);
	return arg;
}

/* Next line for the caller's thread; NULL at the end of input or on a
 * signal (checked every 200 ms: a handler cannot signal a condition). */
static struct finish_item *
next_item(void)
{
	struct finish_q *q = &finish_q;
	struct finish_item *it = NULL;

	pthread_mutex_lock(&q->mu);
	while (!q->head && !q->eof && !finish_signal)
		h2k_cond_wait(&q->cv, &q->mu, 0.2);
	if (q->head && !finish_signal) {
		it = q->head;
		q->head = it->next;
		if (!q->head)
			q->tail = NULL;
	}
	pthread_mutex_unlock(&q->mu);
	return it;
}

static void
item_done(struct finish_item *it)
{
	const char *lease = it->line ? h2k_json_str(
	    cJSON_GetObjectItemCaseSensitive(it->line, "lease"), "moref") : NULL;

	if (lease) {
		pthread_mutex_lock(&finish_q.mu);
		finish_ka_drop(lease);
		pthread_mutex_unlock(&finish_q.mu);
	}
	cJSON_Delete(it->line);
	free(it->msg);
	free(it);
}

int
h2k_finish_run(const struct h2k_finish_opts *o, FILE *in, const char *inname,
    FILE *out)
{
	struct finish_q *q = &finish_q;
	struct h2k_vim *v, *kv;
	struct finish_item *it;
	sigset_t all, old;
	pthread_t rt, kt;
	int ok = 0, failed = 0, first = 0, have_kt;
	int said_cancel = 0;  /* a VM's "interrupted" line is out: one is enough */
	/* asking for the manifest's fix stages or output asks for it */
	struct h2k_handoff h = { .manifest = o->hyper2kvm_manifest ||
	    o->hyper2kvm_fix || o->hyper2kvm_output,
	    .ova = o->ova, .mo = { .fix = o->hyper2kvm_fix,
	    .outdir = o->hyper2kvm_output }, .deliver_fd = -1,
	    .deliver_dir = o->deliver, .cancel = &finish_signal };

	/* opened once: a directory swapped for a symlink later is not followed */
	if (o->deliver && (h.deliver_fd = h2k_deliver_open(o->deliver)) < 0) {
		say(o, "%s", h2k_errmsg());
		return h2k_errcode();
	}
	v = h2k_vim_from_session(o->session);
	/* A second connection: the keepalive must not wait for the main one. */
	kv = v ? h2k_vim_from_session(o->session) : NULL;
	if (!v) {
		say(o, "%s", h2k_errmsg());
		if (h.deliver_fd >= 0)
			close(h.deliver_fd);
		return h2k_errcode();
	}
	if (!kv)
		h2k_warn("no keepalive connection: %s", h2k_errmsg());

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	h2k_jsonl_init(&q->in, in, inname);
	if (pthread_create(&rt, NULL, reader, NULL) != 0) {
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		h2k_vim_free(kv);
		h2k_vim_free(v);
		if (h.deliver_fd >= 0)
			close(h.deliver_fd);
		say(o, "cannot start a thread");
		return H2K_EX_FAIL;
	}
	have_kt = kv && pthread_create(&kt, NULL, finish_keep_main, kv) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);

	while ((it = next_item())) {
		int ended = 0;
		if (!it->line) {
			say(o, "%s", it->msg ? it->msg : "bad line");
			if (!failed++)
				first = it->code;
			item_done(it);
			continue;
		}
		if (finish_line(v, it->line, o, &h, out, &ended) < 0) {
			if (!o->keep_lease && h2k_errcode() != H2K_EX_USAGE)
				finish_end_export(v, it->line, ended, finish_signal ?
				    "export cancelled by h2k-ovf" :
				    "export failed in h2k-ovf");
			/* after a signal, whatever broke (a write cut short by
			 * EINTR, say) is the signal's doing: its line says so */
			int cancel = h2k_errcode() == H2K_EX_CANCEL;
			if (!finish_signal || cancel)
				say(o, "%s:%ld: %s", inname, it->lineno, h2k_errmsg());
			said_cancel |= cancel;
			if (!failed++)
				first = h2k_errcode();
		} else
			ok++;
		item_done(it);
	}
	pthread_mutex_lock(&q->mu);
	q->stop = 1;
	pthread_cond_broadcast(&q->cv);
	while (finish_signal && (it = q->head)) {
		q->head = it->next;
		/* the reader may add a line while this one is ended: it must
		 * not be linked behind `it` (freed below, its next already
		 * taken) but become the head, ended in its turn */
		if (!q->head)
			q->tail = NULL;
		pthread_mutex_unlock(&q->mu);
		if (it->line && !o->keep_lease) {
			finish_end_export(v, it->line, 0, "export cancelled by h2k-ovf");
			h2k_info("%s:%ld: export ended unfinished", inname, it->lineno);
		}
		item_done(it);
		pthread_mutex_lock(&q->mu);
	}
	q->tail = q->head;
	pthread_mutex_unlock(&q->mu);
	if (have_kt)
		pthread_join(kt, NULL);
	h2k_vim_free(kv);
	h2k_vim_free(v);
	if (h.deliver_fd >= 0)
		close(h.deliver_fd);
	if (finish_signal) {
		/* the reader may sit in read(2): the process exit ends it */
		if (!said_cancel)
			say(o, "interrupted by signal %d", (int)finish_signal);
		return H2K_EX_CANCEL;
	}
	/* Input ended: the reader is done. */
	pthread_join(rt, NULL);
	h2k_jsonl_free(&q->in);
	for (size_t i = 0; i < q->nka; i++)
		free(q->ka[i].lease);
	free(q->ka);
	q->ka = NULL;
	q->nka = 0;
	if (!failed)
		return 0;
	return ok ? H2K_EX_PARTIAL : first;
}
