#!/usr/bin/env bash
# h2k-lease --shutdown when the guest never goes down (tests/servers/soapd.py
# --stuck-vm: ShutdownGuest is accepted, the VM stays poweredOn): the wait
# is bounded by --timeout, ends with one line and exit 7, and ExportVm is
# never called; a signal during the wait ends it with exit 10.  (The rig's
# guests obey ShutdownGuest at once: t0300 has that path.)
# SPDX-License-Identifier: LGPL-3.0-or-later
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/servers/soapd-lib.sh"

soapd_start --stuck-vm || exit 1
printf 'pass\n' >pw && chmod 600 pw
test_expect_success 'log in to the stuck server' '
	h2k-login -k -u "$SOAPD_URL" -U user --password-stdin <pw >/dev/null
'

test_expect_success '--shutdown --timeout 2 on a guest that stays up: exit 7 after about 2 s, one line, no lease' '
	start=$(date +%s) &&
	expect_code 7 h2k-lease --shutdown --timeout 2 vm-1 >out 2>err &&
	took=$(( $(date +%s) - start )) &&
	test "$took" -ge 2 && test "$took" -le 30 &&
	test_one_line err &&
	grep -q "^h2k-lease: stuck: guest did not shut down within 2 s (raise --timeout, or use --power-off)$" err &&
	test_line_count = 0 out &&
	grep -c "\"ShutdownGuest\"" soapd.log >n && test "$(cat n)" = 1 &&
	! grep -q "\"ExportVm\"\|\"PowerOffVM_Task\"" soapd.log
'

test_expect_success 'without a power option the running VM is refused before any change: exit 7' '
	: >soapd.log &&
	expect_code 7 h2k-lease vm-1 >out 2>err &&
	test_one_line err && grep -q "stuck: VM is powered on; use --snapshot" err &&
	! grep -q "\"ShutdownGuest\"\|\"ExportVm\"\|\"PowerOffVM_Task\"" soapd.log
'

test_expect_success 'SIGTERM while waiting for the guest: exit 10, one line, no lease' '
	: >soapd.log &&
	{ h2k-lease --shutdown --timeout 600 vm-1 >out 2>err & pid=$!; } &&
	i=0 && until grep -q "\"ShutdownGuest\"" soapd.log; do
		i=$((i + 1)) && test $i -lt 300 || { kill $pid; exit 1; }
		sleep 0.1
	done &&
	sleep 0.5 && kill -TERM $pid && { wait $pid; rc=$?; } ; test "$rc" = 10 &&
	test_one_line err && grep -q "^h2k-lease: stuck: interrupted" err &&
	test_line_count = 0 out && ! grep -q "\"ExportVm\"" soapd.log
'

soapd_stop
test_done
