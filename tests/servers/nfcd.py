#!/usr/bin/env python3
# tests/servers/nfcd.py - a misbehaving NFC-style HTTPS file server for the
# h2k-fetch tests.  Python 3 standard library only; listens on 127.0.0.1.
# SPDX-License-Identifier: LGPL-3.0-or-later
#
#   nfcd.py --dir DIR --env FILE [--http] [--lifetime SECONDS]
#
# Serves DIR/NAME at https://127.0.0.1:PORT/f/SPEC/NAME.  SPEC says how to
# misbehave, comma-separated key=value ("-" for none):
#   cut=N|rand   close the connection after N body bytes (rand: a random
#                offset inside the body); on the first `times` requests
#   reset=N      the same, with a TCP RST instead of a FIN
#   stall=N      stop sending after N bytes for `stalltime` seconds (then close)
#   ranges=0     ignore Range: answer 200 with the whole body
#   badcr=1      answer a range request 206 with a Content-Range starting
#                one byte later than asked (the body matches the header)
#   etag=change  the file changes after the first request: later requests
#                serve DIR/NAME.v2 with ETag "v2" (first: "v1"); a matching
#                If-Range gets 206, a stale one 200 (RFC 9110), unless
#                ifrange=0 (then the stale If-Range is ignored: 206 of v2)
#   status=C     answer status C (e.g. 503) on the first `times` requests,
#                with Retry-After: `retryafter` and Location: `location`
#                when given (values percent-decoded)
#   nolength=1   no Content-Length: chunked transfer coding
#   cleancut=1   with nolength=1 and cut=N: the chunked body ends cleanly
#                (its last chunk sent) after N bytes, then the close
#   closedelim=1 no Content-Length: body delimited by closing the connection
#                (a cut is then indistinguishable from the end; see BUGS)
#   cookie=1     refuse (401) requests without the vmware_soap_session cookie
#   bps=N        throttle the body to N bytes per second
#   redirect=R   answer 302: R=http the same file over plain http, R=file
#                file:///etc/passwd, R=https the same file over https
#   times=K      how many requests misbehave (default 1; 0 = all)
# The request log (one JSON object per request: path, range, if_range,
# cookie, status, sent, how) is appended to DIR/requests.log so tests can
# assert what the client asked.  The env file gets NFCD_PORT, NFCD_URL
# (https://127.0.0.1:PORT/f) and NFCD_CERT (PEM of the self-signed cert).
import argparse, http.server, json, os, random, socket, ssl, struct
import subprocess, sys, threading, time, urllib.parse

counts = {}
lock = threading.Lock()


def parse_spec(s):
    spec = {}
    if s in ("", "-"):
        return spec
    for kv in s.split(","):
        k, _, v = kv.partition("=")
        spec[k] = urllib.parse.unquote(v)
    return spec


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "nfcd/1"

    def log_message(self, *a):
        pass

    def record(self, **kw):
        kw.update(path=self.path, range=self.headers.get("Range"),
                  if_range=self.headers.get("If-Range"),
                  cookie="vmware_soap_session=" in (self.headers.get("Cookie") or ""))
        with lock:
            with open(os.path.join(self.server.dir, "requests.log"), "a") as f:
                f.write(json.dumps(kw) + "\n")

    def do_HEAD(self):
        self.do_GET(head=True)

    def do_GET(self, head=False):
        parts = self.path.split("/")
        if len(parts) != 4 or parts[1] != "f" or parts[3] in ("", ".", "..") \
                or "?" in parts[3]:
            return self.fail(404)
        spec, name = parse_spec(parts[2]), parts[3]
        key = (parts[2], name)
        with lock:
            n = counts.get(key, 0)
            counts[key] = n + 1
        times = int(spec.get("times", "1"))
        bad = times == 0 or n < times
        if spec.get("cookie") == "1" and "vmware_soap_session=" not in (self.headers.get("Cookie") or ""):
            return self.fail(401)
        if "status" in spec and bad:
            code = int(spec["status"])
            self.send_response(code)
            if "retryafter" in spec:
                self.send_header("Retry-After", spec["retryafter"])
            if "location" in spec:
                self.send_header("Location", spec["location"])
            self.send_header("Content-Length", "0")
            self.end_headers()
            self.record(status=code, sent=0, how="status")
            return
        if "redirect" in spec and bad:
            # A redirect off https: h2k must not follow it (nor read a file).
            port = self.server.server_address[1]
            target = {"http": "http://127.0.0.1:%d/f/-/%s" % (port, name),
                      "file": "file:///etc/passwd",
                      "https": "https://127.0.0.1:%d/f/-/%s" % (port, name)}[spec["redirect"]]
            self.send_response(302)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()
            self.record(status=302, sent=0, how="redirect")
            return
        version = 1
        if spec.get("etag") == "change" and n > 0:
            version = 2
        fn = os.path.join(self.server.dir, name + (".v2" if version == 2 else ""))
        try:
            with open(fn, "rb") as f:
                data = f.read()
        except OSError:
            return self.fail(404)
        etag = '"v%d"' % version if spec.get("etag") else None
        start = 0
        rng = self.headers.get("Range")
        status = 200
        if rng and spec.get("ranges") != "0" and rng.startswith("bytes=") and rng.endswith("-"):
            try:
                start = int(rng[6:-1])
            except ValueError:
                start = -1
            ir = self.headers.get("If-Range")
            stale = ir is not None and ir != etag
            if stale and spec.get("ifrange") != "0":
                start = 0
            elif 0 <= start < len(data):
                status = 206
            elif start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", "bytes */%d" % len(data))
                self.send_header("Content-Length", "0")
                self.end_headers()
                self.record(status=416, sent=0, how="416")
                return
            else:
                start = 0
        crstart = start
        if status == 206 and spec.get("badcr") == "1" and bad:
            crstart = start + 1
        body = data[crstart:]
        self.send_response(status)
        if status == 206:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (crstart, len(data) - 1, len(data)))
        if etag:
            self.send_header("ETag", etag)
        self.send_header("Content-Type", "application/octet-stream")
        chunked = spec.get("nolength") == "1"
        closedelim = spec.get("closedelim") == "1"
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        elif closedelim:
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if head:
            self.record(status=status, sent=0, how="head")
            return
        limit, how = len(body), "full"
        for k in ("cut", "reset", "stall"):
            if k in spec and bad:
                v = spec[k]
                limit = random.randrange(1, max(2, len(body))) if v == "rand" else int(v)
                limit = min(limit, len(body))
                how = k
        bps = int(spec.get("bps", "0"))
        sent = 0
        t0 = time.monotonic()
        logged = False
        try:
            while sent < limit:
                chunk = min(65536, limit - sent)
                if bps:
                    chunk = min(chunk, max(1, bps // 10))
                if how == "full" and sent + chunk >= limit and not logged:
                    # log before the last bytes go out: once the client has
                    # them, a test may read the log at once
                    self.record(status=status, start=crstart, sent=limit, how=how,
                                etag=etag, limit=limit)
                    logged = True
                piece = body[sent:sent + chunk]
                if chunked:
                    piece = b"%x\r\n" % len(piece) + piece + b"\r\n"
                self.wfile.write(piece)
                sent += chunk
                if bps:
                    ahead = sent / bps - (time.monotonic() - t0)
                    if ahead > 0:
                        time.sleep(ahead)
            if chunked and (sent == len(body) or (how == "cut" and spec.get("cleancut") == "1")):
                self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            how = "client-gone"
        if not logged or how == "client-gone":
            self.record(status=status, start=crstart, sent=sent, how=how,
                        etag=etag, limit=limit)
        if how == "stall":
            time.sleep(float(spec.get("stalltime", "30")))
        if how in ("cut", "stall"):
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        elif how == "reset":
            self.close_connection = True
            raw = self.connection
            try:
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass

    def fail(self, code):
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()
        self.record(status=code, sent=0, how="fail")


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--env", required=True)
    ap.add_argument("--http", action="store_true", help="plain http (for --allow-http tests)")
    ap.add_argument("--lifetime", type=float, default=120)
    a = ap.parse_args()
    srv = Server(("127.0.0.1", 0), Handler)
    srv.dir = a.dir
    scheme = "http"
    cert = os.path.join(a.dir, "nfcd-cert.pem")
    if not a.http:
        key = os.path.join(a.dir, "nfcd-key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", key, "-out", cert], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        scheme = "https"
    port = srv.server_address[1]
    tmp = a.env + ".tmp"
    with open(tmp, "w") as f:
        f.write("NFCD_PORT=%d\nNFCD_URL=%s://127.0.0.1:%d/f\nNFCD_CERT=%s\n" % (port, scheme, port, cert))
    os.rename(tmp, a.env)
    # Bounded in time: a forgotten server does not outlive its test.
    threading.Timer(a.lifetime, lambda: os._exit(0)).start()
    srv.serve_forever()


if __name__ == "__main__":
    main()
