/* Unit tests for lib/util.c. SPDX-License-Identifier: LGPL-3.0-or-later */
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "h2k.h"
#include "tap.h"

int
main(void)
{
	struct h2k_buf b = {0};

	is_int(h2k_seterr(H2K_EX_TLS, "bad %s\nline", "cert"), -1, "seterr returns -1");
	is_str(h2k_errmsg(), "bad cert line", "newline folded to keep one line");
	is_int(h2k_errcode(), H2K_EX_TLS, "exit class kept");
	h2k_adderr("login");
	is_str(h2k_errmsg(), "login: bad cert line", "adderr prefixes");
	h2k_buf_xmlesc(&b, "a<b>&\"'c");
	is_str(b.data, "a&lt;b&gt;&amp;&quot;&apos;c", "xml escape");
	h2k_buf_free(&b);
	/* XML turns a bare CR into LF: a password holding one must survive. */
	h2k_buf_xmlesc(&b, "p\rw\r\nx\ty");
	is_str(b.data, "p&#13;w&#13;\nx\ty", "xml escape keeps CR as a reference");
	h2k_buf_free(&b);
	b.max = 4;
	is_int(h2k_buf_append(&b, "12345", 5), -1, "bounded buffer refuses overflow");
	is_int(h2k_errcode(), H2K_EX_NET, "overflow is a network error");
	h2k_buf_free(&b);
	/* A secret buffer keeps its content across growth. */
	struct h2k_buf sb = {.secret = 1};
	for (int i = 0; i < 100; i++)
		h2k_buf_append(&sb, "0123456789", 10);
	ok(sb.len == 1000 && sb.cap >= 1001 && !memcmp(sb.data + 990, "0123456789", 10),
	    "secret buffer grows with its content");
	h2k_buf_free(&sb);
	ok(sb.data == NULL && sb.cap == 0, "and frees");
	struct rlimit rl;
	is_int(h2k_nodump(), 0, "h2k_nodump");
	is_int(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0, "not dumpable");
	ok(getrlimit(RLIMIT_CORE, &rl) == 0 && rl.rlim_cur == 0 && rl.rlim_max == 0,
	    "core limit 0, soft and hard");
	is_int(h2k_log_parselevel("DEBUG"), H2K_LOG_DEBUG, "level names are case-blind");
	is_int(h2k_log_parselevel("loud"), -1, "unknown level refused");
	return tap_done();
}
