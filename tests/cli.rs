//! The command line as a user meets it: bad inputs give one clear line and exit code 2,
//! damaged files give results plus a warning, and the CSV columns are the documented ones.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn kascope(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kascope"))
        .args(args)
        .output()
        .expect("run kascope")
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kascope-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn capture(name: &str) -> String {
    repo().join("captures").join(name).display().to_string()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
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
    let path = temp_file("garbage.pcap", &[0x42; 4096]);
    assert_fails_clearly(&kascope(&[path.to_str().unwrap()]), "not a readable pcap");
}

#[test]
fn empty_file() {
    let path = temp_file("empty.pcap", b"");
    assert_fails_clearly(&kascope(&[path.to_str().unwrap()]), "empty file");
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
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.starts_with("0 connections"), "{text}");
}

#[test]
fn truncated_last_record_gives_results_and_a_warning() {
    let whole = std::fs::read(repo().join("captures/pipeline-5.pcap")).unwrap();
    let path = temp_file("cut.pcap", &whole[..whole.len() - 40]);
    let output = kascope(&[path.to_str().unwrap(), "-q"]);
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    assert!(stderr(&output).contains("warning") && stderr(&output).contains("cut short"));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.starts_with("1 connections (1 HTTP), 5 requests, 5 responses"),
        "{text}"
    );
}

#[test]
fn standard_input_and_several_files() {
    let file = std::fs::File::open(repo().join("captures/pipeline-5.pcap")).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_kascope"))
        .args(["-", "-q"])
        .stdin(file)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&output.stdout).starts_with("1 connections (1 HTTP), 5 requests")
    );
    let output = kascope(&[
        "-r",
        &capture("pipeline-5.pcap"),
        "-r",
        &capture("connection-close.pcap"),
        "-q",
    ]);
    assert!(
        String::from_utf8_lossy(&output.stdout).starts_with("3 connections (3 HTTP), 7 requests")
    );
}

fn header_of(path: &Path) -> Vec<String> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect()
}

#[test]
fn csv_columns_are_the_documented_ones() {
    let dir = std::env::temp_dir().join(format!("kascope-csv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let connections = dir.join("c.csv");
    let transactions = dir.join("t.csv");
    let json = dir.join("c.jsonl");
    let servers = dir.join("s.csv");
    let output = kascope(&[
        "--servers-csv",
        servers.to_str().unwrap(),
        &capture("pipeline-5-apache.pcap"),
        "-q",
        "--csv",
        connections.to_str().unwrap(),
        "--transactions-csv",
        transactions.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(output.status.success());
    let doc = std::fs::read_to_string(repo().join("docs/csv.md")).unwrap();
    for column in header_of(&connections)
        .iter()
        .chain(header_of(&transactions).iter())
    {
        assert!(
            doc.contains(&format!("`{column}`")),
            "column {column} is not documented"
        );
    }
    let rows: Vec<csv::StringRecord> = csv::Reader::from_path(&connections)
        .unwrap()
        .records()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows.len(), 1);
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
    let text = String::from_utf8_lossy(&kept.stdout);
    assert!(
        text.contains("10.201.0.1:8080") && text.contains("kept"),
        "{text}"
    );
}
