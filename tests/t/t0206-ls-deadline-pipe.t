#!/usr/bin/env bash
# The SOAP deadline (issue 10 item 18) must bound the server, not the
# reader of h2k-ls's output: in a pipeline (h2k-ls PATH | h2k-lease | ...)
# the next stage reads slowly, h2k-ls waits on a full pipe, and no SOAP
# call of its other workers may run out of time meanwhile.
. "$(dirname "$0")/../lib.sh"

sim_start -vm 300

test_expect_success 'setup: log in' '
	h2k_login_sim && govc_ find / -type m >all.govc && test_line_count = 600 all.govc
'

# slow BPS: a reader that takes about BPS bytes a second.
slow() {
	python3 -c '
import os, sys, time
bps = int(sys.argv[1])
while True:
    b = os.read(0, 4096)
    if not b:
        break
    os.write(1, b)
    time.sleep(len(b) / bps)
' "$1"
}

test_expect_success 'a path filter and a reader slower than the deadline: all VMs, exit 0' '
	{ H2K_LS_JOBS=2 timeout 60 h2k-ls --soap-timeout 4 /DC0 2>err; echo $? >rc; } | slow 25000 >out &&
	cat err && test "$(cat rc)" = 0 && test_line_count = 600 out
'

test_done
