#!/usr/bin/env python3
"""A keep-alive connection pool built on Python's http.client, as application pools use it.

usage: pool.py --host H --port P [--path /tiny.txt] [--workers N] [--requests R]
               [--min-idle L] --max-idle U [--seed S] [--agent UA] [--stagger S]
               [--then server|close:SECONDS] [--tcp-keepalive IDLE:INTERVAL]

Each of N workers owns one pooled http.client.HTTPConnection and sends R GET requests on
it (HTTP/1.1, 'Connection: keep-alive', 'User-Agent: UA'), sleeping an idle gap drawn
uniformly from [L, U] seconds (seeded: the same gaps every run) between a response and the
next request. Like most pools it reuses the connection without checking it first: when the
server closed it meanwhile, the request goes out on a dead connection and is lost (the
keep-alive race); the worker then reconnects and sends it again, as pools retry idempotent
requests. When a response says 'Connection: close', http.client opens a new connection for
the next request.

  --then server         after the last response keep the connection until the server
                        closes it (at most 15 s): the server's idle timeout shows.
  --then close:SECONDS  close the idle connection after SECONDS: the pool's own idle
                        timeout, shorter than the server's.
  --tcp-keepalive I:N   SO_KEEPALIVE with TCP_KEEPIDLE I and TCP_KEEPINTVL N seconds.

Output: one line per event on stdout, times relative to the start.
Exit status: 0 whatever the server did (this is a recorder, not a test).
"""
import argparse
import http.client
import random
import select
import socket
import threading
import time

T0 = time.monotonic()
LOCK = threading.Lock()


def log(worker, msg):
    with LOCK:
        print(f"[{time.monotonic() - T0:7.3f}s] w{worker}: {msg}", flush=True)


class Connection(http.client.HTTPConnection):
    """An HTTPConnection whose socket gets the pool's TCP options."""

    keepalive = None

    def connect(self):
        super().connect()
        if self.keepalive:
            idle, interval = self.keepalive
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, idle)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, interval)


def fetch(conn, path, agent):
    """One request; returns (status, will_close) or raises on a dead connection."""
    conn.request("GET", path, headers={"User-Agent": agent, "Connection": "keep-alive"})
    response = conn.getresponse()
    response.read()
    return response.status, response.will_close


def worker(n, a):
    rng = random.Random(a.seed * 1000 + n)
    time.sleep(n * a.stagger)
    conn = Connection(a.host, a.port, timeout=10)
    conn.keepalive = a.tcp_keepalive
    for i in range(a.requests):
        if i > 0:
            gap = rng.uniform(a.min_idle, a.max_idle)
            time.sleep(gap)
        for attempt in (1, 2):
            try:
                status, will_close = fetch(conn, a.path, a.agent)
                log(n, f"request {i + 1}: {status}" + (" (server closes)" if will_close else "")
                    + (f" after idle {gap:.3f}s" if i > 0 else ""))
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as e:
                conn.close()
                log(n, f"request {i + 1}: lost on a closed connection ({e.__class__.__name__})"
                    + (", retrying" if attempt == 1 else ", giving up"))
    sock = conn.sock
    if sock is None:
        log(n, "done; the server had closed")
        return
    if a.then == "server":
        ready, _, _ = select.select([sock], [], [], 15)
        try:
            closed = ready and not sock.recv(1)
        except ConnectionResetError:
            closed = True
        log(n, "the server closed the idle connection" if closed
            else "the server did not close within 15 s")
    else:
        time.sleep(a.then)
        log(n, f"closing the connection idle {a.then:.3f}s (pool idle timeout)")
    conn.close()


def parse_then(text):
    if text == "server":
        return text
    if text.startswith("close:"):
        return float(text[len("close:"):])
    raise argparse.ArgumentTypeError("server or close:SECONDS")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="10.201.0.1")
    ap.add_argument("--port", type=int, default=80)
    ap.add_argument("--path", default="/tiny.txt")
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--requests", type=int, default=6)
    ap.add_argument("--min-idle", type=float)
    ap.add_argument("--max-idle", type=float, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--agent", default="kascope-pool/1.0")
    ap.add_argument("--stagger", type=float, default=0.05)
    ap.add_argument("--then", type=parse_then, default="server")
    ap.add_argument("--tcp-keepalive", type=lambda t: tuple(int(x) for x in t.split(":")))
    a = ap.parse_args()
    if a.min_idle is None:
        a.min_idle = a.max_idle / 2
    threads = [threading.Thread(target=worker, args=(n, a)) for n in range(a.workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


if __name__ == "__main__":
    main()
