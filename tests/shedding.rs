//! Payload shed in the kernel (`--ebpf`): segments that reach user space as their headers
//! only, the frame cut exactly at the end of the TCP header. With `kernel_shedding` the
//! pipeline reads that payload as known and skipped: body framing advances over it, counts
//! stay exact, nothing is a gap. Wherever the framing needed the bytes (a head or a chunk
//! size line was expected), the same payload is a gap, flagged. Without `kernel_shedding`
//! (files, plain libpcap) such frames stay snaplen cuts: gaps.
//!
//! The captures are built here (`Conv`), since a kernel sheds only what the analyzer asked
//! for at the moment it asked: the live tests (`tests/ebpf.rs`) cover that half.

mod common;

use kascope::Config;
use kascope::decode::{Flags, Segment};
use kascope::record::{ConnectionRecord, Flag};
use kascope::source::ShedHint;

use common::pcap::{C, Conv, MSS, S};
use common::{Analysis, analyze_with, only};

/// Ethernet, IPv4 and TCP headers of a `Conv` frame: where `--ebpf` cuts a shed segment.
const HEADERS: usize = 14 + 20 + 20;

fn request(n: u32) -> Vec<u8> {
    format!("GET /{n} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes()
}

fn head(length: usize) -> Vec<u8> {
    format!("HTTP/1.1 200 OK\r\nContent-Length: {length}\r\n\r\n").into_bytes()
}

fn body(length: usize) -> Vec<u8> {
    (0..length).map(|i| b'a' + (i % 26) as u8).collect()
}

fn analyze(conv: &Conv, name: &str, kernel_shedding: bool) -> Analysis {
    let config = Config {
        kernel_shedding,
        ..Config::default()
    };
    let analysis = analyze_with(&conv.write(name), config);
    assert!(analysis.warnings.is_empty(), "{:?}", analysis.warnings);
    analysis
}

/// Response body sizes and completeness, in order.
fn bodies(analysis: &Analysis) -> Vec<(Option<u64>, bool)> {
    let mut list: Vec<_> = analysis.transactions.iter().collect();
    list.sort_by_key(|t| (t.stream, t.position));
    list.iter()
        .map(|t| (t.response_body_bytes, t.complete))
        .collect()
}

/// What must not change when payload is shed rather than captured.
fn facts(r: &ConnectionRecord) -> impl PartialEq + std::fmt::Debug {
    (
        (r.requests, r.responses, r.pipeline_depth, r.closer),
        (r.client_bytes, r.server_bytes, r.packets),
        (r.gaps, r.gap_bytes, r.parse_errors, r.resyncs, r.flags),
        (r.unanswered_requests, r.verdicts.clone()),
    )
}

/// A keep-alive connection with `responses` bodies of `length` bytes; with `shed` every
/// body segment after the one carrying the head comes up as headers only, and `reorder`
/// swaps the first two of them on the wire.
fn keep_alive(responses: u32, length: usize, shed: bool, reorder: bool) -> Conv {
    let mut c = Conv::new();
    c.handshake(1000, 5000);
    for n in 1..=responses {
        c.send(C, &request(n));
        let body = body(length);
        let first = MSS - head(length).len();
        c.send(S, &[head(length), body[..first].to_vec()].concat());
        let rest: Vec<&[u8]> = body[first..].chunks(MSS).collect();
        let base = c.next(S);
        let mut order: Vec<usize> = (0..rest.len()).collect();
        if reorder {
            order.swap(0, 1);
        }
        for i in order {
            c.send_at(S, base.wrapping_add((i * MSS) as u32), rest[i]);
            if shed {
                c.cut_last_to(HEADERS);
            }
        }
    }
    c.close_by(C);
    c
}

/// The same keep-alive traffic fully captured (analyzed as files are) and shed (analyzed
/// with `kernel_shedding`); their rows must agree on every fact.
fn captured_and_shed(responses: u32, length: usize, reorder: bool) -> (Analysis, Analysis) {
    let full = keep_alive(responses, length, false, reorder);
    let shed = keep_alive(responses, length, true, reorder);
    let seen = analyze(&full, "shed-full", false);
    let kept = analyze(&shed, "shed-shed", true);
    assert_eq!(facts(only(&kept)), facts(only(&seen)));
    (seen, kept)
}

#[test]
fn shed_body_segments_are_counted_as_body_bytes_not_gaps() {
    let (seen, kept) = captured_and_shed(3, 100_000, false);
    let (f, k) = (only(&seen), only(&kept));
    assert_eq!((k.requests, k.responses, k.gaps), (Some(3), Some(3), 0));
    assert!(k.flags.is_empty(), "{:?}", k.flags);
    assert_eq!(bodies(&kept), [(Some(100_000), true); 3]);
    assert_eq!(bodies(&kept), bodies(&seen));
    // What came up: the requests and the segment of each response that holds its head.
    assert_eq!(f.captured_payload_bytes, f.client_bytes + f.server_bytes);
    assert_eq!(
        k.captured_payload_bytes,
        k.client_bytes + 3 * MSS as u64,
        "requests and heads only"
    );
}

#[test]
fn shed_segments_out_of_order_are_reassembled_like_captured_ones() {
    let (seen, kept) = captured_and_shed(2, 20_000, true);
    let (f, k) = (only(&seen), only(&kept));
    assert_eq!((k.out_of_order, k.gaps), (f.out_of_order, 0));
    assert!(k.out_of_order >= 2);
    assert_eq!(bodies(&kept), [(Some(20_000), true); 2]);
}

#[test]
fn without_kernel_shedding_a_header_only_frame_is_a_snaplen_cut() {
    let shed = keep_alive(1, 20_000, true, false);
    let cut = analyze(&shed, "shed-as-cut", false);
    let r = only(&cut);
    assert!(r.gaps > 0 && r.flags.contains(Flag::Gap), "{r:?}");
    assert_eq!(bodies(&cut), [(Some(20_000), false)]);
}

#[test]
fn shed_chunk_data_is_counted_and_the_framing_goes_on() {
    let data = body(3 * MSS);
    let build = |shed: bool| {
        let mut c = Conv::new();
        c.handshake(1000, 5000).send(C, &request(1));
        let size_line = format!(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
            data.len()
        );
        c.send(S, size_line.as_bytes());
        for piece in data.chunks(MSS) {
            if shed {
                c.send_cut(S, piece, 0);
            } else {
                c.send(S, piece);
            }
        }
        c.send(S, b"\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n")
            .send(C, &request(2))
            .send(S, &head(5))
            .send(S, b"hello")
            .close_by(C);
        c
    };
    let seen = analyze(&build(false), "shed-chunk-full", false);
    let kept = analyze(&build(true), "shed-chunk-shed", true);
    assert_eq!(facts(only(&kept)), facts(only(&seen)));
    let size = data.len() as u64 + 16;
    assert_eq!(bodies(&kept), [(Some(size), true), (Some(5), true)]);
}

#[test]
fn payload_shed_where_a_head_was_expected_is_a_gap() {
    // A stale range shed the end of a body and the next response's head with it (the
    // segment is one: part body, part head). The body is still complete; the head is lost
    // as in a capture gap, flagged, and the parser finds the third response.
    let mut c = Conv::new();
    c.handshake(1000, 5000).send(C, &request(1));
    let mut second = head(5);
    second.extend_from_slice(b"hello");
    let tail = [body(10), second.clone()].concat();
    c.send(S, &[head(20), body(10)].concat())
        .send_cut(S, &tail, 0)
        .send(C, &request(2))
        .send(C, &request(3))
        .send(S, &[head(5), b"three".to_vec()].concat())
        .close_by(C);
    let kept = analyze(&c, "shed-misplaced", true);
    let r = only(&kept);
    assert_eq!((r.requests, r.responses), (Some(3), Some(2)));
    assert_eq!((r.gaps, r.gap_bytes), (1, second.len() as u64));
    assert!(r.flags.contains(Flag::Gap), "{:?}", r.flags);
    assert_eq!(r.resyncs, 1);
    assert_eq!(bodies(&kept)[0], (Some(20), true));
}

/// A connection fed to the analyzer segment by segment, as a shedding source delivers it.
struct Fed {
    analyzer: kascope::Analyzer,
    endpoints: [std::net::SocketAddr; 2],
    /// Next sequence number of the client (0) and the server (1).
    next: [u32; 2],
}

impl Fed {
    /// Sends `payload` and then `shed` bytes shed in the kernel from the client (0) or the
    /// server (1); returns the hints it caused.
    fn send(&mut self, from: usize, flags: u8, payload: &[u8], shed: u32) -> Vec<ShedHint> {
        let syn = flags & Flags::SYN != 0;
        let segment = Segment {
            ts_ns: 1_700_000_000_000_000_000,
            src: self.endpoints[from],
            dst: self.endpoints[1 - from],
            seq: self.next[from],
            ack: self.next[1 - from],
            flags: Flags(if syn && from == 0 {
                flags
            } else {
                flags | Flags::ACK
            }),
            window: 64240,
            payload,
            missing: shed,
            shed: shed > 0,
        };
        self.analyzer.process_segment(&segment);
        let length = payload.len() as u32 + shed + u32::from(syn || flags & Flags::FIN != 0);
        self.next[from] = self.next[from].wrapping_add(length);
        self.analyzer.take_shed_hints().collect()
    }
}

/// The hints the analyzer gives a shedding source, segment by segment.
#[test]
fn the_analyzer_hints_once_per_body_and_withdraws_when_it_needs_bytes_again() {
    let (client, server) = (
        "10.9.0.2:40000".parse().unwrap(),
        "10.9.0.1:80".parse().unwrap(),
    );
    let mut c = Fed {
        analyzer: kascope::Analyzer::new(Config {
            kernel_shedding: true,
            ..Config::default()
        }),
        endpoints: [client, server],
        next: [1000, 5000],
    };
    let hint = |range| ShedHint {
        src: server,
        dst: client,
        range,
    };
    assert_eq!(c.send(0, Flags::SYN, b"", 0), []);
    assert_eq!(c.send(1, Flags::SYN, b"", 0), []);
    assert_eq!(c.send(0, 0, &request(1), 0), []);
    // A 100,000-byte body: one hint for the rest of it, from where the stream is.
    let first = [head(100_000), body(1000)].concat();
    let start = 5001 + first.len() as u32;
    let end = 5001 + head(100_000).len() as u32 + 100_000;
    assert_eq!(c.send(1, 0, &first, 0), [hint(Some((start, end)))]);
    assert_eq!(c.send(1, 0, b"", 50_000), []);
    // The body ends: the source must send everything again.
    assert_eq!(c.send(1, 0, b"", 49_000), [hint(None)]);
    // A small body is not worth a hint.
    assert_eq!(c.send(0, 0, &request(2), 0), []);
    assert_eq!(c.send(1, 0, &[head(3000), body(3000)].concat(), 0), []);
    // A 3 GiB body: shed in ranges of at most 1 GiB, each hinted as the last one runs out.
    assert_eq!(c.send(0, 0, &request(3), 0), []);
    let huge = head(3 << 30);
    let at = c.next[1].wrapping_add(huge.len() as u32);
    assert_eq!(
        c.send(1, 0, &huge, 0),
        [hint(Some((at, at.wrapping_add(1 << 30))))]
    );
    assert_eq!(c.send(1, 0, b"", (1 << 30) - 1), []);
    let at = at.wrapping_add((1 << 30) + 1000);
    assert_eq!(
        c.send(1, 0, b"", 1001),
        [hint(Some((at, at.wrapping_add(1 << 30))))]
    );
    // The connection closes mid-body: the hint is withdrawn.
    assert_eq!(c.send(1, Flags::RST, b"", 0), [hint(None)]);
}
