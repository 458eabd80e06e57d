/*
 * soap.h - vim25 SOAP client: envelopes, calls, hardened XML, faults.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * XML from the network is hostile: responses are parsed with libxml2 with
 * no DTD loading, no entity substitution, no network, a DOCTYPE anywhere is
 * refused, and size (H2K_SOAP_MAX_BYTES) and depth (H2K_XML_MAX_DEPTH) are
 * bounded.  A SOAP fault becomes an h2k error whose class follows the fault
 * type: InvalidLogin/NotAuthenticated -> H2K_EX_SESSION,
 * ManagedObjectNotFound -> H2K_EX_NOTFOUND, InvalidState/InvalidPowerState
 * -> H2K_EX_STATE, others H2K_EX_NET (server said no) with the server's
 * faultstring in the message.
 */
#ifndef H2K_SOAP_H
#define H2K_SOAP_H

#include <libxml/tree.h>

#include "http.h"

#define H2K_SOAP_MAX_BYTES (32u << 20) /* a 500-VM page with full hardware is ~10 MB */
#define H2K_XML_MAX_DEPTH 256

struct h2k_soap;       /* a connection: curl handle, cookie, URL, TLS state */

/*
 * The SOAP deadline: every call (its retries included) must have its whole
 * answer within this many seconds, or it fails with H2K_EX_NET naming the
 * method and the deadline; curl's low-speed limit alone lets a server that
 * drips a byte a second hold a call for ever.  Disk downloads are not SOAP
 * and are not bounded by it.  h2k calls no long-polling method
 * (WaitForUpdatesEx, WaitForTask); tasks are polled with short calls.
 * Highest first: h2k_soap_set_timeout (a command's --soap-timeout), the
 * environment variable H2K_SOAP_TIMEOUT, h2k_soap_set_timeout_config (the
 * configuration file's SoapTimeout), H2K_SOAP_TIMEOUT_DEFAULT.  Set before
 * the first h2k_soap_new and before threads; a bad H2K_SOAP_TIMEOUT makes
 * h2k_soap_new fail with H2K_EX_USAGE.
 */
#define H2K_SOAP_TIMEOUT_DEFAULT 300
#define H2K_SOAP_TIMEOUT_MAX 86400
int h2k_soap_set_timeout(double secs);
int h2k_soap_set_timeout_config(double secs);
/* The deadline in effect (*secs); -1 + H2K_EX_USAGE on a bad environment. */
int h2k_soap_timeout(double *secs);
/* "300" -> 300.0; -1 + H2K_EX_USAGE naming what otherwise. */
int h2k_soap_parse_timeout(const char *str, const char *what, double *out);

/* url is normalised (https://host/sdk). Connects lazily. */
struct h2k_soap *h2k_soap_new(const char *url, const struct h2k_tls *tls);
void h2k_soap_free(struct h2k_soap *s);

/* The vmware_soap_session cookie value (without the name), or NULL. */
const char *h2k_soap_cookie(const struct h2k_soap *s);
int h2k_soap_set_cookie(struct h2k_soap *s, const char *cookie);
const char *h2k_soap_url(const struct h2k_soap *s);
/* Host (and :port) the session talks to, for "*" in device URLs. */
const char *h2k_soap_host(const struct h2k_soap *s);
const struct h2k_tls *h2k_soap_tls(const struct h2k_soap *s);
/* Peer certificate thumbprint seen on the last connection (SHA-256). */
const char *h2k_soap_peer_sha256(const struct h2k_soap *s);

/*
 * SOAPAction "urn:vim25/VERSION" sent with every call; default 8.0.1.0.
 * h2k_vim_connect lowers it to the server's apiVersion when that is older.
 */
int h2k_soap_set_api_version(struct h2k_soap *s, const char *version);
const char *h2k_soap_api_version(const struct h2k_soap *s);

/*
 * Call a method.  body is the XML of the request element's children,
 * already escaped (build it with h2k_buf_xmlesc); this is the _this moref.
 * On success returns the parsed response document and sets *ret to the
 * <...Response> element (children are returnval elements).  Caller frees
 * the document with xmlFreeDoc.  NULL + h2k error on failure.
 */
xmlDocPtr h2k_soap_call(struct h2k_soap *s, const char *method,
    const char *this_type, const char *this_value, const char *body,
    xmlNodePtr *ret);

/*
 * The same, streaming: the answer is parsed as it arrives, and every
 * element named elem at depth (Envelope is 1, Body 2, the response 3,
 * returnval 4) is handed to fn as soon as it is complete, then freed; the
 * returned document lacks those elements.  Memory is one element, not the
 * answer.  fn returning -1 (error set) aborts the transfer; that error is
 * the call's.  A transfer is retried only while fn has not been called.
 */
typedef int (*h2k_xml_node_fn)(void *arg, xmlNodePtr n);
xmlDocPtr h2k_soap_call_stream(struct h2k_soap *s, const char *method,
    const char *this_type, const char *this_value, const char *body,
    const char *elem, int depth, h2k_xml_node_fn fn, void *arg,
    xmlNodePtr *ret);

/*
 * Parse untrusted XML with the production options (used by h2k_soap_call and
 * by the fuzz harness).  NULL + h2k error on DOCTYPE, entity, depth or size.
 */
xmlDocPtr h2k_xml_parse(const char *buf, size_t len, const char *what);
/* The same with h2k_soap_call_stream's element streaming (tests, fuzzing). */
xmlDocPtr h2k_xml_parse_stream(const char *buf, size_t len, const char *what,
    const char *elem, int depth, h2k_xml_node_fn fn, void *arg);

/*
 * Faults.  h2k_soap_fault: 0 if doc holds no soapenv:Fault; else -1 with the
 * h2k error set to "<method>: <FaultType>: <faultstring>" in the class of
 * the fault type.  h2k_soap_fault_type: the vim25 fault type name ("InvalidLogin")
 * of the last fault seen by this thread's last h2k_soap_call/h2k_soap_fault,
 * "" if the last call did not fail with a fault.  h2k_soap_fault_class: the
 * exit class of a fault type name (also used for task errors).
 */
int h2k_soap_fault(xmlDocPtr doc, const char *method);
const char *h2k_soap_fault_type(void);
int h2k_soap_fault_class(const char *type);

/* Helpers over parsed documents (namespace-blind local names). */
/* First element child named name (NULL: any element). */
xmlNodePtr h2k_xml_child(xmlNodePtr n, const char *name);
xmlNodePtr h2k_xml_next(xmlNodePtr n, const char *name); /* next sibling named */
/* Text content of the first child named name (name NULL: of n itself), or
 * NULL. Caller frees. */
char *h2k_xml_text(xmlNodePtr n, const char *name);
/* xsi:type attribute (local part, prefix stripped), or NULL. Caller frees. */
char *h2k_xml_type(xmlNodePtr n);

#endif
