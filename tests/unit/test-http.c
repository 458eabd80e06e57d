/*
 * test-http.c - URL and thumbprint normalisation, TLS error messages.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 */
#include <stdlib.h>
#include <string.h>

#include "h2k.h"
#include "http.h"
#include "tap.h"

static void
url(const char *in, int allow_http, const char *want, const char *want_user)
{
	char *user = (char *)"unset";
	char *out;

	h2k_clearerr();
	out = h2k_url_normalize(in, allow_http, &user);
	is_str(out, want, "url '%s'", in);
	if (want)
		is_str(user, want_user, "url '%s': user", in);
	else {
		ok(user == NULL, "url '%s': no user on error", in);
		is_int(h2k_errcode(), H2K_EX_USAGE, "url '%s': usage error: %s", in,
		    h2k_errmsg());
	}
	free(out);
	if (want)
		free(user);
}

int
main(void)
{
	static const char sha256[] =
	    "ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89";
	static const char SHA256[] =
	    "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89";
	char *t;

	/* --- thumbprints --- */
	t = h2k_thumbprint_norm(sha256);
	is_str(t, SHA256, "SHA-256 lower case with colons");
	free(t);
	t = h2k_thumbprint_norm("abcdef0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789");
	is_str(t, SHA256, "SHA-256 without colons, mixed case");
	free(t);
	t = h2k_thumbprint_norm("01:23:45:67:89:ab:cd:ef:01:23:45:67:89:AB:CD:EF:01:23:45:67");
	is_str(t, "01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67", "SHA-1");
	free(t);
	ok(h2k_thumbprint_norm("01:23") == NULL, "too short refused");
	ok(h2k_thumbprint_norm("zz:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01") == NULL,
	    "non-hex refused");
	ok(h2k_thumbprint_norm("abcdef0123456789ABCDEF0123456789abcdef0123456789abcdef01234567890") == NULL,
	    "65 digits refused");
	ok(h2k_thumbprint_norm("") == NULL && h2k_thumbprint_norm(NULL) == NULL, "empty refused");

	/* --- URLs, as govc takes them --- */
	url("vc.example.com", 0, "https://vc.example.com/sdk", NULL);
	url("vc.example.com:8989", 0, "https://vc.example.com:8989/sdk", NULL);
	url("https://vc.example.com", 0, "https://vc.example.com/sdk", NULL);
	url("https://vc.example.com/", 0, "https://vc.example.com/sdk", NULL);
	url("HTTPS://vc.example.com/sdk", 0, "https://vc.example.com/sdk", NULL);
	url("https://127.0.0.1:8989/sdk", 0, "https://127.0.0.1:8989/sdk", NULL);
	url("https://[::1]:8989/sdk", 0, "https://[::1]:8989/sdk", NULL);
	url("[::1]", 0, "https://[::1]/sdk", NULL);
	url("https://root@esx1/sdk", 0, "https://esx1/sdk", "root");
	url("administrator@vsphere.local@vc", 0, "https://vc/sdk", "administrator@vsphere.local");
	url("https://administrator%40vsphere.local@vc:443/sdk", 0, "https://vc:443/sdk",
	    "administrator@vsphere.local");
	url("https://vc/custom/sdk", 0, "https://vc/custom/sdk", NULL);
	url("http://vc/sdk", 1, "http://vc/sdk", NULL);
	url("http://vc/sdk", 0, NULL, NULL);
	url("ftp://vc/sdk", 0, NULL, NULL);
	url("file:///etc/passwd", 0, NULL, NULL);
	url("https://user:secret@vc/sdk", 0, NULL, NULL);
	ok(strstr(h2k_errmsg(), "secret") == NULL && strstr(h2k_errmsg(), "--password-file"),
	    "password in URL: error does not repeat it and names --password-file: %s",
	    h2k_errmsg());
	url("", 0, NULL, NULL);
	url("https://", 0, NULL, NULL);
	url("vc:0", 0, NULL, NULL);
	url("vc:65536", 0, NULL, NULL);
	url("vc:12ab", 0, NULL, NULL);
	url("vc:", 0, NULL, NULL);
	url("v c", 0, NULL, NULL);
	url("vc\t.example", 0, NULL, NULL);
	url("https://vc/sdk?x=1", 0, NULL, NULL);
	url("https://@vc/sdk", 0, NULL, NULL);
	url("https://v<c/sdk", 0, NULL, NULL);

	/* --- TLS failure messages --- */
	{
		struct h2k_tls tls = {0};
		struct h2k_http_peer p;
		CURL *h = curl_easy_init();

		ok(h2k_http_setup(h, &tls, &p) == 0, "policy applies to a curl handle");
		strcpy(p.seen_sha256, SHA256);
		h2k_http_fail(CURLE_PEER_FAILED_VERIFICATION, &p, "127.0.0.1:8989");
		is_int(h2k_errcode(), H2K_EX_TLS, "untrusted certificate: exit 4");
		ok(strstr(h2k_errmsg(), "127.0.0.1:8989: certificate not trusted") == h2k_errmsg(),
		    "untrusted: names the server: %s", h2k_errmsg());
		ok(strstr(h2k_errmsg(), "--thumbprint " "AB:CD:EF:01:23") &&
		    strstr(h2k_errmsg(), "-k"), "untrusted: tells how to pin it");
		p.pin_mismatch = 1;
		h2k_http_fail(CURLE_SSL_CONNECT_ERROR, &p, "127.0.0.1:8989");
		is_int(h2k_errcode(), H2K_EX_TLS, "pin mismatch: exit 4");
		ok(strstr(h2k_errmsg(), "does not match the pinned thumbprint") != NULL,
		    "pin mismatch: says so: %s", h2k_errmsg());
		p.pin_mismatch = 0;
		h2k_http_fail(CURLE_COULDNT_CONNECT, &p, "127.0.0.1:1");
		is_int(h2k_errcode(), H2K_EX_NET, "connection refused: exit 9");
		tls.thumbprint = (char *)"12:34";
		ok(h2k_http_setup(h, &tls, &p) == -1 && h2k_errcode() == H2K_EX_USAGE,
		    "malformed pin refused before connecting: %s", h2k_errmsg());
		curl_easy_cleanup(h);
	}
	/* Non-https schemes are refused by curl itself under the policy. */
	{
		struct h2k_tls tls = {0};
		struct h2k_http_peer p;
		CURL *h = curl_easy_init();
		CURLcode rc;

		h2k_http_setup(h, &tls, &p);
		curl_easy_setopt(h, CURLOPT_URL, "http://127.0.0.1:1/");
		rc = curl_easy_perform(h);
		is_int(rc, CURLE_UNSUPPORTED_PROTOCOL, "http:// refused by the handle");
		curl_easy_setopt(h, CURLOPT_URL, "file:///etc/passwd");
		rc = curl_easy_perform(h);
		is_int(rc, CURLE_UNSUPPORTED_PROTOCOL, "file:// refused by the handle");
		curl_easy_cleanup(h);
	}
	curl_global_cleanup();
	return tap_done();
}
