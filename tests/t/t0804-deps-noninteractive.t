#!/usr/bin/env bash
# scripts/deps --packaging installs what is missing without a question:
# DEBIAN_FRONTEND=noninteractive, -y, no standard input, and dpkg told to
# keep a conffile the machine's owner changed (--force-confdef/confold)
# instead of stopping at its prompt: CI has no one to answer.  apt-get is
# a stand-in that records how it was called; jq plays the missing tool.
# Root only (deps installs only as root).
. "$(dirname "$0")/../lib.sh"

if [ "$(id -u)" != 0 ]; then
	test_skip 'deps' 'needs root'
	test_done
fi

# A PATH with every command of this machine but jq, and apt-get recording.
mkdir -p fake
for d in /usr/local/bin /usr/bin /bin /usr/sbin /sbin; do
	for f in "$d"/*; do
		n=${f##*/}
		[ "$n" = jq ] || [ -e "fake/$n" ] || ln -s "$f" "fake/$n"
	done
done
rm -f fake/apt-get
cat >fake/apt-get <<'S'
#!/bin/sh
{ echo "FRONTEND=$DEBIAN_FRONTEND"; echo "ARGS=$*"; [ -t 0 ] && echo TTY; } >>"$TRASH/apt.log"
exit 0
S
chmod +x fake/apt-get

test_expect_success 'deps --packaging: apt-get asks nothing, keeps changed conffiles' '
	TRASH=$TRASH PATH=$TRASH/fake "$SRC_DIR/scripts/deps" --packaging >out 2>&1 ||
		{ cat out; false; } &&
	grep -q "installing.*jq" out &&
	grep -qx "ARGS=install .*jq.*" apt.log &&
	grep "^ARGS=install" apt.log >inst &&
	grep -q -- "-y " inst &&
	grep -q -- "Dpkg::Options::=--force-confdef" inst &&
	grep -q -- "Dpkg::Options::=--force-confold" inst &&
	! grep -q "FRONTEND=$" apt.log &&
	grep -q "FRONTEND=noninteractive" apt.log &&
	! grep -q TTY apt.log
'

test_done
