#!/usr/bin/env bash
# format: in a job file with the real pipeline against the rig: qcow2 ends
# as .qcow2 files that qemu-img compares identical to the rig's disks (and
# checks clean), the manifest verified; format: ova ends as a verified OVA
# with the loose disks removed.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/t/t06-standins.sh"

if ! command -v qemu-img >/dev/null; then
	test_skip 'format: qcow2 through h2k-job' 'no qemu-img (scripts/deps installs qemu-utils)'
	test_done
fi
# ESXi's streams when the rig has them, else plain bytes
set -- -vm 1 -disks 1 -disk-size 1M -disk-fill random -power off
! "$SIM_BIN" -h 2>&1 | grep -q -- -stream-vmdk || set -- "$@" -stream-vmdk
sim_start "$@"
job_trap
export H2K_SPOOL="$TRASH/spool" OUT="$TRASH/out"
DS="$SIM_DSDIR/DC0-LocalDS_0"

# mfcheck DIR MF: an ovftool-style manifest through sha256sum -c
mfcheck() {
	(cd "$1" && sed -E -n 's/^SHA256\((.*)\)= ([0-9a-f]{64})$/\2  \1/p' "$2" >"$TRASH/mf.sum" &&
	test "$(wc -l <"$TRASH/mf.sum")" = "$(wc -l <"$2")" &&
	sha256sum --quiet --strict -c "$TRASH/mf.sum")
}

test_expect_success 'log in' 'h2k_login_sim'

test_expect_success 'format: qcow2: the job ends with qcow2 images identical to the disks' '
	printf "vm_path: /DC0/vm/DC0_H0_VM0\noutput_path: %s\nformat: qcow2\n" "$OUT/q" >q.yaml &&
	id=$(h2k-job submit q.yaml | jq -r .id) &&
	h2k-job run --once 2>run.err &&
	test "$(field $id .status)" = completed &&
	test "$(field $id .options.format)" = qcow2 &&
	test "$(field $id .progress.percent_complete)" = 100 &&
	d=$(field $id .result.dir) &&
	field $id ".result.files[].path" >paths &&
	printf "%s\n" "$d/disk-0.qcow2" "$d/disk-1.qcow2" >expect &&
	test_cmp expect paths &&
	# each image is one of the datastore disks of the VM (random: no two alike)
	: >matched &&
	for q in $(cat paths); do
		for src in "$DS"/DC0_H0_VM0/*.vmdk; do
			! qemu-img compare -q -f raw -F qcow2 "$src" "$q" || echo "$src" >>matched
		done
	done &&
	test "$(sort -u matched | wc -l)" = 2 &&
	qemu-img check -q "$d/disk-0.qcow2" && qemu-img check -q "$d/disk-1.qcow2" &&
	mfcheck "$d" DC0_H0_VM0.mf &&
	grep -q "qcow-image-format" "$(field $id .result.ovf_path)"
'

test_expect_success 'format: ova: a verified OVA, the loose disks removed' '
	printf "vm_path: /DC0/vm/DC0_H0_VM0\noutput_path: %s\nformat: ova\n" "$OUT/o" >o.yaml &&
	id=$(h2k-job submit o.yaml | jq -r .id) &&
	h2k-job run --once 2>run2.err &&
	test "$(field $id .status)" = completed &&
	test "$(field $id .options.ova)" = true &&
	ova=$(field $id .result.ova_path) && d=$(field $id .result.dir) &&
	test -f "$ova" && test ! -e "$d/disk-0.vmdk" && test ! -e "$d/disk-1.vmdk" &&
	mkdir x && tar xf "$ova" -C x &&
	mfcheck x DC0_H0_VM0.mf
'

test_done
