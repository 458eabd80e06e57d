#!/usr/bin/env bash
# h2k-job run and its settings: DownloadWorkers from the config file as the
# default -j of h2k-fetch, reread on SIGHUP; systemd credentials
# (CREDENTIALS_DIRECTORY/session) as the session of every stage; -s wins.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/t/t06-standins.sh"

export H2K_SPOOL="$TRASH/spool" OUT="$TRASH/out"
standins_install "$TRASH/bin"
for i in 5 6 7 8; do standins_vm "vm$i" 20000; done

test_expect_success 'DownloadWorkers from the config is the default -j; SIGHUP rereads it' '
	rm -rf "$H2K_SPOOL" && rm -f "$STANDIN_STATE/argv" &&
	printf "DownloadWorkers: 3\n" >cfg.yaml &&
	H2K_CONFIG=$TRASH/cfg.yaml start_runner run.err && rp=$RUNNER &&
	runner_up &&
	id=$(submit_vms vm5) &&
	WAIT_S=30 wait_for -f "$H2K_SPOOL/done/$id" &&
	grep -Fx "h2k-fetch --progress json -o $OUT -j 3" "$STANDIN_STATE/argv" &&
	printf "DownloadWorkers: 5\n" >cfg.yaml &&
	kill -HUP $rp &&
	wait_grep SIGHUP run.err &&
	id=$(submit_vms vm6) &&
	WAIT_S=30 wait_for -f "$H2K_SPOOL/done/$id" &&
	grep -Fx "h2k-fetch --progress json -o $OUT -j 5" "$STANDIN_STATE/argv" &&
	kill -TERM $rp && wait $rp
'

test_expect_success 'a session credential (systemd LoadCredential) is the -s of every stage' '
	rm -rf "$H2K_SPOOL" && rm -f "$STANDIN_STATE/argv" &&
	mkdir -p cred && echo "{}" >cred/session && chmod 600 cred/session &&
	id=$(submit_vms vm7) &&
	CREDENTIALS_DIRECTORY=$TRASH/cred h2k-job run --once 2>run.err &&
	test "$(field $id .status)" = completed &&
	grep -Fx "h2k-lease -s $TRASH/cred/session -- /DC0/vm/vm7" "$STANDIN_STATE/argv" &&
	grep -Fx "h2k-fetch -s $TRASH/cred/session --progress json -o $OUT" "$STANDIN_STATE/argv" &&
	grep -Fx "h2k-ovf -s $TRASH/cred/session" "$STANDIN_STATE/argv"
'

test_expect_success '-s beats the credential' '
	rm -f "$STANDIN_STATE/argv" &&
	id=$(submit_vms vm8) &&
	CREDENTIALS_DIRECTORY=$TRASH/cred h2k-job -s "$TRASH/my.json" run --once 2>run.err &&
	grep -Fx "h2k-ovf -s $TRASH/my.json" "$STANDIN_STATE/argv"
'

job_cleanup
test_done
