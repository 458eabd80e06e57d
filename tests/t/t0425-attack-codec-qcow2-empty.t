#!/usr/bin/env bash
# attack (issue 13): edge-sized disks written as qcow2 must pass
# `qemu-img check` with no errors and no leaks, and compare identical to
# what was served.  An empty disk (a plain body of 0 bytes) got an L1
# cluster that nothing referenced: "1 leaked clusters", qemu-img check
# exit 3.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/servers/nfcd-lib.sh"

if ! command -v qemu-img >/dev/null; then
	test_skip 'qcow2 of edge-sized disks' 'no qemu-img'
	test_done
fi
nfcd_start
: >"$TRASH/srv/empty"
head -c 100 /dev/urandom >"$TRASH/srv/tiny"
head -c 1234567 /dev/urandom >"$TRASH/srv/odd"
F="h2k-fetch --ca-file $NFCD_CERT --retry-delay 0.01 --retries 1 -q"

for d in empty tiny odd; do
	test_expect_success "a $d plain disk as qcow2: exit 0, qemu-img check clean, identical" '
		lease_line '$d' "$NFCD_URL/nolength=1/'$d'" |
		expect_code 0 $F -o out --format qcow2 >'$d'.json &&
		qemu-img check out/'$d'/disk-0.qcow2 >ck.out 2>&1; rc=$?; cat ck.out;
		test "$rc" = 0 && ! grep -q -i leak ck.out &&
		qemu-img compare -f raw -F qcow2 srv/'$d' out/'$d'/disk-0.qcow2
	'
done

test_done
