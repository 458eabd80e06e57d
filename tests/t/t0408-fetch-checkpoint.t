#!/usr/bin/env bash
# h2k-fetch's checkpoints (fdatasync, then "synced" in the .part.meta file)
# come every 10 s or 512 MiB from the hasher thread, while the socket keeps
# being read: a slow stream gets one after 10 s; the bytes it vouches for
# are the source's; an fdatasync that fails there fails the file then, not
# at the end (exit 8, one line, .part kept, nothing renamed).
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/servers/nfcd-lib.sh"

nfcd_start
mkdisk d 1400000
F="h2k-fetch --ca-file $NFCD_CERT -q --retries 1 --retry-delay 0.01"
SLOW="$NFCD_URL/bps=100000/d"   # 14 s of stream

synced() { # META: the "synced" count, 0 when none
	sed -n 's/.*"synced":\([0-9]*\).*/\1/p' "$1" 2>/dev/null | grep . || echo 0
}

test_expect_success 'a checkpoint mid-stream: synced > 0, those bytes are the source'"'"'s, the stream goes on' '
	lease_line ck "$SLOW" >ck.in &&
	{ $F -o out <ck.in >ck.json 2>ck.err & pid=$!; } &&
	i=0 &&
	while [ "$(synced out/ck/disk-0.vmdk.part.meta)" -eq 0 ]; do
		i=$((i + 1))
		[ $i -lt 300 ] && kill -0 $pid 2>/dev/null || break
		sleep 0.1
	done &&
	n=$(synced out/ck/disk-0.vmdk.part.meta) &&
	test "$n" -gt 0 && test "$n" -lt 1400000 &&
	test "$(stat -c %s out/ck/disk-0.vmdk.part)" -ge "$n" &&
	cmp -n "$n" out/ck/disk-0.vmdk.part srv/d &&
	kill -0 $pid &&
	expect_code 0 wait $pid &&
	cmp out/ck/disk-0.vmdk srv/d &&
	test ! -e out/ck/disk-0.vmdk.part.meta &&
	grep -q "\"sha256\":\"$(sha256sum <srv/d | cut -d" " -f1)\"" ck.json
'

if ! cc -shared -fPIC -o "$TRASH/failio.so" "$TESTS_DIR/servers/failio.c" -ldl 2>cc.err; then
	test_skip 'EIO at the checkpoint' "cannot build the shim: $(head -n 1 cc.err)"
else
	export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
	test_expect_success 'EIO at the checkpoint: exit 8 mid-stream, one line, .part kept' '
		lease_line cke "$SLOW" >cke.in &&
		expect_code 8 env LD_PRELOAD="$TRASH/failio.so" FAILIO=fdatasync:0 \
			$F -o out <cke.in >cke.json 2>cke.err &&
		test_one_line cke.err &&
		grep -q "out/cke/disk-0.vmdk.part: fsync: Input/output error" cke.err &&
		test -e out/cke/disk-0.vmdk.part && test ! -e out/cke/disk-0.vmdk &&
		test "$(stat -c %s out/cke/disk-0.vmdk.part)" -lt 1400000 &&
		test ! -s cke.json
	'
fi

nfcd_stop
test_done
