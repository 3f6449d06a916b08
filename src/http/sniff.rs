//! Protocol sniffing, the probe stage before the parser: the first bytes of a direction say
//! whether it carries HTTP requests, HTTP responses, or something else (TLS, HTTP/2, SSH, the
//! text line protocols of `lines`, or unknown bytes that may be a preamble before HTTP).
//! Bytes too few to tell are held and judged again together with the next segment, so that a
//! cut-short first segment is judged like the whole.
//!
//! HTTP needs real evidence: a request line with a known method or an `HTTP/1.x` version, a
//! status line `HTTP/1.x NNN`. An HTTP/0.9 simple request (`GET /path` alone on its line) is
//! the weakest: it is held until the other direction speaks, and counted only if what comes
//! back does not look like another protocol (an SMTP server answers `GET /` with `500 ...`).

use super::lines::{self, Candidates};
use super::{HttpEvent, MessageParser, Protocol, Role, Shared, State, Step, head};
use crate::tcp::Dir;

/// What the first bytes of a direction look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sniffed {
    Http(Role),
    /// One of the text line protocols, as far as this line tells.
    Lines(Candidates),
    Other(Protocol),
    NeedMore,
}

/// A first line is judged once it ends, or once it is this long without ending.
const MAX_FIRST_LINE: usize = 8192;

/// Request methods known without a version on the line: RFC 9110, WebDAV and the IANA
/// registry, and those Wireshark knows (UPnP, MS-RPCH, Cisco CCM).
const METHODS: &[&[u8]] = &[
    b"GET",
    b"HEAD",
    b"POST",
    b"PUT",
    b"DELETE",
    b"CONNECT",
    b"OPTIONS",
    b"TRACE",
    b"PATCH",
    b"ACL",
    b"BASELINE-CONTROL",
    b"BIND",
    b"CHECKIN",
    b"CHECKOUT",
    b"COPY",
    b"LABEL",
    b"LINK",
    b"LOCK",
    b"MERGE",
    b"MKACTIVITY",
    b"MKCALENDAR",
    b"MKCOL",
    b"MKREDIRECTREF",
    b"MKWORKSPACE",
    b"MOVE",
    b"ORDERPATCH",
    b"PROPFIND",
    b"PROPPATCH",
    b"QUERY",
    b"REBIND",
    b"REPORT",
    b"SEARCH",
    b"UNBIND",
    b"UNCHECKOUT",
    b"UNLINK",
    b"UNLOCK",
    b"UPDATE",
    b"UPDATEREDIRECTREF",
    b"VERSION-CONTROL",
    b"BCOPY",
    b"BDELETE",
    b"BMOVE",
    b"BPROPFIND",
    b"BPROPPATCH",
    b"POLL",
    b"NOTIFY",
    b"SUBSCRIBE",
    b"UNSUBSCRIBE",
    b"M-SEARCH",
    b"CCM_POST",
    b"RPC_CONNECT",
    b"RPC_IN_DATA",
    b"RPC_OUT_DATA",
    b"PURGE",
];

impl MessageParser {
    /// The `Sniff` state: decides what the direction carries, then hands on to the parser
    /// (`Head`), the resync search (`Lost`, for unknown bytes) or nothing (`Opaque`).
    pub(super) fn probe<'d>(
        &mut self,
        dir: Dir,
        data: &'d [u8],
        shared: &mut Shared,
        emit: &mut impl FnMut(HttpEvent<'_>),
    ) -> Step<'d> {
        if self.next_answers_http09(shared) {
            // A bare body answering an HTTP/0.9 request: what it looks like says nothing.
            self.state = State::Head;
            return Step::Rest(data);
        }
        if self.waiting_since.is_some() {
            if self.held.len() + data.len() <= MAX_FIRST_LINE {
                // A simple request waits for the other direction; what follows it waits too.
                self.held.extend_from_slice(data);
                return Step::Rest(&[]);
            }
            // More than a simple request is followed by: no longer worth waiting for, it is
            // parsed now with what came after it.
            self.waiting_since = None;
            self.adopt_role(dir, Role::Requests, shared, emit);
            self.state = State::Head;
            let mut joined = std::mem::take(&mut self.held);
            joined.extend_from_slice(data);
            return Step::Replay(joined);
        }
        if !self.held.is_empty() {
            // Earlier bytes were too few to tell: look at them with the new ones.
            let mut joined = std::mem::take(&mut self.held);
            let earlier = joined.len();
            joined.extend_from_slice(data);
            let verdict = sniff(&joined);
            if verdict == Sniffed::NeedMore {
                self.held = joined;
                return Step::Rest(&[]);
            }
            if verdict == Sniffed::Other(Protocol::Unknown)
                && let Sniffed::Http(role) = sniff(data)
            {
                // A segment that starts a message by itself wins over bytes that never made
                // sense (a body's tail when capture began).
                emit(HttpEvent::Resync {
                    role,
                    skipped: earlier as u64,
                });
                return Step::Rest(data);
            }
            // With nothing held the joined bytes decide.
            return Step::Replay(joined);
        }
        if shared.protocol.is_other() {
            // The other direction already showed what the connection carries; this one's
            // first line may still tell which of the line protocols it is.
            if let Some(candidates) = first_line(data).and_then(lines::candidates) {
                shared.add_line_evidence(candidates, emit);
            }
            self.state = State::Opaque;
            return Step::Rest(&[]);
        }
        match sniff(data) {
            Sniffed::NeedMore => {
                self.held.extend_from_slice(data);
                Step::Rest(&[])
            }
            Sniffed::Lines(candidates) => {
                shared.add_line_evidence(candidates, emit);
                self.state = State::Opaque;
                Step::Rest(&[])
            }
            Sniffed::Other(protocol) => {
                if shared.protocol == Protocol::None {
                    shared.protocol = protocol;
                    emit(HttpEvent::Protocol(protocol));
                }
                // Unknown bytes may be a preamble (SOCKS, PROXY) before HTTP: keep looking for
                // a message start. TLS, HTTP/2, SSH are opaque.
                self.state = if protocol == Protocol::Unknown {
                    State::Lost
                } else {
                    State::Opaque
                };
                Step::Rest(data)
            }
            Sniffed::Http(Role::Requests)
                if !shared.spoke[dir.opposite().index()]
                    && head::simple_request_end(data).is_some() =>
            {
                self.held.extend_from_slice(data);
                self.waiting_since = Some(shared.now);
                Step::Rest(&[])
            }
            Sniffed::Http(role) => {
                self.adopt_role(dir, role, shared, emit);
                self.state = State::Head;
                Step::Rest(data)
            }
        }
    }

    /// A simple request held for the other direction (see the module notes) is parsed now,
    /// at the time it came: the other direction does not look like another protocol, or the
    /// connection ended first.
    pub(super) fn stop_waiting(
        &mut self,
        dir: Dir,
        shared: &mut Shared,
        max_head: usize,
        emit: &mut impl FnMut(HttpEvent<'_>),
    ) {
        let Some(since) = self.waiting_since.take() else {
            return;
        };
        let held = std::mem::take(&mut self.held);
        let now = std::mem::replace(&mut shared.now, since);
        self.adopt_role(dir, Role::Requests, shared, emit);
        self.state = State::Head;
        self.feed(dir, &held, shared, max_head, emit);
        shared.now = now;
    }

    /// The other direction looks like another protocol: the simple request held for it was
    /// not HTTP.
    pub(super) fn drop_waiting(&mut self) {
        if self.waiting_since.take().is_some() {
            self.held.clear();
        }
    }
}

/// Whether the first bytes of a direction look like a protocol other than HTTP, for a
/// simple request waiting on the other direction.
pub(super) fn looks_like_another_protocol(data: &[u8]) -> bool {
    match sniff(data) {
        Sniffed::Lines(_) => true,
        Sniffed::Other(protocol) => protocol != Protocol::Unknown,
        Sniffed::Http(_) | Sniffed::NeedMore => false,
    }
}

/// The first line of `data`, its line end excluded, if it has ended.
fn first_line(data: &[u8]) -> Option<&[u8]> {
    memchr::memchr(b'\n', data).map(|end| &data[..end])
}

/// What the first bytes of a direction carry, by their look alone.
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
    if let Some(verdict) = status_line(data) {
        return verdict;
    }
    let line = first_line(data);
    let start = &data[..line.map_or(data.len(), <[u8]>::len).min(MAX_FIRST_LINE)];
    if is_request_line(start, line.is_some()) {
        return Sniffed::Http(Role::Requests);
    }
    if let Some(line) = line {
        return lines::candidates(line).map_or(Sniffed::Other(Protocol::Unknown), Sniffed::Lines);
    }
    // A line still being written may become any of the above.
    let text = data
        .iter()
        .all(|&b| b.is_ascii_graphic() || b" \t\r".contains(&b) || b >= 0x80);
    if text && data.len() < MAX_FIRST_LINE {
        Sniffed::NeedMore
    } else {
        Sniffed::Other(Protocol::Unknown)
    }
}

/// A status line `HTTP/1.x NNN`: `Some(Http(Responses))`, `Some(NeedMore)` while the bytes
/// are a start of one, `None` when they are not.
fn status_line(data: &[u8]) -> Option<Sniffed> {
    const VERSION: &[u8] = b"HTTP/1.";
    let seen = data.len().min(VERSION.len());
    if data[..seen] != VERSION[..seen] {
        return None;
    }
    let Some(minor) = data.get(VERSION.len()) else {
        return Some(Sniffed::NeedMore);
    };
    if !minor.is_ascii_digit() {
        return None;
    }
    let rest = &data[VERSION.len() + 1..];
    let spaces = rest.iter().take_while(|&&b| b == b' ').count();
    let code = &rest[spaces..];
    let digits = code
        .iter()
        .take(3)
        .take_while(|b| b.is_ascii_digit())
        .count();
    match digits {
        3 if spaces > 0 => Some(Sniffed::Http(Role::Responses)),
        _ if digits == code.len()
            && (spaces > 0 || rest.is_empty())
            && data.len() < MAX_FIRST_LINE =>
        {
            Some(Sniffed::NeedMore)
        }
        _ => None,
    }
}

/// A request line, or its start: a known method followed by a space (or alone on a whole
/// line, `OPTIONS`), or a token followed by a space or a slash on a line that ends with a
/// version (`HTTP/1.x`). Servers answer the malformed ones (`GET/ HTTP/1.1`), so they count.
fn is_request_line(line: &[u8], complete: bool) -> bool {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let method_end = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
    let known = METHODS.iter().any(|known| line[..method_end] == **known);
    if known && (method_end < line.len() || complete) {
        return true;
    }
    let token = line.iter().take_while(|&&b| is_token_char(b)).count();
    let token_then_target = token > 0 && matches!(line.get(token), Some(b' ' | b'/'));
    let versioned = line.len() >= 8 && {
        let version = &line[line.len() - 8..];
        version.starts_with(b"HTTP/1.") && version[7].is_ascii_digit()
    };
    complete && token_then_target && versioned
}

fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::super::DEFAULT_MAX_HEAD;
    use super::super::testing::{Event, Recorder, events_of, request_targets};
    use super::*;
    use crate::tcp::StreamEvent;

    fn protocol_of(data: &[u8]) -> Option<Protocol> {
        match sniff(data) {
            Sniffed::Lines(candidates) => Some(candidates.protocol()),
            Sniffed::Other(protocol) => Some(protocol),
            Sniffed::Http(_) => Some(Protocol::Http),
            Sniffed::NeedMore => None,
        }
    }

    #[test]
    fn http_needs_a_known_method_or_a_version() {
        let request = Some(Protocol::Http);
        for line in [
            &b"GET /index.html HTTP/1.1\r\n"[..],
            b"PROPFIND /dav HTTP/1.1\r\n",
            b"M-SEARCH * HTTP/1.1\r\n",
            b"GET / HTTP/1.\r\n",
            b"FOO / HTTP/1.0\r\n",
            b"OPTIONSHTTP/1.1\r\n",
            b"GET/HTTP/1.1\r\n",
            b"GET /zeek.html\n",
        ] {
            assert_eq!(protocol_of(line), request, "{line:?}");
        }
        for line in [
            &b"EHLO [192.168.1.2]\r\n"[..],
            b"QUIT\r\n",
            b"FOO /\r\n",
            b"a,b / HTTP/1.1\r\n",
            b"HTTP/1.1 OK\r\n",
        ] {
            assert_ne!(protocol_of(line), request, "{line:?}");
        }
        assert_eq!(protocol_of(b"HTTP/1.0  304 Not Modified\r\n"), request);
        for cut_short in [&b"HTTP/1.1 2"[..], b"HTTP/1.1 ", b"EHL", b"220 mail"] {
            assert_eq!(sniff(cut_short), Sniffed::NeedMore, "{cut_short:?}");
        }
    }

    #[test]
    fn the_line_protocols_are_named() {
        for (line, protocol) in [
            (
                &b"220 mx.example.org ESMTP Exim 4.96\r\n"[..],
                Protocol::Smtp,
            ),
            (b"EHLO [10.0.0.2]\r\n", Protocol::Smtp),
            (b"220 ProFTPD Server (Debian)\r\n", Protocol::Ftp),
            (b"+OK POP3 server ready\r\n", Protocol::Pop3),
            (b"* OK IMAP4rev1 Service Ready\r\n", Protocol::Imap),
            (b"A1 CAPABILITY\r\n", Protocol::Imap),
        ] {
            assert_eq!(protocol_of(line), Some(protocol), "{line:?}");
        }
    }

    /// An SMTP session as a mail client sends it: every line but one would have passed the
    /// old sniff's upper-case-token test, and the body holds HTTP-looking lines.
    const SMTP_CLIENT: &[&[u8]] = &[
        b"EHLO [192.168.1.5]\r\n",
        b"MAIL FROM:<a@example.com>\r\n",
        b"RCPT TO:<b@example.com>\r\n",
        b"DATA\r\n",
        b"Subject: log\r\n\r\nGET / HTTP/1.1\r\nHTTP/1.1 200 OK\r\n.\r\n",
        b"QUIT\r\n",
    ];

    #[test]
    fn an_smtp_session_is_no_http_whoever_speaks_first() {
        for banner_first in [true, false] {
            let mut http = Recorder::new(Some(Dir::A), DEFAULT_MAX_HEAD);
            if banner_first {
                http.data(Dir::B, b"220 mx.example.org ESMTP Postfix\r\n");
            }
            for line in SMTP_CLIENT {
                http.data(Dir::A, line);
                http.data(Dir::B, b"250 OK\r\n");
            }
            assert_eq!(
                http.events,
                [Event::Protocol(Protocol::Smtp)],
                "{banner_first}"
            );
        }
    }

    #[test]
    fn a_greeting_that_names_no_protocol_is_settled_by_the_client() {
        let mut http = Recorder::new(Some(Dir::A), DEFAULT_MAX_HEAD);
        http.data(Dir::B, b"220 Welcome\r\n");
        http.data(Dir::A, b"USER anonymous\r\n");
        http.data(Dir::B, b"331 Please specify the password.\r\n");
        assert_eq!(
            http.events,
            [
                Event::Protocol(Protocol::Smtp),
                Event::Protocol(Protocol::Ftp)
            ]
        );
    }

    #[test]
    fn a_simple_request_counts_only_if_the_answer_is_not_another_protocol() {
        // Answered by a bare body: HTTP/0.9.
        let mut http = Recorder::new(Some(Dir::A), DEFAULT_MAX_HEAD);
        http.data(Dir::A, b"GET /index.html\r\n");
        assert_eq!(http.events, [], "held until the server speaks");
        http.data(Dir::B, b"<html>hello</html>\n");
        assert_eq!(request_targets(&http.events), ["/index.html"]);
        assert!(
            http.events
                .iter()
                .any(|e| matches!(e, Event::Response { status: 0, .. }))
        );
        // Answered by an SMTP server's complaint: not HTTP at all.
        let mut http = Recorder::new(Some(Dir::A), DEFAULT_MAX_HEAD);
        http.data(Dir::A, b"GET /index.html\r\n");
        http.data(Dir::B, b"500 5.5.2 Error: bad syntax\r\n");
        http.data(Dir::A, b"QUIT\r\n");
        assert_eq!(http.events, [Event::Protocol(Protocol::Smtp)]);
        // Followed by more than a first line's worth: parsed without waiting, nothing held.
        let mut http = Recorder::new(Some(Dir::A), DEFAULT_MAX_HEAD);
        http.data(Dir::A, b"GET /index.html\r\n");
        http.data(Dir::A, &[b'x'; MAX_FIRST_LINE]);
        assert_eq!(request_targets(&http.events), ["/index.html"]);
        // Never answered: counted when the connection ends.
        let mut http = Recorder::new(Some(Dir::A), DEFAULT_MAX_HEAD);
        http.data(Dir::A, b"GET /index.html\r\n");
        http.stream(Dir::A, StreamEvent::Fin);
        assert_eq!(request_targets(&http.events), ["/index.html"]);
    }

    #[test]
    fn sniffing_tells_http_from_other_protocols() {
        let http = |role| Sniffed::Http(role);
        assert_eq!(sniff(b"GET / HTTP/1.1\r\n"), http(Role::Requests));
        assert_eq!(sniff(b"OPTIONS\r\n"), http(Role::Requests));
        assert_eq!(sniff(b"get / HTTP/1.1\r\n"), http(Role::Requests));
        assert_eq!(sniff(b"HTTP/1.1 200 OK\r\n"), http(Role::Responses));
        assert_eq!(sniff(b"\x16\x03\x01\x00"), Sniffed::Other(Protocol::Tls));
        assert_eq!(sniff(b"SSH-2.0-x\r\n"), Sniffed::Other(Protocol::Ssh));
        assert_eq!(
            sniff(b"PRI * HTTP/2.0\r\n"),
            Sniffed::Other(Protocol::Http2)
        );
        assert_eq!(
            sniff(b"\x05\x01\x00 binary preamble"),
            Sniffed::Other(Protocol::Unknown)
        );
        for cut_short in [&b"PRI * H"[..], b"SS", b"\x16", b"HTT", b"GET", b"get /"] {
            assert_eq!(sniff(cut_short), Sniffed::NeedMore, "{cut_short:?}");
        }
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
    fn a_segment_that_starts_a_message_wins_over_held_bytes_that_made_no_sense() {
        let events = events_of(&[b"a,b", b"GET / HTTP/1.1\r\n\r\n"]);
        assert_eq!(
            events[..3],
            [
                Event::Resync {
                    role: Role::Requests,
                    skipped: 3
                },
                Event::Protocol(Protocol::Http),
                Event::ClientIs(Dir::A),
            ]
        );
        assert!(matches!(&events[3], Event::Request { target, .. } if target == "/"));
    }
}
