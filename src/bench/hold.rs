//! The `hold` mode: N idle allocations, each on its own client socket (its own 5-tuple), kept
//! alive for a while; the server's RSS growth divided by N is its memory per allocation.

use std::io;
use std::time::{Duration, Instant};

use super::driver::{Session, StreamErrors, Target};
use super::profile::Profile;
use super::progress::Progress;
use super::report::{HeldMemory, HoldResult};
use super::sampler;

/// Runs the hold; returns the result, the setup failures and why connections failed.
pub fn run(
    target: &Target,
    count: usize,
    hold: Duration,
    concurrency: usize,
    deadline: Instant,
    progress: &mut Progress,
) -> io::Result<(HoldResult, Vec<u16>, StreamErrors)> {
    let mut session = Session::new(target.clone(), Profile::AUDIO, 0)?;
    session.set_setup_concurrency(concurrency);
    let pid = target.server_pid;
    let before = pid.and_then(sampler::sample).map(|s| s.rss_kib);
    progress.stage(format!("hold: allocating {count}"));
    let t0 = Instant::now();
    let held = session.add_participants(count, false, deadline, &mut |d, n| {
        progress.set(d as f64 / n.max(1) as f64)
    })?;
    let setup_seconds = t0.elapsed().as_secs_f64();
    progress.finish();
    progress.stage(format!("hold: holding {held}"));
    let t1 = Instant::now();
    session.idle(hold, &mut |f| progress.set(f))?;
    // Read memory at the end of the hold, when the server has settled.
    let after = pid.and_then(sampler::sample).map(|s| s.rss_kib);
    let hold_seconds = t1.elapsed().as_secs_f64();
    progress.finish();
    progress.stage("hold: releasing");
    session.close_all(Instant::now() + Duration::from_secs(20))?;
    progress.finish();
    Ok((
        HoldResult {
            requested: count,
            held,
            setup_seconds,
            memory: HeldMemory {
                seconds: hold_seconds,
                before_kib: before,
                held_kib: after,
            },
        },
        session.failures.clone(),
        session.stream_errors.clone(),
    ))
}
