//! Log output as coturn's `log-file`, `verbose` and `Verbose` options ask for.

use std::fs::OpenOptions;
use std::io;
use std::sync::Mutex;

use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogTarget};

/// Installs the global subscriber. `RUST_LOG` overrides the level chosen by `verbose`.
pub fn init(config: &Config) -> io::Result<()> {
    let level = if config.very_verbose {
        "trace"
    } else if config.verbose {
        "debug"
    } else {
        "info"
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    match &config.log_file {
        LogTarget::File(path) => {
            let file = OpenOptions::new().create(true).append(true).open(path)?;
            builder
                .with_ansi(false)
                .with_writer(Mutex::new(file))
                .init();
        }
        LogTarget::Stdout | LogTarget::Syslog => builder.with_writer(io::stdout).init(),
    }
    if config.log_file == LogTarget::Syslog {
        tracing::warn!("log-file=syslog is not supported yet; logging to standard output");
    }
    Ok(())
}
