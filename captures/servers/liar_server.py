#!/usr/bin/env python3
"""HTTP/1.1 server whose Keep-Alive header lies (plain sockets, no http.server).

usage: liar_server.py [--bind ADDR] [--port PORT] [--directory DIR] [--idle SECONDS]
                      [--adv-timeout N] [--adv-max N]

Every response carries
    Connection: keep-alive
    Keep-Alive: timeout=10, max=2          (--adv-timeout / --adv-max)
but the server honours neither value:
  * it answers any number of requests on one connection (no max at all), and
  * it closes a connection that has been idle (no new request byte) for --idle seconds
    (default 1.0), far earlier than the advertised timeout. The close is a FIN
    (shutdown(SHUT_WR)); the server then waits up to 2 s for the client's FIN before it
    closes the socket, so no RST is caused by the server.
The request's own Connection header is ignored as well (the server never closes after a
response). GET and HEAD serve files from --directory (404 if missing, text body); other
methods get 405. Responses are written with one sendall() (TCP_NODELAY), so a small
response is one TCP segment.

One thread per connection. Logs one line per event on stdout (times relative to start).
"""
import argparse
import os
import socket
import sys
import threading
import time
from email.utils import formatdate

T0 = time.monotonic()
LOCK = threading.Lock()


def log(msg):
    with LOCK:
        print(f"[{time.monotonic() - T0:8.3f}s] {msg}", flush=True)


class Handler:
    def __init__(self, sock, peer, a):
        self.s, self.peer, self.a = sock, f"{peer[0]}:{peer[1]}", a
        self.buf = b""

    def recv_more(self):
        d = self.s.recv(65536)
        if not d:
            raise EOFError
        self.buf += d

    def read_head(self):
        """Return the request head, None on idle timeout (nothing received), raise EOFError."""
        self.s.settimeout(self.a.idle)
        while b"\r\n\r\n" not in self.buf:
            try:
                self.recv_more()
            except socket.timeout:
                if not self.buf:
                    return None
                raise EOFError  # a partial request went idle: give up on it
            self.s.settimeout(10)  # inside a request: no idle close
        i = self.buf.index(b"\r\n\r\n") + 4
        head, self.buf = self.buf[:i], self.buf[i:]
        return head

    def respond(self, method, path):
        status, ctype, body = "200 OK", "text/plain", b""
        rel = os.path.normpath(path.split("?", 1)[0]).lstrip("/")
        f = os.path.join(self.a.directory, rel) if self.a.directory and rel and not rel.startswith("..") else None
        if method not in ("GET", "HEAD"):
            status, body = "405 Method Not Allowed", b"method not allowed\n"
        elif f and os.path.isfile(f):
            with open(f, "rb") as fh:
                body = fh.read()
            ctype = {".html": "text/html", ".css": "text/css"}.get(os.path.splitext(f)[1], "text/plain")
        else:
            status, body = "404 Not Found", b"not found\n"
        head = (f"HTTP/1.1 {status}\r\n"
                f"Date: {formatdate(usegmt=True)}\r\n"
                f"Server: kascope-liar/1.0\r\n"
                f"Content-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\n"
                f"Connection: keep-alive\r\n"
                f"Keep-Alive: timeout={self.a.adv_timeout}, max={self.a.adv_max}\r\n\r\n").encode()
        self.s.sendall(head + (b"" if method == "HEAD" else body))
        return status

    def run(self):
        n = 0
        try:
            while True:
                head = self.read_head()
                if head is None:
                    log(f"{self.peer}: idle {self.a.idle:.1f}s after {n} response(s): closing (FIN)")
                    self.s.shutdown(socket.SHUT_WR)
                    self.s.settimeout(2.0)
                    try:
                        while self.s.recv(65536):
                            pass
                        log(f"{self.peer}: client FIN received")
                    except (socket.timeout, OSError) as e:
                        log(f"{self.peer}: no client FIN ({e.__class__.__name__})")
                    return
                lines = head.decode("latin-1").split("\r\n")
                parts = lines[0].split()
                method, path = (parts + ["", "/"])[:2]
                cl = 0
                for l in lines[1:]:
                    if l.lower().startswith("content-length:"):
                        cl = int(l.split(":", 1)[1])
                while len(self.buf) < cl:  # discard a request body
                    self.recv_more()
                self.buf = self.buf[cl:]
                n += 1
                status = self.respond(method, path)
                log(f"{self.peer}: request {n} {lines[0]!r} -> {status}")
        except EOFError:
            log(f"{self.peer}: client closed after {n} response(s)")
        except OSError as e:
            log(f"{self.peer}: {e.__class__.__name__} after {n} response(s)")
        finally:
            self.s.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bind", default="10.201.0.1")
    ap.add_argument("--port", type=int, default=8002)
    ap.add_argument("--directory", default="")
    ap.add_argument("--idle", type=float, default=1.0, help="real idle timeout (s)")
    ap.add_argument("--adv-timeout", type=int, default=10, help="advertised timeout=")
    ap.add_argument("--adv-max", type=int, default=2, help="advertised max=")
    a = ap.parse_args()
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((a.bind, a.port))
    ls.listen(16)
    log(f"liar_server on {a.bind}:{a.port}: advertises timeout={a.adv_timeout}, max={a.adv_max}; "
        f"really: no max, idle close after {a.idle:.1f}s")
    try:
        while True:
            s, peer = ls.accept()
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=Handler(s, peer, a).run, daemon=True).start()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
