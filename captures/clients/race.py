#!/usr/bin/env python3
"""Keep-alive race client (raw sockets): reuse an idle connection just as the server closes it.

usage: race.py [--host H] [--port P] [--path PATH] --sleep S [--sleep S ...] [--pause S] [--wait S]

For every --sleep value S, one attempt on a NEW connection:
  1. connect, send  GET PATH HTTP/1.1 + 'Connection: keep-alive', read the whole response
     (Content-Length or chunked);
  2. sleep S seconds, measured from the moment the last byte of that response was read
     (time.sleep to 3 ms before the target, then a busy-wait, so the send time is accurate
     to some 10 us). The client does NOT look at the socket while it sleeps: like a
     connection pool that picks an idle connection, it does not notice the server's FIN;
  3. send the same request again (an error on send -- EPIPE, ECONNRESET -- is logged, not
     fatal) and wait up to --wait seconds for a response, EOF (server FIN) or reset;
  4. close the socket, pause --pause seconds, next attempt.
With S equal to the server's keep-alive timeout, request 2 leaves just before or just after
the server's idle close, so it may be answered, or cross the server's FIN and be lost
(unanswered, RST or silently dropped).

Output: one line per event, with the time since that attempt's connect and, after the
first response, the time since that response ("+idle"). Exit status 0 whatever happened.
"""
import argparse
import socket
import time


def now():
    return time.monotonic()


class Attempt:
    def __init__(self, a, idx, sleep):
        self.a, self.idx, self.sleep = a, idx, sleep
        self.t0 = now()
        self.t_resp = None
        self.buf = b""

    def log(self, msg):
        t = now()
        extra = f" (+{t - self.t_resp:.6f}s idle)" if self.t_resp is not None else ""
        print(f"[#{self.idx} {t - self.t0:9.6f}s]{extra} {msg}", flush=True)

    def request(self):
        hp = self.a.host if self.a.port == 80 else f"{self.a.host}:{self.a.port}"
        return (f"GET {self.a.path} HTTP/1.1\r\nHost: {hp}\r\nUser-Agent: kascope-race/1.0\r\n"
                f"Accept: */*\r\nConnection: keep-alive\r\n\r\n").encode()

    def fill(self):
        """Read more data; returns None or a string describing how the connection ended."""
        try:
            d = self.s.recv(65536)
        except socket.timeout:
            return "timeout"
        except OSError as e:  # ConnectionResetError and friends
            return f"reset ({e.__class__.__name__}: {e.strerror})"
        if not d:
            return "EOF (server FIN)"
        self.buf += d
        return None

    def read_response(self):
        """Returns (status_line, keep_alive_header, connection_header) or (None, why)."""
        while b"\r\n\r\n" not in self.buf:
            why = self.fill()
            if why:
                return None, why
        i = self.buf.index(b"\r\n\r\n") + 4
        head, self.buf = self.buf[:i].decode("latin-1"), self.buf[i:]
        lines = head.split("\r\n")
        hdr = {}
        for l in lines[1:]:
            if ":" in l:
                k, v = l.split(":", 1)
                hdr[k.strip().lower()] = v.strip()
        if "chunked" in hdr.get("transfer-encoding", "").lower():
            while True:
                while b"\r\n" not in self.buf:
                    why = self.fill()
                    if why:
                        return None, why
                j = self.buf.index(b"\r\n")
                size = int(self.buf[:j].split(b";")[0], 16)
                need = j + 2 + size + 2
                while len(self.buf) < need:
                    why = self.fill()
                    if why:
                        return None, why
                self.buf = self.buf[need:]
                if size == 0:
                    break
        else:
            n = int(hdr.get("content-length", "0"))
            while len(self.buf) < n:
                why = self.fill()
                if why:
                    return None, why
            self.buf = self.buf[n:]
        return (lines[0], hdr.get("connection"), hdr.get("keep-alive")), None

    def run(self):
        a = self.a
        self.s = socket.create_connection((a.host, a.port), timeout=a.wait)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.log(f"connected {self.s.getsockname()[0]}:{self.s.getsockname()[1]} -> {a.host}:{a.port}; "
                 f"will sleep {self.sleep:.6f}s after response 1")
        self.s.sendall(self.request())
        self.log("request 1 sent")
        r, why = self.read_response()
        if r is None:
            self.log(f"request 1: no response: {why}")
            self.s.close()
            return
        self.t_resp = now()
        self.log(f"response 1: {r[0]} Connection={r[1]} Keep-Alive={r[2]}")
        target = self.t_resp + self.sleep
        if target - now() > 0.003:
            time.sleep(target - now() - 0.003)
        while now() < target:
            pass
        try:
            self.s.sendall(self.request())
            self.log("request 2 sent")
        except OSError as e:  # EPIPE / ECONNRESET: the server's close was already known
            self.log(f"request 2: send failed: {e.__class__.__name__}: {e.strerror}")
            self.s.close()
            return
        r, why = self.read_response()
        if r is None:
            self.log(f"request 2: NOT answered: {why}")
        else:
            self.log(f"response 2: {r[0]} Connection={r[1]} Keep-Alive={r[2]}")
        self.s.close()
        self.log("client closed")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="10.201.0.1")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--path", default="/tiny.txt")
    ap.add_argument("--sleep", type=float, action="append", required=True,
                    help="idle time before request 2 (one attempt per value)")
    ap.add_argument("--pause", type=float, default=0.3, help="pause between attempts")
    ap.add_argument("--wait", type=float, default=5.0, help="how long to wait for a response")
    a = ap.parse_args()
    for i, s in enumerate(a.sleep, 1):
        if i > 1:
            time.sleep(a.pause)
        Attempt(a, i, s).run()


if __name__ == "__main__":
    main()
