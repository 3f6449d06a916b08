//! The terminal's connection table: the rows `--only` selects, at most `--rows` of them, in
//! `--sort` order, fitted to the terminal's width.

use std::cmp::Reverse;
use std::io::{self, Write};

use crate::http::Protocol;
use crate::named::Named;
use crate::record::ConnectionRecord;

use super::cells::seconds;
use super::text_table::{Align, Column, ESSENTIAL, TextTable, hidden_note};
use super::{RunEnd, Sink, noun, plural};

/// The connection table's columns, most important kept longest.
pub const COLUMNS: &[Column] = &[
    Column::new("stream", Align::Right, ESSENTIAL)
        .legend("Wireshark's tcp.stream number: `tcp.stream eq N` shows the same packets"),
    Column::new("start", Align::Right, 3)
        .legend("seconds from the capture's first packet to the connection's first packet"),
    Column::new("dur", Align::Right, 4)
        .legend("seconds from the connection's first packet to its last"),
    Column::new("client", Align::Right, 3)
        .legend("client address:port (it sent the SYN, or else the requests)"),
    Column::new("server", Align::Left, ESSENTIAL).legend("server address:port"),
    Column::new("reqs", Align::Right, 9).legend("requests carried: the reuse count"),
    Column::new("resps", Align::Right, 5)
        .legend("final responses whose head was captured (1xx not counted)"),
    Column::new("depth", Align::Right, 7)
        .legend("pipelining depth: the most requests sent and not yet answered at once (1: none)"),
    Column::new("closed by", Align::Left, 8).legend(
        "who closed first and how: client-fin, server-fin, client-rst, server-rst, \
         capture-ended (no close captured), evicted (idle past --idle-timeout)",
    ),
    Column::new("after", Align::Right, 1).legend("requests seen when the first FIN or RST came"),
    Column::new("idle-cls", Align::Right, 2).legend(
        "idle time from the end of the last response to the first FIN or RST, when nothing \
         was outstanding",
    ),
    Column::new("keep-alive", Align::Left, 4)
        .cut_to(8)
        .legend("Keep-Alive advertised: t=timeout, m=max (t=2,m=3); first..last when it changed"),
    Column::new("max", Align::Left, 6)
        .legend("the max= verdict: honoured, exceeded, untested, none (docs/verdicts.md)"),
    Column::new("timeout", Align::Left, 6)
        .legend("the timeout= verdict: honoured, closed-early, untested, none"),
    Column::new("notes", Align::Left, 5).cut_to(12).legend(
        "VIOLATION (a broken promise), race@N (request N crossed the server's idle close), \
         unannounced-close, dropped-after-close:N, a protocol other than HTTP, and the \
         row's flags (docs/csv.md)",
    ),
];

/// The order of the connection table (`--sort`): a column; numbers largest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Stream,
    Start,
    Duration,
    Requests,
    Responses,
    Depth,
    After,
    IdleClose,
}

named_enum!(SortKey {
    Stream => "stream",
    Start => "start",
    Duration => "dur",
    Requests => "reqs",
    Responses => "resps",
    Depth => "depth",
    After => "after",
    IdleClose => "idle-cls",
});

/// Which connections the table shows (`--only`; any of several).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Only {
    /// A keep-alive race.
    Races,
    /// A broken Keep-Alive promise.
    Violations,
    /// Any flag.
    Flagged,
}

named_enum!(Only {
    Races => "races",
    Violations => "violations",
    Flagged => "flagged",
});

impl Only {
    fn matches(self, r: &ConnectionRecord) -> bool {
        match self {
            Only::Races => r
                .verdicts
                .as_ref()
                .is_some_and(|v| v.race_request.is_some()),
            Only::Violations => r.is_violation(),
            Only::Flagged => !r.flags.is_empty(),
        }
    }
}

/// What the connection table shows and how.
#[derive(Debug, Clone)]
pub struct TableOptions {
    /// Most rows shown.
    pub rows: usize,
    /// Fit this many characters; `None`: every column.
    pub width: Option<usize>,
    pub only: Vec<Only>,
    pub sort: SortKey,
}

pub struct ConnectionTable {
    out: Box<dyn Write>,
    options: TableOptions,
    /// The best rows so far by the sort order; trimmed to `options.rows` when it doubles.
    rows: Vec<ConnectionRecord>,
    /// Connections `--only` selected.
    matched: u64,
    seen: u64,
}

impl ConnectionTable {
    pub fn new(out: Box<dyn Write>, options: TableOptions) -> ConnectionTable {
        ConnectionTable {
            out,
            options,
            rows: Vec::new(),
            matched: 0,
            seen: 0,
        }
    }

    /// Sorts the rows kept and keeps the best `options.rows`.
    fn trim(&mut self) {
        let key = |r: &ConnectionRecord| {
            let largest_first = |value: u64| Reverse(value);
            let order = match self.options.sort {
                SortKey::Stream => Reverse(0),
                SortKey::Start => Reverse(u64::MAX - r.first_ts),
                SortKey::Duration => largest_first(r.duration_ns()),
                SortKey::Requests => largest_first(r.requests.unwrap_or(0).into()),
                SortKey::Responses => largest_first(r.responses.unwrap_or(0).into()),
                SortKey::Depth => largest_first(r.pipeline_depth.unwrap_or(0).into()),
                SortKey::After => largest_first(r.close_after_request.unwrap_or(0).into()),
                SortKey::IdleClose => largest_first(r.idle_before_close_ns.unwrap_or(0)),
            };
            (order, r.stream)
        };
        self.rows.sort_by_key(key);
        self.rows.truncate(self.options.rows);
    }
}

impl Sink for ConnectionTable {
    fn connection(&mut self, record: &ConnectionRecord) -> io::Result<()> {
        self.seen += 1;
        let only = &self.options.only;
        if !only.is_empty() && !only.iter().any(|o| o.matches(record)) {
            return Ok(());
        }
        self.matched += 1;
        self.rows.push(record.clone());
        if self.rows.len() >= 2 * self.options.rows {
            self.trim();
        }
        Ok(())
    }

    fn finish(&mut self, end: &RunEnd<'_>) -> io::Result<()> {
        self.trim();
        let origin = end.counts.first_ts.unwrap_or(0);
        let mut table = TextTable::new(COLUMNS);
        for r in &self.rows {
            let optional = |value: Option<String>| value.unwrap_or_else(|| "-".to_string());
            table.push(vec![
                r.stream.to_string(),
                format!("{:.3}", seconds(r.first_ts.saturating_sub(origin))),
                format!("{:.3}", seconds(r.duration_ns())),
                r.client.to_string(),
                r.server.to_string(),
                known(r.requests),
                known(r.responses),
                known(r.pipeline_depth),
                r.closer.to_string(),
                optional(r.close_after_request.map(|n| n.to_string())),
                optional(
                    r.idle_before_close_ns
                        .map(|ns| format!("{:.3}s", seconds(ns))),
                ),
                keep_alive_label(r),
                r.verdicts
                    .as_ref()
                    .map_or("-", |v| v.max.as_str())
                    .to_string(),
                r.verdicts
                    .as_ref()
                    .map_or("-", |v| v.timeout.as_str())
                    .to_string(),
                notes(r),
            ]);
        }
        let out = &mut self.out;
        let hidden = table.write(out, self.options.width)?;
        if let Some(note) = hidden_note(&hidden, self.options.width) {
            write!(out, "{note}")?;
        }
        let shown = self.rows.len() as u64;
        if self.matched > shown {
            let more = self.matched - shown;
            writeln!(
                out,
                "... {more} more {} not shown (raise --rows, or see --csv)",
                noun(more, "connection", "connections")
            )?;
        }
        if !self.options.only.is_empty() {
            let names: Vec<&str> = self.options.only.iter().map(|o| o.as_str()).collect();
            writeln!(
                out,
                "({} of {} match --only {})",
                self.matched,
                plural(self.seen, "connection", "connections"),
                names.join(",")
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
    if notes.is_empty() {
        return "-".to_string();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sort_key_is_a_column() {
        for key in SortKey::ALL {
            assert!(
                COLUMNS.iter().any(|c| c.header == key.as_str()),
                "{key} is not a column"
            );
        }
    }
}
