//! TCP sequence numbers: 32-bit counters that wrap, compared by their signed distance.
//!
//! Wrap-around is resolved here and nowhere else: [`SeqNumber::offset_from`] is the one
//! place a difference of sequence numbers is taken, and [`SeqNumber::offset_near`] the one
//! place a sequence number becomes a 64-bit stream offset.

use std::ops::{Add, Sub};

/// A TCP sequence (or acknowledgement) number. Arithmetic wraps at 2^32, as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SeqNumber(u32);

impl From<u32> for SeqNumber {
    fn from(seq: u32) -> SeqNumber {
        SeqNumber(seq)
    }
}

impl From<SeqNumber> for u32 {
    fn from(seq: SeqNumber) -> u32 {
        seq.0
    }
}

impl Add<u32> for SeqNumber {
    type Output = SeqNumber;
    fn add(self, bytes: u32) -> SeqNumber {
        SeqNumber(self.0.wrapping_add(bytes))
    }
}

impl Sub<u32> for SeqNumber {
    type Output = SeqNumber;
    fn sub(self, bytes: u32) -> SeqNumber {
        SeqNumber(self.0.wrapping_sub(bytes))
    }
}

impl SeqNumber {
    /// How far `self` is ahead of `other` (negative: behind), taking the shorter way round
    /// the 2^32 circle (RFC 1982 serial number arithmetic). Exactly 2^31 apart counts as behind.
    pub(super) fn offset_from(self, other: SeqNumber) -> i32 {
        self.0.wrapping_sub(other.0) as i32
    }

    /// The stream offset of this sequence number in a stream whose offset 0 is at `base`.
    /// Offsets 2^32 apart share a sequence number; the one chosen is within 2^31 of `near`
    /// (where the stream is now), so streams longer than 4 GiB keep counting. `None` when
    /// that offset falls before the stream began.
    pub(super) fn offset_near(self, base: SeqNumber, near: u64) -> Option<u64> {
        // Truncating `near` is reducing it modulo 2^32, as the sequence space does.
        let expected = base + near as u32;
        let offset = near as i64 + i64::from(self.offset_from(expected));
        u64::try_from(offset).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOP: u32 = u32::MAX;

    #[test]
    fn adding_and_subtracting_wrap_at_2_to_the_32() {
        assert_eq!(SeqNumber::from(TOP) + 1, SeqNumber::from(0));
        assert_eq!(SeqNumber::from(TOP - 2) + 10, SeqNumber::from(7));
        assert_eq!(SeqNumber::from(0) - 1, SeqNumber::from(TOP));
        assert_eq!(SeqNumber::from(3) - 5, SeqNumber::from(TOP - 1));
    }

    #[test]
    fn offset_from_takes_the_short_way_across_the_wrap() {
        let before = SeqNumber::from(TOP - 2);
        let after = SeqNumber::from(5);
        assert_eq!(after.offset_from(before), 8);
        assert_eq!(before.offset_from(after), -8);
        assert_eq!(after.offset_from(after), 0);
    }

    #[test]
    fn offset_from_half_the_circle_is_the_largest_distance_either_way() {
        let zero = SeqNumber::from(0);
        assert_eq!(SeqNumber::from(0x7fff_ffff).offset_from(zero), i32::MAX);
        assert_eq!(SeqNumber::from(0x8000_0000).offset_from(zero), i32::MIN);
        assert_eq!(SeqNumber::from(0x8000_0001).offset_from(zero), i32::MIN + 1);
    }

    #[test]
    fn offset_near_counts_from_the_base_across_the_wrap() {
        let base = SeqNumber::from(TOP - 9);
        assert_eq!(SeqNumber::from(TOP - 9).offset_near(base, 0), Some(0));
        assert_eq!(SeqNumber::from(TOP).offset_near(base, 0), Some(9));
        assert_eq!(SeqNumber::from(0).offset_near(base, 0), Some(10));
        assert_eq!(SeqNumber::from(25).offset_near(base, 30), Some(35));
    }

    #[test]
    fn offset_near_is_none_before_the_stream_began() {
        let base = SeqNumber::from(2);
        assert_eq!(SeqNumber::from(1).offset_near(base, 0), None);
        assert_eq!(SeqNumber::from(TOP).offset_near(base, 0), None);
        // Behind where the stream is now, but after where it began.
        assert_eq!(SeqNumber::from(3).offset_near(base, 100), Some(1));
    }

    #[test]
    fn offset_near_keeps_counting_past_4_gib() {
        let base = SeqNumber::from(1000);
        let near = (1u64 << 32) + 50;
        // The same sequence number as offset 60, one lap on.
        assert_eq!(
            SeqNumber::from(1060).offset_near(base, near),
            Some(near + 10)
        );
        // Behind the stream now, still on this lap.
        assert_eq!(
            SeqNumber::from(1040).offset_near(base, near),
            Some(near - 10)
        );
        // Half a lap back on the previous side is still this lap's past.
        let far_back = SeqNumber::from(1050) - 0x8000_0000;
        assert_eq!(far_back.offset_near(base, near), Some(near - 0x8000_0000));
    }
}
