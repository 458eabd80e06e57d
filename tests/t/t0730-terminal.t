#!/usr/bin/env bash
# Terminal escape injection (issue 10, item 14): a name or message from
# outside (a JSON line, a server's fault, a job file, a stage's stderr)
# reaches the terminal escaped (\e, \xNN, \uXXXX), never raw, while the
# JSON on stdout keeps the exact string.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/servers/nfcd-lib.sh"
. "$TESTS_DIR/servers/soapd-lib.sh"

# The hostile name: OSC set-title, clear screen, C1 CSI (U+009B), bidi
# override (U+202E), line separator (U+2028).
BAD=$(printf 'vm\033]0;pwned\007\033[2J\302\2331m\342\200\256gpj\342\200\250x')
# the same as a JSON string
BADJ='vm\u001b]0;pwned\u0007\u001b[2J\u009b1m\u202egpj\u2028x'

# clean FILE [bars]: FILE holds nothing a terminal obeys: no C0 control
# but newline (and tab), no DEL, no C1, no bidi control, no U+2028/9, no
# invalid UTF-8.  With "bars", h2k's own bar sequences (\r ESC[nA ESC[J,
# ESC[K) are allowed.
clean() {
	python3 - "$@" <<-\PY
	import re, sys
	d = open(sys.argv[1], "rb").read()
	if len(sys.argv) > 2:
	    d = re.sub(rb"\r\x1b\[\d+A\x1b\[J", b"", d)
	    d = d.replace(b"\x1b[K", b"")
	m = re.search(rb"[\x00-\x08\x0b-\x1f\x7f]|\xc2[\x80-\x9f]|\xe2\x80[\xa8-\xae]|\xe2\x81[\xa6-\xa9]", d)
	if m:
	    sys.exit("raw control %r at byte %d: %r" % (m.group(), m.start(), d[max(0, m.start() - 40):m.start() + 20]))
	d.decode("utf-8")
	PY
}

nfcd_start
mkdisk d1 300000

test_expect_success 'progress bars: a hostile VM and file name are shown escaped' '
	printf "{\"name\":\"%s\",\"devices\":[{\"key\":\"k\",\"target_id\":\"d\\u001b[5m\\u009b.vmdk\",\"disk\":true,\"size\":300000,\"url\":\"%s\"}]}\n" \
		"$BADJ" "$NFCD_URL/bps=400000,times=0/d1" >in &&
	h2k-fetch --ca-file "$NFCD_CERT" --progress bar -o out <in >actual 2>err &&
	grep -F "[#" err &&
	clean err bars &&
	grep -F "vm\\e]0;pwned\\x07\\e[2J\\u009b1m\\u202egpj\\u2028x" err &&
	grep -F "/d_[5m_.vmdk" err &&
	python3 -c "import json,sys; o=json.load(open(\"actual\")); assert o[\"name\"]==sys.argv[1], o[\"name\"]" "$BAD" &&
	clean actual
'

test_expect_success 'JSON progress lines keep the exact name, without raw controls' '
	h2k-fetch --ca-file "$NFCD_CERT" --progress json -o out2 <in >actual 2>err &&
	clean err &&
	head -1 err | python3 -c "import json,sys; o=json.loads(sys.stdin.readline()); assert o[\"vm\"]==sys.argv[1], o" "$BAD"
'

test_expect_success 'an error quoting a hostile URL is escaped, on one line' '
	printf "{\"name\":\"%s\",\"devices\":[{\"key\":\"k\",\"target_id\":\"d.vmdk\",\"url\":\"http://x/\\u202e\\u2028\\u009b\"}]}\n" \
		"$BADJ" >in2 &&
	expect_code 2 h2k-fetch --ca-file "$NFCD_CERT" -o out3 <in2 >actual 2>err &&
	test_line_count = 1 err && clean err &&
	grep -F "http://x/\\u202e\\u2028\\u009b" err
'
nfcd_stop

# a session for soapd
session() {
	mkdir -p "$XDG_STATE_HOME/h2k" && chmod 700 "$XDG_STATE_HOME/h2k" &&
	(umask 077 && printf '{"url":"%s","cookie":"\\"52f1c0de\\"","thumbprint":"%s","insecure":false,"ca_file":null,"server_type":"VirtualCenter","server_version":"8.0.3","api_version":"8.0.3.0","user":"user","created_at":"2026-11-25T17:00:00Z"}\n' \
		"$SOAPD_URL" "$SOAPD_THUMBPRINT" >"$XDG_STATE_HOME/h2k/session.json")
}

# XML 1.0 has no ESC or BEL, but C1, bidi controls and U+2028 are legal.
soapd_start --mode fault:NoPermission --fault-msg "denied%C2%9B2J%E2%80%AEtxt.exe%E2%80%A8forged" || exit 1
session
test_expect_success 'a server fault with C1, bidi and U+2028 is escaped' '
	expect_code 9 h2k-ls >ls0.out 2>err ||
	{ cat err; false; } &&
	test_line_count = 1 err && clean err &&
	grep -F "denied\\u009b2J\\u202etxt.exe\\u2028forged" err
'
soapd_stop

# The rig: a VM the server names with C1, bidi and U+2028 (XML carries no
# ESC), listed, leased, fetched with bars and packed.
sim_start -vm 1 -disks 1 -disk-size 512K -disk-fill random -power off -nfc-bps 700000
BADS=$(printf 'vm\302\2331m\342\200\256gpj\342\200\250x')
test_expect_success 'rig: h2k-ls -t shows a hostile VM name escaped, JSON exact' '
	h2k_login_sim && govc_ object.rename /DC0/vm/DC0_H0_VM0 "$BADS" &&
	h2k-ls -t >table 2>err &&
	clean table && clean err &&
	grep -F "vm\\u009b1m\\u202egpj\\u2028x" table &&
	h2k-ls >ls.json 2>err && clean ls.json && clean err &&
	python3 -c "import json,sys; n=[json.loads(l)[\"name\"] for l in open(\"ls.json\")]; assert sys.argv[1] in n, n" "$BADS"
'

test_expect_success 'rig: lease, fetch with bars and ovf of that VM: stderr escaped' '
	h2k-lease "/DC0/vm/$BADS" >lease.json 2>lease.err &&
	h2k-fetch --progress bar -o rout <lease.json >fetch.json 2>fetch.err &&
	h2k-ovf <fetch.json >ovf.json 2>ovf.err &&
	clean lease.err && clean fetch.err bars && clean ovf.err &&
	grep -F "vm\\u009b1m\\u202egpj\\u2028x" fetch.err &&
	python3 -c "import json,sys; o=json.load(open(\"ovf.json\")); assert o[\"name\"]==sys.argv[1], o[\"name\"]" "$BADS" &&
	clean ovf.json
'

# h2k-job: job names (YAML double-quoted escapes) and a stage's stderr.
. "$TESTS_DIR/t/t06-standins.sh"
export H2K_SPOOL="$TRASH/spool" OUT="$TRASH/jout"
standins_install "$TRASH/bin"
# a stage that says something hostile on stderr and fails
rm "$TRASH/bin/h2k-lease"
cat >"$TRASH/bin/h2k-lease" <<'SH'
#!/bin/sh
printf 'h2k-lease: \033]0;owned\007\033[2J\302\233H\342\200\256 \377 no such VM\n' >&2
exit 6
SH
chmod +x "$TRASH/bin/h2k-lease"

cat >job.yaml <<'Y'
name: "job\u009b1m\u202eevil\u2028x"
vm_path: "/dc/vm/\u2066x"
output_path: /tmp/none
Y

test_expect_success 'h2k-job ls: a hostile job name is \u-escaped JSON, the same string' '
	h2k-job submit job.yaml >id.json &&
	h2k-job ls >ls.out &&
	clean ls.out &&
	grep -F "job\\u009b1m\\u202eevil\\u2028x" ls.out &&
	python3 -c "import json,sys; o=json.load(open(\"ls.out\")); assert o[\"name\"]==\"job\\u009b1m\\u202eevil\\u2028x\", o" &&
	h2k-job status >st.out && clean st.out
'

test_expect_success 'runner: a stage stderr is relayed escaped to the log and the record' '
	expect_code 1 h2k-job run --once >run.out 2>run.err &&
	id=$(jq -r .id id.json) &&
	clean "$H2K_SPOOL/log/$id.log" &&
	grep -F "h2k-lease: \\e]0;owned\\x07\\e[2J\\u009bH\\u202e \\xff no such VM" "$H2K_SPOOL/log/$id.log" &&
	h2k-job ls --all >ls2.out && clean ls2.out &&
	jq -r .error ls2.out >errfield && clean errfield &&
	grep -F "\\e]0;owned" errfield &&
	clean run.err
'

test_done
