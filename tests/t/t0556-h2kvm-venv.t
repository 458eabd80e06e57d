#!/usr/bin/env bash
# scripts/h2kvm-venv, which the t055x tests use to get hyper2kvm: exit 77
# (the tests skip) only when PyPI cannot be reached, 1 when pip fails with
# PyPI up; either way no half-made venv is left to be taken as ready.
# python3 and curl are stand-ins.
. "$(dirname "$0")/../lib.sh"

mkdir -p fake
cat >fake/python3 <<'S'
#!/bin/sh
# "python3 -m venv DIR": a venv whose pip fails
[ "$1 $2" = "-m venv" ] || exit 3
mkdir -p "$3/bin" && printf '#!/bin/sh\nexit 1\n' >"$3/bin/pip" && chmod +x "$3/bin/pip"
S
printf '#!/bin/sh\nexit "${FAKE_CURL_RC:-7}"\n' >fake/curl
chmod +x fake/python3 fake/curl

test_expect_success 'PyPI unreachable: exit 77, no venv left' '
	expect_code 77 env PATH="$TRASH/fake:$PATH" "$SRC_DIR/scripts/h2kvm-venv" "$TRASH/v" 2>err &&
	grep -q "PyPI cannot be reached" err && test ! -e v
'

test_expect_success 'PyPI up but pip fails: exit 1, no venv left' '
	expect_code 1 env FAKE_CURL_RC=0 PATH="$TRASH/fake:$PATH" "$SRC_DIR/scripts/h2kvm-venv" "$TRASH/v" 2>err &&
	grep -q "pip install hyper2kvm==0.2.1 failed" err && test ! -e v
'

test_expect_success 'a ready venv is taken as it is, without python or network' '
	mkdir -p r/bin && printf "#!/bin/sh\n" >r/bin/hyper2kvm && chmod +x r/bin/hyper2kvm &&
	echo 0.2.1 >r/.h2k-ready &&
	env FAKE_CURL_RC=0 PATH="$TRASH/fake:$PATH" "$SRC_DIR/scripts/h2kvm-venv" "$TRASH/r" &&
	test ! -e r/bin/pip && test "$(cat r/.h2k-ready)" = 0.2.1
'

test_done
