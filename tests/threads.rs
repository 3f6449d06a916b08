//! `--threads N` writes what `--threads 1` writes, byte for byte, in every output: on every
//! recorded capture, every built one, the shared corpus, and a capture built to cross every
//! place where the shards must agree — streams started on different shards (numbering),
//! sweeps (eviction after the largest `timeout=` any shard has seen), numbers remembered
//! after eviction (continued rows), 4-tuples reused, late packets, the end of the input.

mod common;

use std::path::{Path, PathBuf};

use common::binary::{Table, TempPath, kascope, stderr};
use common::pcap::{C, Conv, Endpoint, S};

/// Thread counts compared with 1: the file read ahead beside one analysis thread; read
/// ahead, with a reader routing frames to one shard, to two (the merger waits on two), and to
/// more shards than this machine has cores.
const THREADS: [&str; 4] = ["2", "3", "4", "6"];

/// Every output kascope writes for `capture` with `--threads threads` (and `extra`), as
/// (what, bytes); the summary on standard output included.
fn outputs(capture: &[&Path], threads: &str, extra: &[&str]) -> Vec<(String, Vec<u8>)> {
    let files = [
        "--csv",
        "--transactions-csv",
        "--json",
        "--servers-csv",
        "--findings-json",
    ];
    let paths: Vec<TempPath> = files.iter().map(|f| TempPath::new(&f[2..])).collect();
    let mut args: Vec<&str> = Vec::new();
    for path in capture {
        args.extend(["-r", path.to_str().unwrap()]);
    }
    for (flag, path) in files.iter().zip(&paths) {
        args.extend([*flag, path.arg()]);
    }
    args.extend(["--threads", threads, "--wide"]);
    args.extend(extra);
    let output = kascope(&args);
    let mut written = vec![
        (
            "status".to_string(),
            format!("{:?}", output.status.code()).into_bytes(),
        ),
        ("stdout".to_string(), output.stdout.clone()),
        ("stderr".to_string(), output.stderr.clone()),
    ];
    assert!(!stderr(&output).contains("panicked"), "{}", stderr(&output));
    for (flag, path) in files.iter().zip(&paths) {
        written.push((flag.to_string(), std::fs::read(path).unwrap_or_default()));
    }
    written
}

/// Every output with every thread count equals `--threads 1`'s; returns the latter.
fn same_as_one_thread(capture: &[&Path], extra: &[&str]) -> Vec<(String, Vec<u8>)> {
    let one = outputs(capture, "1", extra);
    for threads in THREADS {
        let many = outputs(capture, threads, extra);
        for ((what, expected), (_, got)) in one.iter().zip(&many) {
            assert!(
                expected == got,
                "{capture:?} {extra:?}: {what} with --threads {threads} differs from --threads 1:\n\
                 --- 1 ---\n{}\n--- {threads} ---\n{}",
                String::from_utf8_lossy(expected),
                String::from_utf8_lossy(got)
            );
        }
    }
    one
}

fn files_in(dir: &Path, extensions: &[&str]) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            let name = path.file_name().unwrap().to_str().unwrap();
            extensions.iter().any(|e| name.ends_with(e))
        })
        .collect();
    files.sort();
    files
}

#[test]
fn recorded_and_built_captures_come_out_the_same() {
    let repo = common::repo();
    let mut captures = files_in(&repo.join("captures"), &[".pcap"]);
    captures.extend(files_in(&repo.join("tests/built"), &[".pcap", ".pcapng"]));
    captures.extend(files_in(&repo.join("tests/inputs"), &[".pcap", ".pcapng"]));
    assert!(captures.len() > 30, "{} captures", captures.len());
    for capture in &captures {
        same_as_one_thread(&[capture], &[]);
    }
}

#[test]
fn the_corpus_comes_out_the_same() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let mut captures = Vec::new();
    for suite in std::fs::read_dir(&corpus).unwrap() {
        let suite = suite.unwrap().path();
        if suite.is_dir() {
            captures.extend(files_in(&suite, &[".pcap", ".pcapng", ".gz"]));
        }
    }
    assert!(captures.len() > 50, "{} corpus captures", captures.len());
    for capture in &captures {
        same_as_one_thread(&[capture], &[]);
    }
}

fn client(n: u16) -> Endpoint {
    Endpoint {
        mac: [2, 0, 0, 0, 0, 2],
        ip: [10, 1, (n >> 8) as u8, n as u8],
        port: 20_000 + n,
    }
}

fn server(n: u16) -> Endpoint {
    Endpoint {
        mac: [2, 0, 0, 0, 0, 1],
        ip: [10, 2, 0, n as u8],
        port: 80,
    }
}

const GET: &[u8] = b"GET /x HTTP/1.1\r\nHost: s\r\n\r\n";

/// A response with `header` (none if empty).
fn response(header: &str) -> Vec<u8> {
    let header = if header.is_empty() {
        String::new()
    } else {
        format!("{header}\r\n")
    };
    format!("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n{header}\r\nhello").into_bytes()
}

/// `clients` connections at once, spread over the shards, through every place they must
/// agree.
fn agreement_capture(clients: u16) -> Conv {
    let mut c = Conv::new().spaced_us(50);
    // Each connection's next sequence numbers, to come back to it later.
    let mut next = vec![(0u32, 0u32); clients as usize];
    let resume = |c: &mut Conv, n: u16, next: &[(u32, u32)]| {
        let (client_next, server_next) = next[n as usize];
        c.connection(client(n), server(n % 7))
            .mid_stream(client_next, server_next);
    };
    // Everyone opens and makes a request, interleaved; one server advertises a long
    // timeout, which holds back idle eviction on every shard.
    for n in 0..clients {
        c.connection(client(n), server(n % 7))
            .handshake(1000 + u32::from(n), 9000);
        let advert = if n == 3 {
            "Keep-Alive: timeout=400, max=100"
        } else {
            "Keep-Alive: timeout=5, max=100"
        };
        c.send(C, GET).send(S, &response(advert));
        next[n as usize] = (c.next(C), c.next(S));
    }
    // A minute in, a third close, a third are reused, a third stay idle.
    c.wait_ms(60_000);
    for n in 0..clients {
        resume(&mut c, n, &next);
        match n % 3 {
            0 => {
                c.close_by(if n % 2 == 0 { C } else { S });
            }
            1 => {
                c.send(C, GET).send(S, &response("Keep-Alive: timeout=5"));
            }
            _ => {}
        }
        next[n as usize] = (c.next(C), c.next(S));
    }
    // Late ACKs of the closed ones, past the linger time.
    c.wait_ms(10_000);
    for n in (0..clients).step_by(6) {
        resume(&mut c, n, &next);
        c.ack(C);
    }
    // 500 s idle: beyond the default 300 s, within twice the 400 s advertised.
    c.wait_ms(500_000);
    for n in (1..clients).step_by(3) {
        resume(&mut c, n, &next);
        c.send(C, GET).send(S, &response(""));
        next[n as usize] = (c.next(C), c.next(S));
    }
    // 900 s more: past 800 s, the idle ones are evicted; some come back afterwards with
    // their old numbers (continued), others' 4-tuples are reused by new connections.
    c.wait_ms(900_000);
    for n in (2..clients).step_by(3) {
        resume(&mut c, n, &next);
        if n % 2 == 0 {
            c.send(C, GET).send(S, &response("")).rst(S);
        } else {
            c.connection(client(n), server(n % 7))
                .handshake(50_000 + u32::from(n), 70_000)
                .send(C, GET)
                .send(S, &response("Connection: close"))
                .close_by(S);
        }
    }
    // Pipelined requests on a few, left open at the end.
    for n in (1..clients).step_by(9) {
        resume(&mut c, n, &next);
        c.send(C, &[GET, GET, GET].concat())
            .send(S, &[response(""), response(""), response("")].concat());
    }
    c
}

#[test]
fn shards_agree_on_numbers_sweeps_and_the_end() {
    let capture = agreement_capture(120).write("agreement");
    let one = same_as_one_thread(&[&capture], &[]);
    // The capture does reach every place the shards must agree on.
    let csv = String::from_utf8(one.iter().find(|(w, _)| w == "--csv").unwrap().1.clone()).unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert!(rows.len() > 150, "{} rows", rows.len());
    for word in [
        "evicted",
        "continued",
        "server-rst",
        "client-fin",
        "server-fin",
    ] {
        assert!(csv.contains(word), "no row says {word}");
    }
    // Not evicted after 500 s idle: the 400 s advert seen on one shard held every shard
    // back (twice it, 800 s, is the eviction time), so the reused connection is one row.
    let table = Table::read(&TempPath::with("agreement.csv", csv.as_bytes()));
    let reused: Vec<usize> = (0..table.len())
        .filter(|&row| table.column(row, "client") == "10.1.0.4:20004")
        .collect();
    assert_eq!(reused.len(), 1, "one row for the connection idle 500 s");
    assert_eq!(table.column(reused[0], "requests"), "3");
    assert_eq!(
        table.column(reused[0], "closer"),
        "evicted",
        "after the 900 s gap"
    );
}

#[test]
fn a_large_generated_capture_comes_out_the_same() {
    let capture = agreement_capture(12_000);
    assert!(
        capture.pcap().len() > 10 << 20,
        "{} bytes",
        capture.pcap().len()
    );
    let one = same_as_one_thread(&[&capture.write("large")], &[]);
    let csv = &one.iter().find(|(w, _)| w == "--csv").unwrap().1;
    assert!(csv.iter().filter(|&&b| b == b'\n').count() > 16_000);
}

#[test]
fn several_files_compressed_files_and_a_count_come_out_the_same() {
    let whole = agreement_capture(120);
    let first = whole.write("first");
    let recorded = common::recorded("race-nginx.pcap");
    same_as_one_thread(&[&first, &recorded], &[]);
    // Compressed input is read (and inflated ahead) into the same shared buffers.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, whole.pcap()).unwrap();
    let compressed = TempPath::with("agreement.pcap.gz", &gz.finish().unwrap());
    let from_gz = same_as_one_thread(&[&compressed], &[]);
    let plain = outputs(&[&first], "1", &[]);
    assert_eq!(
        from_gz.iter().find(|(w, _)| w == "--csv"),
        plain.iter().find(|(w, _)| w == "--csv"),
        "gzip changes nothing"
    );
    for count in ["1", "700", "2049"] {
        same_as_one_thread(&[&first], &["-c", count]);
    }
    same_as_one_thread(&[&first], &["tcp port 80 and host 10.2.0.3"]);
}

#[test]
fn over_the_memory_budget_every_connection_still_gets_a_row() {
    // Past the budget which connections leave early depends on the shards; none is lost.
    let mut c = Conv::new().spaced_us(20);
    for n in 0..30_000u16 {
        c.connection(client(n), server(n % 5))
            .handshake(1000, 9000)
            .send(C, GET)
            .send(S, &response(""));
    }
    let capture = c.write("budget");
    let rows = |threads: &str| {
        let csv = TempPath::new("budget.csv");
        let output = kascope(&[
            capture.to_str().unwrap(),
            "-q",
            "--max-memory",
            "8MiB",
            "--threads",
            threads,
            "--csv",
            csv.arg(),
        ]);
        assert!(output.status.success(), "{}", stderr(&output));
        let text = std::fs::read_to_string(&csv).unwrap();
        let mut streams: Vec<u64> = text
            .lines()
            .skip(1)
            .map(|line| line.split(',').next().unwrap().parse().unwrap())
            .collect();
        streams.sort_unstable();
        (text.contains("memory-budget"), streams)
    };
    let (shed_one, one) = rows("1");
    let (shed_four, four) = rows("4");
    assert!(shed_one && shed_four, "the budget is reached");
    assert_eq!(one.len(), 30_000);
    assert_eq!(one, four, "the same streams, each once");
}

#[test]
fn standard_input_comes_out_the_same() {
    // A pipe is read ahead like a file.
    let capture = agreement_capture(3000).write("stdin");
    let size = std::fs::metadata(&capture).unwrap().len();
    assert!(size > 2 << 20, "{size} bytes: several pieces read ahead");
    let run = |threads: &str| {
        let csv = TempPath::new("stdin.csv");
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_kascope"))
            .args(["-", "--wide", "--csv", csv.arg(), "--threads", threads])
            .stdin(std::fs::File::open(&capture).unwrap())
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
        (output.stdout, std::fs::read(&csv).unwrap())
    };
    let one = run("1");
    assert!(one.1.len() > 10_000, "{} bytes of CSV", one.1.len());
    for threads in THREADS {
        assert!(
            run(threads) == one,
            "--threads {threads} from standard input"
        );
    }
}
