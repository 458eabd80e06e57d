#!/usr/bin/env bash
# h2k-fetch --format raw|qcow2|vmdk: streamOptimized disks (qemu-img's and
# ESXi's layout) and plain bytes, chunked, decoded in one pass into images
# that qemu-img compares identical and checks clean; cuts restart from 0.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/servers/nfcd-lib.sh"

if ! command -v qemu-img >/dev/null; then
	test_skip 'h2k-fetch --format' 'no qemu-img (scripts/deps installs qemu-utils)'
	test_done
fi

nfcd_start
# a disk with random data, repeated data and holes, a short last grain
{ head -c 1048576 /dev/urandom; head -c 2097152 /dev/zero; yes h2k | head -c 700000
  head -c 300000 /dev/urandom; } >disk.raw
truncate -s 5275648 disk.raw
qemu-img convert -f raw -O vmdk -o subformat=streamOptimized disk.raw srv/q
python3 "$TESTS_DIR/servers/mkstream.py" disk.raw srv/e
cp disk.raw srv/plain
F="h2k-fetch --ca-file $NFCD_CERT --retry-delay 0.05 -q"

# fetch VM URL-TAIL [flags]: one disk device
fetch() {
	local vm=$1 tail=$2
	shift 2
	lease_line "$vm" "$NFCD_URL/$tail" | $F -o out "$@" >"$vm.json" 2>"$vm.err"
}

# the file's sha256 is the one printed
sha_ok() { # VM FILE
	test "$(jget "$1.json" files.0.sha256)" = "$(sha256sum <"$2" | cut -d" " -f1)"
}

test_expect_success 'the ESXi-style stream reads right in qemu-img (oracle)' '
	qemu-img compare -q -f vmdk -F raw srv/e disk.raw
'

for src in q e plain; do
	test_expect_success "$src, chunked, --format raw: identical, sparse, fields" '
		fetch r-'$src' nolength=1/'$src' --format raw &&
		f=out/r-'$src'/disk-0.raw &&
		cmp $f disk.raw && qemu-img compare -q -f raw -F raw disk.raw $f &&
		sha_ok r-'$src' $f &&
		test "$(jget r-'$src'.json files.0.path)" = "$PWD/$f" &&
		test "$(jget r-'$src'.json files.0.format)" = raw &&
		test "$(jget r-'$src'.json files.0.capacity_bytes)" = 5275648 &&
		test "$(jget r-'$src'.json files.0.size)" = 5275648 &&
		test -z "$(jget r-'$src'.json files.0.vmdk_subformat)" &&
		alloc=$(($(stat -c %b $f) * 512)) && echo "allocated $alloc" &&
		test $alloc -le 2300000 &&
		test ! -e out/r-'$src'/disk-0.vmdk && test ! -e $f.part && test ! -e $f.part.meta
	'
	test_expect_success "$src, --format qcow2: qemu-img check clean, compare identical" '
		fetch c-'$src' nolength=1/'$src' --format qcow2 &&
		f=out/c-'$src'/disk-0.qcow2 &&
		qemu-img check $f >check.out && cat check.out &&
		grep -q "No errors were found" check.out && ! grep -qi leak check.out &&
		qemu-img compare -q -f raw -F qcow2 disk.raw $f &&
		qemu-img info --output=json $f | python3 -c "import json,sys; print(json.dumps(json.load(sys.stdin)))" >info.json &&
		test "$(jget info.json format)" = qcow2 &&
		test "$(jget info.json format-specific.data.compat)" = 1.1 &&
		test "$(jget info.json virtual-size)" = 5275648 &&
		sha_ok c-'$src' $f &&
		test "$(jget c-'$src'.json files.0.format)" = qcow2 &&
		test "$(jget c-'$src'.json files.0.size)" = "$(stat -c %s $f)"
	'
done

test_expect_success '--format vmdk (the default): saved as served, the bytes named' '
	fetch v-e nolength=1/e &&
	cmp out/v-e/disk-0.vmdk srv/e &&
	test "$(jget v-e.json files.0.format)" = vmdk &&
	test "$(jget v-e.json files.0.vmdk_subformat)" = streamOptimized &&
	test "$(jget v-e.json files.0.capacity_bytes)" = 5275648 &&
	fetch v-p -/plain --format vmdk && cmp out/v-p/disk-0.vmdk disk.raw &&
	test "$(jget v-p.json files.0.format)" = raw &&
	test -z "$(jget v-p.json files.0.vmdk_subformat)" &&
	test "$(jget v-p.json files.0.capacity_bytes)" = 5275648
'

test_expect_success 'a non-disk device (nvram) is saved as served' '
	cp disk.raw srv/nv &&
	printf "{\"name\":\"nv\",\"devices\":[{\"key\":\"k0\",\"target_id\":\"disk-0.vmdk\",\"disk\":true,\"url\":\"%s\"},{\"key\":\"k1\",\"target_id\":\"vm.nvram\",\"disk\":false,\"url\":\"%s\"}]}\n" \
		"$NFCD_URL/-/e" "$NFCD_URL/-/nv" | $F -o out --format qcow2 >nv.json &&
	cmp out/nv/vm.nvram srv/nv && qemu-img compare -q -f raw -F qcow2 disk.raw out/nv/disk-0.qcow2 &&
	test "$(jget nv.json files.1.path)" = "$PWD/out/nv/vm.nvram" &&
	test -z "$(jget nv.json files.1.format)"
'

test_expect_success 'a stream cut 3 times at random offsets restarts from 0, ends identical' '
	fetch cut nolength=1,cut=rand,times=3/e --format qcow2 &&
	qemu-img compare -q -f raw -F qcow2 disk.raw out/cut/disk-0.qcow2 &&
	qemu-img check -q out/cut/disk-0.qcow2 && sha_ok cut out/cut/disk-0.qcow2 &&
	requests /nolength=1,cut=rand,times=3/e >log && test_line_count = 4 log &&
	! grep -q "\"range\": \"bytes" log
'

test_expect_success 'a server that honours ranges still gets no Range for a converted disk' '
	fetch cutr cut=rand/q --format raw && cmp out/cutr/disk-0.raw disk.raw &&
	requests /cut=rand/q >log && test_line_count = 2 log &&
	! grep -q "\"range\": \"bytes" log
'

test_expect_success 'a .part left by an earlier run is not resumed into a converted disk' '
	mkdir -p out/left && head -c 100000 /dev/urandom >out/left/disk-0.raw.part &&
	fetch left -/e --format raw && cmp out/left/disk-0.raw disk.raw &&
	requests /-/e >log && ! grep -q "\"range\": \"bytes" log
'

test_expect_success 'a clash with an existing name follows the naming rule' '
	printf "{\"name\":\"cl\",\"devices\":[{\"key\":\"k0\",\"target_id\":\"disk-0.vmdk\",\"disk\":true,\"url\":\"%s\"},{\"key\":\"k1\",\"target_id\":\"disk-0.raw\",\"disk\":false,\"url\":\"%s\"}]}\n" \
		"$NFCD_URL/-/e" "$NFCD_URL/-/nv" | $F -o out --format raw >cl.json &&
	jget cl.json files.*.path >paths && sort -u paths >upaths && test_line_count = 2 upaths &&
	cmp "$(jget cl.json files.0.path)" disk.raw && cmp "$(jget cl.json files.1.path)" srv/nv
'

test_expect_success '--format with a bad value: exit 2, one line' '
	expect_code 2 h2k-fetch -o out --format vhd </dev/null 2>err &&
	test_one_line err && grep -q "format vhd: want vmdk, raw or qcow2" err
'

test_done
