//! Media profiles and the send schedule of one participant.

use std::time::{Duration, Instant};

/// What one participant sends: `packets_per_frame` packets back to back, `frame_rate` times a
/// second, each `size` bytes of ChannelData payload.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Profile {
    /// Profile name for reports.
    pub name: &'static str,
    /// Frames (bursts) per second.
    pub frame_rate: f64,
    /// Packets sent back to back per frame.
    pub packets_per_frame: u32,
    /// Payload bytes per packet.
    pub size: usize,
}

/// Smallest payload: the timing header must fit (see `payload`).
pub const MIN_SIZE: usize = crate::bench::payload::HEADER_LEN;
/// Largest payload that still fits a 1500-byte MTU with IP, UDP and ChannelData headers.
pub const MAX_SIZE: usize = 1400;

impl Profile {
    /// Opus-like audio: 50 packets of 160 bytes a second.
    pub const AUDIO: Profile = Profile {
        name: "audio",
        frame_rate: 50.0,
        packets_per_frame: 1,
        size: 160,
    };
    /// Camera video: 30 frames of 3 packets, 1100 bytes each (~90 pps, ~0.8 Mbit/s).
    pub const VIDEO: Profile = Profile {
        name: "video",
        frame_rate: 30.0,
        packets_per_frame: 3,
        size: 1100,
    };
    /// Screen sharing: bursty, 5 frames of 6 packets of 1200 bytes (30 pps).
    pub const SCREEN: Profile = Profile {
        name: "screen",
        frame_rate: 5.0,
        packets_per_frame: 6,
        size: 1200,
    };

    /// A named profile; `custom` needs `rate` (pps, one packet per frame) and `size`.
    pub fn by_name(name: &str, rate: Option<f64>, size: Option<usize>) -> Result<Profile, String> {
        let p = match name {
            "audio" => Profile::AUDIO,
            "video" => Profile::VIDEO,
            "screen" => Profile::SCREEN,
            "custom" => {
                let rate = rate.ok_or("profile custom needs --rate PPS")?;
                let size = size.ok_or("profile custom needs --size BYTES")?;
                Profile {
                    name: "custom",
                    frame_rate: rate,
                    packets_per_frame: 1,
                    size,
                }
            }
            other => {
                return Err(format!(
                    "unknown profile {other:?} (audio, video, screen, custom)"
                ))
            }
        };
        if !(p.frame_rate > 0.0 && p.frame_rate <= 100_000.0) {
            return Err(format!(
                "rate must be in (0, 100000] pps, got {}",
                p.frame_rate
            ));
        }
        if !(MIN_SIZE..=MAX_SIZE).contains(&p.size) {
            return Err(format!(
                "size must be {MIN_SIZE}..={MAX_SIZE} bytes, got {}",
                p.size
            ));
        }
        Ok(p)
    }

    /// Packets per second of one participant in one direction.
    pub fn pps(&self) -> f64 {
        self.frame_rate * self.packets_per_frame as f64
    }

    /// Time between frames.
    pub fn frame_interval(&self) -> Duration {
        Duration::from_secs_f64(1.0 / self.frame_rate)
    }
}

/// The frame clock of one participant. Frames that fall more than `MAX_LAG` behind are skipped
/// (and counted) instead of sent in a catch-up burst, so a stalled generator shows up as a
/// missed schedule rather than as a load spike on the server.
#[derive(Debug, Clone)]
pub struct Schedule {
    next: Instant,
    interval: Duration,
    /// Frames that were sent later than `LATE` after their due time.
    pub late: u64,
    /// Frames skipped because the generator fell too far behind.
    pub skipped: u64,
}

/// A frame sent this much after its due time counts as late.
pub const LATE: Duration = Duration::from_millis(5);
/// A frame this far behind is skipped.
pub const MAX_LAG: Duration = Duration::from_millis(100);

impl Schedule {
    /// Starts at `start + offset`; offsets spread participants over one interval so that they
    /// do not all send at the same instant.
    pub fn new(start: Instant, interval: Duration, offset: Duration) -> Schedule {
        Schedule {
            next: start + offset,
            interval,
            late: 0,
            skipped: 0,
        }
    }

    /// When the next frame is due.
    pub fn due(&self) -> Instant {
        self.next
    }

    /// Called when the frame due at `due()` is sent at `now`; advances the clock and returns
    /// whether to send now (false once the frame is found too late and skipped).
    pub fn take(&mut self, now: Instant) -> bool {
        let lag = now.saturating_duration_since(self.next);
        if lag > MAX_LAG {
            let missed = (lag.as_nanos() / self.interval.as_nanos().max(1)) as u64;
            self.skipped += missed.max(1);
            self.next += self.interval * (missed.max(1) as u32);
            if self.next <= now {
                self.next = now + self.interval;
            }
            return false;
        }
        if lag > LATE {
            self.late += 1;
        }
        self.next += self.interval;
        true
    }
}

/// Offset of participant `i` of `n` within one interval.
pub fn stagger(i: usize, n: usize, interval: Duration) -> Duration {
    if n == 0 {
        return Duration::ZERO;
    }
    interval.mul_f64(i as f64 / n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_have_the_advertised_rates() {
        assert_eq!(Profile::AUDIO.pps(), 50.0);
        assert_eq!(Profile::VIDEO.pps(), 90.0);
        assert_eq!(Profile::SCREEN.pps(), 30.0);
        let c = Profile::by_name("custom", Some(200.0), Some(100)).unwrap();
        assert_eq!((c.pps(), c.size), (200.0, 100));
        assert!(Profile::by_name("custom", None, Some(100)).is_err());
        assert!(Profile::by_name("custom", Some(10.0), Some(4)).is_err());
        assert!(Profile::by_name("nope", None, None).is_err());
    }

    #[test]
    fn schedule_keeps_the_rate_over_many_frames() {
        let t0 = Instant::now();
        let interval = Duration::from_millis(20);
        let mut s = Schedule::new(t0, interval, Duration::from_millis(3));
        let mut sent = 0;
        // A loop that wakes every 7 ms for one simulated second sends exactly 50 frames.
        let mut now = t0;
        while now < t0 + Duration::from_secs(1) {
            while s.due() <= now {
                if s.take(now) {
                    sent += 1;
                }
            }
            now += Duration::from_millis(7);
        }
        assert_eq!(sent, 50);
        assert_eq!(s.skipped, 0);
        assert!(
            s.late < 50,
            "a 7 ms wake-up gap makes some frames late, not all"
        );
    }

    #[test]
    fn schedule_skips_frames_after_a_stall_instead_of_bursting() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0, Duration::from_millis(10), Duration::ZERO);
        assert!(s.take(t0));
        // The loop stalls for a second: 100 frames are due, most are skipped.
        let now = t0 + Duration::from_secs(1);
        let mut sent = 0;
        while s.due() <= now {
            if s.take(now) {
                sent += 1;
            }
        }
        assert!(sent <= 11, "sent {sent}");
        assert!(s.skipped >= 89, "skipped {}", s.skipped);
        assert!(s.due() > now);
    }

    #[test]
    fn stagger_spreads_over_one_interval() {
        let i = Duration::from_millis(20);
        assert_eq!(stagger(0, 4, i), Duration::ZERO);
        assert_eq!(stagger(2, 4, i), Duration::from_millis(10));
        assert_eq!(stagger(0, 0, i), Duration::ZERO);
    }
}
