#!/usr/bin/env bash
# source_format is what the bytes are: a rig disk that is a real
# streamOptimized VMDK (made by qemu-img) goes into the manifest as vmdk,
# streamOptimized, with the capacity of its header, the other as raw;
# hyper2kvm 0.2.1 converts both, and each qcow2 holds the guest's bytes.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/h2kvm-lib.sh"

h2kvm_need

sim_start -vm 1 -cluster 0 -disks 1 -disk-size 1M -disk-fill random -power off
h2k_login_sim || { echo "Bail out! login failed"; exit 1; }
VM=/DC0/vm/DC0_H0_VM0

test_expect_success 'the rig serves a streamOptimized VMDK as the first disk' '
	f=$(find "$SIM_DSDIR" -path "*/DC0_H0_VM0/disk1.vmdk" -type f) && test -n "$f" &&
	head -c 3145728 /dev/urandom >guest.raw &&
	truncate -s 4M guest.raw &&
	qemu-img convert -f raw -O vmdk -o subformat=streamOptimized guest.raw so.vmdk &&
	test "$(head -c 4 so.vmdk)" = KDMV &&
	cp so.vmdk "$f"
'

test_expect_success 'exported: the manifest says vmdk streamOptimized and raw' '
	h2k-lease "$VM" | h2k-fetch -o exp | h2k-ovf --hyper2kvm-manifest >line 2>err &&
	m=$(jget line hyper2kvm_manifest_path) &&
	jq -r ".disks[] | [.label, .source_format, (.vmdk_subformat // \"-\"), (.capacity_bytes // 0)] | @tsv" "$m" >got &&
	printf "disk-0.vmdk\tvmdk\tstreamOptimized\t4194304\ndisk-1.vmdk\traw\t-\t1048576\n" >want &&
	test_cmp want got &&
	cmp so.vmdk "$(jget line files.0.path)"
'

test_expect_success 'hyper2kvm converts both; the qcow2 of the VMDK holds the guest bytes' '
	m=$(jget line hyper2kvm_manifest_path) &&
	h2kvm --manifest "$m" >h.log 2>&1 || { tail -n 20 h.log; false; } &&
	grep "Checksum verified" h.log >v && test_line_count = 2 v &&
	out=$(jq -r .output.directory "$m") &&
	qemu-img compare -q -f qcow2 -F raw "$out/disk-0.qcow2" guest.raw &&
	qemu-img compare -q -f qcow2 -F vmdk "$out/disk-0.qcow2" "$(jget line files.0.path)" &&
	qemu-img compare -q -f qcow2 -F raw "$out/disk-1.qcow2" "$(jget line files.1.path)"
'

test_done
