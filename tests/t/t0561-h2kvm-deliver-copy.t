#!/usr/bin/env bash
# --deliver DIR on another file system (the copy path): the copy never
# touches a NAME.ova.part that is not its own (a same-named VM delivered at
# the same time by another run writes one), two same-named VMs delivered
# at once give one winner and one exit 12 with the winner's bytes intact,
# a full file system (ENOSPC mid-copy) fails with exit 8 leaving DIR as it
# was, and a run killed mid-copy leaves no file with a watched extension.
. "$(dirname "$0")/../lib.sh"

command -v unshare >/dev/null 2>&1 || { test_skip "copy path" "no unshare"; test_done; }
if ! [ -d /dev/shm ] || ! [ -w /dev/shm ] ||
   [ "$(stat -c %d /dev/shm)" = "$(stat -c %d "$TRASH")" ]; then
	test_skip "copy path" "/dev/shm is not another writable file system"
	test_done
fi

sim_start -vm 2 -disks 1 -disk-size 4M -disk-fill random -power off
h2k_login_sim || { echo "Bail out! login failed"; exit 1; }
VM=/DC0/vm/DC0_H0_VM0

W=$(mktemp -d /dev/shm/h2k-t0561.XXXXXX) && test_atexit "rm -rf '$W'"

test_expect_success 'an OVA to deliver' '
	h2k-lease "$VM" | h2k-fetch -o exp | h2k-ovf --ova --keep-files >line 2>err &&
	test_line_count = 1 line && test -f "$(jget line ova_path)"
'

test_expect_success 'another run'"'"'s NAME.ova.part is left alone' '
	echo "another run is writing this" >"$W/DC0_H0_VM0.ova.part" &&
	ls -i "$W/DC0_H0_VM0.ova.part" >inode &&
	h2k-ovf --ova --keep-files --deliver "$W" <line >out 2>err2 &&
	cmp "$(jget line ova_path)" "$W/DC0_H0_VM0.ova" &&
	echo "another run is writing this" >want && test_cmp want "$W/DC0_H0_VM0.ova.part" &&
	ls -i "$W/DC0_H0_VM0.ova.part" >inode2 && test_cmp inode inode2 &&
	ls -A "$W" >l && printf "%s\n" DC0_H0_VM0.ova DC0_H0_VM0.ova.part >want2 &&
	test_cmp want2 l
'

test_expect_success 'the copy is a file of its own, mode as the OVA' '
	test "$(stat -c %h "$W/DC0_H0_VM0.ova")" = 1 &&
	test "$(file_mode "$W/DC0_H0_VM0.ova")" = "$(file_mode "$(jget line ova_path)")"
'

test_expect_success 'two runs at once, same name: one wins, one exit 12, the bytes are whole' '
	rm -f "$W"/* && cp line line.b &&
	printf "%s\n" "h2k-ovf --ova --keep-files --deliver \"\$1\" <\"\$2\" >\"\$2.out\" 2>\"\$2.err\"" \
		"echo \$? >\"\$2.rc\"" >deliver.sh &&
	{ sh deliver.sh "$W" line & sh deliver.sh "$W" line.b & wait; } &&
	cp line.rc rc1 && cp line.b.rc rc2 && cp line.err e1 && cp line.b.err e2 &&
	sort rc1 rc2 | tr "\n" " " >rcs && { test "$(cat rcs)" = "0 12 " || test "$(cat rcs)" = "0 0 " ||
		{ cat rcs e1 e2; false; }; } &&
	cmp "$(jget line ova_path)" "$W/DC0_H0_VM0.ova" &&
	ls -A "$W" >l && echo DC0_H0_VM0.ova >want && test_cmp want l
'

test_expect_success 'ENOSPC mid-copy: exit 8, one line naming the directory, nothing left' '
	mkdir small &&
	expect_code 8 unshare --mount sh -c "mount -t tmpfs -o size=1m tmpfs small &&
		h2k-ovf --ova --keep-files --deliver small <line >o3 2>e3; rc=\$?;
		ls -A small >left; exit \$rc" &&
	grep -v "warning:" e3 >e3b && test_one_line e3b && grep -q "small" e3b && grep -q "No space left" e3 &&
	test_line_count = 0 o3 && test_line_count = 0 left
'

test_expect_success 'SIGKILL mid-copy: no file with a watched extension, no .part' '
	rm -f "$W"/* &&
	unshare --mount sh -c "mount -t tmpfs -o size=64m tmpfs \"$W\" &&
		{ h2k-ovf --ova --keep-files --deliver \"$W\" <line >o4 2>e4 & pid=\$!;
		  sleep 0.05; kill -KILL \$pid; wait \$pid; ls -A \"$W\" >left4; }" ;
	! grep -v "^DC0_H0_VM0\.ova$" left4
'

test_done
