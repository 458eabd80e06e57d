#!/usr/bin/env bash
# A file moved aside to bad/ gets bad/NAME.X.reason written before the
# rename; a name of 80 bytes or more (any file dropped in new/ or cur/ that
# is not a job id) had that reason cut to 96 bytes: a file without the
# .reason suffix, counted as a bad job by `h2k-job status`, and
# `h2k-job wait NAME` said "no reason recorded".  The whole name now.
. "$(dirname "$0")/../lib.sh"

export H2K_SPOOL="$TRASH/spool"

long=$(printf 'b%.0s' $(seq 1 85))
huge=$(printf 'c%.0s' $(seq 1 190))

test_expect_success 'setup: long junk names in new/ and cur/' '
	h2k-job run --once 2>/dev/null && test -d "$H2K_SPOOL/new" &&
	echo junk >"$H2K_SPOOL/new/$long" &&
	echo junk >"$H2K_SPOOL/cur/$huge" &&
	h2k-job run --once 2>run.err &&
	grep -F "$H2K_SPOOL/new/$long: not a job id" run.err
'

test_expect_success 'each reason is NAME.X.reason, whole; nothing else in bad/' '
	ls "$H2K_SPOOL/bad" >bad.ls &&
	test_line_count = 4 bad.ls &&
	grep -x "$long\.[0-9a-f]\{8\}" bad.ls &&
	grep -x "$long\.[0-9a-f]\{8\}\.reason" bad.ls &&
	grep -x "$huge\.[0-9a-f]\{8\}" bad.ls &&
	grep -x "$huge\.[0-9a-f]\{8\}\.reason" bad.ls &&
	grep -F "not a job id" "$H2K_SPOOL/bad/$long".*.reason
'

test_expect_success 'h2k-job status counts 2 bad files, not 3 or 4' '
	h2k-job status >st.json &&
	test "$(jget st.json bad)" = 2
'

test_expect_success 'h2k-job wait NAME: exit 1 with the recorded reason' '
	expect_code 1 h2k-job wait --timeout 2 "$long" 2>w.err &&
	test_one_line w.err &&
	grep -F "moved aside to $H2K_SPOOL/bad/$long." w.err &&
	grep -F "not a job id (files in this directory are made by h2k-job only)" w.err &&
	! grep -F "no reason recorded" w.err
'

test_done
