//! Hand-written SVG charts: latency and loss against load for a ramp, and the latency
//! distribution of a fixed-load run.

use std::fmt::Write as _;

use super::driver::Window;
use super::stats::Histogram;

const W: f64 = 720.0;
const H: f64 = 420.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 70.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;

/// One line on a chart.
struct Series<'a> {
    name: &'a str,
    color: &'a str,
    points: Vec<(f64, f64)>,
    right_axis: bool,
}

fn esc(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn nice_max(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let mag = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if v <= m * mag {
            return m * mag;
        }
    }
    10.0 * mag
}

fn chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    y2_label: Option<&str>,
    series: &[Series<'_>],
) -> String {
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;
    let all = || series.iter().flat_map(|s| s.points.iter());
    let x_min = all().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let x_min = if x_min.is_finite() {
        x_min.min(0.0)
    } else {
        0.0
    };
    let x_max = nice_max(all().map(|p| p.0).fold(0.0, f64::max));
    let y_of = |right: bool| {
        nice_max(
            series
                .iter()
                .filter(|s| s.right_axis == right)
                .flat_map(|s| s.points.iter().map(|p| p.1))
                .fold(0.0, f64::max),
        )
    };
    let (y_max, y2_max) = (y_of(false), y_of(true));
    let sx = |x: f64| LEFT + (x - x_min) / (x_max - x_min).max(1e-12) * pw;
    let sy = |y: f64, m: f64| TOP + ph - (y / m).clamp(0.0, 1.0) * ph;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>"#,
        W / 2.0,
        esc(title)
    );
    // Grid and tick labels.
    for k in 0..=5 {
        let f = k as f64 / 5.0;
        let y = TOP + ph - f * ph;
        let x = LEFT + f * pw;
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/>"##,
            LEFT + pw
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            LEFT - 6.0,
            y + 4.0,
            fmt_tick(f * y_max)
        );
        if y2_label.is_some() {
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
                LEFT + pw + 6.0,
                y + 4.0,
                fmt_tick(f * y2_max)
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            TOP + ph + 18.0,
            fmt_tick(x_min + f * (x_max - x_min))
        );
    }
    let _ = writeln!(
        s,
        r#"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="black"/>"#
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        LEFT + pw / 2.0,
        H - 18.0,
        esc(x_label)
    );
    let _ = writeln!(
        s,
        r#"<text transform="translate(18 {:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
        TOP + ph / 2.0,
        esc(y_label)
    );
    if let Some(l) = y2_label {
        let _ = writeln!(
            s,
            r#"<text transform="translate({:.1} {:.1}) rotate(90)" text-anchor="middle">{}</text>"#,
            W - 14.0,
            TOP + ph / 2.0,
            esc(l)
        );
    }
    for (i, ser) in series.iter().enumerate() {
        let m = if ser.right_axis { y2_max } else { y_max };
        let pts: Vec<String> = ser
            .points
            .iter()
            .filter(|p| p.0.is_finite() && p.1.is_finite())
            .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y, m)))
            .collect();
        let dash = if ser.right_axis {
            r#" stroke-dasharray="6 3""#
        } else {
            ""
        };
        let _ = writeln!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"{dash}/>"#,
            pts.join(" "),
            ser.color
        );
        for p in &pts {
            let (x, y) = p.split_once(',').unwrap_or(("0", "0"));
            let _ = writeln!(
                s,
                r#"<circle cx="{x}" cy="{y}" r="3" fill="{}"/>"#,
                ser.color
            );
        }
        let ly = TOP + 16.0 + i as f64 * 16.0;
        let _ = writeln!(
            s,
            r#"<line x1="{:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{}" stroke-width="2"{dash}/><text x="{:.1}" y="{:.1}">{}</text>"#,
            LEFT + 10.0,
            LEFT + 30.0,
            ser.color,
            LEFT + 36.0,
            ly + 4.0,
            esc(ser.name)
        );
    }
    s.push_str("</svg>\n");
    s
}

fn fmt_tick(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 1000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v.abs() >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// Ramp chart: p50 and p99 one-way latency (worse leg) and loss against pps each way.
pub fn ramp_chart(title: &str, windows: &[Window]) -> String {
    let x = |w: &Window| w.achieved_pps();
    let worst =
        |w: &Window, q: f64| w.up.latency.quantile(q).max(w.down.latency.quantile(q)) as f64 / 1e6;
    let series = [
        Series {
            name: "p50 latency (ms)",
            color: "#1f77b4",
            points: windows.iter().map(|w| (x(w), worst(w, 0.5))).collect(),
            right_axis: false,
        },
        Series {
            name: "p99 latency (ms)",
            color: "#d62728",
            points: windows.iter().map(|w| (x(w), worst(w, 0.99))).collect(),
            right_axis: false,
        },
        Series {
            name: "loss (%)",
            color: "#2ca02c",
            points: windows.iter().map(|w| (x(w), w.loss() * 100.0)).collect(),
            right_axis: true,
        },
    ];
    chart(
        title,
        "packets per second, each way",
        "one-way latency, ms",
        Some("loss, %"),
        &series,
    )
}

/// Fixed-load chart: the share of packets per latency bucket for each leg.
pub fn latency_histogram_chart(title: &str, up: &Histogram, down: &Histogram) -> String {
    let dist = |h: &Histogram| -> Vec<(f64, f64)> {
        let total = h.count().max(1) as f64;
        h.buckets()
            .map(|(lo, hi, c)| ((lo + hi) as f64 / 2.0 / 1e6, c as f64 / total * 100.0))
            .collect()
    };
    let series = [
        Series {
            name: "client → peer",
            color: "#1f77b4",
            points: dist(up),
            right_axis: false,
        },
        Series {
            name: "peer → client",
            color: "#ff7f0e",
            points: dist(down),
            right_axis: false,
        },
    ];
    chart(title, "one-way latency, ms", "packets, %", None, &series)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal well-formedness check: every tag opened is closed in order.
    fn well_formed(svg: &str) -> bool {
        let mut stack: Vec<String> = Vec::new();
        let mut rest = svg;
        while let Some(i) = rest.find('<') {
            let Some(j) = rest[i..].find('>') else {
                return false;
            };
            let tag = &rest[i + 1..i + j];
            rest = &rest[i + j + 1..];
            if let Some(name) = tag.strip_prefix('/') {
                if stack.pop().as_deref() != Some(name.trim()) {
                    return false;
                }
            } else if !tag.ends_with('/') {
                stack.push(tag.split_whitespace().next().unwrap_or("").to_string());
            }
        }
        stack.is_empty()
    }

    #[test]
    fn ramp_chart_is_well_formed() {
        let mut ws = Vec::new();
        for k in 1..5u64 {
            let mut w = Window {
                participants: k as usize * 10,
                seconds: 1.0,
                target_pps: k as f64 * 500.0,
                ..Default::default()
            };
            w.up.sent = k * 500;
            for _ in 0..k * 490 {
                w.up.arrived(k * 100_000, 100, 0.0);
            }
            ws.push(w);
        }
        let svg = ramp_chart("ramp <test> & more", &ws);
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("&lt;test&gt; &amp;"));
        assert!(well_formed(&svg), "{svg}");
        assert_eq!(svg.matches("<polyline").count(), 3);
        assert!(!svg.contains("NaN"));
    }

    #[test]
    fn histogram_chart_is_well_formed_even_when_empty() {
        let mut h = Histogram::default();
        for v in [50_000u64, 60_000, 70_000, 2_000_000] {
            h.record(v);
        }
        let svg = latency_histogram_chart("fixed", &h, &Histogram::default());
        assert!(well_formed(&svg), "{svg}");
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
    }
}
