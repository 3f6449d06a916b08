//! TCP: one [`TcpConnection`] per connection, with handshake and teardown facts and a
//! reassembler per direction (`reassembly`) that turns segments into an ordered byte stream.
//! Sequence numbers become `seq::SeqNumber`s, whose arithmetic wraps at 2^32, as soon as a
//! segment comes in.
//!
//! Directions are indexed by [`Dir`]: `Dir::A` is the sender of the first packet seen on the
//! connection. Which side is the client is a separate fact ([`ClientSide`]) because without a
//! handshake it is only learned later, from the HTTP bytes.

mod keepalive;
mod reassembly;
mod seq;
#[cfg(test)]
mod testing;

use std::net::SocketAddr;

use crate::decode::{Flags, Segment};
pub use keepalive::KeepAliveProbes;
use keepalive::{KeepAlive, KeepAliveKind};
use reassembly::Reassembler;
use seq::SeqNumber;

/// Direction of travel on a connection: `A` is from the first packet's sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    A = 0,
    B = 1,
}

impl Dir {
    pub fn index(self) -> usize {
        self as usize
    }
    pub fn opposite(self) -> Dir {
        match self {
            Dir::A => Dir::B,
            Dir::B => Dir::A,
        }
    }
}

/// How the client side of a connection was determined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientBy {
    /// The client sent the SYN.
    Syn,
    /// The SYN was not captured but the SYN-ACK was.
    SynAck,
    /// No handshake: the side that sent an HTTP request (or received a response).
    Http,
    /// No handshake and no HTTP: the side with the higher port.
    Port,
}

named_enum!(ClientBy {
    Syn => "syn",
    SynAck => "syn-ack",
    Http => "http",
    Port => "port",
});

/// Which side of a connection is the client: the one fact every stage asks, decided here
/// from the best evidence seen so far. A SYN outranks a SYN-ACK, and either outranks what
/// the HTTP bytes suggest; without any, the higher port is the guess.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientSide(Option<(Dir, ClientBy)>);

impl ClientSide {
    /// A segment travelling in `dir`: a SYN says its sender is the client, a SYN-ACK its
    /// receiver.
    pub fn learn_from_segment(&mut self, dir: Dir, flags: Flags) {
        if !flags.syn() || self.0.is_some_and(|(_, by)| by == ClientBy::Syn) {
            return;
        }
        self.0 = Some(if flags.ack() {
            (dir.opposite(), ClientBy::SynAck)
        } else {
            (dir, ClientBy::Syn)
        });
    }

    /// The HTTP bytes showed which side sends requests.
    pub fn learn_from_http(&mut self, client: Dir) {
        if self.0.is_none() {
            self.0 = Some((client, ClientBy::Http));
        }
    }

    pub fn known(self) -> Option<Dir> {
        self.0.map(|(dir, _)| dir)
    }

    /// The client, falling back to the higher port of `endpoints` when nothing told.
    pub fn or_guess(self, endpoints: &[SocketAddr; 2]) -> (Dir, ClientBy) {
        self.0.unwrap_or_else(|| {
            let dir = if endpoints[0].port() >= endpoints[1].port() {
                Dir::A
            } else {
                Dir::B
            };
            (dir, ClientBy::Port)
        })
    }
}

/// What the reassembler hands on, in stream order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEvent<'a> {
    Data(&'a [u8]),
    /// Bytes that were on the wire but are not in the capture.
    Gap(u64),
    /// Bytes that were on the wire and that the source shed on purpose (`--ebpf`: body bytes
    /// the analysis asked not to see): known and skipped, not lost.
    Skipped(u64),
    Fin,
    Rst,
}

/// Per-direction counters in the spirit of Wireshark's `tcp.analysis` flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Anomalies {
    pub retransmissions: u64,
    pub out_of_order: u64,
    pub gaps: u64,
    pub gap_bytes: u64,
    /// Out-of-order segments given up because the buffer bound was reached.
    pub buffer_overflows: u64,
    /// RSTs too far from the expected sequence number to be believed (RFC 5961).
    pub ignored_rsts: u64,
    /// Segments with an unusable header, counted but not analysed.
    pub damaged_segments: u64,
}

/// When each teardown flag of one direction was first seen, and how often.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Teardown {
    pub fin_ts: Option<u64>,
    pub fins: u32,
    pub rst_ts: Option<u64>,
    pub rsts: u32,
}

/// A TCP connection: endpoints, identity, handshake and teardown, and two reassemblers.
pub struct TcpConnection {
    /// `endpoints[0]` sent the first packet seen; `endpoints[1]` received it.
    pub endpoints: [SocketAddr; 2],
    /// Wireshark's `tcp.stream` number.
    pub stream: u64,
    pub first_ts: u64,
    pub last_ts: u64,
    pub syn_ts: Option<u64>,
    pub synack_ts: Option<u64>,
    /// The SYN sender's first ACK after the SYN-ACK: the handshake's end.
    pub handshake_ack_ts: Option<u64>,
    /// Who sent the first SYN.
    syn_dir: Option<Dir>,
    halves: [Reassembler; 2],
    keepalive: KeepAlive,
    /// Wireshark's `base_seq` per direction: the SYN's sequence number, else the first
    /// sequence number seen minus one, else the peer's first acknowledgement minus one. A
    /// later SYN with another sequence number starts a new `tcp.stream`.
    wireshark_base: [Option<SeqNumber>; 2],
    /// Bytes of out-of-order data one direction may hold before giving up a hole.
    buffer_limit: usize,
}

impl TcpConnection {
    pub fn new(first: &Segment<'_>, stream: u64, buffer_limit: usize) -> TcpConnection {
        TcpConnection {
            endpoints: [first.src, first.dst],
            stream,
            first_ts: first.ts_ns,
            last_ts: first.ts_ns,
            syn_ts: None,
            synack_ts: None,
            handshake_ack_ts: None,
            syn_dir: None,
            halves: Default::default(),
            keepalive: KeepAlive::default(),
            wireshark_base: [None; 2],
            buffer_limit,
        }
    }

    pub fn direction_of(&self, segment: &Segment<'_>) -> Dir {
        if segment.src == self.endpoints[0] {
            Dir::A
        } else {
            Dir::B
        }
    }

    /// Wireshark's rule for port reuse (packet-tcp.c): a SYN without ACK whose sequence
    /// number differs from its direction's base sequence number starts a new connection on
    /// the same 4-tuple. FIN or RST state does not matter; a SYN-ACK never splits.
    pub fn is_reused_by(&self, segment: &Segment<'_>) -> bool {
        if !segment.flags.syn() || segment.flags.ack() {
            return false;
        }
        let seq = SeqNumber::from(segment.seq);
        self.wireshark_base[self.direction_of(segment).index()].is_some_and(|base| base != seq)
    }

    pub fn anomalies(&self, dir: Dir) -> Anomalies {
        self.halves[dir.index()].anomalies
    }

    pub fn teardown(&self, dir: Dir) -> Teardown {
        self.halves[dir.index()].teardown
    }

    /// The TCP keep-alive probes `dir` sent, and its ACKs to the peer's.
    pub fn keepalive(&self, dir: Dir) -> KeepAliveProbes {
        self.keepalive.of(dir)
    }

    pub fn packets(&self, dir: Dir) -> u64 {
        self.halves[dir.index()].packets
    }

    /// Payload bytes each direction put on the wire (retransmissions included).
    pub fn wire_bytes(&self, dir: Dir) -> u64 {
        self.halves[dir.index()].wire_bytes
    }

    /// Payload bytes of each direction that reached user space (what the snaplen kept, or
    /// what `--ebpf` did not shed).
    pub fn captured_bytes(&self, dir: Dir) -> u64 {
        self.halves[dir.index()].captured_bytes
    }

    /// Where a direction's stream has got to: the stream offset every byte before which was
    /// handed on, and the sequence number of that offset; `None` before it has a start.
    pub fn stream_end(&self, dir: Dir) -> Option<(u64, u32)> {
        self.halves[dir.index()]
            .end()
            .map(|(offset, seq)| (offset, seq.into()))
    }

    /// Both directions have delivered their FIN, or a RST ended the connection.
    pub fn is_closed(&self) -> bool {
        let [a, b] = &self.halves;
        (a.fin_delivered() && b.fin_delivered()) || a.reset() || b.reset()
    }

    /// Takes one segment. Stream events come out in order through `emit`, each tagged with
    /// the direction its bytes travel. Returns false for a RST ignored as out of window.
    pub fn on_segment(
        &mut self,
        segment: &Segment<'_>,
        mut emit: impl FnMut(Dir, StreamEvent<'_>),
    ) -> bool {
        let dir = self.direction_of(segment);
        self.last_ts = self.last_ts.max(segment.ts_ns);
        let flags = segment.flags;
        if flags.syn() {
            if flags.ack() {
                self.synack_ts.get_or_insert(segment.ts_ns);
            } else {
                self.syn_ts.get_or_insert(segment.ts_ns);
                self.syn_dir.get_or_insert(dir);
            }
        } else if flags.ack()
            && self.handshake_ack_ts.is_none()
            && self.synack_ts.is_some()
            && self.syn_dir == Some(dir)
        {
            self.handshake_ack_ts = Some(segment.ts_ns);
        }
        // Data this segment acknowledges but the capture never held is capture loss.
        if flags.ack() && !flags.rst() {
            let peer = dir.opposite();
            let ack = SeqNumber::from(segment.ack);
            self.halves[peer.index()].on_peer_ack(ack, |event| emit(peer, event));
        }
        self.learn_wireshark_bases(dir, segment);
        let limit = self.buffer_limit;
        let half = &mut self.halves[dir.index()];
        if self.keepalive.on_segment(dir, segment) == KeepAliveKind::Probe
            && (!segment.payload.is_empty() || segment.missing > 0)
        {
            // The garbage byte of a probe repeats one already acknowledged: it is on the
            // wire, but neither stream data nor a retransmission (as Wireshark counts them).
            half.wire_bytes += segment.payload.len() as u64 + u64::from(segment.missing);
            let bare = Segment {
                payload: &[],
                missing: 0,
                ..*segment
            };
            return half.on_segment(&bare, limit, |event| emit(dir, event));
        }
        half.on_segment(segment, limit, |event| emit(dir, event))
    }

    /// A segment whose header could not be used (`segment` has its numbers and flags, no
    /// payload): it is counted, and, when Wireshark takes its sequence numbers into account
    /// (`sequenced`), so does the `tcp.stream` numbering; nothing else changes.
    pub fn on_damaged_segment(&mut self, segment: &Segment<'_>, sequenced: bool) {
        let dir = self.direction_of(segment);
        self.last_ts = self.last_ts.max(segment.ts_ns);
        let half = &mut self.halves[dir.index()];
        half.packets += 1;
        half.anomalies.damaged_segments += 1;
        if sequenced {
            self.learn_wireshark_bases(dir, segment);
        }
    }

    fn learn_wireshark_bases(&mut self, dir: Dir, segment: &Segment<'_>) {
        let seq = SeqNumber::from(segment.seq);
        self.wireshark_base[dir.index()]
            .get_or_insert_with(|| if segment.flags.syn() { seq } else { seq - 1 });
        if segment.flags.ack() {
            let ack = SeqNumber::from(segment.ack);
            self.wireshark_base[dir.opposite().index()].get_or_insert_with(|| ack - 1);
        }
    }

    /// End of capture (or eviction): both directions deliver what they hold.
    pub fn flush(&mut self, mut emit: impl FnMut(Dir, StreamEvent<'_>)) {
        for dir in [Dir::A, Dir::B] {
            self.halves[dir.index()].flush(&mut |event| emit(dir, event));
        }
    }

    /// Releases reassembly buffers once nothing more is expected.
    pub fn release_buffers(&mut self) {
        for half in &mut self.halves {
            half.release_buffers();
        }
    }

    /// Memory held by out-of-order buffers, for the memory budget.
    pub fn buffered_bytes(&self) -> usize {
        self.halves.iter().map(Reassembler::buffered_bytes).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{Event, segment};
    use super::*;
    use crate::decode::Flags;

    /// A connection after a captured handshake: A's first byte is at 1, B's at 1001.
    fn after_handshake() -> TcpConnection {
        let syn = segment(Dir::A, 0, None, Flags::SYN, b"");
        let mut tcp = TcpConnection::new(&syn, 0, 1 << 20);
        let synack = segment(Dir::B, 1000, Some(1), Flags::SYN, b"");
        for handshake in [syn, synack] {
            assert!(tcp.on_segment(&handshake, |_, event| panic!("{event:?}")));
        }
        tcp
    }

    fn feed(tcp: &mut TcpConnection, segment: &Segment<'_>) -> Vec<(Dir, Event)> {
        let mut events = Vec::new();
        tcp.on_segment(segment, |dir, event| events.push((dir, event.into())));
        events
    }

    #[test]
    fn a_believed_rst_from_one_side_closes_the_connection() {
        let mut tcp = after_handshake();
        let rst = segment(Dir::B, 1001, Some(1), Flags::RST, b"");
        assert_eq!(feed(&mut tcp, &rst), [(Dir::B, Event::Rst)]);
        assert!(tcp.is_closed());
    }

    #[test]
    fn an_ignored_rst_leaves_the_connection_open() {
        let mut tcp = after_handshake();
        let blind = segment(Dir::B, 1001 + (4 << 20), None, Flags::RST, b"");
        assert!(!tcp.on_segment(&blind, |_, event| panic!("{event:?}")));
        assert!(!tcp.is_closed());
        assert_eq!(tcp.anomalies(Dir::B).ignored_rsts, 1);
        assert_eq!(tcp.teardown(Dir::B).rsts, 1);
    }

    #[test]
    fn the_connection_closes_when_both_fins_are_delivered() {
        let mut tcp = after_handshake();
        let fin_a = segment(Dir::A, 1, Some(1001), Flags::FIN, b"");
        assert_eq!(feed(&mut tcp, &fin_a), [(Dir::A, Event::Fin)]);
        assert!(!tcp.is_closed());
        let fin_b = segment(Dir::B, 1001, Some(2), Flags::FIN, b"");
        assert_eq!(feed(&mut tcp, &fin_b), [(Dir::B, Event::Fin)]);
        assert!(tcp.is_closed());
    }

    #[test]
    fn bytes_acknowledged_but_not_captured_are_a_gap_in_the_peers_stream() {
        let mut tcp = after_handshake();
        feed(&mut tcp, &segment(Dir::A, 1, Some(1001), 0, b"ab"));
        // B acknowledges 7 bytes of A's; the capture held 2.
        let ack = segment(Dir::B, 1001, Some(8), 0, b"");
        assert_eq!(feed(&mut tcp, &ack), [(Dir::A, Event::Gap(5))]);
        assert_eq!(tcp.anomalies(Dir::A).gap_bytes, 5);
    }

    #[test]
    fn a_probes_garbage_byte_is_neither_data_nor_a_retransmission() {
        let mut tcp = after_handshake();
        assert_eq!(
            feed(&mut tcp, &segment(Dir::A, 1, Some(1001), 0, b"GET")),
            [(Dir::A, Event::Data(b"GET".to_vec()))]
        );
        assert_eq!(feed(&mut tcp, &segment(Dir::A, 3, Some(1001), 0, b"T")), []);
        assert_eq!(tcp.anomalies(Dir::A).retransmissions, 0);
        assert_eq!(tcp.wire_bytes(Dir::A), 4);
        assert_eq!(tcp.keepalive(Dir::A).probes, 1);
        // The same byte again, now that the probe is past, is a retransmission.
        feed(&mut tcp, &segment(Dir::A, 2, Some(1001), 0, b"ET"));
        assert_eq!(tcp.anomalies(Dir::A).retransmissions, 1);
    }

    #[test]
    fn a_syn_with_another_sequence_number_reuses_the_four_tuple() {
        let tcp = after_handshake();
        assert!(!tcp.is_reused_by(&segment(Dir::A, 0, None, Flags::SYN, b"")));
        assert!(tcp.is_reused_by(&segment(Dir::A, 5, None, Flags::SYN, b"")));
        // A SYN-ACK never splits.
        assert!(!tcp.is_reused_by(&segment(Dir::A, 5, Some(9), Flags::SYN, b"")));
    }

    #[test]
    fn without_a_handshake_the_wireshark_base_is_one_before_what_was_seen() {
        let first = segment(Dir::A, 100, Some(2000), 0, b"GET");
        let mut tcp = TcpConnection::new(&first, 0, 1 << 20);
        feed(&mut tcp, &first);
        assert!(!tcp.is_reused_by(&segment(Dir::A, 99, None, Flags::SYN, b"")));
        assert!(tcp.is_reused_by(&segment(Dir::A, 100, None, Flags::SYN, b"")));
        // B's base comes from A's acknowledgement before B has sent anything.
        assert!(!tcp.is_reused_by(&segment(Dir::B, 1999, None, Flags::SYN, b"")));
        assert!(tcp.is_reused_by(&segment(Dir::B, 2000, None, Flags::SYN, b"")));
    }
}
