/*
 * Unit tests for lib/finish*.c: the checks finish_line makes on an
 * h2k-fetch line before it talks to the server (no server here: every
 * case below must be refused before the first SOAP call), and nothing
 * written when it refuses.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "finish-int.h"
#include "h2k.h"
#include "tap.h"
#include "vmdir.h"

#define SHA_Z "2d6ccd34ad7af363159ed4bbe18c0e43c681f606877d9ffc96b62200720d7291"
#define SHA_X "0000000000000000000000000000000000000000000000000000000000000000"

static char top[256], vdir[300];

static void
put(const char *name, const char *text)
{
	char p[400];
	FILE *f;

	snprintf(p, sizeof p, "%s/%s", vdir, name);
	if ((f = fopen(p, "w"))) {
		fputs(text, f);
		fclose(f);
	}
}

/*
 * finish_line over {"name":"web1","moref":MOREF,"lease":{...},"dir":vdir,
 * "files":FILES}; "@D" in FILES stands for vdir.  Must fail: returns the
 * exit code, msg what it said.
 */
static int
refuse(const char *moref, const char *files, int verify, char *msg, size_t len)
{
	struct h2k_finish_opts o = { .verify = verify };
	struct h2k_buf b = {0};
	for (const char *f = files, *at; *f; f = at + 2) {
		if (!(at = strstr(f, "@D"))) {
			h2k_buf_printf(&b, "%s", f);
			break;
		}
		h2k_buf_printf(&b, "%.*s%s", (int)(at - f), f, vdir);
	}
	char *fl = b.data;
	char *s = h2k_asprintf("{\"name\":\"web1\",\"moref\":\"%s\",\"lease\":"
	    "{\"moref\":\"lease-1\",\"server\":\"https://vc/sdk\"},\"dir\":\"%s\","
	    "\"files\":%s}", moref, vdir, fl);
	cJSON *line = s ? cJSON_Parse(s) : NULL;
	int ended = -1, rc, code;

	h2k_clearerr();
	rc = line ? finish_line(NULL, line, &o,
	    &(struct h2k_handoff){ .deliver_fd = -1 }, stdout, &ended) : -2;
	code = rc == -1 ? h2k_errcode() : -100 + rc;
	snprintf(msg, len, "%s", h2k_errmsg());
	if (ended != 0)
		code = -50;  /* nothing was ended: the lease is still to be */
	cJSON_Delete(line);
	free(s);
	h2k_buf_free(&b);
	return code;
}

static void
refused(const char *files, int verify, int want, const char *says,
    const char *what)
{
	char msg[1024];
	int code = refuse("vm-1", files, verify, msg, sizeof msg);

	ok(code == want && strstr(msg, says), "%s: exit %d (got %d: %s)", what,
	    want, code, msg);
}

int
main(void)
{
	struct h2k_vmid id = { .server = "https://vc/sdk", .moref = "vm-1",
	    .name = "web1" };
	struct h2k_vmdir d = { .dirfd = -1, .lockfd = -1 };
	char msg[1024], cmd[400], p[400];
	struct stat st;

	snprintf(top, sizeof top, "/tmp/h2k-test-finish.%d", (int)getpid());
	if (mkdir(top, 0700) < 0 || h2k_vmdir_claim(top, &id, 0, &d) < 0) {
		skip(16, "no VM folder under /tmp: %s", h2k_errmsg());
		return tap_done();
	}
	snprintf(vdir, sizeof vdir, "%s", d.path);
	h2k_vmdir_close(&d);
	put("disk-0.vmdk", "zzzz");
	put("web1.ovf", "not mine");
	snprintf(p, sizeof p, "%s/adir", vdir);
	mkdir(p, 0700);

	cJSON *bad = cJSON_Parse("{\"name\":\"web1\",\"files\":[]}");
	int ended = -1;
	ok(finish_line(NULL, bad, &(struct h2k_finish_opts){0},
	    &(struct h2k_handoff){ .deliver_fd = -1 }, stdout, &ended) == -1 &&
	    h2k_errcode() == H2K_EX_USAGE && strstr(h2k_errmsg(),
	    "not an h2k-fetch line") && ended == 0,
	    "a line without moref or lease: not an h2k-fetch line (%s)", h2k_errmsg());
	cJSON_Delete(bad);

	refused("[]", 0, H2K_EX_USAGE, "\"files\" is empty", "no files");
	refused("[{\"key\":\"k\",\"path\":\"@D/disk-0.vmdk\",\"sha256\":\"" SHA_Z "\"}]",
	    0, H2K_EX_USAGE, "lacks key, path or size", "a file without a size");
	refused("[{\"key\":\"k\",\"path\":\"@D/disk-0.vmdk\",\"size\":4,"
	    "\"sha256\":\"abc\"}]", 0, H2K_EX_USAGE, "no sha256 from h2k-fetch",
	    "a short digest");
	refused("[{\"key\":\"k\",\"path\":\"/etc/passwd\",\"size\":4,"
	    "\"sha256\":\"" SHA_Z "\"}]", 0, H2K_EX_USAGE, "is not in",
	    "a file outside the VM's folder");
	refused("[{\"key\":\"k\",\"path\":\"@D/web1.ovf\",\"size\":8,"
	    "\"sha256\":\"" SHA_Z "\"}]", 0, H2K_EX_USAGE,
	    "a name h2k-ovf writes itself", "a download named like the descriptor");
	refused("[{\"key\":\"k\",\"path\":\"@D/web1.hyper2kvm.json\",\"size\":8,"
	    "\"sha256\":\"" SHA_Z "\"}]", 0, H2K_EX_USAGE,
	    "a name h2k-ovf writes itself", "a download named like the hyper2kvm manifest");
	refused("[{\"key\":\"k\",\"path\":\"@D/disk-0.vmdk\",\"size\":4,"
	    "\"sha256\":\"" SHA_Z "\"},{\"key\":\"k2\",\"path\":\"@D/disk-0.vmdk\","
	    "\"size\":4,\"sha256\":\"" SHA_Z "\"}]", 0, H2K_EX_USAGE, "listed twice",
	    "one file twice");
	refused("[{\"key\":\"k\",\"path\":\"@D/gone.vmdk\",\"size\":4,"
	    "\"sha256\":\"" SHA_Z "\"}]", 0, H2K_EX_NOTFOUND, "gone.vmdk",
	    "a file not on disk");
	refused("[{\"key\":\"k\",\"path\":\"@D/adir\",\"size\":4,"
	    "\"sha256\":\"" SHA_Z "\"}]", 0, H2K_EX_IO, "not a regular file",
	    "a directory for a file");
	refused("[{\"key\":\"k\",\"path\":\"@D/disk-0.vmdk\",\"size\":5,"
	    "\"sha256\":\"" SHA_Z "\"}]", 0, H2K_EX_IO,
	    "4 bytes on disk, h2k-fetch wrote 5", "a size that differs");
	refused("[{\"key\":\"k\",\"path\":\"@D/disk-0.vmdk\",\"size\":4,"
	    "\"sha256\":\"" SHA_X "\"}]", 1, H2K_EX_IO, "SHA-256 " SHA_Z,
	    "--verify: bytes that changed since the download");

	/* the folder is another VM's: its marker says vm-1 */
	int code = refuse("vm-2", "[{\"key\":\"k\",\"path\":\"@D/disk-0.vmdk\","
	    "\"size\":4,\"sha256\":\"" SHA_Z "\"}]", 0, msg, sizeof msg);
	ok(code > 0 && code != H2K_EX_USAGE, "another VM's folder is refused "
	    "(exit %d: %s)", code, msg);

	/* none of this wrote anything */
	snprintf(p, sizeof p, "%s/web1.mf", vdir);
	ok(stat(p, &st) < 0 && errno == ENOENT, "no manifest was written");
	snprintf(p, sizeof p, "%s/web1.ovf", vdir);
	ok(stat(p, &st) == 0 && st.st_size == 8, "the file in the descriptor's "
	    "place is untouched");

	/* the signal flag the handler sets */
	h2k_finish_cancel(0);
	ok(finish_signal == SIGTERM, "a cancel without a signal number is SIGTERM's");
	h2k_finish_cancel(SIGINT);
	ok(finish_signal == SIGINT, "else the signal's");

	snprintf(cmd, sizeof cmd, "rm -rf %s", top);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", top);
	return tap_done();
}
