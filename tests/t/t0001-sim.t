#!/usr/bin/env bash
# The vSphere rig itself: TLS and its env file, ExportVm, CreateDescriptor,
# govc export.ovf | import.ovf round trip with byte-identical disks, fault
# rules, clean stop.
# SPDX-License-Identifier: LGPL-3.0-or-later
. "$(dirname "$0")/../lib.sh"

. "$TESTS_DIR/sim/soap.sh"

test_expect_code 2 'a bad flag is refused with one line and exit 2' '
	"$SIM_BIN" -power sideways 2>err
'
test_expect_success '... naming the flag' '
	test_one_line err && grep -q -- "-power" err
'

test_expect_success 'so are an unknown flag and a bad number; -h lists every knob' '
	expect_code 2 "$SIM_BIN" -nope 2>err && test_one_line err && grep -q -- "-nope" err &&
	expect_code 2 "$SIM_BIN" -vm many 2>err && test_one_line err && grep -q -- "-vm" err &&
	"$SIM_BIN" -h >usage &&
	for f in env listen esx dc cluster host standalone vm pool folder username password \
		disks disk-size disk-fill seed power session-timeout fault nfc-bps lease-timeout max-life; do
		grep -q "^  -$f\b" usage || { echo "-$f missing"; exit 1; }
	done
'

sim_start -power mixed -disks 1 -disk-size 1M -disk-fill random -seed 7 -lease-init 2s \
	-fault CreateFolder:DuplicateName:1

test_expect_success 'env file: every variable, https URL on 127.0.0.1, PEM present' '
	for v in SIM_URL SIM_HOST SIM_USER SIM_PASSWORD SIM_THUMBPRINT \
		SIM_THUMBPRINT_SHA1 SIM_CERT SIM_DSDIR SIM_PID; do
		eval "test -n \"\${$v:-}\"" || { echo "$v unset"; exit 1; }
	done &&
	case $SIM_URL in https://127.0.0.1:*/sdk) ;; *) exit 1;; esac &&
	test "$SIM_URL" = "https://$SIM_HOST/sdk" &&
	kill -0 "$SIM_PID" &&
	grep -q "BEGIN CERTIFICATE" "$SIM_CERT" && test -d "$SIM_DSDIR" &&
	grep -q "^SIM_URL=$SIM_URL" "$TRASH/sim.log"
'

test_expect_success 'govc about works with -k' '
	govc_ about >out && grep -q "API type: *VirtualCenter" out
'

test_expect_success 'the PEM is a trust anchor for 127.0.0.1 and localhost (curl, govc)' '
	curl -sS --cacert "$SIM_CERT" -o /dev/null "https://$SIM_HOST/about" &&
	curl -sS --cacert "$SIM_CERT" -o /dev/null "https://localhost:${SIM_HOST#*:}/about" &&
	GOVC_URL="$SIM_URL" GOVC_USERNAME="$SIM_USER" GOVC_PASSWORD="$SIM_PASSWORD" \
		GOVC_TLS_CA_CERTS="$SIM_CERT" "$GOVC" about >/dev/null
'

test_expect_code 60 'without it, verification fails (curl exit 60)' '
	curl -sS -o /dev/null "https://$SIM_HOST/about"
'

test_expect_success 'thumbprints equal govc about.cert -thumbprint and SHA-1 of the DER' '
	govc_ about.cert -thumbprint >out &&
	echo "$SIM_HOST $SIM_THUMBPRINT" >expect && test_cmp expect out &&
	python3 -c "
import base64, hashlib, sys
pem = open(sys.argv[1]).read()
der = base64.b64decode(\"\".join(l for l in pem.splitlines() if \"-----\" not in l))
print(\":\".join(\"%02X\" % b for b in hashlib.sha1(der).digest()))
print(\":\".join(\"%02X\" % b for b in hashlib.sha256(der).digest()))" "$SIM_CERT" >out &&
	printf "%s\n%s\n" "$SIM_THUMBPRINT_SHA1" "$SIM_THUMBPRINT" >expect && test_cmp expect out
'

test_expect_success 'Login checks the password' '
	! GOVC_URL="$SIM_URL" GOVC_USERNAME="$SIM_USER" GOVC_PASSWORD=wrong GOVC_INSECURE=1 \
		GOVMOMI_HOME="$TRASH/gh" "$GOVC" ls / >out 2>&1 &&
	grep -q "Login failure" out
'

test_expect_success '-power mixed: _VM0 on, _VM1 off' '
	govc_ vm.info DC0_H0_VM0 DC0_H0_VM1 DC0_C0_RP0_VM0 DC0_C0_RP0_VM1 |
		sed -n "s/^ *Power state: *//p" >out &&
	printf "poweredOn\npoweredOff\npoweredOn\npoweredOff\n" >expect && test_cmp expect out
'

test_expect_success 'ExportVm of a powered-on VM: InvalidPowerState poweredOff/poweredOn' '
	soap_login >login.xml && grep -q LoginResponse login.xml &&
	vm=$(sim_moref /DC0/vm/DC0_H0_VM0) && test -n "$vm" &&
	soap "<urn:ExportVm><urn:_this type=\"VirtualMachine\">$vm</urn:_this></urn:ExportVm>" >out &&
	grep -q "<faultcode>ServerFaultCode</faultcode>" out &&
	grep -q "xsi:type=\"InvalidPowerState\"><requestedState>poweredOff</requestedState><existingState>poweredOn</existingState>" out &&
	grep -q "<faultstring>The attempted operation cannot be performed in the current state (Powered on).</faultstring>" out
'

test_expect_success 'ExportVm of a powered-off VM: a lease, initializing then ready' '
	vm=$(sim_moref /DC0/vm/DC0_H0_VM1) &&
	soap "<urn:ExportVm><urn:_this type=\"VirtualMachine\">$vm</urn:_this></urn:ExportVm>" >out &&
	lease=$(soap_lease_ref <out) && test -n "$lease" && echo "$lease" >lease &&
	soap_lease_prop "$lease" state >s1 && grep -q ">initializing</val>" s1 &&
	i=0 && until soap_lease_prop "$lease" state | grep -q ">ready</val>"; do
		i=$((i + 1)) && test $i -lt 50 && sleep 0.1 || exit 1
	done
'

test_expect_success '... whose info lists both disks as vSphere does' '
	lease=$(cat lease) && vm=$(sim_moref /DC0/vm/DC0_H0_VM1) &&
	soap_lease_prop "$lease" info >info.xml &&
	grep -q "<entity type=\"VirtualMachine\">$vm</entity>" info.xml &&
	grep -q "<key>/$vm/ParaVirtualSCSIController0:0</key><importKey>/DC0_H0_VM1/ParaVirtualSCSIController0:0</importKey>" info.xml &&
	grep -q "<key>/$vm/ParaVirtualSCSIController0:1</key>" info.xml &&
	grep -q "<sslThumbprint>$SIM_THUMBPRINT_SHA1</sslThumbprint><disk>true</disk><targetId>disk-0.vmdk</targetId><fileSize>1048576</fileSize>" info.xml &&
	grep -q "<targetId>disk-1.vmdk</targetId><fileSize>1048576</fileSize>" info.xml &&
	grep -q "<totalDiskCapacityInKB>2048</totalDiskCapacityInKB><leaseTimeout>300</leaseTimeout>" info.xml &&
	grep -o "<url>[^<]*</url>" info.xml | sed "s/<[^>]*>//g" >urls && test_line_count = 2 urls &&
	grep -q "^https://$SIM_HOST/nfc/" urls
'

test_expect_success '... whose URLs serve the disk files, with ranges' '
	d=$SIM_DSDIR/DC0-LocalDS_0/DC0_H0_VM1 &&
	curl -sS --fail --cacert "$SIM_CERT" -o d0 "$(sed -n 1p urls)" &&
	curl -sS --fail --cacert "$SIM_CERT" -o d1 "$(sed -n 2p urls)" &&
	cmp d0 "$d/disk1.vmdk" && cmp d1 "$d/DC0_H0_VM1.vmdk" && ! cmp -s d0 d1 &&
	curl -sS --fail --cacert "$SIM_CERT" -r 1000-1999 -D hdr -o part "$(sed -n 1p urls)" &&
	grep -q "^HTTP/[0-9.]* 206" hdr && grep -qi "^content-range: bytes 1000-1999/1048576" hdr &&
	dd if="$d/disk1.vmdk" bs=1000 skip=1 count=1 2>/dev/null | cmp - part
'

test_expect_success '... and HttpNfcLeaseGetManifest gives their SHA-1 and size' '
	lease=$(cat lease) && vm=$(sim_moref /DC0/vm/DC0_H0_VM1) && d=$SIM_DSDIR/DC0-LocalDS_0/DC0_H0_VM1 &&
	soap_lease_call HttpNfcLeaseGetManifest "$lease" >out &&
	s0=$(sha1sum <"$d/disk1.vmdk" | cut -d" " -f1) && s1=$(sha1sum <"$d/DC0_H0_VM1.vmdk" | cut -d" " -f1) &&
	grep -q "<key>/$vm/ParaVirtualSCSIController0:0</key><sha1>$s0</sha1><size>1048576</size><disk>true</disk>" out &&
	grep -q "<key>/$vm/ParaVirtualSCSIController0:1</key><sha1>$s1</sha1><size>1048576</size><disk>true</disk>" out
'

test_expect_success '... and stop serving once the lease is complete' '
	lease=$(cat lease) &&
	soap "<urn:HttpNfcLeaseComplete><urn:_this type=\"HttpNfcLease\">$lease</urn:_this></urn:HttpNfcLeaseComplete>" >out &&
	grep -q HttpNfcLeaseCompleteResponse out &&
	code=$(curl -sS --cacert "$SIM_CERT" -o /dev/null -w "%{http_code}" "$(sed -n 1p urls)") &&
	test "$code" = 404
'

test_expect_success 'disks are random, per seed/VM/disk: all differ, none is zero' '
	ls "$SIM_DSDIR"/DC0-LocalDS_0/*/disk1.vmdk >files && test_line_count = 4 files &&
	sha256sum $(cat files) "$SIM_DSDIR"/DC0-LocalDS_0/DC0_H0_VM1/DC0_H0_VM1.vmdk |
		cut -d" " -f1 | sort -u >sums && test_line_count = 5 sums &&
	! head -c 1048576 /dev/zero | cmp -s - "$(sed -n 1p files)"
'

test_expect_success 'govc export.ovf of a powered-off VM: disks byte-identical to the files' '
	govc_ export.ovf -sha 256 -vm DC0_H0_VM1 exp >/dev/null 2>&1 &&
	e=exp/DC0_H0_VM1 && d=$SIM_DSDIR/DC0-LocalDS_0/DC0_H0_VM1 &&
	cmp "$e/DC0_H0_VM1-disk-0.vmdk" "$d/disk1.vmdk" &&
	cmp "$e/DC0_H0_VM1-disk-1.vmdk" "$d/DC0_H0_VM1.vmdk" &&
	(cd $e && sed "s/^SHA256(\(.*\))= \(.*\)/\2  \1/" DC0_H0_VM1.mf | sha256sum -c --quiet)
'

test_expect_success '... with a descriptor that names both files and disks' '
	o=exp/DC0_H0_VM1/DC0_H0_VM1.ovf &&
	grep -q "<File ovf:href=\"DC0_H0_VM1-disk-0.vmdk\" ovf:id=\"file1\" ovf:size=\"1048576\"/>" $o &&
	grep -q "<File ovf:href=\"DC0_H0_VM1-disk-1.vmdk\" ovf:id=\"file2\" ovf:size=\"1048576\"/>" $o &&
	grep -q "ovf:capacity=\"1\" ovf:capacityAllocationUnits=\"byte \* 2^20\" ovf:diskId=\"vmdisk1\" ovf:fileRef=\"file1\"" $o &&
	grep -q "ovf:diskId=\"vmdisk2\" ovf:fileRef=\"file2\"" $o &&
	grep -q "<rasd:ResourceSubType>VirtualSCSI</rasd:ResourceSubType>" $o &&
	grep -q "<rasd:Connection>DC0_DVPG0</rasd:Connection>" $o &&
	grep -q "<rasd:ResourceType>15</rasd:ResourceType>" $o &&
	python3 -c "import sys, xml.dom.minidom as m; m.parse(sys.argv[1])" $o
'

test_expect_success 'govc import.ovf takes the export back into the rig' '
	govc_ import.ovf -pool DC0_H0/Resources -name back exp/DC0_H0_VM1/DC0_H0_VM1.ovf >/dev/null 2>&1 &&
	govc_ device.ls -vm back >dev && test "$(grep -c VirtualDisk dev)" = 2 &&
	grep -q VirtualCdrom dev && grep -q ParaVirtualSCSIController dev
'

test_expect_success 'CreateDescriptor refuses an OvfFile that names no device' '
	vm=$(sim_moref /DC0/vm/DC0_H0_VM1) &&
	soap "<urn:CreateDescriptor><urn:_this type=\"OvfManager\">OvfManager</urn:_this><urn:obj type=\"VirtualMachine\">$vm</urn:obj><urn:cdp><urn:ovfFiles><urn:deviceId>/$vm/Nope0:9</urn:deviceId><urn:path>x.vmdk</urn:path><urn:size>1</urn:size></urn:ovfFiles></urn:cdp></urn:CreateDescriptor>" >out &&
	grep -q "xsi:type=\"InvalidArgument\"><invalidProperty>cdp.ovfFiles</invalidProperty>" out
'

test_expect_success 'CreateDescriptor without files: blank disks, no References' '
	vm=$(sim_moref /DC0/vm/DC0_H0_VM0) &&
	soap "<urn:CreateDescriptor><urn:_this type=\"OvfManager\">OvfManager</urn:_this><urn:obj type=\"VirtualMachine\">$vm</urn:obj><urn:cdp><urn:name>solo</urn:name></urn:cdp></urn:CreateDescriptor>" >out &&
	grep -q "CreateDescriptorResponse" out && grep -q "VirtualSystem ovf:id=&#34;solo&#34;" out &&
	grep -q "ovf:diskId=&#34;vmdisk2&#34; ovf:format" out && ! grep -q "ovf:fileRef" out
'

test_expect_success 'fault rule: CreateFolder answers DuplicateName once, then works' '
	! govc_ folder.create /DC0/vm/f1 >out 2>&1 && grep -q "injected DuplicateName" out &&
	govc_ folder.create /DC0/vm/f1 && govc_ ls /DC0/vm/f1 >/dev/null
'

# Outside a test body: only this shell can wait for the rig.
dir=$(dirname "$SIM_CERT") && kill -TERM "$SIM_PID" && wait "$SIM_PID"
rc=$? SIM_PID=
test_expect_success 'SIGTERM: the rig exits 0 and removes its files' '
	test "$rc" = 0 && ! test -e "$dir" && grep -q "terminated: stopping" "$TRASH/sim.log"
'

test_done
