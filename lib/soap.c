/*
 * soap.c - vim25 SOAP over one keep-alive curl handle, hardened XML parsing,
 * fault mapping.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * Hardened parse.  libxml2 is driven through a private parser context whose
 * SAX table is patched so that, whatever the options say, nothing that could
 * make the parser reach outside the buffer or blow up in memory survives:
 *   - internalSubset/externalSubset: a DOCTYPE at all stops the parse (it is
 *     reported before its internal subset is read, so no entity declaration
 *     is ever stored), and the finished document is checked again;
 *   - entityDecl/getEntity: any entity other than the five predefined ones
 *     (which libxml2 resolves without asking getEntity) stops the parse;
 *   - startElementNs/endElementNs count depth and stop past H2K_XML_MAX_DEPTH
 *     (libxml2's own limit without XML_PARSE_HUGE is close but is not ours
 *     to rely on);
 *   - serror collects the first message instead of libxml2 printing to
 *     stderr; XML_PARSE_NONET and no DTDLOAD/NOENT/HUGE.
 * The size bound is applied while receiving (the transfer is aborted) and
 * again at parse.
 *
 * Streaming.  Answers are never held whole: curl's write callback feeds a
 * push parser.  h2k_soap_call_stream names an element (ObjectContent at
 * depth 5 for property pages); each one is handed to the caller as it
 * closes and then unlinked and freed, so a 500-VM page costs one VM's tree.
 * Because SAX2 remembers the last text node it appended to, its counters
 * are reset after freeing, so later text goes through xmlTextConcat.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/SAX2.h>
#include <libxml/xmlerror.h>

#include "h2k.h"
#include "num.h"
#include "http.h"
#include "soap.h"

#define XSI_NS "http://www.w3.org/2001/XMLSchema-instance"
#define SOAP_DEFAULT_VERSION "8.0.1.0"

struct xparse;

struct h2k_soap {
	CURL *curl;
	char *url;
	char *host;
	struct h2k_tls tls;        /* deep copy: strings owned */
	struct h2k_http_peer peer;
	char *cookie;              /* secret: wiped on free */
	char action[80];           /* "urn:vim25/8.0.1.0" */
	int ready;                 /* policy applied to curl */
	double timeout;            /* seconds for one call, retries included */
	const char *timeout_src;   /* where it was set, for the error */
	/* the call in progress */
	struct xparse *xp;
	size_t body_bytes;
	int body_started, discard, too_big, xml_stop;
};

static _Thread_local char fault_type[128];

/*
 * The SOAP deadline.  Set before any thread starts: from the command's
 * option (soap_timeout_flag), else H2K_SOAP_TIMEOUT, else the configuration
 * file's SoapTimeout (soap_timeout_cfg), else H2K_SOAP_TIMEOUT_DEFAULT.
 */
static double soap_timeout_flag, soap_timeout_cfg;

/* Where the deadline in effect comes from: the error names the knob that
 * set it (h2k-lease and h2k-ovf have no option and read no SoapTimeout). */
static const char *
soap_timeout_src(void)
{
	const char *e = getenv("H2K_SOAP_TIMEOUT");

	if (soap_timeout_flag > 0)
		return "--soap-timeout";
	if (e && *e)
		return "H2K_SOAP_TIMEOUT";
	if (soap_timeout_cfg > 0)
		return "SoapTimeout in the configuration file";
	return "the default; H2K_SOAP_TIMEOUT sets another";
}

/* --- hardened XML ------------------------------------------------------ */

struct xstate {
	int depth;
	int refused;
	char why[200];
	char first_err[200];
	int first_line;
	/* streaming: elements named stream_name at stream_depth are handed
	 * to cb as they close, then freed */
	const char *stream_name;
	int stream_depth;
	h2k_xml_node_fn cb;
	void *cb_arg;
	int cb_failed;
	long ncb;
};

/* A parse in progress: push parser plus its state. */
struct xparse {
	xmlParserCtxtPtr c;
	struct xstate st;
	size_t bytes;
};

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;

static void
xml_silent_generic(void *ctx, const char *msg, ...)
{
	(void)ctx;
	(void)msg;
}

static void
xml_silent_structured(void *ctx, xmlErrorPtr e)
{
	(void)ctx;
	(void)e;
}

static void
xml_init(void)
{
	xmlInitParser();
	/* Anything that escapes a context handler must not reach stderr. */
	xmlSetGenericErrorFunc(NULL, xml_silent_generic);
	xmlSetStructuredErrorFunc(NULL, xml_silent_structured);
}

static struct xstate *
xst(void *ctx)
{
	xmlParserCtxtPtr c = ctx;

	return c ? c->_private : NULL;
}

static void
refuse(void *ctx, const char *why)
{
	struct xstate *st = xst(ctx);

	if (st && !st->refused) {
		st->refused = 1;
		snprintf(st->why, sizeof st->why, "%s", why);
	}
	xmlStopParser((xmlParserCtxtPtr)ctx);
}

static void
h_internal_subset(void *ctx, const xmlChar *name, const xmlChar *eid,
    const xmlChar *sid)
{
	(void)name;
	refuse(ctx, eid || sid ? "DOCTYPE with an external identifier not allowed" :
	    "DOCTYPE not allowed");
}

static void
h_external_subset(void *ctx, const xmlChar *name, const xmlChar *eid,
    const xmlChar *sid)
{
	(void)name;
	(void)eid;
	(void)sid;
	refuse(ctx, "external DTD subset not allowed");
}

static void
h_entity_decl(void *ctx, const xmlChar *name, int type, const xmlChar *pid,
    const xmlChar *sid, xmlChar *content)
{
	(void)name;
	(void)type;
	(void)pid;
	(void)sid;
	(void)content;
	refuse(ctx, "entity declaration not allowed");
}

static xmlEntityPtr
h_get_entity(void *ctx, const xmlChar *name)
{
	char why[160];

	snprintf(why, sizeof why, "entity reference &%.60s; not allowed",
	    (const char *)name);
	refuse(ctx, why);
	return NULL;
}

static void
h_start(void *ctx, const xmlChar *localname, const xmlChar *prefix,
    const xmlChar *URI, int nb_namespaces, const xmlChar **namespaces,
    int nb_attributes, int nb_defaulted, const xmlChar **attributes)
{
	struct xstate *st = xst(ctx);

	if (st && ++st->depth > H2K_XML_MAX_DEPTH) {
		char why[80];
		snprintf(why, sizeof why, "nesting deeper than %d elements",
		    H2K_XML_MAX_DEPTH);
		refuse(ctx, why);
		return;
	}
	xmlSAX2StartElementNs(ctx, localname, prefix, URI, nb_namespaces,
	    namespaces, nb_attributes, nb_defaulted, attributes);
}

static void
h_end(void *ctx, const xmlChar *localname, const xmlChar *prefix,
    const xmlChar *URI)
{
	xmlParserCtxtPtr c = ctx;
	struct xstate *st = xst(ctx);
	xmlNodePtr n = c->node;
	int depth = st ? st->depth-- : 0;

	xmlSAX2EndElementNs(ctx, localname, prefix, URI);
	if (!st || !st->cb || depth != st->stream_depth || !n ||
	    strcmp((const char *)localname, st->stream_name) || st->cb_failed ||
	    st->refused)
		return;
	st->ncb++;
	if (st->cb(st->cb_arg, n) < 0) {
		st->cb_failed = 1;
		xmlStopParser(c);
	}
	/* Done with it: memory stays at one element, not the whole answer. */
	xmlUnlinkNode(n);
	xmlFreeNode(n);
	/* SAX2 remembers the length of the last text node it appended to;
	 * with the element gone the parent's last child may be an older text
	 * node, so make the next characters go through xmlTextConcat. */
	c->nodelen = 0;
	c->nodemem = 0;
}

static void
h_serror(void *ctx, xmlErrorPtr e)
{
	xmlParserCtxtPtr c = ctx;
	struct xstate *st;

	/* userData is the context for the parser's own errors; be careful
	 * with anything else. */
	if (!e || !c || e->ctxt != c || !(st = c->_private))
		return;
	if (e->level < XML_ERR_ERROR || st->first_err[0])
		return;
	if (e->message && strstr(e->message, "huge")) {
		/* libxml2 reports its own size limits as memory errors */
		if (!st->refused) {
			st->refused = 1;
			snprintf(st->why, sizeof st->why, "a text node, name or "
			    "attribute over libxml2's 10 MB limit");
		}
	} else if (e->code == XML_ERR_NO_MEMORY)
		snprintf(st->first_err, sizeof st->first_err, "out of memory");
	else
		snprintf(st->first_err, sizeof st->first_err, "%s",
		    e->message ? e->message : "error");
	st->first_line = e->line;
	/* libxml2 messages end in a newline. */
	for (char *p = st->first_err; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = '\0';
}

/* A hardened push parser; stream_name/cb optional. */
static int
xp_init(struct xparse *x, const char *stream_name, int stream_depth,
    h2k_xml_node_fn cb, void *arg)
{
	xmlParserCtxtPtr c;

	pthread_once(&xml_once, xml_init);
	memset(x, 0, sizeof *x);
	x->st.stream_name = stream_name;
	x->st.stream_depth = stream_depth;
	x->st.cb = stream_name ? cb : NULL;
	x->st.cb_arg = arg;
	if (!(c = xmlCreatePushParserCtxt(NULL, NULL, NULL, 0, NULL)))
		return h2k_seterr(H2K_EX_FAIL, "out of memory");
	c->_private = &x->st;
	c->sax->internalSubset = h_internal_subset;
	c->sax->externalSubset = h_external_subset;
	c->sax->entityDecl = h_entity_decl;
	c->sax->getEntity = h_get_entity;
	c->sax->getParameterEntity = h_get_entity;
	c->sax->startElementNs = h_start;
	c->sax->endElementNs = h_end;
	c->sax->serror = h_serror;
	c->sax->error = NULL;
	c->sax->warning = NULL;
	c->sax->fatalError = NULL;
	xmlCtxtUseOptions(c, XML_PARSE_NONET | XML_PARSE_NOCDATA |
	    XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	/* NOERROR clears these; make sure nothing falls back to stderr. */
	c->vctxt.error = NULL;
	c->vctxt.warning = NULL;
	x->c = c;
	return 0;
}

/* Feed bytes; -1 once the parse cannot succeed (stop receiving). */
static int
xp_feed(struct xparse *x, const char *p, size_t n)
{
	x->bytes += n;
	if (x->bytes > H2K_SOAP_MAX_BYTES)
		return -1;
	while (n) {
		int k = n > (1u << 30) ? 1 << 30 : (int)n;
		xmlParseChunk(x->c, p, k, 0);
		p += k;
		n -= (size_t)k;
	}
	if (x->st.refused || x->st.cb_failed || x->c->disableSAX ||
	    x->c->instate == XML_PARSER_EOF ||
	    x->c->errNo == XML_ERR_NO_MEMORY ||
	    (!x->c->wellFormed && x->c->errNo))
		return -1;
	return 0;
}

static void
xp_free(struct xparse *x)
{
	if (!x->c)
		return;
	if (x->c->myDoc) {
		xmlFreeDoc(x->c->myDoc);
		x->c->myDoc = NULL;
	}
	x->c->_private = NULL;
	xmlFreeParserCtxt(x->c);
	x->c = NULL;
}

/*
 * End the parse: the document, or NULL with the error.  A callback failure
 * keeps the callback's error.
 */
static xmlDocPtr
xp_finish(struct xparse *x, const char *what)
{
	struct xstate *st = &x->st;
	xmlParserCtxtPtr c = x->c;
	xmlDocPtr doc;
	int bad = 1;

	if (x->bytes > H2K_SOAP_MAX_BYTES)
		h2k_seterr(H2K_EX_NET, "%s: XML refused: larger than %u bytes",
		    what, H2K_SOAP_MAX_BYTES);
	else if (st->cb_failed)
		; /* the callback's error stands */
	else {
		if (!st->refused && x->bytes == 0) {
			st->refused = 1;
			snprintf(st->first_err, sizeof st->first_err, "empty document");
		}
		if (!st->refused && c->instate != XML_PARSER_EOF)
			xmlParseChunk(c, NULL, 0, 1);
		doc = c->myDoc;
		if (!st->refused && doc && (doc->intSubset || doc->extSubset)) {
			st->refused = 1;
			snprintf(st->why, sizeof st->why, "DOCTYPE not allowed");
		}
		if (st->refused && st->why[0])
			h2k_seterr(H2K_EX_NET, "%s: XML refused: %s", what, st->why);
		else if (c->errNo == XML_ERR_NO_MEMORY ||
		    !strcmp(st->first_err, "out of memory"))
			/*
			 * libxml2 before 2.12 stops at an allocation failure but
			 * keeps wellFormed set: the tree it hands back is
			 * silently truncated.
			 */
			h2k_seterr(H2K_EX_FAIL, "%s: out of memory parsing XML", what);
		else if (!st->refused && (!c->nsWellFormed ||
		    (c->errNo >= XML_NS_ERR_XML_NAMESPACE &&
		    c->errNo <= XML_NS_ERR_COLON)))
			/*
			 * An undeclared prefix (or a namespace lost to an
			 * allocation failure) leaves "soapenv:Body" as a local
			 * name: refuse rather than misread the envelope.
			 * libxml2's SAX2 tree builder reports a namespace it
			 * failed to create without clearing nsWellFormed, hence
			 * errNo too.
			 */
			h2k_seterr(H2K_EX_NET, "%s: malformed XML: namespace error%s%s",
			    what, st->first_err[0] ? ": " : "", st->first_err);
		else if (st->refused || !c->wellFormed || !doc ||
		    !xmlDocGetRootElement(doc)) {
			if (st->first_err[0] && st->first_line)
				h2k_seterr(H2K_EX_NET, "%s: malformed XML: line %d: %s",
				    what, st->first_line, st->first_err);
			else
				h2k_seterr(H2K_EX_NET, "%s: malformed XML%s%s", what,
				    st->first_err[0] ? ": " : "", st->first_err);
		} else
			bad = 0;
	}
	if (bad) {
		xp_free(x);
		return NULL;
	}
	doc = c->myDoc;
	c->myDoc = NULL;
	xp_free(x);
	return doc;
}

xmlDocPtr
h2k_xml_parse(const char *buf, size_t len, const char *what)
{
	return h2k_xml_parse_stream(buf, len, what, NULL, 0, NULL, NULL);
}

xmlDocPtr
h2k_xml_parse_stream(const char *buf, size_t len, const char *what,
    const char *elem, int depth, h2k_xml_node_fn fn, void *arg)
{
	struct xparse x;

	if (!what)
		what = "XML";
	if (len > H2K_SOAP_MAX_BYTES)
		return h2k_seterr(H2K_EX_NET, "%s: XML refused: larger than %u bytes",
		    what, H2K_SOAP_MAX_BYTES), NULL;
	if (xp_init(&x, elem, depth, fn, arg) < 0)
		return NULL;
	if (len)
		xp_feed(&x, buf, len);
	return xp_finish(&x, what);
}

static int
named(xmlNodePtr n, const char *name)
{
	return n->type == XML_ELEMENT_NODE &&
	    (!name || !strcmp((const char *)n->name, name));
}

xmlNodePtr
h2k_xml_child(xmlNodePtr n, const char *name)
{
	if (!n)
		return NULL;
	for (xmlNodePtr c = n->children; c; c = c->next)
		if (named(c, name))
			return c;
	return NULL;
}

xmlNodePtr
h2k_xml_next(xmlNodePtr n, const char *name)
{
	if (!n)
		return NULL;
	for (xmlNodePtr c = n->next; c; c = c->next)
		if (named(c, name))
			return c;
	return NULL;
}

char *
h2k_xml_text(xmlNodePtr n, const char *name)
{
	xmlNodePtr c = name ? h2k_xml_child(n, name) : n;
	xmlChar *t;
	char *s;

	if (!c)
		return NULL;
	/* NULL from libxml2 here means it ran out of memory, not "empty". */
	if (!(t = xmlNodeGetContent(c)))
		return h2k_seterr(H2K_EX_FAIL, "out of memory"), NULL;
	s = h2k_strdup((const char *)t);
	xmlFree(t);
	return s;
}

char *
h2k_xml_type(xmlNodePtr n)
{
	xmlAttrPtr a, any = NULL;
	xmlChar *v;
	const char *p;
	char *s;

	if (!n)
		return NULL;
	for (a = n->properties; a; a = a->next) {
		if (strcmp((const char *)a->name, "type"))
			continue;
		if (a->ns && a->ns->href &&
		    !strcmp((const char *)a->ns->href, XSI_NS))
			break;
		if (!any)
			any = a;
	}
	if (!a)
		a = any;
	if (!a || !(v = xmlNodeGetContent((xmlNodePtr)a)))
		return NULL;
	p = strrchr((const char *)v, ':');
	s = h2k_strdup(p ? p + 1 : (const char *)v);
	xmlFree(v);
	return s;
}

/* --- faults ------------------------------------------------------------- */

const char *
h2k_soap_fault_type(void)
{
	return fault_type;
}

int
h2k_soap_fault_class(const char *type)
{
	size_t n;

	if (!type || !*type)
		return H2K_EX_NET;
	if (!strcmp(type, "InvalidLogin") || !strcmp(type, "NotAuthenticated") ||
	    !strcmp(type, "InvalidSession"))
		return H2K_EX_SESSION;
	if (!strcmp(type, "ManagedObjectNotFound") ||
	    !strcmp(type, "NotFound") || !strcmp(type, "FileNotFound"))
		return H2K_EX_NOTFOUND;
	if (!strcmp(type, "TaskInProgress"))
		return H2K_EX_STATE;
	/* InvalidState and its subtypes: InvalidPowerState, InvalidHostState,
	 * InvalidDatastoreState, ... */
	n = strlen(type);
	if (!strncmp(type, "Invalid", 7) && n >= 12 &&
	    !strcmp(type + n - 5, "State"))
		return H2K_EX_STATE;
	if (!strcmp(type, "RequestCanceled"))
		return H2K_EX_CANCEL;
	return H2K_EX_NET;
}

/* The type name of a fault element: xsi:type, else the element name less
 * its "Fault" suffix (vim25 names detail elements TypeFault). */
static void
fault_name(xmlNodePtr d, char *out, size_t outsz)
{
	char *t = h2k_xml_type(d);
	size_t n;

	out[0] = '\0';
	if (t && *t) {
		snprintf(out, outsz, "%s", t);
		free(t);
		return;
	}
	free(t);
	snprintf(out, outsz, "%s", (const char *)d->name);
	n = strlen(out);
	if (n > 5 && !strcmp(out + n - 5, "Fault"))
		out[n - 5] = '\0';
}

static int
soap_fault_node(xmlNodePtr f, const char *method)
{
	xmlNodePtr d = h2k_xml_child(f, "detail");
	char *fs = h2k_xml_text(f, "faultstring");
	const char *msg = fs && *fs ? fs : NULL;

	/* A faultstring that is there but could not be copied: say so. */
	if (!fs && h2k_xml_child(f, "faultstring"))
		return h2k_seterr(H2K_EX_FAIL, "%s: out of memory reading a SOAP "
		    "fault", method ? method : "SOAP call");

	if (!d)
		d = h2k_xml_child(f, "Detail");
	if (d && (d = h2k_xml_child(d, NULL)))
		fault_name(d, fault_type, sizeof fault_type);
	if (!method)
		method = "SOAP call";
	if (fault_type[0] && msg)
		h2k_seterr(h2k_soap_fault_class(fault_type), "%s: %s: %s",
		    method, fault_type, msg);
	else if (fault_type[0])
		h2k_seterr(h2k_soap_fault_class(fault_type), "%s: %s", method,
		    fault_type);
	else
		h2k_seterr(H2K_EX_NET, "%s: server fault: %s", method,
		    msg ? msg : "(no faultstring)");
	free(fs);
	return -1;
}

static xmlNodePtr
soap_body(xmlDocPtr doc)
{
	xmlNodePtr r = xmlDocGetRootElement(doc);

	if (!r || strcmp((const char *)r->name, "Envelope"))
		return NULL;
	return h2k_xml_child(r, "Body");
}

int
h2k_soap_fault(xmlDocPtr doc, const char *method)
{
	xmlNodePtr b = soap_body(doc), f;

	fault_type[0] = '\0';
	if (!b || !(f = h2k_xml_child(b, "Fault")))
		return 0;
	return soap_fault_node(f, method);
}

/* --- the connection ---------------------------------------------------- */

static char *
host_of(const char *url)
{
	const char *p = strstr(url, "://"), *e;

	p = p ? p + 3 : url;
	e = p + strcspn(p, "/");
	return h2k_asprintf("%.*s", (int)(e - p), p);
}

int
h2k_soap_parse_timeout(const char *str, const char *what, double *out)
{
	/* num.h's syntax and bounds; the message the tests and docs know. */
	if (!str || h2k_parse_secs(what, str, 1, H2K_SOAP_TIMEOUT_MAX, out) < 0)
		return h2k_seterr(H2K_EX_USAGE, "%s '%.40s': want a number of "
		    "seconds from 1 to %d", what, str ? str : "",
		    H2K_SOAP_TIMEOUT_MAX);
	return 0;
}

int
h2k_soap_set_timeout(double secs)
{
	if (!(secs >= 1) || secs > H2K_SOAP_TIMEOUT_MAX)
		return h2k_seterr(H2K_EX_USAGE, "SOAP timeout %.0f s: want 1 to "
		    "%d seconds", secs, H2K_SOAP_TIMEOUT_MAX);
	soap_timeout_flag = secs;
	return 0;
}

int
h2k_soap_set_timeout_config(double secs)
{
	if (!(secs >= 1) || secs > H2K_SOAP_TIMEOUT_MAX)
		return h2k_seterr(H2K_EX_USAGE, "SoapTimeout %.0f: want 1 to %d "
		    "seconds", secs, H2K_SOAP_TIMEOUT_MAX);
	soap_timeout_cfg = secs;
	return 0;
}

int
h2k_soap_timeout(double *out)
{
	const char *e = getenv("H2K_SOAP_TIMEOUT");

	if (soap_timeout_flag > 0)
		*out = soap_timeout_flag;
	else if (e && *e)
		return h2k_soap_parse_timeout(e, "H2K_SOAP_TIMEOUT", out);
	else if (soap_timeout_cfg > 0)
		*out = soap_timeout_cfg;
	else
		*out = H2K_SOAP_TIMEOUT_DEFAULT;
	return 0;
}

struct h2k_soap *
h2k_soap_new(const char *url, const struct h2k_tls *tls)
{
	struct h2k_soap *s;
	double timeout = 0;  /* set by h2k_soap_timeout; 0 keeps gcc -O2 -flto quiet */

	if (h2k_http_global_init() < 0 || h2k_soap_timeout(&timeout) < 0)
		return NULL;
	if (!(s = h2k_calloc(1, sizeof *s)))
		return NULL;
	s->timeout = timeout;
	s->timeout_src = soap_timeout_src();
	if (tls)
		s->tls = *tls;
	s->tls.thumbprint = s->tls.ca_file = NULL;
	if (!(s->url = h2k_strdup(url)) || !(s->host = host_of(url)) ||
	    (tls && tls->thumbprint &&
	    !(s->tls.thumbprint = h2k_strdup(tls->thumbprint))) ||
	    (tls && tls->ca_file && !(s->tls.ca_file = h2k_strdup(tls->ca_file))))
		goto fail;
	snprintf(s->action, sizeof s->action, "urn:vim25/%s",
	    SOAP_DEFAULT_VERSION);
	if (!(s->curl = curl_easy_init())) {
		h2k_seterr(H2K_EX_FAIL, "cannot create a curl handle");
		goto fail;
	}
	if (h2k_http_setup(s->curl, &s->tls, &s->peer) < 0)
		goto fail;
	s->tls.ca_pem = NULL;	/* the caller's; libcurl has its own copy */
	s->ready = 1;
	return s;
fail:
	h2k_soap_free(s);
	return NULL;
}

void
h2k_soap_free(struct h2k_soap *s)
{
	if (!s)
		return;
	if (s->curl)
		curl_easy_cleanup(s->curl);
	h2k_freesecret(s->cookie);
	free(s->url);
	free(s->host);
	free(s->tls.thumbprint);
	free(s->tls.ca_file);
	free(s);
}

const char *
h2k_soap_cookie(const struct h2k_soap *s)
{
	return s->cookie;
}

int
h2k_soap_set_cookie(struct h2k_soap *s, const char *cookie)
{
	char *c = NULL;

	if (cookie) {
		/* It goes into a header: no separators, no control bytes. */
		for (const char *p = cookie; *p; p++)
			if ((unsigned char)*p < 0x21 || *p == ';' || *p == 0x7f)
				return h2k_seterr(H2K_EX_SESSION,
				    "session cookie contains invalid characters");
		if (!(c = h2k_strdup(cookie)))
			return -1;
	}
	h2k_freesecret(s->cookie);
	s->cookie = c;
	return 0;
}

const char *
h2k_soap_url(const struct h2k_soap *s)
{
	return s->url;
}

const char *
h2k_soap_host(const struct h2k_soap *s)
{
	return s->host;
}

const struct h2k_tls *
h2k_soap_tls(const struct h2k_soap *s)
{
	return &s->tls;
}

const char *
h2k_soap_peer_sha256(const struct h2k_soap *s)
{
	return s->peer.seen_sha256[0] ? s->peer.seen_sha256 : NULL;
}

int
h2k_soap_set_api_version(struct h2k_soap *s, const char *version)
{
	if (!version || !*version || strlen(version) > 32 ||
	    strspn(version, "0123456789.") != strlen(version))
		return h2k_seterr(H2K_EX_NET, "bad vim25 API version '%.40s'",
		    version ? version : "");
	snprintf(s->action, sizeof s->action, "urn:vim25/%s", version);
	return 0;
}

const char *
h2k_soap_api_version(const struct h2k_soap *s)
{
	return s->action + strlen("urn:vim25/");
}

/*
 * Response bytes go straight into the push parser: the answer is never held
 * whole.  A status other than 200/500 is not XML worth parsing; its body is
 * counted and dropped.
 */
static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
	struct h2k_soap *s = arg;
	size_t len = size * n;

	if (!s->body_started) {
		long code = 0;
		s->body_started = 1;
		curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &code);
		s->discard = code != 200 && code != 500;
	}
	s->body_bytes += len;
	if (s->body_bytes > H2K_SOAP_MAX_BYTES) {
		s->too_big = 1;
		return 0;
	}
	if (s->discard)
		return len;
	if (xp_feed(s->xp, p, len) < 0) {
		s->xml_stop = 1;
		return 0;
	}
	return len;
}

/* Set-Cookie: vmware_soap_session="52..."; Path=/; HttpOnly; Secure; */
static size_t
on_header(char *p, size_t size, size_t n, void *arg)
{
	static const char key[] = "set-cookie:";
	static const char name[] = "vmware_soap_session=";
	struct h2k_soap *s = arg;
	size_t len = size * n, i, vlen;
	const char *v;
	char *c;

	if (len < sizeof key - 1 || strncasecmp(p, key, sizeof key - 1))
		return len;
	for (i = sizeof key - 1; i < len && (p[i] == ' ' || p[i] == '\t'); i++)
		;
	if (len - i < sizeof name - 1 || strncmp(p + i, name, sizeof name - 1))
		return len;
	v = p + i + sizeof name - 1;
	for (vlen = 0; v + vlen < p + len && v[vlen] != ';' && v[vlen] != '\r' &&
	    v[vlen] != '\n' && v[vlen] != ' '; vlen++)
		;
	if (!vlen)
		return len;
	/* It will go back in a Cookie header: no control bytes, no 8-bit. */
	for (i = 0; i < vlen; i++)
		if ((unsigned char)v[i] < 0x21 || (unsigned char)v[i] >= 0x7f ||
		    v[i] == ',' || v[i] == '\\')
			return len;
	if (!(c = h2k_malloc(vlen + 1)))
		return 0;
	memcpy(c, v, vlen);
	c[vlen] = '\0';
	h2k_freesecret(s->cookie);
	s->cookie = c;
	return len;
}

static int
idempotent(const char *method)
{
	return !strncmp(method, "Retrieve", 8) ||
	    !strncmp(method, "ContinueRetrieve", 16) ||
	    !strncmp(method, "FindBy", 6) || !strcmp(method, "CurrentTime");
}

static int
build_envelope(struct h2k_buf *b, const char *method, const char *this_type,
    const char *this_value, const char *body)
{
	if (h2k_buf_printf(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
	    "<soapenv:Envelope xmlns:soapenc=\"http://schemas.xmlsoap.org/soap/encoding/\""
	    " xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\""
	    " xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\""
	    " xmlns:xsi=\"" XSI_NS "\"><soapenv:Body><%s xmlns=\"urn:vim25\">",
	    method) < 0)
		return -1;
	if (this_type && this_value &&
	    (h2k_buf_printf(b, "<_this type=\"%s\">", this_type) < 0 ||
	    h2k_buf_xmlesc(b, this_value) < 0 ||
	    h2k_buf_append(b, "</_this>", 8) < 0))
		return -1;
	if (body && h2k_buf_append(b, body, strlen(body)) < 0)
		return -1;
	return h2k_buf_printf(b, "</%s></soapenv:Body></soapenv:Envelope>",
	    method);
}

/*
 * One HTTP exchange.  0: got a status (*status); -1: failed (error set);
 * -2: a transient network failure before any streamed element reached the
 * caller, worth retrying.
 */
static int
perform(struct h2k_soap *s, const char *method, struct h2k_buf *req,
    struct xparse *xp, long *status, double deadline)
{
	double left = deadline - h2k_monotime();
	struct curl_slist *h = NULL, *t;
	char action[112], *cookie = NULL;
	CURLcode rc;
	int r = 0;

	*status = 0;
	if (left < 0.001)
		return h2k_seterr(H2K_EX_NET, "%s: no complete answer from %s "
		    "within the SOAP deadline of %g s (%s)", method, s->host,
		    s->timeout, s->timeout_src);
	snprintf(action, sizeof action, "SOAPAction: \"%s\"", s->action);
	if (!(t = curl_slist_append(h, "Content-Type: text/xml; charset=utf-8")))
		goto oom;
	h = t;
	if (!(t = curl_slist_append(h, action)))
		goto oom;
	h = t;
	if (!(t = curl_slist_append(h, "Expect:")))
		goto oom;
	h = t;
	if (s->cookie && !(cookie = h2k_asprintf("vmware_soap_session=%s",
	    s->cookie)))
		goto oomset;
	s->xp = xp;
	s->body_bytes = 0;
	s->body_started = s->discard = s->too_big = s->xml_stop = 0;
	s->peer.errbuf[0] = '\0';
	curl_easy_setopt(s->curl, CURLOPT_URL, s->url);
	curl_easy_setopt(s->curl, CURLOPT_POST, 1L);
	curl_easy_setopt(s->curl, CURLOPT_POSTFIELDS, req->data);
	curl_easy_setopt(s->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->len);
	curl_easy_setopt(s->curl, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(s->curl, CURLOPT_COOKIE, cookie);
	curl_easy_setopt(s->curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(s->curl, CURLOPT_WRITEDATA, s);
	curl_easy_setopt(s->curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(s->curl, CURLOPT_HEADERDATA, s);
	/* The low-speed limit lets a server dripping a byte a second hold
	 * the call for ever; this bounds the whole exchange. */
	curl_easy_setopt(s->curl, CURLOPT_TIMEOUT_MS, (long)(left * 1000) + 1);
	rc = curl_easy_perform(s->curl);
	/* curl copied the cookie string; the handle must not keep pointers to
	 * what is freed below. */
	curl_easy_setopt(s->curl, CURLOPT_COOKIE, NULL);
	curl_easy_setopt(s->curl, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(s->curl, CURLOPT_POSTFIELDS, NULL);
	s->xp = NULL;
	if (rc == CURLE_OK) {
		curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, status);
	} else if (s->too_big) {
		r = h2k_seterr(H2K_EX_NET, "%s: response larger than %u bytes "
		    "refused", method, H2K_SOAP_MAX_BYTES);
	} else if (s->xml_stop) {
		char what[160];
		snprintf(what, sizeof what, "%s response", method);
		xp_finish(xp, what); /* sets the parse or callback error */
		r = -1;
	} else if (rc == CURLE_OPERATION_TIMEDOUT &&
	    h2k_monotime() >= deadline - 0.05) {
		r = h2k_seterr(H2K_EX_NET, "%s: no complete answer from %s "
		    "within the SOAP deadline of %g s (%s)", method, s->host,
		    s->timeout, s->timeout_src);
	} else {
		h2k_http_fail(rc, &s->peer, s->host);
		r = (rc == CURLE_GOT_NOTHING || rc == CURLE_SEND_ERROR ||
		    rc == CURLE_RECV_ERROR) && xp->st.ncb == 0 ? -2 : -1;
	}
	h2k_freesecret(cookie);
	curl_slist_free_all(h);
	return r;
oom:
	h2k_seterr(H2K_EX_FAIL, "out of memory");
oomset:
	curl_slist_free_all(h);
	return -1;
}

xmlDocPtr
h2k_soap_call_stream(struct h2k_soap *s, const char *method,
    const char *this_type, const char *this_value, const char *body,
    const char *elem, int depth, h2k_xml_node_fn fn, void *arg,
    xmlNodePtr *ret)
{
	/* The request may carry a password (Login): wiped as it grows. */
	struct h2k_buf req = {.secret = 1};
	struct xparse xp = {0};
	xmlDocPtr doc = NULL;
	xmlNodePtr b, r;
	long status = 0;
	double t0 = h2k_monotime();
	int attempts = idempotent(method) ? 3 : 1, rc = -1;
	char what[160];

	fault_type[0] = '\0';
	if (ret)
		*ret = NULL;
	snprintf(what, sizeof what, "%s response", method);
	if (build_envelope(&req, method, this_type, this_value, body) < 0)
		goto out;
	for (int a = 0; a < attempts; a++) {
		if (a) {
			struct timespec ts = { 0, 250000000L * a };
			nanosleep(&ts, NULL);
		}
		xp_free(&xp);
		if (xp_init(&xp, elem, depth, fn, arg) < 0)
			goto out;
		rc = perform(s, method, &req, &xp, &status, t0 + s->timeout);
		if (rc == -2 || (rc == 0 && status == 503 && xp.st.ncb == 0))
			continue;
		break;
	}
	if (rc < 0)
		goto out;
	h2k_debug("%s: HTTP %ld, %zu bytes, %.0f ms", method, status,
	    s->body_bytes, (h2k_monotime() - t0) * 1000);
	if (status != 200 && status != 500) {
		h2k_seterr(H2K_EX_NET, "%s: HTTP %ld from %s", method, status,
		    s->host);
		goto out;
	}
	if (!(doc = xp_finish(&xp, what))) {
		if (status == 500)
			h2k_adderr("%s: HTTP 500 from %s", method, s->host);
		goto out;
	}
	if (h2k_soap_fault(doc, method) < 0)
		goto fail;
	if (!(b = soap_body(doc)) || !(r = h2k_xml_child(b, NULL))) {
		h2k_seterr(H2K_EX_NET, "%s: not a SOAP response (no Body)", method);
		goto fail;
	}
	if (status != 200) {
		h2k_seterr(H2K_EX_NET, "%s: HTTP %ld from %s", method, status,
		    s->host);
		goto fail;
	}
	if (ret)
		*ret = r;
	goto out;
fail:
	xmlFreeDoc(doc);
	doc = NULL;
out:
	xp_free(&xp);
	h2k_buf_free(&req);
	return doc;
}

xmlDocPtr
h2k_soap_call(struct h2k_soap *s, const char *method, const char *this_type,
    const char *this_value, const char *body, xmlNodePtr *ret)
{
	return h2k_soap_call_stream(s, method, this_type, this_value, body,
	    NULL, 0, NULL, NULL, ret);
}
