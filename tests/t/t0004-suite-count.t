#!/usr/bin/env bash
# tests/run-suite and tests/summary count what ran: a skip ("ok N # skip")
# is neither a pass nor a failure, and the closing line says how many.
# SPDX-License-Identifier: LGPL-3.0-or-later
. "$(dirname "$0")/../lib.sh"

# A unit program and a test file with two passes, one failure, three skips
# (one from tap.h's skip(), one from lib.sh's test_skip, one in capitals).
mkdir -p units suite
cat >units/test-fake <<'EOT'
#!/bin/sh
echo "ok 1 - passes"
echo "ok 2 # skip needs root"
echo "1..2"
EOT
cat >fake.t <<'EOT'
#!/bin/sh
echo "ok 1 - passes too"
echo "not ok 2 - fails"
echo "ok 3 # skip lchown needs root (not root)"
echo "ok 4 - # SKIP old style"
echo "1..4"
exit 1
EOT
chmod +x units/test-fake fake.t

test_expect_success 'run-suite counts skips apart from passes' '
	H2K_SUITE_DIR="$TRASH/suite" PROVE_JOBS=1 \
		"$SRC_DIR/tests/run-suite" fake "$H2K_BIN" "$TRASH/units" "$TRASH/fake.t" >out &&
	grep "^== suite .fake.: 2 passed, 1 failed, 3 skipped" out &&
	read -r name passed failed dubious rc skipped <suite/suite-fake.counts &&
	test "$passed $failed $skipped" = "2 1 3"
'

test_expect_code 1 'summary: "N passed, M failed, K skipped" and fails' '
	H2K_SUITE_DIR="$TRASH/suite" "$SRC_DIR/tests/summary" >sum
'

test_expect_success '... its closing line, in the format CI parses' '
	tail -n 1 sum >actual &&
	echo "2 passed, 1 failed, 3 skipped" >expect &&
	test_cmp expect actual &&
	test ! -e suite/suite-fake.counts
'

test_expect_code 1 'only skips: nothing passed, summary fails' '
	cat >skips.t <<-\EOT &&
	#!/bin/sh
	echo "ok 1 # skip nothing here"
	echo "1..1"
	EOT
	chmod +x skips.t &&
	H2K_SUITE_DIR="$TRASH/suite" "$SRC_DIR/tests/run-suite" skips "$H2K_BIN" /nonexistent "$TRASH/skips.t" >/dev/null &&
	H2K_SUITE_DIR="$TRASH/suite" "$SRC_DIR/tests/summary" >sum2 &&
	tail -n 1 sum2 | grep -x "0 passed, 0 failed, 1 skipped"
'

test_expect_success 'tap.h skip() prints TAP skip directives' '
	cat >tap.c <<-\EOT &&
	#include "tap.h"
	int main(void) { ok(1, "one"); skip(2, "needs %s", "root"); return tap_done(); }
	EOT
	${CC:-cc} -std=c11 -Wall -Wextra -Werror -I"$SRC_DIR/tests/unit" -o tap tap.c &&
	./tap >actual &&
	printf "%s\n" "ok 1 - one" "ok 2 # skip needs root" "ok 3 # skip needs root" "1..3" >expect &&
	test_cmp expect actual
'
test_done
