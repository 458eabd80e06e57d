#!/usr/bin/env bash
# An input line may come from a file someone else wrote (the premise of
# h2k-fetch's cookie policy, issue 10 item 19), and it names the snapshot
# that ends with the export (lease.snapshot): the stage that ends the
# export removes it over the user's session.  A line naming a snapshot the
# user keeps ("precious") must not get it removed: only a temporary
# snapshot taken by h2k-lease is.
. "$(dirname "$0")/../lib.sh"

sim_start

snap_of() { # VM: the first snapshot moref of VM
	govc_ snapshot.tree -vm "$1" -i | sed -n 's/.*\[\(snapshot-[0-9]*\)\].*/\1/p' | head -1
}
line() { # SNAPSHOT: a line with a bogus lease and a URL that answers 404
	printf '{"name":"innocent","moref":"vm-1","lease":{"moref":"session[x]lease-bogus","snapshot":"%s","timeout_s":300},"devices":[{"key":"k0","target_id":"d.vmdk","disk":true,"url":"https://%s/nfc/nothing/d.vmdk"}]}\n' \
		"$1" "$SIM_HOST"
}

test_expect_success 'setup: log in, a snapshot the user keeps' '
	h2k_login_sim &&
	govc_ snapshot.create -vm DC0_H0_VM0 precious &&
	snap_of DC0_H0_VM0 >snap && test -s snap
'

test_expect_success 'h2k-fetch: a failed line naming it leaves the snapshot alone' '
	line "$(cat snap)" >in &&
	# the URL answers 404 (exit 6) and the bogus lease is gone (exit 7):
	# which of the two is seen first depends on timing; either ends it
	{ timeout 60 h2k-fetch -k -o out <in >out.json 2>err; echo $? >code; } &&
	case $(cat code) in 6|7) ;; *) echo "exit $(cat code), want 6 or 7"; false ;; esac &&
	govc_ snapshot.tree -vm DC0_H0_VM0 >tree &&
	grep -q precious tree &&
	grep -F "$(cat snap)" err | grep -F "not a temporary snapshot of h2k-lease"
'

test_expect_success 'h2k-ovf: a line naming it leaves the snapshot alone' '
	mkdir -p ovf/innocent &&
	printf "{\"name\":\"innocent\",\"moref\":\"vm-1\",\"lease\":{\"moref\":\"session[x]lease-bogus\",\"snapshot\":\"%s\"},\"dir\":\"%s/ovf/innocent\",\"files\":[{\"key\":\"k0\",\"target_id\":\"d.vmdk\",\"path\":\"%s/ovf/innocent/d.vmdk\",\"size\":1,\"sha256\":\"%s\",\"disk\":true}]}\n" \
		"$(cat snap)" "$TRASH" "$TRASH" "$(printf x | sha256sum | cut -c1-64)" >in2 &&
	expect_code 6 timeout 60 h2k-ovf <in2 >out2.json 2>err2 &&
	govc_ snapshot.tree -vm DC0_H0_VM0 >tree &&
	grep -q precious tree &&
	grep -F "$(cat snap)" err2 | grep -F "not a temporary snapshot of h2k-lease" &&
	! grep -F "remove it by hand" err2
'

test_expect_success 'a temporary snapshot of h2k-lease still goes when its export fails' '
	govc_ vm.power -on DC0_H0_VM1 >/dev/null 2>&1; 
	h2k-lease --snapshot /DC0/vm/DC0_H0_VM1 >lease.json 2>lerr &&
	tsnap=$(jq -r .lease.snapshot lease.json) && test -n "$tsnap" &&
	govc_ snapshot.tree -vm DC0_H0_VM1 | grep -q h2k-export- &&
	jq -c ".devices[0].url = \"https://$SIM_HOST/nfc/nothing/d.vmdk\" | .devices |= .[0:1]" lease.json >in3 &&
	expect_code 6 timeout 60 h2k-fetch -k -o out3 <in3 >out3.json 2>err3 &&
	! govc_ snapshot.tree -vm DC0_H0_VM1 | grep -q h2k-export-
'

test_done
