#!/usr/bin/env bash
# The job options of the hyper2kvm hand-off: hyper2kvm_manifest and
# hyper2kvm_watch_dir reach h2k-ovf as --hyper2kvm-manifest and --deliver
# with an absolute directory (made so at submission); a bad value is
# refused with file:line and key, nothing queued.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/t/t06-standins.sh"

export H2K_SPOOL="$TRASH/spool" OUT="$TRASH/out"
standins_install "$TRASH/bin"
standins_vm vm1 4096

test_expect_success 'the options reach h2k-ovf as flags, the watch dir absolute' '
	rm -f "$STANDIN_STATE/argv" && mkdir -p "in box" &&
	printf "vm_path: /DC0/vm/vm1\noutput_path: %s\noptions:\n  ova: true\n  hyper2kvm_manifest: true\n  hyper2kvm_watch_dir: in box\n" "$OUT" >j.yaml &&
	rec=$(h2k-job submit j.yaml) &&
	test "$(jqget "$rec" ".options.hyper2kvm_manifest")" = true &&
	test "$(jqget "$rec" ".options.hyper2kvm_watch_dir")" = "$TRASH/in box" &&
	h2k-job run --once 2>run.err &&
	grep -Fx "h2k-ovf --ova --hyper2kvm-manifest --deliver $TRASH/in box" "$STANDIN_STATE/argv"
'

test_expect_success 'without them h2k-ovf gets neither flag' '
	rm -f "$STANDIN_STATE/argv" &&
	printf "vm_path: /DC0/vm/vm1\noutput_path: %s\noptions: {overwrite: true}\n" "$OUT" >k.yaml &&
	h2k-job submit k.yaml >/dev/null && h2k-job run --once 2>/dev/null &&
	grep "^h2k-ovf" "$STANDIN_STATE/argv" >ovf && test_line_count = 1 ovf &&
	! grep -q "hyper2kvm\|deliver" ovf
'

test_expect_success 'a bad value: file:line and key, exit 2, nothing queued' '
	ls "$H2K_SPOOL/new" >before &&
	printf "vm_path: /v\noutput_path: /o\noptions:\n  hyper2kvm_watch_dir: [a]\n" >bad.yaml &&
	expect_code 2 h2k-job submit bad.yaml 2>err &&
	grep -q "bad.yaml:4: key .options.hyper2kvm_watch_dir.: expected a string" err &&
	printf "vm_path: /v\noutput_path: /o\noptions: {hyper2kvm_manifest: sure}\n" >bad2.yaml &&
	expect_code 2 h2k-job submit bad2.yaml 2>err2 &&
	grep -q "options.hyper2kvm_manifest" err2 &&
	ls "$H2K_SPOOL/new" >after && test_cmp before after
'

test_done
