# tests/servers/soapd-lib.sh - start and stop tests/servers/soapd.py from a
# test file (after lib.sh).  SOAPD_PASSWORD, when set, is the password the
# server accepts.
# SPDX-License-Identifier: LGPL-3.0-or-later

SOAPD=$TESTS_DIR/servers/soapd.py
SOAPD_PID=

# soapd_start [soapd flags]: a fresh server, its env in $TRASH/soapd.env
# (SOAPD_URL, SOAPD_CERT, SOAPD_THUMBPRINT, ...), requests in $TRASH/soapd.log.
soapd_start() {
	soapd_stop
	rm -f "$TRASH/soapd.env" "$TRASH/soapd.log"
	python3 "$SOAPD" --dir "$TRASH" --env "$TRASH/soapd.env" --lifetime 60 \
		--password "${SOAPD_PASSWORD:-pass}" "$@" >"$TRASH/soapd.out" 2>&1 &
	SOAPD_PID=$!
	local i=0
	while [ ! -s "$TRASH/soapd.env" ]; do
		i=$((i + 1))
		if [ $i -gt 100 ] || ! kill -0 "$SOAPD_PID" 2>/dev/null; then
			echo "soapd did not start"; cat "$TRASH/soapd.out"; return 1
		fi
		sleep 0.1
	done
	. "$TRASH/soapd.env"
	touch "$TRASH/soapd.log"
}

# soapd_session: a session file for the running server, pinned to its
# certificate, as h2k-login would write it (the tests that need a server
# answering hostile pages from the first call skip the login).
soapd_session() {
	mkdir -p "$XDG_STATE_HOME/h2k" && chmod 700 "$XDG_STATE_HOME/h2k" &&
	(umask 077 && printf '{"url":"%s","cookie":"\\"52f1c0de\\"","thumbprint":"%s","insecure":false,"ca_file":null,"server_type":"VirtualCenter","server_version":"8.0.3","api_version":"8.0.3.0","user":"user","created_at":"2026-11-25T17:00:00Z"}\n' \
		"$SOAPD_URL" "$SOAPD_THUMBPRINT" >"$XDG_STATE_HOME/h2k/session.json")
}

soapd_stop() {
	if [ -n "$SOAPD_PID" ]; then
		kill "$SOAPD_PID" 2>/dev/null
		wait "$SOAPD_PID" 2>/dev/null
		SOAPD_PID=
	fi
	return 0
}
test_atexit soapd_stop
