//! `Instant`s as the eBPF program's clock reads them: `bpf_ktime_get_ns` is CLOCK_MONOTONIC,
//! which is also what `Instant` measures on Linux, so one offset taken at start-up converts.

use std::time::Instant;

/// Converts the core's deadlines to kernel nanoseconds.
#[derive(Debug, Clone, Copy)]
pub(super) struct MonoClock {
    base: Instant,
    base_ns: u64,
}

impl MonoClock {
    /// Reads both clocks now.
    pub(super) fn new() -> MonoClock {
        let base = Instant::now();
        MonoClock {
            base,
            base_ns: monotonic_ns(),
        }
    }

    /// `t` in CLOCK_MONOTONIC nanoseconds.
    pub(super) fn ns(&self, t: Instant) -> u64 {
        match t.checked_duration_since(self.base) {
            Some(d) => self.base_ns.saturating_add(d.as_nanos() as u64),
            None => self
                .base_ns
                .saturating_sub(self.base.duration_since(t).as_nanos() as u64),
        }
    }
}

impl Default for MonoClock {
    fn default() -> Self {
        MonoClock::new()
    }
}

fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn instants_map_onto_the_monotonic_clock() {
        let clock = MonoClock::new();
        let now = Instant::now();
        let diff = clock.ns(now) as i128 - monotonic_ns() as i128;
        assert!(diff.abs() < 50_000_000, "within 50 ms: {diff} ns");
        let later = now + Duration::from_secs(3);
        assert_eq!(clock.ns(later) - clock.ns(now), 3_000_000_000);
    }
}
