#!/usr/bin/env bash
# Each libFuzzer harness (tests/fuzz/fuzz-*.c) briefly: builds with clang
# -fsanitize=fuzzer,address,undefined, runs FUZZ_SHORT_SECONDS (default 2)
# from its seed corpus, and must find nothing.  `make fuzz` runs the long
# version.  Skipped only when clang's libFuzzer runtime is missing.
. "$(dirname "$0")/../lib.sh"
if [ -n "${H2K_VALGRIND:-}" ]; then
	# Nothing here runs an h2k command under the valgrind wrappers.
	test_skip "$TEST_NAME" "not a valgrind test: sanitizer builds and trials run in the other passes"
	test_done
fi

secs=${FUZZ_SHORT_SECONDS:-2}
case $H2K_BIN in
*/build/san/*)
	# The harnesses are ASan+UBSan builds already: a second pass adds nothing.
	test_skip 'fuzz harnesses' 'already run under ASan+UBSan in the plain pass'
	test_done ;;
esac
rc=0
"$SRC_DIR/tests/fuzz/run" 0 nonexistent-harness >probe.out 2>&1 || rc=$?
if [ "$rc" = 2 ]; then
	test_skip 'fuzz harnesses' "$(tail -1 probe.out)"
	test_done
fi

# One run of the runner for all harnesses (it builds and probes once).
names=()
for h in "$SRC_DIR"/tests/fuzz/fuzz-*.c; do
	name=$(basename "$h" .c)
	need=$(sed -n 's/.*needs: *//p' "$h" | head -1)
	missing=
	for f in $need; do [ -f "$SRC_DIR/$f" ] || missing=$f; done
	if [ -n "$missing" ]; then
		test_skip "$name" "$missing not on this branch yet"
		continue
	fi
	names+=("$name")
done
"$SRC_DIR/tests/fuzz/run" "$secs" "${names[@]}" >run.out 2>&1
echo $? >run.rc
for name in "${names[@]}"; do
	test_expect_success "$name: ${secs}s from the seed corpus, no finding" '
		line=$(grep "^$name: " run.out) || { cat run.out; false; } &&
		echo "$line" &&
		execs=$(echo "$line" | sed -n "s/.* s, \([0-9]*\) execs.*/\1/p") &&
		test "${execs:-0}" -gt 0 &&
		echo "$line" | grep -q "findings 0$"
	'
done
test_expect_success 'the fuzz runner exits 0' 'test "$(cat run.rc)" = 0 || { cat run.out; false; }'
test_done
