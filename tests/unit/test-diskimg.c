/*
 * Unit tests for lib/diskimg.c: capacities of images qemu-img made (qcow2
 * v2 and v3, sparse and streamOptimized VMDK, a monolithicFlat descriptor)
 * and of crafted headers; every bad header refused naming the file.
 * Without qemu-img those cases skip.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "diskimg.h"
#include "h2k.h"
#include "tap.h"

static char dir[256];

static char *
path(const char *name)
{
	static char p[2][512];
	static int i;
	i = (i + 1) % 2;
	snprintf(p[i], sizeof p[i], "%s/%s", dir, name);
	return p[i];
}

static int
spit(const char *name, const void *b, size_t n)
{
	int fd = open(path(name), O_WRONLY | O_CREAT | O_TRUNC, 0600);
	int rc = fd >= 0 && write(fd, b, n) == (ssize_t)n ? 0 : -1;
	if (fd >= 0)
		close(fd);
	return rc;
}

/* The capacity of file name read as format/sub; -2 when it fails. */
static long long
capof(const char *name, const char *format, const char *sub)
{
	int fd = open(path(name), O_RDONLY);
	long long cap = -1;
	int rc;

	h2k_clearerr();
	rc = h2k_diskimg_capacity(fd, path(name), format, sub, &cap);
	if (fd >= 0)
		close(fd);
	return rc < 0 ? -2 : cap;
}

static void
refused(const char *name, const char *format, const char *sub, const char *why)
{
	long long c = capof(name, format, sub);
	ok(c == -2 && h2k_errcode() == H2K_EX_IO && strstr(h2k_errmsg(), path(name)) &&
	    strstr(h2k_errmsg(), why), "%s as %s: refused, '%s'", name, format ? format : "?",
	    why);
	if (c != -2 || !strstr(h2k_errmsg(), why))
		printf("#   got %lld, '%s'\n", c, h2k_errmsg());
}

static void
wbe32(unsigned char *p, unsigned v)
{
	p[0] = (unsigned char)(v >> 24); p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8); p[3] = (unsigned char)v;
}

static void
wbe64(unsigned char *p, unsigned long long v)
{
	wbe32(p, (unsigned)(v >> 32));
	wbe32(p + 4, (unsigned)v);
}

int
main(void)
{
	const char *tmp = getenv("TMPDIR");
	int have_qemu = system("qemu-img --version >/dev/null 2>&1") == 0;
	unsigned char h[512];

	snprintf(dir, sizeof dir, "%s/h2k-diskimg-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}

	/* raw: the file's size, whatever its bytes say */
	memset(h, 0, sizeof h);
	memcpy(h, "QFI\xfb", 4);
	spit("r.raw", h, 300);
	is_int(capof("r.raw", "raw", NULL), 300, "raw: the file's size, a qcow2 magic or not");
	is_int(capof("r.raw", NULL, NULL), -2, "no format: the bytes decide (a bad qcow2 here)");
	memset(h, 'x', sizeof h);
	spit("p.vmdk", h, sizeof h);
	is_int(capof("p.vmdk", "vmdk", NULL), 512, "vmdk of plain bytes: the file's size");
	is_int(capof("p.vmdk", NULL, NULL), 512, "no format, plain bytes: the file's size");
	refused("p.vmdk", "vmdk", "streamOptimized", "no sparse VMDK header");
	/* attack-left: capacity 0 kept the server's figure in the descriptor */
	spit("e.raw", h, 0);
	refused("e.raw", "raw", NULL, "an empty image (0 bytes)");
	refused("e.raw", "vmdk", NULL, "an empty image (0 bytes)");
	refused("e.raw", NULL, NULL, "an empty image (0 bytes)");
	is_int(capof("p.vmdk", "vhdx", NULL), -2, "an unknown format is refused");
	is_int(h2k_errcode(), H2K_EX_USAGE, "  with exit 2");

	if (have_qemu) {
		sh("qemu-img create -q -f qcow2 -o compat=0.10 %s 3M", path("v2.qcow2"));
		sh("qemu-img create -q -f qcow2 %s 5G", path("v3.qcow2"));
		sh("qemu-img create -q -f vmdk %s 7M", path("s.vmdk"));
		sh("qemu-img create -q -f vmdk -o subformat=streamOptimized %s 9M", path("so.vmdk"));
		sh("qemu-img create -q -f vmdk -o subformat=monolithicFlat %s 11M", path("f.vmdk"));
		is_int(capof("v2.qcow2", "qcow2", NULL), 3 << 20, "qcow2 v2 (qemu-img): 3 MiB");
		is_int(capof("v3.qcow2", "qcow2", NULL), 5ll << 30, "qcow2 v3 (qemu-img): 5 GiB");
		is_int(capof("v3.qcow2", NULL, NULL), 5ll << 30, "qcow2 v3, no format: 5 GiB");
		is_int(capof("s.vmdk", "vmdk", "monolithicSparse"), 7 << 20,
		    "monolithicSparse (qemu-img): 7 MiB");
		is_int(capof("so.vmdk", "vmdk", "streamOptimized"), 9 << 20,
		    "streamOptimized (qemu-img): 9 MiB");
		is_int(capof("f.vmdk", "vmdk", NULL), 11 << 20,
		    "monolithicFlat descriptor (qemu-img): its extent, 11 MiB");
		/* attack-left: the line's subformat goes into the format URI */
		refused("so.vmdk", "vmdk", "monolithicSparse", "files[] says a monolithicSparse "
		    "VMDK, the header is streamOptimized's");
		refused("s.vmdk", "vmdk", "streamOptimized", "files[] says a streamOptimized "
		    "VMDK, the header is monolithicSparse's");
		refused("s.vmdk", "vmdk", "twoGbMaxExtentSparse", "the header is "
		    "monolithicSparse's");
	} else
		skip(9, "no qemu-img");

	/* crafted qcow2 headers */
	memset(h, 0, sizeof h);
	memcpy(h, "QFI\xfb", 4);
	wbe32(h + 4, 3);
	wbe32(h + 20, 16);
	wbe64(h + 24, 1 << 20);
	wbe32(h + 36, 1);
	wbe32(h + 100, 104);
	spit("ok.qcow2", h, sizeof h);
	is_int(capof("ok.qcow2", "qcow2", NULL), 1 << 20, "crafted qcow2 v3: 1 MiB");
	wbe32(h + 4, 4);
	spit("b.qcow2", h, sizeof h);
	refused("b.qcow2", "qcow2", NULL, "qcow2 version 4 (2 or 3 expected)");
	wbe32(h + 4, 3);
	wbe32(h + 20, 30);
	spit("b.qcow2", h, sizeof h);
	refused("b.qcow2", "qcow2", NULL, "cluster_bits 30");
	wbe32(h + 20, 16);
	wbe64(h + 24, 1ull << 60);
	spit("b.qcow2", h, sizeof h);
	refused("b.qcow2", "qcow2", NULL, "size of 1152921504606846976 bytes is absurd");
	wbe64(h + 24, 1ull << 40);
	spit("b.qcow2", h, sizeof h);
	refused("b.qcow2", "qcow2", NULL, "L1 table of 1 entries is too small");
	wbe64(h + 24, 1 << 20);
	wbe32(h + 100, 50);
	spit("b.qcow2", h, sizeof h);
	refused("b.qcow2", "qcow2", NULL, "v3 header length 50");
	spit("b.qcow2", h, 40);
	refused("b.qcow2", "qcow2", NULL, "a truncated qcow2 header");
	refused("p.vmdk", "qcow2", NULL, "files[] says format qcow2, the bytes are raw");
	/* attack-left: images that are not the whole disk, or not readable
	 * alone, are no qcow2 of that capacity */
	wbe32(h + 100, 104);
	spit("b.qcow2", h, sizeof h);
	is_int(capof("b.qcow2", "qcow2", NULL), 1 << 20, "crafted qcow2 v3 again: 1 MiB");
	wbe64(h + 8, 200);
	spit("b.qcow2", h, sizeof h);
	refused("b.qcow2", "qcow2", NULL, "a qcow2 with a backing file");
	wbe64(h + 8, 0);
	wbe32(h + 32, 2);
	spit("b.qcow2", h, sizeof h);
	refused("b.qcow2", "qcow2", NULL, "an encrypted qcow2 (method 2)");
	wbe32(h + 32, 0);
	wbe64(h + 72, 4);
	spit("b.qcow2", h, sizeof h);
	refused("b.qcow2", "qcow2", NULL, "a qcow2 with an external data file");
	wbe64(h + 72, 2);
	spit("b.qcow2", h, sizeof h);
	refused("b.qcow2", "qcow2", NULL, "a qcow2 marked corrupt");
	wbe64(h + 72, 1u << 5 | 1);
	spit("b.qcow2", h, sizeof h);
	refused("b.qcow2", "qcow2", NULL, "incompatible features 0x20 unknown");
	wbe64(h + 72, 1 | 1u << 3 | 1u << 4);
	spit("b.qcow2", h, sizeof h);
	is_int(capof("b.qcow2", "qcow2", NULL), 1 << 20,
	    "dirty, zstd, extended L2: whole and readable, 1 MiB");
	is_int(capof("b.qcow2", NULL, NULL), 1 << 20, "  the same without a format");
	wbe64(h + 72, 0);
	wbe64(h + 8, 200);
	wbe32(h + 4, 2);
	spit("b.qcow2", h, sizeof h);
	refused("b.qcow2", NULL, NULL, "a qcow2 with a backing file");
	wbe64(h + 8, 0);
	wbe32(h + 4, 3);

	/* crafted sparse VMDK headers */
	memset(h, 0, sizeof h);
	memcpy(h, "KDMV", 4);
	h[4] = 1;
	h[12 + 5] = 1;          /* 2^40 sectors */
	spit("b.vmdk", h, sizeof h);
	refused("b.vmdk", "vmdk", "monolithicSparse", "capacity of 1099511627776 sectors is absurd");
	memset(h + 12, 0, 8);
	h[13] = 8;              /* 2048 sectors */
	spit("ok.vmdk", h, sizeof h);
	is_int(capof("ok.vmdk", "vmdk", "monolithicSparse"), 1 << 20, "crafted sparse VMDK: 1 MiB");
	refused("ok.vmdk", "qcow2", NULL, "files[] says format qcow2, the bytes are vmdk");
	h[4] = 9;
	spit("b.vmdk", h, sizeof h);
	refused("b.vmdk", "vmdk", "monolithicSparse", "VMDK version 9");
	refused("b.vmdk", NULL, NULL, "VMDK version 9");
	spit("b.vmdk", h, 100);
	refused("b.vmdk", "vmdk", "monolithicSparse", "not a sparse VMDK");
	/* attack-left: a vmdk line without subformat is plain bytes (the raw
	 * format URI), not a sparse header's capacity */
	refused("ok.vmdk", "vmdk", NULL, "files[] says a VMDK of plain bytes (no "
	    "vmdk_subformat), the bytes are a sparse VMDK");
	is_int(capof("ok.vmdk", NULL, NULL), 1 << 20, "no format at all: the header's 1 MiB");
	{
		/* attack-left: a delta disk names its parent in the embedded
		 * descriptor qemu reads from byte 512 */
		static const char kid[] = "# Disk DescriptorFile\nversion=1\n"
		    "parentFileNameHint=\"/etc/shadow\"\n";
		static const char none[] = "# Disk DescriptorFile\nversion=1\n"
		    "parentFileNameHint=\"\"\n";
		unsigned char s2[1024];
		h[4] = 1;
		memset(s2, 0, sizeof s2);
		memcpy(s2, h, 512);
		memcpy(s2 + 512, kid, sizeof kid - 1);
		spit("k.vmdk", s2, sizeof s2);
		refused("k.vmdk", "vmdk", "monolithicSparse", "a VMDK with a parent");
		refused("k.vmdk", NULL, NULL, "a VMDK with a parent");
		memset(s2 + 512, 0, 512);
		memcpy(s2 + 512, none, sizeof none - 1);
		spit("k.vmdk", s2, sizeof s2);
		is_int(capof("k.vmdk", "vmdk", "monolithicSparse"), 1 << 20,
		    "an empty parentFileNameHint is none (as qemu reads it): 1 MiB");
	}
	if (have_qemu) {
		sh("qemu-img create -q -f qcow2 %s 1M", path("base.qcow2"));
		sh("qemu-img create -q -f qcow2 -b %s -F qcow2 %s 2M", path("base.qcow2"),
		    path("kid.qcow2"));
		sh("qemu-img create -q -f qcow2 -o data_file=%s %s 1M", path("ext.raw"),
		    path("ext.qcow2"));
		sh("qemu-img create -q -f vmdk %s 1M", path("base.vmdk"));
		sh("qemu-img create -q -f vmdk -b %s -F vmdk %s", path("base.vmdk"),
		    path("kid.vmdk"));
		refused("kid.qcow2", "qcow2", NULL, "a qcow2 with a backing file");
		refused("ext.qcow2", "qcow2", NULL, "a qcow2 with an external data file");
		refused("kid.vmdk", "vmdk", "monolithicSparse", "a VMDK with a parent");
		is_int(capof("base.vmdk", "vmdk", "monolithicSparse"), 1 << 20,
		    "its parent (qemu-img): 1 MiB");
	} else
		skip(4, "no qemu-img");

	/* text descriptors */
	{
		static const char two[] = "# Disk DescriptorFile\nversion=1\n"
		    "createType=\"twoGbMaxExtentFlat\"\n"
		    "RW 4194304 FLAT \"a-f001.vmdk\" 0\n  RDONLY 2048 FLAT \"a-f002.vmdk\" 0\n";
		static const char none[] = "# Disk DescriptorFile\nversion=1\n";
		static const char bad[] = "# Disk DescriptorFile\nRW x FLAT \"a.vmdk\"\n";
		static const char huge[] = "# Disk DescriptorFile\nRW 99999999999999999 FLAT \"a\"\n";
		spit("d.vmdk", two, sizeof two - 1);
		is_int(capof("d.vmdk", "vmdk", NULL), (4194304ll + 2048) * 512,
		    "descriptor: the sum of its extents");
		spit("d.vmdk", none, sizeof none - 1);
		refused("d.vmdk", "vmdk", NULL, "descriptor without extents");
		spit("d.vmdk", bad, sizeof bad - 1);
		refused("d.vmdk", "vmdk", NULL, "extent line without a size");
		spit("d.vmdk", huge, sizeof huge - 1);
		refused("d.vmdk", "vmdk", NULL, "extent line without a size");
		char *big = malloc(70000);
		memset(big, 'x', 70000);
		memcpy(big, two, sizeof two - 1);
		spit("d.vmdk", big, 70000);
		is_int(capof("d.vmdk", "vmdk", NULL), 70000,
		    "larger than any descriptor: the plain bytes of a disk");
		free(big);
	}

	if (!getenv("H2K_TEST_KEEP"))
		sh("rm -rf '%s'", dir);
	return tap_done();
}
