//! Protocol sniffing, the probe stage before the parser: the first bytes of a direction say
//! whether it carries HTTP requests, HTTP responses, or something else (TLS, HTTP/2, SSH, or
//! unknown bytes that may be a preamble before HTTP). Bytes too few to tell are held and
//! judged again together with the next segment, so that a cut-short first segment is judged
//! like the whole.

use memchr::memmem;

use super::{HttpEvent, MessageParser, Protocol, Role, Shared, State, Step};
use crate::tcp::Dir;

/// What the first bytes of a direction look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sniffed {
    Http(Role),
    Other(Protocol),
    NeedMore,
}

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
        match sniff(data) {
            Sniffed::NeedMore => {
                self.held.extend_from_slice(data);
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
            Sniffed::Http(role) => {
                self.adopt_role(dir, role, shared, emit);
                self.state = State::Head;
                Step::Rest(data)
            }
        }
    }
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
    if data.starts_with(b"HTTP/") {
        return Sniffed::Http(Role::Responses);
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
        Some(b' ' | b'\r' | b'\n' | b'/') if (3..=32).contains(&upper) => {
            return Sniffed::Http(Role::Requests);
        }
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
        Some(_) if memmem::find(line, b" HTTP/1.").is_some() => Sniffed::Http(Role::Requests),
        Some(_) => Sniffed::Other(Protocol::Unknown),
        None if data.len() < 8192 => Sniffed::NeedMore,
        None => Sniffed::Other(Protocol::Unknown),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{Event, events_of};
    use super::*;

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
