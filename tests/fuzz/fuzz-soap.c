/*
 * fuzz-soap.c - libFuzzer harness for the SOAP response parser with the
 * production options (h2k_xml_parse), the fault decoder and the tree
 * helpers every vim25 caller uses.
 * needs: lib/soap.c
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * Beyond "no crash, no leak", it asserts the hardening contract of soap.h
 * on every document the parser accepts: no DOCTYPE (internal or external
 * subset), no entity reference node left in the tree (nothing was or could
 * be expanded), depth within H2K_XML_MAX_DEPTH, and a failed parse always
 * leaves a one-line error message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h2k.h"
#include "soap.h"

static int
walk(xmlNodePtr n, int depth)
{
	int max = depth;

	for (; n; n = n->next) {
		if (n->type == XML_ENTITY_REF_NODE || n->type == XML_ENTITY_NODE ||
		    n->type == XML_DTD_NODE || n->type == XML_XINCLUDE_START) {
			fprintf(stderr, "fuzz-soap: accepted document holds node type %d\n",
			    (int)n->type);
			abort();
		}
		if (n->type != XML_ELEMENT_NODE)
			continue;
		/* The helpers callers use on every node must cope with anything. */
		free(h2k_xml_text(n, NULL));
		free(h2k_xml_text(n, "val"));
		free(h2k_xml_type(n));
		(void)h2k_xml_next(n, "returnval");
		(void)h2k_xml_child(n, NULL);
		int d = walk(n->children, depth + 1);
		if (d > max)
			max = d;
	}
	return max;
}

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	xmlDocPtr doc;
	int depth;

	h2k_clearerr();
	doc = h2k_xml_parse((const char *)data, size, "fuzz");
	if (!doc) {
		const char *m = h2k_errmsg();
		if (!strcmp(m, "unknown error") || strchr(m, '\n')) {
			fprintf(stderr, "fuzz-soap: refusal without a one-line message\n");
			abort();
		}
		return 0;
	}
	if (doc->intSubset || doc->extSubset) {
		fprintf(stderr, "fuzz-soap: DOCTYPE accepted\n");
		abort();
	}
	depth = walk(xmlDocGetRootElement(doc), 1);
	if (depth > H2K_XML_MAX_DEPTH + 1) {
		fprintf(stderr, "fuzz-soap: depth %d accepted (limit %d)\n", depth,
		    H2K_XML_MAX_DEPTH);
		abort();
	}
	h2k_clearerr();
	if (h2k_soap_fault(doc, "Fuzz") < 0) {
		const char *m = h2k_errmsg();
		if (!strcmp(m, "unknown error") || strchr(m, '\n') ||
		    h2k_errcode() == H2K_EX_OK) {
			fprintf(stderr, "fuzz-soap: fault without message or class\n");
			abort();
		}
		(void)h2k_soap_fault_class(h2k_soap_fault_type());
	}
	xmlFreeDoc(doc);
	return 0;
}
