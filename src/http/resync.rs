//! Resynchronisation after losing track (a capture gap, a head too large, garbage): the
//! parser skips to the next line that starts a request or status line, so that one lost
//! segment costs one transaction, not the rest of a persistent connection. The unfinished
//! last line of a lost stretch is held, so that a message start cut by a segment boundary is
//! still found.

use memchr::memmem;

use super::{HttpEvent, MessageParser, Role, Shared, State, Step};
use crate::tcp::Dir;

/// Bytes of an unfinished last line kept while lost, so that a message start cut by a
/// segment boundary is still found (a request line is rarely longer).
const MAX_CARRY: usize = 8192;

impl MessageParser {
    /// The `Lost` state: skips to the next message start and counts what it skipped.
    pub(super) fn resync<'d>(
        &mut self,
        dir: Dir,
        data: &'d [u8],
        shared: &mut Shared,
        emit: &mut impl FnMut(HttpEvent<'_>),
    ) -> Step<'d> {
        if !self.held.is_empty() {
            // The last line of the previous lost stretch may be the start of a message cut by
            // the segment boundary: search it with the new bytes.
            let mut joined = std::mem::take(&mut self.held);
            let carried = joined.len();
            joined.extend_from_slice(data);
            if find_message_start(&joined, self.role).is_some_and(|(at, _)| at < carried) {
                // The held bytes were counted as skipped when they were held.
                self.skipped = self.skipped.saturating_sub(carried as u64);
                return Step::Replay(joined);
            }
        }
        match find_message_start(data, self.role) {
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
                Step::Rest(&data[at..])
            }
            None => {
                self.skipped += data.len() as u64;
                let line_start = memchr::memrchr(b'\n', data).map_or(0, |nl| nl + 1);
                let tail = &data[line_start..];
                if could_start_message(tail) {
                    self.held.extend_from_slice(tail);
                }
                Step::Rest(&[])
            }
        }
    }
}

/// Where a message seems to start in bytes found after losing track.
///
/// Linear in `data`: each `HTTP/1.` found is judged from the start of its line, which is
/// tracked as the search moves on (never searched back for), and a line's first word is
/// read once however many `HTTP/1.` the line holds.
fn find_message_start(data: &[u8], role: Option<Role>) -> Option<(usize, Role)> {
    let mut line_start = 0;
    // Up to where newlines have been looked for.
    let mut scanned = 0;
    // Whether the current line begins with an upper-case word and a space, once known.
    let mut method_word: Option<bool> = None;
    for at in memmem::find_iter(data, b"HTTP/1.") {
        if let Some(nl) = memchr::memrchr(b'\n', &data[scanned..at]) {
            line_start = scanned + nl + 1;
            method_word = None;
        }
        scanned = at;
        if at == line_start && role != Some(Role::Requests) {
            let status = data.get(at + 8..at + 13);
            if status.is_some_and(|s| s[0] == b' ' && s[1..4].iter().all(u8::is_ascii_digit)) {
                return Some((at, Role::Responses));
            }
        }
        if at > line_start && role != Some(Role::Responses) && data[at - 1] == b' ' {
            let starts_with_method = *method_word.get_or_insert_with(|| {
                let line = &data[line_start..at];
                let method_len = line.iter().position(|&b| b == b' ').unwrap_or(0);
                method_len > 0 && line[..method_len].iter().all(u8::is_ascii_uppercase)
            });
            if starts_with_method {
                return Some((line_start, Role::Requests));
            }
        }
    }
    None
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
    use super::super::DEFAULT_MAX_HEAD;
    use super::super::testing::{Event, Recorder};
    use super::*;
    use crate::tcp::StreamEvent;

    #[test]
    fn message_starts_are_found_at_line_starts_for_the_role() {
        let request = b"junk\r\nGET /x HTTP/1.1\r\n";
        assert_eq!(find_message_start(request, None), Some((6, Role::Requests)));
        assert_eq!(
            find_message_start(request, Some(Role::Requests)),
            Some((6, Role::Requests))
        );
        assert_eq!(find_message_start(request, Some(Role::Responses)), None);
        let response = b"junk\nHTTP/1.1 204 No Content\r\n";
        assert_eq!(
            find_message_start(response, None),
            Some((5, Role::Responses))
        );
        assert_eq!(find_message_start(response, Some(Role::Requests)), None);
        // Not at a line start, no status code, a lower-case method: no message start.
        assert_eq!(find_message_start(b"x HTTP/1.1 200 OK\r\n", None), None);
        assert_eq!(find_message_start(b"HTTP/1.1 OK\r\n", None), None);
        assert_eq!(find_message_start(b"get / HTTP/1.1\r\n", None), None);
    }

    #[test]
    fn only_a_line_that_may_start_a_message_is_carried() {
        assert!(could_start_message(b"GET /pa"));
        assert!(could_start_message(b"HTT"));
        assert!(!could_start_message(b""));
        assert!(!could_start_message(b"body bytes"));
        assert!(!could_start_message(b"G\x00"));
        assert!(!could_start_message(&[b'G'; MAX_CARRY + 1]));
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
