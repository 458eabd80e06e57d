/*
 * lease.c - HttpNfcLease state, keepalive, abort, complete; snapshot removal.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * A lease that is no longer on the server (completed, aborted, timed out)
 * answers every call with ManagedObjectNotFound; h2k_lease_state() turns
 * that into H2K_LEASE_GONE rather than an error, because for the caller it
 * is a state, not a failure of the call.
 */
#include <stdlib.h>
#include <string.h>

#include "export.h"
#include "http.h"
#include "h2k.h"
#include "lease.h"

/*
 * The server's words for a LocalizedMethodFault: localizedMessage when it
 * has one, else the fault's type (and its reason/msg if present) so the user
 * is never left with a bare "error".
 */
static char *
fault_message(xmlNodePtr lmf)
{
	char *m = h2k_xml_text(lmf, "localizedMessage");
	if (m && *m)
		return m;
	free(m);
	xmlNodePtr f = h2k_xml_child(lmf, "fault");
	char *type = f ? h2k_xml_type(f) : NULL;
	char *why = f ? h2k_xml_text(f, "reason") : NULL;
	if (!why && f)
		why = h2k_xml_text(f, "msg");
	char *out;
	if (type && why && *why)
		out = h2k_asprintf("%s: %s", type, why);
	else if (type)
		out = h2k_strdup(type);
	else
		out = h2k_strdup("lease in error (no message from the server)");
	free(type);
	free(why);
	return out;
}

int
h2k_lease_state_of(xmlNodePtr obj, const char *lease, char **msg)
{
	xmlNodePtr val = h2k_vim_prop(obj, "state");
	char *state = NULL;
	int st;

	if (msg)
		*msg = NULL;
	if (val) {
		xmlChar *s = xmlNodeGetContent(val);
		if (s) {
			state = h2k_strdup((const char *)s);
			xmlFree(s);
		}
	}
	/* No state at all: the lease vanished between calls. */
	if (!state)
		return H2K_LEASE_GONE;
	if (!strcmp(state, "initializing"))
		st = H2K_LEASE_INITIALIZING;
	else if (!strcmp(state, "ready"))
		st = H2K_LEASE_READY;
	else if (!strcmp(state, "done"))
		st = H2K_LEASE_DONE;
	else if (!strcmp(state, "error"))
		st = H2K_LEASE_ERROR;
	else {
		h2k_seterr(H2K_EX_NET, "lease %s: unknown state '%.64s'",
		    lease, state);
		free(state);
		return -1;
	}
	free(state);
	if (st == H2K_LEASE_ERROR && msg) {
		val = h2k_vim_prop(obj, "error");
		*msg = val ? fault_message(val) :
		    h2k_strdup("lease in error (no message from the server)");
	}
	return st;
}

struct state_arg {
	const char *lease;
	int st;
	char *msg;
	char *err;      /* an unknown state's error, kept past the call */
	int code;
};

static int
state_cb(void *arg, xmlNodePtr obj)
{
	struct state_arg *a = arg;

	free(a->msg);
	a->msg = NULL;
	a->st = h2k_lease_state_of(obj, a->lease, &a->msg);
	if (a->st < 0) {
		a->code = h2k_errcode();
		free(a->err);
		a->err = h2k_strdup(h2k_errmsg());
	}
	return 0;
}

int
h2k_lease_state(struct h2k_vim *v, const char *lease, char **msg)
{
	static const char *const props[] = { "state", "error", NULL };
	struct state_arg a = { .lease = lease, .st = H2K_LEASE_GONE };

	if (msg)
		*msg = NULL;
	if (h2k_vim_get(v, "HttpNfcLease", lease, props, state_cb, &a) < 0) {
		free(a.msg);
		free(a.err);
		if (h2k_errcode() == H2K_EX_NOTFOUND)
			return H2K_LEASE_GONE;
		return h2k_adderr("lease %s", lease);
	}
	if (a.st < 0) {
		h2k_seterr(a.code, "%s", a.err ? a.err : "lease state");
		free(a.err);
		free(a.msg);
		return -1;
	}
	free(a.err);
	if (msg)
		*msg = a.msg;
	else
		free(a.msg);
	return a.st;
}

/* A call whose response carries nothing we need. */
static int
call0(struct h2k_vim *v, const char *method, const char *type,
    const char *moref, const char *body)
{
	xmlNodePtr ret;
	xmlDocPtr d = h2k_soap_call(v->soap, method, type, moref, body, &ret);

	if (!d)
		return -1;
	xmlFreeDoc(d);
	return 0;
}

int
h2k_lease_progress(struct h2k_vim *v, const char *lease, int percent)
{
	char body[64];

	if (percent < 0)
		percent = 0;
	if (percent > 100)
		percent = 100;
	snprintf(body, sizeof body, "<percent>%d</percent>", percent);
	if (call0(v, "HttpNfcLeaseProgress", "HttpNfcLease", lease, body) < 0)
		return h2k_adderr("lease %s: progress", lease);
	return 0;
}

/*
 * The keepalive rule.  vSphere drops a lease that hears nothing for its
 * timeout (lease.timeout_s, 300 s by default).  Each lease is kept on its
 * own clock, every third of its timeout: a call lost or slowed by a busy
 * server leaves two more before the lease is dropped.  At most 60 s, so a
 * lease in error or gone is noticed within a minute whatever its timeout;
 * at least 1 s, so a tiny timeout cannot turn it into a busy loop.  This
 * is the rule h2k-fetch(1) documents (--keepalive replaces it); h2k-ovf
 * used to apply the shortest lease's third to every lease at once, which
 * only added calls, and now follows it too.
 */
double
h2k_lease_keepalive_interval(double timeout_s, double every)
{
	double iv = every;

	if (!(iv > 0)) {
		iv = timeout_s > 0 ? timeout_s / 3 : 60;
		if (iv > 60)
			iv = 60;
	}
	return iv < 1 ? 1 : iv;
}

int
h2k_lease_keep(struct h2k_vim *v, const char *lease, int percent,
    const char *label, char **msg)
{
	char *perr = NULL;
	int st;

	*msg = NULL;
	h2k_clearerr();
	/* a failed Progress is only worth a warning when the lease's
	 * state, asked next, does not explain it: in error, gone, or done
	 * (h2k-ovf's HttpNfcLeaseComplete can land between the two calls) */
	if (h2k_lease_progress(v, lease, percent) < 0 &&
	    h2k_errcode() != H2K_EX_NOTFOUND)
		perr = h2k_strdup(h2k_errmsg());
	st = h2k_lease_state(v, lease, msg);
	if (perr && st != H2K_LEASE_ERROR && st != H2K_LEASE_GONE &&
	    st != H2K_LEASE_DONE)
		h2k_warn("%s: %s", label, perr);
	free(perr);
	return st;
}

int
h2k_lease_abort(struct h2k_vim *v, const char *lease, const char *msg)
{
	struct h2k_buf b = { 0 };
	int rc;

	/*
	 * MethodFault is abstract: the inner fault needs an xsi:type.  The
	 * namespace is declared right here so the body does not depend on
	 * what the envelope happens to declare.  SystemError carries a reason,
	 * which is what the vSphere client shows in the task list.
	 */
	if (msg && *msg) {
		if (h2k_buf_printf(&b, "<fault><fault xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"SystemError\"><reason>") < 0 ||
		    h2k_buf_xmlesc(&b, msg) < 0 ||
		    h2k_buf_printf(&b, "</reason></fault><localizedMessage>") < 0 ||
		    h2k_buf_xmlesc(&b, msg) < 0 ||
		    h2k_buf_printf(&b, "</localizedMessage></fault>") < 0) {
			h2k_buf_free(&b);
			return -1;
		}
	}
	rc = call0(v, "HttpNfcLeaseAbort", "HttpNfcLease", lease,
	    b.data ? b.data : "");
	h2k_buf_free(&b);
	if (rc < 0)
		return h2k_adderr("lease %s: abort", lease);
	return 0;
}

int
h2k_lease_complete(struct h2k_vim *v, const char *lease)
{
	if (call0(v, "HttpNfcLeaseComplete", "HttpNfcLease", lease, "") < 0)
		return h2k_adderr("lease %s: complete", lease);
	return 0;
}

/* The snapshot's VM (VirtualMachineSnapshot.vm). */
static int
snap_vm_cb(void *arg, xmlNodePtr obj)
{
	char **vm = arg;
	xmlNodePtr val = h2k_vim_prop(obj, "vm");

	if (val && !*vm && !(*vm = h2k_xml_text(val, NULL)))
		return -1;
	return 0;
}

struct snap_find {
	const char *snapshot;
	char *name, *desc;
	int found, seen_vm;
};

/* Depth-first through a VirtualMachineSnapshotTree list. */
static int
snap_walk(struct snap_find *f, xmlNodePtr list, const char *elem, int depth)
{
	if (depth > 64)
		return 0;
	for (xmlNodePtr n = h2k_xml_child(list, elem); n && !f->found;
	    n = h2k_xml_next(n, elem)) {
		char *m = h2k_xml_text(n, "snapshot");

		if (m && !strcmp(m, f->snapshot)) {
			f->found = 1;
			f->name = h2k_xml_text(n, "name");
			f->desc = h2k_xml_text(n, "description");
			free(m);
			return 0;
		}
		free(m);
		snap_walk(f, n, "childSnapshotList", depth + 1);
	}
	return 0;
}

static int
snap_tree_cb(void *arg, xmlNodePtr obj)
{
	struct snap_find *f = arg;
	xmlNodePtr val = h2k_vim_prop(obj, "snapshot");

	f->seen_vm = 1;
	if (val)
		snap_walk(f, val, "rootSnapshotList", 0);
	return 0;
}

/* 0: snapshot is a temporary snapshot of h2k-lease (see lease.h). */
static int
snapshot_is_ours(struct h2k_vim *v, const char *snapshot)
{
	static const char *const vprops[] = { "vm", NULL };
	static const char *const tprops[] = { "snapshot", NULL };
	struct snap_find f = { snapshot, NULL, NULL, 0, 0 };
	char *vm = NULL;
	int rc = -1;

	if (h2k_vim_get(v, "VirtualMachineSnapshot", snapshot, vprops,
	    snap_vm_cb, &vm) < 0)
		return -1;
	if (!vm || !*vm) {
		free(vm);
		return h2k_seterr(H2K_EX_NOTFOUND, "snapshot %s: not found "
		    "(no VM)", snapshot);
	}
	if (h2k_vim_get(v, "VirtualMachine", vm, tprops, snap_tree_cb, &f) < 0)
		goto out;
	if (!f.found) {
		h2k_seterr(H2K_EX_NOTFOUND, "snapshot %s: not in the snapshot "
		    "tree of VM %s", snapshot, vm);
		goto out;
	}
	if (!f.name || strncmp(f.name, H2K_SNAPSHOT_PREFIX,
	    strlen(H2K_SNAPSHOT_PREFIX)) != 0 || !f.desc ||
	    strcmp(f.desc, H2K_SNAPSHOT_DESC) != 0) {
		h2k_seterr(H2K_EX_STATE, "snapshot %s of VM %s is '%.100s', not "
		    "a temporary snapshot of h2k-lease", snapshot,
		    vm, f.name ? f.name : "");
		goto out;
	}
	rc = 0;
out:
	free(f.name);
	free(f.desc);
	free(vm);
	return rc;
}

int
h2k_snapshot_remove(struct h2k_vim *v, const char *snapshot, double timeout)
{
	xmlNodePtr ret;
	xmlDocPtr d;
	char *task;
	int rc;

	if (snapshot_is_ours(v, snapshot) < 0)
		return -1;

	/*
	 * removeChildren=false: only the temporary snapshot goes; anything a
	 * user took on top of it in the meantime stays.  consolidate=true so
	 * the delta disk is merged back rather than left for the admin.
	 */
	d = h2k_soap_call(v->soap, "RemoveSnapshot_Task",
	    "VirtualMachineSnapshot", snapshot,
	    "<removeChildren>false</removeChildren><consolidate>true</consolidate>",
	    &ret);
	if (!d)
		return h2k_adderr("remove snapshot %s", snapshot);
	task = ret ? h2k_xml_text(ret, "returnval") : NULL;
	xmlFreeDoc(d);
	if (!task || !*task) {
		free(task);
		return h2k_seterr(H2K_EX_NET,
		    "remove snapshot %s: no task in the server's answer", snapshot);
	}
	rc = h2k_vim_wait_task(v, task, timeout > 0 ? timeout : 600, NULL);
	free(task);
	if (rc < 0)
		return h2k_adderr("remove snapshot %s", snapshot);
	return 0;
}

struct urls_arg {
	const char *host;
	char **urls;
	char **pins;            /* parallel to urls; NULL: none given */
	size_t n;
	int found;
};

static int
urls_cb(void *arg, xmlNodePtr obj)
{
	struct urls_arg *a = arg;
	xmlNodePtr info = h2k_vim_prop(obj, "info");

	a->found = 1;
	if (!info)
		return 0;
	for (xmlNodePtr d = h2k_xml_child(info, "deviceUrl"); d;
	    d = h2k_xml_next(d, "deviceUrl")) {
		char *u, *fixed, *tp, *pin = NULL, **n;

		if (a->n >= H2K_LEASE_MAX_URLS)
			return h2k_seterr(H2K_EX_NET, "more than %d device URLs",
			    H2K_LEASE_MAX_URLS);
		if (!(u = h2k_xml_text(d, "url")))
			continue;
		fixed = h2k_export_fix_url(u, a->host);
		free(u);
		/* a thumbprint that does not parse pins nothing */
		if ((tp = h2k_xml_text(d, "sslThumbprint")) && *tp)
			pin = h2k_thumbprint_norm(tp);
		free(tp);
		if (!fixed || !(n = h2k_realloc(a->urls, (a->n + 1) * sizeof *n))) {
			free(fixed);
			free(pin);
			return -1;
		}
		a->urls = n;
		if (!(n = h2k_realloc(a->pins, (a->n + 1) * sizeof *n))) {
			free(fixed);
			free(pin);
			return -1;
		}
		a->pins = n;
		a->pins[a->n] = pin;
		a->urls[a->n++] = fixed;
	}
	return 0;
}

int
h2k_lease_device_urls(struct h2k_vim *v, const char *lease, char ***urls,
    char ***pins, size_t *n)
{
	static const char *const props[] = { "info", NULL };
	struct urls_arg a = { h2k_soap_host(v->soap), NULL, NULL, 0, 0 };

	*urls = *pins = NULL;
	*n = 0;
	if (h2k_vim_get(v, "HttpNfcLease", lease, props, urls_cb, &a) < 0) {
		h2k_lease_urls_free(a.urls, a.n);
		h2k_lease_urls_free(a.pins, a.n);
		return -1;
	}
	if (!a.found)
		return h2k_seterr(H2K_EX_NOTFOUND, "lease %s: not found", lease);
	*urls = a.urls;
	*pins = a.pins;
	*n = a.n;
	return 0;
}

void
h2k_lease_urls_free(char **urls, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(urls[i]);
	free(urls);
}
