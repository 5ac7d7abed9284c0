//! The `ferroturn` binary: load the coturn-style configuration and run the relay.

use std::process::ExitCode;

use ferroturn::config::{self, Config, LoadOutcome};
use ferroturn::logging;
use ferroturn::runtime::Runtime;
use ferroturn::signals::{Signal, SignalSet};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some("bench") = args.first().map(String::as_str) {
        return ferroturn::bench::cli::main(&args[1..]);
    }
    let env: Vec<(String, String)> = std::env::vars().collect();
    let config = match config::load(&args, &env) {
        Ok(LoadOutcome::Run(config)) => config,
        Ok(LoadOutcome::Help(text)) | Ok(LoadOutcome::Version(text)) => {
            println!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("ferroturn: invalid configuration:\n{e}");
            return ExitCode::from(2);
        }
    };
    if config.check_config {
        return check_config(&config);
    }
    if let Err(e) = logging::init(&config) {
        eprintln!("ferroturn: cannot open log file: {e}");
        return ExitCode::from(2);
    }
    run(config)
}

fn check_config(config: &Config) -> ExitCode {
    match config.check() {
        Ok(()) => {
            for notice in &config.notices {
                println!("note: {notice}");
            }
            println!("configuration OK");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ferroturn: configuration check failed:\n{e}");
            ExitCode::from(1)
        }
    }
}

fn run(config: Config) -> ExitCode {
    if let Some(file) = &config.config_file {
        tracing::info!(file = %file.display(), "configuration loaded");
    } else {
        tracing::info!("no turnserver.conf found; running on defaults and command-line options");
    }
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    for notice in &config.notices {
        tracing::info!("{notice}");
    }
    let signals = SignalSet::block();
    let runtime = match Runtime::start(&config) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("cannot start: {e}");
            eprintln!("ferroturn: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    if let Some(path) = &config.pidfile {
        if let Err(e) = std::fs::write(path, format!("{}\n", std::process::id())) {
            tracing::warn!(path = %path.display(), error = %e, "cannot write pidfile");
        }
    }
    loop {
        match signals.wait() {
            Signal::Terminate | Signal::Interrupt => {
                tracing::info!("shutting down");
                break;
            }
            Signal::User1 => {
                tracing::info!("SIGUSR1: draining, new allocations are refused");
                runtime.set_draining(true);
            }
            Signal::Hangup => {
                tracing::warn!("SIGHUP: configuration reload is not available yet; ignored");
            }
            Signal::User2 => {
                tracing::info!("SIGUSR2: no TLS certificates to reload");
            }
        }
    }
    runtime.stop();
    if let Some(path) = &config.pidfile {
        let _ = std::fs::remove_file(path);
    }
    ExitCode::SUCCESS
}
