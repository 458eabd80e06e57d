#!/usr/bin/env bash
# A stage printing a 200 MB line does not grow the runner (issue 10, item
# 7): a stdout line longer than the stages' line bound (16 MiB) fails the
# job with a message naming the stage, and is never held whole; a stderr
# line is cut at 64 KiB in the job's log and the job goes on.  The
# runner's peak RSS stays small.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/t/t06-standins.sh"

export H2K_SPOOL="$TRASH/spool" OUT="$TRASH/out"
standins_install "$TRASH/bin"
standins_vm vm1 30000
mkdir -p "$TRASH/real"
for s in h2k-lease h2k-fetch h2k-ovf; do
	ln -s "$TRASH/bin/h2k-standin" "$TRASH/real/$s"
done

# The bound on the runner's peak RSS (KiB).  Under ASan freed blocks sit
# in quarantine for a while: more room, still far below a 200 MB line.
limit=65536
if ldd "$(command -v h2k-job)" 2>/dev/null | grep -q libasan; then
	limit=196608
fi

# stage NAME <SCRIPT: replace stage NAME by the sh SCRIPT.
stage() {
	{ echo "#!/bin/sh"; cat; } >"$TRASH/bin/$1.new" &&
	chmod +x "$TRASH/bin/$1.new" && mv -f "$TRASH/bin/$1.new" "$TRASH/bin/$1"
}
restore() {
	for s in h2k-lease h2k-fetch h2k-ovf; do
		rm -f "$TRASH/bin/$s" && ln -s h2k-standin "$TRASH/bin/$s" || return 1
	done
}

# run_measured: h2k-job run --once (killed after 30 s), its exit status
# in rc, its peak RSS (VmHWM, KiB) in rss: a high-water mark, so the last
# reading before it exits is its peak.
run_measured() {
	local pid hwm=0 v i=0
	rm -f rss rc
	h2k-job run --once 2>run.err &
	pid=$!
	while [ -r /proc/$pid/status ] && ! grep -q "^State:.*Z" /proc/$pid/status; do
		v=$(awk "/^VmHWM:/ {print \$2}" /proc/$pid/status 2>/dev/null)
		[ -n "$v" ] && hwm=$v
		i=$((i + 1))
		if [ $i -gt 300 ]; then
			echo "runner still running after 30 s: killed"
			kill -9 $pid
			break
		fi
		sleep 0.1
	done
	wait $pid
	echo $? >rc
	echo $hwm >rss
	echo "runner peak RSS: $hwm KiB (limit $limit)"
}

submit1() {
	h2k-job submit - <<-EOF | jq -r .id
	name: j1
	vm_path: /DC0/vm/vm1
	output_path: $OUT
	EOF
}

test_expect_success 'h2k-lease prints a 200 MB line: job failed naming it, runner stays small' '
	stage h2k-lease <<-\EOF &&
	head -c 200000000 /dev/zero | tr "\000" x
	echo
	EOF
	id=$(submit1) &&
	run_measured &&
	test "$(cat rc)" = 1 &&
	test "$(cat rss)" -lt $limit &&
	test "$(field $id .status)" = failed &&
	field $id .error >err &&
	grep "h2k-lease printed a line longer than 16777216 bytes" err &&
	grep "longer than 16777216" "$H2K_SPOOL/log/$id.log" &&
	test -z "$(find "$H2K_SPOOL/new" "$H2K_SPOOL/cur" -mindepth 1)"
'

test_expect_success 'h2k-fetch prints a 200 MB stderr line: cut in the log, the job completes' '
	restore && rm -rf "$OUT" &&
	stage h2k-fetch <<-EOF &&
	{ head -c 200000000 /dev/zero | tr "\\000" y; echo; } >&2
	exec "$TRASH/real/h2k-fetch" "\$@"
	EOF
	id=$(submit1) &&
	run_measured &&
	test "$(cat rc)" = 0 &&
	test "$(cat rss)" -lt $limit &&
	test "$(field $id .status)" = completed &&
	grep -q "line cut: longer than 64 KiB" "$H2K_SPOOL/log/$id.log" &&
	test "$(stat -c %s "$H2K_SPOOL/log/$id.log")" -lt 1000000
'

test_expect_success 'a 1 MB stdout line still goes through every stage' '
	restore && rm -rf "$OUT" &&
	head -c 1000000 /dev/zero | tr "\000" p >pad &&
	stage h2k-lease <<-EOF &&
	"$TRASH/real/h2k-lease" "\$@" | jq -c --rawfile pad "$TRASH/pad" ". + {pad: \\\$pad}"
	EOF
	id=$(submit1) &&
	run_measured &&
	test "$(cat rc)" = 0 &&
	test "$(field $id .status)" = completed
'

job_cleanup
test_done
