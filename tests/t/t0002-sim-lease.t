#!/usr/bin/env bash
# The rig's export leases over time: timeout without HttpNfcLeaseProgress,
# renewal by progress, a throttled download cut by expiry, ExportSnapshot
# leases under the same clock, -disk-fill pattern, -nfc-stream.
# SPDX-License-Identifier: LGPL-3.0-or-later
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/sim/soap.sh"

sim_start -power off -vm 1 -cluster 0 -disk-size 2M -disk-fill pattern \
	-lease-timeout 2 -nfc-bps 524288
disk=$SIM_DSDIR/DC0-LocalDS_0/DC0_H0_VM0/disk1.vmdk

test_expect_success '-disk-fill pattern stamps every sector with VM, disk and number' '
	test "$(stat -c %s "$disk")" = 2097152 &&
	printf "h2k-sim DC0_H0_VM0 disk 0 sector 0\n" >expect &&
	head -c 35 "$disk" >out && test_cmp expect out &&
	printf "h2k-sim DC0_H0_VM0 disk 0 sector 4095\n" >expect &&
	dd if="$disk" bs=512 skip=4095 count=1 2>/dev/null | head -c 38 >out && test_cmp expect out &&
	test "$(dd if="$disk" bs=1 skip=1023 count=1 2>/dev/null | od -An -tu1 | tr -d " ")" = 1
'

test_expect_success 'a lease with no progress goes to error after -lease-timeout' '
	soap_login >/dev/null && vm=$(sim_moref /DC0/vm/DC0_H0_VM0) &&
	lease=$(soap_export "$vm" | soap_lease_ref) && test -n "$lease" &&
	test "$(soap_lease_wait "$lease")" = ready &&
	soap_lease_urls "$lease" >urls && test_line_count = 1 urls &&
	soap_lease_prop "$lease" info | grep -q "<leaseTimeout>2</leaseTimeout>" &&
	sleep 3 &&
	test "$(soap_lease_state "$lease")" = error &&
	soap_lease_prop "$lease" error >err.xml &&
	grep -q "type=\"Timedout\"" err.xml && grep -q "received no progress for 2s" err.xml &&
	echo "$lease" >expired
'

test_expect_success '... its URL answers 404' '
	code=$(curl -sS --cacert "$SIM_CERT" -o /dev/null -w "%{http_code}" "$(cat urls)") &&
	test "$code" = 404
'

test_expect_success '... and Progress, Complete, Abort get a Timedout fault' '
	lease=$(cat expired) &&
	for m in HttpNfcLeaseProgress HttpNfcLeaseComplete HttpNfcLeaseAbort; do
		extra= && test $m = HttpNfcLeaseProgress && extra="<urn:percent>10</urn:percent>"
		soap_lease_call $m "$lease" "$extra" >out &&
		grep -q "xsi:type=\"Timedout\"" out && grep -q "<faultstring>The operation timed out" out ||
			{ echo "$m:"; cat out; exit 1; }
	done
'

test_expect_success 'HttpNfcLeaseProgress renews the lease past its timeout' '
	vm=$(sim_moref /DC0/vm/DC0_H0_VM0) &&
	lease=$(soap_export "$vm" | soap_lease_ref) &&
	test "$(soap_lease_wait "$lease")" = ready &&
	for i in 1 2 3 4 5; do
		sleep 0.8 &&
		soap_lease_call HttpNfcLeaseProgress "$lease" "<urn:percent>$((i * 10))</urn:percent>" |
			grep -q HttpNfcLeaseProgressResponse || exit 1
	done &&
	test "$(soap_lease_state "$lease")" = ready &&
	url=$(soap_lease_urls "$lease") &&
	curl -sS --fail --cacert "$SIM_CERT" -r 0-4095 -o part "$url" &&
	head -c 4096 "$disk" | cmp - part &&
	soap_lease_call HttpNfcLeaseAbort "$lease" | grep -q HttpNfcLeaseAbortResponse &&
	code=$(curl -sS --cacert "$SIM_CERT" -o /dev/null -w "%{http_code}" "$url") &&
	test "$code" = 404
'

test_expect_success 'a throttled download that outlasts the lease is cut when it expires' '
	vm=$(sim_moref /DC0/vm/DC0_H0_VM0) &&
	lease=$(soap_export "$vm" | soap_lease_ref) &&
	test "$(soap_lease_wait "$lease")" = ready &&
	url=$(soap_lease_urls "$lease") &&
	! curl -sS --cacert "$SIM_CERT" -o cut -w "%{time_total}\n" "$url" >time 2>curl.err &&
	n=$(stat -c %s cut) && echo "got $n bytes in $(cat time) s" &&
	test "$n" -gt 262144 && test "$n" -lt 2097152 &&
	head -c "$n" "$disk" | cmp - cut
'

test_expect_success '... and with progress sent meanwhile it completes, byte-identical' '
	vm=$(sim_moref /DC0/vm/DC0_H0_VM0) &&
	lease=$(soap_export "$vm" | soap_lease_ref) &&
	test "$(soap_lease_wait "$lease")" = ready &&
	url=$(soap_lease_urls "$lease") || exit 1
	( for i in 1 2 3 4 5 6 7; do
		sleep 0.7; soap_lease_call HttpNfcLeaseProgress "$lease" "<urn:percent>50</urn:percent>" >/dev/null
	done ) &
	curl -sS --fail --cacert "$SIM_CERT" -o full -w "%{time_total}\n" "$url" >time &&
	wait &&
	cmp full "$disk" &&
	awk "{ exit !(\$1 >= 3.5) }" time
'

test_expect_success 'ExportSnapshot (vcsim code): leaseTimeout and fileSize filled in, same bytes, same clock' '
	govc_ snapshot.create -vm DC0_H0_VM0 s1 &&
	snap=$(govc_ snapshot.tree -vm DC0_H0_VM0 -i | sed -n "s/^\[\(snapshot-[0-9]*\)\] *s1$/\1/p") &&
	test -n "$snap" &&
	lease=$(soap "<urn:ExportSnapshot><urn:_this type=\"VirtualMachineSnapshot\">$snap</urn:_this></urn:ExportSnapshot>" |
		soap_lease_ref) && test -n "$lease" &&
	test "$(soap_lease_wait "$lease")" = ready &&
	soap_lease_prop "$lease" info >info.xml &&
	grep -q "<totalDiskCapacityInKB>2048</totalDiskCapacityInKB><leaseTimeout>2</leaseTimeout>" info.xml &&
	grep -q "<targetId>disk1.vmdk</targetId><fileSize>2097152</fileSize>" info.xml &&
	url=$(soap_lease_urls "$lease") &&
	curl -sS --fail --cacert "$SIM_CERT" -r 512-65535 -o part "$url" &&
	dd if="$disk" bs=512 skip=1 count=127 2>/dev/null | cmp - part &&
	sleep 3 && test "$(soap_lease_state "$lease")" = error
'

sim_stop
sim_start -power off -vm 1 -cluster 0 -disk-size 64K -disk-capacity 1G -nfc-stream \
	-fault ExportVm:TaskInProgress:1

test_expect_success 'fault rules apply to the methods the rig adds (ExportVm)' '
	soap_login >/dev/null && vm=$(sim_moref /DC0/vm/DC0_H0_VM0) &&
	soap_export "$vm" >out && grep -q "xsi:type=\"TaskInProgress\"" out &&
	grep -q "<faultstring>h2k-sim: injected TaskInProgress</faultstring>" out
'

test_expect_success '-disk-capacity: capacity apart from the bytes served' '
	vm=$(sim_moref /DC0/vm/DC0_H0_VM0) &&
	lease=$(soap_export "$vm" | soap_lease_ref) && test -n "$lease" &&
	test "$(soap_lease_wait "$lease")" = ready &&
	soap_lease_prop "$lease" info | grep -q "<totalDiskCapacityInKB>1048576</totalDiskCapacityInKB>" &&
	soap_lease_call HttpNfcLeaseAbort "$lease" >/dev/null &&
	govc_ device.info -vm DC0_H0_VM0 "disk-*" | grep -q "Summary: *1048576 KB"
'

test_expect_success '-nfc-stream: no fileSize, chunked body, no ranges, same bytes' '
	disk=$SIM_DSDIR/DC0-LocalDS_0/DC0_H0_VM0/disk1.vmdk &&
	test "$(stat -c %s "$disk")" = 65536 && vm=$(sim_moref /DC0/vm/DC0_H0_VM0) &&
	lease=$(soap_export "$vm" | soap_lease_ref) &&
	test "$(soap_lease_wait "$lease")" = ready &&
	soap_lease_prop "$lease" info >info.xml && ! grep -q "<fileSize>[1-9]" info.xml &&
	url=$(soap_lease_urls "$lease") &&
	curl -sS --fail --cacert "$SIM_CERT" -D hdr -r 0-99 -o body "$url" &&
	grep -q "^HTTP/[0-9.]* 200" hdr && ! grep -qi "^content-length:" hdr &&
	grep -qi "^transfer-encoding: chunked" hdr && cmp body "$disk"
'

test_done
