#!/usr/bin/env bash
# h2k-fetch when the disk fails at write, fsync or close (an LD_PRELOAD
# shim): exit 8, one line naming the file and the step, .part kept,
# nothing renamed into place.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/servers/nfcd-lib.sh"

if ! cc -shared -fPIC -o "$TRASH/failio.so" "$TESTS_DIR/servers/failio.c" -ldl 2>cc.err; then
	test_skip 'EIO at write, fsync, close' "cannot build the shim: $(head -n 1 cc.err)"
	test_done
fi
nfcd_start
mkdisk d 1000000
# an ASan build wants its runtime first: let it accept the shim
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"

eio() { # VM STEP
	lease_line "$1" "$NFCD_URL/-/d" |
	LD_PRELOAD="$TRASH/failio.so" FAILIO=$2 \
		h2k-fetch --ca-file "$NFCD_CERT" -q --retries 1 --retry-delay 0.01 -o out >"$1.json" 2>"$1.err"
}

for step in write:300000 fsync close; do
	name=${step%%:*}
	test_expect_success "EIO at $name: exit 8, the file and the step named, .part kept" "
		expect_code 8 eio v$name $step &&
		test_one_line v$name.err &&
		grep -q 'out/v$name/disk-0.vmdk.part: $name: Input/output error' v$name.err &&
		test -e out/v$name/disk-0.vmdk.part && test ! -e out/v$name/disk-0.vmdk &&
		test ! -s v$name.json
	"
done

# The digest is of the bytes read back from the .part: a disk that cannot
# give them back fails the file before the rename.
test_expect_success 'EIO reading the .part back for SHA-256: exit 8, nothing renamed' '
	expect_code 8 eio vread read:600000 &&
	test_one_line vread.err &&
	grep -q "out/vread/disk-0.vmdk.part: read back for SHA-256: Input/output error" vread.err &&
	test -e out/vread/disk-0.vmdk.part && test ! -e out/vread/disk-0.vmdk &&
	test ! -s vread.json
'

test_expect_success 'the rerun on a healthy disk completes the same files' '
	for v in vwrite vfsync vclose vread; do
		lease_line $v "$NFCD_URL/-/d" | h2k-fetch --ca-file "$NFCD_CERT" -q -o out >/dev/null &&
		cmp out/$v/disk-0.vmdk srv/d || exit 1
	done
'

nfcd_stop
test_done
