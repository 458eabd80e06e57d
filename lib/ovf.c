/*
 * ovf.c - OVF descriptor from the server, CD-ROM removal, manifest, OVA.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * CD-ROM removal: an OVF VirtualHardwareSection lists devices as Item
 * elements; rasd:ResourceType 15 is a CD drive, 16 a DVD drive.  Such an
 * Item may point at an image through rasd:HostResource "ovf:/file/ID".
 * After dropping the items, a References/File that nothing else points at
 * any more (no other HostResource, no Disk ovf:fileRef) is dropped too, and
 * its href is reported so the manifest and the OVA leave the image out.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <libxml/tree.h>
#include <openssl/evp.h>

#include "ovf.h"
#include "pathsafe.h"
#include "soap.h"

#define IO_CHUNK (1u << 20)
#define USTAR_MAX 077777777777LL /* 8 GiB - 1: ustar's 11 octal digits */

/* --- CreateDescriptor ---------------------------------------------------- */

static char *
fault_text(xmlNodePtr lmf)
{
	char *m = h2k_xml_text(lmf, "localizedMessage");
	xmlNodePtr f;

	if (m && *m)
		return m;
	free(m);
	f = h2k_xml_child(lmf, "fault");
	m = f ? h2k_xml_type(f) : NULL;
	return m ? m : h2k_strdup("unspecified fault");
}

char *
h2k_ovf_create_descriptor(struct h2k_vim *v, const char *vm,
    const char *snapshot, const char *name, const struct h2k_ovf_file *files,
    size_t nfiles, size_t *len)
{
	struct h2k_buf b = { 0 };
	xmlNodePtr ret = NULL, rv, d;
	xmlDocPtr doc;
	char *text = NULL;

	if (!v->ovf_manager)
		return h2k_seterr(H2K_EX_NET, "the server has no OvfManager"),
		    NULL;
	/* Element order follows the WSDL: vSphere rejects any other. */
	if (h2k_buf_printf(&b, "<obj type=\"VirtualMachine\">") < 0 ||
	    h2k_buf_xmlesc(&b, vm) < 0 ||
	    h2k_buf_printf(&b, "</obj><cdp>") < 0)
		goto fail;
	for (size_t i = 0; i < nfiles; i++) {
		if (h2k_buf_printf(&b, "<ovfFiles><deviceId>") < 0 ||
		    h2k_buf_xmlesc(&b, files[i].device_id) < 0 ||
		    h2k_buf_printf(&b, "</deviceId><path>") < 0 ||
		    h2k_buf_xmlesc(&b, files[i].path) < 0 ||
		    h2k_buf_printf(&b, "</path><size>%lld</size></ovfFiles>",
		    files[i].size) < 0)
			goto fail;
	}
	if (h2k_buf_printf(&b, "<name>") < 0 || h2k_buf_xmlesc(&b, name) < 0 ||
	    h2k_buf_printf(&b, "</name>") < 0)
		goto fail;
	if (snapshot && (h2k_buf_printf(&b,
	    "<snapshot type=\"VirtualMachineSnapshot\">") < 0 ||
	    h2k_buf_xmlesc(&b, snapshot) < 0 ||
	    h2k_buf_printf(&b, "</snapshot>") < 0))
		goto fail;
	if (h2k_buf_printf(&b, "</cdp>") < 0)
		goto fail;

	doc = h2k_soap_call(v->soap, "CreateDescriptor", "OvfManager",
	    v->ovf_manager, b.data, &ret);
	h2k_buf_free(&b);
	if (!doc)
		return h2k_adderr("CreateDescriptor"), NULL;
	rv = ret ? h2k_xml_child(ret, "returnval") : NULL;
	if (!rv) {
		xmlFreeDoc(doc);
		return h2k_seterr(H2K_EX_NET,
		    "CreateDescriptor: no result in the server's answer"), NULL;
	}
	if ((d = h2k_xml_child(rv, "error"))) {
		char *m = fault_text(d);
		h2k_seterr(H2K_EX_NET, "CreateDescriptor: %s", m ? m : "error");
		free(m);
		xmlFreeDoc(doc);
		return NULL;
	}
	for (d = h2k_xml_child(rv, "warning"); d; d = h2k_xml_next(d, "warning")) {
		char *m = fault_text(d);
		h2k_warn("CreateDescriptor: %s", m ? m : "warning");
		free(m);
	}
	text = h2k_xml_text(rv, "ovfDescriptor");
	xmlFreeDoc(doc);
	if (!text || !*text) {
		free(text);
		return h2k_seterr(H2K_EX_NET,
		    "CreateDescriptor: empty descriptor"), NULL;
	}
	*len = strlen(text);
	return text;
fail:
	h2k_buf_free(&b);
	return NULL;
}

/* --- descriptor processing ----------------------------------------------- */

static int
is(xmlNodePtr n, const char *name)
{
	return n && n->type == XML_ELEMENT_NODE &&
	    !strcmp((const char *)n->name, name);
}

static char *
trimmed(xmlNodePtr n)
{
	xmlChar *s = xmlNodeGetContent(n);
	char *p, *e, *r;

	if (!s)
		return NULL;
	p = (char *)s;
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	e = p + strlen(p);
	while (e > p && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' ||
	    e[-1] == '\r'))
		e--;
	r = h2k_asprintf("%.*s", (int)(e - p), p);
	xmlFree(s);
	return r;
}

static xmlNodePtr
child_named(xmlNodePtr n, const char *name)
{
	for (xmlNodePtr c = n ? n->children : NULL; c; c = c->next)
		if (is(c, name))
			return c;
	return NULL;
}

static int
strv_add(char ***v, size_t *n, const char *s)
{
	char **nv = h2k_realloc(*v, (*n + 1) * sizeof **v);

	if (!nv)
		return -1;
	*v = nv;
	if (!(nv[*n] = h2k_strdup(s)))
		return -1;
	(*n)++;
	return 0;
}

static void
strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* Unlink n and the indentation before it, so the output stays tidy. */
static void
drop(xmlNodePtr n)
{
	xmlNodePtr prev = n->prev;

	if (prev && prev->type == XML_TEXT_NODE && xmlIsBlankNode(prev)) {
		xmlUnlinkNode(prev);
		xmlFreeNode(prev);
	}
	xmlUnlinkNode(n);
	xmlFreeNode(n);
}

/* CD/DVD items under n (recursively: VirtualSystemCollection nests). */
static int
drop_cdroms(xmlNodePtr n, char ***ids, size_t *nids, int *count)
{
	xmlNodePtr c, next;

	for (c = n->children; c; c = next) {
		next = c->next;
		if (c->type != XML_ELEMENT_NODE)
			continue;
		if (is(c, "Item")) {
			xmlNodePtr rt = child_named(c, "ResourceType");
			char *t = rt ? trimmed(rt) : NULL;
			int cd = t && (!strcmp(t, "15") || !strcmp(t, "16"));
			free(t);
			if (!cd)
				continue;
			for (xmlNodePtr h = c->children; h; h = h->next) {
				if (!is(h, "HostResource"))
					continue;
				char *hr = trimmed(h);
				if (hr && !strncmp(hr, "ovf:/file/", 10) &&
				    strv_add(ids, nids, hr + 10) < 0) {
					free(hr);
					return -1;
				}
				free(hr);
			}
			drop(c);
			(*count)++;
			continue;
		}
		if (drop_cdroms(c, ids, nids, count) < 0)
			return -1;
	}
	return 0;
}

/* Does anything left in the document point at file id? */
static int
file_used(xmlNodePtr n, const char *id)
{
	for (xmlNodePtr c = n->children; c; c = c->next) {
		if (c->type != XML_ELEMENT_NODE)
			continue;
		if (is(c, "HostResource")) {
			char *hr = trimmed(c);
			int hit = hr && !strncmp(hr, "ovf:/file/", 10) &&
			    !strcmp(hr + 10, id);
			free(hr);
			if (hit)
				return 1;
		}
		if (is(c, "Disk")) {
			xmlChar *fr = xmlGetProp(c, (const xmlChar *)"fileRef");
			int hit = fr && !strcmp((const char *)fr, id);
			xmlFree(fr);
			if (hit)
				return 1;
		}
		if (file_used(c, id))
			return 1;
	}
	return 0;
}

/* A href we will look up in the download folder: a plain file name. */
static int
plain_name(const char *s)
{
	if (!*s || !strcmp(s, ".") || !strcmp(s, ".."))
		return 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f || *p == '/' || *p == '\\')
			return 0;
	return 1;
}

/*
 * Attributes of n whose local name is name, in any namespace or none.
 * xmlGetProp returns the first of them; a reader of the descriptor may take
 * another (ovf:href over href): with two, what was checked is not what is
 * read.
 */
static int
attr_count(xmlNodePtr n, const char *name)
{
	int k = 0;

	for (xmlAttrPtr a = n->properties; a; a = a->next)
		if (a->name && !strcmp((const char *)a->name, name))
			k++;
	return k;
}

int
h2k_ovf_process(const char *text, size_t len, int remove_cdrom,
    struct h2k_ovf_desc *out)
{
	xmlDocPtr doc;
	xmlNodePtr root, refs;
	char **ids = NULL;
	size_t nids = 0;
	int rc = -1;

	memset(out, 0, sizeof *out);
	doc = h2k_xml_parse(text, len, "OVF descriptor");
	if (!doc)
		return -1;
	root = xmlDocGetRootElement(doc);
	if (!is(root, "Envelope")) {
		h2k_seterr(H2K_EX_NET, "OVF descriptor: root element is not "
		    "an Envelope");
		goto out;
	}
	/* One References, read by everyone: a second one would go unchecked. */
	int nrefs = 0;
	for (xmlNodePtr c = root->children; c; c = c->next)
		nrefs += is(c, "References");
	if (nrefs > 1) {
		h2k_seterr(H2K_EX_NET, "OVF descriptor: %d References sections "
		    "(one expected)", nrefs);
		goto out;
	}
	if (remove_cdrom && drop_cdroms(root, &ids, &nids, &out->cdroms) < 0)
		goto out;
	refs = child_named(root, "References");
	for (xmlNodePtr f = refs ? refs->children : NULL, next; f; f = next) {
		next = f->next;
		if (!is(f, "File"))
			continue;
		if (attr_count(f, "href") > 1 || attr_count(f, "id") > 1) {
			h2k_seterr(H2K_EX_NET, "OVF descriptor: a file reference "
			    "with two href or id attributes");
			goto out;
		}
		xmlChar *href = xmlGetProp(f, (const xmlChar *)"href");
		xmlChar *id = xmlGetProp(f, (const xmlChar *)"id");
		int bad = !href || !plain_name((const char *)href);
		if (bad) {
			h2k_seterr(H2K_EX_NET, "OVF descriptor: file reference "
			    "'%.200s' is not a plain file name",
			    href ? (const char *)href : "");
			xmlFree(href);
			xmlFree(id);
			goto out;
		}
		/* Listed twice, it would be in the manifest twice. */
		int dup = 0;
		for (size_t i = 0; i < out->nhrefs; i++)
			dup |= !strcmp(out->hrefs[i], (const char *)href);
		for (size_t i = 0; i < out->ndropped; i++)
			dup |= !strcmp(out->dropped[i], (const char *)href);
		if (dup) {
			h2k_seterr(H2K_EX_NET, "OVF descriptor: file '%.200s' "
			    "is referenced twice", (const char *)href);
			xmlFree(href);
			xmlFree(id);
			goto out;
		}
		int gone = 0;
		for (size_t i = 0; id && i < nids; i++)
			if (!strcmp(ids[i], (const char *)id) &&
			    !file_used(root, ids[i]))
				gone = 1;
		int r2 = gone ? strv_add(&out->dropped, &out->ndropped,
		    (const char *)href) : strv_add(&out->hrefs, &out->nhrefs,
		    (const char *)href);
		xmlFree(href);
		xmlFree(id);
		if (r2 < 0)
			goto out;
		if (gone)
			drop(f);
	}
	if (out->cdroms == 0) {
		out->text = h2k_malloc(len + 1);
		if (!out->text)
			goto out;
		memcpy(out->text, text, len);
		out->text[len] = '\0';
		out->len = len;
	} else {
		xmlChar *mem = NULL;
		int n = 0;
		xmlDocDumpMemoryEnc(doc, &mem, &n, "UTF-8");
		if (!mem || n <= 0) {
			xmlFree(mem);
			h2k_seterr(H2K_EX_FAIL, "OVF descriptor: cannot "
			    "serialise");
			goto out;
		}
		out->text = h2k_malloc((size_t)n + 1);
		if (out->text) {
			memcpy(out->text, mem, (size_t)n);
			out->text[n] = '\0';
			out->len = (size_t)n;
		}
		xmlFree(mem);
		if (!out->text)
			goto out;
	}
	rc = 0;
out:
	strv_free(ids, nids);
	xmlFreeDoc(doc);
	if (rc < 0)
		h2k_ovf_desc_free(out);
	return rc;
}

void
h2k_ovf_desc_free(struct h2k_ovf_desc *d)
{
	free(d->text);
	strv_free(d->hrefs, d->nhrefs);
	strv_free(d->dropped, d->ndropped);
	memset(d, 0, sizeof *d);
}

int
h2k_ovf_output_name(const char *safe, const char *base)
{
	static const char *const ext[] = { ".ovf", ".mf", ".ova",
	    ".hyper2kvm.json" };
	size_t n = strlen(safe);

	/* Without regard to ASCII case: on exFAT, NTFS or SMB "VM.OVF" is VM.ovf. */
	for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
		size_t e = strlen(ext[i]);
		const char *p = base;

		/* h2k_atomic_write's temporary name: ".NAME.ovf.XXXXXX" */
		if (p[0] == '.' && !strncasecmp(p + 1, safe, n) &&
		    !strncasecmp(p + 1 + n, ext[i], e) && p[1 + n + e] == '.')
			return 1;
		if (strncasecmp(p, safe, n) || strncasecmp(p + n, ext[i], e))
			continue;
		p += n + e;
		/* NAME.ova.part: h2k_ova_write's */
		if (!*p || !strcasecmp(p, ".part"))
			return 1;
	}
	return 0;
}

/* --- manifest ---------------------------------------------------------------- */

int
h2k_mf_add(struct h2k_buf *b, const char *algo, const char *file,
    const char *hex)
{
	return h2k_buf_printf(b, "%s(%s)= %s\n", algo, file, hex);
}

static int
hexlen_for(const char *algo)
{
	if (!strcmp(algo, "SHA1"))
		return 40;
	if (!strcmp(algo, "SHA256"))
		return 64;
	if (!strcmp(algo, "SHA512"))
		return 128;
	return 0;
}

void
h2k_mf_free(struct h2k_mf_entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(e[i].file);
	free(e);
}

int
h2k_mf_parse(const char *buf, size_t len, struct h2k_mf_entry **out,
    size_t *n)
{
	struct h2k_mf_entry *v = NULL;
	size_t nv = 0, lineno = 0;
	const char *p = buf, *end = buf + len;

	*out = NULL;
	*n = 0;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *le = eol ? eol : end;
		const char *q, *open, *close;
		struct h2k_mf_entry e = { 0 };
		size_t hl;

		lineno++;
		if (le > p && le[-1] == '\r')
			le--;
		if (le == p) {
			p = eol ? eol + 1 : end;
			continue;
		}
		if (memchr(p, '\0', (size_t)(le - p)))
			goto bad;
		open = memchr(p, '(', (size_t)(le - p));
		if (!open || open - p >= (long)sizeof e.algo)
			goto bad;
		memcpy(e.algo, p, (size_t)(open - p));
		e.algo[open - p] = '\0';
		if (!hexlen_for(e.algo))
			goto bad;
		/* The file name may hold ")": the last ")" before "=" ends it. */
		close = NULL;
		for (q = le - 1; q > open; q--)
			if (*q == '=') {
				const char *r = q - 1;
				while (r > open && *r == ' ')
					r--;
				if (*r == ')') {
					close = r;
					break;
				}
			}
		if (!close || close == open + 1)
			goto bad;
		q = close + 1;
		while (q < le && *q == ' ')
			q++;
		if (q >= le || *q != '=')
			goto bad;
		q++;
		while (q < le && *q == ' ')
			q++;
		hl = (size_t)(le - q);
		if ((int)hl != hexlen_for(e.algo)) {
			h2k_seterr(H2K_EX_USAGE, "line %zu: %s digest must be %d "
			    "hex digits", lineno, e.algo, hexlen_for(e.algo));
			goto fail;
		}
		for (size_t i = 0; i < hl; i++) {
			char c = q[i];
			if (c >= 'A' && c <= 'F')
				c = (char)(c - 'A' + 'a');
			if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
				goto bad;
			e.hex[i] = c;
		}
		e.hex[hl] = '\0';
		e.file = h2k_asprintf("%.*s", (int)(close - open - 1), open + 1);
		if (!e.file)
			goto fail;
		for (size_t i = 0; i < nv; i++)
			if (!strcmp(v[i].file, e.file)) {
				h2k_seterr(H2K_EX_USAGE, "line %zu: %s listed "
				    "twice", lineno, e.file);
				free(e.file);
				goto fail;
			}
		struct h2k_mf_entry *nvp = h2k_realloc(v, (nv + 1) * sizeof *v);
		if (!nvp) {
			free(e.file);
			goto fail;
		}
		v = nvp;
		v[nv++] = e;
		p = eol ? eol + 1 : end;
		continue;
bad:
		h2k_seterr(H2K_EX_USAGE, "line %zu: not a manifest line "
		    "(want ALGO(file)= hex)", lineno);
		goto fail;
	}
	*out = v;
	*n = nv;
	return 0;
fail:
	h2k_mf_free(v, nv);
	return -1;
}

/* --- digests ---------------------------------------------------------------- */

static void
tohex(const unsigned char *md, unsigned n, char *hex)
{
	static const char x[] = "0123456789abcdef";

	for (unsigned i = 0; i < n; i++) {
		hex[2 * i] = x[md[i] >> 4];
		hex[2 * i + 1] = x[md[i] & 15];
	}
	hex[2 * n] = '\0';
}

void
h2k_sha256_hex(const void *p, size_t n, char hex[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;

	EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL);
	tohex(md, mdlen, hex);
}

static int
open_regular(const char *path, struct stat *st)
{
	/* O_NONBLOCK: a FIFO planted under a disk's name fails, never hangs */
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0)
		return h2k_seterr(errno == ENOENT ? H2K_EX_NOTFOUND : H2K_EX_IO,
		    "%s: %s", path, strerror(errno));
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
		close(fd);
		return h2k_seterr(H2K_EX_IO, "%s: not a regular file", path);
	}
	return fd;
}

int
h2k_sha256_file(const char *path, char hex[65], long long *size)
{
	return h2k_sha256_file_id(path, NULL, hex, size);
}

int
h2k_sha256_file_id(const char *path, const struct stat *want, char hex[65], long long *size)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	struct stat st;
	EVP_MD_CTX *ctx;
	char *buf;
	long long total = 0;
	ssize_t r;
	int fd = open_regular(path, &st);

	if (fd < 0)
		return -1;
	if (want && (st.st_dev != want->st_dev || st.st_ino != want->st_ino)) {
		close(fd);
		return h2k_seterr(H2K_EX_IO, "%s: replaced while it was checked", path);
	}
	buf = h2k_malloc(IO_CHUNK);
	ctx = EVP_MD_CTX_new();
	if (!buf || !ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
		free(buf);
		EVP_MD_CTX_free(ctx);
		close(fd);
		return h2k_seterr(H2K_EX_FAIL, "%s: cannot hash", path);
	}
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	while ((r = read(fd, buf, IO_CHUNK)) != 0) {
		if (r < 0) {
			if (errno == EINTR)
				continue;
			h2k_seterr(H2K_EX_IO, "%s: %s", path, strerror(errno));
			break;
		}
		EVP_DigestUpdate(ctx, buf, (size_t)r);
		total += r;
	}
	close(fd);
	free(buf);
	if (r < 0) {
		EVP_MD_CTX_free(ctx);
		return -1;
	}
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	tohex(md, mdlen, hex);
	if (size)
		*size = total;
	return 0;
}

/* --- OVA -------------------------------------------------------------------- */

static int
fsync_dir_of(const char *path)
{
	char *d = h2k_strdup(path);
	int fd, rc = 0;

	if (!d)
		return -1;
	fd = open(dirname(d), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		if (fsync(fd) < 0 && errno != EINVAL)
			rc = h2k_seterr(H2K_EX_IO, "%s: fsync: %s", dirname(d),
			    strerror(errno));
		close(fd);
	}
	free(d);
	return rc;
}

/* Stream one member into the archive, hashing when a digest is expected. */
static int
pack_one(struct archive *a, const struct h2k_ova_member *m, char *buf,
    volatile sig_atomic_t *cancel)
{
	struct archive_entry *ae;
	struct stat st;
	EVP_MD_CTX *ctx = NULL;
	long long done = 0;
	ssize_t r;
	int fd = open_regular(m->path, &st), rc = -1;

	if (fd < 0)
		return -1;
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	ae = archive_entry_new();
	if (!ae) {
		close(fd);
		return h2k_seterr(H2K_EX_FAIL, "out of memory");
	}
	archive_entry_set_pathname(ae, m->name);
	archive_entry_set_size(ae, st.st_size);
	archive_entry_set_filetype(ae, AE_IFREG);
	archive_entry_set_perm(ae, 0644);
	archive_entry_set_mtime(ae, st.st_mtime, 0);
	if (archive_write_header(a, ae) != ARCHIVE_OK) {
		h2k_seterr(H2K_EX_IO, "%s: %s", m->name, archive_error_string(a));
		goto out;
	}
	if (m->sha256) {
		ctx = EVP_MD_CTX_new();
		if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
			h2k_seterr(H2K_EX_FAIL, "%s: cannot hash", m->path);
			goto out;
		}
	}
	while (done < (long long)st.st_size) {
		size_t want = IO_CHUNK;
		if ((long long)want > (long long)st.st_size - done)
			want = (size_t)((long long)st.st_size - done);
		r = read(fd, buf, want);
		if (cancel && *cancel) {
			h2k_seterr(H2K_EX_CANCEL, "interrupted");
			goto out;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			h2k_seterr(H2K_EX_IO, "%s: %s", m->path, strerror(errno));
			goto out;
		}
		if (r == 0) {
			h2k_seterr(H2K_EX_IO, "%s: shrank while being packed",
			    m->path);
			rc = -2;
			goto out;
		}
		if (ctx)
			EVP_DigestUpdate(ctx, buf, (size_t)r);
		if (archive_write_data(a, buf, (size_t)r) != r) {
			h2k_seterr(H2K_EX_IO, "%s: %s", m->name,
			    archive_error_string(a));
			goto out;
		}
		done += r;
	}
	if (read(fd, buf, 1) > 0) {
		h2k_seterr(H2K_EX_IO, "%s: grew while being packed", m->path);
		rc = -2;
		goto out;
	}
	if (ctx) {
		unsigned char md[EVP_MAX_MD_SIZE];
		unsigned mdlen = 0;
		char hex[EVP_MAX_MD_SIZE * 2 + 1];
		EVP_DigestFinal_ex(ctx, md, &mdlen);
		tohex(md, mdlen, hex);
		if (strcasecmp(hex, m->sha256)) {
			h2k_seterr(H2K_EX_IO, "%s: SHA-256 %s does not match "
			    "the %s recorded when it was downloaded", m->path,
			    hex, m->sha256);
			rc = -2;
			goto out;
		}
	}
	rc = 0;
out:
	EVP_MD_CTX_free(ctx);
	archive_entry_free(ae);
	close(fd);
	return rc;
}

int
h2k_ova_write(const char *path, const struct h2k_ova_member *m, size_t n,
    volatile sig_atomic_t *cancel)
{
	struct archive *a = NULL;
	char *part = h2k_asprintf("%s.part", path), *buf = NULL;
	int fd = -1, big = 0, rc = -1, bad = -1;

	if (!part)
		return -1;
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		if ((stat(m[i].path, &st) == 0 && st.st_size > USTAR_MAX) ||
		    strlen(m[i].name) > 99)
			big = 1;
	}
	unlink(part); /* a leftover of an interrupted run */
	/* It holds the disks: as private as h2k-fetch keeps them (0600). */
	fd = open(part, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (fd < 0) {
		h2k_seterr(H2K_EX_IO, "%s: %s", part, strerror(errno));
		goto out;
	}
	buf = h2k_malloc(IO_CHUNK);
	a = archive_write_new();
	if (!buf || !a) {
		h2k_seterr(H2K_EX_FAIL, "out of memory");
		goto out;
	}
	/*
	 * ustar is what the OVF specification asks for; its size field ends
	 * at 8 GiB, and past that GNU's base-256 size keeps every member a
	 * single header (pax would add extra members before the big disks).
	 */
	if ((big ? archive_write_set_format_gnutar(a) :
	    archive_write_set_format_ustar(a)) != ARCHIVE_OK ||
	    archive_write_add_filter_none(a) != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
	    archive_write_open_fd(a, fd) != ARCHIVE_OK) {
		h2k_seterr(H2K_EX_IO, "%s: %s", part, archive_error_string(a));
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		int pr = pack_one(a, &m[i], buf, cancel);
		if (pr < 0) {
			h2k_adderr("%s", path);
			bad = pr;
			goto out;
		}
	}
	if (archive_write_close(a) != ARCHIVE_OK) {
		h2k_seterr(H2K_EX_IO, "%s: %s", part, archive_error_string(a));
		goto out;
	}
	if (fsync(fd) < 0) {
		h2k_seterr(H2K_EX_IO, "%s: fsync: %s", part, strerror(errno));
		goto out;
	}
	if (close(fd) < 0) {
		fd = -1;
		h2k_seterr(H2K_EX_IO, "%s: %s", part, strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(part, path) < 0) {
		h2k_seterr(H2K_EX_IO, "%s: %s", path, strerror(errno));
		goto out;
	}
	rc = fsync_dir_of(path);
out:
	if (a)
		archive_write_free(a);
	if (fd >= 0)
		close(fd);
	if (rc < 0)
		unlink(part);
	free(buf);
	free(part);
	return rc < 0 ? bad : rc;
}

/*
 * Read the OVA back as a reader would (archive_read on the file, not the
 * bytes we wrote): every member one of m[] by name, each exactly once, of
 * the digest expected.  Only then may the loose copies go.
 */
int
h2k_ova_verify(const char *path, const struct h2k_ova_member *m, size_t n,
    volatile sig_atomic_t *cancel)
{
	struct archive *a = archive_read_new();
	struct archive_entry *ae;
	unsigned char *seen = h2k_calloc(n ? n : 1, 1);
	char *buf = h2k_malloc(IO_CHUNK);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int fd = -1, rc = -1, r;

	if (!a || !seen || !buf || !ctx) {
		h2k_seterr(H2K_EX_FAIL, "out of memory");
		goto out;
	}
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		h2k_seterr(H2K_EX_IO, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (archive_read_support_format_tar(a) != ARCHIVE_OK ||
	    archive_read_open_fd(a, fd, 64 << 10) != ARCHIVE_OK) {
		h2k_seterr(H2K_EX_IO, "%s: %s", path, archive_error_string(a));
		goto out;
	}
	while ((r = archive_read_next_header(a, &ae)) == ARCHIVE_OK) {
		const char *name = archive_entry_pathname(ae);
		size_t i;
		la_ssize_t got;
		unsigned char md[EVP_MAX_MD_SIZE];
		unsigned mdlen = 0;
		char hex[EVP_MAX_MD_SIZE * 2 + 1];

		for (i = 0; name && i < n; i++)
			if (!strcmp(m[i].name, name))
				break;
		if (!name || i == n || seen[i]) {
			h2k_seterr(H2K_EX_IO, "%s: member %.200s %s", path,
			    name ? name : "(no name)", name && i < n ?
			    "packed twice" : "was not packed by us");
			goto out;
		}
		seen[i] = 1;
		EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
		while ((got = archive_read_data(a, buf, IO_CHUNK)) > 0) {
			if (cancel && *cancel) {
				h2k_seterr(H2K_EX_CANCEL, "interrupted");
				goto out;
			}
			EVP_DigestUpdate(ctx, buf, (size_t)got);
		}
		if (got < 0) {
			h2k_seterr(H2K_EX_IO, "%s: member %s: %s", path, name,
			    archive_error_string(a));
			goto out;
		}
		EVP_DigestFinal_ex(ctx, md, &mdlen);
		tohex(md, mdlen, hex);
		if (!m[i].sha256 || strcasecmp(hex, m[i].sha256)) {
			h2k_seterr(H2K_EX_IO, "%s: member %s reads back with "
			    "SHA-256 %s, the manifest says %s", path, name, hex,
			    m[i].sha256 ? m[i].sha256 : "nothing");
			goto out;
		}
	}
	if (r != ARCHIVE_EOF) {
		h2k_seterr(H2K_EX_IO, "%s: %s", path, archive_error_string(a));
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (!seen[i]) {
			h2k_seterr(H2K_EX_IO, "%s: member %s missing", path,
			    m[i].name);
			goto out;
		}
	rc = 0;
out:
	if (a)
		archive_read_free(a);
	if (fd >= 0)
		close(fd);
	EVP_MD_CTX_free(ctx);
	free(buf);
	free(seen);
	return rc;
}

/* --- what the descriptor says of each disk ------------------------------- */

/*
 * ovf:format of each kind of file.  The OVF specification names VMware's
 * URIs for VMDK; for qcow2, the URI oVirt and virt-v2v write
 * (getVolumeImageFormat, COW).  Raw has no URI in the specification or
 * in VMware's tools; oVirt labels its raw volumes with the sparse-VMDK URI
 * (plus an ovf:volume-format="RAW" of its own), which a VMware reader would
 * take for a VMDK: h2k names qemu's raw format instead (h2k-ovf(1)).
 */
const char *
h2k_ovf_format_uri(const char *format, const char *vmdk_subformat)
{
	if (!format)
		return NULL;
	if (!strcmp(format, "qcow2"))
		return "http://www.gnome.org/~markmc/qcow-image-format.html";
	if (!strcmp(format, "raw"))
		return "https://www.qemu.org/docs/master/system/qemu-block-drivers.html#raw";
	if (strcmp(format, "vmdk"))
		return NULL;
	if (!vmdk_subformat)
		/* the plain bytes of a flat disk: raw, whatever the name */
		return h2k_ovf_format_uri("raw", NULL);
	if (!strcmp(vmdk_subformat, "streamOptimized"))
		return "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized";
	return "http://www.vmware.com/interfaces/specifications/vmdk.html#sparse";
}

#define OVF_NS "http://schemas.dmtf.org/ovf/envelope/1"

static xmlAttrPtr
attr_named(xmlNodePtr n, const char *name)
{
	for (xmlAttrPtr a = n->properties; a; a = a->next)
		if (a->name && !strcmp((const char *)a->name, name))
			return a;
	return NULL;
}

/* Set the attribute of local name `name` (in the namespace it has, else
 * the OVF one, as every attribute vSphere writes there). */
static int
set_attr(xmlNodePtr n, const char *name, const char *val)
{
	xmlAttrPtr a = attr_named(n, name);
	xmlNsPtr ns = a ? a->ns : NULL, *all;

	/* a prefixed one: the default namespace is no attribute's */
	if (!a && (all = xmlGetNsList(n->doc, n))) {
		for (size_t i = 0; all[i] && !ns; i++)
			if (all[i]->prefix && all[i]->href &&
			    !strcmp((const char *)all[i]->href, OVF_NS))
				ns = all[i];
		xmlFree(all);
	}
	return xmlSetNsProp(n, ns, (const xmlChar *)name,
	    (const xmlChar *)val) ? 0 : h2k_seterr(H2K_EX_FAIL, "out of memory");
}

static void
walk_disks(xmlNodePtr n, const char *id, const struct h2k_ovf_disk *dk,
    int *rc)
{
	char num[32];

	for (xmlNodePtr c = n ? n->children : NULL; c && *rc == 0; c = c->next) {
		if (!is(c, "Disk")) {
			walk_disks(c, id, dk, rc);
			continue;
		}
		xmlChar *fr = xmlGetProp(c, (const xmlChar *)"fileRef");
		int hit = fr && !strcmp((const char *)fr, id);
		xmlFree(fr);
		if (!hit)
			continue;
		if (dk->format_uri && set_attr(c, "format", dk->format_uri) < 0)
			*rc = -1;
		if (dk->capacity > 0) {
			/* in bytes: no unit to get wrong */
			xmlAttrPtr u = attr_named(c, "capacityAllocationUnits");
			snprintf(num, sizeof num, "%lld", dk->capacity);
			if (set_attr(c, "capacity", num) < 0)
				*rc = -1;
			if (u)
				xmlRemoveProp(u);
		}
		if (dk->populated >= 0) {
			snprintf(num, sizeof num, "%lld", dk->populated);
			if (set_attr(c, "populatedSize", num) < 0)
				*rc = -1;
		}
	}
}

int
h2k_ovf_set_disks(struct h2k_ovf_desc *d, const struct h2k_ovf_disk *dk,
    size_t n)
{
	xmlDocPtr doc = h2k_xml_parse(d->text, d->len, "OVF descriptor");
	xmlNodePtr root, refs;
	xmlChar *mem = NULL;
	int rc = 0, len = 0;
	char num[32];

	if (!doc)
		return -1;
	root = xmlDocGetRootElement(doc);
	refs = root ? child_named(root, "References") : NULL;
	for (xmlNodePtr f = refs ? refs->children : NULL; f && rc == 0; f = f->next) {
		if (!is(f, "File"))
			continue;
		xmlChar *href = xmlGetProp(f, (const xmlChar *)"href");
		xmlChar *id = xmlGetProp(f, (const xmlChar *)"id");
		for (size_t i = 0; href && id && i < n; i++) {
			if (strcmp(dk[i].href, (const char *)href))
				continue;
			snprintf(num, sizeof num, "%lld", dk[i].size);
			if (dk[i].size >= 0 && set_attr(f, "size", num) < 0)
				rc = -1;
			walk_disks(root, (const char *)id, &dk[i], &rc);
		}
		xmlFree(href);
		xmlFree(id);
	}
	if (rc == 0) {
		xmlDocDumpMemoryEnc(doc, &mem, &len, "UTF-8");
		if (!mem || len <= 0)
			rc = h2k_seterr(H2K_EX_FAIL, "OVF descriptor: cannot "
			    "serialise");
	}
	if (rc == 0) {
		char *t = h2k_malloc((size_t)len + 1);
		if (!t)
			rc = -1;
		else {
			memcpy(t, mem, (size_t)len);
			t[len] = '\0';
			free(d->text);
			d->text = t;
			d->len = (size_t)len;
		}
	}
	xmlFree(mem);
	xmlFreeDoc(doc);
	return rc;
}
