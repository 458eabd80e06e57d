#!/usr/bin/env bash
# Whoever can put a file in the spool chooses what the runner exports and
# where it writes (issue 10, item 11): a spool whose subdirectories are
# writable by others, are symbolic links or belong to another user is
# refused (exit 11, the directory named), and a record that is not the
# runner's own regular, singly-linked file is moved to bad/ with the
# reason, never run.  The tests run as root: "another user" is uid 65534.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/t/t06-standins.sh"

export H2K_SPOOL="$TRASH/spool" OUT="$TRASH/out"
standins_install "$TRASH/bin"
standins_vm vm1 20000

fresh() {
	rm -rf "$H2K_SPOOL" "$OUT" "$STANDIN_STATE" && mkdir -p "$STANDIN_STATE" &&
	h2k-job ls >/dev/null
}

# never_ran ID: no stage of job ID started.
never_ran() {
	test "$(ledger_count fetch $1)" = 0 && ! test -s "$STANDIN_STATE/argv"
}

# set_aside ID WHY: job ID's record is in bad/ with a reason matching WHY,
# and in none of new/, cur/, done/.
set_aside() {
	test -z "$(find "$H2K_SPOOL/new" "$H2K_SPOOL/cur" "$H2K_SPOOL/done" -name "$1")" &&
	ls "$H2K_SPOOL/bad/" | grep -q "^$1\.[0-9a-f]\{8\}\$" &&
	grep -h -- "$2" "$H2K_SPOOL/bad/$1".*.reason
}

for sub in new cur tmp lock; do
test_expect_success "$sub/ writable by others: refused, exit 11, $sub/ named" '
	fresh && id=$(submit_vms vm1) &&
	chmod 0777 "$H2K_SPOOL/'$sub'" &&
	expect_code 11 h2k-job run --once 2>run.err &&
	cat run.err &&
	grep -F "spool $H2K_SPOOL/'$sub': writable by group or others (mode 777)" run.err &&
	expect_code 11 h2k-job ls 2>ls.err &&
	grep -F "$H2K_SPOOL/'$sub'" ls.err &&
	never_ran $id
'
done

test_expect_success 'new/ writable by its group: refused too' '
	fresh && id=$(submit_vms vm1) &&
	chmod 0770 "$H2K_SPOOL/new" &&
	expect_code 11 h2k-job run --once 2>run.err &&
	grep -F "spool $H2K_SPOOL/new: writable by group or others (mode 770)" run.err &&
	never_ran $id
'

test_expect_success 'new/ a symbolic link to a directory of ours: refused' '
	fresh && id=$(submit_vms vm1) &&
	mv "$H2K_SPOOL/new" "$TRASH/elsewhere" && chmod 700 "$TRASH/elsewhere" &&
	ln -s "$TRASH/elsewhere" "$H2K_SPOOL/new" &&
	expect_code 11 h2k-job run --once 2>run.err &&
	grep -F "spool $H2K_SPOOL/new: not a directory (a symbolic link)" run.err &&
	never_ran $id &&
	rm -rf "$TRASH/elsewhere"
'

test_expect_success 'cur/ owned by another user: refused' '
	fresh && id=$(submit_vms vm1) &&
	chown 65534 "$H2K_SPOOL/cur" &&
	expect_code 11 h2k-job run --once 2>run.err &&
	grep -F "spool $H2K_SPOOL/cur: owned by uid 65534, not by you (uid 0)" run.err &&
	never_ran $id
'

test_expect_success 'a record in new/ owned by another user: to bad/, not run' '
	fresh && id=$(submit_vms vm1) &&
	chown 65534 "$H2K_SPOOL/new/$id" &&
	h2k-job run --once 2>run.err;
	cat run.err &&
	never_ran $id &&
	set_aside $id "owned by uid 65534, not by the runner.s user (uid 0)" &&
	grep -F "moved to $H2K_SPOOL/bad/$id." run.err
'

test_expect_success 'a record in cur/ owned by another user: recovery moves it to bad/' '
	fresh && id=$(submit_vms vm1) &&
	mv "$H2K_SPOOL/new/$id" "$H2K_SPOOL/cur/$id" &&
	chown 65534 "$H2K_SPOOL/cur/$id" &&
	h2k-job run --once 2>run.err;
	cat run.err &&
	never_ran $id &&
	set_aside $id "owned by uid 65534"
'

test_expect_success 'a hard-linked record: to bad/, not run' '
	fresh && id=$(submit_vms vm1) &&
	ln "$H2K_SPOOL/new/$id" "$TRASH/link-$id" &&
	h2k-job run --once 2>run.err;
	cat run.err &&
	never_ran $id &&
	set_aside $id "has 2 hard links" &&
	rm -f "$TRASH/link-$id"
'

test_expect_success 'the runner own records still run (control)' '
	fresh && id=$(submit_vms vm1) &&
	h2k-job run --once 2>run.err &&
	test "$(field $id .status)" = completed &&
	test "$(ledger_count complete $id)" = 1
'

test_done
