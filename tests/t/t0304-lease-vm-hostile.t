#!/usr/bin/env bash
# The lookup of a VM named on h2k-lease's command line trusts nothing the
# server says about the objects around it (tests/servers/soapd.py
# --vm-tree): an answer naming thousands of objects is refused with one
# line, exit 9; folders that are each other's parent end the walk to the
# path (no hang, no crash) and the lookup still goes on to ExportVm.
# SPDX-License-Identifier: LGPL-3.0-or-later
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/servers/soapd-lib.sh"

printf 'pass\n' >pw && chmod 600 pw

test_expect_success 'an answer naming 5000 objects around one VM: exit 9, one line' '
	soapd_start --vm-tree flood &&
	h2k-login -k -u "$SOAPD_URL" -U user --password-stdin <pw >/dev/null &&
	expect_code 9 timeout 60 h2k-lease vm-2 >out 2>err &&
	test_line_count = 0 out && test_one_line err &&
	grep -q "^h2k-lease: VM vm-2: more than 4096 objects in the answer about it$" err &&
	! grep -q "\"ExportVm\"" soapd.log
'

test_expect_success 'folders that are each other'"'"'s parent: the lookup ends, ExportVm is asked' '
	soapd_start --vm-tree loop &&
	h2k-login -k -u "$SOAPD_URL" -U user --password-stdin <pw >/dev/null &&
	expect_code 9 timeout 60 h2k-lease vm-2 >out 2>err &&
	test_line_count = 0 out && test_one_line err &&
	grep -q "ExportVm" err &&
	grep -c "\"ExportVm\"" soapd.log >n && test "$(cat n)" = 1
'

test_done
