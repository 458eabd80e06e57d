#!/usr/bin/env bash
# h2k-job with the real pipeline: a runner killed after h2k-ovf wrote the
# descriptor and manifest but before its result line "leaves the job to be
# exported again" (h2k-job(1) CAVEATS).  h2k-fetch refuses a folder that
# holds a completed export (exit 12) unless --overwrite, so the restarted
# attempt must be let redo its own job's export (the marker names the job),
# while another job for the same VM is still refused.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/t/t06-standins.sh"

sim_start -vm 1 -disk-size 256K -disk-fill random -power off
job_trap
export H2K_SPOOL="$TRASH/spool" OUT="$TRASH/out"
VM=DC0_H0_VM0
DISK="$SIM_DSDIR/DC0-LocalDS_0/$VM/disk1.vmdk"

test_expect_success 'log in; an h2k-ovf that, on attempt 1, writes the export and then hangs' '
	h2k_login_sim &&
	real=$(readlink -f "$TRASH/bin/h2k-ovf") && rm -f "$TRASH/bin/h2k-ovf" &&
	cat >"$TRASH/bin/h2k-ovf" <<-EOS &&
	#!/bin/sh
	if [ "\$H2K_JOB_ATTEMPT" = 1 ] && [ ! -e "$TRASH/at-ovf" ]; then
		"$real" "\$@" >/dev/null || exit
		touch "$TRASH/at-ovf"
		exec sleep 100
	fi
	exec "$real" "\$@"
	EOS
	chmod +x "$TRASH/bin/h2k-ovf"
'

test_expect_success 'runner killed after the .ovf/.mf were written: the next runner completes the job' '
	printf "vm_path: /DC0/vm/%s\noutput_path: %s\n" $VM "$OUT" >job.yaml &&
	id=$(h2k-job submit job.yaml | jq -r .id) &&
	start_runner run1.err --once && wait_for -e "$TRASH/at-ovf" &&
	test -f "$OUT/$VM/$VM.ovf" && test -f "$OUT/$VM/$VM.mf" &&
	pg=$(field $id ".pgid") &&
	kill -9 $RUNNER && { wait $RUNNER; true; } && group_gone $pg &&
	h2k-job run --once 2>run2.err &&
	test "$(field $id ".status")" = completed &&
	test "$(field $id ".attempts")" = 2 &&
	test "$(field $id ".result.dir")" = "$OUT/$VM" &&
	cmp "$OUT/$VM/disk-0.vmdk" "$DISK" &&
	test "$(jget "$OUT/$VM/.h2k-vm" job)" = "$id"
'

test_expect_success 'another job for the same VM into that folder is still refused (12)' '
	id2=$(h2k-job submit job.yaml | jq -r .id) &&
	snap() { (cd "$OUT" && find . -type f ! -name .h2k-lock ! -name .h2k-vm -exec sha256sum {} + | LC_ALL=C sort); } &&
	snap >before &&
	{ h2k-job run --once 2>run3.err; true; } &&
	test "$(field $id2 ".status")" = failed &&
	grep -q "holds a completed export" "$H2K_SPOOL/log/$id2.log" &&
	field $id2 ".error" | grep -q "$OUT/$VM: holds a completed export" &&
	snap >after && test_cmp before after
'

test_done
