//! The command line as a user meets it: bad inputs give one clear line and exit code 2,
//! damaged files give results plus a warning, and the CSV columns are the documented ones.

mod common;

use std::process::{Command, Output};

use common::binary::{KASCOPE, Table, TempPath, kascope, stderr, stdout};
use common::{recorded, repo};

/// A recorded capture as a command-line argument.
fn capture(name: &str) -> String {
    recorded(name).display().to_string()
}

fn assert_fails_clearly(output: &Output, needle: &str) {
    assert_eq!(output.status.code(), Some(2), "stderr: {}", stderr(output));
    let text = stderr(output);
    assert_eq!(text.lines().count(), 1, "one line expected: {text}");
    assert!(text.contains(needle), "'{needle}' not in: {text}");
    assert!(!text.contains("panicked"));
}

#[test]
fn missing_file() {
    assert_fails_clearly(&kascope(&["/nonexistent/trace.pcap"]), "cannot open");
}

#[test]
fn garbage_is_not_a_capture() {
    let path = TempPath::with("garbage.pcap", &[0x42; 4096]);
    assert_fails_clearly(&kascope(&[path.arg()]), "not a readable pcap");
}

#[test]
fn empty_file() {
    let path = TempPath::with("empty.pcap", b"");
    assert_fails_clearly(&kascope(&[path.arg()]), "empty file");
}

#[test]
fn bad_filter_expression() {
    let output = kascope(&[&capture("pipeline-5.pcap"), "tcp", "prot", "80"]);
    assert_fails_clearly(&output, "bad filter expression");
}

#[test]
fn filter_selects_traffic() {
    let output = kascope(&[
        &capture("nginx-keepalive-curl.pcap"),
        "tcp",
        "port",
        "81",
        "-q",
    ]);
    assert!(output.status.success());
    let text = stdout(&output);
    assert!(text.starts_with("0 connections"), "{text}");
}

#[test]
fn truncated_last_record_gives_results_and_a_warning() {
    let whole = std::fs::read(recorded("pipeline-5.pcap")).unwrap();
    let path = TempPath::with("cut.pcap", &whole[..whole.len() - 40]);
    let output = kascope(&[path.arg(), "-q"]);
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    assert!(stderr(&output).contains("warning") && stderr(&output).contains("cut short"));
    let text = stdout(&output);
    assert!(
        text.starts_with("1 connections (1 HTTP), 5 requests, 5 responses"),
        "{text}"
    );
}

#[test]
fn standard_input_and_several_files() {
    let file = std::fs::File::open(recorded("pipeline-5.pcap")).unwrap();
    let output = Command::new(KASCOPE)
        .args(["-", "-q"])
        .stdin(file)
        .output()
        .unwrap();
    assert!(stdout(&output).starts_with("1 connections (1 HTTP), 5 requests"));
    let output = kascope(&[
        "-r",
        &capture("pipeline-5.pcap"),
        "-r",
        &capture("connection-close.pcap"),
        "-q",
    ]);
    assert!(stdout(&output).starts_with("3 connections (3 HTTP), 7 requests"));
}

#[test]
fn csv_columns_are_the_documented_ones() {
    let connections = TempPath::new("c.csv");
    let transactions = TempPath::new("t.csv");
    let json = TempPath::new("c.jsonl");
    let servers = TempPath::new("s.csv");
    let output = kascope(&[
        "--servers-csv",
        servers.arg(),
        &capture("pipeline-5-apache.pcap"),
        "-q",
        "--csv",
        connections.arg(),
        "--transactions-csv",
        transactions.arg(),
        "--json",
        json.arg(),
    ]);
    assert!(output.status.success());
    let doc = std::fs::read_to_string(repo().join("docs/csv.md")).unwrap();
    let connection_table = Table::read(&connections);
    for column in connection_table
        .headers
        .iter()
        .chain(Table::read(&transactions).headers.iter())
    {
        assert!(
            doc.contains(&format!("`{column}`")),
            "column {column} is not documented"
        );
    }
    assert_eq!(connection_table.len(), 1);
    assert_eq!(
        std::fs::read_to_string(&transactions)
            .unwrap()
            .lines()
            .count(),
        6
    );
    let line = std::fs::read_to_string(&json).unwrap();
    let value: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
    assert_eq!(value["requests"], 5);
    assert_eq!(value["closer"], "server-fin");
}

#[test]
fn fail_on_violation_sets_the_exit_status() {
    // Servers that kept their promises: exit 0 even with --fail-on.
    let kept = kascope(&[
        &capture("max-requests-apache.pcap"),
        "-q",
        "--fail-on",
        "violation",
    ]);
    assert_eq!(kept.status.code(), Some(0), "stderr: {}", stderr(&kept));
    let text = stdout(&kept);
    assert!(
        text.contains("10.201.0.1:8080") && text.contains("kept"),
        "{text}"
    );
}
