//! Latency histograms and per-leg counters.

/// Sub-buckets per power of two: values are kept to within 1/32 (about 3 %).
const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;
/// Highest power of two tracked (2^40 ns is about 18 minutes); larger values clamp.
const MAX_EXP: u32 = 40;
const BUCKETS: usize = ((MAX_EXP - SUB_BITS + 2) as usize) * SUB as usize;

/// A log-linear histogram of nanosecond values with bounded memory and ~3 % resolution.
#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    sum: u128,
    max: u64,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("total", &self.total)
            .field("max", &self.max)
            .finish()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            sum: 0,
            max: 0,
        }
    }
}

fn bucket_of(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let exp = (63 - v.leading_zeros()).min(MAX_EXP);
    let v = v.min((1u64 << (MAX_EXP + 1)) - 1);
    let sub = (v >> (exp - SUB_BITS)) & (SUB - 1);
    ((exp - SUB_BITS + 1) as u64 * SUB + sub) as usize
}

/// The smallest and largest value that fall in bucket `i`.
fn bucket_range(i: usize) -> (u64, u64) {
    let i = i as u64;
    if i < SUB {
        return (i, i);
    }
    let exp = (i / SUB) as u32 + SUB_BITS - 1;
    let sub = i % SUB;
    let width = 1u64 << (exp - SUB_BITS);
    let low = (1u64 << exp) + sub * width;
    (low, low + width - 1)
}

impl Histogram {
    /// Records one value.
    pub fn record(&mut self, v: u64) {
        self.counts[bucket_of(v)] += 1;
        self.total += 1;
        self.sum += v as u128;
        self.max = self.max.max(v);
    }

    /// Number of values recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// Largest value recorded.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// Mean of the values, 0 when empty.
    pub fn mean(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.sum as f64 / self.total as f64
        }
    }

    /// The value below which a fraction `q` (0..=1) of the values lie: the midpoint of the
    /// bucket holding the rank, never above the largest value seen. 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        if rank >= self.total {
            return self.max;
        }
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let (lo, hi) = bucket_range(i);
                return (lo + (hi - lo) / 2).min(self.max);
            }
        }
        self.max
    }

    /// Adds another histogram's values.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.sum += other.sum;
        self.max = self.max.max(other.max);
    }

    /// Non-empty buckets as (low, high, count), for charts.
    pub fn buckets(&self) -> impl Iterator<Item = (u64, u64, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(i, c)| {
                let (lo, hi) = bucket_range(i);
                (lo, hi, *c)
            })
    }
}

/// One direction of the round trip (client → peer is "up", peer → client is "down").
#[derive(Debug, Clone, Default)]
pub struct Leg {
    /// Packets sent on this leg inside the measured window.
    pub sent: u64,
    /// Of those, packets that arrived.
    pub received: u64,
    /// Payload bytes that arrived.
    pub bytes: u64,
    /// One-way latency of the arrivals.
    pub latency: Histogram,
    /// Sum over arrivals of the RFC 3550 interarrival jitter estimate, for the mean.
    jitter_sum_ns: f64,
}

impl Leg {
    /// Records one arrival with its one-way latency and its participant's current jitter.
    pub fn arrived(&mut self, latency_ns: u64, bytes: usize, jitter_ns: f64) {
        self.received += 1;
        self.bytes += bytes as u64;
        self.latency.record(latency_ns);
        self.jitter_sum_ns += jitter_ns;
    }

    /// Fraction of packets lost (0..=1).
    pub fn loss(&self) -> f64 {
        if self.sent == 0 {
            0.0
        } else {
            self.sent.saturating_sub(self.received) as f64 / self.sent as f64
        }
    }

    /// Mean jitter over arrivals, ns.
    pub fn mean_jitter_ns(&self) -> f64 {
        if self.received == 0 {
            0.0
        } else {
            self.jitter_sum_ns / self.received as f64
        }
    }
}

/// RFC 3550 §6.4.1 interarrival jitter of one stream: J += (|D| - J) / 16.
#[derive(Debug, Clone, Copy, Default)]
pub struct Jitter {
    last_transit: Option<i64>,
    /// Current estimate, ns.
    pub value: f64,
}

impl Jitter {
    /// Updates with the transit time (arrival − send) of the next packet; returns the estimate.
    pub fn update(&mut self, transit_ns: i64) -> f64 {
        if let Some(last) = self.last_transit {
            let d = (transit_ns - last).unsigned_abs() as f64;
            self.value += (d - self.value) / 16.0;
        }
        self.last_transit = Some(transit_ns);
        self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_values_and_ranges_agree() {
        for v in [
            0u64,
            1,
            31,
            32,
            33,
            63,
            64,
            100,
            1_000,
            123_456,
            10_000_000_000,
        ] {
            let (lo, hi) = bucket_range(bucket_of(v));
            assert!(lo <= v && v <= hi, "{v} not in [{lo}, {hi}]");
            assert!(
                (hi - lo) as f64 <= v as f64 / 16.0 + 1.0,
                "bucket too wide at {v}"
            );
        }
        assert!(bucket_of(u64::MAX) < BUCKETS);
    }

    #[test]
    fn percentiles_of_a_uniform_distribution() {
        let mut h = Histogram::default();
        for v in 1..=100_000u64 {
            h.record(v * 1000); // 1 µs .. 100 ms
        }
        let close = |got: u64, want: f64| (got as f64 - want).abs() / want < 0.035;
        assert!(close(h.quantile(0.5), 50_000_000.0), "{}", h.quantile(0.5));
        assert!(
            close(h.quantile(0.99), 99_000_000.0),
            "{}",
            h.quantile(0.99)
        );
        assert!(
            close(h.quantile(0.999), 99_900_000.0),
            "{}",
            h.quantile(0.999)
        );
        assert_eq!(h.quantile(1.0), 100_000_000);
        assert_eq!(h.count(), 100_000);
        assert!((h.mean() - 50_000_500.0).abs() < 1.0);
    }

    #[test]
    fn percentiles_see_the_tail() {
        let mut h = Histogram::default();
        for _ in 0..990 {
            h.record(100_000);
        }
        for _ in 0..10 {
            h.record(5_000_000);
        }
        assert!(h.quantile(0.5) < 110_000);
        assert!(h.quantile(0.99) < 110_000);
        assert!(h.quantile(0.995) > 4_500_000);
        let mut other = Histogram::default();
        other.record(1);
        h.merge(&other);
        assert_eq!(h.count(), 1001);
        assert_eq!(Histogram::default().quantile(0.5), 0);
    }

    #[test]
    fn loss_and_jitter() {
        let mut leg = Leg {
            sent: 200,
            ..Default::default()
        };
        let mut j = Jitter::default();
        for i in 0..198 {
            // Transit alternates 1.0 / 1.2 ms: |D| is always 0.2 ms, so J converges to it.
            let transit = if i % 2 == 0 { 1_000_000 } else { 1_200_000 };
            let jit = j.update(transit);
            leg.arrived(transit as u64, 100, jit);
        }
        assert!((leg.loss() - 0.01).abs() < 1e-9);
        assert!((j.value - 200_000.0).abs() < 1_000.0);
        assert_eq!(leg.bytes, 19_800);
    }
}
