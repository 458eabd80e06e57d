/* Unit tests for lib/inventory.c. SPDX-License-Identifier: LGPL-3.0-or-later */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "h2k.h"
#include "inventory.h"
#include "jsonl.h"
#include "soap.h"
#include "tap.h"

/* An ObjectContent with the given propSets (name, val pairs). */
static xmlDocPtr
objcontent(const char *propsets)
{
	char *s = h2k_asprintf("<objects><obj type=\"VirtualMachine\">vm-1</obj>"
	    "%s</objects>", propsets);
	xmlDocPtr d = h2k_xml_parse(s, strlen(s), "test");

	free(s);
	return d;
}

static void
fields_are(const char *propsets, int sparse, const char *want, const char *what)
{
	xmlDocPtr d = objcontent(propsets);
	cJSON *o = cJSON_CreateObject();
	char *got = NULL;

	if (d && o && h2k_inv_vm_fields(o, xmlDocGetRootElement(d), sparse) == 0)
		got = h2k_json_print(o);
	is_str(got, want, "%s", what);
	free(got);
	cJSON_Delete(o);
	xmlFreeDoc(d);
}

#define PS(n, v) "<propSet><name>" n "</name><val>" v "</val></propSet>"

/* A little VM tree: group-d1 (root) > datacenter-2 "DC0" > group-v3 "vm"
 * > group-v4 "sub"; group-v5 "loop" <-> group-v6 "loop2"; group-v7 has
 * no name; group-v8's parent is unknown. */
static const struct { const char *moref, *name, *parent; int dc; } tree[] = {
	{ "group-d1", "Datacenters", NULL, 0 },
	{ "datacenter-2", "DC0", "group-d1", 1 },
	{ "group-v3", "vm", "datacenter-2", 0 },
	{ "group-v4", "sub", "group-v3", 0 },
	{ "group-v5", "loop", "group-v6", 0 },
	{ "group-v6", "loop2", "group-v5", 0 },
	{ "group-v7", NULL, "group-v3", 0 },
	{ "group-v8", "lost", "group-v99", 0 },
};

static int
tree_up(void *arg, const char *moref, const char *type, struct h2k_inv_node *n)
{
	int *calls = arg;

	(*calls)++;
	for (size_t i = 0; i < sizeof tree / sizeof tree[0]; i++)
		if (!strcmp(tree[i].moref, moref)) {
			n->name = tree[i].name;
			n->parent = tree[i].parent;
			n->parent_type = NULL;
			n->dc = tree[i].dc;
			return 0;
		}
	return -1;
}

static void
path_is(const char *root, const char *moref, const char *leaf,
    const char *want, const char *wantdc)
{
	int calls = 0;
	char *dc = (char *)"unset";
	char *p = h2k_inv_path(tree_up, &calls, root, moref, NULL, leaf, &dc);

	is_str(p, want, "path of %s%s%s (root %s)", moref, leaf ? "/" : "",
	    leaf ? leaf : "", root ? root : "none");
	is_str(dc, wantdc, "its datacenter");
	ok(calls <= H2K_INV_MAX_DEPTH + 1, "bounded walk (%d steps)", calls);
	free(p);
	if (dc && strcmp(dc, "unset"))
		free(dc);
}

int
main(void)
{
	/* the mapping: h2k-ls's order and types, whatever order the server
	 * sends the properties in */
	fields_are(PS("config.hardware.numCPU", "2")
	    PS("config.uuid", "u-1") PS("config.template", "true")
	    PS("runtime.powerState", "poweredOn")
	    PS("config.hardware.memoryMB", "2048")
	    PS("config.firmware", "efi") PS("config.guestId", "g")
	    PS("config.guestFullName", "G OS")
	    PS("config.instanceUuid", "iu-1"), 0,
	    "{\"uuid\":\"u-1\",\"instance_uuid\":\"iu-1\","
	    "\"power_state\":\"poweredOn\",\"template\":true,\"guest_id\":\"g\","
	    "\"guest_os\":\"G OS\",\"num_cpu\":2,\"memory_mb\":2048,"
	    "\"firmware\":\"efi\"}", "all fields");
	fields_are(PS("config.uuid", "u-1"), 0,
	    "{\"uuid\":\"u-1\",\"instance_uuid\":null,\"power_state\":null,"
	    "\"template\":false,\"guest_id\":null,\"guest_os\":null,"
	    "\"num_cpu\":null,\"memory_mb\":null,\"firmware\":null}",
	    "h2k-ls: unset is null, template false");
	fields_are(PS("config.uuid", "u-1"), 1, "{\"uuid\":\"u-1\"}",
	    "sparse (h2k-lease): unset is left out");
	fields_are(PS("config.hardware.numCPU", "2x")
	    PS("config.hardware.memoryMB", ""), 1,
	    "{\"num_cpu\":null,\"memory_mb\":null}",
	    "a garbled number is null, never a guess");
	fields_are(PS("config.template", "false"), 1, "{\"template\":false}",
	    "template false");

	/* the one inventory path rule */
	path_is(NULL, "group-d1", NULL, "", NULL);
	path_is(NULL, "datacenter-2", NULL, "/DC0", "DC0");
	path_is(NULL, "group-v4", NULL, "/DC0/vm/sub", "DC0");
	path_is(NULL, "group-v4", "web01", "/DC0/vm/sub/web01", "DC0");
	path_is("group-d1", "group-v3", "web01", "/DC0/vm/web01", "DC0");
	path_is("group-v3", "group-v4", "x", "/sub/x", NULL);
	path_is("group-d1", "group-d1", "x", "/x", NULL);
	path_is(NULL, "group-v5", NULL, NULL, NULL);
	path_is(NULL, "group-v7", "x", NULL, NULL);
	path_is(NULL, "group-v8", NULL, NULL, NULL);
	path_is(NULL, "group-v404", NULL, NULL, NULL);

	/* PATH arguments: a glob on the path or any ancestor's */
	ok(h2k_inv_path_match("/", "/DC0/vm/a"), "/ matches everything");
	ok(h2k_inv_path_match("/DC0/vm", "/DC0/vm/sub/a"), "an ancestor");
	ok(h2k_inv_path_match("/DC0/vm/sub/a", "/DC0/vm/sub/a"), "the VM");
	ok(h2k_inv_path_match("/DC*/vm", "/DC0/vm/a"), "a glob on an ancestor");
	ok(!h2k_inv_path_match("/DC0/v", "/DC0/vm/a"), "no prefix match");
	ok(h2k_inv_path_match("/DC*", "/DC0/vm/a"), "* does not cross /, an ancestor matches");
	ok(!h2k_inv_path_match("/DC0/*", "/DC0"), "a folder's children, not the folder");
	return tap_done();
}
