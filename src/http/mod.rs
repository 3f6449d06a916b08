//! HTTP/1.x message framing, one incremental parser per direction.
//!
//! Heads are parsed by httparse, straight from the segment when a head arrives whole, from a
//! small per-direction buffer when it is split across segments (the only bytes ever copied).
//! Bodies are framed here (RFC 9112 §6): Content-Length, chunked with trailers, close-delimited
//! responses, no body for HEAD/1xx/204/304; `101 Switching Protocols` and a 2xx answer to
//! CONNECT turn the rest of the connection into an opaque tunnel. Body bytes are counted,
//! never stored.
//!
//! After a gap in the stream a parser resynchronises at the next line that starts a message,
//! so one lost segment costs one transaction, not the rest of a persistent connection.

use std::collections::VecDeque;

use memchr::memmem;

use crate::tcp::{Dir, StreamEvent};
use body::Body;

mod body;
mod head;
#[cfg(test)]
mod testing;

pub use head::{ConnectionTokens, KeepAliveAdvert};

/// Which kind of messages a direction carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Requests,
    Responses,
}

/// What the connection carries, guessed from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// No payload at all.
    #[default]
    None,
    Http,
    Tls,
    Http2,
    Ssh,
    Unknown,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::None => "none",
            Protocol::Http => "http",
            Protocol::Tls => "tls",
            Protocol::Http2 => "http2",
            Protocol::Ssh => "ssh",
            Protocol::Unknown => "unknown",
        }
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
    Request(RequestHead<'a>),
    /// The request body ended (`complete` is false when a gap ate part of it).
    RequestEnd {
        body_bytes: u64,
        complete: bool,
    },
    Response(ResponseHead<'a>),
    /// A final response ended.
    ResponseEnd {
        body_bytes: u64,
        complete: bool,
    },
    /// 101 or CONNECT 2xx: the rest is not HTTP.
    Tunnel,
    Error(Role, ParseError),
    /// Bytes lost to a capture gap in the direction being fed.
    Lost {
        bytes: u64,
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
    Head,
    Body(Body),
    /// After a CONNECT or Upgrade request, until its response says whether a tunnel follows.
    AwaitUpgrade,
    /// Lost track (gap or garbage): looking for the next message start.
    Lost,
    /// Not HTTP, or a tunnel: bytes are counted only.
    Opaque,
}

/// What a pending request means for the framing of its response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RequestKind {
    Normal,
    Head,
    Connect,
    Upgrade,
    /// An HTTP/0.9 simple request: the answer is a bare body up to the close.
    Http09,
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
    body_bytes: u64,
    body_complete: bool,
    skipped: u64,
}

/// State both directions share: the requests whose responses have not started, and
/// whether the connection became a tunnel.
#[derive(Default)]
struct Shared {
    pending: VecDeque<RequestKind>,
    /// Kind of the request whose response is being read.
    answering: Option<RequestKind>,
    tunnel: bool,
    client: Option<Dir>,
    protocol: Protocol,
}

impl Shared {
    fn queue_request(&mut self, kind: RequestKind) {
        if self.pending.len() < MAX_PENDING {
            self.pending.push_back(kind);
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
/// Bytes of an unfinished last line kept while lost, so that a message start cut by a
/// segment boundary is still found (a request line is rarely longer).
const MAX_CARRY: usize = 8192;
/// Requests kept waiting for responses; more are counted but not framed against.
const MAX_PENDING: usize = 100_000;

impl HttpConnection {
    /// `client` is the client direction when the TCP handshake told it.
    pub fn new(client: Option<Dir>, max_head: usize) -> HttpConnection {
        let parser = || MessageParser {
            role: None,
            state: State::Sniff,
            held: Vec::new(),
            body_bytes: 0,
            body_complete: true,
            skipped: 0,
        };
        let mut connection = HttpConnection {
            parsers: [parser(), parser()],
            shared: Shared::default(),
            max_head,
        };
        if let Some(client) = client {
            connection.set_client(client);
        }
        connection
    }

    fn set_client(&mut self, client: Dir) {
        self.shared.client = Some(client);
        self.parsers[client.index()].role = Some(Role::Requests);
        self.parsers[client.opposite().index()].role = Some(Role::Responses);
    }

    /// Tells the parsers the client side once TCP learned it (a late SYN-ACK, say).
    pub fn learn_client(&mut self, client: Dir) {
        if self.shared.client.is_none() {
            self.set_client(client);
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
            + self.shared.pending.len() * std::mem::size_of::<RequestKind>()
    }

    /// Takes one stream event of direction `dir`.
    pub fn on_stream_event(
        &mut self,
        dir: Dir,
        event: StreamEvent<'_>,
        emit: &mut impl FnMut(HttpEvent<'_>),
    ) {
        let max_head = self.max_head;
        let client_before = self.shared.client;
        let parser = &mut self.parsers[dir.index()];
        match event {
            StreamEvent::Data(data) => parser.feed(dir, data, &mut self.shared, max_head, emit),
            StreamEvent::Gap(bytes) => parser.gap(bytes, emit),
            StreamEvent::Fin | StreamEvent::Rst => parser.end(emit),
        }
        if client_before.is_none()
            && let Some(client) = self.shared.client
        {
            self.set_client(client);
        }
    }

    /// End of capture: messages still open are closed as they stand.
    pub fn finish(&mut self, emit: &mut impl FnMut(HttpEvent<'_>)) {
        for parser in &mut self.parsers {
            parser.end(emit);
        }
    }
}

/// What the first bytes of a direction look like.
enum Sniffed {
    Request,
    Response,
    Other(Protocol),
    NeedMore,
}

fn sniff(data: &[u8]) -> Sniffed {
    const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    if data.starts_with(b"PRI * HTTP/2") {
        return Sniffed::Other(Protocol::Http2);
    }
    if data.len() >= 3 && data[0] == 0x16 && data[1] == 0x03 {
        return Sniffed::Other(Protocol::Tls);
    }
    if data.starts_with(b"SSH-") {
        return Sniffed::Other(Protocol::Ssh);
    }
    // A cut-short start of something recognisable: wait for more rather than guess.
    let tls_start = data.first() == Some(&0x16) && data.get(1).is_none_or(|b| *b == 0x03);
    if H2_PREFACE.starts_with(data) || b"SSH-".starts_with(data) || tls_start {
        return Sniffed::NeedMore;
    }
    if data.starts_with(b"HTTP/") {
        return Sniffed::Response;
    }
    if b"HTTP/".starts_with(data) {
        return Sniffed::NeedMore;
    }
    // An upper-case token then a space or line end: a request, even a malformed one (tshark
    // counts `OPTIONS\r\n` and HTTP/0.9 `GET /\r\n` as requests, and servers answer them).
    let upper = data
        .iter()
        .take(33)
        .position(|b| !(b.is_ascii_uppercase() || *b == b'_' || *b == b'-'))
        .unwrap_or(data.len().min(33));
    match data.get(upper) {
        Some(b' ' | b'\r' | b'\n' | b'/') if (3..=32).contains(&upper) => return Sniffed::Request,
        None if upper == data.len() => return Sniffed::NeedMore,
        _ => {}
    }
    // A short printable start without a line end may still become a request line.
    if data.len() < 16 && data.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        return Sniffed::NeedMore;
    }
    // Other method tokens only with a version on the line.
    let line_end = memchr::memchr(b'\n', data);
    let line = &data[..line_end.unwrap_or(data.len()).min(8192)];
    let method_len = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
    let token_ok = method_len > 0
        && method_len <= 32
        && line[..method_len]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_!#$%&'*+.^`|~".contains(b));
    if !token_ok {
        return Sniffed::Other(Protocol::Unknown);
    }
    match line_end {
        Some(_) if memmem::find(line, b" HTTP/1.").is_some() => Sniffed::Request,
        Some(_) => Sniffed::Other(Protocol::Unknown),
        None if data.len() < 8192 => Sniffed::NeedMore,
        None => Sniffed::Other(Protocol::Unknown),
    }
}

/// Where a message seems to start in bytes found after losing track.
fn find_message_start(data: &[u8], role: Option<Role>) -> Option<(usize, Role)> {
    let mut from = 0;
    while let Some(pos) = memmem::find(&data[from..], b"HTTP/1.") {
        let at = from + pos;
        let line_start = memchr::memrchr(b'\n', &data[..at]).map_or(0, |nl| nl + 1);
        if at == line_start && role != Some(Role::Requests) {
            let status = data.get(at + 8..at + 13);
            if status.is_some_and(|s| s[0] == b' ' && s[1..4].iter().all(u8::is_ascii_digit)) {
                return Some((at, Role::Responses));
            }
        }
        if at > line_start && role != Some(Role::Responses) {
            let line = &data[line_start..at];
            let method_len = line.iter().position(|&b| b == b' ').unwrap_or(0);
            if method_len > 0
                && line[..method_len].iter().all(u8::is_ascii_uppercase)
                && line.ends_with(b" ")
            {
                return Some((line_start, Role::Requests));
            }
        }
        from = at + 1;
    }
    None
}

impl MessageParser {
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
            if shared.tunnel && self.state != State::Opaque {
                self.state = State::Opaque;
            }
            match self.state {
                State::Opaque => return,
                State::AwaitUpgrade => {
                    if shared.answering.is_some() || !shared.pending.is_empty() {
                        // The bytes after an upgrade request belong to whatever the answer says.
                        return;
                    }
                    self.state = State::Head;
                }
                State::Sniff => {
                    if self.next_answers_http09(shared) {
                        self.state = State::Head;
                        continue;
                    }
                    if !self.held.is_empty() {
                        // Earlier bytes were too few to tell: look at them with the new ones.
                        let mut buffered = std::mem::take(&mut self.held);
                        let earlier = buffered.len();
                        buffered.extend_from_slice(rest);
                        match (sniff(&buffered), sniff(rest)) {
                            (Sniffed::NeedMore, _) => {
                                self.held = buffered;
                                return;
                            }
                            (Sniffed::Other(Protocol::Unknown), Sniffed::Request) => {
                                // A segment that starts a message by itself wins over bytes
                                // that never made sense (a body's tail when capture began).
                                let skipped = earlier as u64;
                                emit(HttpEvent::Resync {
                                    role: Role::Requests,
                                    skipped,
                                });
                                continue;
                            }
                            (Sniffed::Other(Protocol::Unknown), Sniffed::Response) => {
                                let skipped = earlier as u64;
                                emit(HttpEvent::Resync {
                                    role: Role::Responses,
                                    skipped,
                                });
                                continue;
                            }
                            _ => {
                                // With nothing buffered the bytes decide below.
                                self.feed(dir, &buffered, shared, max_head, emit);
                                return;
                            }
                        }
                    }
                    let role = match sniff(rest) {
                        Sniffed::NeedMore => {
                            self.held.extend_from_slice(rest);
                            return;
                        }
                        Sniffed::Other(protocol) => {
                            if shared.protocol == Protocol::None {
                                shared.protocol = protocol;
                                emit(HttpEvent::Protocol(protocol));
                            }
                            // Unknown bytes may be a preamble (SOCKS, PROXY) before HTTP: keep
                            // looking for a message start. TLS, HTTP/2, SSH are opaque.
                            self.state = if protocol == Protocol::Unknown {
                                State::Lost
                            } else {
                                State::Opaque
                            };
                            continue;
                        }
                        Sniffed::Request => Role::Requests,
                        Sniffed::Response => Role::Responses,
                    };
                    self.adopt_role(dir, role, shared, emit);
                    self.state = State::Head;
                }
                State::Head => {
                    rest = self.read_head(rest, shared, max_head, emit);
                }
                State::Body(body) => {
                    rest = self.read_body(body, rest, shared, emit);
                }
                State::Lost => {
                    if !self.held.is_empty() {
                        // The last line of the previous lost stretch may be the start of a
                        // message cut by the segment boundary: search it with the new bytes.
                        let mut joined = std::mem::take(&mut self.held);
                        let carried = joined.len();
                        joined.extend_from_slice(rest);
                        if find_message_start(&joined, self.role)
                            .is_some_and(|(at, _)| at < carried)
                        {
                            self.skipped = self.skipped.saturating_sub(carried as u64);
                            self.feed(dir, &joined, shared, max_head, emit);
                            return;
                        }
                    }
                    match find_message_start(rest, self.role) {
                        Some((at, role)) => {
                            self.skipped += at as u64;
                            emit(HttpEvent::Resync {
                                role,
                                skipped: self.skipped,
                            });
                            self.skipped = 0;
                            if self.role.is_none() {
                                self.adopt_role(dir, role, shared, emit);
                            }
                            self.state = State::Head;
                            rest = &rest[at..];
                        }
                        None => {
                            self.skipped += rest.len() as u64;
                            let line_start = memchr::memrchr(b'\n', rest).map_or(0, |nl| nl + 1);
                            let tail = &rest[line_start..];
                            if could_start_message(tail) {
                                self.held.extend_from_slice(tail);
                            }
                            return;
                        }
                    }
                }
            }
        }
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
            self.role = Some(role);
            if shared.client.is_none() {
                let client = match role {
                    Role::Requests => dir,
                    Role::Responses => dir.opposite(),
                };
                shared.client = Some(client);
                emit(HttpEvent::ClientIs(client));
            }
        }
    }

    /// Whether this direction's next message answers an HTTP/0.9 simple request, and so is a
    /// bare body without a status line.
    fn next_answers_http09(&self, shared: &Shared) -> bool {
        self.role == Some(Role::Responses) && shared.pending.front() == Some(&RequestKind::Http09)
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

    fn gap(&mut self, bytes: u64, emit: &mut impl FnMut(HttpEvent<'_>)) {
        emit(HttpEvent::Lost { bytes });
        match self.state {
            State::Opaque | State::AwaitUpgrade => {}
            State::Body(body) => self.body_gap(body, bytes, emit),
            State::Sniff | State::Head | State::Lost => self.lose_track(),
        }
    }

    /// FIN, RST or end of capture: a close-delimited body ends here; anything else open is cut.
    fn end(&mut self, emit: &mut impl FnMut(HttpEvent<'_>)) {
        match self.state {
            State::Body(Body::UntilClose) => self.finish_message(true, emit),
            State::Body(_) => {
                self.finish_message(false, emit);
            }
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

/// Whether an unfinished last line may be the start of a request or status line, worth
/// keeping for the next segment: printable, beginning with an upper-case letter, not long.
fn could_start_message(tail: &[u8]) -> bool {
    tail.len() <= MAX_CARRY
        && tail.first().is_some_and(u8::is_ascii_uppercase)
        && tail
            .iter()
            .all(|b| b.is_ascii_graphic() || *b == b' ' || *b == b'\r')
}

#[cfg(test)]
mod tests {
    use super::testing::{Event, Recorder, events_of};
    use super::*;

    #[test]
    fn a_cut_short_first_segment_is_judged_like_the_whole() {
        let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
        assert_eq!(
            events_of(&[&preface[..7], &preface[7..]]),
            events_of(&[preface])
        );
        assert_eq!(
            events_of(&[b"\x16", b"\x03\x01\x00\x05hello"]),
            [Event::Protocol(Protocol::Tls)]
        );
        let request = b"get / HTTP/1.1\r\nHost: a\r\n\r\n";
        assert_eq!(
            events_of(&[&request[..4], &request[4..]]),
            events_of(&[request])
        );
        assert!(
            events_of(&[request])
                .iter()
                .any(|e| matches!(e, Event::Request { method, .. } if method == "get"))
        );
    }

    #[test]
    fn a_message_start_cut_by_a_segment_boundary_is_found_after_a_gap() {
        let mut http = Recorder::new(Some(Dir::A), DEFAULT_MAX_HEAD);
        http.data(Dir::A, b"GET / HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n");
        http.stream(Dir::B, StreamEvent::Gap(10));
        http.data(Dir::B, b"ab\r\nHTT");
        http.data(Dir::B, b"P/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        let events = &http.events;
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::Response { status: 200, .. })),
            "{events:?}"
        );
        assert!(
            events.contains(&Event::Resync {
                role: Role::Responses,
                skipped: 4
            }),
            "{events:?}"
        );
    }
}
