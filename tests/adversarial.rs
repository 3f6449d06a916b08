//! Captures built to attack the analyzer: floods of half-open connections, requests nobody
//! answers, giant heads, endless bodies, conflicting overlaps, SYN storms, injected RSTs.
//! kascope must finish, stay within its memory budget (peak RSS measured with GNU time), and
//! still report every connection, flagged with what it shed.

mod common;
#[path = "common/pcap.rs"]
mod pcap;

use std::path::Path;
use std::process::Command;

use pcap::{ACK, Endpoint, PSH, RST, Record, SYN, pcap_bytes, tcp_frame, temp_capture};

const SERVER: Endpoint = Endpoint {
    mac: [2, 0, 0, 0, 0, 1],
    ip: [10, 9, 0, 1],
    port: 80,
};

fn client(n: u32) -> Endpoint {
    Endpoint {
        mac: [2, 0, 0, 0, 0, 2],
        ip: [10, 10 + (n >> 16) as u8, (n >> 8) as u8, n as u8],
        port: 10_000 + (n % 50_000) as u16,
    }
}

/// A capture being written: frames with timestamps 10 µs apart.
struct Trace {
    records: Vec<Record>,
    ts_us: u64,
}

impl Trace {
    fn new() -> Trace {
        Trace {
            records: Vec::new(),
            ts_us: 1_700_000_000_000_000,
        }
    }

    fn push(
        &mut self,
        from: Endpoint,
        to: Endpoint,
        seq: u32,
        ack: Option<u32>,
        flags: u8,
        payload: &[u8],
    ) {
        let frame = tcp_frame(from, to, seq, ack, flags, payload);
        self.records.push(Record::whole(self.ts_us, frame));
        self.ts_us += 10;
    }

    /// Sends a byte stream as full-sized segments; returns the next sequence number.
    fn stream(
        &mut self,
        from: Endpoint,
        to: Endpoint,
        mut seq: u32,
        ack: u32,
        bytes: &[u8],
    ) -> u32 {
        for chunk in bytes.chunks(1448) {
            self.push(from, to, seq, Some(ack), ACK | PSH, chunk);
            seq = seq.wrapping_add(chunk.len() as u32);
        }
        seq
    }

    fn handshake(&mut self, c: Endpoint, client_isn: u32, server_isn: u32) {
        self.push(c, SERVER, client_isn, None, SYN, b"");
        self.push(SERVER, c, server_isn, Some(client_isn + 1), SYN | ACK, b"");
        self.push(c, SERVER, client_isn + 1, Some(server_isn + 1), ACK, b"");
    }

    fn write(&self, name: &str) -> std::path::PathBuf {
        let path = temp_capture(name);
        std::fs::write(&path, pcap_bytes(&self.records)).unwrap();
        path
    }
}

struct Run {
    rows: Vec<csv::StringRecord>,
    headers: csv::StringRecord,
    stdout: String,
    peak_rss_mib: f64,
}

impl Run {
    fn column(&self, row: usize, name: &str) -> &str {
        let at = self.headers.iter().position(|h| h == name).unwrap();
        &self.rows[row][at]
    }
}

/// Runs the kascope binary under GNU time and reads back its connection CSV.
fn run(capture: &Path, extra: &[&str]) -> Run {
    let csv_path = capture.with_extension("csv");
    let rss_path = capture.with_extension("rss");
    let output = Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o", rss_path.to_str().unwrap()])
        .arg(env!("CARGO_BIN_EXE_kascope"))
        .arg(capture)
        .args(["-q", "--csv", csv_path.to_str().unwrap()])
        .args(extra)
        .output()
        .expect("GNU time (/usr/bin/time) is installed by scripts/install-deps.sh");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "kascope failed: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let peak_kib: f64 = std::fs::read_to_string(&rss_path)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut reader = csv::Reader::from_path(&csv_path).unwrap();
    let headers = reader.headers().unwrap().clone();
    let rows = reader.records().map(Result::unwrap).collect();
    for path in [capture, &csv_path, &rss_path] {
        let _ = std::fs::remove_file(path);
    }
    Run {
        rows,
        headers,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        peak_rss_mib: peak_kib / 1024.0,
    }
}

#[test]
fn two_hundred_thousand_half_open_connections() {
    let mut trace = Trace::new();
    for n in 0..200_000 {
        trace.push(client(n), SERVER, n.wrapping_mul(7919), None, SYN, b"");
    }
    let capture = trace.write("syn-flood");
    let bytes = std::fs::read(&capture).unwrap();

    let roomy = run(&capture, &[]);
    assert_eq!(roomy.rows.len(), 200_000, "every connection gets a row");
    assert!(
        roomy.peak_rss_mib < 512.0,
        "peak {} MiB",
        roomy.peak_rss_mib
    );
    eprintln!(
        "200k SYN-only, default budget: peak RSS {:.0} MiB",
        roomy.peak_rss_mib
    );

    std::fs::write(&capture, bytes).unwrap();
    let tight = run(&capture, &["--max-memory", "32MiB"]);
    assert_eq!(
        tight.rows.len(),
        200_000,
        "shed connections still get a row"
    );
    let shed = (0..tight.rows.len())
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
    let mut trace = Trace::new();
    let c = client(1);
    trace.handshake(c, 1000, 5000);
    let requests: Vec<u8> = (0..10_000)
        .flat_map(|n| format!("GET /{n} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes())
        .collect();
    trace.stream(c, SERVER, 1001, 5001, &requests);
    let result = run(&trace.write("pipeline-flood"), &[]);
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

fn exchange_after(head: &[u8]) -> (Trace, Endpoint) {
    let mut trace = Trace::new();
    let c = client(2);
    trace.handshake(c, 1000, 5000);
    let mut bytes = head.to_vec();
    bytes.extend_from_slice(b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n");
    let end = trace.stream(c, SERVER, 1001, 5001, &bytes);
    trace.stream(
        SERVER,
        c,
        5001,
        end,
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    );
    (trace, c)
}

#[test]
fn ten_mib_header_line_is_a_parse_error_and_parsing_goes_on() {
    let mut head = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
    head.extend(std::iter::repeat_n(b'a', 10 << 20));
    head.extend_from_slice(b"\r\n\r\n");
    let (trace, _) = exchange_after(&head);
    let result = run(&trace.write("huge-line"), &[]);
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
    let (trace, _) = exchange_after(&fields(100_000));
    let result = run(&trace.write("many-fields"), &[]);
    assert!(result.column(0, "flags").contains("parse-error"));
    assert_eq!(result.column(0, "requests"), "1");
    assert!(
        result.peak_rss_mib < 64.0,
        "peak {} MiB",
        result.peak_rss_mib
    );
    // 1,000 fields fit: both requests count, the first is never answered.
    let (trace, _) = exchange_after(&fields(1_000));
    let result = run(&trace.write("some-fields"), &[]);
    assert_eq!(result.column(0, "requests"), "2");
    assert_eq!(result.column(0, "parse_errors"), "0");
}

#[test]
fn endless_chunked_body() {
    let mut trace = Trace::new();
    let c = client(3);
    trace.handshake(c, 1000, 5000);
    let ack = trace.stream(
        c,
        SERVER,
        1001,
        5001,
        b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    let mut body = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..5_000 {
        body.extend_from_slice(b"1000\r\n");
        body.extend(std::iter::repeat_n(b'z', 0x1000));
        body.extend_from_slice(b"\r\n");
    }
    trace.stream(SERVER, c, 5001, ack, &body);
    let result = run(&trace.write("endless-chunked"), &[]);
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
    let analysis = {
        let mut trace = Trace::new();
        let c = client(4);
        trace.handshake(c, 1000, 5000);
        trace.push(
            c,
            SERVER,
            1001,
            Some(5001),
            ACK | PSH,
            b"GET /first HTTP/1.1\r\n",
        );
        // Same sequence numbers, other bytes: a retransmission that disagrees.
        trace.push(
            c,
            SERVER,
            1001,
            Some(5001),
            ACK | PSH,
            b"GET /other HTTP/1.1\r\nHost: x\r\n\r\n",
        );
        trace.push(c, SERVER, 1022, Some(5001), ACK | PSH, b"Host: x\r\n\r\n");
        trace.push(
            SERVER,
            c,
            5001,
            Some(1033),
            ACK | PSH,
            b"HTTP/1.1 204 No Content\r\n\r\n",
        );
        let path = trace.write("conflict");
        let analysis = common::analyze(&path);
        let _ = std::fs::remove_file(&path);
        analysis
    };
    let c = &analysis.connections[0];
    assert_eq!((c.requests, c.responses), (1, 1));
    assert!(c.retransmissions >= 1);
    assert_eq!(analysis.transactions[0].target, "/first");
}

#[test]
fn syn_storm_on_one_four_tuple() {
    let mut trace = Trace::new();
    let c = client(5);
    for n in 0..10_000u32 {
        trace.push(
            c,
            SERVER,
            n.wrapping_mul(104_729).wrapping_add(1),
            None,
            SYN,
            b"",
        );
    }
    let result = run(&trace.write("syn-storm"), &[]);
    // Wireshark's rule: every SYN with a new ISN on the 4-tuple starts a new stream.
    assert_eq!(result.rows.len(), 10_000);
    let mut streams: Vec<u64> = (0..10_000)
        .map(|i| result.column(i, "stream").parse().unwrap())
        .collect();
    streams.sort_unstable();
    assert_eq!(streams, (0..10_000).collect::<Vec<u64>>());
}

#[test]
fn injected_rst_mid_stream_is_ignored() {
    let mut trace = Trace::new();
    let c = client(6);
    trace.handshake(c, 1000, 5000);
    let request = b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n";
    let response = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let mut cseq = trace.stream(c, SERVER, 1001, 5001, request);
    let mut sseq = trace.stream(SERVER, c, 5001, cseq, response);
    // A blind RST with a sequence number far from the window.
    trace.push(SERVER, c, sseq.wrapping_add(0x4000_0000), None, RST, b"");
    cseq = trace.stream(c, SERVER, cseq, sseq, request);
    sseq = trace.stream(SERVER, c, sseq, cseq, response);
    trace.push(c, SERVER, cseq, Some(sseq), pcap::FIN | ACK, b"");
    trace.push(SERVER, c, sseq, Some(cseq + 1), pcap::FIN | ACK, b"");
    let result = run(&trace.write("rst-injection"), &[]);
    assert_eq!(result.rows.len(), 1);
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
    let mut trace = Trace::new();
    let c = client(7);
    trace.handshake(c, 1000, 5000);
    let mut request = b"POST /tiny HTTP/1.1\r\nContent-Length: 100000\r\n\r\n".to_vec();
    request.extend(std::iter::repeat_n(b'q', 100_000));
    let head = request.len() - 100_000;
    trace.stream(c, SERVER, 1001, 5001, &request[..head]);
    for at in (head..request.len()).rev() {
        trace.push(
            c,
            SERVER,
            1001 + at as u32,
            Some(5001),
            ACK,
            &request[at..at + 1],
        );
    }
    let result = run(&trace.write("tiny-reverse"), &[]);
    assert_eq!(result.column(0, "requests"), "1");
    assert!(result.column(0, "out_of_order").parse::<u64>().unwrap() > 50_000);
    assert!(
        result.peak_rss_mib < 64.0,
        "peak {} MiB",
        result.peak_rss_mib
    );
}
