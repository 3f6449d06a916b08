//! Arbitrary sequences of TCP segments between a few endpoints through `Analyzer`.
//!
//! Input layout: `[config] [mode]` then 12-byte segment records, then payload bytes for the records
//! that take theirs from the input. A record:
//!
//! | byte  | meaning                                                                    |
//! |-------|----------------------------------------------------------------------------|
//! | 0     | src (bits 0-1) and dst (bits 2-3) endpoint; bit 4-7: timestamp step        |
//! | 1     | FIN/SYN/RST/ACK as in the TCP header (0x01/0x02/0x04/0x10); 0x08: payload   |
//! |       | from the canonical HTTP stream; 0x20: absolute seq; 0x40: absolute ack     |
//! | 2-5   | seq (big-endian): absolute, or the low 16 bits as a signed offset from the |
//! |       | sender's initial sequence number                                           |
//! | 6-9   | ack, likewise from the receiver's initial sequence number                  |
//! | 10    | payload length                                                             |
//! | 11    | bytes missing (snaplen): 0, a few, or megabytes                            |
//!
//! `config`: bits 0-1 the reassembly limit, bits 2-7 the number of records. `mode`: bit 0 no
//! linger (live capture), bit 1 a 64 KiB memory budget, bit 2 `tick` after every segment,
//! bit 3 a 64-byte head limit (unless `AVOID_KNOWN_HANG`: see `http_parser`), bit 4
//! `mark_kernel_drops` once, half-way.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use kascope::decode::{Flags, Segment};
use kascope::{Analyzer, Config, Output};
use libfuzzer_sys::fuzz_target;

const REQUESTS: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n\
POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello\
HEAD /h HTTP/1.1\r\nHost: a\r\n\r\n\
PUT /u HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc\
GET /c HTTP/1.1\r\nConnection: close\r\n\r\n";

const RESPONSES: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nKeep-Alive: timeout=5, max=9\r\n\r\nbody\
HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n10;x=y\r\n0123456789abcdef\r\n0\r\nT: 1\r\n\r\n\
HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n\
HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n\
HTTP/1.1 304 Not Modified\r\nConnection: close\r\n\r\n";

const RECORD: usize = 12;

const AVOID_KNOWN_HANG: bool = false;

fn endpoint(index: u8) -> SocketAddr {
    match index & 3 {
        0 => SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 80),
        1 => SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 40000),
        2 => SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 40001),
        _ => SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 80),
    }
}

/// Initial sequence numbers per endpoint, one of them just below the wrap.
fn isn(index: u8) -> u32 {
    [1_000, 0xffff_ff80, 7, 0x8000_0000][usize::from(index & 3)]
}

fn sequence(bytes: &[u8], absolute: bool, index: u8) -> u32 {
    let value = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if absolute {
        value
    } else {
        isn(index).wrapping_add(i32::from(value as u16 as i16) as u32)
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&config, rest)) = input.split_first() else {
        return;
    };
    let Some((&mode, rest)) = rest.split_first() else {
        return;
    };
    let count = usize::from(config >> 2).min(rest.len() / RECORD);
    let (records, mut payloads) = rest.split_at(count * RECORD);
    let defaults = Config::default();
    let mut analyzer = Analyzer::new(Config {
        reassembly_limit: [64, 1024, 65536, 4 << 20][usize::from(config & 3)],
        transactions: true,
        linger_ns: if mode & 1 != 0 { 0 } else { defaults.linger_ns },
        max_memory: if mode & 2 != 0 {
            64 << 10
        } else {
            defaults.max_memory
        },
        max_head: if mode & 8 != 0 && !AVOID_KNOWN_HANG {
            64
        } else {
            defaults.max_head
        },
        ..defaults
    });
    let mut ts_ns = 1_700_000_000_000_000_000u64;
    let mut scratch = Vec::new();
    let mut outputs = 0usize;
    for (index, record) in records.chunks_exact(RECORD).enumerate() {
        let src_index = record[0] & 3;
        let mut dst_index = (record[0] >> 2) & 3;
        if dst_index == src_index {
            dst_index ^= 1;
        }
        ts_ns += u64::from(record[0] >> 4) << 26;
        let bits = record[1];
        let seq = sequence(&record[2..6], bits & 0x20 != 0, src_index);
        let ack = sequence(&record[6..10], bits & 0x40 != 0, dst_index);
        let len = usize::from(record[10]);
        let missing = match record[11] >> 6 {
            0 | 1 => 0,
            2 => u32::from(record[11] & 0x3f),
            _ => u32::from(record[11] & 0x3f) << 20,
        };
        let payload: &[u8] = if bits & 0x08 != 0 {
            // The bytes the canonical stream has at this sequence number, so that reordered
            // and retransmitted segments carry consistent, parseable data.
            let stream = if endpoint(src_index).port() == 80 {
                RESPONSES
            } else {
                REQUESTS
            };
            let start = seq.wrapping_sub(isn(src_index).wrapping_add(1)) as usize;
            scratch.clear();
            scratch.extend((0..len).map(|i| stream[(start.wrapping_add(i)) % stream.len()]));
            &scratch
        } else {
            let take = len.min(payloads.len());
            let (payload, after) = payloads.split_at(take);
            payloads = after;
            payload
        };
        let segment = Segment {
            ts_ns,
            src: endpoint(src_index),
            dst: endpoint(dst_index),
            seq,
            ack,
            flags: Flags(bits & 0x17),
            // Two window values, so keep-alive ACKs and window updates both occur.
            window: u16::from(bits & 0x80 != 0) << 12,
            payload,
            missing,
            shed: false,
        };
        analyzer.process_segment(&segment);
        if mode & 4 != 0 {
            analyzer.tick(ts_ns);
        }
        if mode & 0x10 != 0 && index == count / 2 {
            analyzer.mark_kernel_drops();
        }
        std::hint::black_box(analyzer.memory_estimate());
        outputs += analyzer.take_output().count();
    }
    analyzer.finish_all(|output| {
        outputs += 1;
        match output {
            Output::Connection(record) => std::hint::black_box(format!("{record:?}")),
            Output::Transaction(record) => std::hint::black_box(format!("{record:?}")),
        };
    });
    std::hint::black_box(outputs);
    assert_eq!(analyzer.open_connections(), 0);
});
