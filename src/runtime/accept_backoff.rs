//! What a TCP listener does when `accept()` fails for lack of file descriptors: the pending
//! connection stays queued and the listener stays ready, so retrying at once spins (and logs)
//! as fast as the CPU allows. Instead the listener pauses for a while, and the failure is
//! logged at most once per interval with a count of what the interval suppressed.

use std::io;
use std::time::{Duration, Instant};

/// How long a listener waits after running out of descriptors before it tries again.
pub const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// At most one log line per listener this often.
pub const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Whether an `accept()` error means the process or system is out of descriptors or memory:
/// retrying before something is closed cannot succeed.
pub fn is_resource_limit(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// One listener's pause and log state.
#[derive(Debug, Default)]
pub struct AcceptBackoff {
    paused_until: Option<Instant>,
    last_log: Option<Instant>,
    suppressed: u64,
}

impl AcceptBackoff {
    /// Whether accepting is paused at `now`.
    pub fn paused(&self, now: Instant) -> bool {
        self.paused_until.is_some_and(|t| now < t)
    }

    /// When the pause ends, if one is running.
    pub fn resume_at(&self) -> Option<Instant> {
        self.paused_until
    }

    /// Ends a pause that is over; true when it did (the listener should be tried again).
    pub fn take_resumed(&mut self, now: Instant) -> bool {
        match self.paused_until {
            Some(t) if now >= t => {
                self.paused_until = None;
                true
            }
            _ => false,
        }
    }

    /// Records a failure at `now` and starts a pause. Returns the number of failures to
    /// report when a log line is due now (this one included), or `None` to stay quiet.
    pub fn failed(&mut self, now: Instant) -> Option<u64> {
        self.paused_until = Some(now + ACCEPT_PAUSE);
        self.suppressed += 1;
        let due = self
            .last_log
            .is_none_or(|t| now.saturating_duration_since(t) >= LOG_INTERVAL);
        if due {
            self.last_log = Some(now);
            Some(std::mem::take(&mut self.suppressed))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_and_logs_once_per_interval() {
        let t0 = Instant::now();
        let mut b = AcceptBackoff::default();
        assert!(!b.paused(t0));
        assert_eq!(b.failed(t0), Some(1));
        assert!(b.paused(t0 + ACCEPT_PAUSE / 2));
        assert!(!b.take_resumed(t0 + ACCEPT_PAUSE / 2));
        assert!(b.take_resumed(t0 + ACCEPT_PAUSE));
        assert!(!b.paused(t0 + ACCEPT_PAUSE));
        // Failures within the interval are counted, not logged ...
        for i in 1..=50u32 {
            assert_eq!(b.failed(t0 + ACCEPT_PAUSE * i), None);
        }
        // ... and reported together with the first one after it.
        assert_eq!(b.failed(t0 + LOG_INTERVAL), Some(51));
    }

    #[test]
    fn descriptor_exhaustion_is_a_resource_limit() {
        assert!(is_resource_limit(&io::Error::from_raw_os_error(
            libc::EMFILE
        )));
        assert!(is_resource_limit(&io::Error::from_raw_os_error(
            libc::ENFILE
        )));
        assert!(!is_resource_limit(&io::Error::from_raw_os_error(
            libc::ECONNABORTED
        )));
    }
}
