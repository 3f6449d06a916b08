//! Totals over all connections, and the summary lines of the terminal report.

use std::io::{self, Write};

use crate::http::Protocol;
use crate::named::{Named, Tally};
use crate::record::{Closer, ConnectionRecord, Flag};

use super::cells::{rfc3339, seconds};
use super::{RunEnd, Sink, plural};

/// Reuse-count buckets of the summary histogram, by upper bound.
pub(super) const REUSE_BUCKETS: [(u32, &str); 8] = [
    (0, "0"),
    (1, "1"),
    (2, "2"),
    (5, "3-5"),
    (10, "6-10"),
    (100, "11-100"),
    (1000, "101-1000"),
    (u32::MAX, ">1000"),
];

/// The [`REUSE_BUCKETS`] entry a connection with `requests` requests falls in.
pub(super) fn reuse_bucket(requests: u32) -> usize {
    REUSE_BUCKETS
        .iter()
        .position(|(bound, _)| requests <= *bound)
        .unwrap_or(REUSE_BUCKETS.len() - 1)
}

/// Totals over all connections, kept as counters.
#[derive(Debug, Clone, Default)]
pub struct Totals {
    pub connections: u64,
    pub http_connections: u64,
    pub requests: u64,
    pub responses: u64,
    pub reuse_histogram: [u64; REUSE_BUCKETS.len()],
    pub pipelined_connections: u64,
    pub deepest_pipeline: u32,
    pub closers: Tally<Closer>,
    pub protocols: Tally<Protocol>,
    pub flagged: Tally<Flag>,
    /// Connections with a broken Keep-Alive promise.
    pub violations: u64,
    /// Connections with a keep-alive race.
    pub races: u64,
}

impl Totals {
    pub fn add(&mut self, record: &ConnectionRecord) {
        self.connections += 1;
        if record.protocol == Protocol::Http {
            self.http_connections += 1;
            self.reuse_histogram[reuse_bucket(record.requests.unwrap_or(0))] += 1;
        }
        self.requests += u64::from(record.requests.unwrap_or(0));
        self.responses += u64::from(record.responses.unwrap_or(0));
        // One-sided rows have no depth and no verdicts: they stay out of those figures.
        if record.pipeline_depth > Some(1) {
            self.pipelined_connections += 1;
        }
        self.deepest_pipeline = self
            .deepest_pipeline
            .max(record.pipeline_depth.unwrap_or(0));
        self.closers.add(record.closer);
        self.protocols.add(record.protocol);
        for flag in record.flags.iter() {
            self.flagged.add(flag);
        }
        self.violations += u64::from(record.is_violation());
        self.races += u64::from(
            record
                .verdicts
                .as_ref()
                .is_some_and(|v| v.race_request.is_some()),
        );
    }
}

/// The summary lines: totals, reuse histogram, closers, protocols, flags, skipped frames.
pub struct SummaryText {
    out: Box<dyn Write>,
}

impl SummaryText {
    pub fn new(out: Box<dyn Write>) -> SummaryText {
        SummaryText { out }
    }
}

fn tally_line<E: Named>(tally: &Tally<E>) -> String {
    let parts: Vec<String> = tally
        .by_name()
        .iter()
        .map(|(name, n)| format!("{name}: {n}"))
        .collect();
    parts.join(", ")
}

impl Sink for SummaryText {
    fn finish(&mut self, end: &RunEnd<'_>) -> io::Result<()> {
        let (totals, counts, out) = (end.totals, end.counts, &mut self.out);
        writeln!(
            out,
            "{} ({} HTTP), {}, {}; {}, {}",
            plural(totals.connections, "connection", "connections"),
            totals.http_connections,
            plural(totals.requests, "request", "requests"),
            plural(totals.responses, "response", "responses"),
            plural(counts.frames, "frame", "frames"),
            plural(counts.tcp_segments, "TCP segment", "TCP segments")
        )?;
        if let (Some(first), Some(last)) = (counts.first_ts, counts.last_ts) {
            writeln!(
                out,
                "time: {} to {} ({:.3} s)",
                rfc3339(first),
                rfc3339(last),
                seconds(last.saturating_sub(first))
            )?;
        }
        if totals.http_connections > 0 {
            let bars: Vec<String> = REUSE_BUCKETS
                .iter()
                .zip(totals.reuse_histogram)
                .filter(|(_, n)| *n > 0)
                .map(|((_, label), n)| format!("{label}: {n}"))
                .collect();
            writeln!(out, "requests per HTTP connection: {}", bars.join(", "))?;
        }
        writeln!(
            out,
            "pipelined connections: {} (deepest pipeline: {})",
            totals.pipelined_connections, totals.deepest_pipeline
        )?;
        if !totals.closers.is_empty() {
            writeln!(out, "first to close: {}", tally_line(&totals.closers))?;
        }
        if !totals.protocols.is_empty() {
            writeln!(out, "protocols: {}", tally_line(&totals.protocols))?;
        }
        if !totals.flagged.is_empty() {
            writeln!(out, "flagged connections: {}", tally_line(&totals.flagged))?;
        }
        if counts.late_packets > 0 {
            writeln!(
                out,
                "late packets of connections already written out: {}",
                counts.late_packets
            )?;
        }
        if counts.shed_connections > 0 {
            writeln!(
                out,
                "memory budget reached: {} written out early (flag memory-budget); peak estimate {} MiB",
                plural(counts.shed_connections, "connection", "connections"),
                counts.peak_memory >> 20
            )?;
        }
        if !counts.encapsulated.is_empty() {
            writeln!(
                out,
                "tunnelled frames: {}",
                tally_line(&counts.encapsulated)
            )?;
        }
        if counts.damaged_segments > 0 {
            writeln!(
                out,
                "TCP segments with an unusable header: {} (counted into their streams, flag bad-tcp-header)",
                counts.damaged_segments
            )?;
        }
        if counts.reassembled > 0 {
            writeln!(
                out,
                "IP datagrams put back together from fragments: {} (of {} fragments)",
                counts.reassembled,
                counts.reassembled + counts.fragments.saturating_sub(counts.fragments_lost)
            )?;
        }
        let skipped = [
            (counts.not_ip, "not IP"),
            (counts.not_tcp, "not TCP"),
            (
                counts.fragments_lost,
                "IP fragments of datagrams never completed",
            ),
            (counts.truncated, "cut inside a header"),
            (counts.bad_ip_headers, "bad IP header"),
            (counts.unsupported_link, "unsupported link type"),
        ];
        let skipped: Vec<String> = skipped
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| format!("{n} {what}"))
            .collect();
        if !skipped.is_empty() {
            writeln!(out, "frames skipped: {}", skipped.join(", "))?;
        }
        Ok(())
    }
}
