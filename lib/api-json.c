/*
 * api-json.c - the JSON shapes of hyper2kvm-providers' REST API, built from
 * spool records (h2k-job(5)) for `h2k-job serve`.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * The product's Go clients decode these strictly: times are RFC 3339
 * strings (a number there makes them fail), durations int64 nanoseconds,
 * counts integers.  cJSON prints a double above 2^31 with %1.15g, which
 * turns a large count into "1.2e+15"; integers therefore go out as raw
 * decimal text.  A record carries no credential (job.c refuses them on
 * the way in), so nothing here needs filtering: every field is chosen.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api.h"
#include "h2k.h"
#include "job.h"
#include "jsonl.h"

int
h2k_api_parse_time(const char *s, time_t *t)
{
	struct tm tm;
	const char *e;

	if (!s)
		return -1;
	memset(&tm, 0, sizeof tm);
	if (!(e = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm)) || *e)
		return -1;
	*t = timegm(&tm);
	return 0;
}

/* Go's Duration.String: "0s", "1.5µs", "350ms", "4.031176186s", "1h2m3s". */
void
h2k_api_go_duration(int64_t ns, char *buf, size_t n)
{
	uint64_t u = ns < 0 ? (uint64_t)0 - (uint64_t)ns : (uint64_t)ns;
	const char *sign = ns < 0 ? "-" : "";
	char frac[16] = "";

	if (u == 0) {
		snprintf(buf, n, "0s");
		return;
	}
	if (u < 1000000000u) {
		/* sub-second: ns, µs or ms with a fraction, as Go prints */
		const char *unit = "ns";
		uint64_t div = 1;
		if (u >= 1000000u)
			unit = "ms", div = 1000000u;
		else if (u >= 1000u)
			unit = "\xc2\xb5s", div = 1000u;
		uint64_t whole = u / div, rest = u % div;
		if (rest) {
			int w = div == 1000000u ? 6 : 3;
			snprintf(frac, sizeof frac, ".%0*" PRIu64, w, rest);
			for (size_t k = strlen(frac); k > 1 && frac[k - 1] == '0'; k--)
				frac[k - 1] = '\0';
		}
		snprintf(buf, n, "%s%" PRIu64 "%s%s", sign, whole, frac, unit);
		return;
	}
	uint64_t s = u / 1000000000u, f = u % 1000000000u;
	if (f) {
		snprintf(frac, sizeof frac, ".%09" PRIu64, f);
		for (size_t k = strlen(frac); k > 1 && frac[k - 1] == '0'; k--)
			frac[k - 1] = '\0';
	}
	if (s >= 3600)
		snprintf(buf, n, "%s%" PRIu64 "h%" PRIu64 "m%" PRIu64 "%ss", sign,
		    s / 3600, s / 60 % 60, s % 60, frac);
	else if (s >= 60)
		snprintf(buf, n, "%s%" PRIu64 "m%" PRIu64 "%ss", sign, s / 60,
		    s % 60, frac);
	else
		snprintf(buf, n, "%s%" PRIu64 "%ss", sign, s, frac);
}

/* An exact integer (see the top); values outside int64 are clamped. */
static int
add_int(cJSON *o, const char *key, double v)
{
	char b[32];

	if (!(v == v) || v < 0)
		v = 0;
	if (v > 9.2e18)
		v = 9.2e18;
	snprintf(b, sizeof b, "%" PRId64, (int64_t)v);
	return cJSON_AddRawToObject(o, key, b) ? 0 : -1;
}

static int
add_str(cJSON *o, const char *key, const char *v)
{
	return cJSON_AddStringToObject(o, key, v ? v : "") ? 0 : -1;
}

/* A time field when the record has a valid one; omitted otherwise. */
static int
add_time(cJSON *o, const char *key, const char *v)
{
	time_t t;

	if (h2k_api_parse_time(v, &t) < 0)
		return 0;
	return cJSON_AddStringToObject(o, key, v) ? 0 : -1;
}

static double
num(const cJSON *o, const char *key)
{
	return h2k_json_num(o, key, 0);
}

static const cJSON *
item(const cJSON *o, const char *key)
{
	return cJSON_GetObjectItemCaseSensitive(o, key);
}

/* Files of a completed job: result.files (the runner's make_result). */
static size_t
nfiles(const cJSON *rec)
{
	const cJSON *f = item(item(rec, "result"), "files");

	return cJSON_IsArray(f) ? (size_t)cJSON_GetArraySize(f) : 0;
}

cJSON *
h2k_api_progress(const cJSON *rec)
{
	const cJSON *p = item(rec, "progress");
	const char *st = h2k_json_str(rec, "status");
	const char *phase = h2k_json_str(p, "phase");
	double done = num(p, "bytes_done"), total = num(p, "bytes_total");
	double pct = num(p, "percent_complete"), eta = 0;
	int completed = st && !strcmp(st, "completed");
	size_t nf = nfiles(rec);
	time_t t0;
	cJSON *o = cJSON_CreateObject();

	if (!o)
		return NULL;
	if (!phase)
		phase = st ? st : "";
	if (!(pct >= 0))
		pct = 0;
	if (pct > 100)
		pct = 100;
	/*
	 * Remaining time from the rate so far, for a running job past its
	 * first percent; 0 when unknown or over.
	 */
	if (st && !strcmp(st, "running") && pct >= 1 && pct < 100 &&
	    h2k_api_parse_time(h2k_json_str(rec, "started_at"), &t0) == 0) {
		double el = difftime(time(NULL), t0);
		if (el > 0)
			eta = el * (100 - pct) / pct * 1e9;
	}
	if (add_str(o, "phase", phase) < 0 ||
	    add_str(o, "current_file", "") < 0 ||
	    add_str(o, "current_step", phase) < 0 ||
	    add_int(o, "files_downloaded", completed ? (double)nf : 0) < 0 ||
	    add_int(o, "total_files", completed ? (double)nf : 0) < 0 ||
	    add_int(o, "bytes_downloaded", done) < 0 ||
	    add_int(o, "bytes_transferred", done) < 0 ||
	    add_int(o, "total_bytes", total) < 0 ||
	    !cJSON_AddNumberToObject(o, "percent_complete", pct) ||
	    add_int(o, "estimated_remaining", eta) < 0) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

/* result for a completed job: paths, files, sizes, duration in ns. */
static cJSON *
make_result(const cJSON *rec)
{
	const cJSON *r = item(rec, "result"), *f;
	cJSON *o = cJSON_CreateObject(), *files;
	double size = 0;
	time_t t0, t1;
	int64_t dur = 0;

	if (!o)
		return NULL;
	if (!(files = cJSON_AddArrayToObject(o, "files")))
		goto fail;
	cJSON_ArrayForEach(f, item(r, "files")) {
		const char *p = h2k_json_str(f, "path");
		if (p && !cJSON_AddItemToArray(files, cJSON_CreateString(p)))
			goto fail;
		size += num(f, "size");
	}
	if (h2k_api_parse_time(h2k_json_str(rec, "started_at"), &t0) == 0 &&
	    h2k_api_parse_time(h2k_json_str(rec, "finished_at"), &t1) == 0 &&
	    t1 >= t0)
		dur = (int64_t)(t1 - t0) * 1000000000;
	const char *name = h2k_json_str(r, "name");
	const char *dir = h2k_json_str(r, "dir");
	if (add_str(o, "vm_name", name ? name : h2k_json_str(rec, "name")) < 0 ||
	    add_str(o, "output_dir", dir ? dir :
	    h2k_json_str(rec, "output_path")) < 0 ||
	    add_str(o, "ovf_path", h2k_json_str(r, "ovf_path")) < 0 ||
	    (h2k_json_str(r, "mf_path") &&
	    add_str(o, "mf_path", h2k_json_str(r, "mf_path")) < 0) ||
	    (h2k_json_str(r, "ova_path") &&
	    add_str(o, "ova_path", h2k_json_str(r, "ova_path")) < 0) ||
	    add_int(o, "total_size", size) < 0 ||
	    add_int(o, "duration", (double)dur) < 0 ||
	    !cJSON_AddBoolToObject(o, "success", 1))
		goto fail;
	/* files moved last: the product lists them after the paths */
	cJSON_DetachItemViaPointer(o, files);
	cJSON_AddItemToObject(o, "files", files);
	return o;
fail:
	cJSON_Delete(o);
	return NULL;
}

cJSON *
h2k_api_job(const cJSON *rec, time_t mtime)
{
	cJSON *o = cJSON_CreateObject(), *d, *p, *opts;
	const char *st = h2k_json_str(rec, "status");
	char upd[32];
	struct tm tm;

	if (!o)
		return NULL;
	if (!(d = cJSON_AddObjectToObject(o, "definition")) ||
	    add_str(d, "id", h2k_json_str(rec, "api_id") ?
	    h2k_json_str(rec, "api_id") : h2k_json_str(rec, "id")) < 0 ||
	    add_str(d, "name", h2k_json_str(rec, "name")) < 0 ||
	    add_str(d, "vm_path", h2k_json_str(rec, "vm_path")) < 0 ||
	    add_str(d, "output_path", h2k_json_str(rec, "output_path")) < 0 ||
	    add_str(d, "output_dir", h2k_json_str(rec, "output_path")) < 0)
		goto fail;
	if (cJSON_IsObject(item(rec, "options"))) {
		if (!(opts = cJSON_Duplicate(item(rec, "options"), 1)))
			goto fail;
		cJSON_AddItemToObject(d, "options", opts);
	}
	if (h2k_json_str(rec, "format") &&
	    add_str(d, "format", h2k_json_str(rec, "format")) < 0)
		goto fail;
	if (add_time(d, "created_at", h2k_json_str(rec, "created_at")) < 0 ||
	    add_str(o, "status", st) < 0)
		goto fail;
	if (!(p = h2k_api_progress(rec)))
		goto fail;
	cJSON_AddItemToObject(o, "progress", p);
	if (st && !strcmp(st, "completed")) {
		cJSON *r = make_result(rec);
		if (!r)
			goto fail;
		cJSON_AddItemToObject(o, "result", r);
	}
	if (h2k_json_str(rec, "error") &&
	    add_str(o, "error", h2k_json_str(rec, "error")) < 0)
		goto fail;
	gmtime_r(&mtime, &tm);
	strftime(upd, sizeof upd, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (add_time(o, "started_at", h2k_json_str(rec, "started_at")) < 0 ||
	    add_time(o, "completed_at", h2k_json_str(rec, "finished_at")) < 0 ||
	    add_str(o, "updated_at", upd) < 0)
		goto fail;
	return o;
fail:
	cJSON_Delete(o);
	return NULL;
}

int
h2k_api_server_key(const char *s, char *out, size_t n)
{
	const char *h = s, *e;
	char host[256];
	const char *port = NULL;
	size_t hl, pl;

	if (!s || !*s)
		return -1;
	if (!strncasecmp(h, "https://", 8))
		h += 8;
	else if (!strncasecmp(h, "http://", 7))
		h += 7;
	if (strchr(h, '@'))
		h = strchr(h, '@') + 1;
	e = h + strcspn(h, "/?#");
	if (*h == '[') {
		const char *rb = memchr(h, ']', (size_t)(e - h));
		if (!rb)
			return -1;
		hl = (size_t)(rb + 1 - h);
		if (rb[1] == ':')
			port = rb + 2;
	} else {
		const char *c = memchr(h, ':', (size_t)(e - h));
		hl = (size_t)((c ? c : e) - h);
		if (c)
			port = c + 1;
	}
	if (hl == 0 || hl >= sizeof host)
		return -1;
	for (size_t i = 0; i < hl; i++)
		host[i] = (char)tolower((unsigned char)h[i]);
	host[hl] = '\0';
	if (!port)
		port = "443", pl = 3;
	else
		pl = (size_t)(e - port);
	if (pl == 0 || pl > 5 || strspn(port, "0123456789") < pl)
		return -1;
	if ((size_t)snprintf(out, n, "%s:%.*s", host, (int)pl, port) >= n)
		return -1;
	return 0;
}
