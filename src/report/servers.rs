//! Per-server aggregation over connection records: one [`ServerRecord`] per server
//! address:port with HTTP traffic, and the terminal table of them.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::io::{self, Write};
use std::net::SocketAddr;

use crate::http::Protocol;
use crate::named::Tally;
use crate::record::{Closer, ConnectionRecord};
use crate::verdict::{MaxVerdict, TimeoutVerdict};

use super::cells::seconds;
use super::{RunEnd, Sink};

/// Distinct values kept per server for a column, so one server cannot grow without bound.
const MAX_DISTINCT: usize = 8;
/// Idle-close samples kept per server for the median.
const MAX_IDLE_SAMPLES: usize = 100_000;

/// What one server did across its connections.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerRecord {
    pub server: SocketAddr,
    /// 0 for a server; otherwise this row sums this many least-seen servers, folded together
    /// to keep the aggregation within its memory budget (its `server` is meaningless).
    pub folded: u64,
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
            folded: 0,
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

    /// The server's name in a report: its address, or `other (N servers)` for the row the
    /// least-seen servers were folded into.
    pub fn name(&self) -> String {
        match self.folded {
            0 => self.server.to_string(),
            n => format!("other ({n} servers)"),
        }
    }

    /// Heap memory of the record in the aggregation's map, for its memory budget.
    fn memory(&self) -> usize {
        const MALLOC_OVERHEAD: usize = 16;
        let software: usize = self
            .server_software
            .iter()
            .map(|s| s.capacity() + MALLOC_OVERHEAD)
            .sum();
        // The map bucket (at worst half full), plus each vector's allocation.
        2 * (std::mem::size_of::<(SocketAddr, ServerRecord)>() + 1)
            + software
            + self.server_software.capacity() * std::mem::size_of::<String>()
            + (self.keep_alive_timeouts.capacity() + self.keep_alive_max_first.capacity()) * 4
            + self.idle_closes.capacity() * 8
            + 5 * MALLOC_OVERHEAD
    }

    /// The row as reported: idle closes in order, the mean reuse computed.
    fn finished(mut self) -> ServerRecord {
        self.idle_closes.sort_unstable();
        self.reuse_mean = (self.requests as f64 / self.connections as f64 * 100.0).round() / 100.0;
        self
    }

    /// Adds another server's figures to this row.
    fn absorb(&mut self, other: ServerRecord) {
        self.folded += other.folded.max(1);
        self.connections += other.connections;
        self.requests += other.requests;
        self.reuse_max = self.reuse_max.max(other.reuse_max);
        self.pipelined_connections += other.pipelined_connections;
        for software in other.server_software {
            keep_distinct(&mut self.server_software, software);
        }
        for timeout in other.keep_alive_timeouts {
            keep_distinct(&mut self.keep_alive_timeouts, timeout);
        }
        for max in other.keep_alive_max_first {
            keep_distinct(&mut self.keep_alive_max_first, max);
        }
        let room = MAX_IDLE_SAMPLES.saturating_sub(self.idle_closes.len());
        self.idle_closes
            .extend(other.idle_closes.into_iter().take(room));
        self.max_verdicts.merge(&other.max_verdicts);
        self.timeout_verdicts.merge(&other.timeout_verdicts);
        self.races += other.races;
        self.unannounced_closes += other.unannounced_closes;
        self.violations += other.violations;
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

/// The per-server aggregation, fed one connection record at a time, within a memory
/// budget: past it, the least-seen half of the servers is folded into one `other` row.
#[derive(Debug)]
pub struct Servers {
    by_server: HashMap<SocketAddr, ServerRecord>,
    /// The servers folded together so far, if any were.
    other: Option<ServerRecord>,
    /// Estimated memory of `by_server`, and what it may reach.
    memory: usize,
    budget: usize,
}

impl Servers {
    /// An aggregation that keeps within `budget` bytes (estimated).
    pub fn new(budget: usize) -> Servers {
        Servers {
            by_server: HashMap::new(),
            other: None,
            memory: 0,
            budget,
        }
    }

    /// Servers folded into the `other` row.
    pub fn folded(&self) -> u64 {
        self.other.as_ref().map_or(0, |other| other.folded)
    }

    pub fn add(&mut self, record: &ConnectionRecord) {
        if record.protocol != Protocol::Http {
            return;
        }
        let (stats, before) = match self.by_server.entry(record.server) {
            Entry::Occupied(entry) => {
                let stats = entry.into_mut();
                let before = stats.memory();
                (stats, before)
            }
            Entry::Vacant(entry) => (entry.insert(ServerRecord::new(record.server)), 0),
        };
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
        self.memory = (self.memory + stats.memory()).saturating_sub(before);
        if self.memory > self.budget {
            self.fold_least_seen();
        }
    }

    /// Folds the half of the servers with the fewest connections into the `other` row. Each
    /// fold halves the map, so its cost is paid for by the servers added since the last.
    fn fold_least_seen(&mut self) {
        let mut by_seen: Vec<(u64, SocketAddr)> = self
            .by_server
            .values()
            .map(|stats| (stats.connections, stats.server))
            .collect();
        by_seen.sort_unstable();
        let other = self
            .other
            .get_or_insert_with(|| ServerRecord::new(SocketAddr::from(([0, 0, 0, 0], 0))));
        for (_, server) in &by_seen[..by_seen.len().div_ceil(2)] {
            if let Some(stats) = self.by_server.remove(server) {
                self.memory = self.memory.saturating_sub(stats.memory());
                other.absorb(stats);
            }
        }
        self.by_server.shrink_to_fit();
    }

    /// Rows, busiest server first (then by address as text); the `other` row last.
    pub fn take_records(&mut self) -> Vec<ServerRecord> {
        self.memory = 0;
        let mut rows: Vec<(String, ServerRecord)> = std::mem::take(&mut self.by_server)
            .into_values()
            .map(|row| (row.server.to_string(), row.finished()))
            .collect();
        rows.sort_by(|(a_name, a), (b_name, b)| {
            b.connections.cmp(&a.connections).then(a_name.cmp(b_name))
        });
        let mut rows: Vec<ServerRecord> = rows.into_iter().map(|(_, row)| row).collect();
        rows.extend(self.other.take().map(ServerRecord::finished));
        rows
    }
}

/// The per-server table at the end of the terminal report.
pub struct ServersTable {
    out: Box<dyn Write>,
    limit: usize,
}

impl ServersTable {
    pub fn new(out: Box<dyn Write>, limit: usize) -> ServersTable {
        ServersTable { out, limit }
    }
}

impl Sink for ServersTable {
    fn finish(&mut self, end: &RunEnd<'_>) -> io::Result<()> {
        let rows = end.servers;
        if rows.is_empty() {
            return Ok(());
        }
        let out = &mut self.out;
        writeln!(out)?;
        writeln!(
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
        )?;
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
            writeln!(
                out,
                "{:<28} {:>6} {:>7} {:>9} {:>5} {:<10} {:<12} {:<22} {:<20} {:<26} {:>5} {:>6} {}",
                r.name(),
                r.connections,
                r.requests,
                format!("{:.1}/{}", r.reuse_mean, r.reuse_max),
                r.pipelined_connections,
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
                r.races,
                r.unannounced_closes,
                if r.violations > 0 {
                    format!("BROKEN PROMISE ({} connections)", r.violations)
                } else {
                    "kept".to_string()
                }
            )?;
        }
        if rows.len() > self.limit {
            writeln!(
                out,
                "... {} more servers (see --servers-csv)",
                rows.len() - self.limit
            )?;
        }
        if let Some(other) = rows.iter().find(|r| r.folded > 0) {
            writeln!(
                out,
                "the {} least-seen servers are summed in the 'other' row, to keep within the \
                 memory budget (--max-memory)",
                other.folded
            )?;
        }
        Ok(())
    }
}
