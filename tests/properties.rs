//! Properties that must hold for any input of a kind, checked with proptest:
//!
//! * cutting an HTTP/1.x conversation into chunks at any points never changes what the HTTP
//!   stage reports (and what it reports matches the generated conversation);
//! * reordering and duplicating TCP segments inside the reassembly bound never changes the
//!   byte stream the reassembler delivers, and never reports a gap;
//! * end to end, a capture with its data segments reordered gives the same transactions as
//!   the capture in order.
//!
//! Case counts are kept small enough for CI (`cargo test --release --test properties`);
//! `PROPTEST_CASES=10000` runs more.

mod common;

use std::net::SocketAddr;

use kascope::decode::{Flags, Segment};
use kascope::http::{DEFAULT_MAX_HEAD, HttpConnection, HttpEvent, ParseError, Protocol, Role};
use kascope::tcp::{Dir, StreamEvent, TcpConnection};
use proptest::prelude::*;
use proptest::sample::Index;

use common::pcap::{ACK, C, Conv, S, Side};

/// `cases` cases, or `PROPTEST_CASES` when set.
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        // Failures are reported with their minimal input; no seed files are written.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// A generated HTTP/1.1 conversation.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Head,
    Post,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Reply {
    /// 200 with a Content-Length body.
    Length(usize),
    /// 200, chunked, with these chunk sizes (zero-sized chunks are left out), maybe a trailer.
    Chunked(Vec<usize>, bool),
    /// 204 No Content.
    NoContent,
    /// 304 Not Modified, with a Content-Length that must be ignored.
    NotModified(usize),
}

#[derive(Debug, Clone)]
struct Exchange {
    method: Method,
    /// Body of a POST.
    request_body: usize,
    /// The POST waits for `100 Continue`.
    expect_continue: bool,
    reply: Reply,
    /// Length of an extra header, to vary head sizes.
    pad: usize,
}

#[derive(Debug, Clone)]
struct Conversation {
    exchanges: Vec<Exchange>,
    /// Exchanges sent back to back before their responses (pipelining), in order.
    groups: Vec<usize>,
    /// Bare LF line ends instead of CRLF in heads and chunk framing.
    bare_lf: bool,
}

/// Body bytes that look like HTTP framing, so a parser that reads into bodies is caught.
fn body(length: usize, salt: usize) -> Vec<u8> {
    const TRICKY: &[u8] =
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nGET / HTTP/1.1\r\n0\r\n\r\n";
    (0..length)
        .map(|i| TRICKY[(i + salt) % TRICKY.len()])
        .collect()
}

impl Exchange {
    /// The request head and body.
    fn request(&self, n: usize, eol: &str) -> (Vec<u8>, Vec<u8>) {
        let mut out = Vec::new();
        let method = match self.method {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
        };
        out.extend_from_slice(format!("{method} /r{n} HTTP/1.1{eol}Host: example{eol}").as_bytes());
        if self.pad > 0 {
            out.extend_from_slice(format!("X-Pad: {}{eol}", "p".repeat(self.pad)).as_bytes());
        }
        if self.method == Method::Post {
            out.extend_from_slice(format!("Content-Length: {}{eol}", self.request_body).as_bytes());
            if self.expect_continue {
                out.extend_from_slice(format!("Expect: 100-continue{eol}").as_bytes());
            }
        }
        out.extend_from_slice(eol.as_bytes());
        let content = if self.method == Method::Post {
            body(self.request_body, n)
        } else {
            Vec::new()
        };
        (out, content)
    }

    fn waits_for_continue(&self) -> bool {
        self.method == Method::Post && self.expect_continue
    }

    /// The interim `100 Continue` (or nothing) and the final response.
    fn response(&self, n: usize, eol: &str) -> (Vec<u8>, Vec<u8>) {
        let mut interim = Vec::new();
        if self.waits_for_continue() {
            interim.extend_from_slice(format!("HTTP/1.1 100 Continue{eol}{eol}").as_bytes());
        }
        let mut out = Vec::new();
        let with_body = self.method != Method::Head;
        match &self.reply {
            Reply::Length(length) => {
                out.extend_from_slice(
                    format!("HTTP/1.1 200 OK{eol}Content-Length: {length}{eol}{eol}").as_bytes(),
                );
                if with_body {
                    out.extend(body(*length, n + 7));
                }
            }
            Reply::Chunked(sizes, trailer) => {
                out.extend_from_slice(
                    format!("HTTP/1.1 200 OK{eol}Transfer-Encoding: chunked{eol}{eol}").as_bytes(),
                );
                if with_body {
                    for (i, size) in sizes.iter().enumerate() {
                        let extension = if i % 2 == 1 { ";ext=1" } else { "" };
                        out.extend_from_slice(format!("{size:x}{extension}{eol}").as_bytes());
                        out.extend(body(*size, n + i));
                        out.extend_from_slice(eol.as_bytes());
                    }
                    out.extend_from_slice(format!("0{eol}").as_bytes());
                    if *trailer {
                        out.extend_from_slice(format!("X-Trailer: 1{eol}").as_bytes());
                    }
                    out.extend_from_slice(eol.as_bytes());
                }
            }
            Reply::NoContent => {
                out.extend_from_slice(format!("HTTP/1.1 204 No Content{eol}{eol}").as_bytes());
            }
            Reply::NotModified(length) => out.extend_from_slice(
                format!("HTTP/1.1 304 Not Modified{eol}Content-Length: {length}{eol}{eol}")
                    .as_bytes(),
            ),
        }
        (interim, out)
    }

    /// What the HTTP stage should report for this exchange: request events, response events.
    fn expected(&self) -> (Vec<Ev>, Vec<Ev>) {
        let method = match self.method {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
        };
        let request_body = if self.method == Method::Post {
            self.request_body as u64
        } else {
            0
        };
        let requests = vec![
            Ev::Request {
                method: method.into(),
            },
            Ev::RequestEnd {
                body: request_body,
                complete: true,
            },
        ];
        let mut responses = Vec::new();
        if self.method == Method::Post && self.expect_continue {
            responses.push(Ev::Response { status: 100 });
        }
        let with_body = self.method != Method::Head;
        let (status, body) = match &self.reply {
            Reply::Length(length) => (200, if with_body { *length } else { 0 }),
            Reply::Chunked(sizes, _) => (200, if with_body { sizes.iter().sum() } else { 0 }),
            Reply::NoContent => (204, 0),
            Reply::NotModified(_) => (304, 0),
        };
        responses.push(Ev::Response { status });
        responses.push(Ev::ResponseEnd {
            body: body as u64,
            complete: true,
        });
        (requests, responses)
    }
}

impl Conversation {
    fn eol(&self) -> &'static str {
        if self.bare_lf { "\n" } else { "\r\n" }
    }

    /// An exchange on its own whose client waits for `100 Continue` before the body.
    fn interleaved(&self, n: usize, size: usize) -> bool {
        size == 1 && self.exchanges[n].waits_for_continue()
    }

    /// The conversation as the blocks a capture delivers: each pipelined group's requests from
    /// the client (`Dir::A`), then its responses from the server; a lone request that expects
    /// `100 Continue` sends its body only after the interim response.
    fn blocks(&self) -> Vec<(Dir, Vec<u8>)> {
        let eol = self.eol();
        let mut blocks = Vec::new();
        let mut n = 0;
        for &size in &self.groups {
            if self.interleaved(n, size) {
                let (head, content) = self.exchanges[n].request(n, eol);
                let (interim, last) = self.exchanges[n].response(n, eol);
                blocks.push((Dir::A, head));
                blocks.push((Dir::B, interim));
                if !content.is_empty() {
                    blocks.push((Dir::A, content));
                }
                blocks.push((Dir::B, last));
                n += 1;
                continue;
            }
            let mut requests = Vec::new();
            let mut responses = Vec::new();
            for i in n..n + size {
                let (head, content) = self.exchanges[i].request(i, eol);
                let (interim, last) = self.exchanges[i].response(i, eol);
                requests.extend(head.into_iter().chain(content));
                responses.extend(interim.into_iter().chain(last));
            }
            blocks.push((Dir::A, requests));
            blocks.push((Dir::B, responses));
            n += size;
        }
        blocks
    }

    fn expected(&self) -> Vec<Ev> {
        let mut events = Vec::new();
        let mut n = 0;
        for &size in &self.groups {
            if self.interleaved(n, size) {
                // Request head, then `100 Continue`, then the body (if any) ends the request.
                let (request, response) = self.exchanges[n].expected();
                let waits = self.exchanges[n].request_body > 0;
                events.push(request[0].clone());
                if !waits {
                    events.push(request[1].clone());
                }
                events.push(response[0].clone());
                if waits {
                    events.push(request[1].clone());
                }
                events.extend(response[1..].iter().cloned());
                n += 1;
                continue;
            }
            let mut responses = Vec::new();
            for exchange in &self.exchanges[n..n + size] {
                let (request, response) = exchange.expected();
                events.extend(request);
                responses.extend(response);
            }
            events.extend(responses);
            n += size;
        }
        events
    }
}

fn reply() -> impl Strategy<Value = Reply> {
    prop_oneof![
        4 => (0usize..3000).prop_map(Reply::Length),
        4 => (prop::collection::vec(1usize..700, 0..6), any::<bool>())
            .prop_map(|(sizes, trailer)| Reply::Chunked(sizes, trailer)),
        1 => Just(Reply::NoContent),
        1 => (0usize..100).prop_map(Reply::NotModified),
    ]
}

fn exchange() -> impl Strategy<Value = Exchange> {
    (
        prop_oneof![Just(Method::Get), Just(Method::Head), Just(Method::Post)],
        0usize..2000,
        any::<bool>(),
        reply(),
        prop_oneof![3 => Just(0usize), 1 => 0usize..300],
    )
        .prop_map(
            |(method, request_body, expect_continue, reply, pad)| Exchange {
                method,
                request_body,
                expect_continue,
                reply,
                pad,
            },
        )
}

fn conversation() -> impl Strategy<Value = Conversation> {
    (
        prop::collection::vec(exchange(), 1..8),
        prop::collection::vec(1usize..4, 8),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(exchanges, sizes, bare_lf)| {
            let mut groups = Vec::new();
            let mut left = exchanges.len();
            for size in sizes {
                if left == 0 {
                    break;
                }
                let size = size.min(left);
                groups.push(size);
                left -= size;
            }
            Conversation {
                exchanges,
                groups,
                bare_lf,
            }
        })
}

// ---------------------------------------------------------------------------------------------
// The HTTP stage, whole and cut.

/// An owned summary of an `HttpEvent`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ev {
    ClientIs(Dir),
    Protocol(Protocol),
    Request { method: String },
    RequestEnd { body: u64, complete: bool },
    Response { status: u16 },
    ResponseEnd { body: u64, complete: bool },
    Tunnel,
    Error(Role, ParseError),
    Lost { bytes: u64 },
    Resync { role: Role, skipped: u64 },
}

impl Ev {
    fn of(event: &HttpEvent<'_>) -> Ev {
        match event {
            HttpEvent::Request { head, .. } => Ev::Request {
                method: head.method.to_string(),
            },
            HttpEvent::RequestEnd {
                body_bytes,
                complete,
            } => Ev::RequestEnd {
                body: *body_bytes,
                complete: *complete,
            },
            HttpEvent::Response { head, .. } => Ev::Response {
                status: head.status,
            },
            HttpEvent::ResponseEnd {
                body_bytes,
                complete,
            } => Ev::ResponseEnd {
                body: *body_bytes,
                complete: *complete,
            },
            HttpEvent::ClientIs(dir) => Ev::ClientIs(*dir),
            HttpEvent::Protocol(protocol) => Ev::Protocol(*protocol),
            HttpEvent::Tunnel => Ev::Tunnel,
            HttpEvent::Error(role, error) => Ev::Error(*role, *error),
            HttpEvent::Lost { bytes, .. } => Ev::Lost { bytes: *bytes },
            HttpEvent::Resync { role, skipped } => Ev::Resync {
                role: *role,
                skipped: *skipped,
            },
        }
    }
}

/// Feeds the chunks in order (client `Dir::A`, known), then ends both directions.
fn http_events<'a>(chunks: impl IntoIterator<Item = (Dir, &'a [u8])>) -> Vec<Ev> {
    let mut http = HttpConnection::new(DEFAULT_MAX_HEAD, kascope::http::Keep::Nothing);
    let mut events = Vec::new();
    let mut sink = |event: HttpEvent<'_>| events.push(Ev::of(&event));
    for (dir, chunk) in chunks {
        http.on_stream_event(dir, StreamEvent::Data(chunk), 0, Some(Dir::A), &mut sink);
    }
    http.on_stream_event(Dir::A, StreamEvent::Fin, 0, Some(Dir::A), &mut sink);
    http.on_stream_event(Dir::B, StreamEvent::Fin, 0, Some(Dir::A), &mut sink);
    http.finish(0, Some(Dir::A), &mut sink);
    events
}

/// Cuts `data` before each of `cuts` (positions taken modulo its length).
fn cut<'a>(data: &'a [u8], cuts: &[Index], every_byte: bool) -> Vec<&'a [u8]> {
    if every_byte {
        return data.chunks(1).collect();
    }
    let mut at: Vec<usize> = cuts.iter().map(|i| i.index(data.len() + 1)).collect();
    at.push(0);
    at.push(data.len());
    at.sort_unstable();
    at.dedup();
    at.windows(2).map(|w| &data[w[0]..w[1]]).collect()
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn http_events_do_not_depend_on_where_the_stream_is_cut(
        conversation in conversation(),
        cuts in prop::collection::vec(prop::collection::vec(any::<Index>(), 0..24), 16),
        every_byte in prop::bool::weighted(0.1),
    ) {
        let blocks = conversation.blocks();
        let whole = http_events(blocks.iter().map(|(dir, data)| (*dir, data.as_slice())));
        let pieces: Vec<(Dir, &[u8])> = blocks
            .iter()
            .enumerate()
            .flat_map(|(i, (dir, data))| {
                cut(data, &cuts[i % cuts.len()], every_byte)
                    .into_iter()
                    .map(move |piece| (*dir, piece))
            })
            .collect();
        let split = http_events(pieces.iter().copied());
        prop_assert_eq!(&whole, &split, "cut into {} pieces", pieces.len());
        let framing: Vec<Ev> = whole
            .into_iter()
            .filter(|event| *event != Ev::Protocol(Protocol::Http))
            .collect();
        prop_assert_eq!(framing, conversation.expected());
    }
}

// ---------------------------------------------------------------------------------------------
// TCP reassembly.

const REASSEMBLY_LIMIT: usize = 4 << 20;

fn client_addr() -> SocketAddr {
    "10.9.0.2:40000".parse().unwrap()
}

fn server_addr() -> SocketAddr {
    "10.9.0.1:80".parse().unwrap()
}

/// Deterministic, non-periodic stream content.
fn stream_bytes(length: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..length)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// Cuts `length` bytes into consecutive `(start, end)` ranges of the given sizes, cycled.
fn segment_ranges(length: usize, sizes: &[usize]) -> Vec<(usize, usize)> {
    let mut ranges = Vec::new();
    let mut at = 0;
    let mut i = 0;
    while at < length {
        let end = (at + sizes[i % sizes.len()]).min(length);
        ranges.push((at, end));
        at = end;
        i += 1;
    }
    ranges
}

/// One side's segments to send: data ranges (with retransmissions) and the FIN.
#[derive(Debug, Clone, Copy)]
enum Piece {
    Data(Dir, usize, usize),
    Fin(Dir),
}

/// Fisher-Yates with the generated indices.
fn shuffle<T>(items: &mut [T], picks: &[Index]) {
    for i in (1..items.len()).rev() {
        let j = picks[i % picks.len()].index(i + 1);
        items.swap(i, j);
    }
}

/// What the capture has seen of one direction, to acknowledge only bytes it holds.
struct Seen {
    covered: Vec<bool>,
    prefix: usize,
    fin: bool,
}

impl Seen {
    fn new(length: usize) -> Seen {
        Seen {
            covered: vec![false; length],
            prefix: 0,
            fin: false,
        }
    }

    fn add(&mut self, start: usize, end: usize) {
        self.covered[start..end].iter_mut().for_each(|c| *c = true);
        while self.prefix < self.covered.len() && self.covered[self.prefix] {
            self.prefix += 1;
        }
    }

    /// Sequence-space offset acknowledged: SYN, contiguous bytes, and the FIN once reached.
    fn acked(&self) -> u32 {
        let fin = self.fin && self.prefix == self.covered.len();
        1 + self.prefix as u32 + u32::from(fin)
    }
}

#[derive(Debug)]
struct Reassembled {
    data: [Vec<u8>; 2],
    gaps: Vec<(Dir, u64)>,
    /// Per direction: FINs delivered, and whether data came after one.
    fins: [u32; 2],
    data_after_fin: bool,
}

fn reassemble(streams: [&[u8]; 2], isn: [u32; 2], pieces: &[Piece]) -> Reassembled {
    let addr = [client_addr(), server_addr()];
    let mut seen = [Seen::new(streams[0].len()), Seen::new(streams[1].len())];
    let mut out = Reassembled {
        data: [Vec::new(), Vec::new()],
        gaps: Vec::new(),
        fins: [0, 0],
        data_after_fin: false,
    };
    let mut on_event = |dir: Dir, event: StreamEvent<'_>| match event {
        StreamEvent::Data(bytes) => {
            if out.fins[dir.index()] > 0 {
                out.data_after_fin = true;
            }
            out.data[dir.index()].extend_from_slice(bytes);
        }
        StreamEvent::Gap(bytes) => out.gaps.push((dir, bytes)),
        StreamEvent::Fin => out.fins[dir.index()] += 1,
        StreamEvent::Rst => panic!("no RST was sent"),
        StreamEvent::Skipped(_) => panic!("nothing was shed"),
    };
    let segment = |from: Dir, seq: u32, ack: Option<u32>, flags: u8, payload: &'static [u8]| {
        let mut flags = flags;
        if ack.is_some() {
            flags |= Flags::ACK;
        }
        (from, seq, ack.unwrap_or(0), flags, payload)
    };
    let syn = segment(Dir::A, isn[0], None, Flags::SYN, b"");
    let make = |(from, seq, ack, flags, payload): (Dir, u32, u32, u8, &'static [u8])| Segment {
        ts_ns: 1_700_000_000_000_000_000,
        src: addr[from.index()],
        dst: addr[from.opposite().index()],
        seq,
        ack,
        flags: Flags(flags),
        window: 64240,
        payload,
        missing: 0,
        shed: false,
    };
    let first = make(syn);
    let mut tcp = TcpConnection::new(&first, 0, REASSEMBLY_LIMIT);
    tcp.on_segment(&first, &mut on_event);
    let synack = make(segment(
        Dir::B,
        isn[1],
        Some(isn[0].wrapping_add(1)),
        Flags::SYN,
        b"",
    ));
    tcp.on_segment(&synack, &mut on_event);
    for piece in pieces {
        let (from, start, end, flags) = match *piece {
            Piece::Data(from, start, end) => (from, start, end, 0),
            Piece::Fin(from) => {
                let length = streams[from.index()].len();
                (from, length, length, Flags::FIN)
            }
        };
        let peer = from.opposite();
        let ack = isn[peer.index()].wrapping_add(seen[peer.index()].acked());
        let segment = Segment {
            ts_ns: 1_700_000_000_000_000_000,
            src: addr[from.index()],
            dst: addr[peer.index()],
            seq: isn[from.index()].wrapping_add(1 + start as u32),
            ack,
            flags: Flags(flags | Flags::ACK),
            window: 64240,
            payload: &streams[from.index()][start..end],
            missing: 0,
            shed: false,
        };
        tcp.on_segment(&segment, &mut on_event);
        seen[from.index()].add(start, end);
        if flags & Flags::FIN != 0 {
            seen[from.index()].fin = true;
        }
    }
    tcp.flush(&mut on_event);
    out
}

fn isn() -> impl Strategy<Value = u32> {
    prop_oneof![any::<u32>(), (u32::MAX - 70_000)..=u32::MAX]
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn reordered_and_duplicated_segments_give_the_same_stream(
        lengths in (0usize..60_000, 0usize..60_000),
        isns in (isn(), isn()),
        seed in any::<u64>(),
        sizes in prop::collection::vec(1usize..3000, 1..8),
        retransmits in prop::collection::vec((any::<bool>(), any::<Index>(), 1usize..4000), 0..12),
        picks in prop::collection::vec(any::<Index>(), 1..64),
    ) {
        let client = stream_bytes(lengths.0, seed);
        let server = stream_bytes(lengths.1, seed.rotate_left(32) ^ 0x5555);
        let streams: [&[u8]; 2] = [&client, &server];
        let mut pieces = Vec::new();
        for dir in [Dir::A, Dir::B] {
            let length = streams[dir.index()].len();
            pieces.extend(
                segment_ranges(length, &sizes)
                    .into_iter()
                    .map(|(start, end)| Piece::Data(dir, start, end)),
            );
            pieces.push(Piece::Fin(dir));
        }
        // Retransmissions with their own boundaries, overlapping the originals anywhere.
        for (server_side, at, len) in &retransmits {
            let dir = if *server_side { Dir::B } else { Dir::A };
            let length = streams[dir.index()].len();
            if length > 0 {
                let start = at.index(length);
                pieces.push(Piece::Data(dir, start, (start + len).min(length)));
            }
        }
        shuffle(&mut pieces, &picks);
        let out = reassemble(streams, [isns.0, isns.1], &pieces);
        prop_assert!(out.gaps.is_empty(), "gaps: {:?}", out.gaps);
        prop_assert!(out.data[0] == client, "client stream differs");
        prop_assert!(out.data[1] == server, "server stream differs");
        prop_assert_eq!(out.fins, [1, 1]);
        prop_assert!(!out.data_after_fin);
    }
}

// ---------------------------------------------------------------------------------------------
// End to end: a capture file, in order and reordered.

fn side(dir: Dir) -> Side {
    match dir {
        Dir::A => C,
        Dir::B => S,
    }
}

/// The conversation as a capture, frames 100 µs apart: SYN and SYN-ACK, each block cut into
/// segments (`picks` permutes the segments of each block) that acknowledge what the peer
/// sent before, then both FINs.
fn capture(conversation: &Conversation, sizes: &[usize], picks: Option<&[Index]>) -> Conv {
    let mut capture = Conv::new().spaced_us(100);
    capture.syn(0xffff_f000).syn_ack(1_000_000);
    for (dir, data) in conversation.blocks() {
        let from = side(dir);
        let base = capture.next(from);
        let mut ranges = segment_ranges(data.len(), sizes);
        if let Some(picks) = picks {
            shuffle(&mut ranges, picks);
        }
        for (start, end) in ranges {
            capture.segment(
                from,
                base.wrapping_add(start as u32),
                ACK,
                &data[start..end],
            );
        }
    }
    capture.fin(C).fin(S);
    capture
}

/// Per transaction: method, target, status, interim responses, body sizes, completeness.
type Summary = (String, String, Option<u16>, u32, u64, Option<u64>, bool);

fn transactions(capture: &Conv, name: &str) -> Vec<Summary> {
    common::analyze(&capture.write(name))
        .transactions
        .iter()
        .map(|t| {
            (
                t.method.clone(),
                t.target.clone(),
                t.status,
                t.interim_responses,
                t.request_body_bytes,
                t.response_body_bytes,
                t.complete,
            )
        })
        .collect()
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn reordered_capture_gives_the_same_transactions(
        conversation in conversation(),
        sizes in prop::collection::vec(1usize..1460, 1..6),
        picks in prop::collection::vec(any::<Index>(), 1..32),
    ) {
        let in_order = transactions(&capture(&conversation, &sizes, None), "in-order");
        let reordered = transactions(&capture(&conversation, &sizes, Some(&picks)), "reordered");
        let expected: Vec<(Option<u16>, Option<u64>, bool)> = conversation
            .exchanges
            .iter()
            .map(|exchange| {
                let (_, responses) = exchange.expected();
                match responses.as_slice() {
                    [.., Ev::Response { status }, Ev::ResponseEnd { body, complete }] => {
                        (Some(*status), Some(*body), *complete)
                    }
                    _ => unreachable!("every exchange ends with a final response"),
                }
            })
            .collect();
        let got: Vec<(Option<u16>, Option<u64>, bool)> =
            in_order.iter().map(|t| (t.2, t.5, t.6)).collect();
        prop_assert_eq!(got, expected);
        prop_assert_eq!(&in_order, &reordered);
    }
}
