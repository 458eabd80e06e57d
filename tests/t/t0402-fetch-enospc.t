#!/usr/bin/env bash
# h2k-fetch on a full disk: exit 8 naming the file, .part kept, nothing renamed.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/servers/nfcd-lib.sh"

nfcd_start
mkdisk big 3000000
mkdisk small 100000
mkdir small-fs
if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=1m h2k-test "$TRASH/small-fs" 2>/dev/null; then
	test_atexit 'umount "$TRASH/small-fs" 2>/dev/null || :'

	test_expect_success 'disk full while writing: exit 8, error names the file, .part stays' '
		lease_line full "$NFCD_URL/-/big" >in &&
		expect_code 8 h2k-fetch --ca-file "$NFCD_CERT" -q -o small-fs <in >out.json 2>err &&
		test_one_line err &&
		grep -q "small-fs/full/disk-0.vmdk.part: write: No space left on device" err &&
		test -f small-fs/full/disk-0.vmdk.part && test ! -e small-fs/full/disk-0.vmdk &&
		test ! -s out.json
	'

	test_expect_success 'the kept prefix is a true prefix of the file' '
		n=$(stat -c %s small-fs/full/disk-0.vmdk.part) && test "$n" -gt 0 &&
		cmp -n "$n" small-fs/full/disk-0.vmdk.part srv/big
	'

	test_expect_success 'the VM that fits completes, the other fails: exit 5' '
		rm -rf small-fs/* &&
		{ lease_line fits "$NFCD_URL/-/small"; lease_line full2 "$NFCD_URL/-/big"; } |
		expect_code 5 h2k-fetch --ca-file "$NFCD_CERT" -q -j 1 -o small-fs >out.json 2>err &&
		grep -q "\"name\":\"fits\"" out.json && cmp small-fs/fits/disk-0.vmdk srv/small &&
		test ! -e small-fs/full2/disk-0.vmdk
	'
	umount "$TRASH/small-fs"
else
	test_skip 'disk full while writing' 'cannot mount a tmpfs here (needs root)'
	test_skip 'the kept prefix is a true prefix of the file' 'no tmpfs'
	test_skip 'a small disk of another VM still completes' 'no tmpfs'
fi

test_expect_success 'output folder not writable: exit 8 naming it' '
	mkdir ro && chmod 500 ro &&
	if [ "$(id -u)" = 0 ]; then
		# root ignores modes: use a file where the folder should be
		rm -rf ro && : >ro
	fi &&
	lease_line rovm "$NFCD_URL/-/small" >in &&
	expect_code 8 h2k-fetch --ca-file "$NFCD_CERT" -o ro <in 2>err &&
	grep -q "ro" err && test_one_line err
'

nfcd_stop
test_done
