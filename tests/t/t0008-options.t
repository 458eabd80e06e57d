#!/usr/bin/env bash
# Option numbers (issue 11): every command reads them with the one parser
# (lib/num.c) and reports a bad one the one way (cmd/cmd.c): exit 2, one
# line "h2k-X: OPTION: VALUE: why" naming both, nothing done.  A duration
# keeps its fraction (h2k-job wait --timeout 0.5 waits half a second, not
# 0), 0 is refused where a duration must be positive, counts are whole
# numbers, --speed-limit takes K/M/G/T and KiB/MiB/GiB/TiB.
. "$(dirname "$0")/../lib.sh"

export H2K_SPOOL="$TRASH/spool" H2K_SESSION="$TRASH/no-session.json"

# refused WANT CMD...: exit 2, exactly the one line WANT on stderr,
# nothing on stdout.
refused() {
	local want=$1
	shift
	expect_code 2 "$@" </dev/null >out 2>err &&
	test ! -s out &&
	printf '%s\n' "$want" >expect &&
	test_cmp expect err
}

test_expect_success 'h2k-job: hex, junk, 0 and fractions of counts refused, naming option and value' '
	refused "h2k-job: --timeout: 0x10: not a number of seconds" h2k-job wait --timeout 0x10 x &&
	refused "h2k-job: --timeout: 0: too small, want more than 0 and at most 1e+09 seconds" \
		h2k-job wait --timeout 0 x &&
	refused "h2k-job: --timeout: nan: not a number of seconds" h2k-job cancel --timeout nan x &&
	refused "h2k-job: --workers: 1.5: not a number" h2k-job run --workers 1.5 &&
	refused "h2k-job: --workers: 0: too small, want 1 to 256" h2k-job run --workers 0 &&
	refused "h2k-job: --workers: 257: too large, want 1 to 256" h2k-job run --workers 257 &&
	refused "h2k-job: --max-attempts: -1: too small, want 1 to 1000" h2k-job run --max-attempts -1 &&
	refused "h2k-job: --grace: 86401: too large, want 0 to 86400 seconds" h2k-job run --grace 86401 &&
	refused "h2k-job: --grace:  5: not a number of seconds" h2k-job run --grace " 5" &&
	test ! -e "$H2K_SPOOL"
'

test_expect_success 'a value with a terminal escape reaches stderr escaped' '
	expect_code 2 h2k-job wait --timeout "$(printf "1\033[2J")" x 2>err &&
	! grep -q "$(printf "\033")" err &&
	grep -F "h2k-job: --timeout: 1\\e[2J: not a number of seconds" err &&
	test_one_line err
'

test_expect_success 'h2k-job wait --timeout 0.5 waits half a second, not 0' '
	printf "name: t\nvm_path: /DC0/vm/x\noutput_path: %s\n" "$TRASH/out" >job.yaml &&
	id=$(h2k-job submit job.yaml | jq -r .id) && test -n "$id" &&
	start=$(date +%s%N) &&
	expect_code 1 h2k-job wait --timeout 0.5 "$id" >out 2>err &&
	end=$(date +%s%N) &&
	test ! -s out &&
	echo "h2k-job: 1 of 1 jobs not finished after 0.5 s" >expect &&
	test_cmp expect err &&
	ms=$(( (end - start) / 1000000 )) && say "waited $ms ms" &&
	test "$ms" -ge 500
'

test_expect_success 'h2k-job --grace 0 and --grace 0.25 are taken (run --once on an empty queue)' '
	h2k-job --spool "$TRASH/empty" run --once --grace 0 2>err &&
	h2k-job --spool "$TRASH/empty" run --once --grace 0.25 2>err
'

test_expect_success 'h2k-lease: --timeout 0, junk and exponents refused before any session is read' '
	refused "h2k-lease: --timeout: 0: too small, want more than 0 and at most 86400 seconds" \
		h2k-lease --timeout 0 vm-1 &&
	refused "h2k-lease: --timeout: 1e3: not a number of seconds" h2k-lease --timeout 1e3 vm-1 &&
	refused "h2k-lease: --timeout: 86400.5: too large, want more than 0 and at most 86400 seconds" \
		h2k-lease --timeout 86400.5 vm-1
'

test_expect_success 'h2k-lease --timeout 0.5 passes the parser (the session is what fails)' '
	expect_code 3 h2k-lease --timeout 0.5 vm-1 </dev/null 2>err &&
	! grep -e "--timeout" err
'

test_expect_success 'h2k-fetch: counts, durations and sizes' '
	refused "h2k-fetch: -j: 0x10: not a number" h2k-fetch -o out -j 0x10 &&
	refused "h2k-fetch: -j: 65: too large, want 1 to 64" h2k-fetch -o out -j 65 &&
	refused "h2k-fetch: --retries: -1: too small, want 0 to 1000" h2k-fetch -o out --retries -1 &&
	refused "h2k-fetch: --keepalive: 0.5: too small, want 1 to 3600 seconds" \
		h2k-fetch -o out --keepalive 0.5 &&
	refused "h2k-fetch: --retry-delay: inf: not a number of seconds" h2k-fetch -o out --retry-delay inf &&
	refused "h2k-fetch: --speed-time: 2.5: not a number" h2k-fetch -o out --speed-time 2.5 &&
	refused "h2k-fetch: --speed-limit: 1k: not a number of bytes (a unit is K, M, G, T, KiB, MiB, GiB or TiB)" \
		h2k-fetch -o out --speed-limit 1k &&
	refused "h2k-fetch: --speed-limit: 2T: too large, want 1 to 1099511627776" \
		h2k-fetch -o out --speed-limit 2T &&
	refused "h2k-fetch: --speed-limit: 0K: too small, want 1 to 1099511627776" \
		h2k-fetch -o out --speed-limit 0K
'

test_expect_success 'h2k-fetch takes --speed-limit with a unit, and fractions of --retry-delay' '
	for v in 1 64K 1MiB 1T; do
		env -u H2K_SESSION h2k-fetch -o dl --speed-limit $v --retry-delay 0.25 \
			</dev/null >out.json 2>err || return 1
		test ! -s out.json || return 1
	done
'

test_expect_success 'h2k-ls: H2K_LS_JOBS and --soap-timeout through the same parser' '
	refused "h2k-ls: H2K_LS_JOBS: 0x2: not a number" env H2K_LS_JOBS=0x2 h2k-ls &&
	refused "h2k-ls: H2K_LS_JOBS: 33: too large, want 1 to 32" env H2K_LS_JOBS=33 h2k-ls &&
	refused "h2k-ls: --soap-timeout '"'"'1e3'"'"': want a number of seconds from 1 to 86400" \
		h2k-ls --soap-timeout 1e3
'

test_expect_success 'every command but h2k-login says its name and version the one way' '
	for c in h2k-ls h2k-lease h2k-fetch h2k-ovf h2k-job; do
		$c --version >out 2>err || return 1
		grep -Ex "$c [0-9]+\.[0-9]+\.[0-9]+" out && test ! -s err || return 1
	done
'

test_done
