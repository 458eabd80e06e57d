#!/usr/bin/env bash
# Every test file and shell helper of the suite parses (bash -n): code after
# test_done is never run, so a broken copy there would go unnoticed.
# SPDX-License-Identifier: LGPL-3.0-or-later
. "$(dirname "$0")/../lib.sh"

files=()
for f in "$SRC_DIR"/tests/t/*.t "$SRC_DIR"/tests/t/*.sh "$SRC_DIR"/tests/*.sh \
         "$SRC_DIR"/tests/servers/*.sh "$SRC_DIR"/tests/sim/*.sh \
         "$SRC_DIR"/tests/run-suite "$SRC_DIR"/tests/summary; do
	[ -f "$f" ] && files+=("$f")
done

test_expect_success "bash -n accepts all ${#files[@]} test scripts" '
	test ${#files[@]} -gt 70 &&
	bad= &&
	for f in "${files[@]}"; do
		bash -n "$f" 2>>errors || bad="$bad ${f#$SRC_DIR/}"
	done &&
	{ test -z "$bad" || { cat errors; echo "does not parse:$bad"; false; }; }
'

test_expect_success 'bash -n rejects a file with dead code after test_done' '
	printf "%s\n" "test_done" "fi" >dead.t &&
	test_must_fail_bash_n() { ! bash -n "$1" 2>/dev/null; } &&
	test_must_fail_bash_n dead.t
'
test_done
