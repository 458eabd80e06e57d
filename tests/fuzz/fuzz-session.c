/*
 * fuzz-session.c - libFuzzer harness for the session file reader: the
 * input becomes the content of a 0600 session file in a 0700 folder.
 * needs: lib/session.c
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * A session the reader accepts must have a URL and a cookie, must be
 * written back by h2k_session_save (0600), and must read back equal.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "h2k.h"
#include "session.h"

static char dir[] = "/tmp/h2k-fuzz-session.XXXXXX";
static char in[64], out[64];

static void
cleanup(void)
{
	unlink(in);
	unlink(out);
	rmdir(dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	if (!mkdtemp(dir))
		abort();
	snprintf(in, sizeof in, "%s/in.json", dir);
	snprintf(out, sizeof out, "%s/out.json", dir);
	atexit(cleanup);
	return 0;
}

static int
eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct h2k_session s, t;
	struct stat st;
	int fd = open(in, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || write(fd, data, size) != (ssize_t)size) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	close(fd);
	if (h2k_session_load(in, &s) < 0) {
		if (!strcmp(h2k_errmsg(), "unknown error")) {
			fprintf(stderr, "fuzz-session: refused without a message\n");
			abort();
		}
		return 0;
	}
	if (!s.url || !s.cookie) {
		fprintf(stderr, "fuzz-session: accepted a session without url/cookie\n");
		abort();
	}
	if (h2k_session_save(out, &s) == 0) {
		if (stat(out, &st) < 0 || (st.st_mode & 077)) {
			fprintf(stderr, "fuzz-session: saved session is not 0600\n");
			abort();
		}
		if (h2k_session_load(out, &t) < 0) {
			fprintf(stderr, "fuzz-session: saved session does not load: %s\n",
			    h2k_errmsg());
			abort();
		}
		if (!eq(s.url, t.url) || !eq(s.cookie, t.cookie) ||
		    !eq(s.thumbprint, t.thumbprint) || s.insecure != t.insecure ||
		    !eq(s.user, t.user) || !eq(s.ca_file, t.ca_file)) {
			fprintf(stderr, "fuzz-session: session changed in a save/load round trip\n");
			abort();
		}
		h2k_session_free(&t);
	}
	h2k_session_free(&s);
	return 0;
}
