//! Log output as coturn's `log-file`, `verbose` and `Verbose` options ask for, plus JSON lines
//! (`log-json`). The level can change on reload.

use std::fs::OpenOptions;
use std::io::{self, IsTerminal, Write};
use std::os::unix::net::UnixDatagram;
use std::sync::Mutex;

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, reload, EnvFilter, Layer, Registry};

use crate::config::{Config, LogTarget};

/// Changes the log level after start-up.
pub struct LogControl {
    handle: reload::Handle<EnvFilter, Registry>,
    from_env: bool,
}

impl LogControl {
    /// Applies the level `config` asks for (unless `RUST_LOG` fixed it at start-up).
    pub fn apply(&self, config: &Config) {
        if self.from_env {
            return;
        }
        let _ = self.handle.reload(EnvFilter::new(level(config)));
    }
}

/// The filter `verbose` / `Verbose` ask for. Only ferroturn's own targets get the extra
/// detail: the event-loop and TLS crates' DEBUG/TRACE lines (one per poll, per record) would
/// bury it.
fn level(config: &Config) -> &'static str {
    if let Some(level) = config.log.min_level {
        level
    } else if config.log.very_verbose {
        "info,ferroturn=trace"
    } else if config.log.verbose {
        "info,ferroturn=debug"
    } else {
        "info"
    }
}

/// Colour only for a person at a terminal: systemd, docker and log files get plain text, and
/// `NO_COLOR` (any non-empty value, <https://no-color.org>) switches it off everywhere.
pub fn use_colour(stdout_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stdout_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Installs the global subscriber. `RUST_LOG` overrides the level chosen by `verbose`.
pub fn init(config: &Config) -> io::Result<LogControl> {
    let from_env = std::env::var_os("RUST_LOG").is_some();
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level(config)));
    let (filter, handle) = reload::Layer::new(filter);
    let json = config.log.json;
    let colour = use_colour(
        io::stdout().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    let layer = match &config.log.file {
        LogTarget::File(path) => {
            let file = Mutex::new(OpenOptions::new().create(true).append(true).open(path)?);
            if json {
                fmt::layer().json().with_writer(file).boxed()
            } else {
                fmt::layer()
                    .with_ansi(false)
                    .with_target(false)
                    .with_writer(file)
                    .boxed()
            }
        }
        LogTarget::Syslog => match SyslogWriter::connect() {
            Ok(writer) => fmt::layer()
                .with_ansi(false)
                .with_target(false)
                .without_time()
                .with_writer(writer)
                .boxed(),
            Err(_) => {
                eprintln!("ferroturn: /dev/log is not available; logging to standard output");
                fmt::layer()
                    .with_ansi(colour)
                    .with_target(false)
                    .with_writer(io::stdout)
                    .boxed()
            }
        },
        LogTarget::Stdout if json => fmt::layer().json().with_writer(io::stdout).boxed(),
        LogTarget::Stdout => fmt::layer()
            .with_ansi(colour)
            .with_target(false)
            .with_writer(io::stdout)
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(layer)
        .init();
    Ok(LogControl { handle, from_env })
}

/// Sends each log line to the local syslog daemon (RFC 3164 over /dev/log).
struct SyslogWriter {
    socket: std::sync::Arc<UnixDatagram>,
}

impl SyslogWriter {
    fn connect() -> io::Result<Self> {
        let socket = UnixDatagram::unbound()?;
        socket.connect("/dev/log")?;
        Ok(SyslogWriter {
            socket: std::sync::Arc::new(socket),
        })
    }
}

/// One event's text, sent as one datagram when the event is complete.
struct SyslogLine {
    socket: std::sync::Arc<UnixDatagram>,
    buf: Vec<u8>,
}

impl<'a> MakeWriter<'a> for SyslogWriter {
    type Writer = SyslogLine;

    fn make_writer(&'a self) -> SyslogLine {
        SyslogLine {
            socket: self.socket.clone(),
            buf: Vec::with_capacity(256),
        }
    }
}

impl Write for SyslogLine {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for SyslogLine {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.buf);
        let text = text.trim_end();
        if text.is_empty() {
            return;
        }
        // Facility daemon (3), severity info (6): <30>.
        let line = format!("<30>ferroturn[{}]: {text}", std::process::id());
        let _ = self.socket.send(line.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(use_colour(true, None));
        assert!(!use_colour(false, None));
        assert!(!use_colour(true, Some(OsStr::new("1"))));
        assert!(use_colour(true, Some(OsStr::new(""))));
    }

    #[test]
    fn verbose_levels_leave_other_crates_at_info() {
        let mut c = Config::default();
        assert_eq!(level(&c), "info");
        c.log.verbose = true;
        assert_eq!(level(&c), "info,ferroturn=debug");
        c.log.very_verbose = true;
        assert_eq!(level(&c), "info,ferroturn=trace");
    }

    #[test]
    fn log_min_level_overrides_verbose() {
        let mut c = Config::default();
        c.log.verbose = true;
        assert_eq!(level(&c), "info,ferroturn=debug");
        c.log.min_level = Some("error");
        assert_eq!(level(&c), "error");
        c.log.min_level = None;
        c.log.verbose = false;
        assert_eq!(level(&c), "info");
    }
}
