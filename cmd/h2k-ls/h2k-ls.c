/*
 * h2k-ls - list vSphere VMs as JSON lines (or a table).
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
 * h2k-ls lists the VM morefs (a few bytes each, the only thing kept per VM)
 * and has H2K_LS_JOBS connections (default 4) fetch the properties in
 * chunks of 250 VMs.  Each answer is parsed as it streams in, one VM at a
 * time, into that chunk's output buffer; chunks are printed in order, as
 * soon as all before them are out, and workers wait rather than run more
 * than 2 x jobs chunks ahead.  So output is in the server's order and
 * memory is bounded by the jobs, never the inventory.  A chunk answered
 * with ManagedObjectNotFound (a VM deleted meanwhile) is fetched again VM
 * by VM, skipping the missing ones.  Only -t keeps every VM (a few strings)
 * to align the columns.
 */
#include <err.h>
#include <pthread.h>
#include <fnmatch.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "h2k.h"
#include "jsonl.h"
#include "session.h"
#include "vim.h"

#define CHUNK_VMS 250
#define PAGE_OBJS 1000
#define PAGE_IDS 500
#define JOBS_DEFAULT 4

static void
usage(void)
{
	fprintf(stderr,
	    "usage: h2k-ls [-qtv] [-s session] [--name glob] [--power on | off | suspended]\n"
	    "              [--soap-timeout seconds] [--templates | --no-templates]\n"
	    "              [path ...]\n");
	exit(H2K_EX_USAGE);
}

/* --- the moref table ----------------------------------------------------- */

enum kind { K_FOLDER = 1, K_DC, K_VAPP, K_HOST, K_DS, K_NET, K_OTHER };

struct ent {
	char *moref;
	char *name;
	char *parent;     /* moref of the parent in the VM inventory tree */
	enum kind kind;
	char *path;       /* memoised inventory path */
	const char *dc;   /* memoised datacenter name (points into a name) */
	int busy;         /* cycle guard */
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

/*
 * Inventory path of a folder/datacenter/vApp: the names from the root
 * folder down, the root folder itself excluded ("/DC0/vm/sub").  NULL if
 * the chain is broken or loops (a hostile or inconsistent server).
 */
static const char *
ent_path(struct table *t, struct ent *e, int depth)
{
	struct ent *p;
	const char *pp;

	if (e->path)
		return e->path;
	if (depth > 128 || e->busy || !e->name)
		return NULL;
	if (!e->parent) {
		/* the root folder */
		e->path = h2k_strdup("");
		return e->path;
	}
	if (!(p = tab_find(t, e->parent)))
		return NULL;
	e->busy = 1;
	pp = ent_path(t, p, depth + 1);
	e->busy = 0;
	if (!pp)
		return NULL;
	e->path = h2k_asprintf("%s/%s", pp, e->name);
	e->dc = e->kind == K_DC ? e->name : p->dc;
	return e->path;
}

static const char *
ent_name(struct table *t, const char *moref)
{
	struct ent *e = tab_find(t, moref);

	return e && e->name ? e->name : NULL;
}

/* --- options and filters ------------------------------------------------- */

struct opts {
	const char *name_glob;
	const char *power;      /* poweredOn/poweredOff/suspended or NULL */
	int templates;          /* 1 only templates, 0 no templates, -1 both */
	int table;
	char **paths;
	int npaths;
	int *path_hits;
};

/* A VM is under PATH if PATH (a glob) matches its path or one of its
 * ancestors' paths. */
static int
path_match(const char *pat, const char *path)
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

/* --- output -------------------------------------------------------------- */

struct row {
	char *name, *power, *path;
	long cpu, mem;
	double disk_gib;
};

struct ls {
	struct h2k_vim *v;
	const struct h2k_session *sess;
	struct table tab;
	struct table seen;      /* VM morefs, only with PATH arguments */
	struct opts *o;
	long listed;
	struct row *rows;
	size_t nrows, caprows;
	/* the VMs, and the chunks the workers share (under mu) */
	char **ids;
	size_t nids, capids;
	pthread_mutex_t mu;
	/* o->path_hits: its own lock, because mu is held while a chunk is
	 * written to stdout, which can block as long as the reader likes;
	 * a worker in the middle of a SOAP call must never wait for that
	 * (the call's deadline would run out) */
	pthread_mutex_t hits_mu;
	pthread_cond_t cv;
	size_t nchunks, next_chunk, printed, window;
	struct h2k_buf *slots;
	char *slot_done;
	int failed, fail_code;
	char fail_msg[1024];
	int write_err;
};

/* What one worker is filling: the output of its current chunk. */
struct worker {
	struct ls *ls;
	struct h2k_vim *v;
	struct h2k_buf out;
	long listed;
};

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
add_disk(struct ls *ls, cJSON *arr, xmlNodePtr dev, double *gib)
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
	const char *ds = ent_name(&ls->tab, dsref);
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
add_nic(struct ls *ls, cJSON *arr, xmlNodePtr dev)
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
		net = ent_name(&ls->tab, ref);
	} else if (b && btype && !strcmp(btype, "VirtualEthernetCardOpaqueNetworkBackingInfo")) {
		devname = h2k_xml_text(b, "opaqueNetworkId");
		net = devname;
	} else if (b) {
		ref = h2k_xml_text(b, "network");
		devname = h2k_xml_text(b, "deviceName");
		if (!(net = ent_name(&ls->tab, ref)))
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

static const char *
power_short(const char *p)
{
	if (!p)
		return "?";
	if (!strcmp(p, "poweredOn"))
		return "on";
	if (!strcmp(p, "poweredOff"))
		return "off";
	return p;
}

static int
vm_cb(void *arg, xmlNodePtr obj)
{
	struct worker *w = arg;
	struct ls *ls = w->ls;
	struct opts *o = ls->o;
	char *moref = h2k_xml_text(obj, "obj");
	char *name = prop_text(obj, "name");
	char *parent = prop_text(obj, "parent");
	char *power = prop_text(obj, "runtime.powerState");
	char *tmpl = prop_text(obj, "config.template");
	char *path = NULL, *hostref = NULL, *s;
	struct ent *pe;
	const char *ppath = NULL, *dc = NULL;
	cJSON *j = NULL, *arr;
	xmlNodePtr val, dev;
	double gib = 0;
	int rc = -1, is_tmpl = tmpl && !strcmp(tmpl, "true");

	if (!moref || !name) {
		h2k_warn("skipping an object without moref or name");
		rc = 0;
		goto out;
	}
	if (!parent)
		parent = prop_text(obj, "parentVApp");
	/* Read-only here (workers run in parallel): paths were computed
	 * before the workers started. */
	if ((pe = tab_find(&ls->tab, parent)))
		ppath = pe->path;
	if (!ppath) {
		h2k_warn("%s (%s): not in the VM folder tree; skipped", name, moref);
		rc = 0;
		goto out;
	}
	dc = pe->dc;
	if (!(path = h2k_asprintf("%s/%s", ppath, name)))
		goto out;
	/* filters */
	if (o->name_glob && fnmatch(o->name_glob, name, 0) != 0)
		goto skip;
	if (o->power && (!power || strcmp(power, o->power)))
		goto skip;
	if (o->templates >= 0 && is_tmpl != o->templates)
		goto skip;
	if (o->npaths) {
		int hit = 0;
		for (int i = 0; i < o->npaths; i++)
			if (path_match(o->paths[i], path)) {
				hit = 1;
				pthread_mutex_lock(&ls->hits_mu);
				o->path_hits[i] = 1;
				pthread_mutex_unlock(&ls->hits_mu);
			}
		if (!hit)
			goto skip;
	}
	if (!(j = cJSON_CreateObject()))
		goto oom;
	hostref = prop_text(obj, "runtime.host");
	if (add_str(j, "name", name) < 0 || add_str(j, "path", path) < 0 ||
	    add_str(j, "moref", moref) < 0)
		goto oom;
	s = prop_text(obj, "config.uuid");
	rc = add_str(j, "uuid", s);
	free(s);
	s = prop_text(obj, "config.instanceUuid");
	rc |= add_str(j, "instance_uuid", s);
	free(s);
	rc |= add_str(j, "power_state", power);
	rc |= cJSON_AddBoolToObject(j, "template", is_tmpl) ? 0 : -1;
	s = prop_text(obj, "config.guestId");
	rc |= add_str(j, "guest_id", s);
	free(s);
	s = prop_text(obj, "config.guestFullName");
	rc |= add_str(j, "guest_os", s);
	free(s);
	char *cpu = prop_text(obj, "config.hardware.numCPU");
	char *mem = prop_text(obj, "config.hardware.memoryMB");
	rc |= add_num(j, "num_cpu", cpu);
	rc |= add_num(j, "memory_mb", mem);
	long ncpu = cpu ? strtol(cpu, NULL, 10) : 0, nmem = mem ? strtol(mem, NULL, 10) : 0;
	free(cpu);
	free(mem);
	s = prop_text(obj, "config.firmware");
	rc |= add_str(j, "firmware", s);
	free(s);
	rc |= add_str(j, "datacenter", dc);
	rc |= add_str(j, "host", ent_name(&ls->tab, hostref));
	if (rc || !(arr = cJSON_AddArrayToObject(j, "datastores")))
		goto oom;
	if ((val = h2k_vim_prop(obj, "datastore")))
		for (xmlNodePtr m = h2k_xml_child(val, NULL); m;
		    m = h2k_xml_next(m, NULL)) {
			char *ref = h2k_xml_text(m, NULL);
			const char *dn = ent_name(&ls->tab, ref);
			cJSON *sj = cJSON_CreateString(dn ? dn : ref ? ref : "");
			free(ref);
			if (!sj)
				goto oom;
			cJSON_AddItemToArray(arr, sj);
		}
	cJSON *disks = cJSON_AddArrayToObject(j, "disks");
	cJSON *nics = cJSON_AddArrayToObject(j, "nics");
	if (!disks || !nics)
		goto oom;
	val = h2k_vim_prop(obj, "config.hardware.device");
	for (dev = h2k_xml_child(val, NULL); dev; dev = h2k_xml_next(dev, NULL)) {
		char *t = h2k_xml_type(dev);
		int r = 0;
		if (!t)
			continue;
		if (!strcmp(t, "VirtualDisk"))
			r = add_disk(ls, disks, dev, &gib);
		else if (is_nic(dev, t))
			r = add_nic(ls, nics, dev);
		free(t);
		if (r < 0)
			goto fail;
	}
	if (o->table) {
		struct row *r;
		pthread_mutex_lock(&ls->mu);
		if (ls->nrows == ls->caprows) {
			size_t nc = ls->caprows ? ls->caprows * 2 : 64;
			if (!(r = h2k_realloc(ls->rows, nc * sizeof *r))) {
				pthread_mutex_unlock(&ls->mu);
				goto fail;
			}
			ls->rows = r;
			ls->caprows = nc;
		}
		r = &ls->rows[ls->nrows];
		r->name = name;
		r->path = path;
		r->power = power;
		name = path = power = NULL;
		r->cpu = ncpu;
		r->mem = nmem;
		r->disk_gib = gib;
		ls->nrows++;
		pthread_mutex_unlock(&ls->mu);
	} else {
		char *line = h2k_json_print(j);
		int r;
		if (!line)
			goto oom;
		r = h2k_buf_append(&w->out, line, strlen(line));
		free(line);
		if (r < 0 || h2k_buf_append(&w->out, "\n", 1) < 0)
			goto fail;
	}
	w->listed++;
skip:
	rc = 0;
	goto out;
oom:
	h2k_seterr(H2K_EX_FAIL, "out of memory");
fail:
	rc = -1;
out:
	cJSON_Delete(j);
	free(moref);
	free(name);
	free(parent);
	free(power);
	free(tmpl);
	free(path);
	free(hostref);
	return rc;
}

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
	struct opts *o = ls->o;

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
		if (b->len && fwrite(b->data, 1, b->len, stdout) != b->len)
			ls->write_err = 1;
		h2k_buf_free(b);
		ls->printed++;
	}
	fflush(stdout);
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

static int
jobs_setting(void)
{
	const char *e = getenv("H2K_LS_JOBS");
	char *end;
	long n;

	if (!e || !*e)
		return JOBS_DEFAULT;
	n = strtol(e, &end, 10);
	if (*end || n < 1 || n > 32)
		errx(H2K_EX_USAGE, "H2K_LS_JOBS=%s: want a number from 1 to 32", e);
	return (int)n;
}

/*
 * Fetch and print the VMs of ls->ids with up to jobs connections (the
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
		ls->listed += w[i].listed;
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

/* The table is for a terminal: server names escaped (h2k.h). */
static void
print_table(struct ls *ls)
{
	int wn = 4, wp = 5;
	char mem[32];

	for (size_t i = 0; i < ls->nrows; i++) {
		struct row *r = &ls->rows[i];
		struct h2k_buf n = {0}, p = {0}, w = {0};
		const char *pw = power_short(r->power);

		if (h2k_buf_ttyesc(&n, r->name, strlen(r->name), 0) < 0 ||
		    h2k_buf_ttyesc(&p, r->path, strlen(r->path), 0) < 0 ||
		    h2k_buf_ttyesc(&w, pw, strlen(pw), 0) < 0) {
			h2k_buf_free(&n);
			h2k_buf_free(&p);
			h2k_buf_free(&w);
			errx(h2k_errcode(), "%s", h2k_errmsg());
		}
		free(r->name);
		free(r->path);
		free(r->power);
		r->name = n.data;
		r->path = p.data;
		r->power = w.data;
		if ((int)n.len > wn)
			wn = (int)n.len;
		if ((int)strlen(power_short(r->power)) > wp)
			wp = (int)strlen(power_short(r->power));
	}
	printf("%-*s  %-*s  %3s  %9s  %9s  %s\n", wn, "Name", wp, "Power", "CPU",
	    "Mem", "Disks GiB", "Path");
	for (size_t i = 0; i < ls->nrows; i++) {
		struct row *r = &ls->rows[i];
		if (r->mem >= 1024 && r->mem % 1024 == 0)
			snprintf(mem, sizeof mem, "%ld GiB", r->mem / 1024);
		else
			snprintf(mem, sizeof mem, "%ld MiB", r->mem);
		printf("%-*s  %-*s  %3ld  %9s  %9.1f  %s\n", wn, r->name, wp,
		    power_short(r->power), r->cpu, mem, r->disk_gib, r->path);
	}
}

static void
rows_free(struct ls *ls)
{
	for (size_t i = 0; i < ls->nrows; i++) {
		free(ls->rows[i].name);
		free(ls->rows[i].path);
		free(ls->rows[i].power);
	}
	free(ls->rows);
}

/* A PATH that matched no VM must at least name a folder. */
static int
names_folder(struct table *t, const char *pat)
{
	for (size_t i = 0; i < t->cap; i++) {
		struct ent *e = &t->e[i];
		const char *p;
		if (!e->moref || (e->kind != K_FOLDER && e->kind != K_DC &&
		    e->kind != K_VAPP))
			continue;
		if ((p = ent_path(t, e, 0)) && *p && path_match(pat, p))
			return 1;
	}
	return 0;
}

static int
session_err(const char *spath)
{
	if (h2k_errcode() == H2K_EX_SESSION && strstr(h2k_errmsg(),
	    "NotAuthenticated"))
		h2k_seterr(H2K_EX_SESSION, "session expired or not valid "
		    "(%s); run h2k-login", spath);
	return -1;
}

int
main(int argc, char **argv)
{
	enum { O_NAME = 256, O_POWER, O_TEMPLATES, O_NOTEMPLATES, O_VERSION,
		O_SOAPTIMEOUT };
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "name", required_argument, NULL, O_NAME },
		{ "no-templates", no_argument, NULL, O_NOTEMPLATES },
		{ "power", required_argument, NULL, O_POWER },
		{ "quiet", no_argument, NULL, 'q' },
		{ "session", required_argument, NULL, 's' },
		{ "soap-timeout", required_argument, NULL, O_SOAPTIMEOUT },
		{ "table", no_argument, NULL, 't' },
		{ "templates", no_argument, NULL, O_TEMPLATES },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, O_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	static const char *const p_name[] = { "name", NULL };
	static const char *const p_folder[] = { "name", "parent", NULL };
	static const char *const p_vapp[] = { "name", "parentFolder",
		"parentVApp", NULL };
	static const struct h2k_vim_spec specs[] = {
		{ "Folder", p_folder }, { "Datacenter", p_folder },
		{ "VirtualApp", p_vapp }, { "HostSystem", p_name },
		{ "Datastore", p_name }, { "Network", p_name },
	};
	struct opts o = { .templates = -1 };
	struct h2k_session sess = { 0 };
	static const char *const p_none[] = { NULL };
	struct ls ls = { 0 };
	const char *sflag = NULL;
	char *spath = NULL;
	int c, verbose = H2K_LOG_WARN, rc = H2K_EX_OK, jobs, r;

	h2k_log_init(argv[0]);
	/* it will hold a password or a session cookie */
	if (h2k_nodump() < 0)
		errx(h2k_errcode(), "%s", h2k_errmsg());
	verbose = h2k_log_getlevel();
	while ((c = getopt_long(argc, argv, "hqs:tv", longopts, NULL)) != -1) {
		switch (c) {
		case 'q':
			verbose = H2K_LOG_ERROR;
			break;
		case 's':
			sflag = optarg;
			break;
		case 't':
			o.table = 1;
			break;
		case 'v':
			verbose++;
			break;
		case O_NAME:
			o.name_glob = optarg;
			break;
		case O_POWER:
			if (!strcmp(optarg, "on"))
				o.power = "poweredOn";
			else if (!strcmp(optarg, "off"))
				o.power = "poweredOff";
			else if (!strcmp(optarg, "suspended"))
				o.power = "suspended";
			else
				errx(H2K_EX_USAGE, "--power %s: want on, off or "
				    "suspended", optarg);
			break;
		case O_TEMPLATES:
			o.templates = 1;
			break;
		case O_NOTEMPLATES:
			o.templates = 0;
			break;
		case O_SOAPTIMEOUT: {
			double t;
			if (h2k_soap_parse_timeout(optarg, "--soap-timeout", &t) < 0 ||
			    h2k_soap_set_timeout(t) < 0)
				errx(H2K_EX_USAGE, "%s", h2k_errmsg());
			break;
		}
		case O_VERSION:
			printf("h2k-ls %s\n", H2K_VERSION);
			return 0;
		default:
			usage();
		}
	}
	h2k_log_setlevel(verbose);
	o.npaths = argc - optind;
	if (o.npaths) {
		o.paths = calloc((size_t)o.npaths, sizeof *o.paths);
		o.path_hits = calloc((size_t)o.npaths, sizeof *o.path_hits);
		if (!o.paths || !o.path_hits)
			errx(H2K_EX_FAIL, "out of memory");
		for (int i = 0; i < o.npaths; i++) {
			const char *a = argv[optind + i];
			size_t n = strlen(a);
			if (!n)
				errx(H2K_EX_USAGE, "empty path argument");
			while (n > 1 && a[n - 1] == '/')
				n--;
			if (asprintf(&o.paths[i], "%s%.*s", a[0] == '/' ? "" : "/",
			    (int)n, a) < 0)
				errx(H2K_EX_FAIL, "out of memory");
		}
	}
	ls.o = &o;
	ls.sess = &sess;
	pthread_mutex_init(&ls.mu, NULL);
	pthread_mutex_init(&ls.hits_mu, NULL);
	pthread_cond_init(&ls.cv, NULL);
	jobs = jobs_setting();

	{
		/* The configuration files count for the SOAP deadline only. */
		struct h2k_config cfg;

		h2k_config_init(&cfg);
		r = h2k_config_load(&cfg, NULL);
		if (r == 0 && cfg.soap_timeout > 0)
			r = h2k_soap_set_timeout_config(cfg.soap_timeout);
		h2k_config_free(&cfg);
		if (r < 0)
			goto fail;
	}
	if (!(spath = h2k_session_path(sflag)) ||
	    h2k_session_load(spath, &sess) < 0)
		goto fail;
	if (!(ls.v = h2k_vim_from_session(&sess)))
		goto fail;
	if (h2k_vim_each_spec(ls.v, NULL, specs, sizeof specs / sizeof specs[0],
	    PAGE_OBJS, table_cb, &ls.tab) < 0) {
		session_err(spath);
		goto fail;
	}
	/* A view holds what is inside its container, not the container: the
	 * root folder is the top of every path. */
	{
		char *rf = h2k_strdup(ls.v->root_folder);
		struct ent *e = rf ? tab_add(&ls.tab, rf) : NULL;
		if (!e)
			goto fail;
		if (!e->kind) {
			e->kind = K_FOLDER;
			if (!(e->name = h2k_strdup("")))
				goto fail;
		}
		free(e->parent);
		e->parent = NULL;
	}
	/* Paths are computed now, while one thread runs. */
	for (size_t i = 0; i < ls.tab.cap; i++)
		if (ls.tab.e[i].kind == K_FOLDER || ls.tab.e[i].kind == K_DC ||
		    ls.tab.e[i].kind == K_VAPP)
			(void)ent_path(&ls.tab, &ls.tab.e[i], 0);
	if ((r = ids_for_paths(&ls)) < 0 || (r == 0 &&
	    h2k_vim_each(ls.v, NULL, "VirtualMachine", p_none, PAGE_IDS,
	    ids_cb, &ls) < 0) || list_vms(&ls, jobs) < 0) {
		session_err(spath);
		goto fail;
	}
	if (o.table)
		print_table(&ls);
	for (int i = 0; i < o.npaths; i++)
		if (!o.path_hits[i] && !names_folder(&ls.tab, o.paths[i])) {
			fprintf(stderr, "h2k-ls: %s: no such VM or folder\n",
			    o.paths[i]);
			rc = H2K_EX_NOTFOUND;
		}
	h2k_debug("%ld VMs listed, %zu other objects", ls.listed, ls.tab.n);
	goto out;
fail:
	fprintf(stderr, "h2k-ls: %s\n", h2k_errmsg());
	rc = h2k_errcode();
out:
	if (fflush(stdout) == EOF || ferror(stdout)) {
		fprintf(stderr, "h2k-ls: stdout: write error\n");
		if (rc == H2K_EX_OK)
			rc = H2K_EX_IO;
	}
	h2k_vim_free(ls.v);
	h2k_session_free(&sess);
	free(spath);
	tab_free(&ls.tab);
	tab_free(&ls.seen);
	rows_free(&ls);
	for (size_t i = 0; i < ls.nids; i++)
		free(ls.ids[i]);
	free(ls.ids);
	free(ls.slots);
	free(ls.slot_done);
	pthread_mutex_destroy(&ls.mu);
	pthread_mutex_destroy(&ls.hits_mu);
	pthread_cond_destroy(&ls.cv);
	for (int i = 0; i < o.npaths; i++)
		free(o.paths[i]);
	free(o.paths);
	free(o.path_hits);
	return rc;
}
