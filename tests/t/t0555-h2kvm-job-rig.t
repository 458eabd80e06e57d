#!/usr/bin/env bash
# h2k-job with the real pipeline on the rig and the hand-off options: the
# job's result names the hyper2kvm manifest and the OVA delivered into the
# watched directory; a second job for the same VM name finds that name
# taken and fails with h2k-ovf's exit 12, the delivered OVA untouched.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/t/t06-standins.sh"

sim_start -vm 1 -cluster 0 -disks 1 -disk-size 256K -disk-fill random -power off
job_trap
export H2K_SPOOL="$TRASH/spool" OUT="$TRASH/out"
h2k_login_sim || { echo "Bail out! login failed"; exit 1; }
mkdir -p inbox

job() { # OUTPUT: a job file for DC0_H0_VM0 into OUTPUT with the hand-off
	printf 'vm_path: /DC0/vm/DC0_H0_VM0\noutput_path: %s\noptions:\n  ova: true\n  hyper2kvm_manifest: true\n  hyper2kvm_watch_dir: inbox\n' "$1"
}

test_expect_success 'a job with hyper2kvm_manifest and hyper2kvm_watch_dir completes' '
	job "$OUT" >j.yaml &&
	id=$(h2k-job submit j.yaml | jq -r .id) && echo "$id" >id &&
	h2k-job run --once 2>run.err &&
	rec=$(h2k-job show "$id") &&
	test "$(jqget "$rec" .status)" = completed &&
	m=$(jqget "$rec" .result.hyper2kvm_manifest_path) &&
	test "$m" = "$OUT/DC0_H0_VM0/DC0_H0_VM0.hyper2kvm.json" &&
	test "$(jq -r .manifest_version "$m")" = 1.0 &&
	test "$(jqget "$rec" .result.delivered_path)" = "$TRASH/inbox/DC0_H0_VM0.ova" &&
	ls -A inbox >l && echo DC0_H0_VM0.ova >want && test_cmp want l &&
	cmp inbox/DC0_H0_VM0.ova "$(jqget "$rec" .result.ova_path)"
'

test_expect_success 'a second job delivering the same name fails with exit 12, the OVA untouched' '
	cksum inbox/DC0_H0_VM0.ova >sum &&
	job "$TRASH/out2" >k.yaml &&
	id2=$(h2k-job submit k.yaml | jq -r .id) &&
	h2k-job run --once 2>run2.err;
	rec=$(h2k-job show "$id2") &&
	test "$(jqget "$rec" .status)" = failed &&
	jqget "$rec" .error | grep -q "inbox/DC0_H0_VM0.ova already exists" &&
	cksum inbox/DC0_H0_VM0.ova >sum2 && test_cmp sum sum2 &&
	ls -A inbox >l && test_cmp want l
'

test_done
