/*
 * fuzz-config.c - libFuzzer harness for the YAML config loader (the
 * hyper2kvm-providers keys), fed as the user config file (0600).
 * needs: lib/config.c
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * Any input: an error with a message, or a config; never a crash, leak
 * or an over-long read.  Accepted values must be in range.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "h2k.h"

static char dir[] = "/tmp/h2k-fuzz-config.XXXXXX";
static char in[64];

static void
cleanup(void)
{
	unlink(in);
	rmdir(dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	if (!mkdtemp(dir))
		abort();
	snprintf(in, sizeof in, "%s/config.yaml", dir);
	atexit(cleanup);
	setenv("H2K_SYSCONFIG", "/nonexistent/h2k-fuzz.yaml", 1);
	unsetenv("H2K_URL"), unsetenv("H2K_USERNAME"), unsetenv("H2K_PASSWORD");
	unsetenv("GOVC_URL"), unsetenv("GOVC_USERNAME"), unsetenv("GOVC_PASSWORD");
	h2k_log_setlevel(H2K_LOG_ERROR); /* unknown keys warn: keep the log clean */
	return 0;
}

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct h2k_config c;
	int fd = open(in, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || write(fd, data, size) != (ssize_t)size) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	close(fd);
	h2k_config_init(&c);
	if (h2k_config_load(&c, in) < 0) {
		if (!strcmp(h2k_errmsg(), "unknown error") || strchr(h2k_errmsg(), '\n')) {
			fprintf(stderr, "fuzz-config: refused without a one-line message\n");
			abort();
		}
	} else {
		if (c.insecure < -1 || c.insecure > 1 || c.log_level < -1 ||
		    c.log_level > H2K_LOG_TRACE || c.download_workers < 0) {
			fprintf(stderr, "fuzz-config: value out of range accepted\n");
			abort();
		}
	}
	h2k_config_free(&c);
	return 0;
}
