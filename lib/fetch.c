/*
 * fetch.c - the h2k-fetch download engine: the run.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * Threads.  A small pool of -j N workers, each driving one curl easy handle
 * with curl_easy_perform(), rather than one thread driving a curl multi:
 * every disk costs disk writes, fsyncs and, on resume, a rehash of the kept
 * prefix, all of which block; in a single multi loop one disk's fsync or
 * rehash would stall every other transfer past its low-speed limit.  With
 * a worker per transfer those waits stay private, and the retry/backoff
 * logic is straight-line code.  Each worker keeps its easy handle (and so
 * its connection) from one file to the next, so connections to a host are
 * reused.  Memory is curl's receive buffer plus one rehash buffer per
 * worker: nothing grows with the disk.  Beside the workers: the main thread
 * reads the input lines and queues files (downloads start with the first
 * line, while h2k-lease is still preparing the next VM), one thread draws
 * progress, and one "lease thread" does all the SOAP work.
 *
 * The folder.  Each VM writes in a folder of its own, claimed and locked
 * for the whole run (vmdir.h: the naming rule, the .h2k-vm marker, the
 * lock): two VMs of one name never share a folder or a .part.
 *
 * This file holds the run (h2k_fetch_run: the threads' start and end, the
 * exit status), the structs every thread shares (fetch-int.h) and their
 * lifecycle, the work queue, the VM bookkeeping the workers and the lease
 * thread report to, and the progress thread.  The roles live beside it:
 * fetch-input.c (input lines -> work), fetch-worker.c (downloads and the
 * resume rule), fetch-hash.c (hashers), fetch-lease.c (the lease keeper).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fetch-int.h"
#include "vim.h"

/* set by the signal handler, read by every thread: lock-free atomic */
atomic_int fetch_cancelled;
static int g_devnull = -1;

void
h2k_fetch_cancel(void)
{
	int e = errno;

	fetch_cancelled = 1;
	/* The main thread may sit in a read of stdin: give it an EOF. */
	if (g_devnull >= 0)
		(void)dup2(g_devnull, STDIN_FILENO);
	errno = e;
}

/* --- messages ------------------------------------------------------------ */

void
fetch_msg(struct run *r, const char *fmt, ...)
{
	char raw[2048], line[2048];
	va_list ap;
	int n = snprintf(line, sizeof line, "%s: ", r->o->progname ? r->o->progname : "h2k-fetch");

	va_start(ap, fmt);
	vsnprintf(raw, sizeof raw, fmt, ap);
	va_end(ap);
	/* one line, nothing a terminal obeys: server strings (h2k.h) */
	h2k_ttystr(raw, line + n, sizeof line - (size_t)n - 1);
	strcat(line, "\n");
	h2k_progress_msg(r->prog, line);
}

/* --- small helpers ------------------------------------------------------- */

int
fetch_has_ctl(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

/* "host:port" of a URL (port defaulted from the scheme), or NULL. */
char *
fetch_url_hostport(const char *url)
{
	CURLU *u = curl_url();
	char *host = NULL, *port = NULL, *out = NULL;

	if (!u)
		return NULL;
	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK)
		out = h2k_asprintf("%s:%s", host, port);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return out;
}

/* --- VM bookkeeping ------------------------------------------------------- */

void
fetch_vm_fail(struct vm *vm, int code, const char *why)
{
	struct run *r = vm->run;

	/* caller holds r->mu */
	if (vm->failed)
		return;
	vm->failed = 1;
	vm->errcode = code;
	vm->errmsg = h2k_strdup(why);
	/*
	 * A 404 on a leased URL usually means the lease died, and the lease
	 * thread, which ends the lease of a failed VM, learns why: let it
	 * print the one line for this VM.
	 */
	if (code == H2K_EX_NOTFOUND && vm->lease && r->lease_started && vm->errmsg)
		vm->deferred = 1;
	else
		fetch_msg(r, "%s", why);
}

void
fetch_vm_free(struct vm *vm)
{
	for (int i = 0; i < vm->nfiles; i++) {
		struct file *f = &vm->files[i];
		free(f->key);
		free(f->target_id);
		free(f->url);
		free(f->pin);
		free(f->nocookie);
		free(f->name);
		free(f->part);
		free(f->meta);
		free(f->ident);
	}
	free(vm->files);
	vm->dir = NULL;         /* vm->vd's, freed below */
	h2k_vmdir_close(&vm->vd);
	h2k_pathset_free(&vm->names);
	cJSON_Delete(vm->line);
	free(vm->name);
	free(vm->dir);
	free(vm->lease);
	free(vm->snapshot);
	free(vm->errmsg);
	free(vm);
}

/* All files of vm settled (caller holds r->mu): report, or hand to abort. */
void
fetch_vm_settled(struct vm *vm)
{
	struct run *r = vm->run;

	if (!vm->failed) {
		cJSON *o = cJSON_Duplicate(vm->line, 1), *files;
		int wrc = -1;
		/* h2k-ovf takes the folder's lock shared to add the .ovf/.mf:
		 * let it in, and keep everyone else out, before it reads this line */
		if (h2k_vmdir_share(&vm->vd) < 0 && !r->out_failed)
			fetch_msg(r, "%s", h2k_errmsg());
		if (o) {
			cJSON_DeleteItemFromObjectCaseSensitive(o, "dir");
			cJSON_DeleteItemFromObjectCaseSensitive(o, "files");
			cJSON_AddStringToObject(o, "dir", vm->dir);
			files = cJSON_AddArrayToObject(o, "files");
			for (int i = 0; files && i < vm->nfiles; i++) {
				struct file *f = &vm->files[i];
				if (f->state != FS_OK)
					continue;
				cJSON *e = cJSON_CreateObject();
				char *p = h2k_asprintf("%s/%s", vm->dir, f->name);
				if (!e || !p) {
					cJSON_Delete(e);
					free(p);
					continue;
				}
				cJSON_AddStringToObject(e, "key", f->key);
				cJSON_AddStringToObject(e, "target_id", f->target_id);
				cJSON_AddBoolToObject(e, "disk", f->disk);
				cJSON_AddStringToObject(e, "path", p);
				cJSON_AddNumberToObject(e, "size", (double)f->bytes);
				cJSON_AddStringToObject(e, "sha256", f->sha256);
				cJSON_AddItemToArray(files, e);
				free(p);
			}
			wrc = h2k_json_write(r->out, o);
			cJSON_Delete(o);
		}
		if (wrc < 0) {
			if (!r->out_failed)
				fetch_msg(r, "%s", h2k_errmsg());
			r->out_failed = 1;
			vm->failed = 1;
			vm->errcode = H2K_EX_IO;
		} else {
			vm->ok = 1;
			r->good_vms++;
			if (r->o->progress == H2K_PROGRESS_BAR) {
				/* the bars vanish: leave a line that says what was done */
				long long sum = 0;
				char hb[32];
				for (int i = 0; i < vm->nfiles; i++)
					sum += vm->files[i].bytes;
				double t = h2k_monotime() - vm->started;
				fetch_msg(r, "%s: %d file%s, %s in %.1f s", vm->name, vm->nfiles,
				    vm->nfiles == 1 ? "" : "s", h2k_human_bytes((double)sum, hb, sizeof hb),
				    t);
			} else
				h2k_info("%s: complete in %s", vm->name, vm->dir);
		}
	}
	if (vm->failed) {
		r->failed_vms++;
		if (!r->first_code) {
			r->first_code = vm->errcode;
			r->first_vm = vm;
		}
	}
	/* a failed VM with a lease still needs its lease ended by the lease thread */
	if (vm->failed && vm->lease && r->lease_started) {
		vm->vstate = V_FAILED_PENDING;
		pthread_cond_broadcast(&r->lease_cv);
	} else
		vm->vstate = V_DONE;
	pthread_cond_broadcast(&r->cv);
}

int
fetch_enqueue(struct run *r, struct file *f)
{
	/* caller holds r->mu */
	if (r->qlen == r->qcap) {
		size_t nc = r->qcap ? r->qcap * 2 : 64;
		struct file **nq = h2k_malloc(nc * sizeof *nq);
		if (!nq)
			return -1;
		for (size_t i = 0; i < r->qlen; i++)
			nq[i] = r->queue[(r->qhead + i) % r->qcap];
		free(r->queue);
		r->queue = nq;
		r->qhead = 0;
		r->qcap = nc;
	}
	r->queue[(r->qhead + r->qlen) % r->qcap] = f;
	r->qlen++;
	pthread_cond_broadcast(&r->cv);
	return 0;
}

/* --- the run ---------------------------------------------------------------- */

static void *
progress_main(void *arg)
{
	struct run *r = arg;

	pthread_mutex_lock(&r->mu);
	while (!r->stop) {
		struct timespec ts;
		pthread_mutex_unlock(&r->mu);
		h2k_progress_tick(r->prog);
		pthread_mutex_lock(&r->mu);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&r->cv, &r->mu, &ts);
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

static int
all_done(struct run *r)
{
	for (size_t i = 0; i < r->nvms; i++)
		if (r->vms[i]->vstate != V_DONE)
			return 0;
	return 1;
}

int
h2k_fetch_run(const struct h2k_fetch_opts *o, FILE *in, const char *inname, FILE *out)
{
	struct run r;
	struct worker *ws = NULL;
	pthread_t *wt = NULL, pt;
	int nw = o->jobs > 0 ? o->jobs : 4, started = 0, prog_started = 0, code;
	struct h2k_jsonl rd;
	sigset_t all, old;

	memset(&r, 0, sizeof r);
	r.o = o;
	r.out = out;
	pthread_mutex_init(&r.mu, NULL);
	pthread_cond_init(&r.cv, NULL);
	pthread_cond_init(&r.lease_cv, NULL);
	if (g_devnull < 0)
		g_devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);

	if (h2k_http_global_init() < 0)
		return h2k_errcode();
	if (h2k_mkdirs(o->outdir, 0700) < 0) {
		fetch_msg(&r, "%s", h2k_errmsg());
		return h2k_errcode();
	}
	if (!(r.outabs = realpath(o->outdir, NULL))) {
		fetch_msg(&r, "%s: %s", o->outdir, strerror(errno));
		return H2K_EX_IO;
	}
	if (o->session && o->session->cookie) {
		const char *c = o->session->cookie;
		if (fetch_has_ctl(c) || strchr(c, ';')) {
			fetch_msg(&r, "session cookie has characters a cookie cannot have");
			free(r.outabs);
			return H2K_EX_SESSION;
		}
		r.cookie = strncmp(c, "vmware_soap_session=", 20) == 0 ?
		    h2k_strdup(c) : h2k_asprintf("vmware_soap_session=%s", c);
		if (o->session->url)
			r.session_host = fetch_url_hostport(o->session->url);
	}
	r.prog = h2k_progress_new(o->progress_fd, o->progress);

	/* only the main thread takes signals: its read of stdin is interrupted */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	if (!(ws = h2k_calloc((size_t)nw, sizeof *ws)) || !(wt = h2k_calloc((size_t)nw, sizeof *wt)))
		goto early;
	for (int i = 0; i < nw; i++) {
		ws[i].run = &r;
		if (!(ws[i].h = curl_easy_init()) || !(ws[i].rbuf = h2k_malloc(REHASH_BUF)) ||
		    !(ws[i].sha = EVP_MD_CTX_new()))
			goto early;
	}
	for (int i = 0; i < nw; i++, started++)
		if (pthread_create(&wt[i], NULL, fetch_worker_main, &ws[i]) != 0)
			break;
	if (pthread_create(&r.lease_thr, NULL, fetch_lease_main, &r) == 0)
		r.lease_started = 1;
	if (o->progress != H2K_PROGRESS_NONE && pthread_create(&pt, NULL, progress_main, &r) == 0)
		prog_started = 1;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (started == 0 || !r.lease_started) {
		fetch_msg(&r, "cannot start threads");
		fetch_cancelled = 1;
	}

	h2k_jsonl_init(&rd, in, inname);
	while (!fetch_cancelled) {
		cJSON *obj = NULL;
		h2k_clearerr();
		int rc = h2k_jsonl_next(&rd, &obj);
		if (fetch_cancelled) {
			cJSON_Delete(obj);
			break;
		}
		if (rc == 0)
			break;
		if (rc < 0) {
			fetch_msg(&r, "%s", h2k_errmsg());
			if (h2k_errcode() != H2K_EX_USAGE) {
				if (!r.first_code)
					r.first_code = h2k_errcode();
				r.bad_lines++;
				break;  /* read error: nothing more will come */
			}
			r.bad_lines++;
			continue;
		}
		if (fetch_add_line(&r, obj, inname, rd.lineno) < 0)
			cJSON_Delete(obj);
	}
	h2k_jsonl_free(&rd);

	/* wait for every VM; on cancel the workers notice within a second */
	pthread_mutex_lock(&r.mu);
	r.eof = 1;
	while (!all_done(&r) || r.qlen > 0) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&r.cv, &r.mu, &ts);
	}
	r.stop = 1;
	r.lease_stop = 1;
	pthread_cond_broadcast(&r.cv);
	pthread_cond_broadcast(&r.lease_cv);
	pthread_mutex_unlock(&r.mu);

early:
	pthread_mutex_lock(&r.mu);
	r.stop = 1;
	r.lease_stop = 1;
	pthread_cond_broadcast(&r.cv);
	pthread_cond_broadcast(&r.lease_cv);
	pthread_mutex_unlock(&r.mu);
	for (int i = 0; i < started; i++)
		pthread_join(wt[i], NULL);
	if (r.lease_started)
		pthread_join(r.lease_thr, NULL);
	if (prog_started)
		pthread_join(pt, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	h2k_progress_free(r.prog);
	r.prog = NULL;
	for (int i = 0; ws && i < nw; i++) {
		if (ws[i].h)
			curl_easy_cleanup(ws[i].h);
		free(ws[i].rbuf);
		EVP_MD_CTX_free(ws[i].sha);
	}
	free(ws);
	free(wt);

	if (fetch_cancelled)
		code = H2K_EX_CANCEL;
	else if (r.failed_vms == 0 && r.bad_lines == 0)
		code = started ? H2K_EX_OK : H2K_EX_FAIL;
	else if (r.good_vms > 0)
		code = H2K_EX_PARTIAL;
	else if (r.failed_vms == 0)
		code = r.first_code ? r.first_code : H2K_EX_USAGE;
	else
		code = r.first_code ? r.first_code : H2K_EX_FAIL;
	for (size_t i = 0; i < r.nvms; i++)
		fetch_vm_free(r.vms[i]);
	free(r.vms);
	free(r.queue);
	free(r.outabs);
	if (r.cookie)
		h2k_freesecret(r.cookie);
	free(r.session_host);
	h2k_vim_free(r.pv);
	free(r.pv_err);
	pthread_mutex_destroy(&r.mu);
	pthread_cond_destroy(&r.cv);
	pthread_cond_destroy(&r.lease_cv);
	return code;
}
