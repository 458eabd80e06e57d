#!/usr/bin/env bash
# A read error on the input of h2k-ovf and h2k-lease (stdin a directory:
# EISDIR on every read) is the end of that input: one line naming it, exit
# 8 (local I/O), as h2k-fetch does ("read error: nothing more will come").
# Found by attack: both read again after the error, forever, queueing a
# bad line and printing "read error" per call (gigabytes of stderr).
# The run is bounded here: ulimit -f and timeout kill a looping command.
. "$(dirname "$0")/../lib.sh"

sim_start -vm 1 -disks 0 -disk-size 64K -disk-fill random -power off
h2k_login_sim || { echo "Bail out! login failed"; exit 1; }

# bounded CMD...: the command with 20 s and 256 KiB of output at most.
bounded() { (ulimit -f 256; exec timeout -s KILL 20 "$@"); }

test_expect_success 'h2k-ovf: stdin a directory: one read error, exit 8' '
	mkdir d &&
	expect_code 8 bounded h2k-ovf <d >out 2>err &&
	test ! -s out &&
	echo "h2k-ovf: stdin: read error: Is a directory" >expect &&
	test_cmp expect err
'

test_expect_success 'h2k-lease: stdin a directory: one read error, exit 8' '
	expect_code 8 bounded h2k-lease <d >out 2>err &&
	test ! -s out &&
	echo "h2k-lease: stdin: read error: Is a directory" >expect &&
	test_cmp expect err
'

test_done
