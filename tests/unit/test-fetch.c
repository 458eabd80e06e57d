/* Unit tests for the resume rule of lib/fetch.c. SPDX-License-Identifier: LGPL-3.0-or-later */
#include "fetch.h"
#include "h2k.h"
#include "tap.h"

#define D(status, off, total, etag, cr, netag) \
	h2k_resume_decide(status, off, total, etag, cr, netag)

int
main(void)
{
	/* 200: the whole file again, whatever we asked */
	is_int(D(200, 0, -1, NULL, NULL, NULL), H2K_RESUME_FROM0, "200 from 0");
	is_int(D(200, 5000, 10000, "\"a\"", NULL, "\"a\""), H2K_RESUME_FROM0,
	    "200 to a range request: truncate, never splice");
	is_int(D(200, 5000, 10000, NULL, "bytes 5000-9999/10000", NULL), H2K_RESUME_FROM0,
	    "200 with a stray Content-Range is still a whole body");

	/* 206 that continues exactly */
	is_int(D(206, 5000, 10000, NULL, "bytes 5000-9999/10000", NULL), H2K_RESUME_APPEND,
	    "206 at the offset, same length: append");
	is_int(D(206, 5000, -1, NULL, "bytes 5000-9999/10000", NULL), H2K_RESUME_APPEND,
	    "206 at the offset, length learnt now: append");
	is_int(D(206, 5000, -1, NULL, "bytes 5000-9999/*", NULL), H2K_RESUME_APPEND,
	    "206 at the offset, unknown length: append");
	is_int(D(206, 5000, 10000, "\"v1\"", "bytes 5000-9999/10000", "\"v1\""),
	    H2K_RESUME_APPEND, "206 with the same ETag: append");
	is_int(D(206, 0, -1, NULL, "bytes 0-9999/10000", NULL), H2K_RESUME_FROM0,
	    "206 from 0 to a plain request is a whole body");

	/* 206 that does not continue: restart */
	is_int(D(206, 5000, 10000, NULL, "bytes 5001-9999/10000", NULL), H2K_RESUME_RESTART,
	    "Content-Range one byte late: restart");
	is_int(D(206, 5000, 10000, NULL, "bytes 4999-9999/10000", NULL), H2K_RESUME_RESTART,
	    "Content-Range one byte early: restart");
	is_int(D(206, 5000, 10000, NULL, "bytes 5000-10999/11000", NULL), H2K_RESUME_RESTART,
	    "another complete length: restart");
	is_int(D(206, 5000, 10000, NULL, "bytes 5000-9999/*", NULL), H2K_RESUME_RESTART,
	    "length known, server says unknown: restart");
	is_int(D(206, 5000, 10000, "\"v1\"", "bytes 5000-9999/10000", "\"v2\""),
	    H2K_RESUME_RESTART, "ETag changed: restart");
	is_int(D(206, 5000, 10000, "\"v1\"", "bytes 5000-9999/10000", NULL),
	    H2K_RESUME_RESTART, "ETag vanished: restart");
	is_int(D(206, 5000, 10000, NULL, NULL, NULL), H2K_RESUME_RESTART,
	    "206 without Content-Range: restart");
	is_int(D(206, 5000, 10000, NULL, "bytes 5000-9999", NULL), H2K_RESUME_RESTART,
	    "malformed Content-Range: restart");
	is_int(D(206, 5000, 10000, NULL, "bytes */10000", NULL), H2K_RESUME_RESTART,
	    "206 with the unsatisfied form: restart");
	is_int(D(206, 5000, 10000, NULL, "bytes 5000-9999/10000, 0-1/10000", NULL),
	    H2K_RESUME_RESTART, "junk after the range: restart");

	/* 416: complete only when the server says the length is exactly what we hold */
	is_int(D(416, 10000, 10000, NULL, "bytes */10000", NULL), H2K_RESUME_COMPLETE,
	    "416 */N with N == kept bytes: complete");
	is_int(D(416, 10000, -1, NULL, "bytes */10000", NULL), H2K_RESUME_COMPLETE,
	    "416 */N, length unknown before: complete");
	is_int(D(416, 10000, 10000, "\"a\"", "bytes */10000", "\"b\""), H2K_RESUME_RESTART,
	    "416 with another ETag: restart");
	is_int(D(416, 10000, -1, NULL, "bytes */9000", NULL), H2K_RESUME_RESTART,
	    "416, file shorter than what we hold: restart");
	is_int(D(416, 10000, -1, NULL, NULL, NULL), H2K_RESUME_RESTART,
	    "416 without Content-Range: restart");
	is_int(D(416, 0, -1, NULL, "bytes */0", NULL), H2K_RESUME_RESTART,
	    "416 without a range request: restart");

	/* other statuses are for the retry logic */
	is_int(D(503, 5000, 10000, NULL, NULL, NULL), H2K_RESUME_OTHER, "503: not a body");
	is_int(D(404, 0, -1, NULL, NULL, NULL), H2K_RESUME_OTHER, "404: not a body");
	is_int(D(204, 0, -1, NULL, NULL, NULL), H2K_RESUME_OTHER, "204: not a body");

	/* whose bytes a .part is: another VM's or device's never resume */
	const char *u = "https://h/nfc/a/disk-0.vmdk", *u2 = "https://h/nfc/b/disk-0.vmdk";
	const char *me = "vm-1|u1|201|disk-0.vmdk";
	ok(h2k_fetch_same_source(u, me, u, me, NULL), "same VM, device, URL: resume");
	ok(!h2k_fetch_same_source(u, me, u, "vm-2|u2|201|disk-0.vmdk", NULL),
	    "same URL, meta names another VM: no");
	ok(!h2k_fetch_same_source(u, me, u, "vm-1|u1|202|disk-1.vmdk", NULL),
	    "same URL, meta names another device: no");
	ok(!h2k_fetch_same_source(u, me, u, NULL, NULL), "same URL, meta names no VM: no");
	ok(!h2k_fetch_same_source(u, NULL, u, me, NULL), "meta names a VM, the line none: no");
	ok(h2k_fetch_same_source(u, NULL, u, NULL, NULL), "plain URL lines: same URL resumes");
	ok(!h2k_fetch_same_source(u, NULL, u2, NULL, "\"e\""), "plain URL lines: another URL: no");
	ok(h2k_fetch_same_source(u2, me, u, me, "\"e\""), "new lease, same device, strong ETag: resume");
	ok(!h2k_fetch_same_source(u2, me, u, me, "W/\"e\""), "new lease, weak ETag: no");
	ok(!h2k_fetch_same_source(u2, me, u, me, NULL), "new lease, no ETag: no");
	ok(!h2k_fetch_same_source(u, me, NULL, me, NULL), "meta without a URL: no");
	return tap_done();
}
