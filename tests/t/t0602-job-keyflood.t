#!/usr/bin/env bash
# Duplicate-key checks that crafted keys cannot make quadratic (attack on
# issue 10, items 15 and 16).  FNV-1a's low bits depend only on the low
# bits of its state, so keys whose hashes agree in the bits a hash set
# uses are cheap to make (a multi-collision: 16 positions, two 3-byte
# blocks each that lead to the same state); with a fixed hash all of them
# land in one bucket.  60000 such keys in a job file took 27 s, 200000 in
# one JSON line minutes; the same number of ordinary keys takes 0.3 s.
. "$(dirname "$0")/../lib.sh"

export H2K_SPOOL="$TRASH/spool"

# flood BITS POSITIONS COUNT yaml|jsonl: keys whose FNV-1a hashes agree in
# their low BITS bits (the bucket of a set of 2^BITS slots)
flood() {
	python3 - "$@" <<-\PY
	import sys, itertools
	bits, npos, n, fmt = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
	m = (1 << bits) - 1
	P = 0x100000001b3
	al = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	def step(s, bs):
	    for b in bs:
	        s = ((s ^ b) * P) & m
	    return s
	s = step(0xcbf29ce484222325 & m, b"x")
	blocks = []
	for _ in range(npos):
	    seen = {}
	    for t in itertools.product(al, repeat=3):
	        t = bytes(t)
	        h = step(s, t)
	        if h in seen:
	            blocks.append((seen[h], t))
	            s = h
	            break
	        seen[h] = t
	keys = []
	for pick in itertools.product((0, 1), repeat=npos):
	    keys.append(b"x" + b"".join(blocks[i][c] for i, c in enumerate(pick)))
	    if len(keys) == n:
	        break
	out = sys.stdout.buffer
	if fmt == "yaml":
	    out.write(b"vm_path: /dc/vm/x\noutput_path: /o\n")
	    out.write(b"".join(k + b": 1\n" for k in keys))
	    out.write(keys[5] + b": 2\n")
	else:
	    out.write(b'{"name":"v",' + b",".join(b'"' + k + b'":1' for k in keys) +
	        b',"' + keys[5] + b'":2}\n')
	PY
}

# 60000 keys: a set of 2^17 slots; 200000: 2^19
flood 17 16 60000 yaml >flood.yaml
flood 19 18 200000 jsonl >flood.jsonl

MS=3000 TO=20
case "$H2K_BIN" in */san/*) MS=15000 TO=60 ;; esac
[ -z "${H2K_VALGRIND:-}" ] || MS=60000 TO=120

ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

test_expect_success 'job file, 60000 keys with colliding hashes: duplicate found fast' '
	t0=$(date +%s%N) &&
	expect_code 2 timeout -k 1 $TO h2k-job submit flood.yaml >out 2>err &&
	ms=$(ms_since $t0) && echo "took $ms ms" && cat err &&
	grep "^h2k-job: flood.yaml:60003: key '\''x[A-Za-z0-9]*'\'': duplicate (first on line 8)$" err &&
	test "$ms" -lt "$MS" && test ! -s out
'

test_expect_success 'JSON line, 200000 keys with colliding hashes: duplicate found fast' '
	t0=$(date +%s%N) &&
	expect_code 2 timeout -k 1 $TO h2k-fetch -o o <flood.jsonl >out 2>err &&
	ms=$(ms_since $t0) && echo "took $ms ms" && cat err &&
	grep "^h2k-fetch: stdin:1: duplicate key \"x[A-Za-z0-9]*\"$" err &&
	test "$ms" -lt "$MS" && test ! -s out
'

test_done
