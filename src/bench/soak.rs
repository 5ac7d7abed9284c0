//! The `soak` mode: `--count` allocations held for `--duration` seconds with Refresh, a steady
//! relay load from every one of them, and churn (each round `--churn` of them delete their
//! allocation and make a new one with a new permission and channel). After each round the
//! server's RSS and open file descriptors are sampled; the run fails when a held session is
//! lost or when, after the first fifth of the run, RSS grows by more than `--rss-tolerance`
//! (a fraction of the first sample, plus 4 MiB for allocator noise) or the descriptor count
//! moves by more than the churn can explain.

use std::fmt::Write as _;
use std::io;
use std::time::{Duration, Instant};

use super::driver::{Session, Window};
use super::progress::Progress;
use super::sampler;

/// Knobs of a soak run.
#[derive(Debug, Clone, Copy)]
pub struct SoakPlan {
    /// Allocations held.
    pub count: usize,
    /// Length of the whole run.
    pub duration: Duration,
    /// Length of one round (stream, churn, sample).
    pub round: Duration,
    /// Allocations recycled per round.
    pub churn: usize,
    /// Allowed RSS growth after the warm-up, as a fraction of the first sample after it.
    pub rss_tolerance: f64,
}

/// Slack on the RSS bound for allocator and page-cache noise.
const RSS_SLACK_KIB: u64 = 4 * 1024;

/// One sample, taken after a round.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SoakSample {
    /// Seconds since the holding started.
    pub t: f64,
    /// Server resident memory.
    pub rss_kib: Option<u64>,
    /// Server open file descriptors.
    pub fds: Option<usize>,
    /// Allocations ready after the round.
    pub ready: usize,
    /// Recycled allocations that came back this round.
    pub recycled: usize,
    /// Datagrams relayed per second, both ways, in the round.
    pub relayed_pps: f64,
    /// Loss in the round (both ways).
    pub loss: f64,
}

/// What a soak run found.
#[derive(Debug, Clone, Default)]
pub struct SoakResult {
    /// Allocations set up at the start.
    pub held: usize,
    /// Samples, one per round.
    pub samples: Vec<SoakSample>,
    /// Sessions that stopped being ready without being recycled, or that received no relayed
    /// datagram in a whole round, summed over rounds.
    pub lost: usize,
    /// Recycled allocations that did not come back.
    pub recycle_failures: usize,
    /// Why the run failed; empty when it passed.
    pub failures: Vec<String>,
}

impl SoakResult {
    /// The curve and the verdict as text.
    pub fn summary(&self, plan: &SoakPlan) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "soak: {} allocations held, {} recycled per round of {:.0} s",
            self.held,
            plan.churn,
            plan.round.as_secs_f64()
        );
        let _ = writeln!(
            s,
            "{:>7} {:>10} {:>7} {:>7} {:>8} {:>11} {:>7}",
            "t (s)", "RSS (KiB)", "fds", "ready", "recycled", "relayed/s", "loss"
        );
        for x in &self.samples {
            let _ = writeln!(
                s,
                "{:>7.0} {:>10} {:>7} {:>7} {:>8} {:>11.0} {:>6.2}%",
                x.t,
                x.rss_kib.map_or("?".into(), |v| v.to_string()),
                x.fds.map_or("?".into(), |v| v.to_string()),
                x.ready,
                x.recycled,
                x.relayed_pps,
                x.loss * 100.0
            );
        }
        let _ = writeln!(
            s,
            "soak: {} sessions lost, {} recycles failed",
            self.lost, self.recycle_failures
        );
        if self.failures.is_empty() {
            let _ = writeln!(
                s,
                "soak: PASS (RSS within {:.0} % + {} MiB after warm-up, fds within the churn, \
                 no session lost)",
                plan.rss_tolerance * 100.0,
                RSS_SLACK_KIB / 1024
            );
        }
        for f in &self.failures {
            let _ = writeln!(s, "soak: FAIL: {f}");
        }
        s
    }
}

/// Holds, streams, churns and samples; the windows of every round are returned too.
pub fn run(
    session: &mut Session,
    pid: Option<u32>,
    plan: &SoakPlan,
    setup_deadline: Instant,
    progress: &mut Progress,
) -> io::Result<(SoakResult, Vec<Window>)> {
    progress.stage(format!("soak: allocating {}", plan.count));
    let held = session.add_participants(plan.count, true, setup_deadline, &mut |d, n| {
        progress.set(d as f64 / n.max(1) as f64)
    })?;
    progress.finish();
    let mut result = SoakResult {
        held,
        ..Default::default()
    };
    let mut windows = Vec::new();
    let start = Instant::now();
    let end = start + plan.duration;
    let mut next = 0;
    progress.stage(format!("soak: holding {held}"));
    while Instant::now() < end {
        let round = plan.round.min(end - Instant::now());
        let w = session.stream(Duration::ZERO, round, &mut |_| {})?;
        let ready_before = session.ready();
        // Streaming at every allocation: one that got nothing back in a whole round is gone
        // on the server, whatever the client thinks.
        let silent = session.take_silent();
        let recycled =
            session.recycle(next, plan.churn, Instant::now() + Duration::from_secs(20))?;
        next += plan.churn;
        result.recycle_failures += plan.churn.min(held) - recycled;
        let ready = session.ready();
        result.lost += held.saturating_sub(ready_before) + silent;
        let relayed = w.relayed_pps();
        let loss = w.loss();
        windows.push(w);
        result.samples.push(SoakSample {
            t: start.elapsed().as_secs_f64(),
            rss_kib: pid.and_then(sampler::sample).map(|s| s.rss_kib),
            fds: pid.and_then(sampler::open_fds),
            ready,
            recycled,
            relayed_pps: relayed,
            loss,
        });
        progress.set(start.elapsed().as_secs_f64() / plan.duration.as_secs_f64());
    }
    progress.finish();
    result.failures = judge(&result, plan);
    Ok((result, windows))
}

/// The verdict on a finished run.
pub fn judge(r: &SoakResult, plan: &SoakPlan) -> Vec<String> {
    let mut out = Vec::new();
    if r.held < plan.count {
        out.push(format!(
            "only {} of {} allocations could be set up",
            r.held, plan.count
        ));
    }
    if r.lost > 0 {
        out.push(format!("{} held sessions were lost", r.lost));
    }
    if r.recycle_failures > 0 {
        out.push(format!(
            "{} recycled allocations did not come back",
            r.recycle_failures
        ));
    }
    if r.samples.len() < 3 {
        out.push(format!(
            "{} samples are too few to judge flatness (make --duration longer than 3 rounds)",
            r.samples.len()
        ));
        return out;
    }
    // Judge after the warm-up: the first fifth of the run, and at least the first sample.
    let warm = (r.samples.len() / 5).max(1);
    let after = &r.samples[warm..];
    let rss: Vec<u64> = after.iter().filter_map(|s| s.rss_kib).collect();
    if let (Some(&first), Some(&max)) = (rss.first(), rss.iter().max()) {
        let bound = first + (first as f64 * plan.rss_tolerance) as u64 + RSS_SLACK_KIB;
        if max > bound {
            out.push(format!(
                "RSS grew from {first} KiB to {max} KiB after the warm-up (bound {bound} KiB)"
            ));
        }
    }
    let fds: Vec<usize> = after.iter().filter_map(|s| s.fds).collect();
    if let (Some(&min), Some(&max)) = (fds.iter().min(), fds.iter().max()) {
        // Each recycle closes and opens one relay socket; between rounds the count is back.
        let bound = plan.churn + 16;
        if max - min > bound {
            out.push(format!(
                "open fds moved between {min} and {max} after the warm-up (bound ±{bound})"
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> SoakPlan {
        SoakPlan {
            count: 100,
            duration: Duration::from_secs(60),
            round: Duration::from_secs(10),
            churn: 10,
            rss_tolerance: 0.05,
        }
    }

    fn sample(rss: u64, fds: usize) -> SoakSample {
        SoakSample {
            t: 0.0,
            rss_kib: Some(rss),
            fds: Some(fds),
            ready: 100,
            recycled: 10,
            relayed_pps: 1000.0,
            loss: 0.0,
        }
    }

    fn result(samples: Vec<SoakSample>) -> SoakResult {
        SoakResult {
            held: 100,
            samples,
            ..Default::default()
        }
    }

    #[test]
    fn flat_run_passes() {
        let r = result((0..6).map(|i| sample(50_000 + i * 100, 120)).collect());
        assert_eq!(judge(&r, &plan()), Vec::<String>::new());
    }

    #[test]
    fn warm_up_growth_is_ignored_but_later_growth_fails() {
        let mut s: Vec<_> = (0..10).map(|_| sample(60_000, 120)).collect();
        s[0] = sample(10_000, 120);
        assert!(judge(&result(s.clone()), &plan()).is_empty());
        s[9] = sample(60_000 + 3_000 + RSS_SLACK_KIB + 1, 120);
        let f = judge(&result(s), &plan());
        assert!(f.len() == 1 && f[0].starts_with("RSS grew"), "{f:?}");
    }

    #[test]
    fn fd_leak_fails() {
        let s: Vec<_> = (0..10).map(|i| sample(60_000, 120 + i * 10)).collect();
        let f = judge(&result(s), &plan());
        assert!(f.len() == 1 && f[0].starts_with("open fds"), "{f:?}");
    }

    #[test]
    fn lost_sessions_and_short_runs_fail() {
        let mut r = result((0..6).map(|_| sample(50_000, 120)).collect());
        r.lost = 1;
        r.held = 90;
        let f = judge(&r, &plan());
        assert_eq!(f.len(), 2, "{f:?}");
        let short = result(vec![sample(1, 1)]);
        assert!(judge(&short, &plan())[0].contains("too few"));
    }
}
