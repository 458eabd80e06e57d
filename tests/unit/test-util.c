/* Unit tests for lib/util.c. SPDX-License-Identifier: LGPL-3.0-or-later */
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
	b.max = 4;
	is_int(h2k_buf_append(&b, "12345", 5), -1, "bounded buffer refuses overflow");
	is_int(h2k_errcode(), H2K_EX_NET, "overflow is a network error");
	h2k_buf_free(&b);
	is_int(h2k_log_parselevel("DEBUG"), H2K_LOG_DEBUG, "level names are case-blind");
	is_int(h2k_log_parselevel("loud"), -1, "unknown level refused");
	return tap_done();
}
