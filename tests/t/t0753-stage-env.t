#!/usr/bin/env bash
# attack (issue 10 item 12): a password in the environment of h2k-job run
# or h2k-export (H2K_PASSWORD, GOVC_PASSWORD, user:password@ in H2K_URL or
# GOVC_URL) is not handed to the pipeline stages.  They log nothing in (the
# session file is theirs), and a freshly exec'd stage is dumpable until its
# main turns dumping off: its /proc/PID/environ would be readable by the
# same user, and a crash in the dynamic loader would dump it.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/t/t06-standins.sh"

export H2K_SPOOL="$TRASH/spool" OUT="$TRASH/out"
standins_install "$TRASH/bin"
# Each stand-in stage notes the credential variables it was given.
sed -i '2i env | grep -E "^(H2K_PASSWORD|GOVC_PASSWORD|H2K_URL|GOVC_URL)=" | sed "s/^/${0##*/}: /" >>"$STANDIN_STATE/env"; echo "${0##*/}" >>"$STANDIN_STATE/ran"' \
	"$TRASH/bin/h2k-standin"
standins_vm vm1 20000

creds() {
	H2K_PASSWORD=canary-h2k GOVC_PASSWORD=canary-govc \
	H2K_URL=https://u:canary-h2kurl@127.0.0.1/sdk \
	GOVC_URL=https://u:canary-govcurl@127.0.0.1/sdk "$@"
}

test_expect_success 'h2k-job run: no stage gets a password from the environment' '
	submit_vms vm1 >ids && test_line_count = 1 ids &&
	creds h2k-job run --once 2>run.err &&
	test "$(jq -r .status "$H2K_SPOOL"/done/*)" = completed &&
	test "$(sort -u "$STANDIN_STATE/ran" | tr "\n" " ")" = "h2k-fetch h2k-lease h2k-ovf " &&
	test ! -s "$STANDIN_STATE/env"
'

test_expect_success 'h2k-export: no stage gets a password from the environment' '
	rm -f "$STANDIN_STATE/env" "$STANDIN_STATE/ran" &&
	mkdir xb && cp "$SRC_DIR/scripts/h2k-export" xb/ &&
	for s in h2k-lease h2k-fetch h2k-ovf; do ln -s "$TRASH/bin/h2k-standin" xb/$s || exit 1; done &&
	creds xb/h2k-export -o out2 /DC0/vm/vm1 >x.json 2>x.err &&
	test "$(sort -u "$STANDIN_STATE/ran" | tr "\n" " ")" = "h2k-fetch h2k-lease h2k-ovf " &&
	cmp "$STANDIN_SRC/vm1/disk-0.vmdk" out2/vm1/disk-0.vmdk &&
	test ! -s "$STANDIN_STATE/env"
'

test_done
