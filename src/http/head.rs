//! Message heads: finding where a head ends, parsing it with httparse, and reading from its
//! headers what decides framing (Content-Length, Transfer-Encoding) and persistence
//! (Connection, Keep-Alive). Also the heads httparse refuses but traffic still carries:
//! HTTP/0.9 simple requests, and malformed heads that servers answer anyway, whose framing is
//! read line by line (`lenient`) so that their bodies are stepped over, not taken for the
//! next message. Such a head counts once, flagged as a parse error.
//!
//! A head is parsed straight from the segment when it arrives whole there, and from the
//! parser's held bytes only when it is split across segments.

use super::body::{Body, Chunk};
use super::lenient;
use super::{
    HttpEvent, MessageParser, ParseError, RequestHead, RequestKind, ResponseHead, Role, Shared,
};

impl MessageParser {
    /// The `Head` state: reads the next message head and starts its body. Returns what
    /// follows the head in `data`.
    pub(super) fn read_head<'d>(
        &mut self,
        data: &'d [u8],
        shared: &mut Shared,
        max_head: usize,
        emit: &mut impl FnMut(HttpEvent<'_>),
    ) -> &'d [u8] {
        if self.next_answers_http09(shared) {
            // HTTP/0.9 simple response: no status line, the body runs to the close.
            let (_, answers) = shared
                .transactions
                .response(0, false, shared.now, shared.now);
            let head = ResponseHead {
                status: 0,
                version: 9,
                connection: ConnectionTokens::default(),
                keep_alive: None,
                server: None,
                head_bytes: 0,
            };
            emit(HttpEvent::Response { head, answers });
            self.start_body(Body::UntilClose, shared, emit);
            return data;
        }
        if self.held.is_empty() {
            self.head_from_segment(data, shared, max_head, emit)
        } else {
            self.head_from_held(data, shared, max_head, emit)
        }
    }

    /// A head that starts in this segment: parsed in place if it ends here too, otherwise
    /// its start is held for the next segment.
    fn head_from_segment<'d>(
        &mut self,
        data: &'d [u8],
        shared: &mut Shared,
        max_head: usize,
        emit: &mut impl FnMut(HttpEvent<'_>),
    ) -> &'d [u8] {
        // Blank lines between messages are tolerated (RFC 9112 §2.2).
        let skip = data
            .iter()
            .position(|&b| b != b'\r' && b != b'\n')
            .unwrap_or(data.len());
        let data = &data[skip..];
        if data.is_empty() {
            return data;
        }
        self.head_start = shared.now;
        match self.parse_complete_head(data, 0, shared, emit) {
            Some(end) => &data[end..],
            None if data.len() > max_head => {
                self.give_up(ParseError::HeadTooLarge, emit);
                // Step past this head's first line, or the search for the next message would
                // find it again at once (one byte later each time: quadratic).
                memchr::memchr(b'\n', data).map_or(&[], |nl| &data[nl + 1..])
            }
            None => {
                self.held.extend_from_slice(data);
                &[]
            }
        }
    }

    /// A head whose start is held from earlier segments: this segment is added to it.
    fn head_from_held<'d>(
        &mut self,
        data: &'d [u8],
        shared: &mut Shared,
        max_head: usize,
        emit: &mut impl FnMut(HttpEvent<'_>),
    ) -> &'d [u8] {
        let old = self.held.len();
        self.held.extend_from_slice(data);
        // Taken out while the head is parsed from it, and put back to keep its allocation.
        let held = std::mem::take(&mut self.held);
        // The blank line that ends the head may have begun in the held bytes.
        let end = self.parse_complete_head(&held, old.saturating_sub(3), shared, emit);
        self.held = held;
        match end {
            Some(end) => {
                self.held.clear();
                &data[end.saturating_sub(old)..]
            }
            None => {
                if self.held.len() > max_head {
                    self.held = Vec::new();
                    self.give_up(ParseError::HeadTooLarge, emit);
                }
                &[]
            }
        }
    }

    /// Parses the message that `bytes` start with if its head is all there, a full head or an
    /// HTTP/0.9 simple request line, and returns how many bytes the head took. `from` is
    /// where to resume the search for the head's end.
    fn parse_complete_head(
        &mut self,
        bytes: &[u8],
        from: usize,
        shared: &mut Shared,
        emit: &mut impl FnMut(HttpEvent<'_>),
    ) -> Option<usize> {
        if let Some(end) = head_end(bytes, from) {
            match self.role {
                Some(Role::Requests) | None => self.on_request_head(&bytes[..end], shared, emit),
                Some(Role::Responses) => self.on_response_head(&bytes[..end], shared, emit),
            }
            return Some(end);
        }
        if self.role == Some(Role::Responses) {
            return None;
        }
        let end = simple_request_end(bytes)?;
        self.on_simple_request(&bytes[..end], shared, emit);
        Some(end)
    }

    fn on_request_head(
        &mut self,
        bytes: &[u8],
        shared: &mut Shared,
        emit: &mut impl FnMut(HttpEvent<'_>),
    ) {
        let Some((head, framing)) = parse_head::<RequestHead>(bytes) else {
            self.malformed_request(bytes, shared, emit);
            return;
        };
        if framing.repaired {
            emit(HttpEvent::Error(Role::Requests, ParseError::BadHead));
        }
        let kind = request_kind(head.method, &framing);
        self.request(head, kind, &framing, shared, emit);
    }

    /// A request head, parsed or read leniently: queued for its answer, then its body.
    fn request(
        &mut self,
        head: RequestHead<'_>,
        kind: RequestKind,
        framing: &Framing,
        shared: &mut Shared,
        emit: &mut impl FnMut(HttpEvent<'_>),
    ) {
        let in_flight = shared.transactions.request(kind, &head, shared.now);
        emit(HttpEvent::Request { head, in_flight });
        let body = match framing.body(false) {
            Ok(Some(body)) => body,
            Ok(None) => Body::Length(0),
            Err(error) => {
                self.give_up(error, emit);
                return;
            }
        };
        self.start_body(body, shared, emit);
        self.expect_upgrade_answer(Some(kind));
    }

    /// An HTTP/0.9 simple request (`GET /path` and a line end, RFC 1945 §4.1).
    fn on_simple_request(
        &mut self,
        line: &[u8],
        shared: &mut Shared,
        emit: &mut impl FnMut(HttpEvent<'_>),
    ) {
        let target = std::str::from_utf8(line.trim_ascii()[4..].trim_ascii()).unwrap_or("");
        let head = RequestHead {
            method: "GET",
            target,
            version: 9,
            connection: ConnectionTokens::default(),
            user_agent: None,
            host: None,
            head_bytes: line.len(),
        };
        self.bodiless_request(RequestKind::Http09, head, shared, emit);
    }

    /// A head httparse rejects but whose first line starts with a method token still took
    /// its turn on the connection (servers answer it, usually with 400): it is counted as a
    /// request, flagged, and its body is stepped over as its framing headers, read
    /// leniently, say.
    fn malformed_request(
        &mut self,
        bytes: &[u8],
        shared: &mut Shared,
        emit: &mut impl FnMut(HttpEvent<'_>),
    ) {
        if let Some(end) = simple_request_end(bytes) {
            self.on_simple_request(&bytes[..end], shared, emit);
            return;
        }
        let line = lenient::start_line(bytes).trim_ascii();
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
        let framing = framing_headers(lenient::fields(bytes));
        // A method glued to what follows (`HEAD/ HTTP/1.1`) is not one the server took for
        // HEAD or CONNECT: its answer is framed as any other.
        let kind = match line.get(method_len) {
            Some(b' ') => request_kind(method, &framing),
            _ => RequestKind::Normal,
        };
        let head = RequestHead {
            method,
            target,
            version: lenient::request_version(line),
            connection: framing.connection,
            user_agent: field_value(lenient::fields(bytes), b"user-agent"),
            host: field_value(lenient::fields(bytes), b"host"),
            head_bytes: bytes.len(),
        };
        self.request(head, kind, &framing, shared, emit);
    }

    /// A request that ends with its head: queued for its answer, and over.
    fn bodiless_request(
        &mut self,
        kind: RequestKind,
        head: RequestHead<'_>,
        shared: &mut Shared,
        emit: &mut impl FnMut(HttpEvent<'_>),
    ) {
        let in_flight = shared.transactions.request(kind, &head, shared.now);
        emit(HttpEvent::Request { head, in_flight });
        self.start_body(Body::Length(0), shared, emit);
    }

    fn on_response_head(
        &mut self,
        bytes: &[u8],
        shared: &mut Shared,
        emit: &mut impl FnMut(HttpEvent<'_>),
    ) {
        let (head, framing) = match parse_head::<ResponseHead>(bytes) {
            Some((head, framing)) if !framing.repaired => (head, framing),
            parsed => {
                // What httparse refused or skipped: read leniently, as long as the status
                // line says what the response is.
                let Some((version, status)) = lenient::status_line(lenient::start_line(bytes))
                else {
                    self.give_up(ParseError::BadHead, emit);
                    return;
                };
                emit(HttpEvent::Error(Role::Responses, ParseError::BadHead));
                match parsed {
                    Some(parsed) => parsed,
                    None => lenient_response(bytes, version, status),
                }
            }
        };
        // Interim responses answer the same request as the final one after them.
        let interim = head.is_interim();
        let (kind, answers) =
            shared
                .transactions
                .response(head.status, interim, self.head_start, shared.now);
        emit(HttpEvent::Response { head, answers });
        if interim {
            // The final response to the same request is still to come.
            return;
        }
        let status = head.status;
        let tunnel =
            status == 101 || (kind == RequestKind::Connect && (200..300).contains(&status));
        if tunnel {
            shared.tunnel = true;
            self.end_without_body(true, shared, emit);
            emit(HttpEvent::Tunnel);
            self.state = super::State::Opaque;
            return;
        }
        let no_body = kind == RequestKind::Head || status == 204 || status == 304;
        let body = if no_body {
            Body::Length(0)
        } else {
            match framing.body(true) {
                Ok(body) => body.unwrap_or(Body::UntilClose),
                Err(error) => {
                    self.end_without_body(false, shared, emit);
                    self.give_up(error, emit);
                    return;
                }
            }
        };
        self.start_body(body, shared, emit);
    }
}

/// A head type that httparse fills in, given slots for its header lines.
trait ParseHead<'h>: Sized {
    fn parse(
        config: &httparse::ParserConfig,
        bytes: &'h [u8],
        headers: &mut [httparse::Header<'h>],
    ) -> httparse::Result<(Self, Framing)>;
}

impl<'h> ParseHead<'h> for RequestHead<'h> {
    fn parse(
        config: &httparse::ParserConfig,
        bytes: &'h [u8],
        headers: &mut [httparse::Header<'h>],
    ) -> httparse::Result<(Self, Framing)> {
        let mut request = httparse::Request::new(headers);
        if config.parse_request(&mut request, bytes)?.is_partial() {
            return Ok(httparse::Status::Partial);
        }
        let framing = checked_framing(request.headers, bytes);
        let head = RequestHead {
            method: request.method.unwrap_or(""),
            target: request.path.unwrap_or(""),
            version: request.version.unwrap_or(1),
            connection: framing.connection,
            user_agent: field_value(request.headers.iter().map(field), b"user-agent"),
            host: field_value(request.headers.iter().map(field), b"host"),
            head_bytes: bytes.len(),
        };
        Ok(httparse::Status::Complete((head, framing)))
    }
}

impl<'h> ParseHead<'h> for ResponseHead<'h> {
    fn parse(
        config: &httparse::ParserConfig,
        bytes: &'h [u8],
        headers: &mut [httparse::Header<'h>],
    ) -> httparse::Result<(Self, Framing)> {
        let mut response = httparse::Response::new(headers);
        if config.parse_response(&mut response, bytes)?.is_partial() {
            return Ok(httparse::Status::Partial);
        }
        let framing = checked_framing(response.headers, bytes);
        let server = field_value(response.headers.iter().map(field), b"server");
        let head = ResponseHead {
            status: response.code.unwrap_or(0),
            version: response.version.unwrap_or(1),
            connection: framing.connection,
            keep_alive: framing.keep_alive,
            server,
            head_bytes: bytes.len(),
        };
        Ok(httparse::Status::Complete((head, framing)))
    }
}

/// What a request means for the framing of its answer.
fn request_kind(method: &str, framing: &Framing) -> RequestKind {
    if method.eq_ignore_ascii_case("HEAD") {
        RequestKind::Head
    } else if method.eq_ignore_ascii_case("CONNECT") {
        RequestKind::Connect
    } else if framing.connection.has(ConnectionTokens::UPGRADE) && framing.upgrade {
        RequestKind::Upgrade
    } else {
        RequestKind::Normal
    }
}

/// A response httparse refuses, from its status line and its fields read leniently.
fn lenient_response(head: &[u8], version: u8, status: u16) -> (ResponseHead<'_>, Framing) {
    let framing = framing_headers(lenient::fields(head));
    let response = ResponseHead {
        status,
        version,
        connection: framing.connection,
        keep_alive: framing.keep_alive,
        server: field_value(lenient::fields(head), b"server"),
        head_bytes: head.len(),
    };
    (response, framing)
}

/// A parsed header as a (name, value) field.
fn field<'h>(header: &httparse::Header<'h>) -> (&'h [u8], &'h [u8]) {
    (header.name.as_bytes(), header.value)
}

/// The value of the first field called `name`.
fn field_value<'h>(
    mut fields: impl Iterator<Item = (&'h [u8], &'h [u8])>,
    name: &[u8],
) -> Option<&'h [u8]> {
    fields
        .find(|(field, _)| field.eq_ignore_ascii_case(name))
        .map(|(_, value)| value)
}

/// The framing of a head httparse parsed. httparse skips header lines it finds invalid
/// (spaces before the colon, bad bytes in a name, obs-fold in a request): when it skipped a
/// field the lenient reading finds, or one that changes the framing, the head was malformed
/// and the lenient reading gives the framing, marked as repaired.
fn checked_framing(headers: &[httparse::Header<'_>], head: &[u8]) -> Framing {
    let parsed = framing_headers(headers.iter().map(field));
    if !skipped_a_line(headers, head) {
        return parsed;
    }
    let lenient = framing_headers(lenient::fields(head));
    if lenient == parsed && headers.len() >= lenient::fields(head).count() {
        return parsed;
    }
    Framing {
        repaired: true,
        ..lenient
    }
}

/// Whether httparse left a line of `head` out of `headers`: the fields it returned do not
/// follow one another, line after line, from the start line to the blank line. Only where
/// each field lies and the rest of its line are looked at, not the whole head.
fn skipped_a_line(headers: &[httparse::Header<'_>], head: &[u8]) -> bool {
    let start = head.as_ptr() as usize;
    let Some(first) = memchr::memchr(b'\n', head) else {
        return false;
    };
    let mut next_line = first + 1;
    for header in headers {
        let name = header.name.as_bytes();
        if (name.as_ptr() as usize).wrapping_sub(start) != next_line {
            return true;
        }
        // An empty value may not point into the head: the line is then read from the name.
        let value_at = (header.value.as_ptr() as usize).wrapping_sub(start);
        let line_rest = match header.value.is_empty() {
            true => next_line + name.len(),
            false if value_at < head.len() => value_at + header.value.len(),
            false => return true,
        };
        // The line ends right after the value, but for trailing white space.
        let rest = head.get(line_rest..).unwrap_or(&[]);
        next_line = match rest {
            [b'\r', b'\n', ..] => line_rest + 2,
            [b'\n', ..] => line_rest + 1,
            _ => match memchr::memchr(b'\n', rest) {
                Some(nl) => line_rest + nl + 1,
                None => return true,
            },
        };
    }
    !matches!(&head[next_line..], b"\r\n" | b"\n")
}

/// Parses a whole head (`bytes` end with its blank line); `None` when httparse rejects it.
/// Header slots are on the stack for up to 64 headers; only a head with more gets them from
/// the heap, one a line, which is always enough.
fn parse_head<'h, H: ParseHead<'h>>(bytes: &'h [u8]) -> Option<(H, Framing)> {
    let config = parser_config();
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let parsed = match H::parse(&config, bytes, &mut headers) {
        Err(httparse::Error::TooManyHeaders) => {
            let mut headers = vec![httparse::EMPTY_HEADER; count_lines(bytes)];
            H::parse(&config, bytes, &mut headers)
        }
        parsed => parsed,
    };
    match parsed {
        Ok(httparse::Status::Complete(parsed)) => Some(parsed),
        _ => None,
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

/// The end of an HTTP/0.9 simple request line (`GET` SP target, no version), if `data`
/// starts with one.
pub(super) fn simple_request_end(data: &[u8]) -> Option<usize> {
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

/// Header slots enough for any head: it has no more header lines than lines.
fn count_lines(head: &[u8]) -> usize {
    memchr::memchr_iter(b'\n', head).count() + 1
}

/// The headers that decide framing and persistence.
#[derive(Debug, PartialEq, Eq)]
struct Framing {
    content_length: Option<Result<u64, ()>>,
    chunked: Option<bool>,
    connection: ConnectionTokens,
    keep_alive: Option<KeepAliveAdvert>,
    upgrade: bool,
    /// httparse skipped header lines that carry framing: these values were read leniently
    /// and the head counts as a parse error.
    repaired: bool,
}

impl Framing {
    /// RFC 9112 §6.3: Transfer-Encoding wins over Content-Length; a request without either
    /// has no body; `Ok(None)` means neither was present.
    fn body(&self, response: bool) -> Result<Option<Body>, ParseError> {
        match (self.chunked, self.content_length) {
            (Some(true), _) => Ok(Some(Body::Chunked(Chunk::SIZE_LINE))),
            (Some(false), _) if response => Ok(Some(Body::UntilClose)),
            (Some(false), _) => Err(ParseError::BadFraming),
            (None, Some(Ok(length))) => Ok(Some(Body::Length(length))),
            (None, Some(Err(()))) => Err(ParseError::BadFraming),
            (None, None) => Ok(None),
        }
    }
}

/// The framing read from a head's (name, value) fields.
fn framing_headers<'h>(fields: impl Iterator<Item = (&'h [u8], &'h [u8])>) -> Framing {
    let mut framing = Framing {
        content_length: None,
        chunked: None,
        connection: ConnectionTokens::default(),
        keep_alive: None,
        upgrade: false,
        repaired: false,
    };
    for (name, value) in fields {
        if name.eq_ignore_ascii_case(b"content-length") {
            let parsed = parse_content_length(value);
            framing.content_length = match (framing.content_length, parsed) {
                (None, value) => Some(value),
                (Some(Ok(a)), Ok(b)) if a == b => Some(Ok(a)),
                _ => Some(Err(())),
            };
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            let last = value
                .rsplit(|&b| b == b',')
                .next()
                .unwrap_or(b"")
                .trim_ascii();
            framing.chunked = Some(last.eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case(b"connection") {
            framing.connection = framing.connection.union(ConnectionTokens::parse(value));
        } else if name.eq_ignore_ascii_case(b"keep-alive") {
            let advert = KeepAliveAdvert::parse(value);
            framing.keep_alive = Some(match framing.keep_alive {
                Some(earlier) => earlier.merge(advert),
                None => advert,
            });
        } else if name.eq_ignore_ascii_case(b"upgrade") {
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

    /// The names of the tokens present, in the order reports list them.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        [
            (Self::CLOSE, "close"),
            (Self::KEEP_ALIVE, "keep-alive"),
            (Self::UPGRADE, "upgrade"),
            (Self::OTHER, "other"),
        ]
        .into_iter()
        .filter(move |(bit, _)| self.has(*bit))
        .map(|(_, name)| name)
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

#[cfg(test)]
mod tests {
    use super::super::testing::{Event, Recorder, request_targets};
    use super::super::{DEFAULT_MAX_HEAD, Protocol};
    use super::*;
    use crate::tcp::Dir;

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
        assert!(ConnectionTokens::parse(b"close").names().eq(["close"]));
    }

    #[test]
    fn head_end_accepts_bare_lf() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n\r\nrest", 0), Some(24));
        assert_eq!(head_end(b"GET / HTTP/1.1\nA: b\n\nrest", 0), Some(21));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n", 0), None);
    }

    #[test]
    fn content_length_rejects_conflicts() {
        assert_eq!(parse_content_length(b"42"), Ok(42));
        assert_eq!(parse_content_length(b"42, 42"), Ok(42));
        assert_eq!(parse_content_length(b"42, 43"), Err(()));
        assert_eq!(parse_content_length(b"-1"), Err(()));
    }

    /// A head with `extra` header lines before its framing header.
    fn head_with_headers(start_line: &str, extra: usize, framing: &str) -> Vec<u8> {
        let mut head = format!("{start_line}\r\n");
        for n in 0..extra {
            head.push_str(&format!("X-{n}: {n}\r\n"));
        }
        head.push_str(framing);
        head.push_str("\r\n\r\n");
        head.into_bytes()
    }

    #[test]
    fn heads_with_more_headers_than_the_stack_slots_parse_whole() {
        for extra in [63, 64, 500] {
            let request = head_with_headers("POST / HTTP/1.1", extra, "Content-Length: 3");
            let (head, framing) = parse_head::<RequestHead>(&request).expect("request parses");
            assert_eq!((head.method, head.head_bytes), ("POST", request.len()));
            assert_eq!(framing.content_length, Some(Ok(3)));
            let response = head_with_headers("HTTP/1.1 200 OK", extra, "Server: s");
            let (head, _) = parse_head::<ResponseHead>(&response).expect("response parses");
            assert_eq!((head.status, head.server), (200, Some(&b"s"[..])));
        }
        assert!(parse_head::<RequestHead>(b"GET / HTTP/1.1\r\nBad Header\r\n\r\n").is_some());
        assert!(parse_head::<ResponseHead>(b"HTTP/1.1 OK\r\n\r\n").is_none());
    }

    #[test]
    fn a_head_split_across_segments_is_parsed_once_whole() {
        let request = b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\n\r\n";
        // Cut inside the blank line that ends the first head.
        let cut = request.iter().position(|&b| b == b'h').unwrap() + 4;
        let mut http = Recorder::new(Some(Dir::A), DEFAULT_MAX_HEAD);
        http.data(Dir::A, &request[..cut]);
        assert_eq!(http.events, [Event::Protocol(Protocol::Http)]);
        http.data(Dir::A, &request[cut..]);
        assert_eq!(request_targets(&http.events), ["/a", "/b"]);
        assert_eq!(
            http.events[1],
            Event::Request {
                method: "GET".into(),
                target: "/a".into(),
                version: 1,
                connection: ConnectionTokens::default(),
                head_bytes: 28,
                in_flight: 0,
            }
        );
    }

    /// A POST whose head httparse refuses or half-reads, with an 840-byte body whose first
    /// line looks like a request, then a well-formed request.
    fn malformed_post_then_get(framing_line: &str, junk_line: &[u8]) -> Vec<u8> {
        let mut bytes = b"POST /upload HTTP/1.1\r\nHost: h\r\n".to_vec();
        bytes.extend_from_slice(junk_line);
        bytes.extend_from_slice(format!("{framing_line}\r\n\r\n").as_bytes());
        let mut body = b"GET /not-a-request HTTP/1.1\r\n\r\n".to_vec();
        body.resize(840, b'x');
        bytes.extend_from_slice(&body);
        bytes.extend_from_slice(b"GET /next HTTP/1.1\r\nHost: h\r\n\r\n");
        bytes
    }

    #[test]
    fn a_malformed_head_counts_once_and_its_body_is_stepped_over() {
        let cases: [(&str, &[u8]); 5] = [
            ("Content-Length: 840", b"X-Token: a\0b\0c\r\n"),
            ("Content-Length: 840", b"X-B\x01d: v\r\n"),
            ("Content-Length : 840", b""),
            ("Content-Length:\r\n 840", b""),
            (
                "Transfer-Encoding: chunked\r\nContent-Length: 840",
                b"X: \x7f\r\n",
            ),
        ];
        for (framing, junk) in cases {
            let request = malformed_post_then_get(framing, junk);
            for cut in [request.len(), 60, 200] {
                let mut http = Recorder::new(Some(Dir::A), DEFAULT_MAX_HEAD);
                http.data(Dir::A, &request[..cut]);
                http.data(Dir::A, &request[cut..]);
                let chunked = framing.starts_with("Transfer");
                if chunked {
                    // The body is not chunked: its framing breaks, the search finds /next.
                    assert!(request_targets(&http.events).contains(&"/next"));
                    continue;
                }
                assert_eq!(
                    request_targets(&http.events),
                    ["/upload", "/next"],
                    "{framing:?} {junk:?} cut at {cut}"
                );
                let errors = http
                    .events
                    .iter()
                    .filter(|e| matches!(e, Event::Error(Role::Requests, ParseError::BadHead)))
                    .count();
                assert_eq!(errors, 1, "{framing:?} {junk:?}: {:?}", http.events);
                assert!(
                    http.events.contains(&Event::RequestEnd {
                        body_bytes: 840,
                        complete: true
                    }),
                    "{framing:?} {junk:?}"
                );
            }
        }
    }

    #[test]
    fn a_response_httparse_refuses_is_framed_by_its_lenient_headers() {
        let mut http = Recorder::new(Some(Dir::A), DEFAULT_MAX_HEAD);
        http.data(Dir::A, b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n");
        http.data(
            Dir::B,
            b"HTTP/1.1 200 OK\r\nX-Bad: \0\r\nContent-Length: 21\r\n\r\nHTTP/1.1 500 in body\r\n",
        );
        http.data(Dir::B, b"HTTP/1.1 204 No Content\r\n\r\n");
        let statuses: Vec<u16> = http
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Response { status, .. } => Some(*status),
                _ => None,
            })
            .collect();
        assert_eq!(statuses, [200, 204], "{:?}", http.events);
        assert!(
            http.events
                .contains(&Event::Error(Role::Responses, ParseError::BadHead))
        );
    }

    #[test]
    fn a_well_formed_head_is_not_flagged() {
        let mut http = Recorder::new(Some(Dir::A), DEFAULT_MAX_HEAD);
        http.data(
            Dir::A,
            b"POST / HTTP/1.1\r\nHost: h\r\nX-Folded: a\r\n b\r\nContent-Length: 2\r\n\r\nokGET / HTTP/1.1\r\n\r\n",
        );
        assert_eq!(request_targets(&http.events), ["/", "/"]);
        assert!(!http.events.iter().any(|e| matches!(e, Event::Error(..))));
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
}
