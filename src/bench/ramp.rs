//! The `ramp` mode: add participants step by step until loss or latency exceeds its bound.

use std::io;
use std::time::{Duration, Instant};

use super::driver::{Session, Window};
use super::progress::Progress;
use super::report::worse_p99;

/// Loss above this fails a step.
pub const MAX_LOSS: f64 = 0.01;

/// How to ramp.
#[derive(Debug, Clone)]
pub struct RampPlan {
    /// Participants in the first step.
    pub start: usize,
    /// Participants added per step.
    pub step: usize,
    /// Most participants.
    pub max: usize,
    /// Unmeasured time at the start of each step.
    pub warmup: Duration,
    /// Measured time of each step.
    pub measure: Duration,
    /// p99 one-way latency bound, ms.
    pub max_p99_ms: f64,
    /// Hard end of the whole ramp.
    pub deadline: Instant,
}

/// What the ramp found.
#[derive(Debug, Clone, Default)]
pub struct RampOutcome {
    /// One window per step.
    pub windows: Vec<Window>,
    /// Index of the last step that met both bounds.
    pub capacity_step: Option<usize>,
    /// Why it stopped.
    pub stop_reason: String,
}

/// Whether a window meets the bounds; `Err` says which one it broke.
pub fn judge(w: &Window, max_p99_ms: f64) -> Result<(), String> {
    if w.loss() > MAX_LOSS {
        return Err(format!(
            "loss {:.2}% > {:.0}% at {} participants",
            w.loss() * 100.0,
            MAX_LOSS * 100.0,
            w.participants
        ));
    }
    let p99 = worse_p99(w) as f64 / 1e6;
    if p99 > max_p99_ms {
        return Err(format!(
            "p99 {p99:.2} ms > {max_p99_ms} ms at {} participants",
            w.participants
        ));
    }
    Ok(())
}

/// Runs the ramp on `session` (which starts empty).
pub fn run(
    session: &mut Session,
    plan: &RampPlan,
    progress: &mut Progress,
) -> io::Result<RampOutcome> {
    let mut out = RampOutcome::default();
    let mut want = plan.start.max(1);
    loop {
        let have = session.ready();
        if want > have {
            progress.stage(format!("ramp: allocating to {want}"));
            let setup_deadline = (Instant::now() + Duration::from_secs(30)).min(plan.deadline);
            session.add_participants(want - have, true, setup_deadline, &mut |d, n| {
                progress.set(d as f64 / n.max(1) as f64)
            })?;
        }
        if session.ready() < want {
            out.stop_reason = format!(
                "only {} of {want} participants could allocate",
                session.ready()
            );
            break;
        }
        progress.stage(format!("ramp: {want} participants"));
        let w = session.stream(plan.warmup, plan.measure, &mut |f| progress.set(f))?;
        let verdict = judge(&w, plan.max_p99_ms);
        let limited = w.client_limited();
        let behind = w.behind_schedule();
        out.windows.push(w);
        match verdict {
            Ok(()) => out.capacity_step = Some(out.windows.len() - 1),
            Err(why) => {
                out.stop_reason = if limited {
                    format!("{why} (that step was also client-limited: the generator fell behind its schedule)")
                } else {
                    why
                };
                break;
            }
        }
        // Late frames only flag a step; a generator that cannot reach the rate ends the ramp.
        if behind {
            out.stop_reason =
                "client-limited: the generator could not send at the target rate".into();
            break;
        }
        if want >= plan.max {
            out.stop_reason = format!("reached --max-participants {}", plan.max);
            break;
        }
        let step_time = plan.warmup + plan.measure + Duration::from_secs(2);
        if Instant::now() + step_time > plan.deadline {
            out.stop_reason = "time bound reached".into();
            break;
        }
        want = (want + plan.step.max(1)).min(plan.max);
    }
    progress.finish();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judge_applies_both_bounds() {
        let mut w = Window {
            participants: 10,
            seconds: 1.0,
            ..Default::default()
        };
        w.up.sent = 1000;
        for _ in 0..995 {
            w.up.arrived(1_000_000, 100, 0.0);
        }
        assert!(judge(&w, 5.0).is_ok());
        assert!(judge(&w, 0.5).unwrap_err().contains("p99"));
        w.up.sent = 1100;
        assert!(judge(&w, 5.0).unwrap_err().contains("loss"));
    }
}
