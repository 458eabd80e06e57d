#!/usr/bin/env bash
# The pages of h2k-lease, h2k-ovf and h2k-export say what the programs do:
# SYNOPSIS is usage() (checked for every command, from the Makefile's CMDS,
# and every section 1 page), every exit code of lib/h2k.h is listed, every
# long option a page names is accepted, and every example pipeline names
# only options the commands take.
. "$(dirname "$0")/../lib.sh"

CMDS="h2k-lease h2k-ovf h2k-export"
ALL_CMDS="$(sed -n 's/^CMDS *= *//p' "$SRC_DIR/Makefile") h2k-export"

test_expect_success 'every command and every section 1 page is checked' '
	echo $ALL_CMDS | tr " " "\n" | sort >cmds &&
	test_line_count = 7 cmds &&
	(cd "$SRC_DIR/man" && ls h2k-*.1) | sed "s/\.1$//" | sort >pages &&
	test_cmp cmds pages
'

if command -v groff >/dev/null 2>&1; then
	for c in $ALL_CMDS; do
		test_expect_success "$c: man SYNOPSIS equals usage()" '
			expect_code 2 '"$c"' --no-such-option 2>usage &&
			sed -e "/^\(.*\/\)\{0,1\}'"$c"': /d" -e "s/^usage: //" usage | tr -s " \n" "  " |
				sed "s/ *$//" >want &&
			groff -mandoc -Tascii -P-c "$SRC_DIR/man/'"$c"'.1" 2>/dev/null | col -b |
				sed -n "/^SYNOPSIS/,/^DESCRIPTION/p" | sed "1d;\$d" |
				tr -s " \t\n" "   " | sed "s/^ *//; s/ *$//" >got &&
			test_cmp want got
		'
	done
else
	test_skip 'man SYNOPSIS equals usage()' 'groff not installed'
fi

test_expect_success 'EXIT STATUS lists every code of lib/h2k.h' '
	sed -n "s/^[[:space:]]*H2K_EX_[A-Z]* = \([0-9]*\),.*/\1/p" "$SRC_DIR/lib/h2k.h" >codes &&
	test_line_count -ge 12 codes &&
	for c in $CMDS; do
		sed -n "/^\.Sh EXIT STATUS/,/^\.Sh /p" "$SRC_DIR/man/$c.1" >section &&
		while read -r n; do
			grep -qx "\.It $n" section || { echo "$c.1 lacks exit $n"; exit 1; }
		done <codes || exit 1
	done
'

test_expect_success 'every long option a page names is accepted' '
	for c in $CMDS; do
		grep "^\.It .*Fl Fl" "$SRC_DIR/man/$c.1" | grep -o "Fl Fl [a-z0-9-]*" |
			sed "s/Fl Fl /--/" | sort -u >opts &&
		test_line_count -ge 3 opts &&
		while read -r o; do
			# No session: an accepted option gets past getopt and
			# fails later, for want of a session or a value.
			"$c" "$o" -s "$TRASH/none.json" </dev/null >/dev/null 2>err
			if grep -qi "unrecognized option\|unknown option" err; then
				echo "$c: $o refused"; cat err; exit 1
			fi
		done <opts || exit 1
	done
'

test_expect_success 'the page examples use only options the commands accept' '
	for c in $CMDS; do
		sed -n "/^\.Sh EXAMPLES/,/^\.Sh /p" "$SRC_DIR/man/$c.1" |
			grep -o "h2k-\(lease\|ovf\|export\)\( \+-[-a-z0-9]\+\)\+" >>uses || :
	done &&
	test_line_count -ge 3 uses &&
	tr " " "\n" <uses | awk "/^h2k-/ { cmd = \$0; next } /^-/ { print cmd, \$0 }" |
		sort -u >pairs &&
	while read -r cmd opt; do
		"$cmd" "$opt" -s "$TRASH/none.json" </dev/null >/dev/null 2>err
		if grep -qi "unrecognized option\|unknown option\|invalid option" err; then
			echo "$cmd: $opt refused"; exit 1
		fi
	done <pairs
'

test_done
