#!/usr/bin/env bash
# attack (issue 10 item 13): password input edges around the NUL fix.
# A password holding a CR logs in from every source (a bare CR in the
# SOAP body reached the server as LF: "incorrect password" for the right
# one); a CRLF password file loses only its last CR, as a FIFO does, and
# a leading UTF-8 byte order mark (Notepad) is not taken as password; a
# password file is held to the same length limit as a FIFO (exit 2); an
# endless line with no newline (/dev/zero, a runaway pipe) is refused
# with exit 2 instead of being read forever; a password SOAP cannot carry
# (invalid UTF-8, a control character) is refused with exit 2 instead of
# going out in a malformed request (a server parse error, exit 9).
. "$(dirname "$0")/../lib.sh"

CR=$(printf '\r')
sim_start -password "ab${CR}cd"
S=$HOME/.local/state/h2k/session.json
L="h2k-login -k -u $SIM_URL -U $SIM_USER"

ok_login() { test_line_count = 0 err && test -s "$S" && rm -f "$S"; }

test_expect_success 'password file "ab<CR>cd<LF>": logged in' '
	printf "ab\rcd\n" >p1 && chmod 600 p1 &&
	$L --password-file p1 >out 2>err && ok_login
'
test_expect_success 'password file "ab<CR>cd<CR><LF>": only the last CR goes, logged in' '
	printf "ab\rcd\r\n" >p2 && chmod 600 p2 &&
	$L --password-file p2 >out 2>err && ok_login
'
test_expect_success 'password FIFO "ab<CR>cd<CR><LF>": logged in' '
	mkfifo f1 && { printf "ab\rcd\r\n" >f1 & } &&
	$L --password-file f1 >out 2>err && wait && ok_login
'
test_expect_success 'H2K_PASSWORD with a CR: logged in' '
	H2K_PASSWORD="ab${CR}cd" $L >out 2>err && ok_login
'
test_expect_success 'H2K_URL with %0D in the password: logged in' '
	H2K_URL="https://$SIM_USER:ab%0Dcd@$SIM_HOST/sdk" h2k-login -k >out 2>err && ok_login
'

test_expect_success 'password file saved with a UTF-8 byte order mark: the mark is not sent, logged in' '
	printf "\357\273\277ab\rcd\r\n" >pbom && chmod 600 pbom &&
	$L --password-file pbom >out 2>err && ok_login
'
test_expect_success 'the same through a FIFO and --password-stdin: logged in' '
	mkfifo f2 && { cat pbom >f2 & } &&
	$L --password-file f2 >out 2>err && wait && ok_login &&
	$L --password-stdin <pbom >out 2>err && ok_login
'

test_expect_success 'password file longer than a FIFO may send: exit 2, file named' '
	head -c 60000 /dev/zero | tr "\0" a >plong && chmod 600 plong &&
	expect_code 2 $L --password-file plong >out 2>err &&
	test_one_line err && grep -qF plong err && grep -q "longer than" err &&
	test ! -e "$S"
'

test_expect_success '--password-stdin from /dev/zero: exit 2, not read forever' '
	expect_code 2 timeout 60 $L --password-stdin </dev/zero >out 2>err &&
	test_one_line err && grep -q "standard input" err && test ! -e "$S"
'
test_expect_success '--password-stdin from an endless line without NUL: exit 2' '
	{ yes abc | tr -d "\n" | expect_code 2 timeout 60 $L --password-stdin >out 2>err; } &&
	test_one_line err && grep -q "longer than" err && test ! -e "$S"
'
test_expect_success '--password-file /dev/fd/3 on /dev/zero: exit 2' '
	expect_code 2 timeout 60 $L --password-file /dev/fd/3 3</dev/zero >out 2>err &&
	test_one_line err && grep -qF /dev/fd/3 err && test ! -e "$S"
'

test_expect_success 'password with bytes that are not UTF-8: exit 2 before any Login, not a server parse error' '
	printf "ab\377\376cd\n" >p8 && chmod 600 p8 &&
	expect_code 2 $L --password-file p8 >out 2>err &&
	test_one_line err && grep -q "invalid UTF-8" err && test ! -e "$S"
'
test_expect_success 'password with a control byte (0x01): exit 2' '
	printf "ab\001cd\n" >p9 && chmod 600 p9 &&
	expect_code 2 $L --password-file p9 >out 2>err &&
	test_one_line err && grep -q "control character" err && test ! -e "$S"
'
test_expect_success 'a password with a tab and non-ASCII UTF-8 still goes to the server (wrong here: exit 3)' '
	printf "a\tb\303\251\n" >p10 && chmod 600 p10 &&
	expect_code 3 $L --password-file p10 >out 2>err &&
	grep -q "incorrect" err
'

test_done
