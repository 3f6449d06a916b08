//! Captures built to attack the analyzer: floods of half-open connections, requests nobody
//! answers, giant heads, endless bodies, conflicting overlaps, SYN storms, injected RSTs.
//! kascope must finish, stay within its memory budget (peak RSS measured with GNU time), and
//! still report every connection, flagged with what it shed.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::binary::{KASCOPE, Table, TempPath, stderr, stdout};
use common::pcap::{ACK, C, Conv, Endpoint, RST, S, SERVER};
use kascope::Config;
use kascope::record::{Closer, Flag};

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
    run_threads(capture, extra, THREADED)
}

/// `--threads` of the runs that check the memory budget besides `--threads 1`: the thread
/// reading ahead, the reader and two shards, so that the merger has two to wait on.
const THREADED: &str = "4";

/// [`run`] with `--threads threads`.
fn run_threads(capture: &Path, extra: &[&str], threads: &str) -> Run {
    let csv = TempPath::new("connections.csv");
    let rss = TempPath::new("peak.rss");
    let output = Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o", rss.arg()])
        .arg(KASCOPE)
        .arg(capture)
        .args(["-q", "--csv", csv.arg(), "--threads", threads])
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

// ---- Work linear in the input: each case is timed on an input and on one twice its size. ----

/// Timed runs, one at a time: tests run in parallel, and two at once on two cores share
/// caches and memory bandwidth.
static TIMING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Doubling the input must at most double the time: the ratio is checked against 3 (a
/// quadratic path gives 4), with 5 ms of slack for quick runs. Time is this thread's CPU
/// time, which other processes on a busy machine do not inflate; each input is run five
/// times, alternately, and the quickest run of each counts. Returns both analyses.
fn assert_linear(
    what: &str,
    small: &[u8],
    big: &[u8],
    config: &Config,
) -> (common::Analysis, common::Analysis) {
    let _one_at_a_time = TIMING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut times = [Duration::MAX; 2];
    let mut analyses = [None, None];
    for _ in 0..5 {
        for (at, capture) in [small, big].into_iter().enumerate() {
            let (analysis, took) = common::analyze_bytes(capture, config.clone());
            times[at] = times[at].min(took);
            analyses[at] = Some(analysis);
        }
    }
    let [small_time, big_time] = times;
    let ratio = big_time.as_secs_f64() / small_time.as_secs_f64().max(1e-6);
    eprintln!("{what}: {small_time:?} -> {big_time:?} for twice the input (x{ratio:.2})");
    assert!(
        big_time <= small_time * 3 + Duration::from_millis(5),
        "{what}: {small_time:?} for the input, {big_time:?} for twice as much (x{ratio:.2})"
    );
    let [small, big] = analyses.map(|a| a.expect("five runs"));
    (small, big)
}

/// `n` requests on one connection that nobody answers.
fn unanswered(n: usize) -> Vec<u8> {
    let requests = b"GET / HTTP/1.1\r\n\r\n".repeat(n);
    let mut c = trace(8);
    c.handshake(1000, 5000).send_stream(C, &requests);
    c.pcap().to_vec()
}

#[test]
fn unanswered_requests_past_the_queue_bound_cost_the_same_each() {
    let (small, big) = assert_linear(
        "150k/300k unanswered requests",
        &unanswered(150_000),
        &unanswered(300_000),
        &Config::default(),
    );
    for (analysis, n) in [(small, 150_000), (big, 300_000)] {
        let c = common::only(&analysis);
        assert_eq!(c.requests, Some(n));
        assert!(c.flags.contains(Flag::QueueOverflow));
    }
}

/// After a gap, `segments` offloaded frames of `size` bytes of near misses (`x HTTP/1.1 `
/// over and over, no newline), then a real request.
fn near_misses(size: usize, segments: usize) -> Vec<u8> {
    let filler = b"x HTTP/1.1 ".repeat(size / 11);
    let mut c = trace(9);
    c.handshake(1000, 5000)
        .send(C, b"GET /1 HTTP/1.1\r\n\r\n")
        .lose(C, 100)
        // The server acknowledges the lost bytes: a gap, given up at once.
        .ack(S);
    for _ in 0..segments {
        c.send_offloaded(C, &filler);
    }
    c.send(C, b"\r\nGET /2 HTTP/1.1\r\n\r\n");
    c.pcap().to_vec()
}

#[test]
fn resync_after_a_gap_is_linear_in_segment_size() {
    // Twice the bytes by segments twice as large (128 KiB -> 256 KiB, as TSO/GRO captures
    // hold): the old search was quadratic in the segment size.
    let (small, big) = assert_linear(
        "resync over 128/256 KiB segments of near misses",
        &near_misses(128 << 10, 20),
        &near_misses(256 << 10, 20),
        &Config::default(),
    );
    for analysis in [small, big] {
        let c = common::only(&analysis);
        assert_eq!(
            c.requests,
            Some(2),
            "the request after the near misses is found"
        );
        assert!(c.flags.contains(Flag::Gap));
    }
}

/// `frames` offloaded frames, each a request head of `size` bytes that never ends, half of
/// it an upper-case method: stepping past the head's start one byte at a time finds a
/// request line again at every step.
fn oversized_heads(size: usize, frames: usize) -> Vec<u8> {
    let mut c = trace(10);
    c.handshake(1000, 5000);
    for _ in 0..frames {
        let method = "A".repeat(size / 2);
        let mut head = format!("\r\n{method} / HTTP/1.1\r\nX-Fill: ").into_bytes();
        head.resize(size, b'a');
        c.send_offloaded(C, &head);
    }
    c.pcap().to_vec()
}

#[test]
fn a_head_over_the_bound_is_given_up_once() {
    let (small, big) = assert_linear(
        "128/256 KiB heads over the 64 KiB bound",
        &oversized_heads(128 << 10, 20),
        &oversized_heads(256 << 10, 20),
        &Config::default(),
    );
    for analysis in [small, big] {
        let c = common::only(&analysis);
        // One parse error per head (it was one per byte of the method: 500,000 for five
        // frames of 256 KiB).
        assert_eq!(c.parse_errors, 20);
        assert!(c.resyncs <= 20, "{} resyncs", c.resyncs);
    }
}

/// `open` half-open connections, one response advertising `Keep-Alive: timeout=4294967295`,
/// and one connection that sends a packet every second for `seconds`.
fn long_idle_table(open: u32, seconds: u32) -> Vec<u8> {
    let mut c = trace(11);
    c.handshake(1000, 5000)
        .send(C, b"GET / HTTP/1.1\r\n\r\n")
        .send(
            S,
            b"HTTP/1.1 200 OK\r\nKeep-Alive: timeout=4294967295\r\nContent-Length: 0\r\n\r\n",
        );
    for n in 0..open {
        c.connection(client(1000 + n), SERVER)
            .syn(n.wrapping_mul(7919));
    }
    c.connection(client(999), SERVER).handshake(1, 1);
    for _ in 0..seconds {
        c.wait_ms(1000).ack(C);
    }
    c.pcap().to_vec()
}

#[test]
fn the_idle_sweep_costs_what_expires_not_the_table() {
    // Twice the input: twice the connections and twice the capture time. A sweep walking
    // the whole table every second costs connections x seconds: four times as much. The
    // capture is long for its connections so that the sweep, not opening them, is most of
    // the work it would take (hash tables themselves get a little slower as they grow).
    let (small, big) = assert_linear(
        "5k/10k idle connections over 3000/6000 s",
        &long_idle_table(5_000, 3_000),
        &long_idle_table(10_000, 6_000),
        &Config::default(),
    );
    assert_eq!(small.connections.len(), 5_002);
    assert_eq!(big.connections.len(), 10_002);
    // Nothing was idle for twice the (bounded) advertised timeout: all open at the end.
    assert!(
        big.connections
            .iter()
            .all(|c| c.closer == Closer::CaptureEnded)
    );
}

#[test]
fn an_endless_advertised_timeout_is_bounded_for_eviction() {
    // Idle eviction waits twice the largest advertised timeout, bounded at an hour: two
    // hours and a bit later the advertising connection is written out as evicted.
    let bound_s = (kascope::pipeline::MAX_ADVERTISED_IDLE_NS / 1_000_000_000) as u32;
    let capture = long_idle_table(0, 2 * bound_s + 5);
    let (analysis, _) = common::analyze_bytes(&capture, Config::default());
    assert_eq!(analysis.connections.len(), 2);
    let advertiser = &analysis.connections[0];
    assert_eq!(advertiser.keep_alive_timeout_first, Some(u32::MAX));
    assert_eq!(advertiser.closer, Closer::Evicted);
}

// ---- Memory: peak RSS within --max-memory plus a fixed overhead. ----

/// What a run of kascope holds besides what `--max-memory` bounds: the binary and its
/// libraries, the reader's buffer, output buffers, the allocator's slack, and the
/// per-client aggregation (bounded by its count of clients, not by the budget). Measured
/// at 5 MiB for a tiny capture and at most 17 MiB over the budget here (docs/robustness.md).
const FIXED_OVERHEAD_MIB: f64 = 20.0;

fn assert_within(run: &Run, budget_mib: f64, what: &str) {
    eprintln!(
        "{what}: peak RSS {:.1} MiB, budget {budget_mib} MiB",
        run.peak_rss_mib
    );
    assert!(
        run.peak_rss_mib <= budget_mib + FIXED_OVERHEAD_MIB,
        "{what}: peak RSS {:.1} MiB over the {budget_mib} MiB budget + {FIXED_OVERHEAD_MIB} MiB",
        run.peak_rss_mib
    );
}

#[test]
fn a_tiny_run_fits_in_the_fixed_overhead() {
    let mut c = trace(12);
    c.handshake(1000, 5000)
        .send(C, b"GET / HTTP/1.1\r\n\r\n")
        .send(S, b"HTTP/1.1 204 No Content\r\n\r\n");
    let capture = c.write("tiny");
    for threads in ["1", THREADED] {
        let result = run_threads(&capture, &[], threads);
        assert_within(&result, 0.0, &format!("one exchange, --threads {threads}"));
    }
}

#[test]
fn fragments_that_never_complete_stay_within_the_budget() {
    // A download whose every segment came as its first IP fragment only: 30,000 datagrams
    // (44 MB of fragments) that never complete. The held fragments are bounded, each one
    // is counted, and the connection still gets its row.
    let mut c = trace(1);
    c.handshake(1000, 5000)
        .send(C, b"GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
        .send(S, b"HTTP/1.1 200 OK\r\nContent-Length: 43800000\r\n\r\n");
    let piece = vec![b'x'; 1460];
    for _ in 0..30_000 {
        c.send(S, &piece);
    }
    let mut id = 0u16;
    let pcap = c.rewritten(|frame| {
        if frame.len() < 1000 {
            return vec![frame.to_vec()];
        }
        id = id.wrapping_add(1);
        let mut pieces = common::tunnel::ipv4_fragments(frame, 1456, id);
        pieces.truncate(1);
        pieces
    });
    let capture = TempPath::with("first-fragments.pcap", &pcap);
    for threads in ["1", THREADED] {
        let result = run_threads(&capture, &["--max-memory", "16MiB"], threads);
        assert_eq!(result.table.len(), 1, "the connection has its row");
        assert!(
            result
                .stdout
                .contains("frames skipped: 30000 IP fragments of datagrams never completed"),
            "{}",
            result.stdout
        );
        assert_within(
            &result,
            16.0,
            &format!("30k lone fragments, --threads {threads}"),
        );
    }
}

#[test]
fn a_syn_flood_stays_within_the_budget() {
    let mut flood = trace(0);
    for n in 0..400_000 {
        flood
            .connection(client(n), SERVER)
            .syn(n.wrapping_mul(7919));
    }
    let capture = flood.write("syn-flood-400k");
    for threads in ["1", THREADED] {
        let result = run_threads(&capture, &["--max-memory", "64MiB"], threads);
        assert_eq!(result.table.len(), 400_000, "every connection gets a row");
        assert_within(&result, 64.0, &format!("400k SYNs, --threads {threads}"));
    }
}

#[test]
fn kept_request_text_is_counted_in_the_budget() {
    // Long methods and targets on requests nobody answers, kept for --transactions-csv
    // (after a first ordinary request: a 2 KiB method is not taken for HTTP by itself).
    let method = "M".repeat(2048);
    let target = format!("/{}", "t".repeat(2048));
    let mut requests = b"GET / HTTP/1.1\r\n\r\n".to_vec();
    for _ in 0..99 {
        requests.extend_from_slice(format!("{method} {target} HTTP/1.1\r\n\r\n").as_bytes());
    }
    let mut c = trace(13);
    for n in 0..400 {
        c.connection(client(20_000 + n), SERVER)
            .handshake(1000, 5000)
            .send_stream(C, &requests);
    }
    let transactions = TempPath::new("tx.csv");
    let capture = c.write("long-methods");
    for threads in [THREADED, "1"] {
        let result = run_threads(
            &capture,
            &[
                "--max-memory",
                "16MiB",
                "--transactions-csv",
                transactions.arg(),
            ],
            threads,
        );
        assert_eq!(result.table.len(), 400);
        let what = format!("40,000 requests with 2 KiB methods, --threads {threads}");
        assert_within(&result, 16.0, &what);
    }
    let kept = Table::read(&transactions);
    assert_eq!(kept.len(), 40_000);
    assert_eq!(
        kept.column(1, "method").len(),
        32,
        "methods are cut to 32 bytes"
    );
    assert_eq!(kept.column(1, "target").len(), 512, "targets to 512");
}

#[test]
fn servers_past_their_share_of_the_budget_are_folded_into_one_row() {
    let mut c = Conv::new().spaced_us(10);
    let servers = 200_000u32;
    for n in 0..servers {
        let server = Endpoint {
            mac: [2, 0, 0, 0, 0, 1],
            ip: [10, 200 + (n >> 16) as u8, (n >> 8) as u8, n as u8],
            port: 80,
        };
        c.connection(client(n % 100), server)
            .mid_stream(1000, 5000)
            .send(C, b"GET / HTTP/1.1\r\n\r\n")
            .send(S, b"HTTP/1.1 204 No Content\r\nServer: s\r\n\r\n");
    }
    let servers_csv = TempPath::new("servers.csv");
    let capture = c.write("many-servers");
    for threads in [THREADED, "1"] {
        let result = run_threads(
            &capture,
            &["--max-memory", "32MiB", "--servers-csv", servers_csv.arg()],
            threads,
        );
        assert_within(&result, 32.0, &format!("200k servers, --threads {threads}"));
    }
    let rows = Table::read(&servers_csv);
    let last = rows.len() - 1;
    assert!(rows.len() < 100_000, "{} rows", rows.len());
    let folded = rows.column(last, "server");
    assert!(folded.starts_with("other ("), "{folded}");
    let connections: u64 = (0..rows.len())
        .map(|i| rows.column(i, "connections").parse::<u64>().unwrap())
        .sum();
    assert_eq!(
        connections,
        u64::from(servers),
        "no connection is lost by folding"
    );
    // The per-server table says so.
    let table = common::binary::kascope(&[capture.arg(), "--servers", "--max-memory", "32MiB"]);
    assert!(
        stdout(&table).contains("least-seen servers are summed in the 'other' row"),
        "{}",
        stdout(&table)
    );
}

// ---- Output safe to open anywhere. ----

/// A server whose `Server` header and a client whose request lines are spreadsheet formulas
/// and terminal escapes.
fn hostile_text() -> Conv {
    let mut c = trace(14);
    c.handshake(1000, 5000)
        .send(C, b"GET @SUM(A1) HTTP/1.1\r\nHost: x\r\n\r\n")
        .send(
            S,
            b"HTTP/1.1 200 OK\r\nServer: =cmd|' /C calc'!A0\r\nContent-Length: 0\r\n\r\n",
        )
        .send(C, b"-CMD +1 HTTP/1.1\r\nHost: x\r\n\r\n")
        .send(S, b"HTTP/1.1 204 No Content\r\n\r\n");
    c.connection(client(15), SERVER)
        .handshake(1000, 5000)
        .send(C, b"GET /\xc2\x9b2J HTTP/1.1\r\nHost: x\r\n\r\n")
        // U+009B is CSI to an 8-bit terminal; the escape and BEL are rejected by httparse.
        .send(
            S,
            b"HTTP/1.1 200 OK\r\nServer: \xc2\x9b2J\xc2\x9d0;x\r\nContent-Length: 0\r\n\r\n",
        )
        .send(C, b"GET /\x1b[2J\x07 HTTP/1.1\r\n\r\n");
    // Two more servers whose escape-laden name the findings and the per-software lines
    // quote (two connections of one request each make the no-reuse finding), and clients
    // whose User-Agent the per-agent lines quote.
    for (n, last) in [(16, 3), (17, 3), (18, 4), (19, 4)] {
        let other = Endpoint {
            ip: [10, 9, 0, last],
            ..SERVER
        };
        c.connection(client(n), other)
            .handshake(1000, 5000)
            .send(
                C,
                b"GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: \xc2\x9b5m/1.0\r\n\r\n",
            )
            .send(
                S,
                b"HTTP/1.1 200 OK\r\nServer: \xc2\x9b2J\xc2\x9d0;x\r\nContent-Length: 0\r\n\r\n",
            )
            .close_by(C);
    }
    c
}

#[test]
fn wire_text_that_a_spreadsheet_would_run_is_neutralised_in_csv_only() {
    let capture = hostile_text().write("formulas");
    let (connections, transactions, servers, json) = (
        TempPath::new("c.csv"),
        TempPath::new("t.csv"),
        TempPath::new("s.csv"),
        TempPath::new("c.jsonl"),
    );
    let output = common::binary::kascope(&[
        capture.arg(),
        "-q",
        "--csv",
        connections.arg(),
        "--transactions-csv",
        transactions.arg(),
        "--servers-csv",
        servers.arg(),
        "--json",
        json.arg(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let rows = Table::read(&connections);
    assert_eq!(rows.column(0, "server_software"), "'=cmd|' /C calc'!A0");
    let tx = Table::read(&transactions);
    assert_eq!(tx.column(0, "target"), "'@SUM(A1)");
    assert_eq!(tx.column(1, "method"), "'-CMD");
    assert_eq!(tx.column(1, "target"), "'+1");
    let by_server = Table::read(&servers);
    assert!(by_server.column(0, "server_software").starts_with("'=cmd"));
    // Every cell of every CSV: nothing starts like a formula.
    for table in [&rows, &tx, &by_server] {
        for row in &table.rows {
            for cell in row {
                let formula = cell.starts_with(['=', '+', '@', '\t', '\r'])
                    || (cell.starts_with('-') && cell.parse::<f64>().is_err());
                assert!(!formula, "{cell:?}");
            }
        }
    }
    // JSON keeps what was sent.
    let line = std::fs::read_to_string(&json).unwrap();
    let first: serde_json::Value = serde_json::from_str(line.lines().next().unwrap()).unwrap();
    assert_eq!(first["server_software"], "=cmd|' /C calc'!A0");
}

#[test]
fn control_characters_from_the_wire_never_reach_the_terminal() {
    let capture = hostile_text().write("escapes");
    for args in [&[][..], &["-q"], &["--servers"], &["--rows", "1"]] {
        let output = common::binary::kascope(&[&[capture.arg()][..], args].concat());
        assert!(output.status.success(), "{}", stderr(&output));
        for text in [stdout(&output), stderr(&output)] {
            let bad: Vec<char> = text
                .chars()
                .filter(|&ch| ch != '\n' && (ch.is_control() || ch == '\u{7f}'))
                .collect();
            assert!(bad.is_empty(), "{args:?}: {bad:?} in:\n{text}");
        }
    }
}
