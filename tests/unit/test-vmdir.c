/* Unit tests for lib/vmdir.c. SPDX-License-Identifier: LGPL-3.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "h2k.h"
#include "pathsafe.h"
#include "vmdir.h"
#include "tap.h"

static void
name_is(const char *safe, const struct h2k_vmid *id, int n, const char *want)
{
	char *s = h2k_vmdir_name(safe, id, n);
	is_str(s, want, "candidate %d of %s", n, safe);
	free(s);
}

int
main(void)
{
	struct h2k_vmid a = { "https://vc/sdk", "vm-54", "iu-1", "web", NULL };
	struct h2k_vmid b = a, anon = { NULL, NULL, NULL, "web", NULL }, anon2 = anon;

	/* the same VM: every field known on both sides equal */
	ok(h2k_vmid_match(&a, &b), "identical: same VM");
	b.moref = "vm-55";
	ok(!h2k_vmid_match(&a, &b), "another moref: another VM");
	b = a;
	b.instance_uuid = "iu-2";
	ok(!h2k_vmid_match(&a, &b), "another instance UUID: another VM");
	b = a;
	b.server = "https://vc2/sdk";
	ok(!h2k_vmid_match(&a, &b), "same moref on another vCenter: another VM");
	b = a;
	b.server = NULL;
	b.instance_uuid = "";
	ok(h2k_vmid_match(&a, &b), "moref equal, the rest unknown on one side: same VM");
	b = a;
	b.moref = NULL;
	ok(h2k_vmid_match(&a, &b), "instance UUID equal, moref unknown: same VM");
	b = a;
	b.name = "renamed";
	ok(h2k_vmid_match(&a, &b), "a rename does not make another VM");
	ok(!h2k_vmid_match(&a, &anon) && !h2k_vmid_match(&anon, &a),
	    "identified and anonymous never match");
	anon2.name = "other";
	ok(h2k_vmid_match(&anon, &anon2), "two anonymous identities match (the lock tells them apart)");
	ok(h2k_vmid_anonymous(&anon) && !h2k_vmid_anonymous(&a), "anonymous");

	/* the naming rule: deterministic, readable, bounded */
	name_is("web", &a, 0, "web");
	name_is("web", &a, 1, "web--vm-54");
	name_is("web", &a, 2, "web--vm-54-2");
	name_is("web", &a, 9, "web--vm-54-9");
	errno = 5;
	ok(h2k_vmdir_name("web", &a, 10) == NULL && errno == 0, "10 candidates, then none");
	b = a;
	b.moref = NULL;
	name_is("web", &b, 1, "web--iu-1");
	b.instance_uuid = "../x";
	name_is("web", &b, 1, "web--___x");
	name_is("web", &anon, 1, "web-2");
	name_is("web", &anon, 99, "web-100");
	ok(h2k_vmdir_name("web", &anon, 100) == NULL, "100 anonymous candidates, then none");
	{
		char big[H2K_PATHSAFE_MAX + 1];
		memset(big, 'x', H2K_PATHSAFE_MAX);
		big[H2K_PATHSAFE_MAX] = '\0';
		/* a 2-byte UTF-8 character straddling the cut is not split */
		big[H2K_PATHSAFE_MAX - 16] = (char)0xc3;
		big[H2K_PATHSAFE_MAX - 15] = (char)0xa9;
		for (int n = 1; n < 10; n++) {
			char *s = h2k_vmdir_name(big, &a, n);
			ok(s && strlen(s) <= H2K_PATHSAFE_MAX, "long name, candidate %d bounded", n);
			ok(s && strstr(s, "--vm-54"), "long name, candidate %d keeps the moref", n);
			ok(s && (unsigned char)s[strlen(s) - strlen(strstr(s, "--")) - 1] != 0xc3,
			    "long name, candidate %d cut on a character boundary", n);
			free(s);
		}
	}

	/* claim, marker, lock, completed exports, on a scratch folder */
	char tmpl[] = "/tmp/test-vmdir.XXXXXX";
	char *root = mkdtemp(tmpl);
	struct h2k_vmdir d1, d2, d3, d4;
	struct h2k_vmid c = a;
	c.moref = "vm-60";
	c.instance_uuid = "iu-6";
	ok(root != NULL, "scratch folder");
	ok(h2k_vmdir_claim(root, &a, 0, &d1) == 0, "claim a free name");
	char *want = h2k_asprintf("%s/web", root);
	is_str(d1.path, want, "the name itself");
	free(want);
	ok(h2k_vmdir_claim(root, &c, 0, &d2) == 0, "another VM of that name");
	want = h2k_asprintf("%s/web--vm-60", root);
	is_str(d2.path, want, "gets NAME--MOREF");
	free(want);
	ok(h2k_vmdir_claim(root, &a, 0, &d3) < 0 && h2k_errcode() == H2K_EX_EXISTS,
	    "the same VM while its folder is locked: refused, exit 12");
	ok(strstr(h2k_errmsg(), "in use") != NULL, "... saying it is in use: %s", h2k_errmsg());
	ok(h2k_vmdir_check(d1.path, &a, &d4) < 0 && h2k_errcode() == H2K_EX_EXISTS,
	    "check while exclusive: refused");
	ok(h2k_vmdir_share(&d1) == 0, "downgrade to shared");
	ok(h2k_vmdir_check(d1.path, &a, &d4) == 0, "check when shared: allowed");
	h2k_vmdir_close(&d4);
	ok(h2k_vmdir_check(d1.path, &c, &d4) < 0 && h2k_errcode() == H2K_EX_EXISTS,
	    "check by another VM: refused");
	ok(strstr(h2k_errmsg(), "belongs to web (vm-54)") != NULL, "... naming the owner: %s",
	    h2k_errmsg());
	h2k_vmdir_close(&d1);
	h2k_vmdir_close(&d2);
	/* a completed export of the same VM */
	char *ovf = h2k_asprintf("%s/web/web.ovf", root);
	char *mf = h2k_asprintf("%s/web/web.mf", root);
	int fd = open(ovf, O_WRONLY | O_CREAT, 0600);
	close(fd);
	/* h2k-ovf killed between its descriptor and its manifest */
	ok(h2k_vmdir_claim(root, &a, 0, &d3) == 0, "a lone descriptor: no completed export");
	/* attack-left: it described another run's files; taking the folder
	 * removes it */
	ok(access(ovf, F_OK) < 0, "... and the lone descriptor is removed");
	h2k_vmdir_close(&d3);
	fd = open(ovf, O_WRONLY | O_CREAT, 0600);
	close(fd);
	fd = open(mf, O_WRONLY | O_CREAT, 0600);
	close(fd);
	ok(h2k_vmdir_claim(root, &a, 0, &d3) < 0 && h2k_errcode() == H2K_EX_EXISTS,
	    "completed export (.ovf and .mf): refused, exit 12");
	ok(access(ovf, F_OK) == 0 && access(mf, F_OK) == 0, "... and left in place");
	ok(h2k_vmdir_claim(root, &a, H2K_VMDIR_OVERWRITE, &d3) == 0, "--overwrite: taken");
	ok(access(ovf, F_OK) < 0 && access(mf, F_OK) < 0, "... the old .ovf and .mf removed");
	h2k_vmdir_close(&d3);
	free(mf);
	/* the rerun in the other order finds the same folders */
	ok(h2k_vmdir_claim(root, &c, 0, &d2) == 0 && strstr(d2.path, "/web--vm-60"),
	    "rerun, other order: the same folder");
	h2k_vmdir_close(&d2);
	free(ovf);
	{
		char *cmd = h2k_asprintf("rm -rf '%s'", root);
		if (cmd && system(cmd) != 0)
			fprintf(stderr, "# could not remove %s\n", root);
		free(cmd);
	}
	return tap_done();
}
