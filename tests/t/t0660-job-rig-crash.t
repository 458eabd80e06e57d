#!/usr/bin/env bash
# h2k-job with the real pipeline against a throttled rig: kill -9 of the
# runner in the middle of a download, then a new runner finishes the job
# byte-identical (h2k-fetch keeps the .part; whether it resumes from it
# under a new lease is h2k-fetch's rule, tested in t04xx); cancel of a
# running job aborts its lease and leaves no process behind.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/t/t06-standins.sh"

# 4 MiB disks at 1 MB/s: a download takes about 4 s (40 s under valgrind,
# where each h2k-job call the test makes meanwhile takes a second or two).
bps=1000000
[ -z "${H2K_VALGRIND:-}" ] || bps=100000
sim_start -vm 1 -disk-size 4M -disk-fill random -power off -nfc-bps $bps
job_trap
export H2K_SPOOL="$TRASH/spool" OUT="$TRASH/out"
VM=DC0_H0_VM0
DISK="$SIM_DSDIR/DC0-LocalDS_0/$VM/disk1.vmdk"

# lease_state MOREF: the lease's state (ready, ...) or "gone" once it is
# aborted or completed.  Leases are objects of the session that made them,
# so ask in h2k's session (the cookie of its session file), as t0001 does.
lease_state() {
	local cookie out
	cookie=$(jq -r .cookie "$XDG_STATE_HOME/h2k/session.json") || return 1
	out=$(printf '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:urn="urn:vim25"><soapenv:Body><urn:RetrievePropertiesEx><urn:_this type="PropertyCollector">propertyCollector</urn:_this><urn:specSet><urn:propSet><urn:type>HttpNfcLease</urn:type><urn:pathSet>state</urn:pathSet></urn:propSet><urn:objectSet><urn:obj type="HttpNfcLease">%s</urn:obj></urn:objectSet></urn:specSet><urn:options/></urn:RetrievePropertiesEx></soapenv:Body></soapenv:Envelope>' "$1" |
		curl -sS --cacert "$SIM_CERT" -b "vmware_soap_session=$cookie" \
		-H 'Content-Type: text/xml; charset=utf-8' -H 'SOAPAction: "urn:vim25/6.5"' \
		--data-binary @- "$SIM_URL") || return 1
	case $out in
	*ManagedObjectNotFound*) echo gone ;;
	*'HttpNfcLeaseState">'*) printf '%s\n' "$out" | sed -n 's/.*HttpNfcLeaseState">\([a-z]*\)<.*/\1/p' ;;
	*) echo "unexpected answer: $out" >&2; return 1 ;;
	esac
}

submit_vm() {
	printf 'vm_path: /DC0/vm/%s\noutput_path: %s\n' "$1" "$OUT" >job.yaml &&
	h2k-job submit job.yaml | jq -r .id
}

test_expect_success 'log in to the rig' '
	h2k_login_sim && test -f "$DISK"
'

test_expect_success 'kill -9 of the runner mid-download; a new runner completes it' '
	id=$(submit_vm $VM) &&
	start_runner run1.err --once &&
	wait_for -s "$OUT/$VM/disk-0.vmdk.part" &&
	wait_field $id ".progress.phase" download &&
	lease=$(field $id ".lease.moref") &&
	pg=$(field $id ".pgid") &&
	test "$(lease_state "$lease")" = ready &&
	kill -9 $RUNNER && { wait $RUNNER; true; } &&
	group_gone $pg &&
	test -s "$OUT/$VM/disk-0.vmdk.part" &&
	test ! -e "$OUT/$VM/disk-0.vmdk" &&
	part=$(stat -c %s "$OUT/$VM/disk-0.vmdk.part") &&
	test "$part" -lt 4194304 &&
	test "$(lease_state "$lease")" = gone &&
	test "$(field $id ".status")" = running &&
	h2k-job run --once 2>run2.err &&
	grep "runner died during attempt 1; requeued" run2.err &&
	test "$(field $id ".status")" = completed &&
	test "$(field $id ".attempts")" = 2 &&
	cmp "$OUT/$VM/disk-0.vmdk" "$DISK" &&
	test "$(field $id ".lease.moref")" != "$lease" &&
	test "$(grep -c "by runner" "$H2K_SPOOL/log/$id.log")" = 2 &&
	# the new lease resumed the bytes the killed attempt left (strong
	# ETag sent as If-Range), it did not start over
	grep "disk-0.vmdk.part: resuming after $part bytes kept from an earlier run" \
		"$H2K_SPOOL/log/$id.log"
'

test_expect_success 'cancel of a running job: lease aborted, no process left' '
	job_cleanup && rm -rf "$OUT" &&
	id=$(submit_vm $VM) &&
	start_runner run3.err && rp=$RUNNER &&
	wait_for -s "$OUT/$VM/disk-0.vmdk.part" &&
	wait_field $id ".progress.phase" download &&
	lease=$(field $id ".lease.moref") &&
	pg=$(field $id ".pgid") &&
	test "$(lease_state "$lease")" = ready &&
	h2k-job cancel $id >c.out &&
	test "$(jqget "$(cat c.out)" ".status")" = cancelled &&
	group_gone $pg &&
	test "$(lease_state "$lease")" = gone &&
	test ! -e "$OUT/$VM/disk-0.vmdk" &&
	expect_code 10 h2k-job wait $id >/dev/null &&
	kill -TERM $rp && wait $rp &&
	! pgrep -f "h2k-(lease|fetch|ovf).*$TRASH" >/dev/null
'

test_expect_success 'cancel of a pending job: it never gets a lease' '
	id=$(submit_vm $VM) &&
	h2k-job cancel $id >/dev/null &&
	h2k-job run --once 2>run4.err &&
	test "$(field $id ".status")" = cancelled &&
	! grep -q claimed run4.err &&
	test ! -e "$H2K_SPOOL/log/$id.log"
'

job_cleanup
test_done
