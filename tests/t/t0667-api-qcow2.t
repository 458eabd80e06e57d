#!/usr/bin/env bash
# A REST submission (h2k-job serve) with "format":"qcow2", exported by a
# runner from the rig (streamOptimized when the rig has it): the job ends
# with a qcow2 image that qemu-img compares identical to the rig's disk
# and checks clean; the manifest passes sha256sum -c and the descriptor
# is well-formed XML naming the qcow2 format.
# SPDX-License-Identifier: LGPL-3.0-or-later
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/t/t06-standins.sh"
. "$TESTS_DIR/t/t067-api.sh"

if ! command -v qemu-img >/dev/null; then
	test_skip 'REST format: qcow2' 'no qemu-img (scripts/deps installs qemu-utils)'
	test_done
fi
set -- -vm 1 -disks 1 -disk-size 1M -disk-fill random -power off
! "$SIM_BIN" -h 2>&1 | grep -q -- -stream-vmdk || set -- "$@" -stream-vmdk
sim_start "$@"
job_trap
export H2K_SPOOL="$TRASH/spool" OUT="$TRASH/export"
DS="$SIM_DSDIR/DC0-LocalDS_0"

test_expect_success 'log in' 'h2k_login_sim'

api_start api.err || exit 1
start_runner run.err --workers 1
test_expect_success 'serve and a runner are up' 'runner_ready'

test_expect_success 'POST /jobs/submit with "format":"qcow2" is accepted' '
	printf "{\"name\":\"q\",\"vm_path\":\"/DC0/vm/DC0_H0_VM0\",\"output_path\":\"%s\",\"format\":\"qcow2\"}" "$OUT" >body &&
	hcurl POST /jobs/submit -H "Content-Type: application/json" --data-binary @body >submit &&
	test "$(cat code)" = 200 &&
	jq_ok submit ".accepted == 1 and .rejected == 0" &&
	jq -r ".job_ids[0]" submit >id &&
	sid=$(cat id) && test -n "$sid" && echo "$sid" >sid &&
	test "$(h2k-job show "$sid" | jq -r .options.format)" = qcow2
'

test_expect_success 'the job completes with qcow2 images identical to the rig disks' '
	sid=$(cat sid) &&
	h2k-job wait --timeout 120 "$sid" >/dev/null &&
	h2k-job show "$sid" >rec &&
	jq_ok rec ".status == \"completed\" and .progress.percent_complete == 100" &&
	d=$(jq -r .result.dir rec) &&
	jq -r ".result.files[].path" rec >paths &&
	test "$(wc -l <paths)" = 2 &&
	! grep -v "\.qcow2$" paths &&
	: >matched &&
	for q in $(cat paths); do
		qemu-img check -q "$q" || exit 1
		test "$(qemu-img info --output=json "$q" | jq -r .format)" = qcow2 || exit 1
		for src in "$DS"/DC0_H0_VM0/*.vmdk; do
			! qemu-img compare -q -f raw -F qcow2 "$src" "$q" || echo "$src" >>matched
		done
	done &&
	test "$(sort -u matched | wc -l)" = 2 &&
	curl -sS "$API/jobs/$(cat id)" >job &&
	jq_ok job ".status == \"completed\" and .result.success == true" &&
	jq_ok job "[.result.files[] | endswith(\".qcow2\")] | all"
'

test_expect_success 'manifest passes sha256sum -c; descriptor well-formed, names qcow2' '
	d=$(jq -r .result.dir rec) && ovf=$(jq -r .result.ovf_path rec) &&
	mf=${ovf%.ovf}.mf &&
	(cd "$d" && sed -E -n "s/^SHA256\((.*)\)= ([0-9a-f]{64})\$/\2  \1/p" "$mf" >"$TRASH/mf.sum") &&
	test "$(wc -l <mf.sum)" = "$(wc -l <"$mf")" && test "$(wc -l <mf.sum)" = 3 &&
	(cd "$d" && sha256sum --quiet --strict -c "$TRASH/mf.sum") &&
	python3 -c "import sys, xml.dom.minidom as m; m.parse(sys.argv[1])" "$ovf" &&
	test "$(grep -c "qcow-image-format" "$ovf")" = 2
'

test_done
