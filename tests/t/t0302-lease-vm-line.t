#!/usr/bin/env bash
# h2k-lease given a VM by path or by moref writes, before lease and
# devices, the very line h2k-ls writes for that VM (issue 15 follow-up):
# nics with their network names, datacenter, host, datastores, disks, in
# h2k-ls's order; for every VM of a rig whose datacenter sits in a folder,
# one of them two folders deeper and with a second NIC on a standard
# network beside its portgroup.  The lookup's round trips do not grow with
# the depth of the VM's folder.
# SPDX-License-Identifier: LGPL-3.0-or-later
. "$(dirname "$0")/../lib.sh"

sim_start -vm 2 -disks 1 -disk-size 64K -power off -folder 1
h2k_login_sim || { echo "Bail out! login to the rig failed"; exit 1; }
VMF=/F0/DC0/vm/F0
DEEP=$VMF/sub/deep/DC0_C0_RP0_VM1

# same LS LEASE: LEASE's line without lease and devices is LS's line,
# field for field and in the same order.
same() {
	jq -c . "$1" >expect && jq -c "del(.lease, .devices)" "$2" >actual &&
	test_line_count = 1 expect && test_cmp expect actual
}

# calls ERR: the SOAP calls h2k-lease made before ExportVm, one per line.
calls() {
	sed -n "s/^h2k-lease: debug: \([A-Za-z]*\): HTTP .*/\1/p" "$1" |
		sed "/^ExportVm$/,\$d" | grep -v "^RetrieveServiceContent$"
}

test_expect_success 'setup: a VM two folders deeper, with a second NIC' '
	govc_ folder.create $VMF/sub >/dev/null &&
	govc_ folder.create $VMF/sub/deep >/dev/null &&
	govc_ object.mv $VMF/DC0_C0_RP0_VM1 $VMF/sub/deep >/dev/null 2>&1 &&
	govc_ vm.network.add -vm "$DEEP" -net "VM Network" >/dev/null &&
	h2k-ls >ls && test_line_count = 4 ls &&
	test "$(jq -r "select(.path == \"$DEEP\") | .nics | length" ls)" = 2
'

test_expect_success 'the oracle: the deep VM is attached to the networks govc names' '
	govc_ object.collect -s "$DEEP" network | tr " ," "\n\n" | grep . >refs &&
	test_line_count = 2 refs &&
	while read -r ref; do govc_ ls -L "$ref" || exit 1; done <refs |
		sed "s,.*/,," | sort >expect &&
	jq -r "select(.path == \"$DEEP\") | .nics[].network" ls | sort >actual &&
	test_cmp expect actual
'

test_expect_success 'every VM by path: h2k-ls'"'"'s line, then lease and devices' '
	jq -r .path ls >paths && test_line_count = 4 paths &&
	while read -r p; do
		jq -c "select(.path == \"$p\")" ls >one &&
		h2k-lease "$p" >out 2>err && test_line_count = 0 err &&
		same one out &&
		test "$(jget out lease.mode)" = export &&
		test "$(jget out devices.*.disk | grep -c true)" = 2 || exit 1
	done <paths
'

test_expect_success 'every VM by moref: the same line' '
	jq -r .moref ls >morefs && test_line_count = 4 morefs &&
	while read -r m; do
		jq -c "select(.moref == \"$m\")" ls >one &&
		h2k-lease "$m" >out 2>err && test_line_count = 0 err &&
		same one out || exit 1
	done <morefs
'

test_expect_success 'the fields the manifest needs are there and not null' '
	h2k-lease "$DEEP" >out &&
	test "$(jget out datacenter)" = DC0 &&
	test "$(jget out path)" = "$DEEP" &&
	jget out host | grep -q "^DC0_C0_H" &&
	test "$(jq -c "[.num_cpu, .memory_mb, .firmware]" out)" = \
		"$(jq -c "select(.path == \"$DEEP\") | [.num_cpu, .memory_mb, .firmware]" ls)" &&
	jget out nics.*.network >nets && test_line_count = 2 nets &&
	! grep -qx null nets && jget out disks.*.datastore >dss &&
	test_line_count = 2 dss && ! grep -qx null dss
'

test_expect_success 'a unique name gives the same line too' '
	jq -c "select(.name == \"DC0_H0_VM0\")" ls >one &&
	h2k-lease DC0_H0_VM0 >out && same one out
'

test_expect_success 'round trips: as many for the deep VM as for a shallow one, at most 4' '
	H2K_LOG_LEVEL=debug h2k-lease "$DEEP" >out 2>err.deep &&
	H2K_LOG_LEVEL=debug h2k-lease $VMF/DC0_H0_VM1 >out 2>err.top &&
	calls err.deep >deep && calls err.top >top &&
	test_cmp top deep && test_line_count -le 4 deep &&
	test "$(head -n 1 deep)" = FindByInventoryPath &&
	m=$(jq -r "select(.path == \"$DEEP\") | .moref" ls) &&
	H2K_LOG_LEVEL=debug h2k-lease "$m" >out 2>err.moref &&
	calls err.moref >moref && test_line_count -le 3 moref &&
	! grep -v "^RetrievePropertiesEx$" moref
'

test_expect_success 'a moref the server does not know: exit 6, named' '
	expect_code 6 h2k-lease vm-999999 >out 2>err &&
	test_line_count = 0 out && test_one_line err &&
	grep -q "^h2k-lease: vm-999999: no such VM" err
'

test_done
