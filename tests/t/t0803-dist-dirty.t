#!/usr/bin/env bash
# make dist packs the work tree's tracked files: untracked files (a key, a
# session file left beside the sources) never go in, and an uncommitted
# change (a password typed into a file for a test) does, so make dist says
# so on stderr, naming the file: that tarball is no commit's.  Umask, TZ and
# LANG do not change the bytes.  In a clone, not the real tree.
. "$(dirname "$0")/../lib.sh"

V=$(sed -n 's/^#define H2K_VERSION "\(.*\)"$/\1/p' "$SRC_DIR/lib/h2k.h")
T=build/h2k-$V.tar.gz

test_expect_success 'a clean clone: no warning; umask, TZ, LANG keep the bytes' '
	git clone -q "$SRC_DIR" src &&
	make -s -C src dist SOURCE_DATE_EPOCH=1700000000 >out 2>err &&
	test ! -s err &&
	cp src/$T one.tar.gz &&
	chmod 600 src/lib/h2k.h &&
	(umask 077 && TZ=Asia/Tokyo LANG=C.UTF-8 make -s -C src dist SOURCE_DATE_EPOCH=1700000000) >out 2>err &&
	cmp one.tar.gz src/$T
'

test_expect_success 'untracked files are not packed' '
	echo "Password: hunter2" >src/secret.yaml &&
	mkdir -p src/tests/t/junk && : >src/tests/t/junk/session.json &&
	make -s -C src dist SOURCE_DATE_EPOCH=1700000000 >out 2>err &&
	cmp one.tar.gz src/$T &&
	! tar -tzf src/$T | grep -e secret.yaml -e session.json
'

test_expect_success 'an uncommitted change is packed, and make dist names it on stderr' '
	echo "Password: hunter2" >>src/README.md &&
	make -s -C src dist SOURCE_DATE_EPOCH=1700000000 >out 2>err &&
	grep -q "^dist: warning: uncommitted changes .*README.md" err &&
	! cmp -s one.tar.gz src/$T
'

test_done
