//! How typed records become cells. CSV, JSON lines and Parquet list the same columns, in the
//! same order, from one place: the [`Columns`] impls here. They differ only in how a value is
//! written ([`Style`]): CSV cells are text a spreadsheet reads (times as fixed-point epoch
//! seconds, token sets joined with `;`), JSON values keep their types (numbers, arrays), and
//! Parquet columns are typed by [`Cell::kind`] (times as nanoseconds, sets as lists).

use serde::ser::{Serialize, SerializeSeq, SerializeStruct, Serializer};

use crate::http::ConnectionTokens;
use crate::named::Named;
use crate::record::{ConnectionRecord, EpochNs, FlagSet, TransactionRecord};
use crate::verdict::{MaxVerdict, TimeoutVerdict, Verdicts};

use super::behaviour::signed_seconds;
use super::findings::{Finding, Subject};
use super::servers::ServerRecord;

/// The output format a row is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// CSV, with capture times in this format.
    Csv(TimeFormat),
    Json,
    /// Typed columns: times as nanoseconds since the epoch, lists as lists, nulls as nulls.
    Parquet,
}

/// How CSV cells show capture times (`--time-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeFormat {
    /// Epoch seconds with microseconds, like tshark's `frame.time_epoch`.
    Epoch,
    /// RFC 3339 in UTC with microseconds (`2026-11-25T10:15:02.123456Z`).
    Iso,
}

named_enum!(TimeFormat {
    Epoch => "epoch",
    Iso => "iso",
});

/// A capture time as RFC 3339 in UTC with microseconds: `2026-11-25T10:15:02.123456Z`.
pub fn rfc3339(ns: EpochNs) -> String {
    let ns = i64::try_from(ns).unwrap_or(i64::MAX);
    chrono::DateTime::from_timestamp_nanos(ns)
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// A record as one row of an output in `style`.
pub struct Row<'a, R> {
    pub record: &'a R,
    pub style: Style,
}

/// The type of a column in a typed output, known from the Rust type of its values alone, so
/// that a column with no value in any row (or a file with no rows) still has its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Counts, positions, sizes, status codes.
    Int,
    /// Seconds and means.
    Float,
    Bool,
    /// A capture time: nanoseconds since the Unix epoch, UTC.
    Time,
    /// Names, addresses, header values.
    Text,
    List(Box<Kind>),
}

/// A value that fills a cell: its `Serialize` form is the value in each [`Style`], its kind
/// the column type. "Not known" is `None` of the value's type.
pub trait Cell: Serialize {
    fn kind() -> Kind;
    /// Whether the cell may be empty ("not known / does not apply").
    const NULLABLE: bool = false;
}

macro_rules! cells_of_kind {
    ($kind:ident: $($ty:ty),+) => {
        $(impl Cell for $ty {
            fn kind() -> Kind {
                Kind::$kind
            }
        })+
    };
}

cells_of_kind!(Int: u16, u32, u64, usize);
cells_of_kind!(Float: f64);
cells_of_kind!(Bool: bool);
cells_of_kind!(Text: str, &str, String);

impl<N: Named + Serialize> Cell for N {
    fn kind() -> Kind {
        Kind::Text
    }
}

impl<T: Cell> Cell for Option<T> {
    fn kind() -> Kind {
        T::kind()
    }
    const NULLABLE: bool = true;
}

/// Where the columns of a row go: serde's `SerializeStruct` (CSV, JSON lines), a Parquet
/// batch, or the list of column names and kinds. Only values that are [`Cell`]s fit.
pub trait Cells {
    type Ok;
    type Error;
    fn serialize_field<T: Cell + ?Sized>(
        &mut self,
        name: &'static str,
        value: &T,
    ) -> Result<(), Self::Error>;
    fn end(self) -> Result<Self::Ok, Self::Error>;
}

/// A row type: its columns, in order, each once. Every output iterates this.
pub trait Columns {
    fn columns<C: Cells>(&self, row: C) -> Result<C::Ok, C::Error>;
}

/// Counts the columns of a row.
struct Count(usize);

impl Cells for Count {
    type Ok = usize;
    type Error = std::convert::Infallible;
    fn serialize_field<T: Cell + ?Sized>(
        &mut self,
        _: &'static str,
        _: &T,
    ) -> Result<(), Self::Error> {
        self.0 += 1;
        Ok(())
    }
    fn end(self) -> Result<usize, Self::Error> {
        Ok(self.0)
    }
}

/// The columns of a row as a serde struct.
struct Fields<S>(S);

impl<S: SerializeStruct> Cells for Fields<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    fn serialize_field<T: Cell + ?Sized>(
        &mut self,
        name: &'static str,
        value: &T,
    ) -> Result<(), S::Error> {
        self.0.serialize_field(name, value)
    }
    fn end(self) -> Result<S::Ok, S::Error> {
        self.0.end()
    }
}

impl<'a, R> Serialize for Row<'a, R>
where
    Row<'a, R>: Columns,
{
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Ok(len) = self.columns(Count(0));
        self.columns(Fields(serializer.serialize_struct("row", len)?))
    }
}

/// A column of a typed output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub kind: Kind,
    pub nullable: bool,
}

/// The columns of `record`'s row type, in order. They follow from the types alone: any
/// record of the type gives the same list.
pub fn schema<'a, R>(record: &'a R) -> Vec<Column>
where
    Row<'a, R>: Columns,
{
    struct Schema(Vec<Column>);
    impl Cells for Schema {
        type Ok = Vec<Column>;
        type Error = std::convert::Infallible;
        fn serialize_field<T: Cell + ?Sized>(
            &mut self,
            name: &'static str,
            _: &T,
        ) -> Result<(), Self::Error> {
            self.0.push(Column {
                name,
                kind: T::kind(),
                nullable: T::NULLABLE,
            });
            Ok(())
        }
        fn end(self) -> Result<Self::Ok, Self::Error> {
            Ok(self.0)
        }
    }
    let row = Row {
        record,
        style: Style::Parquet,
    };
    let Ok(columns) = row.columns(Schema(Vec::new()));
    columns
}

/// Seconds with microseconds: durations in every style.
pub fn seconds(ns: u64) -> f64 {
    (ns as f64 / 1e3).round() / 1e6
}

/// A capture time: `1700000000.123456` (like tshark's `frame.time_epoch`) or RFC 3339 as
/// CSV text, the epoch seconds as a JSON number, nanoseconds in Parquet.
struct Time(EpochNs, Style);

impl Serialize for Time {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Time(ns, style) = *self;
        match style {
            Style::Csv(TimeFormat::Epoch) => serializer.collect_str(&format_args!(
                "{}.{:06}",
                ns / 1_000_000_000,
                (ns % 1_000_000_000) / 1_000
            )),
            Style::Csv(TimeFormat::Iso) => serializer.collect_str(&rfc3339(ns)),
            Style::Json => serializer.serialize_f64((ns / 1_000) as f64 / 1e6),
            Style::Parquet => serializer.serialize_u64(ns),
        }
    }
}

impl Cell for Time {
    fn kind() -> Kind {
        Kind::Time
    }
}

fn time(ns: Option<EpochNs>, style: Style) -> Option<Time> {
    ns.map(|ns| Time(ns, style))
}

/// A list of values: `;`-joined text in CSV (`close;keep-alive`, `5;15`), an array of typed
/// values in JSON (`["close","keep-alive"]`, `[5,15]`) and Parquet.
struct List<'a, T>(&'a [T], Style);

impl<T: std::fmt::Display + Serialize> Serialize for List<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let List(values, style) = self;
        match style {
            Style::Csv(_) => {
                let mut text = String::new();
                for (i, value) in values.iter().enumerate() {
                    if i > 0 {
                        text.push(';');
                    }
                    std::fmt::Write::write_fmt(&mut text, format_args!("{value}"))
                        .map_err(serde::ser::Error::custom)?;
                }
                serializer.serialize_str(&text)
            }
            Style::Json | Style::Parquet => {
                let mut seq = serializer.serialize_seq(Some(values.len()))?;
                for value in values.iter() {
                    seq.serialize_element(value)?;
                }
                seq.end()
            }
        }
    }
}

impl<T: Cell + std::fmt::Display> Cell for List<'_, T> {
    fn kind() -> Kind {
        Kind::List(Box::new(T::kind()))
    }
}

/// A value written as its `Display` text (addresses).
struct Text<'a>(&'a dyn std::fmt::Display);

impl Serialize for Text<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self.0)
    }
}

impl Cell for Text<'_> {
    fn kind() -> Kind {
        Kind::Text
    }
}

/// Text taken from the wire (header values, request lines). A spreadsheet runs a CSV cell
/// that starts with `=`, `+`, `-`, `@`, a tab or a carriage return as a formula, so in CSV
/// such a cell gets a leading `'` (OWASP's advice against CSV injection); JSON and Parquet
/// keep the text as it was sent.
struct Wire<'a>(&'a str, Style);

impl std::fmt::Display for Wire<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Wire(text, style) = *self;
        if matches!(style, Style::Csv(_)) && text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
            f.write_str("'")?;
        }
        f.write_str(text)
    }
}

impl Serialize for Wire<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.1 {
            Style::Csv(_) => serializer.collect_str(self),
            Style::Json | Style::Parquet => serializer.serialize_str(self.0),
        }
    }
}

impl Cell for Wire<'_> {
    fn kind() -> Kind {
        Kind::Text
    }
}

fn flag_names(flags: FlagSet) -> Vec<&'static str> {
    flags.iter().map(Named::as_str).collect()
}

fn token_names(tokens: ConnectionTokens) -> Vec<&'static str> {
    tokens.names().collect()
}

/// Tokens that may be absent (no response): CSV has no null, so there an empty cell says
/// "no response" as it says "no tokens".
fn optional_tokens<'a>(
    names: &'a Option<Vec<&'static str>>,
    style: Style,
) -> Option<List<'a, &'static str>> {
    match (names, style) {
        (None, Style::Csv(_)) => Some(List(&[], style)),
        (None, Style::Json | Style::Parquet) => None,
        (Some(names), _) => Some(List(names, style)),
    }
}

impl Columns for Row<'_, ConnectionRecord> {
    fn columns<C: Cells>(&self, mut row: C) -> Result<C::Ok, C::Error> {
        let (r, style) = (self.record, self.style);
        let client_connection = token_names(r.client_connection);
        let server_first = r.server_connection_first.map(token_names);
        let server_last = r.server_connection_last.map(token_names);
        let flags = flag_names(r.flags);
        row.serialize_field("stream", &r.stream)?;
        row.serialize_field("client", &Text(&r.client))?;
        row.serialize_field("server", &Text(&r.server))?;
        row.serialize_field("client_by", &r.client_by)?;
        row.serialize_field("protocol", &r.protocol)?;
        row.serialize_field("first_ts", &Time(r.first_ts, style))?;
        row.serialize_field("last_ts", &Time(r.last_ts, style))?;
        row.serialize_field("duration_s", &seconds(r.duration_ns()))?;
        row.serialize_field("handshake", &r.handshake)?;
        row.serialize_field("syn_ts", &time(r.syn_ts, style))?;
        row.serialize_field("synack_ts", &time(r.synack_ts, style))?;
        row.serialize_field("packets", &r.packets)?;
        row.serialize_field("client_bytes", &r.client_bytes)?;
        row.serialize_field("server_bytes", &r.server_bytes)?;
        row.serialize_field("requests", &r.requests)?;
        row.serialize_field("responses", &r.responses)?;
        row.serialize_field("interim_responses", &r.interim_responses)?;
        row.serialize_field("unanswered_requests", &r.unanswered_requests)?;
        row.serialize_field("pipeline_depth", &r.pipeline_depth)?;
        row.serialize_field("pipelined_requests", &r.pipelined_requests)?;
        row.serialize_field("max_idle_s", &r.max_idle_ns.map(seconds))?;
        row.serialize_field("idle_before_close_s", &r.idle_before_close_ns.map(seconds))?;
        row.serialize_field("closer", &r.closer)?;
        row.serialize_field("close_ts", &time(r.close_ts, style))?;
        row.serialize_field("close_after_request", &r.close_after_request)?;
        row.serialize_field("fin_client", &r.fin_client)?;
        row.serialize_field("fin_server", &r.fin_server)?;
        row.serialize_field("rst_client", &r.rst_client)?;
        row.serialize_field("rst_server", &r.rst_server)?;
        row.serialize_field("client_fin_ts", &time(r.client_fin_ts, style))?;
        row.serialize_field("server_fin_ts", &time(r.server_fin_ts, style))?;
        row.serialize_field("client_rst_ts", &time(r.client_rst_ts, style))?;
        row.serialize_field("server_rst_ts", &time(r.server_rst_ts, style))?;
        row.serialize_field("client_http", &r.client_http)?;
        row.serialize_field("server_http", &r.server_http)?;
        row.serialize_field("client_connection", &List(&client_connection, style))?;
        row.serialize_field(
            "server_connection_first",
            &optional_tokens(&server_first, style),
        )?;
        row.serialize_field(
            "server_connection_last",
            &optional_tokens(&server_last, style),
        )?;
        row.serialize_field("close_announced_at", &r.close_announced_at)?;
        row.serialize_field("keep_alive_timeout_first", &r.keep_alive_timeout_first)?;
        row.serialize_field("keep_alive_max_first", &r.keep_alive_max_first)?;
        row.serialize_field("keep_alive_timeout_last", &r.keep_alive_timeout_last)?;
        row.serialize_field("keep_alive_max_last", &r.keep_alive_max_last)?;
        row.serialize_field("keep_alive_malformed", &r.keep_alive_malformed)?;
        row.serialize_field("server_software", &Wire(&r.server_software, style))?;
        row.serialize_field("implied_request_limit", &r.implied_request_limit)?;
        // Empty on a one-sided row: nothing was judged.
        row.serialize_field("max_verdict", &r.verdicts.as_ref().map(|v| v.max))?;
        row.serialize_field("timeout_verdict", &r.verdicts.as_ref().map(|v| v.timeout))?;
        row.serialize_field(
            "idle_close_s",
            &r.verdicts
                .as_ref()
                .and_then(|v| v.idle_close_ns)
                .map(seconds),
        )?;
        row.serialize_field(
            "kept_open_at_least_s",
            &r.verdicts
                .as_ref()
                .and_then(|v| v.kept_open_at_least_ns)
                .map(seconds),
        )?;
        row.serialize_field(
            "race_request",
            &r.verdicts.as_ref().and_then(|v| v.race_request),
        )?;
        row.serialize_field(
            "dropped_after_close",
            &r.verdicts.as_ref().map(|v| v.dropped_after_close),
        )?;
        row.serialize_field(
            "unannounced_close",
            &r.verdicts.as_ref().map(|v| v.unannounced_close),
        )?;
        row.serialize_field(
            "close_honoured",
            &r.verdicts.as_ref().and_then(|v| v.close_honoured),
        )?;
        row.serialize_field(
            "requests_after_close_announced",
            &r.requests_after_close_announced,
        )?;
        row.serialize_field(
            "violation",
            &r.verdicts.as_ref().map(Verdicts::is_violation),
        )?;
        row.serialize_field("retransmissions", &r.retransmissions)?;
        row.serialize_field("out_of_order", &r.out_of_order)?;
        row.serialize_field("gaps", &r.gaps)?;
        row.serialize_field("gap_bytes", &r.gap_bytes)?;
        row.serialize_field("parse_errors", &r.parse_errors)?;
        row.serialize_field("resyncs", &r.resyncs)?;
        row.serialize_field("flags", &List(&flags, style))?;
        row.serialize_field("handshake_rtt_s", &r.handshake_rtt_ns.map(seconds))?;
        row.serialize_field("idle_total_s", &r.idle_total_ns.map(seconds))?;
        row.serialize_field("captured_payload_bytes", &r.captured_payload_bytes)?;
        let (client_ka, server_ka) = (r.keepalive_client, r.keepalive_server);
        row.serialize_field(
            "tcp_keepalive_probes",
            &(client_ka.probes + server_ka.probes),
        )?;
        row.serialize_field("tcp_keepalive_probes_server", &server_ka.probes)?;
        row.serialize_field("tcp_keepalive_acks", &(client_ka.acks + server_ka.acks))?;
        row.serialize_field(
            "tcp_keepalive_interval_s",
            &r.keepalive_interval_ns().map(seconds),
        )?;
        row.serialize_field("user_agent", &r.user_agent)?;
        row.serialize_field("requests_beyond_max", &r.requests_beyond_max)?;
        row.serialize_field("longest_idle_open_s", &r.longest_idle_open_ns.map(seconds))?;
        row.end()
    }
}

impl Columns for Row<'_, TransactionRecord> {
    fn columns<C: Cells>(&self, mut row: C) -> Result<C::Ok, C::Error> {
        let (r, style) = (self.record, self.style);
        row.serialize_field("stream", &r.stream)?;
        row.serialize_field("client", &Text(&r.client))?;
        row.serialize_field("server", &Text(&r.server))?;
        row.serialize_field("position", &r.position)?;
        row.serialize_field("method", &Wire(&r.method, style))?;
        row.serialize_field("target", &Wire(&r.target, style))?;
        row.serialize_field("status", &r.status)?;
        row.serialize_field("request_ts", &Time(r.request_ts, style))?;
        row.serialize_field("request_end_ts", &time(r.request_end_ts, style))?;
        row.serialize_field("response_ts", &time(r.response_ts, style))?;
        row.serialize_field("response_end_ts", &time(r.response_end_ts, style))?;
        row.serialize_field("wait_s", &r.wait_ns().map(seconds))?;
        row.serialize_field("request_body_bytes", &r.request_body_bytes)?;
        row.serialize_field("response_body_bytes", &r.response_body_bytes)?;
        row.serialize_field("interim_responses", &r.interim_responses)?;
        row.serialize_field("pipelined", &r.pipelined)?;
        row.serialize_field("complete", &r.complete)?;
        row.serialize_field("host", &Wire(&r.host, style))?;
        row.serialize_field("ttfb_s", &r.ttfb_ns().map(seconds))?;
        row.serialize_field("response_s", &r.response_ns().map(seconds))?;
        row.end()
    }
}

impl Columns for Row<'_, ServerRecord> {
    fn columns<C: Cells>(&self, mut row: C) -> Result<C::Ok, C::Error> {
        let (r, style) = (self.record, self.style);
        row.serialize_field("server", &r.name())?;
        let software: Vec<Wire> = r.server_software.iter().map(|s| Wire(s, style)).collect();
        row.serialize_field("server_software", &List(&software, style))?;
        row.serialize_field("connections", &r.connections)?;
        row.serialize_field("requests", &r.requests)?;
        row.serialize_field("reuse_mean", &r.reuse_mean)?;
        row.serialize_field("reuse_max", &r.reuse_max)?;
        row.serialize_field("pipelined_connections", &r.pipelined_connections)?;
        row.serialize_field("keep_alive_timeouts", &List(&r.keep_alive_timeouts, style))?;
        row.serialize_field(
            "keep_alive_max_first",
            &List(&r.keep_alive_max_first, style),
        )?;
        row.serialize_field("idle_closes", &r.idle_closes.len())?;
        row.serialize_field("idle_close_min_s", &r.idle_closes.min().map(seconds))?;
        row.serialize_field("idle_close_median_s", &r.idle_closes.median().map(seconds))?;
        row.serialize_field("idle_close_max_s", &r.idle_closes.max().map(seconds))?;
        row.serialize_field("max_honoured", &r.max_verdicts.get(MaxVerdict::Honoured))?;
        row.serialize_field("max_exceeded", &r.max_verdicts.get(MaxVerdict::Exceeded))?;
        row.serialize_field("max_untested", &r.max_verdicts.get(MaxVerdict::Untested))?;
        row.serialize_field(
            "timeout_honoured",
            &r.timeout_verdicts.get(TimeoutVerdict::Honoured),
        )?;
        row.serialize_field(
            "timeout_closed_early",
            &r.timeout_verdicts.get(TimeoutVerdict::ClosedEarly),
        )?;
        row.serialize_field(
            "timeout_untested",
            &r.timeout_verdicts.get(TimeoutVerdict::Untested),
        )?;
        row.serialize_field("races", &r.races)?;
        row.serialize_field("unannounced_closes", &r.unannounced_closes)?;
        row.serialize_field("violations", &r.violations)?;
        row.serialize_field("verdict", &r.verdict)?;
        let [s2, s3, s4, s5] = r.status_classes;
        row.serialize_field("status_2xx", &s2)?;
        row.serialize_field("status_3xx", &s3)?;
        row.serialize_field("status_4xx", &s4)?;
        row.serialize_field("status_5xx", &s5)?;
        row.serialize_field("ttfb_median_s", &r.ttfb.median().map(seconds))?;
        row.serialize_field("ttfb_p95_s", &r.ttfb.percentile(95).map(seconds))?;
        row.serialize_field(
            "handshake_rtt_median_s",
            &r.handshake_rtts.median().map(seconds),
        )?;
        row.serialize_field("handshakes_avoided", &r.handshakes_avoided)?;
        row.serialize_field("rtt_saved_s", &r.rtt_saved_ns.map(seconds))?;
        row.serialize_field("idle_connection_s", &seconds(r.idle_ns))?;
        row.serialize_field("peak_connections", &r.peak_connections)?;
        let behaviour = &r.behaviour;
        row.serialize_field(
            "observed_idle_timeout_s",
            &behaviour.idle_timeout.inferred_ns().map(seconds),
        )?;
        row.serialize_field("idle_timeout_evidence", &behaviour.idle_timeout.evidence())?;
        row.serialize_field(
            "idle_timeout_at_least_s",
            &behaviour.idle_timeout_at_least_ns().map(seconds),
        )?;
        row.serialize_field("observed_request_limit", &behaviour.request_limit)?;
        row.serialize_field("max_reuse_idle_s", &r.reuse_idle_max_ns.map(seconds))?;
        row.serialize_field(
            "race_margin_s",
            &behaviour.race_margin_ns.map(signed_seconds),
        )?;
        row.serialize_field(
            "tcp_keepalive_interval_s",
            &behaviour.probing.shortest_interval_ns.map(seconds),
        )?;
        row.end()
    }
}

/// The measures of a finding as one object: `{"lost_requests": 2, ...}`.
struct Measures<'a>(&'a [(crate::report::Measure, f64)]);

impl Serialize for Measures<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (measure, value) in self.0 {
            map.serialize_entry(measure, value)?;
        }
        map.end()
    }
}

/// Findings are written as JSON lines only (`--findings-json`): their measures are an object.
impl Serialize for Row<'_, Finding> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (f, style) = (self.record, self.style);
        let (server, client) = match f.subject {
            Subject::Server(server) => (Some(server), None),
            Subject::Client(client) => (None, Some(client)),
        };
        let mut row = serializer.serialize_struct("finding", 12)?;
        row.serialize_field("kind", &f.kind)?;
        row.serialize_field("severity", &f.severity)?;
        row.serialize_field("server", &server.as_ref().map(|s| Text(s)))?;
        row.serialize_field("client", &client.as_ref().map(|c| Text(c)))?;
        row.serialize_field("server_software", &List(&f.software, style))?;
        row.serialize_field("connections", &f.connections)?;
        row.serialize_field("streams", &List(&f.streams, style))?;
        row.serialize_field("measures", &Measures(&f.measures))?;
        row.serialize_field("title", &f.title)?;
        row.serialize_field("seen", &f.seen)?;
        row.serialize_field("means", &f.means)?;
        row.serialize_field("advice", &f.advice)?;
        row.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_in_utc() {
        // Expected values from `date -u -d @SECONDS +%Y-%m-%dT%H:%M:%S`.
        let cases = [
            (0, "1970-01-01T00:00:00.000000Z"),
            (951_782_400_000_001_000, "2000-02-29T00:00:00.000001Z"),
            (1_795_628_315_273_867_999, "2026-11-25T17:38:35.273867Z"),
            (4_107_542_399_999_999_999, "2100-02-28T23:59:59.999999Z"),
        ];
        for (ns, text) in cases {
            assert_eq!(rfc3339(ns).to_string(), text, "{ns}");
        }
    }
}
