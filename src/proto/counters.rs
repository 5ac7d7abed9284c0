//! Counters a shard writes and a metrics scrape reads from another thread.
//!
//! Each counter has exactly one writer (its shard), so an increment is a relaxed load and store
//! rather than a locked read-modify-write: as cheap as a plain integer, yet readable at any time.

use std::sync::atomic::{AtomicU64, Ordering};

/// A monotonically increasing count with a single writer.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`. Only the owning shard may call this.
    #[inline]
    pub fn add(&self, n: u64) {
        let v = self.0.load(Ordering::Relaxed);
        self.0.store(v.wrapping_add(n), Ordering::Relaxed);
    }

    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A packet and byte count.
#[derive(Debug, Default)]
pub struct Traffic {
    /// Packets.
    pub packets: Counter,
    /// Payload bytes.
    pub bytes: Counter,
}

impl Traffic {
    /// Counts one packet of `bytes`.
    #[inline]
    pub fn count(&self, bytes: usize) {
        self.packets.inc();
        self.bytes.add(bytes as u64);
    }
}
