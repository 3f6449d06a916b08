//! Per-connection facts: a [`Ledger`] follows the HTTP events of one connection (the queue of
//! requests waiting for answers, idle gaps, adverts, the first close) and, when the connection
//! ends, yields one [`ConnectionRecord`] plus a [`TransactionRecord`] per request.

use std::collections::VecDeque;

use serde::Serialize;

use crate::http::{ConnectionTokens, HttpEvent, KeepAliveAdvert, Protocol};
use crate::tcp::{ClientBy, Dir, TcpConnection};
use crate::verdict::{KeepAliveFacts, MaxVerdict, Side, TimeoutVerdict, Tolerance, verdicts};

/// How the first side to close did it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CloseKind {
    Fin,
    Rst,
}

/// Who closed first and how, as a single report value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
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

impl Closer {
    pub fn name(self) -> &'static str {
        match self {
            Closer::ClientFin => "client-fin",
            Closer::ServerFin => "server-fin",
            Closer::ClientRst => "client-rst",
            Closer::ServerRst => "server-rst",
            Closer::CaptureEnded => "capture-ended",
            Closer::Evicted => "evicted",
        }
    }
}

/// Why a connection's record was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// FIN both ways, or a RST.
    Closed,
    CaptureEnded,
    Evicted,
    /// A new SYN reused the 4-tuple before this connection was seen to close.
    Superseded,
    /// Written out early, idle the longest when the memory budget was reached.
    MemoryBudget,
}

#[derive(Debug, Clone, Copy)]
struct FirstClose {
    dir: Dir,
    kind: CloseKind,
    ts: u64,
    after_request: u32,
}

struct PendingRequest {
    position: u32,
    method: Box<str>,
    target: Box<str>,
    start_ts: u64,
    end_ts: Option<u64>,
    body_bytes: u64,
    pipelined: bool,
    /// Sent after a response announcing `Connection: close` had been seen.
    after_close_announced: bool,
    interim: u32,
    response: Option<ResponseSeen>,
}

#[derive(Clone, Copy)]
struct ResponseSeen {
    status: u16,
    start_ts: u64,
}

/// The HTTP-level account of one connection.
#[derive(Default)]
pub struct Ledger {
    requests: u32,
    responses: u32,
    interim_responses: u32,
    unmatched_responses: u32,
    outstanding: VecDeque<PendingRequest>,
    /// Keeps request details for the transactions output only when asked for.
    keep_details: bool,
    pipeline_depth: u32,
    pipelined_requests: u32,
    last_response_end: Option<u64>,
    max_idle_ns: Option<u64>,
    client_connection: ConnectionTokens,
    client_http10: bool,
    server_http10: bool,
    client_http09: bool,
    server_http09: bool,
    server_connection_first: Option<ConnectionTokens>,
    server_connection_last: Option<ConnectionTokens>,
    keep_alive_first: Option<KeepAliveAdvert>,
    keep_alive_last: Option<KeepAliveAdvert>,
    keep_alive_malformed: bool,
    /// Position of the first response that said `Connection: close`.
    close_announced_at: Option<u32>,
    requests_after_close_announced: u32,
    responses_after_close_announced: u32,
    /// Tightest total-request limit implied by `max=` (position + max).
    implied_limit: Option<u32>,
    /// Last `timeout=` advertised.
    advertised_timeout: Option<u32>,
    server_header: Option<Box<str>>,
    parse_errors: u32,
    resyncs: u32,
    lost_bytes: u64,
    tunnel: bool,
    protocol: Protocol,
    first_close: Option<FirstClose>,
    /// Responses whose body was cut by a gap or the end of the connection.
    incomplete_responses: u32,
    /// More requests were waiting for answers than are kept.
    queue_overflow: bool,
}

/// Unanswered requests kept per connection.
const MAX_OUTSTANDING: usize = 100_000;

/// One request and its response, for the transactions CSV.
#[derive(Debug, Clone, Serialize)]
pub struct TransactionRecord {
    pub stream: u64,
    pub client: String,
    pub server: String,
    /// 1-based position of the request on its connection.
    pub position: u32,
    pub method: String,
    pub target: String,
    /// Empty when no final response was seen.
    pub status: Option<u16>,
    pub request_ts: String,
    pub request_end_ts: Option<String>,
    pub response_ts: Option<String>,
    pub response_end_ts: Option<String>,
    /// Seconds from the request head to the first response head.
    pub wait_s: Option<f64>,
    pub request_body_bytes: u64,
    pub response_body_bytes: Option<u64>,
    pub interim_responses: u32,
    /// Sent while an earlier request on the connection was still unanswered.
    pub pipelined: bool,
    /// False when part of the exchange was not in the capture.
    pub complete: bool,
}

/// One row per TCP connection: the main output. Column meanings are in `docs/csv.md`.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectionRecord {
    pub stream: u64,
    pub client: String,
    pub server: String,
    pub client_by: ClientBy,
    pub protocol: Protocol,
    pub first_ts: String,
    pub last_ts: String,
    pub duration_s: f64,
    /// Both SYN and SYN-ACK were captured.
    pub handshake: bool,
    pub syn_ts: Option<String>,
    pub synack_ts: Option<String>,
    pub packets: u64,
    pub client_bytes: u64,
    pub server_bytes: u64,
    pub requests: u32,
    pub responses: u32,
    pub interim_responses: u32,
    pub unanswered_requests: u32,
    pub pipeline_depth: u32,
    pub pipelined_requests: u32,
    pub max_idle_s: Option<f64>,
    pub idle_before_close_s: Option<f64>,
    pub closer: Closer,
    pub close_ts: Option<String>,
    pub close_after_request: Option<u32>,
    pub fin_client: u32,
    pub fin_server: u32,
    pub rst_client: u32,
    pub rst_server: u32,
    pub client_fin_ts: Option<String>,
    pub server_fin_ts: Option<String>,
    pub client_rst_ts: Option<String>,
    pub server_rst_ts: Option<String>,
    pub client_http: String,
    pub server_http: String,
    pub client_connection: String,
    pub server_connection_first: String,
    pub server_connection_last: String,
    pub close_announced_at: Option<u32>,
    pub keep_alive_timeout_first: Option<u32>,
    pub keep_alive_max_first: Option<u32>,
    pub keep_alive_timeout_last: Option<u32>,
    pub keep_alive_max_last: Option<u32>,
    pub keep_alive_malformed: bool,
    pub server_software: String,
    pub implied_request_limit: Option<u32>,
    pub max_verdict: MaxVerdict,
    pub timeout_verdict: TimeoutVerdict,
    pub idle_close_s: Option<f64>,
    pub kept_open_at_least_s: Option<f64>,
    pub race_request: Option<u32>,
    pub dropped_after_close: u32,
    pub unannounced_close: bool,
    pub close_honoured: Option<bool>,
    pub requests_after_close_announced: u32,
    pub violation: bool,
    pub retransmissions: u64,
    pub out_of_order: u64,
    pub gaps: u64,
    pub gap_bytes: u64,
    pub parse_errors: u32,
    pub resyncs: u32,
    /// Semicolon-separated: mid-stream, gap, tunnel, evicted, capture-ended, parse-error, ...
    pub flags: String,
}

/// Formats nanoseconds since the epoch as seconds with microseconds, like tshark's epoch time.
pub fn epoch_seconds(ts_ns: u64) -> String {
    format!(
        "{}.{:06}",
        ts_ns / 1_000_000_000,
        (ts_ns % 1_000_000_000) / 1_000
    )
}

fn seconds(ns: u64) -> f64 {
    (ns as f64 / 1e3).round() / 1e6
}

impl Ledger {
    pub fn new(keep_details: bool) -> Ledger {
        Ledger {
            keep_details,
            ..Ledger::default()
        }
    }

    /// Bytes held by the queue of unanswered requests.
    pub fn queued_bytes(&self) -> usize {
        self.outstanding.len() * std::mem::size_of::<PendingRequest>()
    }

    /// The last `timeout=` the server advertised.
    pub fn advertised_timeout(&self) -> Option<u32> {
        self.advertised_timeout
    }

    /// Records the first FIN or RST of the connection, whichever side sent it.
    pub fn on_close_flag(&mut self, dir: Dir, kind: CloseKind, ts: u64) {
        if self.first_close.is_none() {
            self.first_close = Some(FirstClose {
                dir,
                kind,
                ts,
                after_request: self.requests,
            });
        }
    }

    pub fn on_http(
        &mut self,
        event: &HttpEvent<'_>,
        ts: u64,
        finished: &mut impl FnMut(PendingTransaction),
    ) {
        match *event {
            HttpEvent::ClientIs(_) => {}
            HttpEvent::Protocol(protocol) => self.protocol = protocol,
            HttpEvent::Request(head) => {
                if self.outstanding.is_empty()
                    && let Some(end) = self.last_response_end
                {
                    let idle = ts.saturating_sub(end);
                    self.max_idle_ns = Some(self.max_idle_ns.map_or(idle, |m| m.max(idle)));
                }
                self.requests += 1;
                if self.close_announced_at.is_some() {
                    self.requests_after_close_announced += 1;
                }
                self.client_connection = self.client_connection.union(head.connection);
                self.client_http10 |= head.version == 0;
                self.client_http09 |= head.version == 9;
                let pipelined = !self.outstanding.is_empty();
                if pipelined {
                    self.pipelined_requests += 1;
                }
                let (method, target) = if self.keep_details {
                    (head.method.into(), truncate(head.target, 512).into())
                } else {
                    (Box::default(), Box::default())
                };
                if self.outstanding.len() >= MAX_OUTSTANDING {
                    // Requests nobody answers (zeek#1705) must not grow memory without end:
                    // counted, not queued; later responses may pair with the wrong request.
                    self.queue_overflow = true;
                    return;
                }
                self.outstanding.push_back(PendingRequest {
                    position: self.requests,
                    method,
                    target,
                    start_ts: ts,
                    end_ts: None,
                    body_bytes: 0,
                    pipelined,
                    after_close_announced: self.close_announced_at.is_some(),
                    interim: 0,
                    response: None,
                });
                self.pipeline_depth = self.pipeline_depth.max(self.outstanding.len() as u32);
            }
            HttpEvent::RequestEnd { body_bytes, .. } => {
                if let Some(request) = self
                    .outstanding
                    .iter_mut()
                    .rev()
                    .find(|r| r.end_ts.is_none())
                {
                    request.end_ts = Some(ts);
                    request.body_bytes = body_bytes;
                }
            }
            HttpEvent::Response(head) => {
                if head.is_interim() {
                    self.interim_responses += 1;
                } else {
                    self.responses += 1;
                    if self.close_announced_at.is_some() {
                        self.responses_after_close_announced += 1;
                    }
                    let connection = head.connection;
                    self.server_connection_first.get_or_insert(connection);
                    self.server_connection_last = Some(connection);
                    // RFC 9112 §9.3: an HTTP/1.0 response without keep-alive closes too.
                    let closes = connection.has(ConnectionTokens::CLOSE)
                        || (matches!(head.version, 0 | 9)
                            && !connection.has(ConnectionTokens::KEEP_ALIVE));
                    if closes {
                        self.close_announced_at.get_or_insert(self.responses);
                    }
                    if let Some(advert) = head.keep_alive {
                        if let Some(max) = advert.max {
                            let limit = self.responses.saturating_add(max);
                            self.implied_limit =
                                Some(self.implied_limit.map_or(limit, |l| l.min(limit)));
                        }
                        if let Some(timeout) = advert.timeout {
                            self.advertised_timeout = Some(timeout);
                        }
                        self.keep_alive_first.get_or_insert(advert);
                        self.keep_alive_last = Some(advert);
                        self.keep_alive_malformed |= advert.malformed;
                    }
                    self.server_http10 |= head.version == 0;
                    self.server_http09 |= head.version == 9;
                }
                if self.server_header.is_none()
                    && let Some(server) = head.server
                {
                    self.server_header =
                        Some(truncate(&String::from_utf8_lossy(server), 128).into());
                }
                match self.outstanding.iter_mut().find(|r| r.response.is_none()) {
                    // An interim answer leaves the request waiting for its final one.
                    Some(request) if head.is_interim() => request.interim += 1,
                    Some(request) => {
                        request.response = Some(ResponseSeen {
                            status: head.status,
                            start_ts: ts,
                        });
                    }
                    None if !head.is_interim() => self.unmatched_responses += 1,
                    None => {}
                }
            }
            HttpEvent::ResponseEnd {
                body_bytes,
                complete,
            } => {
                self.last_response_end = Some(ts);
                if !complete {
                    self.incomplete_responses += 1;
                }
                if self
                    .outstanding
                    .front()
                    .is_some_and(|r| r.response.is_some())
                    && let Some(request) = self.outstanding.pop_front()
                {
                    finished(PendingTransaction {
                        request,
                        response_end_ts: Some(ts),
                        response_body_bytes: Some(body_bytes),
                        complete,
                    });
                }
            }
            HttpEvent::Tunnel => {
                self.tunnel = true;
                // What the switching response said about the connection no longer applies.
                if self.close_announced_at == Some(self.responses) {
                    self.close_announced_at = None;
                }
            }
            HttpEvent::Error(_, _) => self.parse_errors += 1,
            HttpEvent::Lost { bytes } => self.lost_bytes += bytes,
            HttpEvent::Resync { .. } => self.resyncs += 1,
        }
    }

    /// Requests still waiting at the end become transactions without a response.
    pub fn drain_unanswered(&mut self, finished: &mut impl FnMut(PendingTransaction)) {
        while let Some(request) = self.outstanding.pop_front() {
            finished(PendingTransaction {
                request,
                response_end_ts: None,
                response_body_bytes: None,
                complete: false,
            });
        }
    }

    /// Builds the connection's row. `tcp` supplies addresses, counters and teardown facts.
    /// The facts the Keep-Alive verdicts are drawn from.
    fn keep_alive_facts(&self, tcp: &TcpConnection, client_dir: Dir) -> KeepAliveFacts {
        let server = tcp.teardown(client_dir.opposite());
        KeepAliveFacts {
            requests: self.requests,
            responses: self.responses,
            implied_limit: self.implied_limit,
            advertised_timeout_s: self.advertised_timeout,
            close_announced_at: self.close_announced_at,
            client_asked_close: self.client_connection.has(ConnectionTokens::CLOSE)
                || self.client_http09
                || (self.client_http10
                    && !self.client_connection.has(ConnectionTokens::KEEP_ALIVE)),
            tunnel: self.tunnel,
            first_close: self.first_close.map(|close| {
                let side = if close.dir == client_dir {
                    Side::Client
                } else {
                    Side::Server
                };
                (side, close.ts)
            }),
            server_closed: server.fins + server.rsts > 0,
            last_response_end_ns: self.last_response_end,
            last_packet_ns: tcp.last_ts,
            unanswered: self
                .outstanding
                .iter()
                .filter(|r| r.response.is_none())
                .map(|r| (r.position, r.start_ts, r.after_close_announced))
                .collect(),
            requests_after_close_announced: self.requests_after_close_announced,
            responses_after_close_announced: self.responses_after_close_announced,
        }
    }

    /// Builds the connection's row; call before [`Ledger::drain_unanswered`].
    pub fn record(
        &self,
        tcp: &TcpConnection,
        end: EndReason,
        tolerance: &Tolerance,
    ) -> ConnectionRecord {
        let unanswered = self.outstanding.len() as u32;
        let (client_dir, client_by) = tcp.client_or_guess();
        let server_dir = client_dir.opposite();
        let verdict = verdicts(&self.keep_alive_facts(tcp, client_dir), tolerance);
        let client_teardown = tcp.teardown(client_dir);
        let server_teardown = tcp.teardown(server_dir);
        let mut anomalies = tcp.anomalies(client_dir);
        let other = tcp.anomalies(server_dir);
        anomalies.retransmissions += other.retransmissions;
        anomalies.out_of_order += other.out_of_order;
        anomalies.gaps += other.gaps;
        anomalies.gap_bytes += other.gap_bytes;

        let closer = match self.first_close {
            Some(close) => match (close.dir == client_dir, close.kind) {
                (true, CloseKind::Fin) => Closer::ClientFin,
                (false, CloseKind::Fin) => Closer::ServerFin,
                (true, CloseKind::Rst) => Closer::ClientRst,
                (false, CloseKind::Rst) => Closer::ServerRst,
            },
            None if matches!(end, EndReason::Evicted | EndReason::MemoryBudget) => Closer::Evicted,
            None => Closer::CaptureEnded,
        };
        let idle_before_close = match (self.first_close, self.last_response_end) {
            (Some(close), Some(end)) if unanswered == 0 && close.ts >= end => {
                Some(seconds(close.ts - end))
            }
            _ => None,
        };

        let mut flags = Vec::new();
        if client_by != ClientBy::Syn {
            flags.push("mid-stream");
        }
        if anomalies.gaps > 0 {
            flags.push("gap");
        }
        if self.tunnel {
            flags.push("tunnel");
        }
        if self.parse_errors > 0 {
            flags.push("parse-error");
        }
        if self.unmatched_responses > 0 {
            flags.push("unmatched-responses");
        }
        if self.incomplete_responses > 0 {
            flags.push("incomplete-response");
        }
        if self.queue_overflow {
            flags.push("queue-overflow");
        }
        if tcp.anomalies(client_dir).ignored_rsts + other.ignored_rsts > 0 {
            flags.push("rst-ignored");
        }
        if tcp.anomalies(client_dir).buffer_overflows + other.buffer_overflows > 0 {
            flags.push("reassembly-overflow");
        }
        match end {
            EndReason::Closed => {}
            EndReason::CaptureEnded => flags.push("capture-ended"),
            EndReason::Evicted => flags.push("evicted"),
            EndReason::Superseded => flags.push("port-reused"),
            EndReason::MemoryBudget => flags.push("evicted;memory-budget"),
        }

        let http_version = |any: bool, http09: bool, http10: bool| match (any, http09, http10) {
            (false, _, _) => String::new(),
            (true, true, _) => "0.9".to_string(),
            (true, false, true) => "1.0".to_string(),
            (true, false, false) => "1.1".to_string(),
        };
        let advert = |a: Option<KeepAliveAdvert>| a.unwrap_or_default();
        ConnectionRecord {
            stream: tcp.stream,
            client: tcp.endpoints[client_dir.index()].to_string(),
            server: tcp.endpoints[server_dir.index()].to_string(),
            client_by,
            protocol: self.protocol,
            first_ts: epoch_seconds(tcp.first_ts),
            last_ts: epoch_seconds(tcp.last_ts),
            duration_s: seconds(tcp.last_ts.saturating_sub(tcp.first_ts)),
            handshake: tcp.syn_ts.is_some() && tcp.synack_ts.is_some(),
            syn_ts: tcp.syn_ts.map(epoch_seconds),
            synack_ts: tcp.synack_ts.map(epoch_seconds),
            packets: tcp.packets(Dir::A) + tcp.packets(Dir::B),
            client_bytes: tcp.wire_bytes(client_dir),
            server_bytes: tcp.wire_bytes(server_dir),
            requests: self.requests,
            responses: self.responses,
            interim_responses: self.interim_responses,
            unanswered_requests: unanswered,
            pipeline_depth: self.pipeline_depth,
            pipelined_requests: self.pipelined_requests,
            max_idle_s: self.max_idle_ns.map(seconds),
            idle_before_close_s: idle_before_close,
            closer,
            close_ts: self.first_close.map(|c| epoch_seconds(c.ts)),
            close_after_request: self.first_close.map(|c| c.after_request),
            fin_client: client_teardown.fins,
            fin_server: server_teardown.fins,
            rst_client: client_teardown.rsts,
            rst_server: server_teardown.rsts,
            client_fin_ts: client_teardown.fin_ts.map(epoch_seconds),
            server_fin_ts: server_teardown.fin_ts.map(epoch_seconds),
            client_rst_ts: client_teardown.rst_ts.map(epoch_seconds),
            server_rst_ts: server_teardown.rst_ts.map(epoch_seconds),
            client_http: http_version(self.requests > 0, self.client_http09, self.client_http10),
            server_http: http_version(self.responses > 0, self.server_http09, self.server_http10),
            client_connection: self.client_connection.describe(),
            server_connection_first: self
                .server_connection_first
                .map(ConnectionTokens::describe)
                .unwrap_or_default(),
            server_connection_last: self
                .server_connection_last
                .map(ConnectionTokens::describe)
                .unwrap_or_default(),
            close_announced_at: self.close_announced_at,
            keep_alive_timeout_first: advert(self.keep_alive_first).timeout,
            keep_alive_max_first: advert(self.keep_alive_first).max,
            keep_alive_timeout_last: advert(self.keep_alive_last).timeout,
            keep_alive_max_last: advert(self.keep_alive_last).max,
            keep_alive_malformed: self.keep_alive_malformed,
            server_software: self.server_header.as_deref().unwrap_or("").to_string(),
            implied_request_limit: self.implied_limit,
            max_verdict: verdict.max,
            timeout_verdict: verdict.timeout,
            idle_close_s: verdict.idle_close_ns.map(seconds),
            kept_open_at_least_s: verdict.kept_open_at_least_ns.map(seconds),
            race_request: verdict.race_request,
            dropped_after_close: verdict.dropped_after_close,
            unannounced_close: verdict.unannounced_close,
            close_honoured: verdict.close_honoured,
            requests_after_close_announced: self.requests_after_close_announced,
            violation: verdict.is_violation(),
            retransmissions: anomalies.retransmissions,
            out_of_order: anomalies.out_of_order,
            gaps: anomalies.gaps,
            gap_bytes: anomalies.gap_bytes,
            parse_errors: self.parse_errors,
            resyncs: self.resyncs,
            flags: flags.join(";"),
        }
    }
}

/// A request (and its response, if any) that is done, before addresses are attached.
pub struct PendingTransaction {
    request: PendingRequest,
    response_end_ts: Option<u64>,
    response_body_bytes: Option<u64>,
    complete: bool,
}

impl PendingTransaction {
    pub fn into_record(self, tcp: &TcpConnection) -> TransactionRecord {
        let (client_dir, _) = tcp.client_or_guess();
        let request = self.request;
        let response = request.response;
        TransactionRecord {
            stream: tcp.stream,
            client: tcp.endpoints[client_dir.index()].to_string(),
            server: tcp.endpoints[client_dir.opposite().index()].to_string(),
            position: request.position,
            method: request.method.into(),
            target: request.target.into(),
            status: response.map(|r| r.status),
            request_ts: epoch_seconds(request.start_ts),
            request_end_ts: request.end_ts.map(epoch_seconds),
            response_ts: response.map(|r| epoch_seconds(r.start_ts)),
            response_end_ts: self.response_end_ts.map(epoch_seconds),
            wait_s: response.map(|r| seconds(r.start_ts.saturating_sub(request.start_ts))),
            request_body_bytes: request.body_bytes,
            response_body_bytes: self.response_body_bytes,
            interim_responses: request.interim,
            pipelined: request.pipelined,
            complete: self.complete && request.end_ts.is_some(),
        }
    }
}

fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
