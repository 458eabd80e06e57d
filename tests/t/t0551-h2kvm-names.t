#!/usr/bin/env bash
# The hyper2kvm manifest of a VM with an odd name (spaces, quotes, a
# backslash, a tab, non-ASCII, U+2028: everything JSON must escape or
# carry as UTF-8) loads in hyper2kvm 0.2.1's own loader, names the VM as
# vSphere does and points at the right files; hyper2kvm converts it into
# an output directory with an odd name too.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/h2kvm-lib.sh"

h2kvm_need

sim_start -vm 2 -disks 1 -disk-size 512K -disk-fill random -power off
h2k_login_sim || { echo "Bail out! login failed"; exit 1; }

ODD=$'odd "VM" it\'s \\ caf\u00e9 \u2603 tab\there \u2028end'
OUTDIR="$TRASH/out \"kvm\" caf"$'\u00e9'

# load MANIFEST LINE NAME: hyper2kvm's loader takes the manifest, the VM is
# NAME, each disk is the file of the line (same inode) and its checksum
# verifies.
load() {
	"$(dirname "$H2KVM")/python" - "$@" <<'PY'
import json, os, sys
from hyper2kvm.manifest.loader import ManifestLoader
l = ManifestLoader()
m = l.load(sys.argv[1])
line = json.loads(open(sys.argv[2], encoding="utf-8").readline())
if m["source"]["vm_name"] != sys.argv[3] or line["name"] != sys.argv[3]:
    sys.exit("vm_name %r, line %r, want %r" % (m["source"]["vm_name"], line["name"], sys.argv[3]))
disks = l.get_disks()
if len(disks) != len(line["files"]) or len(disks) != 2:
    sys.exit("%d disks" % len(disks))
for d, f in zip(disks, line["files"]):
    if not os.path.samefile(d.local_path, f["path"]):
        sys.exit("%s is not %s" % (d.local_path, f["path"]))
if not all(l.verify_checksums().values()):
    sys.exit("checksums")
print(m["output"]["directory"])
PY
}

test_expect_success 'the VM gets its odd name on the rig' '
	moref=$(h2k-ls /DC0/vm/DC0_H0_VM1 | jq -r .moref) && test -n "$moref" &&
	echo "$moref" >moref &&
	govc_ vm.change -vm /DC0/vm/DC0_H0_VM1 -name "$ODD" &&
	h2k-ls | jq -c --arg m "$moref" "select(.moref == \$m)" >vm.json &&
	test_line_count = 1 vm.json && test "$(jq -r .name vm.json)" = "$ODD"
'

test_expect_success 'exported with --hyper2kvm-manifest, the manifest loads and points at its files' '
	h2k-lease <vm.json | h2k-fetch -o exp | h2k-ovf --hyper2kvm-manifest --hyper2kvm-output "$OUTDIR" >line 2>err &&
	test_line_count = 1 line &&
	m=$(jget line hyper2kvm_manifest_path) && test -f "$m" &&
	test_line_count = 1 "$m" &&
	load "$m" line "$ODD" >outdir &&
	test "$(cat outdir)" = "$OUTDIR/$(basename "$(jget line dir)")"
'

test_expect_success 'the JSON escapes what it must: one line, no raw tab or U+2028' '
	m=$(jget line hyper2kvm_manifest_path) &&
	! grep -q "$(printf "\t")" "$m" &&
	! grep -q $'"'"'\u2028'"'"' "$m" &&
	grep -q "\\\\u2028" "$m"
'

test_expect_success 'hyper2kvm --manifest converts it: exit 0, disks identical' '
	h2kvm --manifest "$(jget line hyper2kvm_manifest_path)" >h.log 2>&1 ||
		{ tail -n 20 h.log; false; } &&
	grep "Checksum verified" h.log >v && test_line_count = 2 v &&
	jq -r ".disks[] | .id + \" \" + .local_path" "$(jget line hyper2kvm_manifest_path)" >ids &&
	test_line_count = 2 ids &&
	while read -r id src; do
		qemu-img compare -q -f qcow2 -F raw "$(cat outdir)/$id.qcow2" "$src" || exit 1
	done <ids
'

test_done
