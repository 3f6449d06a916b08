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

#[cfg(test)]
mod testing;

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

/// Tokens of a `Connection` header that matter for persistence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConnectionTokens(u8);

impl ConnectionTokens {
    pub const CLOSE: u8 = 1;
    pub const KEEP_ALIVE: u8 = 2;
    pub const UPGRADE: u8 = 4;
    pub const OTHER: u8 = 8;

    pub fn parse(value: &[u8]) -> ConnectionTokens {
        let mut bits = 0;
        for token in value.split(|&b| b == b',') {
            let token = token.trim_ascii();
            bits |= if token.eq_ignore_ascii_case(b"close") {
                Self::CLOSE
            } else if token.eq_ignore_ascii_case(b"keep-alive") {
                Self::KEEP_ALIVE
            } else if token.eq_ignore_ascii_case(b"upgrade") {
                Self::UPGRADE
            } else if token.is_empty() {
                0
            } else {
                Self::OTHER
            };
        }
        ConnectionTokens(bits)
    }

    pub fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }

    pub fn union(self, other: ConnectionTokens) -> ConnectionTokens {
        ConnectionTokens(self.0 | other.0)
    }

    /// `close;keep-alive;upgrade;other`, in that order, for reports.
    pub fn describe(self) -> String {
        let names = [
            (Self::CLOSE, "close"),
            (Self::KEEP_ALIVE, "keep-alive"),
            (Self::UPGRADE, "upgrade"),
            (Self::OTHER, "other"),
        ];
        let parts: Vec<&str> = names
            .iter()
            .filter(|(bit, _)| self.has(*bit))
            .map(|(_, name)| *name)
            .collect();
        parts.join(";")
    }
}

/// A `Keep-Alive: timeout=T, max=M` header as the server sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeepAliveAdvert {
    pub timeout: Option<u32>,
    pub max: Option<u32>,
    /// Something in the header could not be understood (kept apart from the values).
    pub malformed: bool,
}

impl KeepAliveAdvert {
    /// Parses one header value: parameters separated by commas (some servers use `;` or
    /// spaces), names case-insensitive, values optionally quoted. Unknown parameters are
    /// ignored; a known parameter without a number marks the advert malformed. A repeated
    /// parameter keeps its last value.
    pub fn parse(value: &[u8]) -> KeepAliveAdvert {
        let mut advert = KeepAliveAdvert::default();
        for item in value.split(|&b| b == b',' || b == b';') {
            let item = item.trim_ascii();
            if item.is_empty() {
                continue;
            }
            let (name, number) = match item.iter().position(|&b| b == b'=') {
                Some(eq) => (item[..eq].trim_ascii(), Some(item[eq + 1..].trim_ascii())),
                None => (item, None),
            };
            let slot = if name.eq_ignore_ascii_case(b"timeout") {
                &mut advert.timeout
            } else if name.eq_ignore_ascii_case(b"max") {
                &mut advert.max
            } else {
                if !name.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-') {
                    advert.malformed = true;
                }
                continue;
            };
            match number.and_then(parse_quoted_number) {
                Some(n) => *slot = Some(n),
                None => advert.malformed = true,
            }
        }
        advert
    }

    /// Combines a repeated header: later values win, malformation sticks.
    fn merge(self, later: KeepAliveAdvert) -> KeepAliveAdvert {
        KeepAliveAdvert {
            timeout: later.timeout.or(self.timeout),
            max: later.max.or(self.max),
            malformed: self.malformed || later.malformed,
        }
    }
}

fn parse_quoted_number(text: &[u8]) -> Option<u32> {
    let text = text
        .strip_prefix(b"\"")
        .and_then(|t| t.strip_suffix(b"\""))
        .unwrap_or(text)
        .trim_ascii();
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
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
enum Chunk {
    /// Reading the hex size; `digits` read so far.
    Size {
        size: u64,
        digits: u8,
    },
    /// After the size: extensions or whitespace up to the line end.
    SizeLineRest {
        size: u64,
    },
    Data(u64),
    /// The CRLF after chunk data.
    DataEnd {
        seen_cr: bool,
    },
    /// Trailer section; `line_len` counts bytes of the current line, CR excluded.
    Trailer {
        line_len: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    Length(u64),
    Chunked(Chunk),
    UntilClose,
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
    head: Vec<u8>,
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
            head: Vec::new(),
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
            .map(|p| p.head.capacity())
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

/// Finds the end of a message head (just past the blank line), accepting bare LF line ends.
/// `from` is where to resume a search in a growing buffer.
fn head_end(data: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(pos) = memchr::memchr(b'\n', &data[at..]) {
        let nl = at + pos;
        let blank_before = match nl {
            0 => false,
            _ if data[nl - 1] == b'\n' => true,
            _ if data[nl - 1] == b'\r' => nl >= 2 && data[nl - 2] == b'\n',
            _ => false,
        };
        if blank_before {
            return Some(nl + 1);
        }
        at = nl + 1;
    }
    None
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
                    if self.role == Some(Role::Responses)
                        && shared.pending.front() == Some(&RequestKind::Http09)
                    {
                        self.state = State::Head;
                        continue;
                    }
                    if !self.head.is_empty() {
                        // Earlier bytes were too few to tell: look at them with the new ones.
                        let mut buffered = std::mem::take(&mut self.head);
                        let earlier = buffered.len();
                        buffered.extend_from_slice(rest);
                        match (sniff(&buffered), sniff(rest)) {
                            (Sniffed::NeedMore, _) => {
                                self.head = buffered;
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
                            self.head.extend_from_slice(rest);
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
                    if self.role == Some(Role::Responses)
                        && shared.answering.is_none()
                        && shared.pending.front() == Some(&RequestKind::Http09)
                    {
                        // HTTP/0.9 simple response: no status line, the body runs to the close.
                        shared.pending.pop_front();
                        emit(HttpEvent::Response(ResponseHead {
                            status: 0,
                            version: 9,
                            connection: ConnectionTokens::default(),
                            keep_alive: None,
                            server: None,
                            head_bytes: 0,
                        }));
                        self.start_body(Body::UntilClose, emit);
                        continue;
                    }
                    if self.head.is_empty() {
                        // Blank lines between messages are tolerated (RFC 9112 §2.2).
                        let skip = rest
                            .iter()
                            .position(|&b| b != b'\r' && b != b'\n')
                            .unwrap_or(rest.len());
                        rest = &rest[skip..];
                        if rest.is_empty() {
                            return;
                        }
                        match head_end(rest, 0) {
                            Some(end) => {
                                self.on_head(&rest[..end], shared, emit);
                                rest = &rest[end..];
                            }
                            None => {
                                if self.role != Some(Role::Responses)
                                    && let Some(end) = simple_request_end(rest)
                                {
                                    self.on_simple_request(&rest[..end], shared, emit);
                                    rest = &rest[end..];
                                    continue;
                                }
                                if rest.len() > max_head {
                                    self.give_up(ParseError::HeadTooLarge, emit);
                                    // Step past this head's start, or the search for the next
                                    // message would find it again at once.
                                    rest = &rest[1..];
                                    continue;
                                }
                                self.head.extend_from_slice(rest);
                                return;
                            }
                        }
                    } else {
                        let old = self.head.len();
                        self.head.extend_from_slice(rest);
                        match head_end(&self.head, old.saturating_sub(3)) {
                            Some(end) => {
                                let head = std::mem::take(&mut self.head);
                                self.on_head(&head[..end], shared, emit);
                                rest = &rest[end - old..];
                                self.head = head;
                                self.head.clear();
                            }
                            None if self.role != Some(Role::Responses)
                                && simple_request_end(&self.head).is_some() =>
                            {
                                let end = simple_request_end(&self.head).unwrap_or_default();
                                let head = std::mem::take(&mut self.head);
                                self.on_simple_request(&head[..end], shared, emit);
                                rest = &rest[end.saturating_sub(old)..];
                                self.head = head;
                                self.head.clear();
                            }
                            None => {
                                if self.head.len() > max_head {
                                    self.head = Vec::new();
                                    self.give_up(ParseError::HeadTooLarge, emit);
                                }
                                return;
                            }
                        }
                    }
                }
                State::Body(body) => {
                    rest = self.body(body, rest, shared, emit);
                }
                State::Lost => {
                    if !self.head.is_empty() {
                        // The last line of the previous lost stretch may be the start of a
                        // message cut by the segment boundary: search it with the new bytes.
                        let mut joined = std::mem::take(&mut self.head);
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
                                self.head.extend_from_slice(tail);
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

    fn give_up(&mut self, error: ParseError, emit: &mut impl FnMut(HttpEvent<'_>)) {
        emit(HttpEvent::Error(self.role.unwrap_or(Role::Requests), error));
        self.head.clear();
        self.state = State::Lost;
    }

    fn on_head(&mut self, head: &[u8], shared: &mut Shared, emit: &mut impl FnMut(HttpEvent<'_>)) {
        match self.role {
            Some(Role::Requests) | None => self.on_request_head(head, shared, emit),
            Some(Role::Responses) => self.on_response_head(head, shared, emit),
        }
    }

    fn on_request_head(
        &mut self,
        head: &[u8],
        shared: &mut Shared,
        emit: &mut impl FnMut(HttpEvent<'_>),
    ) {
        let mut storage = [httparse::EMPTY_HEADER; 64];
        let mut big_storage;
        let mut request = httparse::Request::new(&mut storage);
        let config = parser_config();
        let mut parsed = config.parse_request(&mut request, head);
        if parsed == Err(httparse::Error::TooManyHeaders) {
            big_storage = vec![httparse::EMPTY_HEADER; count_lines(head)];
            request = httparse::Request::new(&mut big_storage);
            parsed = config.parse_request(&mut request, head);
        }
        if !matches!(parsed, Ok(httparse::Status::Complete(_))) {
            self.malformed_request(head, shared, emit);
            return;
        }
        let method = request.method.unwrap_or("");
        let framing = framing_headers(request.headers);
        let kind = if method.eq_ignore_ascii_case("HEAD") {
            RequestKind::Head
        } else if method.eq_ignore_ascii_case("CONNECT") {
            RequestKind::Connect
        } else if framing.connection.has(ConnectionTokens::UPGRADE) && framing.upgrade {
            RequestKind::Upgrade
        } else {
            RequestKind::Normal
        };
        if shared.pending.len() < MAX_PENDING {
            shared.pending.push_back(kind);
        }
        emit(HttpEvent::Request(RequestHead {
            method,
            target: request.path.unwrap_or(""),
            version: request.version.unwrap_or(1),
            connection: framing.connection,
            head_bytes: head.len(),
        }));
        let body = match framing.body(false) {
            Ok(Some(body)) => body,
            Ok(None) => Body::Length(0),
            Err(error) => {
                self.give_up(error, emit);
                return;
            }
        };
        self.start_body(body, emit);
        if matches!(self.state, State::Head)
            && matches!(kind, RequestKind::Connect | RequestKind::Upgrade)
        {
            self.state = State::AwaitUpgrade;
        }
    }

    /// An HTTP/0.9 simple request (`GET /path` and a line end, RFC 1945 §4.1).
    fn on_simple_request(
        &mut self,
        line: &[u8],
        shared: &mut Shared,
        emit: &mut impl FnMut(HttpEvent<'_>),
    ) {
        let target = std::str::from_utf8(line.trim_ascii()[4..].trim_ascii()).unwrap_or("");
        if shared.pending.len() < MAX_PENDING {
            shared.pending.push_back(RequestKind::Http09);
        }
        emit(HttpEvent::Request(RequestHead {
            method: "GET",
            target,
            version: 9,
            connection: ConnectionTokens::default(),
            head_bytes: line.len(),
        }));
        self.start_body(Body::Length(0), emit);
    }

    /// A head httparse rejects but whose first line starts with a method token still took
    /// its turn on the connection (servers answer it, usually with 400): it is counted as a
    /// request without a body and flagged.
    fn malformed_request(
        &mut self,
        head: &[u8],
        shared: &mut Shared,
        emit: &mut impl FnMut(HttpEvent<'_>),
    ) {
        if let Some(end) = simple_request_end(head) {
            self.on_simple_request(&head[..end], shared, emit);
            return;
        }
        let line_end = memchr::memchr(b'\n', head).unwrap_or(head.len());
        let line = head[..line_end].trim_ascii();
        let method_len = line
            .iter()
            .position(|b| !b.is_ascii_alphanumeric() && !b"-_".contains(b))
            .unwrap_or(line.len());
        if method_len == 0 {
            self.give_up(ParseError::BadHead, emit);
            return;
        }
        let method = std::str::from_utf8(&line[..method_len]).unwrap_or("");
        let target = std::str::from_utf8(line[method_len..].trim_ascii())
            .unwrap_or("")
            .split(' ')
            .next()
            .unwrap_or("");
        emit(HttpEvent::Error(Role::Requests, ParseError::BadHead));
        if shared.pending.len() < MAX_PENDING {
            shared.pending.push_back(RequestKind::Normal);
        }
        emit(HttpEvent::Request(RequestHead {
            method,
            target,
            version: 1,
            connection: ConnectionTokens::default(),
            head_bytes: head.len(),
        }));
        self.start_body(Body::Length(0), emit);
    }

    fn on_response_head(
        &mut self,
        head: &[u8],
        shared: &mut Shared,
        emit: &mut impl FnMut(HttpEvent<'_>),
    ) {
        let mut storage = [httparse::EMPTY_HEADER; 64];
        let mut big_storage;
        let mut response = httparse::Response::new(&mut storage);
        let config = parser_config();
        let mut parsed = config.parse_response(&mut response, head);
        if parsed == Err(httparse::Error::TooManyHeaders) {
            big_storage = vec![httparse::EMPTY_HEADER; count_lines(head)];
            response = httparse::Response::new(&mut big_storage);
            parsed = config.parse_response(&mut response, head);
        }
        if !matches!(parsed, Ok(httparse::Status::Complete(_))) {
            self.give_up(ParseError::BadHead, emit);
            return;
        }
        let status = response.code.unwrap_or(0);
        let framing = framing_headers(response.headers);
        let server = response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("server"))
            .map(|h| h.value);
        let head_event = ResponseHead {
            status,
            version: response.version.unwrap_or(1),
            connection: framing.connection,
            keep_alive: framing.keep_alive,
            server,
            head_bytes: head.len(),
        };
        let kind = match shared.answering {
            Some(kind) => kind,
            None => {
                let kind = shared.pending.pop_front().unwrap_or(RequestKind::Normal);
                shared.answering = Some(kind);
                kind
            }
        };
        emit(HttpEvent::Response(head_event));
        if head_event.is_interim() {
            // The final response to the same request is still to come.
            return;
        }
        shared.answering = None;
        let tunnel =
            status == 101 || (kind == RequestKind::Connect && (200..300).contains(&status));
        if tunnel {
            shared.tunnel = true;
            emit(HttpEvent::ResponseEnd {
                body_bytes: 0,
                complete: true,
            });
            emit(HttpEvent::Tunnel);
            self.state = State::Opaque;
            return;
        }
        let no_body = kind == RequestKind::Head || status == 204 || status == 304;
        let body = if no_body {
            Body::Length(0)
        } else {
            match framing.body(true) {
                Ok(body) => body.unwrap_or(Body::UntilClose),
                Err(error) => {
                    emit(HttpEvent::ResponseEnd {
                        body_bytes: 0,
                        complete: false,
                    });
                    self.give_up(error, emit);
                    return;
                }
            }
        };
        self.start_body(body, emit);
    }

    fn start_body(&mut self, body: Body, emit: &mut impl FnMut(HttpEvent<'_>)) {
        self.body_bytes = 0;
        self.body_complete = true;
        if body == Body::Length(0) {
            self.finish_message(true, emit);
        } else {
            self.state = State::Body(body);
        }
    }

    fn finish_message(&mut self, complete: bool, emit: &mut impl FnMut(HttpEvent<'_>)) {
        let body_bytes = self.body_bytes;
        let complete = complete && self.body_complete;
        emit(match self.role {
            Some(Role::Responses) => HttpEvent::ResponseEnd {
                body_bytes,
                complete,
            },
            _ => HttpEvent::RequestEnd {
                body_bytes,
                complete,
            },
        });
        self.state = State::Head;
    }

    /// Consumes body bytes; returns what follows the body in `data`.
    fn body<'d>(
        &mut self,
        body: Body,
        data: &'d [u8],
        shared: &mut Shared,
        emit: &mut impl FnMut(HttpEvent<'_>),
    ) -> &'d [u8] {
        match body {
            Body::UntilClose => {
                self.body_bytes += data.len() as u64;
                &[]
            }
            Body::Length(remaining) => {
                let take = remaining.min(data.len() as u64);
                self.body_bytes += take;
                let left = remaining - take;
                if left == 0 {
                    self.finish_message(true, emit);
                    if self.state == State::Head
                        && self.role == Some(Role::Requests)
                        && shared.pending.back().is_some_and(|k| {
                            matches!(k, RequestKind::Connect | RequestKind::Upgrade)
                        })
                    {
                        self.state = State::AwaitUpgrade;
                    }
                } else {
                    self.state = State::Body(Body::Length(left));
                }
                &data[take as usize..]
            }
            Body::Chunked(chunk) => self.chunked(chunk, data, emit),
        }
    }

    fn chunked<'d>(
        &mut self,
        mut chunk: Chunk,
        data: &'d [u8],
        emit: &mut impl FnMut(HttpEvent<'_>),
    ) -> &'d [u8] {
        let mut at = 0;
        while at < data.len() {
            if let Chunk::Data(remaining) = chunk {
                let take = remaining.min((data.len() - at) as u64);
                self.body_bytes += take;
                at += take as usize;
                chunk = if remaining == take {
                    Chunk::DataEnd { seen_cr: false }
                } else {
                    Chunk::Data(remaining - take)
                };
                continue;
            }
            let byte = data[at];
            at += 1;
            chunk = match chunk {
                Chunk::Size { size, digits } => match byte {
                    b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' if digits < 16 => Chunk::Size {
                        size: size * 16 + u64::from((byte as char).to_digit(16).unwrap_or(0)),
                        digits: digits + 1,
                    },
                    b';' | b' ' | b'\t' | b'\r' if digits > 0 => Chunk::SizeLineRest { size },
                    b'\n' if digits > 0 => chunk_after_size(size),
                    _ => {
                        self.finish_message(false, emit);
                        self.give_up(ParseError::BadChunk, emit);
                        return &data[at..];
                    }
                },
                Chunk::SizeLineRest { size } => match byte {
                    b'\n' => chunk_after_size(size),
                    _ => Chunk::SizeLineRest { size },
                },
                Chunk::DataEnd { seen_cr } => match byte {
                    b'\r' if !seen_cr => Chunk::DataEnd { seen_cr: true },
                    b'\n' => Chunk::Size { size: 0, digits: 0 },
                    _ => {
                        self.finish_message(false, emit);
                        self.give_up(ParseError::BadChunk, emit);
                        return &data[at - 1..];
                    }
                },
                Chunk::Trailer { line_len } => match byte {
                    b'\n' if line_len == 0 => {
                        self.finish_message(true, emit);
                        return &data[at..];
                    }
                    b'\n' => Chunk::Trailer { line_len: 0 },
                    b'\r' => Chunk::Trailer { line_len },
                    _ => Chunk::Trailer {
                        line_len: line_len.saturating_add(1),
                    },
                },
                Chunk::Data(_) => unreachable!("handled above"),
            };
        }
        self.state = State::Body(Body::Chunked(chunk));
        &[]
    }

    fn gap(&mut self, bytes: u64, emit: &mut impl FnMut(HttpEvent<'_>)) {
        emit(HttpEvent::Lost { bytes });
        match self.state {
            State::Opaque | State::AwaitUpgrade => {}
            State::Body(Body::UntilClose) => {
                self.body_bytes += bytes;
                self.body_complete = false;
            }
            State::Body(Body::Length(remaining)) if bytes < remaining => {
                // The framing survives: only body bytes are missing.
                self.body_bytes += bytes;
                self.body_complete = false;
                self.state = State::Body(Body::Length(remaining - bytes));
            }
            State::Body(Body::Length(remaining)) if bytes == remaining => {
                self.body_bytes += bytes;
                self.body_complete = false;
                self.finish_message(false, emit);
            }
            State::Body(_) => {
                self.finish_message(false, emit);
                self.head.clear();
                self.state = State::Lost;
            }
            State::Sniff | State::Head | State::Lost => {
                self.head.clear();
                self.state = State::Lost;
            }
        }
    }

    /// FIN, RST or end of capture: a close-delimited body ends here; anything else open is cut.
    fn end(&mut self, emit: &mut impl FnMut(HttpEvent<'_>)) {
        match self.state {
            State::Body(Body::UntilClose) => self.finish_message(true, emit),
            State::Body(_) => {
                self.finish_message(false, emit);
            }
            State::Head if !self.head.is_empty() => {
                emit(HttpEvent::Error(
                    self.role.unwrap_or(Role::Requests),
                    ParseError::BadHead,
                ));
            }
            _ => {}
        }
        self.head = Vec::new();
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

/// The end of an HTTP/0.9 simple request line (`GET` SP target, no version), if `data`
/// starts with one.
fn simple_request_end(data: &[u8]) -> Option<usize> {
    let newline = memchr::memchr(b'\n', data)?;
    let line = data[..newline]
        .strip_suffix(b"\r")
        .unwrap_or(&data[..newline]);
    let target = line.strip_prefix(b"GET ")?;
    let simple = !target.is_empty()
        && !target.contains(&b' ')
        && target.iter().all(|b| b.is_ascii_graphic());
    simple.then_some(newline + 1)
}

/// Lenient parsing: the job is to follow real traffic, not to police it.
fn parser_config() -> httparse::ParserConfig {
    let mut config = httparse::ParserConfig::default();
    config
        .allow_multiple_spaces_in_request_line_delimiters(true)
        .ignore_invalid_headers_in_requests(true)
        .allow_spaces_after_header_name_in_responses(true)
        .allow_obsolete_multiline_headers_in_responses(true)
        .allow_multiple_spaces_in_response_status_delimiters(true)
        .ignore_invalid_headers_in_responses(true);
    config
}

fn chunk_after_size(size: u64) -> Chunk {
    if size == 0 {
        Chunk::Trailer { line_len: 0 }
    } else {
        Chunk::Data(size)
    }
}

fn count_lines(head: &[u8]) -> usize {
    memchr::memchr_iter(b'\n', head).count() + 1
}

/// The headers that decide framing and persistence.
struct Framing {
    content_length: Option<Result<u64, ()>>,
    chunked: Option<bool>,
    connection: ConnectionTokens,
    keep_alive: Option<KeepAliveAdvert>,
    upgrade: bool,
}

impl Framing {
    /// RFC 9112 §6.3: Transfer-Encoding wins over Content-Length; a request without either
    /// has no body; `Ok(None)` means neither was present.
    fn body(&self, response: bool) -> Result<Option<Body>, ParseError> {
        match (self.chunked, self.content_length) {
            (Some(true), _) => Ok(Some(Body::Chunked(Chunk::Size { size: 0, digits: 0 }))),
            (Some(false), _) if response => Ok(Some(Body::UntilClose)),
            (Some(false), _) => Err(ParseError::BadFraming),
            (None, Some(Ok(length))) => Ok(Some(Body::Length(length))),
            (None, Some(Err(()))) => Err(ParseError::BadFraming),
            (None, None) => Ok(None),
        }
    }
}

fn framing_headers(headers: &[httparse::Header<'_>]) -> Framing {
    let mut framing = Framing {
        content_length: None,
        chunked: None,
        connection: ConnectionTokens::default(),
        keep_alive: None,
        upgrade: false,
    };
    for header in headers {
        let name = header.name;
        if name.eq_ignore_ascii_case("content-length") {
            let parsed = parse_content_length(header.value);
            framing.content_length = match (framing.content_length, parsed) {
                (None, value) => Some(value),
                (Some(Ok(a)), Ok(b)) if a == b => Some(Ok(a)),
                _ => Some(Err(())),
            };
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            let last = header
                .value
                .rsplit(|&b| b == b',')
                .next()
                .unwrap_or(b"")
                .trim_ascii();
            framing.chunked = Some(last.eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case("connection") {
            framing.connection = framing
                .connection
                .union(ConnectionTokens::parse(header.value));
        } else if name.eq_ignore_ascii_case("keep-alive") {
            let advert = KeepAliveAdvert::parse(header.value);
            framing.keep_alive = Some(match framing.keep_alive {
                Some(earlier) => earlier.merge(advert),
                None => advert,
            });
        } else if name.eq_ignore_ascii_case("upgrade") {
            framing.upgrade = true;
        }
    }
    framing
}

/// Content-Length: digits only; a list of identical values is accepted (RFC 9110 §8.6).
fn parse_content_length(value: &[u8]) -> Result<u64, ()> {
    let mut result = None;
    for part in value.split(|&b| b == b',') {
        let part = part.trim_ascii();
        if part.is_empty() || part.len() > 18 || !part.iter().all(u8::is_ascii_digit) {
            return Err(());
        }
        let number: u64 = std::str::from_utf8(part)
            .map_err(|_| ())?
            .parse()
            .map_err(|_| ())?;
        match result {
            Some(previous) if previous != number => return Err(()),
            _ => result = Some(number),
        }
    }
    result.ok_or(())
}

#[cfg(test)]
mod tests {
    use super::testing::{Event, Recorder, events_of};
    use super::*;

    #[test]
    fn keep_alive_values_parse_leniently() {
        let advert = KeepAliveAdvert::parse(b"timeout=5, max=100");
        assert_eq!(
            (advert.timeout, advert.max, advert.malformed),
            (Some(5), Some(100), false)
        );
        let advert = KeepAliveAdvert::parse(b" Timeout = \"15\" ;MAX=3, foo=bar");
        assert_eq!(
            (advert.timeout, advert.max, advert.malformed),
            (Some(15), Some(3), false)
        );
        let advert = KeepAliveAdvert::parse(b"timeout=5, timeout=7");
        assert_eq!(advert.timeout, Some(7));
        let advert = KeepAliveAdvert::parse(b"timeout=abc, max=2");
        assert_eq!(
            (advert.timeout, advert.max, advert.malformed),
            (None, Some(2), true)
        );
        let advert = KeepAliveAdvert::parse(b"300");
        assert!(advert.malformed || advert.timeout.is_none());
    }

    #[test]
    fn connection_tokens() {
        let tokens = ConnectionTokens::parse(b"Keep-Alive, Upgrade");
        assert!(tokens.has(ConnectionTokens::KEEP_ALIVE) && tokens.has(ConnectionTokens::UPGRADE));
        assert!(!tokens.has(ConnectionTokens::CLOSE));
        assert_eq!(ConnectionTokens::parse(b"close").describe(), "close");
    }

    #[test]
    fn head_end_accepts_bare_lf() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n\r\nrest", 0), Some(24));
        assert_eq!(head_end(b"GET / HTTP/1.1\nA: b\n\nrest", 0), Some(21));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n", 0), None);
    }

    #[test]
    fn a_head_over_the_bound_is_skipped_not_retried_forever() {
        let mut http = Recorder::new(Some(Dir::A), 64);
        // The head's first part alone is over the bound and has no end yet.
        let mut first = b"GET /big HTTP/1.1\r\nX: ".to_vec();
        first.extend(std::iter::repeat_n(b'x', 200));
        http.data(Dir::A, &first);
        http.data(Dir::A, b"\r\n\r\nGET /next HTTP/1.1\r\n\r\n");
        let events = &http.events;
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::Error(_, ParseError::HeadTooLarge))),
            "{events:?}"
        );
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::Request { target, .. } if target == "/next")),
            "{events:?}"
        );
    }

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

    #[test]
    fn content_length_rejects_conflicts() {
        assert_eq!(parse_content_length(b"42"), Ok(42));
        assert_eq!(parse_content_length(b"42, 42"), Ok(42));
        assert_eq!(parse_content_length(b"42, 43"), Err(()));
        assert_eq!(parse_content_length(b"-1"), Err(()));
    }
}
