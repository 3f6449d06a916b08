//! Output: the terminal table and summary, CSV for spreadsheets, JSON lines for tools.
//!
//! Every writer takes records one at a time as connections end. The summary is an
//! aggregation kept as counters; the terminal table keeps at most a fixed number of rows.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use serde::Serialize;

use crate::FrameCounts;
use crate::analysis::{Closer, ConnectionRecord};
use crate::http::Protocol;

/// CSV rows of one record type, flushed after each row so a reader sees complete lines.
pub struct CsvOutput {
    writer: csv::Writer<BufWriter<File>>,
}

impl CsvOutput {
    pub fn create(path: &Path) -> io::Result<CsvOutput> {
        let file = File::create(path)?;
        Ok(CsvOutput {
            writer: csv::Writer::from_writer(BufWriter::new(file)),
        })
    }

    pub fn write<T: Serialize>(&mut self, record: &T) -> io::Result<()> {
        self.writer.serialize(record).map_err(io::Error::other)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }
}

/// One JSON object per line.
pub struct JsonLines {
    writer: BufWriter<File>,
}

impl JsonLines {
    pub fn create(path: &Path) -> io::Result<JsonLines> {
        Ok(JsonLines {
            writer: BufWriter::new(File::create(path)?),
        })
    }

    pub fn write<T: Serialize>(&mut self, record: &T) -> io::Result<()> {
        serde_json::to_writer(&mut self.writer, record).map_err(io::Error::other)?;
        self.writer.write_all(b"\n")
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }
}

/// Reuse-count buckets of the summary histogram, by upper bound.
const REUSE_BUCKETS: [(u32, &str); 8] = [
    (0, "0"),
    (1, "1"),
    (2, "2"),
    (5, "3-5"),
    (10, "6-10"),
    (100, "11-100"),
    (1000, "101-1000"),
    (u32::MAX, ">1000"),
];

/// Totals over all connections.
#[derive(Debug, Default)]
pub struct Summary {
    pub connections: u64,
    pub http_connections: u64,
    pub requests: u64,
    pub responses: u64,
    pub reuse_histogram: [u64; REUSE_BUCKETS.len()],
    pub pipelined_connections: u64,
    pub deepest_pipeline: u32,
    pub closers: BTreeMap<&'static str, u64>,
    pub protocols: BTreeMap<&'static str, u64>,
    pub flagged: BTreeMap<String, u64>,
}

impl Summary {
    pub fn add(&mut self, record: &ConnectionRecord) {
        self.connections += 1;
        if record.protocol == Protocol::Http {
            self.http_connections += 1;
            let bucket = REUSE_BUCKETS
                .iter()
                .position(|(bound, _)| record.requests <= *bound)
                .unwrap_or(REUSE_BUCKETS.len() - 1);
            self.reuse_histogram[bucket] += 1;
        }
        self.requests += u64::from(record.requests);
        self.responses += u64::from(record.responses);
        if record.pipeline_depth > 1 {
            self.pipelined_connections += 1;
        }
        self.deepest_pipeline = self.deepest_pipeline.max(record.pipeline_depth);
        *self.closers.entry(record.closer.name()).or_default() += 1;
        *self.protocols.entry(record.protocol.name()).or_default() += 1;
        for flag in record.flags.split(';').filter(|f| !f.is_empty()) {
            *self.flagged.entry(flag.to_string()).or_default() += 1;
        }
    }

    pub fn render(&self, counts: &FrameCounts) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} connections ({} HTTP), {} requests, {} responses; {} frames, {} TCP segments",
            self.connections,
            self.http_connections,
            self.requests,
            self.responses,
            counts.frames,
            counts.tcp_segments
        );
        if self.http_connections > 0 {
            let bars: Vec<String> = REUSE_BUCKETS
                .iter()
                .zip(self.reuse_histogram)
                .filter(|(_, n)| *n > 0)
                .map(|((_, label), n)| format!("{label}: {n}"))
                .collect();
            let _ = writeln!(out, "requests per HTTP connection: {}", bars.join(", "));
        }
        let _ = writeln!(
            out,
            "pipelined connections: {} (deepest pipeline: {})",
            self.pipelined_connections, self.deepest_pipeline
        );
        let join = |map: &BTreeMap<&str, u64>| {
            map.iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !self.closers.is_empty() {
            let _ = writeln!(out, "first to close: {}", join(&self.closers));
        }
        if !self.protocols.is_empty() {
            let _ = writeln!(out, "protocols: {}", join(&self.protocols));
        }
        if !self.flagged.is_empty() {
            let flagged: Vec<String> = self
                .flagged
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            let _ = writeln!(out, "flagged connections: {}", flagged.join(", "));
        }
        if counts.late_packets > 0 {
            let _ = writeln!(
                out,
                "late packets of connections already written out: {}",
                counts.late_packets
            );
        }
        if counts.shed_connections > 0 {
            let _ = writeln!(
                out,
                "memory budget reached: {} connections written out early (flag memory-budget); peak estimate {} MiB",
                counts.shed_connections,
                counts.peak_memory >> 20
            );
        }
        let skipped = [
            (counts.not_ip, "not IP"),
            (counts.not_tcp, "not TCP"),
            (counts.fragments, "IP fragments (not reassembled)"),
            (counts.truncated, "cut inside a header"),
            (counts.unsupported_link, "unsupported link type"),
        ];
        let skipped: Vec<String> = skipped
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| format!("{n} {what}"))
            .collect();
        if !skipped.is_empty() {
            let _ = writeln!(out, "frames skipped: {}", skipped.join(", "));
        }
        out
    }
}

/// The terminal table: rows kept up to a limit, printed in stream order.
pub struct Table {
    rows: Vec<ConnectionRecord>,
    limit: usize,
    omitted: u64,
}

impl Table {
    pub fn new(limit: usize) -> Table {
        Table {
            rows: Vec::new(),
            limit,
            omitted: 0,
        }
    }

    pub fn add(&mut self, record: &ConnectionRecord) {
        if self.rows.len() < self.limit {
            self.rows.push(record.clone());
        } else {
            self.omitted += 1;
        }
    }

    pub fn render(&mut self) -> String {
        self.rows.sort_by_key(|r| r.stream);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:>6} {:<45} {:>5} {:>5} {:>5} {:<13} {:>5} {:>9} {:<19} {:<9} {:<12} notes",
            "stream",
            "client -> server",
            "reqs",
            "resps",
            "depth",
            "closed by",
            "after",
            "idle-cls",
            "keep-alive",
            "max",
            "timeout"
        );
        for r in &self.rows {
            let endpoints = format!("{} -> {}", r.client, r.server);
            let after = r
                .close_after_request
                .map_or_else(|| "-".to_string(), |n| n.to_string());
            let idle = r
                .idle_before_close_s
                .map_or_else(|| "-".to_string(), |s| format!("{s:.3}s"));
            let _ = writeln!(
                out,
                "{:>6} {:<45} {:>5} {:>5} {:>5} {:<13} {:>5} {:>9} {:<19} {:<9} {:<12} {}",
                r.stream,
                endpoints,
                r.requests,
                r.responses,
                r.pipeline_depth,
                closer_label(r.closer),
                after,
                idle,
                keep_alive_label(r),
                r.max_verdict.name(),
                r.timeout_verdict.name(),
                notes(r)
            );
        }
        if self.omitted > 0 {
            let _ = writeln!(
                out,
                "... {} more connections not shown (raise --rows, or see --csv)",
                self.omitted
            );
        }
        out
    }
}

fn closer_label(closer: Closer) -> &'static str {
    closer.name()
}

/// The table's last column: what an operator should notice first, then the flags.
fn notes(r: &ConnectionRecord) -> String {
    let mut notes = Vec::new();
    if r.violation {
        notes.push("VIOLATION".to_string());
    }
    if let Some(position) = r.race_request {
        notes.push(format!("race@{position}"));
    }
    if r.unannounced_close {
        notes.push("unannounced-close".to_string());
    }
    if r.dropped_after_close > 0 {
        notes.push(format!("dropped-after-close:{}", r.dropped_after_close));
    }
    if !matches!(r.protocol, Protocol::Http | Protocol::None) {
        notes.push(r.protocol.name().to_string());
    }
    if !r.flags.is_empty() {
        notes.push(r.flags.clone());
    }
    notes.join(";")
}

fn keep_alive_label(r: &ConnectionRecord) -> String {
    let part = |timeout: Option<u32>, max: Option<u32>| match (timeout, max) {
        (None, None) => String::new(),
        (Some(t), None) => format!("t={t}"),
        (None, Some(m)) => format!("m={m}"),
        (Some(t), Some(m)) => format!("t={t},m={m}"),
    };
    let first = part(r.keep_alive_timeout_first, r.keep_alive_max_first);
    let last = part(r.keep_alive_timeout_last, r.keep_alive_max_last);
    match (first.is_empty(), first == last) {
        (true, _) => "-".to_string(),
        (false, true) => first,
        (false, false) => format!("{first}..{last}"),
    }
}

/// Distinct values kept per server for a column, so one server cannot grow without bound.
const MAX_DISTINCT: usize = 8;
/// Idle-close samples kept per server for the median.
const MAX_IDLE_SAMPLES: usize = 100_000;

/// What one server did across its connections.
#[derive(Debug, Default)]
struct ServerStats {
    software: Vec<String>,
    connections: u64,
    requests: u64,
    max_reuse: u32,
    pipelined_connections: u64,
    timeouts: Vec<u32>,
    maxes: Vec<u32>,
    idle_closes: Vec<f64>,
    max_verdicts: BTreeMap<&'static str, u64>,
    timeout_verdicts: BTreeMap<&'static str, u64>,
    races: u64,
    unannounced_closes: u64,
    violations: u64,
}

fn keep_distinct<T: PartialEq + Ord>(values: &mut Vec<T>, value: T) {
    if !values.contains(&value) && values.len() < MAX_DISTINCT {
        values.push(value);
        values.sort();
    }
}

/// One row per server (address:port), for `--servers` and `--servers-csv`.
#[derive(Debug, Clone, Serialize)]
pub struct ServerRecord {
    pub server: String,
    pub server_software: String,
    pub connections: u64,
    pub requests: u64,
    pub reuse_mean: f64,
    pub reuse_max: u32,
    pub pipelined_connections: u64,
    pub keep_alive_timeouts: String,
    pub keep_alive_max_first: String,
    pub idle_closes: usize,
    pub idle_close_min_s: Option<f64>,
    pub idle_close_median_s: Option<f64>,
    pub idle_close_max_s: Option<f64>,
    pub max_honoured: u64,
    pub max_exceeded: u64,
    pub max_untested: u64,
    pub timeout_honoured: u64,
    pub timeout_closed_early: u64,
    pub timeout_untested: u64,
    pub races: u64,
    pub unannounced_closes: u64,
    pub violations: u64,
}

/// Per-server aggregation over connection records.
#[derive(Debug, Default)]
pub struct Servers {
    by_server: BTreeMap<String, ServerStats>,
}

impl Servers {
    pub fn add(&mut self, record: &ConnectionRecord) {
        if record.protocol != Protocol::Http {
            return;
        }
        let stats = self.by_server.entry(record.server.clone()).or_default();
        stats.connections += 1;
        stats.requests += u64::from(record.requests);
        stats.max_reuse = stats.max_reuse.max(record.requests);
        if record.pipeline_depth > 1 {
            stats.pipelined_connections += 1;
        }
        if !record.server_software.is_empty() {
            keep_distinct(&mut stats.software, record.server_software.clone());
        }
        for timeout in [
            record.keep_alive_timeout_first,
            record.keep_alive_timeout_last,
        ]
        .into_iter()
        .flatten()
        {
            keep_distinct(&mut stats.timeouts, timeout);
        }
        if let Some(max) = record.keep_alive_max_first {
            keep_distinct(&mut stats.maxes, max);
        }
        let server_closed = matches!(record.closer, Closer::ServerFin | Closer::ServerRst);
        if server_closed
            && record.close_announced_at.is_none()
            && record.dropped_after_close == 0
            && let Some(idle) = record.idle_close_s
            && stats.idle_closes.len() < MAX_IDLE_SAMPLES
        {
            stats.idle_closes.push(idle);
        }
        *stats
            .max_verdicts
            .entry(record.max_verdict.name())
            .or_default() += 1;
        *stats
            .timeout_verdicts
            .entry(record.timeout_verdict.name())
            .or_default() += 1;
        stats.races += u64::from(record.race_request.is_some());
        stats.unannounced_closes += u64::from(record.unannounced_close);
        stats.violations += u64::from(record.violation);
    }

    pub fn is_empty(&self) -> bool {
        self.by_server.is_empty()
    }

    /// Rows, busiest server first.
    pub fn records(&self) -> Vec<ServerRecord> {
        let join = |values: &[u32]| {
            values
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(";")
        };
        let mut rows: Vec<ServerRecord> = self
            .by_server
            .iter()
            .map(|(server, s)| {
                let mut idle = s.idle_closes.clone();
                idle.sort_by(f64::total_cmp);
                let verdict =
                    |map: &BTreeMap<&str, u64>, key: &str| map.get(key).copied().unwrap_or(0);
                ServerRecord {
                    server: server.clone(),
                    server_software: s.software.join(";"),
                    connections: s.connections,
                    requests: s.requests,
                    reuse_mean: (s.requests as f64 / s.connections as f64 * 100.0).round() / 100.0,
                    reuse_max: s.max_reuse,
                    pipelined_connections: s.pipelined_connections,
                    keep_alive_timeouts: join(&s.timeouts),
                    keep_alive_max_first: join(&s.maxes),
                    idle_closes: idle.len(),
                    idle_close_min_s: idle.first().copied(),
                    idle_close_median_s: idle.get(idle.len() / 2).copied(),
                    idle_close_max_s: idle.last().copied(),
                    max_honoured: verdict(&s.max_verdicts, "honoured"),
                    max_exceeded: verdict(&s.max_verdicts, "exceeded"),
                    max_untested: verdict(&s.max_verdicts, "untested"),
                    timeout_honoured: verdict(&s.timeout_verdicts, "honoured"),
                    timeout_closed_early: verdict(&s.timeout_verdicts, "closed-early"),
                    timeout_untested: verdict(&s.timeout_verdicts, "untested"),
                    races: s.races,
                    unannounced_closes: s.unannounced_closes,
                    violations: s.violations,
                }
            })
            .collect();
        rows.sort_by(|a, b| {
            b.connections
                .cmp(&a.connections)
                .then(a.server.cmp(&b.server))
        });
        rows
    }

    pub fn render(&self, limit: usize) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<28} {:>6} {:>7} {:>9} {:>5} {:<10} {:<12} {:<22} {:<20} {:<26} {:>5} {:>6} verdict",
            "server",
            "conns",
            "reqs",
            "reuse",
            "pipe",
            "timeout=",
            "max=",
            "idle close min/med/max",
            "max: ok/over/untst",
            "timeout: ok/early/untst",
            "races",
            "unann."
        );
        let rows = self.records();
        for r in rows.iter().take(limit) {
            let idle = match (
                r.idle_close_min_s,
                r.idle_close_median_s,
                r.idle_close_max_s,
            ) {
                (Some(a), Some(b), Some(c)) => format!("{a:.2}/{b:.2}/{c:.2}s"),
                _ => "-".to_string(),
            };
            let dash = |s: &str| {
                if s.is_empty() {
                    "-".to_string()
                } else {
                    s.to_string()
                }
            };
            let _ = writeln!(
                out,
                "{:<28} {:>6} {:>7} {:>9} {:>5} {:<10} {:<12} {:<22} {:<20} {:<26} {:>5} {:>6} {}",
                r.server,
                r.connections,
                r.requests,
                format!("{:.1}/{}", r.reuse_mean, r.reuse_max),
                r.pipelined_connections,
                dash(&r.keep_alive_timeouts),
                dash(&r.keep_alive_max_first),
                idle,
                format!("{}/{}/{}", r.max_honoured, r.max_exceeded, r.max_untested),
                format!(
                    "{}/{}/{}",
                    r.timeout_honoured, r.timeout_closed_early, r.timeout_untested
                ),
                r.races,
                r.unannounced_closes,
                if r.violations > 0 {
                    format!("BROKEN PROMISE ({} connections)", r.violations)
                } else {
                    "kept".to_string()
                }
            );
        }
        if rows.len() > limit {
            let _ = writeln!(
                out,
                "... {} more servers (see --servers-csv)",
                rows.len() - limit
            );
        }
        out
    }
}
