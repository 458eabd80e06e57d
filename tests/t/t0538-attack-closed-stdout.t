#!/usr/bin/env bash
# A command started with stdout (or stdin) closed: its output must not land
# in whatever file or socket its first open(2) got as number 1.  Found by
# attack: `h2k-ovf <line >&-` exited 0 having written the finished line
# into a descriptor of libcurl's (it got fd 1); now the write fails and the
# command says so, exit 8, as with a full disk (>/dev/full).
. "$(dirname "$0")/../lib.sh"

sim_start -vm 1 -disks 0 -disk-size 64K -disk-fill random -power off
h2k_login_sim || { echo "Bail out! login failed"; exit 1; }

test_expect_success 'h2k-ovf with stdout closed: the line cannot be written, exit 8' '
	h2k-lease /DC0/vm/DC0_H0_VM0 | h2k-fetch -o exp >line &&
	test_line_count = 1 line &&
	expect_code 8 h2k-ovf <line >&- 2>err &&
	test_one_line err &&
	grep -q "DC0_H0_VM0: writing the output" err
'

test_expect_success 'h2k-ls with stdout closed: exit 8, not 0' '
	expect_code 8 h2k-ls >&- 2>err &&
	test -s err
'

test_expect_success 'h2k-job submit - with stdin closed: a read error naming stdin, exit 8' '
	expect_code 8 env H2K_SPOOL="$TRASH/spool" h2k-job submit - <&- >out 2>err &&
	test ! -s out && grep -q "^h2k-job: stdin: Bad file descriptor" err &&
	grep -q "nothing submitted" err
'

test_done
