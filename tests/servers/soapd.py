#!/usr/bin/env python3
# tests/servers/soapd.py - a small, misbehaving vim25 SOAP server over TLS for
# the tests of lib/soap.c, lib/vim.c and the commands.  Python 3 standard
# library only; listens on 127.0.0.1; exits after --lifetime seconds.
# SPDX-License-Identifier: LGPL-3.0-or-later
#
#   soapd.py --dir DIR --env FILE [--mode MODE] [--at METHOD[,METHOD]]
#            [--times K] [--cert-change] [--password PW] [--lifetime S]
#            [--stuck-vm] [--fault-msg MSG] [--vm-tree flood|loop]
#
# It answers enough of vim25 for a client to connect, log in and list an
# empty inventory (RetrieveServiceContent, Login, Logout, CreateContainerView,
# RetrievePropertiesEx with no objects, DestroyView, ...).  For the methods
# named by --at (default RetrievePropertiesEx), on the first K requests
# (--times, default 0 = every request), it answers with MODE instead:
#   ok             the normal answer
#   doctype-file   DOCTYPE with an external entity on file:///etc/passwd
#   doctype-http   DOCTYPE with an external entity on http://127.0.0.1:PORT/evil
#                  (this server; a fetch of /evil is logged as method "EVIL")
#   laughs         the billion laughs entity set
#   deep           elements nested 10,000 deep
#   big            a 50 MB body (valid XML, one huge text node)
#   bigmany        a 50 MB body of 1 KB elements (valid XML)
#   fault:TYPE     HTTP 500 with a SOAP fault of vim25 type TYPE
#                  (e.g. fault:NotAuthenticated, fault:InvalidLogin), whose
#                  faultstring is --fault-msg (percent-decoded) when given
#   status:N       HTTP N with an HTML body
#   garbage        HTTP 200 with a body that is not XML
#   endless-token  a RetrieveResult with no objects and a fresh continuation
#                  token (tok-1, tok-2, ...) on every call: a paging loop
#                  (use --at RetrievePropertiesEx,ContinueRetrievePropertiesEx)
#   repeat-token   one VM object and the same token "tok-same" every time
#   endless-objects one object and a fresh token on every call: progress
#                  that never ends
#   drip           the normal answer, 2 bytes a second (slowloris)
# --cert-change: the first TLS connection gets certificate A, every later
# one certificate B, and every answer closes the connection, so a client
# must reconnect (and check its pin again) for each call.
# Login checks --password (default "pass") and answers InvalidLogin otherwise.
# --stuck-vm: the inventory holds one VM, vm-1 named "stuck", powered on,
# whose guest never shuts down: ShutdownGuest is accepted and ignored, so
# runtime.powerState stays poweredOn (the --shutdown timeout of h2k-lease).
# --vm-tree MODE: the inventory holds vm-2 named "tree", powered off, in
# folder group-a; the lookup of it with a TraversalSpec (h2k-lease's) is
# answered with, besides the VM, MODE flood: 5000 folders; loop: folders
# group-a and group-b, each the other's parent.
# --lease-url URL (repeatable): any HttpNfcLease is ready, and its
# info.deviceUrl lists these URLs (h2k-fetch trusts them with the session cookie).
# --lease-thumbprint TP: the sslThumbprint of every such device URL (default
# empty).
#
# The request log DIR/soapd.log holds one JSON object per request:
# {"method":..., "cookie":bool, "password_sent":bool, "mode":...}.  The env
# file gets SOAPD_PORT, SOAPD_HOST (127.0.0.1:PORT), SOAPD_URL
# (https://127.0.0.1:PORT/sdk), SOAPD_CERT, SOAPD_THUMBPRINT (SHA-256 of
# certificate A, colon hex), SOAPD_THUMBPRINT_SHA1, SOAPD_THUMBPRINT_B.
import argparse, hashlib, http.server, json, os, re, socket, ssl
import subprocess, threading, time

COOKIE = "52f1c0de-5a1e-4bad-a11e-000000000001"
lock = threading.Lock()
counts = {}
conn_count = [0]
FAULT_MSG = [None]

HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n'
        '<soapenv:Envelope xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/" '
        'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>')
TAIL = '</soapenv:Body></soapenv:Envelope>'

SERVICE_CONTENT = (
    '<RetrieveServiceContentResponse xmlns="urn:vim25"><returnval>'
    '<rootFolder type="Folder">group-d1</rootFolder>'
    '<propertyCollector type="PropertyCollector">propertyCollector</propertyCollector>'
    '<viewManager type="ViewManager">ViewManager</viewManager>'
    '<about><name>soapd</name><fullName>soapd test server 8.0.3</fullName>'
    '<vendor>h2k tests</vendor><version>8.0.3</version><build>1</build>'
    '<apiType>VirtualCenter</apiType><apiVersion>8.0.3.0</apiVersion>'
    '<instanceUuid>00000000-0000-0000-0000-000000000001</instanceUuid></about>'
    '<sessionManager type="SessionManager">SessionManager</sessionManager>'
    '<searchIndex type="SearchIndex">SearchIndex</searchIndex>'
    '<ovfManager type="OvfManager">OvfManager</ovfManager>'
    '</returnval></RetrieveServiceContentResponse>')


def fault(ftype, msg):
    return (HEAD + '<soapenv:Fault><faultcode>ServerFaultCode</faultcode>'
            '<faultstring>%s</faultstring><detail><%sFault xmlns="urn:vim25" '
            'xsi:type="%s"></%sFault></detail></soapenv:Fault>' % (msg, ftype, ftype, ftype)
            + TAIL)


STUCK_VM = ('<objects><obj type="VirtualMachine">vm-1</obj>'
            '<propSet><name>name</name><val xsi:type="xsd:string">stuck</val></propSet>'
            '<propSet><name>runtime.powerState</name>'
            '<val xsi:type="VirtualMachinePowerState">poweredOn</val></propSet>'
            '<propSet><name>config.uuid</name><val xsi:type="xsd:string">'
            '42000000-0000-0000-0000-000000000001</val></propSet></objects>')


def lease_answer(urls, tp=""):
    devs = "".join('<deviceUrl><key>k%d</key><importKey>k%d</importKey><url>%s</url>'
                   '<sslThumbprint>%s</sslThumbprint><disk>true</disk><targetId>disk-%d.vmdk'
                   '</targetId></deviceUrl>' % (i, i, u, tp, i) for i, u in enumerate(urls))
    return 200, (HEAD + '<RetrievePropertiesExResponse xmlns="urn:vim25"><returnval>'
                 '<objects><obj type="HttpNfcLease">lease-1</obj>'
                 '<propSet><name>state</name><val xsi:type="HttpNfcLeaseState">ready</val></propSet>'
                 '<propSet><name>info</name><val xsi:type="HttpNfcLeaseInfo">'
                 '<lease type="HttpNfcLease">lease-1</lease>%s<totalDiskCapacityInKB>1'
                 '</totalDiskCapacityInKB><leaseTimeout>300</leaseTimeout></val></propSet>'
                 '</objects></returnval></RetrievePropertiesExResponse>' % devs + TAIL)


def tree_answer(mode, traversal):
    f = ('<objects><obj type="Folder">%s</obj><propSet><name>name</name><val xsi:type="xsd:string">'
         '%s</val></propSet><propSet><name>parent</name><val type="Folder" xsi:type='
         '"ManagedObjectReference">%s</val></propSet></objects>')
    objs = ('<objects><obj type="VirtualMachine">vm-2</obj>'
            '<propSet><name>name</name><val xsi:type="xsd:string">tree</val></propSet>'
            '<propSet><name>parent</name><val type="Folder" xsi:type="ManagedObjectReference">'
            'group-a</val></propSet><propSet><name>runtime.host</name><val type="HostSystem" '
            'xsi:type="ManagedObjectReference">host-9</val></propSet><propSet><name>runtime.powerState'
            '</name><val xsi:type="VirtualMachinePowerState">poweredOff</val></propSet></objects>')
    if traversal and mode == "flood":
        objs += "".join(f % ("group-f%d" % i, "f", "group-a") for i in range(5000))
    elif traversal:
        objs += f % ("group-a", "a", "group-b") + f % ("group-b", "b", "group-a")
    return 200, (HEAD + '<RetrievePropertiesExResponse xmlns="urn:vim25"><returnval>'
                 + objs + '</returnval></RetrievePropertiesExResponse>' + TAIL)


def normal(method, body, stuck=False, lease_urls=None, lease_tp="", tree=None):
    if tree and method == "RetrievePropertiesEx" and 'type="VirtualMachine">vm-2<' in body:
        return tree_answer(tree, "TraversalSpec" in body)
    if lease_urls and method == "RetrievePropertiesEx" and 'type="HttpNfcLease"' in body:
        return lease_answer(lease_urls, lease_tp)
    if stuck and method == "RetrievePropertiesEx" and 'type="VirtualMachine">vm-1<' in body:
        return 200, (HEAD + '<RetrievePropertiesExResponse xmlns="urn:vim25"><returnval>'
                     + STUCK_VM + '</returnval></RetrievePropertiesExResponse>' + TAIL)
    if method == "RetrieveServiceContent":
        return 200, HEAD + SERVICE_CONTENT + TAIL
    if method == "CreateContainerView":
        return 200, (HEAD + '<CreateContainerViewResponse xmlns="urn:vim25"><returnval '
                     'type="ContainerView">session[soapd]view-1</returnval>'
                     '</CreateContainerViewResponse>' + TAIL)
    if method == "RetrievePropertiesEx":
        if "SessionManager" in body and "currentSession" in body:
            return 200, (HEAD + '<RetrievePropertiesExResponse xmlns="urn:vim25"><returnval>'
                         '<objects><obj type="SessionManager">SessionManager</obj><propSet>'
                         '<name>currentSession</name><val xsi:type="UserSession">'
                         '<key>%s</key><userName>user</userName></val></propSet></objects>'
                         '</returnval></RetrievePropertiesExResponse>' % COOKIE + TAIL)
        return 200, HEAD + '<RetrievePropertiesExResponse xmlns="urn:vim25"></RetrievePropertiesExResponse>' + TAIL
    return 200, HEAD + '<%sResponse xmlns="urn:vim25"></%sResponse>' % (method, method) + TAIL


def hostile(mode, method, port):
    resp = '<%sResponse xmlns="urn:vim25"><returnval>&x;</returnval></%sResponse>' % (method, method)
    if mode == "doctype-file":
        return 200, ('<?xml version="1.0"?><!DOCTYPE soapenv:Envelope [<!ENTITY x SYSTEM '
                     '"file:///etc/passwd">]>' + HEAD[HEAD.index("<soapenv:Envelope"):] + resp + TAIL)
    if mode == "doctype-http":
        return 200, ('<?xml version="1.0"?><!DOCTYPE soapenv:Envelope [<!ENTITY x SYSTEM '
                     '"http://127.0.0.1:%d/evil">]>' % port + HEAD[HEAD.index("<soapenv:Envelope"):]
                     + resp + TAIL)
    if mode == "laughs":
        ents = '<!ENTITY l0 "lol">' + "".join(
            '<!ENTITY l%d "%s">' % (i, ("&l%d;" % (i - 1)) * 10) for i in range(1, 10))
        return 200, ('<?xml version="1.0"?><!DOCTYPE soapenv:Envelope [' + ents + ']>'
                     + HEAD[HEAD.index("<soapenv:Envelope"):]
                     + '<%sResponse xmlns="urn:vim25"><returnval>&l9;</returnval></%sResponse>'
                     % (method, method) + TAIL)
    if mode == "deep":
        return 200, HEAD + "<a>" * 10000 + "</a>" * 10000 + TAIL
    if mode in ("big", "bigmany"):
        return 200, None  # streamed by the handler
    if mode.startswith("fault:"):
        t = mode[6:]
        msg = FAULT_MSG[0] if FAULT_MSG[0] is not None else "soapd says %s" % t
        return 500, fault(t, msg.replace("&", "&amp;").replace("<", "&lt;"))
    if mode.startswith("status:"):
        return int(mode[7:]), "<html><body>no</body></html>"
    if mode == "garbage":
        return 200, "this is not XML at all"
    if mode in ("endless-token", "repeat-token", "endless-objects"):
        with lock:
            counts["token"] = counts.get("token", 0) + 1
            tok = "tok-same" if mode == "repeat-token" else "tok-%d" % counts["token"]
        objs = "" if mode == "endless-token" else (
            '<objects><obj type="Folder">group-v%d</obj><propSet><name>name</name>'
            '<val xsi:type="xsd:string">f</val></propSet></objects>' % counts["token"])
        tag = method if method == "ContinueRetrievePropertiesEx" else "RetrievePropertiesEx"
        return 200, (HEAD + '<%sResponse xmlns="urn:vim25"><returnval><token>%s</token>%s'
                     '</returnval></%sResponse>' % (tag, tok, objs, tag) + TAIL)
    return None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "soapd/1"

    def log_message(self, *a):
        pass

    def record(self, **kw):
        with lock:
            with open(os.path.join(self.server.dir, "soapd.log"), "a") as f:
                f.write(json.dumps(kw) + "\n")

    def do_GET(self):
        # The target of doctype-http: a parser that fetches it is caught.
        self.record(method="EVIL" if self.path == "/evil" else "GET " + self.path,
                    cookie=False, password_sent=False, mode="")
        body = b"pwned"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        srv = self.server
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode("utf-8", "replace")
        m = re.search(r"<soapenv:Body>\s*<([A-Za-z_]+)", body) or re.search(r"Body>\s*<([A-Za-z_:]+)", body)
        method = m.group(1).split(":")[-1] if m else "?"
        cookie = "vmware_soap_session=" in (self.headers.get("Cookie") or "")
        mode = "ok"
        with lock:
            counts[method] = counts.get(method, 0) + 1
            k = counts[method]
        if method in srv.at and (srv.times == 0 or k <= srv.times):
            mode = srv.mode
        self.record(method=method, cookie=cookie, password_sent="<password>" in body, mode=mode)
        headers = [("Content-Type", "text/xml; charset=utf-8")]
        r = hostile(mode, method, srv.server_address[1]) if mode not in ("ok", "drip") else None
        if r is None:
            if method == "Login":
                pw = re.search(r"<password>(.*?)</password>", body, re.S)
                if not pw or pw.group(1) != srv.password:
                    r = (500, fault("InvalidLogin", "Cannot complete login due to an incorrect user name or password."))
                else:
                    headers.append(("Set-Cookie", 'vmware_soap_session="%s"; Path=/; HttpOnly; Secure;' % COOKIE))
                    r = (200, HEAD + '<LoginResponse xmlns="urn:vim25"><returnval><key>%s</key>'
                         '<userName>user</userName></returnval></LoginResponse>' % COOKIE + TAIL)
            else:
                r = normal(method, body, srv.stuck, srv.lease_urls, srv.lease_tp, srv.tree)
        status, text = r
        self.send_response(status)
        for h in headers:
            self.send_header(*h)
        if srv.close_each:
            self.send_header("Connection", "close")
            self.close_connection = True
        if text is None:  # big
            if srv.mode == "bigmany":
                chunk = (b"<x>" + b"y" * 1017 + b"</x>") * 1024
            else:
                chunk = b"x" * (1 << 20)
            head = (HEAD + "<%sResponse xmlns=\"urn:vim25\"><returnval>" % method).encode()
            tail = ("</returnval></%sResponse>" % method + TAIL).encode()
            total = len(head) + 50 * len(chunk) + len(tail)
            self.send_header("Content-Length", str(total))
            self.end_headers()
            try:
                self.wfile.write(head)
                for _ in range(50):
                    self.wfile.write(chunk)
                self.wfile.write(tail)
            except OSError:
                pass  # the client hung up, as it should
            return
        data = text.encode()
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if mode == "drip":
            # Fast enough for curl's low-speed limit, never done.
            try:
                for i in range(0, len(data), 2):
                    self.wfile.write(data[i:i + 2])
                    self.wfile.flush()
                    time.sleep(1)
            except OSError:
                pass  # the client gave up, as it should
            self.close_connection = True
            return
        self.wfile.write(data)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def get_request(self):
        sock, addr = self.socket.accept()
        with lock:
            conn_count[0] += 1
            first = conn_count[0] == 1
        ctx = self.ctx_a if first or not self.cert_change else self.ctx_b
        try:
            return ctx.wrap_socket(sock, server_side=True), addr
        except (ssl.SSLError, OSError):
            sock.close()
            raise OSError("handshake failed")


def mkcert(d, name):
    cert, key = os.path.join(d, name + "-cert.pem"), os.path.join(d, name + "-key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    der = ssl.PEM_cert_to_DER_cert(open(cert).read())
    return cert, ctx, der


def colon(h):
    return ":".join(h[i:i + 2] for i in range(0, len(h), 2)).upper()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--env", required=True)
    ap.add_argument("--mode", default="ok")
    ap.add_argument("--at", default="RetrievePropertiesEx")
    ap.add_argument("--times", type=int, default=0)
    ap.add_argument("--cert-change", action="store_true")
    ap.add_argument("--password", default="pass")
    ap.add_argument("--lifetime", type=float, default=60)
    ap.add_argument("--stuck-vm", action="store_true")
    ap.add_argument("--lease-url", action="append", default=[])
    ap.add_argument("--lease-thumbprint", default="")
    ap.add_argument("--fault-msg")
    ap.add_argument("--vm-tree", choices=("flood", "loop"))
    a = ap.parse_args()
    if a.fault_msg is not None:
        import urllib.parse
        FAULT_MSG[0] = urllib.parse.unquote(a.fault_msg)
    srv = Server(("127.0.0.1", 0), Handler, bind_and_activate=True)
    srv.dir, srv.mode, srv.at, srv.times = a.dir, a.mode, set(a.at.split(",")), a.times
    srv.password, srv.cert_change, srv.close_each = a.password, a.cert_change, a.cert_change
    srv.stuck = a.stuck_vm
    srv.tree = a.vm_tree
    srv.lease_urls = a.lease_url
    srv.lease_tp = a.lease_thumbprint
    cert, srv.ctx_a, der_a = mkcert(a.dir, "soapd-a")
    _, srv.ctx_b, der_b = mkcert(a.dir, "soapd-b")
    port = srv.server_address[1]
    tmp = a.env + ".tmp"
    with open(tmp, "w") as f:
        f.write("SOAPD_PORT=%d\nSOAPD_HOST=127.0.0.1:%d\nSOAPD_URL=https://127.0.0.1:%d/sdk\n"
                "SOAPD_CERT=%s\nSOAPD_THUMBPRINT=%s\nSOAPD_THUMBPRINT_SHA1=%s\n"
                "SOAPD_THUMBPRINT_B=%s\n" % (
                    port, port, port, cert, colon(hashlib.sha256(der_a).hexdigest()),
                    colon(hashlib.sha1(der_a).hexdigest()),
                    colon(hashlib.sha256(der_b).hexdigest())))
    os.rename(tmp, a.env)
    threading.Timer(a.lifetime, lambda: os._exit(0)).start()
    srv.serve_forever()


if __name__ == "__main__":
    main()
