//! One direction of a TCP connection: where its stream starts and ends, and the reassembly
//! of its segments into an ordered byte stream.
//!
//! Positions in the stream are 64-bit offsets; [`SeqNumber::offset_near`] maps sequence
//! numbers onto them. `next_offset` is the stream's end so far (RFC 793's RCV.NXT, at
//! sequence number `base + next_offset`): every byte before it has been handed on as data or
//! given up as a gap.
//!
//! In-order payload is handed on as a slice of the captured segment (no copy). Only segments
//! that arrive ahead of a hole are copied, into a buffer bounded per direction; when the bound
//! is hit, or the peer acknowledges bytes the capture never held, the hole is given up as a
//! [`StreamEvent::Gap`] and the stream goes on after it. Bytes the source shed on purpose
//! (`Segment::shed`) are handed on as [`StreamEvent::Skipped`] instead: known, not lost.

use std::collections::BTreeMap;

use super::seq::SeqNumber;
use super::{Anomalies, StreamEvent, Teardown};
use crate::decode::Segment;

/// Where stream offset 0 lies in this direction's sequence space.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Anchor {
    /// No segment seen in this direction: no sequence number has an offset yet.
    #[default]
    Unseen,
    /// No SYN before the first byte (the capture began mid-connection): offset 0 is at
    /// `base`, the first sequence number seen.
    Midstream { base: SeqNumber },
    /// A SYN at `base - 1` began the stream: the SYN takes one sequence number, so offset 0
    /// is at `base`.
    Syn { base: SeqNumber },
}

impl Anchor {
    /// Sequence number of stream offset 0.
    fn base(self) -> Option<SeqNumber> {
        match self {
            Anchor::Unseen => None,
            Anchor::Midstream { base } | Anchor::Syn { base } => Some(base),
        }
    }
}

/// How far this direction got towards its FIN, in stream offsets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Fin {
    #[default]
    NotSeen,
    /// A FIN takes the sequence number at offset `at`; the stream has not got there yet
    /// (`at > next_offset` between segments), so bytes are still missing before it.
    Ahead { at: u64 },
    /// The stream reached the FIN at offset `at` and [`StreamEvent::Fin`] was handed on.
    Delivered { at: u64 },
}

impl Fin {
    fn at(self) -> Option<u64> {
        match self {
            Fin::NotSeen => None,
            Fin::Ahead { at } | Fin::Delivered { at } => Some(at),
        }
    }
}

struct Pending {
    data: Box<[u8]>,
    missing: u32,
    shed: bool,
}

impl Pending {
    fn end(&self, offset: u64) -> u64 {
        offset + self.data.len() as u64 + u64::from(self.missing)
    }

    fn cost(&self) -> usize {
        cost_of(self.data.len())
    }
}

/// What the buffer bound charges for a segment of `len` captured bytes: its bytes and its
/// bookkeeping, so that a flood of one-byte segments is bounded as tightly as a few large ones.
fn cost_of(len: usize) -> usize {
    len + PENDING_OVERHEAD
}

/// Bookkeeping per buffered segment: the map node, the allocation and its header.
const PENDING_OVERHEAD: usize = 64;

/// A RST further ahead of the expected sequence number than this is not believed.
const RST_WINDOW: u64 = 1 << 20;

/// Acknowledgements further ahead than this are not believed as proof of capture loss.
const MAX_ACK_JUMP: u64 = 64 << 20;

/// One direction's stream: its state, its out-of-order buffer and its counters.
#[derive(Default)]
pub(super) struct Reassembler {
    anchor: Anchor,
    fin: Fin,
    /// A believed RST was handed on. Segments after it are still reassembled and a later
    /// FIN still delivered, so this is a flag beside `fin` rather than a state of it.
    reset: bool,
    /// The stream's end so far, RCV.NXT: every byte before it was handed on or given up.
    next_offset: u64,
    /// Segments that start after `next_offset` (a hole before each), by stream offset. A
    /// map: inserting and taking the first are logarithmic, so segments arriving in reverse
    /// cannot make reassembly quadratic.
    pending: BTreeMap<u64, Pending>,
    pending_bytes: usize,
    pub(super) anomalies: Anomalies,
    pub(super) teardown: Teardown,
    pub(super) packets: u64,
    /// Payload bytes on the wire, retransmissions included.
    pub(super) wire_bytes: u64,
    /// Payload bytes that reached user space (what the snaplen kept, or what `--ebpf` did
    /// not shed), retransmissions included.
    pub(super) captured_bytes: u64,
}

impl Reassembler {
    /// Takes one segment sent in this direction. Returns false for a RST ignored as out of
    /// window.
    pub(super) fn on_segment(
        &mut self,
        segment: &Segment<'_>,
        buffer_limit: usize,
        mut emit: impl FnMut(StreamEvent<'_>),
    ) -> bool {
        let flags = segment.flags;
        let seq = SeqNumber::from(segment.seq);
        self.packets += 1;
        self.wire_bytes += segment.payload.len() as u64 + u64::from(segment.missing);
        self.captured_bytes += segment.payload.len() as u64;
        self.anchor_at(seq, flags.syn());
        // Data on a SYN (TCP Fast Open) starts after the SYN's own sequence number.
        let data_seq = if flags.syn() { seq + 1 } else { seq };
        let offset = self.offset_of(data_seq);
        if flags.rst() {
            return self.on_rst(offset, segment.ts_ns, &mut emit);
        }
        let Some(offset) = offset else {
            // From before the stream began: an old retransmission.
            if !segment.payload.is_empty() {
                self.anomalies.retransmissions += 1;
            }
            return true;
        };
        let length = segment.payload.len() as u64 + u64::from(segment.missing);
        if length > 0 {
            self.take_payload(offset, segment, buffer_limit, &mut emit);
        }
        if flags.fin() {
            self.teardown.fins += 1;
            self.teardown.fin_ts.get_or_insert(segment.ts_ns);
            self.fin_at(offset + length);
        }
        self.deliver_fin_if_reached(&mut emit);
        true
    }

    /// The peer acknowledged everything before `ack`. Bytes it acknowledges that the
    /// capture never held were lost by the capture: the stream gives them up as a gap.
    pub(super) fn on_peer_ack(&mut self, ack: SeqNumber, mut emit: impl FnMut(StreamEvent<'_>)) {
        let Some(acked) = self.offset_of(ack) else {
            return;
        };
        let fin = self.fin.at();
        // With no FIN seen, one past the stream's end may acknowledge a FIN the capture
        // missed rather than a byte.
        let slack = if fin.is_some() { 0 } else { 1 };
        if acked > self.next_offset + slack && acked - self.next_offset < MAX_ACK_JUMP {
            // Past its FIN the stream has no bytes to lose.
            let target = fin.map_or(acked, |fin| acked.min(fin));
            self.advance_to(target, &mut emit);
        }
    }

    /// End of the stream as far as the capture goes: everything buffered is delivered, and
    /// the holes before a known FIN are given up.
    pub(super) fn flush(&mut self, emit: &mut impl FnMut(StreamEvent<'_>)) {
        while !self.pending.is_empty() {
            self.skip_to_first_pending(emit);
        }
        if let Some(fin) = self.fin.at() {
            self.advance_to(fin, emit);
        }
    }

    pub(super) fn fin_delivered(&self) -> bool {
        matches!(self.fin, Fin::Delivered { .. })
    }

    pub(super) fn reset(&self) -> bool {
        self.reset
    }

    pub(super) fn release_buffers(&mut self) {
        self.pending = BTreeMap::new();
        self.pending_bytes = 0;
    }

    pub(super) fn buffered_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// The stream's end so far as a stream offset and the sequence number it is at; `None`
    /// before the stream has an anchor.
    pub(super) fn end(&self) -> Option<(u64, SeqNumber)> {
        let base = self.anchor.base()?;
        // Truncating the offset reduces it modulo 2^32, as the sequence space does.
        Some((self.next_offset, base + self.next_offset as u32))
    }

    /// Where offset 0 is, after a segment at `seq`.
    fn anchor_at(&mut self, seq: SeqNumber, syn: bool) {
        match self.anchor {
            // A SYN tells where the stream starts, as long as no byte was counted from
            // elsewhere: the first segment seen may have been a bare ACK, FIN or RST.
            Anchor::Unseen | Anchor::Midstream { .. }
                if syn && self.next_offset == 0 && self.pending.is_empty() =>
            {
                self.anchor = Anchor::Syn { base: seq + 1 };
            }
            // The capture began mid-connection: count from the first sequence number seen.
            Anchor::Unseen => self.anchor = Anchor::Midstream { base: seq },
            // The SYN that began the stream, again.
            Anchor::Syn { base } if syn && seq + 1 == base => self.anomalies.retransmissions += 1,
            // Not a SYN; a SYN after bytes were counted from another start; or a SYN(-ACK)
            // with another sequence number (in the pipeline a SYN without ACK that reuses the
            // port is split off into a new connection first: see `is_reused_by`). The
            // stream stays put.
            Anchor::Midstream { .. } | Anchor::Syn { .. } => {}
        }
    }

    /// A FIN takes the sequence number at offset `at`.
    fn fin_at(&mut self, at: u64) {
        self.fin = match self.fin {
            // The first FIN.
            Fin::NotSeen => Fin::Ahead { at },
            // A FIN earlier in the stream than the one known: the earliest ends the stream.
            Fin::Ahead { at: known } if at < known => Fin::Ahead { at },
            // Likewise once delivered; `Fin` is not handed on twice.
            Fin::Delivered { at: known } if at < known => Fin::Delivered { at },
            // A retransmitted FIN, or one past the FIN known.
            fin => fin,
        };
    }

    fn deliver_fin_if_reached(&mut self, emit: &mut impl FnMut(StreamEvent<'_>)) {
        match self.fin {
            // Every byte before the FIN has been handed on (or given up).
            Fin::Ahead { at } if at <= self.next_offset => {
                self.fin = Fin::Delivered { at };
                emit(StreamEvent::Fin);
            }
            // No FIN, a FIN still ahead, or one already handed on.
            Fin::NotSeen | Fin::Ahead { .. } | Fin::Delivered { .. } => {}
        }
    }

    /// A RST whose data would start at `offset`.
    fn on_rst(
        &mut self,
        offset: Option<u64>,
        ts_ns: u64,
        emit: &mut impl FnMut(StreamEvent<'_>),
    ) -> bool {
        self.teardown.rsts += 1;
        self.teardown.rst_ts.get_or_insert(ts_ns);
        // RFC 5961: only a RST near the expected sequence number ends a connection (from
        // RCV.NXT - 1 to RST_WINDOW past it); a blind or injected one far off is counted and
        // otherwise ignored.
        let plausible = offset
            .is_some_and(|at| at + 1 >= self.next_offset && at <= self.next_offset + RST_WINDOW);
        if !plausible {
            self.anomalies.ignored_rsts += 1;
            return false;
        }
        if !self.reset {
            // What is held comes out before the RST: nothing more is coming to fill holes.
            self.flush(emit);
            self.reset = true;
            emit(StreamEvent::Rst);
        }
        true
    }

    /// Stream offset of a sequence number, relative to where the stream is now; `None`
    /// before the stream has an anchor or before its offset 0.
    fn offset_of(&self, seq: SeqNumber) -> Option<u64> {
        seq.offset_near(self.anchor.base()?, self.next_offset)
    }

    /// A segment of at least one byte at `offset`: handed on if it starts at or before the
    /// stream's end, else buffered until the hole before it fills or is given up.
    fn take_payload(
        &mut self,
        offset: u64,
        segment: &Segment<'_>,
        limit: usize,
        emit: &mut impl FnMut(StreamEvent<'_>),
    ) {
        let (data, missing, shed) = (segment.payload, segment.missing, segment.shed);
        if offset <= self.next_offset {
            self.deliver(offset, data, missing, shed, &mut *emit);
            self.drain(emit);
            return;
        }
        self.anomalies.out_of_order += 1;
        while !self.buffer(offset, segment, limit) {
            self.anomalies.buffer_overflows += 1;
            if self.pending.is_empty() {
                // Larger than the whole buffer: give up the hole and take it now.
                self.advance_to(offset, emit);
                self.deliver(offset, data, missing, shed, &mut *emit);
                break;
            }
            // Make room: the hole before the oldest buffered bytes is given up first.
            self.skip_to_first_pending(emit);
        }
        self.drain(emit);
    }

    /// Hands on a segment of at least one byte that starts at or before the stream's end;
    /// only the bytes past the end are new. Its `missing` bytes are a gap, or skipped when
    /// they were `shed`.
    fn deliver<'a>(
        &mut self,
        offset: u64,
        data: &'a [u8],
        missing: u32,
        shed: bool,
        mut emit: impl FnMut(StreamEvent<'a>),
    ) {
        let end = offset + data.len() as u64 + u64::from(missing);
        debug_assert!(offset <= self.next_offset && end > offset);
        if end <= self.next_offset {
            self.anomalies.retransmissions += 1;
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
            // The segment's bytes the capture cut off (snaplen), or shed on purpose.
            let cut = end - delivered_to.max(self.next_offset);
            if shed {
                emit(StreamEvent::Skipped(cut));
            } else {
                self.record_gap(cut);
                emit(StreamEvent::Gap(cut));
            }
        }
        self.next_offset = end;
    }

    fn record_gap(&mut self, bytes: u64) {
        self.anomalies.gaps += 1;
        self.anomalies.gap_bytes += bytes;
    }

    /// Gives up the bytes from the stream's end to `offset` as a gap.
    fn give_up_hole_to(&mut self, offset: u64, emit: &mut impl FnMut(StreamEvent<'_>)) {
        let lost = offset - self.next_offset;
        self.record_gap(lost);
        emit(StreamEvent::Gap(lost));
        self.next_offset = offset;
    }

    /// Delivers buffered segments that have become contiguous.
    fn drain(&mut self, emit: &mut impl FnMut(StreamEvent<'_>)) {
        while let Some(entry) = self.pending.first_entry() {
            if *entry.key() > self.next_offset {
                break;
            }
            let (offset, pending) = entry.remove_entry();
            self.pending_bytes -= pending.cost();
            let (missing, shed) = (pending.missing, pending.shed);
            self.deliver(offset, &pending.data, missing, shed, &mut *emit);
        }
    }

    /// Gives up the hole before the first buffered segment, then delivers what follows.
    fn skip_to_first_pending(&mut self, emit: &mut impl FnMut(StreamEvent<'_>)) {
        if let Some(first) = self.pending.first_key_value().map(|(offset, _)| *offset)
            && first > self.next_offset
        {
            self.give_up_hole_to(first, emit);
        }
        self.drain(emit);
    }

    /// Treats everything before `offset` as seen: buffered bytes are delivered, holes become gaps.
    fn advance_to(&mut self, offset: u64, emit: &mut impl FnMut(StreamEvent<'_>)) {
        while self.next_offset < offset {
            match self.pending.first_key_value() {
                Some((first, _)) if *first < offset => self.skip_to_first_pending(emit),
                _ => self.give_up_hole_to(offset, emit),
            }
        }
        self.drain(emit);
        self.deliver_fin_if_reached(emit);
    }

    /// Buffers a segment that starts after the stream's end. False when that would take the
    /// buffer past `limit`; a segment no longer than one already buffered at its offset is a
    /// retransmission and is not kept twice.
    fn buffer(&mut self, offset: u64, segment: &Segment<'_>, limit: usize) -> bool {
        let (data, missing) = (segment.payload, segment.missing);
        let end = offset + data.len() as u64 + u64::from(missing);
        let existing = self.pending.get(&offset);
        if existing.is_some_and(|existing| existing.end(offset) >= end) {
            self.anomalies.retransmissions += 1;
            return true;
        }
        let replaced = existing.map_or(0, Pending::cost);
        let held = self.pending_bytes - replaced + cost_of(data.len());
        if held > limit {
            return false;
        }
        // Copied only now that it is kept: not for a duplicate, nor for each try to fit.
        self.pending_bytes = held;
        let pending = Pending {
            data: data.into(),
            missing,
            shed: segment.shed,
        };
        self.pending.insert(offset, pending);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::super::Dir;
    use super::super::testing::{Event, data, segment};
    use super::*;
    use crate::decode::Flags;

    const LIMIT: usize = 1 << 20;

    fn feed(half: &mut Reassembler, seq: u32, flags: u8, payload: &[u8]) -> Vec<Event> {
        let mut events = Vec::new();
        let segment = segment(Dir::A, seq, None, flags, payload);
        half.on_segment(&segment, LIMIT, |event| events.push(event.into()));
        events
    }

    fn after_syn(seq: u32) -> Reassembler {
        let mut half = Reassembler::default();
        assert_eq!(feed(&mut half, seq, Flags::SYN, b""), []);
        half
    }

    fn seq(n: u32) -> SeqNumber {
        SeqNumber::from(n)
    }

    /// A segment of `length` payload bytes at `seq` that the source shed.
    fn feed_shed(half: &mut Reassembler, seq: u32, length: u32) -> Vec<Event> {
        let mut events = Vec::new();
        let segment = Segment {
            missing: length,
            shed: true,
            ..segment(Dir::A, seq, None, 0, b"")
        };
        half.on_segment(&segment, LIMIT, |event| events.push(event.into()));
        events
    }

    #[test]
    fn shed_payload_is_skipped_in_stream_order_and_never_a_gap() {
        let mut half = after_syn(0);
        feed(&mut half, 1, 0, b"head");
        assert_eq!(feed_shed(&mut half, 5, 100), [Event::Skipped(100)]);
        // Ahead of a hole: held until the hole fills, with a shed segment too.
        assert_eq!(feed_shed(&mut half, 205, 50), []);
        assert_eq!(
            feed_shed(&mut half, 105, 100),
            [Event::Skipped(100), Event::Skipped(50)]
        );
        // A shed retransmission of bytes already handed on adds nothing.
        assert_eq!(feed_shed(&mut half, 150, 20), []);
        assert_eq!((half.anomalies.gaps, half.anomalies.out_of_order), (0, 1));
        assert_eq!((half.captured_bytes, half.wire_bytes), (4, 274));
        assert_eq!(half.end(), Some((254, seq(255))));
    }

    #[test]
    fn a_syn_puts_offset_0_after_its_own_sequence_number() {
        let mut half = after_syn(100);
        assert_eq!(half.anchor, Anchor::Syn { base: seq(101) });
        assert_eq!(feed(&mut half, 101, 0, b"ab"), [data(b"ab")]);
        assert_eq!(half.next_offset, 2);
    }

    #[test]
    fn a_retransmitted_syn_is_counted_and_another_syn_moves_nothing() {
        let mut half = after_syn(100);
        feed(&mut half, 100, Flags::SYN, b"");
        assert_eq!(half.anomalies.retransmissions, 1);
        feed(&mut half, 7, Flags::SYN, b"");
        assert_eq!(half.anchor, Anchor::Syn { base: seq(101) });
        assert_eq!(half.anomalies.retransmissions, 1);
    }

    #[test]
    fn without_a_syn_offset_0_is_the_first_sequence_number_seen() {
        let mut half = Reassembler::default();
        assert_eq!(half.anchor, Anchor::Unseen);
        assert_eq!(feed(&mut half, 5000, 0, b"abc"), [data(b"abc")]);
        assert_eq!(half.anchor, Anchor::Midstream { base: seq(5000) });
        // A SYN once bytes were counted from elsewhere does not move the stream.
        feed(&mut half, 41, Flags::SYN, b"");
        assert_eq!(half.anchor, Anchor::Midstream { base: seq(5000) });
    }

    #[test]
    fn a_syn_after_a_bare_segment_but_before_any_byte_anchors_the_stream() {
        let mut half = Reassembler::default();
        feed(&mut half, 5000, 0, b"");
        assert_eq!(half.anchor, Anchor::Midstream { base: seq(5000) });
        feed(&mut half, 41, Flags::SYN, b"");
        assert_eq!(half.anchor, Anchor::Syn { base: seq(42) });
        assert_eq!(feed(&mut half, 42, 0, b"x"), [data(b"x")]);
    }

    #[test]
    fn the_fin_is_delivered_only_when_the_stream_reaches_its_sequence_number() {
        let mut half = after_syn(0);
        assert_eq!(feed(&mut half, 11, Flags::FIN, b""), []);
        assert_eq!(half.fin, Fin::Ahead { at: 10 });
        assert_eq!(feed(&mut half, 1, 0, b"hello"), [data(b"hello")]);
        assert_eq!(half.fin, Fin::Ahead { at: 10 });
        assert_eq!(
            feed(&mut half, 6, 0, b"world"),
            [data(b"world"), Event::Fin]
        );
        assert_eq!(half.fin, Fin::Delivered { at: 10 });
        // Retransmitted: counted, not handed on again.
        assert_eq!(feed(&mut half, 11, Flags::FIN, b""), []);
        assert_eq!(half.teardown.fins, 2);
        assert!(half.fin_delivered());
    }

    #[test]
    fn the_earliest_fin_ends_the_stream() {
        let mut half = after_syn(0);
        feed(&mut half, 11, Flags::FIN, b"");
        feed(&mut half, 5, Flags::FIN, b"");
        assert_eq!(half.fin, Fin::Ahead { at: 4 });
        assert_eq!(feed(&mut half, 1, 0, b"abcd"), [data(b"abcd"), Event::Fin]);
        feed(&mut half, 3, Flags::FIN, b"");
        assert_eq!(half.fin, Fin::Delivered { at: 2 });
    }

    #[test]
    fn a_believed_rst_hands_on_what_is_held_then_itself_once() {
        let mut half = after_syn(0);
        assert_eq!(feed(&mut half, 6, 0, b"world"), []);
        assert_eq!(half.anomalies.out_of_order, 1);
        let events = feed(&mut half, 1, Flags::RST, b"");
        assert_eq!(events, [Event::Gap(5), data(b"world"), Event::Rst]);
        assert!(half.reset());
        assert_eq!(feed(&mut half, 11, Flags::RST, b""), []);
        assert_eq!(half.teardown.rsts, 2);
        assert_eq!(half.anomalies.ignored_rsts, 0);
    }

    #[test]
    fn a_rst_is_believed_from_one_before_the_stream_end_to_the_window_past_it() {
        let mut half = after_syn(0);
        feed(&mut half, 1, 0, b"abc");
        let mut rst = |seq: u32| {
            let segment = segment(Dir::A, seq, None, Flags::RST, b"");
            half.on_segment(&segment, LIMIT, |_| {})
        };
        // The stream's end is at sequence number 4.
        assert!(!rst(2));
        assert!(!rst(4 + RST_WINDOW as u32 + 1));
        assert!(rst(3));
        assert_eq!(half.anomalies.ignored_rsts, 2);
    }

    #[test]
    fn bytes_across_2_to_the_32_stay_in_order() {
        let mut half = after_syn(u32::MAX - 1);
        assert_eq!(
            half.anchor,
            Anchor::Syn {
                base: seq(u32::MAX)
            }
        );
        // "def" at 2 arrives before "abc" at 2^32 - 1 (which takes 2^32 - 1, 0 and 1).
        assert_eq!(feed(&mut half, 2, 0, b"def"), []);
        let events = feed(&mut half, u32::MAX, 0, b"abc");
        assert_eq!(events, [data(b"abc"), data(b"def")]);
        assert_eq!(feed(&mut half, 5, Flags::FIN, b""), [Event::Fin]);
        assert_eq!(half.fin, Fin::Delivered { at: 6 });
    }

    #[test]
    fn an_acknowledgement_one_past_the_stream_may_be_for_a_fin_the_capture_missed() {
        let mut half = after_syn(0);
        feed(&mut half, 1, 0, b"ab");
        half.on_peer_ack(seq(4), |event| panic!("{event:?}"));
        let mut events = Vec::new();
        half.on_peer_ack(seq(5), |event| events.push(Event::from(event)));
        assert_eq!(events, [Event::Gap(2)]);
    }

    #[test]
    fn acknowledged_bytes_the_capture_never_held_are_given_up_as_far_as_the_fin() {
        let mut half = after_syn(0);
        feed(&mut half, 1, 0, b"ab");
        feed(&mut half, 11, Flags::FIN, b"");
        let mut events = Vec::new();
        half.on_peer_ack(seq(12), |event| events.push(Event::from(event)));
        assert_eq!(events, [Event::Gap(8), Event::Fin]);
        assert_eq!(half.fin, Fin::Delivered { at: 10 });
    }
}
