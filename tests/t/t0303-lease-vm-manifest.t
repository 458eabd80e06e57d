#!/usr/bin/env bash
# A VM named on h2k-lease's command line (by path, and by moref through
# h2k-export, as h2k-job's runner names it) reaches hyper2kvm's manifest
# whole: its NICs with their network names, datacenter, host, CPU, memory
# and firmware are h2k-ls's, and hyper2kvm 0.2.1's own loader takes the
# manifest with those NICs (issue 15 follow-up).
# SPDX-License-Identifier: LGPL-3.0-or-later
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/h2kvm-lib.sh"

h2kvm_need

sim_start -vm 2 -disks 1 -disk-size 256K -disk-fill random -power off
h2k_login_sim || { echo "Bail out! login to the rig failed"; exit 1; }
VM=/DC0/vm/DC0_H0_VM1

# check MANIFEST LS: the manifest's VM is the one of h2k-ls's line LS, and
# hyper2kvm's loader takes it with the same NICs.
check() {
	"$(dirname "$H2KVM")/python" - "$@" <<'PY'
import json, math, sys
from hyper2kvm.manifest.loader import ManifestLoader
l = ManifestLoader()
m = l.load(sys.argv[1])
ls = json.loads(open(sys.argv[2]).readline())
def need(c, what):
    if not c:
        sys.exit("wrong: %s: manifest %s" % (what, json.dumps(m)))
need(len(ls["nics"]) == 2, "two NICs in h2k-ls's line")
nics = l.get_nics()
need([n["network"] for n in nics] == [n["network"] for n in ls["nics"]], "nics network")
need([n["mac"] for n in nics] == [n["mac"] for n in ls["nics"]], "nics mac")
need(all(n["network"] for n in nics), "no empty network")
src = l.get_source_metadata()
need(src["vm_name"] == ls["name"] and src["vm_id"] == ls["moref"], "vm_name, vm_id")
need(src["inventory_path"] == ls["path"], "inventory_path")
need(src["datacenter"] == ls["datacenter"] and src["datacenter"], "datacenter")
need(src["host"] == ls["host"] and src["host"], "host")
vm = l.get_vm_metadata()
need(vm["cpu"] == ls["num_cpu"], "cpu")
need(vm["mem_gb"] == max(1, math.ceil(ls["memory_mb"] / 1024)), "mem_gb")
need(vm["firmware"] == {"bios": "bios", "efi": "uefi"}[ls["firmware"]], "firmware")
need(len(l.get_disks()) == 2 and all(l.verify_checksums().values()), "disks")
PY
}

test_expect_success 'setup: a second NIC, on a standard network beside the portgroup' '
	govc_ vm.network.add -vm "$VM" -net "VM Network" >/dev/null &&
	h2k-ls "$VM" >ls && test_line_count = 1 ls &&
	test "$(jq ".nics | length" ls)" = 2 &&
	test "$(jq -r ".nics[].network" ls | sort -u | wc -l)" = 2
'

test_expect_success 'h2k-lease PATH | h2k-fetch | h2k-ovf --hyper2kvm-manifest: the NICs are in' '
	h2k-lease "$VM" | h2k-fetch -o exp | h2k-ovf --hyper2kvm-manifest >line 2>err &&
	test_line_count = 1 line &&
	m=$(jget line hyper2kvm_manifest_path) && test -f "$m" &&
	test "$(jq -c "[.nics[].network]" "$m")" = "$(jq -c "[.nics[].network]" ls)" &&
	check "$m" ls
'

test_expect_success 'the line h2k-ovf wrote still carries h2k-ls'"'"'s fields' '
	jq -c "{name,path,moref,datacenter,host,num_cpu,memory_mb,firmware,nics,disks,datastores}" ls >expect &&
	jq -c "{name,path,moref,datacenter,host,num_cpu,memory_mb,firmware,nics,disks,datastores}" line >actual &&
	test_cmp expect actual
'

test_expect_success 'h2k-export MOREF --hyper2kvm-manifest (how h2k-job runs it): the same' '
	moref=$(jq -r .moref ls) &&
	h2k-export -o exp2 --hyper2kvm-manifest "$moref" >line2 2>err2 &&
	test_line_count = 1 line2 &&
	m2=$(jget line2 hyper2kvm_manifest_path) && test -f "$m2" &&
	check "$m2" ls &&
	test "$(jq -c "{vm, nics, source: (.source | del(.server))}" "$m2")" = \
		"$(jq -c "{vm, nics, source: (.source | del(.server))}" "$(jget line hyper2kvm_manifest_path)")"
'

test_done
