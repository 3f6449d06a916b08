#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/ (not committed): small captures from
../captures and ../../shared/corpus for the pipeline targets, a few hand-made HTTP
conversations for http_parser/http_split, and handshake-data-FIN segment sequences
(in order, reversed, duplicated) for reassembly."""
import glob
import gzip
import os
import pathlib
import struct

here = pathlib.Path(__file__).resolve().parent
root = str(here / "corpus")
for target in ("pipeline", "pipeline_eth", "http_parser", "http_split", "reassembly"):
    (here / "corpus" / target).mkdir(parents=True, exist_ok=True)

# Captures under 50 KB: the repository's own, and HTTP ones of the shared corpus.
shared = here.parent.parent / "shared" / "corpus"
pcaps = sorted(glob.glob(str(here.parent / "captures" / "*.pcap")))
# The captures built in test code: a pcapng mixing link types and resolutions, and more.
pcaps += sorted(glob.glob(str(here.parent / "tests" / "built" / "*.pcap*")))
pcaps += sorted(glob.glob(str(here.parent / "tests" / "inputs" / "*.pcap*")))
for suite in ("sv", "arkime", "zeek"):
    pcaps += [p for p in sorted(glob.glob(f"{shared}/{suite}/http-*.pcap")) if os.path.getsize(p) < 50_000]
for p in pcaps:
    data = open(p, "rb").read()
    name = os.path.basename(os.path.dirname(p)) + "-" + os.path.basename(p)
    open(f"{root}/pipeline/{name}", "wb").write(data)
    # The same bytes compressed, so that the decoders in front of the reader are reached.
    open(f"{root}/pipeline/{name}.gz", "wb").write(gzip.compress(data))
    # pipeline_eth takes a link-type selector byte and the records without the global header.
    if data[:4] == bytes.fromhex("d4c3b2a1"):
        link = struct.unpack("<I", data[20:24])[0]
        sel = {1: 0, 0: 1, 101: 2, 113: 4}.get(link)
        if sel is not None:
            open(f"{root}/pipeline_eth/{name}", "wb").write(bytes([sel]) + data[24:])

convs = [
    [(0, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"), (1, b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nKeep-Alive: timeout=5, max=100\r\n\r\nbody")],
    [(0, b"POST /x HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"), (1, b"HTTP/1.1 100 Continue\r\n\r\n"), (0, b"hello"), (1, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1a;ext=1\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-T: 1\r\n\r\n")],
    [(0, b"HEAD / HTTP/1.1\r\n\r\nGET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), (1, b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\nHTTP/1.1 304 Not Modified\r\n\r\nHTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")],
    [(0, b"GET /chat HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"), (1, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello"), (0, b"\x81\x02hi")],
    [(0, b"CONNECT a:443 HTTP/1.1\r\n\r\n"), (1, b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x01\x00\x05hello")],
    [(1, b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\nclose-delimited body"), (0, b"GET / HTTP/1.0\r\n\r\n")],
]
for i, conv in enumerate(convs):
    for split in (0, 7):
        ops, data = b"", b""
        for d, text in conv:
            if split:
                for j in range(0, len(text), split):
                    part = text[j:j+split]
                    ops += bytes([d, len(part)]); data += part
            else:
                ops += bytes([d, len(text)]) if len(text) < 256 else bytes([d, 0]); data += text
        ops = ops[:64]
        n = len(ops) // 2
        for cfg in (0, 2):
            blob = bytes([cfg, n - 1]) + ops + data
            for tgt in ("http_parser", "http_split"):
                open(f"{root}/{tgt}/conv{i}-s{split}-c{cfg}", "wb").write(blob)

# reassembly: endpoints 1 (client 10.0.0.2:40000, isn 0xffffff80) and 0 (server :80, isn 1000)
REQ_LEN, RESP_LEN = 190, 300
def rec(src, dst, flags, seq_off, ack_off, length, missing=0, ts=1):
    b0 = src | (dst << 2) | (ts << 4)
    return bytes([b0, flags]) + struct.pack(">I", seq_off & 0xffff) + struct.pack(">I", ack_off & 0xffff) + bytes([length, missing])
SYN, ACK, FIN, RST, CANON = 2, 0x10, 1, 4, 8
def conv(segs_c, segs_s, order):
    recs = [rec(1, 0, SYN, 0, 0, 0), rec(0, 1, SYN | ACK, 0, 1, 0), rec(1, 0, ACK, 1, 1, 0)]
    cs, ss = [], []
    off = 1
    for l in segs_c:
        cs.append(rec(1, 0, ACK | CANON, off, 1, l)); off += l
    coff = off; off = 1
    for l in segs_s:
        ss.append(rec(0, 1, ACK | CANON, off, coff, l)); off += l
    body = cs + ss
    if order == "rev":
        body = body[::-1]
    elif order == "dup":
        body = body + body[:2]
    recs += body + [rec(1, 0, FIN | ACK, coff, off, 0), rec(0, 1, FIN | ACK, off, coff + 1, 0)]
    return recs
for i, (c, s, order) in enumerate([([27, 50, 30], [100, 100, 100], "in"), ([27, 50, 30], [100, 100, 100], "rev"), ([10] * 10, [60] * 5, "dup")]):
    recs = conv(c, s, order)
    for limit in (3, 0):
        cfg = ((len(recs) & 0x3f) << 2) | limit
        for mode in (0, 7): open(f"{root}/reassembly/conv{i}-l{limit}-m{mode}", "wb").write(bytes([cfg, mode]) + b"".join(recs))
