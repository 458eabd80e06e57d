#!/usr/bin/env bash
# The fault trials of tests/trials, short: H2K_TRIALS=2 each (eio runs its
# five cases that cover every command and write, fsync and close).  `make trials` runs them with H2K_TRIALS=20 and
# prints the figures.
. "$(dirname "$0")/../lib.sh"
if [ -n "${H2K_VALGRIND:-}" ]; then
	# Nothing here runs an h2k command under the valgrind wrappers.
	test_skip "$TEST_NAME" "not a valgrind test: sanitizer builds and trials run in the other passes"
	test_done
fi

[ -x "$SIM_BIN" ] || { echo "Bail out! $SIM_BIN not built (make sim)"; exit 1; }
for t in "$SRC_DIR"/tests/trials/*; do
	name=$(basename "$t")
	[ -f "$t" ] && [ -x "$t" ] && [ "$name" != run ] || continue
	n=${H2K_SHORT_TRIALS:-2}
	# A job trial drains a spool of two VMs: one repetition is the short run.
	case $name in job-*) n=${H2K_SHORT_TRIALS:-1} ;; esac
	test_expect_success "trial $name: every repetition survives" '
		H2K_TRIALS='"$n"' "$SRC_DIR/tests/trials/run" "$name" >fig.out 2>fig.err
		rc=$?
		cat fig.out; tail -5 fig.err
		test $rc = 0 &&
		grep -E "^$name: [0-9]+ trials, [0-9]+ survived .*, 0 failed" fig.out &&
		grep -q "survived, 0 failed$" fig.out
	'
done
test_done
