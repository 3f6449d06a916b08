//! Helpers shared by the integration tests: run the library over a capture, read tshark
//! oracle CSVs (the format of `../shared/corpus/oracle` and `captures/*.streams.csv`), and
//! compare the two. `binary` runs the kascope binary; `pcap` builds capture files.
#![allow(dead_code)]

pub mod binary;
pub mod lab;
pub mod pcap;
pub mod sql;
pub mod tunnel;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use kascope::driver::{self, Limits, Unobserved};
use kascope::report::{AgentRecord, ClientRecord, Report, RunEnd, ServerRecord, Sink, Totals};
use kascope::source::FileSource;
use kascope::verdict::Verdicts;
use kascope::{Analyzer, Config, ConnectionRecord, FrameCounts, TransactionRecord};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A capture recorded from real servers, in `captures/` (`name` with its extension).
pub fn recorded(name: &str) -> PathBuf {
    repo().join("captures").join(name)
}

/// Every capture in `captures/`: its name (without `.pcap`) and path, sorted by name.
pub fn recorded_captures() -> Vec<(String, PathBuf)> {
    let mut captures: Vec<(String, PathBuf)> = std::fs::read_dir(repo().join("captures"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "pcap"))
        .map(|path| {
            (
                path.file_stem().unwrap().to_str().unwrap().to_string(),
                path,
            )
        })
        .collect();
    captures.sort();
    captures
}

/// The shared public corpus, or `None` (with a note) when this clone has none. Under CI its
/// absence is a failure, so a missing corpus can never make the suite pass silently.
pub fn corpus() -> Option<PathBuf> {
    let dir = repo().join("../shared/corpus");
    if dir.join("MANIFEST.md").exists() {
        return Some(dir);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "the shared corpus is missing at {} (required under CI=true)",
            dir.display()
        );
    }
    eprintln!("note: {} is absent; corpus tests skipped", dir.display());
    None
}

pub struct Analysis {
    pub connections: Vec<ConnectionRecord>,
    pub transactions: Vec<TransactionRecord>,
    /// The per-server and per-client rows the report ended with.
    pub servers: Vec<ServerRecord>,
    pub clients: Vec<ClientRecord>,
    pub agents: Vec<AgentRecord>,
    pub warnings: Vec<String>,
    /// What happened to the frames (skipped, tunnelled, damaged).
    pub counts: FrameCounts,
    /// The summary's totals.
    pub totals: Totals,
}

/// The verdicts of a row that has them: every row with both directions captured.
pub trait Judged {
    fn judged(&self) -> &Verdicts;
}

impl Judged for ConnectionRecord {
    fn judged(&self) -> &Verdicts {
        self.verdicts
            .as_ref()
            .expect("a row with both directions has verdicts")
    }
}

/// The single connection of an analysis.
pub fn only(analysis: &Analysis) -> &ConnectionRecord {
    assert_eq!(
        analysis.connections.len(),
        1,
        "one connection expected: {:#?}",
        analysis.connections
    );
    &analysis.connections[0]
}

pub fn analyze(path: &Path) -> Analysis {
    analyze_with(path, Config::default())
}

/// Everything the sinks were given, shared with the test that reads it afterwards.
#[derive(Default)]
struct Collected {
    connections: Vec<ConnectionRecord>,
    transactions: Vec<TransactionRecord>,
    servers: Vec<ServerRecord>,
    clients: Vec<ClientRecord>,
    agents: Vec<AgentRecord>,
}

struct Collect(Rc<RefCell<Collected>>);

impl Sink for Collect {
    fn connection(&mut self, record: &ConnectionRecord) -> std::io::Result<()> {
        self.0.borrow_mut().connections.push(record.clone());
        Ok(())
    }

    fn transaction(&mut self, record: &TransactionRecord) -> std::io::Result<()> {
        self.0.borrow_mut().transactions.push(record.clone());
        Ok(())
    }

    fn wants_transactions(&self) -> bool {
        true
    }

    fn finish(&mut self, end: &RunEnd<'_>) -> std::io::Result<()> {
        let mut collected = self.0.borrow_mut();
        collected.servers = end.servers.to_vec();
        collected.clients = end.clients.to_vec();
        collected.agents = end.agents.to_vec();
        Ok(())
    }
}

/// Runs the library over a capture as the binary does (driver, analyzer, report).
pub fn analyze_with(path: &Path, config: Config) -> Analysis {
    let source = FileSource::open(vec![path.to_path_buf()], None)
        .unwrap_or_else(|err| panic!("cannot open {}: {err}", path.display()));
    run_source(source, config, &path.display().to_string()).0
}

/// CPU time this thread has run: the library's clock, which must be readable here.
pub fn thread_cpu_time() -> Duration {
    kascope::driver::thread_cpu_time().expect("clock_gettime(CLOCK_THREAD_CPUTIME_ID)")
}

/// Runs the library over a capture held in memory; also says how much CPU time the
/// analysis took on this thread (reading included, building the input not).
pub fn analyze_bytes(bytes: &[u8], config: Config) -> (Analysis, Duration) {
    let input = Box::new(std::io::Cursor::new(bytes.to_vec()));
    let source = FileSource::from_reader("built capture", input, None)
        .unwrap_or_else(|err| panic!("cannot open the built capture: {err}"));
    run_source(source, config, "the built capture")
}

fn run_source(mut source: FileSource, config: Config, name: &str) -> (Analysis, Duration) {
    let started = thread_cpu_time();
    let collected = Rc::new(RefCell::new(Collected::default()));
    let mut report = Report::new(vec![Box::new(Collect(Rc::clone(&collected)))]);
    let mut analyzer = Analyzer::new(Config {
        transactions: true,
        transaction_text: report.wants_transactions(),
        ..config
    });
    let stats = driver::run(
        &mut source,
        &mut analyzer,
        &mut report,
        &Limits::default(),
        &mut Unobserved,
    )
    .unwrap_or_else(|err| panic!("reading {name}: {err}"));
    report
        .finish(analyzer.counts())
        .expect("the collecting sink cannot fail");
    let took = thread_cpu_time() - started;
    let totals = report.totals().clone();
    drop(report);
    let Collected {
        mut connections,
        transactions,
        servers,
        clients,
        agents,
    } = Rc::try_unwrap(collected)
        .map_err(|_| "the report was dropped")
        .unwrap()
        .into_inner();
    connections.sort_by_key(|r| r.stream);
    let analysis = Analysis {
        connections,
        transactions,
        servers,
        clients,
        agents,
        warnings: stats.warnings,
        counts: analyzer.counts().clone(),
        totals,
    };
    (analysis, took)
}

/// One row of a tshark oracle CSV, as strings by column name.
pub type OracleRow = BTreeMap<String, String>;

pub fn read_oracle(path: &Path) -> Vec<OracleRow> {
    let table = binary::Table::read(path);
    table
        .rows
        .iter()
        .map(|row| {
            table
                .headers
                .iter()
                .zip(row.iter())
                .map(|(h, v)| (h.clone(), v.to_string()))
                .collect()
        })
        .collect()
}

/// The facts compared with tshark, per `tcp.stream`. Rows that share a stream number (late
/// packets after a connection was written out) are added together, as tshark sees one stream.
pub fn kascope_facts(
    connections: &[ConnectionRecord],
) -> BTreeMap<u64, BTreeMap<&'static str, String>> {
    let mut by_stream: BTreeMap<u64, BTreeMap<&'static str, String>> = BTreeMap::new();
    for r in connections {
        let entry = by_stream.entry(r.stream).or_default();
        let add = |entry: &mut BTreeMap<&'static str, String>, key: &'static str, value: u64| {
            let old: u64 = entry.get(key).map_or(0, |v| v.parse().unwrap());
            entry.insert(key, (old + value).to_string());
        };
        entry
            .entry("client")
            .or_insert_with(|| r.client.to_string());
        entry
            .entry("server")
            .or_insert_with(|| r.server.to_string());
        // A direction never captured has nothing tshark could count either.
        add(entry, "requests", r.requests.unwrap_or(0).into());
        add(entry, "responses", r.responses.unwrap_or(0).into());
        add(entry, "fin_client", r.fin_client.into());
        add(entry, "fin_server", r.fin_server.into());
        add(entry, "rst_client", r.rst_client.into());
        add(entry, "rst_server", r.rst_server.into());
        let depth: u64 = entry
            .get("pipeline_depth")
            .map_or(0, |v| v.parse().unwrap());
        entry.insert(
            "pipeline_depth",
            depth.max(r.pipeline_depth.unwrap_or(0).into()).to_string(),
        );
    }
    by_stream
}

/// Oracle column for each compared kascope fact.
pub const COMPARED: [(&str, &str); 9] = [
    ("client", "client"),
    ("server", "server"),
    ("requests", "n_requests"),
    ("responses", "n_responses"),
    ("fin_client", "fin_client"),
    ("fin_server", "fin_server"),
    ("rst_client", "rst_client"),
    ("rst_server", "rst_server"),
    ("pipeline_depth", "max_outstanding"),
];

/// A place where kascope and tshark disagree on purpose: kascope's value is asserted too.
pub struct Disagreement {
    pub capture: &'static str,
    /// `None`: every stream of the capture where the two differ on this field.
    pub stream: Option<u64>,
    pub field: &'static str,
    pub kascope: &'static str,
    pub why: &'static str,
}

/// Compares every oracle row with kascope's facts; returns the mismatches not explained by
/// `disagreements` (and explained ones where kascope's value is not the documented one).
pub fn compare(
    capture: &str,
    oracle: &[OracleRow],
    connections: &[ConnectionRecord],
    disagreements: &[Disagreement],
) -> Vec<String> {
    let facts = kascope_facts(connections);
    let mut problems = Vec::new();
    if facts.len() != oracle.len() {
        problems.push(format!(
            "{capture}: {} streams, tshark has {}",
            facts.len(),
            oracle.len()
        ));
    }
    for row in oracle {
        let stream: u64 = row["tcp_stream"].parse().expect("tcp_stream");
        let Some(mine) = facts.get(&stream) else {
            problems.push(format!("{capture}: stream {stream} missing"));
            continue;
        };
        for (field, column) in COMPARED {
            let expected = row[column].as_str();
            let actual = mine[field].as_str();
            let documented = disagreements.iter().find(|d| {
                d.capture == capture && d.field == field && d.stream.is_none_or(|s| s == stream)
            });
            match documented {
                Some(d) if d.stream.is_none() && expected == actual => {}
                Some(d) if d.kascope != actual => problems.push(format!(
                    "{capture} stream {stream} {field}: kascope {actual}, documented {} (tshark {expected})",
                    d.kascope
                )),
                Some(_) => {}
                None if expected != actual => problems.push(format!(
                    "{capture} stream {stream} {field}: kascope {actual}, tshark {expected}"
                )),
                None => {}
            }
        }
    }
    problems
}

/// Nanoseconds as seconds, for comparing durations with a tolerance.
pub fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}
