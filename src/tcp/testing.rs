//! Segments and recorded stream events for the tcp unit tests.

use std::net::SocketAddr;

use super::{Dir, StreamEvent};
use crate::decode::{Flags, Segment};

/// A segment from `from` (A is 10.0.0.1:40000, B is 10.0.0.2:80); the ACK flag is set when
/// there is an acknowledgement number.
pub(super) fn segment(
    from: Dir,
    seq: u32,
    ack: Option<u32>,
    flags: u8,
    payload: &[u8],
) -> Segment<'_> {
    let a: SocketAddr = "10.0.0.1:40000".parse().unwrap();
    let b: SocketAddr = "10.0.0.2:80".parse().unwrap();
    let (src, dst) = match from {
        Dir::A => (a, b),
        Dir::B => (b, a),
    };
    let ack_flag = if ack.is_some() { Flags::ACK } else { 0 };
    Segment {
        ts_ns: 1_000,
        src,
        dst,
        seq,
        ack: ack.unwrap_or(0),
        flags: Flags(flags | ack_flag),
        window: 64240,
        payload,
        missing: 0,
        shed: false,
    }
}

/// A [`StreamEvent`] that owns its bytes, to compare against.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Event {
    Data(Vec<u8>),
    Gap(u64),
    Skipped(u64),
    Fin,
    Rst,
}

impl From<StreamEvent<'_>> for Event {
    fn from(event: StreamEvent<'_>) -> Event {
        match event {
            StreamEvent::Data(bytes) => Event::Data(bytes.to_vec()),
            StreamEvent::Gap(bytes) => Event::Gap(bytes),
            StreamEvent::Skipped(bytes) => Event::Skipped(bytes),
            StreamEvent::Fin => Event::Fin,
            StreamEvent::Rst => Event::Rst,
        }
    }
}

pub(super) fn data(bytes: &[u8]) -> Event {
    Event::Data(bytes.to_vec())
}
