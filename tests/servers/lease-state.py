#!/usr/bin/env python3
# tests/servers/lease-state.py SESSION_FILE LEASE_MOREF: print the state of
# an HttpNfcLease ("initializing", "ready", "done", "error") or "gone" when
# the server no longer knows it.  The tests' oracle for "was the lease
# aborted/completed": leases are session-scoped in vcsim, so this asks with
# the cookie of the h2k session that made the lease (govc cannot see it).
# Loopback test rig only: the certificate is not verified.
# SPDX-License-Identifier: LGPL-3.0-or-later
import json, re, ssl, sys, urllib.request
from xml.sax.saxutils import escape

s = json.load(open(sys.argv[1]))
lease = sys.argv[2]
body = ('<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
        'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
        '<RetrievePropertiesEx xmlns="urn:vim25"><_this type="PropertyCollector">'
        'propertyCollector</_this><specSet><propSet><type>HttpNfcLease</type>'
        '<pathSet>state</pathSet></propSet><objectSet><obj type="HttpNfcLease">%s'
        '</obj></objectSet></specSet><options/></RetrievePropertiesEx>'
        '</soapenv:Body></soapenv:Envelope>' % escape(lease))
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
req = urllib.request.Request(s["url"], data=body.encode(), headers={
    "Content-Type": "text/xml; charset=utf-8", "SOAPAction": "urn:vim25/8.0.1.0",
    "Cookie": "vmware_soap_session=%s" % s["cookie"]})
try:
    text = urllib.request.urlopen(req, context=ctx, timeout=10).read().decode()
except urllib.error.HTTPError as e:
    text = e.read().decode()
if "ManagedObjectNotFound" in text:
    print("gone")
    sys.exit(0)
m = re.search(r"<val[^>]*>([a-z]+)</val>", text)
if not m:
    sys.exit("lease-state: unexpected answer: " + text[:300])
print(m.group(1))
