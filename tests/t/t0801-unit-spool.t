#!/usr/bin/env bash
# The units' ExecStartPre lines run as root ("+") before the runner starts.
# /var/spool/h2k belongs to h2k: whatever h2k left in it must not make root
# chown or chmod something else.  h2k-job@.service's instance directory is
# made as h2k: a symlink h2k planted as the instance name, or an instance
# named "..", leaves the target alone (before, root's `install -d -o h2k
# -m 0700` gave h2k the target of the link: /etc, /root, ...).  The lines
# are run as in the unit, /var/spool/h2k moved to a scratch folder and the
# user h2k played by nobody (65534).  Root only.
. "$(dirname "$0")/../lib.sh"

if [ "$(id -u)" != 0 ] || ! command -v setpriv >/dev/null 2>&1; then
	test_skip 'unit spool' 'needs root and setpriv'
	test_done
fi

# A scratch root nobody can traverse (the work tree may not be).
R=$(mktemp -d /tmp/h2k-t0801.XXXXXX) && chmod 755 "$R" || exit 1
trap 'rm -rf "$R"' EXIT

# prestart UNIT INSTANCE: run UNIT's ExecStartPre lines for INSTANCE, as
# root, with the spool under $R and h2k as nobody.
prestart() {
	sed -n 's/^ExecStartPre=+//p' "$SRC_DIR/etc/$1" |
	sed -e "s|/var/spool/h2k|$R/spool|g" -e "s/%i/$2/g" \
	    -e 's/\([ =]\)h2k\b/\165534/g' -e 's/-o h2k/-o 65534/; s/-g h2k/-g 65534/' >cmds &&
	while read -r line; do
		eval "$line" || return 1
	done <cmds
}

test_expect_success 'h2k-job@.service: the spool and its instance made 0700 h2k' '
	prestart h2k-job@.service vc1 &&
	test "$(stat -c "%a %u" "$R/spool")" = "700 65534" &&
	test "$(stat -c "%a %u" "$R/spool/vc1")" = "700 65534"
'

test_expect_success 'h2k-job@.service: a symlink h2k planted as the instance is not followed by root' '
	mkdir -m 755 "$R/victim" &&
	setpriv --reuid=65534 --regid=65534 --clear-groups ln -s ../victim "$R/spool/evil" &&
	prestart h2k-job@.service evil
	test "$(stat -c "%a %u" "$R/victim")" = "755 0"
'

test_expect_success 'h2k-job@.service: instance ".." does not take the spool'"'"'s parent' '
	prestart h2k-job@.service ..
	test "$(stat -c "%a %u" "$R")" = "755 0"
'

test_expect_success 'h2k-job.service: ExecStartPre leaves a moved-in spool 0700 h2k' '
	rm -rf "$R/spool" &&
	prestart h2k-job.service - &&
	test "$(stat -c "%a %u" "$R/spool")" = "700 65534"
'

test_done
