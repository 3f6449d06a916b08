//! Message bodies (RFC 9112 §6): a Content-Length, the chunked transfer coding with its
//! trailer section, or, for a response, everything up to the close. Body bytes are counted,
//! never stored: chunk data and length-delimited bodies are stepped over whole, only the
//! chunk-size lines, CRLFs and trailers are read byte by byte.

use super::{HttpEvent, MessageParser, ParseError, Role, Shared, State};

/// How the end of a body is found, and how much of it is still to come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Body {
    Length(u64),
    Chunked(Chunk),
    UntilClose,
}

/// Where a chunked body is, between segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Chunk {
    /// Reading the hex size; `digits` read so far.
    Size { size: u64, digits: u8 },
    /// After the size: extensions or whitespace up to the line end.
    SizeLineRest { size: u64 },
    /// Chunk data, bytes still to come.
    Data(u64),
    /// The CRLF after chunk data.
    DataEnd { seen_cr: bool },
    /// Trailer section; `line_len` counts bytes of the current line, CR excluded.
    Trailer { line_len: u32 },
}

impl Chunk {
    /// The start of a chunk-size line: of the body, and after each chunk's data.
    pub(super) const SIZE_LINE: Chunk = Chunk::Size { size: 0, digits: 0 };

    /// After `take` of a chunk's `remaining` data bytes.
    fn after_data(remaining: u64, take: u64) -> Chunk {
        if remaining == take {
            Chunk::DataEnd { seen_cr: false }
        } else {
            Chunk::Data(remaining - take)
        }
    }

    /// Once the size line is read: the data, or for the last chunk (size 0) the trailers.
    fn after_size(size: u64) -> Chunk {
        if size == 0 {
            Chunk::Trailer { line_len: 0 }
        } else {
            Chunk::Data(size)
        }
    }
}

impl MessageParser {
    pub(super) fn start_body(
        &mut self,
        body: Body,
        shared: &mut Shared,
        emit: &mut impl FnMut(HttpEvent<'_>),
    ) {
        if body == Body::Length(0) {
            self.end_without_body(true, shared, emit);
        } else {
            self.body_bytes = 0;
            self.body_complete = true;
            self.state = State::Body(body);
        }
    }

    /// A message that has no body ends with its head (`complete` false: it is cut there).
    pub(super) fn end_without_body(
        &mut self,
        complete: bool,
        shared: &mut Shared,
        emit: &mut impl FnMut(HttpEvent<'_>),
    ) {
        self.body_bytes = 0;
        self.body_complete = true;
        self.finish_message(complete, shared, emit);
    }

    /// The message ends; `complete` is false when it was cut, and a gap inside the body has
    /// already made it so.
    pub(super) fn finish_message(
        &mut self,
        complete: bool,
        shared: &mut Shared,
        emit: &mut impl FnMut(HttpEvent<'_>),
    ) {
        let body_bytes = self.body_bytes;
        let complete = complete && self.body_complete;
        let transactions = &mut shared.transactions;
        emit(match self.role {
            Some(Role::Responses) => {
                transactions.response_end(body_bytes, complete, shared.now);
                HttpEvent::ResponseEnd {
                    body_bytes,
                    complete,
                }
            }
            _ => {
                transactions.request_end(body_bytes, shared.now);
                HttpEvent::RequestEnd {
                    body_bytes,
                    complete,
                }
            }
        });
        self.state = State::Head;
    }

    /// The `Body` state: consumes body bytes; returns what follows the body in `data`.
    pub(super) fn read_body<'d>(
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
                self.count_length(remaining, take, shared, emit);
                &data[take as usize..]
            }
            Body::Chunked(chunk) => self.read_chunked(chunk, data, shared, emit),
        }
    }

    /// `take` bytes (at most `remaining`) of a Content-Length body.
    fn count_length(
        &mut self,
        remaining: u64,
        take: u64,
        shared: &mut Shared,
        emit: &mut impl FnMut(HttpEvent<'_>),
    ) {
        self.body_bytes += take;
        let left = remaining - take;
        if left == 0 {
            self.finish_message(true, shared, emit);
            if self.role == Some(Role::Requests) {
                let latest = shared.transactions.latest_unanswered_kind();
                self.expect_upgrade_answer(latest);
            }
        } else {
            self.state = State::Body(Body::Length(left));
        }
    }

    /// Body bytes still to come that the framing counts without looking at them: the rest
    /// of a Content-Length body or of a chunk's data. The source may shed them.
    pub(super) fn countable_body_bytes(&self) -> Option<u64> {
        match self.state {
            State::Body(Body::Length(remaining) | Body::Chunked(Chunk::Data(remaining))) => {
                Some(remaining)
            }
            _ => None,
        }
    }

    /// `bytes` the source shed (their length known, their content not): counted as body
    /// bytes as far as the framing can count without looking; past that (a head or a chunk
    /// size line was expected) they are lost, as in a gap.
    pub(super) fn skip(
        &mut self,
        bytes: u64,
        shared: &mut Shared,
        emit: &mut impl FnMut(HttpEvent<'_>),
    ) {
        let taken = match self.state {
            State::Opaque => bytes,
            State::Body(Body::UntilClose) => {
                self.body_bytes += bytes;
                bytes
            }
            State::Body(Body::Length(remaining)) => {
                let take = remaining.min(bytes);
                self.count_length(remaining, take, shared, emit);
                take
            }
            State::Body(Body::Chunked(Chunk::Data(remaining))) => {
                let take = remaining.min(bytes);
                self.body_bytes += take;
                self.state = State::Body(Body::Chunked(Chunk::after_data(remaining, take)));
                take
            }
            _ => 0,
        };
        if bytes > taken {
            self.gap(bytes - taken, true, shared, emit);
        }
    }

    fn read_chunked<'d>(
        &mut self,
        mut chunk: Chunk,
        data: &'d [u8],
        shared: &mut Shared,
        emit: &mut impl FnMut(HttpEvent<'_>),
    ) -> &'d [u8] {
        let mut at = 0;
        while at < data.len() {
            if let Chunk::Data(remaining) = chunk {
                let take = remaining.min((data.len() - at) as u64);
                self.body_bytes += take;
                at += take as usize;
                chunk = Chunk::after_data(remaining, take);
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
                    b'\n' if digits > 0 => Chunk::after_size(size),
                    _ => {
                        self.bad_chunk(shared, emit);
                        return &data[at..];
                    }
                },
                Chunk::SizeLineRest { size } => match byte {
                    b'\n' => Chunk::after_size(size),
                    _ => Chunk::SizeLineRest { size },
                },
                Chunk::DataEnd { seen_cr } => match byte {
                    b'\r' if !seen_cr => Chunk::DataEnd { seen_cr: true },
                    b'\n' => Chunk::SIZE_LINE,
                    _ => {
                        self.bad_chunk(shared, emit);
                        // The byte that is not a line end is looked at again by the search
                        // for the next message.
                        return &data[at - 1..];
                    }
                },
                Chunk::Trailer { line_len } => match byte {
                    b'\n' if line_len == 0 => {
                        self.finish_message(true, shared, emit);
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

    /// The chunked framing broke: the message is cut there.
    fn bad_chunk(&mut self, shared: &mut Shared, emit: &mut impl FnMut(HttpEvent<'_>)) {
        self.finish_message(false, shared, emit);
        self.give_up(ParseError::BadChunk, emit);
    }

    /// A capture gap of `bytes` inside a body. When the body's end is the close, or a length
    /// the gap does not run past, the framing survives and only body bytes are missing;
    /// otherwise the message is cut and the parser has lost track.
    pub(super) fn body_gap(
        &mut self,
        body: Body,
        bytes: u64,
        shared: &mut Shared,
        emit: &mut impl FnMut(HttpEvent<'_>),
    ) {
        let framing_survives = match body {
            Body::UntilClose => true,
            Body::Length(remaining) => bytes <= remaining,
            Body::Chunked(_) => false,
        };
        if !framing_survives {
            self.finish_message(false, shared, emit);
            self.lose_track();
            return;
        }
        self.body_bytes += bytes;
        self.body_complete = false;
        match body {
            Body::Length(remaining) if remaining == bytes => {
                self.finish_message(false, shared, emit)
            }
            Body::Length(remaining) => self.state = State::Body(Body::Length(remaining - bytes)),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{Event, Recorder};
    use super::super::{DEFAULT_MAX_HEAD, ParseError, Role};
    use crate::tcp::{Dir, StreamEvent};

    const CHUNKED: &[u8] = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
        5;ext=1\r\nhello\r\n10\r\n0123456789abcdef\r\n0\r\nTrailer: t\r\n\r\n\
        GET /next HTTP/1.1\r\n\r\n";

    fn request_ends(events: &[Event]) -> Vec<(u64, bool)> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::RequestEnd {
                    body_bytes,
                    complete,
                } => Some((*body_bytes, *complete)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_chunked_body_is_framed_alike_whole_or_byte_by_byte() {
        let mut whole = Recorder::new(Some(Dir::A), DEFAULT_MAX_HEAD);
        whole.data(Dir::A, CHUNKED);
        assert_eq!(request_ends(&whole.events), [(21, true), (0, true)]);
        let mut bytewise = Recorder::new(Some(Dir::A), DEFAULT_MAX_HEAD);
        for byte in CHUNKED.chunks(1) {
            bytewise.data(Dir::A, byte);
        }
        assert_eq!(bytewise.events, whole.events);
    }

    #[test]
    fn a_bad_chunk_size_cuts_the_message() {
        let mut http = Recorder::new(Some(Dir::A), DEFAULT_MAX_HEAD);
        http.data(
            Dir::A,
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        );
        assert_eq!(request_ends(&http.events), [(0, false)]);
        assert!(
            http.events
                .contains(&Event::Error(Role::Requests, ParseError::BadChunk))
        );
    }

    #[test]
    fn skipped_body_bytes_are_counted_like_data() {
        let head = b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nab".as_slice();
        let next = b"GET /next HTTP/1.1\r\n\r\n".as_slice();
        let mut seen = Recorder::new(Some(Dir::A), DEFAULT_MAX_HEAD);
        for piece in [head, b"cdefg", b"hij", next] {
            seen.data(Dir::A, piece);
        }
        let mut skipped = Recorder::new(Some(Dir::A), DEFAULT_MAX_HEAD);
        skipped.data(Dir::A, head);
        skipped.stream(Dir::A, StreamEvent::Skipped(5));
        skipped.data(Dir::A, b"hij");
        skipped.data(Dir::A, next);
        assert_eq!(skipped.events, seen.events);
        assert_eq!(request_ends(&skipped.events), [(10, true), (0, true)]);
        // Chunk data too, up to the CRLF after it.
        let mut chunked = Recorder::new(Some(Dir::A), DEFAULT_MAX_HEAD);
        chunked.data(
            Dir::A,
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n",
        );
        chunked.stream(Dir::A, StreamEvent::Skipped(16));
        chunked.data(Dir::A, b"\r\n0\r\n\r\n");
        assert_eq!(request_ends(&chunked.events), [(16, true)]);
    }

    #[test]
    fn skipped_bytes_where_the_framing_must_look_are_lost() {
        let mut http = Recorder::new(Some(Dir::A), DEFAULT_MAX_HEAD);
        http.data(Dir::A, b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nab");
        // The body's last 8 bytes and 20 bytes of what follows.
        http.stream(Dir::A, StreamEvent::Skipped(28));
        http.data(Dir::A, b"GET /next HTTP/1.1\r\n\r\n");
        assert_eq!(request_ends(&http.events), [(10, true), (0, true)]);
        assert!(http.events.contains(&Event::Lost {
            bytes: 20,
            shed: true
        }));
        assert!(
            http.events
                .iter()
                .any(|e| matches!(e, Event::Resync { .. }))
        );
    }

    #[test]
    fn a_gap_inside_a_length_body_keeps_the_framing() {
        let mut http = Recorder::new(Some(Dir::A), DEFAULT_MAX_HEAD);
        http.data(Dir::A, b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nab");
        http.stream(Dir::A, StreamEvent::Gap(5));
        http.data(Dir::A, b"cde");
        http.data(Dir::A, b"GET /next HTTP/1.1\r\n\r\n");
        assert_eq!(request_ends(&http.events), [(10, false), (0, true)]);
        // A gap past the body's end loses track instead.
        let mut http = Recorder::new(Some(Dir::A), DEFAULT_MAX_HEAD);
        http.data(Dir::A, b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nab");
        http.stream(Dir::A, StreamEvent::Gap(20));
        assert_eq!(request_ends(&http.events), [(2, false)]);
    }
}
