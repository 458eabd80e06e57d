#!/usr/bin/env bash
# h2k-lease against the rig: leases on powered-off VMs, the refusal of
# running ones, the three power options, temporary snapshot cleanup on
# failure and on signals, readiness timeout, stdin lines, ESXi "*" URLs.
. "$(dirname "$0")/../lib.sh"


# -power mixed: *_VM0 powered on, *_VM1 powered off.
sim_start -vm 2 -disks 1 -disk-size 64K -power mixed
h2k_login_sim || { echo "Bail out! login to the rig failed"; exit 1; }
OFF=/DC0/vm/DC0_H0_VM1 ON=/DC0/vm/DC0_H0_VM0

test_expect_success 'powered-off VM by path: one line with lease and devices' '
	h2k-lease "$OFF" >out 2>err &&
	test_line_count = 1 out && test_line_count = 0 err &&
	test "$(jget out name)" = DC0_H0_VM1 &&
	test "$(jget out path)" = "$OFF" &&
	test "$(jget out power_state)" = poweredOff &&
	jget out moref | grep -q "^vm-" &&
	test "$(jget out lease.mode)" = export &&
	test "$(jget out lease.snapshot)" = null &&
	test "$(jget out lease.server)" = "$SIM_URL" &&
	test "$(jget out lease.timeout_s)" = 300 &&
	jget out lease.moref | grep -q . &&
	jget out devices.*.url >urls && test_line_count = 2 urls &&
	test "$(grep -c "^https://$SIM_HOST/nfc/" urls)" = 2 &&
	test "$(jget out devices.*.disk | sort -u)" = true &&
	test "$(jget out devices.*.size | sort -u)" = 65536 &&
	jget out devices.*.key >keys && test "$(grep -c "^/vm-" keys)" = 2 &&
	test "$(sort -u keys | wc -l)" = 2 &&
	test "$(jget out devices.*.target_id | grep -c "\.vmdk$")" = 2
'

test_expect_success 'the device URLs serve the disk files' '
	curl -sfk -o d0 "$(head -n 1 urls)" && test "$(wc -c <d0)" = 65536
'

test_expect_success 'moref and unique name give the same VM as the path' '
	moref=$(jget out moref) &&
	h2k-lease "$moref" DC0_H0_VM1 >out2 && test_line_count = 2 out2 &&
	test "$(jget out2 moref | sort -u)" = "$moref" &&
	test "$(jget out2 path | sort -u)" = "$OFF"
'

test_expect_success 'powered-on VM without an option: exit 7, one line naming VM and options' '
	expect_code 7 h2k-lease "$ON" >out 2>err &&
	test_line_count = 0 out && test_one_line err &&
	grep -q "DC0_H0_VM0" err && grep -q -- "--snapshot" err &&
	grep -q -- "--shutdown" err && grep -q -- "--power-off" err
'

test_expect_success 'one refused VM among good ones: the others go through, exit 5' '
	expect_code 5 h2k-lease "$OFF" "$ON" /DC0/vm/DC0_C0_RP0_VM1 >out 2>err &&
	test_line_count = 2 out && test_one_line err && grep -q DC0_H0_VM0 err
'

test_expect_success 'no such VM: exit 6, named' '
	expect_code 6 h2k-lease /DC0/vm/nosuch >out 2>err &&
	test_line_count = 0 out && test_one_line err && grep -q "/DC0/vm/nosuch" err
'

test_expect_success 'stdin: h2k-ls lines carried whole, a bad line in the middle reported' '
	h2k-ls --power off >ls && test_line_count = 2 ls &&
	{ head -n 1 ls; echo "{not json"; tail -n 1 ls; } >in &&
	expect_code 5 h2k-lease <in >out 2>err &&
	test_line_count = 2 out && test_one_line err && grep -q "^h2k-lease: stdin:2:" err &&
	python3 -c "
import json, sys
ls = [json.loads(l) for l in open(\"ls\")]
out = [json.loads(l) for l in open(\"out\")]
for a, b in zip(ls, out):
    b = {k: v for k, v in b.items() if k not in (\"lease\", \"devices\")}
    assert a == b, (a, b)
"
'

test_expect_success 'stdin: a line without moref is refused, exit 2 when none is good' '
	echo "{\"name\":\"x\"}" >in &&
	expect_code 2 h2k-lease <in >out 2>err &&
	test_one_line err && grep -q "stdin:1:.*moref" err
'

test_expect_success '--snapshot: temporary snapshot exported, VM keeps running' '
	h2k-lease --snapshot "$ON" >out 2>err &&
	test "$(jget out lease.mode)" = snapshot &&
	snap=$(jget out lease.snapshot) && test "$snap" != null &&
	govc_ snapshot.tree -vm "$ON" -i >tree && grep -q "$snap" tree &&
	grep -q "h2k-export-" tree &&
	test "$(jget out power_state)" = poweredOn &&
	govc_ vm.info "$ON" | grep -q poweredOn &&
	govc_ snapshot.remove -vm "$ON" "*"
'

test_expect_success '--power-off: VM powered off, the line says so' '
	h2k-lease --power-off "$ON" >out 2>err &&
	test "$(jget out power_state)" = poweredOff &&
	test "$(jget out lease.power_action)" = power-off &&
	govc_ vm.info "$ON" | grep -q poweredOff
'

test_expect_success '--shutdown: guest shut down, then exported' '
	h2k-lease --shutdown /DC0/vm/DC0_C0_RP0_VM0 >out 2>err &&
	test "$(jget out lease.power_action)" = shutdown &&
	test "$(jget out devices.*.url | wc -l)" = 2 &&
	govc_ vm.info /DC0/vm/DC0_C0_RP0_VM0 | grep -q poweredOff
'

test_expect_code 2 'two power options exclude each other' '
	h2k-lease --snapshot --power-off vm-1
'
test_expect_code 2 '--timeout wants a number of seconds' 'h2k-lease --timeout soon vm-1'
test_expect_success 'no VM and a terminal on stdin: exit 2 with a hint, no wait' '
	script -qec "h2k-lease; echo rc=\$?" /dev/null </dev/null >tty 2>&1 &&
	grep -q "standard input is a terminal" tty && grep -q "rc=2" tty
'
test_expect_code 3 'not logged in: exit 3' 'h2k-lease -s "$TRASH/none.json" vm-1'

# Each rig below is started at top level: a rig started inside a test body
# would die with the body's subshell.
restart() { sim_stop; sim_start "$@"; h2k_login_sim || { echo "Bail out! login failed"; exit 1; }; }

restart -vm 1 -disks 1 -disk-size 64K -power on -fault ExportSnapshot:SystemError
test_expect_success 'failure after the snapshot was taken removes it (-fault ExportSnapshot)' '
	expect_code 9 h2k-lease --snapshot /DC0/vm/DC0_H0_VM0 >out 2>err &&
	test_line_count = 0 out && test_one_line err && grep -q "injected SystemError" err &&
	govc_ snapshot.tree -vm /DC0/vm/DC0_H0_VM0 >tree && test ! -s tree
'

restart -vm 1 -disks 1 -disk-size 64K -power on
test_expect_success 'SIGINT while the line is being written: snapshot removed, exit 10' '
	mkfifo pipe && exec 3<>pipe &&
	head -c 65536 /dev/zero >&3 &&
	{ h2k-lease --snapshot /DC0/vm/DC0_H0_VM0 >pipe 2>err & pid=$!; } &&
	i=0; until govc_ snapshot.tree -vm /DC0/vm/DC0_H0_VM0 | grep -q h2k-export; do
		i=$((i + 1)); test $i -lt 100 || break; sleep 0.1; done &&
	sleep 1 && kill -INT $pid; wait $pid; rc=$?; exec 3>&-;
	test $rc = 10 && grep -q interrupted err &&
	govc_ snapshot.tree -vm /DC0/vm/DC0_H0_VM0 >tree && test ! -s tree
'

# Leases readied after LI seconds; the signal lands after SIGAT seconds,
# once h2k-lease is waiting (under valgrind a start takes seconds).
LI=4 SIGAT=1
[ -z "${H2K_VALGRIND:-}" ] || { LI=12 SIGAT=5; }
restart -vm 1 -power off -lease-init ${LI}s
test_expect_success 'lease slower than --timeout: exit 7, one line' '
	expect_code 7 h2k-lease --timeout 1 /DC0/vm/DC0_H0_VM0 >out 2>err &&
	test_line_count = 0 out && test_one_line err &&
	grep -q "still initializing after 1 s" err
'

test_expect_success 'SIGTERM while waiting for the lease: exit 10, nothing printed' '
	{ h2k-lease /DC0/vm/DC0_H0_VM0 >out 2>err & pid=$!; } &&
	sleep $SIGAT && kill -TERM $pid; wait $pid; rc=$?;
	test $rc = 10 && test_line_count = 0 out && grep -q interrupted err
'

restart -esx -vm 1 -power off
test_expect_success 'ESXi: a "*" host in device URLs becomes the session host' '
	h2k-ls >ls && head -n 1 ls | h2k-lease >out &&
	jget out devices.*.url >urls && test -s urls &&
	! grep -q "\*" urls && test "$(grep -c "^https://$SIM_HOST/nfc/" urls)" = "$(wc -l <urls)"
'

test_done
