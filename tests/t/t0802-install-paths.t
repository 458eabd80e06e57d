#!/usr/bin/env bash
# make install / uninstall with spaces in DESTDIR, PREFIX and SYSCONFDIR
# (a staging root under "/tmp/my build"): every file lands under DESTDIR,
# nothing beside it or in the work tree; uninstall removes them all but the
# config.  Before, the unquoted paths were split: `install -d` made /tmp/sp
# and folders named after the second word in the work tree, and uninstall
# ran rm -f on each word.
. "$(dirname "$0")/../lib.sh"

mkdir -p "out side"
D="$TRASH/out side/st age"
P="/opt/my h2k"
E="/etc/my conf"

test_expect_success 'make install with spaces in DESTDIR, PREFIX, SYSCONFDIR' '
	git -C "$SRC_DIR" status --porcelain --untracked-files=all >before &&
	make -s -C "$SRC_DIR" install DESTDIR="$D" PREFIX="$P" SYSCONFDIR="$E" >make.out 2>&1 ||
		{ cat make.out; false; } &&
	test -x "$D$P/bin/h2k-login" &&
	test -x "$D$P/bin/h2k-export" &&
	test -f "$D$P/share/man/man1/h2k-ls.1" &&
	test -f "$D$P/share/man/man5/h2k-job.5" &&
	test -f "$D$P/lib/systemd/system/h2k-job@.service" &&
	test -f "$D$P/lib/systemd/system/h2k-job-api.socket" &&
	test -f "$D$P/lib/systemd/system/h2k-job-api.service" &&
	test -L "$D$P/share/bash-completion/completions/h2k-job" &&
	test "$(file_mode "$D$E/hyper2kvm/config.yaml")" = 600 &&
	ls -A "out side" >top && echo "st age" >want && test_cmp want top &&
	git -C "$SRC_DIR" status --porcelain --untracked-files=all >after &&
	test_cmp before after
'

test_expect_success 'make uninstall with the same paths leaves the config alone' '
	make -s -C "$SRC_DIR" uninstall DESTDIR="$D" PREFIX="$P" SYSCONFDIR="$E" >make.out 2>&1 ||
		{ cat make.out; false; } &&
	find "$D" ! -type d >left &&
	echo "$D$E/hyper2kvm/config.yaml" >want &&
	test_cmp want left
'

test_done
