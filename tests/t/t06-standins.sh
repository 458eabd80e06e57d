# tests/t/t06-standins.sh - stand-in pipeline commands for the h2k-job spool
# tests (sourced by t06xx).  They behave like the real h2k-lease, h2k-fetch
# and h2k-ovf where the runner can tell: JSON lines in and out, progress
# JSON on h2k-fetch's stderr, slow resumable copies written as NAME.part
# then renamed, the lease aborted on SIGTERM.  Their "server" is a
# directory: $STANDIN_SRC/VMNAME/*.vmdk are the disks; lease states live in
# $STANDIN_STATE/leases/.  Every completed export appends "complete ID" to
# $STANDIN_STATE/ledger under flock, every fetch start "fetch ID ATTEMPT
# OFFSET", so tests can count executions.
# Knobs (environment): STANDIN_CHUNK bytes per step, STANDIN_DELAY seconds
# per step, STANDIN_PAUSE=lease|ovf|ovf-printed stops that stage on the first attempt
# of a job after touching $STANDIN_STATE/at-STAGE-ID, STANDIN_TERM_DELAY
# seconds h2k-fetch takes to abort on SIGTERM, STANDIN_STREAM=1 progress
# lines as for a stream (bytes_total null, percent of capacity_bytes).
# SPDX-License-Identifier: LGPL-3.0-or-later

# The runner looks for the pipeline next to itself first; under the
# valgrind wrappers "itself" is the real binary, so say where: the trash
# bin/ (the stand-ins, or the wrapped real commands).
export H2K_BINDIR="$TRASH/bin"
# The runner gives its stages an allow-list of its environment: name the
# stand-ins' knobs.
export H2K_JOB_KEEPENV="STANDIN_STATE STANDIN_SRC STANDIN_CHUNK STANDIN_DELAY STANDIN_PAUSE STANDIN_TERM_DELAY STANDIN_STREAM"

standins_install() { # DIR: replace h2k-lease/fetch/ovf in DIR with stand-ins
	local d=$1
	rm -f "$d/h2k-lease" "$d/h2k-fetch" "$d/h2k-ovf"
	# POSIX sh + jq + dd: dozens of these start per test, and a python
	# start-up costs ten times as much on a loaded machine.
	cat >"$d/h2k-standin" <<'SH'
#!/bin/sh
state=$STANDIN_STATE
jid=${H2K_JOB_ID:--}
attempt=${H2K_JOB_ATTEMPT:-1}
stage=${0##*/}
echo "$stage $*" >>"$state/argv"

# One short O_APPEND write is atomic: no lock needed between stand-ins.
ledger() {
	printf '%s\n' "$1" >>"$state/ledger"
}
lease_state() {
	mkdir -p "$state/leases" &&
	printf '%s\n' "$2" >"$state/leases/$1.tmp" &&
	mv "$state/leases/$1.tmp" "$state/leases/$1"
}
pause() {
	if [ "${STANDIN_PAUSE:-}" = "$1" ] && [ "$attempt" = 1 ]; then
		: >"$state/at-$1-$jid"
		while :; do sleep 1; done
	fi
}

case $stage in
h2k-lease)
	for vm; do :; done
	name=${vm%/}
	name=${name##*/}
	d=$STANDIN_SRC/$name
	if [ ! -d "$d" ]; then
		echo "h2k-lease: $vm: no such VM" >&2
		exit 6
	fi
	moref=lease-$$-$name
	lease_state "$moref" ready
	pause lease
	i=0
	for f in "$d"/*; do
		printf '{"key":"/vm/disk%d","target_id":"%s","disk":true,"size":%d,"url":"file://%s"}\n' \
			$i "${f##*/}" "$(stat -c %s "$f")" "$f"
		i=$((i + 1))
	done | jq -s -c --arg name "$name" --arg path "$vm" --arg moref "$moref" \
		'{name: $name, path: $path, moref: ("vm-" + $name),
		  lease: {moref: $moref, timeout_s: 300, mode: "export", snapshot: null},
		  devices: .}' |
		if [ -n "${STANDIN_STREAM:-}" ]; then
			jq -c '.lease.disk_capacity_bytes = ([.devices[].size] | add) | del(.devices[].size)'
		else
			cat
		fi
	;;
h2k-fetch)
	out=
	while [ $# -gt 0 ]; do
		case $1 in
		-o) out=$2; shift 2 ;;
		-j|-s|--progress) shift 2 ;;
		*) shift ;;
		esac
	done
	lease=
	trap 'sleep "${STANDIN_TERM_DELAY:-0}"; [ -n "$lease" ] && lease_state "$lease" aborted
	      echo "h2k-fetch: interrupted; lease aborted, .part kept" >&2; exit 10' TERM
	chunk=${STANDIN_CHUNK:-65536}
	delay=${STANDIN_DELAY:-0}
	tab=$(printf '\t')
	while IFS= read -r line; do
		printf '%s\n' "$line" | jq -r '.name, .lease.moref,
		    (.devices[] | [.key, .target_id, (.size | tostring), .url[7:]] | @tsv)' >"$state/devs.$$"
		{ read -r name; read -r lease; } <"$state/devs.$$"
		vdir=$out/$name
		mkdir -p "$vdir"
		: >"$state/files.$$"
		sed 1,2d "$state/devs.$$" >"$state/devs2.$$"
		while IFS=$tab read -r key tid size src; do
			[ "$size" != null ] || size=$(stat -c %s "$src")
			dst=$vdir/$tid
			part=$dst.part
			: >>"$part"
			off=$(stat -c %s "$part")
			ledger "fetch $jid $attempt $off"
			have=$off
			while [ "$have" -lt "$size" ]; do
				n=$chunk
				[ $((size - have)) -lt "$n" ] && n=$((size - have))
				dd if="$src" of="$part" iflag=skip_bytes,count_bytes oflag=seek_bytes \
					conv=notrunc skip="$have" seek="$have" count="$n" bs=65536 status=none || exit 8
				have=$((have + n))
				if [ -n "${STANDIN_STREAM:-}" ]; then
					printf '{"phase":"download","vm":"%s","file":"%s","bytes_done":%d,"bytes_total":null,"capacity_bytes":%d,"percent_complete":%d}\n' \
						"$name" "$tid" "$have" "$size" $((have * 100 / size)) >&2
				else
					printf '{"phase":"download","vm":"%s","file":"%s","bytes_done":%d,"bytes_total":%d,"percent_complete":%d}\n' \
						"$name" "$tid" "$have" "$size" $((have * 100 / size)) >&2
				fi
				[ "$delay" = 0 ] || sleep "$delay"
			done
			sha=$(sha256sum <"$part")
			mv "$part" "$dst"
			printf '{"key":"%s","target_id":"%s","path":"%s","size":%d,"sha256":"%s"}\n' \
				"$key" "$tid" "$dst" "$size" "${sha%% *}" >>"$state/files.$$"
		done <"$state/devs2.$$"
		printf '%s\n' "$line" | jq -c --arg dir "$vdir" --slurpfile files "$state/files.$$" \
			'. + {dir: $dir, files: $files}'
		rm -f "$state/devs.$$" "$state/devs2.$$" "$state/files.$$"
	done
	;;
h2k-ovf)
	while IFS= read -r line; do
		pause ovf
		printf '%s\n' "$line" | jq -r '.dir, .name, .lease.moref' >"$state/ovf.$$"
		{ read -r dir; read -r name; read -r moref; } <"$state/ovf.$$"
		rm -f "$state/ovf.$$"
		printf '<Envelope/>\n' >"$dir/$name.ovf.part" &&
		mv "$dir/$name.ovf.part" "$dir/$name.ovf" || exit 8
		lease_state "$moref" completed
		ledger "complete $jid"
		printf '%s\n' "$line" | jq -c --arg p "$dir/$name.ovf" '.ovf_path = $p | .lease.state = "completed"'
		pause ovf-printed
	done
	;;
esac
SH
	for s in h2k-lease h2k-fetch h2k-ovf; do
		ln -s h2k-standin "$d/$s"
	done
	chmod +x "$d/h2k-standin"
	job_trap
	export STANDIN_STATE="$TRASH/standin" STANDIN_SRC="$TRASH/src"
	mkdir -p "$STANDIN_STATE" "$STANDIN_SRC"
}

# standins_vm NAME BYTES...: a VM with one random disk per size.
standins_vm() {
	local name=$1 i=0
	shift
	mkdir -p "$STANDIN_SRC/$name"
	for sz in "$@"; do
		head -c "$sz" /dev/urandom >"$STANDIN_SRC/$name/disk-$i.vmdk"
		i=$((i + 1))
	done
}

# job_file NAME VM OUTDIR [options yaml...]: a single YAML job on stdout.
job_yaml() {
	printf 'name: %s\nvm_path: /DC0/vm/%s\noutput_path: %s\n' "$1" "$2" "$3"
}

# jqget JSON EXPR: print the jq expression EXPR over the object JSON
# (jq, not python: these run hundreds of times and start-up time counts).
jqget() {
	printf '%s\n' "$1" | jq -r "$2"
}

# field ID EXPR: EXPR over job ID's record (h2k-job show).
field() {
	h2k-job show "$1" | jq -r "$2"
}

# wait_for TEST-ARGS... : poll `test ARGS` for up to $WAIT_S (20) seconds.
# under valgrind a pipeline takes seconds per stage just to start
if [ -n "${H2K_VALGRIND:-}" ]; then WAIT_DEFAULT=90; else WAIT_DEFAULT=20; fi
wait_for() {
	local i=0 n=$(( ${WAIT_S:-$WAIT_DEFAULT} * 10 ))
	while ! test "$@"; do
		i=$((i + 1))
		if [ $i -gt $n ]; then
			echo "timed out waiting for: test $*" >&2
			return 1
		fi
		sleep 0.1
	done
}

# SLOW: the per-chunk delay of a download a test must catch in the act;
# under valgrind every h2k-job call takes seconds, so the download too.
if [ -n "${H2K_VALGRIND:-}" ]; then SLOW=0.4; else SLOW=0.05; fi

# wait_grep PATTERN FILE: poll (up to 20 s) until FILE has a line matching.
wait_grep() {
	local i=0
	until grep -q -- "$1" "$2" 2>/dev/null; do
		i=$((i + 1))
		if [ $i -gt 200 ]; then
			echo "timed out waiting for '$1' in $2" >&2
			return 1
		fi
		sleep 0.1
	done
}

# wait_gone PID: wait (up to 20 s) until PID has exited (for non-children).
wait_gone() {
	local i=0
	while kill -0 "$1" 2>/dev/null; do
		i=$((i + 1))
		[ $i -gt 200 ] && { echo "pid $1 still alive" >&2; return 1; }
		sleep 0.1
	done
}

# group_gone PGID: no process is left in the process group.
group_gone() {
	local i=0
	while pgrep -g "$1" >/dev/null 2>&1; do
		i=$((i + 1))
		if [ $i -gt 100 ]; then
			echo "processes left in group $1:" >&2
			ps -o pid,pgid,args -g "$1" >&2
			return 1
		fi
		sleep 0.1
	done
}

# submit_vms VM...: one job per VM into $OUT, prints ids one per line.
submit_vms() {
	local f=$TRASH/.jobs.$$.yaml vm
	echo "jobs:" >"$f"
	for vm in "$@"; do
		printf '  - name: %s\n    vm_path: /DC0/vm/%s\n    output_path: %s\n' \
		    "$vm" "$vm" "$OUT" >>"$f"
	done
	h2k-job submit "$f" | jq -r .id
}

# ledger_count WHAT ID: lines "WHAT ID..." in the stand-ins' ledger.
ledger_count() {
	if [ -f "$STANDIN_STATE/ledger" ]; then
		grep -c "^$1 $2\( \|\$\)" "$STANDIN_STATE/ledger"
	else
		echo 0
	fi
	return 0
}

# wait_field ID EXPR VALUE: poll job ID's record until EXPR prints VALUE.
wait_field() {
	local i=0 v
	while v=$(field "$1" "$2") && [ "$v" != "$3" ]; do
		i=$((i + 1))
		if [ $i -gt 100 ]; then
			echo "job $1: $2 is '$v', not '$3'" >&2
			return 1
		fi
		sleep 0.2
	done
}

# start_runner ERRFILE [run options...]: start `h2k-job run` in the
# background of the current shell; its pid goes to $RUNNER (and ERRFILE.pid).
start_runner() {
	local err=$1
	shift
	h2k-job run "$@" 2>"$err" &
	RUNNER=$!
	echo $RUNNER >"$err.pid"
	echo $RUNNER >>"$TRASH/.runners"
}

# job_cleanup: kill -9 every runner a test started and left behind (a
# failed test); their jobs' processes die with them (PR_SET_PDEATHSIG).
# Pushed onto the file's cleanup stack by job_trap.
job_cleanup() {
	local p
	[ -f "$TRASH/.runners" ] || return 0
	for p in $(cat "$TRASH/.runners"); do
		kill -9 "$p" 2>/dev/null
	done
	return 0
}
job_trap() {
	atexit_once job job_cleanup
}

# runner_up: wait until a runner registered itself in the spool.
runner_up() {
	wait_for -d "$H2K_SPOOL/run" &&
	wait_for -n "$(ls "$H2K_SPOOL/run" 2>/dev/null)"
}
