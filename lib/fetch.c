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

void
h2k_fetch_cancel(void)
{
	/* the reader checks it after every line, and after a read the
	 * signal interrupted: the caller owns its input and makes that read
	 * return (h2k-fetch gives its stdin an EOF) */
	fetch_cancelled = 1;
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
	/* with bars or JSON progress on the same terminal, through the
	 * display: it clears the bars first and keeps the lines whole */
	if (r->prog && r->o->progress != H2K_PROGRESS_NONE)
		h2k_progress_msg(r->prog, line);
	else if (r->o->errors) {
		fputs(line, r->o->errors);
		fflush(r->o->errors);
	}
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
				if (f->disk) {
					/* the bytes as written: h2k-ovf and hyper2kvm read them */
					/* saved as served: a sparse VMDK says vmdk, plain
					 * bytes are a raw disk whatever the name */
					cJSON_AddStringToObject(e, "format", f->conv != H2K_FMT_VMDK ?
					    h2k_disk_format_name(f->conv) : f->subformat ? "vmdk" : "raw");
					if (f->subformat)
						cJSON_AddStringToObject(e, "vmdk_subformat", f->subformat);
					if (f->capacity >= 0)
						cJSON_AddNumberToObject(e, "capacity_bytes", (double)f->capacity);
				}
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
		pthread_mutex_unlock(&r->mu);
		h2k_progress_tick(r->prog);
		pthread_mutex_lock(&r->mu);
		h2k_cond_wait(&r->cv, &r->mu, 0.1);
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

/* The threads of a run beside the main one. */
struct pool {
	struct worker *ws;
	pthread_t *wt, pt;
	int nw, started, prog_started;
};

/* The run's shared state, before any thread.  -1: *code says why (the
 * message printed). */
static int
run_init(struct run *r, const struct h2k_fetch_opts *o, FILE *out, int *code)
{
	memset(r, 0, sizeof *r);
	r->o = o;
	r->out = out;
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	pthread_cond_init(&r->lease_cv, NULL);

	if (h2k_http_global_init() < 0) {
		*code = h2k_errcode();
		return -1;
	}
	if (h2k_mkdirs(o->outdir, 0700) < 0) {
		fetch_msg(r, "%s", h2k_errmsg());
		*code = h2k_errcode();
		return -1;
	}
	if (!(r->outabs = realpath(o->outdir, NULL))) {
		fetch_msg(r, "%s: %s", o->outdir, strerror(errno));
		*code = H2K_EX_IO;
		return -1;
	}
	/* it goes into every line as "dir": the next stage would refuse it */
	if (h2k_utf8_bad(r->outabs, strlen(r->outabs))) {
		fetch_msg(r, "%s: not valid UTF-8, which the JSON lines cannot carry",
		    r->outabs);
		free(r->outabs);
		r->outabs = NULL;
		*code = H2K_EX_USAGE;
		return -1;
	}
	if (o->session && o->session->cookie) {
		const char *c = o->session->cookie;
		if (fetch_has_ctl(c) || strchr(c, ';')) {
			fetch_msg(r, "session cookie has characters a cookie cannot have");
			free(r->outabs);
			*code = H2K_EX_SESSION;
			return -1;
		}
		r->cookie = strncmp(c, "vmware_soap_session=", 20) == 0 ?
		    h2k_strdup(c) : h2k_asprintf("vmware_soap_session=%s", c);
		if (o->session->url)
			r->session_host = fetch_url_hostport(o->session->url);
	}
	r->prog = h2k_progress_new(o->progress_fd, o->progress);
	return 0;
}

/*
 * Start the workers, the lease thread and the progress thread.  Only the
 * main thread takes signals (its read of the input is interrupted): they
 * are blocked while the threads are made, and *old restored on success.
 * -1: no memory for the pool, nothing started, signals still blocked.
 */
static int
run_start(struct run *r, struct pool *p, sigset_t *old)
{
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, old);
	if (!(p->ws = h2k_calloc((size_t)p->nw, sizeof *p->ws)) ||
	    !(p->wt = h2k_calloc((size_t)p->nw, sizeof *p->wt)))
		return -1;
	for (int i = 0; i < p->nw; i++) {
		p->ws[i].run = r;
		if (!(p->ws[i].h = curl_easy_init()) || !(p->ws[i].rbuf = h2k_malloc(REHASH_BUF)) ||
		    !(p->ws[i].sha = EVP_MD_CTX_new()))
			return -1;
	}
	for (int i = 0; i < p->nw; i++, p->started++)
		if (pthread_create(&p->wt[i], NULL, fetch_worker_main, &p->ws[i]) != 0)
			break;
	if (pthread_create(&r->lease_thr, NULL, fetch_lease_main, r) == 0)
		r->lease_started = 1;
	if (r->o->progress != H2K_PROGRESS_NONE &&
	    pthread_create(&p->pt, NULL, progress_main, r) == 0)
		p->prog_started = 1;
	pthread_sigmask(SIG_SETMASK, old, NULL);
	return 0;
}

/* The main thread's job: every input line, until EOF, a read error or a
 * cancel. */
static void
read_input(struct run *r, FILE *in, const char *inname)
{
	struct h2k_jsonl rd;

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
			fetch_msg(r, "%s", h2k_errmsg());
			if (h2k_errcode() != H2K_EX_USAGE) {
				if (!r->first_code)
					r->first_code = h2k_errcode();
				r->bad_lines++;
				break;  /* read error: nothing more will come */
			}
			r->bad_lines++;
			continue;
		}
		if (fetch_add_line(r, obj, inname, rd.lineno) < 0)
			cJSON_Delete(obj);
	}
	h2k_jsonl_free(&rd);
}

/* Wait for every VM; on cancel the workers notice within a second. */
static void
wait_all(struct run *r)
{
	pthread_mutex_lock(&r->mu);
	r->eof = 1;
	while (!all_done(r) || r->qlen > 0)
		h2k_cond_wait(&r->cv, &r->mu, 1);
	r->stop = 1;
	r->lease_stop = 1;
	pthread_cond_broadcast(&r->cv);
	pthread_cond_broadcast(&r->lease_cv);
	pthread_mutex_unlock(&r->mu);
}

/* Stop and join every thread, restore the signal mask, free the pool. */
static void
run_stop(struct run *r, struct pool *p, const sigset_t *old)
{
	pthread_mutex_lock(&r->mu);
	r->stop = 1;
	r->lease_stop = 1;
	pthread_cond_broadcast(&r->cv);
	pthread_cond_broadcast(&r->lease_cv);
	pthread_mutex_unlock(&r->mu);
	for (int i = 0; i < p->started; i++)
		pthread_join(p->wt[i], NULL);
	if (r->lease_started)
		pthread_join(r->lease_thr, NULL);
	if (p->prog_started)
		pthread_join(p->pt, NULL);
	pthread_sigmask(SIG_SETMASK, old, NULL);
	h2k_progress_free(r->prog);
	r->prog = NULL;
	for (int i = 0; p->ws && i < p->nw; i++) {
		if (p->ws[i].h)
			curl_easy_cleanup(p->ws[i].h);
		free(p->ws[i].rbuf);
		EVP_MD_CTX_free(p->ws[i].sha);
	}
	free(p->ws);
	free(p->wt);
}

/* The exit status: see h2k_fetch_run in fetch.h. */
static int
run_code(const struct run *r, int started)
{
	if (fetch_cancelled)
		return H2K_EX_CANCEL;
	if (r->failed_vms == 0 && r->bad_lines == 0)
		return started ? H2K_EX_OK : H2K_EX_FAIL;
	if (r->good_vms > 0)
		return H2K_EX_PARTIAL;
	if (r->failed_vms == 0)
		return r->first_code ? r->first_code : H2K_EX_USAGE;
	return r->first_code ? r->first_code : H2K_EX_FAIL;
}

static void
run_free(struct run *r)
{
	for (size_t i = 0; i < r->nvms; i++)
		fetch_vm_free(r->vms[i]);
	free(r->vms);
	free(r->queue);
	free(r->outabs);
	if (r->cookie)
		h2k_freesecret(r->cookie);
	free(r->session_host);
	h2k_vim_free(r->pv);
	free(r->pv_err);
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->cv);
	pthread_cond_destroy(&r->lease_cv);
}

int
h2k_fetch_run(const struct h2k_fetch_opts *o, FILE *in, const char *inname, FILE *out)
{
	struct run r;
	struct pool p = { .nw = o->jobs > 0 ? o->jobs : 4 };
	sigset_t old;
	int code, nothreads = 0;

	if (run_init(&r, o, out, &code) < 0)
		return code;
	if (run_start(&r, &p, &old) == 0) {
		if (p.started == 0 || !r.lease_started) {
			fetch_msg(&r, "cannot start threads");
			fetch_cancelled = 1;  /* nothing starts; not a cancel (exit 1) */
			nothreads = 1;
		}
		read_input(&r, in, inname);
		wait_all(&r);
	}
	run_stop(&r, &p, &old);
	code = nothreads ? H2K_EX_FAIL : run_code(&r, p.started);
	run_free(&r);
	return code;
}
