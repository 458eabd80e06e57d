#!/usr/bin/env bash
# A disk streamed as ESXi does (no length, percent from its capacity) and
# cut once mid-way restarts from its start: h2k-fetch's line right after
# the restart shows the new attempt (percent 0 with 0 bytes, not the old
# position beside the new bytes), and the job's percent_complete never goes
# back within the attempt, never over 100, and ends at 100.
# SPDX-License-Identifier: LGPL-3.0-or-later
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/t/t06-standins.sh"

if ! "$SIM_BIN" -h 2>&1 | grep -q -- -stream-vmdk; then
	test_skip 'percent under a cut stream' 'the rig has no -stream-vmdk'
	test_done
fi
rig() {
	sim_start -vm 1 -disks 0 -disk-size 4M -disk-fill random -power off -stream-vmdk \
		-nfc-bps 1000000 -nfc-cut 2500000:1 && h2k_login_sim
}
job_trap
export H2K_SPOOL="$TRASH/spool" OUT="$TRASH/out"

# one rig per test: the rig cuts the first download it serves, whoever asks
rig || { echo "Bail out! rig"; exit 1; }
test_expect_success 'the job percent never goes back nor over 100 while the stream restarts' '
	printf "vm_path: /DC0/vm/DC0_H0_VM0\noutput_path: %s\nformat: raw\n" "$OUT" >q.yaml &&
	id=$(h2k-job submit q.yaml | jq -r .id) &&
	{ h2k-job run --once 2>run.err & rp=$!; } &&
	: >pcts &&
	while kill -0 $rp 2>/dev/null; do
		h2k-job show "$id" 2>/dev/null | jq -r .progress.percent_complete >>pcts
		sleep 0.1
	done &&
	wait $rp &&
	test "$(field $id .status)" = completed &&
	test "$(field $id .progress.percent_complete)" = 100 &&
	awk "\$1 < last { print \"back: \" last \" -> \" \$1; bad = 1 } \$1 > 100 { bad = 1 } { last = \$1 } END { exit bad }" pcts &&
	test "$(grep -c . pcts)" -gt 10
'

sim_stop
rig || { echo "Bail out! rig"; exit 1; }

test_expect_success 'h2k-fetch: the line after a restart is the new attempt' '
	h2k-lease /DC0/vm/DC0_H0_VM0 | h2k-fetch --progress json --format raw -o f >line 2>err &&
	jq -c "[.phase, .percent_complete, .bytes_done]" err >seq &&
	grep -q "^\[\"retry\"" seq &&
	# the first line after the retry lines (a backoff may print several)
	awk "/^\\[\"retry\"/ { r = 1; next } r { print; r = 0 }" seq >after &&
	test_line_count = 1 after &&
	jq -e ".[0] == \"download\" and .[2] == 0 and (.[1] == 0 or .[1] == null)" after >/dev/null &&
	tail -1 seq | jq -e ". == [\"done\", 100, .[2]]" >/dev/null
'

test_done
