/*
 * h2kvm.c - the hand-off to hyper2kvm: Artifact Manifest v1 and delivery.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * The manifest follows hyper2kvm 0.2.1's loader (manifest/loader.py) and
 * orchestrator, whose rules decide its shape:
 *  - disk ids must match ^[a-zA-Z0-9_-]+$ and be unique; the converted
 *    disk is written as output.directory/ID.FORMAT, so an id is also
 *    kept from naming, in the export folder, a file of the export (a
 *    qcow2 download converted onto itself);
 *  - local_path and output.directory are resolved against hyper2kvm's
 *    working directory, not the manifest's: both are written absolute;
 *  - checksum is "sha256:" and 64 lower-case hex digits; vm.cpu and
 *    vm.mem_gb integers >= 1 (mem_gb rounds memory_mb up: 32 MiB is 1);
 *  - the file is read as UTF-8: a name that is not valid UTF-8 is refused;
 *  - a pipeline stage not named does not run.
 * source_format is what the bytes are (first sector), not the file's
 * extension: the rig serves raw bytes under disk-0.vmdk, and qemu-img
 * told "vmdk" would refuse them.
 *
 * Delivery is a hard link (same file system) or a copy linked in under
 * its final name: linkat never replaces a name, so a file already in the
 * watched directory stays as it was, and the watcher sees the name only
 * once the bytes are complete.  The copy is an unnamed O_TMPFILE, or a
 * .part (ignored by the watcher) of this run's own.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "h2k.h"
#include "h2kvm.h"
#include "jsonl.h"
#include "session.h"

#define MAX_DISKS 256
#define MAX_NICS 64
#define ID_MAX 64
/* sizes from a line: whole numbers a long long holds, with room */
#define SIZE_MAX_OK 4611686018427387904.0 /* 2^62 */

/* A size field of o: a whole number 0..2^62, else -1 (a cast of a
 * bigger double would be undefined). */
static long long
size_of(const cJSON *o, const char *k)
{
	double d = h2k_json_num(o, k, -1);

	return d >= 0 && d <= SIZE_MAX_OK && d == (double)(long long)d ?
	    (long long)d : -1;
}

static int
rd_sector(const char *path, unsigned char *b, size_t n, size_t *got)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	ssize_t r = 0;
	size_t have = 0;
	struct stat st;

	if (fd < 0)
		return h2k_seterr(errno == ENOENT ? H2K_EX_NOTFOUND : H2K_EX_IO,
		    "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return h2k_seterr(H2K_EX_IO, "%s: not a regular file", path);
	}
	while (have < n) {
		r = pread(fd, b + have, n - have, (off_t)have);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		have += (size_t)r;
	}
	close(fd);
	if (r < 0)
		return h2k_seterr(H2K_EX_IO, "%s: %s", path, strerror(errno));
	*got = have;
	return 0;
}

static uint64_t
be64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/*
 * qemu reads a sparse VMDK's descriptor from byte 512, DESC_SIZE (10 KiB)
 * of it, and takes a parentFileNameHint there for a backing file.
 */
#define VMDK_DESC_AT 512
#define VMDK_DESC_SIZE (20 * 512)

/*
 * Format, sub-format and virtual size (0: unknown) from the first bytes.
 * hyper2kvm runs qemu-img convert without -f: qemu probes the format and
 * opens any file the image names (a backing file, an external data file,
 * a parent VMDK), so an image naming one is refused, or /etc/shadow would
 * be read into the converted disk.
 */
static int
sniff(const char *path, const char **fmt, const char **sub,
    long long *capacity)
{
	unsigned char b[VMDK_DESC_AT + VMDK_DESC_SIZE];
	const unsigned char *p;
	size_t n = 0;
	static const char desc[] = "# Disk DescriptorFile";
	static const char hint[] = "parentFileNameHint";

	*sub = NULL;
	*capacity = 0;
	if (rd_sector(path, b, sizeof b, &n) < 0)
		return -1;
	if (n >= 4 && (!memcmp(b, "KDMV", 4) || !memcmp(b, "COWD", 4)) &&
	    n > VMDK_DESC_AT && (p = memmem(b + VMDK_DESC_AT, n -
	    VMDK_DESC_AT, hint, sizeof hint - 1)) &&
	    /* qemu skips 'parentFileNameHint="': an empty name is none */
	    !((size_t)(p - b) + sizeof hint + 1 < n &&
	    p[sizeof hint + 1] == '"'))
		return h2k_seterr(H2K_EX_USAGE, "%s: a VMDK with a parent "
		    "(%s): qemu-img would read that file; refused", path, hint);
	if (n >= 4 && !memcmp(b, "COWD", 4))
		return h2k_seterr(H2K_EX_USAGE, "%s: a VMDK3 (COWD) image, not "
		    "a format h2k hands to hyper2kvm; refused", path);
	if (n >= 80 && !memcmp(b, "KDMV", 4)) {
		uint64_t sectors = h2k_le64(b + 12);
		*fmt = "vmdk";
		/* flags bit 16: compressed grains, which only streamOptimized has */
		*sub = h2k_le32(b + 8) & 0x10000 ? "streamOptimized" :
		    "monolithicSparse";
		if (sectors < (uint64_t)LLONG_MAX / 512)
			*capacity = (long long)(sectors * 512);
		return 0;
	}
	if (n >= 4 && !memcmp(b, "QFI\xfb", 4)) {
		uint64_t size, version;
		if (n < 72)
			return h2k_seterr(H2K_EX_USAGE, "%s: a truncated qcow2 "
			    "header; refused", path);
		size = be64(b + 24);
		version = be64(b) & 0xffffffffu;
		/* version 1 (qcow) and 2, 3 (qcow2): backing_file_offset at 8 */
		if (be64(b + 8))
			return h2k_seterr(H2K_EX_USAGE, "%s: a qcow2 with a "
			    "backing file: qemu-img would read that file; "
			    "refused", path);
		/* version 3 incompatible feature bit 2: an external data file */
		if (version >= 3 && (n < 80 || (be64(b + 72) & 4)))
			return h2k_seterr(H2K_EX_USAGE, "%s: a qcow2 with an "
			    "external data file: qemu-img would read that file; "
			    "refused", path);
		if (version < 2)
			return h2k_seterr(H2K_EX_USAGE, "%s: a qcow version 1 "
			    "image, not a format h2k hands to hyper2kvm; refused",
			    path);
		*fmt = "qcow2";
		if (size <= (uint64_t)LLONG_MAX)
			*capacity = (long long)size;
		return 0;
	}
	if (n >= 4 && !memcmp(b, "QED\0", 4))
		return h2k_seterr(H2K_EX_USAGE, "%s: a QED image (it may name a "
		    "backing file qemu-img would read); refused", path);
	if (n >= sizeof desc - 1 && !memcmp(b, desc, sizeof desc - 1))
		return h2k_seterr(H2K_EX_USAGE, "%s: a VMDK text descriptor "
		    "(it names other files), not a disk image", path);
	*fmt = "raw";
	return 0;
}

int
h2k_h2kvm_sniff(const char *path, const char **fmt, const char **sub)
{
	long long cap;

	return sniff(path, fmt, sub, &cap);
}

static const char *
base_of(const char *p)
{
	const char *s = strrchr(p, '/');

	return s ? s + 1 : p;
}

/* The disk id: the file name without extension, in ^[a-zA-Z0-9_-]+$. */
static void
make_id(const char *base, char *id)
{
	size_t n = 0;
	const char *dot = strrchr(base, '.');
	size_t len = dot && dot != base ? (size_t)(dot - base) : strlen(base);

	for (size_t i = 0; i < len && n < ID_MAX - 8; i++) {
		unsigned char c = (unsigned char)base[i];
		id[n++] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_' ? (char)c : '_';
	}
	if (!n)
		memcpy(id, "disk", n = 4);
	id[n] = 0;
}

/* Controller bus and unit from a lease device key ".../XController0:1". */
static long
slot_of(const char *key)
{
	const char *c = key ? strrchr(key, ':') : NULL, *p;
	char *end;
	long bus, unit;

	if (!c)
		return LONG_MAX;
	unit = strtol(c + 1, &end, 10);
	if (end == c + 1 || *end || unit < 0 || unit > 9999)
		return LONG_MAX;
	for (p = c; p > key && p[-1] >= '0' && p[-1] <= '9'; p--)
		;
	if (p == c)
		return LONG_MAX;
	bus = strtol(p, NULL, 10);
	if (bus < 0 || bus > 9999)
		return LONG_MAX;
	return bus * 10000 + unit;
}

struct disk {
	const cJSON *f;
	const char *path, *fmt, *sub;
	char id[ID_MAX], *abs;
	long slot;
	long long size, capacity;
	int rank;
};

static int
used_name(const struct disk *d, size_t nd, const cJSON *files, const char *id,
    const char *ext, int clash_files)
{
	char out[ID_MAX + 16];
	const cJSON *f;

	for (size_t i = 0; i < nd; i++)
		if (!strcmp(d[i].id, id))
			return 1;
	if (!clash_files)
		return 0;
	snprintf(out, sizeof out, "%s.%s", id, ext);
	cJSON_ArrayForEach(f, files) {
		const char *p = h2k_json_str(f, "path");
		if (p && !strcmp(base_of(p), out))
			return 1;
	}
	return 0;
}

static int
utf8_ok(const char *what, const char *s)
{
	if (s && h2k_utf8_bad(s, strlen(s)))
		return h2k_seterr(H2K_EX_USAGE, "%s is not valid UTF-8; "
		    "hyper2kvm reads its manifest as UTF-8", what);
	return 0;
}

static const char *
firmware(const char *fw)
{
	if (!fw)
		return "bios";
	if (!strcmp(fw, "efi") || !strcmp(fw, "uefi"))
		return "uefi";
	if (!strcmp(fw, "bios"))
		return "bios";
	return "unknown";
}

static int
add_nics(cJSON *m, const cJSON *line)
{
	const cJSON *nics = cJSON_GetObjectItemCaseSensitive(line, "nics"), *e;
	cJSON *a;
	int i = 0;

	if (!cJSON_IsArray(nics))
		return 0;
	if (cJSON_GetArraySize(nics) > MAX_NICS)
		return h2k_seterr(H2K_EX_USAGE, "\"nics\": more than %d",
		    MAX_NICS);
	if (!(a = cJSON_AddArrayToObject(m, "nics")))
		return h2k_seterr(H2K_EX_FAIL, "out of memory");
	cJSON_ArrayForEach(e, nics) {
		const char *net = h2k_json_str(e, "network"),
		    *mac = h2k_json_str(e, "mac"),
		    *model = h2k_json_str(e, "model");
		cJSON *o = cJSON_CreateObject();
		char id[32];

		if (!o || !cJSON_AddItemToArray(a, o)) {
			cJSON_Delete(o);
			return h2k_seterr(H2K_EX_FAIL, "out of memory");
		}
		if (!model)
			model = h2k_json_str(e, "type");
		if (utf8_ok("nics[].network", net) < 0)
			return -1;
		snprintf(id, sizeof id, "nic%d", i++);
		if (!cJSON_AddStringToObject(o, "id", id) ||
		    (net && !cJSON_AddStringToObject(o, "network", net)) ||
		    (mac && !cJSON_AddStringToObject(o, "mac", mac)) ||
		    (model && !cJSON_AddStringToObject(o, "model", model)) ||
		    (h2k_json_str(e, "label") && !cJSON_AddStringToObject(o,
		    "label", h2k_json_str(e, "label"))))
			return h2k_seterr(H2K_EX_FAIL, "out of memory");
	}
	return 0;
}

static int
in_names(const char *base, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (names[i] && !strcmp(names[i], base))
			return 1;
	return 0;
}

static int
collect(const cJSON *line, const char *outdir_abs, const char *dir_abs,
    const char *const *names, size_t nn, const char *outfmt,
    struct disk **out, size_t *nout)
{
	const cJSON *files = cJSON_GetObjectItemCaseSensitive(line, "files");
	const cJSON *lsd = cJSON_GetObjectItemCaseSensitive(line, "disks");
	const cJSON *f;
	struct disk *d;
	size_t nd = 0;
	int clash = !strcmp(outdir_abs, dir_abs);

	*out = NULL;
	*nout = 0;
	if (!cJSON_IsArray(files) || cJSON_GetArraySize(files) > MAX_DISKS)
		return h2k_seterr(H2K_EX_USAGE, "\"files\" missing or longer "
		    "than %d", MAX_DISKS);
	if (!(d = h2k_calloc(MAX_DISKS, sizeof *d)))
		return -1;
	*out = d;
	cJSON_ArrayForEach(f, files) {
		struct disk *x = &d[nd];
		const char *p = h2k_json_str(f, "path"), *sha;
		const char *want = h2k_json_str(f, "format");
		char id[ID_MAX];

		if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(f, "disk")) ||
		    !p || !in_names(base_of(p), names, nn))
			continue;
		sha = h2k_json_str(f, "sha256");
		x->f = f;
		x->path = p;
		x->size = size_of(f, "size");
		if (!h2k_is_hex64(sha) || x->size < 0)
			return h2k_seterr(H2K_EX_USAGE, "%s: files[] entry lacks "
			    "size or sha256", p);
		if (utf8_ok(p, p) < 0)
			return -1;
		if (sniff(p, &x->fmt, &x->sub, &x->capacity) < 0)
			return -1;
		/* h2k-fetch --format says what it wrote: the bytes must agree */
		if (want && strcmp(want, x->fmt))
			return h2k_seterr(H2K_EX_IO, "%s: files[] says format "
			    "%s, the bytes are %s", p, want, x->fmt);
		if (!(x->abs = realpath(p, NULL)))
			return h2k_seterr(H2K_EX_IO, "%s: %s", p, strerror(errno));
		make_id(base_of(p), id);
		/* make_id leaves room for "-NNN" */
		for (int k = 2; k < 1000 && used_name(d, nd, files, id, outfmt,
		    clash); k++) {
			char stem[ID_MAX];
			make_id(base_of(p), stem);
			snprintf(id, sizeof id, "%.55s-%d", stem, k % 1000);
		}
		memcpy(x->id, id, sizeof id);
		x->slot = slot_of(h2k_json_str(f, "key"));
		if (size_of(f, "capacity_bytes") > 0)
			x->capacity = size_of(f, "capacity_bytes");
		nd++;
		*nout = nd;
	}
	if (!nd)
		return h2k_seterr(H2K_EX_USAGE, "no disk in files[] is in the "
		    "descriptor: hyper2kvm needs at least one");
	/*
	 * h2k-ls lists the disks in the VM's device order, the order of the
	 * lease's device URLs: matched by position when the counts agree.
	 */
	if (cJSON_IsArray(lsd) && (size_t)cJSON_GetArraySize(lsd) == nd)
		for (size_t i = 0; i < nd; i++) {
			const cJSON *e = cJSON_GetArrayItem(lsd, (int)i);
			if (!d[i].capacity && size_of(e, "capacity_bytes") > 0)
				d[i].capacity = size_of(e, "capacity_bytes");
		}
	/* a raw image is as big as the disk it holds */
	for (size_t i = 0; i < nd; i++)
		if (!d[i].capacity && !strcmp(d[i].fmt, "raw"))
			d[i].capacity = d[i].size;
	/* boot order: controller bus, then unit number, then files[] order */
	for (size_t i = 0; i < nd; i++) {
		int r = 0;
		for (size_t j = 0; j < nd; j++)
			if (d[j].slot < d[i].slot ||
			    (d[j].slot == d[i].slot && j < i))
				r++;
		d[i].rank = r;
	}
	return 0;
}

static void
free_disks(struct disk *d, size_t n)
{
	for (size_t i = 0; d && i < n; i++)
		free(d[i].abs);
	free(d);
}

static char *
abs_dir(const char *dir)
{
	char *r = realpath(dir, NULL);

	if (!r)
		h2k_seterr(errno == ENOENT ? H2K_EX_NOTFOUND : H2K_EX_IO,
		    "%s: %s", dir, strerror(errno));
	return r;
}

/*
 * The output directory p, which may not exist yet, made absolute (by cwd),
 * and in it the VM folder's own name: every VM's disks are disk-0, disk-1,
 * ..., and hyper2kvm writes ID.FORMAT, so VMs sharing p would overwrite
 * each other's; folder names are unique among the VMs of an export.
 */
static char *
abs_out(const char *p, const char *dabs)
{
	char *r, cwd[PATH_MAX];
	const char *vm = base_of(dabs);

	if ((r = realpath(p, NULL))) {
		char *s = h2k_asprintf("%s/%s", strcmp(r, "/") ? r : "", vm);
		free(r);
		return s;
	}
	if (p[0] == '/')
		return h2k_asprintf("%s/%s", p, vm);
	if (!getcwd(cwd, sizeof cwd)) {
		h2k_seterr(H2K_EX_IO, "getcwd: %s", strerror(errno));
		return NULL;
	}
	return h2k_asprintf("%s/%s/%s", cwd, p, vm);
}

cJSON *
h2k_h2kvm_manifest(const cJSON *line, const char *dir,
    const char *const *names, size_t nn, const struct h2k_h2kvm_opts *o)
{
	const char *name = h2k_json_str(line, "name");
	const char *outfmt = o && o->outfmt ? o->outfmt : "qcow2";
	char *dabs = NULL, *oabs = NULL;
	struct disk *d = NULL;
	size_t nd = 0;
	cJSON *m = NULL, *s, *vm, *a, *p, *out;
	double cpu = h2k_json_num(line, "num_cpu", 0);
	double mem = h2k_json_num(line, "memory_mb", 0);

	if (!name || !*name) {
		h2k_seterr(H2K_EX_USAGE, "the line has no \"name\"");
		return NULL;
	}
	if (utf8_ok("the VM name", name) < 0)
		return NULL;
	if (strcmp(outfmt, "qcow2") && strcmp(outfmt, "raw") &&
	    strcmp(outfmt, "vdi")) {
		h2k_seterr(H2K_EX_USAGE, "output format %s: hyper2kvm writes "
		    "qcow2, raw or vdi", outfmt);
		return NULL;
	}
	if (!(dabs = abs_dir(dir)) ||
	    !(oabs = o && o->outdir ? abs_out(o->outdir, dabs) :
	    h2k_strdup(dabs)))
		goto fail;
	if (utf8_ok("the output directory", oabs) < 0 ||
	    collect(line, oabs, dabs, names, nn, outfmt, &d, &nd) < 0)
		goto fail;

	if (!(m = cJSON_CreateObject()) ||
	    !cJSON_AddStringToObject(m, "manifest_version", "1.0") ||
	    !(s = cJSON_AddObjectToObject(m, "source")) ||
	    !cJSON_AddStringToObject(s, "provider", "vsphere") ||
	    !cJSON_AddStringToObject(s, "vm_name", name))
		goto nomem;
	{
		static const char *keys[][2] = {
			{ "moref", "vm_id" }, { "instance_uuid", "instance_uuid" },
			{ "path", "inventory_path" }, { "datacenter", "datacenter" },
			{ "host", "host" },
		};
		const cJSON *lease = cJSON_GetObjectItemCaseSensitive(line, "lease");
		for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
			const char *v = h2k_json_str(line, keys[i][0]);
			if (utf8_ok(keys[i][0], v) < 0)
				goto fail;
			if (v && !cJSON_AddStringToObject(s, keys[i][1], v))
				goto nomem;
		}
		if (h2k_json_str(lease, "server") && !cJSON_AddStringToObject(s,
		    "server", h2k_json_str(lease, "server")))
			goto nomem;
	}
	if (!(vm = cJSON_AddObjectToObject(m, "vm")))
		goto nomem;
	if (cpu >= 1 && cpu <= 4096 && !cJSON_AddNumberToObject(vm, "cpu",
	    (double)(long)cpu))
		goto nomem;
	if (mem >= 1 && mem <= 1e9 && !cJSON_AddNumberToObject(vm, "mem_gb",
	    (double)(((long long)mem + 1023) / 1024)))
		goto nomem;
	if (!cJSON_AddStringToObject(vm, "firmware",
	    firmware(h2k_json_str(line, "firmware"))))
		goto nomem;
	if (h2k_json_str(line, "guest_id") && !cJSON_AddStringToObject(vm,
	    "guest_id", h2k_json_str(line, "guest_id")))
		goto nomem;
	if (add_nics(m, line) < 0)
		goto fail;
	if (!(a = cJSON_AddArrayToObject(m, "disks")))
		goto nomem;
	for (size_t i = 0; i < nd; i++) {
		cJSON *e = cJSON_CreateObject();
		char ck[80], *lc;
		const char *label = h2k_json_str(d[i].f, "target_id");

		if (!e || !cJSON_AddItemToArray(a, e))
			goto nomem;
		snprintf(ck, sizeof ck, "sha256:%s", h2k_json_str(d[i].f, "sha256"));
		for (lc = ck; *lc; lc++)
			if (*lc >= 'A' && *lc <= 'F')
				*lc = (char)(*lc + 32);
		if (!cJSON_AddStringToObject(e, "id", d[i].id) ||
		    !cJSON_AddStringToObject(e, "source_format", d[i].fmt) ||
		    (d[i].sub && !cJSON_AddStringToObject(e, "vmdk_subformat",
		    d[i].sub)) ||
		    !cJSON_AddNumberToObject(e, "bytes", (double)d[i].size) ||
		    (d[i].capacity > 0 && !cJSON_AddNumberToObject(e,
		    "capacity_bytes", (double)d[i].capacity)) ||
		    !cJSON_AddStringToObject(e, "local_path", d[i].abs) ||
		    !cJSON_AddStringToObject(e, "checksum", ck) ||
		    !cJSON_AddNumberToObject(e, "boot_order_hint", d[i].rank) ||
		    !cJSON_AddStringToObject(e, "disk_type", d[i].rank ? "data" :
		    "boot") ||
		    !cJSON_AddStringToObject(e, "label", label && !utf8_ok("target_id",
		    label) ? label : base_of(d[i].path)))
			goto nomem;
	}
	if (!(p = cJSON_AddObjectToObject(m, "pipeline")))
		goto nomem;
	{
		static const char *stages[] = { "inspect", "fix", "convert",
		    "validate" };
		for (size_t i = 0; i < 4; i++) {
			cJSON *st = cJSON_AddObjectToObject(p, stages[i]);
			if (!st || !cJSON_AddBoolToObject(st, "enabled", i >= 2 ||
			    (o && o->fix)))
				goto nomem;
		}
	}
	if (!(out = cJSON_AddObjectToObject(m, "output")) ||
	    !cJSON_AddStringToObject(out, "directory", oabs) ||
	    !cJSON_AddStringToObject(out, "format", outfmt))
		goto nomem;
	free_disks(d, nd);
	free(dabs);
	free(oabs);
	return m;
nomem:
	h2k_seterr(H2K_EX_FAIL, "out of memory building the manifest");
fail:
	cJSON_Delete(m);
	free_disks(d, nd);
	free(dabs);
	free(oabs);
	return NULL;
}

int
h2k_h2kvm_write(const char *path, const cJSON *m)
{
	char *s = h2k_json_print(m);
	size_t n;
	int rc;

	if (!s)
		return -1;
	n = strlen(s);
	s[n] = '\n';  /* h2k_json_print's NUL: the file ends with a newline */
	rc = h2k_atomic_write(path, s, n + 1, 0644);
	free(s);
	return rc;
}

/* --- delivery ------------------------------------------------------------ */

int
h2k_deliver_open(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0) {
		if (errno == ELOOP || errno == ENOTDIR)
			return h2k_seterr(H2K_EX_USAGE, "%s: not a directory (a "
			    "symbolic link is refused)", dir);
		return h2k_seterr(errno == ENOENT ? H2K_EX_NOTFOUND : H2K_EX_IO,
		    "%s: %s", dir, strerror(errno));
	}
	if (faccessat(fd, ".", W_OK | X_OK, AT_EACCESS) < 0) {
		int e = errno;
		close(fd);
		return h2k_seterr(H2K_EX_IO, "%s: %s", dir, strerror(e));
	}
	return fd;
}

int
h2k_deliver_check(int dfd, const char *dir, const char *name)
{
	struct stat st;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return h2k_seterr(H2K_EX_EXISTS, "%s/%s already exists; not "
		    "replaced", dir, name);
	if (errno != ENOENT)
		return h2k_seterr(H2K_EX_IO, "%s/%s: %s", dir, name,
		    strerror(errno));
	return 0;
}

/*
 * The file a copy is written to before it is linked in under its final
 * name: an unnamed O_TMPFILE in dir when the file system and /proc allow
 * (a run killed mid-copy leaves nothing), else NAME.PID.N.part made with
 * O_EXCL, a name of this run alone (the watcher ignores .part; a
 * same-named VM delivered at the same time has a .part of its own, which
 * this run never touches).  *tmp is NULL for the unnamed file.
 */
static int
tmp_open(int dfd, const char *dir, const char *name, char **tmp)
{
	static unsigned seq;
	int fd;

	*tmp = NULL;
#ifdef O_TMPFILE
	if (access("/proc/self/fd", X_OK) == 0) {
		fd = openat(dfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
		if (fd >= 0)
			return fd;
		if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL &&
		    errno != ENOENT)
			return h2k_seterr(H2K_EX_IO, "%s: %s", dir,
			    strerror(errno));
	}
#endif
	for (int i = 0; i < 100; i++) {
		free(*tmp);
		if (!(*tmp = h2k_asprintf("%s.%ld.%u.part", name,
		    (long)getpid(), __atomic_add_fetch(&seq, 1,
		    __ATOMIC_RELAXED))))
			return -1;
		fd = openat(dfd, *tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_CLOEXEC, 0600);
		if (fd >= 0)
			return fd;
		if (errno != EEXIST)
			break;
	}
	h2k_seterr(H2K_EX_IO, "%s/%s: %s", dir, *tmp, strerror(errno));
	free(*tmp);
	*tmp = NULL;
	return -1;
}

static int
copy_in(int dfd, const char *dir, const char *src, const char *name,
    const volatile sig_atomic_t *cancel)
{
	char *part = NULL, buf[1 << 16], proc[64];
	const char *shown;
	int in = -1, out = -1, rc = -1;
	ssize_t r;
	struct stat st;

	if ((in = open(src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
	    fstat(in, &st) < 0) {
		h2k_seterr(H2K_EX_IO, "%s: %s", src, strerror(errno));
		goto out;
	}
	if ((out = tmp_open(dfd, dir, name, &part)) < 0)
		goto out;
	shown = part ? part : name;
	for (;;) {
		if (cancel && *cancel) {
			h2k_seterr(H2K_EX_CANCEL, "%s/%s: interrupted", dir, name);
			goto out;
		}
		r = read(in, buf, sizeof buf);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			h2k_seterr(H2K_EX_IO, "%s: %s", src, strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		for (ssize_t o = 0; o < r;) {
			ssize_t w = write(out, buf + o, (size_t)(r - o));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				h2k_seterr(H2K_EX_IO, "%s/%s: %s", dir, shown,
				    strerror(errno));
				goto out;
			}
			o += w;
		}
	}
	if (fchmod(out, st.st_mode & 0777) < 0 || fsync(out) < 0) {
		h2k_seterr(H2K_EX_IO, "%s/%s: %s", dir, shown, strerror(errno));
		goto out;
	}
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", out);
	if (part ? linkat(dfd, part, dfd, name, 0) :
	    linkat(AT_FDCWD, proc, dfd, name, AT_SYMLINK_FOLLOW)) {
		h2k_seterr(errno == EEXIST ? H2K_EX_EXISTS : H2K_EX_IO,
		    "%s/%s: %s", dir, name, errno == EEXIST ? "already exists; "
		    "not replaced" : strerror(errno));
		goto out;
	}
	if (close(out) < 0) {
		out = -1;
		h2k_seterr(H2K_EX_IO, "%s/%s: %s", dir, name, strerror(errno));
		(void)unlinkat(dfd, name, 0);
		goto out;
	}
	out = -1;
	rc = 0;
out:
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	if (part)
		(void)unlinkat(dfd, part, 0);
	free(part);
	return rc;
}

int
h2k_deliver(int dfd, const char *dir, const char *src, const char *name,
    const volatile sig_atomic_t *cancel)
{
	if (!*name || strchr(name, '/') || !strcmp(name, ".") ||
	    !strcmp(name, ".."))
		return h2k_seterr(H2K_EX_USAGE, "%s: not a file name", name);
	if (linkat(AT_FDCWD, src, dfd, name, 0) < 0) {
		if (errno == EEXIST)
			return h2k_seterr(H2K_EX_EXISTS, "%s/%s already exists; "
			    "not replaced", dir, name);
		/* another file system, or one without hard links: a copy */
		if (errno != EXDEV && errno != EPERM && errno != EMLINK &&
		    errno != ENOTSUP)
			return h2k_seterr(H2K_EX_IO, "link %s into %s: %s", src,
			    dir, strerror(errno));
		if (copy_in(dfd, dir, src, name, cancel) < 0)
			return -1;
	}
	if (fsync(dfd) < 0)
		return h2k_seterr(H2K_EX_IO, "%s: fsync: %s", dir,
		    strerror(errno));
	return 0;
}

/* --- the hand-off, as h2k-ovf does it ------------------------------------ */

static char *
deliver_name(const struct h2k_handoff *h, const char *safe)
{
	return h2k_asprintf("%s%s", safe, h->ova ? ".ova" : H2K_H2KVM_SUFFIX);
}

static int
set_str(cJSON *line, const char *k, const char *v)
{
	cJSON_DeleteItemFromObjectCaseSensitive(line, k);
	return cJSON_AddStringToObject(line, k, v) ? 0 :
	    h2k_seterr(H2K_EX_FAIL, "out of memory");
}

int
h2k_handoff_precheck(const struct h2k_handoff *h, int dirfd, const char *safe)
{
	struct stat a, b;
	char *n;
	int rc;

	if (h->deliver_fd < 0)
		return 0;
	/*
	 * The export folder itself: the watcher would see its loose disks
	 * beside the OVA, and the name to deliver is the one this run writes.
	 */
	if (dirfd >= 0 && fstat(h->deliver_fd, &a) == 0 &&
	    fstat(dirfd, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
		return h2k_seterr(H2K_EX_USAGE, "%s: --deliver into the VM's own "
		    "export folder (its disks would lie loose beside what is "
		    "delivered); refused", h->deliver_dir);
	if (!(n = deliver_name(h, safe)))
		return -1;
	rc = h2k_deliver_check(h->deliver_fd, h->deliver_dir, n);
	free(n);
	return rc;
}

int
h2k_handoff_manifest(const struct h2k_handoff *h, cJSON *line,
    const char *dir, const char *safe, const char *const *names, size_t n)
{
	cJSON *m;
	char *path;
	int rc = -1;

	if (!h->manifest && !(h->deliver_fd >= 0 && !h->ova))
		return 0;
	if (!(m = h2k_h2kvm_manifest(line, dir, names, n, &h->mo)))
		return h2k_adderr("hyper2kvm manifest");
	if ((path = h2k_asprintf("%s/%s%s", dir, safe, H2K_H2KVM_SUFFIX)) &&
	    h2k_h2kvm_write(path, m) == 0 &&
	    set_str(line, "hyper2kvm_manifest_path", path) == 0)
		rc = 0;
	free(path);
	cJSON_Delete(m);
	return rc;
}

int
h2k_handoff_deliver(const struct h2k_handoff *h, cJSON *line,
    const char *safe, const char *ova_path)
{
	const char *src = h->ova ? ova_path : h2k_json_str(line,
	    "hyper2kvm_manifest_path");
	char *n, *dst = NULL;
	int rc = -1;

	if (h->deliver_fd < 0)
		return 0;
	if (!src)
		return h2k_seterr(H2K_EX_FAIL, "nothing to deliver");
	if (!(n = deliver_name(h, safe)))
		return -1;
	if (h2k_deliver(h->deliver_fd, h->deliver_dir, src, n, h->cancel) == 0 &&
	    (dst = h2k_asprintf("%s/%s", h->deliver_dir, n)) &&
	    set_str(line, "delivered_path", dst) == 0)
		rc = 0;
	free(dst);
	free(n);
	return rc;
}
