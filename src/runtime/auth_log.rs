//! Authentication refusals at INFO without letting a credential-stuffing client fill the log:
//! the first refusal is reported at once, then at most one summary line per interval. The
//! refusals themselves (client, user, reason) are DEBUG lines in the core.

use std::time::{Duration, Instant};

use crate::proto::server::CoreStats;

/// How often a summary line may be written.
pub const SUMMARY_INTERVAL: Duration = Duration::from_secs(10);

/// Refusal counts, summed over the shards.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Refusals {
    /// Wrong password, unknown user or MESSAGE-INTEGRITY mismatch.
    pub bad_credentials: u64,
    /// Expired REST credentials.
    pub expired: u64,
    /// Revoked users or secrets.
    pub revoked: u64,
}

impl Refusals {
    /// The totals of every shard.
    pub fn sum<'a>(shards: impl IntoIterator<Item = &'a CoreStats>) -> Refusals {
        shards
            .into_iter()
            .fold(Refusals::default(), |acc, s| Refusals {
                bad_credentials: acc.bad_credentials + s.auth_bad_credentials.get(),
                expired: acc.expired + s.auth_expired.get(),
                revoked: acc.revoked + s.auth_revoked.get(),
            })
    }

    fn total(&self) -> u64 {
        self.bad_credentials + self.expired + self.revoked
    }

    fn since(&self, earlier: &Refusals) -> Refusals {
        Refusals {
            bad_credentials: self.bad_credentials.saturating_sub(earlier.bad_credentials),
            expired: self.expired.saturating_sub(earlier.expired),
            revoked: self.revoked.saturating_sub(earlier.revoked),
        }
    }
}

/// Decides when to write a summary line.
#[derive(Debug)]
pub struct RefusalLog {
    interval: Duration,
    reported: Refusals,
    last_line: Option<Instant>,
}

impl RefusalLog {
    /// Starts from `now_totals` (refusals before this point are not reported).
    pub fn new(interval: Duration, now_totals: Refusals) -> Self {
        Self {
            interval,
            reported: now_totals,
            last_line: None,
        }
    }

    /// Called on every tick with the current totals: the line to log, if it is time for one.
    pub fn poll(&mut self, now: Instant, totals: Refusals) -> Option<String> {
        let new = totals.since(&self.reported);
        if new.total() == 0 {
            return None;
        }
        if self
            .last_line
            .is_some_and(|at| now.duration_since(at) < self.interval)
        {
            return None;
        }
        let window = match self.last_line {
            Some(at) => format!("in the last {} s", now.duration_since(at).as_secs().max(1)),
            None => "since the last report".to_string(),
        };
        self.last_line = Some(now);
        self.reported = totals;
        Some(format!(
            "authentication refused {} time(s) {window}: bad credentials {}, expired {}, revoked {} (each refusal is logged at DEBUG with -v)",
            new.total(),
            new.bad_credentials,
            new.expired,
            new.revoked
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(bad: u64, expired: u64) -> Refusals {
        Refusals {
            bad_credentials: bad,
            expired,
            revoked: 0,
        }
    }

    #[test]
    fn first_refusal_at_once_then_one_line_per_interval() {
        let t0 = Instant::now();
        let mut log = RefusalLog::new(Duration::from_secs(10), r(5, 0));
        assert_eq!(log.poll(t0, r(5, 0)), None, "old refusals are not reported");
        let line = log
            .poll(t0, r(6, 0))
            .expect("first refusal reported at once");
        assert!(
            line.contains("refused 1 time(s)") && line.contains("bad credentials 1"),
            "{line}"
        );
        // A flood inside the interval: no lines.
        for i in 1..1000u64 {
            assert_eq!(log.poll(t0 + Duration::from_millis(i), r(6 + i, 0)), None);
        }
        let line = log
            .poll(t0 + Duration::from_secs(10), r(1005, 3))
            .expect("summary after the interval");
        assert!(
            line.contains("refused 1002 time(s) in the last 10 s"),
            "{line}"
        );
        assert!(line.contains("expired 3"), "{line}");
        // Quiet again: nothing to say.
        assert_eq!(log.poll(t0 + Duration::from_secs(30), r(1005, 3)), None);
    }
}
