//! TCP keep-alive probes and their ACKs, found as Wireshark finds them
//! (`tcp.analysis.keep_alive`, `tcp.analysis.keep_alive_ack` in packet-tcp.c):
//!
//! - a **probe** is a segment of 0 or 1 payload bytes, without SYN, FIN or RST, whose
//!   sequence number is one below the next one its sender is expected to use — the highest
//!   sequence number the sender reached so far (RFC 1122 §4.2.3.6: the probe repeats the
//!   last byte already acknowledged, so it is sent only while the connection is idle);
//! - its **ACK** is the peer's next segment when it has no payload, no SYN, FIN or RST, sits
//!   exactly at the peer's next sequence number, repeats the peer's last acknowledgement
//!   number and keeps its (non-zero) window.
//!
//! This tracks its own high-water marks: Wireshark's "next sequence number" is the highest
//! sequence number seen, which the reassembler's stream end is not when a hole was given up
//! or bytes were cut off.

use super::seq::SeqNumber;
use super::{Dir, Segment};

/// What one direction sent last, as the keep-alive rules need it.
#[derive(Debug, Clone, Copy, Default)]
struct Sender {
    /// One past the highest sequence number sent (a SYN and a FIN count one each).
    next_seq: Option<SeqNumber>,
    /// The acknowledgement number of the last segment with ACK.
    last_ack: Option<SeqNumber>,
    window: Option<u16>,
    /// The last segment sent was a probe.
    last_was_probe: bool,
    probes: u32,
    acks: u32,
    last_probe_ts: Option<u64>,
    /// The shortest time between two probes of this sender.
    shortest_interval_ns: Option<u64>,
}

/// What one side did with keep-alive probes on a connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeepAliveProbes {
    /// Probes this side sent.
    pub probes: u32,
    /// ACKs this side sent to the peer's probes.
    pub acks: u32,
    /// The shortest time between two of this side's probes: its probing interval.
    pub shortest_interval_ns: Option<u64>,
}

/// How a segment counts for keep-alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum KeepAliveKind {
    Probe,
    ProbeAck,
    Other,
}

/// Keep-alive probes of both directions of a connection.
#[derive(Debug, Default)]
pub(super) struct KeepAlive {
    senders: [Sender; 2],
}

impl KeepAlive {
    /// Takes a segment sent in `dir` and says whether it is a probe or a probe's ACK.
    pub(super) fn on_segment(&mut self, dir: Dir, segment: &Segment<'_>) -> KeepAliveKind {
        let flags = segment.flags;
        let seq = SeqNumber::from(segment.seq);
        let length = segment.payload.len() as u64 + u64::from(segment.missing);
        let plain = !flags.syn() && !flags.fin() && !flags.rst();
        let peer_sent_probe = self.senders[dir.opposite().index()].last_was_probe;
        let sender = &mut self.senders[dir.index()];
        let kind = if plain && length <= 1 && sender.next_seq == Some(seq + 1) {
            KeepAliveKind::Probe
        } else if plain
            && length == 0
            && peer_sent_probe
            && segment.window != 0
            && sender.window == Some(segment.window)
            && sender.next_seq == Some(seq)
            && flags.ack()
            && sender.last_ack == Some(SeqNumber::from(segment.ack))
        {
            KeepAliveKind::ProbeAck
        } else {
            KeepAliveKind::Other
        };
        match kind {
            KeepAliveKind::Probe => {
                sender.probes += 1;
                if let Some(last) = sender.last_probe_ts {
                    let interval = segment.ts_ns.saturating_sub(last);
                    sender.shortest_interval_ns = Some(
                        sender
                            .shortest_interval_ns
                            .map_or(interval, |shortest| shortest.min(interval)),
                    );
                }
                sender.last_probe_ts = Some(segment.ts_ns);
            }
            KeepAliveKind::ProbeAck => sender.acks += 1,
            KeepAliveKind::Other => {}
        }
        sender.last_was_probe = kind == KeepAliveKind::Probe;
        // A probe's byte lies below the high-water mark, so it never raises it.
        let end = seq + (length as u32) + u32::from(flags.syn()) + u32::from(flags.fin());
        if sender.next_seq.is_none_or(|next| end.offset_from(next) > 0) {
            sender.next_seq = Some(end);
        }
        if flags.ack() {
            sender.last_ack = Some(SeqNumber::from(segment.ack));
        }
        sender.window = Some(segment.window);
        kind
    }

    pub(super) fn of(&self, dir: Dir) -> KeepAliveProbes {
        let sender = &self.senders[dir.index()];
        KeepAliveProbes {
            probes: sender.probes,
            acks: sender.acks,
            shortest_interval_ns: sender.shortest_interval_ns,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::segment;
    use super::*;
    use crate::decode::Flags;

    /// A's first byte at 1, B's at 1001; A has sent "GET" and B acknowledged it.
    fn after_a_request() -> KeepAlive {
        let mut keepalive = KeepAlive::default();
        for (dir, seq, ack, flags, payload) in [
            (Dir::A, 0, None, Flags::SYN, &b""[..]),
            (Dir::B, 1000, Some(1), Flags::SYN, b""),
            (Dir::A, 1, Some(1001), 0, b""),
            (Dir::A, 1, Some(1001), 0, b"GET"),
            (Dir::B, 1001, Some(4), 0, b""),
        ] {
            let kind = keepalive.on_segment(dir, &segment(dir, seq, ack, flags, payload));
            assert_eq!(kind, KeepAliveKind::Other);
        }
        keepalive
    }

    fn at(ts_ns: u64, mut segment: Segment<'_>) -> Segment<'_> {
        segment.ts_ns = ts_ns;
        segment
    }

    #[test]
    fn a_probe_sits_one_below_the_next_sequence_number_and_its_ack_repeats_the_last() {
        let mut keepalive = after_a_request();
        for second in 1..=3 {
            let probe = at(
                second * 1_000_000_000,
                segment(Dir::A, 3, Some(1001), 0, b""),
            );
            assert_eq!(keepalive.on_segment(Dir::A, &probe), KeepAliveKind::Probe);
            let ack = segment(Dir::B, 1001, Some(4), 0, b"");
            assert_eq!(keepalive.on_segment(Dir::B, &ack), KeepAliveKind::ProbeAck);
        }
        let a = keepalive.of(Dir::A);
        assert_eq!((a.probes, a.acks), (3, 0));
        assert_eq!(a.shortest_interval_ns, Some(1_000_000_000));
        assert_eq!(keepalive.of(Dir::B).acks, 3);
    }

    #[test]
    fn a_probe_may_carry_one_byte_of_garbage() {
        let mut keepalive = after_a_request();
        let probe = segment(Dir::A, 3, Some(1001), 0, b"\0");
        assert_eq!(keepalive.on_segment(Dir::A, &probe), KeepAliveKind::Probe);
        // Two bytes back is a retransmission, not a probe.
        let resent = segment(Dir::A, 2, Some(1001), 0, b"ET");
        assert_eq!(keepalive.on_segment(Dir::A, &resent), KeepAliveKind::Other);
    }

    #[test]
    fn syn_fin_and_rst_are_never_probes() {
        for flags in [Flags::FIN, Flags::RST, Flags::SYN] {
            let mut keepalive = after_a_request();
            let odd = segment(Dir::A, 3, Some(1001), flags, b"");
            assert_eq!(keepalive.on_segment(Dir::A, &odd), KeepAliveKind::Other);
        }
    }

    #[test]
    fn an_ack_that_moves_or_changes_its_window_answers_no_probe() {
        let mut keepalive = after_a_request();
        keepalive.on_segment(Dir::A, &segment(Dir::A, 3, Some(1001), 0, b""));
        let mut update = segment(Dir::B, 1001, Some(4), 0, b"");
        update.window = 100;
        assert_eq!(keepalive.on_segment(Dir::B, &update), KeepAliveKind::Other);
        // Without a probe just before, a repeated ACK is only a duplicate.
        let repeated = segment(Dir::B, 1001, Some(4), 0, b"");
        assert_eq!(
            keepalive.on_segment(Dir::B, &repeated),
            KeepAliveKind::Other
        );
    }

    #[test]
    fn the_first_segment_of_a_direction_is_never_a_probe() {
        let mut keepalive = KeepAlive::default();
        let first = segment(Dir::A, 5000, Some(9), 0, b"");
        assert_eq!(keepalive.on_segment(Dir::A, &first), KeepAliveKind::Other);
        // Right after a handshake the probe repeats the SYN's sequence number.
        let mut keepalive = KeepAlive::default();
        keepalive.on_segment(Dir::A, &segment(Dir::A, 0, None, Flags::SYN, b""));
        let probe = segment(Dir::A, 0, Some(1001), 0, b"");
        assert_eq!(keepalive.on_segment(Dir::A, &probe), KeepAliveKind::Probe);
    }
}
