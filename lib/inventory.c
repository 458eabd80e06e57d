/*
 * inventory.c - list vSphere VMs (h2k-ls's engine); the one VM -> JSON
 * mapping and the one inventory-path rule.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * First a paged pass over a ContainerView of the root folder collects what
 * VM properties only reference by moref - folders and datacenters (name,
 * parent: for the inventory path), vApps, hosts, datastores and networks
 * (names) - into a hash table; that grows with the number of those
 * objects, not with the number of VMs.  Folder paths are computed once, so
 * a VM costs one lookup of its parent.
 *
 * Then the VMs.  The server's time dominates a listing (it builds every
 * VM's device list), and vCenter answers property requests in parallel, so
 * the VM morefs are listed first (a few bytes each, the only thing kept per
 * VM) and o->jobs connections fetch the properties in chunks of 250 VMs.
 * Each answer is parsed as it streams in, one VM at a time, into that
 * chunk's output buffer; chunks are written in order, as soon as all before
 * them are out, and workers wait rather than run more than 2 x jobs chunks
 * ahead.  So output is in the server's order and memory is bounded by the
 * jobs, never the inventory.  A chunk answered with ManagedObjectNotFound
 * (a VM deleted meanwhile) is fetched again VM by VM, skipping the missing
 * ones.  Only a table (o->table) keeps every VM (a few strings) to align
 * the columns.
 */
#include <fnmatch.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "h2k.h"
#include "inventory.h"
#include "jsonl.h"
#include "soap.h"

#define CHUNK_VMS 250
#define PAGE_OBJS 1000
#define PAGE_IDS 500

/* --- the moref table ----------------------------------------------------- */

enum kind { K_FOLDER = 1, K_DC, K_VAPP, K_HOST, K_DS, K_NET, K_OTHER };

struct ent {
	char *moref;
	char *name;
	char *parent;     /* moref of the parent in the VM inventory tree */
	enum kind kind;
	char *path;       /* inventory path, set before the workers start */
	char *dc;         /* name of its datacenter, likewise */
};

struct table {
	struct ent *e;
	size_t cap, n;
};

/* Morefs are the server's: a seeded hash (h2k.h), not a fixed one. */
#define hash(s) h2k_strhash(s)

static struct ent *
tab_find(struct table *t, const char *moref)
{
	if (!t->cap || !moref)
		return NULL;
	for (size_t i = hash(moref) & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
		if (!t->e[i].moref)
			return NULL;
		if (!strcmp(t->e[i].moref, moref))
			return &t->e[i];
	}
}

static struct ent *
tab_add(struct table *t, char *moref)
{
	struct ent *e;
	size_t i;

	if ((t->n + 1) * 2 > t->cap) {
		struct table nt = { 0 };
		nt.cap = t->cap ? t->cap * 2 : 256;
		if (!(nt.e = h2k_calloc(nt.cap, sizeof *nt.e)))
			return NULL;
		for (i = 0; i < t->cap; i++) {
			if (!t->e[i].moref)
				continue;
			size_t j = hash(t->e[i].moref) & (nt.cap - 1);
			while (nt.e[j].moref)
				j = (j + 1) & (nt.cap - 1);
			nt.e[j] = t->e[i];
		}
		free(t->e);
		nt.n = t->n;
		*t = nt;
	}
	for (i = hash(moref) & (t->cap - 1); t->e[i].moref;
	    i = (i + 1) & (t->cap - 1))
		if (!strcmp(t->e[i].moref, moref))
			break;
	e = &t->e[i];
	if (e->moref) {
		free(moref); /* seen twice: keep the first */
		return e;
	}
	e->moref = moref;
	t->n++;
	return e;
}

static void
tab_free(struct table *t)
{
	for (size_t i = 0; i < t->cap; i++) {
		free(t->e[i].moref);
		free(t->e[i].name);
		free(t->e[i].parent);
		free(t->e[i].path);
		free(t->e[i].dc);
	}
	free(t->e);
}

/* Text of a property value, NULL if unset. */
static char *
prop_text(xmlNodePtr obj, const char *name)
{
	xmlNodePtr v = h2k_vim_prop(obj, name);

	return v ? h2k_xml_text(v, NULL) : NULL;
}

static char *
obj_type(xmlNodePtr obj)
{
	xmlNodePtr o = h2k_xml_child(obj, "obj");
	xmlChar *t = o ? xmlGetProp(o, (const xmlChar *)"type") : NULL;
	char *s = t ? h2k_strdup((const char *)t) : NULL;

	xmlFree(t);
	return s;
}

static int
table_cb(void *arg, xmlNodePtr obj)
{
	static const struct { const char *type; enum kind k; } kinds[] = {
		{ "Folder", K_FOLDER }, { "Datacenter", K_DC },
		{ "VirtualApp", K_VAPP }, { "HostSystem", K_HOST },
		{ "Datastore", K_DS }, { "Network", K_NET },
		{ "DistributedVirtualPortgroup", K_NET },
		{ "OpaqueNetwork", K_NET },
	};
	struct table *t = arg;
	char *moref = h2k_xml_text(obj, "obj"), *type = obj_type(obj);
	struct ent *e;
	enum kind k = K_OTHER;

	if (!moref || !type) {
		free(moref);
		free(type);
		return h2k_seterr(H2K_EX_NET, "ObjectContent without obj");
	}
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
		if (!strcmp(type, kinds[i].type))
			k = kinds[i].k;
	free(type);
	if (!(e = tab_add(t, moref)))
		return free(moref), -1;
	if (e->kind)
		return 0;
	e->kind = k;
	e->name = prop_text(obj, "name");
	if (k == K_VAPP) {
		/* A vApp sits in the VM tree under its folder, or nested in
		 * another vApp. */
		if (!(e->parent = prop_text(obj, "parentFolder")))
			e->parent = prop_text(obj, "parentVApp");
	} else if (k == K_FOLDER || k == K_DC)
		e->parent = prop_text(obj, "parent");
	return 0;
}


static const char *
ent_name(struct table *t, const char *moref)
{
	struct ent *e = tab_find(t, moref);

	return e && e->name ? e->name : NULL;
}

/* h2k_inv_up_fn over the table: no server round trip. */
static int
tab_up(void *arg, const char *moref, const char *type, struct h2k_inv_node *n)
{
	struct ent *e = tab_find(arg, moref);

	if (!e)
		return -1;
	n->name = e->name;
	n->parent = e->parent;
	n->parent_type = NULL;
	n->dc = e->kind == K_DC;
	return 0;
}

/* Paths are computed before the workers start: they only read them. */
static void
tab_paths(struct table *t)
{
	for (size_t i = 0; i < t->cap; i++) {
		struct ent *e = &t->e[i];
		if (e->kind == K_FOLDER || e->kind == K_DC || e->kind == K_VAPP)
			e->path = h2k_inv_path(tab_up, t, NULL, e->moref, NULL,
			    NULL, &e->dc);
	}
}

char *
h2k_inv_path(h2k_inv_up_fn up, void *arg, const char *root,
    const char *moref, const char *type, const char *leaf, char **dc)
{
	char *names[H2K_INV_MAX_DEPTH], *cur = h2k_strdup(moref);
	char *ctype = type ? h2k_strdup(type) : NULL, *path = NULL;
	struct h2k_buf b = { 0 };
	int n = 0, ok = 0;

	if (dc)
		*dc = NULL;
	/* cur and ctype are copies: up's strings last until its next call */
	for (;;) {
		struct h2k_inv_node nd = { 0 };
		if (!cur || (type && !ctype))
			break; /* out of memory */
		if (root && !strcmp(cur, root)) {
			ok = 1;
			break;
		}
		if (up(arg, cur, ctype, &nd) < 0)
			break;
		if (!nd.parent) {
			/* the top: its name is not part of paths */
			ok = 1;
			break;
		}
		if (!nd.name || n == H2K_INV_MAX_DEPTH ||
		    !(names[n] = h2k_strdup(nd.name)))
			break;
		n++;
		if (dc && nd.dc && !*dc && !(*dc = h2k_strdup(nd.name)))
			break;
		free(cur);
		free(ctype);
		type = nd.parent_type;
		cur = h2k_strdup(nd.parent);
		ctype = type ? h2k_strdup(type) : NULL;
	}
	if (ok) {
		int r = h2k_buf_append(&b, "", 0);
		for (int i = n - 1; r == 0 && i >= 0; i--)
			r = h2k_buf_append(&b, "/", 1) < 0 ||
			    h2k_buf_append(&b, names[i], strlen(names[i])) < 0 ? -1 : 0;
		if (r == 0 && leaf)
			r = h2k_buf_append(&b, "/", 1) < 0 ||
			    h2k_buf_append(&b, leaf, strlen(leaf)) < 0 ? -1 : 0;
		if (r == 0)
			path = b.data;
		else
			h2k_buf_free(&b);
	}
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(cur);
	free(ctype);
	if (!path && dc) {
		free(*dc);
		*dc = NULL;
	}
	return path;
}

int
h2k_inv_path_match(const char *pat, const char *path)
{
	char buf[4096];
	size_t n = strlen(path);

	if (!strcmp(pat, "/"))
		return 1;
	if (n >= sizeof buf)
		return 0;
	memcpy(buf, path, n + 1);
	for (;;) {
		if (fnmatch(pat, buf, FNM_PATHNAME) == 0)
			return 1;
		char *s = strrchr(buf, '/');
		if (!s || s == buf)
			return 0;
		*s = '\0';
	}
}

/* --- the listing's shared state ----------------------------------------- */

struct ls {
	struct h2k_vim *v;
	const struct h2k_session *sess;
	FILE *out;
	struct table tab;
	struct table seen;      /* VM morefs, only with PATH arguments */
	struct h2k_inv_opts *o;
	struct h2k_inv_result *res;
	size_t caprows;
	/* the VMs, and the chunks the workers share (under mu) */
	char **ids;
	size_t nids, capids;
	pthread_mutex_t mu;
	/* o->found: its own lock, because mu is held while a chunk is
	 * written to out, which can block as long as the reader likes;
	 * a worker in the middle of a SOAP call must never wait for that
	 * (the call's deadline would run out) */
	pthread_mutex_t hits_mu;
	pthread_cond_t cv;
	size_t nchunks, next_chunk, printed, window;
	struct h2k_buf *slots;
	char *slot_done;
	int failed, fail_code;
	char fail_msg[1024];
};

/* What one worker is filling: the output of its current chunk. */
struct worker {
	struct ls *ls;
	struct h2k_vim *v;
	struct h2k_buf out;
	long listed;
};

/* --- VirtualMachine -> JSON ---------------------------------------------- */

static int
add_str(cJSON *o, const char *key, const char *val)
{
	return (val ? cJSON_AddStringToObject(o, key, val) :
	    cJSON_AddNullToObject(o, key)) ? 0 : -1;
}

static int
add_num(cJSON *o, const char *key, const char *val)
{
	char *e;
	double d;

	if (!val)
		return cJSON_AddNullToObject(o, key) ? 0 : -1;
	d = strtod(val, &e);
	if (e == val || *e)
		return cJSON_AddNullToObject(o, key) ? 0 : -1;
	return cJSON_AddNumberToObject(o, key, d) ? 0 : -1;
}

static int
add_bool(cJSON *o, const char *key, const char *val)
{
	if (!val)
		return cJSON_AddFalseToObject(o, key) ? 0 : -1;
	return cJSON_AddBoolToObject(o, key, !strcmp(val, "true")) ? 0 : -1;
}

static int
is_nic(xmlNodePtr dev, const char *type)
{
	static const char *const nics[] = {
		"VirtualE1000", "VirtualE1000e", "VirtualPCNet32", "VirtualVmxnet",
		"VirtualVmxnet2", "VirtualVmxnet3", "VirtualVmxnet3Vrdma",
		"VirtualSriovEthernetCard", "VirtualEthernetCard",
	};

	for (size_t i = 0; i < sizeof nics / sizeof nics[0]; i++)
		if (!strcmp(type, nics[i]))
			return 1;
	return h2k_xml_child(dev, "macAddress") != NULL &&
	    h2k_xml_child(dev, "addressType") != NULL;
}

/* "[LocalDS_0] vm/disk.vmdk" -> "LocalDS_0" */
static char *
ds_of_file(const char *file)
{
	const char *e;

	if (!file || file[0] != '[' || !(e = strchr(file, ']')))
		return NULL;
	return h2k_asprintf("%.*s", (int)(e - file - 1), file + 1);
}

static int
add_disk(struct table *tab, cJSON *arr, xmlNodePtr dev, double *gib)
{
	cJSON *d = cJSON_CreateObject();
	xmlNodePtr b = h2k_xml_child(dev, "backing");
	char *key = h2k_xml_text(dev, "key");
	char *label = h2k_xml_text(h2k_xml_child(dev, "deviceInfo"), "label");
	char *cap = h2k_xml_text(dev, "capacityInBytes");
	char *file = h2k_xml_text(b, "fileName");
	char *dsref = h2k_xml_text(b, "datastore");
	char *thin = h2k_xml_text(b, "thinProvisioned");
	char *dsfile = NULL;
	const char *ds = ent_name(tab, dsref);
	int rc = -1;

	if (!d)
		goto out;
	cJSON_AddItemToArray(arr, d);
	if (!cap) {
		char *kb = h2k_xml_text(dev, "capacityInKB");
		if (kb) {
			cap = h2k_asprintf("%.0f", strtod(kb, NULL) * 1024);
			free(kb);
		}
	}
	if (!ds)
		ds = dsfile = ds_of_file(file);
	if (cap)
		*gib += strtod(cap, NULL) / (1024.0 * 1024 * 1024);
	if (add_num(d, "key", key) < 0 || add_str(d, "label", label) < 0 ||
	    add_num(d, "capacity_bytes", cap) < 0 ||
	    add_str(d, "file", file) < 0 || add_str(d, "datastore", ds) < 0 ||
	    add_bool(d, "thin", thin) < 0)
		goto out;
	rc = 0;
out:
	free(key);
	free(label);
	free(cap);
	free(file);
	free(dsref);
	free(thin);
	free(dsfile);
	return rc < 0 ? h2k_seterr(H2K_EX_FAIL, "out of memory") : 0;
}

static int
add_nic(struct table *tab, cJSON *arr, xmlNodePtr dev)
{
	cJSON *n = cJSON_CreateObject();
	xmlNodePtr b = h2k_xml_child(dev, "backing"), port;
	char *key = h2k_xml_text(dev, "key");
	char *label = h2k_xml_text(h2k_xml_child(dev, "deviceInfo"), "label");
	char *mac = h2k_xml_text(dev, "macAddress");
	char *btype = h2k_xml_type(b), *ref = NULL, *devname = NULL;
	const char *net = NULL;
	int rc = -1;

	if (!n)
		goto out;
	cJSON_AddItemToArray(arr, n);
	if (b && (port = h2k_xml_child(b, "port"))) {
		/* distributed port group: its key is the portgroup's moref */
		ref = h2k_xml_text(port, "portgroupKey");
		net = ent_name(tab, ref);
	} else if (b && btype && !strcmp(btype, "VirtualEthernetCardOpaqueNetworkBackingInfo")) {
		devname = h2k_xml_text(b, "opaqueNetworkId");
		net = devname;
	} else if (b) {
		ref = h2k_xml_text(b, "network");
		devname = h2k_xml_text(b, "deviceName");
		if (!(net = ent_name(tab, ref)))
			net = devname;
	}
	if (add_num(n, "key", key) < 0 || add_str(n, "label", label) < 0 ||
	    add_str(n, "mac", mac) < 0 || add_str(n, "network", net) < 0)
		goto out;
	rc = 0;
out:
	free(key);
	free(label);
	free(mac);
	free(btype);
	free(ref);
	free(devname);
	return rc < 0 ? h2k_seterr(H2K_EX_FAIL, "out of memory") : 0;
}


int
h2k_inv_vm_fields(cJSON *o, xmlNodePtr obj, int sparse)
{
	static const struct {
		const char *prop, *key;
		int (*add)(cJSON *, const char *, const char *);
	} map[] = {
		{ "config.uuid", "uuid", add_str },
		{ "config.instanceUuid", "instance_uuid", add_str },
		{ "runtime.powerState", "power_state", add_str },
		{ "config.template", "template", add_bool },
		{ "config.guestId", "guest_id", add_str },
		{ "config.guestFullName", "guest_os", add_str },
		{ "config.hardware.numCPU", "num_cpu", add_num },
		{ "config.hardware.memoryMB", "memory_mb", add_num },
		{ "config.firmware", "firmware", add_str },
	};

	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
		xmlNodePtr val = h2k_vim_prop(obj, map[i].prop);
		char *t = val ? h2k_xml_text(val, NULL) : NULL;
		int r;

		if (val && !t)
			return -1;
		if (!t && sparse)
			continue;
		r = map[i].add(o, map[i].key, t);
		free(t);
		if (r < 0)
			return h2k_seterr(H2K_EX_FAIL, "out of memory");
	}
	return 0;
}

/* h2k-ls's line for a VM: the fields above and what the table resolves. */
static cJSON *
vm_json(struct table *tab, xmlNodePtr obj, const char *name, const char *path,
    const char *moref, const char *dc, double *gib)
{
	cJSON *j = cJSON_CreateObject(), *arr, *disks, *nics;
	char *hostref = prop_text(obj, "runtime.host");
	xmlNodePtr val, dev;

	if (!j || add_str(j, "name", name) < 0 || add_str(j, "path", path) < 0 ||
	    add_str(j, "moref", moref) < 0 || h2k_inv_vm_fields(j, obj, 0) < 0 ||
	    add_str(j, "datacenter", dc) < 0 ||
	    add_str(j, "host", ent_name(tab, hostref)) < 0 ||
	    !(arr = cJSON_AddArrayToObject(j, "datastores")))
		goto oom;
	if ((val = h2k_vim_prop(obj, "datastore")))
		for (xmlNodePtr m = h2k_xml_child(val, NULL); m;
		    m = h2k_xml_next(m, NULL)) {
			char *ref = h2k_xml_text(m, NULL);
			const char *dn = ent_name(tab, ref);
			cJSON *sj = cJSON_CreateString(dn ? dn : ref ? ref : "");
			free(ref);
			if (!sj)
				goto oom;
			cJSON_AddItemToArray(arr, sj);
		}
	disks = cJSON_AddArrayToObject(j, "disks");
	nics = cJSON_AddArrayToObject(j, "nics");
	if (!disks || !nics)
		goto oom;
	val = h2k_vim_prop(obj, "config.hardware.device");
	for (dev = h2k_xml_child(val, NULL); dev; dev = h2k_xml_next(dev, NULL)) {
		char *t = h2k_xml_type(dev);
		int r = 0;
		if (!t)
			continue;
		if (!strcmp(t, "VirtualDisk"))
			r = add_disk(tab, disks, dev, gib);
		else if (is_nic(dev, t))
			r = add_nic(tab, nics, dev);
		free(t);
		if (r < 0)
			goto fail;
	}
	free(hostref);
	return j;
oom:
	h2k_seterr(H2K_EX_FAIL, "out of memory");
fail:
	free(hostref);
	cJSON_Delete(j);
	return NULL;
}

/* -t: keep what the table shows; takes name, path and power. */
static int
keep_row(struct ls *ls, xmlNodePtr obj, char **name, char **path,
    char **power, double gib)
{
	struct h2k_inv_result *res = ls->res;
	char *cpu = prop_text(obj, "config.hardware.numCPU");
	char *mem = prop_text(obj, "config.hardware.memoryMB");
	struct h2k_inv_row *r;

	pthread_mutex_lock(&ls->mu);
	if (res->nrows == ls->caprows) {
		size_t nc = ls->caprows ? ls->caprows * 2 : 64;
		if (!(r = h2k_realloc(res->rows, nc * sizeof *r))) {
			pthread_mutex_unlock(&ls->mu);
			free(cpu);
			free(mem);
			return -1;
		}
		res->rows = r;
		ls->caprows = nc;
	}
	r = &res->rows[res->nrows++];
	r->name = *name;
	r->path = *path;
	r->power = *power;
	*name = *path = *power = NULL;
	r->cpu = cpu ? strtol(cpu, NULL, 10) : 0;
	r->mem = mem ? strtol(mem, NULL, 10) : 0;
	r->disk_gib = gib;
	pthread_mutex_unlock(&ls->mu);
	free(cpu);
	free(mem);
	return 0;
}

/* Does the VM pass the filters?  Marks the PATH arguments it matches. */
static int
wanted(struct ls *ls, const char *name, const char *path, const char *power,
    int is_tmpl)
{
	struct h2k_inv_opts *o = ls->o;
	int hit = 0;

	if (o->name_glob && fnmatch(o->name_glob, name, 0) != 0)
		return 0;
	if (o->power && (!power || strcmp(power, o->power)))
		return 0;
	if (o->templates >= 0 && is_tmpl != o->templates)
		return 0;
	if (!o->npaths)
		return 1;
	for (int i = 0; i < o->npaths; i++)
		if (h2k_inv_path_match(o->paths[i], path)) {
			hit = 1;
			pthread_mutex_lock(&ls->hits_mu);
			o->found[i] = 1;
			pthread_mutex_unlock(&ls->hits_mu);
		}
	return hit;
}

static int
vm_cb(void *arg, xmlNodePtr obj)
{
	struct worker *w = arg;
	struct ls *ls = w->ls;
	char *moref = h2k_xml_text(obj, "obj");
	char *name = prop_text(obj, "name");
	char *parent = prop_text(obj, "parent");
	char *power = prop_text(obj, "runtime.powerState");
	char *tmpl = prop_text(obj, "config.template");
	char *path = NULL, *line = NULL;
	struct ent *pe;
	cJSON *j = NULL;
	double gib = 0;
	int rc = -1;

	if (!moref || !name) {
		h2k_warn("skipping an object without moref or name");
		rc = 0;
		goto out;
	}
	if (!parent)
		parent = prop_text(obj, "parentVApp");
	/* Read-only here (workers run in parallel): paths were computed
	 * before the workers started. */
	if (!(pe = tab_find(&ls->tab, parent)) || !pe->path) {
		h2k_warn("%s (%s): not in the VM folder tree; skipped", name, moref);
		rc = 0;
		goto out;
	}
	if (!(path = h2k_asprintf("%s/%s", pe->path, name)))
		goto out;
	if (!wanted(ls, name, path, power, tmpl && !strcmp(tmpl, "true"))) {
		rc = 0;
		goto out;
	}
	if (!(j = vm_json(&ls->tab, obj, name, path, moref, pe->dc, &gib)))
		goto out;
	if (ls->o->table)
		rc = keep_row(ls, obj, &name, &path, &power, gib);
	else if (!(line = h2k_json_print(j)))
		h2k_seterr(H2K_EX_FAIL, "out of memory");
	else if (h2k_buf_append(&w->out, line, strlen(line)) == 0 &&
	    h2k_buf_append(&w->out, "\n", 1) == 0)
		rc = 0;
	if (rc == 0)
		w->listed++;
out:
	cJSON_Delete(j);
	free(line);
	free(moref);
	free(name);
	free(parent);
	free(power);
	free(tmpl);
	free(path);
	return rc;
}

/* --- the workers --------------------------------------------------------- */

static int
add_id(struct ls *ls, char *id)
{
	struct ent *e;

	/* The same VM under two PATH arguments is listed once. */
	if (ls->o->npaths) {
		char *key = h2k_strdup(id);
		if (!key || !(e = tab_add(&ls->seen, key)))
			return free(id), -1;
		if (e->kind) {
			free(id);
			return 0;
		}
		e->kind = K_OTHER;
	}
	if (ls->nids == ls->capids) {
		size_t nc = ls->capids ? ls->capids * 2 : 1024;
		char **n = h2k_realloc(ls->ids, nc * sizeof *n);
		if (!n)
			return free(id), -1;
		ls->ids = n;
		ls->capids = nc;
	}
	ls->ids[ls->nids++] = id;
	return 0;
}

static int
ids_cb(void *arg, xmlNodePtr obj)
{
	struct ls *ls = arg;
	char *id = h2k_xml_text(obj, "obj");

	return id ? add_id(ls, id) : -1;
}

/*
 * PATH arguments without glob characters are looked up on the server
 * (FindByInventoryPath): a VM is fetched alone, a folder, datacenter or
 * vApp through a view rooted there, so `h2k-ls /DC/vm/web01` does not walk
 * a large inventory.  1 if that was possible, 0 to list everything, -1 on
 * error.
 */
static int
ids_for_paths(struct ls *ls)
{
	static const char *const p_none[] = { NULL };
	struct h2k_inv_opts *o = ls->o;

	if (!o->npaths)
		return 0;
	for (int i = 0; i < o->npaths; i++)
		if (strpbrk(o->paths[i], "*?[\\") || !strcmp(o->paths[i], "/"))
			return 0;
	for (int i = 0; i < o->npaths; i++) {
		char *type = NULL, *m = h2k_vim_find_path(ls->v, o->paths[i], &type);
		int rc = 0;

		if (!m) {
			free(type);
			if (h2k_errcode() != H2K_EX_NOTFOUND)
				return -1;
			continue; /* reported as not found at the end */
		}
		if (!strcmp(type, "VirtualMachine")) {
			rc = add_id(ls, m);
			m = NULL;
		} else {
			char *root = h2k_asprintf("%s:%s", type, m);
			rc = root ? h2k_vim_each(ls->v, root, "VirtualMachine", p_none,
			    PAGE_IDS, ids_cb, ls) : -1;
			free(root);
		}
		free(m);
		free(type);
		if (rc < 0)
			return -1;
	}
	return 1;
}

static const char *const vm_props[] = {
	"name", "parent", "parentVApp", "config.uuid",
	"config.instanceUuid", "runtime.powerState", "config.template",
	"config.guestId", "config.guestFullName",
	"config.hardware.numCPU", "config.hardware.memoryMB",
	"config.firmware", "runtime.host", "datastore",
	"config.hardware.device", NULL,
};

static int
fetch_chunk(struct worker *w, size_t j)
{
	struct ls *ls = w->ls;
	size_t first = j * CHUNK_VMS, n = ls->nids - first;
	const char *const *ids = (const char *const *)ls->ids + first;

	if (n > CHUNK_VMS)
		n = CHUNK_VMS;
	if (h2k_vim_get_list(w->v, "VirtualMachine", ids, (int)n, vm_props,
	    vm_cb, w) == 0)
		return 0;
	if (h2k_errcode() != H2K_EX_NOTFOUND || w->out.len)
		return -1;
	/* A VM went away between the listing and now: one at a time. */
	for (size_t i = 0; i < n; i++)
		if (h2k_vim_get(w->v, "VirtualMachine", ids[i], vm_props, vm_cb,
		    w) < 0) {
			if (h2k_errcode() != H2K_EX_NOTFOUND)
				return -1;
			h2k_debug("%s: gone while listing", ids[i]);
		}
	return 0;
}

/* Under mu: write out every finished chunk that is next in line. */
static void
flush_ready(struct ls *ls)
{
	while (ls->printed < ls->nchunks && ls->slot_done[ls->printed]) {
		struct h2k_buf *b = &ls->slots[ls->printed];
		/* a short write leaves ferror(out) set: the caller's to report */
		if (b->len)
			(void)fwrite(b->data, 1, b->len, ls->out);
		h2k_buf_free(b);
		ls->printed++;
	}
	fflush(ls->out);
	pthread_cond_broadcast(&ls->cv);
}

static void *
worker_run(void *arg)
{
	struct worker *w = arg;
	struct ls *ls = w->ls;
	int own = !w->v;

	if (own && !(w->v = h2k_vim_from_session(ls->sess)))
		goto fail;
	for (;;) {
		size_t j;
		pthread_mutex_lock(&ls->mu);
		while (!ls->failed && ls->next_chunk < ls->nchunks &&
		    ls->next_chunk >= ls->printed + ls->window)
			pthread_cond_wait(&ls->cv, &ls->mu);
		if (ls->failed || ls->next_chunk >= ls->nchunks) {
			pthread_mutex_unlock(&ls->mu);
			break;
		}
		j = ls->next_chunk++;
		pthread_mutex_unlock(&ls->mu);
		memset(&w->out, 0, sizeof w->out);
		if (fetch_chunk(w, j) < 0) {
			h2k_buf_free(&w->out);
			goto fail;
		}
		pthread_mutex_lock(&ls->mu);
		ls->slots[j] = w->out;
		ls->slot_done[j] = 1;
		flush_ready(ls);
		pthread_mutex_unlock(&ls->mu);
	}
	goto out;
fail:
	pthread_mutex_lock(&ls->mu);
	if (!ls->failed) {
		ls->failed = 1;
		ls->fail_code = h2k_errcode();
		snprintf(ls->fail_msg, sizeof ls->fail_msg, "%s", h2k_errmsg());
	}
	pthread_cond_broadcast(&ls->cv);
	pthread_mutex_unlock(&ls->mu);
out:
	if (own) {
		h2k_vim_free(w->v);
		w->v = NULL;
	}
	return NULL;
}

/*
 * Fetch and write out the VMs of ls->ids with up to jobs connections (the
 * first is ls->v).  -1 with the first worker's error.
 */
static int
list_vms(struct ls *ls, int jobs)
{
	struct worker *w;
	pthread_t *t;
	int nt, rc = 0;

	ls->nchunks = (ls->nids + CHUNK_VMS - 1) / CHUNK_VMS;
	if (!ls->nchunks)
		return 0;
	nt = (size_t)jobs < ls->nchunks ? jobs : (int)ls->nchunks;
	ls->window = 2 * (size_t)nt;
	ls->slots = h2k_calloc(ls->nchunks, sizeof *ls->slots);
	ls->slot_done = h2k_calloc(ls->nchunks, 1);
	w = h2k_calloc((size_t)nt, sizeof *w);
	t = h2k_calloc((size_t)nt, sizeof *t);
	if (!ls->slots || !ls->slot_done || !w || !t) {
		free(w);
		free(t);
		return -1;
	}
	for (int i = 0; i < nt; i++) {
		w[i].ls = ls;
		w[i].v = i == 0 ? ls->v : NULL;
	}
	/* Worker 0 runs here, on the connection already open. */
	for (int i = 1; i < nt; i++)
		if (pthread_create(&t[i], NULL, worker_run, &w[i]) != 0) {
			h2k_seterr(H2K_EX_FAIL, "cannot start a thread");
			pthread_mutex_lock(&ls->mu);
			ls->failed = 1;
			ls->fail_code = H2K_EX_FAIL;
			snprintf(ls->fail_msg, sizeof ls->fail_msg, "cannot start a thread");
			pthread_mutex_unlock(&ls->mu);
			nt = i;
			break;
		}
	worker_run(&w[0]);
	for (int i = 1; i < nt; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < nt; i++)
		ls->res->listed += w[i].listed;
	if (ls->failed) {
		h2k_seterr(ls->fail_code, "%s", ls->fail_msg);
		rc = -1;
	}
	for (size_t j = 0; j < ls->nchunks; j++)
		h2k_buf_free(&ls->slots[j]);
	free(w);
	free(t);
	return rc;
}

/* A PATH that matched no VM must at least name a folder. */
static int
names_folder(struct table *t, const char *pat)
{
	for (size_t i = 0; i < t->cap; i++) {
		struct ent *e = &t->e[i];
		if (!e->moref || (e->kind != K_FOLDER && e->kind != K_DC &&
		    e->kind != K_VAPP))
			continue;
		if (e->path && *e->path && h2k_inv_path_match(pat, e->path))
			return 1;
	}
	return 0;
}

/* The moref table: one paged pass over every container and name. */
static int
load_table(struct ls *ls)
{
	static const char *const p_name[] = { "name", NULL };
	static const char *const p_folder[] = { "name", "parent", NULL };
	static const char *const p_vapp[] = { "name", "parentFolder",
		"parentVApp", NULL };
	static const struct h2k_vim_spec specs[] = {
		{ "Folder", p_folder }, { "Datacenter", p_folder },
		{ "VirtualApp", p_vapp }, { "HostSystem", p_name },
		{ "Datastore", p_name }, { "Network", p_name },
	};
	char *rf;
	struct ent *e;

	if (h2k_vim_each_spec(ls->v, NULL, specs, sizeof specs / sizeof specs[0],
	    PAGE_OBJS, table_cb, &ls->tab) < 0)
		return -1;
	/* A view holds what is inside its container, not the container: the
	 * root folder is the top of every path. */
	if (!(rf = h2k_strdup(ls->v->root_folder)) || !(e = tab_add(&ls->tab, rf)))
		return -1;
	if (!e->kind) {
		e->kind = K_FOLDER;
		if (!(e->name = h2k_strdup("")))
			return -1;
	}
	free(e->parent);
	e->parent = NULL;
	tab_paths(&ls->tab);
	return 0;
}

int
h2k_inv_list(struct h2k_vim *v, const struct h2k_session *sess,
    struct h2k_inv_opts *o, FILE *out, struct h2k_inv_result *res)
{
	static const char *const p_none[] = { NULL };
	struct ls ls = { .v = v, .sess = sess, .out = out, .o = o, .res = res };
	int r, rc = -1;

	memset(res, 0, sizeof *res);
	pthread_mutex_init(&ls.mu, NULL);
	pthread_mutex_init(&ls.hits_mu, NULL);
	pthread_cond_init(&ls.cv, NULL);
	for (int i = 0; i < o->npaths; i++)
		o->found[i] = 0;
	if (load_table(&ls) < 0 || (r = ids_for_paths(&ls)) < 0 || (r == 0 &&
	    h2k_vim_each(v, NULL, "VirtualMachine", p_none, PAGE_IDS, ids_cb,
	    &ls) < 0) || list_vms(&ls, o->jobs) < 0)
		goto out;
	for (int i = 0; i < o->npaths; i++)
		if (!o->found[i] && names_folder(&ls.tab, o->paths[i]))
			o->found[i] = 1;
	res->others = ls.tab.n;
	rc = 0;
out:
	tab_free(&ls.tab);
	tab_free(&ls.seen);
	for (size_t i = 0; i < ls.nids; i++)
		free(ls.ids[i]);
	free(ls.ids);
	free(ls.slots);
	free(ls.slot_done);
	pthread_mutex_destroy(&ls.mu);
	pthread_mutex_destroy(&ls.hits_mu);
	pthread_cond_destroy(&ls.cv);
	return rc;
}

void
h2k_inv_result_free(struct h2k_inv_result *res)
{
	for (size_t i = 0; i < res->nrows; i++) {
		free(res->rows[i].name);
		free(res->rows[i].path);
		free(res->rows[i].power);
	}
	free(res->rows);
	memset(res, 0, sizeof *res);
}

/* --- one VM: h2k-lease's lookup ----------------------------------------- */

/*
 * h2k-ls builds its moref table from the whole inventory; for one VM that
 * would cost a listing.  Instead two round trips, whatever the depth of
 * its folder: the VM and, by traversal, its ancestors up to the root
 * folder (names and parents: path and datacenter), its datastores and
 * networks (names); then, only if some are missing, the names of what no
 * traversal from the VM reaches - its host (runtime.host is not a
 * top-level property) and a datastore or portgroup a device names that
 * the VM's own lists do not.  They fill a table like h2k-ls's, and
 * vm_json maps the VM with it: the one mapping, the same values.
 */
#define ONE_MAX_OBJS 4096
#define ONE_MAX_REFS 256

struct one {
	const char *moref;
	struct table tab;
	xmlDocPtr vm;           /* the VM's ObjectContent, out of the stream */
	long nobj;
};

static int
one_cb(void *arg, xmlNodePtr obj)
{
	struct one *a = arg;
	char *moref, *type;
	xmlNodePtr c;
	int vm;

	if (++a->nobj > ONE_MAX_OBJS)
		return h2k_seterr(H2K_EX_NET, "VM %s: more than %d objects in "
		    "the answer about it", a->moref, ONE_MAX_OBJS);
	moref = h2k_xml_text(obj, "obj");
	type = obj_type(obj);
	vm = moref && type && !strcmp(type, "VirtualMachine") &&
	    !strcmp(moref, a->moref);
	free(moref);
	free(type);
	if (!vm)
		return table_cb(&a->tab, obj);
	if (a->vm)
		return 0; /* repeated: the first counts */
	/* the stream frees obj after this call */
	if (!(a->vm = xmlNewDoc((const xmlChar *)"1.0")) ||
	    !(c = xmlDocCopyNode(obj, a->vm, 1)))
		return h2k_seterr(H2K_EX_FAIL, "out of memory");
	xmlDocSetRootElement(a->vm, c);
	return 0;
}

struct refs {
	struct h2k_vim_ref r[ONE_MAX_REFS];
	char *m[ONE_MAX_REFS];
	int n;
};

/* Takes moref: ask for its name unless the table or the list has it. */
static void
want_ref(struct one *a, struct refs *rs, const char *type, char *moref)
{
	if (!moref || tab_find(&a->tab, moref) || rs->n == ONE_MAX_REFS) {
		free(moref);
		return;
	}
	for (int i = 0; i < rs->n; i++)
		if (!strcmp(rs->m[i], moref)) {
			free(moref);
			return;
		}
	rs->m[rs->n] = moref;
	rs->r[rs->n].type = type;
	rs->r[rs->n].moref = moref;
	rs->n++;
}

/* The morefs vm_json will look up that the first answer did not name. */
static void
missing_refs(struct one *a, xmlNodePtr vm, struct refs *rs)
{
	xmlNodePtr val = h2k_vim_prop(vm, "config.hardware.device"), dev;

	want_ref(a, rs, "HostSystem", prop_text(vm, "runtime.host"));
	for (dev = h2k_xml_child(val, NULL); dev; dev = h2k_xml_next(dev, NULL)) {
		xmlNodePtr b = h2k_xml_child(dev, "backing"), port;
		char *t = h2k_xml_type(dev);

		if (t && b && !strcmp(t, "VirtualDisk"))
			want_ref(a, rs, "Datastore", h2k_xml_text(b, "datastore"));
		else if (t && b && is_nic(dev, t)) {
			if ((port = h2k_xml_child(b, "port")))
				want_ref(a, rs, "DistributedVirtualPortgroup",
				    h2k_xml_text(port, "portgroupKey"));
			else
				want_ref(a, rs, "Network", h2k_xml_text(b, "network"));
		}
		free(t);
	}
}

cJSON *
h2k_inv_vm_one(struct h2k_vim *v, const char *moref)
{
	static const char *const p_name[] = { "name", NULL };
	static const char *const p_folder[] = { "name", "parent", NULL };
	static const char *const p_vapp[] = { "name", "parentFolder",
		"parentVApp", NULL };
	static const char *const n_folder[] = { "folderUp", "dcUp", NULL };
	static const char *const n_vapp[] = { "vappFolder", "vappUp", NULL };
	static const struct h2k_vim_hop hops[] = {
		{ "vmFolder", "VirtualMachine", "parent", n_folder },
		{ "vmVApp", "VirtualMachine", "parentVApp", n_vapp },
		{ "vmDs", "VirtualMachine", "datastore", NULL },
		{ "vmNet", "VirtualMachine", "network", NULL },
		{ "folderUp", "Folder", "parent", n_folder },
		{ "dcUp", "Datacenter", "parent", n_folder },
		{ "vappFolder", "VirtualApp", "parentFolder", n_folder },
		{ "vappUp", "VirtualApp", "parentVApp", n_vapp },
	};
	/* Network covers DistributedVirtualPortgroup and OpaqueNetwork. */
	static const struct h2k_vim_spec specs[] = {
		{ "VirtualMachine", vm_props }, { "Folder", p_folder },
		{ "Datacenter", p_folder }, { "VirtualApp", p_vapp },
		{ "Datastore", p_name }, { "Network", p_name },
	};
	static const struct h2k_vim_spec names[] = {
		{ "HostSystem", p_name }, { "Datastore", p_name },
		{ "Network", p_name },
	};
	struct one a = { .moref = moref };
	struct refs rs = { .n = 0 };
	char *name = NULL, *parent = NULL, *path = NULL, *dc = NULL;
	xmlNodePtr obj;
	cJSON *j = NULL;
	double gib = 0;

	if (h2k_vim_get_hops(v, "VirtualMachine", moref, hops,
	    sizeof hops / sizeof hops[0], specs, sizeof specs / sizeof specs[0],
	    ONE_MAX_OBJS, one_cb, &a) < 0)
		goto out;
	if (!a.vm || !(obj = xmlDocGetRootElement(a.vm)) ||
	    !(name = prop_text(obj, "name"))) {
		h2k_seterr(H2K_EX_NOTFOUND, "%s: no such VM", moref);
		goto out;
	}
	missing_refs(&a, obj, &rs);
	if (h2k_vim_get_refs(v, rs.r, rs.n, names,
	    sizeof names / sizeof names[0], table_cb, &a.tab) < 0)
		goto out;
	if (!(parent = prop_text(obj, "parent")))
		parent = prop_text(obj, "parentVApp");
	/* Outside the VM folder tree (h2k-ls skips it): path and datacenter
	 * null. */
	if (parent)
		path = h2k_inv_path(tab_up, &a.tab, v->root_folder, parent, NULL,
		    name, &dc);
	j = vm_json(&a.tab, obj, name, path, moref, dc, &gib);
out:
	for (int i = 0; i < rs.n; i++)
		free(rs.m[i]);
	tab_free(&a.tab);
	xmlFreeDoc(a.vm);
	free(name);
	free(parent);
	free(path);
	free(dc);
	return j;
}
