//! Captures built to attack the analyzer: floods of half-open connections, requests nobody
//! answers, giant heads, endless bodies, conflicting overlaps, SYN storms, injected RSTs.
//! kascope must finish, stay within its memory budget (peak RSS measured with GNU time), and
//! still report every connection, flagged with what it shed.

mod common;

use std::path::Path;
use std::process::Command;

use common::binary::{KASCOPE, Table, TempPath, stderr, stdout};
use common::pcap::{ACK, C, Conv, Endpoint, RST, S, SERVER};

fn client(n: u32) -> Endpoint {
    Endpoint {
        mac: [2, 0, 0, 0, 0, 2],
        ip: [10, 10 + (n >> 16) as u8, (n >> 8) as u8, n as u8],
        port: 10_000 + (n % 50_000) as u16,
    }
}

/// A capture of `client(n)` talking to `SERVER`, frames 10 µs apart.
fn trace(n: u32) -> Conv {
    Conv::between(client(n), SERVER).spaced_us(10)
}

struct Run {
    table: Table,
    stdout: String,
    peak_rss_mib: f64,
}

impl Run {
    fn column(&self, row: usize, name: &str) -> &str {
        self.table.column(row, name)
    }
}

/// Runs the kascope binary under GNU time and reads back its connection CSV.
fn run(capture: &Path, extra: &[&str]) -> Run {
    let csv = TempPath::new("connections.csv");
    let rss = TempPath::new("peak.rss");
    let output = Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o", rss.arg()])
        .arg(KASCOPE)
        .arg(capture)
        .args(["-q", "--csv", csv.arg()])
        .args(extra)
        .output()
        .expect("GNU time (/usr/bin/time) is installed by scripts/install-deps.sh");
    let stderr = stderr(&output);
    assert!(output.status.success(), "kascope failed: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let peak_kib: f64 = std::fs::read_to_string(&rss)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    Run {
        table: Table::read(&csv),
        stdout: stdout(&output),
        peak_rss_mib: peak_kib / 1024.0,
    }
}

#[test]
fn two_hundred_thousand_half_open_connections() {
    let mut flood = trace(0);
    for n in 0..200_000 {
        flood
            .connection(client(n), SERVER)
            .syn(n.wrapping_mul(7919));
    }
    let capture = flood.write("syn-flood");

    let roomy = run(&capture, &[]);
    assert_eq!(roomy.table.len(), 200_000, "every connection gets a row");
    assert!(
        roomy.peak_rss_mib < 512.0,
        "peak {} MiB",
        roomy.peak_rss_mib
    );
    eprintln!(
        "200k SYN-only, default budget: peak RSS {:.0} MiB",
        roomy.peak_rss_mib
    );

    let tight = run(&capture, &["--max-memory", "32MiB"]);
    assert_eq!(
        tight.table.len(),
        200_000,
        "shed connections still get a row"
    );
    let shed = (0..tight.table.len())
        .filter(|&i| tight.column(i, "flags").contains("memory-budget"))
        .count();
    assert!(shed > 100_000, "only {shed} shed");
    assert!(
        tight.stdout.contains("memory budget reached"),
        "{}",
        tight.stdout
    );
    assert!(
        tight.peak_rss_mib < 96.0,
        "peak {} MiB with a 32 MiB budget",
        tight.peak_rss_mib
    );
    eprintln!(
        "200k SYN-only, 32 MiB budget: peak RSS {:.0} MiB",
        tight.peak_rss_mib
    );
}

#[test]
fn ten_thousand_pipelined_requests_never_answered() {
    let requests: Vec<u8> = (0..10_000)
        .flat_map(|n| format!("GET /{n} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes())
        .collect();
    let mut c = trace(1);
    c.handshake(1000, 5000).send_stream(C, &requests);
    let result = run(&c.write("pipeline-flood"), &[]);
    assert_eq!(result.column(0, "requests"), "10000");
    assert_eq!(result.column(0, "responses"), "0");
    assert_eq!(result.column(0, "unanswered_requests"), "10000");
    assert_eq!(result.column(0, "pipeline_depth"), "10000");
    assert!(
        result.peak_rss_mib < 64.0,
        "peak {} MiB",
        result.peak_rss_mib
    );
}

/// A request starting with `head`, then `GET /after`, and one response.
fn exchange_after(head: &[u8]) -> Conv {
    let mut bytes = head.to_vec();
    bytes.extend_from_slice(b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut c = trace(2);
    c.handshake(1000, 5000)
        .send_stream(C, &bytes)
        .send_stream(S, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    c
}

#[test]
fn ten_mib_header_line_is_a_parse_error_and_parsing_goes_on() {
    let mut head = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
    head.extend(std::iter::repeat_n(b'a', 10 << 20));
    head.extend_from_slice(b"\r\n\r\n");
    let result = run(&exchange_after(&head).write("huge-line"), &[]);
    assert!(result.column(0, "flags").contains("parse-error"));
    assert_eq!(
        result.column(0, "requests"),
        "1",
        "the request after it is found"
    );
    assert_eq!(result.column(0, "responses"), "1");
    assert!(
        result.peak_rss_mib < 64.0,
        "peak {} MiB",
        result.peak_rss_mib
    );
}

#[test]
fn a_hundred_thousand_header_fields() {
    let fields = |count: usize| {
        let mut head = b"GET /fields HTTP/1.1\r\n".to_vec();
        for n in 0..count {
            head.extend_from_slice(format!("X-{n}: v\r\n").as_bytes());
        }
        head.extend_from_slice(b"\r\n");
        head
    };
    // Past the 64 KiB head bound: a parse error, then the next request.
    let result = run(&exchange_after(&fields(100_000)).write("many-fields"), &[]);
    assert!(result.column(0, "flags").contains("parse-error"));
    assert_eq!(result.column(0, "requests"), "1");
    assert!(
        result.peak_rss_mib < 64.0,
        "peak {} MiB",
        result.peak_rss_mib
    );
    // 1,000 fields fit: both requests count, the first is never answered.
    let result = run(&exchange_after(&fields(1_000)).write("some-fields"), &[]);
    assert_eq!(result.column(0, "requests"), "2");
    assert_eq!(result.column(0, "parse_errors"), "0");
}

#[test]
fn endless_chunked_body() {
    let mut body = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..5_000 {
        body.extend_from_slice(b"1000\r\n");
        body.extend(std::iter::repeat_n(b'z', 0x1000));
        body.extend_from_slice(b"\r\n");
    }
    let mut c = trace(3);
    c.handshake(1000, 5000)
        .send_stream(C, b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        .send_stream(S, &body);
    let result = run(&c.write("endless-chunked"), &[]);
    assert_eq!(result.column(0, "responses"), "1");
    assert!(result.column(0, "flags").contains("incomplete-response"));
    assert!(
        result.peak_rss_mib < 64.0,
        "peak {} MiB",
        result.peak_rss_mib
    );
}

#[test]
fn overlapping_segments_with_conflicting_bytes_keep_the_first_copy() {
    let mut c = trace(4);
    c.handshake(1000, 5000)
        .send_at(C, 1001, b"GET /first HTTP/1.1\r\n")
        // Same sequence numbers, other bytes: a retransmission that disagrees.
        .send_at(C, 1001, b"GET /other HTTP/1.1\r\nHost: x\r\n\r\n")
        .send_at(C, 1022, b"Host: x\r\n\r\n")
        .send(S, b"HTTP/1.1 204 No Content\r\n\r\n");
    let analysis = common::analyze(&c.write("conflict"));
    let c = &analysis.connections[0];
    assert_eq!((c.requests, c.responses), (Some(1), Some(1)));
    assert!(c.retransmissions >= 1);
    assert_eq!(analysis.transactions[0].target, "/first");
}

#[test]
fn syn_storm_on_one_four_tuple() {
    let mut c = trace(5);
    for n in 0..10_000u32 {
        c.syn(n.wrapping_mul(104_729).wrapping_add(1));
    }
    let result = run(&c.write("syn-storm"), &[]);
    // Wireshark's rule: every SYN with a new ISN on the 4-tuple starts a new stream.
    assert_eq!(result.table.len(), 10_000);
    let mut streams: Vec<u64> = (0..10_000)
        .map(|i| result.column(i, "stream").parse().unwrap())
        .collect();
    streams.sort_unstable();
    assert_eq!(streams, (0..10_000).collect::<Vec<u64>>());
}

#[test]
fn injected_rst_mid_stream_is_ignored() {
    let request = b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n";
    let response = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let mut c = trace(6);
    c.handshake(1000, 5000)
        .send_stream(C, request)
        .send_stream(S, response);
    // A blind RST with a sequence number far from the window.
    let blind = c.next(S).wrapping_add(0x4000_0000);
    c.raw(S, blind, 0, RST, b"")
        .send_stream(C, request)
        .send_stream(S, response)
        .fin(C)
        .fin(S);
    let result = run(&c.write("rst-injection"), &[]);
    assert_eq!(result.table.len(), 1);
    assert_eq!(result.column(0, "requests"), "2");
    assert_eq!(result.column(0, "responses"), "2");
    assert_eq!(result.column(0, "closer"), "client-fin");
    assert_eq!(
        result.column(0, "rst_server"),
        "1",
        "counted, as tshark counts it"
    );
    assert!(result.column(0, "flags").contains("rst-ignored"));
}

#[test]
fn a_hundred_thousand_one_byte_segments_in_reverse() {
    // Each buffered segment is charged its bookkeeping too, so the out-of-order bound caps
    // the number of tiny segments as well as their bytes; a sorted map keeps it logarithmic.
    let mut request = b"POST /tiny HTTP/1.1\r\nContent-Length: 100000\r\n\r\n".to_vec();
    request.extend(std::iter::repeat_n(b'q', 100_000));
    let head = request.len() - 100_000;
    let mut c = trace(7);
    c.handshake(1000, 5000).send_stream(C, &request[..head]);
    let body_seq = c.next(C);
    for at in (head..request.len()).rev() {
        let seq = body_seq + (at - head) as u32;
        c.segment(C, seq, ACK, &request[at..at + 1]);
    }
    let result = run(&c.write("tiny-reverse"), &[]);
    assert_eq!(result.column(0, "requests"), "1");
    assert!(result.column(0, "out_of_order").parse::<u64>().unwrap() > 50_000);
    assert!(
        result.peak_rss_mib < 64.0,
        "peak {} MiB",
        result.peak_rss_mib
    );
}
