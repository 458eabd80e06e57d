/* Unit tests for lib/pathsafe.c. SPDX-License-Identifier: LGPL-3.0-or-later */
#include <stdlib.h>
#include <string.h>

#include "h2k.h"
#include "pathsafe.h"
#include "tap.h"

static void
check(const char *in, const char *want, const char *what)
{
	char *s = h2k_pathsafe(in, "disk");
	is_str(s, want, "%s", what);
	free(s);
}

/* One component, not hidden, no control bytes, bounded. */
static int
safe(const char *s)
{
	if (!s || !*s || strlen(s) > H2K_PATHSAFE_MAX + 1 || s[0] == '.' || s[0] == '-')
		return 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f || *p == '/' || *p == '\\')
			return 0;
	return strcmp(s, ".") && strcmp(s, "..");
}

int
main(void)
{
	check("disk-0.vmdk", "disk-0.vmdk", "plain name unchanged");
	check("../../etc/cron.d/x", "___.._etc_cron.d_x", "traversal flattened into one component");
	check("/etc/passwd", "_etc_passwd", "absolute path flattened");
	check("..", "__", "dot-dot is not a name");
	check(".", "_", "dot is not a name");
	check("...", "___", "dots only");
	check(".bashrc", "_bashrc", "no hidden files");
	check("-rf", "_rf", "no leading dash");
	check("a\nb\tc\x7f" "d", "a_b_c_d", "control characters replaced");
	check("a\\b", "a_b", "backslash replaced");
	check("", "disk", "empty gets the fallback");
	check(NULL, "disk", "NULL gets the fallback");
	check("web\xc3\xa9.vmdk", "web\xc3\xa9.vmdk", "valid UTF-8 kept");
	check("x\xff\xfey", "x__y", "invalid UTF-8 replaced");
	check("x\xc0\xafy", "x__y", "overlong '/' replaced");
	check("x\xc2\x85y", "x_y", "C1 control (NEL) replaced");
	check("evil\xe2\x80\xaekdmv.exe", "evil_kdmv.exe", "bidi override replaced");
	check("x\xed\xa0\x80y", "x___y", "UTF-16 surrogate replaced");
	check("disk.vmdk.part", "disk.vmdk.part_", "cannot pose as a temporary file");
	check("disk.vmdk.part.meta", "disk.vmdk.part.meta_", "cannot pose as a meta file");

	/* long names: cut, extension kept, UTF-8 not split */
	char longn[1000];
	memset(longn, 'a', sizeof longn);
	memcpy(longn + 990, ".vmdk", 6);
	char *s = h2k_pathsafe(longn, "disk");
	ok(s && strlen(s) == H2K_PATHSAFE_MAX, "long name cut to %d bytes", H2K_PATHSAFE_MAX);
	ok(s && strcmp(s + strlen(s) - 5, ".vmdk") == 0, "extension survives the cut");
	free(s);
	char u[700] = "";
	for (int i = 0; i < 300; i++)
		strcat(u, "\xc3\xa9");
	s = h2k_pathsafe(u, "disk");
	ok(s && strlen(s) <= H2K_PATHSAFE_MAX && strlen(s) % 2 == 0,
	    "two-byte characters are not split (%zu bytes)", s ? strlen(s) : 0);
	free(s);

	/* every byte value alone and in pairs yields a safe component */
	int allsafe = 1;
	for (int a = 1; a < 256; a++)
		for (int b = 0; b < 256; b++) {
			char in[3] = { (char)a, (char)b, 0 };
			s = h2k_pathsafe(in, "disk");
			if (!safe(s))
				allsafe = 0;
			free(s);
		}
	ok(allsafe, "all one- and two-byte inputs give a safe component");

	/* clash-free names in one folder */
	struct h2k_pathset set = {0};
	char *a = h2k_pathset_claim(&set, "disk.vmdk");
	char *b = h2k_pathset_claim(&set, "disk.vmdk");
	char *c = h2k_pathset_claim(&set, "disk-3.vmdk");
	char *d = h2k_pathset_claim(&set, "disk.vmdk");
	char *e = h2k_pathset_claim(&set, "nvram");
	char *f = h2k_pathset_claim(&set, "nvram");
	char *g = h2k_pathset_claim(&set, "___.._.._tmp_x");
	char *h = h2k_pathset_claim(&set, "___.._.._tmp_x");
	char *i = h2k_pathset_claim(&set, "a.b_c");
	char *j = h2k_pathset_claim(&set, "a.b_c");
	is_str(a, "disk.vmdk", "first claim keeps the name");
	is_str(b, "disk-2.vmdk", "second claim gets -2 before the extension");
	is_str(c, "disk-3.vmdk", "a literal name is kept");
	is_str(d, "disk-4.vmdk", "the uniquifier skips names already taken");
	is_str(f, "nvram-2", "no extension: suffix at the end");
	is_str(h, "___.._.._tmp_x-2", "a dot inside a flattened path is not an extension");
	is_str(j, "a.b_c-2", "an extension is letters and digits only");
	is_int(set.n, 10, "ten names recorded");
	free(a); free(b); free(c); free(d); free(e); free(f); free(g); free(h); free(i); free(j);
	h2k_pathset_free(&set);

	/* one file on exFAT, NTFS, SMB: names differing in ASCII case clash */
	struct h2k_pathset cs = {0};
	char *k = h2k_pathset_claim(&cs, "vm.ovf");
	char *l = h2k_pathset_claim(&cs, "VM.OVF");
	char *m = h2k_pathset_claim(&cs, "Disk.vmdk");
	char *n2 = h2k_pathset_claim(&cs, "disk.VMDK");
	is_str(l, "VM-2.OVF", "a case variant of a taken name gets -2");
	is_str(n2, "disk-2.VMDK", "case variants of a disk name are told apart");
	free(k); free(l); free(m); free(n2);
	h2k_pathset_free(&cs);
	return tap_done();
}
