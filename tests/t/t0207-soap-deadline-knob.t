#!/usr/bin/env bash
# The SOAP deadline's error (issue 10 item 18) must point at a knob that
# works for the command that failed: h2k-lease and h2k-ovf have no
# --soap-timeout and read no SoapTimeout, so "--soap-timeout, SoapTimeout"
# sent their users to settings that change nothing.  The error names where
# the deadline in effect came from, and its exact value.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/servers/soapd-lib.sh"

soapd_start --mode drip --at RetrieveServiceContent || exit 1
soapd_session

test_expect_success 'h2k-lease names H2K_SOAP_TIMEOUT, not an option it does not have' '
	expect_code 9 env H2K_SOAP_TIMEOUT=2 timeout 15 h2k-lease vm-1 >out 2>err &&
	test_one_line err &&
	grep -F "within the SOAP deadline of 2 s (H2K_SOAP_TIMEOUT)" err &&
	! grep -e "--soap-timeout\|SoapTimeout" err
'

test_expect_success 'h2k-ls --soap-timeout 1.5: the exact value and the option' '
	expect_code 9 timeout 15 h2k-ls --soap-timeout 1.5 >out 2>err &&
	grep -F "within the SOAP deadline of 1.5 s (--soap-timeout)" err
'

test_expect_success 'h2k-ls with SoapTimeout in the configuration file names it' '
	mkdir -p "$XDG_CONFIG_HOME/h2k" &&
	echo "SoapTimeout: 2" >"$XDG_CONFIG_HOME/h2k/config.yaml" &&
	expect_code 9 timeout 15 h2k-ls >out 2>err &&
	grep -F "within the SOAP deadline of 2 s (SoapTimeout in the configuration file)" err &&
	rm "$XDG_CONFIG_HOME/h2k/config.yaml"
'

test_done
