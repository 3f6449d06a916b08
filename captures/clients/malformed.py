#!/usr/bin/env python3
"""Malformed-head client (raw socket): one connection per kind of malformed head.

usage: malformed.py [--host H] [--port P] [--path PATH]

Each connection sends `POST PATH` whose head has one fault a broken client or a scanner
puts on the wire, then `Content-Length: 840` and an 840-byte body whose first line looks
like a request (`GET /smuggled HTTP/1.1`). It reads what the server answers; if the server
keeps the connection open, it sends one well-formed `GET PATH` and reads that answer too,
then closes. The faults:

  nul-bytes      NUL and other control bytes in header values (the public capture's case)
  space-colon    a space between a header name and its colon (`Content-Length : 840`)
  obs-fold       the Content-Length value folded onto a continuation line
  bad-name-byte  a control byte inside a header name

Output: one line per event on stdout, times relative to start.
Exit status: 0 whatever the server did (this is a recorder, not a test).
"""
import argparse
import socket
import time

T0 = time.monotonic()

FAULTS = [
    ("nul-bytes", b"User-Agent: Mozilla/4.0\0\0\0(compatible)\r\nX-Session: \0\x01\0\r\nContent-Length: 840\r\n"),
    ("space-colon", b"Content-Length : 840\r\n"),
    ("obs-fold", b"Content-Length:\r\n 840\r\n"),
    ("bad-name-byte", b"X-Fo\x01o: bar\r\nContent-Length: 840\r\n"),
]


def log(msg):
    print(f"[{time.monotonic() - T0:7.3f}s] {msg}", flush=True)


def read_answer(s, idle):
    """Reads until the server closes or stays quiet for `idle` seconds; returns
    (bytes, closed)."""
    s.settimeout(idle)
    data = b""
    while True:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            return data, False
        except ConnectionResetError:
            return data, True
        if not chunk:
            return data, True
        data += chunk


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=80)
    ap.add_argument("--path", default="/tiny.txt")
    a = ap.parse_args()
    host = f"{a.host}:{a.port}".encode()
    body = b"GET /smuggled HTTP/1.1\r\nHost: " + host + b"\r\n\r\n"
    body = body.ljust(840, b"a")
    for name, lines in FAULTS:
        s = socket.create_connection((a.host, a.port), timeout=10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        head = b"POST " + a.path.encode() + b" HTTP/1.1\r\nHost: " + host + b"\r\n" + lines + b"\r\n"
        s.sendall(head + body)
        answer, closed = read_answer(s, 1.0)
        first = answer.split(b"\r\n", 1)[0].decode("latin-1")
        log(f"{name}: {first!r} ({len(answer)} bytes){', server closed' if closed else ''}")
        if not closed:
            s.sendall(b"GET " + a.path.encode() + b" HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
            answer, closed = read_answer(s, 1.0)
            first = answer.split(b"\r\n", 1)[0].decode("latin-1")
            log(f"{name}: then GET: {first!r} ({len(answer)} bytes)")
        s.close()
        time.sleep(0.05)


if __name__ == "__main__":
    main()
