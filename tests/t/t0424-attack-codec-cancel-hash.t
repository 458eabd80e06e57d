#!/usr/bin/env bash
# attack (issue 13): a raw disk is read back once for its SHA-256, holes
# hashed as zeros: a hostile or merely huge sparse stream (1 TiB of
# capacity, one grain) keeps that pass busy for many minutes.  SIGINT or
# SIGTERM then must stop it at once: exit 10, nothing renamed, the .part
# kept.  (Before the fix the signal was ignored until the whole TiB was
# hashed, and the cancelled disk was renamed as if complete.)
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/servers/nfcd-lib.sh"

nfcd_start
python3 - "$TRASH/srv/huge" <<-\PY
import struct, sys, zlib
cap = (1 << 40) // 512
h = struct.pack("<IIIQQQQIQQQB4sH", 0x564d444b, 3, 0x30001, cap, 128, 1, 1, 512, 0,
                0xffffffffffffffff, 128, 0, b"\n \r\n", 1)
out = h + b"\0" * (128 * 512 - len(h))
c = zlib.compress(bytes(range(256)) * 256)
g = struct.pack("<QI", 0, len(c)) + c
out += g + b"\0" * (-len(g) % 512)
out += struct.pack("<QII", 0, 0, 0) + b"\0" * 496
open(sys.argv[1], "wb").write(out)
PY

for sig in INT TERM; do
	test_expect_success "SIG$sig while hashing a 1 TiB sparse raw disk: exit 10 within seconds, nothing renamed" '
		lease_line h'$sig' "$NFCD_URL/nolength=1/huge" >h.in &&
		{ h2k-fetch --ca-file $NFCD_CERT -q -o out --format raw <h.in >h.json 2>h.err & pid=$!; } &&
		i=0 && while [ ! -e out/h'$sig'/disk-0.raw.part ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done &&
		sleep 1.5 && kill -'$sig' $pid &&
		i=0 && while kill -0 $pid 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done &&
		{ kill -0 $pid 2>/dev/null && { kill -9 $pid; echo "# still running 5 s after SIG'$sig'"; false; } || true; } &&
		{ wait $pid; rc=$?; } ; echo "# rc=$rc" && cat h.err &&
		test "$rc" = 10 &&
		test ! -e out/h'$sig'/disk-0.raw && test -e out/h'$sig'/disk-0.raw.part &&
		grep -q "cancelled" h.err
	'
done

test_done
