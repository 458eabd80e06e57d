#!/usr/bin/env bash
# The SOAP deadline (issue 10 item 18): a server that drips its answer at
# 2 bytes a second stays above curl's low-speed limit; every SOAP call must
# still end within the deadline set by --soap-timeout, H2K_SOAP_TIMEOUT or
# SoapTimeout in the configuration file.  Runs are under timeout(1) so that a
# client that waits for ever fails instead of hanging the test.
. "$(dirname "$0")/../lib.sh"

. "$TESTS_DIR/servers/soapd-lib.sh"


# timed WANT_MAX CMD...: run CMD, fail if it took more than WANT_MAX seconds.
timed() {
	local max=$1 t0 t1 rc
	shift
	t0=$(date +%s)
	"$@"
	rc=$?
	t1=$(date +%s)
	if [ $((t1 - t0)) -gt "$max" ]; then
		echo "took $((t1 - t0)) s, more than $max" >&2
		return 1
	fi
	return $rc
}

deadline_msg() { # METHOD SECS
	grep -F "h2k-ls: $1: no complete answer from $SOAPD_HOST within the SOAP deadline of $2 s" err
}

soapd_start --mode drip --at RetrievePropertiesEx || exit 1

test_expect_success '--soap-timeout 2: a dripping answer ends with exit 9 within the deadline' '
	soapd_session &&
	timed 10 expect_code 9 timeout 15 h2k-ls --soap-timeout 2 >out 2>err &&
	test_one_line err && deadline_msg RetrievePropertiesEx 2 &&
	test_line_count = 0 out
'

test_expect_success 'H2K_SOAP_TIMEOUT=2 does the same' '
	timed 10 expect_code 9 env H2K_SOAP_TIMEOUT=2 timeout 15 h2k-ls >out 2>err &&
	test_one_line err && deadline_msg RetrievePropertiesEx 2
'

test_expect_success 'SoapTimeout: 2 in the configuration file does the same' '
	mkdir -p "$XDG_CONFIG_HOME/h2k" &&
	echo "SoapTimeout: 2" >"$XDG_CONFIG_HOME/h2k/config.yaml" &&
	timed 10 expect_code 9 timeout 15 h2k-ls >out 2>err &&
	test_one_line err && deadline_msg RetrievePropertiesEx 2
'

test_expect_success 'the option wins over the environment, which wins over the file' '
	echo "SoapTimeout: 30" >"$XDG_CONFIG_HOME/h2k/config.yaml" &&
	timed 10 expect_code 9 env H2K_SOAP_TIMEOUT=30 timeout 15 h2k-ls --soap-timeout 1 >out 2>err &&
	deadline_msg RetrievePropertiesEx 1 &&
	timed 10 expect_code 9 env H2K_SOAP_TIMEOUT=2 timeout 15 h2k-ls >out 2>err &&
	deadline_msg RetrievePropertiesEx 2 &&
	rm "$XDG_CONFIG_HOME/h2k/config.yaml"
'

test_expect_success 'the deadline covers the first call too (RetrieveServiceContent)' '
	soapd_start --mode drip --at RetrieveServiceContent &&
	soapd_session &&
	timed 10 expect_code 9 timeout 15 h2k-ls --soap-timeout 2 >out 2>err &&
	test_one_line err && deadline_msg RetrieveServiceContent 2
'

test_expect_success 'a fast server is not affected by a short deadline' '
	soapd_start && soapd_session &&
	timeout 15 h2k-ls --soap-timeout 1 >out 2>err &&
	test_line_count = 0 err
'

test_expect_code 2 '--soap-timeout 0 is a usage error' 'h2k-ls --soap-timeout 0'
test_expect_code 2 '--soap-timeout abc is a usage error' 'h2k-ls --soap-timeout abc'
test_expect_success 'a bad H2K_SOAP_TIMEOUT is a usage error naming it' '
	expect_code 2 env H2K_SOAP_TIMEOUT=-5 h2k-ls 2>err &&
	test_one_line err && grep -F "H2K_SOAP_TIMEOUT '"'"'-5'"'"'" err
'
test_expect_success 'a bad SoapTimeout is a usage error naming file and line' '
	printf "LogLevel: warn\nSoapTimeout: forever\n" >"$XDG_CONFIG_HOME/h2k/config.yaml" &&
	expect_code 2 h2k-ls 2>err &&
	test_one_line err && grep -F "config.yaml:2: SoapTimeout must be" err &&
	rm "$XDG_CONFIG_HOME/h2k/config.yaml"
'

test_done
