#!/usr/bin/env bash
# h2k-fetch/h2k-ovf: attacks on the per-VM folder rule (vmdir.h) that
# t0410 does not try: a FIFO planted as the marker or meta, a folder
# pre-made by another user in a shared output directory, a rerun from a
# line that knows less of the VM than the marker, a marker too long to read
# back.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/servers/nfcd-lib.sh"

# h2k-ovf needs a session (the folder is checked before the lease)
sim_start -vm 1 -disks 0 -power off -host 1 -cluster 0
nfcd_start
h2k_login_sim || { echo "Bail out! login"; exit 1; }
mkdisk d 300000
mkdisk junk 300000
U="$NFCD_URL/-/d"
F="h2k-fetch --ca-file $NFCD_CERT --retry-delay 0.05 -q"
vmline() { # NAME MOREF INSTANCE_UUID URL
	printf '{"name":"%s","moref":"%s","instance_uuid":"%s","devices":[%s]}\n' "$1" "$2" "$3" \
		"{\"key\":\"k0\",\"target_id\":\"disk-0.vmdk\",\"disk\":true,\"url\":\"$4\"}"
}
# ovfline FETCHLINE: the h2k-fetch output line with a lease, for h2k-ovf
ovfline() {
	python3 -c '
import json, sys
o = json.loads(open(sys.argv[1]).read())
o["lease"] = {"moref": "session[x]y"}
print(json.dumps(o))' "$1"
}

test_expect_success 'a FIFO planted as a folder'"'"'s .h2k-vm does not hang h2k-fetch' '
	mkdir -p fifo/v && mkfifo fifo/v/.h2k-vm &&
	vmline v vm-1 u1 "$U" >l1.json &&
	expect_code 0 timeout -s KILL 20 $F -o fifo <l1.json >f1.json 2>f1.err &&
	test "$(jget f1.json dir)" = "$TRASH/fifo/v--vm-1" &&
	cmp fifo/v--vm-1/disk-0.vmdk srv/d && test -p fifo/v/.h2k-vm
'

test_expect_success '... nor h2k-ovf (exit 12: not this VM'"'"'s folder)' '
	ovfline f1.json | sed "s,v--vm-1,v,g" >o1.in &&
	expect_code 12 timeout -s KILL 20 h2k-ovf <o1.in >o1.json 2>o1.err &&
	grep -q "fifo/v: belongs to another export" o1.err
'

test_expect_success 'a FIFO planted as a .part.meta does not hang h2k-fetch' '
	mkdir -p fifo2 && vmline v vm-1 u1 "$U" | $F -o fifo2 >/dev/null &&
	mv fifo2/v/disk-0.vmdk fifo2/v/disk-0.vmdk.part && mkfifo fifo2/v/disk-0.vmdk.part.meta &&
	expect_code 8 timeout -s KILL 20 $F -o fifo2 <l1.json >f2.json 2>f2.err
'

test_expect_success 'shared sticky output dir: a folder made first by another user is not used' '
	mkdir -m 1777 shared &&
	setpriv --reuid=65534 --regid=65534 --clear-groups sh -c \
		"umask 0; mkdir shared/v && : >shared/v/disk-0.vmdk.part && : >shared/v/disk-0.vmdk" &&
	expect_code 0 $F -o shared <l1.json >s1.json 2>s1.err &&
	test "$(jget s1.json dir)" = "$TRASH/shared/v--vm-1" &&
	cmp shared/v--vm-1/disk-0.vmdk srv/d &&
	test "$(stat -c %u shared/v--vm-1)" = 0 &&
	test ! -s shared/v/disk-0.vmdk.part && test ! -s shared/v/disk-0.vmdk &&
	! setpriv --reuid=65534 --regid=65534 --clear-groups cat shared/v--vm-1/disk-0.vmdk >/dev/null 2>&1
'

test_expect_success '... and h2k-ovf refuses another user'"'"'s folder (12)' '
	ovfline s1.json | sed "s,v--vm-1,v,g" >s2.in &&
	setpriv --reuid=65534 --regid=65534 --clear-groups sh -c \
		"printf %s '"'"'{\"moref\":\"vm-1\",\"instance_uuid\":\"u1\",\"name\":\"v\"}'"'"' >shared/v/.h2k-vm" &&
	expect_code 12 h2k-ovf <s2.in >s2.json 2>s2.err &&
	grep -q "shared/v: belongs to another user" s2.err && test ! -e shared/v/v.ovf
'

test_expect_success 'a folder of ours writable by others: a .part another user planted is not filled' '
	mkdir -p open && mkdir -m 0777 open/v && chmod 0777 open/v &&
	boot=$(cat /proc/sys/kernel/random/boot_id) &&
	setpriv --reuid=65534 --regid=65534 --clear-groups sh -c "umask 0
		head -c 100000 srv/junk >open/v/disk-0.vmdk.part
		printf %s '"'"'{\"url\":\"$U\",\"ident\":\"vm-1|u1|k0|disk-0.vmdk\",\"synced\":100000,\"boot_id\":\"$boot\"}'"'"' >open/v/disk-0.vmdk.part.meta" &&
	test "$(stat -c %U open/v/disk-0.vmdk.part)" = nobody &&
	expect_code 0 $F -o open <l1.json >p1.json 2>p1.err &&
	test "$(jget p1.json dir)" = "$TRASH/open/v" &&
	cmp open/v/disk-0.vmdk srv/d &&
	test "$(stat -c %u:%a open/v/disk-0.vmdk)" = 0:600 &&
	! setpriv --reuid=65534 --regid=65534 --clear-groups cat open/v/disk-0.vmdk >/dev/null 2>&1
'

test_expect_success 'a rerun from a line without the instance UUID keeps it in the marker' '
	vmline v vm-1 u1 "$U" | $F -o dg >dg1.json &&
	vmline v vm-1 "" "$U" | $F -o dg >dg2.json &&
	test "$(jget dg2.json dir)" = "$TRASH/dg/v" &&
	test "$(jget dg/v/.h2k-vm instance_uuid)" = u1 &&
	vmline v vm-1 u2 "$NFCD_URL/-/junk" | $F -o dg >dg3.json &&
	test "$(jget dg3.json dir)" = "$TRASH/dg/v--vm-1" &&
	cmp dg/v/disk-0.vmdk srv/d && cmp dg/v--vm-1/disk-0.vmdk srv/junk
'

test_expect_success 'a VM whose marker would be over 8 KiB finds its folder again' '
	n=$(python3 -c "print(\"\\\\u0001\" * 1500)") &&
	vmline "$n" vm-1 u1 "$U" >big.json &&
	$F -o big <big.json >b1.json && $F -o big <big.json >b2.json &&
	test "$(jget b1.json dir)" = "$(jget b2.json dir)" &&
	test "$(ls big | wc -l)" = 1 &&
	test "$(jget "$(jget b1.json dir)/.h2k-vm" moref)" = vm-1
'

test_expect_success 'shared output dir: an OUTDIR/.h2k-lock of another user is refused (12), not waited on' '
	mkdir -m 1777 shl &&
	setpriv --reuid=65534 --regid=65534 --clear-groups sh -c "umask 0; : >shl/.h2k-lock" &&
	{ setpriv --reuid=65534 --regid=65534 --clear-groups flock -o shl/.h2k-lock sleep 60 & } &&
	holder=$! && sleep 0.3 &&
	expect_code 12 timeout -s KILL 10 $F -o shl <l1.json >h1.json 2>h1.err; rc=$?;
	kill $holder; wait $holder 2>/dev/null;
	test $rc = 0 && test_one_line h1.err && grep -q "shl/.h2k-lock: not a file of this user" h1.err &&
	test ! -e shl/v && test ! -s h1.json
'

test_expect_success 'a claim lock held for long (a stopped h2k-fetch) fails after a bounded wait (12)' '
	mkdir -p held && : >held/.h2k-lock &&
	{ flock -o held/.h2k-lock sleep 60 & } && holder=$! && sleep 0.3 &&
	start=$(date +%s) &&
	expect_code 12 timeout -s KILL 50 $F -o held <l1.json >h2.json 2>h2.err; rc=$?;
	kill $holder; wait $holder 2>/dev/null;
	test $rc = 0 && grep -q "held/.h2k-lock: held by another process" h2.err &&
	test $(( $(date +%s) - start )) -lt 45
'

nfcd_stop
test_done
