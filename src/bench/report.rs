//! The results of a run: JSON for scripts and a plain-text summary for people.

use std::fmt::Write as _;
use std::net::SocketAddr;

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use super::driver::Window;
use super::profile::Profile;
use super::stats::{Histogram, Leg};

/// A report value: a small ordered tree the report builds, written out by serde_json.
///
/// Not `serde_json::Value`: its objects are sorted maps unless serde_json's `preserve_order`
/// feature is on, and the report keeps its fields in reading order; floats are rounded here.
#[derive(Debug, Clone)]
pub enum Json {
    /// null.
    Null,
    /// true / false.
    Bool(bool),
    /// An integer.
    Int(u64),
    /// A float, rounded to three decimals; non-finite values are written as null.
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
        // Serializing this tree into a String has no failure case (string keys, no I/O).
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Null => s.serialize_unit(),
            Json::Bool(b) => s.serialize_bool(*b),
            Json::Int(i) => s.serialize_u64(*i),
            // Three decimals is below every figure's precision and keeps files small.
            Json::Num(f) if f.is_finite() => s.serialize_f64((f * 1000.0).round() / 1000.0),
            Json::Num(_) => s.serialize_unit(),
            Json::Str(t) => s.serialize_str(t),
            Json::Arr(items) => s.collect_seq(items),
            Json::Obj(fields) => {
                let mut map = s.serialize_map(Some(fields.len()))?;
                for (k, v) in fields {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
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
        (
            "server_core",
            match (w.server_core, w.server_core_us_per_packet()) {
                (Some((cpu, _, _)), Some(f)) => Json::Obj(vec![
                    ("cpu", Json::Int(cpu as u64)),
                    ("busy_us_per_packet", Json::Num(f.busy_us)),
                    ("busy_pct", Json::Num(f.busy_share * 100.0)),
                    ("own_us_per_packet", Json::Num(f.own_us)),
                ]),
                _ => Json::Null,
            },
        ),
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
    /// How long they were held and what they cost the server.
    pub memory: HeldMemory,
}

/// What holding allocations or connections idle costs the server (`hold` and `handshake`).
#[derive(Debug, Clone, Copy, Default)]
pub struct HeldMemory {
    /// Seconds they were held.
    pub seconds: f64,
    /// Server RSS before the first one was made, KiB.
    pub before_kib: Option<u64>,
    /// Server RSS at the end of the hold, when the server has settled, KiB.
    pub held_kib: Option<u64>,
}

impl HeldMemory {
    /// Server memory per held allocation or connection, KiB, for `held` of them.
    pub fn kib_each(&self, held: usize) -> Option<f64> {
        let (a, b) = (self.before_kib?, self.held_kib?);
        (held > 0).then(|| (b as f64 - a as f64) / held as f64)
    }

    /// The JSON fields: the hold's seconds, the RSS before and (as `held_key`) at the end,
    /// and (as `each_key`) the KiB per one of `held`.
    fn json_fields(
        &self,
        held: usize,
        held_key: &'static str,
        each_key: &'static str,
    ) -> [(&'static str, Json); 4] {
        let kib = |v: Option<u64>| v.map_or(Json::Null, Json::Int);
        [
            ("hold_seconds", Json::Num(self.seconds)),
            ("rss_before_kib", kib(self.before_kib)),
            (held_key, kib(self.held_kib)),
            (each_key, opt_num(self.kib_each(held))),
        ]
    }
}

/// Everything a run found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// fixed, ramp, alloc or hold.
    pub mode: &'static str,
    /// The server measured.
    pub server: Option<SocketAddr>,
    /// Client ↔ server transport: udp, tcp or tls (the peers are always UDP).
    pub transport: &'static str,
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
    /// handshake results.
    pub handshake: Option<super::handshake::HandshakeResult>,
    /// Why TCP/TLS connections failed during setup, with counts.
    pub stream_errors: Vec<(String, usize)>,
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
            ("transport", Json::Str(self.transport_name().into())),
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
                    ("reached", Json::Bool(self.capacity_reached())),
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
            let mut fields = vec![
                ("requested", Json::Int(h.requested as u64)),
                ("held", Json::Int(h.held as u64)),
                ("setup_seconds", Json::Num(h.setup_seconds)),
            ];
            fields.extend(
                h.memory
                    .json_fields(h.held, "rss_after_kib", "kib_per_allocation"),
            );
            f.push(("hold", Json::Obj(fields)));
        }
        if let Some(h) = &self.handshake {
            let mut fields = vec![
                ("transport", Json::Str(h.transport.into())),
                ("requested", Json::Int(h.requested as u64)),
                ("completed", Json::Int(h.completed as u64)),
                ("failed", Json::Int(h.failed as u64)),
                ("concurrency", Json::Int(h.concurrency as u64)),
                ("seconds", Json::Num(h.seconds)),
                ("per_second", Json::Num(h.per_second())),
                ("latency", latency_json(&h.latency)),
                (
                    "server_cpu_us_per_connection",
                    opt_num(h.server_us_per_connection()),
                ),
            ];
            fields.extend(
                h.memory
                    .json_fields(h.completed, "rss_held_kib", "kib_per_connection"),
            );
            f.push(("handshake", Json::Obj(fields)));
        }
        if !self.stream_errors.is_empty() {
            f.push((
                "stream_errors",
                Json::Arr(
                    self.stream_errors
                        .iter()
                        .map(|(why, n)| {
                            Json::Obj(vec![
                                ("reason", Json::Str(why.clone())),
                                ("count", Json::Int(*n as u64)),
                            ])
                        })
                        .collect(),
                ),
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

    /// ramp: whether the ramp found the capacity, i.e. its last step broke a bound (loss or
    /// p99), so the step before it is the most the server carries within the bounds. A ramp that
    /// stopped on its time bound, at --max-participants, on a generator limit or on failed
    /// allocations ends on a step that met the bounds: its `capacity_step` is only a lower bound.
    pub fn capacity_reached(&self) -> bool {
        !self.windows.is_empty() && self.capacity_step != Some(self.windows.len() - 1)
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

    /// The transport's name ("udp" when unset).
    pub fn transport_name(&self) -> &'static str {
        if self.transport.is_empty() {
            "udp"
        } else {
            self.transport
        }
    }

    /// A plain-text summary.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} over {} to {}",
            self.mode,
            self.transport_name(),
            self.server.map_or("?".to_string(), |a| a.to_string())
        );
        let reached = self.capacity_reached();
        for (i, w) in self.windows.iter().enumerate() {
            let mark = match (self.capacity_step == Some(i), reached) {
                (true, true) => " <= capacity",
                (true, false) => " <= last step, within the bounds",
                (false, _) => "",
            };
            let _ = writeln!(s, "{}{mark}", window_line(w));
        }
        if let Some(r) = &self.stop_reason {
            let _ = writeln!(s, "ramp stopped: {r}");
        }
        if self.mode == "ramp" || self.mode == "overload" {
            let why = self.stop_reason.as_deref().unwrap_or("stopped");
            match (self.capacity_step.map(|i| &self.windows[i]), reached) {
                (Some(w), true) => {
                    let _ = writeln!(
                        s,
                        "capacity: {} participants, {:.0} pps each way",
                        w.participants,
                        w.achieved_pps()
                    );
                }
                (Some(w), false) => {
                    let _ = writeln!(
                        s,
                        "capacity: ≥ {} participants (not reached: {why}), ≥ {:.0} pps each way",
                        w.participants,
                        w.achieved_pps()
                    );
                }
                (None, true) => s.push_str("capacity: no step met the bounds\n"),
                (None, false) => {
                    let _ = writeln!(s, "capacity: not measured ({why})");
                }
            }
        }
        if let Some(o) = &self.overload {
            s.push_str(&super::overload::summary(o));
        }
        if let Some(a) = &self.alloc {
            let _ = writeln!(
                s,
                "alloc: {} cycles ({} failed) in {:.2} s = {:.0} allocations/s, {} outstanding; allocate latency {}",
                a.completed,
                a.failed,
                a.seconds,
                a.completed as f64 / a.seconds.max(1e-9),
                a.concurrency,
                p50_p99(&a.allocate_latency)
            );
        }
        if let Some(h) = &self.hold {
            let _ = write!(
                s,
                "hold: {}/{} allocations held for {:.1} s (set up in {:.1} s)",
                h.held, h.requested, h.memory.seconds, h.setup_seconds
            );
            match h.memory.kib_each(h.held) {
                Some(k) => {
                    let _ = writeln!(s, "; server RSS {:.2} KiB per allocation", k);
                }
                None => s.push_str("; server RSS unknown (no --server-pid)\n"),
            }
        }
        if let Some(h) = &self.handshake {
            let _ = write!(
                s,
                "handshake: {}/{} {} connections ({} failed) in {:.2} s = {:.0} per second, {} outstanding; connect to Binding answer {}",
                h.completed,
                h.requested,
                h.transport,
                h.failed,
                h.seconds,
                h.per_second(),
                h.concurrency,
                p50_p99(&h.latency)
            );
            if let Some(us) = h.server_us_per_connection() {
                let _ = write!(s, ", server {us:.0} µs CPU per connection");
            }
            match h.memory.kib_each(h.completed) {
                Some(k) => {
                    let _ = writeln!(
                        s,
                        "\nheld {} idle connections for {:.1} s: server RSS {:.2} KiB per connection",
                        h.completed, h.memory.seconds, k
                    );
                }
                None => s.push_str("\nserver RSS unknown (no --server-pid)\n"),
            }
        }
        for (why, n) in &self.stream_errors {
            let _ = writeln!(s, "connections failed: {n} × {why}");
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

/// `p50 X ms p99 Y ms` of a latency histogram (nanoseconds).
fn p50_p99(h: &Histogram) -> String {
    let ms = |q: f64| h.quantile(q) as f64 / 1e6;
    format!("p50 {:.2} ms p99 {:.2} ms", ms(0.5), ms(0.99))
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
    if let (Some((cpu, _, _)), Some(f)) = (w.server_core, w.server_core_us_per_packet()) {
        let _ = write!(
            s,
            ", server core {cpu} busy {:.2} µs/packet ({:.0}%), of it the server's own (process + softirq) {:.2}",
            f.busy_us,
            f.busy_share * 100.0,
            f.own_us
        );
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

    /// A ramp of `steps` steps of 10, 20, ... participants whose last step lost `last_loss`
    /// of its packets.
    fn ramp(steps: usize, last_loss: u64, capacity_step: Option<usize>, why: &str) -> Report {
        let windows = (1..=steps)
            .map(|k| {
                let mut w = Window {
                    participants: 10 * k,
                    seconds: 1.0,
                    target_pps: 500.0 * k as f64,
                    ..Default::default()
                };
                w.up.sent = 500 * k as u64;
                w.down.sent = 500 * k as u64;
                let lost = if k == steps { last_loss } else { 0 };
                for _ in 0..500 * k as u64 - lost {
                    w.up.arrived(50_000, 160, 0.0);
                    w.down.arrived(50_000, 160, 0.0);
                }
                w
            })
            .collect();
        Report {
            mode: "ramp",
            windows,
            capacity_step,
            stop_reason: Some(why.into()),
            max_p99_ms: Some(50.0),
            ..Default::default()
        }
    }

    #[test]
    fn a_ramp_cut_by_its_time_bound_reports_a_lower_bound_not_a_capacity() {
        let r = ramp(3, 0, Some(2), "time bound reached");
        assert!(!r.capacity_reached());
        let text = r.summary();
        assert!(
            text.contains("capacity: ≥ 30 participants (not reached: time bound reached)"),
            "{text}"
        );
        assert!(!text.contains("<= capacity"), "{text}");
        assert!(text.contains("<= last step, within the bounds"), "{text}");
        let v: serde_json::Value = serde_json::from_str(&r.to_json().render()).unwrap();
        assert_eq!(v["capacity"]["reached"], false);
        assert_eq!(v["capacity"]["participants"], 30);
        // The same for a ramp that ran out of --max-participants.
        let r = ramp(2, 0, Some(1), "reached --max-participants 20");
        assert!(r
            .summary()
            .contains("capacity: ≥ 20 participants (not reached"));
    }

    #[test]
    fn a_ramp_that_broke_a_bound_reports_the_step_before_as_its_capacity() {
        let r = ramp(3, 100, Some(1), "loss 6.67% > 1% at 30 participants");
        assert!(r.capacity_reached());
        let text = r.summary();
        assert!(
            text.contains("capacity: 20 participants, 1000 pps each way"),
            "{text}"
        );
        assert!(!text.contains('≥'), "{text}");
        let v: serde_json::Value = serde_json::from_str(&r.to_json().render()).unwrap();
        assert_eq!(v["capacity"]["reached"], true);
        assert_eq!(v["capacity"]["participants"], 20);
        // The first step already broke a bound.
        let r = ramp(1, 100, None, "loss 20.00% > 1% at 10 participants");
        assert!(r.summary().contains("capacity: no step met the bounds"));
        // No step ran at all.
        let mut r = ramp(1, 0, None, "only 3 of 10 participants could allocate");
        r.windows.clear();
        assert!(!r.capacity_reached());
        assert!(r
            .summary()
            .contains("capacity: not measured (only 3 of 10 participants could allocate)"));
    }

    #[test]
    fn strings_are_escaped_and_nan_is_null() {
        let j = Json::Obj(vec![
            ("a", Json::Str("q\"b\\\n\u{1}".into())),
            ("n", Json::Num(f64::NAN)),
            ("r", Json::Num(1.23456)),
        ]);
        let text = j.render();
        assert!(
            text.starts_with("{\"a\":"),
            "fields keep their order: {text}"
        );
        assert!(text.ends_with(",\"r\":1.235}"), "rounded: {text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["a"], "q\"b\\\n\u{1}");
        assert!(v["n"].is_null());
    }
}
