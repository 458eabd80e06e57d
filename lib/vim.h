/*
 * vim.h - vSphere API (vim25) operations h2k needs, over soap.h.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 */
#ifndef H2K_VIM_H
#define H2K_VIM_H

#include "session.h"
#include "soap.h"

struct h2k_vim {
	struct h2k_soap *soap;
	/* AboutInfo */
	char *about_type;        /* "VirtualCenter" or "HostAgent" */
	char *about_version;     /* "8.0.3" */
	char *about_api_version; /* "8.0.3.0" */
	char *about_name;        /* fullName */
	char *instance_uuid;
	/* ServiceContent morefs (values; types are implied) */
	char *root_folder, *property_collector, *view_manager, *session_manager,
	     *search_index, *ovf_manager;
};

/*
 * RetrieveServiceContent on url.  With cookie non-NULL the connection
 * reuses that session.  Certificate/pin failures give H2K_EX_TLS before any
 * credential is sent (RetrieveServiceContent carries none).
 */
struct h2k_vim *h2k_vim_connect(const char *url, const struct h2k_tls *tls,
    const char *cookie);
/* Connect with what a session file holds (URL, pin, insecure, CA, cookie). */
struct h2k_vim *h2k_vim_from_session(const struct h2k_session *s);
void h2k_vim_free(struct h2k_vim *v);

/* SessionManager.Login; bad credentials -> H2K_EX_SESSION "login refused". */
int h2k_vim_login(struct h2k_vim *v, const char *user, const char *password);
int h2k_vim_logout(struct h2k_vim *v);
/*
 * Is the session still alive?  1 yes (*user set if non-NULL, caller frees),
 * 0 expired/unauthenticated, -1 error (network, TLS).
 */
int h2k_vim_session_alive(struct h2k_vim *v, char **user);

/*
 * Called once per object of a RetrievePropertiesEx/Continue page.
 * obj is the <objects> (ObjectContent) element: its <obj> and <propSet>
 * children.  Return -1 to stop (error already set).
 */
typedef int (*h2k_vim_obj_fn)(void *arg, xmlNodePtr obj);

/*
 * Every object of type under the container view on root (NULL: root folder,
 * recursive), with the given properties (props NULL: all of them; an empty
 * list: none, just the objects), paged by page_size objects per
 * round trip (RetrievePropertiesEx then ContinueRetrievePropertiesEx); the
 * page document is freed before the next is fetched, so memory is bounded
 * by the page, not the inventory.  The view is destroyed at the end.
 */
/*
 * Bounds on a server's paging (RetrievePropertiesEx continuations): a
 * listing stops with H2K_EX_NET when the server repeats a token, sends more
 * than H2K_VIM_MAX_EMPTY_PAGES pages in a row without objects, sends more
 * than H2K_VIM_MAX_OBJECTS objects, or more pages than that many objects
 * fill at page_size each (at least H2K_VIM_MIN_PAGES pages); a lookup of N
 * named objects (h2k_vim_get, h2k_vim_get_list) stops when a continuation
 * follows more than N objects.
 */
#define H2K_VIM_MAX_OBJECTS 1000000
#define H2K_VIM_MAX_EMPTY_PAGES 8
#define H2K_VIM_MIN_PAGES 1000
int h2k_vim_each(struct h2k_vim *v, const char *root, const char *type,
    const char *const *props, int page_size, h2k_vim_obj_fn fn, void *arg);

/*
 * The same over several types at once (one view, one paged pass): specs[i]
 * names a type and its properties (props NULL: all).  fn tells the types
 * apart by the type attribute of the ObjectContent's <obj>.  root: NULL for
 * the root folder, a moref value (type inferred from vSphere's prefixes:
 * group- Folder, datacenter- Datacenter, domain-c cluster, resgroup-,
 * host-) or "Type:value".
 */
struct h2k_vim_spec {
	const char *type;
	const char *const *props;
};
int h2k_vim_each_spec(struct h2k_vim *v, const char *root,
    const struct h2k_vim_spec *specs, int nspecs, int page_size,
    h2k_vim_obj_fn fn, void *arg);

/*
 * Properties of n objects of one type named by moref value, in one round
 * trip (fn once per object the server still knows).  Several connections
 * can split a long list between them.
 */
int h2k_vim_get_list(struct h2k_vim *v, const char *type,
    const char *const *morefs, int n, const char *const *props,
    h2k_vim_obj_fn fn, void *arg);

/*
 * Several objects of several types named by moref value (refs[i].type is
 * ours, never the server's), with the properties specs give each type, in
 * one round trip.  An object the server no longer knows is left out or
 * comes without properties (reportMissingObjectsInResults), not an error.
 */
struct h2k_vim_ref {
	const char *type, *moref;
};
int h2k_vim_get_refs(struct h2k_vim *v, const struct h2k_vim_ref *refs, int n,
    const struct h2k_vim_spec *specs, int nspecs, h2k_vim_obj_fn fn,
    void *arg);

/*
 * One object and what the PropertyCollector reaches from it through hops
 * (TraversalSpecs: from an object of hop.type along its property hop.path,
 * then on by the hops named in hop.next), with the properties specs give
 * each type, in one round trip.  All hops are offered at the start object
 * (those of another type do not apply there).  Names, types and paths are
 * ours, put in the request as they are.  max_objs bounds a continued
 * answer, as for h2k_vim_get_list.
 */
struct h2k_vim_hop {
	const char *name, *type, *path;
	const char *const *next;  /* NULL-terminated, or NULL */
};
int h2k_vim_get_hops(struct h2k_vim *v, const char *type, const char *moref,
    const struct h2k_vim_hop *hops, int nhops,
    const struct h2k_vim_spec *specs, int nspecs, long max_objs,
    h2k_vim_obj_fn fn, void *arg);

/* Properties of one object (fn called once). */
int h2k_vim_get(struct h2k_vim *v, const char *type, const char *moref,
    const char *const *props, h2k_vim_obj_fn fn, void *arg);

/*
 * Value of one property as text (simple types or moref value), or NULL +
 * error.  Caller frees.
 */
char *h2k_vim_get_text(struct h2k_vim *v, const char *type, const char *moref,
    const char *prop);

/* propSet lookup inside an ObjectContent: the <val> element of name, or NULL. */
xmlNodePtr h2k_vim_prop(xmlNodePtr obj, const char *name);

/* Pure helpers, shared here for the unit tests. */
/* -1, 0, 1 comparing dotted version numbers ("6.5" < "8.0.1.0"). */
int h2k_vim_vercmp(const char *a, const char *b);
/* 1 if s can travel in a SOAP (XML 1.0, UTF-8) request as it is. */
int h2k_vim_xml_carries(const char *s);
/* The type of a container moref: "Type:value" (*value set past the
 * colon; the type is kept per thread till the next call) or inferred from
 * vSphere's moref prefixes ("Folder" when none fits). */
const char *h2k_vim_container_type(const char *root, const char **value);

/*
 * SearchIndex.FindByInventoryPath: "/DC/vm/folder/name" -> moref value of
 * a VirtualMachine, or NULL with H2K_EX_NOTFOUND.
 */
char *h2k_vim_find_vm(struct h2k_vim *v, const char *path);
/* Any inventory object: moref value, *type (if non-NULL) its type. Caller
 * frees both.  NULL with H2K_EX_NOTFOUND when nothing is there. */
char *h2k_vim_find_path(struct h2k_vim *v, const char *path, char **type);

/*
 * Wait for a Task to finish (poll info.state with backoff, bounded by
 * timeout seconds).  On success *result (if non-NULL) gets info.result's
 * moref value or text.  A task in error gives its localized message and the
 * fault's class.  timeout <= 0: one hour.
 */
int h2k_vim_wait_task(struct h2k_vim *v, const char *task, double timeout,
    char **result);

#endif
