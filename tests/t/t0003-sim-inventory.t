#!/usr/bin/env bash
# The rig's inventory and session knobs: 1,000 VMs, ESXi model, session idle
# timeout, credentials, -max-life.
# SPDX-License-Identifier: LGPL-3.0-or-later
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/sim/soap.sh"

sim_start -standalone 1 -cluster 1 -host 2 -vm 500 -power off

test_expect_success '1,000 VMs: govc lists 1,000 distinct VMs, all off' '
	govc_ find / -type m >vms && test_line_count = 1000 vms &&
	sort -u vms >u && test_line_count = 1000 u &&
	grep -c "/DC0/vm/DC0_H0_VM[0-9]*$" vms >n && test "$(cat n)" = 500 &&
	grep -q "^/DC0/vm/DC0_C0_RP0_VM499$" vms &&
	govc_ find / -type m -runtime.powerState poweredOff >off && test_line_count = 1000 off
'

test_expect_success '... each with one disk, on IDE a CD-ROM' '
	govc_ device.ls -vm DC0_C0_RP0_VM499 >dev &&
	test "$(grep -c VirtualDisk dev)" = 1 &&
	govc_ device.info -vm DC0_C0_RP0_VM499 cdrom-* | grep -q "Controller: *ide-"
'

sim_stop
sim_start -esx -vm 1 -power off -username root -password 's3cr3t!' -session-timeout 1s

test_expect_success '-esx: a HostAgent, with the credentials given' '
	test "$SIM_USER" = root && test "$SIM_PASSWORD" = "s3cr3t!" &&
	govc_ about >out && grep -q "API type: *HostAgent" out
'

test_expect_success '... whose lease URLs have host *, which govc replaces' '
	soap_login >/dev/null && vm=$(sim_moref /ha-datacenter/vm/ha-host_VM0) &&
	lease=$(soap_export "$vm" | soap_lease_ref) &&
	test "$(soap_lease_wait "$lease")" = ready &&
	soap_lease_urls "$lease" >urls && grep -q "^https://\*/nfc/" urls &&
	soap_lease_call HttpNfcLeaseAbort "$lease" >/dev/null &&
	govc_ export.ovf -vm ha-host_VM0 exp >/dev/null 2>&1 &&
	test -s exp/ha-host_VM0/ha-host_VM0.ovf
'

test_expect_success 'the default credentials are refused' '
	soap "<urn:Login><urn:_this type=\"SessionManager\">ha-sessionmgr</urn:_this><urn:userName>user</urn:userName><urn:password>pass</urn:password></urn:Login>" >out &&
	grep -q "xsi:type=\"InvalidLogin\"" out
'

test_expect_success '-session-timeout: an idle session is dropped' '
	soap_login >out && grep -q LoginResponse out &&
	now="<urn:CurrentTime><urn:_this type=\"ServiceInstance\">ServiceInstance</urn:_this></urn:CurrentTime>" &&
	soap "$now" | grep -q CurrentTimeResponse &&
	sleep 3 &&
	soap "$now" >out && grep -q "xsi:type=\"NotAuthenticated\"" out
'

sim_stop
sim_start -vm 1 -cluster 0 -max-life 1s
pid=$SIM_PID dir=$(dirname "$SIM_CERT")
i=0
while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done

test_expect_success '-max-life: the rig exits by itself and cleans up' '
	! kill -0 "$pid" 2>/dev/null && ! test -e "$dir" &&
	grep -q "max-life 1s reached" "$TRASH/sim.log"
'

test_done
