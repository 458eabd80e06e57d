# h2k - export VMs out of vSphere for KVM.
# SPDX-License-Identifier: LGPL-3.0-or-later
#
#   make               build build/obj/libh2k.a and bin/h2k-*
#   make check         install missing deps, build, run every test (+ ASan/UBSan pass)
#   make demo          export a VM of the bundled simulator end to end
#   make install       PREFIX=/usr/local DESTDIR=
#   make dist          build/h2k-VERSION.tar.gz, the same bytes every time
#   make distcheck     build it and run the unit tests from that tarball
#   make pkgcheck      build the .deb and the RPM, lint them, try the .deb
#   make san           sanitizer build into build/san/bin
#   make valgrind      run the suite under valgrind
#   make fuzz          libFuzzer harnesses (clang), FUZZ_SECONDS each
#   make trials        the long fault trials
#   make bench         benchmarks against govc and curl

PREFIX    ?= /usr/local
BINDIR    ?= $(PREFIX)/bin
MANDIR    ?= $(PREFIX)/share/man
UNITDIR   ?= $(PREFIX)/lib/systemd/system
DOCDIR    ?= $(PREFIX)/share/doc/h2k
COMPDIR   ?= $(PREFIX)/share/bash-completion/completions
SYSUSERSDIR?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR?= $(PREFIX)/lib/tmpfiles.d
SYSCONFDIR?= /etc
DESTDIR   ?=

CC        ?= cc
PKG_CONFIG?= pkg-config
PKGS       = libcurl libxml-2.0 yaml-0.1 libcjson openssl libarchive libmicrohttpd libdeflate zlib

# Where objects and binaries go; the sanitizer build uses another tree.
O         ?= build/obj
BIN       ?= bin

CFLAGS    ?= -O2 -g
# Distribution builds (debian/rules, packaging/h2k.spec) set WERROR= : their
# compilers and flags (LTO, _FORTIFY_SOURCE=3) warn where ours do not, and
# a new false positive must not stop a package build.  Ours stay -Werror.
WERROR    ?= -Werror
WARN       = -std=c11 -Wall -Wextra $(WERROR) -Wshadow -Wno-unused-parameter \
             -Wformat=2 -Wvla
PKG_CFLAGS:= $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
# A package pkg-config cannot find would otherwise surface as a missing
# header far into the build; name it instead, when something is compiled
# (clean, deps and demo's own deps step run without them).
PKG_MISSING:= $(shell for p in $(PKGS); do $(PKG_CONFIG) --exists $$p 2>/dev/null || echo $$p; done)
need_pkgs  = $(if $(PKG_MISSING),$(error pkg-config ($(PKG_CONFIG)) finds no $(PKG_MISSING): run scripts/deps (make deps) or set PKG_CONFIG_PATH))
PKG_LIBS  := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)
ALL_CFLAGS = $(WARN) -D_GNU_SOURCE -Ilib $(PKG_CFLAGS) $(CFLAGS) $(EXTRA_CFLAGS)
# --as-needed: every command links libh2k.a, but only h2k-job's serve uses
# libmicrohttpd (and only some use libarchive); a command records only the
# libraries it calls.
LDLIBS     = -Wl,--as-needed $(PKG_LIBS) -lpthread -lm

LIB_SRC    = $(sort $(wildcard lib/*.c))
LIB_OBJ    = $(LIB_SRC:%.c=$(O)/%.o)
LIBA       = $(O)/libh2k.a
CMDS       = h2k-login h2k-ls h2k-lease h2k-fetch h2k-ovf h2k-job
CMD_BINS   = $(CMDS:%=$(BIN)/%)
# cmd/cmd.c: the prologue and error reporting every command links (cmd.h);
# only the commands see cmd/ (the library never exits).
CMD_OBJ    = $(O)/cmd/cmd.o
UNIT_SRC   = $(sort $(wildcard tests/unit/test-*.c))
UNIT_BINS  = $(UNIT_SRC:tests/unit/%.c=$(O)/tests/unit/%)
SCRIPTS    = h2k-export

.PHONY: all clean check test unit san deps sim demo install uninstall \
        valgrind fuzz trials bench lib dist distcheck pkgcheck

# Build output stays under $(O) and $(BIN): the library is $(O)/libh2k.a.
all: $(CMD_BINS) $(BIN)/h2k-export $(LIBA)

lib: $(LIBA)

$(O)/cmd/%.o: ALL_CFLAGS += -Icmd
$(O)/%.o: %.c
	$(need_pkgs)@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(LIBA): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	$(AR) rcs $@ $^

define cmd_rule
$(BIN)/$(1): $(O)/cmd/$(1)/$(1).o $(CMD_OBJ) $(LIBA)
	$$(need_pkgs)@mkdir -p $(BIN)
	$$(CC) $$(ALL_CFLAGS) $$(LDFLAGS) -o $$@ $$< $(CMD_OBJ) $(LIBA) $$(LDLIBS)
endef
$(foreach c,$(CMDS),$(eval $(call cmd_rule,$(c))))

$(BIN)/h2k-export: scripts/h2k-export
	@mkdir -p $(BIN)
	cp $< $@
	chmod 755 $@

$(O)/tests/unit/%: tests/unit/%.c tests/unit/tap.h $(LIBA)
	$(need_pkgs)@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $< $(LIBA) $(LDLIBS)

unit: $(UNIT_BINS)

-include $(LIB_OBJ:.o=.d) $(CMD_OBJ:.o=.d) $(foreach c,$(CMDS),$(O)/cmd/$(c)/$(c).d)

# --- dependencies and the simulator rig --------------------------------------

deps:
	scripts/deps --packaging

sim:
	scripts/build-sim

# --- tests --------------------------------------------------------------------
# check: deps, build, the whole suite, then the whole suite once more under
# ASan+UBSan.  prove prints the totals; tests/summary prints
# "N passed, M failed, K skipped".

PROVE_JOBS ?= 2
# t08xx build and lint the packages: run once (pkgcheck), not in each suite.
PKG_TESTS  ?= $(sort $(wildcard tests/t/t08*.t))
TESTS      ?= $(filter-out $(PKG_TESTS),$(sort $(wildcard tests/t/t*.t)))
# Under ASan+UBSan, every test that runs h2k's code; the rig's own tests
# (t0001-t0003, t003x), the suite's and build's self-checks (t0004-t0007)
# and the docs checks (t0520, t0521) say nothing new there: once is enough.
SAN_TESTS  ?= $(filter-out tests/t/t0001-% tests/t/t0002-% tests/t/t0003-% \
              tests/t/t0004-% tests/t/t0005-% tests/t/t0006-% tests/t/t0007-% \
              tests/t/t003% tests/t/t0520-% tests/t/t0521-%,$(TESTS))

check: deps
	$(MAKE) all unit
	scripts/build-sim
	scripts/h2kvm-venv || [ $$? = 77 ]
	tests/run-suite normal "$(CURDIR)/$(BIN)" "$(CURDIR)/$(O)/tests/unit" $(TESTS)
	$(MAKE) san
	tests/run-suite asan "$(CURDIR)/build/san/bin" "$(CURDIR)/build/san/obj/tests/unit" $(SAN_TESTS)
	tests/run-suite packaging "$(CURDIR)/$(BIN)" /nonexistent $(PKG_TESTS)
	tests/summary

# The package builds compile h2k again and run its unit tests, not the suite.
pkgcheck: all
	tests/run-suite packaging "$(CURDIR)/$(BIN)" /nonexistent $(PKG_TESTS)
	tests/summary

test: all unit
	scripts/build-sim
	scripts/h2kvm-venv || [ $$? = 77 ]
	tests/run-suite normal "$(CURDIR)/$(BIN)" "$(CURDIR)/$(O)/tests/unit" $(TESTS)
	tests/summary

SAN_FLAGS = -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
            -fno-sanitize-recover=undefined
san:
	$(MAKE) O=build/san/obj BIN=build/san/bin CFLAGS="$(SAN_FLAGS)" \
	        LDFLAGS="-fsanitize=address,undefined" \
	        $(CMDS:%=build/san/bin/%) build/san/bin/h2k-export unit

valgrind: all unit
	scripts/build-sim
	H2K_VALGRIND=1 tests/run-suite valgrind "$(CURDIR)/$(BIN)" "$(CURDIR)/$(O)/tests/unit" $(TESTS)
	tests/summary

fuzz:
	tests/fuzz/run $${FUZZ_SECONDS:-60}

trials: all
	scripts/build-sim
	H2K_TRIALS=$${H2K_TRIALS:-20} tests/trials/run

bench: all
	scripts/build-sim
	bench/run

# Like check: what is missing is installed before anything is compiled.
demo:
	@scripts/deps --quiet
	$(MAKE) all
	scripts/build-sim
	scripts/demo

# --- install ------------------------------------------------------------------
# The units name their commands under /usr/local/bin; installed, they name
# $(BINDIR).  The system config is installed (0600) only when there is none:
# it is the administrator's from then on.  The packages call this target.

UNITS = $(wildcard etc/*.service etc/*.socket etc/*.timer)
MANS  = $(wildcard man/*.1 man/*.5 man/*.7)

# Every path is quoted: DESTDIR and PREFIX may hold spaces (a staging root
# under "/tmp/my build"); unquoted, each word went somewhere else.
install: all
	install -d "$(DESTDIR)$(BINDIR)" "$(DESTDIR)$(MANDIR)/man1" "$(DESTDIR)$(MANDIR)/man5" \
	           "$(DESTDIR)$(MANDIR)/man7" "$(DESTDIR)$(UNITDIR)" "$(DESTDIR)$(DOCDIR)" \
	           "$(DESTDIR)$(COMPDIR)" "$(DESTDIR)$(SYSUSERSDIR)" "$(DESTDIR)$(TMPFILESDIR)"
	install -m 755 $(CMD_BINS) "$(DESTDIR)$(BINDIR)/"
	sed '1s|^#!/usr/bin/env bash$$|#!/bin/bash|' $(BIN)/h2k-export >"$(DESTDIR)$(BINDIR)/h2k-export"
	chmod 755 "$(DESTDIR)$(BINDIR)/h2k-export"
	install -m 644 $(wildcard man/*.1) "$(DESTDIR)$(MANDIR)/man1/"
	for f in $(wildcard man/*.5); do install -m 644 $$f "$(DESTDIR)$(MANDIR)/man5/" || exit 1; done
	install -m 644 $(wildcard man/*.7) "$(DESTDIR)$(MANDIR)/man7/"
	for f in $(UNITS); do \
		sed 's|/usr/local/bin/|$(BINDIR)/|g' $$f >"$(DESTDIR)$(UNITDIR)/$${f#etc/}" && \
		chmod 644 "$(DESTDIR)$(UNITDIR)/$${f#etc/}" || exit 1; \
	done
	for f in $(wildcard etc/*.cron etc/*.example); do install -m 644 $$f "$(DESTDIR)$(DOCDIR)/" || exit 1; done
	install -m 644 completion/h2k "$(DESTDIR)$(COMPDIR)/h2k"
	for c in $(CMDS) h2k-export; do ln -sf h2k "$(DESTDIR)$(COMPDIR)/$$c" || exit 1; done
	install -m 644 etc/h2k.sysusers "$(DESTDIR)$(SYSUSERSDIR)/h2k.conf"
	install -m 644 etc/h2k.tmpfiles "$(DESTDIR)$(TMPFILESDIR)/h2k.conf"
	if [ ! -e "$(DESTDIR)$(SYSCONFDIR)/hyper2kvm/config.yaml" ]; then \
		install -d -m 755 "$(DESTDIR)$(SYSCONFDIR)/hyper2kvm" && \
		install -m 600 etc/config.yaml "$(DESTDIR)$(SYSCONFDIR)/hyper2kvm/config.yaml"; \
	fi

# Leaves the system config: it may hold the administrator's settings.
uninstall:
	for c in $(CMDS) h2k-export; do rm -f "$(DESTDIR)$(BINDIR)/$$c"; done
	for m in $(MANS:man/%=%); do \
		rm -f "$(DESTDIR)$(MANDIR)/man1/$$m" "$(DESTDIR)$(MANDIR)/man5/$$m" \
		      "$(DESTDIR)$(MANDIR)/man7/$$m"; \
	done
	for u in $(UNITS:etc/%=%); do rm -f "$(DESTDIR)$(UNITDIR)/$$u"; done
	rm -f "$(DESTDIR)$(DOCDIR)/h2k-job.cron"
	for c in h2k $(CMDS) h2k-export; do rm -f "$(DESTDIR)$(COMPDIR)/$$c"; done
	rm -f "$(DESTDIR)$(SYSUSERSDIR)/h2k.conf" "$(DESTDIR)$(TMPFILESDIR)/h2k.conf"

# --- release tarball ----------------------------------------------------------
# The files git tracks, in name order, with one mtime (SOURCE_DATE_EPOCH,
# default: the last commit's time), owner 0 and normalised modes, gzip
# without a name or time stamp: the same commit gives the same bytes.

VERSION  := $(shell sed -n 's/^\#define H2K_VERSION "\(.*\)"$$/\1/p' lib/h2k.h)
DISTNAME  = h2k-$(VERSION)
DISTFILE  = build/$(DISTNAME).tar.gz
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)

dist:
	@test -n "$(VERSION)" || { echo "dist: no H2K_VERSION in lib/h2k.h" >&2; exit 1; }
	@git rev-parse --git-dir >/dev/null 2>&1 || { echo "dist: needs a git checkout" >&2; exit 1; }
	@mkdir -p build
	@# The work tree is packed, not HEAD (make pkgcheck builds what is being
	@# worked on): say so when it differs, it is then no commit's tarball.
	@dirty=$$(git status --porcelain --untracked-files=no | cut -c4- | tr '\n' ' '); \
	 [ -z "$$dirty" ] || echo "dist: warning: uncommitted changes packed, not HEAD's bytes: $$dirty" >&2
	git ls-files -z | LC_ALL=C sort -z >build/dist.files
	tar --sort=name --format=gnu --transform 's,^,$(DISTNAME)/,' \
	    --mtime=@$(SOURCE_DATE_EPOCH) --owner=0 --group=0 --numeric-owner \
	    --mode=go-w,a+rX --no-recursion --null -T build/dist.files -cf build/dist.tar
	gzip -9n <build/dist.tar >$(DISTFILE).tmp
	rm -f build/dist.tar build/dist.files
	mv $(DISTFILE).tmp $(DISTFILE)
	@echo "dist: $(DISTFILE)"

# Unpack the tarball, build and unit-test it there, install and uninstall it
# into a staging root: what a packager does with it.
distcheck: dist
	rm -rf build/distcheck
	mkdir -p build/distcheck/stage
	tar -xzf $(DISTFILE) -C build/distcheck
	$(MAKE) -C build/distcheck/$(DISTNAME) all unit
	cd build/distcheck/$(DISTNAME) && prove $(O)/tests/unit/test-*
	$(MAKE) -C build/distcheck/$(DISTNAME) install uninstall \
		DESTDIR=$(CURDIR)/build/distcheck/stage PREFIX=/usr
	test "$$(find build/distcheck/stage -type f | sed 's|.*/stage||')" = /etc/hyper2kvm/config.yaml
	rm -rf build/distcheck
	@echo "distcheck: $(DISTFILE) is ready"

clean:
	rm -rf build bin lib/libh2k.a tests/trash
