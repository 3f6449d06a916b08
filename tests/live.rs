//! Live capture against real traffic: two network namespaces joined by a veth pair (MTU
//! 1500), nginx in one, curl and the raw-socket clients of `captures/clients` in the other,
//! kascope capturing on the server-side veth while tcpdump records the same traffic.
//!
//! These need root (CI runs as root). Without it they say so and pass, except under
//! `CI=true`, where missing privileges fail the run. Namespaces and processes are removed by
//! a guard even when an assertion fails.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::binary::{KASCOPE, Table, kascope, stderr};
use common::lab::{SAME_TRAFFIC_FACTS, SERVER_IP, nginx_lab, privileged, signal};

/// Per client address: the facts live and offline analysis must agree on.
fn rows(path: &Path) -> BTreeMap<String, Vec<String>> {
    Table::read(path).by_client(&SAME_TRAFFIC_FACTS)
}

#[test]
fn live_capture_matches_tcpdump_of_the_same_traffic() {
    let Some(mut lab) = nginx_lab("live_capture_matches_tcpdump_of_the_same_traffic", "l") else {
        return;
    };
    let pcap = lab.dir.join("same.pcap");
    let live_csv = lab.dir.join("live.csv");
    let offline_csv = lab.dir.join("offline.csv");
    let interface = lab.server_if.clone();
    let tcpdump = lab.start_in_server(
        &[
            "tcpdump",
            "-i",
            &interface,
            "-s",
            "0",
            "--immediate-mode",
            "-U",
            "-w",
            pcap.to_str().unwrap(),
            "tcp",
        ],
        "listening on",
    );
    // -w saves what kascope captured while it analyses it.
    let saved = lab.dir.join("saved.pcap");
    let capturing = lab.start_kascope(
        &live_csv,
        &["-w", saved.to_str().unwrap(), "--threads", "1"],
    );
    // Beside it, the same capture analysed by two threads besides the capturing one.
    let threaded_csv = lab.dir.join("threaded.csv");
    let threaded = lab.start_kascope(&threaded_csv, &["--threads", "3"]);

    lab.reuse_traffic();
    std::thread::sleep(Duration::from_millis(1500));

    for pid in [capturing, threaded] {
        signal(pid, "INT");
        assert_eq!(
            lab.wait_for(pid, Duration::from_secs(10)),
            Some(0),
            "kascope exit status after SIGINT"
        );
    }
    signal(tcpdump, "INT");
    lab.wait_for(tcpdump, Duration::from_secs(10));

    let offline = kascope(&[
        pcap.to_str().unwrap(),
        "-q",
        "--csv",
        offline_csv.to_str().unwrap(),
    ]);
    assert!(offline.status.success());
    let live = rows(&live_csv);
    let recorded = rows(&offline_csv);
    assert_eq!(live, recorded, "live and tcpdump-based analysis disagree");
    assert_eq!(rows(&threaded_csv), live, "live capture with --threads 3");
    assert_eq!(live.len(), 4, "connections: {live:#?}");
    let depths: Vec<&str> = live.values().map(|r| r[2].as_str()).collect();
    assert!(depths.contains(&"5"), "the pipelined connection: {live:#?}");
    let reused: Vec<&str> = live.values().map(|r| r[0].as_str()).collect();
    assert!(
        reused.contains(&"3"),
        "curl reused its connection: {live:#?}"
    );
    assert!(
        live.values()
            .any(|r| r[3] == "server-fin" && r[5] == "honoured"),
        "the idle connection closed by nginx at its timeout: {live:#?}"
    );

    // The file -w saved holds the packets tcpdump saw, and reads back to the same rows.
    assert_eq!(
        packet_count(&saved),
        packet_count(&pcap),
        "packets in kascope -w and tcpdump -w files"
    );
    let saved_csv = lab.dir.join("saved.csv");
    let reread = kascope(&[
        saved.to_str().unwrap(),
        "-q",
        "--csv",
        saved_csv.to_str().unwrap(),
    ]);
    assert!(reread.status.success(), "{}", stderr(&reread));
    assert_eq!(rows(&saved_csv), live, "the saved capture analysed offline");
}

/// Packets in a capture file, as tshark counts them.
fn packet_count(path: &Path) -> usize {
    let output = Command::new("tshark")
        .args([
            "-r",
            path.to_str().unwrap(),
            "-T",
            "fields",
            "-e",
            "frame.number",
        ])
        .output()
        .expect("tshark is installed by scripts/install-deps.sh");
    assert!(output.status.success(), "tshark -r {}", path.display());
    String::from_utf8_lossy(&output.stdout).lines().count()
}

#[test]
fn rows_written_before_sigkill_survive() {
    let Some(mut lab) = nginx_lab("rows_written_before_sigkill_survive", "k") else {
        return;
    };
    let csv_path = lab.dir.join("live.csv");
    let capturing = lab.start_kascope(&csv_path, &[]);
    for _ in 0..3 {
        assert!(lab.fetch_and_close("/tiny.txt"));
    }
    std::thread::sleep(Duration::from_millis(800));
    signal(capturing, "KILL");
    lab.wait_for(capturing, Duration::from_secs(5));
    let written = rows(&csv_path);
    assert_eq!(written.len(), 3, "rows: {written:#?}");
    for row in written.values() {
        assert_eq!((row[0].as_str(), row[1].as_str()), ("1", "1"));
    }
}

#[test]
fn live_parquet_rotates_into_closed_files_that_hold_the_whole_capture() {
    let test = "live_parquet_rotates_into_closed_files_that_hold_the_whole_capture";
    let Some(mut lab) = nginx_lab(test, "p") else {
        return;
    };
    let dir = lab.dir.clone();
    let path = |name: &str| dir.join(name).display().to_string();
    let (csv, tx_csv) = (path("live.csv"), path("tx.csv"));
    let (conns, tx) = (path("conns.parquet"), path("tx.parquet"));
    let interface = lab.server_if.clone();
    let capturing = lab.start_in_server(
        &[
            KASCOPE,
            "-i",
            &interface,
            "--no-progress",
            "--csv",
            &csv,
            "--transactions-csv",
            &tx_csv,
            "--parquet",
            &conns,
            "--transactions-parquet",
            &tx,
            "--rotate",
            "1s",
        ],
        "capturing on",
    );
    // Traffic spread over about four rotation periods: a reused connection (three requests)
    // and a one-request one every half second; nginx closes the idle ones after 2 s.
    let url = format!("http://{SERVER_IP}/tiny.txt");
    for _ in 0..8 {
        assert!(lab.client(&["curl", "-sf", "-o", "/dev/null", &url, &url, &url]));
        assert!(lab.fetch_and_close("/index.html"));
        std::thread::sleep(Duration::from_millis(500));
    }
    std::thread::sleep(Duration::from_millis(2500));
    signal(capturing, "INT");
    assert_eq!(lab.wait_for(capturing, Duration::from_secs(10)), Some(0));

    for (csv, prefix, least_rows) in [(&csv, "conns-", 16), (&tx_csv, "tx-", 32)] {
        let files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().to_string())
            .filter(|name| name.starts_with(prefix) && name.ends_with(".parquet"))
            .collect();
        assert!(files.len() >= 4, "{prefix}*.parquet: {files:?}");
        let rows = Table::read(Path::new(csv)).len();
        assert!(rows >= least_rows, "{csv}: {rows} rows");
        // Every closed file reads; together, in name (= time) order, they are the CSV.
        if let Some(summary) =
            common::sql::check(&["roundtrip", csv, &path(&format!("{prefix}*.parquet"))])
        {
            assert!(
                summary.starts_with(&format!("roundtrip: {rows} rows x "))
                    && summary.contains(&format!(" in {} file(s)", files.len())),
                "{summary}"
            );
        }
    }
}

#[test]
fn unprivileged_capture_says_what_is_missing() {
    if !privileged("unprivileged_capture_says_what_is_missing") {
        return;
    }
    let output = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            KASCOPE,
            "-i",
            "lo",
        ])
        .output()
        .expect("setpriv (util-linux)");
    let stderr = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert!(
        stderr.contains("CAP_NET_RAW") && stderr.contains("setcap"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn unknown_interface_lists_the_real_ones() {
    let output = kascope(&["-i", "nosuchif0"]);
    let stderr = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("nosuchif0") && stderr.contains("interfaces:") && stderr.contains("lo"),
        "{stderr}"
    );
}
