/*
 * job.c - job files (YAML or JSON) and status records.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * Parsing: both formats go through libyaml's event parser (JSON is YAML
 * flow syntax), which gives every node a line number, so one validator
 * serves both and every error can name FILE:LINE and the key.  The events
 * build a small tree of our own rather than a yaml_document_t: aliases are
 * refused at the event (a job file has no use for them, and resolving them
 * is how "billion laughs" documents explode), depth and node count are
 * bounded.  A file that looks like JSON is first checked by cJSON so that
 * JSON's stricter syntax is enforced (YAML would accept 'a: b' inside it);
 * in a JSON file only quoted scalars are strings and only true/false are
 * booleans, while a YAML file gets YAML 1.1's plain scalars (yes/no/on/off).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "h2k.h"
#include "job.h"

#define MAX_DEPTH 32
#define MAX_NODES 200000

enum { N_SCALAR, N_MAP, N_SEQ };

struct ynode {
	int type;
	size_t line;
	char *val;      /* scalar */
	int quoted;     /* scalar was '...' or "..." */
	struct ynode **kids; /* map: key, value, key, value...; seq: items */
	size_t nkids, cap;
};

struct ctx {
	const char *name;
	int json;
	size_t nodes;
};

static void
ynode_free(struct ynode *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->nkids; i++)
		ynode_free(n->kids[i]);
	free(n->kids);
	free(n->val);
	free(n);
}

static int
ynode_add(struct ynode *p, struct ynode *k)
{
	if (p->nkids == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 8;
		struct ynode **v = h2k_realloc(p->kids, cap * sizeof *v);
		if (!v)
			return -1;
		p->kids = v;
		p->cap = cap;
	}
	p->kids[p->nkids++] = k;
	return 0;
}

/* Build the tree of the one document in buf; NULL + error. */
static struct ynode *
yaml_tree(struct ctx *c, const char *buf, size_t len)
{
	yaml_parser_t p;
	yaml_event_t ev;
	struct ynode *stack[MAX_DEPTH + 1], *root = NULL;
	int depth = 0, done = 0, docs = 0;

	if (!yaml_parser_initialize(&p)) {
		h2k_seterr(H2K_EX_FAIL, "out of memory");
		return NULL;
	}
	yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
	while (!done) {
		struct ynode *n = NULL;

		if (!yaml_parser_parse(&p, &ev)) {
			h2k_seterr(H2K_EX_USAGE, "%s:%zu: %s syntax error: %s%s%s",
			    c->name, p.problem_mark.line + 1,
			    c->json ? "JSON" : "YAML",
			    p.problem ? p.problem : "invalid",
			    p.context ? " " : "", p.context ? p.context : "");
			goto fail;
		}
		size_t line = ev.start_mark.line + 1;
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = 1;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (++docs > 1) {
				h2k_seterr(H2K_EX_USAGE, "%s:%zu: more than one "
				    "YAML document; put several jobs under 'jobs:'",
				    c->name, line);
				goto failev;
			}
			break;
		case YAML_ALIAS_EVENT:
			h2k_seterr(H2K_EX_USAGE, "%s:%zu: YAML aliases are not "
			    "allowed in job files", c->name, line);
			goto failev;
		case YAML_SCALAR_EVENT:
		case YAML_MAPPING_START_EVENT:
		case YAML_SEQUENCE_START_EVENT:
			if (++c->nodes > MAX_NODES) {
				h2k_seterr(H2K_EX_USAGE, "%s:%zu: too many nodes "
				    "(more than %d)", c->name, line, MAX_NODES);
				goto failev;
			}
			if (!(n = h2k_calloc(1, sizeof *n)))
				goto failev;
			n->line = line;
			if (ev.type == YAML_SCALAR_EVENT) {
				n->type = N_SCALAR;
				n->quoted = ev.data.scalar.style ==
				    YAML_SINGLE_QUOTED_SCALAR_STYLE ||
				    ev.data.scalar.style ==
				    YAML_DOUBLE_QUOTED_SCALAR_STYLE ||
				    ev.data.scalar.style == YAML_LITERAL_SCALAR_STYLE ||
				    ev.data.scalar.style == YAML_FOLDED_SCALAR_STYLE;
				if (strlen((char *)ev.data.scalar.value) !=
				    ev.data.scalar.length) {
					free(n);
					h2k_seterr(H2K_EX_USAGE, "%s:%zu: NUL byte "
					    "in a string", c->name, line);
					goto failev;
				}
				if (!(n->val = h2k_strdup(
				    (char *)ev.data.scalar.value))) {
					free(n);
					goto failev;
				}
			} else
				n->type = ev.type == YAML_MAPPING_START_EVENT ?
				    N_MAP : N_SEQ;
			if (depth == 0) {
				root = n;
			} else if (ynode_add(stack[depth - 1], n) < 0) {
				ynode_free(n);
				goto failev;
			}
			if (n->type != N_SCALAR) {
				if (depth >= MAX_DEPTH) {
					h2k_seterr(H2K_EX_USAGE, "%s:%zu: nested "
					    "deeper than %d", c->name, line,
					    MAX_DEPTH);
					goto failev;
				}
				stack[depth++] = n;
			}
			break;
		case YAML_MAPPING_END_EVENT:
		case YAML_SEQUENCE_END_EVENT:
			depth--;
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&p);
	if (!root)
		h2k_seterr(H2K_EX_USAGE, "%s: empty job file", c->name);
	return root;
failev:
	yaml_event_delete(&ev);
fail:
	yaml_parser_delete(&p);
	ynode_free(root);
	return NULL;
}

/* --- validation --------------------------------------------------------- */

static const char *
typename(const struct ynode *n)
{
	return n->type == N_MAP ? "a mapping" : n->type == N_SEQ ? "a list" :
	    "a scalar";
}

static int
is_null(const struct ctx *c, const struct ynode *n)
{
	if (n->type != N_SCALAR || n->quoted)
		return 0;
	if (c->json)
		return !strcmp(n->val, "null");
	return !strcmp(n->val, "") || !strcmp(n->val, "~") ||
	    !strcmp(n->val, "null") || !strcmp(n->val, "Null") ||
	    !strcmp(n->val, "NULL");
}

static int
bad(const struct ctx *c, const struct ynode *n, const char *key,
    const char *why)
{
	return h2k_seterr(H2K_EX_USAGE, "%s:%zu: key '%s': %s", c->name,
	    n->line, key, why);
}

static int
get_string(const struct ctx *c, const struct ynode *n, const char *key,
    char **out)
{
	if (n->type != N_SCALAR)
		return h2k_seterr(H2K_EX_USAGE, "%s:%zu: key '%s': expected "
		    "a string, got %s", c->name, n->line, key, typename(n));
	if (is_null(c, n))
		return bad(c, n, key, "expected a string, got null");
	if (c->json && !n->quoted)
		return h2k_seterr(H2K_EX_USAGE, "%s:%zu: key '%s': expected "
		    "a string, got %s", c->name, n->line, key, n->val);
	if (!n->val[0])
		return bad(c, n, key, "must not be empty");
	for (const char *p = n->val; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return bad(c, n, key, "control character in value");
	free(*out);
	return (*out = h2k_strdup(n->val)) ? 0 : -1;
}

static int
get_bool(const struct ctx *c, const struct ynode *n, const char *key, int *out)
{
	static const char *t[] = {"true", "True", "TRUE", "yes", "Yes", "YES",
	    "on", "On", "ON"};
	static const char *f[] = {"false", "False", "FALSE", "no", "No", "NO",
	    "off", "Off", "OFF"};
	size_t nv = c->json ? 1 : sizeof t / sizeof t[0];

	if (n->type == N_SCALAR && !n->quoted) {
		for (size_t i = 0; i < nv; i++) {
			if (!strcmp(n->val, t[i]))
				return *out = 1, 0;
			if (!strcmp(n->val, f[i]))
				return *out = 0, 0;
		}
	}
	if (n->type != N_SCALAR)
		return h2k_seterr(H2K_EX_USAGE, "%s:%zu: key '%s': expected "
		    "true or false, got %s", c->name, n->line, key,
		    typename(n));
	return h2k_seterr(H2K_EX_USAGE, "%s:%zu: key '%s': expected true or "
	    "false, got %s%s%.40s%s", c->name, n->line, key,
	    n->quoted ? "the string " : "", n->quoted ? "\"" : "", n->val,
	    n->quoted ? "\"" : "");
}

static int
get_int(const struct ctx *c, const struct ynode *n, const char *key,
    long lo, long hi, int *out)
{
	char *end;
	long v;

	if (n->type != N_SCALAR)
		return h2k_seterr(H2K_EX_USAGE, "%s:%zu: key '%s': expected "
		    "an integer, got %s", c->name, n->line, key, typename(n));
	errno = 0;
	v = strtol(n->val, &end, 10);
	if (n->quoted || !n->val[0] || *end || errno ||
	    !(n->val[0] == '-' || n->val[0] == '+' ||
	    (n->val[0] >= '0' && n->val[0] <= '9')))
		return h2k_seterr(H2K_EX_USAGE, "%s:%zu: key '%s': expected "
		    "an integer, got %s%.40s%s", c->name, n->line, key,
		    n->quoted ? "the string \"" : "", n->val,
		    n->quoted ? "\"" : "");
	if (v < lo || v > hi)
		return h2k_seterr(H2K_EX_USAGE, "%s:%zu: key '%s': %ld is out "
		    "of range %ld..%ld", c->name, n->line, key, v, lo, hi);
	*out = (int)v;
	return 0;
}

/*
 * Keys that mean someone tried to put credentials in a job.  Matched
 * case-insensitively on the key alone; the value is never printed.
 */
static int
is_secret_key(const char *k)
{
	static const char *words[] = {"password", "passwd", "credential",
	    "secret", "token", "cookie", "username", "apikey", "api_key"};

	for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
		if (strcasestr(k, words[i]))
			return 1;
	return !strcasecmp(k, "user");
}

/*
 * Common checks on a mapping's keys: scalar keys, no duplicates, no
 * secrets; the first offence in key order is the one reported.
 * Duplicates by sorting (h2k_first_dup): O(n log n) whatever the keys,
 * where comparing each key with all before it took 18 s for 99k keys and
 * a hash set with a fixed hash took 27 s for 60k keys made to collide.
 */
static int
check_keys(const struct ctx *c, const struct ynode *map, const char *prefix)
{
	size_t nk = map->nkids / 2, stop = nk, first, second;
	const char **keys;
	int r;

	if (!(keys = h2k_calloc(nk ? nk : 1, sizeof *keys)))
		return -1;
	for (size_t i = 0; i < nk; i++) {
		const struct ynode *k = map->kids[2 * i];

		if (k->type != N_SCALAR || is_secret_key(k->val)) {
			stop = i;
			break;
		}
		keys[i] = k->val;
	}
	/* a duplicate before the first stop key comes first */
	r = h2k_first_dup(keys, stop, &first, &second);
	free(keys);
	if (r < 0)
		return -1;
	if (r > 0) {
		const struct ynode *k = map->kids[2 * second];

		return h2k_seterr(H2K_EX_USAGE, "%s:%zu: key '%s%s%s': "
		    "duplicate (first on line %zu)", c->name, k->line,
		    prefix, prefix[0] ? "." : "", k->val,
		    map->kids[2 * first]->line);
	}
	if (stop < nk) {
		const struct ynode *k = map->kids[2 * stop];

		if (k->type != N_SCALAR)
			return h2k_seterr(H2K_EX_USAGE, "%s:%zu: %s%skey is %s, "
			    "not a name", c->name, k->line, prefix,
			    prefix[0] ? ": " : "", typename(k));
		return h2k_seterr(H2K_EX_USAGE, "%s:%zu: key '%s%s%s': "
		    "credentials are not allowed in a job (jobs run "
		    "with the runner's session file; see h2k-job(5))",
		    c->name, k->line, prefix, prefix[0] ? "." : "", k->val);
	}
	return 0;
}

/*
 * format: what the disks are written as (h2k-fetch --format); "ova", as in
 * hyper2kvm's jobs, is VMDKs packed in an OVA (the ova option).
 */
static int
get_format(const struct ctx *c, const struct ynode *n, const char *key,
    struct h2k_jobspec *j)
{
	static const char *const fmts[] = {"vmdk", "raw", "qcow2", "ova"};
	char *v = NULL;

	if (get_string(c, n, key, &v) < 0)
		return -1;
	for (size_t i = 0; i < sizeof fmts / sizeof fmts[0]; i++)
		if (!strcmp(v, fmts[i])) {
			free(v);
			j->format = fmts[i];
			return 0;
		}
	free(v);
	return bad(c, n, key, "expected vmdk, raw, qcow2 or ova");
}

static int
parse_options(const struct ctx *c, const struct ynode *n, const char *prefix,
    struct h2k_jobspec *j)
{
	char key[256];

	if (is_null(c, n))
		return 0;
	if (n->type != N_MAP)
		return h2k_seterr(H2K_EX_USAGE, "%s:%zu: key '%s': expected a "
		    "mapping, got %s", c->name, n->line, prefix, typename(n));
	if (check_keys(c, n, prefix) < 0)
		return -1;
	for (size_t i = 0; i + 1 < n->nkids; i += 2) {
		const char *k = n->kids[i]->val;
		const struct ynode *v = n->kids[i + 1];
		int r;

		snprintf(key, sizeof key, "%.100s.%.100s", prefix, k);
		if (!strcmp(k, "parallel_downloads"))
			r = get_int(c, v, key, 1, H2K_JOB_MAX_PARALLEL,
			    &j->parallel_downloads);
		else if (!strcmp(k, "remove_cdrom"))
			r = get_bool(c, v, key, &j->remove_cdrom);
		else if (!strcmp(k, "snapshot"))
			r = get_bool(c, v, key, &j->snapshot);
		else if (!strcmp(k, "shutdown"))
			r = get_bool(c, v, key, &j->shutdown);
		else if (!strcmp(k, "power_off"))
			r = get_bool(c, v, key, &j->power_off);
		else if (!strcmp(k, "ova")) {
			r = get_bool(c, v, key, &j->ova);
			j->ova_line = n->kids[i]->line;
		}
		else if (!strcmp(k, "overwrite"))
			r = get_bool(c, v, key, &j->overwrite);
		else if (!strcmp(k, "hyper2kvm_manifest"))
			r = get_bool(c, v, key, &j->hyper2kvm_manifest);
		else if (!strcmp(k, "hyper2kvm_watch_dir"))
			r = get_string(c, v, key, &j->hyper2kvm_watch_dir);
		else
			r = h2k_seterr(H2K_EX_USAGE, "%s:%zu: key '%s': unknown "
			    "option (known: parallel_downloads, remove_cdrom, "
			    "snapshot, shutdown, power_off, ova, overwrite, "
			    "hyper2kvm_manifest, hyper2kvm_watch_dir)", c->name,
			    n->kids[i]->line, key);
		if (r < 0)
			return -1;
	}
	if (j->snapshot + j->shutdown + j->power_off > 1)
		return h2k_seterr(H2K_EX_USAGE, "%s:%zu: key '%s': snapshot, "
		    "shutdown and power_off exclude each other", c->name,
		    n->line, prefix);
	return 0;
}

static void
spec_free(struct h2k_jobspec *j)
{
	free(j->name);
	free(j->vm_path);
	free(j->output_path);
	free(j->hyper2kvm_watch_dir);
	free(j->source);
	memset(j, 0, sizeof *j);
}

/* One job mapping; prefix is "" for a single job, "jobs[N]" in a batch. */
static int
parse_job(const struct ctx *c, const struct ynode *n, const char *prefix,
    struct h2k_jobspec *j)
{
	const struct ynode *vm = NULL, *out = NULL;
	char key[256];

	memset(j, 0, sizeof *j);
	if (n->type != N_MAP)
		return h2k_seterr(H2K_EX_USAGE, "%s:%zu: %s%sexpected a job "
		    "(a mapping), got %s", c->name, n->line, prefix,
		    prefix[0] ? ": " : "", typename(n));
	if (check_keys(c, n, prefix) < 0)
		return -1;
	for (size_t i = 0; i + 1 < n->nkids; i += 2) {
		const char *k = n->kids[i]->val;
		const struct ynode *v = n->kids[i + 1];
		int r;

		snprintf(key, sizeof key, "%.100s%s%.100s", prefix, prefix[0] ? "." : "",
		    k);
		if (!strcmp(k, "name"))
			r = get_string(c, v, key, &j->name);
		else if (!strcmp(k, "vm_path"))
			r = get_string(c, v, key, &j->vm_path), vm = v;
		else if (!strcmp(k, "output_path"))
			r = get_string(c, v, key, &j->output_path), out = v;
		else if (!strcmp(k, "options"))
			r = parse_options(c, v, key, j);
		else if (!strcmp(k, "format"))
			r = get_format(c, v, key, j);
		else if (!strcmp(k, "jobs") && prefix[0])
			r = h2k_seterr(H2K_EX_USAGE, "%s:%zu: key '%s': a batch "
			    "cannot be nested in a job", c->name,
			    n->kids[i]->line, key);
		else
			r = h2k_seterr(H2K_EX_USAGE, "%s:%zu: key '%s': unknown "
			    "key (known: name, vm_path, output_path, format, options)",
			    c->name, n->kids[i]->line, key);
		if (r < 0)
			goto fail;
	}
	if (!vm || !out) {
		h2k_seterr(H2K_EX_USAGE, "%s:%zu: key '%s%s%s': missing "
		    "(a job needs vm_path and output_path)", c->name, n->line,
		    prefix, prefix[0] ? "." : "", vm ? "output_path" : "vm_path");
		goto fail;
	}
	if (j->format && !strcmp(j->format, "ova") && j->ova_line && !j->ova) {
		/* one would be dropped without a word */
		h2k_seterr(H2K_EX_USAGE, "%s:%zu: key '%s%soptions.ova': false, "
		    "but format is ova (VMDKs in an OVA)", c->name, j->ova_line,
		    prefix, prefix[0] ? "." : "");
		goto fail;
	}
	if (!j->name) {
		/* hyper2kvm-providers' CLI submitted jobs without a name. */
		const char *b = strrchr(j->vm_path, '/');
		if (!(j->name = h2k_strdup(b && b[1] ? b + 1 : j->vm_path)))
			goto fail;
	}
	/*
	 * The file's name is the submitter's, any bytes: escaped (h2k.h), so
	 * the record stays valid UTF-8 and inert on a terminal.
	 */
	struct h2k_buf src = {0};
	if (h2k_buf_ttyesc(&src, c->name, strlen(c->name), 0) < 0 ||
	    h2k_buf_printf(&src, ":%zu", n->line) < 0) {
		h2k_buf_free(&src);
		goto fail;
	}
	j->source = src.data;
	return 0;
fail:
	spec_free(j);
	return -1;
}

/* Does buf look like JSON: first non-blank byte opens an object/array? */
static int
looks_json(const char *buf, size_t len)
{
	size_t i = 0;

	if (len >= 3 && !memcmp(buf, "\xef\xbb\xbf", 3))
		i = 3;
	for (; i < len; i++) {
		if (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' ||
		    buf[i] == '\n')
			continue;
		return buf[i] == '{' || buf[i] == '[';
	}
	return 0;
}

static size_t
line_of(const char *buf, size_t off)
{
	size_t line = 1;

	for (size_t i = 0; i < off; i++)
		if (buf[i] == '\n')
			line++;
	return line;
}

/*
 * The tree of a job file or request body: size, NUL bytes, JSON's own
 * syntax when it looks like JSON, then libyaml.  NULL + error.
 */
static struct ynode *
body_tree(struct ctx *c, const char *buf, size_t len)
{
	const char *name = c->name;

	if (len > H2K_JOB_MAX_FILE) {
		h2k_seterr(H2K_EX_USAGE, "%s: larger than %u bytes", name,
		    H2K_JOB_MAX_FILE);
		return NULL;
	}
	if (memchr(buf, '\0', len)) {
		h2k_seterr(H2K_EX_USAGE, "%s:%zu: NUL byte in job file",
		    name, line_of(buf, (size_t)((const char *)memchr(buf, '\0',
		    len) - buf)));
		return NULL;
	}
	if (looks_json(buf, len)) {
		const char *end = NULL;
		cJSON *j = cJSON_ParseWithLengthOpts(buf, len, &end, 0);

		if (!j) {
			const char *e = cJSON_GetErrorPtr();
			size_t off = e && e >= buf && e <= buf + len ?
			    (size_t)(e - buf) : 0;
			/* buf need not be NUL-terminated: bound the excerpt by len. */
			int ex = off < len ? (int)(len - off < 20 ? len - off : 20) : 11;
			/*
			 * Never quote what may be a credential: a value left
			 * unquoted after "password": is where cJSON stops.
			 */
			char win[128];
			size_t w0 = off > 96 ? off - 96 : 0;
			size_t w1 = off < len ? off + (size_t)ex : len;
			snprintf(win, sizeof win, "%.*s", (int)(w1 - w0), buf + w0);
			if (is_secret_key(win)) {
				h2k_seterr(H2K_EX_USAGE, "%s:%zu: JSON syntax "
				    "error near a credential key (not quoted)",
				    name, line_of(buf, off));
				return NULL;
			}
			h2k_seterr(H2K_EX_USAGE, "%s:%zu: JSON syntax "
			    "error near '%.*s'", name, line_of(buf, off), ex,
			    off < len ? buf + off : "end of file");
			return NULL;
		}
		cJSON_Delete(j);
		/* Trailing garbage after the value is not JSON. */
		for (const char *p = end; p && p < buf + len; p++)
			if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
				h2k_seterr(H2K_EX_USAGE, "%s:%zu: JSON "
				    "syntax error: text after the end",
				    name, line_of(buf, (size_t)(p - buf)));
				return NULL;
			}
		c->json = 1;
	}
	return yaml_tree(c, buf, len);
}

/*
 * The batch form {jobs: [...]} of a map root: *jobs is its list, or NULL
 * when root is a single job.  Nothing may stand beside 'jobs', and it
 * must be a list (h2k-job submit and the REST API judge it alike).
 */
static int
batch_jobs(struct ctx *c, const struct ynode *root, const struct ynode **jobs)
{
	*jobs = NULL;
	for (size_t i = 0; i + 1 < root->nkids; i += 2)
		if (root->kids[i]->type == N_SCALAR &&
		    !strcmp(root->kids[i]->val, "jobs"))
			*jobs = root->kids[i + 1];
	if (!*jobs)
		return 0;
	if (check_keys(c, root, "") < 0)
		return -1;
	for (size_t i = 0; i + 1 < root->nkids; i += 2)
		if (strcmp(root->kids[i]->val, "jobs")) {
			h2k_seterr(H2K_EX_USAGE, "%s:%zu: key '%s': unknown key "
			    "beside 'jobs' in a batch", c->name,
			    root->kids[i]->line, root->kids[i]->val);
			return -1;
		}
	if ((*jobs)->type != N_SEQ) {
		h2k_seterr(H2K_EX_USAGE, "%s:%zu: key 'jobs': expected a list, "
		    "got %s", c->name, (*jobs)->line, typename(*jobs));
		return -1;
	}
	return 0;
}

int
h2k_job_parse(const char *name, const char *buf, size_t len,
    struct h2k_joblist *out)
{
	struct ctx c = {.name = name};
	struct ynode *root;
	struct h2k_jobspec *v = NULL;
	size_t n = 0;
	int rc = -1;

	if (!(root = body_tree(&c, buf, len)))
		return -1;
	if (root->type != N_MAP) {
		h2k_seterr(H2K_EX_USAGE, "%s:%zu: expected a job or {jobs: "
		    "[...]}, got %s", name, root->line, typename(root));
		goto out;
	}
	const struct ynode *jobs;
	if (batch_jobs(&c, root, &jobs) < 0)
		goto out;
	if (jobs) {
		if (jobs->nkids == 0) {
			h2k_seterr(H2K_EX_USAGE, "%s:%zu: key 'jobs': empty "
			    "list", name, jobs->line);
			goto out;
		}
		if (!(v = h2k_calloc(jobs->nkids, sizeof *v)))
			goto out;
		for (; n < jobs->nkids; n++) {
			char pre[32];
			snprintf(pre, sizeof pre, "jobs[%zu]", n);
			if (parse_job(&c, jobs->kids[n], pre, &v[n]) < 0)
				goto out;
		}
	} else {
		if (!(v = h2k_calloc(1, sizeof *v)))
			goto out;
		if (parse_job(&c, root, "", &v[0]) < 0)
			goto out;
		n = 1;
	}
	struct h2k_jobspec *nv = h2k_realloc(out->v, (out->n + n) * sizeof *nv);
	if (!nv)
		goto out;
	out->v = nv;
	memcpy(out->v + out->n, v, n * sizeof *v);
	out->n += n;
	n = 0;
	rc = 0;
out:
	for (size_t i = 0; i < n; i++)
		spec_free(&v[i]);
	free(v);
	ynode_free(root);
	return rc;
}

/*
 * One job of a REST request: the product's own keys (id, output_dir,
 * vcenter) are taken off here and the rest - a job as a job file holds it -
 * is judged by parse_job, so that a request and `h2k-job submit FILE` agree.
 */
static int
parse_api_job(const struct ctx *c, const struct ynode *n, const char *prefix,
    struct h2k_apijob *a)
{
	struct ynode copy = {.type = N_MAP}, okey = {.type = N_SCALAR};
	const struct ynode *outdir = NULL, *outpath = NULL;
	char key[256];
	int rc = -1;

	if (n->type != N_MAP)
		return parse_job(c, n, prefix, &a->spec);
	copy.line = n->line;
	if (!(copy.kids = h2k_calloc(n->nkids ? n->nkids : 1,
	    sizeof *copy.kids)))
		return -1;
	for (size_t i = 0; i + 1 < n->nkids; i += 2) {
		const struct ynode *k = n->kids[i], *v = n->kids[i + 1];
		const char *kv = k->type == N_SCALAR ? k->val : "";

		snprintf(key, sizeof key, "%.100s%s%.100s", prefix,
		    prefix[0] ? "." : "", kv);
		if ((!strcmp(kv, "id") && a->id) ||
		    (!strcmp(kv, "vcenter") && a->vcenter)) {
			bad(c, k, key, "duplicate");
			goto out;
		}
		if (!strcmp(kv, "id")) {
			if (get_string(c, v, key, &a->id) < 0)
				goto out;
			if (strlen(a->id) >= 96 || a->id[0] == '.' ||
			    strspn(a->id, "abcdefghijklmnopqrstuvwxyz"
			    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") !=
			    strlen(a->id)) {
				bad(c, v, key, "an id is 1 to 95 of A-Z a-z 0-9 "
				    ". _ - and does not start with '.'");
				goto out;
			}
			continue;
		}
		if (!strcmp(kv, "vcenter")) {
			if (is_null(c, v))
				continue;
			if (v->type != N_MAP) {
				h2k_seterr(H2K_EX_USAGE, "%s:%zu: key '%s': "
				    "expected a mapping, got %s", c->name,
				    v->line, key, typename(v));
				goto out;
			}
			/*
			 * Only the server is kept, to be compared with the
			 * runner's; username and password are dropped here,
			 * never stored nor echoed.
			 */
			for (size_t m = 0; m + 1 < v->nkids; m += 2) {
				const struct ynode *vk = v->kids[m];
				const char *s = vk->type == N_SCALAR ? vk->val : "";
				char sub[300];
				int dummy;

				snprintf(sub, sizeof sub, "%s.%.40s", key, s);
				if (!strcmp(s, "server")) {
					if (get_string(c, v->kids[m + 1], sub,
					    &a->vcenter) < 0)
						goto out;
				} else if (!strcmp(s, "insecure")) {
					if (get_bool(c, v->kids[m + 1], sub,
					    &dummy) < 0)
						goto out;
				} else if (strcmp(s, "username") &&
				    strcmp(s, "password")) {
					h2k_seterr(H2K_EX_USAGE, "%s:%zu: key "
					    "'%s': unknown key (known: server, "
					    "username, password, insecure)",
					    c->name, vk->line, sub);
					goto out;
				}
			}
			if (!a->vcenter) {
				bad(c, v, key, "has no 'server'");
				goto out;
			}
			continue;
		}
		if (!strcmp(kv, "output_dir")) {
			outdir = v;
			okey.line = k->line;
			okey.val = "output_path";
			copy.kids[copy.nkids++] = &okey;
		} else {
			if (!strcmp(kv, "output_path"))
				outpath = v;
			copy.kids[copy.nkids++] = (struct ynode *)k;
		}
		copy.kids[copy.nkids++] = (struct ynode *)v;
	}
	if (outdir && outpath) {
		/* The product takes either; both is a mistake. */
		if (outdir->type != N_SCALAR || outpath->type != N_SCALAR ||
		    strcmp(outdir->val, outpath->val)) {
			h2k_seterr(H2K_EX_USAGE, "%s:%zu: %s%soutput_path and "
			    "output_dir differ (give one)", c->name, n->line,
			    prefix, prefix[0] ? ": " : "");
			goto out;
		}
		/* the same: keep one */
		for (size_t i = 0; i + 1 < copy.nkids; i += 2)
			if (copy.kids[i] == &okey) {
				memmove(copy.kids + i, copy.kids + i + 2,
				    (copy.nkids - i - 2) * sizeof *copy.kids);
				copy.nkids -= 2;
				break;
			}
	}
	rc = parse_job(c, &copy, prefix, &a->spec);
out:
	free(copy.kids);
	return rc;
}

static void
apijob_free(struct h2k_apijob *a)
{
	spec_free(&a->spec);
	free(a->id);
	free(a->vcenter);
	free(a->err);
	memset(a, 0, sizeof *a);
}

void
h2k_apijobs_free(struct h2k_apijobs *l)
{
	for (size_t i = 0; i < l->n; i++)
		apijob_free(&l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

int
h2k_job_parse_api(const char *name, const char *buf, size_t len,
    size_t max, struct h2k_apijobs *out)
{
	struct ctx c = {.name = name};
	const struct ynode *jobs = NULL, *root;
	struct ynode *tree;
	size_t n;

	memset(out, 0, sizeof *out);
	if (!(tree = body_tree(&c, buf, len)))
		return -1;
	root = tree;
	if (root->type == N_MAP) {
		if (batch_jobs(&c, root, &jobs) < 0)
			goto fail;
	} else if (root->type == N_SEQ)
		jobs = root;
	else {
		h2k_seterr(H2K_EX_USAGE, "%s:%zu: expected a job, {jobs: "
		    "[...]} or a list of jobs, got %s", name, root->line,
		    typename(root));
		goto fail;
	}
	n = jobs ? jobs->nkids : 1;
	if (n == 0) {
		h2k_seterr(H2K_EX_USAGE, "%s:%zu: no job in the list", name,
		    jobs->line);
		goto fail;
	}
	if (n > max) {
		h2k_seterr(H2K_EX_USAGE, "%s: %zu jobs, more than %zu in one "
		    "request", name, n, max);
		goto fail;
	}
	if (!(out->v = h2k_calloc(n, sizeof *out->v)))
		goto fail;
	for (size_t i = 0; i < n; i++) {
		char pre[32] = "";
		struct h2k_apijob *a = &out->v[i];

		if (jobs)
			snprintf(pre, sizeof pre, "jobs[%zu]", i);
		out->n++;
		if (parse_api_job(&c, jobs ? jobs->kids[i] : root, pre, a) < 0) {
			char *e = h2k_strdup(h2k_errmsg());
			if (!e)
				goto fail;
			spec_free(&a->spec);
			a->err = e;
		}
	}
	ynode_free(tree);
	return 0;
fail:
	ynode_free(tree);
	h2k_apijobs_free(out);
	return -1;
}

int
h2k_job_load(const char *path, struct h2k_joblist *out)
{
	struct h2k_buf b = {.max = H2K_JOB_MAX_FILE + 1};
	const char *name = strcmp(path, "-") ? path : "stdin";
	int fd, rc;

	if (!strcmp(path, "-"))
		fd = STDIN_FILENO;
	else if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return h2k_seterr(errno == ENOENT ? H2K_EX_NOTFOUND : H2K_EX_IO,
		    "%s: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		close(fd);
		return h2k_seterr(H2K_EX_USAGE, "%s: is a directory", path);
	}
	if (h2k_buf_readfd(&b, fd) < 0) {
		int e = errno;
		if (fd != STDIN_FILENO)
			close(fd);
		h2k_buf_free(&b);
		/* ENOMEM was reported as the size too: the file is the cause */
		if (e == EFBIG || e == ENOMEM)
			return h2k_seterr(H2K_EX_USAGE, "%s: larger than %u "
			    "bytes", name, H2K_JOB_MAX_FILE);
		return h2k_seterr(H2K_EX_IO, "%s: %s", name, strerror(e));
	}
	if (fd != STDIN_FILENO)
		close(fd);
	rc = h2k_job_parse(name, b.data ? b.data : "", b.len, out);
	h2k_buf_free(&b);
	return rc;
}

int
h2k_job_resolve(struct h2k_joblist *l)
{
	char cwd[PATH_MAX];
	int have = 0;

	for (size_t i = 0; i < 2 * l->n; i++) {
		char **pp = i % 2 ? &l->v[i / 2].hyper2kvm_watch_dir :
		    &l->v[i / 2].output_path, *p = *pp;
		if (!p || p[0] == '/')
			continue;
		if (!have && !getcwd(cwd, sizeof cwd))
			return h2k_seterr(H2K_EX_IO, "getcwd: %s",
			    strerror(errno));
		have = 1;
		if (h2k_utf8_bad(cwd, strlen(cwd)))
			return h2k_seterr(H2K_EX_USAGE, "%s '%s': the "
			    "current directory %s is not valid UTF-8, which a "
			    "job record cannot carry", i % 2 ?
			    "hyper2kvm_watch_dir" : "output_path", p, cwd);
		char *a = h2k_asprintf("%s/%s", strcmp(cwd, "/") ? cwd : "", p);
		if (!a)
			return -1;
		free(p);
		*pp = a;
	}
	return 0;
}

void
h2k_joblist_free(struct h2k_joblist *l)
{
	for (size_t i = 0; i < l->n; i++)
		spec_free(&l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* --- status records ----------------------------------------------------- */

const char *const h2k_job_statuses[5] = {"pending", "running", "completed",
    "failed", "cancelled"};

int
h2k_job_status_valid(const char *s)
{
	for (int i = 0; s && i < 5; i++)
		if (!strcmp(s, h2k_job_statuses[i]))
			return 1;
	return 0;
}

int
h2k_job_status_final(const char *s)
{
	return s && (!strcmp(s, "completed") || !strcmp(s, "failed") ||
	    !strcmp(s, "cancelled"));
}

/* rec[key] = v, in place when the key is there (its order kept). */
static int
set_item(cJSON *rec, const char *key, cJSON *v)
{
	if (!v)
		return h2k_seterr(H2K_EX_FAIL, "out of memory");
	if (cJSON_GetObjectItemCaseSensitive(rec, key))
		cJSON_ReplaceItemInObjectCaseSensitive(rec, key, v);
	else
		cJSON_AddItemToObject(rec, key, v);
	return 0;
}

int
h2k_job_set_str(cJSON *rec, const char *key, const char *val)
{
	return set_item(rec, key, val ? cJSON_CreateString(val) :
	    cJSON_CreateNull());
}

int
h2k_job_set_num(cJSON *rec, const char *key, double val)
{
	return set_item(rec, key, cJSON_CreateNumber(val));
}

int
h2k_job_set_status(cJSON *rec, const char *status)
{
	char now[32];

	if (h2k_job_set_str(rec, "status", status) < 0)
		return -1;
	if (h2k_job_status_final(status))
		return h2k_job_set_str(rec, "finished_at", h2k_now_rfc3339(now));
	return 0;
}

cJSON *
h2k_job_record_new(const struct h2k_jobspec *s, const char *id)
{
	cJSON *r = cJSON_CreateObject(), *o, *p;
	char now[32];
	int ova = s->format && !strcmp(s->format, "ova");

	if (!r)
		goto nomem;
	h2k_now_rfc3339(now);
	if (!cJSON_AddStringToObject(r, "id", id) ||
	    !cJSON_AddStringToObject(r, "name", s->name) ||
	    !cJSON_AddStringToObject(r, "status", "pending") ||
	    !cJSON_AddStringToObject(r, "vm_path", s->vm_path) ||
	    !cJSON_AddStringToObject(r, "output_path", s->output_path) ||
	    !(o = cJSON_AddObjectToObject(r, "options")))
		goto nomem;
	if (s->parallel_downloads &&
	    !cJSON_AddNumberToObject(o, "parallel_downloads",
	    s->parallel_downloads))
		goto nomem;
	if (!cJSON_AddBoolToObject(o, "remove_cdrom", s->remove_cdrom) ||
	    !cJSON_AddBoolToObject(o, "snapshot", s->snapshot) ||
	    !cJSON_AddBoolToObject(o, "shutdown", s->shutdown) ||
	    !cJSON_AddBoolToObject(o, "power_off", s->power_off) ||
	    !cJSON_AddBoolToObject(o, "ova", s->ova || ova) ||
	    (s->overwrite && !cJSON_AddBoolToObject(o, "overwrite", 1)) ||
	    (s->format && !ova &&
	    !cJSON_AddStringToObject(o, "format", s->format)) ||
	    (s->hyper2kvm_manifest && !cJSON_AddBoolToObject(o,
	    "hyper2kvm_manifest", 1)) ||
	    (s->hyper2kvm_watch_dir && !cJSON_AddStringToObject(o,
	    "hyper2kvm_watch_dir", s->hyper2kvm_watch_dir)) ||
	    !(p = cJSON_AddObjectToObject(r, "progress")) ||
	    !cJSON_AddStringToObject(p, "phase", "queued") ||
	    !cJSON_AddNumberToObject(p, "percent_complete", 0) ||
	    !cJSON_AddNumberToObject(p, "bytes_done", 0) ||
	    !cJSON_AddNumberToObject(p, "bytes_total", 0) ||
	    !cJSON_AddNullToObject(r, "result") ||
	    !cJSON_AddNullToObject(r, "error") ||
	    !cJSON_AddStringToObject(r, "created_at", now) ||
	    !cJSON_AddNullToObject(r, "started_at") ||
	    !cJSON_AddNullToObject(r, "finished_at") ||
	    !cJSON_AddNumberToObject(r, "attempts", 0) ||
	    (s->source && !cJSON_AddStringToObject(r, "source", s->source)))
		goto nomem;
	return r;
nomem:
	cJSON_Delete(r);
	h2k_seterr(H2K_EX_FAIL, "out of memory");
	return NULL;
}

/* v is a whole number in [lo, hi] (range first: the cast needs it). */
static int
is_int(const cJSON *v, double lo, double hi)
{
	return cJSON_IsNumber(v) && v->valuedouble >= lo &&
	    v->valuedouble <= hi &&
	    v->valuedouble == (double)(long long)v->valuedouble;
}

/* An optional field: absent, or of the type ok() accepts. */
/* what h2k-fetch --format takes: a record goes to its argv */
static int
is_format(const cJSON *v)
{
	return cJSON_IsString(v) && (!strcmp(v->valuestring, "vmdk") ||
	    !strcmp(v->valuestring, "raw") || !strcmp(v->valuestring, "qcow2"));
}

#define OPT(rec, key, ok) \
	(!cJSON_GetObjectItemCaseSensitive((rec), (key)) || \
	    (ok)(cJSON_GetObjectItemCaseSensitive((rec), (key))))

static int
str_or_null(const cJSON *v)
{
	return cJSON_IsString(v) || cJSON_IsNull(v);
}

static int
obj_or_null(const cJSON *v)
{
	return cJSON_IsObject(v) || cJSON_IsNull(v);
}

static int
is_bool(const cJSON *v)
{
	return cJSON_IsBool(v);
}

static int
is_str(const cJSON *v)
{
	return cJSON_IsString(v);
}

static int
is_count(const cJSON *v)
{
	return is_int(v, 0, 9007199254740992.0);
}

static int
is_parallel(const cJSON *v)
{
	return is_int(v, 1, H2K_JOB_MAX_PARALLEL);
}

static int
is_pid(const cJSON *v)
{
	return is_int(v, 2, H2K_JOB_PID_MAX);
}

static int
is_percent(const cJSON *v)
{
	return cJSON_IsNumber(v) && v->valuedouble >= 0 &&
	    v->valuedouble <= 100;
}

static int
is_bootid(const cJSON *v)
{
	const char *s = cJSON_GetStringValue(v);

	if (!s || strlen(s) != 36)
		return 0;
	for (int i = 0; i < 36; i++)
		if ((i == 8 || i == 13 || i == 18 || i == 23) ? s[i] != '-' :
		    !strchr("0123456789abcdef", s[i]))
			return 0;
	return 1;
}

static int
is_pidns(const cJSON *v)
{
	const char *s = cJSON_GetStringValue(v);

	return s && s[0] && strlen(s) < 64;
}

static int
is_procs(const cJSON *v)
{
	const cJSON *e;

	if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) > H2K_JOB_MAX_PROCS)
		return 0;
	cJSON_ArrayForEach(e, v)
		if (!cJSON_IsObject(e) || !is_pid(
		    cJSON_GetObjectItemCaseSensitive(e, "pid")) || !is_count(
		    cJSON_GetObjectItemCaseSensitive(e, "start")))
			return 0;
	return 1;
}

int
h2k_job_record_check(const cJSON *rec, const char *id)
{
	static const char *strs[] = {"id", "status", "vm_path", "output_path",
	    "name", "created_at"};
	static const char *bools[] = {"remove_cdrom", "snapshot", "shutdown",
	    "power_off", "ova", "hyper2kvm_manifest"};
	static const char *nums[] = {"bytes_done", "bytes_total"};
	const cJSON *a, *o;

	if (!cJSON_IsObject(rec))
		return h2k_seterr(H2K_EX_FAIL, "record is not a JSON object");
	for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, strs[i]);
		if (!cJSON_IsString(v) || !v->valuestring[0])
			return h2k_seterr(H2K_EX_FAIL, "record field '%s' "
			    "missing or not a string", strs[i]);
	}
	const char *rid = cJSON_GetObjectItemCaseSensitive(rec, "id")->valuestring;
	if (id && strcmp(rid, id))
		return h2k_seterr(H2K_EX_FAIL, "record id '%.64s' does not "
		    "match its file name", rid);
	if (!h2k_job_status_valid(cJSON_GetObjectItemCaseSensitive(rec,
	    "status")->valuestring))
		return h2k_seterr(H2K_EX_FAIL, "record status is not one of "
		    "pending, running, completed, failed, cancelled");
	if (cJSON_GetObjectItemCaseSensitive(rec, "output_path")->valuestring[0]
	    != '/')
		return h2k_seterr(H2K_EX_FAIL, "record output_path is not "
		    "absolute");
	o = cJSON_GetObjectItemCaseSensitive(rec, "options");
	if (!cJSON_IsObject(o))
		return h2k_seterr(H2K_EX_FAIL, "record field 'options' missing "
		    "or not an object");
	if (!OPT(o, "parallel_downloads", is_parallel))
		return h2k_seterr(H2K_EX_FAIL, "record field "
		    "'options.parallel_downloads' is not a whole number from 1 "
		    "to %d", H2K_JOB_MAX_PARALLEL);
	for (size_t i = 0; i < sizeof bools / sizeof bools[0]; i++)
		if (!OPT(o, bools[i], is_bool))
			return h2k_seterr(H2K_EX_FAIL, "record field "
			    "'options.%s' is not true or false", bools[i]);
	if (!OPT(o, "format", is_format))
		return h2k_seterr(H2K_EX_FAIL, "record field 'options.format' "
		    "is not vmdk, raw or qcow2");
	/* the runner passes it to h2k-ovf --deliver: an absolute path */
	a = cJSON_GetObjectItemCaseSensitive(o, "hyper2kvm_watch_dir");
	if (a && (!cJSON_IsString(a) || a->valuestring[0] != '/'))
		return h2k_seterr(H2K_EX_FAIL, "record field "
		    "'options.hyper2kvm_watch_dir' is not an absolute path");
	a = cJSON_GetObjectItemCaseSensitive(rec, "attempts");
	if (!is_int(a, 0, 1e6))
		return h2k_seterr(H2K_EX_FAIL, "record field 'attempts' missing "
		    "or not a count");
	/*
	 * The rest is optional, but what is there must have its type: the
	 * process fields above all, which cancel turns into kill(2) calls.
	 */
	if (!OPT(rec, "runner_pid", is_pid))
		return h2k_seterr(H2K_EX_FAIL, "record field 'runner_pid' is "
		    "not a process id (a whole number from 2 to %d)",
		    H2K_JOB_PID_MAX);
	if (!OPT(rec, "pgid", is_pid))
		return h2k_seterr(H2K_EX_FAIL, "record field 'pgid' is not a "
		    "process group id (a whole number from 2 to %d)",
		    H2K_JOB_PID_MAX);
	if (!OPT(rec, "boot_id", is_bootid))
		return h2k_seterr(H2K_EX_FAIL, "record field 'boot_id' is not "
		    "a boot id");
	if (!OPT(rec, "pidns", is_pidns))
		return h2k_seterr(H2K_EX_FAIL, "record field 'pidns' is not "
		    "a PID namespace name");
	if (!OPT(rec, "procs", is_procs))
		return h2k_seterr(H2K_EX_FAIL, "record field 'procs' is not a "
		    "list of at most %d {pid, start}", H2K_JOB_MAX_PROCS);
	if (!OPT(rec, "source", is_str) || !OPT(rec, "error", str_or_null) ||
	    !OPT(rec, "started_at", str_or_null) ||
	    !OPT(rec, "finished_at", str_or_null))
		return h2k_seterr(H2K_EX_FAIL, "record field 'source', 'error', "
		    "'started_at' or 'finished_at' is not a string or null");
	if (!OPT(rec, "result", obj_or_null))
		return h2k_seterr(H2K_EX_FAIL, "record field 'result' is not an "
		    "object or null");
	if ((o = cJSON_GetObjectItemCaseSensitive(rec, "lease"))) {
		if (!cJSON_IsObject(o) || !OPT(o, "moref", is_str) ||
		    !OPT(o, "snapshot", str_or_null))
			return h2k_seterr(H2K_EX_FAIL, "record field 'lease' is "
			    "not an object of strings");
	}
	if ((o = cJSON_GetObjectItemCaseSensitive(rec, "progress"))) {
		if (!cJSON_IsObject(o) || !OPT(o, "phase", is_str) ||
		    !OPT(o, "percent_complete", is_percent))
			return h2k_seterr(H2K_EX_FAIL, "record field 'progress' "
			    "is not a progress object");
		for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
			a = cJSON_GetObjectItemCaseSensitive(o, nums[i]);
			if (a && !(cJSON_IsNumber(a) && a->valuedouble >= 0 &&
			    a->valuedouble <= 1e18))
				return h2k_seterr(H2K_EX_FAIL, "record field "
				    "'progress.%s' is not a byte count",
				    nums[i]);
		}
	}
	return 0;
}

/* --- the job's processes -------------------------------------------------- */

int
h2k_proc_stat_parse(const char *buf, unsigned long long *start, pid_t *pgrp)
{
	unsigned long long v[19];
	const char *p;

	/* comm may hold anything, ')' and spaces too: fields follow the last ')'. */
	if (!(p = strrchr(buf, ')')) || p[1] != ' ' || !p[2] || p[3] != ' ')
		return h2k_seterr(H2K_EX_FAIL, "unexpected format");
	p += 4; /* past ") S ": field 4 (ppid) on */
	/* fields 4 (ppid) to 22 (starttime) */
	for (int k = 0; k < 19; k++) {
		char *end;
		while (*p == ' ')
			p++;
		if (*p < '0' || *p > '9') {
			/* only tpgid, priority, nice (8, 18, 19) may be < 0 */
			if (*p != '-' || (k != 4 && k != 14 && k != 15))
				return h2k_seterr(H2K_EX_FAIL,
				    "unexpected format");
		}
		errno = 0;
		v[k] = strtoull(p, &end, 10);
		if (end == p || errno || (*end != ' ' && *end != '\0' &&
		    *end != '\n'))
			return h2k_seterr(H2K_EX_FAIL, "unexpected format");
		p = end;
	}
	if (v[1] < 1 || v[1] > H2K_JOB_PID_MAX)
		return h2k_seterr(H2K_EX_FAIL, "unexpected format");
	if (pgrp)
		*pgrp = (pid_t)v[1];
	if (start)
		*start = v[18];
	return 0;
}

int
h2k_proc_stat(pid_t pid, unsigned long long *start, pid_t *pgrp)
{
	char path[32], buf[1024];
	ssize_t n;
	int fd;

	if (pid <= 0)
		return h2k_seterr(H2K_EX_NOTFOUND, "no process %d", (int)pid);
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return h2k_seterr(H2K_EX_NOTFOUND, "%s: %s", path,
		    strerror(errno));
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return h2k_seterr(H2K_EX_NOTFOUND, "%s: cannot read", path);
	buf[n] = '\0';
	if (h2k_proc_stat_parse(buf, start, pgrp) < 0)
		return h2k_seterr(H2K_EX_FAIL, "%s: unexpected format", path);
	return 0;
}

int
h2k_boot_id(char out[37])
{
	int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return h2k_seterr(H2K_EX_FAIL, "/proc/sys/kernel/random/boot_id: "
		    "%s", strerror(errno));
	n = read(fd, out, 36);
	close(fd);
	if (n != 36)
		return h2k_seterr(H2K_EX_FAIL, "/proc/sys/kernel/random/boot_id: "
		    "short read");
	out[36] = '\0';
	return 0;
}

/* "pid:[4026531836]": which numbering the pids in a record are in. */
static int
pidns(char out[64])
{
	ssize_t n = readlink("/proc/self/ns/pid", out, 63);

	if (n <= 0)
		return h2k_seterr(H2K_EX_FAIL, "/proc/self/ns/pid: %s",
		    n < 0 ? strerror(errno) : "empty");
	out[n] = '\0';
	return 0;
}

int
h2k_job_set_procs(cJSON *rec, pid_t pgid, const pid_t *pids, int n)
{
	char boot[37], ns[64];
	cJSON *arr;

	if (h2k_boot_id(boot) < 0 || pidns(ns) < 0)
		return -1;
	if (!(arr = cJSON_CreateArray()))
		return h2k_seterr(H2K_EX_FAIL, "out of memory");
	for (int i = 0; i < n && i < H2K_JOB_MAX_PROCS; i++) {
		unsigned long long st;
		pid_t pg;
		cJSON *e;
		/* Unreaped, a stage that already exited still has its stat. */
		if (h2k_proc_stat(pids[i], &st, &pg) < 0 || pg != pgid)
			continue;
		if (!(e = cJSON_CreateObject()) ||
		    !cJSON_AddNumberToObject(e, "pid", pids[i]) ||
		    !cJSON_AddNumberToObject(e, "start", (double)st)) {
			cJSON_Delete(e);
			cJSON_Delete(arr);
			return h2k_seterr(H2K_EX_FAIL, "out of memory");
		}
		cJSON_AddItemToArray(arr, e);
	}
	cJSON_DeleteItemFromObjectCaseSensitive(rec, "procs");
	cJSON_AddItemToObject(rec, "procs", arr);
	if (h2k_job_set_num(rec, "pgid", pgid) < 0 ||
	    h2k_job_set_str(rec, "boot_id", boot) < 0 ||
	    h2k_job_set_str(rec, "pidns", ns) < 0)
		return -1;
	return 0;
}

void
h2k_job_clear_procs(cJSON *rec)
{
	static const char *keys[] = {"runner_pid", "pgid", "boot_id", "pidns",
	    "procs"};

	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		cJSON_DeleteItemFromObjectCaseSensitive(rec, keys[i]);
}

pid_t
h2k_job_group(const cJSON *rec)
{
	const cJSON *pg = cJSON_GetObjectItemCaseSensitive(rec, "pgid");
	const cJSON *e;
	char boot[37], ns[64];

	if (!is_pid(pg))
		return h2k_seterr(H2K_EX_STATE, "record has no process group");
	pid_t pgid = (pid_t)pg->valuedouble;
	if (!is_bootid(cJSON_GetObjectItemCaseSensitive(rec, "boot_id")) ||
	    !is_pidns(cJSON_GetObjectItemCaseSensitive(rec, "pidns")) ||
	    !is_procs(cJSON_GetObjectItemCaseSensitive(rec, "procs")))
		return h2k_seterr(H2K_EX_STATE, "process group %d: the record "
		    "does not say which processes are the job's", (int)pgid);
	if (h2k_boot_id(boot) < 0 || pidns(ns) < 0)
		return -1;
	if (strcmp(boot, cJSON_GetStringValue(
	    cJSON_GetObjectItemCaseSensitive(rec, "boot_id"))))
		return h2k_seterr(H2K_EX_STATE, "process group %d is from an "
		    "earlier boot", (int)pgid);
	if (strcmp(ns, cJSON_GetStringValue(
	    cJSON_GetObjectItemCaseSensitive(rec, "pidns"))))
		return h2k_seterr(H2K_EX_STATE, "process group %d is in another "
		    "PID namespace", (int)pgid);
	/*
	 * The group is the job's if one of the job's own processes - same
	 * pid, same start time - is still in it: while it lives, neither its
	 * pid nor the group id can be handed out again.
	 */
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(rec, "procs")) {
		pid_t pid = (pid_t)cJSON_GetNumberValue(
		    cJSON_GetObjectItemCaseSensitive(e, "pid")), pgrp;
		unsigned long long st;
		if (h2k_proc_stat(pid, &st, &pgrp) == 0 && pgrp == pgid &&
		    (double)st == cJSON_GetNumberValue(
		    cJSON_GetObjectItemCaseSensitive(e, "start")))
			return pgid;
	}
	return h2k_seterr(H2K_EX_STATE, "process group %d: none of the job's "
	    "processes is left in it", (int)pgid);
}

/* --- the stages' environment ---------------------------------------------- */

/*
 * The stages run with the session file only: none of them logs in (the
 * runner does, with h2k-login, which keeps the full environment).  So a
 * stage gets what any program needs, h2k's own settings, and nothing that
 * may hold a credential - whatever else the runner inherited.
 */
static int
env_secret(const char *name, size_t n)
{
	static const char *const deny[] = {"H2K_PASSWORD", "H2K_URL",
	    "CREDENTIALS_DIRECTORY"};

	if (n >= 5 && !strncmp(name, "GOVC_", 5))
		return 1;
	for (size_t i = 0; i < sizeof deny / sizeof deny[0]; i++)
		if (strlen(deny[i]) == n && !strncmp(name, deny[i], n))
			return 1;
	return 0;
}

static int
in_list(const char *name, size_t n, const char *list)
{
	while (list && *list) {
		size_t k = strcspn(list, " ,\t");
		if (k == n && !strncmp(list, name, n))
			return 1;
		list += k;
		list += strspn(list, " ,\t");
	}
	return 0;
}

int
h2k_job_env_keep(const char *entry, const char *extra)
{
	static const char *const allow[] = {"PATH", "HOME", "USER", "LOGNAME",
	    "LANG", "LANGUAGE", "TZ", "TMPDIR", "LOG_LEVEL", "XDG_STATE_HOME",
	    "XDG_CONFIG_HOME", "XDG_RUNTIME_DIR", "SSL_CERT_FILE",
	    "SSL_CERT_DIR", "LD_LIBRARY_PATH", "ASAN_OPTIONS", "UBSAN_OPTIONS",
	    "LSAN_OPTIONS"};
	const char *eq = strchr(entry, '=');
	size_t n;

	if (!eq || eq == entry)
		return 0;
	n = (size_t)(eq - entry);
	if (env_secret(entry, n))
		return 0;
	if ((n >= 4 && !strncmp(entry, "H2K_", 4)) ||
	    (n >= 3 && !strncmp(entry, "LC_", 3)))
		return 1;
	for (size_t i = 0; i < sizeof allow / sizeof allow[0]; i++)
		if (strlen(allow[i]) == n && !strncmp(entry, allow[i], n))
			return 1;
	return in_list(entry, n, extra);
}
