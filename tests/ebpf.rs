//! The eBPF capture path (`--ebpf`) against the libpcap one, both capturing the same veth at
//! the same time while real clients talk to a real nginx: they must report the same
//! connections, while `--ebpf` hands user space a small share of the payload.
//!
//! Needs root, as tests/live.rs (see `common::lab`), and a build with the `ebpf` feature;
//! without it, only that a build without it says so is checked.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::binary::{KASCOPE, Table, stderr};
use common::lab::{Lab, SAME_TRAFFIC_FACTS, privileged, sh, signal};
use common::repo;

/// Besides `SAME_TRAFFIC_FACTS`, what both paths see alike: they capture the same packets.
const ALSO_COMPARED: [&str; 7] = [
    "client_bytes",
    "server_bytes",
    "packets",
    "gaps",
    "retransmissions",
    "out_of_order",
    "flags",
];

/// (payload on the wire, payload that reached user space) summed over the connections that
/// carried more than `at_least` bytes.
fn payload_share(path: &Path, at_least: u64) -> (u64, u64) {
    let table = Table::read(path);
    let number = |row, name| table.column(row, name).parse::<u64>().unwrap();
    (0..table.len())
        .filter(|&row| number(row, "server_bytes") > at_least)
        .fold((0, 0), |(wire, captured), row| {
            (
                wire + number(row, "client_bytes") + number(row, "server_bytes"),
                captured + number(row, "captured_payload_bytes"),
            )
        })
}

/// Deterministic bytes that neither gzip nor anything else shrinks.
fn noise(length: usize, mut state: u64) -> Vec<u8> {
    (0..length)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 56) as u8
        })
        .collect()
}

const MIB: usize = 1 << 20;

#[test]
fn ebpf_and_libpcap_report_the_same_connections() {
    let test = "ebpf_and_libpcap_report_the_same_connections";
    if !cfg!(feature = "ebpf") || !privileged(test) {
        return;
    }
    let mut lab = Lab::new("e");
    lab.serve("big.bin", &noise(8 * MIB, 1));
    // Text nginx compresses on the fly: a chunked response (chunks of 12-70 KiB).
    let text: Vec<u8> = noise(1_200_000, 2)
        .iter()
        .map(|b| b"abcdefghijklmnopqrstuvwxyz0123456789 \n"[usize::from(*b) % 38])
        .collect();
    lab.serve("text.txt", &text);
    lab.start_nginx_with("gzip on; gzip_types text/plain; default_type text/plain;");

    let (ebpf_csv, pcap_csv) = (lab.dir.join("ebpf.csv"), lab.dir.join("pcap.csv"));
    let ebpf_err = lab.dir.join("ebpf.err");
    let interface = lab.server_if.clone();
    let capture = |csv: &Path, ebpf: bool| {
        let mut args = vec![KASCOPE, "-i", &interface, "--no-progress", "-q"];
        if ebpf {
            args.push("--ebpf");
        }
        let mut args: Vec<String> = args.into_iter().map(String::from).collect();
        args.extend(["--csv".into(), csv.display().to_string()]);
        args
    };
    let ebpf_args = capture(&ebpf_csv, true);
    let ebpf_args: Vec<&str> = ebpf_args.iter().map(String::as_str).collect();
    let ebpf = lab.start_in_server_logged(&ebpf_args, "capturing on", &ebpf_err);
    let pcap_args = capture(&pcap_csv, false);
    let pcap_args: Vec<&str> = pcap_args.iter().map(String::as_str).collect();
    let pcap = lab.start_in_server(&pcap_args, "capturing on");

    // Keep-alive reuse, Connection: close, a 5-deep pipeline, an idle close by nginx.
    lab.reuse_traffic();
    // MiB-sized Content-Length bodies, several per connection; chunked gzip ones.
    lab.curl(&["/big.bin"; 4], &[]);
    lab.curl(&["/text.txt"; 3], &["--compressed"]);
    // Two segments of a download lost on the way to the client (dropped at its veth's
    // ingress, after the captures on the server's side saw them): both captures see them
    // and, later, their retransmissions. (A drop at the server's egress would not do: TCP
    // takes a local drop as congestion and sends the segment again at once.)
    let dropper = lab.dir.join("drop.o");
    sh(&[
        "clang",
        "-O2",
        "-g",
        "-target",
        "bpf",
        "-I/usr/include/x86_64-linux-gnu",
        "-c",
        repo().join("tests/bpf/drop.bpf.c").to_str().unwrap(),
        "-o",
        dropper.to_str().unwrap(),
    ]);
    let tc = |args: &[&str]| {
        let mut all = vec!["ip", "netns", "exec", &lab.client_ns, "tc"];
        all.extend_from_slice(args);
        sh(&all);
    };
    let client_if = lab.client_if.clone();
    tc(&["qdisc", "add", "dev", &client_if, "clsact"]);
    tc(&[
        "filter",
        "add",
        "dev",
        &client_if,
        "ingress",
        "bpf",
        "da",
        "obj",
        dropper.to_str().unwrap(),
        "sec",
        "tc",
    ]);
    lab.curl(&["/big.bin"; 2], &[]);
    tc(&["qdisc", "del", "dev", &client_if, "clsact"]);
    std::thread::sleep(Duration::from_millis(1500));

    for pid in [ebpf, pcap] {
        signal(pid, "INT");
        assert_eq!(lab.wait_for(pid, Duration::from_secs(20)), Some(0));
    }
    let compared: Vec<&str> = SAME_TRAFFIC_FACTS
        .iter()
        .chain(&ALSO_COMPARED)
        .copied()
        .collect();
    let by_ebpf = Table::read(&ebpf_csv).by_client(&compared);
    let by_pcap = Table::read(&pcap_csv).by_client(&compared);
    assert_eq!(by_ebpf, by_pcap, "eBPF and libpcap disagree ({compared:?})");
    assert_eq!(by_ebpf.len(), 7, "{by_ebpf:#?}");
    let column = |name: &str| compared.iter().position(|c| *c == name).unwrap();
    let has = |name: &str, value: &str| by_ebpf.values().any(|r| r[column(name)] == value);
    assert!(has("pipeline_depth", "5"), "{by_ebpf:#?}");
    assert!(has("requests", "4"), "four downloads on one connection");
    assert!(
        by_ebpf
            .values()
            .any(|r| r[column("closer")] == "server-fin"
                && r[column("timeout_verdict")] == "honoured"),
        "the idle close: {by_ebpf:#?}"
    );
    assert!(
        by_ebpf
            .values()
            .any(|r| r[column("retransmissions")] != "0"),
        "the lost segments: {by_ebpf:#?}"
    );
    assert!(by_ebpf.values().all(|r| r[column("gaps")] == "0"));

    let (wire, shed) = payload_share(&ebpf_csv, 8 * MIB as u64);
    let (pcap_wire, kept) = payload_share(&pcap_csv, 8 * MIB as u64);
    assert_eq!(wire, pcap_wire);
    assert!(wire >= 6 * 8 * MIB as u64, "{wire}");
    let share = shed as f64 / wire as f64;
    eprintln!(
        "body-heavy connections: {wire} payload bytes on the wire; eBPF delivered {shed} ({:.2}%), libpcap {kept}",
        100.0 * share
    );
    assert!(
        share <= 0.10,
        "eBPF delivered {shed} of {wire} payload bytes"
    );
    assert!(
        kept as f64 >= 0.99 * wire as f64,
        "libpcap delivered {kept} of {wire}"
    );

    let summary = std::fs::read_to_string(&ebpf_err).unwrap();
    assert!(
        summary.contains("delivered to user space") && summary.contains("dropped by the kernel"),
        "{summary}"
    );
}

#[test]
fn ebpf_without_privileges_says_what_is_missing() {
    if !cfg!(feature = "ebpf") || !privileged("ebpf_without_privileges_says_what_is_missing") {
        return;
    }
    let run = |caps: &str| {
        Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                &format!("--inh-caps={caps}"),
                &format!("--ambient-caps={caps}"),
                KASCOPE,
                "--ebpf",
                "-i",
                "lo",
                "-q",
                "--duration",
                "0.5",
            ])
            .output()
            .expect("setpriv (util-linux)")
    };
    for (caps, missing) in [
        ("-all", "lacks CAP_NET_RAW and CAP_BPF ("),
        ("-all,+net_raw", "lacks CAP_BPF ("),
    ] {
        let output = run(caps);
        let stderr = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
        assert!(
            stderr.contains(missing) && stderr.contains("without --ebpf"),
            "{stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
    // These two are all it needs.
    let output = run("-all,+net_raw,+bpf");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[cfg(not(feature = "ebpf"))]
#[test]
fn a_build_without_the_ebpf_feature_says_so() {
    let output = common::binary::kascope(&["--ebpf", "-i", "lo"]);
    let stderr = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("built without the eBPF capture path") && stderr.contains("without --ebpf"),
        "{stderr}"
    );
}
