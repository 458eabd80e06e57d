#!/usr/bin/env bash
# h2k-fetch --format vmdk (the stream saved as it comes) is bounded like
# the conversions (t0442, t0426), whatever the server says of its length:
# plain bytes by the disk's capacity from the line; a streamOptimized
# stream by the longest such a stream of its header's capacity can be
# (every grain incompressible, every table and marker, 1 MiB of padding
# after the end-of-stream marker), and once that marker went by, by the
# padding allowed after it; a .part left by an earlier run is read back
# through the observer (t0457), and one whose header it cannot read is
# held to the longest stream of the line's capacity.
# Past the bound: exit 9, one line naming the disk, the offset and the
# bound, nothing renamed, the .part no longer than the bound; a length
# announced past it fails before a byte is written.  Valid streams
# (qemu-img's, of random, zero and mixed data, sizes not a multiple of
# 64 KiB, chunked or with a length) are saved whole.
# SPDX-License-Identifier: LGPL-3.0-or-later
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/servers/nfcd-lib.sh"

if ! command -v qemu-img >/dev/null; then
	test_skip 'h2k-fetch --format vmdk bounds' 'no qemu-img (scripts/deps installs qemu-utils)'
	test_done
fi

nfcd_start
F="h2k-fetch --ca-file $NFCD_CERT --retry-delay 0.01 --retries 2 -q"
cap=1048576
MiB=1048576

# line VM URL [CAP]: the capacity on the device, as h2k-lease passes it on
line() { cap_line "$@"; }
# stream RAW VMDK: qemu-img's streamOptimized VMDK of RAW
stream() {
	qemu-img convert -f raw -O vmdk -o subformat=streamOptimized "$1" "$2"
}
size() { stat -c %s "$1"; }

head -c $((3 * MiB + 12288)) /dev/urandom >random.raw
head -c $((2 * MiB + 512)) /dev/zero >zeros.raw
{ head -c $MiB /dev/urandom; head -c $MiB /dev/zero; head -c 102912 /dev/urandom; } >mixed.raw
for k in random zeros mixed; do
	stream $k.raw srv/$k.vmdk
done
head -c $cap /dev/urandom >one.raw
stream one.raw srv/one.vmdk
{ cat srv/one.vmdk; head -c $((MiB / 2)) /dev/zero; } >srv/padded.vmdk
{ cat srv/one.vmdk; head -c $((2 * MiB)) /dev/zero; } >srv/overpad.vmdk
# qemu-img ends with its tables counted, no end-of-stream marker: add one
{ cat srv/one.vmdk; head -c 512 /dev/zero; head -c $((2 * MiB)) /dev/urandom; } >srv/trailer.vmdk
{ head -c 65536 srv/one.vmdk; head -c $((8 * MiB)) /dev/urandom; } >srv/garbage.vmdk
{ cat srv/one.vmdk; head -c $((40 * MiB)) /dev/zero; } >srv/huge.vmdk
{ cat one.raw; head -c 1000 /dev/urandom; } >srv/long

for k in random zeros mixed padded; do
	raw=$k.raw
	[ $k = padded ] && raw=one.raw
	for spec in nolength=1 -; do
		vm=ok-$k-${spec%%=*}
		test_expect_success "valid stream saved whole: $k ($spec, capacity from the line)" '
			line '$vm' "$NFCD_URL/'$spec'/'$k'.vmdk" "$(size '$raw')" |
			expect_code 0 $F -o out >o.json 2>o.err &&
			test ! -s o.err &&
			cmp out/'$vm'/disk-0.vmdk srv/'$k'.vmdk
		'
	done
done

test_expect_success 'valid stream cut and resumed in this run: saved whole' '
	line cut-ok "$NFCD_URL/cut=rand,times=2/random.vmdk" "$(size random.raw)" |
	expect_code 0 $F -o out >o.json 2>o.err &&
	cmp out/cut-ok/disk-0.vmdk srv/random.vmdk &&
	test "$(requests /cut=rand,times=2/random.vmdk | wc -l)" = 3
'

# expect9 VM REGEX: exit 9, one line matching, nothing renamed
expect9() {
	expect_code 9 $F -o out >b.json 2>b.err &&
	cat b.err && test_one_line b.err && test ! -s b.json &&
	grep -q "^h2k-fetch: $1: disk-0\.vmdk: $2\$" b.err &&
	test ! -e out/$1/disk-0.vmdk && test -e out/$1/disk-0.vmdk.part
}

test_expect_success 'plain bytes of no length past the capacity from the line: exit 9' '
	line plain-long "$NFCD_URL/nolength=1/long" $cap |
	expect9 plain-long "offset $cap: plain bytes longer than its capacity $cap bytes" &&
	test "$(size out/plain-long/disk-0.vmdk.part)" -le $cap
'

test_expect_success 'plain bytes announced past the capacity: exit 9, nothing written' '
	line plain-clen "$NFCD_URL/-/long" $cap |
	expect9 plain-clen "length $((cap + 1000)) announced: plain bytes longer than its capacity $cap bytes" &&
	test "$(size out/plain-clen/disk-0.vmdk.part)" = 0
'

test_expect_success 'no capacity in the line: plain bytes are saved as they come' '
	line plain-nocap "$NFCD_URL/nolength=1/long" |
	expect_code 0 $F -o out >o.json 2>o.err &&
	cmp out/plain-nocap/disk-0.vmdk srv/long
'

test_expect_success 'more than 1 MiB of zeros after the end-of-stream marker: exit 9' '
	line overpad "$NFCD_URL/nolength=1/overpad.vmdk" |
	expect9 overpad "offset [0-9]*: more than 1048576 bytes of padding after the end-of-stream marker" &&
	eos=$(sed -n "s/.*: offset \([0-9]*\): more.*/\1/p" b.err) &&
	test "$eos" -le $(($(size srv/one.vmdk) + 512)) &&
	test "$(size out/overpad/disk-0.vmdk.part)" -le $((eos + MiB))
'

test_expect_success 'data after the end-of-stream marker: bounded by the padding allowed' '
	line trailer "$NFCD_URL/nolength=1/trailer.vmdk" |
	expect9 trailer "offset [0-9]*: more than 1048576 bytes of padding after the end-of-stream marker" &&
	test "$(size out/trailer/disk-0.vmdk.part)" -le $(($(size srv/one.vmdk) + 512 + MiB))
'

test_expect_success 'garbage after the header: bounded by the header capacity, no line capacity' '
	line garbage "$NFCD_URL/nolength=1/garbage.vmdk" |
	expect9 garbage "offset [0-9]*: longer than a streamOptimized VMDK of capacity $cap bytes can be ([0-9]* bytes)" &&
	most=$(sed -n "s/.*can be (\([0-9]*\) bytes)$/\1/p" b.err) &&
	grep -q "offset $most: " b.err &&
	test "$(size out/garbage/disk-0.vmdk.part)" -le "$most" &&
	test "$most" -lt $((3 * cap)) && test "$most" -gt $((cap + MiB))
'

test_expect_success 'a VMDK announced past its header bound: exit 9, nothing written' '
	line huge-clen "$NFCD_URL/-/huge.vmdk" |
	expect9 huge-clen "length $(size srv/huge.vmdk) announced: longer than a streamOptimized VMDK of capacity $cap bytes can be ([0-9]* bytes)" &&
	test "$(size out/huge-clen/disk-0.vmdk.part)" = 0
'

test_expect_success 'a length announced past the bound of the line capacity: refused before the body' '
	line huge-line "$NFCD_URL/-/huge.vmdk" $cap |
	expect9 huge-line "length $(size srv/huge.vmdk) announced: longer than a streamOptimized VMDK of capacity $cap bytes can be ([0-9]* bytes)" &&
	test "$(size out/huge-line/disk-0.vmdk.part)" = 0
'

# A .part left by a killed run: its prefix is read back through the
# observer (t0457); one whose "KDMV" header it cannot read (version 0)
# is held to the longest stream of the line's capacity.
{ printf 'KDMV\0\0\0\0'; head -c $((40 * MiB - 8)) /dev/urandom; } >srv/big
# start in the background, wait for bytes on disk, SIGTERM: the .part stays
run_and_kill() { # VM URL
	line "$1" "$2" $cap >"$1.in"
	$F -o out <"$1.in" >"$1.json" 2>"$1.err" &
	local pid=$! i=0
	while [ "$(size out/$1/disk-0.vmdk.part 2>/dev/null || echo 0)" -lt 4096 ]; do
		i=$((i + 1))
		[ $i -lt 300 ] && kill -0 $pid 2>/dev/null || break
		sleep 0.05
	done
	kill -TERM $pid
	wait $pid
	echo $? >"$1.rc"
}
test_expect_success 'a resumed .part of an unreadable header: bounded by the line capacity' '
	run_and_kill resume "$NFCD_URL/nolength=1,bps=200000/big" &&
	test "$(cat resume.rc)" = 10 &&
	kept=$(size out/resume/disk-0.vmdk.part) && test "$kept" -gt 0 &&
	jq -c ".url = \"$NFCD_URL/nolength=1/big\"" out/resume/disk-0.vmdk.part.meta >m &&
	cp m out/resume/disk-0.vmdk.part.meta &&
	line resume "$NFCD_URL/nolength=1/big" $cap |
	expect9 resume "length $((40 * MiB)) announced: longer than a streamOptimized VMDK of capacity $cap bytes can be ([0-9]* bytes)" &&
	requests /nolength=1/big >log && test_line_count = 1 log &&
	grep -q "\"range\": \"bytes=$kept-\"" log &&
	test "$(size out/resume/disk-0.vmdk.part)" = "$kept"
'

test_done
