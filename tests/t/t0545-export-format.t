#!/usr/bin/env bash
# h2k-export --format and --keep-files: vmdk, raw and qcow2 go to h2k-fetch --format; ova
# (hyper2kvm's spelling) is --ova for h2k-ovf; anything else is exit 2
# before any stage runs.
. "$(dirname "$0")/../lib.sh"

# Stand-in stages next to a copy of the script record their arguments.
mkdir sib && cp "$(readlink -f "$(command -v h2k-export)")" sib/ &&
for s in h2k-lease h2k-fetch h2k-ovf; do
	printf '#!/bin/sh\necho "%s $*" >>"%s/argv"\ncat\n' "$s" "$TRASH" >"sib/$s"
	chmod +x "sib/$s"
done

test_expect_success '--format qcow2 and --format=raw reach h2k-fetch' '
	sib/h2k-export -o o1 --format qcow2 vm-1 </dev/null &&
	grep -Fx "h2k-fetch -o o1 --format qcow2" argv &&
	rm argv &&
	sib/h2k-export -o o1 --format=raw vm-1 </dev/null &&
	grep -Fx "h2k-fetch -o o1 --format raw" argv &&
	grep -x "h2k-ovf *" argv
'

test_expect_success '--format ova is --ova: no --format for h2k-fetch' '
	rm -f argv &&
	sib/h2k-export -o o1 --format ova vm-1 </dev/null &&
	grep -Fx "h2k-fetch -o o1" argv &&
	grep -Fx "h2k-ovf --ova" argv
'

test_expect_success '--keep-files goes to h2k-ovf' '
	rm -f argv &&
	sib/h2k-export -o o1 --ova --keep-files vm-1 </dev/null &&
	grep -Fx "h2k-ovf --ova --keep-files" argv
'

test_expect_success 'an unknown format: exit 2 naming it, no stage run' '
	rm -f argv &&
	expect_code 2 sib/h2k-export --format vhd vm-1 </dev/null 2>err &&
	test_one_line err &&
	grep -F "h2k-export: --format: '"'"'vhd'"'"' is not vmdk, raw, qcow2 or ova" err &&
	test ! -e argv &&
	expect_code 2 sib/h2k-export --format </dev/null 2>err &&
	grep -F "option --format needs an argument" err
'

test_done
