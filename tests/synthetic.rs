//! TCP edge cases a real stack will not produce on demand (reordering, duplicates, overlaps,
//! capture loss, sequence wrap-around, mid-stream starts, port reuse, snaplen cuts, RSTs),
//! built here as classic pcap files with etherparse and run through the library exactly as
//! the corpus tests do.

mod common;

use kascope::named::Named;
use kascope::record::{Closer, ConnectionRecord, Flag, FlagSet, TransactionRecord};
use kascope::tcp::ClientBy;

use common::pcap::{C, Conv, S};
use common::{Analysis, Judged, only, secs};

const CLIENT: &str = "10.9.0.2:40000";
const SERVER: &str = "10.9.0.1:80";

fn request(n: u32) -> Vec<u8> {
    format!("GET /{n} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes()
}

fn response_with(status: u16, reason: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn response(body: &str) -> Vec<u8> {
    response_with(200, "OK", body)
}

/// Transactions in (stream, position) order.
fn transactions(analysis: &Analysis) -> Vec<&TransactionRecord> {
    let mut list: Vec<&TransactionRecord> = analysis.transactions.iter().collect();
    list.sort_by_key(|t| (t.stream, t.position));
    list
}

fn statuses(analysis: &Analysis) -> Vec<Option<u16>> {
    transactions(analysis).iter().map(|t| t.status).collect()
}

fn completes(analysis: &Analysis) -> Vec<bool> {
    transactions(analysis).iter().map(|t| t.complete).collect()
}

fn body_sizes(analysis: &Analysis) -> Vec<Option<u64>> {
    transactions(analysis)
        .iter()
        .map(|t| t.response_body_bytes)
        .collect()
}

fn has_flag(record: &ConnectionRecord, flag: &str) -> bool {
    record.flags.iter().any(|f| f.as_str() == flag)
}

/// The endpoints, identity and handshake of a connection opened by a captured SYN.
fn assert_clean_identity(record: &ConnectionRecord) {
    assert_eq!(record.client.to_string(), CLIENT);
    assert_eq!(record.server.to_string(), SERVER);
    assert_eq!(record.client_by, ClientBy::Syn);
    assert!(record.handshake);
}

// 1. ------------------------------------------------------------------------------------

#[test]
fn out_of_order_segment_is_reassembled() {
    let mut c = Conv::new();
    c.handshake(1000, 5000).send(C, &request(1));
    // 39-byte head + 15-byte body, cut at 20 (inside the head) and 45 (inside the body).
    let resp = response("hello, world!!!");
    assert_eq!(resp.len(), 54);
    let base = c.next(S);
    c.send_at(S, base, &resp[..20])
        .send_at(S, base + 45, &resp[45..])
        .send_at(S, base + 20, &resp[20..45])
        .ack(C)
        .send(C, &request(2))
        .send(S, &response("hello"))
        .close_by(C);
    let a = c.analyze("ooo");
    let r = only(&a);
    assert_clean_identity(r);
    assert_eq!((r.requests, r.responses), (Some(2), Some(2)));
    assert_eq!(r.out_of_order, 1);
    assert_eq!(r.gaps, 0);
    assert_eq!(r.retransmissions, 0);
    assert_eq!((r.parse_errors, r.resyncs), (0, 0));
    assert_eq!(r.closer, Closer::ClientFin);
    assert!(r.flags.is_empty(), "{:?}", r.flags);
    assert_eq!(statuses(&a), [Some(200), Some(200)]);
    assert_eq!(completes(&a), [true, true]);
    assert_eq!(body_sizes(&a), [Some(15), Some(5)]);
}

// 2. ------------------------------------------------------------------------------------

#[test]
fn retransmitted_segments_are_counted_once() {
    let mut c = Conv::new();
    c.handshake(1000, 5000);
    let req = request(1);
    let seq = c.next(C);
    c.send_at(C, seq, &req).send_at(C, seq, &req);
    let resp = response("hello");
    let seq = c.next(S);
    c.send_at(S, seq, &resp)
        .wait_ms(200)
        .send_at(S, seq, &resp)
        .ack(C)
        .send(C, &request(2))
        .send(S, &response("again"))
        .close_by(C);
    let a = c.analyze("retrans");
    let r = only(&a);
    assert_clean_identity(r);
    assert_eq!((r.requests, r.responses), (Some(2), Some(2)));
    assert_eq!(r.retransmissions, 2);
    assert_eq!((r.out_of_order, r.gaps), (0, 0));
    assert_eq!(r.pipeline_depth, Some(1));
    assert!(r.flags.is_empty(), "{:?}", r.flags);
    assert_eq!(statuses(&a), [Some(200), Some(200)]);
    assert_eq!(completes(&a), [true, true]);
    assert_eq!(body_sizes(&a), [Some(5), Some(5)]);
}

#[test]
fn duplicate_of_a_buffered_out_of_order_segment_is_kept_once() {
    let mut c = Conv::new();
    c.handshake(1000, 5000).send(C, &request(1));
    let resp = response("hello, world!!!");
    let base = c.next(S);
    c.send_at(S, base, &resp[..20])
        .send_at(S, base + 45, &resp[45..])
        .send_at(S, base + 45, &resp[45..])
        .send_at(S, base + 20, &resp[20..45])
        .close_by(C);
    let a = c.analyze("dup-ooo");
    let r = only(&a);
    assert_eq!((r.requests, r.responses), (Some(1), Some(1)));
    assert_eq!(r.out_of_order, 2);
    assert_eq!(r.retransmissions, 1);
    assert_eq!(r.gaps, 0);
    assert!(r.flags.is_empty(), "{:?}", r.flags);
    assert_eq!(completes(&a), [true]);
    assert_eq!(body_sizes(&a), [Some(15)]);
}

// 3. ------------------------------------------------------------------------------------

#[test]
fn overlapping_segments_keep_the_stream_intact() {
    let mut c = Conv::new();
    c.handshake(1000, 5000).send(C, &request(1));
    let resp = response("hello, world!!!");
    let base = c.next(S);
    // Second segment re-sends bytes 20..30 with new bytes after them.
    c.send_at(S, base, &resp[..30])
        .send_at(S, base + 20, &resp[20..]);
    // Second response: a hole at 20..30 is bridged by a segment overlapping both neighbours.
    c.send(C, &request(2));
    let resp2 = response("0123456789abcdef");
    let base = c.next(S);
    c.send_at(S, base, &resp2[..20])
        .send_at(S, base + 30, &resp2[30..])
        .send_at(S, base + 15, &resp2[15..40])
        .close_by(C);
    let a = c.analyze("overlap");
    let r = only(&a);
    assert_clean_identity(r);
    assert_eq!((r.requests, r.responses), (Some(2), Some(2)));
    assert_eq!(r.gaps, 0);
    assert_eq!(r.out_of_order, 1);
    assert_eq!(r.retransmissions, 3, "one overlap, then two in the bridge");
    assert_eq!((r.parse_errors, r.resyncs), (0, 0));
    assert!(r.flags.is_empty(), "{:?}", r.flags);
    assert_eq!(statuses(&a), [Some(200), Some(200)]);
    assert_eq!(completes(&a), [true, true]);
    assert_eq!(body_sizes(&a), [Some(15), Some(16)]);
}

// 4. ------------------------------------------------------------------------------------

#[test]
fn lost_body_segment_keeps_content_length_framing() {
    let mut c = Conv::new();
    c.handshake(1000, 5000).send(C, &request(1));
    let resp = response("abcdefghijklmnopqrst");
    assert_eq!(resp.len(), 59);
    // Head + 5 body bytes, 10 body bytes never captured, the last 5.
    c.send(S, &resp[..44])
        .lose(S, 10)
        .send(S, &resp[54..])
        // The client's next request acknowledges past the hole.
        .send(C, &request(2))
        .send(S, &response("hello"))
        .close_by(C);
    let a = c.analyze("lost-cl");
    let r = only(&a);
    assert_clean_identity(r);
    assert_eq!((r.requests, r.responses), (Some(2), Some(2)));
    assert_eq!((r.gaps, r.gap_bytes), (1, 10));
    assert_eq!(r.out_of_order, 1);
    assert!(has_flag(r, "gap"), "flags {:?}", r.flags);
    assert!(has_flag(r, "incomplete-response"), "flags {:?}", r.flags);
    assert_eq!(r.parse_errors, 0);
    assert_eq!(r.closer, Closer::ClientFin);
    assert_eq!(statuses(&a), [Some(200), Some(200)]);
    assert_eq!(completes(&a), [false, true]);
    assert_eq!(body_sizes(&a), [Some(20), Some(5)]);
}

#[test]
fn lost_chunked_segment_resyncs_at_the_next_response() {
    let mut c = Conv::new();
    c.handshake(1000, 5000).send(C, &request(1));
    let head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    let lost = b"lo\r\n5\r\nwo";
    c.send(S, &[&head[..], b"5\r\nhel"].concat())
        .lose(S, lost.len() as u32)
        .send(S, b"rld\r\n0\r\n\r\n")
        .send(C, &request(2))
        .send(S, &response("hello"))
        .send(C, &request(3))
        .send(S, &response("three"))
        .close_by(C);
    let a = c.analyze("lost-chunked");
    let r = only(&a);
    assert_eq!((r.requests, r.responses), (Some(3), Some(3)));
    assert_eq!((r.gaps, r.gap_bytes), (1, lost.len() as u64));
    assert_eq!(r.resyncs, 1);
    assert!(has_flag(r, "gap"), "flags {:?}", r.flags);
    assert_eq!(statuses(&a), [Some(200), Some(200), Some(200)]);
    assert_eq!(completes(&a), [false, true, true]);
    assert_eq!(body_sizes(&a)[1..], [Some(5), Some(5)]);
}

// 5. ------------------------------------------------------------------------------------

#[test]
fn sequence_numbers_wrap_around_mid_message() {
    let mut c = Conv::new();
    // Client data starts at 0xFFFF_FFF1 (wraps 15 bytes into request 1), server data at
    // 0xFFFF_FFE1 (wraps 31 bytes into response 1).
    c.handshake(0xFFFF_FFF0, 0xFFFF_FFE0).send(C, &request(1));
    let resp = response("hello");
    assert_eq!(resp.len(), 43);
    let base = c.next(S);
    assert_eq!(base.wrapping_add(31), 0);
    // The part after the wrap arrives first.
    c.send_at(S, 0, &resp[31..])
        .send_at(S, base, &resp[..31])
        .send(C, &request(2))
        .send(S, &response("world"))
        .send(C, &request(3))
        .send(S, &response("again"))
        .close_by(S);
    let a = c.analyze("wrap");
    let r = only(&a);
    assert_clean_identity(r);
    assert_eq!((r.requests, r.responses), (Some(3), Some(3)));
    assert_eq!(r.out_of_order, 1);
    assert_eq!((r.gaps, r.retransmissions), (0, 0));
    assert_eq!((r.parse_errors, r.resyncs), (0, 0));
    assert_eq!(r.closer, Closer::ServerFin);
    assert_eq!((r.fin_client, r.fin_server), (1, 1));
    assert!(r.flags.is_empty(), "{:?}", r.flags);
    assert_eq!(statuses(&a), [Some(200); 3]);
    assert_eq!(completes(&a), [true; 3]);
    assert_eq!(body_sizes(&a), [Some(5); 3]);
}

// 6. ------------------------------------------------------------------------------------

#[test]
fn mid_stream_start_with_a_request() {
    let mut c = Conv::new();
    c.mid_stream(12_345, 67_890)
        .send(C, &request(1))
        .send(S, &response("hello"))
        .send(C, &request(2))
        .send(S, &response("world"));
    let a = c.analyze("mid-req");
    let r = only(&a);
    assert_eq!(r.client.to_string(), CLIENT);
    assert_eq!(r.server.to_string(), SERVER);
    assert_eq!(r.client_by, ClientBy::Http);
    assert!(!r.handshake);
    assert_eq!((r.requests, r.responses), (Some(2), Some(2)));
    assert_eq!(r.closer, Closer::CaptureEnded);
    assert_eq!(
        r.flags,
        FlagSet::from_iter([Flag::MidStream, Flag::CaptureEnded])
    );
    assert_eq!(statuses(&a), [Some(200), Some(200)]);
    assert_eq!(completes(&a), [true, true]);
}

#[test]
fn mid_stream_start_with_a_response() {
    let mut c = Conv::new();
    // The answer to a request sent before the capture began comes first.
    c.mid_stream(12_345, 67_890)
        .send(S, &response("early"))
        .send(C, &request(2))
        .send(S, &response("hello"))
        .close_by(C);
    let a = c.analyze("mid-resp");
    let r = only(&a);
    assert_eq!(r.client.to_string(), CLIENT);
    assert_eq!(r.server.to_string(), SERVER);
    assert_eq!(r.client_by, ClientBy::Http);
    assert_eq!(r.requests, Some(1));
    assert_eq!(r.responses, Some(2));
    assert!(has_flag(r, "mid-stream"), "flags {:?}", r.flags);
    assert!(has_flag(r, "unmatched-responses"), "flags {:?}", r.flags);
    assert_eq!(r.closer, Closer::ClientFin);
    assert_eq!((r.fin_client, r.fin_server), (1, 1));
    let t = transactions(&a);
    assert_eq!(t.len(), 1);
    assert_eq!((t[0].target.as_str(), t[0].status), ("/2", Some(200)));
    assert!(t[0].complete);
}

#[test]
fn mid_stream_start_inside_a_response_body() {
    let mut c = Conv::new();
    c.mid_stream(12_345, 67_890)
        .send(S, b"tail of an\nearlier body")
        .send(C, &request(2))
        .send(S, &response("hello"));
    let a = c.analyze("mid-body");
    let r = only(&a);
    assert_eq!(r.client.to_string(), CLIENT);
    assert_eq!(r.client_by, ClientBy::Http);
    assert_eq!((r.requests, r.responses), (Some(1), Some(1)));
    assert_eq!(r.resyncs, 1);
    assert!(has_flag(r, "mid-stream"), "flags {:?}", r.flags);
    assert_eq!(statuses(&a), [Some(200)]);
    assert_eq!(completes(&a), [true]);
}

/// As above, but the body tail has no line end and looks like a token: the sniffer waits
/// for more bytes and glues the next segment (the real response) onto it.
#[test]
fn mid_stream_start_inside_a_response_body_without_line_end() {
    let mut c = Conv::new();
    c.mid_stream(12_345, 67_890)
        .send(S, b"tail of an earlier body")
        .send(C, &request(2))
        .send(S, &response("hello"));
    let a = c.analyze("mid-body-token");
    let r = only(&a);
    assert_eq!(r.client.to_string(), CLIENT);
    assert_eq!(r.client_by, ClientBy::Http);
    assert_eq!((r.requests, r.responses), (Some(1), Some(1)));
    assert!(has_flag(r, "mid-stream"), "flags {:?}", r.flags);
    assert_eq!(statuses(&a), [Some(200)]);
    assert_eq!(completes(&a), [true]);
}

// 7. ------------------------------------------------------------------------------------

#[test]
fn port_reuse_starts_a_new_stream_but_a_retransmitted_syn_does_not() {
    let mut c = Conv::new();
    c.syn(1000)
        .wait_ms(1000)
        .syn(1000) // retransmitted SYN, same ISN
        .syn_ack(5000)
        .ack(C)
        .send(C, &request(1))
        .send(S, &response("first"))
        .close_by(C)
        .wait_ms(300)
        .handshake(900_000, 700_000)
        .syn(900_000) // a late duplicate of the second SYN
        .send(C, &request(1))
        .send(S, &response("second"))
        .close_by(S);
    let a = c.analyze("reuse");
    assert_eq!(
        a.connections.iter().map(|r| r.stream).collect::<Vec<_>>(),
        [0, 1],
        "{:#?}",
        a.connections
    );
    for r in &a.connections {
        assert_clean_identity(r);
        assert_eq!((r.requests, r.responses), (Some(1), Some(1)));
        assert_eq!((r.fin_client, r.fin_server), (1, 1));
        assert_eq!(r.retransmissions, 1, "the repeated SYN");
        assert!(r.flags.is_empty(), "{:?}", r.flags);
    }
    assert_eq!(a.connections[0].closer, Closer::ClientFin);
    assert_eq!(a.connections[1].closer, Closer::ServerFin);
    let t = transactions(&a);
    assert_eq!(
        t.iter()
            .map(|t| (t.stream, t.status, t.response_body_bytes))
            .collect::<Vec<_>>(),
        [(0, Some(200), Some(5)), (1, Some(200), Some(6))]
    );
}

// 8. ------------------------------------------------------------------------------------

#[test]
fn pipelined_requests_and_responses_in_single_segments() {
    let mut c = Conv::new();
    c.handshake(1000, 5000)
        .send(C, &[request(1), request(2), request(3)].concat())
        .send(
            S,
            &[
                response_with(200, "OK", "one"),
                response_with(404, "Not Found", "nope"),
                response_with(500, "Internal Server Error", ""),
            ]
            .concat(),
        )
        .close_by(C);
    let a = c.analyze("pipeline");
    let r = only(&a);
    assert_clean_identity(r);
    assert_eq!((r.requests, r.responses), (Some(3), Some(3)));
    assert_eq!(r.pipeline_depth, Some(3));
    assert_eq!(r.pipelined_requests, Some(2));
    assert_eq!(r.unanswered_requests, Some(0));
    assert!(r.flags.is_empty(), "{:?}", r.flags);
    let t = transactions(&a);
    assert_eq!(
        t.iter()
            .map(|t| (t.position, t.target.as_str(), t.status, t.pipelined))
            .collect::<Vec<_>>(),
        [
            (1, "/1", Some(200), false),
            (2, "/2", Some(404), true),
            (3, "/3", Some(500), true)
        ]
    );
    assert_eq!(completes(&a), [true; 3]);
    assert_eq!(body_sizes(&a), [Some(3), Some(4), Some(0)]);
}

// 9. ------------------------------------------------------------------------------------

#[test]
fn snaplen_cut_inside_a_response_body() {
    let body = "x".repeat(100);
    let resp = response(&body);
    let head_len = resp.len() - body.len();
    let mut c = Conv::new();
    c.handshake(1000, 5000)
        .send(C, &request(1))
        .send_cut(S, &resp, head_len + 10)
        // A pure ACK cut inside its IP header: dropped as truncated, without harm.
        .ack(C)
        .cut_last_to(14 + 12)
        .send(C, &request(2))
        .send(S, &response("hello"))
        .close_by(C);
    let a = c.analyze("snaplen");
    let r = only(&a);
    assert_clean_identity(r);
    assert_eq!((r.requests, r.responses), (Some(2), Some(2)));
    assert_eq!((r.gaps, r.gap_bytes), (1, 90));
    assert!(has_flag(r, "gap"), "flags {:?}", r.flags);
    assert!(has_flag(r, "incomplete-response"), "flags {:?}", r.flags);
    assert_eq!(
        r.server_bytes,
        resp.len() as u64 + 43,
        "wire bytes, cut ones included"
    );
    assert_eq!(statuses(&a), [Some(200), Some(200)]);
    assert_eq!(completes(&a), [false, true]);
    assert_eq!(body_sizes(&a), [Some(100), Some(5)]);
}

// 10. -----------------------------------------------------------------------------------

#[test]
fn server_rst_mid_response() {
    let body = "y".repeat(100);
    let resp = response(&body);
    let head_len = resp.len() - body.len();
    let mut c = Conv::new();
    c.handshake(1000, 5000)
        .send(C, &request(1))
        .send(S, &resp[..head_len + 20])
        .rst(S);
    let a = c.analyze("rst");
    let r = only(&a);
    assert_clean_identity(r);
    assert_eq!((r.requests, r.responses), (Some(1), Some(1)));
    assert_eq!(r.closer, Closer::ServerRst);
    assert_eq!((r.rst_server, r.rst_client), (1, 0));
    assert_eq!((r.fin_server, r.fin_client), (0, 0));
    assert_eq!(r.close_after_request, Some(1));
    assert_eq!(r.unanswered_requests, Some(0));
    assert_eq!(r.gaps, 0);
    assert_eq!(r.flags, FlagSet::from_iter([Flag::IncompleteResponse]));
    assert_eq!(statuses(&a), [Some(200)]);
    assert_eq!(completes(&a), [false]);
    assert_eq!(body_sizes(&a), [Some(20)]);
}

// 11. -----------------------------------------------------------------------------------

#[test]
fn request_heads_split_inside_the_blank_line() {
    let mut c = Conv::new();
    c.handshake(1000, 5000)
        .send_pieces(C, &[b"GET /1 HTTP/1.1\r\nHo", b"st: x\r\n\r", b"\n"])
        .send(S, &response("one"))
        .send_pieces(C, &[b"GET /2 HTTP/1.1\r\nHost: x\r\n", b"\r", b"\n"])
        .send(S, &response("two"))
        .send_pieces(C, &[b"GET /3 HTTP/1.1\r\nHost: x\r", b"\n\r", b"\n"])
        .send(S, &response("three"));
    // One byte per segment.
    for byte in request(4) {
        c.send(C, &[byte]);
    }
    c.send(S, &response("four")).close_by(C);
    let a = c.analyze("split-req");
    let r = only(&a);
    assert_eq!((r.requests, r.responses), (Some(4), Some(4)));
    assert_eq!((r.parse_errors, r.resyncs), (0, 0));
    assert_eq!(r.pipeline_depth, Some(1));
    assert!(r.flags.is_empty(), "{:?}", r.flags);
    let t = transactions(&a);
    assert_eq!(
        t.iter().map(|t| t.target.as_str()).collect::<Vec<_>>(),
        ["/1", "/2", "/3", "/4"]
    );
    assert_eq!(completes(&a), [true; 4]);
}

/// The first request of a connection arrives as "GET " and then the rest.
#[test]
fn first_request_split_after_the_method() {
    let mut c = Conv::new();
    c.handshake(1000, 5000)
        .send_pieces(C, &[b"GET ", b"/1 HTTP/1.1\r\nHost: x\r\n", b"\r\n"])
        .send(S, &response("one"))
        .close_by(C);
    let a = c.analyze("split-first");
    let r = only(&a);
    assert_eq!((r.requests, r.responses), (Some(1), Some(1)));
    assert_eq!(r.parse_errors, 0);
    assert!(r.flags.is_empty(), "{:?}", r.flags);
    assert_eq!(statuses(&a), [Some(200)]);
}

/// The first request of a connection arrives one byte per segment.
#[test]
fn first_request_one_byte_per_segment() {
    let mut c = Conv::new();
    c.handshake(1000, 5000);
    for byte in request(1) {
        c.send(C, &[byte]);
    }
    c.send(S, &response("one")).close_by(C);
    let a = c.analyze("bytewise-first");
    let r = only(&a);
    assert_eq!((r.requests, r.responses), (Some(1), Some(1)));
    assert_eq!(r.parse_errors, 0);
    assert!(r.flags.is_empty(), "{:?}", r.flags);
    assert_eq!(statuses(&a), [Some(200)]);
}

// 12. -----------------------------------------------------------------------------------

const CHUNKED_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
/// Chunks of 5 and 0x1A bytes, with extensions, a last-chunk extension and two trailers.
const CHUNKED_BODY: &[u8] = b"5;ext=1\r\nhello\r\n1A ; name=\"v\"\r\nabcdefghijklmnopqrstuvwxyz\r\n0;last\r\nX-Trailer: a\r\nY: b\r\n\r\n";

#[test]
fn chunked_response_split_at_awkward_points() {
    let pieces: &[&[u8]] = &[
        CHUNKED_HEAD,
        b"5;ext=1\r",           // between CR and LF of a chunk-size line
        b"\nhello\r",           // between CR and LF after chunk data
        b"\n1",                 // inside the chunk size
        b"A ; name=\"v\"\r",    // inside the extension line
        b"\nabcdefghijklm",     // inside the data
        b"nopqrstuvwxyz\r\n0;", // inside the last-chunk line
        b"last\r\nX-Tra",       // inside a trailer
        b"iler: a\r\nY: b\r\n\r",
        b"\n",
    ];
    assert_eq!(pieces[1..].concat(), CHUNKED_BODY);
    let mut c = Conv::new();
    c.handshake(1000, 5000)
        .send(C, &request(1))
        .send_pieces(S, pieces)
        .send(C, &request(2));
    // The same response again, one byte per segment.
    c.send(S, CHUNKED_HEAD);
    for &byte in CHUNKED_BODY {
        c.send(S, &[byte]);
    }
    c.send(C, &request(3))
        .send(S, &response("after"))
        .close_by(C);
    let a = c.analyze("chunked");
    let r = only(&a);
    assert_clean_identity(r);
    assert_eq!((r.requests, r.responses), (Some(3), Some(3)));
    assert_eq!((r.parse_errors, r.resyncs, r.gaps), (0, 0, 0));
    assert!(r.flags.is_empty(), "{:?}", r.flags);
    assert_eq!(statuses(&a), [Some(200); 3]);
    assert_eq!(completes(&a), [true; 3]);
    assert_eq!(body_sizes(&a), [Some(5 + 0x1A), Some(5 + 0x1A), Some(5)]);
}

// 13. -----------------------------------------------------------------------------------

#[test]
fn expect_100_continue() {
    let mut c = Conv::new();
    c.handshake(1000, 5000)
        .send(
            C,
            b"POST /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
        )
        .send(S, b"HTTP/1.1 100 Continue\r\n\r\n")
        .send(C, b"hello")
        .send(S, &response("ok"))
        .close_by(C);
    let a = c.analyze("continue");
    let r = only(&a);
    assert_clean_identity(r);
    assert_eq!(r.requests, Some(1));
    assert_eq!(r.responses, Some(1));
    assert_eq!(r.interim_responses, Some(1));
    assert_eq!(r.pipeline_depth, Some(1));
    assert_eq!(r.pipelined_requests, Some(0));
    assert_eq!(r.unanswered_requests, Some(0));
    assert!(r.flags.is_empty(), "{:?}", r.flags);
    let t = transactions(&a);
    assert_eq!(
        t.iter()
            .map(|t| (
                t.method.as_str(),
                t.status,
                t.interim_responses,
                t.request_body_bytes,
                t.response_body_bytes,
                t.complete
            ))
            .collect::<Vec<_>>(),
        [("POST", Some(200), 1, 5, Some(2), true)]
    );
}

/// Keep-Alive adverts and verdicts on hand-built exchanges that a real server will not
/// produce on demand (docs/verdicts.md).
mod keep_alive {
    use super::*;
    use kascope::verdict::{MaxVerdict, TimeoutVerdict};

    /// A 200 response with extra header lines.
    fn answer(headers: &str) -> Vec<u8> {
        format!("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n{headers}\r\nok").into_bytes()
    }

    fn keep_alive(timeout: u32, max: u32) -> Vec<u8> {
        answer(&format!("Keep-Alive: timeout={timeout}, max={max}\r\n"))
    }

    #[test]
    fn connection_close_at_or_before_the_limit_honours_max_with_nothing_waiting() {
        // max=3 on response 1 allows 4 requests; the server closes after the 2nd with
        // `Connection: close` and the client had nothing more to send (issue 9: was untested).
        let mut c = Conv::new();
        c.handshake(1, 1)
            .send(C, &request(1))
            .send(S, &keep_alive(5, 3))
            .send(C, &request(2))
            .send(S, &answer("Connection: close\r\n"))
            .close_by(S);
        let a = c.analyze("ka-close-early");
        let r = only(&a);
        assert_eq!(r.implied_request_limit, Some(4));
        assert_eq!(r.close_announced_at, Some(2));
        assert_eq!(r.judged().max, MaxVerdict::Honoured);
        assert_eq!(r.judged().close_honoured, Some(true));
        assert!(!r.judged().is_violation());
    }

    #[test]
    fn garbage_in_the_header_is_flagged_not_fatal() {
        let mut c = Conv::new();
        c.handshake(1, 1)
            .send(C, &request(1))
            .send(S, &answer("Keep-Alive: timeout=abc, max=\r\n"))
            .send(C, &request(2))
            .send(S, &answer("Keep-Alive: \u{1}\u{2}garbage;;==,\r\n"))
            .close_by(C);
        let a = c.analyze("ka-garbage");
        let r = only(&a);
        assert_eq!((r.requests, r.responses), (Some(2), Some(2)));
        assert!(r.keep_alive_malformed);
        assert_eq!(
            (r.keep_alive_timeout_first, r.keep_alive_max_first),
            (None, None)
        );
        assert_eq!(
            (r.judged().max, r.judged().timeout),
            (MaxVerdict::None, TimeoutVerdict::None)
        );
    }

    #[test]
    fn several_keep_alive_headers_in_one_response_merge() {
        let mut c = Conv::new();
        c.handshake(1, 1)
            .send(C, &request(1))
            .send(
                S,
                &answer("Keep-Alive: timeout=5\r\nkeep-alive: MAX=\"3\"\r\n"),
            )
            .close_by(C);
        let a = c.analyze("ka-several");
        let r = only(&a);
        assert_eq!(
            (r.keep_alive_timeout_first, r.keep_alive_max_first),
            (Some(5), Some(3))
        );
        assert!(!r.keep_alive_malformed);
        assert_eq!(r.implied_request_limit, Some(4));
    }

    #[test]
    fn values_changing_along_the_connection_keep_the_tightest_limit() {
        let mut c = Conv::new();
        c.handshake(1, 1)
            .send(C, &request(1))
            .send(S, &keep_alive(5, 10))
            .send(C, &request(2))
            .send(S, &keep_alive(2, 1))
            .send(C, &request(3))
            .send(S, &answer("Connection: close\r\n"))
            .close_by(S);
        let a = c.analyze("ka-changing");
        let r = only(&a);
        assert_eq!(
            (r.keep_alive_timeout_first, r.keep_alive_max_first),
            (Some(5), Some(10))
        );
        assert_eq!(
            (r.keep_alive_timeout_last, r.keep_alive_max_last),
            (Some(2), Some(1))
        );
        assert_eq!(r.implied_request_limit, Some(3), "min(1+10, 2+1)");
        assert_eq!(r.judged().max, MaxVerdict::Honoured);
        assert_eq!(r.judged().close_honoured, Some(true));
        assert!(!r.judged().is_violation());
    }

    #[test]
    fn pipelined_requests_crossing_a_close_are_dropped_not_raced() {
        let mut c = Conv::new();
        c.handshake(1, 1)
            .send(C, &[request(1), request(2), request(3)].concat())
            .send(S, &answer("Connection: close\r\n"))
            .close_by(S);
        let a = c.analyze("ka-pipelined-close");
        let r = only(&a);
        assert_eq!(
            (r.requests, r.responses, r.pipeline_depth),
            (Some(3), Some(1), Some(3))
        );
        assert_eq!(r.judged().dropped_after_close, 2);
        assert_eq!(r.judged().race_request, None);
        assert_eq!(r.judged().close_honoured, Some(true));
        assert!(!r.judged().unannounced_close && !r.judged().is_violation());
        let unanswered: Vec<u32> = transactions(&a)
            .iter()
            .filter(|t| t.status.is_none())
            .map(|t| t.position)
            .collect();
        assert_eq!(unanswered, [2, 3]);
    }

    #[test]
    fn request_crossing_an_idle_close_is_a_race() {
        let mut c = Conv::new();
        c.handshake(1, 1)
            .send(C, &request(1))
            .send(S, &keep_alive(2, 100))
            .wait_ms(2000)
            .fin(S)
            .send(C, &request(2))
            .rst(S);
        let a = c.analyze("ka-race");
        let r = only(&a);
        assert_eq!(r.judged().race_request, Some(2));
        assert_eq!(r.judged().timeout, TimeoutVerdict::Honoured);
        assert_eq!(r.unanswered_requests, Some(1));
        assert!(
            !r.judged().is_violation(),
            "a race is a symptom, not a broken promise"
        );
    }

    #[test]
    fn a_liar_server_exceeds_max_and_closes_early() {
        let mut c = Conv::new();
        c.handshake(1, 1);
        for n in 1..=4 {
            c.send(C, &request(n)).send(S, &keep_alive(10, 1));
        }
        c.wait_ms(1000).close_by(S);
        let a = c.analyze("ka-liar");
        let r = only(&a);
        assert_eq!(r.implied_request_limit, Some(2));
        assert_eq!(r.judged().max, MaxVerdict::Exceeded);
        assert_eq!(r.judged().timeout, TimeoutVerdict::ClosedEarly);
        assert!(r.judged().unannounced_close && r.judged().is_violation());
        let idle = r.judged().idle_close_ns.map(secs).unwrap();
        assert!((0.99..1.01).contains(&idle), "{idle}");
    }

    #[test]
    fn answering_after_connection_close_breaks_the_announcement() {
        let mut c = Conv::new();
        c.handshake(1, 1)
            .send(C, &request(1))
            .send(S, &answer("Connection: close\r\n"))
            .send(C, &request(2))
            .send(S, &answer(""))
            .close_by(C);
        let a = c.analyze("ka-after-close");
        let r = only(&a);
        assert_eq!(r.judged().close_honoured, Some(false));
        assert_eq!(r.requests_after_close_announced, 1);
        assert!(r.judged().is_violation());
    }
}
