//! Per-connection facts: a [`Ledger`] follows the HTTP events of one connection (counts,
//! idle gaps, adverts, the first close) and, when the connection ends, makes its
//! [`ConnectionRecord`] from its own facts and those of the TCP and HTTP stages; each
//! finished [`Transaction`] of the HTTP stage becomes a [`TransactionRecord`].

use crate::http::{
    ConnectionTokens, HttpConnection, HttpEvent, KeepAliveAdvert, Transaction, truncate,
};
use crate::record::{Closer, ConnectionRecord, Flag, FlagSet, HttpVersion, TransactionRecord};
use crate::tcp::{ClientBy, ClientSide, Dir, TcpConnection};
use crate::verdict::{KeepAliveFacts, Side, Tolerance, verdicts};

/// How the first side to close did it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseKind {
    Fin,
    Rst,
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

impl EndReason {
    /// The flags a row written for this reason carries.
    fn flags(self) -> &'static [Flag] {
        match self {
            EndReason::Closed => &[],
            EndReason::CaptureEnded => &[Flag::CaptureEnded],
            EndReason::Evicted => &[Flag::Evicted],
            EndReason::Superseded => &[Flag::PortReused],
            EndReason::MemoryBudget => &[Flag::Evicted, Flag::MemoryBudget],
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct FirstClose {
    dir: Dir,
    kind: CloseKind,
    ts: u64,
    after_request: u32,
}

/// The HTTP-level account of one connection.
#[derive(Default)]
pub struct Ledger {
    requests: u32,
    responses: u32,
    interim_responses: u32,
    unmatched_responses: u32,
    pipelined_requests: u32,
    last_response_end: Option<u64>,
    max_idle_ns: Option<u64>,
    /// Idle gaps between a response's end and the next request, summed.
    idle_between_ns: u64,
    client_connection: ConnectionTokens,
    /// The lowest HTTP version of the requests, and of the final responses.
    client_version: Option<HttpVersion>,
    server_version: Option<HttpVersion>,
    server_connection_first: Option<ConnectionTokens>,
    server_connection_last: Option<ConnectionTokens>,
    keep_alive_first: Option<KeepAliveAdvert>,
    keep_alive_last: Option<KeepAliveAdvert>,
    keep_alive_malformed: bool,
    /// Position of the first response that said `Connection: close`.
    close_announced_at: Option<u32>,
    /// Requests seen when that response came: later ones were sent after it.
    requests_at_close_announced: Option<u32>,
    requests_after_close_announced: u32,
    responses_after_close_announced: u32,
    /// Tightest total-request limit implied by `max=` (position + max).
    implied_limit: Option<u32>,
    /// Last `timeout=` advertised.
    advertised_timeout: Option<u32>,
    server_header: Option<Box<str>>,
    /// The first request's `User-Agent`, cut at 128 bytes.
    user_agent: Option<Box<str>>,
    /// Requests sent when the `max=` advertised so far allowed no more.
    requests_beyond_max: u32,
    parse_errors: u32,
    resyncs: u32,
    first_close: Option<FirstClose>,
    /// Responses whose body was cut by a gap or the end of the connection.
    incomplete_responses: u32,
    /// Bytes the source shed where the parser needed them (a head was expected), and how
    /// often: gaps all the same, which the TCP stage did not count.
    shed_gaps: u64,
    shed_gap_bytes: u64,
}

impl Ledger {
    /// Heap memory the ledger holds (the `Server` header it keeps), for the memory budget.
    pub fn heap_bytes(&self) -> usize {
        self.server_header.as_ref().map_or(0, |s| s.len())
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

    pub fn on_http(&mut self, event: &HttpEvent<'_>, ts: u64) {
        match *event {
            HttpEvent::Request { head, in_flight } => {
                if in_flight == 0
                    && let Some(end) = self.last_response_end
                {
                    let idle = ts.saturating_sub(end);
                    self.max_idle_ns = Some(self.max_idle_ns.map_or(idle, |m| m.max(idle)));
                    self.idle_between_ns = self.idle_between_ns.saturating_add(idle);
                }
                if self
                    .implied_limit
                    .is_some_and(|limit| self.requests >= limit)
                {
                    self.requests_beyond_max += 1;
                }
                self.requests += 1;
                if self.user_agent.is_none()
                    && let Some(agent) = head.user_agent
                {
                    self.user_agent = Some(truncate(&String::from_utf8_lossy(agent), 128).into());
                }
                if self.close_announced_at.is_some() {
                    self.requests_after_close_announced += 1;
                }
                self.client_connection = self.client_connection.union(head.connection);
                self.client_version = lowest(self.client_version, head.version);
                if in_flight > 0 {
                    self.pipelined_requests += 1;
                }
            }
            HttpEvent::Response { head, answers } => {
                if head.is_interim() {
                    self.interim_responses += 1;
                } else {
                    self.responses += 1;
                    if answers.is_none() {
                        self.unmatched_responses += 1;
                    }
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
                    if closes && self.close_announced_at.is_none() {
                        self.close_announced_at = Some(self.responses);
                        self.requests_at_close_announced = Some(self.requests);
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
                    self.server_version = lowest(self.server_version, head.version);
                }
                if self.server_header.is_none()
                    && let Some(server) = head.server
                {
                    self.server_header =
                        Some(truncate(&String::from_utf8_lossy(server), 128).into());
                }
            }
            HttpEvent::ResponseEnd { complete, .. } => {
                self.last_response_end = Some(ts);
                if !complete {
                    self.incomplete_responses += 1;
                }
            }
            HttpEvent::Tunnel => {
                // What the switching response said about the connection no longer applies.
                if self.close_announced_at == Some(self.responses) {
                    self.close_announced_at = None;
                    self.requests_at_close_announced = None;
                }
            }
            HttpEvent::Error(_, _) => self.parse_errors += 1,
            HttpEvent::Resync { .. } => self.resyncs += 1,
            HttpEvent::ClientIs(_)
            | HttpEvent::Protocol(_)
            | HttpEvent::RequestEnd { .. }
            | HttpEvent::Lost { shed: false, .. } => {}
            HttpEvent::Lost { bytes, shed: true } => {
                self.shed_gaps += 1;
                self.shed_gap_bytes += bytes;
            }
        }
    }

    /// Builds the connection's row. `tcp` supplies addresses, counters and teardown facts.
    /// The facts the Keep-Alive verdicts are drawn from.
    fn keep_alive_facts(
        &self,
        tcp: &TcpConnection,
        http: &HttpConnection,
        client_dir: Dir,
    ) -> KeepAliveFacts {
        let server = tcp.teardown(client_dir.opposite());
        KeepAliveFacts {
            requests: self.requests,
            responses: self.responses,
            implied_limit: self.implied_limit,
            advertised_timeout_s: self.advertised_timeout,
            close_announced_at: self.close_announced_at,
            client_asked_close: self.client_connection.has(ConnectionTokens::CLOSE)
                || self.client_version == Some(HttpVersion::V0_9)
                || (self.client_version == Some(HttpVersion::V1_0)
                    && !self.client_connection.has(ConnectionTokens::KEEP_ALIVE)),
            tunnel: http.is_tunnel(),
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
            unanswered: http
                .unanswered()
                .map(|(position, sent)| {
                    let after_announce = self
                        .requests_at_close_announced
                        .is_some_and(|seen| position > seen);
                    (position, sent, after_announce)
                })
                .collect(),
            requests_after_close_announced: self.requests_after_close_announced,
            responses_after_close_announced: self.responses_after_close_announced,
        }
    }

    /// Builds the connection's row, before the requests still in flight are closed.
    pub fn record(
        &self,
        tcp: &TcpConnection,
        http: &HttpConnection,
        client: ClientSide,
        end: EndReason,
        tolerance: &Tolerance,
    ) -> ConnectionRecord {
        let unanswered = http.in_flight() as u32;
        let (client_dir, client_by) = client.or_guess(&tcp.endpoints);
        let server_dir = client_dir.opposite();
        let client_seen = tcp.packets(client_dir) > 0;
        let server_seen = tcp.packets(server_dir) > 0;
        // What needs both directions is not known when one was never captured.
        let both_seen = client_seen && server_seen;
        let verdict =
            both_seen.then(|| verdicts(&self.keep_alive_facts(tcp, http, client_dir), tolerance));
        let client_teardown = tcp.teardown(client_dir);
        let server_teardown = tcp.teardown(server_dir);
        let mut anomalies = tcp.anomalies(client_dir);
        let other = tcp.anomalies(server_dir);
        anomalies.retransmissions += other.retransmissions;
        anomalies.out_of_order += other.out_of_order;
        anomalies.gaps += other.gaps;
        anomalies.gap_bytes += other.gap_bytes + self.shed_gap_bytes;
        anomalies.gaps += self.shed_gaps;
        anomalies.ignored_rsts += other.ignored_rsts;
        anomalies.buffer_overflows += other.buffer_overflows;
        anomalies.damaged_segments += other.damaged_segments;

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
            (Some(close), Some(end)) if unanswered == 0 && close.ts >= end => Some(close.ts - end),
            _ => None,
        };
        // After the last response, idle until the first close, or the last packet if none.
        let idle_tail = match (self.first_close, self.last_response_end) {
            _ if unanswered > 0 => 0,
            (Some(close), Some(end)) => close.ts.saturating_sub(end),
            (None, Some(end)) => tcp.last_ts.saturating_sub(end),
            (_, None) => 0,
        };
        let idle_total = self
            .last_response_end
            .map(|_| self.idle_between_ns.saturating_add(idle_tail));
        // After the last response the server kept the connection open until the client
        // closed it or the capture ended, unless the server closed it first.
        let open_after_last = match (self.first_close, self.last_response_end) {
            _ if unanswered > 0 => None,
            (Some(close), Some(end)) if close.dir == client_dir => close.ts.checked_sub(end),
            (None, Some(end)) => tcp.last_ts.checked_sub(end),
            _ => None,
        };
        let longest_idle_open = self.max_idle_ns.max(open_after_last);

        let mut flags = FlagSet::default();
        let mut flag_if = |set: bool, flag: Flag| {
            if set {
                flags.insert(flag);
            }
        };
        flag_if(client_by != ClientBy::Syn, Flag::MidStream);
        flag_if(anomalies.gaps > 0, Flag::Gap);
        flag_if(http.is_tunnel(), Flag::Tunnel);
        flag_if(self.parse_errors > 0, Flag::ParseError);
        flag_if(self.unmatched_responses > 0, Flag::UnmatchedResponses);
        flag_if(self.incomplete_responses > 0, Flag::IncompleteResponse);
        flag_if(http.queue_overflowed(), Flag::QueueOverflow);
        flag_if(anomalies.ignored_rsts > 0, Flag::RstIgnored);
        flag_if(anomalies.buffer_overflows > 0, Flag::ReassemblyOverflow);
        flag_if(anomalies.damaged_segments > 0, Flag::BadTcpHeader);
        flag_if(!both_seen, Flag::OneSided);
        for flag in end.flags() {
            flags.insert(*flag);
        }

        let advert = |a: Option<KeepAliveAdvert>| a.unwrap_or_default();
        ConnectionRecord {
            stream: tcp.stream,
            client: tcp.endpoints[client_dir.index()],
            server: tcp.endpoints[server_dir.index()],
            client_by,
            protocol: http.protocol(),
            first_ts: tcp.first_ts,
            last_ts: tcp.last_ts,
            handshake: tcp.syn_ts.is_some() && tcp.synack_ts.is_some(),
            syn_ts: tcp.syn_ts,
            synack_ts: tcp.synack_ts,
            handshake_rtt_ns: tcp
                .syn_ts
                .zip(tcp.handshake_ack_ts)
                .and_then(|(syn, ack)| ack.checked_sub(syn)),
            packets: tcp.packets(Dir::A) + tcp.packets(Dir::B),
            client_bytes: tcp.wire_bytes(client_dir),
            server_bytes: tcp.wire_bytes(server_dir),
            requests: client_seen.then_some(self.requests),
            responses: server_seen.then_some(self.responses),
            interim_responses: server_seen.then_some(self.interim_responses),
            unanswered_requests: both_seen.then_some(unanswered),
            pipeline_depth: both_seen.then_some(http.pipeline_depth()),
            pipelined_requests: both_seen.then_some(self.pipelined_requests),
            max_idle_ns: self.max_idle_ns.filter(|_| both_seen),
            idle_before_close_ns: idle_before_close.filter(|_| both_seen),
            closer,
            close_ts: self.first_close.map(|c| c.ts),
            close_after_request: self.first_close.map(|c| c.after_request),
            fin_client: client_teardown.fins,
            fin_server: server_teardown.fins,
            rst_client: client_teardown.rsts,
            rst_server: server_teardown.rsts,
            client_fin_ts: client_teardown.fin_ts,
            server_fin_ts: server_teardown.fin_ts,
            client_rst_ts: client_teardown.rst_ts,
            server_rst_ts: server_teardown.rst_ts,
            client_http: self.client_version,
            server_http: self.server_version,
            client_connection: self.client_connection,
            server_connection_first: self.server_connection_first,
            server_connection_last: self.server_connection_last,
            close_announced_at: self.close_announced_at,
            keep_alive_timeout_first: advert(self.keep_alive_first).timeout,
            keep_alive_max_first: advert(self.keep_alive_first).max,
            keep_alive_timeout_last: advert(self.keep_alive_last).timeout,
            keep_alive_max_last: advert(self.keep_alive_last).max,
            keep_alive_malformed: self.keep_alive_malformed,
            server_software: self.server_header.as_deref().unwrap_or("").to_string(),
            implied_request_limit: self.implied_limit,
            verdicts: verdict,
            requests_after_close_announced: self.requests_after_close_announced,
            retransmissions: anomalies.retransmissions,
            out_of_order: anomalies.out_of_order,
            gaps: anomalies.gaps,
            gap_bytes: anomalies.gap_bytes,
            parse_errors: self.parse_errors,
            resyncs: self.resyncs,
            flags,
            idle_total_ns: idle_total.filter(|_| both_seen),
            captured_payload_bytes: tcp.captured_bytes(Dir::A) + tcp.captured_bytes(Dir::B),
            keepalive_client: tcp.keepalive(client_dir),
            keepalive_server: tcp.keepalive(server_dir),
            user_agent: self.user_agent.as_deref().unwrap_or("").to_string(),
            requests_beyond_max: self.requests_beyond_max,
            longest_idle_open_ns: longest_idle_open.filter(|_| both_seen),
        }
    }
}

/// A finished transaction as a row, with the connection's addresses.
pub fn transaction_record(
    transaction: Transaction,
    tcp: &TcpConnection,
    client: ClientSide,
) -> TransactionRecord {
    let (client_dir, _) = client.or_guess(&tcp.endpoints);
    let response = transaction.response;
    TransactionRecord {
        stream: tcp.stream,
        client: tcp.endpoints[client_dir.index()],
        server: tcp.endpoints[client_dir.opposite().index()],
        position: transaction.position,
        method: transaction.method.into(),
        target: transaction.target.into(),
        host: transaction.host.into(),
        status: response.map(|r| r.status),
        request_ts: transaction.request_ts,
        request_end_ts: transaction.request_end_ts,
        response_ts: response.map(|r| r.ts),
        response_first_ts: response.map(|r| r.first_byte_ts),
        response_end_ts: transaction.response_end_ts,
        request_body_bytes: transaction.request_body_bytes,
        response_body_bytes: transaction.response_body_bytes,
        interim_responses: transaction.interim_responses,
        pipelined: transaction.pipelined,
        complete: transaction.response_complete && transaction.request_end_ts.is_some(),
    }
}

/// The lower of a version seen before and a head's minor version (0, 1; 9 for HTTP/0.9).
fn lowest(seen: Option<HttpVersion>, minor: u8) -> Option<HttpVersion> {
    let version = match minor {
        9 => HttpVersion::V0_9,
        0 => HttpVersion::V1_0,
        _ => HttpVersion::V1_1,
    };
    Some(seen.map_or(version, |seen| seen.min(version)))
}
