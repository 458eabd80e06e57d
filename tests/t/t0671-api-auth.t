#!/usr/bin/env bash
# h2k-job serve's API key and listen address: an address that is not
# loopback needs a key (refused before anything listens, exit 2); the key
# file is a secret file (0600, exit 11 otherwise); X-API-Key and
# Authorization: Bearer are taken, a wrong key gets 401 and /health needs
# none; the systemd credential h2k-api-key; TLS with --cert/--key.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/t/t06-standins.sh"
. "$TESTS_DIR/t/t067-api.sh"

export H2K_SPOOL="$TRASH/spool"
key=h2k-test-key-0123456789abcdef
printf '%s\n' "$key" >key && chmod 600 key

test_expect_success 'a non-loopback address without a key: exit 2 before listening' '
	port=$(python3 -c "import socket; s=socket.socket(); s.bind((\"127.0.0.1\",0)); print(s.getsockname()[1])") &&
	expect_code 2 timeout 10 h2k-job serve --listen 0.0.0.0:$port 2>err &&
	grep "^h2k-job: 0.0.0.0:$port is not a loopback address: an API key is required" err &&
	! grep "serving" err &&
	expect_code 2 timeout 10 h2k-job serve --listen "[::]:$port" 2>err6 &&
	grep "is not a loopback address" err6 &&
	expect_code 2 timeout 10 env H2K_LISTEN=:$port h2k-job serve 2>err7 &&
	grep "^h2k-job: :$port is not a loopback address" err7
'

test_expect_success 'DaemonAddr in the config file is the default address' '
	printf "DaemonAddr: \"10.1.2.3:8080\"\n" >cfg.yaml && chmod 600 cfg.yaml &&
	expect_code 2 timeout 10 h2k-job -c cfg.yaml serve 2>errc &&
	grep "^h2k-job: 10.1.2.3:8080 is not a loopback address" errc
'

test_expect_success 'bad listen addresses and options: exit 2 naming them' '
	expect_code 2 h2k-job serve --listen nohost 2>e1 &&
	grep "listen address .nohost.: expected ADDR:PORT" e1 &&
	expect_code 2 h2k-job serve --listen 127.0.0.1:99999 2>e2 &&
	grep "listen address" e2 &&
	expect_code 2 h2k-job serve --listen example.com:80 2>e3 &&
	grep "numeric address" e3 &&
	expect_code 2 h2k-job serve --cert key 2>e4 &&
	grep "cert and --key go together" e4 &&
	expect_code 2 h2k-job ls --listen 127.0.0.1:1 2>e5 &&
	grep "option not valid for .ls." e5
'

test_expect_success 'the key file: 0644 exit 11, short key exit 2, missing exit 8' '
	cp key key644 && chmod 644 key644 &&
	expect_code 11 h2k-job serve --api-key-file key644 2>k1 &&
	grep "API key file" k1 &&
	printf "short\n" >kshort && chmod 600 kshort &&
	expect_code 2 h2k-job serve --api-key-file kshort 2>k2 &&
	grep "at least 16 printable characters" k2 &&
	expect_code 8 h2k-job serve --api-key-file nope 2>k3 &&
	grep "API key file nope does not exist" k3
'

api_start api.err --api-key-file key || exit 1

test_expect_success 'with a key: 401 without or with a wrong one, /health open' '
	hcurl GET /health >h && test "$(cat code)" = 200 &&
	hcurl GET /status >s && test "$(cat code)" = 401 &&
	jq_ok s ".error | test(\"API key\")" &&
	hcurl GET /status -H "X-API-Key: wrong-key-0123456789abcdef" >s2 && test "$(cat code)" = 401 &&
	hcurl GET /status -H "X-API-Key: ${key}x" >s3 && test "$(cat code)" = 401 &&
	hcurl POST /jobs/submit -d "{\"vm_path\":\"/a\",\"output_path\":\"/o\"}" >s4 && test "$(cat code)" = 401 &&
	test -z "$(ls "$H2K_SPOOL/new")" &&
	hcurl GET /status -H "Authorization: Basic $key" >s5 && test "$(cat code)" = 401
'

test_expect_success 'X-API-Key and Authorization: Bearer are taken' '
	hcurl GET /status -H "X-API-Key: $key" >o1 && test "$(cat code)" = 200 &&
	hcurl GET /status -H "Authorization: Bearer $key" >o2 && test "$(cat code)" = 200 &&
	hcurl POST /jobs/submit -H "X-API-Key: $key" -d "{\"vm_path\":\"/a\",\"output_path\":\"/o\"}" >o3 &&
	jq_ok o3 ".accepted == 1" &&
	! grep -r "$key" "$H2K_SPOOL" api.err
'
api_stop

test_expect_success 'the systemd credential h2k-api-key is the key; 0.0.0.0 then allowed' '
	mkdir creds && chmod 700 creds && cp key creds/h2k-api-key &&
	port=$(python3 -c "import socket; s=socket.socket(); s.bind((\"127.0.0.1\",0)); print(s.getsockname()[1])") &&
	{ CREDENTIALS_DIRECTORY=$TRASH/creds h2k-job serve --listen 0.0.0.0:$port 2>cred.err & } &&
	pid=$! && test_when_finished "kill $pid" &&
	wait_grep "serving .* (API key required)" cred.err &&
	test "$(curl -s -o /dev/null -w "%{http_code}" http://127.0.0.1:$port/status)" = 401 &&
	test "$(curl -s -o /dev/null -w "%{http_code}" -H "X-API-Key: $key" http://127.0.0.1:$port/status)" = 200
'

test_expect_success '127.0.0.2 is loopback: no key needed' '
	{ h2k-job serve --listen 127.0.0.2:0 2>lo2.err & } &&
	pid=$! && test_when_finished "kill $pid" &&
	wait_grep "serving .* on 127.0.0.2:" lo2.err
'

test_expect_success 'TLS: --cert/--key (key 0600); plain HTTP gets no answer' '
	openssl req -x509 -newkey rsa:2048 -nodes -keyout tls.key -out tls.crt \
		-days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null &&
	chmod 644 tls.key &&
	expect_code 11 h2k-job serve --cert tls.crt --key tls.key 2>t1 &&
	grep "key file" t1 &&
	chmod 600 tls.key &&
	{ h2k-job serve --listen 127.0.0.1:0 --cert tls.crt --key tls.key 2>tls.err & } &&
	pid=$! && test_when_finished "kill $pid" &&
	wait_grep "serving .* (TLS)" tls.err &&
	port=$(sed -n "s/.* on 127.0.0.1:\([0-9]*\).*/\1/p" tls.err) &&
	curl -sS --cacert tls.crt https://127.0.0.1:$port/health >th &&
	jq_ok th ".status == \"healthy\"" &&
	! curl -sS -m 5 http://127.0.0.1:$port/health 2>/dev/null
'

test_done
