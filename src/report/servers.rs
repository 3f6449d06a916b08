//! Per-server aggregation over connection and transaction records: one [`ServerRecord`]
//! per server address:port with HTTP traffic, and the terminal table of them.

use std::collections::hash_map::Entry;
use std::io::{self, Write};
use std::net::SocketAddr;

use crate::flows::WireMap;
use crate::http::Protocol;
use crate::named::Tally;
use crate::record::{ConnectionRecord, TransactionRecord};
use crate::verdict::{MaxVerdict, ServerVerdict, TimeoutVerdict};

use super::behaviour::ServerBehaviour;
use super::cells::seconds;
use super::samples::Samples;
use super::sightings::{Seen, Sightings};
use super::text_table::{Align, Column, ESSENTIAL, TextTable, hidden_note};
use super::{RunEnd, Sink, noun, plural};

/// Distinct values kept per server for a column, so one server cannot grow without bound.
const MAX_DISTINCT: usize = 8;

/// Connections kept per server for the peak of concurrent connections (16 bytes each).
const MAX_SPANS: usize = 100_000;

/// Status classes counted per server: 2xx, 3xx, 4xx, 5xx.
pub const STATUS_CLASSES: [u16; 4] = [2, 3, 4, 5];

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
    pub idle_closes: Samples,
    pub max_verdicts: Tally<MaxVerdict>,
    pub timeout_verdicts: Tally<TimeoutVerdict>,
    pub races: u64,
    pub unannounced_closes: u64,
    pub violations: u64,
    /// Connections where a promise was tested and held.
    pub kept: u64,
    pub verdict: ServerVerdict,
    /// Final responses by class: 2xx, 3xx, 4xx, 5xx ([`STATUS_CLASSES`]).
    pub status_classes: [u64; 4],
    /// Time to first byte of each answered request (ns).
    pub ttfb: Samples,
    /// SYN to the ACK of the SYN-ACK, per connection with a handshake (ns).
    pub handshake_rtts: Samples,
    /// Requests that rode an open connection instead of a new one: each saved a handshake.
    pub handshakes_avoided: u64,
    /// Avoided handshakes × the median handshake round trip (ns).
    pub rtt_saved_ns: Option<u64>,
    /// Time connections sat open with nothing in flight (ns): the resource cost of reuse.
    pub idle_ns: u64,
    /// The most connections open at once (among the first 100,000).
    pub peak_connections: u64,
    /// The longest idle gap after which a client sent another request (ns).
    pub reuse_idle_max_ns: Option<u64>,
    /// Requests left unanswered on connections with a keep-alive race.
    pub lost_to_races: u64,
    /// Idle times of the closes before the advertised timeout (ns).
    pub early_closes: Samples,
    /// The largest `timeout=` in force when a connection was closed early.
    pub early_close_promised_s: Option<u32>,
    /// The worst excess over `max=`: (responses, limit).
    pub worst_excess: Option<(u32, u32)>,
    /// Distinct positions of the response that announced `Connection: close` (up to 8).
    pub close_announced_at: Vec<u32>,
    /// Requests dropped after `Connection: close` or the limit, and those the client sent
    /// after it had seen the announcement.
    pub dropped_after_close: u64,
    pub sent_after_close: u64,
    /// Connections by what the findings report.
    pub seen: Sightings,
    /// (first packet, last packet) of each connection, for the peak; emptied when finished.
    spans: Vec<(u64, u64)>,
    /// What the server really did: idle timeout, request limit, clients' reuse gaps.
    pub behaviour: ServerBehaviour,
}

impl ServerRecord {
    /// A server with no connections yet.
    pub fn new(server: SocketAddr) -> ServerRecord {
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
            idle_closes: Samples::default(),
            max_verdicts: Tally::default(),
            timeout_verdicts: Tally::default(),
            races: 0,
            unannounced_closes: 0,
            violations: 0,
            kept: 0,
            verdict: ServerVerdict::Untested,
            status_classes: [0; 4],
            ttfb: Samples::default(),
            handshake_rtts: Samples::default(),
            handshakes_avoided: 0,
            rtt_saved_ns: None,
            idle_ns: 0,
            peak_connections: 0,
            reuse_idle_max_ns: None,
            lost_to_races: 0,
            early_closes: Samples::default(),
            early_close_promised_s: None,
            worst_excess: None,
            close_announced_at: Vec::new(),
            dropped_after_close: 0,
            sent_after_close: 0,
            seen: Sightings::default(),
            spans: Vec::new(),
            behaviour: ServerBehaviour::default(),
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
            + (self.keep_alive_timeouts.capacity()
                + self.keep_alive_max_first.capacity()
                + self.close_announced_at.capacity())
                * std::mem::size_of::<u32>()
            + [
                &self.idle_closes,
                &self.ttfb,
                &self.handshake_rtts,
                &self.early_closes,
            ]
            .iter()
            .map(|samples| samples.heap_bytes())
            .sum::<usize>()
            + self.seen.heap_bytes()
            + self.behaviour.heap_bytes()
            + self.spans.capacity() * std::mem::size_of::<(u64, u64)>()
            + 12 * MALLOC_OVERHEAD
    }

    /// Adds another server's figures to this row (the `other` row of folded servers).
    fn absorb(&mut self, other: &ServerRecord) {
        self.folded += other.folded.max(1);
        for software in &other.server_software {
            keep_distinct(&mut self.server_software, software.clone());
        }
        self.connections += other.connections;
        self.requests += other.requests;
        self.reuse_max = self.reuse_max.max(other.reuse_max);
        self.pipelined_connections += other.pipelined_connections;
        for &timeout in &other.keep_alive_timeouts {
            keep_distinct(&mut self.keep_alive_timeouts, timeout);
        }
        for &max in &other.keep_alive_max_first {
            keep_distinct(&mut self.keep_alive_max_first, max);
        }
        self.idle_closes.merge(&other.idle_closes);
        self.max_verdicts.merge(&other.max_verdicts);
        self.timeout_verdicts.merge(&other.timeout_verdicts);
        self.races += other.races;
        self.unannounced_closes += other.unannounced_closes;
        self.violations += other.violations;
        self.kept += other.kept;
        for (mine, theirs) in self.status_classes.iter_mut().zip(other.status_classes) {
            *mine += theirs;
        }
        self.ttfb.merge(&other.ttfb);
        self.handshake_rtts.merge(&other.handshake_rtts);
        self.handshakes_avoided += other.handshakes_avoided;
        self.idle_ns = self.idle_ns.saturating_add(other.idle_ns);
        self.reuse_idle_max_ns = max_option(self.reuse_idle_max_ns, other.reuse_idle_max_ns);
        self.lost_to_races += other.lost_to_races;
        self.early_closes.merge(&other.early_closes);
        self.early_close_promised_s =
            max_option(self.early_close_promised_s, other.early_close_promised_s);
        if let Some((responses, limit)) = other.worst_excess
            && self
                .worst_excess
                .is_none_or(|(mine, seen)| responses - limit > mine - seen)
        {
            self.worst_excess = other.worst_excess;
        }
        for &at in &other.close_announced_at {
            keep_distinct(&mut self.close_announced_at, at);
        }
        self.dropped_after_close += other.dropped_after_close;
        self.sent_after_close += other.sent_after_close;
        self.seen.merge(&other.seen);
        self.behaviour.merge(&other.behaviour);
        let room = MAX_SPANS.saturating_sub(self.spans.len());
        self.spans.extend(other.spans.iter().take(room));
    }

    /// The finished row: samples sorted, means, the verdict, what reuse saved, the peak.
    fn finished(&self) -> ServerRecord {
        let mut row = self.clone();
        row.idle_closes = self.idle_closes.sorted();
        row.ttfb = self.ttfb.sorted();
        row.handshake_rtts = self.handshake_rtts.sorted();
        row.early_closes = self.early_closes.sorted();
        row.reuse_mean = if row.connections == 0 {
            0.0
        } else {
            (row.requests as f64 / row.connections as f64 * 100.0).round() / 100.0
        };
        row.verdict = ServerVerdict::of(row.violations, row.races, row.kept);
        row.rtt_saved_ns = row
            .handshake_rtts
            .median()
            .map(|rtt| rtt.saturating_mul(row.handshakes_avoided));
        row.peak_connections = peak(&self.spans);
        row.spans = Vec::new();
        row.behaviour
            .finish(row.idle_closes.values(), row.reuse_idle_max_ns);
        row
    }
}

/// The most intervals open at once (an interval is open from its start to its end, both
/// included).
fn peak(spans: &[(u64, u64)]) -> u64 {
    let mut edges: Vec<(u64, i8)> = Vec::with_capacity(spans.len() * 2);
    for &(start, end) in spans {
        edges.push((start, 1));
        edges.push((end, -1));
    }
    // Opens sort before closes at the same instant: touching connections overlap.
    edges.sort_unstable_by_key(|&(ts, delta)| (ts, -delta));
    let (mut open, mut most) = (0i64, 0i64);
    for (_, delta) in edges {
        open += i64::from(delta);
        most = most.max(open);
    }
    most as u64
}

/// Adds `value` to a sorted list of distinct values, up to 8 of them.
pub(super) fn keep_distinct<T: PartialEq + Ord>(values: &mut Vec<T>, value: T) {
    if !values.contains(&value) && values.len() < MAX_DISTINCT {
        values.push(value);
        values.sort();
    }
}

pub(super) fn max_option<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    a.max(b)
}

/// The smaller of two values, either of which may be missing.
pub(super) fn min_option<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The per-server aggregation, fed one record at a time, within a memory budget: past it,
/// the least-seen half of the servers is folded into one `other` row.
#[derive(Debug)]
pub struct Servers {
    by_server: WireMap<SocketAddr, ServerRecord>,
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
            by_server: WireMap::default(),
            other: None,
            memory: 0,
            budget,
        }
    }

    /// The record of `server`, and its memory before the caller changes it (0 for a new
    /// one: its whole memory is then added by [`Servers::changed`]).
    fn entry(&mut self, server: SocketAddr) -> (&mut ServerRecord, usize) {
        match self.by_server.entry(server) {
            Entry::Occupied(entry) => {
                let stats = entry.into_mut();
                let before = stats.memory();
                (stats, before)
            }
            Entry::Vacant(entry) => (entry.insert(ServerRecord::new(server)), 0),
        }
    }

    pub fn add(&mut self, record: &ConnectionRecord) {
        if record.protocol != Protocol::Http {
            return;
        }
        let (stats, before) = self.entry(record.server);
        let stream = record.stream;
        stats.connections += 1;
        let requests = record.requests.unwrap_or(0);
        stats.requests += u64::from(requests);
        stats.reuse_max = stats.reuse_max.max(requests);
        if record.pipeline_depth > Some(1) {
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
        if let Some(rtt) = record.handshake_rtt_ns {
            stats.handshake_rtts.push(rtt);
        }
        // Each request answered on a connection already open saved opening one; a request
        // lost on it (a race) saved nothing.
        let answered = requests.saturating_sub(record.unanswered_requests.unwrap_or(0));
        stats.handshakes_avoided += u64::from(answered.saturating_sub(1));
        stats.idle_ns = stats
            .idle_ns
            .saturating_add(record.idle_total_ns.unwrap_or(0));
        if stats.spans.len() < MAX_SPANS {
            stats.spans.push((record.first_ts, record.last_ts));
        }
        stats.reuse_idle_max_ns = max_option(stats.reuse_idle_max_ns, record.max_idle_ns);
        if let Some(at) = record.close_announced_at {
            keep_distinct(&mut stats.close_announced_at, at);
        }
        stats.sent_after_close += u64::from(record.requests_after_close_announced);

        stats.behaviour.add(record);

        // A one-sided row has no verdicts: it is counted above, not judged.
        let Some(verdicts) = &record.verdicts else {
            return;
        };
        let responses = record.responses.unwrap_or(0);
        if verdicts.closed_for_idleness
            && let Some(idle) = verdicts.idle_close_ns
        {
            stats.idle_closes.push(idle);
        }
        stats.max_verdicts.add(verdicts.max);
        stats.timeout_verdicts.add(verdicts.timeout);
        stats.races += u64::from(verdicts.race_request.is_some());
        stats.unannounced_closes += u64::from(verdicts.unannounced_close);
        stats.violations += u64::from(verdicts.is_violation());
        stats.kept += u64::from(verdicts.kept_something());

        let mut mark = |seen: Seen, set: bool| {
            if set {
                stats.seen.mark(seen, stream);
            }
        };
        mark(Seen::Race, verdicts.race_request.is_some());
        mark(
            Seen::ClosedEarly,
            verdicts.timeout == TimeoutVerdict::ClosedEarly,
        );
        mark(Seen::MaxExceeded, verdicts.max == MaxVerdict::Exceeded);
        mark(
            Seen::AnsweredAfterClose,
            verdicts.close_honoured == Some(false),
        );
        // An early close is also unannounced; it is reported as the broken promise it is.
        mark(
            Seen::UnannouncedClose,
            verdicts.unannounced_close && verdicts.timeout != TimeoutVerdict::ClosedEarly,
        );
        mark(Seen::DroppedAfterClose, verdicts.dropped_after_close > 0);
        mark(Seen::OneRequest, requests <= 1);
        mark(
            Seen::AskedClose,
            super::clients::asked_close(record).is_some(),
        );
        if verdicts.race_request.is_some() {
            stats.lost_to_races += u64::from(record.unanswered_requests.unwrap_or(0));
        }
        if verdicts.timeout == TimeoutVerdict::ClosedEarly {
            if let Some(idle) = verdicts.idle_close_ns {
                stats.early_closes.push(idle);
            }
            stats.early_close_promised_s =
                max_option(stats.early_close_promised_s, record.keep_alive_timeout_last);
        }
        if verdicts.max == MaxVerdict::Exceeded
            && let Some(limit) = record.implied_request_limit
        {
            let worse = stats
                .worst_excess
                .is_none_or(|(most, seen)| responses - limit > most - seen);
            if worse {
                stats.worst_excess = Some((responses, limit));
            }
        }
        stats.dropped_after_close += u64::from(verdicts.dropped_after_close);
        self.changed(record.server, before);
    }

    /// `server`'s record changed from `before` bytes: the estimate follows, and past the
    /// budget the least-seen servers are folded.
    fn changed(&mut self, server: SocketAddr, before: usize) {
        let now = self.by_server.get(&server).map_or(0, ServerRecord::memory);
        self.memory = (self.memory + now).saturating_sub(before);
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
                other.absorb(&stats);
            }
        }
        self.by_server.shrink_to_fit();
    }

    /// A transaction: its status class and time to first byte.
    pub fn add_transaction(&mut self, record: &TransactionRecord) {
        let Some(status) = record.status else {
            return;
        };
        let (stats, before) = self.entry(record.server);
        if let Some(class) = STATUS_CLASSES.iter().position(|c| *c == status / 100) {
            stats.status_classes[class] += 1;
        }
        if let Some(ttfb) = record.ttfb_ns() {
            stats.ttfb.push(ttfb);
        }
        self.changed(record.server, before);
    }

    /// Rows, busiest server first (then by address as text), the `other` row of folded
    /// servers last; servers seen only in transactions of connections not yet written are
    /// left out. The aggregation is emptied.
    pub fn take_records(&mut self) -> Vec<ServerRecord> {
        self.memory = 0;
        let mut rows: Vec<(String, ServerRecord)> = std::mem::take(&mut self.by_server)
            .into_values()
            .filter(|stats| stats.connections > 0)
            .map(|stats| (stats.server.to_string(), stats.finished()))
            .collect();
        rows.sort_by(|(a_name, a), (b_name, b)| {
            b.connections.cmp(&a.connections).then(a_name.cmp(b_name))
        });
        let mut rows: Vec<ServerRecord> = rows.into_iter().map(|(_, row)| row).collect();
        rows.extend(self.other.take().map(|other| other.finished()));
        rows
    }
}

/// The per-server table's columns, most important kept longest.
pub const COLUMNS: &[Column] = &[
    Column::new("server", Align::Left, ESSENTIAL).legend("server address:port"),
    Column::new("conns", Align::Right, 8).legend("HTTP connections"),
    Column::new("reqs", Align::Right, 7).legend("requests on them"),
    Column::new("reuse", Align::Right, 6).legend("requests per connection: mean/max (5.0/5)"),
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
    Column::new("unann.", Align::Right, 1).legend(
        "unannounced closes: the server closed with no Connection: close, limit or timeout reached",
    ),
    Column::new("2xx/3xx/4xx/5xx", Align::Left, 4).legend("final responses by status class"),
    Column::new("ttfb med/p95", Align::Left, 3)
        .legend("time to first byte of the responses: median / 95th percentile"),
    Column::new("verdict", Align::Left, ESSENTIAL).legend(
        "what its connections add up to, worst first: broken (a promise violated), races \
         (requests lost to its idle close), kept (a promise tested and held), untested",
    ),
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
                r.idle_closes.min(),
                r.idle_closes.median(),
                r.idle_closes.max(),
            ) {
                (Some(a), Some(b), Some(c)) => {
                    format!("{:.2}/{:.2}/{:.2}s", seconds(a), seconds(b), seconds(c))
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
            let [s2, s3, s4, s5] = r.status_classes;
            let ttfb = match (r.ttfb.median(), r.ttfb.percentile(95)) {
                (Some(median), Some(p95)) => format!("{}/{}", millis(median), millis(p95)),
                _ => "-".to_string(),
            };
            table.push(vec![
                r.name(),
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
                format!("{s2}/{s3}/{s4}/{s5}"),
                ttfb,
                r.verdict.to_string(),
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
                noun(more, "server", "servers")
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
        writeln!(out)?;
        writeln!(out, "what reuse saved:")?;
        for r in rows.iter().take(self.limit) {
            let saved = match r.rtt_saved_ns {
                Some(ns) if r.handshakes_avoided > 0 => format!(" ({} of round trips)", millis(ns)),
                _ => String::new(),
            };
            writeln!(
                out,
                "  {}: {} avoided{saved}; idle {:.1} connection-seconds; peak {} open at once",
                r.name(),
                plural(r.handshakes_avoided, "handshake", "handshakes"),
                seconds(r.idle_ns),
                r.peak_connections
            )?;
        }
        Ok(())
    }
}

/// A duration for people: `0.43ms`, `12.3ms`, `2.01s`.
pub fn millis(ns: u64) -> String {
    let ms = ns as f64 / 1e6;
    if ms >= 1000.0 {
        format!("{:.2}s", ms / 1000.0)
    } else if ms >= 10.0 {
        format!("{ms:.1}ms")
    } else {
        format!("{ms:.2}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peak_counts_connections_open_at_the_same_instant() {
        assert_eq!(peak(&[]), 0);
        assert_eq!(peak(&[(0, 10), (20, 30)]), 1, "one after the other");
        assert_eq!(peak(&[(0, 10), (10, 30)]), 2, "touching at 10");
        assert_eq!(peak(&[(0, 100), (5, 6), (7, 8), (50, 60), (55, 200)]), 3);
    }
}
