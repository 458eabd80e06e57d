#!/usr/bin/env bash
# The runner gives its stages (h2k-lease, h2k-fetch, h2k-ovf) an
# allow-list of its environment (issue 10, item 6): none of them logs in,
# so no GOVC_*, H2K_PASSWORD, H2K_URL (it may carry user:password) or
# CREDENTIALS_DIRECTORY reaches them - not even when H2K_JOB_KEEPENV names
# them - and no variable the list does not name.  What they need (PATH,
# HOME, locale, TZ, H2K_* settings, the job id) still does.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/t/t06-standins.sh"

export H2K_SPOOL="$TRASH/spool" OUT="$TRASH/out"
standins_install "$TRASH/bin"
standins_vm vm1 30000

# Each stage dumps its environment, then runs as the stand-in.  The dump
# path is written into the wrapper: it must not depend on what the runner
# passes.
mkdir -p "$TRASH/real" "$TRASH/envs"
for s in h2k-lease h2k-fetch h2k-ovf; do
	mv "$TRASH/bin/$s" "$TRASH/real/$s"
	ln -sf "$TRASH/bin/h2k-standin" "$TRASH/real/$s"
	cat >"$TRASH/bin/$s" <<SH
#!/bin/sh
env >"$TRASH/envs/$s"
exec "$TRASH/real/$s" "\$@"
SH
	chmod +x "$TRASH/bin/$s"
done

mkdir -p creds && chmod 700 creds
cp /dev/null creds/session && chmod 600 creds/session

run_with_secrets() {
	env GOVC_PASSWORD=canary-govc-pw GOVC_USERNAME=canary-govc-user \
	    GOVC_URL=https://u:canary-govc-url@127.0.0.1/sdk \
	    H2K_PASSWORD=canary-h2k-pw H2K_URL=https://u:canary-h2k-url@127.0.0.1/sdk \
	    CREDENTIALS_DIRECTORY="$TRASH/creds" \
	    UNLISTED_VARIABLE=canary-unlisted LANG=C.UTF-8 TZ=UTC H2K_PROXY=canary-ok-proxy \
	    H2K_JOB_KEEPENV="$H2K_JOB_KEEPENV GOVC_PASSWORD,H2K_PASSWORD CREDENTIALS_DIRECTORY" \
	    h2k-job run --once 2>run.err
}

test_expect_success 'a job runs with the runner holding passwords and a credentials dir' '
	id=$(h2k-job submit - <<-EOF | jq -r .id
	name: j1
	vm_path: /DC0/vm/vm1
	output_path: $OUT
	EOF
	) && echo $id >id &&
	run_with_secrets &&
	test "$(field $id .status)" = completed &&
	for s in h2k-lease h2k-fetch h2k-ovf; do test -s "envs/$s" || return 1; done
'

test_expect_success 'no stage sees a password, a credentials URL or the credentials dir' '
	for s in h2k-lease h2k-fetch h2k-ovf; do
		if grep -E "canary-(govc|h2k)|^GOVC_|^H2K_PASSWORD=|^H2K_URL=|^CREDENTIALS_DIRECTORY=" "envs/$s"; then
			echo "$s got the above"; return 1
		fi
	done
'

test_expect_success 'no stage sees a variable the allow-list does not name' '
	! grep -l "canary-unlisted" envs/*
'

test_expect_success 'the stages still get what they need' '
	for s in h2k-lease h2k-fetch h2k-ovf; do
		grep -q "^PATH=$TRASH/bin:" "envs/$s" &&
		grep -qx "HOME=$HOME" "envs/$s" &&
		grep -qx "LANG=C.UTF-8" "envs/$s" &&
		grep -qx "TZ=UTC" "envs/$s" &&
		grep -qx "XDG_STATE_HOME=$XDG_STATE_HOME" "envs/$s" &&
		grep -qx "H2K_PROXY=canary-ok-proxy" "envs/$s" &&
		grep -qx "H2K_JOB_ID=$(cat id)" "envs/$s" &&
		grep -qx "H2K_JOB_ATTEMPT=1" "envs/$s" &&
		grep -qx "STANDIN_STATE=$STANDIN_STATE" "envs/$s" || {
			echo "$s:"; cat "envs/$s"; return 1; }
	done
'

test_done
