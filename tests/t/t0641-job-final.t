#!/usr/bin/env bash
# The end of a job is recorded even when the spool is full, and never
# lost into a second export (issue 10, item 3): the spool is a small tmpfs
# (in a private mount namespace) that h2k-ovf fills just before it prints
# its result line.  h2k-job wait ends, with a message and exit code, for a
# job whose record was moved to bad/ (item 4).
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/t/t06-standins.sh"

export H2K_SPOOL="$TRASH/mnt/spool" OUT="$TRASH/out"
standins_install "$TRASH/bin"
export H2K_JOB_KEEPENV="$H2K_JOB_KEEPENV STANDIN_FILL"   # the stages see only listed variables
standins_vm vm1 30000
standins_vm vm2 20000

# h2k-ovf stand-in that first fills the file system of the spool.
mkdir -p "$TRASH/real" "$TRASH/mnt"
ln -s "$TRASH/bin/h2k-standin" "$TRASH/real/h2k-ovf"
rm -f "$TRASH/bin/h2k-ovf"
cat >"$TRASH/bin/h2k-ovf" <<SH
#!/bin/sh
if [ -n "\${STANDIN_FILL:-}" ]; then
	dd if=/dev/zero of="\$STANDIN_FILL" bs=4096 2>/dev/null
	echo "h2k-ovf stand-in: spool filled" >&2
fi
exec "$TRASH/real/h2k-ovf" "\$@"
SH
chmod +x "$TRASH/bin/h2k-ovf"

# A process holding a private mount namespace where $TRASH/mnt is a 4 MB
# tmpfs; ns CMD... runs CMD in it.
have_ns=
if unshare -m --propagation private true 2>/dev/null; then
	unshare -m --propagation private sleep 300 &
	NSPID=$!
	echo $NSPID >>"$TRASH/.runners"
	sleep 0.2
	if nsenter -t $NSPID -m mount -t tmpfs -o size=4m,mode=0700 h2k-test "$TRASH/mnt"; then
		have_ns=1
	fi
fi
ns() {
	nsenter -t $NSPID -m -- "$@"
}

if [ -n "$have_ns" ]; then
test_expect_success 'spool full when h2k-ovf prints: the job completes, wait says so' '
	id=$(ns bash -c ". \"$TESTS_DIR/t/t06-standins.sh\" >/dev/null 2>&1; submit_vms vm1") &&
	test -n "$id" && echo $id >id1 &&
	STANDIN_FILL="$TRASH/mnt/fill" ns h2k-job run --once 2>run.err;
	grep "No space left on device" run.err &&
	test "$(ledger_count complete $id)" = 1 &&
	expect_code 0 ns timeout 20 h2k-job wait --timeout 5 $id >wait.out 2>wait.err &&
	test "$(jq -r .status wait.out)" = completed &&
	test "$(jq -r .result.ovf_path wait.out)" = "$OUT/vm1/vm1.ovf" &&
	ns test -f "$H2K_SPOOL/done/$id" &&
	test -z "$(ns find "$H2K_SPOOL/new" "$H2K_SPOOL/cur" -mindepth 1)"
'

test_expect_success 'space back, another runner: the VM is not exported again' '
	id=$(cat id1) &&
	ns rm -f "$TRASH/mnt/fill" &&
	ns h2k-job run --once 2>run2.err &&
	test "$(ledger_count complete $id)" = 1 &&
	test "$(ledger_count fetch $id)" = 1 &&
	test "$(ns h2k-job show $id | jq -r .status)" = completed
'

test_expect_success 'no room for the final record: the job does not start' '
	ns find "$H2K_SPOOL/done" -mindepth 1 -delete &&
	id=$(ns bash -c ". \"$TESTS_DIR/t/t06-standins.sh\" >/dev/null 2>&1; submit_vms vm2") &&
	ns dd if=/dev/zero of="$TRASH/mnt/fill" bs=4096 2>/dev/null;
	ns truncate -s -24K "$TRASH/mnt/fill" &&
	ns h2k-job run --once 2>run3.err;
	cat run3.err &&
	grep "cannot reserve .* bytes for the final record" run3.err &&
	test "$(ledger_count fetch $id)" = 0 &&
	test -z "$(ns find "$H2K_SPOOL/tmp" -name "*.slot")" &&
	ns test -f "$H2K_SPOOL/new/$id" &&
	test "$(ns h2k-job show $id | jq -r "[.status, .attempts] | @tsv")" = "pending	0" &&
	ns rm -f "$TRASH/mnt/fill" &&
	ns h2k-job run --once 2>run4.err &&
	test "$(ledger_count complete $id)" = 1 &&
	test "$(ns h2k-job show $id | jq -r "[.status, .attempts] | @tsv")" = "completed	1"
'
else
	test_skip 'spool full when h2k-ovf prints' 'no private mount namespace'
	test_skip 'space back, another runner' 'no private mount namespace'
	test_skip 'no space for the slot' 'no private mount namespace'
fi
[ -n "${NSPID:-}" ] && kill $NSPID 2>/dev/null

export H2K_SPOOL="$TRASH/spool"

test_expect_success 'wait on a job moved to bad/ ends: exit 1, the reason said' '
	id=$(submit_vms vm1) && test -n "$id" || return 1
	{ timeout 20 h2k-job wait $id >wait.out 2>wait.err; echo $? >wait.rc; } &
	wpid=$! &&
	sleep 2 && # (ASan start on a loaded machine: 0.5 s was seen too short)
	echo "{not json" >"$H2K_SPOOL/new/$id" &&
	h2k-job run --once 2>run.err;
	wait $wpid &&
	cat wait.err &&
	test "$(cat wait.rc)" = 1 &&
	grep -F "job $id: moved aside to $H2K_SPOOL/bad/$id." wait.err &&
	grep -F "not valid JSON" wait.err &&
	test ! -s wait.out
'

test_expect_success 'wait on a job already in bad/: exit 1, not "no job"' '
	id=$(submit_vms vm1) &&
	echo "{not json" >"$H2K_SPOOL/new/$id" &&
	h2k-job run --once 2>run.err;
	expect_code 1 timeout 20 h2k-job wait $id 2>wait.err &&
	grep -F "job $id: moved aside to $H2K_SPOOL/bad/$id." wait.err
'

test_expect_success 'wait on a completed and a bad job: exit 5' '
	a=$(submit_vms vm1) && b=$(submit_vms vm2) &&
	chown 65534 "$H2K_SPOOL/new/$b" &&
	h2k-job run --once 2>run.err;
	expect_code 5 timeout 20 h2k-job wait $a $b >wait.out 2>wait.err &&
	test "$(jq -r .status wait.out)" = completed &&
	grep -F "job $b: moved aside" wait.err
'

test_expect_success 'wait on a record in done/ whose outcome was not recorded: exit 1' '
	id=$(submit_vms vm1) &&
	jq -c ".status = \"running\"" "$H2K_SPOOL/new/$id" >"$TRASH/rec" &&
	mv "$TRASH/rec" "$H2K_SPOOL/done/$id" && rm "$H2K_SPOOL/new/$id" &&
	expect_code 1 timeout 20 h2k-job wait $id >wait.out 2>wait.err &&
	grep -F "job $id: ended, but its runner could not record how (status '"'"'running'"'"' in done/)" wait.err &&
	test ! -s wait.out
'

test_done
