/*
 * fetch-input.c - the main thread's input: h2k-lease lines -> work.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * Each JSON line is checked (a bad one is reported as "PROG: stdin:N: why"
 * and skipped), becomes a struct vm with its files, gets the cookie
 * policy applied (one SOAP call per lease, on the main thread's own
 * session, run.pv) and its folder claimed, and is registered in the run
 * with its files queued for the workers, under run.mu.  A line that fails
 * after it names a lease is registered failed, so the lease thread still
 * ends that lease.
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
#include "lease.h"
#include "ovf.h"
#include "pathsafe.h"
#include "vim.h"

/* --- input lines ---------------------------------------------------------- */

static int
bad_line(struct run *r, const char *inname, long lineno, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
bad_line(struct run *r, const char *inname, long lineno, const char *fmt, ...)
{
	char why[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	fetch_msg(r, "%s:%ld: %s", inname, lineno, why);
	r->bad_lines++;
	return -1;
}

static int
url_ok(struct run *r, const char *url, char *why, size_t wl)
{
	int https = strncasecmp(url, "https://", 8) == 0;
	int http = strncasecmp(url, "http://", 7) == 0;
	char *hp;

	if (fetch_has_ctl(url) || strchr(url, ' ')) {
		snprintf(why, wl, "URL has control characters or spaces");
		return 0;
	}
	if (!https && !(http && r->o->tls.allow_http)) {
		snprintf(why, wl, "URL '%.200s' is not https%s", url,
		    http ? " (use --allow-http to permit http)" : "");
		return 0;
	}
	/* curl would call "*" malformed: say what it really is */
	const char *host = url + (https ? 8 : 7);
	if (host[0] == '*' && (host[1] == '/' || host[1] == ':' || host[1] == '\0')) {
		snprintf(why, wl, "URL '%.200s' still has the host '*' (h2k-lease "
		    "substitutes it)", url);
		return 0;
	}
	if (!(hp = fetch_url_hostport(url))) {
		snprintf(why, wl, "malformed URL '%.200s'", url);
		return 0;
	}
	free(hp);
	return 1;
}

/*
 * The cookie policy.  The session cookie is the user's vCenter session, and
 * an input line may come from a file anyone wrote: the cookie goes only
 * over https, and only to the session's own host:port or to a URL that the
 * server itself lists, asked over the session now, among the device URLs of
 * the line's lease (an ESXi host, often not the vCenter).  Any other URL is
 * fetched without it; curl never follows a redirect (http.c), so the cookie
 * cannot be carried elsewhere either.  A pin replaces certificate
 * verification, so the line's "ssl_thumbprint" must not choose the
 * certificate the cookie is sent under: a download that carries the cookie
 * is pinned by --thumbprint, else by the session's pin (session host) or
 * the sslThumbprint the server lists with the device URL, else verified
 * with the CAs; the line's pin is dropped.  Runs in the main thread before
 * the files are queued; its one SOAP call per lease is bounded by the SOAP
 * deadline.
 */
static int
cookie_policy(struct run *r, struct vm *vm)
{
	char **urls = NULL, **pins = NULL, *err = NULL, *hp;
	size_t nurls = 0, j;
	int asked = 0, rc = -1;

	for (int i = 0; i < vm->nfiles; i++) {
		struct file *f = &vm->files[i];

		if (!r->cookie)
			continue;
		if (strncasecmp(f->url, "https://", 8) != 0) {
			if (!(f->nocookie = h2k_strdup("plain http never carries it")))
				goto out;
			continue;
		}
		hp = fetch_url_hostport(f->url);
		f->cookie = hp && r->session_host && !strcasecmp(hp, r->session_host);
		free(hp);
		if (f->cookie) {
			free(f->pin);   /* the session's own pin or CAs */
			f->pin = NULL;
			continue;
		}
		if (!vm->lease) {
			if (!(f->nocookie = h2k_asprintf("the URL is not on the "
			    "session's server %s and the line names no lease",
			    r->session_host ? r->session_host : "?")))
				goto out;
			continue;
		}
		if (!asked) {
			asked = 1;
			if (!r->pv && !r->pv_err &&
			    !(r->pv = h2k_vim_from_session(r->o->session)) &&
			    !(r->pv_err = h2k_strdup(h2k_errmsg())))
				goto out;
			if ((!r->pv && !(err = h2k_strdup(r->pv_err))) ||
			    (r->pv && h2k_lease_device_urls(r->pv, vm->lease,
			    &urls, &pins, &nurls) < 0 && !(err = h2k_strdup(h2k_errmsg()))))
				goto out;
		}
		for (j = 0; j < nurls && !f->cookie; j++)
			f->cookie = !strcmp(urls[j], f->url);
		if (f->cookie) {
			/* the server's pin for the device, not the line's */
			free(f->pin);
			f->pin = NULL;
			if (pins[j - 1] && !(f->pin = h2k_strdup(pins[j - 1])))
				goto out;
			continue;
		}
		if (!(f->nocookie = err ? h2k_asprintf("the device URLs of lease "
		    "%s could not be read: %s", vm->lease, err) :
		    h2k_asprintf("the URL is not one of the device URLs the "
		    "server lists for lease %s", vm->lease)))
			goto out;
		h2k_info("%s: %s: no session cookie: %s", vm->name, f->url,
		    f->nocookie);
	}
	rc = 0;
out:
	free(err);
	h2k_lease_urls_free(urls, nurls);
	h2k_lease_urls_free(pins, nurls);
	return rc;
}

/* Check a line before anything is made of it: the number of its devices
 * to fetch, or -1 (reported, counted as a bad line). */
static int
check_line(struct run *r, const cJSON *line, const char *inname, long lineno)
{
	const cJSON *devs = cJSON_GetObjectItemCaseSensitive(line, "devices");
	const cJSON *lease = cJSON_GetObjectItemCaseSensitive(line, "lease");
	char why[512];
	int n = 0, i;
	const cJSON *d;

	if (!cJSON_IsArray(devs))
		return bad_line(r, inname, lineno, "no \"devices\" array (is this h2k-lease output?)");
	if (lease && !cJSON_IsNull(lease) && !cJSON_IsObject(lease))
		return bad_line(r, inname, lineno, "\"lease\" is not an object");
	if (cJSON_IsObject(lease) && !h2k_json_str(lease, "moref"))
		return bad_line(r, inname, lineno, "\"lease\" has no moref");
	i = 0;
	cJSON_ArrayForEach(d, devs) {
		const char *u = h2k_json_str(d, "url");
		const cJSON *tid = cJSON_GetObjectItemCaseSensitive(d, "target_id");
		if (!cJSON_IsObject(d))
			return bad_line(r, inname, lineno, "devices[%d] is not an object", i);
		if (!u)
			return bad_line(r, inname, lineno, "devices[%d] has no url", i);
		if (!url_ok(r, u, why, sizeof why))
			return bad_line(r, inname, lineno, "devices[%d]: %s", i, why);
		if (tid && !cJSON_IsString(tid))
			return bad_line(r, inname, lineno, "devices[%d].target_id is not a string", i);
		const char *tp = h2k_json_str(d, "ssl_thumbprint");
		char *tpn = tp && *tp ? h2k_thumbprint_norm(tp) : NULL;
		if (tp && *tp && !tpn)
			return bad_line(r, inname, lineno, "devices[%d].ssl_thumbprint is "
			    "not a SHA-1 or SHA-256 thumbprint", i);
		free(tpn);
		const cJSON *sz = cJSON_GetObjectItemCaseSensitive(d, "size");
		if (sz && !cJSON_IsNull(sz) && (!cJSON_IsNumber(sz) || sz->valuedouble < 0 ||
		    sz->valuedouble > 9e18))
			return bad_line(r, inname, lineno, "devices[%d].size is not a byte count", i);
		const cJSON *dk = cJSON_GetObjectItemCaseSensitive(d, "disk");
		if (r->o->disks_only && cJSON_IsFalse(dk)) {
			i++;
			continue;
		}
		n++;
		i++;
	}
	return n;
}

/* A VM for a checked line, without its files yet; NULL: out of memory. */
static struct vm *
vm_new(struct run *r, cJSON *line, long lineno)
{
	const cJSON *lease = cJSON_GetObjectItemCaseSensitive(line, "lease");
	const char *name = h2k_json_str(line, "name");
	const char *moref = h2k_json_str(line, "moref");
	struct vm *vm;

	if (!(vm = h2k_calloc(1, sizeof *vm)))
		return NULL;
	vm->run = r;
	vm->dirfd = -1;
	vm->vd.dirfd = vm->vd.lockfd = -1;
	vm->started = h2k_monotime();
	vm->line = line;
	vm->lineno = lineno;
	vm->name = h2k_strdup(name && *name ? name : moref ? moref : "unnamed");
	if (cJSON_IsObject(lease)) {
		vm->lease = h2k_strdup(h2k_json_str(lease, "moref"));
		const char *snap = h2k_json_str(lease, "snapshot");
		vm->snapshot = snap && *snap ? h2k_strdup(snap) : NULL;
		vm->timeout = h2k_json_num(lease, "timeout_s", 300);
	}
	return vm;
}

/*
 * The names h2k-ovf writes in this folder (NAME.ovf, NAME.mf,
 * NAME.ova) are taken first: a device whose target id is one of them
 * gets NAME-2.ovf, or the descriptor would replace the disk.
 */
static int
claim_ovf_names(struct vm *vm, const char *name)
{
	static const char *const ext[] = { "ovf", "mf", "ova" };
	char *ov = h2k_ovf_safe_name(name ? name : "");

	for (size_t k = 0; ov && k < sizeof ext / sizeof ext[0]; k++) {
		char *t = h2k_asprintf("%s.%s", ov, ext[k]);
		char *c = t ? h2k_pathset_claim(&vm->names, t) : NULL;
		free(t);
		if (!c) {
			free(ov);
			ov = NULL;
			break;
		}
		free(c);
	}
	if (!ov)
		return -1;
	free(ov);
	return 0;
}

/* A byte count from outside, or -1: only an estimate hangs on it. */
static long long
bytes_or_unknown(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsNumber(v) && v->valuedouble > 0 && v->valuedouble < 9e18 ?
	    (long long)v->valuedouble : -1;
}

/*
 * The capacity of the disk device dev (the k-th disk of ndisks), for the
 * progress of a stream of unknown length: the device's own capacity_bytes;
 * else the VM's disks[] (h2k-ls) when it has one entry per disk device,
 * taken in order (vSphere lists a lease's disk URLs in the VM's device
 * order, as h2k-ls lists disks[]); else the lease's total when the VM has
 * one disk.  -1: unknown.
 */
static long long
disk_capacity(const cJSON *line, const cJSON *dev, int k, int ndisks)
{
	const cJSON *disks = cJSON_GetObjectItemCaseSensitive(line, "disks");
	const cJSON *lease = cJSON_GetObjectItemCaseSensitive(line, "lease");
	long long c = bytes_or_unknown(dev, "capacity_bytes");

	if (c > 0)
		return c;
	if (cJSON_IsArray(disks) && cJSON_GetArraySize(disks) == ndisks)
		return bytes_or_unknown(cJSON_GetArrayItem(disks, k), "capacity_bytes");
	if (ndisks == 1 && cJSON_IsObject(lease))
		return bytes_or_unknown(lease, "disk_capacity_bytes");
	return -1;
}

/*
 * The name a converted disk is written under: the target id with its
 * extension (a dot not at the start, with no slash after it) replaced by
 * the format's, or the format's added.  NULL on ENOMEM.
 */
static char *
conv_name(const char *tid, enum h2k_disk_format fmt)
{
	const char *ext = h2k_disk_format_name(fmt);
	const char *dot = strrchr(tid, '.');

	if (!dot || dot == tid || strchr(dot, '/') || dot[-1] == '/')
		return h2k_asprintf("%s.%s", tid, ext);
	return h2k_asprintf("%.*s.%s", (int)(dot - tid), tid, ext);
}

/* One struct file per device to fetch, in vm->files (sized by check_line). */
static int
add_files(struct run *r, struct vm *vm, const cJSON *devs)
{
	const cJSON *d;
	int i = 0, ndisks = 0, k = 0;

	cJSON_ArrayForEach(d, devs)
		ndisks += !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(d, "disk"));
	cJSON_ArrayForEach(d, devs) {
		const cJSON *dk = cJSON_GetObjectItemCaseSensitive(d, "disk");
		if (!cJSON_IsFalse(dk))
			k++;
		if (r->o->disks_only && cJSON_IsFalse(dk))
			continue;
		struct file *f = &vm->files[i];
		const cJSON *key = cJSON_GetObjectItemCaseSensitive(d, "key");
		const char *tid = h2k_json_str(d, "target_id");
		char *fb = h2k_asprintf("device-%d", i);
		f->vm = vm;
		f->idx = i;
		f->prog = -1;
		vm->nfiles++;  /* counted now, so a failure below frees what it holds */
		f->url = h2k_strdup(h2k_json_str(d, "url"));
		const char *tp = h2k_json_str(d, "ssl_thumbprint");
		f->pin = tp && *tp ? h2k_thumbprint_norm(tp) : NULL;
		f->key = cJSON_IsString(key) ? h2k_strdup(key->valuestring) :
		    cJSON_IsNumber(key) ? h2k_asprintf("%.0f", key->valuedouble) : h2k_strdup("");
		f->target_id = h2k_strdup(tid ? tid : fb ? fb : "");
		f->disk = !cJSON_IsFalse(dk);
		/* a size out of range is no size: never an out-of-range cast */
		f->size_hint = bytes_or_unknown(d, "size");
		f->cap_hint = f->disk ? disk_capacity(vm->line, d, k - 1, ndisks) : -1;
		f->capacity = -1;
		f->conv = f->disk ? r->o->format : H2K_FMT_VMDK;
		char *cn = f->conv != H2K_FMT_VMDK ? conv_name(f->target_id, f->conv) : NULL;
		char *s = h2k_pathsafe(cn ? cn : tid, fb);
		free(cn);
		f->name = s ? h2k_pathset_claim(&vm->names, s) : NULL;
		free(s);
		free(fb);
		if (!f->url || !f->key || !f->target_id || !f->name)
			return -1;
		f->part = h2k_asprintf("%s.part", f->name);
		f->meta = h2k_asprintf("%s.part.meta", f->name);
		{
			/* which VM and device the bytes of the .part are */
			const char *mo = h2k_json_str(vm->line, "moref");
			const char *iu = h2k_json_str(vm->line, "instance_uuid");
			f->ident = ((mo && *mo) || (iu && *iu)) && *f->key ?
			    h2k_asprintf("%s|%s|%s|%s", mo ? mo : "", iu ? iu : "", f->key,
			    f->target_id) : NULL;
		}
		if (!f->part || !f->meta)
			return -1;
		atomic_store(&f->total, -1);
		atomic_store(&f->pos, -1);
		f->prog = h2k_progress_add(r->prog, vm->name, f->name);
		h2k_progress_set(r->prog, f->prog, 0, f->size_hint);
		h2k_progress_capacity(r->prog, f->prog, f->cap_hint);
		i++;
	}
	return 0;
}

/* The folder (vmdir.h): this VM's alone, locked until we exit, opened
 * once: every file operation is relative to it. */
static int
claim_dir(struct run *r, struct vm *vm)
{
	struct h2k_vmid id;

	h2k_vmid_from_json(&id, vm->line);
	id.job = r->o->job_id;
	if (h2k_vmdir_claim(r->outabs, &id, r->o->overwrite ? H2K_VMDIR_OVERWRITE : 0,
	    &vm->vd) < 0)
		return -1;
	vm->dir = vm->vd.path;
	vm->dirfd = vm->vd.dirfd;
	return 0;
}

/* Room for one more VM in the run (caller holds r->mu). */
static int
vms_room(struct run *r)
{
	if (r->nvms == r->capvms) {
		size_t nc = r->capvms ? r->capvms * 2 : 16;
		struct vm **nv = h2k_realloc(r->vms, nc * sizeof *nv);
		if (!nv)
			return -1;
		r->vms = nv;
		r->capvms = nc;
	}
	return 0;
}

/* Register vm and queue its files (caller holds r->mu, made room). */
static void
vm_start(struct run *r, struct vm *vm)
{
	r->vms[r->nvms++] = vm;
	vm->pending = vm->nfiles;
	vm->next_keepalive = 0;  /* first keepalive (and state check) at once */
	for (int i = 0; i < vm->nfiles; i++)
		if (fetch_enqueue(r, &vm->files[i]) < 0) {
			/* cannot queue: the rest never run */
			fetch_vm_fail(vm, H2K_EX_FAIL, "out of memory");
			vm->pending -= vm->nfiles - i;
			break;
		}
	if (vm->nfiles == 0 || vm->pending == 0)
		fetch_vm_settled(vm);
	pthread_cond_broadcast(&r->lease_cv);
}

/* The VM is registered (so its lease is ended) but fails at once with the
 * error set (caller holds r->mu).  -1: not even that (vm freed, the line
 * left to the caller). */
static int
vm_start_failed(struct run *r, struct vm *vm)
{
	if (vms_room(r) < 0) {
		vm->line = NULL;
		fetch_vm_free(vm);
		return -1;
	}
	r->vms[r->nvms++] = vm;
	{
		char *m = h2k_asprintf("%s: %s", vm->name ? vm->name : "?", h2k_errmsg());
		fetch_vm_fail(vm, h2k_errcode(), m ? m : h2k_errmsg());
		free(m);
	}
	for (int k = 0; k < vm->nfiles; k++)
		vm->files[k].state = FS_CANCELLED;
	vm->pending = 0;
	fetch_vm_settled(vm);
	return 0;
}

/* Parse one h2k-lease line into a VM and queue its files. */
int
fetch_add_line(struct run *r, cJSON *line, const char *inname, long lineno)
{
	const cJSON *devs = cJSON_GetObjectItemCaseSensitive(line, "devices");
	struct vm *vm;
	int n = check_line(r, line, inname, lineno), rc = 0;

	if (n < 0 || !(vm = vm_new(r, line, lineno)))
		return -1;
	if (!(vm->files = h2k_calloc(n ? (size_t)n : 1, sizeof *vm->files)) ||
	    claim_ovf_names(vm, h2k_json_str(line, "name")) < 0 ||
	    add_files(r, vm, devs) < 0 || cookie_policy(r, vm) < 0 || claim_dir(r, vm) < 0) {
		pthread_mutex_lock(&r->mu);
		rc = vm_start_failed(r, vm);
		pthread_mutex_unlock(&r->mu);
		return rc;
	}
	pthread_mutex_lock(&r->mu);
	if (vms_room(r) < 0)
		rc = vm_start_failed(r, vm);
	else
		vm_start(r, vm);
	pthread_mutex_unlock(&r->mu);
	return rc;
}
