#!/usr/bin/env bash
# h2k-ovf --deliver DIR: the finished OVA (or, without --ova, the hyper2kvm
# manifest) alone, flat in DIR, by a hard link on the same file system or a
# copy through NAME.ova.part on another; a hyper2kvm 0.2.1 daemon watching
# DIR picks it up as one ova job and nothing else; a name already in DIR is
# never replaced (exit 12); DIR must be a real directory.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/h2kvm-lib.sh"

h2kvm_need

sim_start -vm 2 -disks 1 -disk-size 512K -disk-fill random -power off
h2k_login_sim || { echo "Bail out! login failed"; exit 1; }
VM=/DC0/vm/DC0_H0_VM1 VM2=/DC0/vm/DC0_C0_RP0_VM1

# wait_for FILE REGEX SECONDS: until a line of FILE matches (bounded).
wait_for() {
	local i=0
	until grep -q -- "$2" "$1" 2>/dev/null; do
		i=$((i + 1))
		[ $i -le $(($3 * 5)) ] || return 1
		sleep 0.2
	done
}

# The watched directory on another file system when /dev/shm is one (the
# copy path: the daemon must never see the .part), else in the trash.
W=$TRASH/watch
if [ -d /dev/shm ] && [ -w /dev/shm ] &&
   [ "$(stat -c %d /dev/shm)" != "$(stat -c %d "$TRASH")" ]; then
	W=$(mktemp -d /dev/shm/h2k-t0552.XXXXXX) && test_atexit "rm -rf '$W'"
fi
mkdir -p "$W"

daemon_stop() {
	[ -n "$DPID" ] || return 0
	kill -TERM "$DPID" 2>/dev/null
	local i=0
	while kill -0 "$DPID" 2>/dev/null && [ $i -lt 25 ]; do sleep 0.2; i=$((i + 1)); done
	# it waits for its workers on SIGTERM; a worker stuck on NBD never ends
	kill -KILL "$DPID" 2>/dev/null
	DPID=
}

mkdir -p daemon-out h2kvm-home
HOME=$TRASH/h2kvm-home "$H2KVM" --cmd daemon --watch-dir "$W" --output-dir daemon-out \
	>daemon.log 2>&1 &
DPID=$!
disown "$DPID"  # its end, by daemon_stop, is no job for bash to report
test_atexit daemon_stop

test_expect_success 'a hyper2kvm daemon watches the directory' '
	wait_for daemon.log "Daemon ready" 60
'

test_expect_success '--ova --deliver: the OVA alone lands in the directory' '
	h2k-lease "$VM" | h2k-fetch -o exp | h2k-ovf --ova --keep-files --deliver "$W" >line 2>err &&
	test_line_count = 1 line &&
	test "$(jget line delivered_path)" = "$W/DC0_H0_VM1.ova" &&
	ls "$W" >listing && echo DC0_H0_VM1.ova >want && test_cmp want listing &&
	cmp "$(jget line ova_path)" "$W/DC0_H0_VM1.ova"
'

test_expect_success 'the daemon picks it up as one ova job and nothing else' '
	wait_for daemon.log "Mode: ova" 60 &&
	grep "New file queued\|Queuing\|Processing:" daemon.log >picked &&
	grep -c "New file queued: DC0_H0_VM1.ova$" picked >n && test "$(cat n)" = 1 &&
	! grep -v "DC0_H0_VM1.ova$" picked &&
	test "$(grep -c " Mode: ova" daemon.log)" = 1 &&
	! grep -q "\.part\|\.vmdk\|\.mf" picked
'
daemon_stop

test_expect_success 'on the same file system the OVA is a hard link' '
	mkdir inbox &&
	h2k-ovf --ova --keep-files --deliver inbox <line >line2 2>err2 &&
	test "$(stat -c %i inbox/DC0_H0_VM1.ova)" = "$(stat -c %i "$(jget line ova_path)")" &&
	ls -A inbox >l && echo DC0_H0_VM1.ova >want && test_cmp want l
'

test_expect_success 'a name already in the directory: exit 12, nothing changed' '
	ls -li inbox >before && cksum inbox/DC0_H0_VM1.ova >sum &&
	expect_code 12 h2k-ovf --ova --deliver inbox <line >out3 2>err3 &&
	test_line_count = 0 out3 &&
	grep -q "inbox/DC0_H0_VM1.ova already exists" err3 &&
	ls -li inbox >after && test_cmp before after &&
	cksum inbox/DC0_H0_VM1.ova >sum2 && test_cmp sum sum2
'

test_expect_success 'a symlink in place of the directory: exit 2, nothing written' '
	mkdir real && ln -s real link &&
	expect_code 2 h2k-ovf --ova --deliver link <line >out4 2>err4 &&
	test_one_line err4 && grep -q "link: not a directory" err4 &&
	test -z "$(ls -A real)"
'

test_expect_success 'a missing directory: exit 6' '
	expect_code 6 h2k-ovf --ova --deliver nowhere <line >out5 2>err5 &&
	test_one_line err5 && test ! -e nowhere
'

test_expect_success 'without --ova the manifest is delivered, and alone' '
	mkdir mdir &&
	h2k-lease "$VM2" | h2k-fetch -o exp | h2k-ovf --deliver mdir >line6 2>err6 &&
	m=$(jget line6 hyper2kvm_manifest_path) &&
	test "$(jget line6 delivered_path)" = mdir/DC0_C0_RP0_VM1.hyper2kvm.json &&
	ls -A mdir >l && echo DC0_C0_RP0_VM1.hyper2kvm.json >want && test_cmp want l &&
	test "$(stat -c %i "$m")" = "$(stat -c %i mdir/DC0_C0_RP0_VM1.hyper2kvm.json)" &&
	test "$(file_mode mdir/DC0_C0_RP0_VM1.hyper2kvm.json)" = 644
'

test_expect_success 'h2k-export --ova --deliver passes both on' '
	mkdir edir &&
	h2k-export -o eexp --ova --deliver edir "$VM2" >line7 2>err7 ||
		{ cat err7; false; } &&
	ls -A edir >l && echo DC0_C0_RP0_VM1.ova >want && test_cmp want l
'

test_done
