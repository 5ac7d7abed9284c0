//! When a relay thread polls again after a loop turn: at once (every wake-up serves what woke
//! it), after a fixed interval (`poll-interval-ms`), or after a short wait only while traffic
//! flows (`poll-coalesce-us`).
//!
//! A wake-up costs more than the packet it brings: the context switch back from `epoll_wait`
//! and, on the sending side, waking each receiver that went back to sleep. Letting the packets
//! of a short window gather means one wake-up serves several of them and the sends of one turn
//! go out back to back, while their receivers are still awake. The fixed interval waits after
//! every turn, so even a lone packet after a silence waits; coalescing waits only after a turn
//! that had input, so a relay with no traffic answers the next packet at once, and under load
//! each packet waits at most the window.

use std::time::Duration;

/// How a relay thread paces its polls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PollPacing {
    /// Poll again at once after every turn.
    #[default]
    EveryWakeup,
    /// Sleep this long before every poll that has no work left over.
    Interval(Duration),
    /// Sleep this long before the poll that follows a turn that had input.
    Coalesce(Duration),
}

impl PollPacing {
    /// The pacing the two options ask for (the configuration refuses both at once; the interval
    /// wins should both arrive here).
    pub fn from_options(poll_interval_ms: u64, poll_coalesce_us: u64) -> Self {
        if poll_interval_ms > 0 {
            Self::Interval(Duration::from_millis(poll_interval_ms))
        } else if poll_coalesce_us > 0 {
            Self::Coalesce(Duration::from_micros(poll_coalesce_us))
        } else {
            Self::EveryWakeup
        }
    }

    /// How long to sleep before the next poll. `had_input`: the last poll reported at least one
    /// socket; `work_left`: sockets from the last turn still have input to serve (then the
    /// thread never sleeps).
    pub fn wait_before_poll(self, had_input: bool, work_left: bool) -> Option<Duration> {
        if work_left {
            return None;
        }
        match self {
            Self::EveryWakeup => None,
            Self::Interval(d) => Some(d),
            Self::Coalesce(d) => had_input.then_some(d),
        }
    }

    /// Whether this pacing sleeps for short windows, so the thread should ask the kernel for
    /// precise timers (the default 50 µs timer slack is a large part of a sub-millisecond wait).
    pub fn wants_precise_timers(self) -> bool {
        !matches!(self, Self::EveryWakeup)
    }
}

/// Asks the kernel to end this thread's sleeps within a microsecond of the time asked for.
/// Best effort: without it a sleep only ends later.
pub fn set_precise_timers() {
    const SLACK_NS: libc::c_ulong = 1_000;
    // SAFETY: PR_SET_TIMERSLACK takes a plain integer and changes only the calling thread's
    // timer slack; no memory is passed.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, SLACK_NS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn options_choose_the_pacing() {
        assert_eq!(PollPacing::from_options(0, 0), PollPacing::EveryWakeup);
        assert_eq!(PollPacing::from_options(2, 0), PollPacing::Interval(2 * MS));
        assert_eq!(
            PollPacing::from_options(0, 250),
            PollPacing::Coalesce(Duration::from_micros(250))
        );
        assert_eq!(PollPacing::from_options(1, 250), PollPacing::Interval(MS));
    }

    #[test]
    fn every_wakeup_never_sleeps() {
        for (input, left) in [(false, false), (true, false), (true, true), (false, true)] {
            assert_eq!(PollPacing::EveryWakeup.wait_before_poll(input, left), None);
        }
        assert!(!PollPacing::EveryWakeup.wants_precise_timers());
    }

    #[test]
    fn an_interval_sleeps_even_after_silence() {
        let p = PollPacing::Interval(MS);
        assert_eq!(p.wait_before_poll(false, false), Some(MS));
        assert_eq!(p.wait_before_poll(true, false), Some(MS));
        assert_eq!(p.wait_before_poll(true, true), None);
    }

    #[test]
    fn coalescing_sleeps_only_while_traffic_flows() {
        let p = PollPacing::Coalesce(MS);
        // After a silent poll (a timer, or nothing at all) the next packet is served at once.
        assert_eq!(p.wait_before_poll(false, false), None);
        assert_eq!(p.wait_before_poll(true, false), Some(MS));
        // Input left over from the turn is served without waiting.
        assert_eq!(p.wait_before_poll(true, true), None);
        assert!(p.wants_precise_timers());
    }
}
