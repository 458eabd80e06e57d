#!/usr/bin/env bash
# attack: h2k-fetch --format vmdk (the stream saved as it comes) took a
# body of no stated length (chunked, or delimited by the close) that ended
# short for the whole disk: a streamOptimized stream cut inside a grain,
# or between two, was renamed with exit 0, a disk that looks whole and is
# not, where --format raw|qcow2 refuses the same bytes.  The observer that
# bounds the stream (t0455) also knows where it ends: a body that ends
# before, with no length stated, is taken for a cut and resumed with a
# Range within --retries; one the server stated whole (a Content-Length
# it met, or a 416 naming the kept length) is its word: exit 9, one line,
# the observer's words, nothing renamed.  Whole streams are still saved.
# Plain bytes are not held to the line's capacity here (t0441: a line may
# overstate it).
# SPDX-License-Identifier: LGPL-3.0-or-later
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/servers/nfcd-lib.sh"

if ! command -v qemu-img >/dev/null; then
	test_skip 'h2k-fetch --format vmdk: a stream ended short' 'no qemu-img (scripts/deps installs qemu-utils)'
	test_done
fi

nfcd_start
cap=1048576
cut=300000
F="h2k-fetch --ca-file $NFCD_CERT --retry-delay 0.01 --retries 2 -q"
line() { cap_line "$1" "$2" "$cap"; } # VM URL

head -c $cap /dev/urandom >disk.raw
qemu-img convert -f raw -O vmdk -o subformat=streamOptimized disk.raw srv/one.vmdk
head -c $cut srv/one.vmdk >srv/short.vmdk
# qemu-img's layout: tables up front, grains, no end marker; the first
# grain marker at the overhead (header offset 64), each padded to sectors
grain2=$(python3 -c '
import struct, sys
d = open("srv/one.vmdk", "rb").read()
at = struct.unpack_from("<Q", d, 64)[0] * 512
for _ in range(2):
    at += (12 + struct.unpack_from("<I", d, at + 8)[0] + 511) // 512 * 512
print(at)')
head -c $grain2 srv/one.vmdk >srv/two.vmdk

# a cut once that ends the body cleanly: resumed, saved whole
for spec in nolength=1,cut=$cut,cleancut=1 closedelim=1,cut=$cut nolength=1,cut=$grain2,cleancut=1; do
	vm=once-${spec%%=*}-${spec##*cut=}
	test_expect_success "a whole stream, $spec once: resumed, saved whole" '
		line '$vm' "$NFCD_URL/'$spec'/one.vmdk" |
		expect_code 0 $F -o out >o.json 2>o.err; rc=$?; cat o.err; test $rc = 0 &&
		test ! -s o.err &&
		cmp out/'$vm'/disk-0.vmdk srv/one.vmdk
	'
done

# expect9 VM REGEX: exit 9, one line matching, nothing renamed
expect9() {
	expect_code 9 $F -o out >b.json 2>b.err &&
	cat b.err && test_one_line b.err && test ! -s b.json &&
	grep -q "^h2k-fetch: $1: disk-0\.vmdk: $2\$" b.err &&
	test ! -e out/$1/disk-0.vmdk && test -e out/$1/disk-0.vmdk.part
}

# a server whose stream is short: every answer ends there
for spec in - nolength=1 closedelim=1; do
	vm=s-${spec%%=*}
	test_expect_success "a stream cut inside a grain ($spec): exit 9" '
		line '$vm' "$NFCD_URL/'$spec'/short.vmdk" |
		expect9 '$vm' "offset $cut: stream ends inside a grain"
	'
	vm=g-${spec%%=*}
	test_expect_success "a stream cut between grains ($spec): exit 9" '
		line '$vm' "$NFCD_URL/'$spec'/two.vmdk" |
		expect9 '$vm' "offset $grain2: stream ends after 2 of the 16 grains its grain tables list"
	'
done

test_done
