# tests/trials/lib.sh - shared by the fault trials (sourced, not run).
# SPDX-License-Identifier: LGPL-3.0-or-later
#
# A trial script runs H2K_TRIALS (default 20) repetitions of one fault,
# prints what happened to each on stderr when H2K_TRIALS_VERBOSE is set,
# and ends with one figures line on stdout:
#   NAME: N trials, S survived (byte-identical), F failed[, details]
# exit 0 only when every trial survived.  Commands come from $H2K_BIN
# (default bin/), the rig from tests/sim/h2k-sim, all state lives in a
# private work directory removed at the end unless H2K_TEST_KEEP=1.
set -u
TRIAL_NAME=$(basename "$0")
SRC_DIR=$(cd "$(dirname "$0")/../.." && pwd)
TESTS_DIR=$SRC_DIR/tests
: "${H2K_BIN:=$SRC_DIR/bin}"
: "${H2K_TRIALS:=20}"
SIM_BIN=${H2K_SIM_BIN:-$SRC_DIR/tests/sim/h2k-sim}
mkdir -p "$SRC_DIR/tests/trash"
WORK=$(mktemp -d "$SRC_DIR/tests/trash/trial-$TRIAL_NAME.XXXXXX") || exit 2
cd "$WORK" || exit 2
export PATH="$H2K_BIN:$PATH"
export HOME="$WORK/home" XDG_CONFIG_HOME="$WORK/home/.config" XDG_STATE_HOME="$WORK/home/.local/state"
mkdir -p "$HOME" && chmod 700 "$HOME"
unset H2K_URL H2K_USERNAME H2K_PASSWORD H2K_INSECURE H2K_THUMBPRINT H2K_SESSION \
      H2K_SPOOL H2K_CONFIG GOVC_URL GOVC_USERNAME GOVC_PASSWORD GOVC_INSECURE \
      LOG_LEVEL H2K_LOG_LEVEL
export H2K_SYSCONFIG="$WORK/etc-h2k-config.yaml"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=125}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:exitcode=125}

PIDS=()
trial_cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	PIDS=()
	if [ -z "${H2K_TEST_KEEP:-}" ]; then cd / && rm -rf "$WORK"; fi
}
trap trial_cleanup EXIT

say() { [ -n "${H2K_TRIALS_VERBOSE:-}" ] && printf '%s: %s\n' "$TRIAL_NAME" "$*" >&2; return 0; }
die() { echo "$TRIAL_NAME: $*" >&2; echo "$TRIAL_NAME: 0 trials, 0 survived, setup failed: $*"; exit 2; }

# sim_up [h2k-sim flags]: start the rig, source its env, log in (pinned).
sim_up() {
	[ -x "$SIM_BIN" ] || die "$SIM_BIN not built (scripts/build-sim)"
	"$SIM_BIN" -env "$WORK/sim.env" -max-life 15m "$@" >"$WORK/sim.log" 2>&1 &
	PIDS+=($!)
	local i=0
	while [ ! -s "$WORK/sim.env" ]; do
		i=$((i + 1))
		[ $i -gt 300 ] && die "simulator did not start: $(tail -3 "$WORK/sim.log")"
		sleep 0.1
	done
	. "$WORK/sim.env"
	printf '%s\n' "$SIM_PASSWORD" >"$WORK/.pw" && chmod 600 "$WORK/.pw"
	h2k-login -u "$SIM_URL" -U "$SIM_USER" --password-file "$WORK/.pw" \
		--thumbprint "$SIM_THUMBPRINT" >/dev/null 2>"$WORK/login.err" ||
		die "h2k-login failed: $(cat "$WORK/login.err")"
}

# nfcd_up [nfcd flags]: the misbehaving NFC server on $WORK/srv.
nfcd_up() {
	mkdir -p "$WORK/srv"
	python3 "$TESTS_DIR/servers/nfcd.py" --dir "$WORK/srv" --env "$WORK/nfcd.env" \
		--lifetime 900 "$@" >"$WORK/nfcd.log" 2>&1 &
	PIDS+=($!)
	local i=0
	while [ ! -s "$WORK/nfcd.env" ]; do
		i=$((i + 1))
		[ $i -gt 300 ] && die "nfcd.py did not start: $(tail -3 "$WORK/nfcd.log")"
		sleep 0.05
	done
	. "$WORK/nfcd.env"
}

# vm_disk_files VM: the rig's flat disk files of VM, in device order, one a line.
vm_disk_files() {
	ls "$SIM_DSDIR"/*/"$1"/*.vmdk 2>/dev/null | grep -v -- '-flat\.vmdk$'
}

# url_file URL: the datastore file a device URL of the rig serves.
url_file() {
	local base
	base=$(basename "$1")
	ls "$SIM_DSDIR"/*/"$2"/"$base" 2>/dev/null | head -1
}

# same_bytes FINAL_JSON VM: every file h2k-fetch reported equals the rig's
# source file of its device, the .mf verifies, and no .part is left.
same_bytes() {
	local json=$1 vm=$2 dir
	python3 - "$json" "$SIM_DSDIR" "$vm" <<'PY' || return 1
import json, os, sys, glob, hashlib
j = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
ds, vm = sys.argv[2], sys.argv[3]
urls = {d["key"]: d["url"] for d in j["devices"]}
files = j.get("files") or []
if len([d for d in j["devices"] if d.get("disk")]) < 2 or not files:
    sys.exit("fewer than two disks or no files in the output")
import re
for f in files:
    # trial copies served by nfcd.py are named tN_BASE
    base = re.sub(r"^t[0-9]+_", "", os.path.basename(urls[f["key"]].split("?")[0]))
    src = glob.glob(os.path.join(ds, "*", vm, base))
    if len(src) != 1:
        sys.exit("no source for %s" % base)
    a = open(f["path"], "rb").read()
    b = open(src[0], "rb").read()
    if a != b:
        sys.exit("%s differs from %s" % (f["path"], src[0]))
    if hashlib.sha256(a).hexdigest() != f["sha256"]:
        sys.exit("sha256 of %s is not the reported one" % f["path"])
PY
	dir=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])["dir"])' "$json") || return 1
	if ls "$dir"/*.part >/dev/null 2>&1; then echo "a .part is left in $dir"; return 1; fi
	if ls "$dir"/*.mf >/dev/null 2>&1; then
		(cd "$dir" && sed -n 's/^SHA256(\(.*\))= \(.*\)$/\2  \1/p' *.mf | sha256sum -c --quiet -) || return 1
	fi
}

# rand N: a random integer in [0, N)
rand() { echo $((RANDOM % $1)); }

# figures S F [details]
figures() {
	local s=$1 f=$2
	shift 2
	echo "$TRIAL_NAME: $H2K_TRIALS trials, $s survived (byte-identical), $f failed${1:+, $*}"
	[ "$f" = 0 ] && [ "$s" = "$H2K_TRIALS" ]
}
