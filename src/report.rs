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
            "{:>6} {:<45} {:>5} {:>5} {:>5} {:<13} {:>5} {:>9} {:<13} flags",
            "stream",
            "client -> server",
            "reqs",
            "resps",
            "depth",
            "closed by",
            "after",
            "idle-cls",
            "keep-alive"
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
                "{:>6} {:<45} {:>5} {:>5} {:>5} {:<13} {:>5} {:>9} {:<13} {}",
                r.stream,
                endpoints,
                r.requests,
                r.responses,
                r.pipeline_depth,
                closer_label(r.closer),
                after,
                idle,
                keep_alive_label(r),
                if r.protocol == Protocol::Http || r.protocol == Protocol::None {
                    r.flags.clone()
                } else if r.flags.is_empty() {
                    r.protocol.name().to_string()
                } else {
                    format!("{};{}", r.protocol.name(), r.flags)
                }
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
