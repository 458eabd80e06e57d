#!/usr/bin/env bash
# The documentation of h2k-login says what the program does: the man page
# SYNOPSIS is usage(), every exit code of lib/h2k.h is listed, and every
# long option in the page is accepted.
. "$(dirname "$0")/../lib.sh"

MAN1=$SRC_DIR/man/h2k-login.1
MAN7=$SRC_DIR/man/h2k.7

if command -v groff >/dev/null 2>&1; then
	test_expect_success 'man SYNOPSIS equals usage()' '
		expect_code 2 h2k-login -x 2>usage &&
		sed -n -e "/^usage: /,\$p" usage | sed "s/^usage: //" | tr -s " \n" "  " |
			sed "s/ *$//" >want &&
		groff -mandoc -Tascii -P-c "$MAN1" 2>/dev/null | col -b |
			sed -n "/^SYNOPSIS/,/^DESCRIPTION/p" | sed "1d;\$d" |
			tr -s " \t\n" "   " | sed "s/^ *//; s/ *$//" >got &&
		test_cmp want got
	'
else
	test_skip 'man SYNOPSIS equals usage()' 'groff not installed'
fi

test_expect_success 'EXIT STATUS lists every code of lib/h2k.h, in both pages' '
	sed -n "s/^[[:space:]]*H2K_EX_[A-Z]* = \([0-9]*\),.*/\1/p" "$SRC_DIR/lib/h2k.h" >codes &&
	test_line_count -ge 12 codes &&
	for m in "$MAN1" "$MAN7"; do
		sed -n "/^\.Sh EXIT STATUS/,/^\.Sh /p" "$m" >section &&
		while read -r c; do
			grep -qx "\.It $c" section || { echo "$m lacks exit $c"; exit 1; }
		done <codes || exit 1
	done
'

test_expect_success 'every long option the page names is accepted' '
	grep -o "Fl Fl [a-z-]*" "$MAN1" | sed "s/Fl Fl /--/" | sort -u >opts &&
	test_line_count -ge 10 opts &&
	while read -r o; do
		h2k-login "$o" 2>err >/dev/null </dev/null
		if grep -q "unrecognized option" err; then echo "$o refused"; exit 1; fi
	done <opts
'

test_expect_success 'h2k.7 documents every field of the pipeline contract in HACKING.md' '
	sed -n "/^## The pipeline/,/^## The test rig/p" "$SRC_DIR/HACKING.md" |
		grep -o "\"[a-z_0-9]*\":" | tr -d "\":" | sort -u >fields &&
	test_line_count -ge 30 fields &&
	while read -r f; do
		grep -q "Li $f\b\|Li [a-z_]*\.$f\b\|\"$f\"" "$MAN7" || { echo "h2k.7 lacks $f"; exit 1; }
	done <fields
'

test_done
