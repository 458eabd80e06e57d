#!/usr/bin/env bash
# h2k-fetch --format on a 4 GiB streamOptimized disk that is mostly holes
# (qemu-img's stream, chunked): the raw file's allocated blocks are about
# the data, the qcow2 spans many L2 tables and checks clean, both compare
# identical, and the peak RSS stays flat.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/servers/nfcd-lib.sh"

if ! command -v qemu-img >/dev/null; then
	test_skip 'h2k-fetch --format, 4 GiB' 'no qemu-img (scripts/deps installs qemu-utils)'
	test_done
fi
nfcd_start
# 24 MiB of data in 8 places across 4 GiB, a cluster straddling the end
# of an L2 table's 512 MiB among them
truncate -s 4G big.raw
for off in 0 100 511 1023 2000 3000 4000 4092; do
	head -c 3145728 /dev/urandom | dd of=big.raw bs=1M seek=$off conv=notrunc status=none
done
qemu-img convert -f raw -O vmdk -o subformat=streamOptimized big.raw srv/big
F="h2k-fetch --ca-file $NFCD_CERT -q"
san=
if [ -n "${H2K_VALGRIND:-}" ] || case "$H2K_BIN" in */san/*) true;; *) false;; esac; then
	san=1
fi

test_expect_success '4 GiB, --format raw: identical, allocated about the data' '
	lease_line big "$NFCD_URL/nolength=1/big" |
	/usr/bin/time -f %M -o rss $F -o out --format raw >r.json &&
	f=out/big/disk-0.raw &&
	test "$(stat -c %s $f)" = 4294967296 &&
	test "$(jget r.json files.0.capacity_bytes)" = 4294967296 &&
	alloc=$(($(stat -c %b $f) * 512)) && say "allocated $alloc bytes, peak RSS $(cat rss) KiB" &&
	test $alloc -ge 25165824 && test $alloc -le 27262976 &&
	qemu-img compare -q -f raw -F raw big.raw $f &&
	# openssl: sha256sum lacks the SHA extensions, 7x slower on 4 GiB
	test "$(jget r.json files.0.sha256)" = "$(openssl dgst -sha256 -r $f | cut -d" " -f1)"
'

test_expect_success 'two 4 GiB disks at once, --format qcow2: check clean, identical' '
	lease_line bigq "$NFCD_URL/nolength=1/big" "$NFCD_URL/-/big" |
	/usr/bin/time -f %M -o rss2 $F -j 2 -o out --format qcow2 >q.json &&
	say "peak RSS with two streams: $(cat rss2) KiB" &&
	for f in out/bigq/disk-0.qcow2 out/bigq/disk-1.qcow2; do
		qemu-img check $f >check.out && cat check.out &&
		grep -q "No errors were found" check.out &&
		qemu-img compare -q -f raw -F qcow2 big.raw $f &&
		test $(stat -c %s $f) -lt 27262976 || return 1
	done
'

if [ -n "$san" ]; then
	test_skip 'peak RSS: at most 16 MiB per disk stream' 'sanitizer or valgrind build'
else
	# the whole process (curl, OpenSSL, libxml2...) is ~16 MiB with one
	# stream; each stream adds its buffers, never the disk
	test_expect_success 'peak RSS: at most 16 MiB per disk stream' '
		test "$(cat rss2)" -le 32768 && test "$(cat rss)" -le 20480
	'
fi

test_done
