#!/usr/bin/env bash
# h2k-fetch killed mid-download: a rerun resumes and ends byte-identical.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/servers/nfcd-lib.sh"

nfcd_start
mkdisk d 4000000
F="h2k-fetch --ca-file $NFCD_CERT -q"
SLOW="$NFCD_URL/bps=1000000/d"

# start in the background, wait for bytes, kill; leaves .part behind
run_and_kill() { # SIG VM URL OUT
	lease_line "$2" "$3" >"$2.in"
	$F -o "$4" <"$2.in" >"$2.json" 2>"$2.err" &
	local pid=$! i=0
	# wait for a megabyte on disk
	while [ "$(stat -c %s "$4/$2/disk-0.vmdk.part" 2>/dev/null || echo 0)" -lt 1000000 ]; do
		i=$((i + 1))
		[ $i -lt 600 ] && kill -0 $pid 2>/dev/null || break
		sleep 0.1
	done
	kill -"$1" $pid
	wait $pid
	echo $? >"$2.rc"
}

test_expect_success 'kill -9 mid-download leaves a .part and no final file' '
	run_and_kill 9 k9 "$SLOW" out &&
	test "$(cat k9.rc)" = 137 &&
	test -s out/k9/disk-0.vmdk.part && test ! -e out/k9/disk-0.vmdk &&
	n=$(stat -c %s out/k9/disk-0.vmdk.part) && test "$n" -lt 4000000 &&
	cmp -n "$n" out/k9/disk-0.vmdk.part srv/d
'

test_expect_success 'the rerun resumes from all the kept bytes and ends identical' '
	kept=$(stat -c %s out/k9/disk-0.vmdk.part) &&
	: >srv/requests.log &&
	$F -o out <k9.in >k9.json &&
	cmp out/k9/disk-0.vmdk srv/d &&
	# the request of the killed run may still log its end: take the complete one
	requests /bps=1000000/d | grep "\"how\": \"full\"" >log && test_line_count = 1 log &&
	grep -q "\"status\": 206" log &&
	off=$(sed -n "s/.*\"range\": \"bytes=\([0-9]*\)-\".*/\1/p" log) &&
	test "$off" = "$kept" &&
	grep -q "\"sha256\":\"$(sha256sum <srv/d | cut -d" " -f1)\"" k9.json &&
	test ! -e out/k9/disk-0.vmdk.part && test ! -e out/k9/disk-0.vmdk.part.meta
'

test_expect_success 'SIGTERM: exit 10, the .part is kept, the rerun completes it' '
	run_and_kill TERM term "$SLOW" out &&
	test "$(cat term.rc)" = 10 && grep -q "term: cancelled" term.err &&
	test -s out/term/disk-0.vmdk.part && test ! -e out/term/disk-0.vmdk &&
	: >srv/requests.log &&
	$F -o out <term.in >term.json && cmp out/term/disk-0.vmdk srv/d &&
	requests /bps=1000000/d | grep "\"how\": \"full\"" | grep -q "\"range\": \"bytes=[1-9]"
'

test_expect_success 'a .part from another URL (another lease) is started over' '
	run_and_kill 9 other "$SLOW" out &&
	test -s out/other/disk-0.vmdk.part &&
	: >srv/requests.log &&
	lease_line other "$NFCD_URL/-/d" | $F -o out >other.json &&
	cmp out/other/disk-0.vmdk srv/d &&
	requests /-/d | grep "\"how\": \"full\"" >log && test_line_count = 1 log &&
	grep -q "\"range\": null" log
'

test_expect_success 'after a reboot only the bytes up to the last fsync are trusted' '
	mkdir -p out/unsynced &&
	head -c 3000000 srv/d >out/unsynced/disk-0.vmdk.part &&
	printf "{\"url\":\"%s\",\"synced\":1000000,\"boot_id\":\"another-boot\"}" "$NFCD_URL/-/d" \
		>out/unsynced/disk-0.vmdk.part.meta &&
	: >srv/requests.log &&
	lease_line unsynced "$NFCD_URL/-/d" | $F -o out >u.json &&
	cmp out/unsynced/disk-0.vmdk srv/d &&
	requests /-/d | grep -q "\"range\": \"bytes=1000000-\""
'

test_expect_success 'without a reboot all the bytes of a killed run are kept' '
	mkdir -p out/sameboot &&
	head -c 3000000 srv/d >out/sameboot/disk-0.vmdk.part &&
	printf "{\"url\":\"%s\",\"synced\":0,\"boot_id\":\"%s\"}" "$NFCD_URL/-/d" \
		"$(cat /proc/sys/kernel/random/boot_id)" >out/sameboot/disk-0.vmdk.part.meta &&
	: >srv/requests.log &&
	lease_line sameboot "$NFCD_URL/-/d" | $F -o out >sb.json &&
	cmp out/sameboot/disk-0.vmdk srv/d &&
	requests /-/d | grep -q "\"range\": \"bytes=3000000-\""
'

test_expect_success 'a .part complete but not renamed (killed at the end): 416, then kept' '
	mkdir -p out/whole && cp srv/d out/whole/disk-0.vmdk.part &&
	printf "{\"url\":\"%s\",\"synced\":4000000,\"total\":4000000}" "$NFCD_URL/-/d" \
		>out/whole/disk-0.vmdk.part.meta &&
	: >srv/requests.log &&
	lease_line whole "$NFCD_URL/-/d" | $F -o out >w.json &&
	cmp out/whole/disk-0.vmdk srv/d &&
	requests /-/d >log && test_line_count = 1 log && grep -q "\"status\": 416" log &&
	grep -q "\"sha256\":\"$(sha256sum <srv/d | cut -d" " -f1)\"" w.json
'

test_expect_success 'a kept prefix changed on disk: the printed digest is that of the file (rehashed)' '
	mkdir -p out/corrupt && head -c 2000000 /dev/zero >out/corrupt/disk-0.vmdk.part &&
	printf "{\"url\":\"%s\",\"synced\":2000000}" "$NFCD_URL/-/d" >out/corrupt/disk-0.vmdk.part.meta &&
	lease_line corrupt "$NFCD_URL/-/d" | $F -o out >c.json &&
	want=$(sha256sum <out/corrupt/disk-0.vmdk | cut -d" " -f1) &&
	grep -q "\"sha256\":\"$want\"" c.json
'

nfcd_stop
test_done
