"""The gateway's fast path (gateway/fast.c): warm /fn/ requests served
without libmicrohttpd, and everything else handed to libmicrohttpd on the
same connection, byte for byte.  Driven over raw sockets, so keep-alive,
pipelining and half-closes are what the test says they are."""
import json
import socket
import subprocess
import time

from conftest import FAASD, HOT_OK
from test_hot import deploy_srv


class Conn:
    """One client connection that reads answers off a shared buffer, so
    pipelined answers are read one after another."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def _fill(self):
        d = self.s.recv(65536)
        if not d:
            raise EOFError("connection closed with %r buffered" % self.buf[:200])
        self.buf += d

    def answer(self):
        """(status, {lower-case name: value}, body, raw head)"""
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            assert k.lower() not in hdrs or k.lower() == "set-cookie", ("field twice", head)
            hdrs[k.lower()] = v.strip()
        if hdrs.get("transfer-encoding") == "chunked":
            body = b""
            while True:
                while b"\r\n" not in self.buf:
                    self._fill()
                size, _, self.buf = self.buf.partition(b"\r\n")
                n = int(size, 16)
                while len(self.buf) < n + 2:
                    self._fill()
                body += self.buf[:n]
                self.buf = self.buf[n + 2:]
                if n == 0:
                    break
        else:
            n = int(hdrs.get("content-length", "0"))
            while len(self.buf) < n:
                self._fill()
            body, self.buf = self.buf[:n], self.buf[n:]
        return status, hdrs, body, lines[0]

    def closed(self):
        self.s.settimeout(10)
        try:
            return self.buf == b"" and self.s.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self):
        self.s.close()


def fast_counts(d):
    """faasd_http_fast_path_total by outcome."""
    s, _, text = d.call("GET", "/metrics", d.admin)
    assert s == 200
    out = {}
    for line in text.decode().splitlines():
        if line.startswith("faasd_http_fast_path_total{"):
            out[line.split('"')[1]] = int(line.split()[-1])
    return out


def req(method, path, tok=None, body=b"", extra=""):
    h = "%s %s HTTP/1.1\r\nHost: t\r\n" % (method, path)
    if tok:
        h += "Authorization: Bearer %s\r\n" % tok
    if body or method in ("POST", "PUT"):
        h += "Content-Length: %d\r\n" % len(body)
    return (h + extra + "\r\n").encode() + body


def test_one_connection_fast_then_libmicrohttpd(faasd):
    """Warm invocations, an API call, and invocations after it, all on one
    connection: each gets its own answer, in order."""
    tok = faasd.tenant("fp1")
    deploy_srv(faasd, "fp1", tok, "srv")
    n0 = fast_counts(faasd)
    c = Conn(faasd.port)
    c.send(req("POST", "/fn/fp1/srv/echo", tok, b"first"))
    s, h, body, line = c.answer()
    n1 = fast_counts(faasd)
    assert n1["answered"] == n0["answered"] + 1 and n1["tunneled"] == n0["tunneled"], (n0, n1)
    # (the /metrics calls are connections of their own, handed over)
    assert n1["handed_over"] == n0["handed_over"] + 1, (n0, n1)
    assert (s, body, line) == (200, b"first", "HTTP/1.1 200 OK"), (s, body, line)
    assert h["x-faas-version"] == "1" and h["x-faas-invocation-id"] and "date" in h
    assert h["content-length"] == "5" and "connection" not in h
    c.send(req("GET", "/v1/whoami", tok))
    s, h, body, _ = c.answer()
    assert s == 200 and json.loads(body)["tenant"] == "fp1", body
    n2 = fast_counts(faasd)
    assert n2["tunneled"] == n1["tunneled"] + 1 and n2["answered"] == n1["answered"], (n1, n2)
    # From here libmicrohttpd serves the connection (a tunnel): the same
    # answers, headers included.
    c.send(req("POST", "/fn/fp1/srv/echo", tok, b"second"))
    s, h, body, _ = c.answer()
    assert s == 200 and body == b"second" and h["x-faas-version"] == "1", (s, h, body)
    c.send(req("GET", "/fn/fp1/nope", tok))
    s, h, body, _ = c.answer()
    assert s == 404 and json.loads(body)["error"]["code"] == "function_not_found"
    c.close()
    assert fast_counts(faasd)["answered"] == n2["answered"]


def test_pipelined_requests_answered_in_order(faasd):
    tok = faasd.tenant("fp2")
    deploy_srv(faasd, "fp2", tok, "srv")
    c = Conn(faasd.port)
    c.send(b"".join(req("POST", "/fn/fp2/srv/echo", tok, b"n%d" % i) for i in range(5)) +
           req("GET", "/fn/fp2/srv/x?i=5", tok))
    for i in range(5):
        s, h, body, _ = c.answer()
        assert (s, body) == (200, b"n%d" % i), (i, s, body)
    s, h, body, _ = c.answer()
    assert s == 200 and json.loads(body)["target"] == "/x?i=5"
    # Errors the fast path answers itself keep their place too.
    c.send(req("GET", "/fn/fp2/srv", "wrong-token") + req("GET", "/fn/fp2/srv", tok))
    s, h, body, _ = c.answer()
    assert s == 401 and json.loads(body)["error"]["code"], body
    s, h, body, _ = c.answer()
    assert s == 200
    c.close()


def test_requests_the_fast_path_declines_are_served_the_same(faasd):
    """Heads outside the fast path's subset go to libmicrohttpd with every
    byte: chunked bodies, Expect, HTTP/1.0, percent-encoded paths, HEAD,
    oversized heads, exec functions."""
    tok = faasd.tenant("fp3")
    deploy_srv(faasd, "fp3", tok, "srv")
    faasd.deploy("fp3", tok, "sh", {"handler.sh": ("#!/bin/sh\necho hi-$REQUEST_METHOD\n", 0o755)})
    cases = [
        (b"POST /fn/fp3/srv/echo HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + tok.encode() +
         b"\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", 200, b"abcde"),
        (req("POST", "/fn/fp3/srv/echo", tok, b"xyz", "Expect: 100-continue\r\n"), 200, b"xyz"),
        (req("GET", "/fn/fp3/sh", tok), 200, b"hi-GET\n"),
        (req("POST", "/fn/fp3/srv/echo", tok, b"after-exec"), 200, b"after-exec"),
    ]
    c = Conn(faasd.port)
    for raw, want_status, want_body in cases:
        c.send(raw)
        s, h, body, _ = c.answer()
        if s == 100:
            s, h, body, _ = c.answer()
        assert (s, body) == (want_status, want_body), (raw[:60], s, body)
    c.close()
    # A path with %-escapes: decoded for the router, sent on as written.
    c = Conn(faasd.port)
    c.send(req("GET", "/fn/fp3/srv/a%20b?q=%2F", tok))
    s, h, body, _ = c.answer()
    assert s == 200 and json.loads(body)["target"] == "/a%20b?q=%2F", body
    c.close()
    # HTTP/1.0: answered, then closed.
    c = Conn(faasd.port)
    c.send(b"GET /fn/fp3/srv HTTP/1.0\r\nAuthorization: Bearer " + tok.encode() + b"\r\n\r\n")
    s, h, body, _ = c.answer()
    assert s == 200 and json.loads(body)["method"] == "GET"
    assert c.closed()
    # HEAD: no body.
    c = Conn(faasd.port)
    c.send(req("HEAD", "/fn/fp3/srv", tok))
    s, h, body, _ = c.answer()
    assert s == 200 and body == b""
    c.close()
    # A head larger than the fast path reads: libmicrohttpd refuses it.
    c = Conn(faasd.port)
    c.send(req("GET", "/fn/fp3/srv", tok, extra="X-Big: %s\r\n" % ("a" * 20000)))
    s, h, body, _ = c.answer()
    assert s in (413, 431), s
    c.close()
    # A body over the fast path's 1 MiB: libmicrohttpd reads it.
    big = b"z" * (1536 << 10)
    c = Conn(faasd.port)
    c.send(req("POST", "/fn/fp3/srv/echo", tok, big))
    s, h, body, _ = c.answer()
    assert s == 200 and body == big
    c.close()


def test_client_gone_or_half_closed(faasd):
    tok = faasd.tenant("fp4")
    deploy_srv(faasd, "fp4", tok, "srv", max_instances=1, timeout_s=5)
    s, _, _ = faasd.call("GET", "/fn/fp4/srv", tok)
    assert s == 200
    # A client that sends and shuts its side still gets its answer.
    c = Conn(faasd.port)
    c.send(req("POST", "/fn/fp4/srv/echo", tok, b"bye"))
    c.s.shutdown(socket.SHUT_WR)
    s, h, body, _ = c.answer()
    assert (s, body, h.get("connection")) == (200, b"bye", "close"), (s, body, h)
    assert c.closed()
    # One that leaves mid-invocation does not keep the only instance.
    c = Conn(faasd.port)
    c.send(req("GET", "/fn/fp4/srv/sleep?s=1", tok))
    time.sleep(0.2)
    c.close()
    t0 = time.time()
    s, _, body = faasd.call("GET", "/fn/fp4/srv", tok)
    assert s == 200, body
    assert time.time() - t0 < 3
    # A head that never ends, then the client goes: nothing is left open.
    c = Conn(faasd.port)
    c.send(b"GET /fn/fp4/srv HTTP/1.1\r\nHost: t\r\n")
    c.s.shutdown(socket.SHUT_WR)
    assert c.closed()
    c.close()
    s, _, text = faasd.call("GET", "/metrics", faasd.admin)
    assert s == 200 and 'faasd_http_requests_total{code="200"}' in text.decode()


def test_streamed_answer_on_the_fast_path(faasd):
    tok = faasd.tenant("fp5")
    deploy_srv(faasd, "fp5", tok, "srv")
    c = Conn(faasd.port)
    c.send(req("GET", "/fn/fp5/srv/stream", tok))
    t0 = time.time()
    while b"first" not in c.buf:
        c._fill()
    assert time.time() - t0 < 0.9, "the head and first chunk come before the handler ends"
    s, h, body, _ = c.answer()
    assert s == 200 and body == b"firstlast" and h["transfer-encoding"] == "chunked"
    c.send(req("GET", "/fn/fp5/srv/big?n=300000", tok))
    s, h, body, _ = c.answer()
    assert s == 200 and body == b"x" * 300000
    c.close()


def test_fast_path_setting(fresh_faasd, tmp_path):
    """fast_path = off: libmicrohttpd serves everything, as before; a bad
    value is refused, naming the key."""
    d = fresh_faasd(config="fast_path = off\n").start()
    tok = d.tenant("fpoff")
    with open(HOT_OK, "rb") as f:
        d.deploy("fpoff", tok, "ok", {"ok": (f.read(), 0o755)}, runtime="http", handler="ok")
    c = Conn(d.port)
    for _ in range(3):
        c.send(req("GET", "/fn/fpoff/ok", tok))
        s, h, body, _ = c.answer()
        assert s == 200 and body == b"ok\n"
    c.close()
    assert fast_counts(d) == {"answered": 0, "handed_over": 0, "tunneled": 0}
    assert d.stop() == 0
    bad = fresh_faasd(config="fast_path = maybe\n")
    p = subprocess.run([FAASD, "--config", bad.config_path, "--state-dir", str(tmp_path)],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 2 and "fast_path" in p.stderr and "on or off" in p.stderr, p.stderr
