#!/usr/bin/env python3
"""Sequential HTTP/1.1 client on ONE TCP connection (raw socket, no library).

usage: sequential.py PATH COUNT [--host H] [--port P] [--keepalive] [--idle SECONDS]
                     [--gap SECONDS] [--honor-close] [--close-last]
       sequential.py --raw FILE [--host H] [--port P] [--idle SECONDS] ...

Sends request 1, reads its whole response (Content-Length, chunked, or bodiless for
HEAD/1xx/204/304), then sends request 2, and so on: never more than one request
outstanding (no pipelining).

  --keepalive    add 'Connection: keep-alive' to every request (Apache only sends its
                 'Keep-Alive: timeout=N, max=M' header when the client asks for it).
  --close-last   add 'Connection: close' to the last request.
  --honor-close  stop after a response carrying 'Connection: close'. Without it the client
                 is deliberately naive: it keeps sending on the same connection until the
                 server's close is noticed (EOF or RST), as a racing pool client would.
                 The unanswered request is then on the wire.
  --gap S        sleep S seconds between a response and the next request.
  --idle S       after the last response, keep the connection open and wait up to S
                 seconds for the server to close it (reports when it did), then close.
  --raw FILE     send the requests written in FILE instead of generated GETs. Requests are
                 separated by one blank line; line ends are converted to CRLF; '{host}' is
                 replaced by HOST[:PORT]. Only requests without a body are supported.

Output: one line per event on stdout, times relative to connect.
Exit status: 0 whatever the server did (this is a recorder, not a test).
"""
import argparse
import re
import socket
import sys
import time

T0 = time.monotonic()


def log(msg):
    print(f"[{time.monotonic() - T0:7.3f}s] {msg}", flush=True)


class Closed(Exception):
    """The server closed (EOF) or reset the connection."""


class Conn:
    def __init__(self, host, port):
        self.s = socket.create_connection((host, port), timeout=10)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def fill(self):
        try:
            d = self.s.recv(65536)
        except (ConnectionResetError, BrokenPipeError) as e:
            raise Closed(f"reset ({e.__class__.__name__})")
        if not d:
            raise Closed("EOF (server FIN)")
        self.buf += d

    def read_until(self, sep):
        while sep not in self.buf:
            self.fill()
        i = self.buf.index(sep) + len(sep)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def read_n(self, n):
        while len(self.buf) < n:
            self.fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_to_eof(self):
        try:
            while True:
                self.fill()
        except Closed:
            pass
        out, self.buf = self.buf, b""
        return out


def parse_head(raw):
    lines = raw.decode("latin-1").split("\r\n")
    status = lines[0]
    hdrs = []
    for l in lines[1:]:
        if l and ":" in l:
            k, v = l.split(":", 1)
            hdrs.append((k.strip().lower(), v.strip()))
    return status, hdrs


def hget(hdrs, name):
    vals = [v for k, v in hdrs if k == name]
    return ", ".join(vals) if vals else None


def read_response(c, method):
    """Read one final response; returns (status_line, headers, body_len, will_close)."""
    while True:
        status, hdrs = parse_head(c.read_until(b"\r\n\r\n"))
        m = re.match(r"HTTP/(\d\.\d)\s+(\d{3})", status)
        if not m:
            raise Closed(f"bad status line {status!r}")
        version, code = m.group(1), int(m.group(2))
        if 100 <= code < 200 and code != 101:
            log(f"  interim {status}")
            continue
        break
    conn = (hget(hdrs, "connection") or "").lower()
    te = (hget(hdrs, "transfer-encoding") or "").lower()
    cl = hget(hdrs, "content-length")
    body = 0
    if method == "HEAD" or code in (204, 304):
        pass
    elif "chunked" in te:
        while True:
            size_line = c.read_until(b"\r\n")
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                while c.read_until(b"\r\n") != b"\r\n":  # trailer fields, then CRLF
                    pass
                break
            c.read_n(size + 2)
            body += size
    elif cl is not None:
        body = int(cl.split(",")[0])
        c.read_n(body)
    else:
        body = len(c.read_to_eof())
        conn = "close"
    will_close = "close" in conn or (version == "1.0" and "keep-alive" not in conn)
    return status, hdrs, body, will_close


def build_requests(a, hostport):
    if a.raw:
        text = open(a.raw, encoding="latin-1").read().replace("\r\n", "\n")
        blocks = [b.strip("\n") for b in re.split(r"\n\s*\n", text) if b.strip()]
        reqs = []
        for b in blocks:
            b = b.replace("{host}", hostport)
            reqs.append((b.split(" ", 1)[0].upper(), ("\r\n".join(b.split("\n")) + "\r\n\r\n").encode("latin-1")))
        return reqs
    reqs = []
    for i in range(a.count):
        h = (f"GET {a.path} HTTP/1.1\r\nHost: {hostport}\r\n"
             f"User-Agent: kascope-sequential/1.0\r\nAccept: */*\r\n")
        if a.close_last and i == a.count - 1:
            h += "Connection: close\r\n"
        elif a.keepalive:
            h += "Connection: keep-alive\r\n"
        reqs.append(("GET", (h + "\r\n").encode()))
    return reqs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("path", nargs="?", default="/")
    ap.add_argument("count", nargs="?", type=int, default=1)
    ap.add_argument("--host", default="10.201.0.1")
    ap.add_argument("--port", type=int, default=80)
    ap.add_argument("--keepalive", action="store_true")
    ap.add_argument("--close-last", action="store_true")
    ap.add_argument("--honor-close", action="store_true")
    ap.add_argument("--gap", type=float, default=0.0)
    ap.add_argument("--idle", type=float, default=0.0)
    ap.add_argument("--raw")
    a = ap.parse_args()

    hostport = a.host if a.port == 80 else f"{a.host}:{a.port}"
    reqs = build_requests(a, hostport)
    c = Conn(a.host, a.port)
    log(f"connected {c.s.getsockname()[0]}:{c.s.getsockname()[1]} -> {a.host}:{a.port}")
    sent = answered = 0
    closed = None
    for i, (method, data) in enumerate(reqs, 1):
        if i > 1 and a.gap:
            time.sleep(a.gap)
        try:
            c.s.sendall(data)
        except OSError as e:
            closed = f"send failed ({e.__class__.__name__})"
            log(f"request {i}: {closed}")
            break
        sent += 1
        first_line = data.split(b"\r\n", 1)[0].decode("latin-1")
        log(f"request {i} sent: {first_line}")
        try:
            status, hdrs, body, will_close = read_response(c, method)
        except Closed as e:
            closed = str(e)
            log(f"request {i}: no response, server closed: {closed}")
            break
        answered += 1
        log(f"response {i}: {status} body={body} Connection={hget(hdrs, 'connection')} "
            f"Keep-Alive={hget(hdrs, 'keep-alive')}")
        if will_close and a.honor_close:
            log("server announced close; stopping (--honor-close)")
            break
    if closed is None and a.idle > 0:
        log(f"idling up to {a.idle:.1f}s waiting for the server to close")
        c.s.settimeout(a.idle)
        t = time.monotonic()
        try:
            c.fill()
            log(f"unexpected data from server after {time.monotonic() - t:.3f}s idle")
        except Closed as e:
            log(f"server closed after {time.monotonic() - t:.3f}s idle: {e}")
        except socket.timeout:
            log(f"server did not close within {a.idle:.1f}s")
    c.s.close()
    log(f"client closed; sent={sent} answered={answered} of {len(reqs)} planned")


if __name__ == "__main__":
    main()
