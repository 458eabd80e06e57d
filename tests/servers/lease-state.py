#!/usr/bin/env python3
# tests/servers/lease-state.py SESSION_FILE LEASE_MOREF: print the state of
# an HttpNfcLease as the session that made it sees it (leases are
# session-scoped, so govc, with its own session, cannot): "ready",
# "initializing", "done", "error: MESSAGE" or "gone".  Test oracle only:
# certificate not verified (the rig's), loopback only.
# SPDX-License-Identifier: LGPL-3.0-or-later
import json, re, ssl, sys, urllib.error, urllib.request
from xml.sax.saxutils import escape

sess = json.load(open(sys.argv[1]))
moref = sys.argv[2]
body = ('<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:urn="urn:vim25"><soapenv:Body><urn:RetrievePropertiesEx>'
        '<urn:_this type="PropertyCollector">propertyCollector</urn:_this>'
        '<urn:specSet><urn:propSet><urn:type>HttpNfcLease</urn:type>'
        '<urn:pathSet>state</urn:pathSet><urn:pathSet>error</urn:pathSet></urn:propSet>'
        '<urn:objectSet><urn:obj type="HttpNfcLease">%s</urn:obj></urn:objectSet>'
        '</urn:specSet><urn:options/></urn:RetrievePropertiesEx>'
        '</soapenv:Body></soapenv:Envelope>' % escape(moref))
assert sess["url"].startswith("https://127.0.0.1:")
req = urllib.request.Request(sess["url"], data=body.encode(), headers={
    "Content-Type": "text/xml; charset=utf-8", "SOAPAction": "urn:vim25/6.5",
    "Cookie": "vmware_soap_session=" + sess["cookie"]})
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
try:
    txt = urllib.request.urlopen(req, context=ctx, timeout=10).read().decode()
except urllib.error.HTTPError as e:
    txt = e.read().decode()
if "ManagedObjectNotFound" in txt:
    print("gone")
    sys.exit(0)
m = re.search(r"<name>state</name><val[^>]*>([a-zA-Z]+)</val>", txt)
if not m:
    print("unknown: " + txt[:300].replace("\n", " "))
    sys.exit(1)
state = m.group(1)
if state == "error":
    e = re.search(r"<localizedMessage>([^<]*)</localizedMessage>", txt)
    f = re.search(r'<fault xsi:type="([^"]+)"', txt)
    state += ": " + (e.group(1) if e else f.group(1) if f else "?")
print(state)
