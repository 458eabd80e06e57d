/* Unit tests for lib/vim.c. SPDX-License-Identifier: LGPL-3.0-or-later */
#include <stdlib.h>
#include <string.h>

#include "h2k.h"
#include "soap.h"
#include "tap.h"
#include "vim.h"

static void
ctype(const char *root, const char *type, const char *value)
{
	const char *v = NULL;
	const char *t = h2k_vim_container_type(root, &v);

	ok(t && !strcmp(t, type) && v && !strcmp(v, value),
	    "container %s: %s %s (got %s %s)", root, type, value, t ? t : "-",
	    v ? v : "-");
}

/* The text of prop's <val> in an ObjectContent holding propsets. */
static char *
prop(const char *propsets, const char *name)
{
	char *s = h2k_asprintf("<objects><obj type=\"VirtualMachine\">vm-1</obj>"
	    "%s</objects>", propsets);
	xmlDocPtr d = s ? h2k_xml_parse(s, strlen(s), "test") : NULL;
	xmlNodePtr val = d ? h2k_vim_prop(xmlDocGetRootElement(d), name) : NULL;
	char *t = val ? h2k_xml_text(val, NULL) : NULL;

	xmlFreeDoc(d);
	free(s);
	return t;
}

int
main(void)
{
	char *t;

	/* the API version the server speaks against ours */
	is_int(h2k_vim_vercmp("6.5", "8.0.1.0"), -1, "6.5 < 8.0.1.0");
	is_int(h2k_vim_vercmp("8.0.1.0", "6.5"), 1, "8.0.1.0 > 6.5");
	is_int(h2k_vim_vercmp("7.0", "7.0"), 0, "equal");
	is_int(h2k_vim_vercmp("7.0", "7.0.0.0"), 0, "missing parts are zeros");
	is_int(h2k_vim_vercmp("7.0.3", "7.0.10"), -1, "numeric, not textual");
	is_int(h2k_vim_vercmp("8.0.2.0", "8.0.1.0"), 1, "third part decides");
	is_int(h2k_vim_vercmp("8.0u1", "8.0"), 0, "a suffix that is no number stops it");
	is_int(h2k_vim_vercmp("", "1"), -1, "empty is 0");

	/* what a password or user name can be sent as */
	ok(h2k_vim_xml_carries("p\tw\r\n d&<>\"'"), "tab, CR, LF, XML specials pass");
	ok(h2k_vim_xml_carries("p\xc3\xa9\xe2\x82\xac\xf0\x9f\x94\x91"),
	    "UTF-8 up to four bytes passes");
	ok(!h2k_vim_xml_carries("a\x01z"), "a C0 control has no XML form");
	ok(!h2k_vim_xml_carries("a\x1b"), "nor ESC");
	ok(!h2k_vim_xml_carries("\xc3"), "a cut sequence is refused");
	ok(!h2k_vim_xml_carries("\xc0\xaf"), "an overlong one too");
	ok(!h2k_vim_xml_carries("\xed\xa0\x80"), "a surrogate too");
	ok(!h2k_vim_xml_carries("\xef\xbf\xbe") && !h2k_vim_xml_carries("\xef\xbf\xbf"),
	    "U+FFFE and U+FFFF are not XML characters");
	ok(h2k_vim_xml_carries(""), "empty passes");

	/* the container a listing starts from */
	ctype("group-d1", "Folder", "group-d1");
	ctype("datacenter-2", "Datacenter", "datacenter-2");
	ctype("domain-c7", "ClusterComputeResource", "domain-c7");
	ctype("domain-s9", "ComputeResource", "domain-s9");
	ctype("resgroup-8", "ResourcePool", "resgroup-8");
	ctype("host-21", "HostSystem", "host-21");
	ctype("ha-datacenter", "Datacenter", "ha-datacenter");
	ctype("ha-host", "HostSystem", "ha-host");
	ctype("Datastore:datastore-1", "Datastore", "datastore-1");
	ctype("vm-54", "Folder", "vm-54");
	{
		/* a type name too long for its buffer is not split off */
		char longroot[100];
		memset(longroot, 'T', 80);
		strcpy(longroot + 80, ":x");
		const char *v = NULL, *ty = h2k_vim_container_type(longroot, &v);
		ok(!strcmp(ty, "Folder") && v == longroot,
		    "an over-long Type: prefix is taken as a value");
	}

	/* propSet lookup */
	t = prop("<propSet><name>name</name><val>web1</val></propSet>"
	    "<propSet><name>config.uuid</name><val>42</val></propSet>", "config.uuid");
	is_str(t, "42", "a property by name");
	free(t);
	t = prop("<propSet><name>name</name><val>web1</val></propSet>", "nam");
	ok(t == NULL, "no prefix match");
	t = prop("<propSet><name>na<!-- c -->me</name><val>split</val></propSet>", "name");
	is_str(t, "split", "a name in several text nodes still matches");
	free(t);
	t = prop("<propSet><name>x</name></propSet><propSet><val>1</val></propSet>", "x");
	ok(t == NULL, "a propSet without val, or without name, is nothing");
	t = prop("<propSet><name>a</name><val>1</val></propSet>"
	    "<propSet><name>a</name><val>2</val></propSet>", "a");
	is_str(t, "1", "the first of two wins");
	free(t);
	return tap_done();
}
