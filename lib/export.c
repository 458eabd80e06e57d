/*
 * export.c - bring a VM to an exportable state and open its export lease.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * The order of a start, and what is undone when a later step fails:
 *
 *   powered on + --shutdown   ShutdownGuest, poll runtime.powerState until
 *                             poweredOff (bounded)           nothing to undo
 *   powered on + --power-off  PowerOffVM_Task                nothing to undo
 *   powered on + --snapshot   CreateSnapshot_Task(memory=false,
 *                             quiesce=false)                 remove snapshot
 *   then                      ExportVm or ExportSnapshot     abort lease
 *                             wait until not "initializing"  (bounded)
 *                             read info: deviceUrl[], leaseTimeout
 *
 * A cancel request (signal) is honoured between steps: whatever was
 * created so far is undone, then H2K_EX_CANCEL.  The VM is not powered on
 * again after --shutdown/--power-off: the user asked for it to be off, and
 * a migration usually wants it to stay off.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libxml/tree.h>

#include "export.h"
#include "h2k.h"
#include "inventory.h"
#include "jsonl.h"
#include "lease.h"

#define DEF_READY 300.0
#define DEF_SHUTDOWN 300.0
#define DEF_TASK 900.0
#define MAX_DEVICES 4096

static int
cancelled(const struct h2k_export_opts *o)
{
	return o->cancel && *o->cancel;
}

/* Call a method whose returnval is a moref; its value, caller frees. */
static char *
call_moref(struct h2k_vim *v, const char *method, const char *type,
    const char *moref, const char *body)
{
	xmlNodePtr ret = NULL;
	xmlDocPtr d = h2k_soap_call(v->soap, method, type, moref, body, &ret);
	char *val;

	if (!d)
		return NULL;
	val = ret ? h2k_xml_text(ret, "returnval") : NULL;
	xmlFreeDoc(d);
	if (!val || !*val) {
		free(val);
		h2k_seterr(H2K_EX_NET, "%s: no object in the server's answer",
		    method);
		return NULL;
	}
	return val;
}

char *
h2k_export_fix_url(const char *url, const char *host)
{
	const char *p = strstr(url, "://");
	const char *h, *end;

	if (!p || !host)
		return h2k_strdup(url);
	h = p + 3;
	if (h[0] != '*' || (h[1] != '/' && h[1] != ':' && h[1] != '\0'))
		return h2k_strdup(url);
	end = h + 1;
	if (*end == ':') {
		/* The URL names its own port: keep it, take only our host. */
		const char *colon = strrchr(host, ':');
		size_t hl = strlen(host);
		if (colon && host[0] != '[')
			hl = (size_t)(colon - host);
		else if (host[0] == '[' && (colon = strstr(host, "]:")))
			hl = (size_t)(colon - host) + 1;
		return h2k_asprintf("%.*s%.*s%s", (int)(h - url), url, (int)hl,
		    host, end);
	}
	return h2k_asprintf("%.*s%s%s", (int)(h - url), url, host, end);
}

void
h2k_export_free(struct h2k_export *e)
{
	for (size_t i = 0; i < e->ndev; i++) {
		free(e->dev[i].key);
		free(e->dev[i].target_id);
		free(e->dev[i].url);
		free(e->dev[i].ssl_thumbprint);
	}
	free(e->dev);
	free(e->lease);
	free(e->snapshot);
	free(e->server);
	free(e->power_action);
	memset(e, 0, sizeof *e);
}

void
h2k_export_undo(struct h2k_vim *v, struct h2k_export *e, const char *why)
{
	char msg[1024];

	/* Keep the error that got us here; cleanup failures only warn. */
	snprintf(msg, sizeof msg, "%s", h2k_errmsg());
	int code = h2k_errcode();
	if (e->lease) {
		if (h2k_lease_abort(v, e->lease, why) < 0 &&
		    h2k_errcode() != H2K_EX_NOTFOUND)
			h2k_warn("%s", h2k_errmsg());
	}
	if (e->snapshot) {
		if (h2k_snapshot_remove(v, e->snapshot, DEF_TASK) < 0)
			h2k_warn("%s (remove it by hand)", h2k_errmsg());
		else
			h2k_info("removed temporary snapshot %s", e->snapshot);
	}
	h2k_seterr(code, "%s", msg);
}

/* --- lease info ---------------------------------------------------------- */

struct info_arg {
	struct h2k_export *e;
	const char *host;
};

static int
info_cb(void *arg, xmlNodePtr obj)
{
	struct info_arg *ia = arg;

	return h2k_export_info_parse(obj, ia->host, ia->e);
}

int
h2k_export_info_parse(xmlNodePtr obj, const char *host, struct h2k_export *e)
{
	xmlNodePtr info = h2k_vim_prop(obj, "info");
	char *s;

	if (!info)
		return h2k_seterr(H2K_EX_NET, "lease %s: ready without info",
		    e->lease);
	s = h2k_xml_text(info, "leaseTimeout");
	e->timeout_s = s ? strtol(s, NULL, 10) : 0;
	free(s);
	/* the one size a stream's lease gives: h2k-fetch's progress needs it */
	e->capacity = -1;
	if ((s = h2k_xml_text(info, "totalDiskCapacityInKB"))) {
		char *end;
		long long kb = strtoll(s, &end, 10);
		if (*s && *end == '\0' && kb > 0 && kb < (1LL << 52))
			e->capacity = kb * 1024;
		free(s);
	}
	for (xmlNodePtr d = h2k_xml_child(info, "deviceUrl"); d;
	    d = h2k_xml_next(d, "deviceUrl")) {
		struct h2k_export_dev *dv, *n;
		char *url, *disk, *size;

		if (e->ndev >= MAX_DEVICES)
			return h2k_seterr(H2K_EX_NET,
			    "lease %s: more than %d device URLs", e->lease,
			    MAX_DEVICES);
		n = h2k_realloc(e->dev, (e->ndev + 1) * sizeof *e->dev);
		if (!n)
			return -1;
		e->dev = n;
		dv = &e->dev[e->ndev];
		memset(dv, 0, sizeof *dv);
		dv->size = -1;
		e->ndev++;
		dv->key = h2k_xml_text(d, "key");
		dv->target_id = h2k_xml_text(d, "targetId");
		url = h2k_xml_text(d, "url");
		dv->ssl_thumbprint = h2k_xml_text(d, "sslThumbprint");
		if (dv->ssl_thumbprint && !*dv->ssl_thumbprint) {
			free(dv->ssl_thumbprint);
			dv->ssl_thumbprint = NULL;
		}
		disk = h2k_xml_text(d, "disk");
		dv->disk = disk && !strcmp(disk, "true");
		free(disk);
		size = h2k_xml_text(d, "fileSize");
		if (size) {
			char *end;
			long long z = strtoll(size, &end, 10);
			if (*end == '\0' && z > 0)
				dv->size = z;
		}
		free(size);
		if (!dv->key || !url || !*url) {
			free(url);
			return h2k_seterr(H2K_EX_NET,
			    "lease %s: device URL without key or url", e->lease);
		}
		dv->url = h2k_export_fix_url(url, host);
		free(url);
	}
	return 0;
}

/*
 * Wait until the lease leaves "initializing".  Polls with a backoff from
 * 0.1 s to 2 s: vCenter readies a lease in well under a second for small
 * VMs and in tens of seconds for big ones, and the poll is one round trip.
 */
static int
wait_ready(struct h2k_vim *v, struct h2k_export *e, const char *label,
    const struct h2k_export_opts *o)
{
	double limit = o->ready_timeout > 0 ? o->ready_timeout : DEF_READY;
	double t0 = h2k_monotime(), delay = 0.1;

	for (;;) {
		char *msg = NULL;
		int st = h2k_lease_state(v, e->lease, &msg);

		switch (st) {
		case H2K_LEASE_READY:
			return 0;
		case H2K_LEASE_ERROR:
			h2k_seterr(H2K_EX_STATE, "%s: export lease in error: %s",
			    label, msg ? msg : "no message");
			free(msg);
			return -1;
		case H2K_LEASE_DONE:
		case H2K_LEASE_GONE:
			return h2k_seterr(H2K_EX_STATE,
			    "%s: export lease %s ended before it was ready",
			    label, e->lease);
		case H2K_LEASE_INITIALIZING:
			break;
		default:
			return h2k_adderr("%s", label);
		}
		if (cancelled(o))
			return h2k_seterr(H2K_EX_CANCEL, "%s: interrupted",
			    label);
		if (h2k_monotime() - t0 >= limit)
			return h2k_seterr(H2K_EX_STATE,
			    "%s: export lease still initializing after %.0f s "
			    "(raise --timeout)", label, limit);
		h2k_sleep(delay);
		delay = delay * 1.5 > 2.0 ? 2.0 : delay * 1.5;
	}
}

static int
read_info(struct h2k_vim *v, struct h2k_export *e)
{
	static const char *const props[] = { "info", NULL };
	struct info_arg ia = { e, h2k_soap_host(v->soap) };

	return h2k_vim_get(v, "HttpNfcLease", e->lease, props, info_cb, &ia);
}

static int
make_snapshot(struct h2k_vim *v, const char *vm, const char *label,
    const struct h2k_export_opts *o, struct h2k_export *e)
{
	char ts[32], *task, *body;
	struct h2k_buf b = { 0 };
	time_t now = time(NULL);
	struct tm tm;

	/* A name an admin recognises in the snapshot tree, unique per second. */
	gmtime_r(&now, &tm);
	strftime(ts, sizeof ts, "%Y%m%dT%H%M%SZ", &tm);
	if (h2k_buf_printf(&b, "<name>" H2K_SNAPSHOT_PREFIX "%s</name><description>",
	    ts) < 0 || h2k_buf_xmlesc(&b, H2K_SNAPSHOT_DESC) < 0 ||
	    h2k_buf_printf(&b, "</description><memory>false</memory>"
	    "<quiesce>false</quiesce>") < 0) {
		h2k_buf_free(&b);
		return -1;
	}
	body = b.data;
	task = call_moref(v, "CreateSnapshot_Task", "VirtualMachine", vm, body);
	h2k_buf_free(&b);
	if (!task)
		return h2k_adderr("%s: create snapshot", label);
	if (h2k_vim_wait_task(v, task, o->task_timeout > 0 ? o->task_timeout :
	    DEF_TASK, &e->snapshot) < 0) {
		free(task);
		return h2k_adderr("%s: create snapshot", label);
	}
	free(task);
	if (!e->snapshot || !*e->snapshot) {
		free(e->snapshot);
		e->snapshot = NULL;
		return h2k_seterr(H2K_EX_NET,
		    "%s: create snapshot: the task gave no snapshot", label);
	}
	h2k_info("%s: temporary snapshot %s (h2k-export-%s)", label,
	    e->snapshot, ts);
	return 0;
}

static int
shutdown_guest(struct h2k_vim *v, const char *vm, const char *label,
    const struct h2k_export_opts *o)
{
	double limit = o->shutdown_timeout > 0 ? o->shutdown_timeout :
	    DEF_SHUTDOWN;
	double t0, delay = 0.2;
	xmlNodePtr ret;
	xmlDocPtr d;

	d = h2k_soap_call(v->soap, "ShutdownGuest", "VirtualMachine", vm, "",
	    &ret);
	if (!d)
		return h2k_adderr("%s: guest shutdown", label);
	xmlFreeDoc(d);
	t0 = h2k_monotime();
	for (;;) {
		char *ps = h2k_export_power_state(v, vm);
		if (!ps)
			return h2k_adderr("%s", label);
		int off = !strcmp(ps, "poweredOff");
		free(ps);
		if (off)
			return 0;
		if (cancelled(o))
			return h2k_seterr(H2K_EX_CANCEL, "%s: interrupted",
			    label);
		if (h2k_monotime() - t0 >= limit)
			return h2k_seterr(H2K_EX_STATE,
			    "%s: guest did not shut down within %.0f s "
			    "(raise --timeout, or use --power-off)", label, limit);
		h2k_sleep(delay);
		delay = delay * 1.5 > 3.0 ? 3.0 : delay * 1.5;
	}
}

static int
power_off(struct h2k_vim *v, const char *vm, const char *label,
    const struct h2k_export_opts *o)
{
	char *task = call_moref(v, "PowerOffVM_Task", "VirtualMachine", vm, "");
	int rc;

	if (!task)
		return h2k_adderr("%s: power off", label);
	rc = h2k_vim_wait_task(v, task, o->task_timeout > 0 ? o->task_timeout :
	    DEF_TASK, NULL);
	free(task);
	if (rc < 0)
		return h2k_adderr("%s: power off", label);
	return 0;
}

static int
start(struct h2k_vim *v, const char *vm, const char *label,
    const char *power_state, const struct h2k_export_opts *o,
    struct h2k_export *e)
{
	int on = power_state && !strcmp(power_state, "poweredOn");

	memset(e, 0, sizeof *e);
	e->server = h2k_strdup(h2k_soap_url(v->soap));
	if (!e->server)
		return -1;
	if (cancelled(o))
		return h2k_seterr(H2K_EX_CANCEL, "%s: interrupted", label);

	if (on) {
		switch (o->power) {
		case H2K_POWER_REFUSE:
			return h2k_seterr(H2K_EX_STATE,
			    "%s: VM is powered on; use --snapshot (export a "
			    "temporary snapshot), --shutdown (guest shutdown) "
			    "or --power-off (hard power-off)", label);
		case H2K_POWER_SHUTDOWN:
			e->power_action = h2k_strdup("shutdown");
			h2k_info("%s: shutting the guest down", label);
			if (shutdown_guest(v, vm, label, o) < 0)
				return -1;
			break;
		case H2K_POWER_OFF:
			e->power_action = h2k_strdup("power-off");
			h2k_info("%s: powering off", label);
			if (power_off(v, vm, label, o) < 0)
				return -1;
			break;
		case H2K_POWER_SNAPSHOT:
			if (make_snapshot(v, vm, label, o, e) < 0)
				return -1;
			break;
		}
	}
	if (cancelled(o)) {
		h2k_seterr(H2K_EX_CANCEL, "%s: interrupted", label);
		goto undo;
	}

	if (e->snapshot)
		e->lease = call_moref(v, "ExportSnapshot",
		    "VirtualMachineSnapshot", e->snapshot, "");
	else
		e->lease = call_moref(v, "ExportVm", "VirtualMachine", vm, "");
	if (!e->lease) {
		if (h2k_errcode() == H2K_EX_STATE && !e->snapshot)
			h2k_adderr("%s: export (try --snapshot, --shutdown or "
			    "--power-off)", label);
		else
			h2k_adderr("%s: export", label);
		goto undo;
	}
	if (wait_ready(v, e, label, o) < 0)
		goto undo;
	if (read_info(v, e) < 0) {
		h2k_adderr("%s", label);
		goto undo;
	}
	if (cancelled(o)) {
		h2k_seterr(H2K_EX_CANCEL, "%s: interrupted", label);
		goto undo;
	}
	return 0;
undo:
	h2k_export_undo(v, e, h2k_errcode() == H2K_EX_CANCEL ?
	    "export cancelled by h2k-lease" : "export failed in h2k-lease");
	return -1;
}

int
h2k_export_start(struct h2k_vim *v, const char *vm, const char *label,
    const char *power_state, const struct h2k_export_opts *o,
    struct h2k_export *e)
{
	if (start(v, vm, label, power_state, o, e) < 0) {
		h2k_export_free(e);
		return -1;
	}
	return 0;
}

/* --- JSON ---------------------------------------------------------------- */

cJSON *
h2k_export_lease_json(const struct h2k_export *e)
{
	cJSON *l = cJSON_CreateObject();

	if (!l ||
	    !cJSON_AddStringToObject(l, "moref", e->lease) ||
	    !cJSON_AddNumberToObject(l, "timeout_s", (double)e->timeout_s) ||
	    (e->capacity > 0 && !cJSON_AddNumberToObject(l, "disk_capacity_bytes",
	    (double)e->capacity)) ||
	    !cJSON_AddStringToObject(l, "mode", e->snapshot ? "snapshot" : "export") ||
	    !(e->snapshot ? cJSON_AddStringToObject(l, "snapshot", e->snapshot) :
	    cJSON_AddNullToObject(l, "snapshot")) ||
	    !cJSON_AddStringToObject(l, "server", e->server) ||
	    (e->power_action &&
	    !cJSON_AddStringToObject(l, "power_action", e->power_action))) {
		cJSON_Delete(l);
		h2k_seterr(H2K_EX_FAIL, "out of memory");
		return NULL;
	}
	return l;
}

cJSON *
h2k_export_devices_json(const struct h2k_export *e)
{
	cJSON *a = cJSON_CreateArray();

	if (!a)
		goto oom;
	for (size_t i = 0; i < e->ndev; i++) {
		const struct h2k_export_dev *d = &e->dev[i];
		cJSON *o = cJSON_CreateObject();

		if (!o)
			goto oom;
		cJSON_AddItemToArray(a, o);
		if (!cJSON_AddStringToObject(o, "key", d->key) ||
		    !cJSON_AddStringToObject(o, "target_id",
		    d->target_id ? d->target_id : "") ||
		    !cJSON_AddBoolToObject(o, "disk", d->disk) ||
		    (d->size >= 0 &&
		    !cJSON_AddNumberToObject(o, "size", (double)d->size)) ||
		    !cJSON_AddStringToObject(o, "url", d->url) ||
		    (d->ssl_thumbprint && !cJSON_AddStringToObject(o,
		    "ssl_thumbprint", d->ssl_thumbprint)))
			goto oom;
	}
	return a;
oom:
	cJSON_Delete(a);
	h2k_seterr(H2K_EX_FAIL, "out of memory");
	return NULL;
}

/* --- the pipeline line ---------------------------------------------------- */

/*
 * h2k-lease's step for one VM.  Once the line is out, the stages
 * downstream own the lease and its snapshot; until then they are ours, so
 * every failure (and a cancel noticed before the write) undoes them here.
 */
int
h2k_export_line(struct h2k_vim *v, cJSON *line,
    const struct h2k_export_opts *o, FILE *out, const char *outname)
{
	const char *moref = h2k_json_str(line, "moref");
	const char *name = h2k_json_str(line, "name");
	const char *who = o->progname ? o->progname : "h2k-lease";
	struct h2k_export e;
	char *ps, label[512], why[128];
	cJSON *lj, *dj;

	if (!moref || !*moref)
		return h2k_seterr(H2K_EX_USAGE, "no \"moref\" field");
	snprintf(label, sizeof label, "%s", name ? name : moref);

	/* The line may be old: the power state that matters is today's. */
	ps = h2k_export_power_state(v, moref);
	if (!ps) {
		if (h2k_errcode() == H2K_EX_NOTFOUND)
			h2k_seterr(H2K_EX_NOTFOUND, "%s: no such VM (%s)",
			    label, moref);
		return -1;
	}
	if (h2k_export_start(v, moref, label, ps, o, &e) < 0) {
		free(ps);
		return -1;
	}
	free(ps);
	lj = h2k_export_lease_json(&e);
	dj = h2k_export_devices_json(&e);
	if (!lj || !dj) {
		cJSON_Delete(lj);
		cJSON_Delete(dj);
		goto undo;
	}
	cJSON_DeleteItemFromObjectCaseSensitive(line, "lease");
	cJSON_DeleteItemFromObjectCaseSensitive(line, "devices");
	cJSON_AddItemToObject(line, "lease", lj);
	cJSON_AddItemToObject(line, "devices", dj);
	if (e.power_action) {
		/* We changed it: the line must not carry the old state on. */
		cJSON_DeleteItemFromObjectCaseSensitive(line, "power_state");
		cJSON_AddStringToObject(line, "power_state", "poweredOff");
	}
	if (cancelled(o)) {
		h2k_seterr(H2K_EX_CANCEL, "%s: interrupted", label);
		goto undo;
	}
	if (h2k_json_write(out, line) < 0) {
		h2k_adderr("%s: writing %s", label, outname);
		goto undo;
	}
	h2k_info("%s: lease %s ready, %zu device(s)%s", label, e.lease, e.ndev,
	    e.snapshot ? " (from a temporary snapshot)" : "");
	h2k_export_free(&e);
	return 0;
undo:
	snprintf(why, sizeof why, cancelled(o) ? "export cancelled by %s" :
	    "export failed in %s", who);
	h2k_export_undo(v, &e, why);
	h2k_export_free(&e);
	return -1;
}

/* --- VM lookup ----------------------------------------------------------- */

char *
h2k_export_power_state(struct h2k_vim *v, const char *vm)
{
	char *s = h2k_vim_get_text(v, "VirtualMachine", vm, "runtime.powerState");

	if (!s)
		h2k_adderr("VM %s: power state", vm);
	return s;
}

/* "vm-54" (vCenter) or "54" (ESXi host agent). */
static int
looks_like_moref(const char *s)
{
	if (!strncmp(s, "vm-", 3))
		s += 3;
	if (!*s)
		return 0;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return 1;
}

struct name_arg {
	const char *want;
	char *moref;
	int n;
};

static int
name_cb(void *arg, xmlNodePtr obj)
{
	struct name_arg *a = arg;
	char *name = h2k_xml_text(h2k_vim_prop(obj, "name"), NULL);

	if (name && !strcmp(name, a->want)) {
		a->n++;
		if (!a->moref)
			a->moref = h2k_xml_text(obj, "obj");
	}
	free(name);
	return 0;
}

/* A bare name, as govc's -vm takes it: must name exactly one VM. */
static char *
find_by_name(struct h2k_vim *v, const char *name)
{
	static const char *const props[] = { "name", NULL };
	struct name_arg a = { name, NULL, 0 };

	if (h2k_vim_each(v, NULL, "VirtualMachine", props, 1000, name_cb,
	    &a) < 0) {
		free(a.moref);
		return NULL;
	}
	if (a.n == 0) {
		h2k_seterr(H2K_EX_NOTFOUND, "%s: no such VM", name);
		return NULL;
	}
	if (a.n > 1) {
		free(a.moref);
		h2k_seterr(H2K_EX_USAGE, "%s: %d VMs have this name; give the "
		    "inventory path or the moref", name, a.n);
		return NULL;
	}
	return a.moref;
}

cJSON *
h2k_export_vm_lookup(struct h2k_vim *v, const char *arg)
{
	char *moref;
	cJSON *o, *p;

	if (strchr(arg, '/'))
		moref = h2k_vim_find_vm(v, arg);
	else if (looks_like_moref(arg))
		moref = h2k_strdup(arg);
	else
		moref = find_by_name(v, arg);
	if (!moref)
		return NULL;
	/* h2k-ls's line, by its own mapping (lib/inventory.c) */
	if (!(o = h2k_inv_vm_one(v, moref))) {
		if (h2k_errcode() == H2K_EX_NOTFOUND)
			h2k_seterr(H2K_EX_NOTFOUND, "%s: no such VM", arg);
		free(moref);
		return NULL;
	}
	free(moref);
	/* A VM outside the folder tree has no path of its own: the one it
	 * was found by is still true. */
	p = cJSON_GetObjectItemCaseSensitive(o, "path");
	if (strchr(arg, '/') && cJSON_IsNull(p) &&
	    !cJSON_ReplaceItemViaPointer(o, p, cJSON_CreateString(arg))) {
		cJSON_Delete(o);
		h2k_seterr(H2K_EX_FAIL, "out of memory");
		return NULL;
	}
	return o;
}
