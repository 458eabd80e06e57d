#!/usr/bin/env bash
# A download never gets a name h2k-ovf writes itself.  h2k-fetch keeps
# NAME.ovf, NAME.mf and NAME.ova of the VM for h2k-ovf (a device whose
# target id is one of them gets NAME-2.ovf ...); h2k-ovf, whose input may
# come from elsewhere, refuses a line whose files[] holds such a name before
# it writes anything: exit 2, one line naming the file, the disk unchanged.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/servers/nfcd-lib.sh"

nfcd_start
mkdisk d 40000
U="$NFCD_URL/-/d"

test_expect_success 'h2k-fetch: target ids NAME.ovf, NAME.mf, NAME.ova get other names' '
	printf "{\"name\":\"evil\",\"devices\":[%s,%s,%s,%s]}\n" \
		"{\"key\":\"a\",\"target_id\":\"evil.ovf\",\"disk\":true,\"url\":\"$U\"}" \
		"{\"key\":\"b\",\"target_id\":\"evil.mf\",\"disk\":true,\"url\":\"$U\"}" \
		"{\"key\":\"c\",\"target_id\":\"evil.ova\",\"disk\":true,\"url\":\"$U\"}" \
		"{\"key\":\"e\",\"target_id\":\"disk.vmdk\",\"disk\":true,\"url\":\"$U\"}" |
		h2k-fetch --ca-file "$NFCD_CERT" -q -o o1 >line 2>err &&
	test_line_count = 0 err &&
	(cd o1/evil && ls) >names &&
	printf "%s\n" disk.vmdk evil-2.mf evil-2.ova evil-2.ovf >expect &&
	test_cmp expect names &&
	jget line files.*.path | sed "s,.*/,," >paths &&
	printf "%s\n" evil-2.ovf evil-2.mf evil-2.ova disk.vmdk >expect &&
	test_cmp expect paths &&
	test "$(jget line files.0.target_id)" = evil.ovf &&
	for f in o1/evil/*; do cmp "$f" srv/d || exit 1; done
'

test_expect_success 'h2k-fetch: the VM name is sanitised the way h2k-ovf does it' '
	printf "{\"name\":\"a/b\",\"devices\":[{\"key\":\"a\",\"target_id\":\"a_b.ovf\",\"disk\":true,\"url\":\"$U\"}]}\n" |
		h2k-fetch --ca-file "$NFCD_CERT" -q -o o1 >line2 2>err &&
	test "$(jget line2 files.0.path | sed "s,.*/,,")" = a_b-2.ovf
'
nfcd_stop

sim_start -vm 1 -disks 1 -disk-size 256K -disk-fill random -power off
h2k_login_sim || { echo "Bail out! login failed"; exit 1; }
VM=DC0_H0_VM0

test_expect_success 'setup: one downloaded VM' '
	h2k-lease /DC0/vm/$VM | h2k-fetch -q -o exp >line &&
	test "$(jget line files.*.path | wc -l)" -ge 1
'

# rename_line NEWNAME DIR: a copy of line whose first file, copied into DIR,
# is called NEWNAME there (files[].path and target_id follow).
rename_line() {
	python3 - "$TRASH/line" "$1" "$TRASH/$2" <<-\PY
	import json, os, shutil, sys
	o = json.loads(open(sys.argv[1]).read())
	new, d = sys.argv[2], sys.argv[3]
	os.makedirs(d)
	for i, f in enumerate(o["files"]):
	    dst = os.path.join(d, new if i == 0 else os.path.basename(f["path"]))
	    shutil.copy(f["path"], dst)
	    f["path"] = dst
	o["files"][0]["target_id"] = new
	o["dir"] = d
	print(json.dumps(o))
	PY
}

for ext in ovf mf ova ova.part; do
	test_expect_success "h2k-ovf: a download named $VM.$ext is refused, exit 2, disk unchanged" '
		rename_line '$VM.$ext' c-'$ext' >in-'$ext' &&
		cp c-'$ext'/'$VM.$ext' disk-'$ext'.orig && ls -A c-'$ext' >before &&
		expect_code 2 h2k-ovf --ova --keep-lease <in-'$ext' >json 2>err &&
		test_line_count = 0 json && test_one_line err &&
		grep -qF "c-'$ext'/'$VM.$ext'" err &&
		cmp c-'$ext'/'$VM.$ext' disk-'$ext'.orig &&
		ls -A c-'$ext' >after && test_cmp before after
	'
done

test_expect_success 'h2k-ovf: a temporary name of the descriptor is refused too' '
	rename_line ".$VM.ovf.AbCdEf" c-tmp >in-tmp &&
	expect_code 2 h2k-ovf --keep-lease <in-tmp >json 2>err &&
	test_one_line err && grep -qF ".$VM.ovf.AbCdEf" err &&
	test ! -e c-tmp/$VM.ovf && test ! -e c-tmp/$VM.mf
'

test_expect_success 'the line as h2k-fetch wrote it still goes through' '
	h2k-ovf --ova <line >json 2>err &&
	test "$(jget json lease.state)" = completed &&
	d=$(jget line dir) && test -f "$d/$VM.ovf" && test -f "$d/$VM.ova" &&
	test "$(grep -c "^SHA256($VM.ovf)" "$d/$VM.mf")" = 1 &&
	test "$(sed "s/^SHA256(\(.*\))=.*/\1/" "$d/$VM.mf" | sort | uniq -d | wc -l)" = 0
'

test_done
