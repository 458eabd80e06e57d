/* Unit tests for lib/h2kvm.c. SPDX-License-Identifier: LGPL-3.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "h2k.h"
#include "h2kvm.h"
#include "jsonl.h"
#include "tap.h"

static void
put(const char *path, const void *data, size_t n)
{
	FILE *f = fopen(path, "wb");

	if (!f || fwrite(data, 1, n, f) != n || fclose(f))
		printf("Bail out! write %s\n", path);
}

static const char *
dstr(const cJSON *m, int i, const char *k)
{
	return h2k_json_str(cJSON_GetArrayItem(
	    cJSON_GetObjectItemCaseSensitive(m, "disks"), i), k);
}

static double
dnum(const cJSON *m, int i, const char *k)
{
	return h2k_json_num(cJSON_GetArrayItem(
	    cJSON_GetObjectItemCaseSensitive(m, "disks"), i), k, -1);
}

static const char *
path2(const cJSON *m, const char *a, const char *b)
{
	return h2k_json_str(cJSON_GetObjectItemCaseSensitive(m, a), b);
}

static int
enabled(const cJSON *m, const char *stage)
{
	return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(
	    m, "pipeline"), stage), "enabled"));
}

#define SHA_A "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
#define SHA_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

int
main(void)
{
	char tmpl[] = "/tmp/h2k-unit-h2kvm.XXXXXX", *dir = mkdtemp(tmpl);
	char p[512], line[4096], *real;
	unsigned char kdmv[512] = "KDMV", qfi[512] = "QFI\xfb";
	const char *fmt, *sub;
	const char *names[] = { "disk-0.vmdk", "disk-1.vmdk", "nvram" };
	struct h2k_h2kvm_opts o = { 0 };
	cJSON *l, *m;
	int fd;

	if (!dir) {
		printf("Bail out! mkdtemp\n");
		return 1;
	}
	real = realpath(dir, NULL);

	/* sniffing: the bytes, not the name */
	kdmv[8] = 3; kdmv[10] = 1;        /* flags with bit 16: compressed */
	kdmv[12] = 0x00; kdmv[13] = 0x08; /* 2048 sectors: 1 MiB */
	snprintf(p, sizeof p, "%s/disk-0.vmdk", dir);
	put(p, kdmv, sizeof kdmv);
	ok(h2k_h2kvm_sniff(p, &fmt, &sub) == 0 && !strcmp(fmt, "vmdk") &&
	    sub && !strcmp(sub, "streamOptimized"), "KDMV with compressed grains: vmdk streamOptimized");
	kdmv[10] = 0;
	put(p, kdmv, sizeof kdmv);
	ok(h2k_h2kvm_sniff(p, &fmt, &sub) == 0 && !strcmp(fmt, "vmdk") &&
	    sub && !strcmp(sub, "monolithicSparse"), "KDMV without: monolithicSparse");
	qfi[31] = 0x10;                    /* size 0x100000 at offset 24, BE */
	qfi[29] = 0x10; qfi[31] = 0;
	qfi[7] = 3;                        /* version 3 */
	snprintf(p, sizeof p, "%s/q.img", dir);
	put(p, qfi, sizeof qfi);
	ok(h2k_h2kvm_sniff(p, &fmt, &sub) == 0 && !strcmp(fmt, "qcow2") && !sub,
	    "QFI\\xfb: qcow2");
	qfi[15] = 0x80;                    /* backing_file_offset */
	put(p, qfi, sizeof qfi);
	ok(h2k_h2kvm_sniff(p, &fmt, &sub) < 0 && h2k_errcode() == H2K_EX_USAGE &&
	    strstr(h2k_errmsg(), "backing file"), "qcow2 with a backing file: refused");
	qfi[15] = 0;
	qfi[79] = 4;                       /* incompatible: external data file */
	put(p, qfi, sizeof qfi);
	ok(h2k_h2kvm_sniff(p, &fmt, &sub) < 0 && h2k_errcode() == H2K_EX_USAGE &&
	    strstr(h2k_errmsg(), "data file"), "qcow2 with a data file: refused");
	qfi[79] = 0;
	qfi[7] = 1;
	put(p, qfi, sizeof qfi);
	ok(h2k_h2kvm_sniff(p, &fmt, &sub) < 0 && h2k_errcode() == H2K_EX_USAGE,
	    "qcow version 1: refused");
	qfi[7] = 3;
	put(p, "QED", 4);
	ok(h2k_h2kvm_sniff(p, &fmt, &sub) < 0 && h2k_errcode() == H2K_EX_USAGE,
	    "QED: refused");
	snprintf(p, sizeof p, "%s/r.vmdk", dir);
	put(p, "random bytes", 12);
	ok(h2k_h2kvm_sniff(p, &fmt, &sub) == 0 && !strcmp(fmt, "raw"),
	    "anything else, whatever the extension: raw");
	put(p, "", 0);
	ok(h2k_h2kvm_sniff(p, &fmt, &sub) == 0 && !strcmp(fmt, "raw"),
	    "an empty file: raw");
	put(p, "# Disk DescriptorFile\nversion=1\n", 32);
	ok(h2k_h2kvm_sniff(p, &fmt, &sub) < 0 && h2k_errcode() == H2K_EX_USAGE,
	    "a VMDK text descriptor is refused: %s", h2k_errmsg());
	snprintf(p, sizeof p, "%s/none", dir);
	ok(h2k_h2kvm_sniff(p, &fmt, &sub) < 0 && h2k_errcode() == H2K_EX_NOTFOUND,
	    "a missing file: exit 6");
	snprintf(line, sizeof line, "%s/link", dir);
	snprintf(p, sizeof p, "%s/disk-0.vmdk", dir);
	ok(symlink(p, line) == 0 && h2k_h2kvm_sniff(line, &fmt, &sub) < 0 &&
	    h2k_errcode() == H2K_EX_IO, "a symlink is not followed");

	/* the manifest: disks in boot order, raw disk-1 on unit 0 boots */
	snprintf(p, sizeof p, "%s/disk-1.vmdk", dir);
	put(p, "raw", 3);
	snprintf(line, sizeof line,
	    "{\"name\":\"we\\\"b \\u00e9\",\"moref\":\"vm-7\",\"num_cpu\":2,"
	    "\"memory_mb\":1500,\"firmware\":\"efi\","
	    "\"nics\":[{\"label\":\"Network adapter 1\",\"network\":\"VM Network\","
	    "\"mac\":\"00:0c:29:00:00:01\"}],"
	    "\"disks\":[{\"label\":\"Hard disk 1\",\"capacity_bytes\":111},"
	    "{\"label\":\"Hard disk 2\",\"capacity_bytes\":222}],"
	    "\"files\":["
	    "{\"key\":\"/vm-7/VirtualLsiLogicController0:1\",\"target_id\":\"disk-0.vmdk\","
	    "\"disk\":true,\"path\":\"%s/disk-0.vmdk\",\"size\":512,\"sha256\":\"" SHA_A "\"},"
	    "{\"key\":\"/vm-7/VirtualLsiLogicController0:0\",\"target_id\":\"disk-1.vmdk\","
	    "\"disk\":true,\"path\":\"%s/disk-1.vmdk\",\"size\":3,\"sha256\":\"" SHA_B "\"},"
	    "{\"key\":\"nv\",\"disk\":false,\"path\":\"%s/nvram\",\"size\":3,\"sha256\":\"" SHA_B "\"}]}",
	    dir, dir, dir);
	l = cJSON_Parse(line);
	m = h2k_h2kvm_manifest(l, dir, names, 3, &o);
	ok(m != NULL, "manifest built%s%s", m ? "" : ": ", m ? "" : h2k_errmsg());
	is_str(h2k_json_str(m, "manifest_version"), "1.0", "manifest_version 1.0");
	is_str(path2(m, "source", "provider"), "vsphere", "source.provider");
	is_str(path2(m, "source", "vm_name"), "we\"b \xc3\xa9", "source.vm_name as is");
	is_str(path2(m, "source", "vm_id"), "vm-7", "source.vm_id: the moref");
	is_int(h2k_json_num(cJSON_GetObjectItemCaseSensitive(m, "vm"), "cpu", 0), 2, "vm.cpu");
	is_int(h2k_json_num(cJSON_GetObjectItemCaseSensitive(m, "vm"), "mem_gb", 0), 2,
	    "vm.mem_gb: 1500 MiB rounds up to 2");
	is_str(path2(m, "vm", "firmware"), "uefi", "vm.firmware: efi is uefi");
	is_int(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(m, "disks")), 2,
	    "two disks: the non-disk file is left out");
	is_str(dstr(m, 0, "id"), "disk-0", "disk id from the file name");
	is_str(dstr(m, 0, "source_format"), "vmdk", "disk-0 is vmdk by its bytes");
	is_str(dstr(m, 1, "source_format"), "raw", "disk-1 is raw by its bytes");
	is_int(dnum(m, 0, "boot_order_hint"), 1, "unit 1: boot_order_hint 1");
	is_int(dnum(m, 1, "boot_order_hint"), 0, "unit 0: boot_order_hint 0");
	is_str(dstr(m, 1, "disk_type"), "boot", "unit 0 is the boot disk");
	is_str(dstr(m, 0, "disk_type"), "data", "the other a data disk");
	is_str(dstr(m, 0, "checksum"), "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "checksum lower case with sha256:");
	is_int(dnum(m, 0, "bytes"), 512, "bytes: the file's size");
	is_int(dnum(m, 0, "capacity_bytes"), 1048576, "capacity from the VMDK header");
	is_int(dnum(m, 1, "capacity_bytes"), 222, "capacity from h2k-ls's disk");
	snprintf(p, sizeof p, "%s/disk-0.vmdk", real);
	is_str(dstr(m, 0, "local_path"), p, "local_path absolute");
	is_str(path2(m, "output", "directory"), real, "output.directory: the export folder");
	is_str(path2(m, "output", "format"), "qcow2", "output.format qcow2");
	ok(enabled(m, "convert") && enabled(m, "validate") && !enabled(m, "inspect") &&
	    !enabled(m, "fix"), "convert and validate only");
	is_str(h2k_json_str(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(m,
	    "nics"), 0), "network"), "VM Network", "nics[0].network");
	cJSON_Delete(m);

	o.fix = 1;
	o.outdir = "relative/out";
	o.outfmt = "raw";
	m = h2k_h2kvm_manifest(l, dir, names, 1, &o);
	ok(m && enabled(m, "inspect") && enabled(m, "fix"), "fix: inspect and fix on");
	{
		const char *od = m ? path2(m, "output", "directory") : "";
		size_t lo = strlen(od), lb = strlen(strrchr(real, '/'));
		ok(od[0] == '/' && strstr(od, "/relative/out/") &&
		    lo > lb && !strcmp(od + lo - lb, strrchr(real, '/')),
		    "a relative output directory made absolute, the VM folder's name in it: %s", od);
	}
	is_int(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(m, "disks")), 1,
	    "only the files the descriptor names");
	is_int(dnum(m, 0, "boot_order_hint"), 0, "a lone disk boots");
	cJSON_Delete(m);

	/* a converted disk must not land on a file of the export */
	o = (struct h2k_h2kvm_opts){ 0 };
	o.outfmt = "raw";
	snprintf(line, sizeof line, "{\"name\":\"v\",\"files\":["
	    "{\"key\":\"k:0\",\"disk\":true,\"path\":\"%s/disk-1.raw\",\"size\":3,\"sha256\":\"" SHA_B "\"},"
	    "{\"key\":\"k:1\",\"disk\":true,\"path\":\"%s/disk-1.vmdk\",\"size\":3,\"sha256\":\"" SHA_B "\"}]}",
	    dir, dir);
	snprintf(p, sizeof p, "%s/disk-1.raw", dir);
	put(p, "raw", 3);
	{
		cJSON *l2 = cJSON_Parse(line);
		const char *n2[] = { "disk-1.raw", "disk-1.vmdk" };
		m = h2k_h2kvm_manifest(l2, dir, n2, 2, &o);
		ok(m && strcmp(dstr(m, 0, "id"), "disk-1") && strcmp(dstr(m, 1, "id"),
		    "disk-1") && strcmp(dstr(m, 0, "id"), dstr(m, 1, "id")),
		    "ids unique and none gives disk-1.raw (an input) as output: %s %s",
		    m ? dstr(m, 0, "id") : "-", m ? dstr(m, 1, "id") : "-");
		cJSON_Delete(m);
		/* files[].format must agree with the bytes */
		cJSON_AddStringToObject(cJSON_GetArrayItem(
		    cJSON_GetObjectItemCaseSensitive(l2, "files"), 0), "format", "qcow2");
		m = h2k_h2kvm_manifest(l2, dir, n2, 2, &o);
		ok(!m && h2k_errcode() == H2K_EX_IO && strstr(h2k_errmsg(), "qcow2"),
		    "format qcow2 on raw bytes refused: %s", h2k_errmsg());
		cJSON_Delete(m);
		cJSON_Delete(l2);
	}
	{
		/* sizes from a hostile line: a double no long long holds */
		char l5[1024];
		cJSON *x;
		const char *n5[] = { "disk-1.vmdk" };
		snprintf(l5, sizeof l5, "{\"name\":\"v\",\"files\":[{\"key\":\"k:0\","
		    "\"disk\":true,\"path\":\"%s/disk-1.vmdk\",\"size\":1e300,"
		    "\"capacity_bytes\":1e300,\"sha256\":\"" SHA_B "\"}]}", dir);
		x = cJSON_Parse(l5);
		o.outfmt = NULL;
		m = h2k_h2kvm_manifest(x, dir, n5, 1, &o);
		ok(!m && h2k_errcode() == H2K_EX_USAGE, "size 1e300 refused: %s", h2k_errmsg());
		cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetArrayItem(
		    cJSON_GetObjectItemCaseSensitive(x, "files"), 0), "size",
		    cJSON_CreateNumber(3));
		m = h2k_h2kvm_manifest(x, dir, n5, 1, &o);
		ok(m && dnum(m, 0, "capacity_bytes") == 3, "capacity 1e300 ignored: a raw image's size");
		cJSON_Delete(m);
		cJSON_Delete(x);
		o.outfmt = "raw";
	}
	m = h2k_h2kvm_manifest(l, dir, names + 2, 1, &o);
	ok(!m && h2k_errcode() == H2K_EX_USAGE, "no disk among the names: %s", h2k_errmsg());
	o.outfmt = "vmdk";
	m = h2k_h2kvm_manifest(l, dir, names, 2, &o);
	ok(!m && h2k_errcode() == H2K_EX_USAGE, "output format hyper2kvm does not write: %s",
	    h2k_errmsg());
	cJSON_Delete(l);
	l = cJSON_Parse("{\"name\":\"a\\u00ff\"}");
	cJSON_Delete(l);
	{
		/* cJSON keeps bytes: a name that is not UTF-8 */
		cJSON *l3 = cJSON_CreateObject();
		cJSON_AddStringToObject(l3, "name", "bad\xff");
		o.outfmt = NULL;
		m = h2k_h2kvm_manifest(l3, dir, names, 2, &o);
		ok(!m && h2k_errcode() == H2K_EX_USAGE && strstr(h2k_errmsg(), "UTF-8"),
		    "a name that is not UTF-8 refused");
		cJSON_Delete(l3);
	}

	/* write: mode 0644, one line, parses back */
	{
		struct stat st;
		cJSON *l4 = cJSON_CreateObject(), *w;
		cJSON_AddStringToObject(l4, "k", "\xe2\x80\xa8");
		snprintf(p, sizeof p, "%s/m.hyper2kvm.json", dir);
		umask(077);
		ok(h2k_h2kvm_write(p, l4) == 0 && stat(p, &st) == 0 &&
		    (st.st_mode & 0777) == 0644, "written 0644 whatever the umask");
		fd = open(p, O_RDONLY);
		ssize_t n = read(fd, line, sizeof line - 1);
		close(fd);
		line[n > 0 ? n : 0] = 0;
		ok(n > 0 && line[n - 1] == '\n' && (w = cJSON_Parse(line)) &&
		    !strcmp(h2k_json_str(w, "k"), "\xe2\x80\xa8") && (cJSON_Delete(w), 1),
		    "ends with a newline and parses back to the same string");
		snprintf(p, sizeof p, "%s/m.hyper2kvm.json.part", dir);
		ok(access(p, F_OK) < 0, "no .part left");
		cJSON_Delete(l4);
	}

	/* delivery */
	{
		char w[300], src[300], t[700];
		int dfd;
		struct stat a, b;

		snprintf(w, sizeof w, "%s/watch", dir);
		mkdir(w, 0755);
		snprintf(src, sizeof src, "%s/disk-1.vmdk", dir);
		dfd = h2k_deliver_open(w);
		ok(dfd >= 0, "open the watched directory");
		ok(h2k_deliver_check(dfd, w, "x.ova") == 0, "x.ova not there yet");
		ok(h2k_deliver(dfd, w, src, "x.ova", NULL) == 0, "delivered");
		snprintf(t, sizeof t, "%s/x.ova", w);
		ok(stat(t, &a) == 0 && stat(src, &b) == 0 && a.st_ino == b.st_ino,
		    "same file system: a hard link");
		ok(h2k_deliver_check(dfd, w, "x.ova") < 0 && h2k_errcode() == H2K_EX_EXISTS,
		    "check: the name is taken: %s", h2k_errmsg());
		snprintf(src, sizeof src, "%s/disk-0.vmdk", dir);
		ok(h2k_deliver(dfd, w, src, "x.ova", NULL) < 0 && h2k_errcode() == H2K_EX_EXISTS &&
		    stat(t, &a) == 0 && a.st_ino == b.st_ino && a.st_size == 3,
		    "a name already there is not replaced (exit 12)");
		ok(h2k_deliver(dfd, w, src, "../y", NULL) < 0 && h2k_errcode() == H2K_EX_USAGE,
		    "a name with a slash refused");
		close(dfd);
		snprintf(t, sizeof t, "%s/wlink", dir);
		ok(symlink(w, t) == 0 && h2k_deliver_open(t) < 0 &&
		    h2k_errcode() == H2K_EX_USAGE, "a symlink as the directory refused: %s",
		    h2k_errmsg());
		snprintf(t, sizeof t, "%s/nowhere", dir);
		ok(h2k_deliver_open(t) < 0 && h2k_errcode() == H2K_EX_NOTFOUND,
		    "a missing directory: exit 6");
		ok(h2k_deliver_open(src) < 0 && h2k_errcode() == H2K_EX_USAGE,
		    "a file is not a directory");
		/* /dev/shm is another file system here: the copy path */
		if (access("/dev/shm", W_OK) == 0) {
			char sh[] = "/dev/shm/h2k-unit-h2kvm.XXXXXX", *s = mkdtemp(sh);
			int sfd = s ? h2k_deliver_open(s) : -1;
			snprintf(t, sizeof t, "%s/c.ova", s ? s : "");
			ok(sfd >= 0 && h2k_deliver(sfd, s, src, "c.ova", NULL) == 0 &&
			    stat(t, &a) == 0 && stat(src, &b) == 0 && a.st_size == b.st_size &&
			    a.st_dev != b.st_dev, "another file system: a copy");
			snprintf(t, sizeof t, "%s/c.ova.part", s ? s : "");
			ok(access(t, F_OK) < 0, "the copy's .part is gone");
			ok(h2k_deliver(sfd, s, src, "c.ova", NULL) < 0 && h2k_errcode() == H2K_EX_EXISTS &&
			    access(t, F_OK) < 0, "copy onto a name there: refused, no .part left");
			{
				static volatile sig_atomic_t stop = SIGTERM;
				char l2[600];
				snprintf(t, sizeof t, "%s/d.ova", s ? s : "");
				snprintf(l2, sizeof l2, "ls -A '%s' | grep -qv '^c.ova$'", s ? s : "");
				ok(h2k_deliver(sfd, s, src, "d.ova", &stop) < 0 &&
				    h2k_errcode() == H2K_EX_CANCEL && access(t, F_OK) < 0 &&
				    system(l2) != 0, "a cancelled copy: exit 10, nothing left");
			}
			if (sfd >= 0)
				close(sfd);
			snprintf(t, sizeof t, "rm -rf '%s'", s ? s : "/nonexistent");
			if (s && system(t) != 0)
				printf("# cleanup of %s failed\n", s);
		} else
			skip(4, "no writable /dev/shm");
	}

	snprintf(line, sizeof line, "rm -rf '%s'", dir);
	if (system(line) != 0)
		printf("# cleanup failed\n");
	free(real);
	return tap_done();
}
