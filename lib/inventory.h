/*
 * inventory.h - the VM inventory: h2k-ls's listing engine, the one
 * VirtualMachine -> JSON mapping and the one inventory-path rule (h2k-ls
 * and h2k-lease's VM lookup both use them).
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * Threads: h2k_inv_list runs up to o->jobs workers, the caller's thread
 * being the first (on the caller's connection), the others each on a
 * connection of their own opened from the session.  Each worker takes the
 * next chunk of 250 VM morefs, fetches their properties and turns them into
 * JSON lines in a buffer of its own; the finished chunks are written to
 * `out` in order, under one lock, by whichever worker completes the next
 * one in line.  They share, read-only, the moref table built before they
 * start (names, folder paths), and under locks the chunk queue, the table
 * rows (-t) and o->found.
 */
#ifndef H2K_INVENTORY_H
#define H2K_INVENTORY_H

#include <stdio.h>

#include <cjson/cJSON.h>

#include "session.h"
#include "vim.h"

struct h2k_inv_opts {
	const char *name_glob;  /* fnmatch(3) on the VM name, or NULL */
	const char *power;      /* poweredOn/poweredOff/suspended or NULL */
	int templates;          /* 1 only templates, 0 no templates, -1 both */
	int table;              /* keep rows (h2k_inv_list's rows) instead of JSON */
	char **paths;           /* PATH globs, "/" first, no trailing "/" */
	int npaths;
	int jobs;               /* connections, 1 to 32 */
	int *found;             /* out, npaths: a VM or folder matched paths[i] */
};

/* One VM for the table (-t): strings as the server sent them. */
struct h2k_inv_row {
	char *name, *power, *path;
	long cpu, mem;
	double disk_gib;
};

struct h2k_inv_result {
	long listed;            /* VMs written (or kept as rows) */
	size_t others;          /* folders, hosts, ... in the moref table */
	struct h2k_inv_row *rows;
	size_t nrows;
};

/*
 * List the VMs of the inventory v talks to (sess: for the other workers'
 * connections), filtered by o, as JSON lines on out, in the server's order
 * (o->table: as rows in res instead).  -1 with the error set; what was
 * written stays written.
 */
int h2k_inv_list(struct h2k_vim *v, const struct h2k_session *sess,
    struct h2k_inv_opts *o, FILE *out, struct h2k_inv_result *res);
void h2k_inv_result_free(struct h2k_inv_result *res);

/*
 * h2k-ls's line for the one VM moref (value) names, every field with the
 * value h2k-ls gives it, in two round trips on v (one when nothing is left
 * to name after the first: see inventory.c).  A VM outside the VM folder
 * tree (h2k-ls skips it) has path and datacenter null.  NULL with the
 * error set: H2K_EX_NOTFOUND when the server does not know the VM.
 */
cJSON *h2k_inv_vm_one(struct h2k_vim *v, const char *moref);

/*
 * The fields of a VM that come straight from its own properties, added to o
 * in h2k-ls's order: uuid, instance_uuid, power_state, template, guest_id,
 * guest_os, num_cpu, memory_mb, firmware.  obj is a VirtualMachine's
 * ObjectContent with (some of) those properties.  An unset property is
 * null, template false (sparse: both left out); a number the server
 * garbled is null.  -1 on out of memory.
 */
int h2k_inv_vm_fields(cJSON *o, xmlNodePtr obj, int sparse);

/*
 * One step up the VM tree (folders, datacenters, vApps): for moref (of
 * type, NULL if unknown) its name (NULL: unnamed), its parent's moref and
 * type (NULL at the top) and whether it is a datacenter.  The strings stay
 * the callback's until its next call.  -1: the chain is broken.
 */
struct h2k_inv_node {
	const char *name, *parent, *parent_type;
	int dc;
};
typedef int (*h2k_inv_up_fn)(void *arg, const char *moref, const char *type,
    struct h2k_inv_node *n);

/*
 * The inventory path of moref: the names from below the root folder down
 * to it, "/"-joined ("/DC0/vm/sub"), then "/leaf" if leaf is non-NULL.
 * The walk up stops at root (moref value) or at an object without a
 * parent; neither's name is part of the path, so the root folder's own
 * path is "".  *dc (if dc non-NULL) gets the nearest datacenter's name on
 * the way, or NULL.  NULL if the chain breaks, an object is unnamed, or it
 * is deeper than H2K_INV_MAX_DEPTH (a loop in a hostile inventory).
 */
#define H2K_INV_MAX_DEPTH 128
char *h2k_inv_path(h2k_inv_up_fn up, void *arg, const char *root,
    const char *moref, const char *type, const char *leaf, char **dc);

/* A VM at path is under pat (a glob) if pat matches path or an ancestor's. */
int h2k_inv_path_match(const char *pat, const char *path);

#endif
