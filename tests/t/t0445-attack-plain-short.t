#!/usr/bin/env bash
# attack: a disk served as plain bytes (not streamOptimized) that ends
# short of the disk's capacity known from the line (the device's
# capacity_bytes), converted with --format raw|qcow2 (--format vmdk saves
# the bytes as they come, bounded neither way).  A body of unknown length
# cut cleanly (a chunked end after half the disk), or a server that says a
# shorter Content-Length,
# was taken for the whole disk: exit 0, a disk of half the VM's size,
# capacity_bytes the stream's length (h2k-ovf then wrote that into the
# DiskSection).  The plain bytes are bounded by the capacity from above
# (t0442); a known capacity is also the least.  Now: exit 9, one line
# naming the disk, the offset and the capacity, nothing renamed.  A body
# of no stated length that ends short is first taken for a cut and
# retried from 0 (t0456): ending at the same byte again, it is the
# server's answer (2 requests); one whose Content-Length it brought is
# not retried (1 request).  Without a capacity in the line, the stream is
# still the disk.
# SPDX-License-Identifier: LGPL-3.0-or-later
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/servers/nfcd-lib.sh"

nfcd_start
cap=1048576
half=$((cap / 2))
head -c $half /dev/urandom >srv/short
head -c 100 /dev/urandom >srv/tiny
: >srv/empty
F="h2k-fetch --ca-file $NFCD_CERT --retry-delay 0.01 --retries 2 -q"

# line VM URL: the capacity on the device, as h2k-lease passes it on
line() { cap_line "$1" "$2" "$cap"; }

for fmt in raw qcow2; do
	for src in nolength=1/short -/short nolength=1/tiny -/empty; do
		end=$(stat -c %s srv/${src##*/})
		vm=s-$fmt-${src%%/*}-${src##*/}
		vm=${vm//=/}
		tries=1
		[ "${src%%/*}" = nolength=1 ] && tries=2
		test_expect_success "$fmt, ${src%%/*} ${src##*/} ($end of $cap bytes): exit 9 after $tries request(s), nothing renamed" '
			n=$(requests "/'$src'" | wc -l) &&
			line '$vm' "$NFCD_URL/'$src'" |
			expect_code 9 $F -o out --format '$fmt' >b.json 2>b.err &&
			cat b.err && test_one_line b.err && test ! -s b.json &&
			grep -q "^h2k-fetch: '$vm': disk-0\.[a-z0-9]*: offset '$end': plain bytes end short of its capacity '$cap' bytes$" b.err &&
			test -z "$(ls out/'$vm' | grep -v "\.part$\|\.part\.meta$")" &&
			requests "/'$src'" >log && test_line_count = $((n + '$tries')) log
		'
	done
done

test_expect_success 'no capacity known: the short plain stream is the disk' '
	lease_line nocap "$NFCD_URL/nolength=1/short" |
	expect_code 0 $F -o out --format raw >n.json 2>n.err &&
	cmp out/nocap/disk-0.raw srv/short &&
	test "$(jget n.json files.0.capacity_bytes)" = $half
'

test_done
