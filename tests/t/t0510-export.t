#!/usr/bin/env bash
# h2k-export: the one-command pipeline, its exit status, VMs from
# arguments, from stdin and from the interactive pick list, and its search
# for the sibling commands.
. "$(dirname "$0")/../lib.sh"


# *_VM0 on, *_VM1 off.
sim_start -vm 2 -disks 1 -disk-size 256K -disk-fill random -power mixed
h2k_login_sim || { echo "Bail out! login to the rig failed"; exit 1; }

test_expect_success 'VM argument: lease, fetch, ovf in one command, exit 0' '
	h2k-export -o out --ova /DC0/vm/DC0_H0_VM1 >line 2>err &&
	test_line_count = 1 line &&
	test "$(jget line lease.state)" = completed &&
	d=out/DC0_H0_VM1 && test -f $d/DC0_H0_VM1.ovf && test -f $d/DC0_H0_VM1.mf &&
	test -f $d/DC0_H0_VM1.ova &&
	test "$(realpath "$(jget line ova_path)")" = "$(realpath $d/DC0_H0_VM1.ova)" &&
	tar tf $d/DC0_H0_VM1.ova | head -n 1 | grep -qx DC0_H0_VM1.ovf
'

test_expect_success 'powered-on VM: exit 7 and the one line from h2k-lease' '
	expect_code 7 h2k-export -o out /DC0/vm/DC0_H0_VM0 >line 2>err &&
	test_line_count = 0 line && test_one_line err && grep -q "^h2k-lease: .*--snapshot" err
'

test_expect_success 'one good VM, one refused: exit 5, the good one exported' '
	expect_code 5 h2k-export -o mixed /DC0/vm/DC0_H0_VM0 /DC0/vm/DC0_C0_RP0_VM1 >line 2>err &&
	test_line_count = 1 line && test "$(jget line name)" = DC0_C0_RP0_VM1 &&
	test -f mixed/DC0_C0_RP0_VM1/DC0_C0_RP0_VM1.mf
'

test_expect_success '--snapshot is passed to h2k-lease and the snapshot is gone after' '
	h2k-export -o snap --snapshot /DC0/vm/DC0_H0_VM0 >line 2>err &&
	test "$(jget line lease.mode)" = snapshot &&
	govc_ snapshot.tree -vm /DC0/vm/DC0_H0_VM0 >tree && test ! -s tree
'

test_expect_success 'no VM and no terminal: h2k-ls lines from stdin' '
	h2k-ls --power off >ls && test_line_count = 2 ls &&
	h2k-export -o fromstdin <ls >lines 2>err && test_line_count = 2 lines &&
	test "$(ls fromstdin | wc -l)" = 2
'

test_expect_success 'no VM and a terminal: numbered list, the picked VMs exported' '
	command -v script >/dev/null &&
	{ sleep 2; printf "1-2,2\n"; } | script -qec "h2k-export -o picked --snapshot" /dev/null >tty 2>&1;
	grep -q "Export which VMs" tty &&
	grep -q "^ *1  on .*DC0_H0_VM0" tty &&
	test "$(ls picked | wc -l)" = 2 &&
	ls picked/*/*.mf >mfs && test_line_count = 2 mfs
'

test_expect_success 'the pick list refuses what is not a number or out of range' '
	{ sleep 1; printf "9\n"; } | script -qec "h2k-export -o nothing" /dev/null >tty 2>&1;
	grep -q "not within 1-" tty && test ! -e nothing
'

test_expect_success 'commands next to the script come first' '
	mkdir sib && cp "$(readlink -f "$(command -v h2k-export)")" sib/ &&
	printf "#!/bin/sh\necho sibling-lease >&2\nexit 3\n" >sib/h2k-lease && chmod +x sib/h2k-lease &&
	expect_code 3 sib/h2k-export -o sibout /DC0/vm/DC0_H0_VM1 2>err &&
	grep -q sibling-lease err
'

test_expect_code 2 'bad -j' 'h2k-export -j x vm-1'
test_expect_code 2 'two power options' 'h2k-export --snapshot --shutdown vm-1'
test_expect_code 2 'unknown option' 'h2k-export --frobnicate vm-1'

# Downloads slowed to 256 KiB/s so that Ctrl-C lands mid-transfer.
sim_stop
sim_start -vm 1 -cluster 0 -disks 1 -disk-size 1M -disk-fill random -power on -nfc-bps 262144
h2k_login_sim || { echo "Bail out! login failed"; exit 1; }

test_expect_success 'Ctrl-C mid-download: exit 10, no descriptor, snapshot removed' '
	command -v setsid >/dev/null &&
	{ setsid h2k-export -o intr --snapshot /DC0/vm/DC0_H0_VM0 >line 2>err & pid=$!; } &&
	i=0; until ls intr/*/*.part >/dev/null 2>&1; do
		i=$((i + 1)); test $i -lt 50 || break; sleep 0.1; done &&
	sleep 0.5 && kill -INT -- -$pid; wait $pid; rc=$?;
	test $rc = 10 && test_line_count = 0 line &&
	! ls intr/*/*.ovf 2>/dev/null | grep -q . &&
	i=0; until govc_ snapshot.tree -vm /DC0/vm/DC0_H0_VM0 >tree && test ! -s tree; do
		i=$((i + 1)); test $i -lt 30 || break; sleep 0.2; done;
	test ! -s tree
'

test_done
