#!/usr/bin/env bash
# h2k-fetch --format raw opens its .part a second time for O_DIRECT: when
# another user (a VM folder writable by others) has swapped the name for a
# FIFO between the two opens, that open must not hang (O_WRONLY on a FIFO
# without a reader blocks forever), and the FIFO must not be renamed to
# the final name with the digest of the unlinked file: exit 8, the .part
# named, nothing under the final name.
# SPDX-License-Identifier: LGPL-3.0-or-later
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/servers/nfcd-lib.sh"

if ! command -v qemu-img >/dev/null; then
	test_skip 'a FIFO swapped in for the .part' 'no qemu-img (scripts/deps installs qemu-utils)'
	test_done
fi
if ! cc -shared -fPIC -o "$TRASH/failio.so" "$TESTS_DIR/servers/failio.c" -ldl 2>cc.err; then
	test_skip 'a FIFO swapped in for the .part' "cannot build the shim: $(head -n 1 cc.err)"
	test_done
fi
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"

nfcd_start
python3 -c '
import os
with open("disk.raw", "wb") as f:
    f.write(os.urandom(1 << 20))
'
qemu-img convert -f raw -O vmdk -o subformat=streamOptimized disk.raw srv/q
F="h2k-fetch --ca-file $NFCD_CERT --retry-delay 0.05 -q"

test_expect_success 'the .part swapped for a FIFO: no hang, exit 8, nothing renamed' '
	lease_line ff "$NFCD_URL/nolength=1/q" >ff.in &&
	LD_PRELOAD="$TRASH/failio.so" FAILIO=fifo \
		expect_code 8 timeout -k 5 30 $F -o out --format raw --retries 0 <ff.in >ff.json 2>ff.err &&
	test_one_line ff.err &&
	grep -q "out/ff/disk-0.raw.part" ff.err &&
	test ! -e out/ff/disk-0.raw && test ! -s ff.json
'

nfcd_stop
test_done
