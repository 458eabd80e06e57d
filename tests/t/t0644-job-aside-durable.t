#!/usr/bin/env bash
# A file moved aside to bad/ gets its reason written first (fsynced, and
# bad/ with it), then is renamed into bad/.  Before the reason went
# first, its fsync of bad/ came after the rename and made the move
# durable; now nothing did: after a crash the job could be back where it
# was, its reason an orphan in bad/.  bad/ is fsynced after the rename.
. "$(dirname "$0")/../lib.sh"

export H2K_SPOOL="$TRASH/spool"

if ! strace -f -o /dev/null true 2>/dev/null; then
	test_skip 'bad/ fsynced after the move' 'no strace that runs here (scripts/deps installs it)'
	test_done
fi
# LeakSanitizer cannot run under ptrace (an ASan build)
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"

test_expect_success 'setup: a junk file in new/ and in cur/' '
	h2k-job run --once 2>/dev/null && test -d "$H2K_SPOOL/new" &&
	echo junk >"$H2K_SPOOL/new/junk" &&
	echo junk >"$H2K_SPOOL/cur/junk2"
'

# after_move NAME: the calls after NAME's rename into bad/ open bad/ and
# fsync that descriptor, before any other rename (the next reason's fsync
# of bad/ would cover it only by chance)
after_move() {
	awk -v n="$1" '
		!moved && /renameat2?\(/ && index($0, "/" n "\", ") &&
		    index($0, "\"bad/" n ".") { moved = 1; next }
		moved && /renameat2?\(/ { exit }
		moved && /openat\(.*"bad", .*O_DIRECTORY/ { fd = $NF; next }
		moved && fd != "" && index($0, "fsync(" fd ")") { ok = 1; exit }
		END { exit !ok }
	' trace
}

test_expect_success 'h2k-job run: each move into bad/ is followed by an fsync of bad/' '
	strace -f -e trace=renameat,renameat2,openat,fsync -o trace \
		h2k-job run --once 2>run.err &&
	grep -F "new/junk: not a job id" run.err &&
	ls "$H2K_SPOOL/bad" | grep -x "junk\.[0-9a-f]\{8\}" &&
	ls "$H2K_SPOOL/bad" | grep -x "junk\.[0-9a-f]\{8\}\.reason" &&
	after_move junk &&
	after_move junk2
'

test_done
