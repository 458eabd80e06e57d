#!/usr/bin/env bash
# Attacks on the spool's full-disk, wait and trust fixes (issue 10, items
# 3, 4, 11) that their own tests did not try:
#  - a completed export whose runner died on its last attempt is recorded
#    as completed from log/ID.final, not failed (a user would submit it
#    again: a second export);
#  - log/ID.final and log/ID.log are trusted only when they are the
#    runner's own regular files with one link (a planted final line must
#    not mark a job completed; a FIFO must not hang every runner; another
#    user must not get the job's output);
#  - h2k-job wait on a finished job whose done/ record cannot be read ends
#    (exit 1, a line) instead of "no job" or polling forever;
#  - a graceful stop on a full spool requeues through the slot: the attempt
#    does not count;
#  - run --once that leaves jobs it could not claim (full spool) exits 8;
#  - cancel of a pending job needs no slot;
#  - a result line over the 64 KiB reserved: room grows with h2k-fetch's
#    line, or the job fails before h2k-ovf completes the lease.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/t/t06-standins.sh"

export H2K_SPOOL="$TRASH/spool" OUT="$TRASH/out"
standins_install "$TRASH/bin"
export H2K_JOB_KEEPENV="$H2K_JOB_KEEPENV FILL FILL_FETCH"   # the stages see only listed variables
standins_vm vm1 30000
standins_vm vm2 20000
standins_vm big 400000

test_expect_success 'runner killed after h2k-ovf printed, on the last attempt: completed, not failed' '
	id=$(submit_vms vm1) && test -n "$id" || return 1
	STANDIN_PAUSE=ovf-printed start_runner r1.err --max-attempts 1 &&
	wait_for -e "$STANDIN_STATE/at-ovf-printed-$id" &&
	pg=$(field $id .pgid) &&
	kill -9 $RUNNER && group_gone $pg &&
	expect_code 0 h2k-job run --once --max-attempts 1 2>r2.err &&
	cat r2.err &&
	test "$(field $id .status)" = completed &&
	test "$(field $id .result.ovf_path)" = "$OUT/vm1/vm1.ovf" &&
	test "$(ledger_count complete $id)" = 1 &&
	test "$(ledger_count fetch $id)" = 1
'

test_expect_success 'log/ID.final of another user is not proof: moved to bad/, the VM exported' '
	id=$(submit_vms vm2) &&
	printf "{\"ovf_path\":\"/etc/evil.ovf\",\"dir\":\"/etc\",\"files\":[]}\n" \
	    >"$H2K_SPOOL/log/$id.final" &&
	chown 65534 "$H2K_SPOOL/log/$id.final" &&
	expect_code 0 h2k-job run --once 2>run.err &&
	cat run.err &&
	grep -F "log/$id.final: owned by uid 65534" run.err &&
	test "$(ledger_count complete $id)" = 1 &&
	test "$(field $id .result.ovf_path)" = "$OUT/vm2/vm2.ovf" &&
	ls "$H2K_SPOOL/bad/" | grep -F "$id.final." &&
	test "$(stat -c %u "$H2K_SPOOL/log/$id.final")" = 0
'

test_expect_success 'a hard-linked log/ID.final is not proof either' '
	id=$(submit_vms vm2) &&
	printf "{\"ovf_path\":\"/etc/evil.ovf\"}\n" >"$TRASH/outside" &&
	ln "$TRASH/outside" "$H2K_SPOOL/log/$id.final" &&
	expect_code 0 h2k-job run --once 2>run.err &&
	grep -F "log/$id.final: has 2 hard links" run.err &&
	test "$(ledger_count complete $id)" = 1 &&
	test "$(field $id .result.ovf_path)" = "$OUT/vm2/vm2.ovf" &&
	test "$(cat "$TRASH/outside")" = "{\"ovf_path\":\"/etc/evil.ovf\"}"
'

test_expect_success 'a FIFO at log/ID.final does not hang the runner' '
	id=$(submit_vms vm2) &&
	mkfifo "$H2K_SPOOL/log/$id.final" &&
	expect_code 0 timeout -s KILL $((WAIT_DEFAULT * 3)) h2k-job run --once 2>run.err &&
	grep -F "log/$id.final: not a regular file" run.err &&
	test "$(field $id .status)" = completed &&
	test "$(ledger_count complete $id)" = 1
'

test_expect_success 'log/ID.log of another user is not written to' '
	id=$(submit_vms vm2) &&
	: >"$H2K_SPOOL/log/$id.log" &&
	chown 65534 "$H2K_SPOOL/log/$id.log" && chmod 644 "$H2K_SPOOL/log/$id.log" &&
	expect_code 0 h2k-job run --once 2>run.err &&
	grep -F "log/$id.log: owned by uid 65534" run.err &&
	test "$(field $id .status)" = completed &&
	test "$(stat -c %u "$H2K_SPOOL/log/$id.log")" = 0 &&
	test "$(stat -c %a "$H2K_SPOOL/log/$id.log")" = 600 &&
	grep -F "attempt 1 by runner" "$H2K_SPOOL/log/$id.log" &&
	for f in "$H2K_SPOOL"/bad/$id.log.*; do
		case $f in *.reason) ;; *) test ! -s "$f" || return 1 ;; esac
	done
'

test_expect_success 'wait on a finished job whose done/ record is hard-linked: exit 1, not "no job"' '
	id=$(submit_vms vm1) &&
	expect_code 0 h2k-job run --once 2>run.err &&
	ln "$H2K_SPOOL/done/$id" "$TRASH/backup-$id" &&
	expect_code 1 timeout 20 h2k-job wait --timeout 10 $id >wait.out 2>wait.err &&
	cat wait.err &&
	grep -F "job $id: its record $H2K_SPOOL/done/$id cannot be read: has 2 hard links" wait.err &&
	test ! -s wait.out
'

test_expect_success 'wait ends when the record becomes unreadable after the job finished' '
	id=$(submit_vms vm2) && test -n "$id" || return 1
	{ timeout 30 h2k-job wait $id >wait.out 2>wait.err; echo $? >wait.rc; } &
	wpid=$!
	sleep 0.5 &&
	jq -c ".status = \"completed\"" "$H2K_SPOOL/new/$id" >"$H2K_SPOOL/tmp/x" &&
	ln "$H2K_SPOOL/tmp/x" "$TRASH/backup2-$id" &&
	mv "$H2K_SPOOL/tmp/x" "$H2K_SPOOL/done/$id" && rm "$H2K_SPOOL/new/$id" &&
	wait $wpid &&
	cat wait.err &&
	test "$(cat wait.rc)" = 1 &&
	grep -F "job $id: its record $H2K_SPOOL/done/$id cannot be read" wait.err
'

test_expect_success 'cancel of a job whose outcome was not recorded says so (exit 7)' '
	id=$(submit_vms vm1) &&
	jq -c ".status = \"running\"" "$H2K_SPOOL/new/$id" >"$TRASH/rec" &&
	mv "$TRASH/rec" "$H2K_SPOOL/done/$id" && rm "$H2K_SPOOL/new/$id" &&
	expect_code 7 h2k-job cancel $id 2>cancel.err &&
	grep -F "job $id ended, but its runner could not record how" cancel.err
'

# The full-spool cases: the spool on a small tmpfs in a private mount
# namespace (as t0641).
export H2K_SPOOL="$TRASH/mnt/spool"
mkdir -p "$TRASH/mnt"
have_ns=
if unshare -m --propagation private true 2>/dev/null; then
	unshare -m --propagation private sleep 300 &
	NSPID=$!
	echo $NSPID >>"$TRASH/.runners"
	sleep 0.2
	if nsenter -t $NSPID -m mount -t tmpfs -o size=2m,mode=0700 h2k-test "$TRASH/mnt"; then
		have_ns=1
	fi
fi
ns() {
	nsenter -t $NSPID -m -- "$@"
}
ns_submit() {
	ns bash -c ". \"$TESTS_DIR/t/t06-standins.sh\" >/dev/null 2>&1; submit_vms $*"
}

if [ -n "$have_ns" ]; then
test_expect_success 'SIGTERM on a full spool: requeued through the slot, the attempt not counted' '
	id=$(ns_submit big) && test -n "$id" || return 1
	(export STANDIN_DELAY=0.2 STANDIN_CHUNK=10000
	 exec nsenter -t $NSPID -m -- h2k-job run --grace 0 --max-attempts 1 2>r1.err) &
	rp=$! && echo $rp >>"$TRASH/.runners" &&
	wait_grep "claimed" r1.err &&
	sleep 0.5 &&
	ns dd if=/dev/zero of="$TRASH/mnt/fill" bs=4096 2>/dev/null;
	kill -TERM $rp && wait $rp &&
	cat r1.err &&
	grep -F "job $id: interrupted" r1.err &&
	! grep -F "job $id: /" r1.err &&
	ns test -f "$H2K_SPOOL/new/$id" &&
	test "$(ns cat "$H2K_SPOOL/new/$id" | jq -r "[.status, .attempts] | @tsv")" = "pending	0" &&
	ns rm -f "$TRASH/mnt/fill" &&
	expect_code 0 ns h2k-job run --once --max-attempts 1 2>r2.err &&
	test "$(ns h2k-job show $id | jq -r "[.status, .attempts] | @tsv")" = "completed	1"
'

test_expect_success 'run --once that cannot claim a pending job (spool full) exits 8' '
	id=$(ns_submit vm2) &&
	ns dd if=/dev/zero of="$TRASH/mnt/fill" bs=4096 2>/dev/null;
	ns truncate -s -24K "$TRASH/mnt/fill" &&
	expect_code 8 ns h2k-job run --once 2>run.err &&
	cat run.err &&
	grep "cannot reserve .* bytes for the final record" run.err &&
	grep -F "left pending" run.err &&
	ns test -f "$H2K_SPOOL/new/$id" &&
	ns rm -f "$TRASH/mnt/fill" &&
	expect_code 0 ns h2k-job run --once 2>run2.err &&
	test "$(ns h2k-job show $id | jq -r .status)" = completed
'

test_expect_success 'cancel of a pending job on a spool without room for a slot works' '
	ns rm -f "$TRASH/mnt/fill" &&
	id=$(ns_submit vm2) && test -n "$id" &&
	ns dd if=/dev/zero of="$TRASH/mnt/fill" bs=4096 2>/dev/null;
	ns truncate -s -24K "$TRASH/mnt/fill" &&
	expect_code 0 ns h2k-job cancel $id >cancel.out 2>cancel.err &&
	cat cancel.err &&
	test "$(jq -r .status cancel.out)" = cancelled &&
	ns rm -f "$TRASH/mnt/fill" &&
	test "$(ns h2k-job show $id | jq -r .status)" = cancelled &&
	test -z "$(ns find "$H2K_SPOOL/tmp" -mindepth 1)"
'

# Stand-ins whose result line is larger than 64 KiB (a VM with very many
# disks): h2k-fetch pads its line, h2k-ovf passes it on; FILL_FETCH fills
# the spool before h2k-fetch prints, FILL once h2k-ovf has its line.
mkdir -p "$TRASH/real"
for s in h2k-fetch h2k-ovf; do
	ln -s "$TRASH/bin/h2k-standin" "$TRASH/real/$s"
	rm -f "$TRASH/bin/$s"
done
cat >"$TRASH/bin/h2k-fetch" <<SH
#!/bin/bash
"$TRASH/real/h2k-fetch" "\$@" |
jq -c --arg pad "\$(printf "%*s" 100000 "" | tr " " x)" '. + {pad: \$pad}' | {
	IFS= read -r line || exit 1
	[ -n "\${FILL_FETCH:-}" ] && dd if=/dev/zero of="\$FILL_FETCH" bs=4096 2>/dev/null
	printf "%s\\n" "\$line"
}
exit \${PIPESTATUS[0]}
SH
cat >"$TRASH/bin/h2k-ovf" <<SH
#!/bin/sh
IFS= read -r line || exit 1
[ -n "\${FILL:-}" ] && dd if=/dev/zero of="\$FILL" bs=4096 2>/dev/null
printf "%s\\n" "\$line" | exec "$TRASH/real/h2k-ovf" "\$@"
SH
chmod +x "$TRASH/bin/h2k-fetch" "$TRASH/bin/h2k-ovf"

test_expect_success 'a result line over 64 KiB, spool full when h2k-ovf prints: completed' '
	ns rm -f "$TRASH/mnt/fill" &&
	id=$(ns_submit vm1) && test -n "$id" && echo "id $id" &&
	FILL="$TRASH/mnt/fill" expect_code 0 ns h2k-job run --once 2>run10.err &&
	cat run10.err &&
	test "$(ledger_count complete $id)" = 1 &&
	test "$(ns h2k-job show $id | jq -r .status)" = completed &&
	test "$(ns h2k-job show $id | jq -r .result.ovf_path)" = "$OUT/vm1/vm1.ovf"
'

test_expect_success 'no room for a result line over 64 KiB: failed before h2k-ovf, not exported' '
	ns rm -f "$TRASH/mnt/fill" &&
	id=$(ns_submit vm2) &&
	FILL_FETCH="$TRASH/mnt/fill" expect_code 1 ns h2k-job run --once 2>run11.err &&
	cat run11.err &&
	grep -F "stopping it before h2k-ovf" run11.err &&
	test "$(ledger_count complete $id)" = 0 &&
	ns rm -f "$TRASH/mnt/fill" &&
	test "$(ns h2k-job show $id | jq -r .status)" = failed &&
	ns h2k-job show $id | jq -r .error | grep "cannot reserve"
'
else
	test_skip 'SIGTERM on a full spool' 'no private mount namespace'
	test_skip 'run --once that cannot claim' 'no private mount namespace'
	test_skip 'cancel of a pending job on a full spool' 'no private mount namespace'
	test_skip 'a result line over 64 KiB, spool full' 'no private mount namespace'
	test_skip 'no room for a result line over 64 KiB' 'no private mount namespace'
fi
[ -n "${NSPID:-}" ] && kill $NSPID 2>/dev/null

test_done
