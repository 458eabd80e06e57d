# tests/h2kvm-lib.sh - the real consumer, hyper2kvm 0.2.1, for the t055x tests.
# SPDX-License-Identifier: LGPL-3.0-or-later
#
#   . "$TESTS_DIR/h2kvm-lib.sh"
#   h2kvm_need            # sets H2KVM (the hyper2kvm command) or skips the file
#   h2kvm --manifest F    # hyper2kvm, run from $TRASH, logging to stdout
#
# The venv is build/h2kvm-venv of the source tree (scripts/h2kvm-venv makes
# it once, from PyPI), or $H2K_H2KVM_VENV.  Without PyPI, the file is
# skipped, saying so; qemu-img comes from Debian (scripts/deps).

h2kvm_need() {
	local venv=${H2K_H2KVM_VENV:-$SRC_DIR/build/h2kvm-venv} rc=0
	command -v qemu-img >/dev/null 2>&1 || {
		echo "Bail out! qemu-img is missing (scripts/deps installs qemu-utils)"; exit 1; }
	"$SRC_DIR/scripts/h2kvm-venv" "$venv" >"$TRASH/venv.log" 2>&1 || rc=$?
	if [ "$rc" = 77 ]; then
		test_skip "hyper2kvm hand-off" "PyPI cannot be reached to install hyper2kvm 0.2.1"
		test_done
	fi
	if [ "$rc" != 0 ]; then
		echo "Bail out! scripts/h2kvm-venv failed:"; sed 's/^/# /' "$TRASH/venv.log"
		exit 1
	fi
	H2KVM=$venv/bin/hyper2kvm
}

# hyper2kvm's own HOME: it keeps state and caches there.
h2kvm() {
	HOME=$TRASH/h2kvm-home "$H2KVM" "$@"
}
