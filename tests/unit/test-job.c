/* Unit tests for lib/job.c. SPDX-License-Identifier: LGPL-3.0-or-later */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "h2k.h"
#include "job.h"
#include "tap.h"

/* Parse s as file "f.yaml"; returns rc, jobs in *l. */
static int
parse(const char *s, struct h2k_joblist *l)
{
	memset(l, 0, sizeof *l);
	h2k_clearerr();
	return h2k_job_parse("f.yaml", s, strlen(s), l);
}

/* The message of a refused document, "" when it was accepted. */
static const char *
refusal(const char *s)
{
	struct h2k_joblist l;
	int r = parse(s, &l);

	h2k_joblist_free(&l);
	return r < 0 ? h2k_errmsg() : "";
}

static void
refused(const char *doc, const char *want, const char *what)
{
	const char *m = refusal(doc);
	int ok_ = strstr(m, want) != NULL && h2k_errcode() == H2K_EX_USAGE;
	ok(ok_, "%s", what);
	if (!ok_)
		printf("#   got: '%s'\n#   want: '%s' (code %d)\n", m, want,
		    h2k_errcode());
}

int
main(void)
{
	struct h2k_joblist l;

	/* --- format: what the disks are written as --- */
	is_int(parse("vm_path: /a\noutput_path: /o\nformat: qcow2\n", &l), 0, "format: qcow2");
	is_str(l.v[0].format, "qcow2", "kept");
	{
		cJSON *rec = h2k_job_record_new(&l.v[0], "1.2.3.abcd");
		const cJSON *o = cJSON_GetObjectItemCaseSensitive(rec, "options");
		is_str(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "format")),
		    "qcow2", "the record's options.format");
		is_int(h2k_job_record_check(rec, "1.2.3.abcd"), 0, "the record checks");
		cJSON_ReplaceItemInObjectCaseSensitive((cJSON *)o, "format",
		    cJSON_CreateString("-o/etc"));
		is_int(h2k_job_record_check(rec, "1.2.3.abcd"), -1,
		    "a record with another format is refused");
		cJSON_Delete(rec);
	}
	h2k_joblist_free(&l);
	/* format: ova with options.ova false contradicts itself (t0668) */
	refused("vm_path: /v\noutput_path: /o\nformat: ova\noptions: {ova: false}\n",
	    "options.ova': false", "format: ova with options.ova false refused");
	is_int(parse("{\"vm_path\": \"/a\", \"output_path\": \"/o\", \"format\": \"ova\"}\n",
	    &l), 0, "format: ova (JSON)");
	if (l.n < 1) {
		printf("Bail out! format: ova (JSON) not parsed\n");
		return 1;
	}
	{
		cJSON *rec = h2k_job_record_new(&l.v[0], "1.2.3.abcd");
		const cJSON *o = cJSON_GetObjectItemCaseSensitive(rec, "options");
		ok(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "ova")) &&
		    !cJSON_GetObjectItemCaseSensitive(o, "format"),
		    "is the ova option, and no format");
		cJSON_Delete(rec);
	}
	h2k_joblist_free(&l);
	refused("vm_path: /a\noutput_path: /o\nformat: vhd\n",
	    "f.yaml:3: key 'format': expected vmdk, raw, qcow2 or ova", "format: vhd refused");
	refused("vm_path: /a\noutput_path: /o\nformat: [raw]\n",
	    "f.yaml:3: key 'format': expected a string", "format: a list refused");

	/* --- accepted forms --- */
	is_int(parse("name: a\nvm_path: /dc/vm/a\noutput_path: /o\n"
	    "options:\n  parallel_downloads: 8\n  remove_cdrom: yes\n"
	    "  ova: True\n", &l), 0, "single YAML job");
	is_int(l.n, 1, "one job");
	is_str(l.v[0].name, "a", "name");
	is_int(l.v[0].parallel_downloads, 8, "parallel_downloads");
	ok(l.v[0].remove_cdrom && l.v[0].ova && !l.v[0].snapshot, "booleans, YAML 1.1 spellings");
	is_str(l.v[0].source, "f.yaml:1", "source FILE:LINE");
	h2k_joblist_free(&l);

	is_int(parse("jobs:\n- vm_path: /dc/vm/x/\n  output_path: rel\n"
	    "- {vm_path: '/dc/vm/y', output_path: /o, options: null}\n", &l), 0,
	    "batch with flow mapping and null options");
	is_int(l.n, 2, "two jobs");
	is_str(l.v[0].name, "/dc/vm/x/", "a name-less job whose path ends in / is named by the path");
	is_str(l.v[1].name, "y", "a name-less job is named after the VM");
	is_str(l.v[1].source, "f.yaml:4", "second job's line");
	is_int(h2k_job_resolve(&l), 0, "resolve");
	ok(l.v[0].output_path[0] == '/' && strstr(l.v[0].output_path, "/rel"),
	    "relative output_path made absolute");
	is_str(l.v[1].output_path, "/o", "absolute output_path kept");
	h2k_joblist_free(&l);

	is_int(parse("{\"vm_path\":\"/v\",\t\"output_path\":\"/o\",\n"
	    "\"options\":{\"snapshot\":true,\"parallel_downloads\":2}}", &l), 0,
	    "JSON job (tabs, no spaces after colons)");
	ok(l.n == 1 && l.v[0].snapshot && l.v[0].parallel_downloads == 2,
	    "JSON values");
	h2k_joblist_free(&l);

	is_int(parse("vm_path: /v\noutput_path: /o\noptions:\n"
	    "  hyper2kvm_manifest: true\n  hyper2kvm_watch_dir: w d\n", &l), 0,
	    "hyper2kvm options");
	ok(l.n == 1 && l.v[0].hyper2kvm_manifest && l.v[0].hyper2kvm_watch_dir &&
	    !strcmp(l.v[0].hyper2kvm_watch_dir, "w d"), "hyper2kvm values");
	is_int(h2k_job_resolve(&l), 0, "resolve with a watch dir");
	ok(l.v[0].hyper2kvm_watch_dir[0] == '/' && strstr(l.v[0].hyper2kvm_watch_dir, "/w d"),
	    "relative hyper2kvm_watch_dir made absolute");
	{
		cJSON *r = h2k_job_record_new(&l.v[0], "j1");
		cJSON *o = cJSON_GetObjectItemCaseSensitive(r, "options");
		ok(r && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "hyper2kvm_manifest")) &&
		    !strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o,
		    "hyper2kvm_watch_dir")), l.v[0].hyper2kvm_watch_dir) &&
		    h2k_job_record_check(r, "j1") == 0, "the record carries both and passes the check");
		cJSON_ReplaceItemInObjectCaseSensitive(o, "hyper2kvm_watch_dir",
		    cJSON_CreateString("rel"));
		ok(h2k_job_record_check(r, "j1") < 0 && strstr(h2k_errmsg(), "hyper2kvm_watch_dir"),
		    "a record with a relative watch dir refused");
		cJSON_Delete(r);
	}
	h2k_joblist_free(&l);
	refused("vm_path: /v\noutput_path: /o\noptions: {hyper2kvm_watch_dir: ''}\n",
	    "key 'options.hyper2kvm_watch_dir': must not be empty", "empty watch dir");
	refused("vm_path: /v\noutput_path: /o\noptions: {hyper2kvm_manifest: 1}\n",
	    "key 'options.hyper2kvm_manifest': expected true or false", "manifest not a boolean");

	is_int(parse("\xef\xbb\xbf{\"jobs\":[{\"vm_path\":\"/v\",\"output_path\":\"/o\"}]}", &l),
	    0, "JSON batch with a UTF-8 BOM");
	h2k_joblist_free(&l);

	/* --- refused, each naming line and key --- */
	refused("vm_path: /v\noutput_path: /o\nfoo: 1\n", "f.yaml:3: key 'foo': unknown key", "unknown key");
	refused("vm_path: /v\noutput_path: /o\noptions:\n  zip: true\n",
	    "f.yaml:4: key 'options.zip': unknown option", "unknown option");
	refused("vm_path: /v\noutput_path: /o\noptions: {parallel_downloads: 2.5}\n",
	    "f.yaml:3: key 'options.parallel_downloads': expected an integer", "float for integer");
	refused("vm_path: /v\noutput_path: /o\noptions: {parallel_downloads: 65}\n",
	    "out of range 1..64", "integer out of range");
	refused("vm_path: /v\noutput_path: /o\noptions: {parallel_downloads: 99999999999999999999}\n",
	    "expected an integer", "integer overflow");
	refused("vm_path: /v\noutput_path: /o\noptions: {ova: maybe}\n",
	    "key 'options.ova': expected true or false, got maybe", "bad boolean");
	refused("vm_path: /v\noutput_path: /o\noptions: {ova: 'true'}\n",
	    "expected true or false, got the string \"true\"", "quoted boolean is a string");
	refused("vm_path: {a: 1}\noutput_path: /o\n", "f.yaml:1: key 'vm_path': expected a string, got a mapping", "mapping for string");
	refused("vm_path: ~\noutput_path: /o\n", "key 'vm_path': expected a string, got null", "null for string");
	refused("vm_path: ''\noutput_path: /o\n", "key 'vm_path': must not be empty", "empty string");
	refused("vm_path: \"a\\tb\"\noutput_path: /o\n", "control character", "control character");
	refused("vm_path: /v\n", "f.yaml:1: key 'output_path': missing", "missing output_path");
	refused("output_path: /o\n", "key 'vm_path': missing", "missing vm_path");
	refused("jobs:\n- vm_path: /v\n  output_path: /o\n- vm_path: /w\n",
	    "f.yaml:4: key 'jobs[1].output_path': missing", "missing in batch names the index");
	refused("jobs: []\n", "key 'jobs': empty list", "empty batch");
	refused("jobs: {a: 1}\n", "key 'jobs': expected a list", "jobs not a list");
	refused("jobs:\n- 42\n", "f.yaml:2: jobs[0]: expected a job", "batch item not a mapping");
	refused("jobs: [{vm_path: /v, output_path: /o}]\nextra: 1\n",
	    "f.yaml:2: key 'extra': unknown key beside 'jobs'", "key beside jobs");
	refused("jobs:\n- vm_path: /v\n  output_path: /o\n  jobs: []\n",
	    "a batch cannot be nested", "nested batch");
	refused("- a\n- b\n", "f.yaml:1: expected a job or {jobs: [...]}, got a list", "top-level list");
	refused("", "f.yaml: empty job file", "empty file");
	refused("# nothing\n", "empty job file", "comment only");
	refused("a: b\n---\nc: d\n", "f.yaml:2: more than one YAML document", "two documents");
	refused("a: &x 1\nb: *x\n", "f.yaml:2: YAML aliases are not allowed", "alias");
	refused("a: [1, 2\n", "YAML syntax error", "YAML syntax");
	refused("{\"vm_path\": \"/v\",\n \"output_path\": /o}\n", "f.yaml:2: JSON syntax error", "JSON syntax (bare word)");
	refused("{\"vm_path\": \"/v\", \"output_path\": \"/o\"} x\n", "text after the end", "JSON trailing text");
	refused("{\"vm_path\": \"/v\", \"output_path\": \"/o\", \"options\": {\"ova\": 1}}",
	    "key 'options.ova': expected true or false, got 1", "JSON 1 is not a boolean");
	refused("{\"vm_path\": 5, \"output_path\": \"/o\"}", "key 'vm_path': expected a string, got 5", "JSON number for string");
	refused("vm_path: /v\noutput_path: /o\nvm_path: /w\n", "f.yaml:3: key 'vm_path': duplicate (first on line 1)", "duplicate key");
	refused("vm_path: /v\noutput_path: /o\nPassword: hunter2\n",
	    "f.yaml:3: key 'Password': credentials are not allowed", "Password");
	ok(!strstr(h2k_errmsg(), "hunter2"), "the password is not echoed");
	refused("vm_path: /v\noutput_path: /o\noptions: {vcenter_password: x}\n",
	    "key 'options.vcenter_password': credentials", "password inside options");
	refused("jobs:\n- vm_path: /v\n  output_path: /o\n  Username: root\n",
	    "key 'jobs[0].Username': credentials", "Username in a batch job");
	refused("vm_path: /v\noutput_path: /o\noptions: {snapshot: true, shutdown: true}\n",
	    "exclude each other", "snapshot with shutdown");
	{
		char buf[4096] = "x: ";
		for (int i = 0; i < 40; i++)
			strcat(buf, "[");
		for (int i = 0; i < 40; i++)
			strcat(buf, "]");
		refused(buf, "nested deeper than 32", "depth bounded");
	}
	{
		const char doc[] = "vm_path: /v\0\noutput_path: /o\n";
		memset(&l, 0, sizeof l);
		is_int(h2k_job_parse("f.yaml", doc, sizeof doc - 1, &l), -1, "NUL byte refused");
		ok(strstr(h2k_errmsg(), "f.yaml:1: NUL byte") != NULL, "... with its line");
	}

	/* --- records --- */
	is_int(parse("name: n\nvm_path: /v\noutput_path: /o\noptions: {ova: yes}\n", &l), 0, "parse for record");
	cJSON *r = h2k_job_record_new(&l.v[0], "1.2.3.abcd");
	ok(r != NULL, "record made");
	is_int(h2k_job_record_check(r, "1.2.3.abcd"), 0, "a new record checks out");
	is_str(cJSON_GetStringValue(cJSON_GetObjectItem(r, "status")), "pending", "pending");
	ok(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "options"), "ova")), "options carried");
	ok(cJSON_IsNull(cJSON_GetObjectItem(r, "result")) && cJSON_IsNull(cJSON_GetObjectItem(r, "error")),
	    "result and error null");
	is_int(h2k_job_record_check(r, "1.2.3.beef"), -1, "id must match the file name");
	is_int(h2k_job_set_status(r, "completed"), 0, "set final status");
	ok(cJSON_IsString(cJSON_GetObjectItem(r, "finished_at")), "finished_at set");
	h2k_job_set_str(r, "status", "exploded");
	is_int(h2k_job_record_check(r, NULL), -1, "unknown status refused");
	h2k_job_set_str(r, "status", "running");
	h2k_job_set_str(r, "output_path", "relative");
	is_int(h2k_job_record_check(r, NULL), -1, "relative output_path refused");
	h2k_job_set_str(r, "output_path", "/o");
	h2k_job_set_num(r, "attempts", -1);
	is_int(h2k_job_record_check(r, NULL), -1, "negative attempts refused");
	h2k_job_set_num(r, "attempts", 1.5);
	is_int(h2k_job_record_check(r, NULL), -1, "fractional attempts refused");
	h2k_job_set_num(r, "attempts", 1);
	is_int(h2k_job_record_check(r, NULL), 0, "record fine again");

	/* --- process fields: what cancel would turn into kill(2) --- */
	{
		static const struct { const char *json; const char *what; } badpg[] = {
			{"1.5", "pgid 1.5"}, {"-1", "pgid -1"}, {"0", "pgid 0"},
			{"1", "pgid 1"}, {"\"abc\"", "pgid string"},
			{"4194305", "pgid above PID_MAX"}, {"1e300", "pgid huge"},
			{"null", "pgid null"}, {"[7]", "pgid array"}, {"true", "pgid true"},
		};
		for (size_t i = 0; i < sizeof badpg / sizeof badpg[0]; i++) {
			cJSON *c = cJSON_Duplicate(r, 1);
			cJSON_AddItemToObject(c, "pgid", cJSON_Parse(badpg[i].json));
			is_int(h2k_job_record_check(c, NULL), -1, "%s", badpg[i].what);
			ok(strstr(h2k_errmsg(), "'pgid'") != NULL, "... names the field");
			cJSON_DeleteItemFromObject(c, "pgid");
			cJSON_AddItemToObject(c, "runner_pid", cJSON_Parse(badpg[i].json));
			is_int(h2k_job_record_check(c, NULL), -1, "runner_pid likewise");
			cJSON_Delete(c);
		}
		static const char *badrec[] = {
			"{\"boot_id\":\"not-a-boot-id\"}",
			"{\"boot_id\":\"0123456789abcdef0123456789abcdef0123\"}",
			"{\"pidns\":5}",
			"{\"procs\":{}}",
			"{\"procs\":[{\"pid\":1,\"start\":5}]}",
			"{\"procs\":[{\"pid\":100,\"start\":-5}]}",
			"{\"procs\":[{\"pid\":100}]}",
			"{\"procs\":[1,2,3]}",
			"{\"procs\":[{\"pid\":2,\"start\":1},{\"pid\":2,\"start\":1},"
			    "{\"pid\":2,\"start\":1},{\"pid\":2,\"start\":1},{\"pid\":2,\"start\":1},"
			    "{\"pid\":2,\"start\":1},{\"pid\":2,\"start\":1},{\"pid\":2,\"start\":1},"
			    "{\"pid\":2,\"start\":1}]}",
			"{\"options\":{\"parallel_downloads\":0}}",
			"{\"options\":{\"parallel_downloads\":65}}",
			"{\"options\":{\"parallel_downloads\":2.5}}",
			"{\"options\":{\"ova\":\"yes\"}}",
			"{\"progress\":[]}",
			"{\"progress\":{\"bytes_done\":-1}}",
			"{\"progress\":{\"percent_complete\":101}}",
			"{\"progress\":{\"phase\":3}}",
			"{\"lease\":{\"moref\":4}}",
			"{\"lease\":\"x\"}",
			"{\"result\":\"x\"}",
			"{\"error\":5}",
			"{\"started_at\":{}}",
			"{\"source\":null}",
		};
		for (size_t i = 0; i < sizeof badrec / sizeof badrec[0]; i++) {
			cJSON *c = cJSON_Duplicate(r, 1), *patch = cJSON_Parse(badrec[i]), *f;
			ok(patch != NULL, "patch parses");
			cJSON_ArrayForEach(f, patch) {
				cJSON_DeleteItemFromObjectCaseSensitive(c, f->string);
				cJSON_AddItemToObject(c, f->string, cJSON_Duplicate(f, 1));
			}
			is_int(h2k_job_record_check(c, NULL), -1, "%s", badrec[i]);
			cJSON_Delete(patch);
			cJSON_Delete(c);
		}
	}

	/* --- the proof that a group is the job's --- */
	{
		pid_t me = getpid(), pg = getpgrp(), pids[1] = {me};
		unsigned long long st = 0;
		pid_t gp = 0;
		char boot[37];
		cJSON *c = cJSON_Duplicate(r, 1);

		is_int(h2k_proc_stat(me, &st, &gp), 0, "own /proc stat read");
		is_int(gp, pg, "... its process group");
		ok(st > 0, "... its start time");
		is_int(h2k_boot_id(boot), 0, "boot id read");
		is_int(h2k_job_group(c), -1, "no pgid: no group");
		h2k_job_set_num(c, "pgid", pg);
		is_int(h2k_job_group(c), -1, "pgid alone proves nothing");
		ok(strstr(h2k_errmsg(), "does not say") != NULL, "... and says so");
		is_int(h2k_job_set_procs(c, pg, pids, 1), 0, "procs recorded");
		is_int(h2k_job_record_check(c, NULL), 0, "a record with procs checks out");
		is_int(h2k_job_group(c), pg, "own group proven");
		cJSON *p0 = cJSON_GetArrayItem(cJSON_GetObjectItem(c, "procs"), 0);
		cJSON_ReplaceItemInObject(p0, "start", cJSON_CreateNumber((double)st + 1));
		is_int(h2k_job_group(c), -1, "another start time: a reused pid, not ours");
		cJSON_ReplaceItemInObject(p0, "start", cJSON_CreateNumber((double)st));
		h2k_job_set_num(c, "pgid", pg == 2 ? 3 : 2);
		is_int(h2k_job_group(c), -1, "our process is not in the claimed group");
		h2k_job_set_num(c, "pgid", pg);
		h2k_job_set_str(c, "boot_id", "00000000-0000-0000-0000-000000000000");
		is_int(h2k_job_group(c), -1, "another boot");
		h2k_job_set_str(c, "boot_id", boot);
		h2k_job_set_str(c, "pidns", "pid:[1]");
		is_int(h2k_job_group(c), -1, "another PID namespace");
		h2k_job_clear_procs(c);
		ok(!cJSON_GetObjectItem(c, "pgid") && !cJSON_GetObjectItem(c, "procs") &&
		    !cJSON_GetObjectItem(c, "boot_id") && !cJSON_GetObjectItem(c, "pidns"),
		    "cleared");
		cJSON_Delete(c);

		unsigned long long s2;
		pid_t g2;
		is_int(h2k_proc_stat_parse("7 (a) (b)) S 1 42 7 0 -1 4194304 98 0 0 0 0 0 0 0 20 0 1 0 137009 3133440",
		    &s2, &g2), 0, "comm with ') (' parsed from the last ')'");
		ok(s2 == 137009 && g2 == 42, "... pgrp and starttime");
		is_int(h2k_proc_stat_parse("7 (a) S 1 -42 7 0 -1 4194304 98 0 0 0 0 0 0 0 20 0 1 0 137009",
		    &s2, &g2), -1, "negative pgrp refused");
		is_int(h2k_proc_stat_parse("7 (a) S 1 42 7 0", &s2, &g2), -1, "short stat refused");
	}

	/* --- the stages' environment --- */
	ok(h2k_job_env_keep("PATH=/bin", NULL) && h2k_job_env_keep("LC_ALL=C", NULL) &&
	    h2k_job_env_keep("H2K_LOG_LEVEL=info", NULL) && h2k_job_env_keep("HOME=/h", NULL),
	    "PATH, LC_*, H2K_*, HOME kept");
	ok(!h2k_job_env_keep("H2K_PASSWORD=x", NULL) && !h2k_job_env_keep("GOVC_PASSWORD=x", NULL) &&
	    !h2k_job_env_keep("GOVC_URL=https://u:p@h", NULL) && !h2k_job_env_keep("H2K_URL=x", NULL) &&
	    !h2k_job_env_keep("CREDENTIALS_DIRECTORY=/run/c", NULL), "secrets dropped");
	ok(!h2k_job_env_keep("H2K_PASSWORD=x", "H2K_PASSWORD GOVC_PASSWORD") &&
	    !h2k_job_env_keep("CREDENTIALS_DIRECTORY=/c", "CREDENTIALS_DIRECTORY"),
	    "... even when H2K_JOB_KEEPENV names them");
	ok(!h2k_job_env_keep("FOO=1", NULL) && h2k_job_env_keep("FOO=1", "BAR, FOO") &&
	    !h2k_job_env_keep("FO=1", "FOO") && !h2k_job_env_keep("FOOO=1", "FOO"),
	    "others only when named, exactly");
	ok(!h2k_job_env_keep("=x", "") && !h2k_job_env_keep("NOEQUALS", "NOEQUALS"),
	    "malformed entries dropped");

	cJSON_Delete(r);
	h2k_joblist_free(&l);
	ok(h2k_job_status_final("cancelled") && !h2k_job_status_final("running"), "final statuses");
	return tap_done();
}
