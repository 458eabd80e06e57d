/*
 * vim.c - the vim25 operations h2k needs: ServiceContent, sessions,
 * property collection by container view, inventory search, tasks.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * Paging.  h2k_vim_each creates a ContainerView over the root (recursive),
 * asks the PropertyCollector for page_size objects at a time
 * (RetrievePropertiesEx with options.maxObjects) and follows the token
 * with ContinueRetrievePropertiesEx.  Each page's document is handed to
 * the callback object by object and freed before the next page is asked
 * for, so memory is one page whatever the inventory.  When the caller stops
 * early the outstanding result is cancelled (CancelRetrievePropertiesEx)
 * and the view is always destroyed, so nothing is left on the server.
 *
 * The server decides how many pages there are, so the loop is bounded on
 * our side: a repeated token, more than H2K_VIM_MAX_EMPTY_PAGES pages in a
 * row without objects, or more pages than H2K_VIM_MAX_OBJECTS objects fill
 * at page_size each end the listing with H2K_EX_NET.
 *
 * Task waiting polls info with a backoff from 100 ms doubling to 2 s,
 * bounded by the caller's timeout (an hour when the caller gives none);
 * every poll is itself bounded by the SOAP deadline (soap.h).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "h2k.h"
#include "vim.h"

#define SI_TYPE "ServiceInstance"

static char *
moref_text(xmlNodePtr ret, const char *name)
{
	return h2k_xml_text(ret, name);
}

int
h2k_vim_vercmp(const char *a, const char *b)
{
	while (*a || *b) {
		char *ea, *eb;
		long x = strtol(a, &ea, 10), y = strtol(b, &eb, 10);

		if (x != y)
			return x < y ? -1 : 1;
		a = *ea == '.' ? ea + 1 : ea;
		b = *eb == '.' ? eb + 1 : eb;
		if (ea == a && eb == b && !*a && !*b)
			break;
		if (*a && !(*a >= '0' && *a <= '9'))
			break;
		if (*b && !(*b >= '0' && *b <= '9'))
			break;
	}
	return 0;
}

static int
service_content(struct h2k_vim *v)
{
	xmlNodePtr ret, rv, about;
	xmlDocPtr doc;
	int rc = -1;

	doc = h2k_soap_call(v->soap, "RetrieveServiceContent", SI_TYPE, SI_TYPE,
	    NULL, &ret);
	if (!doc)
		return -1;
	if (!(rv = h2k_xml_child(ret, "returnval")) ||
	    !(about = h2k_xml_child(rv, "about"))) {
		h2k_seterr(H2K_EX_NET, "%s: RetrieveServiceContent: no ServiceContent "
		    "in the answer (not a vSphere SDK endpoint?)",
		    h2k_soap_host(v->soap));
		goto out;
	}
#define GET(field, node, name) do { \
	v->field = h2k_xml_text(node, name); } while (0)
	GET(about_type, about, "apiType");
	GET(about_version, about, "version");
	GET(about_api_version, about, "apiVersion");
	GET(about_name, about, "fullName");
	GET(instance_uuid, about, "instanceUuid");
	v->root_folder = moref_text(rv, "rootFolder");
	v->property_collector = moref_text(rv, "propertyCollector");
	v->view_manager = moref_text(rv, "viewManager");
	v->session_manager = moref_text(rv, "sessionManager");
	v->search_index = moref_text(rv, "searchIndex");
	v->ovf_manager = moref_text(rv, "ovfManager");
#undef GET
	if (!v->root_folder || !v->property_collector || !v->session_manager) {
		h2k_seterr(H2K_EX_NET, "%s: ServiceContent lacks rootFolder, "
		    "propertyCollector or sessionManager", h2k_soap_host(v->soap));
		goto out;
	}
	/* Speak the server's version when it is older than ours: old hosts
	 * refuse SOAPActions they do not know. */
	if (v->about_api_version &&
	    h2k_vim_vercmp(v->about_api_version, h2k_soap_api_version(v->soap)) < 0 &&
	    h2k_soap_set_api_version(v->soap, v->about_api_version) < 0)
		goto out;
	rc = 0;
out:
	xmlFreeDoc(doc);
	return rc;
}

struct h2k_vim *
h2k_vim_connect(const char *url, const struct h2k_tls *tls, const char *cookie)
{
	struct h2k_vim *v;

	if (!(v = h2k_calloc(1, sizeof *v)))
		return NULL;
	if (!(v->soap = h2k_soap_new(url, tls)))
		goto fail;
	if (cookie && h2k_soap_set_cookie(v->soap, cookie) < 0)
		goto fail;
	if (service_content(v) < 0)
		goto fail;
	return v;
fail:
	h2k_vim_free(v);
	return NULL;
}

struct h2k_vim *
h2k_vim_from_session(const struct h2k_session *s)
{
	struct h2k_tls tls = {0};

	if (!s || !s->url || !*s->url)
		return h2k_seterr(H2K_EX_SESSION, "session has no server URL; "
		    "run h2k-login"), NULL;
	if (!s->cookie || !*s->cookie)
		return h2k_seterr(H2K_EX_SESSION, "session has no cookie; "
		    "run h2k-login"), NULL;
	tls.insecure = s->insecure;
	tls.thumbprint = s->thumbprint;
	tls.ca_file = s->ca_file;
	tls.ca_pem = s->ca_pem;
	return h2k_vim_connect(s->url, &tls, s->cookie);
}

void
h2k_vim_free(struct h2k_vim *v)
{
	if (!v)
		return;
	h2k_soap_free(v->soap);
	free(v->about_type);
	free(v->about_version);
	free(v->about_api_version);
	free(v->about_name);
	free(v->instance_uuid);
	free(v->root_folder);
	free(v->property_collector);
	free(v->view_manager);
	free(v->session_manager);
	free(v->search_index);
	free(v->ovf_manager);
	free(v);
}

/*
 * Control characters other than tab, LF and CR have no XML form at all,
 * and invalid UTF-8 makes the whole request malformed: the server would
 * answer a parse error, and might log the body holding the password.
 */
int
h2k_vim_xml_carries(const char *s)
{
	size_t n = strlen(s);

	for (size_t i = 0; i < n;) {
		unsigned cp;
		size_t k = h2k_utf8_seq((const unsigned char *)s + i, n - i, &cp);
		if (k == 0 || (cp < 0x20 && cp != '\t' && cp != '\n' &&
		    cp != '\r') || cp == 0xfffe || cp == 0xffff)
			return 0;
		i += k;
	}
	return 1;
}

int
h2k_vim_login(struct h2k_vim *v, const char *user, const char *password)
{
	struct h2k_buf b = {.secret = 1};  /* the password */
	xmlDocPtr doc;
	int rc = -1;

	if (!user || !*user)
		return h2k_seterr(H2K_EX_USAGE, "no user name given");
	if (!password)
		password = "";
	if (!h2k_vim_xml_carries(user))
		return h2k_seterr(H2K_EX_USAGE, "the user name holds a control "
		    "character or invalid UTF-8, which a SOAP request cannot carry");
	if (!h2k_vim_xml_carries(password))
		return h2k_seterr(H2K_EX_USAGE, "the password holds a control "
		    "character or invalid UTF-8, which a SOAP request cannot carry");
	if (h2k_buf_append(&b, "<userName>", 10) < 0 ||
	    h2k_buf_xmlesc(&b, user) < 0 ||
	    h2k_buf_append(&b, "</userName><password>", 21) < 0 ||
	    h2k_buf_xmlesc(&b, password) < 0 ||
	    h2k_buf_append(&b, "</password>", 11) < 0)
		goto out;
	doc = h2k_soap_call(v->soap, "Login", "SessionManager",
	    v->session_manager, b.data, NULL);
	if (!doc) {
		if (!strcmp(h2k_soap_fault_type(), "InvalidLogin"))
			h2k_seterr(H2K_EX_SESSION, "%s: login as %s refused: "
			    "incorrect user name or password",
			    h2k_soap_host(v->soap), user);
		goto out;
	}
	xmlFreeDoc(doc);
	if (!h2k_soap_cookie(v->soap)) {
		h2k_seterr(H2K_EX_SESSION, "%s: login answered without a "
		    "vmware_soap_session cookie", h2k_soap_host(v->soap));
		goto out;
	}
	rc = 0;
out:
	h2k_buf_free(&b);
	return rc;
}

int
h2k_vim_logout(struct h2k_vim *v)
{
	xmlDocPtr doc = h2k_soap_call(v->soap, "Logout", "SessionManager",
	    v->session_manager, NULL, NULL);

	if (!doc)
		return -1;
	xmlFreeDoc(doc);
	return 0;
}

static int
append_moref(struct h2k_buf *b, const char *elem, const char *type,
    const char *value)
{
	if (h2k_buf_printf(b, "<%s type=\"%s\">", elem, type) < 0 ||
	    h2k_buf_xmlesc(b, value) < 0)
		return -1;
	return h2k_buf_printf(b, "</%s>", elem);
}

static int
append_propset(struct h2k_buf *b, const char *type, const char *const *props)
{
	if (h2k_buf_printf(b, "<propSet><type>%s</type>", type) < 0)
		return -1;
	if (!props) {
		if (h2k_buf_printf(b, "<all>true</all>") < 0)
			return -1;
	} else {
		if (h2k_buf_printf(b, "<all>false</all>") < 0)
			return -1;
		for (; *props; props++)
			if (h2k_buf_printf(b, "<pathSet>") < 0 ||
			    h2k_buf_xmlesc(b, *props) < 0 ||
			    h2k_buf_printf(b, "</pathSet>") < 0)
				return -1;
	}
	return h2k_buf_printf(b, "</propSet>");
}

/*
 * Objects reach fn while the page is still arriving (h2k_soap_call_stream
 * frees each after fn).  The continuation token precedes the objects in a
 * RetrieveResult; it is picked up on the first object so that an early stop
 * can still cancel the result set, else from what is left of the page.
 */
struct page {
	h2k_vim_obj_fn fn;
	void *arg;
	char *token;
	int oom;
	long nobj;              /* objects in the current page */
};

static int
page_cb(void *arg, xmlNodePtr obj)
{
	struct page *p = arg;
	xmlNodePtr t;

	if (!p->token && obj->parent && (t = h2k_xml_child(obj->parent, "token")) &&
	    !(p->token = h2k_xml_text(t, NULL)))
		return -1;
	p->nobj++;
	return p->fn(p->arg, obj);
}

/* FNV-1a: tokens seen are remembered by hash, 8 bytes a page. */
static unsigned long long
token_hash(const char *s)
{
	unsigned long long h = 14695981039346656037ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static int
page_call(struct h2k_vim *v, const char *method, const char *body,
    struct page *p)
{
	xmlNodePtr ret, rv;
	xmlDocPtr doc;

	free(p->token);
	p->token = NULL;
	p->nobj = 0;
	doc = h2k_soap_call_stream(v->soap, method, "PropertyCollector",
	    v->property_collector, body, "objects", 5, page_cb, p, &ret);
	if (!doc)
		return -1;
	if (!p->token && (rv = h2k_xml_child(ret, "returnval")) &&
	    h2k_xml_child(rv, "token") && !(p->token = h2k_xml_text(rv, "token"))) {
		xmlFreeDoc(doc);
		return -1;
	}
	xmlFreeDoc(doc);
	return 0;
}

static int
token_body(struct h2k_buf *b, const char *token)
{
	h2k_buf_free(b);
	if (h2k_buf_printf(b, "<token>") < 0 || h2k_buf_xmlesc(b, token) < 0 ||
	    h2k_buf_printf(b, "</token>") < 0)
		return -1;
	return 0;
}

/*
 * One RetrievePropertiesEx (specs already built into spec) and its
 * continuations.  max_objs: how many objects the request can have as
 * answer (the number of morefs named, for a lookup without traversal;
 * H2K_VIM_MAX_OBJECTS for a listing): a continuation after more than that
 * is a loop, however much "progress" its pages seem to make.
 */
static int
retrieve_paged(struct h2k_vim *v, const char *spec, int page_size,
    long max_objs, h2k_vim_obj_fn fn, void *arg)
{
	struct page p = { fn, arg, NULL, 0, 0 };
	struct h2k_buf b = {0};
	unsigned long long *seen = NULL;
	long pages = 1, maxpages, objs, empty = 0;
	int rc = -1;

	/* Each page holds page_size objects at most (fewer if the server
	 * caps it); pages * page_size beyond H2K_VIM_MAX_OBJECTS is more than
	 * any vCenter holds. */
	maxpages = page_size > 0 ? H2K_VIM_MAX_OBJECTS / page_size : 0;
	if (maxpages < H2K_VIM_MIN_PAGES)
		maxpages = H2K_VIM_MIN_PAGES;
	/* A lookup (one VM and what it names: h2k_vim_get_hops) is a page or
	 * two on any vCenter; one object a page for ever must not cost a
	 * thousand round trips, each under its own deadline. */
	if (max_objs < H2K_VIM_MAX_OBJECTS && 2 + max_objs / 256 < maxpages)
		maxpages = 2 + max_objs / 256;

	if (h2k_buf_printf(&b, "<specSet>%s</specSet>", spec) < 0)
		goto out;
	if (page_size > 0 && h2k_buf_printf(&b,
	    "<options><maxObjects>%d</maxObjects></options>", page_size) < 0)
		goto out;
	if (page_size <= 0 && h2k_buf_printf(&b, "<options></options>") < 0)
		goto out;
	if (page_call(v, "RetrievePropertiesEx", b.data, &p) < 0)
		goto cancel;
	objs = p.nobj;
	while (p.token) {
		/*
		 * A hostile or broken server can hand out tokens forever:
		 * a token seen before is a loop, pages without objects make
		 * no progress, and the page count is bounded by the largest
		 * inventory h2k accepts.
		 */
		unsigned long long h = token_hash(p.token), *ns;

		for (long i = 0; i < pages - 1; i++)
			if (seen[i] == h) {
				/* The token is the server's: printable only. */
				char tok[41];
				size_t k;

				for (k = 0; k < sizeof tok - 1 && p.token[k]; k++)
					tok[k] = p.token[k] > 0x20 && p.token[k] < 0x7f ?
					    p.token[k] : '?';
				tok[k] = '\0';
				h2k_seterr(H2K_EX_NET, "%s: ContinueRetrievePropertiesEx: "
				    "the server repeats continuation token '%s' "
				    "after %ld pages (paging loop)",
				    h2k_soap_host(v->soap), tok, pages);
				goto cancel;
			}
		if (p.nobj == 0 && ++empty > H2K_VIM_MAX_EMPTY_PAGES) {
			h2k_seterr(H2K_EX_NET, "%s: ContinueRetrievePropertiesEx: "
			    "%d pages in a row without objects but with a "
			    "continuation token (paging loop)",
			    h2k_soap_host(v->soap), H2K_VIM_MAX_EMPTY_PAGES + 1);
			goto cancel;
		}
		if (p.nobj)
			empty = 0;
		if (objs > max_objs && max_objs < H2K_VIM_MAX_OBJECTS) {
			h2k_seterr(H2K_EX_NET, "%s: ContinueRetrievePropertiesEx: "
			    "%ld objects for %ld asked for, and a continuation "
			    "token (paging loop)", h2k_soap_host(v->soap), objs,
			    max_objs);
			goto cancel;
		}
		if (pages >= maxpages && max_objs < H2K_VIM_MAX_OBJECTS) {
			h2k_seterr(H2K_EX_NET, "%s: ContinueRetrievePropertiesEx: "
			    "more than %ld pages for a lookup of at most %ld "
			    "objects (paging loop)", h2k_soap_host(v->soap),
			    maxpages, max_objs);
			goto cancel;
		}
		if (pages >= maxpages || objs > H2K_VIM_MAX_OBJECTS) {
			h2k_seterr(H2K_EX_NET, "%s: ContinueRetrievePropertiesEx: "
			    "more than %ld pages or %d objects: more than any "
			    "inventory holds (paging loop)",
			    h2k_soap_host(v->soap), maxpages, H2K_VIM_MAX_OBJECTS);
			goto cancel;
		}
		if (!(ns = h2k_realloc(seen, (size_t)pages * sizeof *seen)))
			goto cancel;
		seen = ns;
		seen[pages - 1] = h;
		if (token_body(&b, p.token) < 0 ||
		    page_call(v, "ContinueRetrievePropertiesEx", b.data, &p) < 0)
			goto cancel;
		pages++;
		objs += p.nobj;
	}
	rc = 0;
	goto out;
cancel:
	if (p.token) {
		/* Keep the caller's error, free the server's result set. */
		char msg[1024];
		int code = h2k_errcode();
		xmlDocPtr d;

		snprintf(msg, sizeof msg, "%s", h2k_errmsg());
		if (token_body(&b, p.token) == 0 &&
		    (d = h2k_soap_call(v->soap, "CancelRetrievePropertiesEx",
		    "PropertyCollector", v->property_collector, b.data, NULL)))
			xmlFreeDoc(d);
		h2k_seterr(code, "%s", msg);
	}
out:
	free(seen);
	free(p.token);
	h2k_buf_free(&b);
	return rc;
}

const char *
h2k_vim_container_type(const char *root, const char **value)
{
	static const struct { const char *pfx, *type; } t[] = {
		{ "group-", "Folder" }, { "datacenter-", "Datacenter" },
		{ "domain-c", "ClusterComputeResource" },
		{ "domain-s", "ComputeResource" }, { "resgroup-", "ResourcePool" },
		{ "host-", "HostSystem" }, { "ha-folder", "Folder" },
		{ "ha-datacenter", "Datacenter" }, { "ha-root-pool", "ResourcePool" },
		{ "ha-host", "HostSystem" }, { "ha-compute-res", "ComputeResource" },
	};
	static _Thread_local char type[64];
	const char *c = strchr(root, ':');

	*value = root;
	if (c && (size_t)(c - root) < sizeof type) {
		memcpy(type, root, (size_t)(c - root));
		type[c - root] = '\0';
		*value = c + 1;
		return type;
	}
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		if (!strncmp(root, t[i].pfx, strlen(t[i].pfx)))
			return t[i].type;
	return "Folder";
}

int
h2k_vim_each_spec(struct h2k_vim *v, const char *root,
    const struct h2k_vim_spec *specs, int nspecs, int page_size,
    h2k_vim_obj_fn fn, void *arg)
{
	struct h2k_buf b = {0}, spec = {0};
	const char *ctype, *cval;
	char *view = NULL;
	xmlNodePtr ret, rv;
	xmlDocPtr doc;
	int rc = -1;

	ctype = h2k_vim_container_type(root ? root : v->root_folder, &cval);
	if (append_moref(&b, "container", ctype, cval) < 0)
		goto out;
	for (int i = 0; i < nspecs; i++)
		if (h2k_buf_printf(&b, "<type>%s</type>", specs[i].type) < 0)
			goto out;
	if (h2k_buf_printf(&b, "<recursive>true</recursive>") < 0)
		goto out;
	doc = h2k_soap_call(v->soap, "CreateContainerView", "ViewManager",
	    v->view_manager ? v->view_manager : "ViewManager", b.data, &ret);
	h2k_buf_free(&b);
	if (!doc)
		goto out;
	rv = h2k_xml_child(ret, "returnval");
	view = rv ? h2k_xml_text(rv, NULL) : NULL;
	xmlFreeDoc(doc);
	if (!rv || (view && !*view)) {
		h2k_seterr(H2K_EX_NET, "CreateContainerView: no view in answer");
		goto out;
	}
	if (!view)
		goto out;
	for (int i = 0; i < nspecs; i++)
		if (append_propset(&spec, specs[i].type, specs[i].props) < 0)
			goto out;
	if (h2k_buf_append(&spec, "<objectSet>", 11) < 0 ||
	    append_moref(&spec, "obj", "ContainerView", view) < 0 ||
	    h2k_buf_printf(&spec, "<skip>true</skip><selectSet xsi:type=\"TraversalSpec\">"
	    "<name>view</name><type>ContainerView</type><path>view</path>"
	    "<skip>false</skip></selectSet></objectSet>") < 0)
		goto out;
	rc = retrieve_paged(v, spec.data, page_size, H2K_VIM_MAX_OBJECTS, fn, arg);
out:
	if (view && *view) {
		/* Always destroy the view; a listing error wins over a
		 * DestroyView error. */
		char msg[1024];
		int code = h2k_errcode();

		snprintf(msg, sizeof msg, "%s", h2k_errmsg());
		doc = h2k_soap_call(v->soap, "DestroyView", "ContainerView", view,
		    NULL, NULL);
		if (doc)
			xmlFreeDoc(doc);
		if (rc < 0)
			h2k_seterr(code, "%s", msg);
		else if (!doc)
			rc = -1;
	}
	free(view);
	h2k_buf_free(&b);
	h2k_buf_free(&spec);
	return rc;
}

int
h2k_vim_each(struct h2k_vim *v, const char *root, const char *type,
    const char *const *props, int page_size, h2k_vim_obj_fn fn, void *arg)
{
	struct h2k_vim_spec s = { type, props };

	return h2k_vim_each_spec(v, root, &s, 1, page_size, fn, arg);
}

int
h2k_vim_get(struct h2k_vim *v, const char *type, const char *moref,
    const char *const *props, h2k_vim_obj_fn fn, void *arg)
{
	struct h2k_buf spec = {0};
	int rc = -1;

	if (append_propset(&spec, type, props) < 0 ||
	    h2k_buf_append(&spec, "<objectSet>", 11) < 0 ||
	    append_moref(&spec, "obj", type, moref) < 0 ||
	    h2k_buf_printf(&spec, "<skip>false</skip></objectSet>") < 0)
		goto out;
	rc = retrieve_paged(v, spec.data, 0, 1, fn, arg);
out:
	h2k_buf_free(&spec);
	return rc;
}

int
h2k_vim_get_list(struct h2k_vim *v, const char *type,
    const char *const *morefs, int n, const char *const *props,
    h2k_vim_obj_fn fn, void *arg)
{
	struct h2k_buf spec = {0};
	int rc = -1;

	if (n <= 0)
		return 0;
	if (append_propset(&spec, type, props) < 0)
		goto out;
	for (int i = 0; i < n; i++)
		if (h2k_buf_append(&spec, "<objectSet>", 11) < 0 ||
		    append_moref(&spec, "obj", type, morefs[i]) < 0 ||
		    h2k_buf_printf(&spec, "<skip>false</skip></objectSet>") < 0)
			goto out;
	rc = retrieve_paged(v, spec.data, n, n, fn, arg);
out:
	h2k_buf_free(&spec);
	return rc;
}

/* TraversalSpecs, each defined in full; a hop's next ones by name. */
static int
append_hops(struct h2k_buf *b, const struct h2k_vim_hop *hops, int n)
{
	for (int i = 0; i < n; i++) {
		if (h2k_buf_printf(b, "<selectSet xsi:type=\"TraversalSpec\">"
		    "<name>%s</name><type>%s</type><path>%s</path>"
		    "<skip>false</skip>", hops[i].name, hops[i].type,
		    hops[i].path) < 0)
			return -1;
		for (const char *const *nx = hops[i].next; nx && *nx; nx++)
			if (h2k_buf_printf(b, "<selectSet><name>%s</name>"
			    "</selectSet>", *nx) < 0)
				return -1;
		if (h2k_buf_printf(b, "</selectSet>") < 0)
			return -1;
	}
	return 0;
}

int
h2k_vim_get_hops(struct h2k_vim *v, const char *type, const char *moref,
    const struct h2k_vim_hop *hops, int nhops,
    const struct h2k_vim_spec *specs, int nspecs, long max_objs,
    h2k_vim_obj_fn fn, void *arg)
{
	struct h2k_buf spec = {0};
	int rc = -1;

	for (int i = 0; i < nspecs; i++)
		if (append_propset(&spec, specs[i].type, specs[i].props) < 0)
			goto out;
	if (h2k_buf_append(&spec, "<objectSet>", 11) < 0 ||
	    append_moref(&spec, "obj", type, moref) < 0 ||
	    h2k_buf_printf(&spec, "<skip>false</skip>") < 0 ||
	    append_hops(&spec, hops, nhops) < 0 ||
	    h2k_buf_printf(&spec, "</objectSet>") < 0)
		goto out;
	rc = retrieve_paged(v, spec.data, 0, max_objs, fn, arg);
out:
	h2k_buf_free(&spec);
	return rc;
}

int
h2k_vim_get_refs(struct h2k_vim *v, const struct h2k_vim_ref *refs, int n,
    const struct h2k_vim_spec *specs, int nspecs, h2k_vim_obj_fn fn,
    void *arg)
{
	struct h2k_buf spec = {0};
	int rc = -1;

	if (n <= 0)
		return 0;
	for (int i = 0; i < nspecs; i++)
		if (append_propset(&spec, specs[i].type, specs[i].props) < 0)
			goto out;
	for (int i = 0; i < n; i++)
		if (h2k_buf_append(&spec, "<objectSet>", 11) < 0 ||
		    append_moref(&spec, "obj", refs[i].type, refs[i].moref) < 0 ||
		    h2k_buf_printf(&spec, "<skip>false</skip></objectSet>") < 0)
			goto out;
	/* An object gone meanwhile is left out rather than failing the rest. */
	if (h2k_buf_printf(&spec, "<reportMissingObjectsInResults>true"
	    "</reportMissingObjectsInResults>") < 0)
		goto out;
	rc = retrieve_paged(v, spec.data, n, n, fn, arg);
out:
	h2k_buf_free(&spec);
	return rc;
}

xmlNodePtr
h2k_vim_prop(xmlNodePtr obj, const char *name)
{
	for (xmlNodePtr p = h2k_xml_child(obj, "propSet"); p;
	    p = h2k_xml_next(p, "propSet")) {
		xmlNodePtr n = h2k_xml_child(p, "name");
		xmlChar *t;
		int eq;

		if (!n)
			continue;
		/* Property names are plain text children; compare without
		 * copying. */
		if (n->children && n->children->type == XML_TEXT_NODE &&
		    !n->children->next) {
			if (!strcmp((const char *)n->children->content, name))
				return h2k_xml_child(p, "val");
			continue;
		}
		t = xmlNodeGetContent(n);
		eq = t && !strcmp((const char *)t, name);
		xmlFree(t);
		if (eq)
			return h2k_xml_child(p, "val");
	}
	return NULL;
}

struct text_arg {
	const char *prop;
	char *out;
	int found;
};

static int
text_cb(void *arg, xmlNodePtr obj)
{
	struct text_arg *a = arg;
	xmlNodePtr val = h2k_vim_prop(obj, a->prop);

	a->found = 1;
	if (val && !(a->out = h2k_xml_text(val, NULL)))
		return -1;
	return 0;
}

char *
h2k_vim_get_text(struct h2k_vim *v, const char *type, const char *moref,
    const char *prop)
{
	const char *props[] = { prop, NULL };
	struct text_arg a = { prop, NULL, 0 };

	if (h2k_vim_get(v, type, moref, props, text_cb, &a) < 0) {
		free(a.out);
		return NULL;
	}
	if (!a.found)
		return h2k_seterr(H2K_EX_NOTFOUND, "%s %s: not found", type,
		    moref), NULL;
	if (!a.out)
		return h2k_seterr(H2K_EX_NOTFOUND, "%s %s: %s is not set", type,
		    moref, prop), NULL;
	return a.out;
}

struct alive_arg {
	char *user;
	int set;
};

static int
alive_cb(void *arg, xmlNodePtr obj)
{
	struct alive_arg *a = arg;
	xmlNodePtr val = h2k_vim_prop(obj, "currentSession");

	if (val) {
		a->set = 1;
		if (!(a->user = h2k_xml_text(val, "userName")) &&
		    !(a->user = h2k_strdup("")))
			return -1;
	}
	return 0;
}

int
h2k_vim_session_alive(struct h2k_vim *v, char **user)
{
	const char *props[] = { "currentSession", NULL };
	struct alive_arg a = { NULL, 0 };

	if (user)
		*user = NULL;
	if (h2k_vim_get(v, "SessionManager", v->session_manager, props,
	    alive_cb, &a) < 0) {
		free(a.user);
		if (h2k_errcode() == H2K_EX_SESSION)
			return 0;
		return -1;
	}
	if (!a.set) {
		free(a.user);
		return 0;
	}
	if (user)
		*user = a.user;
	else
		free(a.user);
	return 1;
}

char *
h2k_vim_find_path(struct h2k_vim *v, const char *path, char **type)
{
	struct h2k_buf b = {0};
	xmlNodePtr ret, rv;
	xmlDocPtr doc;
	char *val = NULL;

	if (type)
		*type = NULL;
	if (!v->search_index)
		return h2k_seterr(H2K_EX_NET, "server has no SearchIndex"), NULL;
	/* The API's own form has no leading slash ("DC/vm/folder/name"). */
	if (h2k_buf_printf(&b, "<inventoryPath>") < 0 ||
	    h2k_buf_xmlesc(&b, path + (path[0] == '/' && path[1])) < 0 ||
	    h2k_buf_printf(&b, "</inventoryPath>") < 0) {
		h2k_buf_free(&b);
		return NULL;
	}
	doc = h2k_soap_call(v->soap, "FindByInventoryPath", "SearchIndex",
	    v->search_index, b.data, &ret);
	h2k_buf_free(&b);
	if (!doc)
		return NULL;
	if (!(rv = h2k_xml_child(ret, "returnval"))) {
		h2k_seterr(H2K_EX_NOTFOUND, "%s: not found", path);
		goto out;
	}
	if (!(val = h2k_xml_text(rv, NULL)))
		goto out;
	if (type) {
		xmlChar *t = xmlGetProp(rv, (const xmlChar *)"type");
		*type = h2k_strdup(t ? (const char *)t : "");
		xmlFree(t);
		if (!*type) {
			free(val);
			val = NULL;
		}
	}
out:
	xmlFreeDoc(doc);
	return val;
}

char *
h2k_vim_find_vm(struct h2k_vim *v, const char *path)
{
	char *type, *val = h2k_vim_find_path(v, path, &type);

	if (!val) {
		if (h2k_errcode() == H2K_EX_NOTFOUND)
			h2k_seterr(H2K_EX_NOTFOUND, "%s: no such VM", path);
		return NULL;
	}
	if (strcmp(type, "VirtualMachine")) {
		h2k_seterr(H2K_EX_NOTFOUND, "%s: not a VM (it is a %s)", path,
		    type);
		free(val);
		val = NULL;
	}
	free(type);
	return val;
}

struct task_arg {
	char *state;
	char *result;
	char *msg;
	char *fault;
};

static int
task_cb(void *arg, xmlNodePtr obj)
{
	struct task_arg *a = arg;
	xmlNodePtr info = h2k_vim_prop(obj, "info"), e, f;

	if (!info)
		return 0;
	free(a->state);
	a->state = h2k_xml_text(info, "state");
	if (h2k_xml_child(info, "result")) {
		free(a->result);
		a->result = h2k_xml_text(info, "result");
	}
	if ((e = h2k_xml_child(info, "error"))) {
		free(a->msg);
		a->msg = h2k_xml_text(e, "localizedMessage");
		if ((f = h2k_xml_child(e, "fault"))) {
			free(a->fault);
			a->fault = h2k_xml_type(f);
		}
	}
	return 0;
}

int
h2k_vim_wait_task(struct h2k_vim *v, const char *task, double timeout,
    char **result)
{
	const char *props[] = { "info", NULL };
	struct task_arg a = {0};
	double t0 = h2k_monotime(), delay = 0.1;
	int rc = -1;

	if (result)
		*result = NULL;
	if (timeout <= 0)
		timeout = 3600;
	for (;;) {
		if (h2k_vim_get(v, "Task", task, props, task_cb, &a) < 0)
			goto out;
		if (!a.state) {
			h2k_seterr(H2K_EX_NET, "task %s: no info.state", task);
			goto out;
		}
		if (!strcmp(a.state, "success")) {
			if (result) {
				*result = a.result;
				a.result = NULL;
			}
			rc = 0;
			goto out;
		}
		if (!strcmp(a.state, "error")) {
			h2k_seterr(h2k_soap_fault_class(a.fault), "task %s: %s%s%s",
			    task, a.fault ? a.fault : "error",
			    a.msg && *a.msg ? ": " : "", a.msg ? a.msg : "");
			goto out;
		}
		if (h2k_monotime() - t0 + delay > timeout) {
			h2k_seterr(H2K_EX_NET, "task %s: still %s after %.0f s",
			    task, a.state, timeout);
			goto out;
		}
		struct timespec ts = { (time_t)delay,
		    (long)((delay - (double)(time_t)delay) * 1e9) };
		nanosleep(&ts, NULL);
		if ((delay *= 2) > 2)
			delay = 2;
	}
out:
	free(a.state);
	free(a.result);
	free(a.msg);
	free(a.fault);
	return rc;
}
