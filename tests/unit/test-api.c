/* Unit tests for lib/api-json.c and job.c's h2k_job_parse_api.
 * SPDX-License-Identifier: LGPL-3.0-or-later */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "h2k.h"
#include "job.h"
#include "jsonl.h"
#include "tap.h"

static void
go_duration(void)
{
	static const struct { int64_t ns; const char *want; } t[] = {
		{0, "0s"}, {1, "1ns"}, {999, "999ns"}, {1500, "1.5\xc2\xb5s"},
		{350000000, "350ms"}, {1000000000, "1s"},
		{4031176186, "4.031176186s"}, {62000000000, "1m2s"},
		{3723000000001, "1h2m3.000000001s"}, {-1500000, "-1.5ms"},
	};
	char b[64];

	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		h2k_api_go_duration(t[i].ns, b, sizeof b);
		is_str(b, t[i].want, "go duration %lld", (long long)t[i].ns);
	}
}

static void
times(void)
{
	time_t t;

	ok(h2k_api_parse_time("2026-11-30T01:54:26Z", &t) == 0 &&
	    t == 1796003666, "RFC 3339 UTC parsed");
	ok(h2k_api_parse_time("2026-11-30T01:54:26", &t) < 0, "no Z: refused");
	ok(h2k_api_parse_time("2026-11-30T01:54:26Zx", &t) < 0, "trailing: refused");
	ok(h2k_api_parse_time(NULL, &t) < 0, "NULL refused");
}

static void
server_keys(void)
{
	static const struct { const char *in, *want; } t[] = {
		{"https://VC.example.com/sdk", "vc.example.com:443"},
		{"vc.example.com", "vc.example.com:443"},
		{"https://user@vc:8443/sdk", "vc:8443"},
		{"127.0.0.1:45463", "127.0.0.1:45463"},
		{"https://[::1]:9/sdk", "[::1]:9"},
	};
	char b[300];

	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		int r = h2k_api_server_key(t[i].in, b, sizeof b);
		ok(r == 0, "server key of %s", t[i].in);
		is_str(r == 0 ? b : "", t[i].want, "server key %s", t[i].in);
	}
	ok(h2k_api_server_key("https://vc:99999x/", b, sizeof b) < 0, "bad port");
	ok(h2k_api_server_key("", b, sizeof b) < 0, "empty");
	ok(h2k_api_server_key("https://[::1/sdk", b, sizeof b) < 0, "open bracket");
}

static void
job_shape(void)
{
	const char *rec_s = "{\"id\":\"1.2.3.ab\",\"api_id\":\"mine\",\"name\":\"web\","
	    "\"status\":\"completed\",\"vm_path\":\"/dc/vm/web\",\"output_path\":\"/o\","
	    "\"options\":{\"ova\":true},\"progress\":{\"phase\":\"completed\","
	    "\"percent_complete\":100,\"bytes_done\":5000000000000000,"
	    "\"bytes_total\":5000000000000000},\"result\":{\"ovf_path\":\"/o/web/web.ovf\","
	    "\"dir\":\"/o/web\",\"name\":\"web\",\"files\":[{\"path\":\"/o/web/d.vmdk\","
	    "\"size\":5000000000000000}]},\"error\":null,"
	    "\"created_at\":\"2026-11-30T01:00:00Z\",\"started_at\":\"2026-11-30T01:00:00Z\","
	    "\"finished_at\":\"2026-11-30T01:00:12Z\",\"attempts\":1,\"password\":\"x\"}";
	cJSON *rec = cJSON_Parse(rec_s), *j = h2k_api_job(rec, 1796003666);
	char *s = j ? h2k_json_print(j) : NULL;

	ok(s != NULL, "JOB rendered");
	s = s ? s : h2k_strdup("");
	ok(strstr(s, "\"definition\":{\"id\":\"mine\"") != NULL, "client id is definition.id");
	ok(strstr(s, "\"duration\":12000000000") != NULL, "duration in ns, an integer");
	ok(strstr(s, "\"total_size\":5000000000000000") != NULL, "large sizes exact, no exponent");
	ok(strstr(s, "\"bytes_downloaded\":5000000000000000") != NULL, "progress bytes exact");
	ok(strstr(s, "\"files\":[\"/o/web/d.vmdk\"]") != NULL, "files are paths");
	ok(strstr(s, "\"updated_at\":\"2026-11-30T01:54:26Z\"") != NULL, "updated_at from mtime");
	ok(strstr(s, "password") == NULL, "fields are chosen, none copied blindly");
	ok(strstr(s, "\"error\"") == NULL, "null error left out");
	free(s);
	cJSON_Delete(j);
	cJSON_Delete(rec);
}

static void
parse_api(void)
{
	struct h2k_apijobs l;
	const char *b = "[{\"vm_path\":\"/a\",\"output_dir\":\"/o\",\"id\":\"x1\","
	    "\"vcenter\":{\"server\":\"vc\",\"username\":\"u\",\"password\":\"p\"}},"
	    "{\"vm_path\":\"/b\"}, 3]";

	ok(h2k_job_parse_api("request", b, strlen(b), 10, &l) == 0, "list parsed");
	ok(l.n == 3, "three jobs");
	if (l.n == 3) {
		ok(!l.v[0].err && !strcmp(l.v[0].spec.output_path, "/o") &&
		    !strcmp(l.v[0].id, "x1") && !strcmp(l.v[0].vcenter, "vc"),
		    "output_dir, id and vcenter.server taken");
		ok(l.v[1].err && strstr(l.v[1].err, "jobs[1].output_path': missing"),
		    "a job without output: its own error (%s)", l.v[1].err ? l.v[1].err : "");
		ok(l.v[2].err && strstr(l.v[2].err, "got a scalar"), "a scalar job: its own error");
	} else
		skip(3, "parse failed");
	h2k_apijobs_free(&l);
	ok(h2k_job_parse_api("request", b, strlen(b), 2, &l) < 0 &&
	    strstr(h2k_errmsg(), "3 jobs, more than 2"), "job cap: whole request refused");
	ok(h2k_job_parse_api("request", "{", 1, 10, &l) < 0, "syntax: refused");
	ok(h2k_job_parse_api("request", "{\"jobs\":[]}", 11, 10, &l) < 0 &&
	    strstr(h2k_errmsg(), "no job"), "empty batch refused");
}

int
main(void)
{
	go_duration();
	times();
	server_keys();
	job_shape();
	parse_api();
	return tap_done();
}
