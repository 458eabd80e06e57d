#!/usr/bin/env bash
# attack: the line's files[].vmdk_subformat is user input (h2k(7)), and
# h2k-ovf writes it into the descriptor's ovf:format (the streamOptimized
# URI, or the sparse one).  It took the capacity from the sparse header but
# never compared the header's kind with the word: a line saying
# monolithicSparse over the streamOptimized VMDK h2k-fetch saved (or a
# monolithicSparse file under a line saying streamOptimized) got a
# descriptor whose format contradicts the bytes (qemu-img info: create
# type), which a VMware reader refuses or misreads.  Now: exit 8, one line
# naming the file, the line's word and the header's, nothing written.
# SPDX-License-Identifier: LGPL-3.0-or-later
. "$(dirname "$0")/../lib.sh"

command -v qemu-img >/dev/null 2>&1 || {
	echo "Bail out! qemu-img is missing (scripts/deps installs qemu-utils)"; exit 1; }

set -- -vm 1 -disks 0 -disk-size 1M -disk-fill random -power off
"$SIM_BIN" -h 2>&1 | grep -q -- -stream-vmdk && set -- "$@" -stream-vmdk
sim_start "$@"
h2k_login_sim || { echo "Bail out! login failed"; exit 1; }

# refused LINE WHY: exit 8, one line matching WHY, nothing written
refused() {
	d=$(jget "$1" dir) && rm -f "$d"/*.ovf "$d"/*.mf &&
	expect_code 8 h2k-ovf --keep-lease <"$1" >r.out 2>r.err &&
	grep -v "^h2k-ovf: warning: .*has already ended" r.err >r.e1 &&
	cat r.e1 && test_one_line r.e1 && grep -q -- "$2" r.e1 && test ! -s r.out &&
	test -z "$(ls "$d" | grep "\.ovf$\|\.mf$\|\.ova$")"
}

test_expect_success 'downloaded as vmdk: a streamOptimized file, the line says so' '
	h2k-lease /DC0/vm/DC0_H0_VM0 | h2k-fetch -q --format vmdk -o o >line &&
	test "$(jget line files.0.vmdk_subformat)" = streamOptimized &&
	qemu-img info "$(jget line files.0.path)" | grep -q "create type: streamOptimized"
'

test_expect_success 'the line says monolithicSparse: exit 8, nothing written' '
	jq -c ".files[0].vmdk_subformat = \"monolithicSparse\"" line >l1 &&
	refused l1 "disk-0.vmdk: files\[\] says a monolithicSparse VMDK, the header is streamOptimized.s$"
'

test_expect_success 'a monolithicSparse file under a line saying streamOptimized: exit 8' '
	p=$(jget line files.0.path) &&
	qemu-img convert -f vmdk -O vmdk -o subformat=monolithicSparse "$p" ms.vmdk &&
	qemu-img info ms.vmdk | grep -q "create type: monolithicSparse" &&
	python3 - line ms.vmdk >l2 <<-\PY &&
	import hashlib, json, shutil, sys
	line = json.loads(open(sys.argv[1]).readline())
	f = line["files"][0]
	shutil.copyfile(sys.argv[2], f["path"])
	data = open(f["path"], "rb").read()
	f["size"] = len(data)
	f["sha256"] = hashlib.sha256(data).hexdigest()
	print(json.dumps(line))
	PY
	refused l2 "files\[\] says a streamOptimized VMDK, the header is monolithicSparse.s"
'

test_expect_success 'the word that matches the header goes' '
	jq -c ".files[0].vmdk_subformat = \"monolithicSparse\"" l2 >l3 &&
	expect_code 0 h2k-ovf --keep-lease <l3 >out3 2>err3 &&
	grep -q "vmdk.html#sparse" "$(jget out3 ovf_path)"
'

test_done
