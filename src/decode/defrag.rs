//! IP fragments put back together — IPv4's, and IPv6's Fragment header — as the receiving
//! host would, and as Wireshark does (`ip.defragment`, on by default), so that a TCP segment
//! (or a tunnel packet carrying one) sent in fragments is analysed whole. Fragments are
//! copied here until their datagram is complete: the one place besides out-of-order TCP
//! segments and split heads where payload is copied.
//!
//! A datagram is complete when its last fragment (more-fragments flag clear) has come and
//! every byte before it. Fragments that overlap keep the bytes that came first (as the TCP
//! reassembly does). Bounded as Linux bounds it: datagrams wait at most 30 s of capture time
//! for their fragments (`net.ipv4.ipfrag_time`) and at most 4 MiB of fragments are held
//! (`ipfrag_high_thresh`); past that the oldest datagrams are given up. A fragment cut by
//! the snap length cannot complete its datagram. Fragments of datagrams given up (and of
//! those still incomplete at the end) are counted, never silently dropped.

use std::collections::VecDeque;
use std::net::IpAddr;

use crate::flows::WireMap;

/// Capture time a datagram waits for its missing fragments.
const WAIT_NS: u64 = 30_000_000_000;

/// Fragment bytes held at most, all datagrams together.
const MAX_HELD: usize = 4 << 20;

/// The largest datagram payload an IP header can describe (a 16-bit length, offsets in
/// 8-byte units up to 65,528).
const MAX_DATAGRAM: usize = 65_535;

/// Which datagram a fragment belongs to (RFC 791: source, destination, protocol and
/// identification; IPv6's identification is 32 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct DatagramKey {
    pub(super) src: IpAddr,
    pub(super) dst: IpAddr,
    pub(super) protocol: u8,
    pub(super) id: u32,
}

/// One fragment as its IP header describes it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Fragment<'a> {
    pub(super) key: DatagramKey,
    /// Where its bytes go in the datagram's payload.
    pub(super) offset: usize,
    /// More fragments follow (the flag): clear on the last one, which gives the length.
    pub(super) more: bool,
    /// The bytes captured.
    pub(super) data: &'a [u8],
    /// The bytes the header says it carries (more than `data` when cut by the snap length).
    pub(super) wire_len: usize,
}

/// A datagram waiting for fragments.
#[derive(Debug)]
struct Datagram {
    first_ns: u64,
    /// The payload so far; `have` says which bytes of it came.
    bytes: Vec<u8>,
    /// Byte ranges received, sorted and apart.
    have: Vec<(usize, usize)>,
    /// The payload's length, once the last fragment came.
    len: Option<usize>,
    fragments: u64,
}

impl Datagram {
    fn complete(&self) -> bool {
        self.len.is_some_and(|len| self.have == [(0, len)])
    }

    /// Copies the bytes of `[from, from + data.len())` not already there.
    fn insert(&mut self, from: usize, data: &[u8]) {
        let to = from + data.len();
        if self.bytes.len() < to {
            self.bytes.resize(to, 0);
        }
        let mut at = from;
        let mut gaps = Vec::new();
        for &(lo, hi) in &self.have {
            if hi <= at || lo >= to {
                continue;
            }
            if lo > at {
                gaps.push((at, lo));
            }
            at = at.max(hi);
        }
        if at < to {
            gaps.push((at, to));
        }
        for (lo, hi) in gaps {
            self.bytes[lo..hi].copy_from_slice(&data[lo - from..hi - from]);
        }
        self.have.push((from, to));
        self.have.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(self.have.len());
        for &(lo, hi) in &self.have {
            match merged.last_mut() {
                Some(last) if lo <= last.1 => last.1 = last.1.max(hi),
                _ => merged.push((lo, hi)),
            }
        }
        self.have = merged;
    }
}

/// The datagrams being put back together, and what became of them. Holds nothing until
/// the first fragment comes, so that it costs nothing to move.
#[derive(Debug, Default)]
pub struct Defragmenter {
    waiting: Option<Box<Waiting>>,
    /// Datagrams completed.
    pub reassembled: u64,
    /// Fragments of datagrams given up (or that could not be part of one).
    pub fragments_lost: u64,
}

#[derive(Debug, Default)]
struct Waiting {
    pending: WireMap<DatagramKey, Datagram>,
    /// The datagrams in the order their first fragment came, to give up the oldest first.
    /// An entry whose datagram completed (or whose key came again later) is passed over.
    order: VecDeque<(u64, DatagramKey)>,
    held: usize,
}

impl Defragmenter {
    /// Takes a fragment at capture time `ts_ns`: the datagram's whole payload if this one
    /// completed it.
    pub(super) fn add(&mut self, ts_ns: u64, fragment: &Fragment<'_>) -> Option<Vec<u8>> {
        let waiting: &mut Waiting = self.waiting.get_or_insert_with(Box::default);
        self.fragments_lost += waiting.give_up_stale(ts_ns);
        let end = fragment.offset + fragment.wire_len;
        if fragment.data.len() < fragment.wire_len || end > MAX_DATAGRAM {
            // Cut by the snap length, or past what an IP header can describe: this
            // fragment can never be part of a whole datagram.
            self.fragments_lost += 1;
            return None;
        }
        let datagram = waiting.pending.entry(fragment.key).or_insert_with(|| {
            waiting.order.push_back((ts_ns, fragment.key));
            Datagram {
                first_ns: ts_ns,
                bytes: Vec::new(),
                have: Vec::new(),
                len: None,
                fragments: 0,
            }
        });
        datagram.fragments += 1;
        let before = datagram.bytes.len();
        datagram.insert(fragment.offset, fragment.data);
        if !fragment.more && datagram.len.is_none() {
            datagram.len = Some(end);
        }
        waiting.held += datagram.bytes.len() - before;
        if datagram.complete() {
            let datagram = waiting.pending.remove(&fragment.key).expect("the datagram");
            waiting.held -= datagram.bytes.len();
            self.reassembled += 1;
            let mut whole = datagram.bytes;
            whole.truncate(datagram.len.expect("complete"));
            return Some(whole);
        }
        while waiting.held > MAX_HELD {
            match waiting.give_up_oldest() {
                Some(lost) => self.fragments_lost += lost,
                None => break,
            }
        }
        None
    }

    /// Bytes of fragments held (at most 4 MiB).
    pub fn held(&self) -> usize {
        self.waiting.as_ref().map_or(0, |waiting| waiting.held)
    }

    /// The end of the input: the datagrams still incomplete are counted as given up.
    pub fn finish(&mut self) {
        if let Some(waiting) = &mut self.waiting {
            while let Some(lost) = waiting.give_up_oldest() {
                self.fragments_lost += lost;
            }
        }
    }
}

impl Waiting {
    /// Gives up the datagrams whose first fragment came more than [`WAIT_NS`] ago; returns
    /// their fragments.
    fn give_up_stale(&mut self, ts_ns: u64) -> u64 {
        let mut lost = 0;
        while self
            .order
            .front()
            .is_some_and(|(first, _)| ts_ns.saturating_sub(*first) > WAIT_NS)
        {
            lost += self.give_up_oldest().unwrap_or(0);
        }
        lost
    }

    /// Gives up the oldest datagram still waiting: its fragments, or `None` if none waits.
    fn give_up_oldest(&mut self) -> Option<u64> {
        while let Some((first, key)) = self.order.pop_front() {
            // The entry is the datagram's own only if it started then.
            if self.pending.get(&key).is_some_and(|d| d.first_ns == first) {
                let datagram = self.pending.remove(&key).expect("the datagram");
                self.held -= datagram.bytes.len();
                return Some(datagram.fragments);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const KEY: DatagramKey = DatagramKey {
        src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        protocol: 6,
        id: 7,
    };

    fn payload(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 13 % 251) as u8).collect()
    }

    fn fragment(key: DatagramKey, whole: &[u8], from: usize, to: usize) -> Fragment<'_> {
        Fragment {
            key,
            offset: from,
            more: to < whole.len(),
            data: &whole[from..to],
            wire_len: to - from,
        }
    }

    /// Feeds the pieces `[from, to)` of `whole` in the order given; the datagram completed,
    /// if one was, and (datagrams reassembled, fragments lost) at the end.
    fn feed(whole: &[u8], pieces: &[(usize, usize)]) -> (Option<Vec<u8>>, (u64, u64)) {
        let mut defrag = Defragmenter::default();
        let mut done = None;
        for (n, &(from, to)) in pieces.iter().enumerate() {
            if let Some(bytes) = defrag.add(n as u64, &fragment(KEY, whole, from, to)) {
                assert!(done.is_none(), "completed twice");
                done = Some(bytes);
            }
        }
        defrag.finish();
        (done, (defrag.reassembled, defrag.fragments_lost))
    }

    #[test]
    fn fragments_in_any_order_make_the_datagram() {
        let whole = payload(3000);
        let pieces = [(0, 1480), (1480, 2960), (2960, 3000)];
        for order in [[0, 1, 2], [2, 1, 0], [1, 2, 0], [2, 0, 1]] {
            let shuffled: Vec<_> = order.iter().map(|&i| pieces[i]).collect();
            let (done, counts) = feed(&whole, &shuffled);
            assert_eq!(done.as_deref(), Some(&whole[..]), "{order:?}");
            assert_eq!(counts, (1, 0));
        }
    }

    #[test]
    fn duplicates_and_overlaps_keep_the_first_bytes() {
        let whole = payload(2000);
        let mut other = whole.clone();
        other[900..1100].fill(0xee);
        let mut defrag = Defragmenter::default();
        assert!(defrag.add(0, &fragment(KEY, &whole, 0, 1000)).is_none());
        // A later fragment overlapping the first with other bytes: the first ones stay.
        assert!(defrag.add(1, &fragment(KEY, &other, 800, 1600)).is_none());
        assert!(defrag.add(2, &fragment(KEY, &whole, 0, 1000)).is_none());
        let done = defrag.add(3, &fragment(KEY, &other, 1500, 2000));
        let mut expected = whole.clone();
        expected[1000..1100].fill(0xee);
        assert_eq!(done, Some(expected));
    }

    #[test]
    fn a_missing_fragment_is_counted_after_the_wait_and_at_the_end() {
        let whole = payload(3000);
        let (done, counts) = feed(&whole, &[(0, 1480), (2960, 3000)]);
        assert!(done.is_none());
        assert_eq!(counts, (0, 2));

        // The same key 31 s later starts a new datagram; the old one is given up then.
        let mut defrag = Defragmenter::default();
        defrag.add(0, &fragment(KEY, &whole, 0, 1480));
        assert_eq!(defrag.fragments_lost, 0);
        let later = WAIT_NS + 1_000_000_000;
        defrag.add(later, &fragment(KEY, &whole, 1480, 2960));
        assert_eq!(defrag.fragments_lost, 1);
        assert!(defrag.add(later, &fragment(KEY, &whole, 0, 1480)).is_none());
        let done = defrag.add(later, &fragment(KEY, &whole, 2960, 3000));
        assert_eq!(done, Some(whole));
    }

    #[test]
    fn at_most_the_bound_is_held() {
        let whole = payload(MAX_DATAGRAM);
        let mut defrag = Defragmenter::default();
        // First fragments of many datagrams that never complete.
        for id in 0..200u32 {
            let key = DatagramKey { id, ..KEY };
            defrag.add(u64::from(id), &fragment(key, &whole, 0, 60_000));
            let held = defrag.waiting.as_ref().map_or(0, |w| w.held);
            assert!(held <= MAX_HELD + 60_000, "{held} held");
        }
        assert!(defrag.fragments_lost >= 200 - (MAX_HELD / 60_000) as u64);
        defrag.finish();
        assert_eq!(defrag.fragments_lost, 200);
        assert_eq!(defrag.waiting.as_ref().map(|w| w.held), Some(0));
    }

    #[test]
    fn a_cut_or_oversized_fragment_cannot_complete() {
        let whole = payload(3000);
        let mut defrag = Defragmenter::default();
        let mut cut = fragment(KEY, &whole, 1480, 2960);
        cut.data = &cut.data[..100];
        assert!(defrag.add(0, &cut).is_none());
        let mut huge = fragment(KEY, &whole, 2960, 3000);
        huge.offset = MAX_DATAGRAM;
        assert!(defrag.add(1, &huge).is_none());
        assert_eq!(defrag.fragments_lost, 2);
        assert!(
            defrag
                .waiting
                .as_ref()
                .is_some_and(|w| w.pending.is_empty())
        );
    }
}
