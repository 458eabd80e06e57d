/*
 * http.c - libcurl policy: TLS verification, thumbprint pin, https only,
 * timeouts, user agent, proxies.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * The pin.  curl's own CURLOPT_PINNEDPUBLICKEY pins the public key and is
 * checked after the handshake; vSphere users know the SHA-256/SHA-1
 * thumbprint of the whole DER certificate (govc about.cert -thumbprint).
 * So h2k installs an OpenSSL verify callback through
 * CURLOPT_SSL_CTX_FUNCTION.  curl builds a fresh SSL_CTX for every new
 * connection and calls the hook after its own SSL_CTX_set_verify(), so the
 * callback runs inside every handshake, before curl sends a request byte.
 * The callback always records the leaf certificate's thumbprints in the
 * handle's h2k_http_peer (for the "pin it with --thumbprint" message), then:
 *   - pin given: the chain and host name do not matter (curl's own checks
 *     are off); the leaf's thumbprint must equal the pin, else the
 *     handshake fails and pin_mismatch is set;
 *   - no pin, verification on: OpenSSL's verdict stands (curl also checks
 *     the host name);
 *   - -k without pin: everything is accepted.
 * A pin therefore also protects -k sessions: it wins over insecure.
 *
 * Proxies: curl would honour http_proxy/https_proxy/all_proxy from the
 * environment.  Export traffic carries session cookies, so h2k only uses a
 * proxy named explicitly in H2K_PROXY (any URL curl accepts); otherwise
 * none.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "h2k.h"
#include "http.h"

static int peer_idx = -1;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_rc;

static void
global_init_once(void)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		init_rc = -1;
		return;
	}
	peer_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	if (peer_idx < 0)
		init_rc = -1;
}

int
h2k_http_global_init(void)
{
	pthread_once(&init_once, global_init_once);
	if (init_rc < 0)
		return h2k_seterr(H2K_EX_FAIL, "cannot initialise libcurl/OpenSSL");
	return 0;
}

static void
hexcolon(const unsigned char *md, unsigned n, char *out, size_t outsz)
{
	static const char hx[] = "0123456789ABCDEF";
	size_t o = 0;

	for (unsigned i = 0; i < n && o + 3 < outsz; i++) {
		if (i)
			out[o++] = ':';
		out[o++] = hx[md[i] >> 4];
		out[o++] = hx[md[i] & 15];
	}
	out[o] = '\0';
}

static void
record_leaf(struct h2k_http_peer *p, X509 *leaf)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned n;

	if (!leaf)
		return;
	if (X509_digest(leaf, EVP_sha256(), md, &n) == 1)
		hexcolon(md, n, p->seen_sha256, sizeof p->seen_sha256);
	if (X509_digest(leaf, EVP_sha1(), md, &n) == 1)
		hexcolon(md, n, p->seen_sha1, sizeof p->seen_sha1);
}

static int
verify_cb(int preverify_ok, X509_STORE_CTX *store)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(store,
	    SSL_get_ex_data_X509_STORE_CTX_idx());
	struct h2k_http_peer *p;
	const struct h2k_tls *tls;
	char *pin;
	int ok;

	if (!ssl || !(p = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), peer_idx)))
		return preverify_ok;
	/* The leaf, whatever depth OpenSSL is looking at. */
	record_leaf(p, X509_STORE_CTX_get0_cert(store));
	tls = p->tls;
	if (tls && tls->thumbprint && *tls->thumbprint) {
		if (X509_STORE_CTX_get_error_depth(store) != 0)
			return 1;
		pin = h2k_thumbprint_norm(tls->thumbprint);
		ok = pin && (!strcmp(pin, p->seen_sha256) ||
		    !strcmp(pin, p->seen_sha1));
		free(pin);
		if (!ok) {
			p->pin_mismatch = 1;
			X509_STORE_CTX_set_error(store,
			    X509_V_ERR_CERT_REJECTED);
			return 0;
		}
		return 1;
	}
	if (tls && tls->insecure)
		return 1;
	return preverify_ok;
}

static CURLcode
sslctx_cb(CURL *h, void *sslctx, void *arg)
{
	struct h2k_http_peer *p = arg;

	(void)h;
	if (!p)
		return CURLE_OK;
	p->pin_mismatch = 0;
	p->seen_sha256[0] = p->seen_sha1[0] = '\0';
	if (!SSL_CTX_set_ex_data(sslctx, peer_idx, p))
		return CURLE_SSL_CERTPROBLEM;
	SSL_CTX_set_verify(sslctx, SSL_VERIFY_PEER, verify_cb);
	return CURLE_OK;
}

int
h2k_http_setup(CURL *h, const struct h2k_tls *tls, struct h2k_http_peer *peer)
{
	static const struct h2k_tls deftls;
	const char *proxy = getenv("H2K_PROXY");
	int pinned;
	CURLcode rc = CURLE_OK;

	if (h2k_http_global_init() < 0)
		return -1;
	if (!tls)
		tls = &deftls;
	pinned = tls->thumbprint && *tls->thumbprint;
	if (pinned) {
		char *n = h2k_thumbprint_norm(tls->thumbprint);
		if (!n)
			return h2k_seterr(H2K_EX_USAGE,
			    "bad thumbprint '%s': want SHA-256 (64 hex digits) or SHA-1 (40), colons optional",
			    tls->thumbprint);
		free(n);
	}
	if (peer) {
		memset(peer, 0, sizeof *peer);
		peer->tls = tls;
	}
#define SET(opt, val) do { if (rc == CURLE_OK) rc = curl_easy_setopt(h, opt, val); } while (0)
	SET(CURLOPT_PROTOCOLS_STR, tls->allow_http ? "https,http" : "https");
	SET(CURLOPT_REDIR_PROTOCOLS_STR, tls->allow_http ? "https,http" : "https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	SET(CURLOPT_USERAGENT, H2K_USER_AGENT);
	SET(CURLOPT_CONNECTTIMEOUT, tls->connect_timeout > 0 ? tls->connect_timeout : 30L);
	SET(CURLOPT_LOW_SPEED_TIME, tls->low_speed_time > 0 ? tls->low_speed_time : 60L);
	SET(CURLOPT_LOW_SPEED_LIMIT, tls->low_speed_limit > 0 ? tls->low_speed_limit : 1L);
	/* A resumed TLS session skips the certificate and so the pin check. */
	SET(CURLOPT_SSL_SESSIONID_CACHE, 0L);
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	SET(CURLOPT_TCP_KEEPIDLE, 60L);
	SET(CURLOPT_TCP_KEEPINTVL, 30L);
	SET(CURLOPT_PROXY, proxy && *proxy ? proxy : "");
	/* Never ask curl to print what it sends: headers carry the cookie. */
	SET(CURLOPT_VERBOSE, 0L);
	if (pinned || tls->insecure) {
		/* The callback decides; curl's chain and host checks would
		 * refuse a self-signed but pinned certificate. */
		SET(CURLOPT_SSL_VERIFYPEER, 0L);
		SET(CURLOPT_SSL_VERIFYHOST, 0L);
	} else {
		SET(CURLOPT_SSL_VERIFYPEER, 1L);
		SET(CURLOPT_SSL_VERIFYHOST, 2L);
		if (tls->ca_pem) {
			struct curl_blob b = {(void *)tls->ca_pem,
			    strlen(tls->ca_pem), CURL_BLOB_COPY};

			SET(CURLOPT_CAINFO_BLOB, &b);
		} else if (tls->ca_file && *tls->ca_file)
			SET(CURLOPT_CAINFO, tls->ca_file);
	}
	if (peer) {
		SET(CURLOPT_ERRORBUFFER, peer->errbuf);
		SET(CURLOPT_SSL_CTX_FUNCTION, sslctx_cb);
		SET(CURLOPT_SSL_CTX_DATA, peer);
	}
#undef SET
	if (rc != CURLE_OK)
		return h2k_seterr(H2K_EX_FAIL, "libcurl refuses TLS policy: %s "
		    "(needs libcurl >= 7.85 built with OpenSSL)",
		    curl_easy_strerror(rc));
	return 0;
}

int
h2k_http_fail(CURLcode rc, const struct h2k_http_peer *peer, const char *what)
{
	const char *detail = peer && peer->errbuf[0] ? peer->errbuf :
	    curl_easy_strerror(rc);
	const char *tp = peer && peer->seen_sha256[0] ? peer->seen_sha256 : NULL;

	if (!what)
		what = "request";
	if (peer && peer->pin_mismatch)
		return h2k_seterr(H2K_EX_TLS,
		    "%s: certificate does not match the pinned thumbprint "
		    "(server presents SHA-256 %s); refusing to talk to it",
		    what, tp ? tp : "?");
	switch (rc) {
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
		if (tp)
			return h2k_seterr(H2K_EX_TLS,
			    "%s: certificate not trusted (%s; SHA-256 thumbprint %s); "
			    "verify it and pin it with --thumbprint %s, or use -k",
			    what, detail, tp, tp);
		return h2k_seterr(H2K_EX_TLS, "%s: certificate not trusted (%s)",
		    what, detail);
	case CURLE_SSL_CONNECT_ERROR:
		return h2k_seterr(H2K_EX_TLS, "%s: TLS handshake failed: %s",
		    what, detail);
	case CURLE_UNSUPPORTED_PROTOCOL:
		return h2k_seterr(H2K_EX_NET,
		    "%s: refused: only https is allowed (%s)", what, detail);
	case CURLE_OPERATION_TIMEDOUT:
		return h2k_seterr(H2K_EX_NET, "%s: timed out (%s)", what, detail);
	default:
		return h2k_seterr(H2K_EX_NET, "%s: %s", what, detail);
	}
}

char *
h2k_thumbprint_norm(const char *s)
{
	unsigned char hex[64];
	size_t n = 0;
	char *out, *o;

	if (!s)
		return NULL;
	for (; *s; s++) {
		if (*s == ':' || *s == ' ')
			continue;
		if (!isxdigit((unsigned char)*s) || n == sizeof hex)
			return NULL;
		hex[n++] = (unsigned char)toupper((unsigned char)*s);
	}
	if (n != 64 && n != 40)
		return NULL;
	if (!(out = h2k_malloc(n / 2 * 3)))
		return NULL;
	o = out;
	for (size_t i = 0; i < n; i += 2) {
		if (i)
			*o++ = ':';
		*o++ = (char)hex[i];
		*o++ = (char)hex[i + 1];
	}
	*o = '\0';
	return out;
}

static int
valid_host(const char *h, size_t n)
{
	if (n == 0 || n > 253)
		return 0;
	if (h[0] == '[') {
		if (n < 3 || h[n - 1] != ']')
			return 0;
		for (size_t i = 1; i < n - 1; i++)
			if (!isxdigit((unsigned char)h[i]) && h[i] != ':' &&
			    h[i] != '.')
				return 0;
		return 1;
	}
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)h[i]) && h[i] != '.' &&
		    h[i] != '-' && h[i] != '_')
			return 0;
	return 1;
}

/*
 * govc accepts "host", "host:port", "scheme://[user[:pass]@]host[:port][/path]".
 * h2k takes the same, drops nothing silently, and refuses a password in the
 * URL: the URL travels on command lines and in ps(1) output.
 */
char *
h2k_url_normalize(const char *in, int allow_http, char **user)
{
	const char *p, *auth, *aend, *at, *host, *hend, *port = NULL, *path;
	const char *scheme = "https";
	size_t n;
	char *u = NULL, *out;

	if (user)
		*user = NULL;
	if (!in || !*in)
		return h2k_seterr(H2K_EX_USAGE, "empty server URL"), NULL;
	for (p = in; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			return h2k_seterr(H2K_EX_USAGE,
			    "server URL contains a space or control character"), NULL;
	if ((p = strstr(in, "://"))) {
		n = (size_t)(p - in);
		if (n == 5 && !strncasecmp(in, "https", 5))
			scheme = "https";
		else if (n == 4 && !strncasecmp(in, "http", 4)) {
			if (!allow_http)
				return h2k_seterr(H2K_EX_USAGE,
				    "%s: plain http is not allowed, use https", in), NULL;
			scheme = "http";
		} else
			return h2k_seterr(H2K_EX_USAGE,
			    "%s: unsupported URL scheme (want https)", in), NULL;
		auth = p + 3;
	} else
		auth = in;
	aend = auth + strcspn(auth, "/?#");
	if (*aend == '?' || *aend == '#' || strpbrk(aend, "?#"))
		return h2k_seterr(H2K_EX_USAGE,
		    "%s: query or fragment not allowed in the server URL", in), NULL;
	/* The last '@' ends the user part, as in Go's net/url. */
	at = NULL;
	for (p = auth; p < aend; p++)
		if (*p == '@')
			at = p;
	host = auth;
	if (at) {
		const char *colon = memchr(auth, ':', (size_t)(at - auth));
		if (colon)
			return h2k_seterr(H2K_EX_USAGE,
			    "password in the server URL refused (command lines and "
			    "the environment are visible to other users); "
			    "use --password-file or --password-stdin"), NULL;
		if (at == auth)
			return h2k_seterr(H2K_EX_USAGE,
			    "empty user name in the server URL"), NULL;
		if (!(u = h2k_pct_decode(auth, (size_t)(at - auth))))
			return NULL;
		host = at + 1;
	}
	if (*host == '[') {
		const char *rb = memchr(host, ']', (size_t)(aend - host));
		if (!rb)
			goto bad;
		hend = rb + 1;
	} else {
		hend = memchr(host, ':', (size_t)(aend - host));
		if (!hend)
			hend = aend;
	}
	if (!valid_host(host, (size_t)(hend - host)))
		goto bad;
	if (hend < aend) {
		long pn;
		char *e;
		if (*hend != ':' || hend + 1 == aend)
			goto bad;
		port = hend + 1;
		pn = strtol(port, &e, 10);
		if (e != aend || pn < 1 || pn > 65535 || *port == '+' || *port == '-')
			goto bad;
	}
	path = *aend ? aend : "/sdk";
	if (!strcmp(path, "/"))
		path = "/sdk";
	out = h2k_asprintf("%s://%.*s%s%.*s%s", scheme, (int)(hend - host), host,
	    port ? ":" : "", port ? (int)(aend - port) : 0, port ? port : "",
	    path);
	if (!out) {
		free(u);
		return NULL;
	}
	if (user)
		*user = u;
	else
		free(u);
	return out;
bad:
	free(u);
	h2k_seterr(H2K_EX_USAGE, "%s: malformed server URL (want host, host:port "
	    "or https://host[:port]/sdk)", in);
	return NULL;
}
