//! Output. Every output is a [`Sink`]: it takes connection and transaction records one at a
//! time as connections end, and writes what it writes at the end in [`Sink::finish`].
//! [`Report`] feeds a list of sinks and keeps the aggregations several of them share (the
//! totals and the per-server rows), so each is computed once.
//!
//! To add an output format, implement [`Sink`] in a file of its own here and push it onto
//! the list the command line builds.

mod behaviour;
mod cells;
mod clients;
mod files;
mod findings;
mod html;
mod parquet;
pub mod progress;
mod samples;
mod servers;
mod sightings;
mod summary;
mod table;
mod text_table;

use std::io::{self, Write};

use crate::pipeline::{Config, FrameCounts, Output, servers_budget};
use crate::record::{ConnectionRecord, TransactionRecord};

pub use behaviour::{
    AgentRecord, Agents, BehaviourText, ClientBehaviour, IdleTimeout, ServerBehaviour, agent_family,
};
pub use cells::{Row, Style, TimeFormat, rfc3339};
pub use clients::{ClientRecord, Clients};
pub use files::{Rows, RowsFile};
pub use findings::{Finding, FindingKind, FindingsText, Measure, Severity, Subject};
pub use html::HtmlReport;
pub use servers::{ServerRecord, Servers, ServersTable};
pub use summary::{SummaryText, Totals};
pub use table::{ConnectionTable, Only, SortKey, TableOptions};

/// `1 connection`, `2 connections`.
pub fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", noun(n, one, many))
}

/// `connection` for 1, `connections` for any other number.
pub fn noun<'a>(n: u64, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

/// What every column of the terminal tables shows (`--help`, the man page, docs/tables.md).
pub fn legend() -> String {
    format!(
        "{}\n{}",
        text_table::legend("Connection table columns", table::COLUMNS),
        text_table::legend("Server table columns", servers::COLUMNS)
    )
}

/// The headers of both terminal tables.
pub fn table_headers() -> impl Iterator<Item = &'static str> {
    table::COLUMNS
        .iter()
        .chain(servers::COLUMNS)
        .map(|column| column.header)
}

/// An output that names itself in its errors, keeping their kind (a closed pipe stays
/// [`io::ErrorKind::BrokenPipe`], which ends the program quietly).
pub struct NamedOutput {
    name: String,
    inner: Box<dyn Write>,
}

impl NamedOutput {
    pub fn new(name: String, inner: Box<dyn Write>) -> NamedOutput {
        NamedOutput { name, inner }
    }

    fn named(&self, err: io::Error) -> io::Error {
        io::Error::new(err.kind(), format!("{}: {err}", self.name))
    }
}

impl Write for NamedOutput {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf).map_err(|err| self.named(err))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush().map_err(|err| self.named(err))
    }
}

/// What every sink sees at the end of the run.
pub struct RunEnd<'a> {
    pub counts: &'a FrameCounts,
    pub totals: &'a Totals,
    /// Busiest server first.
    pub servers: &'a [ServerRecord],
    /// Most connections first.
    pub clients: &'a [ClientRecord],
    /// Most serious first.
    pub findings: &'a [Finding],
    /// `User-Agent` families, most connections first.
    pub agents: &'a [AgentRecord],
}

/// An output.
pub trait Sink {
    fn connection(&mut self, _record: &ConnectionRecord) -> io::Result<()> {
        Ok(())
    }

    fn transaction(&mut self, _record: &TransactionRecord) -> io::Result<()> {
        Ok(())
    }

    /// Whether this sink needs the text of each request — method, target, Host (transaction
    /// records always flow, for the per-server aggregation; the pipeline keeps their text
    /// only when some sink needs it).
    fn wants_transactions(&self) -> bool {
        false
    }

    /// Makes what was written so far visible (live capture flushes after every batch).
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// Live capture, about every 100 ms: the wall clock (files that rotate use it).
    fn tick(&mut self, _now_ns: u64) -> io::Result<()> {
        Ok(())
    }

    /// End of the run: write what is written at the end, and flush.
    fn finish(&mut self, end: &RunEnd<'_>) -> io::Result<()>;
}

/// The sinks of one run and the aggregations they share.
pub struct Report {
    sinks: Vec<Box<dyn Sink>>,
    totals: Totals,
    servers: Servers,
    clients: Clients,
    agents: Agents,
}

/// Text from the wire made safe for a terminal: every control character (C0, DEL and the C1
/// range, which 8-bit terminals obey as ESC sequences) is written as its escape (`\u{9b}`);
/// everything else, other languages included, is kept.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut safe = String::with_capacity(text.len() + 8);
    for ch in text.chars() {
        if ch.is_control() {
            safe.extend(ch.escape_unicode());
        } else {
            safe.push(ch);
        }
    }
    std::borrow::Cow::Owned(safe)
}

impl Report {
    /// Sinks finish in this order (the terminal parts print in it).
    pub fn new(sinks: Vec<Box<dyn Sink>>) -> Report {
        Report {
            sinks,
            totals: Totals::default(),
            servers: Servers::new(servers_budget(Config::default().max_memory)),
            clients: Clients::default(),
            agents: Agents::default(),
        }
    }

    /// Keeps the per-server aggregation within its share of `max_memory` (the whole
    /// `--max-memory`: the connection table takes the rest, see [`servers_budget`]).
    pub fn with_max_memory(mut self, max_memory: usize) -> Report {
        self.servers = Servers::new(servers_budget(max_memory));
        self
    }

    pub fn wants_transactions(&self) -> bool {
        self.sinks.iter().any(|sink| sink.wants_transactions())
    }

    pub fn totals(&self) -> &Totals {
        &self.totals
    }

    pub fn take(&mut self, output: Output) -> io::Result<()> {
        match output {
            Output::Connection(record) => {
                self.totals.add(&record);
                self.servers.add(&record);
                self.clients.add(&record);
                self.agents.add(&record);
                for sink in &mut self.sinks {
                    sink.connection(&record)?;
                }
            }
            Output::Transaction(record) => {
                self.servers.add_transaction(&record);
                for sink in &mut self.sinks {
                    sink.transaction(&record)?;
                }
            }
        }
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.sinks.iter_mut().try_for_each(|sink| sink.flush())
    }

    pub fn tick(&mut self, now_ns: u64) -> io::Result<()> {
        self.sinks.iter_mut().try_for_each(|sink| sink.tick(now_ns))
    }

    pub fn finish(&mut self, counts: &FrameCounts) -> io::Result<()> {
        let servers = self.servers.take_records();
        let clients = self.clients.records();
        let findings = findings::findings(&servers, &clients);
        let agents = self.agents.records();
        let end = RunEnd {
            counts,
            totals: &self.totals,
            servers: &servers,
            clients: &clients,
            findings: &findings,
            agents: &agents,
        };
        self.sinks.iter_mut().try_for_each(|sink| sink.finish(&end))
    }
}
