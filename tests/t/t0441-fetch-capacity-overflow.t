#!/usr/bin/env bash
# Capacities from the line (each accepted below 9e18) for disks streamed
# without a length: two of them must not overflow the sums behind the
# lease keepalive's percent and the bars' total (signed overflow, caught
# by the sanitizer build); the total bar still shows a percent of the sum,
# and the disks arrive whole.
# SPDX-License-Identifier: LGPL-3.0-or-later
. "$(dirname "$0")/../lib.sh"

# streams without a length, slow enough for keepalives (every second) and
# bars during the download
sim_start -vm 1 -disks 1 -disk-size 256K -disk-fill random -power off -nfc-stream \
	-lease-timeout 3 -nfc-bps 150000
h2k_login_sim || { echo "Bail out! login failed"; exit 1; }

test_expect_success 'two disks of 8e18 bytes each (the line): keepalive and bars do not overflow' '
	h2k-lease /DC0/vm/DC0_H0_VM0 >base &&
	jq -c ".devices |= map(if .disk != false then .capacity_bytes = 8e18 else . end)" base >l &&
	test "$(jq "[.devices[] | select(.capacity_bytes == 8e18)] | length" l)" -ge 2 &&
	expect_code 0 h2k-fetch --progress bar -o o <l >line 2>err &&
	! grep -q "runtime error" err &&
	tr "\r" "\n" <err | grep "^total" >totals &&
	test -s totals &&
	grep -q "^total ([0-9]* active) *\[[-#]*\] *[0-9]*% .*(disk [0-9.]* [KMGTPE]iB)" totals &&
	for i in 0 1 2; do
		p=$(jq -r ".files[$i].path // empty" line) && [ -z "$p" ] && continue
		test "$(jq -r ".files[$i].sha256" line)" = "$(sha256sum <"$p" | cut -d" " -f1)" || exit 1
	done
'

test_done
