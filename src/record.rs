//! The records the pipeline produces: one [`ConnectionRecord`] per TCP connection and one
//! [`TransactionRecord`] per HTTP request. They hold typed values only — times as
//! nanoseconds, versions, flags and verdicts as enums; the writers in `report` turn them
//! into text, each in its own format.

use std::net::SocketAddr;

use crate::http::{ConnectionTokens, Protocol};
use crate::named::Named;
use crate::tcp::{ClientBy, KeepAliveProbes};
use crate::verdict::Verdicts;

/// A capture time: nanoseconds since the Unix epoch.
pub type EpochNs = u64;

/// The HTTP version a side used: the lowest seen on the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum HttpVersion {
    /// A simple request or response without a version (RFC 1945 §4.1).
    V0_9,
    V1_0,
    V1_1,
}

named_enum!(HttpVersion {
    V0_9 => "0.9",
    V1_0 => "1.0",
    V1_1 => "1.1",
});

/// Who closed first and how, as a single report value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closer {
    ClientFin,
    ServerFin,
    ClientRst,
    ServerRst,
    /// Neither side closed before the capture ended.
    CaptureEnded,
    /// Neither side closed; the connection was dropped from memory for being idle too long.
    Evicted,
}

named_enum!(Closer {
    ClientFin => "client-fin",
    ServerFin => "server-fin",
    ClientRst => "client-rst",
    ServerRst => "server-rst",
    CaptureEnded => "capture-ended",
    Evicted => "evicted",
});

/// Something a reader of a row should know about how it was measured. Reports list the
/// flags of a row in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    /// No SYN captured: the connection was already open when the capture began.
    MidStream,
    /// Bytes the capture never held (a hole given up).
    Gap,
    /// 101 Switching Protocols or CONNECT: the rest is not HTTP.
    Tunnel,
    ParseError,
    /// Responses with no request (the capture began mid-exchange).
    UnmatchedResponses,
    IncompleteResponse,
    /// More unanswered requests than are kept: the rest are counted, not paired.
    QueueOverflow,
    /// A RST far from the expected sequence number was counted but did not end anything.
    RstIgnored,
    /// The out-of-order buffer bound was hit.
    ReassemblyOverflow,
    CaptureEnded,
    Evicted,
    /// Written out early to stay within the memory budget.
    MemoryBudget,
    /// A new SYN reused the 4-tuple before this connection was seen to close.
    PortReused,
    /// Packets that came after the connection's earlier row was written out.
    Continued,
    /// Live capture: the kernel dropped packets while the connection was open.
    KernelDrops,
    /// Segments whose TCP header could not be used were counted in, not analysed.
    BadTcpHeader,
    /// One direction of the connection was never captured.
    OneSided,
}

named_enum!(Flag {
    MidStream => "mid-stream",
    Gap => "gap",
    Tunnel => "tunnel",
    ParseError => "parse-error",
    UnmatchedResponses => "unmatched-responses",
    IncompleteResponse => "incomplete-response",
    QueueOverflow => "queue-overflow",
    RstIgnored => "rst-ignored",
    ReassemblyOverflow => "reassembly-overflow",
    CaptureEnded => "capture-ended",
    Evicted => "evicted",
    MemoryBudget => "memory-budget",
    PortReused => "port-reused",
    Continued => "continued",
    KernelDrops => "kernel-drops",
    BadTcpHeader => "bad-tcp-header",
    OneSided => "one-sided",
});

/// A set of [`Flag`]s.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct FlagSet(u32);

impl std::fmt::Debug for FlagSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl FlagSet {
    pub fn insert(&mut self, flag: Flag) {
        self.0 |= 1 << flag.index();
    }

    pub fn contains(self, flag: Flag) -> bool {
        self.0 & (1 << flag.index()) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The flags set, in report order.
    pub fn iter(self) -> impl Iterator<Item = Flag> {
        Flag::ALL
            .iter()
            .copied()
            .filter(move |flag| self.contains(*flag))
    }
}

impl FromIterator<Flag> for FlagSet {
    fn from_iter<I: IntoIterator<Item = Flag>>(flags: I) -> FlagSet {
        let mut set = FlagSet::default();
        flags.into_iter().for_each(|flag| set.insert(flag));
        set
    }
}

/// One row per TCP connection: the main output. Column meanings are in `docs/csv.md`;
/// times are [`EpochNs`], durations nanoseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionRecord {
    /// Wireshark's `tcp.stream` number.
    pub stream: u64,
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub client_by: ClientBy,
    pub protocol: Protocol,
    pub first_ts: EpochNs,
    pub last_ts: EpochNs,
    /// Both SYN and SYN-ACK were captured.
    pub handshake: bool,
    pub syn_ts: Option<EpochNs>,
    pub synack_ts: Option<EpochNs>,
    /// SYN to the client's ACK of the SYN-ACK: one round trip as seen at the capture point.
    pub handshake_rtt_ns: Option<u64>,
    pub packets: u64,
    pub client_bytes: u64,
    pub server_bytes: u64,
    /// `None` when the client's direction was never captured (flag `one-sided`): what it
    /// sent is not known, not zero.
    pub requests: Option<u32>,
    /// `None` when the server's direction was never captured (flag `one-sided`).
    pub responses: Option<u32>,
    pub interim_responses: Option<u32>,
    /// The fields from here to `idle_before_close_ns` need both directions: `None` on a
    /// one-sided row, where depth would only say the other side was not captured.
    pub unanswered_requests: Option<u32>,
    pub pipeline_depth: Option<u32>,
    pub pipelined_requests: Option<u32>,
    pub max_idle_ns: Option<u64>,
    pub idle_before_close_ns: Option<u64>,
    pub closer: Closer,
    pub close_ts: Option<EpochNs>,
    pub close_after_request: Option<u32>,
    pub fin_client: u32,
    pub fin_server: u32,
    pub rst_client: u32,
    pub rst_server: u32,
    pub client_fin_ts: Option<EpochNs>,
    pub server_fin_ts: Option<EpochNs>,
    pub client_rst_ts: Option<EpochNs>,
    pub server_rst_ts: Option<EpochNs>,
    /// `None` without requests (responses for the server side).
    pub client_http: Option<HttpVersion>,
    pub server_http: Option<HttpVersion>,
    pub client_connection: ConnectionTokens,
    /// `None` without a final response.
    pub server_connection_first: Option<ConnectionTokens>,
    pub server_connection_last: Option<ConnectionTokens>,
    pub close_announced_at: Option<u32>,
    pub keep_alive_timeout_first: Option<u32>,
    pub keep_alive_max_first: Option<u32>,
    pub keep_alive_timeout_last: Option<u32>,
    pub keep_alive_max_last: Option<u32>,
    pub keep_alive_malformed: bool,
    /// The first `Server` header, cut at 128 bytes; empty when there was none.
    pub server_software: String,
    pub implied_request_limit: Option<u32>,
    /// Whether the server kept its Keep-Alive promises; `None` on a one-sided row, where
    /// nothing can be judged.
    pub verdicts: Option<Verdicts>,
    pub requests_after_close_announced: u32,
    pub retransmissions: u64,
    pub out_of_order: u64,
    pub gaps: u64,
    pub gap_bytes: u64,
    pub parse_errors: u32,
    pub resyncs: u32,
    pub flags: FlagSet,
    /// Time the connection sat open with nothing in flight after a response (between
    /// responses and the next request, and after the last one until the close); `None`
    /// without responses.
    pub idle_total_ns: Option<u64>,
    /// Payload bytes both ways that reached user space: what the snaplen kept, or what
    /// `--ebpf` did not shed.
    pub captured_payload_bytes: u64,
    /// TCP keep-alive probes the client sent (and its ACKs to the server's).
    pub keepalive_client: KeepAliveProbes,
    /// TCP keep-alive probes the server sent (and its ACKs to the client's).
    pub keepalive_server: KeepAliveProbes,
    /// The first request's `User-Agent`, cut at 128 bytes; empty when there was none.
    pub user_agent: String,
    /// Requests the client sent when the server's `max=` so far allowed no more.
    pub requests_beyond_max: u32,
    /// The longest the connection was seen idle and kept open by the server: the longest
    /// gap before a reuse, or the idle time after the last response until the client closed
    /// or the capture ended. A lower bound on the server's idle timeout.
    pub longest_idle_open_ns: Option<u64>,
}

/// Nowhere: the addresses of a [`ConnectionRecord::blank`] row.
fn nowhere() -> SocketAddr {
    SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, 0))
}

impl ConnectionRecord {
    /// A record of nothing: every count zero, every optional value unknown. Outputs that need
    /// the shape of a row before any row exists (the schema of a Parquet file) take it from
    /// here; only the types matter, so a new field needs nothing but its empty value.
    pub fn blank() -> ConnectionRecord {
        ConnectionRecord {
            stream: 0,
            client: nowhere(),
            server: nowhere(),
            client_by: ClientBy::Port,
            protocol: Protocol::default(),
            first_ts: 0,
            last_ts: 0,
            handshake: false,
            syn_ts: None,
            synack_ts: None,
            packets: 0,
            client_bytes: 0,
            server_bytes: 0,
            requests: None,
            responses: None,
            interim_responses: None,
            unanswered_requests: None,
            pipeline_depth: None,
            pipelined_requests: None,
            max_idle_ns: None,
            idle_before_close_ns: None,
            closer: Closer::CaptureEnded,
            close_ts: None,
            close_after_request: None,
            fin_client: 0,
            fin_server: 0,
            rst_client: 0,
            rst_server: 0,
            client_fin_ts: None,
            server_fin_ts: None,
            client_rst_ts: None,
            server_rst_ts: None,
            client_http: None,
            server_http: None,
            client_connection: ConnectionTokens::default(),
            server_connection_first: None,
            server_connection_last: None,
            close_announced_at: None,
            keep_alive_timeout_first: None,
            keep_alive_max_first: None,
            keep_alive_timeout_last: None,
            keep_alive_max_last: None,
            keep_alive_malformed: false,
            server_software: String::new(),
            implied_request_limit: None,
            verdicts: None,
            requests_after_close_announced: 0,
            retransmissions: 0,
            out_of_order: 0,
            gaps: 0,
            gap_bytes: 0,
            parse_errors: 0,
            resyncs: 0,
            flags: FlagSet::default(),
            handshake_rtt_ns: None,
            idle_total_ns: None,
            captured_payload_bytes: 0,
            keepalive_client: KeepAliveProbes::default(),
            keepalive_server: KeepAliveProbes::default(),
            user_agent: String::new(),
            requests_beyond_max: 0,
            longest_idle_open_ns: None,
        }
    }

    pub fn duration_ns(&self) -> u64 {
        self.last_ts.saturating_sub(self.first_ts)
    }

    /// A broken Keep-Alive promise (never on a one-sided row).
    pub fn is_violation(&self) -> bool {
        self.verdicts.as_ref().is_some_and(Verdicts::is_violation)
    }

    /// The shortest time between two TCP keep-alive probes of the same side.
    pub fn keepalive_interval_ns(&self) -> Option<u64> {
        let [client, server] =
            [self.keepalive_client, self.keepalive_server].map(|side| side.shortest_interval_ns);
        match (client, server) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// One request and its response, for the transactions output.
#[derive(Debug, Clone, PartialEq)]
pub struct TransactionRecord {
    pub stream: u64,
    pub client: SocketAddr,
    pub server: SocketAddr,
    /// 1-based position of the request on its connection.
    pub position: u32,
    pub method: String,
    pub target: String,
    /// The `Host` header, cut at 256 bytes; empty when there was none.
    pub host: String,
    /// `None` when no final response was seen.
    pub status: Option<u16>,
    pub request_ts: EpochNs,
    pub request_end_ts: Option<EpochNs>,
    pub response_ts: Option<EpochNs>,
    /// The segment that carried the response's first byte.
    pub response_first_ts: Option<EpochNs>,
    pub response_end_ts: Option<EpochNs>,
    pub request_body_bytes: u64,
    pub response_body_bytes: Option<u64>,
    pub interim_responses: u32,
    /// Sent while an earlier request on the connection was still unanswered.
    pub pipelined: bool,
    /// False when part of the exchange was not in the capture.
    pub complete: bool,
}

impl TransactionRecord {
    /// A request of nothing (see [`ConnectionRecord::blank`]).
    pub fn blank() -> TransactionRecord {
        TransactionRecord {
            stream: 0,
            client: nowhere(),
            server: nowhere(),
            position: 0,
            method: String::new(),
            target: String::new(),
            status: None,
            request_ts: 0,
            request_end_ts: None,
            response_ts: None,
            response_end_ts: None,
            request_body_bytes: 0,
            response_body_bytes: None,
            interim_responses: 0,
            pipelined: false,
            complete: false,
            host: String::new(),
            response_first_ts: None,
        }
    }

    /// From the request head to the first response head.
    pub fn wait_ns(&self) -> Option<u64> {
        self.response_ts
            .map(|response| response.saturating_sub(self.request_ts))
    }

    /// Time to first byte: from the request's last byte to its response's first byte, as
    /// seen at the capture point (tshark's `http.time` when the response is one segment).
    /// `None` without a response, or when the answer began before the request ended.
    pub fn ttfb_ns(&self) -> Option<u64> {
        let first = self.response_first_ts?;
        first.checked_sub(self.request_end_ts?)
    }

    /// From the response's first byte to its last.
    pub fn response_ns(&self) -> Option<u64> {
        let first = self.response_first_ts?;
        self.response_end_ts?.checked_sub(first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_come_out_in_report_order() {
        let flags: FlagSet = [Flag::KernelDrops, Flag::MidStream, Flag::Evicted]
            .into_iter()
            .collect();
        let names: Vec<&str> = flags.iter().map(Flag::as_str).collect();
        assert_eq!(names, ["mid-stream", "evicted", "kernel-drops"]);
        assert!(flags.contains(Flag::Evicted) && !flags.contains(Flag::Gap));
    }
}
