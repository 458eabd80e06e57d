#!/usr/bin/env bash
# h2k-fetch: a VM's output folder and files are that VM's alone.  Two VMs
# of one name (other folders of the inventory) never share a folder or a
# .part, a .part is resumed only by the VM and device that wrote it, a
# completed export is not replaced without --overwrite, a folder in use by
# another export is refused (exit 12).
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/servers/nfcd-lib.sh"

# 2 MiB disks at 1 MB/s: two downloads started together overlap
sim_start -vm 2 -disks 0 -disk-size 2M -disk-fill random -power off -host 1 \
	-cluster 0 -nfc-bps 1000000
DS="$SIM_DSDIR/DC0-LocalDS_0"
N=DC0_H0_VM0

# check OUT.json VMDIR: every file is byte-identical to its own VM's disk
# (in datastore folder VMDIR), the sha256 printed is the file's, and the
# files lie in "dir"; prints the dir
check() {
	python3 - "$TRASH/$1" "$DS/$2" <<-\PY
	import json, sys, hashlib, os
	lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
	assert len(lines) == 1, lines
	o = lines[0]
	urls = {d["key"]: d["url"] for d in o["devices"]}
	assert o["files"], o
	for f in o["files"]:
	    want = open(os.path.join(sys.argv[2], urls[f["key"]].rsplit("/", 1)[1]), "rb").read()
	    got = open(f["path"], "rb").read()
	    assert len(want) == 2 << 20 and got == want, f["path"]
	    assert f["sha256"] == hashlib.sha256(got).hexdigest(), f
	    assert os.path.dirname(f["path"]) == o["dir"], f
	print(o["dir"])
	PY
}

test_expect_success 'setup: two VMs named the same in two folders' '
	govc_ folder.create /DC0/vm/f1 >/dev/null &&
	govc_ object.mv /DC0/vm/DC0_H0_VM1 /DC0/vm/f1 >/dev/null 2>&1 &&
	govc_ object.rename /DC0/vm/f1/DC0_H0_VM1 $N >/dev/null 2>&1 &&
	h2k_login_sim &&
	h2k-lease /DC0/vm/$N >la.json && h2k-lease /DC0/vm/f1/$N >lb.json &&
	test "$(jget la.json name)" = "$(jget lb.json name)" &&
	test "$(jget la.json moref)" != "$(jget lb.json moref)"
'

test_expect_success '(a) two h2k-fetch processes, same name, one output: each its own folder and disk' '
	{ h2k-fetch -q -o out <la.json >oa.json 2>ea; echo $? >ca; } &
	{ h2k-fetch -q -o out <lb.json >ob.json 2>eb; echo $? >cb; } &
	wait &&
	cat ea eb && echo "exit: $(cat ca) $(cat cb)" &&
	test "$(cat ca)" = 0 && test "$(cat cb)" = 0 &&
	da=$(check oa.json DC0_H0_VM0) && db=$(check ob.json DC0_H0_VM1) &&
	test "$da" != "$db" &&
	test "$da" = "$TRASH/out/$N" -o "$db" = "$TRASH/out/$N" &&
	test "$da" = "$TRASH/out/$N--$(jget la.json moref)" -o \
	     "$db" = "$TRASH/out/$N--$(jget lb.json moref)" &&
	echo "$da" >dir.a && echo "$db" >dir.b
'

test_expect_success '(b) one h2k-fetch, both VMs in its input, either order: the same folders again' '
	h2k-lease /DC0/vm/f1/$N >lb2.json && h2k-lease /DC0/vm/$N >la2.json &&
	cat lb2.json la2.json | h2k-fetch -q -o out >o2.json 2>e2 &&
	test_line_count = 2 o2.json &&
	grep "\"moref\":\"$(jget la.json moref)\"" o2.json >oa2.json &&
	grep "\"moref\":\"$(jget lb.json moref)\"" o2.json >ob2.json &&
	da=$(check oa2.json DC0_H0_VM0) && db=$(check ob2.json DC0_H0_VM1) &&
	test "$da" = "$(cat dir.a)" && test "$db" = "$(cat dir.b)" &&
	cat la2.json lb2.json | h2k-fetch -q -o out3 >o3.json 2>e3 &&
	test_line_count = 2 o3.json &&
	grep "\"moref\":\"$(jget la.json moref)\"" o3.json >oa3.json &&
	grep "\"moref\":\"$(jget lb.json moref)\"" o3.json >ob3.json &&
	da=$(check oa3.json DC0_H0_VM0) && db=$(check ob3.json DC0_H0_VM1) &&
	test "$da" != "$db"
'

test_expect_success 'the folder marker names its VM' '
	jget out/$N/.h2k-vm moref >m && grep -qx "vm-[0-9]*" m &&
	grep -q "\"moref\":\"$(cat m)\"" "$(grep -l "\"dir\":\"$TRASH/out/$N\"" oa.json ob.json)"
'

# --- with the plain file server: resume, completed exports, locks ---------
nfcd_start
mkdisk d 300000
mkdisk junk 300000
U="$NFCD_URL/-/d"
F="h2k-fetch --ca-file $NFCD_CERT --retry-delay 0.05 -q"
vmline() { # NAME MOREF INSTANCE_UUID URL
	printf '{"name":"%s","moref":"%s","instance_uuid":"%s","devices":[%s]}\n' "$1" "$2" "$3" \
		"{\"key\":\"k0\",\"target_id\":\"disk-0.vmdk\",\"disk\":true,\"url\":\"$4\"}"
}
boot=$(cat /proc/sys/kernel/random/boot_id)
# plant VM/disk-0.vmdk.part (100000 bytes of another disk) whose meta says IDENT
plant() { # DIR IDENT
	mkdir -p "$1" && head -c 100000 srv/junk >"$1/disk-0.vmdk.part" &&
	printf '{"url":"%s","ident":"%s","synced":100000,"boot_id":"%s"}' \
		"$U" "$2" "$boot" >"$1/disk-0.vmdk.part.meta"
}

test_expect_success '(c) a .part whose meta names another VM is not resumed into' '
	plant res/v "vm-2|u2|k0|disk-0.vmdk" &&
	vmline v vm-1 u1 "$U" | $F -o res >c.json 2>c.err &&
	cmp res/v/disk-0.vmdk srv/d &&
	grep -q "\"sha256\":\"$(sha256sum <srv/d | cut -d" " -f1)\"" c.json
'

test_expect_success '(c) ... nor one whose meta names another device of the same VM' '
	plant res2/v "vm-1|u1|k1|disk-1.vmdk" &&
	vmline v vm-1 u1 "$U" | $F -o res2 >c2.json 2>c2.err &&
	cmp res2/v/disk-0.vmdk srv/d
'

test_expect_success '(c) control: its own meta is resumed (100000 bytes kept)' '
	mkdir -p res3/v && head -c 100000 srv/d >res3/v/disk-0.vmdk.part &&
	printf "{\"url\":\"%s\",\"ident\":\"vm-1|u1|k0|disk-0.vmdk\",\"synced\":100000,\"boot_id\":\"%s\"}" \
		"$U" "$boot" >res3/v/disk-0.vmdk.part.meta &&
	: >srv/requests.log &&
	vmline v vm-1 u1 "$U" | $F -o res3 >c3.json 2>c3.err &&
	cmp res3/v/disk-0.vmdk srv/d &&
	requests /-/d | grep -q "\"range\": \"bytes=100000-\""
'

snap() { (cd "$1" && find . -type f ! -name .h2k-lock -exec sha256sum {} + | LC_ALL=C sort); }

test_expect_success '(d) a folder with a completed export is refused (12) and left as it was' '
	vmline v vm-1 u1 "$U" | $F -o done >d1.json &&
	: >done/v/v.ovf && echo "SHA256(disk-0.vmdk)= x" >done/v/v.mf &&
	snap done >before &&
	expect_code 12 $F -o done <<<"$(vmline v vm-1 u1 "$NFCD_URL/-/junk")" >d2.json 2>d2.err &&
	test_one_line d2.err && grep -q "$TRASH/done/v: .*completed export" d2.err &&
	test ! -s d2.json && snap done >after && test_cmp before after
'

test_expect_success '(d) --overwrite replaces it (old .ovf/.mf gone)' '
	vmline v vm-1 u1 "$NFCD_URL/-/junk" | $F -o done --overwrite >d3.json 2>d3.err &&
	cmp done/v/disk-0.vmdk srv/junk && test ! -e done/v/v.ovf && test ! -e done/v/v.mf &&
	test "$(jget d3.json dir)" = "$TRASH/done/v"
'

test_expect_success '(d) a lone NAME.ovf (h2k-ovf killed before its .mf) is no completed export' '
	vmline v vm-1 u1 "$U" | $F -o lone >l1.json &&
	echo "<stale/>" >lone/v/v.ovf &&
	vmline v vm-1 u1 "$U" | $F -o lone >l2.json 2>l2.err &&
	cmp lone/v/disk-0.vmdk srv/d && test "$(jget l2.json dir)" = "$TRASH/lone/v" &&
	test ! -e lone/v/v.ovf  # it vouched for nothing: removed (t0446)
'

test_expect_success '(d) ... while a lone NAME.mf or NAME.OVA still is (12)' '
	echo "SHA256(disk-0.vmdk)= x" >lone/v/v.mf &&
	expect_code 12 $F -o lone <<<"$(vmline v vm-1 u1 "$U")" 2>l3.err &&
	grep -q "completed export (v.mf)" l3.err &&
	rm lone/v/v.mf && : >lone/v/V.OVA &&
	expect_code 12 $F -o lone <<<"$(vmline v vm-1 u1 "$U")" 2>l4.err &&
	grep -q "completed export (V.OVA)" l4.err
'

test_expect_success '(d) a folder of files nobody claimed (no marker) is not taken over' '
	mkdir -p legacy/v && cp srv/junk legacy/v/disk-0.vmdk && snap legacy >before &&
	expect_code 12 $F -o legacy <<<"$(vmline v vm-1 u1 "$U")" 2>d4.err &&
	grep -q "legacy/v: .*completed export" d4.err && snap legacy >after && test_cmp before after
'

test_expect_success '(e) a folder locked by a running export is refused (12)' '
	vmline v vm-1 u1 "$NFCD_URL/bps=100000,times=0/d" >slow.json &&
	{ $F -o busy <slow.json >e1.json 2>e1.err; echo $? >e1.code; } &
	i=0; while [ ! -e busy/v/disk-0.vmdk.part ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done &&
	expect_code 12 $F -o busy <<<"$(vmline v vm-1 u1 "$U")" >e2.json 2>e2.err &&
	grep -q "busy/v: in use" e2.err && test ! -s e2.json &&
	wait && test "$(cat e1.code)" = 0 && cmp busy/v/disk-0.vmdk srv/d
'

test_expect_success '(e) h2k-ovf refuses a folder being downloaded into, or another VM'"'"'s' '
	{ $F -o busy2 <slow.json >/dev/null 2>&1; } &
	i=0; while [ ! -e busy2/v/disk-0.vmdk.part ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done &&
	python3 -c "
import json, sys
o = json.loads(open(sys.argv[1]).read())
o[\"lease\"] = {\"moref\": \"session[x]y\"}
o[\"dir\"] = sys.argv[2]
o[\"files\"] = [{\"key\": \"k0\", \"target_id\": \"disk-0.vmdk\", \"disk\": True,
  \"path\": sys.argv[2] + \"/disk-0.vmdk\", \"size\": 1, \"sha256\": \"0\" * 64}]
print(json.dumps(o))
o[\"moref\"] = \"vm-9\"; o[\"instance_uuid\"] = \"u9\"; o[\"dir\"] = sys.argv[3]
o[\"files\"][0][\"path\"] = sys.argv[3] + \"/disk-0.vmdk\"
print(json.dumps(o))
" slow.json "$TRASH/busy2/v" "$TRASH/busy/v" >ovf.in &&
	sed -n 1p ovf.in >ovf1.in && sed -n 2p ovf.in >ovf2.in &&
	expect_code 12 h2k-ovf <ovf1.in >f1.json 2>f1.err &&
	grep -q "busy2/v: in use" f1.err &&
	expect_code 12 h2k-ovf <ovf2.in >f2.json 2>f2.err &&
	grep -q "busy/v: belongs to v (vm-1)" f2.err &&
	wait
'

nfcd_stop
test_done
