#!/usr/bin/env python3
"""Tiny HTTP/1.1 server that answers every GET with a chunked response plus a trailer.

usage: chunked_server.py [--bind ADDR] [--port PORT] [--chunks N] [--chunk-size BYTES]
                         [--delay SECONDS]

protocol_version = "HTTP/1.1", so connections persist (keep-alive) until the client
closes or sends 'Connection: close'. Each response:
    HTTP/1.1 200 OK
    Content-Type: text/plain
    Transfer-Encoding: chunked
    Trailer: X-Body-Length
    <N chunks of BYTES bytes each, written separately with DELAY between them, so
     they travel in separate TCP segments>
    0
    X-Body-Length: <total>
    <empty line>
HEAD gets the same headers and no body; other methods get http.server's 501.
"""
import argparse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import time


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kascope-chunked/1.0"
    chunks = 4
    chunk_size = 700
    delay = 0.005

    def log_message(self, fmt, *args):  # quiet
        pass

    def _head(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Trailer", "X-Body-Length")
        self.end_headers()

    def do_HEAD(self):
        self._head()

    def do_GET(self):
        self._head()
        total = 0
        for i in range(self.chunks):
            line = f"chunk {i + 1}/{self.chunks} of {self.path} ".encode()
            data = (line * (self.chunk_size // len(line) + 1))[: self.chunk_size - 1] + b"\n"
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            total += len(data)
            if self.delay:
                time.sleep(self.delay)
        self.wfile.write(b"0\r\nX-Body-Length: %d\r\n\r\n" % total)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bind", default="10.201.0.1")
    ap.add_argument("--port", type=int, default=8001)
    ap.add_argument("--chunks", type=int, default=4)
    ap.add_argument("--chunk-size", type=int, default=700)
    ap.add_argument("--delay", type=float, default=0.005)
    a = ap.parse_args()
    Handler.chunks, Handler.chunk_size, Handler.delay = a.chunks, a.chunk_size, a.delay
    srv = ThreadingHTTPServer((a.bind, a.port), Handler)
    print(f"chunked_server listening on {a.bind}:{a.port}", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
