#!/usr/bin/env bash
# The Makefile tracks dependencies for every object: after a header changes,
# make rebuilds each object whose .d lists it (commands, library, unit
# tests) and relinks what uses them.  Checked in a scratch copy of the tree
# with a stand-in compiler that writes the real dependency files (cc -MM)
# and empty objects, so it takes seconds, not a build.  Also: pkg-config
# failures are named, build output stays out of the source tree, and san
# builds every command.
# SPDX-License-Identifier: LGPL-3.0-or-later
. "$(dirname "$0")/../lib.sh"

command -v make >/dev/null && command -v "${CC:-cc}" >/dev/null || {
	test_skip "$TEST_NAME" "needs make and a C compiler"
	test_done
}

mkdir -p src/tests scratch-bin
cp -R "$SRC_DIR/Makefile" "$SRC_DIR/lib" "$SRC_DIR/cmd" "$SRC_DIR/scripts" src/ &&
cp -R "$SRC_DIR/tests/unit" src/tests/ || exit 1
rm -f src/lib/*.a src/lib/*.o src/lib/*.d
find src -name '*.o' -o -name '*.d' | xargs rm -f

# fakecc: -c compiles become "cc -MM" into the object's .d (what -MMD -MP
# would write) plus an empty object; links and ar only create their output.
realcc=$(command -v "${CC:-cc}")
cat >scratch-bin/fakecc <<EOF2
#!/bin/bash
args=() out= compile=
while [ \$# -gt 0 ]; do
	case \$1 in
	-c) compile=1 ;;
	-o) out=\$2; shift ;;
	-MMD|-MP|-fsanitize=*|-O*|-g) ;;
	*) args+=("\$1") ;;
	esac
	shift
done
mkdir -p "\$(dirname "\$out")"
if [ -n "\$compile" ]; then
	"$realcc" -MM -MP -MT "\$out" -MF "\${out%.o}.d" "\${args[@]}" || exit 1
fi
: >"\$out"
EOF2
printf '#!/bin/sh\n: >"$2"\n' >scratch-bin/fakear
chmod +x scratch-bin/fakecc scratch-bin/fakear

mk() { make -C src CC="$TRASH/scratch-bin/fakecc" AR="$TRASH/scratch-bin/fakear" "$@"; }

test_expect_success 'scratch build: every object has its .d' '
	mk -j2 all unit >build.out 2>&1 || { cat build.out; false; } &&
	(cd src && find build/obj -name "*.o" | sort) >objs &&
	sed "s/\.o$/.d/" objs | (cd src && xargs ls) >/dev/null &&
	grep -q "^build/obj/cmd/h2k-job/h2k-job.o$" objs &&
	test "$(wc -l <objs)" -gt 20
'

test_expect_success '... and a second make has nothing to do' '
	mk -q all unit
'

# Every object and unit program whose dependency file names the header.
users_of() { # HEADER
	(cd src && grep -l -E "(^| )$1( |:|$)" $(find build/obj -name "*.d") | sed "s/\.d$//" | sort)
}

for h in lib/h2k.h lib/util.h; do
	[ -f "$SRC_DIR/$h" ] || continue
	test_expect_success "touch $h: every object that includes it is rebuilt" '
		users_of "$h" >users &&
		grep -q "^build/obj/cmd/" users &&
		grep -q "^build/obj/lib/" users &&
		sleep 1 && touch "src/$h" &&
		mk -n all unit >plan &&
		sed -n "s/.* -c -o \(build[^ ]*\)\.o .*/\1/p" plan | sort >rebuilt &&
		comm -23 users rebuilt >missed &&
		{ test ! -s missed || { echo "not rebuilt after touch $h:"; cat missed; false; }; } &&
		for c in h2k-login h2k-ls h2k-lease h2k-fetch h2k-ovf h2k-job; do
			grep -q -- "-o bin/$c " plan || { echo "bin/$c not relinked"; false; } || return 1
		done &&
		mk all unit >/dev/null 2>&1 && mk -q all unit
	'
done

cmdh_users="h2k-login h2k-ls h2k-lease h2k-fetch h2k-ovf h2k-job"
test_expect_success 'touch cmd/cmd.h: cmd.o and every command object rebuilt, every command relinked' '
	users_of cmd/cmd.h >users &&
	grep -qx build/obj/cmd/cmd users &&
	for c in $cmdh_users; do
		grep -qx "build/obj/cmd/$c/$c" users || { echo "$c does not use cmd.h"; false; } || return 1
	done &&
	! grep -q "^build/obj/lib/" users &&
	sleep 1 && touch src/cmd/cmd.h &&
	mk -n all unit >plan &&
	sed -n "s/.* -c -o \(build[^ ]*\)\.o .*/\1/p" plan | sort >rebuilt &&
	comm -23 users rebuilt >missed &&
	{ test ! -s missed || { echo "not rebuilt after touch cmd/cmd.h:"; cat missed; false; }; } &&
	for c in h2k-login h2k-ls h2k-lease h2k-fetch h2k-ovf h2k-job; do
		grep -q -- "-o bin/$c .*build/obj/cmd/cmd.o" plan || { echo "bin/$c not relinked with cmd.o"; false; } || return 1
	done &&
	mk all unit >/dev/null 2>&1 && mk -q all unit
'

test_expect_success 'build output stays out of the source tree' '
	test ! -e src/lib/libh2k.a &&
	test -e src/build/obj/libh2k.a &&
	test -z "$(find src/lib src/cmd src/tests src/scripts -newer src/Makefile \( -name "*.o" -o -name "*.a" -o -name "*.d" \))"
'

test_expect_code 2 'a package pkg-config cannot find: make names it' '
	mk -B build/obj/lib/util.o PKGS="libcurl h2k-no-such-pkg" 2>err
'

test_expect_success '... in one line on stderr, before compiling anything' '
	grep "h2k-no-such-pkg" err &&
	grep -c "\*\*\*" err >n && test "$(cat n)" = 1 &&
	! grep -q "No such file" err
'

test_expect_success 'make san builds every command of $(CMDS)' '
	mk -n -B san >san-plan 2>&1 &&
	grep -o "build/san/bin/h2k-[a-z]*" san-plan | sort -u >san-bins &&
	sed -n "s/^CMDS *= *//p" src/Makefile | tr " " "\n" | sed "/^$/d; s|^|build/san/bin/|" >want &&
	echo build/san/bin/h2k-export >>want && sort -u want -o want &&
	comm -23 want san-bins >missed &&
	{ test ! -s missed || { cat missed; false; }; }
'

test_expect_success 'make demo installs what is missing before it builds' '
	mk -n demo >demo-plan 2>&1 &&
	deps=$(grep -n "scripts/deps" demo-plan | head -1 | cut -d: -f1) &&
	build=$(grep -n -E "make.* all|-c -o" demo-plan | head -1 | cut -d: -f1) &&
	test -n "$deps" && test -n "$build" && test "$deps" -lt "$build"
'
test_done
