/* Unit tests for lib/ovf.c. SPDX-License-Identifier: LGPL-3.0-or-later */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "h2k.h"
#include "ovf.h"
#include "pathsafe.h"
#include "tap.h"

/* Shaped like a vCenter 8 export: a CD-ROM on an image, a DVD, two disks. */
static const char desc_cd[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<Envelope xmlns=\"http://schemas.dmtf.org/ovf/envelope/1\" "
    "xmlns:ovf=\"http://schemas.dmtf.org/ovf/envelope/1\" "
    "xmlns:rasd=\"http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData\">\n"
    "  <References>\n"
    "    <File ovf:href=\"disk-0.vmdk\" ovf:id=\"file1\" ovf:size=\"100\"/>\n"
    "    <File ovf:href=\"disk-1.vmdk\" ovf:id=\"file2\" ovf:size=\"200\"/>\n"
    "    <File ovf:href=\"install.iso\" ovf:id=\"file3\" ovf:size=\"300\"/>\n"
    "  </References>\n"
    "  <DiskSection>\n"
    "    <Disk ovf:diskId=\"vmdisk1\" ovf:fileRef=\"file1\" ovf:capacity=\"1\"/>\n"
    "    <Disk ovf:diskId=\"vmdisk2\" ovf:fileRef=\"file2\" ovf:capacity=\"1\"/>\n"
    "  </DiskSection>\n"
    "  <VirtualSystem ovf:id=\"vm\">\n"
    "    <VirtualHardwareSection>\n"
    "      <Item>\n"
    "        <rasd:ElementName>Hard disk 1</rasd:ElementName>\n"
    "        <rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource>\n"
    "        <rasd:ResourceType>17</rasd:ResourceType>\n"
    "      </Item>\n"
    "      <Item ovf:required=\"false\">\n"
    "        <rasd:ElementName>CD/DVD drive 1</rasd:ElementName>\n"
    "        <rasd:HostResource>ovf:/file/file3</rasd:HostResource>\n"
    "        <rasd:ResourceType> 15 </rasd:ResourceType>\n"
    "      </Item>\n"
    "      <Item>\n"
    "        <rasd:ElementName>Hard disk 2</rasd:ElementName>\n"
    "        <rasd:HostResource>ovf:/disk/vmdisk2</rasd:HostResource>\n"
    "        <rasd:ResourceType>17</rasd:ResourceType>\n"
    "      </Item>\n"
    "      <Item>\n"
    "        <rasd:ElementName>CD/DVD drive 2</rasd:ElementName>\n"
    "        <rasd:ResourceType>16</rasd:ResourceType>\n"
    "      </Item>\n"
    "      <Item>\n"
    "        <rasd:ElementName>Network adapter 1</rasd:ElementName>\n"
    "        <rasd:ResourceType>10</rasd:ResourceType>\n"
    "      </Item>\n"
    "    </VirtualHardwareSection>\n"
    "  </VirtualSystem>\n"
    "</Envelope>\n";

/* An image used by a CD-ROM and by something else must stay. */
static const char desc_shared[] =
    "<Envelope xmlns=\"http://schemas.dmtf.org/ovf/envelope/1\" "
    "xmlns:ovf=\"http://schemas.dmtf.org/ovf/envelope/1\" "
    "xmlns:rasd=\"x:rasd\"><References>"
    "<File ovf:href=\"a.img\" ovf:id=\"f1\"/></References>"
    "<VirtualSystem><VirtualHardwareSection>"
    "<Item><rasd:HostResource>ovf:/file/f1</rasd:HostResource>"
    "<rasd:ResourceType>15</rasd:ResourceType></Item>"
    "<Item><rasd:HostResource>ovf:/file/f1</rasd:HostResource>"
    "<rasd:ResourceType>14</rasd:ResourceType></Item>"
    "</VirtualHardwareSection></VirtualSystem></Envelope>";

static const char desc_doctype[] =
    "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>"
    "<Envelope><References><File href=\"&e;\"/></References></Envelope>";

static const char desc_escape[] =
    "<Envelope xmlns:ovf=\"o\"><References>"
    "<File ovf:href=\"../../etc/shadow\" ovf:id=\"f1\"/></References></Envelope>";

/* href checked, ovf:href read by an importer */
static const char desc_2href[] =
    "<Envelope xmlns=\"http://schemas.dmtf.org/ovf/envelope/1\" "
    "xmlns:ovf=\"http://schemas.dmtf.org/ovf/envelope/1\"><References>"
    "<File href=\"disk.vmdk\" ovf:href=\"../../etc/shadow\" ovf:id=\"f1\"/>"
    "</References></Envelope>";
/* a second References nobody checked */
static const char desc_2refs[] =
    "<Envelope xmlns:ovf=\"http://schemas.dmtf.org/ovf/envelope/1\"><References>"
    "<File ovf:href=\"disk.vmdk\" ovf:id=\"f1\"/></References><References>"
    "<File ovf:href=\"../x\" ovf:id=\"f2\"/></References></Envelope>";

static const char desc_twice[] =
    "<Envelope xmlns:ovf=\"o\"><References>"
    "<File ovf:href=\"disk.vmdk\" ovf:id=\"f1\"/>"
    "<File ovf:href=\"disk.vmdk\" ovf:id=\"f2\"/></References></Envelope>";

static const char desc_notovf[] = "<html><body>hello</body></html>";

static int
has(const char *hay, const char *needle)
{
	return strstr(hay, needle) != NULL;
}

static void
test_cdrom(void)
{
	struct h2k_ovf_desc d;

	is_int(h2k_ovf_process(desc_cd, strlen(desc_cd), 0, &d), 0,
	    "descriptor accepted");
	is_int(d.len, strlen(desc_cd), "without --remove-cdrom: same length");
	ok(d.text && !memcmp(d.text, desc_cd, d.len),
	    "without --remove-cdrom: byte for byte");
	is_int(d.nhrefs, 3, "three file references");
	is_str(d.nhrefs > 2 ? d.hrefs[2] : NULL, "install.iso", "in document order");
	is_int(d.cdroms, 0, "nothing removed");
	h2k_ovf_desc_free(&d);

	is_int(h2k_ovf_process(desc_cd, strlen(desc_cd), 1, &d), 0,
	    "--remove-cdrom accepted");
	is_int(d.cdroms, 2, "CD (15) and DVD (16) items removed");
	ok(d.text && !has(d.text, "CD/DVD drive"), "no CD-ROM item left");
	ok(d.text && !has(d.text, "<rasd:ResourceType> 15") &&
	    !has(d.text, ">16<"), "no CD/DVD resource type left");
	ok(d.text && has(d.text, "Hard disk 1") && has(d.text, "Hard disk 2") &&
	    has(d.text, "Network adapter 1"), "other items kept");
	ok(d.text && !has(d.text, "install.iso"), "the image's File is gone");
	is_int(d.nhrefs, 2, "two disks referenced");
	is_int(d.ndropped, 1, "one file dropped");
	is_str(d.ndropped ? d.dropped[0] : NULL, "install.iso", "the image");
	ok(d.text && has(d.text, "xmlns:rasd="), "namespaces kept");
	/* The edited document must itself be a valid descriptor. */
	struct h2k_ovf_desc d2;
	is_int(h2k_ovf_process(d.text, d.len, 1, &d2), 0, "output parses again");
	is_int(d2.cdroms, 0, "and has no CD-ROM left");
	h2k_ovf_desc_free(&d2);
	h2k_ovf_desc_free(&d);

	is_int(h2k_ovf_process(desc_shared, strlen(desc_shared), 1, &d), 0,
	    "shared image descriptor");
	is_int(d.cdroms, 1, "its CD-ROM removed");
	is_int(d.nhrefs, 1, "the image another device uses stays");
	is_int(d.ndropped, 0, "nothing dropped");
	h2k_ovf_desc_free(&d);
}

static void
test_hostile(void)
{
	struct h2k_ovf_desc d;

	is_int(h2k_ovf_process(desc_doctype, strlen(desc_doctype), 0, &d), -1,
	    "DOCTYPE refused");
	is_int(h2k_ovf_process(desc_escape, strlen(desc_escape), 0, &d), -1,
	    "href with a directory refused");
	ok(has(h2k_errmsg(), "../../etc/shadow"), "message names the href: %s",
	    h2k_errmsg());
	is_int(h2k_ovf_process(desc_notovf, strlen(desc_notovf), 0, &d), -1,
	    "not an Envelope refused");
	is_int(h2k_errcode(), H2K_EX_NET, "a bad descriptor is the server's fault");
	is_int(h2k_ovf_process("<Envelope>", 10, 0, &d), -1, "truncated refused");
	is_int(h2k_ovf_process(desc_2href, strlen(desc_2href), 0, &d), -1,
	    "a File with href and ovf:href refused (checked one, read the other)");
	is_int(h2k_errcode(), H2K_EX_NET, "... as a server protocol error");
	is_int(h2k_ovf_process(desc_2refs, strlen(desc_2refs), 0, &d), -1,
	    "a second References section refused");
	ok(has(h2k_errmsg(), "References"), "... naming it");
	is_int(h2k_ovf_process(desc_twice, strlen(desc_twice), 0, &d), -1,
	    "a file referenced twice refused (it would be in the .mf twice)");
	ok(has(h2k_errmsg(), "disk.vmdk") && has(h2k_errmsg(), "twice"),
	    "message names it: %s", h2k_errmsg());

	/* Names h2k-ovf writes itself are never a download's. */
	ok(h2k_ovf_output_name("vm1", "vm1.ovf"), "NAME.ovf");
	ok(h2k_ovf_output_name("vm1", "vm1.mf"), "NAME.mf");
	ok(h2k_ovf_output_name("vm1", "vm1.ova"), "NAME.ova");
	ok(h2k_ovf_output_name("vm1", "vm1.ova.part"), "NAME.ova.part");
	ok(h2k_ovf_output_name("vm1", ".vm1.ovf.Ab12Cd"), "temporary .NAME.ovf.XXXXXX");
	ok(h2k_ovf_output_name("vm1", "vm1.hyper2kvm.json") &&
	    h2k_ovf_output_name("vm1", ".vm1.hyper2kvm.json.Ab12Cd"),
	    "NAME.hyper2kvm.json and its temporary name");
	ok(h2k_ovf_output_name("vm1", ".vm1.mf.Ab12Cd"), "temporary .NAME.mf.XXXXXX");
	ok(!h2k_ovf_output_name("vm1", "vm1-2.ovf"), "NAME-2.ovf is free");
	ok(!h2k_ovf_output_name("vm1", "vm1.ovf.vmdk"), "NAME.ovf.vmdk is free");
	ok(!h2k_ovf_output_name("vm1", "vm10.ovf"), "another VM's name is free");
	ok(!h2k_ovf_output_name("vm1", "vm1.mf_"), "NAME.mf_ is free");
	/* case-insensitive file systems (exFAT, NTFS, SMB): one file */
	ok(h2k_ovf_output_name("vm1", "VM1.OVF"), "NAME.ovf in upper case");
	ok(h2k_ovf_output_name("Web", "web.Mf"), "NAME.mf in mixed case");
	ok(h2k_ovf_output_name("vm1", "vm1.OVA.PART"), "NAME.ova.part in upper case");
	ok(!h2k_ovf_output_name("vm1", "disk-0.vmdk"), "a disk is free");
}

static void
test_mf(void)
{
	struct h2k_buf b = { 0 };
	struct h2k_mf_entry *e;
	size_t n;
	const char *h1 =
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
	char hex[65];

	h2k_sha256_hex("", 0, hex);
	is_str(hex, h1, "SHA-256 of nothing");
	h2k_sha256_hex("abc", 3, hex);
	is_str(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
	    "SHA-256 of abc");

	h2k_mf_add(&b, "SHA256", "vm.ovf", h1);
	h2k_mf_add(&b, "SHA256", "disk (1).vmdk", hex);
	is_str(b.data, "SHA256(vm.ovf)= e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
	    "SHA256(disk (1).vmdk)= ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n",
	    "writer: ovftool's format");
	is_int(h2k_mf_parse(b.data, b.len, &e, &n), 0, "reader reads it back");
	is_int(n, 2, "two entries");
	is_str(n > 1 ? e[1].file : NULL, "disk (1).vmdk", "name with parentheses");
	is_str(n > 1 ? e[1].hex : NULL, hex, "digest");
	is_str(n > 0 ? e[0].algo : NULL, "SHA256", "algorithm");
	h2k_mf_free(e, n);
	h2k_buf_free(&b);

	static const char crlf[] = "SHA1(a.vmdk) = DA39A3EE5E6B4B0D3255BFEF95601890AFD80709\r\n\r\n";
	is_int(h2k_mf_parse(crlf, strlen(crlf), &e, &n), 0, "CRLF, spaces, SHA1");
	is_str(n ? e[0].hex : NULL, "da39a3ee5e6b4b0d3255bfef95601890afd80709",
	    "digest lower-cased");
	h2k_mf_free(e, n);

	static const char bad1[] = "SHA256(a)= 1234\n";
	is_int(h2k_mf_parse(bad1, strlen(bad1), &e, &n), -1, "short digest refused");
	ok(has(h2k_errmsg(), "line 1"), "names the line: %s", h2k_errmsg());
	static const char bad2[] = "SHA256(a)= e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
	    "MD5(b)= d41d8cd98f00b204e9800998ecf8427e\n";
	is_int(h2k_mf_parse(bad2, strlen(bad2), &e, &n), -1, "unknown algorithm refused");
	ok(has(h2k_errmsg(), "line 2"), "names line 2: %s", h2k_errmsg());
	static const char bad3[] = "SHA256(a)= e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
	    "SHA256(a)= e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n";
	is_int(h2k_mf_parse(bad3, strlen(bad3), &e, &n), -1, "file twice refused");
	static const char bad4[] = "SHA256 a e3b0\n";
	is_int(h2k_mf_parse(bad4, strlen(bad4), &e, &n), -1, "garbage refused");
	static const char bad5[] = "SHA256()= e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85g\n";
	is_int(h2k_mf_parse(bad5, strlen(bad5), &e, &n), -1, "empty name / non-hex refused");
	is_int(h2k_errcode(), H2K_EX_USAGE, "bad manifest is a usage error");
}

static void
test_names(void)
{
	char *s;

	s = h2k_ovf_safe_name("web/01\n");
	is_str(s, "web_01_", "slash and control characters replaced");
	free(s);
	s = h2k_ovf_safe_name("..");
	ok(s && s[0] != '.', "no dot names: %s", s);
	free(s);
	s = h2k_ovf_safe_name("");
	is_str(s, "vm", "empty name gets a fallback");
	free(s);
	char big[300];
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	s = h2k_ovf_safe_name(big);
	ok(s && strlen(s) <= 80, "long name cut so NAME.ovf fits a ustar header");
	free(s);
}

static void
test_ova(void)
{
	char dir[] = "/tmp/h2k-test-ovf.XXXXXX", p1[256], p2[256], ova[256],
	    hex[65], part[300];
	struct stat st;
	long long sz;
	FILE *fp;

	if (!mkdtemp(dir)) {
		ok(0, "mkdtemp");
		return;
	}
	snprintf(p1, sizeof p1, "%s/a.ovf", dir);
	snprintf(p2, sizeof p2, "%s/d.vmdk", dir);
	snprintf(ova, sizeof ova, "%s/x.ova", dir);
	snprintf(part, sizeof part, "%s.part", ova);
	fp = fopen(p1, "w");
	fputs("<Envelope/>\n", fp);
	fclose(fp);
	fp = fopen(p2, "w");
	for (int i = 0; i < 300000; i++)
		fputc(i * 7 & 0xff, fp);
	fclose(fp);
	is_int(h2k_sha256_file(p2, hex, &sz), 0, "hash a file");
	is_int(sz, 300000, "its size");
	{
		struct stat was;
		char h2[65];
		ok(lstat(p2, &was) == 0, "lstat the file");
		is_int(h2k_sha256_file_id(p2, &was, h2, &sz), 0, "hash the file lstat saw");
		ok(!strcmp(h2, hex), "the same digest");
		/* another file under the name since: not hashed */
		char p3[PATH_MAX];
		snprintf(p3, sizeof p3, "%s/other", dir);
		fp = fopen(p3, "w");
		fputs("other\n", fp);
		fclose(fp);
		ok(rename(p3, p2) == 0, "the name now another file");
		is_int(h2k_sha256_file_id(p2, &was, h2, &sz), -1, "a replaced file is refused");
		ok(has(h2k_errmsg(), "replaced while it was checked"), "says so: %s", h2k_errmsg());
		fp = fopen(p2, "w");
		for (int i = 0; i < 300000; i++)
			fputc(i * 7 & 0xff, fp);
		fclose(fp);
	}

	struct h2k_ova_member m[2] = {
		{ "a.ovf", p1, NULL }, { "d.vmdk", p2, hex },
	};
	is_int(h2k_ova_write(ova, m, 2, NULL), 0, "pack");
	ok(stat(ova, &st) == 0 && st.st_size >= 300000 + 3 * 512,
	    "the OVA exists");
	ok(stat(part, &st) < 0, "no .part left");

	m[1].sha256 = "0000000000000000000000000000000000000000000000000000000000000000";
	unlink(ova);
	is_int(h2k_ova_write(ova, m, 2, NULL), -2, "digest mismatch fails (-2: not the bytes recorded)");
	ok(has(h2k_errmsg(), "does not match"), "says so: %s", h2k_errmsg());
	ok(stat(ova, &st) < 0 && stat(part, &st) < 0,
	    "nothing left under the final or the .part name");

	m[1].path = "/nonexistent/d.vmdk";
	is_int(h2k_ova_write(ova, m, 2, NULL), -1, "missing member fails");
	is_int(h2k_errcode(), H2K_EX_NOTFOUND, "as not found");

	/* read back: every member as expected, once */
	char ohex[65];
	m[1].path = p2;
	m[1].sha256 = hex;
	is_int(h2k_ova_write(ova, m, 2, NULL), 0, "pack again");
	is_int(h2k_sha256_file(p1, ohex, &sz), 0, "hash the descriptor");
	struct h2k_ova_member v[3] = {
		{ "a.ovf", NULL, ohex }, { "d.vmdk", NULL, hex }, { "e.vmdk", NULL, hex },
	};
	is_int(h2k_ova_verify(ova, v, 2, NULL), 0, "the OVA reads back as packed");
	is_int(h2k_ova_verify(ova, v, 3, NULL), -1, "a member missing fails");
	ok(has(h2k_errmsg(), "e.vmdk missing"), "naming it: %s", h2k_errmsg());
	is_int(h2k_ova_verify(ova, v + 1, 1, NULL), -1, "a member not expected fails");
	ok(has(h2k_errmsg(), "a.ovf was not packed by us"), "naming it: %s", h2k_errmsg());
	v[1].sha256 = ohex;
	is_int(h2k_ova_verify(ova, v, 2, NULL), -1, "a digest that differs fails");
	ok(has(h2k_errmsg(), "member d.vmdk reads back with SHA-256"), "naming it: %s",
	    h2k_errmsg());
	is_int(h2k_errcode(), H2K_EX_IO, "as an I/O error");
	v[1].sha256 = hex;
	/* a byte changed inside the disk's member */
	int fd = open(ova, O_WRONLY);
	ok(fd >= 0 && pwrite(fd, "X", 1, 4096 + 100000) == 1 && close(fd) == 0,
	    "corrupt the OVA");
	is_int(h2k_ova_verify(ova, v, 2, NULL), -1, "a corrupt member fails");
	struct h2k_ova_member twice[2] = { { "a.ovf", NULL, ohex }, { "a.ovf", NULL, ohex } };
	unlink(ova);
	m[1] = m[0];
	is_int(h2k_ova_write(ova, m, 2, NULL), 0, "pack a member twice");
	is_int(h2k_ova_verify(ova, twice, 1, NULL), -1, "a member twice fails");
	ok(has(h2k_errmsg(), "packed twice"), "says so: %s", h2k_errmsg());
	unlink(ova);
	m[1].name = "d.vmdk";

	volatile sig_atomic_t stop = 1;
	m[1].path = p2;
	m[1].sha256 = hex;
	is_int(h2k_ova_write(ova, m, 2, &stop), -1, "cancel stops packing");
	is_int(h2k_errcode(), H2K_EX_CANCEL, "as cancelled");
	ok(stat(part, &st) < 0, "and removes the .part");

	unlink(p1);
	unlink(p2);
	rmdir(dir);
}

static const char desc_disks[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<Envelope xmlns=\"http://schemas.dmtf.org/ovf/envelope/1\" "
    "xmlns:ovf=\"http://schemas.dmtf.org/ovf/envelope/1\">\n"
    "  <References>\n"
    "    <File ovf:href=\"disk-0.qcow2\" ovf:id=\"file1\" ovf:size=\"1\"/>\n"
    "    <File ovf:href=\"nvram\" ovf:id=\"file2\" ovf:size=\"8684\"/>\n"
    "  </References>\n"
    "  <DiskSection>\n"
    "    <Disk ovf:capacity=\"2\" ovf:capacityAllocationUnits=\"byte * 2^30\" "
    "ovf:diskId=\"vmdisk1\" ovf:fileRef=\"file1\" "
    "ovf:format=\"http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized\"/>\n"
    "  </DiskSection>\n"
    "</Envelope>\n";

static void
test_disks(void)
{
	struct h2k_ovf_desc d;
	const char *q = "http://www.gnome.org/~markmc/qcow-image-format.html";

	ok(!strcmp(h2k_ovf_format_uri("qcow2", NULL), q), "qcow2 URI");
	ok(has(h2k_ovf_format_uri("raw", NULL), "qemu-block-drivers.html#raw"), "raw URI");
	ok(has(h2k_ovf_format_uri("vmdk", "streamOptimized"), "vmdk.html#streamOptimized"),
	    "streamOptimized URI");
	ok(has(h2k_ovf_format_uri("vmdk", "monolithicSparse"), "vmdk.html#sparse"),
	    "other sparse VMDK: #sparse");
	ok(!strcmp(h2k_ovf_format_uri("vmdk", NULL), h2k_ovf_format_uri("raw", NULL)),
	    "a VMDK of plain bytes is raw");
	ok(!h2k_ovf_format_uri("vhdx", NULL) && !h2k_ovf_format_uri(NULL, NULL),
	    "unknown: NULL");

	is_int(h2k_ovf_process(desc_disks, sizeof desc_disks - 1, 0, &d), 0, "parse");
	struct h2k_ovf_disk dk[2] = {
		{ "disk-0.qcow2", q, 4456448, 2147483648LL, 1048576 },
		{ "other.raw", "x", 5, 5, 5 },
	};
	is_int(h2k_ovf_set_disks(&d, dk, 2), 0, "set the disks");
	ok(d.text && has(d.text, "ovf:format=\"http://www.gnome.org/~markmc/qcow-image-format.html\""),
	    "format URI set");
	ok(d.text && has(d.text, "ovf:capacity=\"2147483648\"") &&
	    !has(d.text, "capacityAllocationUnits"), "capacity in bytes, no unit");
	ok(d.text && has(d.text, "ovf:populatedSize=\"1048576\""),
	    "populatedSize added with the ovf prefix");
	ok(d.text && has(d.text, "ovf:href=\"disk-0.qcow2\" ovf:id=\"file1\" ovf:size=\"4456448\""),
	    "the File's size");
	ok(d.text && has(d.text, "ovf:size=\"8684\"") && !has(d.text, "other.raw"),
	    "a file not named is left alone");
	h2k_ovf_desc_free(&d);
}

int
main(void)
{
	test_disks();
	test_cdrom();
	test_hostile();
	test_mf();
	test_names();
	test_ova();
	return tap_done();
}
