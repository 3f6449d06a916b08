//! Parquet output, read back by engines nobody here wrote (DuckDB, Spark, through
//! `tests/sql/check.py`): the same rows as the CSVs, as typed columns; and the many-sensors
//! recipe of docs/scale.md: `sql/servers.sql` over one shard per capture file equals
//! kascope's own per-server table over all the captures read together.

mod common;

use std::path::{Path, PathBuf};

use common::binary::{Table, kascope, stderr};
use common::pcap::{Conv, Side};
use common::sql::{TempDir, check};
use common::{corpus, repo};

fn files_under(dir: &Path, found: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|err| panic!("{}: {err}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            files_under(&path, found);
        } else if [".pcap", ".pcapng", ".pcap.gz"]
            .iter()
            .any(|ext| name.ends_with(ext))
        {
            found.push(path);
        }
    }
}

/// Every capture here: the lab recordings and, when present, the public corpus.
fn captures() -> Vec<PathBuf> {
    let mut files = Vec::new();
    files_under(&repo().join("captures"), &mut files);
    if let Some(dir) = corpus() {
        files_under(&dir, &mut files);
    }
    files
}

fn arg(path: &Path) -> &str {
    path.to_str().expect("UTF-8 paths")
}

fn run(args: &[&str]) {
    let output = kascope(args);
    assert!(
        output.status.success(),
        "kascope {args:?}: {}",
        stderr(&output)
    );
}

/// Each Parquet file read back by DuckDB is its CSV: same columns, types, rows, sums.
fn assert_parquet_is_csv(dir: &TempDir, pairs: &[(&str, &str)]) {
    for (csv, parquet) in pairs {
        let rows = Table::read(&dir.join(csv)).len();
        let Some(summary) = check(&["roundtrip", &dir.glob(csv), &dir.glob(parquet)]) else {
            return;
        };
        assert!(
            summary.starts_with(&format!("roundtrip: {rows} rows x ")),
            "{parquet}: {summary}"
        );
    }
}

#[test]
fn parquet_holds_the_rows_of_the_csv_as_typed_columns() {
    let dir = TempDir::new("parquet-roundtrip");
    let files = captures();
    let mut args: Vec<&str> = vec!["-q"];
    args.extend(files.iter().map(|f| arg(f)));
    let outputs = [
        ("--csv", "c.csv"),
        ("--transactions-csv", "t.csv"),
        ("--servers-csv", "s.csv"),
        ("--parquet", "c.parquet"),
        ("--transactions-parquet", "t.parquet"),
        ("--servers-parquet", "s.parquet"),
    ];
    let paths: Vec<String> = outputs.iter().map(|(_, name)| dir.glob(name)).collect();
    for ((flag, _), path) in outputs.iter().zip(&paths) {
        args.extend([*flag, path.as_str()]);
    }
    run(&args);
    assert!(Table::read(&dir.join("t.csv")).len() > 20);
    assert_parquet_is_csv(
        &dir,
        &[
            ("c.csv", "c.parquet"),
            ("t.csv", "t.parquet"),
            ("s.csv", "s.parquet"),
        ],
    );
}

#[test]
fn files_without_rows_still_have_every_column() {
    // One connection that never carried HTTP: no transactions, no servers.
    let mut conv = Conv::new();
    conv.handshake(1000, 5000).close_by(Side::Client);
    let pcap = conv.write("no-http");
    let http = repo().join("captures/pipeline-5.pcap");
    let dir = TempDir::new("parquet-empty");
    for (input, name) in [(pcap.arg(), "empty"), (arg(&http), "like")] {
        let mut args = vec![input.to_string(), "-q".to_string()];
        for (flag, file) in [
            ("--transactions-parquet", "t.parquet"),
            ("--servers-parquet", "s.parquet"),
            ("--transactions-csv", "t.csv"),
            ("--servers-csv", "s.csv"),
        ] {
            args.extend([flag.to_string(), dir.glob(&format!("{name}-{file}"))]);
        }
        run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    }
    for kind in ["t", "s"] {
        let empty = dir.glob(&format!("empty-{kind}.parquet"));
        let like = dir.glob(&format!("like-{kind}.parquet"));
        if let Some(summary) = check(&["schema", &empty, &like]) {
            assert!(summary.starts_with("schema: 0 rows; "), "{summary}");
        }
        // The CSV without rows names its columns: a header line, the Parquet file's columns.
        let csv = dir.glob(&format!("empty-{kind}.csv"));
        let text = std::fs::read_to_string(&csv).unwrap();
        assert_eq!(text.lines().count(), 1, "{csv}: {text}");
        let like_csv = std::fs::read_to_string(dir.glob(&format!("like-{kind}.csv"))).unwrap();
        assert_eq!(text.lines().next(), like_csv.lines().next(), "{csv}");
        if let Some(summary) = check(&["roundtrip", &csv, &empty]) {
            assert!(summary.starts_with("roundtrip: 0 rows x "), "{summary}");
        }
    }
}

/// Captures that hold the same connections as another one in the corpus (traces derived
/// from one session). Read together, such a connection is one connection; as shards, one
/// per file — docs/scale.md says so. The first of each group is kept.
const SAME_TRAFFIC_AS_ANOTHER: [&str; 4] = [
    "zeek/http__get-without-fins.pcap",
    "zeek/http__get_nosyn.pcap",
    "zeek/tcp__handshake-reorder.pcap",
    "zeek/tcp__missing-syn.pcap",
];

/// One connection shard per capture file (as each sensor would write), and kascope's own
/// per-server table over all of them read together.
fn shards(dir: &TempDir) -> usize {
    let files: Vec<PathBuf> = captures()
        .into_iter()
        .filter(|f| !SAME_TRAFFIC_AS_ANOTHER.iter().any(|s| f.ends_with(s)))
        .collect();
    std::fs::create_dir(dir.join("shards")).unwrap();
    for (i, file) in files.iter().enumerate() {
        let shard = dir.join(&format!("shards/{i:03}.parquet"));
        run(&[arg(file), "-q", "--parquet", arg(&shard)]);
    }
    let servers = dir.glob("servers.csv");
    let mut args: Vec<&str> = files.iter().map(|f| arg(f)).collect();
    args.extend(["-q", "--servers-csv", &servers]);
    run(&args);
    files.len()
}

fn assert_servers_sql(engine: &str) {
    let dir = TempDir::new(&format!("parquet-servers-{engine}"));
    let shards = shards(&dir);
    let servers = Table::read(&dir.join("servers.csv"));
    assert!(servers.len() >= 5, "{} servers", servers.len());
    let Some(summary) = check(&[
        "servers",
        engine,
        &dir.glob("shards/*.parquet"),
        &dir.glob("servers.csv"),
    ]) else {
        return;
    };
    assert!(
        summary.starts_with(&format!(
            "servers: {engine} gives kascope's {} server rows",
            servers.len()
        )) && summary.ends_with(&format!("over {shards} shards")),
        "{summary}"
    );
    // The recipe's table: connections, requests, reuse, races, verdicts and their counts.
    let not_computed = summary
        .split("(not computed: ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("{summary}"));
    for column in [
        "server",
        "connections",
        "requests",
        "reuse_mean",
        "reuse_max",
        "pipelined_connections",
        "idle_close_median_s",
        "max_honoured",
        "max_exceeded",
        "timeout_closed_early",
        "races",
        "unannounced_closes",
        "violations",
        "verdict",
    ] {
        assert!(
            !not_computed.split(", ").any(|c| c == column),
            "{column} is not computed: {summary}"
        );
    }
}

#[test]
fn servers_sql_on_duckdb_over_shards_equals_kascope_over_all_captures() {
    assert_servers_sql("duckdb");
}

#[test]
fn servers_sql_on_spark_over_shards_equals_kascope_over_all_captures() {
    assert_servers_sql("spark");
}

#[test]
fn rotation_is_for_live_parquet_files() {
    let pcap = repo().join("captures/pipeline-5.pcap");
    for (args, message) in [
        (vec!["--rotate", "10s"], "--rotate is for live capture"),
        (
            vec!["-i", "lo", "--rotate", "10s"],
            "--rotate needs --parquet",
        ),
        (
            vec!["-i", "lo", "--rotate", "500ms", "--parquet", "x.parquet"],
            "for '--rotate <TIME>': too small: at least 1s",
        ),
    ] {
        let mut all = args.clone();
        if !args.contains(&"-i") {
            all.insert(0, arg(&pcap));
        }
        let output = kascope(&all);
        assert_eq!(output.status.code(), Some(2), "{all:?}");
        assert!(
            stderr(&output).contains(message),
            "{all:?}: {}",
            stderr(&output)
        );
    }
}
