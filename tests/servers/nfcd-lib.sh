# tests/servers/nfcd-lib.sh - start tests/servers/nfcd.py from a test file.
# SPDX-License-Identifier: LGPL-3.0-or-later
#
#   . "$TESTS_DIR/servers/nfcd-lib.sh"
#   nfcd_start            # serves $TRASH/srv; sets NFCD_URL, NFCD_CERT, NFCD_PID
#   mkdisk NAME BYTES     # random file $TRASH/srv/NAME
#   lease_line VM URL...  # an h2k-lease-style line without a lease, one device per URL
#   nfcd_stop             # before test_done
NFCD_PID=

nfcd_start() {
	mkdir -p "$TRASH/srv"
	rm -f "$TRASH/nfcd.env"
	python3 "$TESTS_DIR/servers/nfcd.py" --dir "$TRASH/srv" --env "$TRASH/nfcd.env" \
		--lifetime "${NFCD_LIFETIME:-$([ -n "${H2K_VALGRIND:-}" ] && echo 1800 || echo 300)}" "$@" >"$TRASH/nfcd.log" 2>&1 &
	NFCD_PID=$!
	local i=0
	while [ ! -s "$TRASH/nfcd.env" ]; do
		i=$((i + 1))
		if [ $i -gt 200 ] || ! kill -0 "$NFCD_PID" 2>/dev/null; then
			echo "Bail out! nfcd.py did not start"; sed 's/^/# /' "$TRASH/nfcd.log"
			exit 1
		fi
		sleep 0.05
	done
	. "$TRASH/nfcd.env"
	atexit_once nfcd nfcd_stop
}

nfcd_stop() {
	if [ -n "$NFCD_PID" ]; then
		kill "$NFCD_PID" 2>/dev/null
		wait "$NFCD_PID" 2>/dev/null
		NFCD_PID=
	fi
}

mkdisk() {
	head -c "$2" /dev/urandom >"$TRASH/srv/$1"
}

# lease_line VM URL [URL...]: target ids disk-0.vmdk, disk-1.vmdk, ...
lease_line() {
	local vm=$1 i=0 sep= devs=
	shift
	for u in "$@"; do
		devs="$devs$sep{\"key\":\"k$i\",\"target_id\":\"disk-$i.vmdk\",\"disk\":true,\"url\":\"$u\"}"
		sep=,
		i=$((i + 1))
	done
	printf '{"name":"%s","devices":[%s]}\n' "$vm" "$devs"
}

# cap_line VM URL [CAP]: lease_line of one device whose capacity_bytes is
# CAP, as h2k-lease passes the lease's on (none without CAP)
cap_line() {
	if [ -n "${3:-}" ]; then
		lease_line "$1" "$2" | jq -c ".devices[0].capacity_bytes = $3"
	else
		lease_line "$1" "$2"
	fi
}

# requests FILTER: the request log lines whose path contains FILTER
requests() {
	grep -F "$1" "$TRASH/srv/requests.log"
}
