#!/usr/bin/env bash
# h2k-ovf at the end of the real pipeline h2k-lease | h2k-fetch | h2k-ovf:
# byte-identical disks, a manifest sha256sum accepts, govc import.ovf of the
# result, running VMs through a snapshot that is gone afterwards, several
# VMs with a bad line, OVA layout, CD-ROM removal.
. "$(dirname "$0")/../lib.sh"


# mfcheck DIR MF: verify an ovftool-style manifest with sha256sum -c.
mfcheck() {
	(cd "$1" && awk '
		match($0, /^SHA256\(.*\)= [0-9a-f]+$/) {
			name = $0; sub(/^SHA256\(/, "", name); sub(/\)= [0-9a-f]+$/, "", name)
			hex = $0; sub(/.*\)= /, "", hex)
			print hex "  " name; next
		}
		{ print "bad manifest line: " $0 > "/dev/stderr"; exit 1 }' "$2" >"$TRASH/mf.sum" &&
	test -s "$TRASH/mf.sum" && sha256sum --quiet --strict -c "$TRASH/mf.sum")
}

# rigfile VMNAME URL: the datastore file behind an NFC URL of that VM.
rigfile() { find "$SIM_DSDIR" -path "*/$1/${2##*/}" -type f | head -n 1; }

restart() { sim_stop; sim_start "$@"; h2k_login_sim || { echo "Bail out! login failed"; exit 1; }; }

# *_VM0 on, *_VM1 off; every VM has two disks of random bytes.
restart -vm 2 -disks 1 -disk-size 1M -disk-fill random -power mixed
OFF=/DC0/vm/DC0_H0_VM1 ON=/DC0/vm/DC0_H0_VM0

test_expect_success 'powered-off VM with two random disks through the pipeline' '
	h2k-lease "$OFF" | h2k-fetch -o exp | h2k-ovf >out1 2>err &&
	test_line_count = 1 out1 &&
	test "$(jget out1 lease.state)" = completed &&
	ovf=$(jget out1 ovf_path) && mf=$(jget out1 mf_path) &&
	test -f "$ovf" && test -f "$mf" && test "$ovf" = "$(jget out1 dir)/DC0_H0_VM1.ovf" &&
	test "$mf" = "$(jget out1 dir)/DC0_H0_VM1.mf" &&
	test "$(jget out1 files.*.path | wc -l)" = 2 &&
	! ls exp/*/*.part 2>/dev/null | grep -q .
'

test_expect_success 'exported disks are byte-identical to the rig files' '
	paste -d " " <(jget out1 files.*.path) <(jget out1 devices.*.url) >pairs &&
	test_line_count = 2 pairs &&
	while read -r f u; do
		r=$(rigfile DC0_H0_VM1 "$u") && test -n "$r" &&
		test "$(wc -c <"$r")" = 1048576 && cmp "$f" "$r" || exit 1
	done <pairs &&
	test "$(cmp exp/DC0_H0_VM1/disk-0.vmdk exp/DC0_H0_VM1/disk-1.vmdk >/dev/null; echo $?)" = 1
'

test_expect_success 'the manifest lists descriptor and disks and sha256sum -c accepts it' '
	mf=$(jget out1 mf_path) && test_line_count = 3 "$mf" &&
	head -n 1 "$mf" | grep -q "^SHA256(DC0_H0_VM1.ovf)= " &&
	mfcheck "$(dirname "$mf")" "$(basename "$mf")"
'

test_expect_success 'descriptor and manifest are private like the disks (0600)' '
	test "$(file_mode "$(jget out1 ovf_path)")" = 600 &&
	test "$(file_mode "$(jget out1 mf_path)")" = 600
'

test_expect_success 'a tampered disk makes the manifest check fail (the check can fail)' '
	cp -r exp/DC0_H0_VM1 tampered &&
	printf x | dd of=tampered/disk-1.vmdk bs=1 seek=1000 conv=notrunc 2>/dev/null &&
	! mfcheck tampered DC0_H0_VM1.mf 2>/dev/null
'

test_expect_success 'govc import.ovf of the result succeeds' '
	govc_ import.ovf -pool /DC0/host/DC0_H0/Resources -name imported-vm1 "$(jget out1 ovf_path)" >imp 2>&1 &&
	govc_ vm.info imported-vm1 >info && grep -q imported-vm1 info &&
	govc_ device.ls -vm imported-vm1 | grep -c "^disk-" >ndisks && test "$(cat ndisks)" = 2
'

test_expect_success 'the lease was completed: a second h2k-ovf run only warns' '
	h2k-ovf <out1 >out2 2>err2 && test_line_count = 1 out2 &&
	grep -q "already ended" err2 && cmp "$(jget out1 ovf_path)" "$(jget out2 ovf_path)"
'

test_expect_success 'running VM with --snapshot: exported via ExportSnapshot, snapshot gone after' '
	h2k-lease --snapshot "$ON" | h2k-fetch -o exp | h2k-ovf >out 2>err &&
	test "$(jget out lease.mode)" = snapshot &&
	snap=$(jget out lease.snapshot) && test "$snap" != null &&
	test "$(jget out lease.state)" = completed &&
	govc_ snapshot.tree -vm "$ON" >tree && test ! -s tree &&
	govc_ vm.info "$ON" | grep -q poweredOn &&
	mfcheck "$(jget out dir)" DC0_H0_VM0.mf &&
	jget out files.*.path >paths && test -s paths
'

test_expect_success 'several VMs through one pipeline, one bad line in the middle: exit 5' '
	h2k-ls --power off --name "DC0_*" >ls && test_line_count = 2 ls &&
	{ head -n 1 ls; echo "[1,2]"; tail -n 1 ls; } >in &&
	h2k-lease <in 2>lerr | h2k-fetch -o many | h2k-ovf >out 2>err;
	st=("${PIPESTATUS[@]}") &&
	test "${st[0]}" = 5 && test "${st[1]}" = 0 && test "${st[2]}" = 0 &&
	grep -q "stdin:2:" lerr && test_line_count = 2 out &&
	for d in $(jget out dir); do
		mfcheck "$d" "$(basename "$d").mf" || exit 1
	done
'

test_expect_success '--ova: descriptor first, then manifest and disks, all byte-identical' '
	h2k-lease "$OFF" | h2k-fetch -o ova | h2k-ovf --ova --keep-files >outova 2>err &&
	ova=$(jget outova ova_path) && d=$(jget outova dir) &&
	test "$ova" = "$d/DC0_H0_VM1.ova" && test -f "$ova" && test ! -e "$ova.part" &&
	test "$(file_mode "$ova")" = 600 &&
	tar tf "$ova" >members &&
	printf "%s\n" DC0_H0_VM1.ovf DC0_H0_VM1.mf disk-0.vmdk disk-1.vmdk >expect &&
	test_cmp expect members &&
	mkdir x && tar xf "$ova" -C x &&
	for m in $(cat members); do cmp "x/$m" "$d/$m" || exit 1; done &&
	mfcheck x DC0_H0_VM1.mf
'

test_expect_success '--ova is ustar (the format the OVF specification names)' '
	ova=$(jget outova ova_path) && dd if="$ova" bs=1 skip=257 count=6 2>/dev/null | od -An -c | tr -d " " >magic &&
	test "$(cat magic)" = "ustar\\0"
'

test_expect_success '--remove-cdrom drops the CD-ROM items, the result still imports' '
	ovf=$(jget out1 ovf_path) &&
	grep -c "<rasd:ResourceType>15</rasd:ResourceType>" "$ovf" >n && test "$(cat n)" -ge 1 &&
	h2k-lease "$OFF" | h2k-fetch -o nocd | h2k-ovf --remove-cdrom >out 2>err &&
	o2=$(jget out ovf_path) &&
	! grep -q "<rasd:ResourceType>1[56]</rasd:ResourceType>" "$o2" &&
	grep -q "<rasd:ResourceType>17</rasd:ResourceType>" "$o2" &&
	test "$(jget out cdroms_removed)" = "$(cat n)" &&
	mfcheck "$(jget out dir)" DC0_H0_VM1.mf &&
	govc_ import.ovf -pool /DC0/host/DC0_H0/Resources -name nocd-vm1 "$o2" >/dev/null 2>&1 &&
	! govc_ device.ls -vm nocd-vm1 | grep -q "^cdrom"
'

test_done
