# tests/lib.sh - a small TAP test library in the style of git's t/test-lib.sh.
# SPDX-License-Identifier: LGPL-3.0-or-later
#
# A test file:
#   . "$(dirname "$0")/../lib.sh"
#   sim_start -vm 4                      # optional: start the vSphere rig
#   test_expect_success 'what it shows' '
#       h2k-ls >actual && test_line_count = 4 actual
#   '
#   test_expect_code 3 'expired session exits 3' 'h2k-ls'
#   test_done
#
# Every test runs in its own trash directory ($TRASH), removed at the end
# unless H2K_TEST_KEEP=1.
#
# Cleanups stack, as in git's test-lib: test_when_finished CMD inside a
# test body runs CMD when that test ends (pass or fail); test_atexit CMD
# (or test_when_finished outside a body) runs CMD when the file ends, at
# test_done or on any exit.  Both run last-pushed first.  A body is a
# subshell whose variables die with it, so test_atexit there means the end
# of that test too.  Helpers (sim_start, nfcd_start, soapd-lib.sh, ...) push
# their stop onto it once per shell (atexit_once): never set the EXIT trap,
# it is the stack's.  Commands under test come from $H2K_BIN (set by
# tests/run-suite, default ../bin); with H2K_VALGRIND=1 each is wrapped in
# valgrind and any valgrind error fails the command with exit 126.

set -u
TEST_NAME=$(basename "$0" .t)
TESTS_DIR=$(cd "$(dirname "$0")/.." && pwd)
SRC_DIR=$(cd "$TESTS_DIR/.." && pwd)
: "${H2K_BIN:=$SRC_DIR/bin}"
SIM_BIN=${H2K_SIM_BIN:-$SRC_DIR/tests/sim/h2k-sim}
GOVC=${H2K_GOVC:-$SRC_DIR/tests/sim/govc}
TRASH=${H2K_TRASH_ROOT:-$SRC_DIR/tests/trash}/$TEST_NAME.$$
rm -rf "$TRASH" && mkdir -p "$TRASH/bin" || exit 1
cd "$TRASH" || exit 1

# Commands under test, optionally under valgrind.
for b in "$H2K_BIN"/h2k-*; do
	[ -x "$b" ] || continue
	n=$(basename "$b")
	if [ -n "${H2K_VALGRIND:-}" ] && [ "$n" != h2k-export ]; then
		cat >"$TRASH/bin/$n" <<EOW
#!/bin/sh
exec valgrind -q --error-exitcode=126 --leak-check=full --errors-for-leak-kinds=definite --track-fds=no "$b" "\$@"
EOW
		chmod +x "$TRASH/bin/$n"
	else
		ln -s "$b" "$TRASH/bin/$n"
	fi
done
export PATH="$TRASH/bin:$PATH"
# Isolation: no user config, no user session, no inherited credentials.
export HOME="$TRASH/home"
mkdir -p "$HOME" && chmod 700 "$HOME"
export XDG_CONFIG_HOME="$HOME/.config" XDG_STATE_HOME="$HOME/.local/state"
unset H2K_URL H2K_USERNAME H2K_PASSWORD H2K_INSECURE H2K_THUMBPRINT H2K_SESSION \
      H2K_SPOOL H2K_CONFIG GOVC_URL GOVC_USERNAME GOVC_PASSWORD GOVC_INSECURE \
      GOVC_TLS_CA_CERTS GOVC_TLS_KNOWN_HOSTS LOG_LEVEL H2K_LOG_LEVEL H2K_SOAP_TIMEOUT
export H2K_SYSCONFIG="$TRASH/etc-h2k-config.yaml"   # instead of /etc/hyper2kvm/config.yaml
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=125}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:exitcode=125}

test_count=0
test_failed=0
test_skipped=0
SIM_PID=

say() { printf '# %s\n' "$*"; }

# --- cleanup stacks ----------------------------------------------------------
_atexit=()     # the file's, run by test_done and the EXIT trap
_twf=()        # the current test body's (it runs in a subshell)
_in_body=

test_when_finished() {
	if [ -n "$_in_body" ]; then _twf+=("$1"); else _atexit+=("$1"); fi
}
test_atexit() { test_when_finished "$1"; }

# atexit_once KEY CMD: test_atexit CMD unless this shell (a body's subshell
# is another) pushed KEY already; for helpers called again and again.
declare -A _atexit_keys=()
atexit_once() {
	[ "${_atexit_keys[$1]:-}" = "$BASHPID" ] && return 0
	_atexit_keys[$1]=$BASHPID
	test_atexit "$2"
}

# _cleanup_run NAME: eval the stack NAME's commands, newest first, once
# each; returns 1 if any failed.
_cleanup_run() {
	local -n _st=$1
	local i rc=0
	for ((i = ${#_st[@]} - 1; i >= 0; i--)); do
		eval "${_st[i]}" || { echo "cleanup failed: ${_st[i]}" >&2; rc=1; }
		unset "_st[i]"
	done
	return $rc
}

# The EXIT trap of a test body's subshell: its cleanups, then its status; a
# failed cleanup fails a body that passed (STRICT=1; test_expect_code keeps
# the body's status, the code is what it tests).
_body_exit() { # RC STRICT
	local rc=$1
	_cleanup_run _twf || { [ "$2" = 1 ] && [ "$rc" = 0 ] && rc=1; }
	exit "$rc"
}

trap '_cleanup_run _atexit' EXIT

_run_body() {
	# Each body runs in a subshell with errexit-like && chains expected.
	( _in_body=1; trap '_body_exit $? 1' EXIT; eval "$1" ) >"$TRASH/.out" 2>&1
}

_report() { # ok? desc
	test_count=$((test_count + 1))
	if [ "$1" = 0 ]; then
		printf 'ok %d - %s\n' "$test_count" "$2"
	else
		test_failed=$((test_failed + 1))
		printf 'not ok %d - %s\n' "$test_count" "$2"
		sed -e 's/^/#   /' "$TRASH/.out" | tail -n 40
	fi
}

# test_expect_success DESC BODY
test_expect_success() {
	_run_body "$2"
	_report $? "$1"
}

# test_expect_failure is not offered: a known breakage is a bug to fix.

# test_expect_code CODE DESC BODY: BODY's last command must exit CODE.
test_expect_code() {
	local want=$1 rc
	( _in_body=1; trap '_body_exit $? 0' EXIT; eval "$3" ) >"$TRASH/.out" 2>&1
	rc=$?
	if [ "$rc" = "$want" ]; then
		_report 0 "$2"
	else
		echo "expected exit $want, got $rc" >>"$TRASH/.out"
		_report 1 "$2"
	fi
}

test_skip() { # DESC REASON
	test_count=$((test_count + 1))
	test_skipped=$((test_skipped + 1))
	printf 'ok %d # skip %s (%s)\n' "$test_count" "$1" "$2"
}

# Run CMD, require exit status CODE (for use inside bodies).
expect_code() {
	local want=$1 rc
	shift
	"$@"
	rc=$?
	if [ "$rc" != "$want" ]; then
		echo "expected exit $want from '$*', got $rc" >&2
		return 1
	fi
	return 0
}

test_cmp() {
	diff -u "$1" "$2"
}

test_line_count() { # OP N FILE
	local n
	n=$(wc -l <"$3")
	if ! [ "$n" "$1" "$2" ]; then
		echo "test_line_count: line count of $3 is $n, not $1 $2" >&2
		return 1
	fi
}

# stderr must be exactly one line.
test_one_line() {
	local n
	n=$(wc -l <"$1")
	if [ "$n" != 1 ]; then
		echo "expected one line in $1, got $n:" >&2
		cat "$1" >&2
		return 1
	fi
}

# file_mode FILE: prints the octal permission bits.
file_mode() { stat -c %a "$1"; }

# --- the vSphere rig ---------------------------------------------------------
# sim_start [h2k-sim flags...]: starts tests/sim/h2k-sim on 127.0.0.1 and
# sources the environment it writes: SIM_URL (https://127.0.0.1:PORT/sdk),
# SIM_HOST (127.0.0.1:PORT), SIM_USER, SIM_PASSWORD, SIM_THUMBPRINT (SHA-256,
# colon-separated hex, as govc prints), SIM_THUMBPRINT_SHA1, SIM_CERT (PEM
# file), SIM_DSDIR (the directory that backs the datastores), SIM_PID.
# It also exports GOVC_URL/GOVC_USERNAME/GOVC_PASSWORD/GOVC_INSECURE=1 into
# a separate function govc_ (so h2k sees none of the GOVC_* variables).
sim_start() {
	[ -x "$SIM_BIN" ] || { echo "Bail out! $SIM_BIN not built (make sim)"; exit 1; }
	rm -f "$TRASH/sim.env"
	"$SIM_BIN" -env "$TRASH/sim.env" "$@" >"$TRASH/sim.log" 2>&1 &
	SIM_PID=$!
	local i=0
	while [ ! -s "$TRASH/sim.env" ]; do
		i=$((i + 1))
		if [ $i -gt 600 ] || ! kill -0 "$SIM_PID" 2>/dev/null; then
			echo "Bail out! simulator did not start"; cat "$TRASH/sim.log" | sed 's/^/# /'
			exit 1
		fi
		sleep 0.1
	done
	. "$TRASH/sim.env"
	atexit_once sim sim_stop
}

sim_stop() {
	if [ -n "$SIM_PID" ]; then
		kill "$SIM_PID" 2>/dev/null
		wait "$SIM_PID" 2>/dev/null
		SIM_PID=
	fi
}

# govc_ ARGS: the oracle, talking to the rig.
govc_() {
	GOVC_URL="$SIM_URL" GOVC_USERNAME="$SIM_USER" GOVC_PASSWORD="$SIM_PASSWORD" \
	GOVC_INSECURE=1 "$GOVC" "$@"
}

# h2k_login_sim [extra h2k-login flags]: log in to the rig with -k.
h2k_login_sim() {
	printf '%s\n' "$SIM_PASSWORD" >"$TRASH/.pw" && chmod 600 "$TRASH/.pw" &&
	h2k-login -k -u "$SIM_URL" -U "$SIM_USER" --password-file "$TRASH/.pw" "$@" >/dev/null
}

# jget FILE PATH: the value at PATH (dot-separated keys and indexes, "*" for
# every element of an array) in each JSON line of FILE, one per output line;
# strings raw, null/true/false as JSON spells them.
jget() {
	python3 -c '
import json, sys
def walk(v, parts):
    if not parts:
        yield v
        return
    p, rest = parts[0], parts[1:]
    if p == "*":
        for x in v:
            yield from walk(x, rest)
    elif isinstance(v, list):
        yield from walk(v[int(p)], rest)
    elif p in v:
        yield from walk(v[p], rest)
for line in open(sys.argv[1]):
    for v in walk(json.loads(line), sys.argv[2].split(".") if sys.argv[2] else []):
        print(v if isinstance(v, str) else json.dumps(v))
' "$1" "$2"
}

# jfield FILE KEY: a top-level field of the one JSON document in FILE
# (which may span lines); "null" if absent, booleans as true/false.
jfield() {
	python3 -c 'import json,sys
o=json.loads(open(sys.argv[1]).read())
v=o.get(sys.argv[2])
print("null" if v is None else (str(v).lower() if isinstance(v,bool) else v))' "$1" "$2"
}

test_done() {
	# A test file's own EXIT trap replaces the stack's: run it here too.
	_cleanup_run _atexit
	sim_stop
	printf '1..%d\n' "$test_count"
	if [ "$test_failed" = 0 ] && [ -z "${H2K_TEST_KEEP:-}" ]; then
		cd / && rm -rf "$TRASH"
	fi
	[ "$test_failed" = 0 ]
	exit $?
}
