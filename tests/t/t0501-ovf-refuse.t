#!/usr/bin/env bash
# h2k-ovf refusing what it cannot vouch for: files whose size or digest do
# not match what h2k-fetch recorded, missing files, lines not from h2k-fetch,
# a failing CreateDescriptor, a lease in error -- and ending the export
# (lease aborted) when it refuses.
. "$(dirname "$0")/../lib.sh"


# lease_state LINEFILE: the lease's state as our session sees it.
lease_state() {
	python3 "$TESTS_DIR/servers/lease-state.py" "$XDG_STATE_HOME/h2k/session.json" \
		"$(jget "$1" lease.moref)"
}

restart() { sim_stop; sim_start "$@"; h2k_login_sim || { echo "Bail out! login failed"; exit 1; }; }

restart -vm 1 -disks 1 -disk-size 1M -disk-fill random -power off
OFF=/DC0/vm/DC0_H0_VM0

test_expect_success 'a file whose size does not match what h2k-fetch wrote is refused, lease aborted' '
	h2k-lease "$OFF" | h2k-fetch -o bad >line &&
	f=$(jget line files.0.path) && printf x >>"$f" &&
	expect_code 8 h2k-ovf <line >out 2>err &&
	test_line_count = 0 out && test_one_line err && grep -q "$f" err &&
	grep -q "1048577 bytes on disk" err &&
	d=$(jget line dir) && test ! -e "$d/DC0_H0_VM0.ovf" && test ! -e "$d/DC0_H0_VM0.mf" &&
	url=$(jget line devices.0.url) && ! curl -sfk -o /dev/null "$url" &&
	test "$(lease_state line)" = gone
'

test_expect_success '--verify catches a same-size change; --ova does without --verify' '
	h2k-lease "$OFF" | h2k-fetch -o ver >line &&
	f=$(jget line files.1.path) &&
	printf x | dd of="$f" bs=1 seek=4096 conv=notrunc 2>/dev/null &&
	expect_code 8 h2k-ovf --keep-lease --verify <line >out 2>err &&
	test_one_line err && grep -q "SHA-256" err &&
	test "$(lease_state line)" = ready &&
	expect_code 8 h2k-ovf --ova <line >out 2>err &&
	test_one_line err && grep -q "does not match" err &&
	d=$(jget line dir) && test ! -e "$d/DC0_H0_VM0.ova" && test ! -e "$d/DC0_H0_VM0.ova.part" &&
	test ! -e "$d/DC0_H0_VM0.mf"
'

test_expect_success 'a missing file is refused, exit 6' '
	h2k-lease "$OFF" | h2k-fetch -o gone >line &&
	rm "$(jget line files.0.path)" &&
	expect_code 6 h2k-ovf <line >out 2>err && test_one_line err
'

test_expect_success 'a line that is not from h2k-fetch: exit 2, stdin line named' '
	h2k-ls --power off | head -n 1 >notfetch &&
	expect_code 2 h2k-ovf <notfetch >out 2>err &&
	test_one_line err && grep -q "^h2k-ovf: stdin:1:" err
'

restart -vm 1 -disks 1 -disk-size 64K -power off -fault CreateDescriptor:SystemError
test_expect_success 'CreateDescriptor failing: the server message, lease aborted' '
	h2k-lease /DC0/vm/DC0_H0_VM0 | h2k-fetch -o cd >line &&
	expect_code 9 h2k-ovf <line >out 2>err &&
	test_one_line err && grep -q "injected SystemError" err &&
	url=$(jget line devices.0.url) && ! curl -sfk -o /dev/null "$url" &&
	test "$(lease_state line)" = gone
'

# Lease timeout: long enough for h2k-fetch to start its keepalive, and
# for the gap between h2k-fetch's end and h2k-ovf's first keepalive (a
# few commands and an ASan start: 3 s was seen to run out on a loaded
# machine); under valgrind a start takes seconds.
LT=5
[ -z "${H2K_VALGRIND:-}" ] || LT=15
restart -vm 1 -disks 1 -disk-size 64K -power off -lease-timeout $LT
test_expect_success 'lease in error: reported with the server message, exit 7' '
	h2k-lease /DC0/vm/DC0_H0_VM0 | h2k-fetch -o late >line &&
	sleep $((LT + 2)) &&
	expect_code 7 h2k-ovf <line >out 2>err &&
	test_one_line err && grep -q "export lease in error" err &&
	grep -q "received no progress" err &&
	d=$(jget line dir) && test ! -e "$d/DC0_H0_VM0.ovf"
'

# Two VMs, leases that time out after $LT s without progress.
restart -vm 2 -cluster 0 -disks 1 -disk-size 64K -power off -lease-timeout $LT
test_expect_success 'a lease waiting behind a busy VM is kept alive after h2k-fetch exits' '
	h2k-lease /DC0/vm/DC0_H0_VM0 /DC0/vm/DC0_H0_VM1 | h2k-fetch -o ka >lines &&
	test_line_count = 2 lines &&
	# A full pipe on stdout holds h2k-ovf at its first line for more
	# than twice the timeout of the second VM'"'"'s lease.
	mkfifo full && exec 3<>full && head -c 65536 /dev/zero >&3 &&
	{ h2k-ovf <lines >full 2>err & pid=$!; } &&
	sleep $((2 * LT + 1)) && head -c 65536 <&3 >/dev/null &&
	wait $pid && timeout 10 head -n 2 <&3 >out && exec 3>&- &&
	test_line_count = 2 out && test "$(jget out lease.state | sort -u)" = completed &&
	test_line_count = 0 err
'

test_expect_success 'SIGTERM with a line still waiting: exit 10, its lease aborted' '
	h2k-lease /DC0/vm/DC0_H0_VM0 /DC0/vm/DC0_H0_VM1 | h2k-fetch -o sig >lines &&
	test_line_count = 2 lines && tail -n 1 lines >second &&
	# h2k-fetch prints VMs as they complete: either may be first
	head -n 1 lines >first && vm1=$(jfield first name) && vm2=$(jfield second name) &&
	mkfifo full2 && exec 3<>full2 && head -c 65536 /dev/zero >&3 &&
	{ h2k-ovf <lines >full2 2>err & pid=$!; } &&
	i=0; until test -e sig/$vm1/$vm1.mf; do
		i=$((i + 1)); test $i -lt 600 || break; sleep 0.1; done &&
	sleep 0.5 && kill -TERM $pid; wait $pid; rc=$?; exec 3>&-;
	echo "exit $rc, second $vm2 lease $(lease_state second)" && cat err &&
	# (valgrind reports the reader thread a signal leaves in read(2))
	grep -v "^==[0-9]*==" err >err1 &&
	test $rc = 10 && test_one_line err1 && grep -q "^h2k-ovf: .*interrupted" err1 &&
	test "$(lease_state second)" = gone &&
	test ! -e sig/$vm2/$vm2.ovf
'

test_done
