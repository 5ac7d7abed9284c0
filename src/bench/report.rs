//! The results of a run: JSON for scripts and a plain-text summary for people.

use std::fmt::Write as _;
use std::net::SocketAddr;

use super::driver::Window;
use super::profile::Profile;
use super::stats::{Histogram, Leg};

/// A JSON value, written by hand to keep the tool free of a serialisation framework.
#[derive(Debug, Clone)]
pub enum Json {
    /// null.
    Null,
    /// true / false.
    Bool(bool),
    /// An integer.
    Int(u64),
    /// A float; non-finite values are written as null.
    Num(f64),
    /// A string.
    Str(String),
    /// An array.
    Arr(Vec<Json>),
    /// An object, keys in order.
    Obj(Vec<(&'static str, Json)>),
}

impl Json {
    /// Compact JSON text.
    pub fn render(&self) -> String {
        let mut s = String::new();
        self.write(&mut s);
        s
    }

    fn write(&self, s: &mut String) {
        match self {
            Json::Null => s.push_str("null"),
            Json::Bool(b) => s.push_str(if *b { "true" } else { "false" }),
            Json::Int(i) => {
                let _ = write!(s, "{i}");
            }
            Json::Num(f) if f.is_finite() => {
                // Three decimals is below every figure's precision and keeps files small.
                let r = (f * 1000.0).round() / 1000.0;
                let _ = write!(s, "{r}");
            }
            Json::Num(_) => s.push_str("null"),
            Json::Str(t) => write_str(s, t),
            Json::Arr(items) => {
                s.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        s.push(',');
                    }
                    v.write(s);
                }
                s.push(']');
            }
            Json::Obj(fields) => {
                s.push('{');
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        s.push(',');
                    }
                    write_str(s, k);
                    s.push(':');
                    v.write(s);
                }
                s.push('}');
            }
        }
    }
}

fn write_str(s: &mut String, t: &str) {
    s.push('"');
    for c in t.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(s, "\\u{:04x}", c as u32);
            }
            c => s.push(c),
        }
    }
    s.push('"');
}

/// `{"code": count, ...}` of STUN error codes.
fn code_counts(codes: &[u16]) -> Json {
    let mut sorted = codes.to_vec();
    sorted.sort_unstable();
    let mut out: Vec<Json> = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let j = sorted[i..].iter().take_while(|c| **c == sorted[i]).count();
        out.push(Json::Arr(vec![
            Json::Int(sorted[i] as u64),
            Json::Int(j as u64),
        ]));
        i += j;
    }
    Json::Arr(out)
}

fn ms(ns: u64) -> Json {
    Json::Num(ns as f64 / 1e6)
}

fn opt_num(v: Option<f64>) -> Json {
    v.map_or(Json::Null, Json::Num)
}

/// Latency summary of a histogram in milliseconds.
pub fn latency_json(h: &Histogram) -> Json {
    Json::Obj(vec![
        ("count", Json::Int(h.count())),
        ("p50_ms", ms(h.quantile(0.5))),
        ("p99_ms", ms(h.quantile(0.99))),
        ("p999_ms", ms(h.quantile(0.999))),
        ("max_ms", ms(h.max())),
        ("mean_ms", Json::Num(h.mean() / 1e6)),
    ])
}

fn leg_json(l: &Leg) -> Json {
    Json::Obj(vec![
        ("sent", Json::Int(l.sent)),
        ("received", Json::Int(l.received)),
        ("loss_pct", Json::Num(l.loss() * 100.0)),
        ("p50_ms", ms(l.latency.quantile(0.5))),
        ("p99_ms", ms(l.latency.quantile(0.99))),
        ("p999_ms", ms(l.latency.quantile(0.999))),
        ("max_ms", ms(l.latency.max())),
        ("jitter_ms", Json::Num(l.mean_jitter_ns() / 1e6)),
    ])
}

/// One measured window as JSON.
pub fn window_json(w: &Window) -> Json {
    let server = match &w.server {
        Some((a, b)) => Json::Obj(vec![
            ("cpu_us_per_packet", opt_num(w.server_us_per_packet())),
            (
                "cpu_pct",
                Json::Num(super::sampler::cpu_share(a, b) * 100.0),
            ),
            ("rss_kib", Json::Int(b.rss_kib)),
        ]),
        None => Json::Null,
    };
    Json::Obj(vec![
        ("participants", Json::Int(w.participants as u64)),
        ("seconds", Json::Num(w.seconds)),
        ("target_pps_each_way", Json::Num(w.target_pps)),
        ("achieved_pps_each_way", Json::Num(w.achieved_pps())),
        ("relayed_pps", Json::Num(w.relayed_pps())),
        ("relayed_mbps", Json::Num(w.relayed_mbps())),
        ("loss_pct", Json::Num(w.loss() * 100.0)),
        ("p99_ms", ms(worse_p99(w))),
        ("client_limited", Json::Bool(w.client_limited())),
        ("frames", Json::Int(w.frames)),
        ("late_frames", Json::Int(w.late_frames)),
        ("skipped_frames", Json::Int(w.skipped_frames)),
        ("send_errors", Json::Int(w.send_errors)),
        ("generator_cpu_pct", Json::Num(w.generator_cpu * 100.0)),
        ("steal_pct", Json::Num(w.steal * 100.0)),
        ("max_stall_ms", ms(w.max_stall_ns)),
        ("up", leg_json(&w.up)),
        ("down", leg_json(&w.down)),
        ("server", server),
    ])
}

/// The worse p99 of the two legs, ns.
pub fn worse_p99(w: &Window) -> u64 {
    w.up.latency
        .quantile(0.99)
        .max(w.down.latency.quantile(0.99))
}

/// Results of the `alloc` mode.
#[derive(Debug, Clone, Default)]
pub struct AllocResult {
    /// Transactions kept outstanding.
    pub concurrency: usize,
    /// Cycles completed.
    pub completed: u64,
    /// Cycles that failed (error or timeout).
    pub failed: u64,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Time from the first Allocate to the allocation (challenge round trip included).
    pub allocate_latency: Histogram,
    /// Time of the whole cycle, Refresh 0 included.
    pub cycle_latency: Histogram,
    /// Server CPU share over the run.
    pub server_cpu: Option<f64>,
    /// STUN error codes of failed cycles (0 = timeout), first 1000.
    pub failure_codes: Vec<u16>,
}

/// Results of the `hold` mode.
#[derive(Debug, Clone, Default)]
pub struct HoldResult {
    /// Allocations asked for.
    pub requested: usize,
    /// Allocations held.
    pub held: usize,
    /// Seconds to make them.
    pub setup_seconds: f64,
    /// Seconds they were held.
    pub hold_seconds: f64,
    /// Server RSS before, KiB.
    pub rss_before_kib: Option<u64>,
    /// Server RSS while held, KiB.
    pub rss_after_kib: Option<u64>,
}

impl HoldResult {
    /// Server memory per held allocation, KiB.
    pub fn kib_per_allocation(&self) -> Option<f64> {
        let (a, b) = (self.rss_before_kib?, self.rss_after_kib?);
        (self.held > 0).then(|| (b as f64 - a as f64) / self.held as f64)
    }
}

/// Everything a run found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// fixed, ramp, alloc or hold.
    pub mode: &'static str,
    /// The server measured.
    pub server: Option<SocketAddr>,
    /// The media profile (fixed, ramp).
    pub profile: Option<Profile>,
    /// Measured windows: one for fixed, one per step for ramp.
    pub windows: Vec<Window>,
    /// ramp: index into `windows` of the last step that met the bounds.
    pub capacity_step: Option<usize>,
    /// ramp: why it stopped.
    pub stop_reason: Option<String>,
    /// ramp: the p99 bound, ms.
    pub max_p99_ms: Option<f64>,
    /// alloc results.
    pub alloc: Option<AllocResult>,
    /// hold results.
    pub hold: Option<HoldResult>,
    /// Setup failures by STUN error code (0 = timeout).
    pub setup_failures: Vec<u16>,
    /// overload: the levels offered after the ramp.
    pub overload: Option<super::overload::OverloadOutcome>,
}

impl Report {
    /// The report as JSON.
    pub fn to_json(&self) -> Json {
        let mut f: Vec<(&'static str, Json)> = vec![
            (
                "tool",
                Json::Str(format!("ferroturn-bench {}", env!("CARGO_PKG_VERSION"))),
            ),
            ("mode", Json::Str(self.mode.into())),
            (
                "server",
                self.server.map_or(Json::Null, |s| Json::Str(s.to_string())),
            ),
        ];
        if let Some(p) = &self.profile {
            f.push((
                "profile",
                Json::Obj(vec![
                    ("name", Json::Str(p.name.into())),
                    ("pps", Json::Num(p.pps())),
                    ("packets_per_frame", Json::Int(p.packets_per_frame as u64)),
                    ("size", Json::Int(p.size as u64)),
                ]),
            ));
        }
        if !self.windows.is_empty() {
            f.push((
                "windows",
                Json::Arr(self.windows.iter().map(window_json).collect()),
            ));
        }
        if self.mode == "ramp" || self.mode == "overload" {
            let cap = self.capacity_step.map(|i| &self.windows[i]);
            f.push((
                "capacity",
                Json::Obj(vec![
                    (
                        "participants",
                        cap.map_or(Json::Null, |w| Json::Int(w.participants as u64)),
                    ),
                    (
                        "pps_each_way",
                        cap.map_or(Json::Null, |w| Json::Num(w.achieved_pps())),
                    ),
                    ("max_p99_ms", opt_num(self.max_p99_ms)),
                    ("client_limited", Json::Bool(self.ramp_client_limited())),
                    (
                        "stop_reason",
                        self.stop_reason
                            .as_ref()
                            .map_or(Json::Null, |s| Json::Str(s.clone())),
                    ),
                ]),
            ));
        }
        if let Some(o) = &self.overload {
            f.push(("overload", super::overload::to_json(o)));
        }
        if let Some(a) = &self.alloc {
            f.push((
                "alloc",
                Json::Obj(vec![
                    ("concurrency", Json::Int(a.concurrency as u64)),
                    ("completed", Json::Int(a.completed)),
                    ("failed", Json::Int(a.failed)),
                    ("seconds", Json::Num(a.seconds)),
                    (
                        "allocations_per_second",
                        Json::Num(a.completed as f64 / a.seconds.max(1e-9)),
                    ),
                    ("allocate_latency", latency_json(&a.allocate_latency)),
                    ("cycle_latency", latency_json(&a.cycle_latency)),
                    ("server_cpu_pct", opt_num(a.server_cpu.map(|c| c * 100.0))),
                    ("failure_codes", code_counts(&a.failure_codes)),
                ]),
            ));
        }
        if let Some(h) = &self.hold {
            f.push((
                "hold",
                Json::Obj(vec![
                    ("requested", Json::Int(h.requested as u64)),
                    ("held", Json::Int(h.held as u64)),
                    ("setup_seconds", Json::Num(h.setup_seconds)),
                    ("hold_seconds", Json::Num(h.hold_seconds)),
                    (
                        "rss_before_kib",
                        h.rss_before_kib.map_or(Json::Null, Json::Int),
                    ),
                    (
                        "rss_after_kib",
                        h.rss_after_kib.map_or(Json::Null, Json::Int),
                    ),
                    ("kib_per_allocation", opt_num(h.kib_per_allocation())),
                ]),
            ));
        }
        let mut codes = self.setup_failures.clone();
        codes.sort_unstable();
        f.push((
            "setup_failures",
            Json::Arr(codes.into_iter().map(|c| Json::Int(c as u64)).collect()),
        ));
        Json::Obj(f)
    }

    /// Whether the ramp's result says more about the generator than the server: the capacity
    /// step was client-limited, or the ramp stopped because the generator could not go on.
    pub fn ramp_client_limited(&self) -> bool {
        let cap = self
            .capacity_step
            .is_some_and(|i| self.windows[i].client_limited());
        let stop = self
            .stop_reason
            .as_deref()
            .is_some_and(|r| r.contains("client-limited"));
        cap || stop
    }

    /// A plain-text summary.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        for (i, w) in self.windows.iter().enumerate() {
            let mark = if self.capacity_step == Some(i) {
                " <= capacity"
            } else {
                ""
            };
            let _ = writeln!(s, "{}{mark}", window_line(w));
        }
        if let Some(r) = &self.stop_reason {
            let _ = writeln!(s, "ramp stopped: {r}");
        }
        if self.mode == "ramp" || self.mode == "overload" {
            match self.capacity_step.map(|i| &self.windows[i]) {
                Some(w) => {
                    let _ = writeln!(
                        s,
                        "capacity: {} participants, {:.0} pps each way",
                        w.participants,
                        w.achieved_pps()
                    );
                }
                None => s.push_str("capacity: no step met the bounds\n"),
            }
        }
        if let Some(o) = &self.overload {
            s.push_str(&super::overload::summary(o));
        }
        if let Some(a) = &self.alloc {
            let _ = writeln!(
                s,
                "alloc: {} cycles ({} failed) in {:.2} s = {:.0} allocations/s, {} outstanding; allocate latency p50 {:.2} ms p99 {:.2} ms",
                a.completed,
                a.failed,
                a.seconds,
                a.completed as f64 / a.seconds.max(1e-9),
                a.concurrency,
                a.allocate_latency.quantile(0.5) as f64 / 1e6,
                a.allocate_latency.quantile(0.99) as f64 / 1e6
            );
        }
        if let Some(h) = &self.hold {
            let _ = write!(
                s,
                "hold: {}/{} allocations held for {:.1} s (set up in {:.1} s)",
                h.held, h.requested, h.hold_seconds, h.setup_seconds
            );
            match h.kib_per_allocation() {
                Some(k) => {
                    let _ = writeln!(s, "; server RSS {:.2} KiB per allocation", k);
                }
                None => s.push_str("; server RSS unknown (no --server-pid)\n"),
            }
        }
        if !self.setup_failures.is_empty() {
            let _ = writeln!(
                s,
                "setup failures: {} (STUN codes, 0 = timeout): {:?}",
                self.setup_failures.len(),
                &self.setup_failures[..self.setup_failures.len().min(10)]
            );
        }
        s
    }
}

/// One line per window.
pub fn window_line(w: &Window) -> String {
    let ms = |ns: u64| ns as f64 / 1e6;
    let mut s = format!(
        "{:>5} participants: {:>8.0}/{:>8.0} pps each way, {:>7.2} Mbit/s, loss up {:.2}% down {:.2}%, latency up p50/p99/p99.9 {:.3}/{:.3}/{:.3} ms down {:.3}/{:.3}/{:.3} ms, jitter {:.3} ms",
        w.participants,
        w.achieved_pps(),
        w.target_pps,
        w.relayed_mbps(),
        w.up.loss() * 100.0,
        w.down.loss() * 100.0,
        ms(w.up.latency.quantile(0.5)),
        ms(w.up.latency.quantile(0.99)),
        ms(w.up.latency.quantile(0.999)),
        ms(w.down.latency.quantile(0.5)),
        ms(w.down.latency.quantile(0.99)),
        ms(w.down.latency.quantile(0.999)),
        w.down.mean_jitter_ns() / 1e6,
    );
    if let (Some(us), Some((_, b))) = (w.server_us_per_packet(), &w.server) {
        let _ = write!(s, ", server {us:.2} µs/packet, RSS {} KiB", b.rss_kib);
    }
    let _ = write!(
        s,
        ", generator CPU {:.0}%, steal {:.1}%, longest stall {:.1} ms",
        w.generator_cpu * 100.0,
        w.steal * 100.0,
        w.max_stall_ns as f64 / 1e6
    );
    if w.client_limited() {
        s.push_str(" [client-limited]");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_valid_and_has_the_fields() {
        let mut w = Window {
            participants: 5,
            seconds: 2.0,
            target_pps: 250.0,
            ..Default::default()
        };
        w.up.sent = 500;
        w.down.sent = 500;
        for _ in 0..500 {
            w.up.arrived(100_000, 160, 1_000.0);
            w.down.arrived(120_000, 160, 1_000.0);
        }
        let r = Report {
            mode: "fixed",
            server: Some("127.0.0.1:3478".parse().unwrap()),
            profile: Some(Profile::AUDIO),
            windows: vec![w],
            setup_failures: vec![401],
            ..Default::default()
        };
        let text = r.to_json().render();
        let v: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        let w = &v["windows"][0];
        assert_eq!(w["participants"], 5);
        assert_eq!(w["up"]["loss_pct"], 0.0);
        assert_eq!(w["relayed_pps"], 500.0);
        assert_eq!(w["client_limited"], false);
        assert!(w["down"]["p99_ms"].as_f64().unwrap() > 0.11);
        assert_eq!(v["profile"]["name"], "audio");
        assert_eq!(v["setup_failures"][0], 401);
        assert!(r.summary().contains("5 participants"));
    }

    #[test]
    fn strings_are_escaped_and_nan_is_null() {
        let j = Json::Obj(vec![
            ("a", Json::Str("q\"b\\\n\u{1}".into())),
            ("n", Json::Num(f64::NAN)),
        ]);
        let v: serde_json::Value = serde_json::from_str(&j.render()).unwrap();
        assert_eq!(v["a"], "q\"b\\\n\u{1}");
        assert!(v["n"].is_null());
    }
}
