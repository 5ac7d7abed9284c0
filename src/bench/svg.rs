//! SVG charts of a bench run, drawn with plotters' SVG backend: the latency distribution of a
//! fixed-load run, and latency and loss against load for a ramp.
//!
//! Latency spans decades (a 0.04 ms median next to a 20 ms tail), so both charts put it on a
//! logarithmic axis; the fixed-load chart is a CDF whose vertical axis counts "nines"
//! (0 %, 90 %, 99 %, 99.9 %, ...) so that the median and the tail quantiles each get room.

use plotters::chart::SeriesLabelStyle;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::driver::Window;
use super::stats::Histogram;

const SIZE: (u32, u32) = (760, 460);
const FONT: &str = "sans-serif";
const UP: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
const DOWN: RGBColor = RGBColor(0xff, 0x7f, 0x0e);
const P99: RGBColor = RGBColor(0xd6, 0x27, 0x28);
const LOSS: RGBColor = RGBColor(0x2c, 0xa0, 0x2c);

/// The quantiles the latency chart marks, with their labels.
pub const MARKED: [(f64, &str); 3] = [(0.5, "p50"), (0.99, "p99"), (0.999, "p99.9")];

/// Lowest latency an axis shows, ms (100 ns): the histogram is exact below 32 ns, and zero has
/// no place on a log axis.
const MIN_MS: f64 = 1e-4;

type DrawResult<T> = Result<T, DrawingAreaErrorKind<std::io::Error>>;

/// Runs `draw` on a fresh SVG canvas; a drawing error becomes a chart that says so instead of
/// an empty file.
fn render(
    title: &str,
    draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> DrawResult<()>,
) -> String {
    let mut svg = String::new();
    let outcome = {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE)
            .and_then(|()| draw(&root))
            .and_then(|()| root.present())
    };
    match outcome {
        Ok(()) => svg,
        Err(e) => {
            let mut svg = String::new();
            {
                let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
                let _ = root.fill(&WHITE);
                let _ = root.draw(&Text::new(
                    format!("{title}: the chart could not be drawn ({e})"),
                    (20, 40),
                    (FONT, 14),
                ));
                let _ = root.present();
            }
            svg
        }
    }
}

/// Draws a chart's series legend at `pos`, in the style all these charts share.
fn draw_legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    mut legend: SeriesLabelStyle<'a, '_, DB, CT>,
    pos: SeriesLabelPosition,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    legend
        .position(pos)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.4))
        .label_font((FONT, 12))
        .draw()
}

/// Cumulative share `f` (0..1) as "nines": 0.9 -> 1, 0.99 -> 2, 0.999 -> 3.
pub fn nines(f: f64) -> f64 {
    -(1.0 - f.clamp(0.0, 1.0)).log10()
}

/// The label of a nines tick: 0 -> "0%", 1 -> "90%", 3 -> "99.9%".
fn nines_label(n: f64) -> String {
    if n < 0.5 {
        return "0%".into();
    }
    let pct = 100.0 * (1.0 - 10f64.powf(-n));
    let decimals = (n.round() as usize).saturating_sub(2);
    format!("{pct:.decimals$}%")
}

/// A latency tick: as many decimals as its decade needs.
pub fn ms_label(v: f64) -> String {
    let decimals = if v >= 1.0 {
        0
    } else {
        (-v.log10()).ceil() as usize
    };
    format!("{v:.decimals$}")
}

/// The decade range around `[lo, hi]`, ms.
fn decade_range(lo: f64, hi: f64) -> (f64, f64) {
    let lo = lo.max(MIN_MS);
    let hi = hi.max(lo * 10.0);
    // A hair beyond the decades, so that both end decades get a tick label.
    (
        10f64.powf(lo.log10().floor()) * 0.999,
        10f64.powf(hi.log10().ceil()) * 1.001,
    )
}

/// The CDF of a histogram as steps in (latency ms, nines), one step per non-empty bucket at the
/// bucket's midpoint (where `Histogram::quantile` places its values), capped at `top`.
fn cdf_steps(h: &Histogram, top: f64) -> Vec<(f64, f64)> {
    let total = h.count();
    let mut points = Vec::new();
    let mut seen = 0u64;
    for (lo, hi, c) in h.buckets() {
        let x = ((lo + (hi - lo) / 2).min(h.max()) as f64 / 1e6).max(MIN_MS);
        let before = nines(seen as f64 / total as f64).min(top);
        seen += c;
        let after = nines(seen as f64 / total as f64).min(top);
        points.push((x, before));
        points.push((x, after));
    }
    points
}

/// Fixed-load chart: the CDF of one-way latency of each leg on a log latency axis, with p50, p99
/// and p99.9 marked on each curve and their values in the legend.
pub fn latency_histogram_chart(title: &str, up: &Histogram, down: &Histogram) -> String {
    render(title, |root| {
        let legs = [("client → peer", UP, up), ("peer → client", DOWN, down)];
        let live = || legs.iter().filter(|(_, _, h)| h.count() > 0);
        let lo = live()
            .filter_map(|(_, _, h)| h.buckets().next())
            .map(|(lo, _, _)| lo as f64 / 1e6)
            .fold(f64::INFINITY, f64::min);
        let hi = live()
            .map(|(_, _, h)| h.max() as f64 / 1e6)
            .fold(0.0, f64::max);
        let (x_lo, x_hi) = if lo.is_finite() {
            decade_range(lo, hi)
        } else {
            (0.01, 10.0)
        };
        // Enough nines for the largest sample (1,000 packets resolve 99.9 %), at least p99.9.
        let most = live().map(|(_, _, h)| h.count()).max().unwrap_or(1);
        let top_tick = ((most as f64).log10().ceil()).clamp(3.0, 6.0);
        let top = top_tick + 0.4;
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 17))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d((x_lo..x_hi).log_scale(), 0.0..top)?;
        chart
            .configure_mesh()
            .x_desc("one-way latency, ms (log scale)")
            .y_desc("packets at or below, %")
            .x_label_formatter(&|v| ms_label(*v))
            .y_labels(top_tick as usize + 1)
            .y_label_formatter(&|v| nines_label(*v))
            .axis_desc_style((FONT, 14))
            .label_style((FONT, 12))
            .draw()?;
        // Guide lines at the marked quantiles.
        for (q, name) in MARKED {
            let y = nines(q);
            chart.draw_series(DashedLineSeries::new(
                [(x_lo, y), (x_hi, y)],
                4,
                4,
                BLACK.mix(0.35).stroke_width(1),
            ))?;
            chart.draw_series(std::iter::once(Text::new(
                name.to_string(),
                (x_lo, y),
                (FONT, 11).into_font().color(&BLACK.mix(0.6)),
            )))?;
        }
        for (name, color, h) in live() {
            let color = *color;
            let values: Vec<String> = MARKED
                .iter()
                .map(|(q, label)| format!("{label} {}", ms_value(h.quantile(*q))))
                .collect();
            chart
                .draw_series(LineSeries::new(cdf_steps(h, top), color.stroke_width(2)))?
                .label(format!("{name}: {} ms", values.join(", ")))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            chart.draw_series(MARKED.iter().map(|(q, _)| {
                let x = (h.quantile(*q) as f64 / 1e6).max(MIN_MS);
                Circle::new((x, nines(*q)), 4, color.filled())
            }))?;
        }
        draw_legend(
            chart.configure_series_labels(),
            SeriesLabelPosition::LowerRight,
        )?;
        Ok(())
    })
}

/// A latency in ms with three significant decimals for small values.
fn ms_value(ns: u64) -> String {
    let ms = ns as f64 / 1e6;
    if ms >= 10.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.3}")
    }
}

/// Ramp chart: p50 and p99 one-way latency (worse leg) on a log axis, and loss on the right
/// axis, against pps each way.
pub fn ramp_chart(title: &str, windows: &[Window]) -> String {
    render(title, |root| {
        let x = |w: &Window| w.achieved_pps();
        let worst = |w: &Window, q: f64| {
            let ns = w.up.latency.quantile(q).max(w.down.latency.quantile(q));
            (ns as f64 / 1e6).max(MIN_MS)
        };
        let x_hi = windows.iter().map(x).fold(0.0, f64::max).max(1.0) * 1.05;
        let lat = |q: f64| windows.iter().map(move |w| worst(w, q));
        let lo = lat(0.5).fold(f64::INFINITY, f64::min);
        let hi = lat(0.99).fold(0.0, f64::max);
        let (y_lo, y_hi) = if lo.is_finite() {
            decade_range(lo, hi)
        } else {
            (0.01, 10.0)
        };
        let loss_hi = windows
            .iter()
            .map(|w| w.loss() * 100.0)
            .fold(0.0, f64::max)
            .max(1.0)
            * 1.1;
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 17))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .right_y_label_area_size(56)
            .build_cartesian_2d(0.0..x_hi, (y_lo..y_hi).log_scale())?
            .set_secondary_coord(0.0..x_hi, 0.0..loss_hi);
        chart
            .configure_mesh()
            .x_desc("packets per second, each way")
            .y_desc("one-way latency, ms (log scale)")
            .y_label_formatter(&|v| ms_label(*v))
            .x_label_formatter(&|v| format!("{v:.0}"))
            .axis_desc_style((FONT, 14))
            .label_style((FONT, 12))
            .draw()?;
        chart
            .configure_secondary_axes()
            .y_desc("loss, %")
            .axis_desc_style((FONT, 14))
            .label_style((FONT, 12))
            .draw()?;
        for (q, name, color) in [(0.5, "p50 latency", UP), (0.99, "p99 latency", P99)] {
            let points: Vec<(f64, f64)> = windows.iter().map(|w| (x(w), worst(w, q))).collect();
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            chart.draw_series(points.iter().map(|p| Circle::new(*p, 3, color.filled())))?;
        }
        let loss: Vec<(f64, f64)> = windows.iter().map(|w| (x(w), w.loss() * 100.0)).collect();
        chart
            .draw_secondary_series(DashedLineSeries::new(
                loss.clone(),
                6,
                3,
                LOSS.stroke_width(2),
            ))?
            .label("loss (right axis)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], LOSS.stroke_width(2)));
        chart.draw_secondary_series(loss.iter().map(|p| Circle::new(*p, 3, LOSS.filled())))?;
        draw_legend(
            chart.configure_series_labels(),
            SeriesLabelPosition::UpperLeft,
        )?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `<text>` elements of an SVG as (x, y, content).
    fn texts(svg: &str) -> Vec<(f64, f64, String)> {
        let attr = |tag: &str, name: &str| -> f64 {
            let key = format!(" {name}=\"");
            let i = tag.find(&key).map(|i| i + key.len()).expect("attribute");
            let j = tag[i..].find('"').expect("closing quote");
            tag[i..i + j].parse().expect("number")
        };
        let mut out = Vec::new();
        let mut rest = svg;
        while let Some(i) = rest.find("<text") {
            let open_end = rest[i..].find('>').expect("tag end") + i;
            let close = rest[open_end..].find("</text>").expect("closing tag") + open_end;
            let tag = &rest[i..open_end];
            out.push((
                attr(tag, "x"),
                attr(tag, "y"),
                rest[open_end + 1..close].trim().to_string(),
            ));
            rest = &rest[close..];
        }
        out
    }

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
            if tag.starts_with('?') || tag.starts_with('!') {
                continue;
            }
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

    /// Tick labels that are plain numbers, with their position along the axis (x for the
    /// horizontal axis: labels below the plot share one y).
    fn numeric_labels(svg: &str) -> Vec<(f64, f64, f64)> {
        texts(svg)
            .into_iter()
            .filter_map(|(x, y, t)| t.parse::<f64>().ok().map(|v| (v, x, y)))
            .collect()
    }

    enum Axis {
        Horizontal,
        Vertical,
    }

    /// The numeric labels of one axis as (value, position along the axis), by value: the
    /// horizontal axis's stand on one line below the plot (the largest y), the vertical axis's
    /// right-aligned left of it (the smallest x).
    fn axis_ticks(svg: &str, axis: Axis) -> Vec<(f64, f64)> {
        // A label (value, x, y) as (value, along the axis, outward across it).
        let place = |&(v, x, y): &(f64, f64, f64)| match axis {
            Axis::Horizontal => (v, x, y),
            Axis::Vertical => (v, y, -x),
        };
        let labels: Vec<_> = numeric_labels(svg).iter().map(place).collect();
        let edge = labels.iter().map(|l| l.2).fold(f64::NEG_INFINITY, f64::max);
        let mut ticks: Vec<(f64, f64)> = labels
            .iter()
            .filter(|l| (l.2 - edge).abs() < 1.0)
            .map(|l| (l.0, l.1))
            .collect();
        ticks.sort_by(|a, b| a.0.total_cmp(&b.0));
        ticks
    }

    /// Asserts that positions are linear in log10(value) and span at least two decades.
    fn assert_log_axis(ticks: &[(f64, f64)]) {
        assert!(ticks.len() >= 3, "too few ticks: {ticks:?}");
        let (first, last) = (ticks[0], ticks[ticks.len() - 1]);
        assert!(
            last.0 / first.0 >= 100.0,
            "spans under two decades: {ticks:?}"
        );
        let per_decade = (last.1 - first.1) / (last.0.log10() - first.0.log10());
        for (v, pos) in ticks {
            let want = first.1 + (v.log10() - first.0.log10()) * per_decade;
            assert!(
                (pos - want).abs() < 2.0,
                "tick {v} at {pos}, a log axis puts it at {want:.1}: {ticks:?}"
            );
        }
    }

    fn skewed(median_ns: u64, tail_ns: u64, n: u64) -> Histogram {
        let mut h = Histogram::default();
        for i in 0..n {
            // 98 % near the median, 2 % in a long tail.
            h.record(if i % 50 == 0 {
                tail_ns
            } else {
                median_ns + i % 7 * 1000
            });
        }
        h
    }

    #[test]
    fn latency_chart_is_a_cdf_on_a_log_axis_with_the_quantiles_marked() {
        // A 0.04 ms median with a 20 ms tail: the case a linear 0–20 ms axis squeezed flat.
        let up = skewed(40_000, 20_000_000, 5_000);
        let down = skewed(60_000, 5_000_000, 5_000);
        let svg = latency_histogram_chart("fixed <run> & co", &up, &down);
        assert!(well_formed(&svg), "{svg}");
        assert!(svg.contains("fixed &lt;run&gt; &amp; co"));
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
        let x_ticks = axis_ticks(&svg, Axis::Horizontal);
        assert_log_axis(&x_ticks);
        assert!(
            x_ticks[0].0 <= 0.04 && x_ticks.last().unwrap().0 >= 20.0,
            "{x_ticks:?}"
        );
        // The vertical axis counts nines.
        let all = texts(&svg);
        for tick in ["0%", "90%", "99%", "99.9%"] {
            assert!(all.iter().any(|t| t.2 == tick), "no {tick} tick");
        }
        // p50/p99/p99.9 guides, a dot per quantile and leg, and the values in the legend.
        for (_, name) in MARKED {
            assert!(all.iter().any(|t| t.2 == name), "no {name} marker");
        }
        assert_eq!(svg.matches("<circle").count(), 6, "{svg}");
        let legend = all
            .iter()
            .find(|t| t.2.starts_with("client → peer"))
            .expect("legend entry");
        assert!(
            legend
                .2
                .contains(&format!("p50 {}", ms_value(up.quantile(0.5)))),
            "{legend:?}"
        );
        assert!(legend.2.contains("p99.9 20.0"), "{legend:?}");
    }

    #[test]
    fn nines_scale_and_labels() {
        assert!((nines(0.99) - 2.0).abs() < 1e-9);
        assert_eq!(nines_label(0.0), "0%");
        assert_eq!(nines_label(1.0), "90%");
        assert_eq!(nines_label(2.0), "99%");
        assert_eq!(nines_label(3.0), "99.9%");
        assert_eq!(ms_label(0.001), "0.001");
        assert_eq!(ms_label(10.0), "10");
        assert_eq!(decade_range(0.04, 20.0), (0.01 * 0.999, 100.0 * 1.001));
    }

    #[test]
    fn ramp_chart_has_a_log_latency_axis_and_three_series() {
        let mut ws = Vec::new();
        for k in 1..6u64 {
            let mut w = Window {
                participants: k as usize * 10,
                seconds: 1.0,
                target_pps: k as f64 * 500.0,
                ..Default::default()
            };
            w.up.sent = k * 500;
            for i in 0..k * 490 {
                // The p99 grows a decade a step.
                let tail = 10u64.pow(k as u32) * 10_000;
                w.up.arrived(if i % 20 == 0 { tail } else { 40_000 }, 100, 0.0);
            }
            ws.push(w);
        }
        let svg = ramp_chart("ramp <test> & more", &ws);
        assert!(svg.contains("&lt;test&gt; &amp;"));
        assert!(well_formed(&svg), "{svg}");
        for color in ["#1F77B4", "#D62728", "#2CA02C"] {
            let stroke = format!("stroke=\"{color}\"");
            assert!(
                svg.split("<polyline").skip(1).any(|p| p.contains(&stroke)),
                "no line in {color}"
            );
        }
        // A dot per step on each of the three series (legend marks are lines, not dots).
        assert_eq!(svg.matches("<circle").count(), 3 * ws.len(), "{svg}");
        assert!(!svg.contains("NaN"));
        // Latency ticks on the vertical axis.
        assert_log_axis(&axis_ticks(&svg, Axis::Vertical));
    }

    #[test]
    fn charts_are_well_formed_even_when_empty() {
        let svg = latency_histogram_chart("fixed", &Histogram::default(), &Histogram::default());
        assert!(well_formed(&svg), "{svg}");
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
        assert!(!svg.contains("could not be drawn"), "{svg}");
        let svg = ramp_chart("ramp", &[]);
        assert!(well_formed(&svg), "{svg}");
        assert!(!svg.contains("could not be drawn"), "{svg}");
    }
}
