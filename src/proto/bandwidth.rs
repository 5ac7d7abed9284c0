//! Token buckets for `max-bps` (per allocation and direction) and `bps-capacity` (per shard).

use std::time::Instant;

/// Smallest burst allowed, so one full-size datagram always fits.
const MIN_BURST: f64 = 3000.0;
/// Burst as a fraction of one second's worth: small enough that the long-run rate stays within
/// a few percent of the limit, large enough for a video frame's packets.
const BURST_SECONDS: f64 = 0.1;

/// A token bucket measured in bytes.
#[derive(Debug, Clone, Copy)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket refilling at `bytes_per_second`.
    pub fn new(bytes_per_second: u64, now: Instant) -> Self {
        let rate = bytes_per_second as f64;
        let burst = (rate * BURST_SECONDS).max(MIN_BURST);
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// A bucket for `bytes_per_second`, or none when the limit is 0 (unlimited).
    pub fn limit(bytes_per_second: u64, now: Instant) -> Option<Self> {
        (bytes_per_second > 0).then(|| Self::new(bytes_per_second, now))
    }

    /// Takes `bytes` if available.
    #[inline]
    pub fn take(&mut self, bytes: usize, now: Instant) -> bool {
        if self.has(bytes, now) {
            self.tokens -= bytes as f64;
            true
        } else {
            false
        }
    }

    /// Refills, then tells whether `bytes` are available without taking them.
    #[inline]
    fn has(&mut self, bytes: usize, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.tokens >= bytes as f64
    }

    /// Changes the rate, keeping the tokens already earned (up to the new burst).
    pub fn set_rate(&mut self, bytes_per_second: u64) {
        self.rate = bytes_per_second as f64;
        self.burst = (self.rate * BURST_SECONDS).max(MIN_BURST);
        self.tokens = self.tokens.min(self.burst);
    }
}

/// Takes from both optional buckets, or from neither when either lacks the tokens (so a
/// packet the server-wide limit refuses does not use up the allocation's share). No bucket
/// means no limit.
#[inline]
pub fn allow(
    allocation: &mut Option<TokenBucket>,
    server: &mut Option<TokenBucket>,
    bytes: usize,
    now: Instant,
) -> bool {
    let fits = |b: &mut Option<TokenBucket>| b.as_mut().is_none_or(|b| b.has(bytes, now));
    if !(fits(allocation) && fits(server)) {
        return false;
    }
    for b in [allocation, server].into_iter().flatten() {
        b.tokens -= bytes as f64;
    }
    true
}

/// Brings an optional bucket in line with a (possibly changed) limit.
pub fn retune(bucket: &mut Option<TokenBucket>, bytes_per_second: u64, now: Instant) {
    match (bucket.as_mut(), bytes_per_second) {
        (_, 0) => *bucket = None,
        (Some(b), rate) => b.set_rate(rate),
        (None, rate) => *bucket = Some(TokenBucket::new(rate, now)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn long_run_rate_matches_the_limit() {
        let start = Instant::now();
        let mut b = TokenBucket::new(100_000, start);
        let mut passed = 0usize;
        // Offer 300 kB/s in 1000-byte packets for 10 virtual seconds.
        for i in 0..3000u64 {
            let now = start + Duration::from_micros(i * 3333);
            if b.take(1000, now) {
                passed += 1000;
            }
        }
        let rate = passed as f64 / 10.0;
        assert!((rate - 100_000.0).abs() < 5_000.0, "rate {rate}");
    }

    #[test]
    fn refused_packets_take_nothing_from_either_bucket() {
        let now = Instant::now();
        let mut alloc = TokenBucket::limit(100_000, now);
        let mut server = TokenBucket::limit(30_000, now);
        // The server bucket's burst is 3000 bytes: the second 2000-byte packet does not fit.
        assert!(allow(&mut alloc, &mut server, 2000, now));
        assert!(!allow(&mut alloc, &mut server, 2000, now));
        assert_eq!(alloc.unwrap().tokens, 10_000.0 - 2000.0);
    }

    #[test]
    fn unlimited_and_retune() {
        let now = Instant::now();
        let mut none = TokenBucket::limit(0, now);
        assert!(allow(&mut none, &mut None, 1_000_000, now));
        retune(&mut none, 5000, now);
        assert!(none.is_some());
        retune(&mut none, 0, now);
        assert!(none.is_none());
    }
}
