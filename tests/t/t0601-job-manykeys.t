#!/usr/bin/env bash
# h2k-job submit: a job file with ~99k keys is checked for duplicates in
# linear time (issue 10, item 16: comparing every key with all before it
# took 18 s).  The FILE:LINE: key 'K': duplicate (first on line N)
# message is kept.  Bounded by timeout: the old check runs far past it.
. "$(dirname "$0")/../lib.sh"

export H2K_SPOOL="$TRASH/spool"

# just under the job parser's node bound (200000 nodes: keys plus values)
N=99000

python3 - "$N" <<'PY'
import sys, json
n = int(sys.argv[1])
with open("big.yaml", "w") as f:
    f.write("vm_path: /dc/vm/x\n")
    for i in range(n):
        f.write("k%d: 1\n" % i)
    f.write("k17: 2\n")
with open("big.json", "w") as f:
    f.write("{\"vm_path\": \"/dc/vm/x\",\n")
    for i in range(n):
        f.write("\"k%d\": 1,\n" % i)
    f.write("\"k17\": 2}\n")
with open("opts.yaml", "w") as f:
    f.write("vm_path: /dc/vm/x\noutput_path: /o\noptions:\n")
    for i in range(n):
        f.write("  o%d: 1\n" % i)
    f.write("  o3: 2\n")
PY

# 2 s; sanitizers and valgrind slow the parser itself several times over,
# so more there (the quadratic check takes minutes under them)
MS=2000 TO=10
case "$H2K_BIN" in */san/*) MS=8000 ;; esac
[ -z "${H2K_VALGRIND:-}" ] || MS=40000 TO=60
MS=${H2K_MANYKEYS_MS:-$MS}

# within $MS ms, exit 2 naming FILE:LINE, the key and the first line
fast_dup() { # FILE LINE KEY FIRST
	local t0 t1
	t0=$(date +%s%N)
	expect_code 2 timeout $TO h2k-job submit "$1" >out 2>err &&
	t1=$(date +%s%N) &&
	echo "took $(( (t1 - t0) / 1000000 )) ms" &&
	grep -F "h2k-job: $1:$2: key '$3': duplicate (first on line $4)" err &&
	test "$(( (t1 - t0) / 1000000 ))" -lt "$MS" &&
	test ! -s out && test -z "$(ls "$H2K_SPOOL/new" 2>/dev/null)"
}

test_expect_success "YAML file with $N keys: duplicate found in linear time" '
	fast_dup big.yaml $((N + 2)) k17 19
'
test_expect_success "JSON file with $N keys: duplicate found in linear time" '
	fast_dup big.json $((N + 2)) k17 19
'
test_expect_success "$N keys under options: duplicate found in linear time" '
	fast_dup opts.yaml $((N + 4)) options.o3 7
'

test_done
