//! A fixed-size, per-source limit on 401/438 answers (`unauthorized-ratelimit`).
//!
//! Challenges are the largest answers an unauthenticated (possibly spoofed) source can draw,
//! so a flood of Allocates could turn the relay into a reflector. Each source address (each
//! /64 for IPv6, which one host usually owns whole) hashes with a random key into one of
//! [`SLOTS`] cells holding a GCRA deadline; the table never grows, whatever the number of
//! sources. Sources that share a cell share its budget, which only errs towards answering
//! less.

use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;

use ahash::RandomState;
use rand::RngCore;

/// Cells in the table: 8 bytes each, 64 KiB per shard.
pub const SLOTS: usize = 8192;

/// Per-source budget of challenges: `rps` per second with a burst of `rps`.
pub struct ChallengeLimiter {
    /// Per cell, the theoretical arrival time of the next answer, in µs of virtual time.
    cells: Box<[u64]>,
    keys: RandomState,
}

impl ChallengeLimiter {
    /// An empty table whose hash key is drawn from `rng` (the server's own generator, so a
    /// seeded test sees the same cells every run).
    pub fn new(rng: &mut impl RngCore) -> Self {
        Self {
            cells: vec![0u64; SLOTS].into_boxed_slice(),
            keys: RandomState::with_seeds(
                rng.next_u64(),
                rng.next_u64(),
                rng.next_u64(),
                rng.next_u64(),
            ),
        }
    }

    /// Whether `source` may get another challenge at `now_us`; `rps` 0 means unlimited.
    pub fn allow(&mut self, source: IpAddr, now_us: u64, rps: u32) -> bool {
        if rps == 0 {
            return true;
        }
        let interval = 1_000_000 / u64::from(rps);
        // A burst of `rps` answers: the deadline may run this far ahead of now.
        let tolerance = 1_000_000u64.saturating_sub(interval);
        let cell = &mut self.cells[self.index(source)];
        let tat = (*cell).max(now_us);
        if tat - now_us > tolerance {
            return false;
        }
        *cell = tat + interval.max(1);
        true
    }

    fn index(&self, source: IpAddr) -> usize {
        let mut h = self.keys.build_hasher();
        match source.to_canonical() {
            IpAddr::V4(a) => h.write(&a.octets()),
            IpAddr::V6(a) => h.write(&a.octets()[..8]),
        }
        (h.finish() % SLOTS as u64) as usize
    }

    /// Memory held by the table, in bytes (constant).
    pub fn footprint(&self) -> usize {
        size_of_val(&*self.cells)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::ip;

    #[test]
    fn burst_then_rate() {
        let mut l = ChallengeLimiter::new(&mut rand::rngs::mock::StepRng::new(1, 7));
        let a = ip("198.51.100.1");
        let allowed = (0..100).filter(|_| l.allow(a, 5_000_000, 20)).count();
        assert_eq!(allowed, 20);
        // 50 ms later one more token has come back.
        assert!(l.allow(a, 5_050_000, 20));
        assert!(!l.allow(a, 5_050_000, 20));
        // After a quiet second the whole burst is back, not more.
        let allowed = (0..100).filter(|_| l.allow(a, 6_100_000, 20)).count();
        assert_eq!(allowed, 20);
    }

    #[test]
    fn zero_is_unlimited() {
        let mut l = ChallengeLimiter::new(&mut rand::rngs::mock::StepRng::new(1, 7));
        assert!((0..10_000).all(|_| l.allow(ip("198.51.100.1"), 0, 0)));
    }

    #[test]
    fn sources_are_separate_and_ipv6_counts_per_64() {
        let mut l = ChallengeLimiter::new(&mut rand::rngs::mock::StepRng::new(1, 7));
        let a = ip("198.51.100.1");
        while l.allow(a, 0, 5) {}
        // Another address has its own budget unless it happens to share the cell.
        let others = (2..=50u8)
            .filter(|i| l.allow(IpAddr::from([198, 51, 100, *i]), 0, 5))
            .count();
        assert!(others >= 45, "{others}");
        // Mapped IPv4 is the same source.
        assert!(!l.allow(ip("::ffff:198.51.100.1"), 0, 5));
        let v6 = ip("2001:db8:1:2::1");
        while l.allow(v6, 0, 5) {}
        assert!(!l.allow(ip("2001:db8:1:2:ffff::9"), 0, 5));
    }

    #[test]
    fn fixed_size() {
        let mut l = ChallengeLimiter::new(&mut rand::rngs::mock::StepRng::new(1, 7));
        let before = l.footprint();
        for i in 0..100_000u32 {
            l.allow(IpAddr::from(i.to_be_bytes()), u64::from(i), 10);
        }
        assert_eq!(l.footprint(), before);
        assert_eq!(before, SLOTS * 8);
    }
}
