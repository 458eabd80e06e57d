#!/usr/bin/env bash
# h2k-login --status after the server dropped an idle session, and --logout
# of such a session.
. "$(dirname "$0")/../lib.sh"

# vcsim checks idle sessions every timeout, so one goes within 2 x T.
# T must leave room for a command to log in and check before the session
# counts as idle: 3 s normally, 60 s when every command runs under valgrind
# (a loaded machine has been seen to take 20 s for a login there).
T=3
[ -n "${H2K_VALGRIND:-}" ] && T=60
sim_start -session-timeout ${T}s


test_expect_success 'fresh session is valid' '
	h2k_login_sim &&
	h2k-login --status >st && test "$(jfield st valid)" = true
'

# Every --status is activity that keeps the session alive, so wait out the
# worst case (idle T + check period T) untouched, then ask once.
test_expect_success 'after the idle timeout --status exits 3 and says so' '
	sleep $((2 * T + 1)) &&
	expect_code 3 h2k-login --status >st 2>err &&
	test_one_line err && grep -q "has expired or was ended on the server; run h2k-login" err &&
	test "$(jfield st valid)" = false
'

test_expect_success 'the session file is kept after expiry (h2k-login replaces it)' '
	test -s "$HOME/.local/state/h2k/session.json"
'

test_expect_success '--logout of the expired session: exit 0, file removed' '
	h2k-login --logout 2>err && test ! -s err &&
	test ! -e "$HOME/.local/state/h2k/session.json"
'

test_expect_success 'a new login after expiry works' '
	h2k_login_sim && h2k-login --status >/dev/null
'

test_done
