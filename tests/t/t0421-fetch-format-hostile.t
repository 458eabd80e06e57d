#!/usr/bin/env bash
# h2k-fetch --format raw|qcow2 against malformed streamOptimized streams
# (chunked, from tests/servers/nfcd.py): exit 9, one line naming the VM,
# the disk and the offset in the stream, nothing renamed; a failing disk
# write is exit 8.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/servers/nfcd-lib.sh"

nfcd_start
{ head -c 300000 /dev/urandom; head -c 400000 /dev/zero; yes x | head -c 200000; } >disk.raw
truncate -s 1048576 disk.raw
F="h2k-fetch --ca-file $NFCD_CERT --retry-delay 0.01 --retries 2 -q"

# the message for each kind (see mkstream.py)
while read -r kind why; do
	off=$(python3 "$TESTS_DIR/servers/mkstream.py" disk.raw "srv/$kind" --bad "$kind") || exit 1
	for fmt in raw qcow2; do
		test_expect_success "$kind ($fmt): exit 9, disk and offset $off named, nothing renamed" '
			lease_line b-'$kind-$fmt' "$NFCD_URL/nolength=1/'$kind'" |
			expect_code 9 $F -o out --format '$fmt' >b.json 2>b.err &&
			cat b.err && test_one_line b.err && test ! -s b.json &&
			grep -q "^h2k-fetch: b-'$kind-$fmt': disk-0.'$fmt': offset '$off': .*'"$why"'" b.err &&
			test ! -e out/b-'$kind-$fmt'/disk-0.'$fmt' &&
			test -e out/b-'$kind-$fmt'/disk-0.'$fmt'.part
		'
	done
done <<-\EOF
	magic footer without the KDMV magic
	version VMDK version 7 not supported
	flags not streamOptimized
	beyond beyond the capacity
	backwards not after the last one
	inflate inflate error
	bomb inflates beyond its 65536 bytes
	marker marker of unknown type 9
	truncgrain stream ends inside a grain
	noeos without an end-of-stream marker
	uncounted stream ends without an end-of-stream marker (and its grain tables could not be counted)
	hugegrain compressed bytes is absurd
EOF

if command -v qemu-img >/dev/null; then
	# qemu-img writes no end marker: its grain tables up front tell a cut
	qemu-img convert -f raw -O vmdk -o subformat=streamOptimized disk.raw q.vmdk
	cut=$(python3 - q.vmdk <<-\PY
	import struct, sys
	d = open(sys.argv[1], "rb").read()
	p, last = struct.unpack("<Q", d[64:72])[0] * 512, 0
	while p + 12 <= len(d):
	    lba, size = struct.unpack("<QI", d[p:p + 12])
	    if not size:
	        break
	    last, p = p, p + (12 + size + 511) // 512 * 512
	print(last)
	PY
	)
	head -c "$cut" q.vmdk >srv/qcut
	test_expect_success "qemu-img stream cut between grains: exit 9, offset $cut named" '
		lease_line qcut "$NFCD_URL/nolength=1/qcut" |
		expect_code 9 $F -o out --format raw >b.json 2>b.err &&
		cat b.err && test_one_line b.err &&
		grep -q "^h2k-fetch: qcut: disk-0.raw: offset $cut: stream ends after [0-9]* of the [0-9]* grains" b.err &&
		test ! -e out/qcut/disk-0.raw
	'
else
	test_skip 'qemu-img stream cut between grains' 'no qemu-img'
fi

test_expect_success 'a malformed stream is not retried (the lease serves the same bytes)' '
	lease_line again "$NFCD_URL/nolength=1/bomb" |
	H2K_LOG_LEVEL=info expect_code 9 h2k-fetch --ca-file $NFCD_CERT --retry-delay 0.01 \
		--retries 2 -o out --format raw >again.json 2>again.err &&
	cat again.err && grep -q "offset .*: grain at LBA .* inflates beyond" again.err &&
	! grep -q "retry" again.err
'

test_expect_success 'the same malformed stream saved as served (--format vmdk) is no error' '
	lease_line asis "$NFCD_URL/-/bomb" | $F -o out >asis.json &&
	cmp out/asis/disk-0.vmdk srv/bomb
'

if cc -shared -fPIC -o "$TRASH/failio.so" "$TESTS_DIR/servers/failio.c" -ldl 2>cc.err; then
	python3 "$TESTS_DIR/servers/mkstream.py" disk.raw srv/good
	export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
	for step in write:100000 fsync read:1000; do
		name=${step%%:*}
		test_expect_success "EIO at $name of a qcow2: exit 8, the file named" '
			lease_line e'$name' "$NFCD_URL/-/good" |
			LD_PRELOAD="$TRASH/failio.so" FAILIO='$step' \
				expect_code 8 $F -o out --format qcow2 >e.json 2>e.err &&
			cat e.err && test_one_line e.err &&
			grep -q "out/e'$name'/disk-0.qcow2.part: .*Input/output error" e.err &&
			test ! -e out/e'$name'/disk-0.qcow2 && test ! -s e.json
		'
	done
else
	test_skip 'EIO while converting' "cannot build the shim: $(head -n 1 cc.err)"
fi

test_done
