//! The progress bar of `ferroturn bench` on stderr, drawn by indicatif: redrawn in place on a
//! terminal, hidden when stderr is not one, and with `--progress` written to a pipe or log file
//! as plain lines once a second, without escape codes.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};

/// Resolution of a bar: fractions are shown in thousandths.
const STEPS: u64 = 1000;
const TEMPLATE: &str = "{msg} [{bar:30}] {percent:>3}% {elapsed}";

/// Where the bars go.
#[derive(Debug, Clone)]
enum Sink {
    /// Nowhere.
    Hidden,
    /// The terminal on stderr, redrawn in place.
    Terminal,
    /// Plain lines (a pipe, a log file, or a test's buffer).
    Lines(Arc<dyn Lines>),
}

/// Takes the plain lines of a bar.
trait Lines: std::fmt::Debug + Send + Sync {
    fn line(&self, s: &str);
}

/// Plain lines on stderr.
#[derive(Debug)]
struct StderrLines;

impl Lines for StderrLines {
    fn line(&self, s: &str) {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{s}");
    }
}

/// A terminal that cannot move its cursor: every redraw that changed something becomes one new
/// line; the blanking indicatif writes after a line is dropped.
#[derive(Debug)]
struct PlainTerm {
    out: Arc<dyn Lines>,
    last: Mutex<String>,
}

impl PlainTerm {
    fn emit(&self, s: &str) {
        let s = s.trim_end();
        if s.is_empty() {
            return;
        }
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if *last != s {
            self.out.line(s);
            *last = s.to_string();
        }
    }
}

impl TermLike for PlainTerm {
    fn width(&self) -> u16 {
        100
    }
    fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.emit(s);
        Ok(())
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        self.emit(s);
        Ok(())
    }
    fn clear_line(&self) -> std::io::Result<()> {
        Ok(())
    }
    fn flush(&self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One bar per stage of a run.
pub struct Progress {
    sink: Sink,
    bar: ProgressBar,
}

impl Progress {
    /// A bar on stderr when it is a terminal; with `force`, plain lines when it is not.
    pub fn new(force: bool) -> Progress {
        let sink = if std::io::stderr().is_terminal() {
            Sink::Terminal
        } else if force {
            Sink::Lines(Arc::new(StderrLines))
        } else {
            Sink::Hidden
        };
        Progress::on(sink)
    }

    /// A bar that never draws (tests, JSON-only runs).
    pub fn hidden() -> Progress {
        Progress::on(Sink::Hidden)
    }

    fn on(sink: Sink) -> Progress {
        Progress {
            sink,
            bar: ProgressBar::hidden(),
        }
    }

    /// Starts a new bar with `label` before it.
    pub fn stage(&mut self, label: impl Into<String>) {
        let target = match &self.sink {
            Sink::Hidden => ProgressDrawTarget::hidden(),
            Sink::Terminal => ProgressDrawTarget::stderr_with_hz(5),
            Sink::Lines(out) => {
                let term = PlainTerm {
                    out: out.clone(),
                    last: Mutex::default(),
                };
                ProgressDrawTarget::term_like_with_hz(Box::new(term), 1)
            }
        };
        let bar = ProgressBar::with_draw_target(Some(STEPS), target);
        // The template is a constant; a failure to parse it would be ours, and shows the default.
        if let Ok(style) = ProgressStyle::with_template(TEMPLATE) {
            bar.set_style(style.progress_chars("#>-"));
        }
        bar.set_message(label.into());
        self.bar = bar;
    }

    /// Shows `fraction` (0..=1) done.
    pub fn set(&mut self, fraction: f64) {
        self.bar.set_position(steps(fraction));
    }

    /// Ends the bar where it is, leaving its last state on screen.
    pub fn finish(&mut self) {
        self.bar.abandon();
    }
}

/// A fraction as thousandths, clamped; NaN is nothing done.
fn steps(fraction: f64) -> u64 {
    let f = if fraction.is_finite() {
        fraction.clamp(0.0, 1.0)
    } else {
        0.0
    };
    (f * STEPS as f64).round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default)]
    struct Captured(Mutex<Vec<String>>);

    impl Lines for Captured {
        fn line(&self, s: &str) {
            self.0.lock().unwrap().push(s.to_string());
        }
    }

    #[test]
    fn clamps_fractions() {
        assert_eq!(steps(0.5), 500);
        assert_eq!(steps(2.0), STEPS);
        assert_eq!(steps(-1.0), 0);
        assert_eq!(steps(f64::NAN), 0);
    }

    #[test]
    fn plain_lines_show_label_bar_and_percentage_without_escape_codes() {
        let out = Arc::new(Captured::default());
        let mut p = Progress::on(Sink::Lines(out.clone()));
        p.stage("allocating 200");
        p.set(0.5);
        p.finish();
        p.stage("streaming audio");
        p.set(7.0);
        p.finish();
        let lines = out.0.lock().unwrap().clone();
        assert!(
            lines.windows(2).all(|w| w[0] != w[1]) && lines.iter().all(|l| !l.trim().is_empty()),
            "repeated or blank lines: {lines:?}"
        );
        let last_of = |label: &str| {
            lines
                .iter()
                .rev()
                .find(|l| l.starts_with(label))
                .cloned()
                .unwrap_or_else(|| panic!("no {label:?} line in {lines:?}"))
        };
        let half = last_of("allocating 200 [");
        assert!(half.contains(" 50%"), "{half}");
        assert_eq!(half.matches('#').count(), 15, "{half}");
        let full = last_of("streaming audio [");
        assert!(full.contains("100%"), "{full}");
        assert!(
            lines.iter().all(|l| !l.contains('\u{1b}')),
            "escape codes in plain lines: {lines:?}"
        );
    }
}
