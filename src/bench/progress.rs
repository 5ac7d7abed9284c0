//! A one-line progress bar on stderr, hand-written: a carriage return and a bar of '#' is all
//! a bounded run needs, and it stays quiet when stderr is not a terminal.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Redraws at most every 200 ms.
pub struct Progress {
    enabled: bool,
    last: Option<Instant>,
    label: String,
}

const WIDTH: usize = 30;

impl Progress {
    /// A bar that draws only when stderr is a terminal (or `force`).
    pub fn new(force: bool) -> Progress {
        Progress {
            enabled: force || std::io::stderr().is_terminal(),
            last: None,
            label: String::new(),
        }
    }

    /// A bar that never draws (tests, JSON-only runs).
    pub fn hidden() -> Progress {
        Progress {
            enabled: false,
            last: None,
            label: String::new(),
        }
    }

    /// Sets the text shown before the bar.
    pub fn stage(&mut self, label: impl Into<String>) {
        self.label = label.into();
        self.last = None;
    }

    /// Shows `fraction` (0..=1) done.
    pub fn set(&mut self, fraction: f64) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < Duration::from_millis(200))
        {
            return;
        }
        self.last = Some(now);
        let line = render(&self.label, fraction);
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{line}\x1b[K");
        let _ = err.flush();
    }

    /// Ends the line.
    pub fn finish(&mut self) {
        if self.enabled {
            let _ = writeln!(std::io::stderr());
        }
    }
}

/// The bar text for a fraction done.
pub fn render(label: &str, fraction: f64) -> String {
    let f = if fraction.is_finite() {
        fraction.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let filled = (f * WIDTH as f64).round() as usize;
    format!(
        "{label} [{}{}] {:>3.0}%",
        "#".repeat(filled),
        " ".repeat(WIDTH - filled),
        f * 100.0
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn renders_clamped_bars() {
        assert_eq!(super::render("x", 0.5).matches('#').count(), 15);
        assert!(super::render("x", 2.0).ends_with("100%"));
        assert!(super::render("x", f64::NAN).ends_with("  0%"));
    }
}
