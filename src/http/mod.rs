//! HTTP/1.x message framing, one incremental parser per direction, a module a stage:
//! - `sniff`: the probe before the parser; the first bytes of a direction say whether it
//!   carries requests, responses, or another protocol.
//! - `head`: message heads, parsed by httparse straight from the segment when a head arrives
//!   whole, from a small per-direction buffer when it is split across segments (the only
//!   bytes ever copied), and what they say of the body: none for HEAD/1xx/204/304, an opaque
//!   tunnel after `101 Switching Protocols` or a 2xx answer to CONNECT.
//! - `body`: body framing (RFC 9112 §6): Content-Length, chunked with trailers,
//!   close-delimited responses. Body bytes are counted, never stored.
//! - `resync`: after a gap in the stream a parser resynchronises at the next line that
//!   starts a message, so one lost segment costs one transaction, not the rest of a
//!   persistent connection.
//!
//! This module holds what the rest of the crate sees, [`HttpConnection`] and its events, and
//! the state machine that ties the stages together: `MessageParser::feed` hands a segment's
//! bytes to the handler of the current `State`, which returns the bytes it left.

use crate::tcp::{Dir, StreamEvent};
use body::Body;
use transactions::{RequestKind, Transactions};

mod body;
mod head;
mod lenient;
mod lines;
mod resync;
mod sniff;
#[cfg(test)]
mod testing;
mod transactions;

pub use head::{ConnectionTokens, KeepAliveAdvert};
pub(crate) use transactions::truncate;
pub use transactions::{Keep, ResponseStart, Transaction};

/// Which kind of messages a direction carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Requests,
    Responses,
}

/// What the connection carries, guessed from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// No payload at all.
    #[default]
    None,
    Http,
    Tls,
    Http2,
    Ssh,
    Smtp,
    Ftp,
    Pop3,
    Imap,
    Unknown,
}

named_enum!(Protocol {
    None => "none",
    Http => "http",
    Tls => "tls",
    Http2 => "http2",
    Ssh => "ssh",
    Smtp => "smtp",
    Ftp => "ftp",
    Pop3 => "pop3",
    Imap => "imap",
    Unknown => "unknown",
});

impl Protocol {
    /// A protocol recognised as not HTTP: nothing on the connection is parsed as HTTP.
    pub fn is_other(self) -> bool {
        !matches!(self, Protocol::None | Protocol::Http | Protocol::Unknown)
    }
}

/// A request head, borrowed from the stream.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    pub method: &'a str,
    pub target: &'a str,
    /// Minor version: 0 for HTTP/1.0, 1 for HTTP/1.1; 9 for an HTTP/0.9 simple request.
    pub version: u8,
    pub connection: ConnectionTokens,
    /// The `User-Agent` header's value, when there was one.
    pub user_agent: Option<&'a [u8]>,
    /// The `Host` header's value, when there was one.
    pub host: Option<&'a [u8]>,
    pub head_bytes: usize,
}

/// A response head, borrowed from the stream.
#[derive(Debug, Clone, Copy)]
pub struct ResponseHead<'a> {
    /// 0 for an HTTP/0.9 simple response, which has no status line.
    pub status: u16,
    pub version: u8,
    pub connection: ConnectionTokens,
    pub keep_alive: Option<KeepAliveAdvert>,
    pub server: Option<&'a [u8]>,
    pub head_bytes: usize,
}

impl ResponseHead<'_> {
    /// 1xx other than 101: another response to the same request follows.
    pub fn is_interim(&self) -> bool {
        (100..200).contains(&self.status) && self.status != 101
    }
}

/// Why a message could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// httparse rejected the head.
    BadHead,
    /// The head grew past the buffer bound without ending.
    HeadTooLarge,
    /// Conflicting or unusable Content-Length / Transfer-Encoding.
    BadFraming,
    /// A chunk-size line was not hexadecimal.
    BadChunk,
}

/// What the HTTP stage tells the analysis.
#[derive(Debug, Clone, Copy)]
pub enum HttpEvent<'a> {
    /// The client side became known from the bytes.
    ClientIs(Dir),
    /// The connection's protocol was recognised.
    Protocol(Protocol),
    Request {
        head: RequestHead<'a>,
        /// Earlier requests still waiting for (the end of) their response.
        in_flight: u32,
    },
    /// The request ended; `complete` is false when it was cut (a gap in its body, the end of
    /// the stream, broken chunked framing).
    RequestEnd {
        body_bytes: u64,
        complete: bool,
    },
    Response {
        head: ResponseHead<'a>,
        /// Position of the request it answers; `None` when no request was waiting.
        answers: Option<u32>,
    },
    /// A final response ended; `complete` as for `RequestEnd`.
    ResponseEnd {
        body_bytes: u64,
        complete: bool,
    },
    /// 101 or CONNECT 2xx: the rest is not HTTP.
    Tunnel,
    Error(Role, ParseError),
    /// Bytes lost to a capture gap in the direction being fed; `shed` when the source shed
    /// them on purpose but they were needed (a head, not body bytes, was expected there).
    Lost {
        bytes: u64,
        shed: bool,
    },
    /// After a gap or garbage, a message start was found again; `skipped` bytes were passed over.
    Resync {
        role: Role,
        skipped: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing seen yet: the first bytes say what the direction carries.
    Sniff,
    /// Reading a message head.
    Head,
    Body(Body),
    /// After a CONNECT or Upgrade request, until its response says whether a tunnel follows.
    AwaitUpgrade,
    /// Lost track (gap or garbage): looking for the next message start.
    Lost,
    /// Not HTTP, or a tunnel: bytes are counted only.
    Opaque,
}

/// What a state handler leaves for the next turn of `MessageParser::feed`.
enum Step<'d> {
    /// The bytes still to parse, in whatever state the handler left.
    Rest(&'d [u8]),
    /// Bytes held from earlier segments joined with the segment's: parsed in place of the
    /// segment, from the state the handler left, with nothing held.
    Replay(Vec<u8>),
}

/// One direction's parser.
struct MessageParser {
    role: Option<Role>,
    state: State,
    /// Bytes kept from earlier segments because they could not be judged alone: a first
    /// segment too short to sniff, a head split across segments, or, when lost, an unfinished
    /// last line that may start a message. A direction is in one state at a time, so one
    /// buffer serves all three; its capacity is what `buffered_bytes` charges.
    held: Vec<u8>,
    /// Body bytes of the current message so far, gaps included.
    body_bytes: u64,
    /// False once a gap has eaten part of the current body.
    body_complete: bool,
    /// Bytes passed over while lost, for the `Resync` event.
    skipped: u64,
    /// An HTTP/0.9 simple request is held (in `held`) until the other direction shows it is
    /// not another protocol: when it was sent.
    waiting_since: Option<u64>,
    /// Capture time of the segment the current head began in (its first byte).
    head_start: u64,
}

/// State both directions share: the requests in flight, whether the connection became a
/// tunnel, and the capture time of the segment being parsed.
#[derive(Default)]
struct Shared {
    transactions: Transactions,
    tunnel: bool,
    protocol: Protocol,
    /// The line protocols the connection's lines could be, once one was seen.
    lines: Option<lines::Candidates>,
    /// Each direction has sent data.
    spoke: [bool; 2],
    now: u64,
}

impl Shared {
    /// A line of one of the text line protocols: the connection's protocol is what all such
    /// lines seen so far have in common.
    fn add_line_evidence(
        &mut self,
        candidates: lines::Candidates,
        emit: &mut impl FnMut(HttpEvent<'_>),
    ) {
        let candidates = self
            .lines
            .map_or(candidates, |earlier| earlier.narrowed_by(candidates));
        self.lines = Some(candidates);
        if self.protocol != candidates.protocol() {
            self.protocol = candidates.protocol();
            emit(HttpEvent::Protocol(self.protocol));
        }
    }
}

/// The HTTP stage of one connection.
pub struct HttpConnection {
    parsers: [MessageParser; 2],
    shared: Shared,
    max_head: usize,
}

/// A head that grows past this many bytes without ending is given up as too large.
pub const DEFAULT_MAX_HEAD: usize = 64 * 1024;

impl HttpConnection {
    /// `keep` says what [`HttpConnection::take_finished`] hands out.
    pub fn new(max_head: usize, keep: Keep) -> HttpConnection {
        let parser = || MessageParser {
            role: None,
            state: State::Sniff,
            held: Vec::new(),
            body_bytes: 0,
            body_complete: true,
            skipped: 0,
            waiting_since: None,
            head_start: 0,
        };
        HttpConnection {
            parsers: [parser(), parser()],
            shared: Shared {
                transactions: Transactions::new(keep),
                ..Shared::default()
            },
            max_head,
        }
    }

    /// Gives the parsers their roles from the connection's client, when it is known (the
    /// caller owns that fact; until it is known, a parser keeps the role it sniffed).
    fn assign_roles(&mut self, client: Option<Dir>) {
        if let Some(client) = client {
            self.parsers[client.index()].role = Some(Role::Requests);
            self.parsers[client.opposite().index()].role = Some(Role::Responses);
        }
    }

    pub fn protocol(&self) -> Protocol {
        self.shared.protocol
    }

    /// Memory held in head buffers, for the memory budget.
    pub fn buffered_bytes(&self) -> usize {
        self.parsers
            .iter()
            .map(|p| p.held.capacity())
            .sum::<usize>()
            + self.shared.transactions.buffered_bytes()
    }

    /// Body bytes direction `dir` has still to come that the parser will count without
    /// looking at them (the rest of a Content-Length body or of a chunk's data): the source
    /// may shed them (`--ebpf`).
    pub fn countable_body_bytes(&self, dir: Dir) -> Option<u64> {
        if self.shared.tunnel {
            return None;
        }
        self.parsers[dir.index()].countable_body_bytes()
    }

    /// Whether the connection became a tunnel (101, CONNECT): what follows is not HTTP.
    pub fn is_tunnel(&self) -> bool {
        self.shared.tunnel
    }

    /// The most requests in flight at once: the pipelining depth.
    pub fn pipeline_depth(&self) -> u32 {
        self.shared.transactions.depth()
    }

    /// More requests were in flight than are kept: the rest were counted, not paired.
    pub fn queue_overflowed(&self) -> bool {
        self.shared.transactions.overflowed()
    }

    /// Requests with no response head or only part of a response: all still in flight.
    pub fn in_flight(&self) -> usize {
        self.shared.transactions.in_flight()
    }

    /// Requests with no final response: (position, when sent).
    pub fn unanswered(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.shared.transactions.unanswered()
    }

    /// Transactions finished since the last call (none with [`Keep::Nothing`]).
    pub fn take_finished(&mut self) -> impl Iterator<Item = Transaction> + '_ {
        self.shared.transactions.take_finished()
    }

    /// The connection is over: requests still in flight are finished without (the rest of)
    /// their answer, for [`HttpConnection::take_finished`].
    pub fn close_transactions(&mut self) {
        self.shared.transactions.finish();
    }

    /// Takes one stream event of direction `dir`, captured at `ts` (ns since the epoch).
    /// `client` is the client direction as far as it is known; when it is not, the first
    /// bytes decide and [`HttpEvent::ClientIs`] says what they decided.
    pub fn on_stream_event(
        &mut self,
        dir: Dir,
        event: StreamEvent<'_>,
        ts: u64,
        client: Option<Dir>,
        emit: &mut impl FnMut(HttpEvent<'_>),
    ) {
        let max_head = self.max_head;
        self.shared.now = ts;
        self.assign_roles(client);
        if let StreamEvent::Data(data) = event {
            self.hear_from(dir, data, emit);
        }
        let parser = &mut self.parsers[dir.index()];
        match event {
            StreamEvent::Data(data) => parser.feed(dir, data, &mut self.shared, max_head, emit),
            StreamEvent::Gap(bytes) => {
                parser.stop_waiting(dir, &mut self.shared, max_head, emit);
                parser.gap(bytes, false, &mut self.shared, emit)
            }
            StreamEvent::Skipped(bytes) => parser.skip(bytes, &mut self.shared, emit),
            StreamEvent::Fin | StreamEvent::Rst => {
                parser.end(dir, &mut self.shared, max_head, emit)
            }
        }
    }

    /// Data from `dir`: a simple request the other direction holds for it is settled first,
    /// so that it is parsed, or dropped, before what answers it.
    fn hear_from(&mut self, dir: Dir, data: &[u8], emit: &mut impl FnMut(HttpEvent<'_>)) {
        self.shared.spoke[dir.index()] = true;
        let other = dir.opposite();
        let waiting = &mut self.parsers[other.index()];
        if waiting.waiting_since.is_none() {
            return;
        }
        if sniff::looks_like_another_protocol(data) {
            waiting.drop_waiting();
        } else {
            waiting.stop_waiting(other, &mut self.shared, self.max_head, emit);
        }
    }

    /// End of capture: messages still open are closed as they stand, and the requests
    /// still in flight are finished without their answer.
    pub fn finish(&mut self, ts: u64, client: Option<Dir>, emit: &mut impl FnMut(HttpEvent<'_>)) {
        self.shared.now = ts;
        self.assign_roles(client);
        for dir in [Dir::A, Dir::B] {
            self.parsers[dir.index()].end(dir, &mut self.shared, self.max_head, emit);
        }
    }
}

impl MessageParser {
    /// Parses one segment's bytes. Each state's handler takes the bytes left and returns
    /// what it did not consume (nothing when it is waiting for the next segment), or bytes it
    /// held from earlier segments joined with these, to parse in their place.
    fn feed(
        &mut self,
        dir: Dir,
        data: &[u8],
        shared: &mut Shared,
        max_head: usize,
        emit: &mut impl FnMut(HttpEvent<'_>),
    ) {
        let mut rest = data;
        while !rest.is_empty() {
            if shared.tunnel || (shared.protocol.is_other() && self.state != State::Sniff) {
                // Either direction's answer may have opened the tunnel, or shown that the
                // connection is not HTTP.
                self.state = State::Opaque;
            }
            let step = match self.state {
                State::Sniff => self.probe(dir, rest, shared, emit),
                State::Head => Step::Rest(self.read_head(rest, shared, max_head, emit)),
                State::Body(body) => Step::Rest(self.read_body(body, rest, shared, emit)),
                State::AwaitUpgrade => Step::Rest(self.await_upgrade_answer(rest, shared)),
                State::Lost => self.resync(dir, rest, shared, emit),
                State::Opaque => Step::Rest(&[]),
            };
            match step {
                Step::Rest(next) => rest = next,
                Step::Replay(joined) => {
                    self.feed(dir, &joined, shared, max_head, emit);
                    return;
                }
            }
        }
    }

    /// The `AwaitUpgrade` state: the bytes after a CONNECT or Upgrade request belong to
    /// whatever its answer says, so they wait for it; parsing goes on if it is no tunnel.
    fn await_upgrade_answer<'d>(&mut self, data: &'d [u8], shared: &Shared) -> &'d [u8] {
        if shared.transactions.awaiting_answer() {
            return &[];
        }
        self.state = State::Head;
        data
    }

    fn adopt_role(
        &mut self,
        dir: Dir,
        role: Role,
        shared: &mut Shared,
        emit: &mut impl FnMut(HttpEvent<'_>),
    ) {
        if shared.protocol != Protocol::Http {
            shared.protocol = Protocol::Http;
            emit(HttpEvent::Protocol(Protocol::Http));
        }
        if self.role.is_none() {
            // No role means the client is not known yet: these bytes decide it.
            self.role = Some(role);
            emit(HttpEvent::ClientIs(match role {
                Role::Requests => dir,
                Role::Responses => dir.opposite(),
            }));
        }
    }

    /// Whether this direction's next message answers an HTTP/0.9 simple request, and so is a
    /// bare body without a status line.
    fn next_answers_http09(&self, shared: &Shared) -> bool {
        self.role == Some(Role::Responses)
            && shared.transactions.next_unanswered_kind() == Some(RequestKind::Http09)
    }

    /// After the whole of a CONNECT or Upgrade request (`request`), what the client sends
    /// next belongs to whatever the answer says: it waits for that answer.
    fn expect_upgrade_answer(&mut self, request: Option<RequestKind>) {
        if self.state == State::Head
            && matches!(request, Some(RequestKind::Connect | RequestKind::Upgrade))
        {
            self.state = State::AwaitUpgrade;
        }
    }

    fn give_up(&mut self, error: ParseError, emit: &mut impl FnMut(HttpEvent<'_>)) {
        emit(HttpEvent::Error(self.role.unwrap_or(Role::Requests), error));
        self.lose_track();
    }

    /// Whatever was being read is abandoned: the parser looks for the next message start.
    fn lose_track(&mut self) {
        self.held.clear();
        self.state = State::Lost;
    }

    /// `bytes` of the stream are missing: lost by the capture, or `shed` by the source
    /// where they were needed.
    fn gap(
        &mut self,
        bytes: u64,
        shed: bool,
        shared: &mut Shared,
        emit: &mut impl FnMut(HttpEvent<'_>),
    ) {
        emit(HttpEvent::Lost { bytes, shed });
        match self.state {
            State::Opaque | State::AwaitUpgrade => {}
            State::Body(body) => self.body_gap(body, bytes, shared, emit),
            State::Sniff | State::Head | State::Lost => self.lose_track(),
        }
    }

    /// FIN, RST or end of capture: a close-delimited body ends here; anything else open is cut.
    /// A simple request still waiting for the other direction is parsed now.
    fn end(
        &mut self,
        dir: Dir,
        shared: &mut Shared,
        max_head: usize,
        emit: &mut impl FnMut(HttpEvent<'_>),
    ) {
        self.stop_waiting(dir, shared, max_head, emit);
        match self.state {
            State::Body(Body::UntilClose) => self.finish_message(true, shared, emit),
            State::Body(_) => self.finish_message(false, shared, emit),
            State::Head if !self.held.is_empty() => {
                emit(HttpEvent::Error(
                    self.role.unwrap_or(Role::Requests),
                    ParseError::BadHead,
                ));
            }
            _ => {}
        }
        self.held = Vec::new();
        self.state = State::Opaque;
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{Event, Recorder, request_targets};
    use super::*;

    #[test]
    fn a_connect_answered_2xx_turns_both_directions_opaque() {
        let mut http = Recorder::new(Some(Dir::A), DEFAULT_MAX_HEAD);
        http.data(Dir::A, b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n");
        // Sent before the answer: it waits, and is not parsed once the tunnel opens.
        http.data(Dir::A, b"GET /early HTTP/1.1\r\n\r\n");
        http.data(Dir::B, b"HTTP/1.1 200 Connection established\r\n\r\n");
        http.data(Dir::A, b"GET /inside HTTP/1.1\r\n\r\n");
        http.data(Dir::B, b"HTTP/1.1 200 OK\r\n\r\n");
        assert_eq!(request_targets(&http.events), ["h:443"]);
        assert_eq!(
            http.events
                .iter()
                .filter(|e| matches!(e, Event::Response { .. }))
                .count(),
            1
        );
        assert_eq!(http.events.last(), Some(&Event::Tunnel));
    }

    #[test]
    fn an_upgrade_refused_lets_parsing_go_on() {
        let mut http = Recorder::new(Some(Dir::A), DEFAULT_MAX_HEAD);
        http.data(
            Dir::A,
            b"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        );
        http.data(
            Dir::B,
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
        );
        http.data(Dir::A, b"GET /next HTTP/1.1\r\n\r\n");
        assert_eq!(request_targets(&http.events), ["/ws", "/next"]);
        assert!(!http.events.contains(&Event::Tunnel));
    }

    #[test]
    fn the_client_is_learned_from_the_first_bytes() {
        let mut http = Recorder::new(None, DEFAULT_MAX_HEAD);
        http.data(Dir::B, b"GET / HTTP/1.1\r\n\r\n");
        http.data(Dir::A, b"HTTP/1.1 204 No Content\r\n\r\n");
        assert_eq!(
            http.events[..2],
            [Event::Protocol(Protocol::Http), Event::ClientIs(Dir::B)]
        );
        assert_eq!(
            http.events.last(),
            Some(&Event::ResponseEnd {
                body_bytes: 0,
                complete: true
            })
        );
    }
}
