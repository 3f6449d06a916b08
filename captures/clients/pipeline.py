#!/usr/bin/env python3
"""Pipelining HTTP/1.1 client: N GET requests in ONE write, then read the responses.

usage: pipeline.py [--host H] [--port P] [--count N] [--keepalive] [--close-last] [PATH ...]

All N requests are built first and handed to the kernel with a single sendall() (with
TCP_NODELAY, so for small requests they leave in one TCP segment). The client then reads
responses in order until it has N of them or the server closes the connection (a server
may stop answering after its keep-alive limit), and closes its side.
PATHs are used round-robin (default /tiny.txt).

  --keepalive   add 'Connection: keep-alive' to every request
  --close-last  add 'Connection: close' to the last request

Output: one line per event on stdout, times relative to connect.
"""
import argparse
import os
import socket
import sys
import time

sys.dont_write_bytecode = True  # keep captures/clients free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sequential import Conn, Closed, read_response, hget, log  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("paths", nargs="*", default=["/tiny.txt"])
    ap.add_argument("--host", default="10.201.0.1")
    ap.add_argument("--port", type=int, default=80)
    ap.add_argument("--count", type=int, default=5)
    ap.add_argument("--keepalive", action="store_true")
    ap.add_argument("--close-last", action="store_true")
    a = ap.parse_args()

    hostport = a.host if a.port == 80 else f"{a.host}:{a.port}"
    reqs = []
    for i in range(a.count):
        path = a.paths[i % len(a.paths)]
        h = (f"GET {path} HTTP/1.1\r\nHost: {hostport}\r\n"
             f"User-Agent: kascope-pipeline/1.0\r\nAccept: */*\r\n")
        if a.close_last and i == a.count - 1:
            h += "Connection: close\r\n"
        elif a.keepalive:
            h += "Connection: keep-alive\r\n"
        reqs.append((h + "\r\n").encode())
    data = b"".join(reqs)

    c = Conn(a.host, a.port)
    log(f"connected {c.s.getsockname()[0]}:{c.s.getsockname()[1]} -> {a.host}:{a.port}")
    c.s.sendall(data)
    log(f"sent {a.count} requests ({len(data)} bytes) in one write")
    got = 0
    for i in range(1, a.count + 1):
        try:
            status, hdrs, body, will_close = read_response(c, "GET")
        except Closed as e:
            log(f"response {i}: none, server closed: {e}")
            break
        got += 1
        log(f"response {i}: {status} body={body} Connection={hget(hdrs, 'connection')} "
            f"Keep-Alive={hget(hdrs, 'keep-alive')}")
    c.s.close()
    log(f"client closed; answered={got} of {a.count}")


if __name__ == "__main__":
    main()
