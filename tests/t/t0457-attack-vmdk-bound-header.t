#!/usr/bin/env bash
# attack on the bound of a disk saved as it comes (h2k-fetch --format
# vmdk, t0455): the bound is the stream's own (its header's capacity, or
# plain bytes: the line's), learnt from its first bytes, however the body
# is framed and whether or not the .part was left by an earlier run.
# Before, a length announced before the first sector was in was held
# against the longest stream of the line's capacity, and a .part left by
# an earlier run against the same: a valid stream whose header states
# more than the line's capacity was refused with a Content-Length and
# saved when chunked, refused once resumed; a plain .part resumed could
# grow to some 1.17 times the capacity plus 33 MiB where a fresh fetch
# stops at the capacity.  The kept prefix is read back anyway (its
# SHA-256): it now goes through the observer too.
# SPDX-License-Identifier: LGPL-3.0-or-later
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/servers/nfcd-lib.sh"

if ! command -v qemu-img >/dev/null; then
	test_skip 'h2k-fetch --format vmdk bound from the header' 'no qemu-img (scripts/deps installs qemu-utils)'
	test_done
fi

nfcd_start
F="h2k-fetch --ca-file $NFCD_CERT --retry-delay 0.01 --retries 2 -q"
MiB=1048576
small=512       # the line's capacity: less than the disk's
size() { stat -c %s "$1"; }
line() { cap_line "$@"; } # VM URL CAP

# a valid stream longer than any stream of the line's capacity can be
# (33 MiB of overhead allowed): 34 MiB of random data
head -c $((34 * MiB)) /dev/urandom >big.raw
qemu-img convert -f raw -O vmdk -o subformat=streamOptimized big.raw srv/big.vmdk
head -c $((2 * MiB)) /dev/urandom >srv/plain

for spec in - nolength=1; do
	test_expect_success "header capacity above the line's, $spec: saved whole" '
		line cl-${spec%%=*} "$NFCD_URL/'$spec'/big.vmdk" $small |
		expect_code 0 $F -o out >o.json 2>o.err; rc=$?; cat o.err; test $rc = 0 &&
		test ! -s o.err &&
		cmp out/cl-${spec%%=*}/disk-0.vmdk srv/big.vmdk
	'
done

# start in the background, wait for bytes on disk, SIGTERM: the .part
# stays; the meta then names the URL of the next run
run_and_kill() { # VM URL CAP NEXTURL
	line "$1" "$2" "$3" >"$1.in"
	$F -o out <"$1.in" >"$1.json" 2>"$1.err" &
	local pid=$! i=0
	while [ "$(size out/$1/disk-0.vmdk.part 2>/dev/null || echo 0)" -lt 65536 ]; do
		i=$((i + 1))
		[ $i -lt 300 ] && kill -0 $pid 2>/dev/null || break
		sleep 0.05
	done
	kill -TERM $pid
	wait $pid
	echo $? >"$1.rc"
	jq -c ".url = \"$4\"" out/$1/disk-0.vmdk.part.meta >m &&
	cp m out/$1/disk-0.vmdk.part.meta
}

for spec in - nolength=1; do
	vm=res-${spec%%=*}
	test_expect_success "a .part of an earlier run, header above the line's, $spec: resumed whole" '
		run_and_kill '$vm' "$NFCD_URL/nolength=1,bps=300000/big.vmdk" $small \
		    "$NFCD_URL/'$spec'/big.vmdk" &&
		test "$(cat '$vm'.rc)" = 10 &&
		kept=$(size out/'$vm'/disk-0.vmdk.part) && test "$kept" -ge 65536 &&
		n0=$(requests "/'$spec'/big.vmdk" | wc -l) &&
		line '$vm' "$NFCD_URL/'$spec'/big.vmdk" $small |
		expect_code 0 $F -o out >o.json 2>o.err; rc=$?; cat o.err; test $rc = 0 &&
		test ! -s o.err &&
		cmp out/'$vm'/disk-0.vmdk srv/big.vmdk &&
		requests "/'$spec'/big.vmdk" | tail -n +$((n0 + 1)) >log && test_line_count = 1 log &&
		grep -q "\"range\": \"bytes=$kept-\"" log
	'
done

test_expect_success 'a plain .part of an earlier run: bounded by the line capacity, as fresh' '
	run_and_kill plain "$NFCD_URL/nolength=1,bps=300000/plain" $MiB "$NFCD_URL/nolength=1/plain" &&
	test "$(cat plain.rc)" = 10 &&
	line plain "$NFCD_URL/nolength=1/plain" $MiB |
	expect_code 9 $F -o out >b.json 2>b.err &&
	cat b.err && test_one_line b.err && test ! -s b.json &&
	# the Content-Range states the whole length: refused before the body
	grep -q "^h2k-fetch: plain: disk-0\.vmdk: length $((2 * MiB)) announced: plain bytes longer than its capacity $MiB bytes\$" b.err &&
	test ! -e out/plain/disk-0.vmdk &&
	test "$(size out/plain/disk-0.vmdk.part)" -le $MiB
'

test_done
