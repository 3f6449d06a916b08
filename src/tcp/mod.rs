//! TCP: one [`TcpConnection`] per connection, with handshake and teardown facts and a
//! reassembler per direction that turns segments into an ordered byte stream.
//!
//! In-order payload is handed on as a slice of the captured segment (no copy). Only segments
//! that arrive ahead of a hole are copied, into a buffer bounded per direction; when the bound
//! is hit, or the peer acknowledges bytes the capture never held, the hole is given up as a
//! [`StreamEvent::Gap`] and the stream goes on after it.
//!
//! Directions are indexed by [`Dir`]: `Dir::A` is the sender of the first packet seen on the
//! connection. Which side is the client is a separate fact ([`TcpConnection::client`]) because
//! without a handshake it is only learned later, from the HTTP bytes.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use crate::decode::Segment;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
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

/// What the reassembler hands on, in stream order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEvent<'a> {
    Data(&'a [u8]),
    /// Bytes that were on the wire but are not in the capture.
    Gap(u64),
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
}

/// When each teardown flag of one direction was first seen, and how often.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Teardown {
    pub fin_ts: Option<u64>,
    pub fins: u32,
    pub rst_ts: Option<u64>,
    pub rsts: u32,
}

struct Pending {
    data: Box<[u8]>,
    missing: u32,
}

impl Pending {
    fn end(&self, offset: u64) -> u64 {
        offset + self.data.len() as u64 + u64::from(self.missing)
    }

    /// What the buffer bound charges for this segment: its bytes and its bookkeeping, so
    /// that a flood of one-byte segments is bounded as tightly as a few large ones.
    fn cost(&self) -> usize {
        self.data.len() + PENDING_OVERHEAD
    }
}

/// Bookkeeping per buffered segment: the map node, the allocation and its header.
const PENDING_OVERHEAD: usize = 64;

/// One direction's reassembly state. Offsets count stream bytes from the first byte after
/// the SYN (or from the first segment seen when the SYN is missing).
#[derive(Default)]
struct Reassembler {
    /// Sequence number at stream offset 0.
    base_seq: Option<u32>,
    /// Set when base_seq came from a SYN.
    syn_seq: Option<u32>,
    /// Wireshark's `base_seq` for this direction: the SYN's sequence number, else the first
    /// sequence number seen minus one, else the peer's first acknowledgement minus one. A
    /// later SYN with another sequence number starts a new `tcp.stream`.
    wireshark_base: Option<u32>,
    next_offset: u64,
    /// Out-of-order segments by stream offset (a map: inserting and taking the first are
    /// logarithmic, so segments arriving in reverse cannot make reassembly quadratic).
    pending: BTreeMap<u64, Pending>,
    pending_bytes: usize,
    fin_offset: Option<u64>,
    fin_delivered: bool,
    rst_delivered: bool,
    anomalies: Anomalies,
    teardown: Teardown,
    packets: u64,
    /// Payload bytes on the wire, retransmissions included.
    wire_bytes: u64,
}

/// A RST further ahead of the expected sequence number than this is not believed.
const RST_WINDOW: u64 = 1 << 20;

/// Acknowledgements further ahead than this are not believed as proof of capture loss.
const MAX_ACK_JUMP: u64 = 64 << 20;

impl Reassembler {
    /// Stream offset of a sequence number, relative to where the stream is now.
    fn offset_of(&self, seq: u32) -> Option<u64> {
        let base = self.base_seq?;
        let expected = base.wrapping_add(self.next_offset as u32);
        let delta = i64::from(seq.wrapping_sub(expected) as i32);
        let offset = self.next_offset as i64 + delta;
        // Sequence numbers from before the stream began belong to nothing here.
        u64::try_from(offset).ok()
    }

    fn deliver<'a>(
        &mut self,
        offset: u64,
        data: &'a [u8],
        missing: u32,
        mut emit: impl FnMut(StreamEvent<'a>),
    ) {
        let end = offset + data.len() as u64 + u64::from(missing);
        if end <= self.next_offset {
            if end > offset {
                self.anomalies.retransmissions += 1;
            }
            return;
        }
        let skip = (self.next_offset - offset) as usize;
        if skip > 0 {
            // Overlap with bytes already delivered: the first copy wins.
            self.anomalies.retransmissions += 1;
        }
        if skip < data.len() {
            emit(StreamEvent::Data(&data[skip..]));
        }
        let delivered_to = offset + data.len() as u64;
        if end > delivered_to.max(self.next_offset) {
            let lost = end - delivered_to.max(self.next_offset);
            self.record_gap(lost);
            emit(StreamEvent::Gap(lost));
        }
        self.next_offset = end;
    }

    fn record_gap(&mut self, bytes: u64) {
        self.anomalies.gaps += 1;
        self.anomalies.gap_bytes += bytes;
    }

    /// Delivers buffered segments that have become contiguous.
    fn drain(&mut self, emit: &mut impl FnMut(StreamEvent<'_>)) {
        while let Some(entry) = self.pending.first_entry() {
            if *entry.key() > self.next_offset {
                break;
            }
            let (offset, pending) = entry.remove_entry();
            self.pending_bytes -= pending.cost();
            self.deliver(offset, &pending.data, pending.missing, &mut *emit);
        }
    }

    /// Gives up the hole before the first buffered segment, then delivers what follows.
    fn skip_to_first_pending(&mut self, emit: &mut impl FnMut(StreamEvent<'_>)) {
        if let Some(first_offset) = self.pending.first_key_value().map(|(offset, _)| *offset) {
            let lost = first_offset.saturating_sub(self.next_offset);
            if lost > 0 {
                self.record_gap(lost);
                emit(StreamEvent::Gap(lost));
                self.next_offset = first_offset;
            }
        }
        self.drain(emit);
    }

    /// Treats everything before `offset` as seen: buffered bytes are delivered, holes become gaps.
    fn advance_to(&mut self, offset: u64, emit: &mut impl FnMut(StreamEvent<'_>)) {
        while self.next_offset < offset {
            match self.pending.first_key_value() {
                Some((first, _)) if *first < offset => self.skip_to_first_pending(emit),
                _ => {
                    let lost = offset - self.next_offset;
                    self.record_gap(lost);
                    emit(StreamEvent::Gap(lost));
                    self.next_offset = offset;
                }
            }
        }
        self.drain(emit);
        self.deliver_fin_if_reached(emit);
    }

    fn deliver_fin_if_reached(&mut self, emit: &mut impl FnMut(StreamEvent<'_>)) {
        if !self.fin_delivered && self.fin_offset.is_some_and(|fin| fin <= self.next_offset) {
            self.fin_delivered = true;
            emit(StreamEvent::Fin);
        }
    }

    /// End of the stream as far as the capture goes: everything buffered is delivered.
    fn flush(&mut self, emit: &mut impl FnMut(StreamEvent<'_>)) {
        while !self.pending.is_empty() {
            self.skip_to_first_pending(emit);
        }
        if let Some(fin) = self.fin_offset {
            self.advance_to(fin, emit);
        }
    }

    fn buffer(&mut self, offset: u64, data: &[u8], missing: u32, limit: usize) -> bool {
        let pending = Pending {
            data: data.into(),
            missing,
        };
        if let Some(existing) = self.pending.get(&offset)
            && existing.end(offset) >= pending.end(offset)
        {
            self.anomalies.retransmissions += 1;
            return true;
        }
        let replaced = self.pending.get(&offset).map_or(0, Pending::cost);
        if self.pending_bytes - replaced + pending.cost() > limit {
            return false;
        }
        self.pending_bytes = self.pending_bytes - replaced + pending.cost();
        self.pending.insert(offset, pending);
        true
    }
}

/// A TCP connection: endpoints, identity, handshake and teardown, and two reassemblers.
pub struct TcpConnection {
    /// `endpoints[0]` sent the first packet seen; `endpoints[1]` received it.
    pub endpoints: [SocketAddr; 2],
    /// Wireshark's `tcp.stream` number.
    pub stream: u64,
    pub client: Option<(Dir, ClientBy)>,
    pub first_ts: u64,
    pub last_ts: u64,
    pub syn_ts: Option<u64>,
    pub synack_ts: Option<u64>,
    halves: [Reassembler; 2],
    /// Bytes of out-of-order data one direction may hold before giving up a hole.
    buffer_limit: usize,
}

impl TcpConnection {
    pub fn new(first: &Segment<'_>, stream: u64, buffer_limit: usize) -> TcpConnection {
        let client = match (first.flags.syn(), first.flags.ack()) {
            (true, false) => Some((Dir::A, ClientBy::Syn)),
            (true, true) => Some((Dir::B, ClientBy::SynAck)),
            _ => None,
        };
        TcpConnection {
            endpoints: [first.src, first.dst],
            stream,
            client,
            first_ts: first.ts_ns,
            last_ts: first.ts_ns,
            syn_ts: None,
            synack_ts: None,
            halves: Default::default(),
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
        let half = &self.halves[self.direction_of(segment).index()];
        half.wireshark_base.is_some_and(|base| base != segment.seq)
    }

    pub fn anomalies(&self, dir: Dir) -> Anomalies {
        self.halves[dir.index()].anomalies
    }

    pub fn teardown(&self, dir: Dir) -> Teardown {
        self.halves[dir.index()].teardown
    }

    pub fn packets(&self, dir: Dir) -> u64 {
        self.halves[dir.index()].packets
    }

    /// Payload bytes each direction put on the wire (retransmissions included).
    pub fn wire_bytes(&self, dir: Dir) -> u64 {
        self.halves[dir.index()].wire_bytes
    }

    /// Both directions have delivered their FIN, or a RST ended the connection.
    pub fn is_closed(&self) -> bool {
        let [a, b] = &self.halves;
        (a.fin_delivered && b.fin_delivered) || a.rst_delivered || b.rst_delivered
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
            }
            if self.client.is_none_or(|(_, by)| by != ClientBy::Syn) {
                let client = if flags.ack() { dir.opposite() } else { dir };
                let by = if flags.ack() {
                    ClientBy::SynAck
                } else {
                    ClientBy::Syn
                };
                self.client = Some((client, by));
            }
        }

        // Data this segment acknowledges but the capture never held is capture loss.
        if flags.ack() && !flags.rst() {
            let other = &mut self.halves[dir.opposite().index()];
            if let Some(acked) = other.offset_of(segment.ack) {
                let slack = if other.fin_offset.is_some() { 0 } else { 1 };
                if acked > other.next_offset + slack && acked - other.next_offset < MAX_ACK_JUMP {
                    let target = other.fin_offset.map_or(acked, |fin| acked.min(fin));
                    other.advance_to(target, &mut |event| emit(dir.opposite(), event));
                }
            }
        }

        if self.halves[dir.index()].wireshark_base.is_none() {
            let base = if flags.syn() {
                segment.seq
            } else {
                segment.seq.wrapping_sub(1)
            };
            self.halves[dir.index()].wireshark_base = Some(base);
        }
        let other = &mut self.halves[dir.opposite().index()];
        if other.wireshark_base.is_none() && flags.ack() {
            other.wireshark_base = Some(segment.ack.wrapping_sub(1));
        }

        let half = &mut self.halves[dir.index()];
        half.packets += 1;
        half.wire_bytes += segment.payload.len() as u64 + u64::from(segment.missing);
        if flags.syn() {
            if half.syn_seq == Some(segment.seq) {
                half.anomalies.retransmissions += 1;
            }
            if half.syn_seq.is_none() && half.next_offset == 0 && half.pending.is_empty() {
                half.syn_seq = Some(segment.seq);
                half.base_seq = Some(segment.seq.wrapping_add(1));
            }
        }
        if half.base_seq.is_none() {
            half.base_seq = Some(segment.seq);
        }
        // Data on a SYN (TCP Fast Open) starts after the SYN's own sequence number.
        let data_seq = if flags.syn() {
            segment.seq.wrapping_add(1)
        } else {
            segment.seq
        };
        let offset = half.offset_of(data_seq);
        let mut emit_here = |event: StreamEvent<'_>| emit(dir, event);
        if flags.rst() {
            half.teardown.rsts += 1;
            half.teardown.rst_ts.get_or_insert(segment.ts_ns);
            // RFC 5961: only a RST near the expected sequence number ends a connection; a
            // blind or injected one far off is counted and otherwise ignored.
            let plausible = offset.is_some_and(|at| {
                at + 1 >= half.next_offset && at <= half.next_offset + RST_WINDOW
            });
            if !plausible {
                half.anomalies.ignored_rsts += 1;
                return false;
            }
            if !half.rst_delivered {
                half.flush(&mut emit_here);
                half.rst_delivered = true;
                emit_here(StreamEvent::Rst);
            }
            return true;
        }
        let Some(offset) = offset else {
            if !segment.payload.is_empty() {
                half.anomalies.retransmissions += 1;
            }
            return true;
        };
        let length = segment.payload.len() as u64 + u64::from(segment.missing);
        if length > 0 {
            if offset <= half.next_offset {
                half.deliver(offset, segment.payload, segment.missing, &mut emit_here);
                half.drain(&mut emit_here);
            } else {
                half.anomalies.out_of_order += 1;
                let limit = self.buffer_limit;
                while !half.buffer(offset, segment.payload, segment.missing, limit) {
                    if half.pending.is_empty() {
                        // Larger than the whole buffer: give up the hole and take it now.
                        half.anomalies.buffer_overflows += 1;
                        half.advance_to(offset, &mut emit_here);
                        half.deliver(offset, segment.payload, segment.missing, &mut emit_here);
                        break;
                    }
                    half.anomalies.buffer_overflows += 1;
                    half.skip_to_first_pending(&mut emit_here);
                }
                half.drain(&mut emit_here);
            }
        }
        if flags.fin() {
            half.teardown.fins += 1;
            half.teardown.fin_ts.get_or_insert(segment.ts_ns);
            let fin_at = offset + length;
            if half.fin_offset.is_none_or(|known| fin_at < known) {
                half.fin_offset = Some(fin_at);
            }
        }
        half.deliver_fin_if_reached(&mut emit_here);
        true
    }

    /// Decides the client from the HTTP bytes when the handshake did not.
    pub fn learn_client(&mut self, client: Dir) {
        if self.client.is_none() {
            self.client = Some((client, ClientBy::Http));
        }
    }

    /// The client side, falling back to the higher port when nothing else told.
    pub fn client_or_guess(&self) -> (Dir, ClientBy) {
        self.client.unwrap_or_else(|| {
            let dir = if self.endpoints[0].port() >= self.endpoints[1].port() {
                Dir::A
            } else {
                Dir::B
            };
            (dir, ClientBy::Port)
        })
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
            half.pending = BTreeMap::new();
            half.pending_bytes = 0;
        }
    }

    /// Memory held by out-of-order buffers, for the memory budget.
    pub fn buffered_bytes(&self) -> usize {
        self.halves.iter().map(|h| h.pending_bytes).sum()
    }
}
