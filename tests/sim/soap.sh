# tests/sim/soap.sh - raw vim25 calls to the rig from a test, with curl.
# Source it after tests/lib.sh and sim_start:  . "$TESTS_DIR/sim/soap.sh"
# For the cases govc cannot show: a fault's type and fields on the wire, a
# lease's state as it changes, HttpNfcLeaseProgress, session-bound objects.
# SPDX-License-Identifier: LGPL-3.0-or-later

# soap BODY: one call in the session kept in $TRASH/soap.jar, with TLS
# verified against the rig's certificate; prints the response envelope.
soap() {
	printf '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:urn="urn:vim25"><soapenv:Body>%s</soapenv:Body></soapenv:Envelope>' "$1" >"$TRASH/soap.req"
	curl -sS --cacert "$SIM_CERT" -b "$TRASH/soap.jar" -c "$TRASH/soap.jar" \
		-H 'Content-Type: text/xml; charset=utf-8' -H 'SOAPAction: "urn:vim25/6.5"' \
		--data-binary @"$TRASH/soap.req" "$SIM_URL"
}

# soap_login: a fresh session as $SIM_USER.  The morefs of SessionManager
# and PropertyCollector differ between the vCenter and ESXi models; they are
# read from the ServiceContent and kept for the later calls.
soap_login() {
	local sc
	rm -f "$TRASH/soap.jar"
	sc=$(soap '<urn:RetrieveServiceContent><urn:_this type="ServiceInstance">ServiceInstance</urn:_this></urn:RetrieveServiceContent>')
	printf '%s' "$sc" | sed -n 's/.*<propertyCollector type="PropertyCollector">\([^<]*\)<.*/\1/p' >"$TRASH/soap.pc"
	printf '%s' "$sc" | sed -n 's/.*<sessionManager type="SessionManager">\([^<]*\)<.*/\1/p' >"$TRASH/soap.sm"
	soap "<urn:Login><urn:_this type=\"SessionManager\">$(cat "$TRASH/soap.sm")</urn:_this><urn:userName>$SIM_USER</urn:userName><urn:password>$SIM_PASSWORD</urn:password></urn:Login>"
}

# sim_moref PATH: the managed object id (vm-N) of an inventory path.
sim_moref() { govc_ ls -i "$1" | sed -n 's/^[A-Za-z]*:\([^ ]*\).*/\1/p'; }

# soap_export VM-MOREF: ExportVm; prints the response.
soap_export() {
	soap "<urn:ExportVm><urn:_this type=\"VirtualMachine\">$1</urn:_this></urn:ExportVm>"
}

# soap_lease_ref: the HttpNfcLease moref in a response on stdin.
soap_lease_ref() { sed -n 's/.*<returnval type="HttpNfcLease">\([^<]*\)<.*/\1/p'; }

# soap_lease_prop LEASE PROP: RetrievePropertiesEx of one lease property.
soap_lease_prop() {
	soap "<urn:RetrievePropertiesEx><urn:_this type=\"PropertyCollector\">$(cat "$TRASH/soap.pc" 2>/dev/null || echo propertyCollector)</urn:_this><urn:specSet><urn:propSet><urn:type>HttpNfcLease</urn:type><urn:pathSet>$2</urn:pathSet></urn:propSet><urn:objectSet><urn:obj type=\"HttpNfcLease\">$1</urn:obj></urn:objectSet></urn:specSet><urn:options/></urn:RetrievePropertiesEx>"
}

# soap_lease_state LEASE: initializing, ready, done or error.
soap_lease_state() {
	soap_lease_prop "$1" state | sed -n 's/.*HttpNfcLeaseState">\([a-z]*\)<.*/\1/p'
}

# soap_lease_wait LEASE: wait (up to 5 s) until the lease is no longer initializing.
soap_lease_wait() {
	local i=0 s
	while s=$(soap_lease_state "$1") && [ "$s" = initializing ]; do
		i=$((i + 1))
		[ $i -lt 50 ] || return 1
		sleep 0.1
	done
	echo "$s"
}

# soap_lease_urls LEASE: the device URLs, one a line.
soap_lease_urls() {
	soap_lease_prop "$1" info | grep -o '<url>[^<]*</url>' | sed 's/<[^>]*>//g'
}

# soap_lease_call METHOD LEASE [EXTRA-XML]: HttpNfcLeaseProgress, ...Complete, ...Abort.
soap_lease_call() {
	soap "<urn:$1><urn:_this type=\"HttpNfcLease\">$2</urn:_this>${3:-}</urn:$1>"
}
