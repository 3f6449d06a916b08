//! The terminal's connection table: rows kept up to a limit, printed in stream order.

use std::io::{self, Write};

use crate::http::Protocol;
use crate::named::Named;
use crate::record::ConnectionRecord;

use super::cells::seconds;
use super::{RunEnd, Sink};

pub struct ConnectionTable {
    out: Box<dyn Write>,
    rows: Vec<ConnectionRecord>,
    limit: usize,
    omitted: u64,
}

impl ConnectionTable {
    pub fn new(out: Box<dyn Write>, limit: usize) -> ConnectionTable {
        ConnectionTable {
            out,
            rows: Vec::new(),
            limit,
            omitted: 0,
        }
    }
}

impl Sink for ConnectionTable {
    fn connection(&mut self, record: &ConnectionRecord) -> io::Result<()> {
        if self.rows.len() < self.limit {
            self.rows.push(record.clone());
        } else {
            self.omitted += 1;
        }
        Ok(())
    }

    fn finish(&mut self, _end: &RunEnd<'_>) -> io::Result<()> {
        self.rows.sort_by_key(|r| r.stream);
        let out = &mut self.out;
        writeln!(
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
        )?;
        for r in &self.rows {
            let endpoints = format!("{} -> {}", r.client, r.server);
            let after = r
                .close_after_request
                .map_or_else(|| "-".to_string(), |n| n.to_string());
            let idle = r
                .idle_before_close_ns
                .map_or_else(|| "-".to_string(), |ns| format!("{:.3}s", seconds(ns)));
            writeln!(
                out,
                "{:>6} {:<45} {:>5} {:>5} {:>5} {:<13} {:>5} {:>9} {:<19} {:<9} {:<12} {}",
                r.stream,
                endpoints,
                known(r.requests),
                known(r.responses),
                known(r.pipeline_depth),
                r.closer,
                after,
                idle,
                keep_alive_label(r),
                r.verdicts.as_ref().map_or("-", |v| v.max.as_str()),
                r.verdicts.as_ref().map_or("-", |v| v.timeout.as_str()),
                notes(r)
            )?;
        }
        if self.omitted > 0 {
            writeln!(
                out,
                "... {} more connections not shown (raise --rows, or see --csv)",
                self.omitted
            )?;
        }
        writeln!(out)
    }
}

/// A count, or `-` where it is not known (one-sided rows).
fn known(count: Option<u32>) -> String {
    count.map_or_else(|| "-".to_string(), |n| n.to_string())
}

/// The table's last column: what an operator should notice first, then the flags.
fn notes(r: &ConnectionRecord) -> String {
    let mut notes = Vec::new();
    if let Some(verdicts) = &r.verdicts {
        if verdicts.is_violation() {
            notes.push("VIOLATION".to_string());
        }
        if let Some(position) = verdicts.race_request {
            notes.push(format!("race@{position}"));
        }
        if verdicts.unannounced_close {
            notes.push("unannounced-close".to_string());
        }
        if verdicts.dropped_after_close > 0 {
            notes.push(format!(
                "dropped-after-close:{}",
                verdicts.dropped_after_close
            ));
        }
    }
    if !matches!(r.protocol, Protocol::Http | Protocol::None) {
        notes.push(r.protocol.as_str().to_string());
    }
    notes.extend(r.flags.iter().map(|flag| flag.as_str().to_string()));
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
