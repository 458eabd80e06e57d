# tests/t/t067-api.sh - helpers for the h2k-job serve tests (sourced by
# t067x-t069x after t06-standins.sh).
# SPDX-License-Identifier: LGPL-3.0-or-later

# api_start ERRFILE [serve options...]: start `h2k-job serve` on a free
# loopback port (":0"), wait until it says where it listens; sets API_PID,
# API_PORT and API (the base URL).  Killed at the end of the file.
api_start() {
	local err=$1 i=0
	shift
	h2k-job serve --listen 127.0.0.1:0 "$@" 2>"$err" &
	API_PID=$!
	echo $API_PID >>"$TRASH/.runners"
	atexit_once job job_cleanup
	until API_PORT=$(sed -n 's/.*: serving .* on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$err") &&
		[ -n "$API_PORT" ]; do
		i=$((i + 1))
		if [ $i -gt $((WAIT_DEFAULT * 10)) ] || ! kill -0 $API_PID 2>/dev/null; then
			echo "h2k-job serve did not start:" >&2
			cat "$err" >&2
			return 1
		fi
		sleep 0.1
	done
	API=http://127.0.0.1:$API_PORT
}

# api_stop: SIGTERM the server and wait for it.
api_stop() {
	kill "$API_PID" 2>/dev/null
	wait "$API_PID" 2>/dev/null
	return 0
}

# hcurl METHOD PATH [curl args...]: the response body on stdout, the HTTP
# status in the file "code"; never fails on an HTTP error status.
hcurl() {
	local m=$1 p=$2
	shift 2
	curl -sS -o - -w '%{stderr}%{http_code}' -X "$m" "$@" "$API$p" 2>code
}

# jq_ok FILE EXPR: EXPR over FILE is true.
jq_ok() {
	jq -e "$2" "$1" >/dev/null
}

# runner_ready: wait (bounded) until a runner registered in $H2K_SPOOL/run.
runner_ready() {
	local i=0
	until [ -n "$(ls "$H2K_SPOOL/run" 2>/dev/null)" ]; do
		i=$((i + 1))
		[ $i -le $((WAIT_DEFAULT * 10)) ] || return 1
		sleep 0.1
	done
}

# api_sid CLIENT-ID: the spool's id of the job a client named CLIENT-ID
# (the record's api_id).
api_sid() {
	h2k-job ls --all | jq -r "select(.api_id == \"$1\") | .id"
}
