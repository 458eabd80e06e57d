/*
 * sweep.c - allocation-failure sweep over h2k's parsers.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * usage: sweep [-ev] [-t N] OP FILE...
 *
 * For each FILE, run parser OP once without failures (twice: the first run
 * pays for one-time initialisation such as libxml2's globals) to get the
 * reference result, then for k = 1, 2, ... run it again with the k-th
 * allocation failing (failmalloc.c), until a run makes fewer than k
 * allocations, i.e. succeeds with nothing injected.  Each run must:
 *   - not crash (ASan/UBSan abort the process, which fails the test);
 *   - free everything it allocated (failmalloc tracks every block);
 *   - either fail with an h2k error message set, or succeed with exactly
 *     the reference result: an allocation failure may be tolerated, never
 *     turned into a silently different answer.
 * Prints one summary line per FILE; exit 1 if any run broke a rule.
 * -t N prints a backtrace at allocation N (to find a leak's origin).
 * -e: the inputs are hostile: the reference run and every run must fail.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <yaml.h>

#include "failmalloc.h"
#include "h2k.h"

#ifdef HAVE_SOAP
#include "soap.h"
#endif
#ifdef HAVE_JSONL
#include "jsonl.h"
#endif
#ifdef HAVE_SESSION
#include "session.h"
#endif
#ifdef HAVE_CONFIG
#include "config.h"
#endif
#ifdef HAVE_CRANGE
#include "crange.h"
#endif
#ifdef HAVE_OVF
#include "ovf.h"
#endif
#ifdef HAVE_PATHSAFE
#include "pathsafe.h"
#endif
#ifdef HAVE_JOB
#include "job.h"
#endif
#ifdef HAVE_VMDKSTREAM
#include "vmdkstream.h"
#endif

#if LIBXML_VERSION < 21200
#define LIBXML2_EXEMPT "libxml2.so"
#else
#define LIBXML2_EXEMPT NULL
#endif

/*
 * libyaml 0.2.5 leaks an anchor's name when loading a document with an
 * alias runs out of memory (the yamlraw control shows it without h2k).
 */
#define LIBYAML_EXEMPT "libyaml"

/* The result of one run, built without allocating (the window counts). */
static char out[1 << 16];
static size_t outlen;
static char ref[sizeof out];
static char tmpdir[] = "/tmp/h2k-sweep.XXXXXX";
static char tmpfile_[sizeof tmpdir + 32];

static void
put(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void
put(const char *fmt, ...)
{
	va_list ap;
	int n;

	if (outlen >= sizeof out - 1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(out + outlen, sizeof out - outlen, fmt, ap);
	va_end(ap);
	if (n > 0)
		outlen += (size_t)n < sizeof out - outlen ? (size_t)n : sizeof out - outlen - 1;
}

static void __attribute__((unused))
puts_or_null(const char *what, const char *s)
{
	put("%s=%s;", what, s ? s : "(null)");
}

/* --- operations ------------------------------------------------------ */

/*
 * selftest: proves the sweep can fail.  Splits the input into words with
 * h2k_buf and h2k_strdup; with SWEEP_SELFTEST_BUG=leak it forgets to free
 * on the error path, with =silent it drops a word it could not copy and
 * still reports success.  The TAP test expects both to be caught.
 */
static int
op_selftest(const char *buf, size_t len)
{
	const char *bug = getenv("SWEEP_SELFTEST_BUG");
	struct h2k_buf b = {0};
	const char *p = buf, *e = buf + len;

	while (p < e) {
		const char *q = memchr(p, ' ', (size_t)(e - p));
		size_t n = q ? (size_t)(q - p) : (size_t)(e - p);
		char *w = h2k_malloc(n + 1);

		if (!w) {
			if (bug && !strcmp(bug, "silent"))
				goto next;
			if (!(bug && !strcmp(bug, "leak")))
				h2k_buf_free(&b);
			return -1;
		}
		memcpy(w, p, n);
		w[n] = '\0';
		if (h2k_buf_printf(&b, "[%s]", w) < 0) {
			free(w);
			h2k_buf_free(&b);
			return -1;
		}
		free(w);
next:
		p += n + 1;
	}
	put("%s", b.data ? b.data : "");
	h2k_buf_free(&b);
	return 0;
}

/* yamlraw: libyaml's document loader alone, as a control. */
static int
op_yamlraw(const char *buf, size_t len)
{
	yaml_parser_t p;
	yaml_document_t d;
	yaml_node_t *root;

	if (!yaml_parser_initialize(&p))
		return h2k_seterr(H2K_EX_FAIL, "yamlraw: out of memory");
	yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
	if (!yaml_parser_load(&p, &d)) {
		yaml_parser_delete(&p);
		return h2k_seterr(H2K_EX_USAGE, "yamlraw: load failed");
	}
	root = yaml_document_get_root_node(&d);
	put("%d", root ? (int)root->type : -1);
	yaml_document_delete(&d);
	yaml_parser_delete(&p);
	return 0;
}

/* xmlraw: libxml2 alone, with the hardened options, as a control. */
static int
op_xmlraw(const char *buf, size_t len)
{
	xmlDocPtr doc = xmlReadMemory(buf, (int)len, "sweep", NULL,
	    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);

	xmlResetLastError();
	if (!doc)
		return h2k_seterr(H2K_EX_NET, "xmlraw: parse failed");
	put("%s", xmlDocGetRootElement(doc) ?
	    (const char *)xmlDocGetRootElement(doc)->name : "");
	xmlFreeDoc(doc);
	return 0;
}

#ifdef HAVE_SOAP
/* Dump element names and text without allocating. */
static void
xml_dump(xmlNodePtr n, int depth)
{
	for (; n; n = n->next) {
		if (n->type == XML_ELEMENT_NODE) {
			put("<%s", (const char *)n->name);
			for (xmlAttrPtr a = n->properties; a; a = a->next)
				put(" %s", (const char *)a->name);
			put(">");
			if (depth < 64)
				xml_dump(n->children, depth + 1);
			put("</>");
		} else if (n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) {
			put("%s", n->content ? (const char *)n->content : "");
		}
	}
}

static int
op_soap(const char *buf, size_t len)
{
	xmlDocPtr doc = h2k_xml_parse(buf, len, "sweep response");

	/*
	 * libxml2 keeps a copy of the last error in a global it frees only
	 * when the next error comes: not a leak, so empty it inside the window.
	 */
	xmlResetLastError();
	if (!doc)
		return -1;
	/*
	 * A fault document's answer is the fault's class and message; failing
	 * to allocate while decoding it may say "out of memory" but must never
	 * turn into another fault.
	 */
	if (h2k_soap_fault(doc, "RetrievePropertiesEx") < 0) {
		if (strstr(h2k_errmsg(), "memory")) {
			xmlFreeDoc(doc);
			return -1;
		}
		put("fault %d %s|%s;", h2k_errcode(), h2k_soap_fault_type(), h2k_errmsg());
	}
	xml_dump(xmlDocGetRootElement(doc), 0);
	xmlFreeDoc(doc);
	return 0;
}
#endif

#if defined(HAVE_JSONL) || defined(HAVE_JOB)
static void
json_dump(const cJSON *j)
{
	for (; j; j = j->next) {
		if (j->string)
			put("\"%s\":", j->string);
		if (cJSON_IsObject(j) || cJSON_IsArray(j)) {
			put(cJSON_IsObject(j) ? "{" : "[");
			json_dump(j->child);
			put(cJSON_IsObject(j) ? "}" : "]");
		} else if (cJSON_IsString(j)) {
			put("s:%s", j->valuestring);
		} else if (cJSON_IsNumber(j)) {
			put("n:%.17g", j->valuedouble);
		} else {
			put("t%d", j->type & 0xff);
		}
		put(",");
	}
}
#endif

#ifdef HAVE_JSONL
static FILE *jfp;

static int
op_jsonl(const char *buf, size_t len)
{
	struct h2k_jsonl r;
	cJSON *o;
	int rc, bad = 0;

	/* The FILE is opened outside the window: it is not the reader's. */
	h2k_jsonl_init(&r, jfp, "stdin");
	while ((rc = h2k_jsonl_next(&r, &o)) != 0) {
		if (rc < 0) {
			/* Seeds hold good lines only: any bad line is the failure. */
			put("bad %ld;", r.lineno);
			bad = 1;
			continue;
		}
		put("line %ld:", r.lineno);
		json_dump(o);
		put(";");
		cJSON_Delete(o);
	}
	h2k_jsonl_free(&r);
	return bad ? -1 : 0;
}
#endif

#ifdef HAVE_SESSION
static int
op_session(const char *buf, size_t len)
{
	struct h2k_session s;

	memset(&s, 0, sizeof s);
	if (h2k_session_load(tmpfile_, &s) < 0)
		return -1;
	puts_or_null("url", s.url);
	puts_or_null("cookie", s.cookie);
	puts_or_null("thumbprint", s.thumbprint);
	put("insecure=%d;", s.insecure);
	puts_or_null("ca_file", s.ca_file);
	puts_or_null("server_type", s.server_type);
	puts_or_null("server_version", s.server_version);
	puts_or_null("api_version", s.api_version);
	puts_or_null("user", s.user);
	puts_or_null("created_at", s.created_at);
	h2k_session_free(&s);
	return 0;
}
#endif

#ifdef HAVE_CONFIG
static int
op_config(const char *buf, size_t len)
{
	struct h2k_config c;

	h2k_config_init(&c);
	if (h2k_config_load(&c, tmpfile_) < 0) {
		h2k_config_free(&c);
		return -1;
	}
	puts_or_null("url", c.url);
	puts_or_null("username", c.username);
	puts_or_null("password", c.password);
	put("insecure=%d;", c.insecure);
	puts_or_null("thumbprint", c.thumbprint);
	puts_or_null("ca_file", c.ca_file);
	put("log_level=%d;workers=%d;", c.log_level, c.download_workers);
	puts_or_null("spool", c.spool);
	h2k_config_free(&c);
	return 0;
}
#endif

#ifdef HAVE_CRANGE
/* One Content-Range value per line. */
static int
op_crange(const char *buf, size_t len)
{
	const char *p = buf, *e = buf + len;

	while (p < e) {
		const char *q = memchr(p, '\n', (size_t)(e - p));
		size_t n = q ? (size_t)(q - p) : (size_t)(e - p);
		struct h2k_crange cr;

		memset(&cr, 0, sizeof cr);
		if (h2k_crange_parse(p, n, &cr) < 0)
			put("bad;");
		else
			put("%d %d %llu-%llu/%llu;", cr.has_range, cr.has_total,
			    (unsigned long long)cr.first, (unsigned long long)cr.last,
			    (unsigned long long)cr.total);
		p += n + 1;
	}
	return 0;
}
#endif

#ifdef HAVE_PATHSAFE
/* One server-supplied name per line, claimed in one folder. */
static int
op_pathsafe(const char *buf, size_t len)
{
	struct h2k_pathset set = {0};
	const char *p = buf, *e = buf + len;
	char line[4096];

	while (p < e) {
		const char *q = memchr(p, '\n', (size_t)(e - p));
		size_t n = q ? (size_t)(q - p) : (size_t)(e - p);
		char *safe, *name;

		snprintf(line, sizeof line, "%.*s", (int)(n < sizeof line ? n : sizeof line - 1), p);
		p += n + 1;
		if (!(safe = h2k_pathsafe(line, "disk"))) {
			h2k_pathset_free(&set);
			return -1;
		}
		name = h2k_pathset_claim(&set, safe);
		free(safe);
		if (!name) {
			h2k_pathset_free(&set);
			return -1;
		}
		put("%s;", name);
		free(name);
	}
	h2k_pathset_free(&set);
	return 0;
}
#endif

#ifdef HAVE_JOB
static int
op_job(const char *buf, size_t len)
{
	struct h2k_joblist l = {0};

	if (h2k_job_parse("job.yaml", buf, len, &l) < 0) {
		h2k_joblist_free(&l);
		return -1;
	}
	for (size_t i = 0; i < l.n; i++) {
		const struct h2k_jobspec *j = &l.v[i];
		put("%s|%s|%s|%d|%d%d%d%d%d|%s;", j->name, j->vm_path, j->output_path,
		    j->parallel_downloads, j->remove_cdrom, j->snapshot, j->shutdown,
		    j->power_off, j->ova, j->source ? j->source : "");
	}
	h2k_joblist_free(&l);
	return 0;
}
#endif

#ifdef HAVE_OVF
static int
op_mf(const char *buf, size_t len)
{
	struct h2k_mf_entry *e = NULL;
	size_t n = 0;

	if (h2k_mf_parse(buf, len, &e, &n) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		put("%s(%s)=%s;", e[i].algo, e[i].file, e[i].hex);
	h2k_mf_free(e, n);
	return 0;
}

/* An OVF descriptor from CreateDescriptor, CD-ROMs removed. */
static int
op_ovf(const char *buf, size_t len)
{
	struct h2k_ovf_desc d;

	memset(&d, 0, sizeof d);
	if (h2k_ovf_process(buf, len, 1, &d) < 0) {
		xmlResetLastError();
		return -1;
	}
	xmlResetLastError();
	put("len=%zu;cdroms=%d;", d.len, d.cdroms);
	for (size_t i = 0; i < d.nhrefs; i++)
		put("href=%s;", d.hrefs[i]);
	for (size_t i = 0; i < d.ndropped; i++)
		put("dropped=%s;", d.dropped[i]);
	put("%.*s", (int)d.len, d.text);
	h2k_ovf_desc_free(&d);
	return 0;
}
#endif

#ifdef HAVE_VMDKSTREAM
/* h2k-fetch --format's decoder: a streamOptimized stream, in chunks of
 * 4,000 bytes, each grain inflated (zlib's window and state are
 * allocations of their own). */
static unsigned long long vsum;
static int
vgrain(void *arg, long long off, const unsigned char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		vsum = vsum * 31 + b[i];
	put("%lld+%zu;", off, n);
	return 0;
}

static int
op_vmdks(const char *buf, size_t len)
{
	struct h2k_vmdks *d = h2k_vmdks_new(vgrain, NULL);
	int rc = 0;

	if (!d)
		return -1;
	vsum = 0;
	for (size_t i = 0; i < len && rc == 0; i += 4000)
		rc = h2k_vmdks_feed(d, buf + i, len - i < 4000 ? len - i : 4000);
	if (rc == 0)
		rc = h2k_vmdks_finish(d);
	if (rc == 0)
		put("cap=%lld;sum=%llx", h2k_vmdks_capacity(d), vsum);
	h2k_vmdks_free(d);
	return rc;
}
#endif

struct op {
	const char *name;
	int (*run)(const char *buf, size_t len);
	int needs_file;  /* the parser reads a path: copy input to a 0600 file */
	int needs_fp;    /* the parser reads a FILE * */
	/*
	 * Leaks made inside this library under an injected failure are its
	 * own, counted and shown but not failed: libxml2 before 2.12 is not
	 * OOM-safe (2.12 rewrote its error handling), nor is libyaml 0.2.5's
	 * alias handling.  The controls xmlraw and yamlraw show these leaks
	 * with no h2k code involved.  A leak of ours that
	 * happens to be a libxml2 block (a document we forgot to free) still
	 * fails the reference run, which exempts nothing.
	 */
	const char *exempt;
};

static const struct op ops[] = {
	{"selftest", op_selftest, 0, 0, NULL},
	{"xmlraw", op_xmlraw, 0, 0, LIBXML2_EXEMPT},
	{"yamlraw", op_yamlraw, 0, 0, LIBYAML_EXEMPT},
#ifdef HAVE_SOAP
	{"soap", op_soap, 0, 0, LIBXML2_EXEMPT},
#endif
#ifdef HAVE_JSONL
	{"jsonl", op_jsonl, 0, 1, NULL},
#endif
#ifdef HAVE_SESSION
	{"session", op_session, 1, 0, NULL},
#endif
#ifdef HAVE_CONFIG
	{"config", op_config, 1, 0, LIBYAML_EXEMPT},
#endif
#ifdef HAVE_CRANGE
	{"crange", op_crange, 0, 0, NULL},
#endif
#ifdef HAVE_PATHSAFE
	{"pathsafe", op_pathsafe, 0, 0, NULL},
#endif
#ifdef HAVE_JOB
	{"job", op_job, 0, 0, LIBYAML_EXEMPT},
#endif
#ifdef HAVE_VMDKSTREAM
	{"vmdks", op_vmdks, 0, 0, NULL},
#endif
#ifdef HAVE_OVF
	{"mf", op_mf, 0, 0, NULL},
	{"ovf", op_ovf, 0, 0, LIBXML2_EXEMPT},
#endif
	{NULL, NULL, 0, 0, NULL},
};

/* --- driver ---------------------------------------------------------- */

static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *b = NULL;
	long n;

	if (!f || fseek(f, 0, SEEK_END) < 0 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) < 0 || !(b = malloc((size_t)n + 1)) ||
	    fread(b, 1, (size_t)n, f) != (size_t)n) {
		fprintf(stderr, "sweep: %s: %s\n", path, strerror(errno));
		exit(2);
	}
	fclose(f);
	b[n] = '\0';
	*len = (size_t)n;
	return b;
}

static void
prepare(const struct op *op, const char *buf, size_t len)
{
#ifdef HAVE_JSONL
	if (op->needs_fp) {
		if (jfp)
			fclose(jfp);
		/* A static stdio buffer: libc would allocate one on first read. */
		static char iobuf[8192];
		if (!(jfp = fmemopen((void *)buf, len, "r")) ||
		    setvbuf(jfp, iobuf, _IOFBF, sizeof iobuf)) {
			perror("fmemopen");
			exit(2);
		}
	}
#endif
	(void)op, (void)buf, (void)len;
}

static int verbose, expect_refusal;
static long nshown;
#define SHOW (nshown++ < 5 || verbose)

/* One run; returns the rc of the operation, fills out. */
static int
run_once(const struct op *op, const char *buf, size_t len, long k, long *nalloc)
{
	int rc;

	prepare(op, buf, len);
	outlen = 0;
	out[0] = '\0';
	h2k_clearerr();
	fm_reset();
	fm_arm(k);
	rc = op->run(buf, len);
	*nalloc = fm_disarm();
	return rc;
}

static int
sweep_file(const struct op *op, const char *path)
{
	size_t len;
	char *buf = slurp(path, &len);
	long n, k, nerr = 0, ntol = 0, noom = 0, nbug = 0, nupstream = 0;
	char leak[512];
	int rc;

	nshown = 0;
	if (op->needs_file) {
		int fd = open(tmpfile_, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd < 0 || write(fd, buf, len) != (ssize_t)len || close(fd) < 0) {
			perror(tmpfile_);
			exit(2);
		}
	}
	/* Warm-up then reference: must succeed and leak nothing. */
	run_once(op, buf, len, 0, &n);
	rc = run_once(op, buf, len, 0, &n);
	if (rc < 0 && !expect_refusal) {
		printf("%s %s: reference run failed: %s\n", op->name, path, h2k_errmsg());
		free(buf);
		return 1;
	}
	if (rc == 0 && expect_refusal) {
		printf("%s %s: hostile input accepted\n", op->name, path);
		free(buf);
		return 1;
	}
	if (fm_leaks(leak, sizeof leak, NULL, NULL)) {
		printf("%s %s: reference run leaks: %s\n", op->name, path, leak);
		nbug++;
	}
	memcpy(ref, out, outlen + 1);

	for (k = 1;; k++) {
		rc = run_once(op, buf, len, k, &n);
		if (!fm_injected()) {
			/* Fewer than k allocations: the sweep is complete. */
			if ((rc < 0) != expect_refusal || strcmp(out, ref)) {
				printf("%s %s: k=%ld: run without failure differs from reference\n",
				    op->name, path, k);
				nbug++;
			}
			break;
		}
		if (rc == 0 && expect_refusal) {
			if (SHOW)
				printf("%s %s: k=%ld: hostile input accepted after an "
				    "allocation failure\n", op->name, path, k);
			nbug++;
		} else if (rc < 0) {
			const char *m = h2k_errmsg();
			nerr++;
			if (!strcmp(m, "unknown error") || !*m) {
				if (SHOW)
				printf("%s %s: k=%ld: failed without an error message\n",
				    op->name, path, k);
				nbug++;
			} else if (strstr(m, "memory")) {
				noom++;
			}
			if (verbose)
				printf("# k=%ld: %s (exit class %d)\n", k, m, h2k_errcode());
		} else if (strcmp(out, ref)) {
			size_t d = 0;
			while (ref[d] && ref[d] == out[d])
				d++;
			d = d > 60 ? d - 60 : 0;
			if (SHOW)
			printf("%s %s: k=%ld: allocation failure silently changed the result\n"
			    "  want: ...%.160s\n  got:  ...%.160s\n", op->name, path, k,
			    ref + d, out + d);
			nbug++;
		} else {
			ntol++;
		}
		long nx = 0;
		if (fm_leaks(leak, sizeof leak, op->exempt, &nx)) {
			if (SHOW)
			printf("%s %s: k=%ld: leaked %s\n", op->name, path, k, leak);
			nbug++;
		}
		nupstream += nx > 0;
	}
	printf("%s %s: %ld allocations, %ld failures injected: %ld errors "
	    "(%ld say out of memory), %ld tolerated, %ld broken", op->name, path,
	    k - 1, k - 1, nerr, noom, ntol, nbug);
	if (nupstream)
		printf("; %ld runs leaked inside %s (upstream, not h2k)",
		    nupstream, op->exempt);
	printf("\n");
	free(buf);
	return nbug ? 1 : 0;
}

static void
cleanup(void)
{
	unlink(tmpfile_);
	rmdir(tmpdir);
}

int
main(int argc, char **argv)
{
	const struct op *op = NULL;
	int c, bad = 0;

	while ((c = getopt(argc, argv, "et:v")) != -1) {
		switch (c) {
		case 'e': expect_refusal = 1; break;
		case 't': fm_trace_at(atol(optarg)); break;
		case 'v': verbose = 1; break;
		default: goto usage;
		}
	}
	argc -= optind, argv += optind;
	if (argc < 2)
		goto usage;
	for (const struct op *o = ops; o->name; o++)
		if (!strcmp(o->name, argv[0]))
			op = o;
	if (!op) {
		fprintf(stderr, "sweep: unknown or unbuilt parser %s; built:", argv[0]);
		for (const struct op *o = ops; o->name; o++)
			fprintf(stderr, " %s", o->name);
		fprintf(stderr, "\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 2;
	}
	snprintf(tmpfile_, sizeof tmpfile_, "%s/input", tmpdir);
	atexit(cleanup);
	/* The config loader must see only the file under test. */
	setenv("H2K_SYSCONFIG", "/nonexistent/h2k-sweep.yaml", 1);
	unsetenv("H2K_URL"), unsetenv("H2K_USERNAME"), unsetenv("H2K_PASSWORD");
	unsetenv("H2K_INSECURE"), unsetenv("H2K_THUMBPRINT"), unsetenv("H2K_CONFIG");
	unsetenv("GOVC_URL"), unsetenv("GOVC_USERNAME"), unsetenv("GOVC_PASSWORD");
	unsetenv("GOVC_INSECURE"), unsetenv("H2K_LOG_LEVEL"), unsetenv("LOG_LEVEL");
	for (int i = 1; i < argc; i++)
		bad |= sweep_file(op, argv[i]);
	return bad;
usage:
	fprintf(stderr, "usage: sweep [-ev] [-t N] OP FILE...\n");
	return 2;
}
