/* Unit tests for lib/export.c. SPDX-License-Identifier: LGPL-3.0-or-later */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "export.h"
#include "h2k.h"
#include "jsonl.h"
#include "soap.h"
#include "tap.h"

static void
fix(const char *url, const char *host, const char *want, const char *what)
{
	char *got = h2k_export_fix_url(url, host);

	is_str(got, want, "%s", what);
	free(got);
}

/* h2k_export_info_parse over <info>INNER</info>; e is reset first. */
static int
info(const char *inner, const char *host, struct h2k_export *e)
{
	char *s = h2k_asprintf("<objects><obj type=\"HttpNfcLease\">lease-1</obj>"
	    "<propSet><name>info</name><val>%s</val></propSet></objects>", inner);
	xmlDocPtr d = s ? h2k_xml_parse(s, strlen(s), "test") : NULL;
	int rc;

	h2k_export_free(e);
	e->lease = strdup("lease-1");
	rc = d ? h2k_export_info_parse(xmlDocGetRootElement(d), host, e) : -2;
	xmlFreeDoc(d);
	free(s);
	return rc;
}

#define DEV(key, url, rest) "<deviceUrl><key>" key "</key><url>" url "</url>" rest \
	"</deviceUrl>"

static void
test_info(void)
{
	struct h2k_export e = { 0 };

	is_int(info("<leaseTimeout>300</leaseTimeout>"
	    DEV("/vm-54/VirtualLsiLogicController0:0",
	    "https://*/nfc/52a/disk-0.vmdk",
	    "<targetId>disk-0.vmdk</targetId><disk>true</disk>"
	    "<sslThumbprint>AA:BB</sslThumbprint><fileSize>1048576</fileSize>")
	    DEV("/vm-54/nvram", "https://esx1:902/nfc/52a/nvram",
	    "<disk>false</disk><sslThumbprint></sslThumbprint>"
	    "<fileSize>-4</fileSize>"),
	    "vc.example.com:443", &e), 0, "a lease's info");
	ok(e.timeout_s == 300 && e.ndev == 2, "timeout and two devices");
	ok(e.capacity == -1, "no totalDiskCapacityInKB: capacity unknown");
	if (e.ndev == 2) {
		is_str(e.dev[0].url, "https://vc.example.com:443/nfc/52a/disk-0.vmdk",
		    "a * host is the session's");
		ok(e.dev[0].disk && e.dev[0].size == 1048576, "disk, its size");
		is_str(e.dev[0].target_id, "disk-0.vmdk", "target id");
		is_str(e.dev[0].ssl_thumbprint, "AA:BB", "the NFC host's thumbprint");
		is_str(e.dev[1].url, "https://esx1:902/nfc/52a/nvram",
		    "a named host is kept");
		ok(!e.dev[1].disk && e.dev[1].size == -1 &&
		    e.dev[1].ssl_thumbprint == NULL && e.dev[1].target_id == NULL,
		    "not a disk; a negative size and an empty thumbprint: none");
	} else
		skip(6, "no devices");

	cJSON *l = h2k_export_lease_json(&e), *a = h2k_export_devices_json(&e);
	char *ls = l ? h2k_json_print(l) : NULL, *as = a ? h2k_json_print(a) : NULL;
	e.server = strdup("https://vc/sdk");
	cJSON_Delete(l);
	l = h2k_export_lease_json(&e);
	free(ls);
	ls = l ? h2k_json_print(l) : NULL;
	is_str(ls, "{\"moref\":\"lease-1\",\"timeout_s\":300,\"mode\":\"export\","
	    "\"snapshot\":null,\"server\":\"https://vc/sdk\"}",
	    "lease JSON: export mode, snapshot null, no power_action");
	is_str(as, "[{\"key\":\"/vm-54/VirtualLsiLogicController0:0\","
	    "\"target_id\":\"disk-0.vmdk\",\"disk\":true,\"size\":1048576,"
	    "\"url\":\"https://vc.example.com:443/nfc/52a/disk-0.vmdk\","
	    "\"ssl_thumbprint\":\"AA:BB\"},{\"key\":\"/vm-54/nvram\","
	    "\"target_id\":\"\",\"disk\":false,"
	    "\"url\":\"https://esx1:902/nfc/52a/nvram\"}]",
	    "devices JSON: size and thumbprint only when known");
	cJSON_Delete(l);
	free(ls);
	e.snapshot = strdup("snapshot-7");
	e.power_action = strdup("shutdown");
	l = h2k_export_lease_json(&e);
	ls = l ? h2k_json_print(l) : NULL;
	is_str(ls, "{\"moref\":\"lease-1\",\"timeout_s\":300,\"mode\":\"snapshot\","
	    "\"snapshot\":\"snapshot-7\",\"server\":\"https://vc/sdk\","
	    "\"power_action\":\"shutdown\"}",
	    "lease JSON: snapshot mode names it; power_action when one was done");
	cJSON_Delete(l);
	cJSON_Delete(a);
	free(ls);
	free(as);

	/* what a lease must not say */
	is_int(info(DEV("k", "", ""), "h", &e), -1, "a device without a url");
	is_int(h2k_errcode(), H2K_EX_NET, "is the server's fault");
	ok(strstr(h2k_errmsg(), "lease-1") != NULL, "naming the lease (%s)",
	    h2k_errmsg());
	is_int(info("<deviceUrl><url>https://h/x</url></deviceUrl>", "h", &e), -1,
	    "a device without a key");
	is_int(info("<leaseTimeout>9</leaseTimeout>", "h", &e), 0,
	    "no device at all is no error here");
	ok(e.ndev == 0 && e.timeout_s == 9, "(the caller checks)");
	is_int(info("<fileSize>1</fileSize>" DEV("k", "https://h/x",
	    "<fileSize>12abc</fileSize>"), "h", &e), 0, "a size with junk");
	ok(e.ndev == 1 && e.dev[0].size == -1, "is no size");
	is_int(info("<totalDiskCapacityInKB>2048</totalDiskCapacityInKB>", "h", &e), 0,
	    "a stream lease: only the total capacity");
	ok(e.capacity == 2097152, "capacity in bytes (%lld)", e.capacity);
	e.server = strdup("https://vc/sdk");
	cJSON *cl = h2k_export_lease_json(&e);
	ok(cl && h2k_json_num(cl, "disk_capacity_bytes", -1) == 2097152,
	    "in the lease JSON as disk_capacity_bytes");
	cJSON_Delete(cl);
	is_int(info("<totalDiskCapacityInKB>-5</totalDiskCapacityInKB>", "h", &e), 0,
	    "a negative capacity");
	ok(e.capacity == -1, "is none");
	is_int(info("<totalDiskCapacityInKB>99999999999999999999</totalDiskCapacityInKB>",
	    "h", &e), 0, "a capacity past 2^62 bytes");
	ok(e.capacity == -1, "is none");
	e.server = strdup("https://vc/sdk");
	cl = h2k_export_lease_json(&e);
	ok(cl && !cJSON_GetObjectItemCaseSensitive(cl, "disk_capacity_bytes"),
	    "and not in the JSON");
	cJSON_Delete(cl);

	struct h2k_buf b = {0};
	for (int i = 0; i < 4097; i++)
		h2k_buf_printf(&b, DEV("k%d", "https://h/%d", ""), i, i);
	is_int(info(b.data, "h", &e), -1, "4097 device URLs refused");
	ok(strstr(h2k_errmsg(), "more than 4096") != NULL, "saying the bound (%s)",
	    h2k_errmsg());
	ok(e.ndev == 4096, "nothing past the bound was kept");
	h2k_buf_free(&b);

	h2k_export_free(&e);
	e.lease = strdup("lease-1");
	const char *noinfo = "<objects><obj type=\"HttpNfcLease\">l</obj></objects>";
	xmlDocPtr d = h2k_xml_parse(noinfo, strlen(noinfo), "test");
	is_int(d ? h2k_export_info_parse(xmlDocGetRootElement(d), "h", &e) : -2,
	    -1, "no info at all");
	xmlFreeDoc(d);
	h2k_export_free(&e);
	ok(e.lease == NULL && e.dev == NULL && e.ndev == 0, "free resets");
}

/*
 * h2k_export_line refuses a line it cannot name a VM by before any call
 * (v is NULL: a call would crash) and writes nothing then.
 */
static void
test_line_refused(void)
{
	const char *bad[] = {"{}", "{\"moref\":\"\"}", "{\"moref\":54}",
	    "{\"name\":\"x\",\"moref\":null}"};
	struct h2k_export_opts o = {0};
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cJSON *l = cJSON_Parse(bad[i]);
		int rc = h2k_export_line(NULL, l, &o, out, "out");

		ok(rc == -1 && h2k_errcode() == H2K_EX_USAGE &&
		    strstr(h2k_errmsg(), "no \"moref\" field"),
		    "line %s refused: %s", bad[i], h2k_errmsg());
		cJSON_Delete(l);
	}
	fflush(out);
	is_int(len, 0, "nothing written for a refused line");
	fclose(out);
	free(buf);
}

int
main(void)
{
	test_line_refused();
	fix("https://*/nfc/x/disk-0.vmdk", "vc.example.com",
	    "https://vc.example.com/nfc/x/disk-0.vmdk", "* replaced");
	fix("https://*/nfc/x", "vc.example.com:8989",
	    "https://vc.example.com:8989/nfc/x", "with the session's port");
	fix("https://*:902/nfc/x", "vc.example.com:8989",
	    "https://vc.example.com:902/nfc/x", "the URL's own port wins");
	fix("https://*:902/nfc/x", "[fe80::1]:443", "https://[fe80::1]:902/nfc/x",
	    "IPv6 host, its port dropped for the URL's");
	fix("https://*:902/nfc/x", "[fe80::1]", "https://[fe80::1]:902/nfc/x",
	    "IPv6 host without a port");
	fix("https://*", "h", "https://h", "a bare *");
	fix("https://*x.example.com/nfc", "h", "https://*x.example.com/nfc",
	    "a * that starts a name is not the placeholder");
	fix("https://esx1/nfc/*", "h", "https://esx1/nfc/*", "a * in the path stays");
	fix("no-scheme/*", "h", "no-scheme/*", "no scheme: untouched");
	fix("https://*/x", NULL, "https://*/x", "no host known: untouched");
	test_info();
	return tap_done();
}
