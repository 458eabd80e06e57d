#!/usr/bin/env bash
# attack (issue 10 item 2 against item 1): a download whose name merely
# ends in .ovf, .mf or .ova -- the NAME-2.ovf h2k-fetch gives a device
# whose target id is NAME.ovf, or a disk the server calls notes.mf -- is
# not a completed export.  Rerunning h2k-fetch on the VM's folder (after a
# failed h2k-ovf, or to resume) goes ahead (exit 0) and keeps the files;
# only NAME.ovf, NAME.mf or NAME.ova, what h2k-ovf writes, make the folder
# a completed export (exit 12; --overwrite removes exactly those).
# And names that differ only in ASCII case are one file on exFAT, NTFS or
# SMB: h2k-fetch keeps them apart from each other and from NAME.ovf/.mf/.ova
# and NAME.part, and h2k-ovf refuses a download named VM.OVF (exit 2).
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/servers/nfcd-lib.sh"

nfcd_start
mkdisk d 40000
U="$NFCD_URL/-/d"
dev() { printf '{"key":"%s","target_id":"%s","disk":true,"url":"%s"}' "$1" "$2" "$U"; }
line() { printf '{"name":"%s","moref":"vm-%s","devices":[%s]}\n' "$1" "$2" "$3"; }
fetch() { h2k-fetch --ca-file "$NFCD_CERT" -q -o out "$@"; }

line evil 1 "$(dev a evil.ovf),$(dev b disk.vmdk)" >evil.json
line odd 2 "$(dev a notes.mf),$(dev b disk.ova),$(dev c disk.vmdk)" >odd.json

test_expect_success 'setup: the first runs name the devices evil-2.ovf, notes.mf, disk.ova' '
	fetch <evil.json >e1 2>err && test_line_count = 0 err &&
	fetch <odd.json >o1 2>err && test_line_count = 0 err &&
	(cd out/evil && ls) >names && printf "%s\n" disk.vmdk evil-2.ovf >expect &&
	test_cmp expect names &&
	(cd out/odd && ls) >names && printf "%s\n" disk.ova disk.vmdk notes.mf >expect &&
	test_cmp expect names
'

test_expect_success 'rerun on evil (a device named evil-2.ovf): exit 0, files kept' '
	fetch <evil.json >e2 2>err && test_line_count = 0 err &&
	test "$(jget e2 files.*.path | sed "s,.*/,," | tr "\n" " ")" = "evil-2.ovf disk.vmdk " &&
	cmp out/evil/evil-2.ovf srv/d && cmp out/evil/disk.vmdk srv/d
'

test_expect_success 'rerun on odd (devices notes.mf, disk.ova): exit 0, files kept' '
	fetch <odd.json >o2 2>err && test_line_count = 0 err &&
	for f in notes.mf disk.ova disk.vmdk; do cmp out/odd/$f srv/d || exit 1; done
'

test_expect_success 'evil.mf, what h2k-ovf writes: still a completed export, exit 12, untouched' '
	printf "SHA256(evil.ovf)= 00\n" >out/evil/evil.mf && ls -A out/evil >before &&
	expect_code 12 fetch <evil.json >e3 2>err &&
	test_one_line err && grep -qF "evil.mf" err && test_line_count = 0 e3 &&
	ls -A out/evil >after && test_cmp before after
'

test_expect_success '--overwrite removes evil.mf only; the download evil-2.ovf stays' '
	fetch --overwrite <evil.json >e4 2>err && test_line_count = 0 err &&
	test ! -e out/evil/evil.mf && cmp out/evil/evil-2.ovf srv/d
'

# Case: on exFAT, NTFS or an SMB share "EVIL.OVF" and evil.ovf are one
# file, so the descriptor would replace that disk there; "Disk.vmdk.PART"
# would be Disk.vmdk's temporary file.
test_expect_success 'target ids EVIL.OVF, Evil.Mf, Disk.vmdk.PART: no name that is, but for case, one h2k writes' '
	line evil 3 "$(dev a EVIL.OVF),$(dev b Evil.Mf),$(dev c Disk.vmdk),$(dev d disk.VMDK),$(dev e Disk.vmdk.PART)" >case.json &&
	fetch -o out3 <case.json >c1 2>err && test_line_count = 0 err &&
	(cd out3/evil && ls) | LC_ALL=C sort >names &&
	printf "%s\n" Disk.vmdk Disk.vmdk.PART_ EVIL-2.OVF Evil-2.Mf disk-2.VMDK | LC_ALL=C sort >expect &&
	test_cmp expect names
'
nfcd_stop

sim_start -vm 1 -disks 1 -disk-size 64K -power off
h2k_login_sim || { echo "Bail out! login failed"; exit 1; }
VM=DC0_H0_VM0

test_expect_success 'h2k-ovf: a download named like NAME.ovf in another case is refused, exit 2' '
	h2k-lease /DC0/vm/$VM | h2k-fetch -q -o exp >line &&
	d=$(jget line dir) && p=$(jget line files.0.path) &&
	mv "$p" "$d/$(printf %s "$VM" | tr a-z A-Z).OVF" &&
	python3 -c "import json,sys; o=json.loads(open(sys.argv[1]).read()); o[\"files\"][0][\"path\"]=sys.argv[2]; print(json.dumps(o))" \
		line "$d/$(printf %s "$VM" | tr a-z A-Z).OVF" >in &&
	ls -A "$d" >before &&
	expect_code 2 h2k-ovf --keep-lease <in >json 2>err &&
	test_one_line err && grep -q "a name h2k-ovf writes itself" err &&
	ls -A "$d" >after && test_cmp before after
'

test_done
