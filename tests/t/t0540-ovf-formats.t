#!/usr/bin/env bash
# h2k-ovf after h2k-fetch --format raw, qcow2 and vmdk: References and
# DiskSection name the files written with their format URI, capacity in
# bytes, populatedSize and size; the manifest covers every file so that
# sha256sum -c passes; --ova packs them, reads the OVA back and removes the
# loose disks (not with --keep-files); an OVA that reads back wrong is
# removed, the disks stay, exit 8.
. "$(dirname "$0")/../lib.sh"

# the rig's streamOptimized mode when it has it (disks then arrive as ESXi
# streams them), else plain bytes
mode=plain
"$SIM_BIN" -h 2>&1 | grep -q -- -stream-vmdk && mode=stream
set -- -vm 3 -disks 1 -disk-size 2M -disk-fill random -power off
[ $mode = plain ] || set -- "$@" -stream-vmdk
say "rig mode: $mode"
sim_start "$@"
h2k_login_sim || { echo "Bail out! login failed"; exit 1; }

QCOW=http://www.gnome.org/~markmc/qcow-image-format.html
RAW=https://www.qemu.org/docs/master/system/qemu-block-drivers.html#raw
STREAM=http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized

# mfcheck DIR MF: an ovftool-style manifest through sha256sum -c
mfcheck() {
	(cd "$1" && sed -E -n 's/^SHA256\((.*)\)= ([0-9a-f]{64})$/\2  \1/p' "$2" >"$TRASH/mf.sum" &&
	test "$(wc -l <"$TRASH/mf.sum")" = "$(wc -l <"$2")" &&
	sha256sum --quiet --strict -c "$TRASH/mf.sum")
}

# desc_check LINE URI: the descriptor of h2k-ovf's output LINE against its
# files[]; prints one "href format capacity" line per file.
desc_check() {
	python3 - "$1" "$2" <<-\PY
	import json, os, sys, xml.etree.ElementTree as ET
	o = json.loads(open(sys.argv[1]).read())
	want = sys.argv[2]
	ns = {"ovf": "http://schemas.dmtf.org/ovf/envelope/1"}
	A = lambda e, k: e.get("{%s}%s" % (ns["ovf"], k))
	root = ET.parse(o["ovf_path"]).getroot()
	files = {os.path.basename(f["path"]): f for f in o["files"]}
	refs = root.findall("ovf:References/ovf:File", ns)
	assert sorted(A(r, "href") for r in refs) == sorted(files), (refs, files)
	disks = root.findall(".//ovf:DiskSection/ovf:Disk", ns)
	for r in refs:
	    f = files[A(r, "href")]
	    assert int(A(r, "size")) == f["size"], (r.attrib, f)
	    ds = [d for d in disks if A(d, "fileRef") == A(r, "id")]
	    assert len(ds) == 1, ds
	    d = ds[0]
	    assert A(d, "format") == want, (A(d, "format"), want)
	    assert A(d, "capacityAllocationUnits") is None, d.attrib
	    assert int(A(d, "capacity")) == f["capacity_bytes"], (d.attrib, f)
	    p = A(d, "populatedSize")
	    # a streamOptimized VMDK keeps the server figure, if any
	    if want != "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized":
	        assert p is not None and 0 < int(p) <= f["capacity_bytes"], d.attrib
	    print(A(r, "href"), f["format"], A(d, "capacity"))
	PY
}

# same_disk OUTLINE: every file of the line holds the datastore disk behind it
same_disk() {
	command -v qemu-img >/dev/null || { say "no qemu-img: contents not compared"; return 0; }
	python3 - "$1" "$SIM_DSDIR" <<-\PY >pairs &&
	import json, os, sys
	o = json.loads(open(sys.argv[1]).read())
	url = {d["key"]: d["url"] for d in o["devices"]}
	for f in o["files"]:
	    name = url[f["key"]].rsplit("/", 1)[1]
	    for dp, dn, fn in os.walk(sys.argv[2]):
	        if name in fn and os.path.basename(dp) == o["name"]:
	            print(f["format"], f["path"], os.path.join(dp, name))
	PY
	test "$(wc -l <pairs)" = 2 &&
	while read -r fmt got src; do
		qemu-img compare -q -f raw -F "$fmt" "$src" "$got" || return 1
	done <pairs
}

test_expect_success 'qcow2: References and Disks name the .qcow2 files, qcow2 URI, bytes' '
	h2k-lease /DC0/vm/DC0_H0_VM0 | h2k-fetch -q --format qcow2 -o q |
		h2k-ovf >outq 2>errq &&
	desc_check outq "$QCOW" >actual &&
	printf "%s\n" "disk-0.qcow2 qcow2 2097152" "disk-1.qcow2 qcow2 2097152" >expect &&
	test_cmp expect actual &&
	mfcheck "$(jget outq dir)" DC0_H0_VM0.mf &&
	test "$(wc -l <"$(jget outq mf_path)")" = 3 &&
	same_disk outq
'

test_expect_success 'raw: the raw URI, populatedSize within the capacity' '
	h2k-lease /DC0/vm/DC0_H0_VM1 | h2k-fetch -q --format raw -o r |
		h2k-ovf >outr 2>errr &&
	desc_check outr "$RAW" >actual &&
	printf "%s\n" "disk-0.raw raw 2097152" "disk-1.raw raw 2097152" >expect &&
	test_cmp expect actual &&
	mfcheck "$(jget outr dir)" DC0_H0_VM1.mf &&
	same_disk outr
'

test_expect_success 'vmdk as served: streamOptimized URI for a stream, raw for plain bytes' '
	h2k-lease /DC0/vm/DC0_H0_VM2 | h2k-fetch -q -o v | h2k-ovf >outv 2>errv &&
	if [ $mode = stream ]; then want=$STREAM fmt=vmdk; else want=$RAW fmt=raw; fi &&
	desc_check outv "$want" >actual &&
	printf "%s\n" "disk-0.vmdk $fmt 2097152" "disk-1.vmdk $fmt 2097152" >expect &&
	test_cmp expect actual &&
	mfcheck "$(jget outv dir)" DC0_H0_VM2.mf
'

test_expect_success '--ova: verified OVA, loose disks removed, members pass sha256sum -c' '
	h2k-lease /DC0/vm/DC0_C0_RP0_VM0 | h2k-fetch -q --format qcow2 -o o |
		h2k-ovf --ova >outo 2>erro &&
	d=$(jget outo dir) && ova=$(jget outo ova_path) &&
	tar tf "$ova" >members &&
	printf "%s\n" DC0_C0_RP0_VM0.ovf DC0_C0_RP0_VM0.mf disk-0.qcow2 disk-1.qcow2 >expect &&
	test_cmp expect members &&
	test ! -e "$d/disk-0.qcow2" && test ! -e "$d/disk-1.qcow2" &&
	test -f "$d/DC0_C0_RP0_VM0.ovf" && test -f "$d/DC0_C0_RP0_VM0.mf" &&
	test "$(jget outo files.*.removed | sort -u)" = true &&
	mkdir x && tar xf "$ova" -C x &&
	mfcheck x DC0_C0_RP0_VM0.mf &&
	cmp x/DC0_C0_RP0_VM0.ovf "$d/DC0_C0_RP0_VM0.ovf" &&
	! ls "$d" | grep -q "\.part$"
'

test_expect_success '--ova --keep-files: the disks stay beside the OVA' '
	h2k-lease /DC0/vm/DC0_C0_RP0_VM1 | h2k-fetch -q --format raw -o k |
		h2k-ovf --ova --keep-files >outk 2>errk &&
	d=$(jget outk dir) &&
	test -f "$(jget outk ova_path)" &&
	test -f "$d/disk-0.raw" && test -f "$d/disk-1.raw" &&
	test "$(jget outk files.*.removed | sort -u)" = "" &&
	mfcheck "$d" DC0_C0_RP0_VM1.mf
'

test_expect_success 'an OVA that reads back wrong: exit 8 naming the member, OVA removed, disks kept' '
	cc -shared -fPIC -o failio.so "$TESTS_DIR/servers/failio.c" -ldl &&
	h2k-lease /DC0/vm/DC0_C0_RP0_VM2 | h2k-fetch -q --format raw -o c >linec &&
	d=$(jget linec dir) &&
	# a byte of the last disk: its member ends 1024 bytes of tar trailer
	# (at least) before the end of the OVA
	n=$(( $(jget linec files.0.size) + $(jget linec files.1.size) )) &&
	expect_code 8 env ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
		LD_PRELOAD="$TRASH/failio.so" FAILIO=flipova:$((n / 2 + 5000)) \
		h2k-ovf --ova <linec >outc 2>errc &&
	test_one_line errc &&
	grep -q "DC0_C0_RP0_VM2.ova: member disk-[01].raw reads back with SHA-256 [0-9a-f]*, the manifest says" errc &&
	test ! -s outc &&
	test ! -e "$d/DC0_C0_RP0_VM2.ova" && test ! -e "$d/DC0_C0_RP0_VM2.ova.part" &&
	test -f "$d/disk-0.raw" && test -f "$d/disk-1.raw" &&
	test "$(sha256sum <"$d/disk-0.raw" | cut -d" " -f1)" = "$(jget linec files.0.sha256)"
'

test_done
