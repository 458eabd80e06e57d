/*
 * http.h - the one place that sets h2k's HTTP and TLS policy on libcurl.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * Every curl handle h2k uses (SOAP calls, NFC disk downloads) is set up by
 * h2k_http_setup(): https only (http only with allow_http), TLS verified
 * against the system CAs (or ca_file) unless insecure, optional pin of the
 * server certificate's SHA-256 or SHA-1 thumbprint checked in the OpenSSL
 * verify callback before any request byte (so before any credential) is
 * sent, connect timeout, low-speed abort, user agent, no redirects to other
 * schemes, no proxies from the environment unless configured.
 *
 * Proxy: curl's http_proxy/https_proxy/all_proxy handling is off; a proxy is
 * used only when H2K_PROXY names one (any URL curl takes, e.g.
 * http://proxy:3128).  The thumbprint pin is checked against the vSphere
 * server's certificate, end to end through the proxy's CONNECT tunnel.
 */
#ifndef H2K_HTTP_H
#define H2K_HTTP_H

#include <curl/curl.h>

struct h2k_tls {
	int insecure;          /* -k: skip chain/host verification */
	char *thumbprint;      /* pin: hex, colons optional; SHA-256 (64 hex) or SHA-1 (40) */
	char *ca_file;         /* PEM bundle instead of the system CAs */
	/*
	 * The bundle itself (NUL-terminated), used instead of ca_file: what
	 * was checked is what is trusted.  libcurl copies it during
	 * h2k_http_setup; it need not outlive that call.
	 */
	const char *ca_pem;
	int allow_http;        /* permit http:// (device URLs only, explicit opt-in) */
	long connect_timeout;  /* seconds; 0: 30 */
	long low_speed_time;   /* seconds below low_speed_limit before abort; 0: 60 */
	long low_speed_limit;  /* bytes/s; 0: 1 */
};

/*
 * Per-handle state: what the TLS callback saw.  Owned by the caller and must
 * outlive the handle's transfers.
 */
struct h2k_http_peer {
	const struct h2k_tls *tls;
	char seen_sha256[96];  /* leaf certificate thumbprint, AA:BB:.. upper hex */
	char seen_sha1[64];
	int pin_mismatch;      /* set when a pin was given and did not match */
	char errbuf[CURL_ERROR_SIZE]; /* curl's detail for the last failure */
};

/* Once per process, before threads. Returns -1 on failure. */
int h2k_http_global_init(void);

/*
 * Apply policy to h. peer may be NULL when no pin/thumbprint capture is
 * wanted (never for vSphere traffic).
 */
int h2k_http_setup(CURL *h, const struct h2k_tls *tls, struct h2k_http_peer *peer);

/*
 * Turn a failed curl result into an h2k error (returns -1) with the right
 * exit class: H2K_EX_TLS for certificate trouble (message names the server's
 * SHA-256 thumbprint and says "pin it with --thumbprint SHA256 or use -k"),
 * H2K_EX_NET otherwise. what names the operation ("login to HOST").
 */
int h2k_http_fail(CURLcode rc, const struct h2k_http_peer *peer, const char *what);

/* Normalise a thumbprint to upper-case colon-separated hex; NULL if malformed. */
char *h2k_thumbprint_norm(const char *s);

/*
 * Normalise a vSphere URL the way govc takes it: "host", "host:port",
 * "https://host", "https://user@host/sdk" -> "https://host[:port]/sdk".
 * A user part, if present, is returned in *user (may be NULL). NULL + error
 * on a malformed URL or a scheme other than https (http only if allow_http).
 */
char *h2k_url_normalize(const char *in, int allow_http, char **user);

#endif
