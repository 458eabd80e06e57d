#!/usr/bin/env bash
# Trust files (issue 10, items 8 and 9): a config file or a CA file that
# someone else can replace decides where the password goes and whom the
# session cookie is shown to, so h2k refuses it (exit 11) whatever it
# holds: owned by the user or root, not writable by group or others, nor
# any directory above it (sticky ones such as /tmp aside); a symlink only
# where its own directories and its owner pass too (t0107).
# The CA file is checked at login and its content kept in the session
# file: later commands trust what was checked, not what the file holds now.
. "$(dirname "$0")/../lib.sh"

sim_start -trace -password "Tr-u5t-Pw"

logins() { grep -c '<Login' "$TRASH/sim.log" || :; }
printf '%s\n' "$SIM_PASSWORD" >pw && chmod 600 pw
# A config that sends the password to the rig without verifying it: what
# an attacker would write, with their own URL.
evil() { printf 'VCenterURL: %s\nUsername: %s\nInsecure: true\n' \
	"$SIM_URL" "$SIM_USER" >"$1" && chmod "${2:-644}" "$1"; }
cfglogin() { h2k-login --password-file pw -s "$@"; }
login() { h2k-login -u "$SIM_URL" -U "$SIM_USER" --password-file pw "$@"; }
other_uid=65534

# refused FILE-IN-MESSAGE WHY: the one-line exit-11 message, no session, no Login.
refused() {
	test_one_line err && grep -qF "$1" err && grep -qE "$2" err &&
	test "$(logins)" = "$n"
}

test_expect_success 'control: a 0644 config without a password in a safe directory is used' '
	mkdir -m 755 safe && evil safe/c.yaml 644 &&
	cfglogin ok.json -c safe/c.yaml >out && test "$(jfield out insecure)" = true
'

test_expect_success 'a world-writable -c config is refused (exit 11) before any Login' '
	evil ww.yaml 666 && n=$(logins) &&
	expect_code 11 cfglogin s1.json -c ww.yaml 2>err &&
	refused "config file ww.yaml" "world-writable \\(mode 0666\\)" &&
	test ! -e s1.json
'

test_expect_success 'a world-writable system config is refused (exit 11)' '
	evil "$H2K_SYSCONFIG" 666 && n=$(logins) &&
	expect_code 11 cfglogin s2.json 2>err &&
	refused "config file $H2K_SYSCONFIG" "world-writable" && test ! -e s2.json
'
rm -f "$H2K_SYSCONFIG"

test_expect_success 'a group-writable user config (default place) is refused (exit 11)' '
	mkdir -p "$XDG_CONFIG_HOME/h2k" && evil "$XDG_CONFIG_HOME/h2k/config.yaml" 664 &&
	n=$(logins) && expect_code 11 cfglogin s3.json 2>err &&
	refused "config.yaml" "group-writable \\(mode 0664\\)" && test ! -e s3.json
'
rm -f "$XDG_CONFIG_HOME/h2k/config.yaml"

if [ "$(id -u)" = 0 ]; then
	test_expect_success 'a config owned by another user is refused (exit 11)' '
		evil foreign.yaml 644 && chown $other_uid foreign.yaml && n=$(logins) &&
		expect_code 11 cfglogin s4.json -c foreign.yaml 2>err &&
		refused "config file foreign.yaml" "owned by uid $other_uid"
	'
else
	test_skip 'a config owned by another user is refused (exit 11)' 'needs root to chown'
fi

test_expect_success 'a config in a world-writable, non-sticky directory is refused (exit 11)' '
	mkdir open && chmod 777 open && evil open/c.yaml 644 && n=$(logins) &&
	expect_code 11 cfglogin s5.json -c open/c.yaml 2>err &&
	refused "config file open/c.yaml" "directory $TRASH/open is world-writable \\(mode 0777\\)"
'

test_expect_success 'a config below a world-writable directory is refused too (exit 11)' '
	mkdir -p open2/deep && chmod 777 open2 && evil open2/deep/c.yaml 644 &&
	n=$(logins) && expect_code 11 cfglogin s6.json -c open2/deep/c.yaml 2>err &&
	refused "config file open2/deep/c.yaml" "directory $TRASH/open2 is world-writable"
'

if [ "$(id -u)" = 0 ]; then
	test_expect_success 'a config in a directory owned by another user is refused (exit 11)' '
		mkdir -m 755 theirs && evil theirs/c.yaml 644 && chown $other_uid theirs &&
		n=$(logins) && expect_code 11 cfglogin s7.json -c theirs/c.yaml 2>err &&
		refused "config file theirs/c.yaml" "directory $TRASH/theirs is owned by uid $other_uid"
	'
else
	test_skip 'a config in a directory owned by another user is refused (exit 11)' 'needs root to chown'
fi

test_expect_success 'control: a config in a sticky world-writable directory (like /tmp) is used' '
	mkdir sticky && chmod 1777 sticky && evil sticky/c.yaml 644 &&
	cfglogin s8.json -c sticky/c.yaml >/dev/null && test -s s8.json
'

test_expect_success 'a symlinked config in a safe directory is followed, as ssh does' '
	evil private.yaml 600 && ln -s private.yaml link.yaml &&
	cfglogin s9.json -c link.yaml >/dev/null && test -s s9.json
'

test_expect_success 'a symlinked config is refused (exit 11) when its target is unsafe' '
	evil wwtarget.yaml 666 && ln -s wwtarget.yaml link2.yaml && n=$(logins) &&
	expect_code 11 cfglogin s10.json -c link2.yaml 2>err &&
	refused "config file link2.yaml" "world-writable \\(mode 0666\\)"
'

# --- CA files ------------------------------------------------------------------

test_expect_success 'a world-writable --ca-file is refused at login (exit 11)' '
	cp "$SIM_CERT" caww.pem && chmod 666 caww.pem && n=$(logins) &&
	expect_code 11 login --ca-file caww.pem -s c1.json 2>err &&
	refused "CA file $TRASH/caww.pem" "world-writable" && test ! -e c1.json
'

if [ "$(id -u)" = 0 ]; then
	test_expect_success 'a --ca-file owned by another user is refused at login (exit 11)' '
		cp "$SIM_CERT" caforeign.pem && chmod 644 caforeign.pem &&
		chown $other_uid caforeign.pem && n=$(logins) &&
		expect_code 11 login --ca-file caforeign.pem -s c2.json 2>err &&
		refused "CA file $TRASH/caforeign.pem" "owned by uid $other_uid"
	'
else
	test_skip 'a --ca-file owned by another user is refused at login (exit 11)' 'needs root to chown'
fi

test_expect_success 'a CA file from H2K_CA_FILE in a world-writable directory is refused (exit 11)' '
	cp "$SIM_CERT" open/ca.pem && chmod 644 open/ca.pem && n=$(logins) &&
	H2K_CA_FILE=$TRASH/open/ca.pem expect_code 11 login -s c3.json 2>err &&
	refused "CA file $TRASH/open/ca.pem" "directory $TRASH/open is world-writable"
'

test_expect_success 'a safe CA file: login verifies and keeps the PEM in the session file' '
	mkdir -m 755 cadir && cp "$SIM_CERT" cadir/ca.pem && chmod 644 cadir/ca.pem &&
	login --ca-file cadir/ca.pem -s ca.json >out &&
	test "$(jfield out ca_file)" = "$TRASH/cadir/ca.pem" &&
	python3 -c "import json,sys; s=json.load(open(sys.argv[1]))
sys.exit(s[\"ca_pem\"] != open(sys.argv[2]).read())" ca.json "$SIM_CERT" &&
	h2k-ls -s ca.json >vms && test -s vms
'

test_expect_success 'the CA file replaced after login: later commands trust what login checked' '
	if command -v openssl >/dev/null 2>&1; then
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-keyout other.key -out cadir/ca.pem -subj /CN=other -days 1 2>/dev/null
	else
		echo "not a certificate" >cadir/ca.pem
	fi &&
	chmod 666 cadir/ca.pem &&
	h2k-ls -s ca.json >vms2 && test_cmp vms vms2 &&
	rm cadir/ca.pem && h2k-ls -s ca.json >vms3 && test_cmp vms vms3
'

test_expect_success 'a session without the PEM (older h2k-login) re-checks its CA file: unsafe now, exit 11' '
	cp "$SIM_CERT" cadir/old.pem && chmod 644 cadir/old.pem &&
	python3 -c "import json,sys; s=json.load(open(sys.argv[1])); s.pop(\"ca_pem\", None)
s[\"ca_file\"]=sys.argv[2]; open(sys.argv[1],\"w\").write(json.dumps(s))" ca.json "$TRASH/cadir/old.pem" &&
	h2k-ls -s ca.json >vms4 && test -s vms4 &&
	chmod 666 cadir/old.pem &&
	expect_code 11 h2k-ls -s ca.json >out 2>err && test_one_line err &&
	grep -qF "CA file $TRASH/cadir/old.pem is world-writable" err && test ! -s out
'

test_expect_success 'h2k-fetch --ca-file: a world-writable CA file is refused (exit 11)' '
	expect_code 11 h2k-fetch -o fout --ca-file caww.pem --progress none </dev/null 2>err &&
	test_one_line err && grep -qF "CA file caww.pem is world-writable" err
'

test_done
