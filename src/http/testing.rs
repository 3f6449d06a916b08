//! What unit tests of the HTTP stage share: events copied out of the stream, so that tests
//! compare values rather than `Debug` text.

use super::{
    ConnectionTokens, DEFAULT_MAX_HEAD, HttpConnection, HttpEvent, KeepAliveAdvert, ParseError,
    Protocol, Role,
};
use crate::tcp::{Dir, StreamEvent};

/// An [`HttpEvent`] with its borrowed parts owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Event {
    ClientIs(Dir),
    Protocol(Protocol),
    Request {
        method: String,
        target: String,
        version: u8,
        connection: ConnectionTokens,
        head_bytes: usize,
        in_flight: u32,
    },
    RequestEnd {
        body_bytes: u64,
        complete: bool,
    },
    Response {
        status: u16,
        version: u8,
        connection: ConnectionTokens,
        keep_alive: Option<KeepAliveAdvert>,
        server: Option<Vec<u8>>,
        head_bytes: usize,
        answers: Option<u32>,
    },
    ResponseEnd {
        body_bytes: u64,
        complete: bool,
    },
    Tunnel,
    Error(Role, ParseError),
    Lost {
        bytes: u64,
        shed: bool,
    },
    Resync {
        role: Role,
        skipped: u64,
    },
}

impl From<HttpEvent<'_>> for Event {
    fn from(event: HttpEvent<'_>) -> Event {
        match event {
            HttpEvent::ClientIs(dir) => Event::ClientIs(dir),
            HttpEvent::Protocol(protocol) => Event::Protocol(protocol),
            HttpEvent::Request { head, in_flight } => Event::Request {
                method: head.method.to_owned(),
                target: head.target.to_owned(),
                version: head.version,
                connection: head.connection,
                head_bytes: head.head_bytes,
                in_flight,
            },
            HttpEvent::RequestEnd {
                body_bytes,
                complete,
            } => Event::RequestEnd {
                body_bytes,
                complete,
            },
            HttpEvent::Response { head, answers } => Event::Response {
                status: head.status,
                version: head.version,
                connection: head.connection,
                keep_alive: head.keep_alive,
                server: head.server.map(<[u8]>::to_vec),
                head_bytes: head.head_bytes,
                answers,
            },
            HttpEvent::ResponseEnd {
                body_bytes,
                complete,
            } => Event::ResponseEnd {
                body_bytes,
                complete,
            },
            HttpEvent::Tunnel => Event::Tunnel,
            HttpEvent::Error(role, error) => Event::Error(role, error),
            HttpEvent::Lost { bytes, shed } => Event::Lost { bytes, shed },
            HttpEvent::Resync { role, skipped } => Event::Resync { role, skipped },
        }
    }
}

/// One connection's HTTP stage with every event it emits kept, and the client learned
/// from them as the pipeline learns it.
pub(super) struct Recorder {
    http: HttpConnection,
    client: Option<Dir>,
    pub events: Vec<Event>,
}

impl Recorder {
    pub fn new(client: Option<Dir>, max_head: usize) -> Recorder {
        Recorder {
            http: HttpConnection::new(max_head, super::Keep::Nothing),
            client,
            events: Vec::new(),
        }
    }

    pub fn stream(&mut self, dir: Dir, event: StreamEvent<'_>) {
        let (events, client) = (&mut self.events, &mut self.client);
        self.http
            .on_stream_event(dir, event, 0, *client, &mut |event: HttpEvent<'_>| {
                if let HttpEvent::ClientIs(learned) = event {
                    client.get_or_insert(learned);
                }
                events.push(event.into())
            });
    }

    pub fn data(&mut self, dir: Dir, bytes: &[u8]) {
        self.stream(dir, StreamEvent::Data(bytes));
    }
}

/// The events of a connection, client not known, fed `pieces` from direction A.
pub(super) fn events_of(pieces: &[&[u8]]) -> Vec<Event> {
    let mut recorder = Recorder::new(None, DEFAULT_MAX_HEAD);
    for piece in pieces {
        recorder.data(Dir::A, piece);
    }
    recorder.events
}

/// The targets of the requests among `events`, in order.
pub(super) fn request_targets(events: &[Event]) -> Vec<&str> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Request { target, .. } => Some(target.as_str()),
            _ => None,
        })
        .collect()
}
