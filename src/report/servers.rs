//! Per-server aggregation over connection records: one [`ServerRecord`] per server
//! address:port with HTTP traffic, and the terminal table of them.

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::SocketAddr;

use crate::http::Protocol;
use crate::named::Tally;
use crate::record::{Closer, ConnectionRecord};
use crate::verdict::{MaxVerdict, TimeoutVerdict};

use super::cells::seconds;
use super::text_table::{Align, Column, ESSENTIAL, TextTable, hidden_note};
use super::{RunEnd, Sink, count, plural};

/// Distinct values kept per server for a column, so one server cannot grow without bound.
const MAX_DISTINCT: usize = 8;
/// Idle-close samples kept per server for the median.
const MAX_IDLE_SAMPLES: usize = 100_000;

/// What one server did across its connections.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerRecord {
    pub server: SocketAddr,
    /// Distinct `Server` header values (up to 8).
    pub server_software: Vec<String>,
    pub connections: u64,
    pub requests: u64,
    /// Requests per connection, rounded to two decimals.
    pub reuse_mean: f64,
    pub reuse_max: u32,
    pub pipelined_connections: u64,
    /// Distinct `timeout=` values advertised (up to 8), ascending.
    pub keep_alive_timeouts: Vec<u32>,
    /// Distinct `max=` values of each connection's first advert (up to 8), ascending.
    pub keep_alive_max_first: Vec<u32>,
    /// Idle time before each idle close by the server (ns), ascending in finished rows.
    pub idle_closes: Vec<u64>,
    pub max_verdicts: Tally<MaxVerdict>,
    pub timeout_verdicts: Tally<TimeoutVerdict>,
    pub races: u64,
    pub unannounced_closes: u64,
    pub violations: u64,
}

impl ServerRecord {
    fn new(server: SocketAddr) -> ServerRecord {
        ServerRecord {
            server,
            server_software: Vec::new(),
            connections: 0,
            requests: 0,
            reuse_mean: 0.0,
            reuse_max: 0,
            pipelined_connections: 0,
            keep_alive_timeouts: Vec::new(),
            keep_alive_max_first: Vec::new(),
            idle_closes: Vec::new(),
            max_verdicts: Tally::default(),
            timeout_verdicts: Tally::default(),
            races: 0,
            unannounced_closes: 0,
            violations: 0,
        }
    }

    /// The upper median of the idle closes.
    pub fn idle_close_median_ns(&self) -> Option<u64> {
        self.idle_closes.get(self.idle_closes.len() / 2).copied()
    }
}

fn keep_distinct<T: PartialEq + Ord>(values: &mut Vec<T>, value: T) {
    if !values.contains(&value) && values.len() < MAX_DISTINCT {
        values.push(value);
        values.sort();
    }
}

/// The per-server aggregation, fed one connection record at a time.
#[derive(Debug, Default)]
pub struct Servers {
    by_server: HashMap<SocketAddr, ServerRecord>,
}

impl Servers {
    pub fn add(&mut self, record: &ConnectionRecord) {
        if record.protocol != Protocol::Http {
            return;
        }
        let stats = self
            .by_server
            .entry(record.server)
            .or_insert_with(|| ServerRecord::new(record.server));
        stats.connections += 1;
        stats.requests += u64::from(record.requests);
        stats.reuse_max = stats.reuse_max.max(record.requests);
        if record.pipeline_depth > 1 {
            stats.pipelined_connections += 1;
        }
        if !record.server_software.is_empty() {
            keep_distinct(&mut stats.server_software, record.server_software.clone());
        }
        for timeout in [
            record.keep_alive_timeout_first,
            record.keep_alive_timeout_last,
        ]
        .into_iter()
        .flatten()
        {
            keep_distinct(&mut stats.keep_alive_timeouts, timeout);
        }
        if let Some(max) = record.keep_alive_max_first {
            keep_distinct(&mut stats.keep_alive_max_first, max);
        }
        let server_closed = matches!(record.closer, Closer::ServerFin | Closer::ServerRst);
        if server_closed
            && record.close_announced_at.is_none()
            && record.verdicts.dropped_after_close == 0
            && let Some(idle) = record.verdicts.idle_close_ns
            && stats.idle_closes.len() < MAX_IDLE_SAMPLES
        {
            stats.idle_closes.push(idle);
        }
        stats.max_verdicts.add(record.verdicts.max);
        stats.timeout_verdicts.add(record.verdicts.timeout);
        stats.races += u64::from(record.verdicts.race_request.is_some());
        stats.unannounced_closes += u64::from(record.verdicts.unannounced_close);
        stats.violations += u64::from(record.verdicts.is_violation());
    }

    /// Rows, busiest server first (then by address as text).
    pub fn records(&self) -> Vec<ServerRecord> {
        let mut rows: Vec<(String, ServerRecord)> = self
            .by_server
            .values()
            .map(|stats| {
                let mut row = stats.clone();
                row.idle_closes.sort_unstable();
                row.reuse_mean =
                    (row.requests as f64 / row.connections as f64 * 100.0).round() / 100.0;
                (row.server.to_string(), row)
            })
            .collect();
        rows.sort_by(|(a_name, a), (b_name, b)| {
            b.connections.cmp(&a.connections).then(a_name.cmp(b_name))
        });
        rows.into_iter().map(|(_, row)| row).collect()
    }
}

/// The per-server table's columns, most important kept longest.
pub const COLUMNS: &[Column] = &[
    Column::new("server", Align::Left, ESSENTIAL).legend("server address:port"),
    Column::new("conns", Align::Right, 8).legend("HTTP connections"),
    Column::new("reqs", Align::Right, 7).legend("requests on them"),
    Column::new("reuse", Align::Right, 6)
        .legend("requests per connection: mean/max (5.0/5)"),
    Column::new("pipe", Align::Right, 2).legend("connections with pipelined requests"),
    Column::new("timeout=", Align::Left, 4)
        .cut_to(8)
        .legend("distinct Keep-Alive timeout= values advertised"),
    Column::new("max=", Align::Left, 3)
        .cut_to(5)
        .legend("distinct max= values on each connection's first Keep-Alive header"),
    Column::new("idle close min/med/max", Align::Left, 2)
        .legend("idle time before the server's idle closes: least, median, most"),
    Column::new("max: ok/over/untst", Align::Left, 4)
        .legend("connections whose max= was honoured / exceeded / untested"),
    Column::new("timeout: ok/early/untst", Align::Left, 5)
        .legend("connections whose timeout= was honoured / closed early / untested"),
    Column::new("races", Align::Right, 6).legend("connections with a keep-alive race"),
    Column::new("unann.", Align::Right, 1)
        .legend("unannounced closes: the server closed with no Connection: close, limit or timeout reached"),
    Column::new("verdict", Align::Left, ESSENTIAL)
        .legend("kept, or BROKEN PROMISE (N connections): a max= exceeded, a timeout= closed early, or Connection: close not honoured"),
];

/// The per-server table at the end of the terminal report.
pub struct ServersTable {
    out: Box<dyn Write>,
    limit: usize,
    width: Option<usize>,
}

impl ServersTable {
    /// At most `limit` rows, fitted to `width` characters (`None`: every column).
    pub fn new(out: Box<dyn Write>, limit: usize, width: Option<usize>) -> ServersTable {
        ServersTable { out, limit, width }
    }
}

impl Sink for ServersTable {
    fn finish(&mut self, end: &RunEnd<'_>) -> io::Result<()> {
        let rows = end.servers;
        if rows.is_empty() {
            return Ok(());
        }
        let mut table = TextTable::new(COLUMNS);
        for r in rows.iter().take(self.limit) {
            let idle = match (
                r.idle_closes.first(),
                r.idle_close_median_ns(),
                r.idle_closes.last(),
            ) {
                (Some(a), Some(b), Some(c)) => {
                    format!("{:.2}/{:.2}/{:.2}s", seconds(*a), seconds(b), seconds(*c))
                }
                _ => "-".to_string(),
            };
            let list = |values: &[u32]| {
                if values.is_empty() {
                    "-".to_string()
                } else {
                    let text: Vec<String> = values.iter().map(u32::to_string).collect();
                    text.join(";")
                }
            };
            let max = &r.max_verdicts;
            let timeout = &r.timeout_verdicts;
            table.push(vec![
                r.server.to_string(),
                r.connections.to_string(),
                r.requests.to_string(),
                format!("{:.1}/{}", r.reuse_mean, r.reuse_max),
                r.pipelined_connections.to_string(),
                list(&r.keep_alive_timeouts),
                list(&r.keep_alive_max_first),
                idle,
                format!(
                    "{}/{}/{}",
                    max.get(MaxVerdict::Honoured),
                    max.get(MaxVerdict::Exceeded),
                    max.get(MaxVerdict::Untested)
                ),
                format!(
                    "{}/{}/{}",
                    timeout.get(TimeoutVerdict::Honoured),
                    timeout.get(TimeoutVerdict::ClosedEarly),
                    timeout.get(TimeoutVerdict::Untested)
                ),
                r.races.to_string(),
                r.unannounced_closes.to_string(),
                if r.violations > 0 {
                    format!("BROKEN PROMISE ({})", count(r.violations, "connection"))
                } else {
                    "kept".to_string()
                },
            ]);
        }
        let out = &mut self.out;
        writeln!(out)?;
        let hidden = table.write(out, self.width)?;
        if let Some(note) = hidden_note(&hidden, self.width) {
            write!(out, "{note}")?;
        }
        if rows.len() > self.limit {
            let more = (rows.len() - self.limit) as u64;
            writeln!(
                out,
                "... {more} more {} not shown (raise --rows, or see --servers-csv)",
                plural(more, "server")
            )?;
        }
        Ok(())
    }
}
