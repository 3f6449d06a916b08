//! What the findings report, counted per server or client as records arrive: each kind of
//! thing seen keeps a count and the first few `tcp.stream` numbers to open in Wireshark.
//! A new kind of finding adds a [`Seen`] variant, marks it where the aggregation sees it, and
//! reads it back in `findings.rs`.

use crate::named::Named;

/// Stream numbers kept per kind of sighting.
pub const MAX_STREAMS: usize = 20;

/// Something a finding may be about, seen on one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// A request crossed the server's idle close (keep-alive race).
    Race,
    /// The server closed an idle connection before its advertised `timeout=`.
    ClosedEarly,
    /// The server answered more requests than its `max=` allowed.
    MaxExceeded,
    /// The server kept answering after it announced `Connection: close`.
    AnsweredAfterClose,
    /// The server closed without `Connection: close`, a reached limit or timeout.
    UnannouncedClose,
    /// Requests left unanswered after the server's `Connection: close` or limit.
    DroppedAfterClose,
    /// The connection carried one request (or none).
    OneRequest,
    /// The client asked for the close with `Connection: close`.
    AskedClose,
    /// The client spoke HTTP/1.0 without `Connection: keep-alive`.
    Http10Close,
    /// The server announced the close on its first response.
    ServerSaidClose,
}

named_enum!(Seen {
    Race => "race",
    ClosedEarly => "closed-early",
    MaxExceeded => "max-exceeded",
    AnsweredAfterClose => "answered-after-close",
    UnannouncedClose => "unannounced-close",
    DroppedAfterClose => "dropped-after-close",
    OneRequest => "one-request",
    AskedClose => "asked-close",
    Http10Close => "http10-close",
    ServerSaidClose => "server-said-close",
});

/// Per kind: connections seen, and the first streams.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Sightings {
    counts: [u64; Seen::ALL.len()],
    streams: [Vec<u64>; Seen::ALL.len()],
}

impl Sightings {
    pub fn mark(&mut self, seen: Seen, stream: u64) {
        let i = seen.index();
        self.counts[i] += 1;
        if self.streams[i].len() < MAX_STREAMS {
            self.streams[i].push(stream);
        }
    }

    pub fn count(&self, seen: Seen) -> u64 {
        self.counts[seen.index()]
    }

    /// The first streams, ascending.
    pub fn streams(&self, seen: Seen) -> Vec<u64> {
        let mut streams = self.streams[seen.index()].clone();
        streams.sort_unstable();
        streams
    }
}
