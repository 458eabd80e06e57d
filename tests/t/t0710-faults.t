#!/usr/bin/env bash
# Every SOAP fault kind the commands map, from the real rig (vcsim's own
# fault injection, tests/sim -fault): the exit code of the table in
# h2k.7, one line on stderr naming the fault, the lease ended where the
# man pages say it is (h2k-ovf aborts on failure; h2k-lease leaves none
# behind), and no final file written by a failed stage.
. "$(dirname "$0")/../lib.sh"

VM=/DC0/vm/DC0_H0_VM0
# ExportVm answers these faults once each, in this order, then works.
export_faults="InvalidPowerState:7 TaskInProgress:7 InvalidState:7 ManagedObjectNotFound:6
NoPermission:9 SystemError:9 RequestCanceled:10 NotAuthenticated:3"
flags=()
for f in $export_faults; do flags+=(-fault "ExportVm:${f%:*}:1"); done
sim_start -disks 1 -disk-size 1M -power off -vm 1 -host 1 -cluster 0 "${flags[@]}" \
	-fault CreateContainerView:NotAuthenticated:1 \
	-fault CreateDescriptor:SystemError:1 \
	-fault HttpNfcLeaseComplete:InvalidState:1 \
	-fault Login:InvalidLogin:1
h2k_login_sim --thumbprint "$SIM_THUMBPRINT" 2>login.err; login_rc=$?

test_expect_success 'InvalidLogin from the server: exit 3, then the retry logs in' '
	test $login_rc = 3 && test_one_line login.err && grep -q "InvalidLogin\|login" login.err &&
	h2k_login_sim --thumbprint "$SIM_THUMBPRINT"
'
test_expect_success 'NotAuthenticated during h2k-ls: exit 3, one line, nothing listed' '
	expect_code 3 h2k-ls >out 2>err && test_one_line err && test_line_count = 0 out &&
	grep -Eq "NotAuthenticated|session expired" err &&
	h2k-ls --name DC0_H0_VM0 >vm.json && test_line_count = 1 vm.json
'

# lease_state MOREF: ready, error, done, ... or gone (asked with h2k's session).
lease_state() { python3 "$TESTS_DIR/servers/lease-state.py" "$XDG_STATE_HOME/h2k/session.json" "$1"; }

for f in $export_faults; do
	type=${f%:*} code=${f#*:}
	test_expect_success "ExportVm fault $type: exit $code, one line naming it, no output" '
		expect_code '"$code"' h2k-lease <vm.json >out 2>err &&
		test_one_line err && grep -q "^h2k-lease: .*'"$type"'" err &&
		test_line_count = 0 out
	'
done

test_expect_success 'after the faults ExportVm works: lease, fetch' '
	h2k-lease <vm.json >lease.json && h2k-fetch -o exp --progress none <lease.json >fetched.json &&
	ls exp/DC0_H0_VM0/*.vmdk >disks && test_line_count = 2 disks
'
test_expect_success 'CreateDescriptor fault: h2k-ovf exit 9, no .ovf/.mf, lease aborted' '
	moref=$(sed -n "s/.*\"lease\":{\"moref\":\"\([^\"]*\)\".*/\1/p" lease.json) &&
	test -n "$moref" &&
	expect_code 9 h2k-ovf <fetched.json >out 2>err &&
	test_one_line err && grep -q "SystemError" err && test_line_count = 0 out &&
	! ls exp/DC0_H0_VM0/*.ovf exp/DC0_H0_VM0/*.mf 2>/dev/null &&
	ls exp/DC0_H0_VM0/*.vmdk >disks && test_line_count = 2 disks &&
	st=$(lease_state "$moref") && echo "lease: $st" &&
	case "$st" in gone|error*) ;; *) false;; esac
'
test_expect_success 'HttpNfcLeaseComplete fault: exit 7, one line, lease not left ready' '
	h2k-lease <vm.json >lease2.json &&
	moref=$(sed -n "s/.*\"lease\":{\"moref\":\"\([^\"]*\)\".*/\1/p" lease2.json) &&
	h2k-fetch -o exp2 --progress none <lease2.json >fetched2.json &&
	test "$(lease_state "$moref")" = ready &&
	expect_code 7 h2k-ovf <fetched2.json >out 2>err &&
	test_one_line err && grep -q "InvalidState" err && test_line_count = 0 out &&
	st=$(lease_state "$moref") && echo "lease: $st" &&
	case "$st" in gone|error*) ;; *) false;; esac
'
test_done
