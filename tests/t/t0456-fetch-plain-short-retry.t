#!/usr/bin/env bash
# h2k-fetch --format raw|qcow2 of a disk served as plain bytes of no
# stated length (chunked, or delimited by the close) that ends cleanly
# short of the capacity known from the line: more often a cut of the
# network or the server than a wrong disk, so it is retried from byte 0
# (a converted disk restarts) within --retries like any other cut; a
# later whole answer makes the disk.  An answer that ends at the same byte
# as the one before is the server's word on the disk, as are retries used
# up: exit 9, "plain bytes end short of its capacity", nothing renamed.  A
# body whose length the server stated (Content-Length) and which brought
# it all is the server's word on the disk: not retried (t0445).
# SPDX-License-Identifier: LGPL-3.0-or-later
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/servers/nfcd-lib.sh"

nfcd_start
cap=1048576
half=$((cap / 2))
head -c $cap /dev/urandom >srv/disk
F="h2k-fetch --ca-file $NFCD_CERT --retry-delay 0.01 --retries 2 -q"

# line VM URL: the capacity on the device, as h2k-lease passes it on
line() { cap_line "$1" "$2" "$cap"; }

# count FILTER N: N requests logged (a cut one is logged once its bytes
# went out, maybe after the client is done: waited for, 10 s at most)
count() {
	local i=0
	while [ "$(requests "$1" | wc -l)" -lt "$2" ] && [ $i -lt 200 ]; do
		i=$((i + 1))
		sleep 0.05
	done
	requests "$1" >log && test_line_count = "$2" log
}

for fmt in raw qcow2; do
	for spec in closedelim=1,cut=$half nolength=1,cut=$half,cleancut=1; do
		vm=r-$fmt-${spec%%=*}
		test_expect_success "$fmt, $spec once: retried from 0, converted whole" '
			s='$spec',times=1,f='$fmt' &&
			line '$vm' "$NFCD_URL/$s/disk" |
			expect_code 0 $F -o out --format '$fmt' >o.json 2>o.err &&
			test ! -s o.err &&
			test "$(jget o.json files.0.capacity_bytes)" = '$cap' &&
			count "/$s/disk" 2 &&
			! grep -q "\"range\": \"bytes=[1-9]" log &&
			grep -q "\"sent\": '$half'" log &&
			if [ '$fmt' = raw ]; then
				cmp out/'$vm'/disk-0.raw srv/disk
			elif command -v qemu-img >/dev/null; then
				qemu-img compare -q -f qcow2 -F raw out/'$vm'/disk-0.qcow2 srv/disk
			fi
		'
	done
	test_expect_success "$fmt, short at the same byte twice: the answer of the server, exit 9" '
		s=nolength=1,cut=$half,cleancut=1,times=0,f='$fmt' &&
		line a-'$fmt' "$NFCD_URL/$s/disk" |
		expect_code 9 $F -o out --format '$fmt' >b.json 2>b.err &&
		cat b.err && test_one_line b.err && test ! -s b.json &&
		grep -q "^h2k-fetch: a-'$fmt': disk-0\.'$fmt': offset $half: plain bytes end short of its capacity $cap bytes$" b.err &&
		test ! -e out/a-'$fmt'/disk-0.'$fmt' &&
		count "/$s/disk" 2
	'
done

test_expect_success 'short at a new byte each time: cuts, retried until --retries are used up' '
	s=nolength=1,cut=rand,cleancut=1,times=0,f=rr &&
	line rr "$NFCD_URL/$s/disk" |
	expect_code 9 $F -o out --format raw >b.json 2>b.err &&
	test_one_line b.err &&
	grep -q "^h2k-fetch: rr: disk-0\.raw: offset [0-9]*: plain bytes end short of its capacity $cap bytes$" b.err &&
	i=0 && while [ "$(requests "/$s/disk" | wc -l)" -lt 4 ] && [ $i -lt 200 ]; do
		i=$((i + 1)); sleep 0.05; done &&
	test "$(requests "/$s/disk" | wc -l)" -ge 4
'

test_expect_success '--retries 0: the first short answer brought new bytes, one more, then exit 9' '
	s=nolength=1,cut=$half,cleancut=1,times=0,f=r0 &&
	line r0 "$NFCD_URL/$s/disk" |
	expect_code 9 h2k-fetch --ca-file $NFCD_CERT --retries 0 -q -o out --format raw >b.json 2>b.err &&
	grep -q "^h2k-fetch: r0: disk-0\.raw: offset $half: plain bytes end short of its capacity $cap bytes$" b.err &&
	count "/$s/disk" 2
'

test_done
