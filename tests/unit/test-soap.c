/*
 * test-soap.c - hostile XML is refused, faults map to exit classes.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "h2k.h"
#include "soap.h"
#include "tap.h"

static int saved_stderr = -1;
static char errfile[] = "/tmp/h2k-test-soap-stderr.XXXXXX";

/* libxml2 must never print: capture fd 2 around each parse. */
static void
grab_stderr(void)
{
	int fd = mkstemp(errfile);

	fflush(stderr);
	saved_stderr = dup(2);
	dup2(fd, 2);
	close(fd);
}

static off_t
release_stderr(void)
{
	struct stat st;
	off_t n;

	fflush(stderr);
	stat(errfile, &st);
	n = st.st_size;
	dup2(saved_stderr, 2);
	close(saved_stderr);
	unlink(errfile);
	memcpy(errfile + strlen(errfile) - 6, "XXXXXX", 6);
	return n;
}

static int
oneline(const char *s)
{
	return s && !strchr(s, '\n') && !strchr(s, '\r');
}

/* Parse s; expect refusal with a message containing want. */
static void
refused(const char *s, size_t len, const char *want, const char *desc)
{
	xmlDocPtr d;
	off_t printed;

	h2k_clearerr();
	grab_stderr();
	d = h2k_xml_parse(s, len, "test");
	printed = release_stderr();
	ok(d == NULL, "%s: refused", desc);
	if (d)
		xmlFreeDoc(d);
	ok(strstr(h2k_errmsg(), want) != NULL && oneline(h2k_errmsg()),
	    "%s: one-line error names it: %s", desc, h2k_errmsg());
	is_int(h2k_errcode(), H2K_EX_NET, "%s: protocol error class", desc);
	is_int(printed, 0, "%s: nothing printed on stderr", desc);
}

static char *
nest(int depth)
{
	struct h2k_buf b = {0};

	for (int i = 0; i < depth; i++)
		h2k_buf_append(&b, "<a>", 3);
	for (int i = 0; i < depth; i++)
		h2k_buf_append(&b, "</a>", 4);
	return b.data;
}

static const char env_head[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
    "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\""
    " xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><soapenv:Body>";
static const char env_tail[] = "</soapenv:Body></soapenv:Envelope>";

static void
fault(const char *detail, const char *fstr, int want_code, const char *want_type,
    const char *want_msg)
{
	char *s = h2k_asprintf("%s<soapenv:Fault><faultcode>ServerFaultCode</faultcode>"
	    "%s%s%s<detail>%s</detail></soapenv:Fault>%s", env_head,
	    fstr ? "<faultstring>" : "", fstr ? fstr : "", fstr ? "</faultstring>" : "",
	    detail, env_tail);
	xmlDocPtr d = h2k_xml_parse(s, strlen(s), "fault");

	ok(d != NULL, "fault document %s parses", want_type);
	h2k_clearerr();
	is_int(h2k_soap_fault(d, "Login"), -1, "%s: is a fault", want_type);
	is_int(h2k_errcode(), want_code, "%s: exit class", want_type);
	is_str(h2k_soap_fault_type(), want_type, "%s: type name exposed", want_type);
	is_str(h2k_errmsg(), want_msg, "%s: message", want_type);
	xmlFreeDoc(d);
	free(s);
}

struct seen {
	int n, order_ok, stop_at;
};

static int
seen_cb(void *arg, xmlNodePtr obj)
{
	struct seen *s = arg;
	char *v = h2k_xml_text(obj, "obj"), want[32];
	xmlNodePtr t = h2k_xml_child(obj->parent, "token");

	snprintf(want, sizeof want, "vm-%d", s->n);
	s->order_ok = (s->n == 0 || s->order_ok) && v && !strcmp(v, want) && t;
	free(v);
	if (s->stop_at && s->n == s->stop_at)
		return h2k_seterr(H2K_EX_FAIL, "stopped at %d", s->n);
	s->n++;
	return 0;
}

int
main(void)
{
	char *s, *big;
	xmlDocPtr d;

	/* --- DOCTYPE, entities --- */
	s = "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><r>&x;</r>";
	refused(s, strlen(s), "DOCTYPE", "external entity file://");
	s = "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY x SYSTEM \"http://127.0.0.1:9/x\">]><r>&x;</r>";
	refused(s, strlen(s), "DOCTYPE", "external entity http://");
	s = "<?xml version=\"1.0\"?><!DOCTYPE r SYSTEM \"http://127.0.0.1:9/x.dtd\"><r/>";
	refused(s, strlen(s), "DOCTYPE", "external DTD");
	s = "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">"
	    "<!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">"
	    "<!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;\">"
	    "<!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">"
	    "<!ENTITY lol4 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">"
	    "<!ENTITY lol5 \"&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;\">"
	    "<!ENTITY lol6 \"&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;\">"
	    "<!ENTITY lol7 \"&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;\">"
	    "<!ENTITY lol8 \"&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;\">"
	    "<!ENTITY lol9 \"&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;\">"
	    "]><lolz>&lol9;</lolz>";
	refused(s, strlen(s), "DOCTYPE", "billion laughs");
	s = "<r>&x;</r>";
	refused(s, strlen(s), "&x;", "undeclared entity reference");
	s = "<r a=\"&x;\"/>";
	refused(s, strlen(s), "&x;", "entity reference in an attribute");
	s = "<r><!DOCTYPE r></r>";
	refused(s, strlen(s), "malformed", "DOCTYPE inside an element");

	/* --- depth --- */
	s = nest(10000);
	refused(s, strlen(s), "nesting deeper than 256", "10,000-deep nesting");
	free(s);
	s = nest(H2K_XML_MAX_DEPTH + 1);
	refused(s, strlen(s), "nesting deeper than 256", "one level too deep");
	free(s);
	s = nest(H2K_XML_MAX_DEPTH);
	d = h2k_xml_parse(s, strlen(s), "test");
	ok(d != NULL, "nesting exactly %d deep is accepted", H2K_XML_MAX_DEPTH);
	xmlFreeDoc(d);
	free(s);

	/* --- size --- */
	big = malloc((size_t)50 << 20);
	memset(big, ' ', (size_t)50 << 20);
	memcpy(big, "<r>", 3);
	memcpy(big + ((size_t)50 << 20) - 4, "</r>", 4);
	refused(big, (size_t)50 << 20, "larger than", "50 MB body");
	free(big);

	/* --- malformed, harmless --- */
	s = "<r><unclosed></r>";
	refused(s, strlen(s), "malformed XML: line 1", "mismatched tag");
	refused("", 0, "malformed", "empty body");
	s = "<r a=\"1\">x &lt;&amp;&#65;&#x42; <![CDATA[c]]></r>";
	d = h2k_xml_parse(s, strlen(s), "test");
	ok(d != NULL, "predefined entities, character references and CDATA are fine");
	if (d) {
		char *t = h2k_xml_text(xmlDocGetRootElement(d), NULL);
		is_str(t, "x <&AB c", "their text is decoded");
		free(t);
		xmlFreeDoc(d);
	}

	/* --- faults --- */
	fault("<InvalidLoginFault xsi:type=\"InvalidLogin\"/>",
	    "Cannot complete login due to an incorrect user name or password.",
	    H2K_EX_SESSION, "InvalidLogin",
	    "Login: InvalidLogin: Cannot complete login due to an incorrect user name or password.");
	fault("<NotAuthenticatedFault xsi:type=\"NotAuthenticated\"><object type=\"Folder\">group-d1</object></NotAuthenticatedFault>",
	    "The session is not authenticated.", H2K_EX_SESSION, "NotAuthenticated",
	    "Login: NotAuthenticated: The session is not authenticated.");
	fault("<ManagedObjectNotFoundFault xsi:type=\"ManagedObjectNotFound\"/>",
	    "The object has already been deleted", H2K_EX_NOTFOUND,
	    "ManagedObjectNotFound",
	    "Login: ManagedObjectNotFound: The object has already been deleted");
	fault("<InvalidPowerStateFault xsi:type=\"vim25:InvalidPowerState\"/>",
	    "The attempted operation cannot be performed in the current state (Powered on).",
	    H2K_EX_STATE, "InvalidPowerState",
	    "Login: InvalidPowerState: The attempted operation cannot be performed in the current state (Powered on).");
	fault("<InvalidStateFault xsi:type=\"InvalidState\"/>", "bad state",
	    H2K_EX_STATE, "InvalidState", "Login: InvalidState: bad state");
	fault("<TaskInProgressFault xsi:type=\"TaskInProgress\"/>", "busy",
	    H2K_EX_STATE, "TaskInProgress", "Login: TaskInProgress: busy");
	/* vcsim's detail element names the type but carries no xsi:type */
	fault("<ManagedObjectNotFoundFault/>", "gone", H2K_EX_NOTFOUND,
	    "ManagedObjectNotFound", "Login: ManagedObjectNotFound: gone");
	fault("<SystemErrorFault xsi:type=\"SystemError\"/>", NULL, H2K_EX_NET,
	    "SystemError", "Login: SystemError");
	fault("<NoPermissionFault xsi:type=\"NoPermission\"/>", "Permission to perform this operation was denied.\nforged line",
	    H2K_EX_NET, "NoPermission",
	    "Login: NoPermission: Permission to perform this operation was denied.\\nforged line");

	s = h2k_asprintf("%s<soapenv:Fault><faultcode>x</faultcode><faultstring>boom</faultstring></soapenv:Fault>%s",
	    env_head, env_tail);
	d = h2k_xml_parse(s, strlen(s), "fault");
	is_int(h2k_soap_fault(d, "Logout"), -1, "fault without detail is a fault");
	is_int(h2k_errcode(), H2K_EX_NET, "fault without detail: class NET");
	is_str(h2k_errmsg(), "Logout: server fault: boom", "fault without detail: message");
	is_str(h2k_soap_fault_type(), "", "fault without detail: no type");
	xmlFreeDoc(d);
	free(s);
	s = h2k_asprintf("%s<RetrieveServiceContentResponse xmlns=\"urn:vim25\"><returnval/></RetrieveServiceContentResponse>%s",
	    env_head, env_tail);
	d = h2k_xml_parse(s, strlen(s), "ok");
	is_int(h2k_soap_fault(d, "RetrieveServiceContent"), 0, "a response is not a fault");
	xmlFreeDoc(d);
	free(s);

	is_int(h2k_soap_fault_class("InvalidHostState"), H2K_EX_STATE, "InvalidState subtypes are state errors");
	is_int(h2k_soap_fault_class("InvalidArgument"), H2K_EX_NET, "InvalidArgument is not a state error");
	is_int(h2k_soap_fault_class(NULL), H2K_EX_NET, "no type: NET");

	/* --- streaming: elements handed over and freed as they close --- */
	{
		struct h2k_buf b = {0};
		struct seen sn = {0};
		h2k_buf_printf(&b, "%s<R xmlns=\"urn:vim25\"><returnval>\n <token>t1</token>\n", env_head);
		for (int i = 0; i < 100; i++)
			h2k_buf_printf(&b, " <objects><obj>vm-%d</obj></objects> \n", i);
		h2k_buf_printf(&b, " tail text</returnval></R>%s", env_tail);
		d = h2k_xml_parse_stream(b.data, b.len, "stream", "objects", 5, seen_cb, &sn);
		ok(d != NULL, "streamed parse with text between elements succeeds");
		is_int(sn.n, 100, "every element handed over");
		is_int(sn.order_ok, 1, "in document order, token already parsed");
		{
			xmlNodePtr rv = xmlDocGetRootElement(d);
			rv = h2k_xml_child(h2k_xml_child(h2k_xml_child(rv, "Body"), "R"), "returnval");
			ok(rv && !h2k_xml_child(rv, "objects"), "handed-over elements are gone from the document");
			char *t = h2k_xml_text(rv, "token");
			is_str(t, "t1", "the rest of the document stays");
			free(t);
		}
		xmlFreeDoc(d);
		sn.n = 0;
		sn.stop_at = 10;
		d = h2k_xml_parse_stream(b.data, b.len, "stream", "objects", 5, seen_cb, &sn);
		ok(d == NULL && sn.n == 10, "a callback error stops the parse");
		is_str(h2k_errmsg(), "stopped at 10", "and its error is the parse's");
		h2k_buf_free(&b);
	}

	/* --- helpers --- */
	s = "<o xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><a xsi:type=\"xsd:string\">v</a><b/><a>w</a></o>";
	d = h2k_xml_parse(s, strlen(s), "t");
	{
		xmlNodePtr r = xmlDocGetRootElement(d), a = h2k_xml_child(r, "a");
		char *t = h2k_xml_type(a), *x = h2k_xml_text(r, "a");
		is_str(t, "string", "xsi:type loses its prefix");
		is_str(x, "v", "text of the first child named");
		ok(h2k_xml_next(a, "a") && !h2k_xml_next(h2k_xml_next(a, "a"), "a"),
		    "next sibling by name");
		ok(h2k_xml_text(r, "missing") == NULL, "missing child: NULL");
		free(t);
		free(x);
	}
	xmlFreeDoc(d);

	/* The SOAP deadline: option > H2K_SOAP_TIMEOUT > SoapTimeout > 300. */
	{
		double t = 0;

		unsetenv("H2K_SOAP_TIMEOUT");
		ok(h2k_soap_timeout(&t) == 0 && t == H2K_SOAP_TIMEOUT_DEFAULT,
		    "deadline defaults to %d s", H2K_SOAP_TIMEOUT_DEFAULT);
		ok(h2k_soap_set_timeout_config(40) == 0 &&
		    h2k_soap_timeout(&t) == 0 && t == 40,
		    "the configuration's SoapTimeout is used");
		setenv("H2K_SOAP_TIMEOUT", "7.5", 1);
		ok(h2k_soap_timeout(&t) == 0 && t == 7.5,
		    "H2K_SOAP_TIMEOUT wins over the configuration");
		setenv("H2K_SOAP_TIMEOUT", "0", 1);
		ok(h2k_soap_timeout(&t) < 0 && h2k_errcode() == H2K_EX_USAGE &&
		    strstr(h2k_errmsg(), "H2K_SOAP_TIMEOUT '0'"),
		    "H2K_SOAP_TIMEOUT=0 is a usage error naming it");
		ok(h2k_soap_new("https://127.0.0.1:1/sdk", NULL) == NULL &&
		    h2k_errcode() == H2K_EX_USAGE,
		    "and no connection is made with it");
		setenv("H2K_SOAP_TIMEOUT", "5s", 1);
		ok(h2k_soap_timeout(&t) < 0, "H2K_SOAP_TIMEOUT=5s is refused");
		ok(h2k_soap_set_timeout(3) == 0 && h2k_soap_timeout(&t) == 0 &&
		    t == 3, "the option wins over everything");
		ok(h2k_soap_set_timeout(0) < 0 && h2k_soap_set_timeout(86401) < 0 &&
		    h2k_soap_set_timeout_config(-1) < 0,
		    "out-of-range values are refused");
		ok(h2k_soap_parse_timeout("", "--soap-timeout", &t) < 0 &&
		    h2k_soap_parse_timeout("nan", "--soap-timeout", &t) < 0 &&
		    h2k_soap_parse_timeout("1e9", "--soap-timeout", &t) < 0 &&
		    h2k_soap_parse_timeout("86400", "--soap-timeout", &t) == 0 &&
		    t == 86400, "parse: empty, nan, too big refused; 86400 taken");
		unsetenv("H2K_SOAP_TIMEOUT");
	}
	return tap_done();
}
