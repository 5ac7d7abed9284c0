//! The `overload` mode: find the capacity with a ramp, then offer fractions and multiples of
//! it for a window each. Below capacity (25, 50, 75 %) the windows show the latency an
//! operator gets at a given utilisation; above it (1.5x, 2x, 4x) they show whether the server
//! keeps carrying its capacity (goodput) or collapses when offered more than it can relay.

use std::fmt::Write as _;
use std::io;
use std::time::Duration;

use super::driver::{Session, Window};
use super::profile::Profile;
use super::progress::Progress;
use super::ramp::{self, RampOutcome, RampPlan};
use super::report::{window_json, worse_p99, Json};

/// Offered load as a share of the measured capacity: latency levels below it, overload
/// levels above it.
pub const LEVELS: [f64; 6] = [0.25, 0.5, 0.75, 1.5, 2.0, 4.0];

/// One window at a share of capacity.
#[derive(Debug, Clone)]
pub struct Level {
    /// Offered load / capacity.
    pub factor: f64,
    /// What was measured.
    pub window: Window,
}

impl Level {
    /// Packets per second that made the whole round trip (client → peer → client): the
    /// end-to-end goodput, as turnutils_uclient's recv_pps counts it.
    pub fn echoed_pps(&self) -> f64 {
        self.window.down.received as f64 / self.window.seconds.max(1e-9)
    }
}

/// What the overload mode found.
#[derive(Debug, Clone, Default)]
pub struct OverloadOutcome {
    /// The ramp that measured the capacity.
    pub ramp: RampOutcome,
    /// Packets per second each way at the capacity step.
    pub capacity_pps: Option<f64>,
    /// One window per entry of [`LEVELS`] (none when no capacity was found).
    pub levels: Vec<Level>,
}

/// Ramps `session` to its capacity, then streams each level for `measure` with the rate per
/// participant scaled so that all ready participants together offer `factor` × capacity.
pub fn run(
    session: &mut Session,
    plan: &RampPlan,
    base: Profile,
    measure: Duration,
    progress: &mut Progress,
) -> io::Result<OverloadOutcome> {
    let ramp = ramp::run(session, plan, progress)?;
    let capacity_pps = ramp.capacity_step.map(|i| ramp.windows[i].achieved_pps());
    let mut out = OverloadOutcome {
        ramp,
        capacity_pps,
        levels: Vec::new(),
    };
    let (Some(capacity), ready) = (capacity_pps, session.ready()) else {
        return Ok(out);
    };
    if ready == 0 || capacity <= 0.0 {
        return Ok(out);
    }
    for factor in LEVELS {
        let per_participant = factor * capacity / ready as f64;
        let profile = Profile {
            frame_rate: per_participant / f64::from(base.packets_per_frame.max(1)),
            ..base
        };
        session.set_profile(profile);
        progress.stage(format!("overload: {:.0} % of capacity", factor * 100.0));
        let window = session.stream(plan.warmup, measure, &mut |f| progress.set(f))?;
        progress.finish();
        out.levels.push(Level { factor, window });
    }
    session.set_profile(base);
    Ok(out)
}

/// The `overload` object of the JSON report.
pub fn to_json(o: &OverloadOutcome) -> Json {
    let capacity = o.capacity_pps.unwrap_or(0.0);
    let levels = o
        .levels
        .iter()
        .map(|l| {
            let w = &l.window;
            Json::Obj(vec![
                ("factor", Json::Num(l.factor)),
                ("offered_pps", Json::Num(w.target_pps)),
                ("sent_pps", Json::Num(w.achieved_pps())),
                ("echoed_pps", Json::Num(l.echoed_pps())),
                (
                    "echoed_of_capacity",
                    Json::Num(l.echoed_pps() / capacity.max(1e-9)),
                ),
                ("loss", Json::Num(w.loss())),
                ("p99_ms", Json::Num(worse_p99(w) as f64 / 1e6)),
                ("client_limited", Json::Bool(w.client_limited())),
                ("window", window_json(w)),
            ])
        })
        .collect();
    Json::Obj(vec![
        (
            "capacity_pps_each_way",
            o.capacity_pps.map_or(Json::Null, Json::Num),
        ),
        ("levels", Json::Arr(levels)),
    ])
}

/// Summary lines, one per level.
pub fn summary(o: &OverloadOutcome) -> String {
    let mut s = String::new();
    let Some(capacity) = o.capacity_pps else {
        s.push_str("overload: no capacity found, nothing offered\n");
        return s;
    };
    for l in &o.levels {
        let w = &l.window;
        let _ = writeln!(
            s,
            "overload {:>4.0} %: offered {:>8.0} sent {:>8.0} echoed {:>8.0} pps each way ({:>5.1} % of capacity {:.0}), loss {:.2} %, p99 {:.3} ms{}",
            l.factor * 100.0,
            w.target_pps,
            w.achieved_pps(),
            l.echoed_pps(),
            l.echoed_pps() / capacity.max(1e-9) * 100.0,
            capacity,
            w.loss() * 100.0,
            worse_p99(w) as f64 / 1e6,
            if w.client_limited() { " (client-limited)" } else { "" }
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(factor: f64, sent: u64, echoed: u64) -> Level {
        let mut w = Window {
            participants: 10,
            seconds: 2.0,
            target_pps: 1000.0 * factor,
            ..Default::default()
        };
        w.up.sent = sent;
        w.down.sent = sent;
        for _ in 0..echoed {
            w.up.arrived(1_000_000, 100, 0.0);
            w.down.arrived(2_000_000, 100, 0.0);
        }
        Level { factor, window: w }
    }

    #[test]
    fn reports_goodput_against_capacity() {
        let o = OverloadOutcome {
            capacity_pps: Some(1000.0),
            levels: vec![level(0.5, 1000, 1000), level(2.0, 4000, 1800)],
            ..Default::default()
        };
        assert_eq!(o.levels[1].echoed_pps(), 900.0);
        let text = summary(&o);
        assert!(text.contains("echoed      900"), "{text}");
        assert!(text.contains("90.0 % of capacity"), "{text}");
        let json = to_json(&o).render();
        assert!(json.contains("\"echoed_of_capacity\":0.9"), "{json}");
        assert!(json.contains("\"capacity_pps_each_way\":1000"), "{json}");
    }

    #[test]
    fn without_capacity_nothing_is_offered() {
        let o = OverloadOutcome::default();
        assert!(summary(&o).contains("no capacity"));
    }
}
