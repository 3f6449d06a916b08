//! Bounded samples of a duration, for medians and percentiles in the per-server and
//! per-client aggregations. Past [`MAX_SAMPLES`] values a uniform sample of all of them is
//! kept (reservoir sampling with a fixed seed, so runs are reproducible), so one busy server
//! cannot grow memory with the file.

/// Values kept per sample set (80 KB).
pub const MAX_SAMPLES: usize = 10_000;

/// Durations in ns; sorted once the aggregation is finished ([`Samples::sorted`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Samples {
    values: Vec<u64>,
    /// Values seen, kept or not.
    seen: u64,
    /// xorshift state for the reservoir.
    random: u64,
}

impl Default for Samples {
    fn default() -> Samples {
        Samples {
            values: Vec::new(),
            seen: 0,
            random: 0x9e37_79b9_7f4a_7c15,
        }
    }
}

impl Samples {
    pub fn push(&mut self, value: u64) {
        self.seen += 1;
        if self.values.len() < MAX_SAMPLES {
            self.values.push(value);
            return;
        }
        // Algorithm R: the n-th value replaces a kept one with probability MAX_SAMPLES / n.
        self.random ^= self.random << 13;
        self.random ^= self.random >> 7;
        self.random ^= self.random << 17;
        let slot = self.random % self.seen;
        if let Some(kept) = self.values.get_mut(slot as usize) {
            *kept = value;
        }
    }

    /// The same samples in ascending order, as the finished rows hold them.
    pub fn sorted(&self) -> Samples {
        let mut sorted = self.clone();
        sorted.values.sort_unstable();
        sorted
    }

    /// How many values were seen (kept or not).
    pub fn len(&self) -> u64 {
        self.seen
    }

    pub fn is_empty(&self) -> bool {
        self.seen == 0
    }

    pub fn min(&self) -> Option<u64> {
        self.values.first().copied()
    }

    pub fn max(&self) -> Option<u64> {
        self.values.last().copied()
    }

    /// The upper median of sorted samples.
    pub fn median(&self) -> Option<u64> {
        self.values.get(self.values.len() / 2).copied()
    }

    /// The nearest-rank percentile `p` (0–100) of sorted samples.
    pub fn percentile(&self, p: u32) -> Option<u64> {
        let n = self.values.len();
        if n == 0 {
            return None;
        }
        let rank = (u64::from(p) * n as u64).div_ceil(100).max(1) as usize;
        self.values.get(rank.min(n) - 1).copied()
    }

    /// The kept values, ascending once sorted.
    pub fn values(&self) -> &[u64] {
        &self.values
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_percentiles_by_nearest_rank() {
        let mut samples = Samples::default();
        for value in (1..=20).rev() {
            samples.push(value);
        }
        let samples = samples.sorted();
        assert_eq!((samples.min(), samples.max()), (Some(1), Some(20)));
        assert_eq!(samples.median(), Some(11));
        assert_eq!(samples.percentile(95), Some(19));
        assert_eq!(samples.percentile(100), Some(20));
        assert_eq!(Samples::default().percentile(50), None);
    }

    #[test]
    fn past_the_bound_a_uniform_sample_is_kept() {
        let mut samples = Samples::default();
        let n = 10 * MAX_SAMPLES as u64;
        for value in 0..n {
            samples.push(value);
        }
        let samples = samples.sorted();
        assert_eq!(samples.len(), n);
        assert_eq!(samples.values().len(), MAX_SAMPLES);
        let median = samples.median().unwrap() as f64;
        assert!((median / n as f64 - 0.5).abs() < 0.02, "{median}");
    }
}
