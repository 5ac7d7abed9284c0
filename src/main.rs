//! The `ferroturn` binary: load the coturn-style configuration and run the relay, or run one of
//! the helper subcommands.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use ferroturn::config::{self, Config, LoadOutcome};
use ferroturn::http::api;
use ferroturn::http::credentials::{self, CredentialIssuer};
use ferroturn::http::server::HttpServer;
use ferroturn::logging::{self, LogControl};
use ferroturn::runtime::address_report::address_report;
use ferroturn::runtime::Runtime;
use ferroturn::signals::{Signal, SignalSet};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Subcommands come first; anything else is the relay's own coturn-style command line.
    match args.first().map(String::as_str) {
        Some("admin") => return ferroturn::admin::main(&args[1..]),
        Some("jitsi") => return ferroturn::jitsi::run(&args[1..]),
        Some("bench") => return ferroturn::bench::cli::main(&args[1..]),
        _ => {}
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
    let log = match logging::init(&config) {
        Ok(log) => log,
        Err(e) => {
            eprintln!("ferroturn: cannot open log file: {e}");
            return ExitCode::from(2);
        }
    };
    run(config, &args, &log)
}

fn check_config(config: &Config) -> ExitCode {
    let addresses_ok = check_addresses(config);
    match config.check() {
        Ok(()) if !addresses_ok => ExitCode::from(1),
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

/// `--check-config`'s address part: listening and relay addresses, the relay range and what
/// it allows. False when the relay would refuse to start.
fn check_addresses(config: &Config) -> bool {
    let report = address_report(config);
    for line in &report.lines {
        println!("{line}");
    }
    for warning in &report.warnings {
        println!("warning: {warning}");
    }
    for error in &report.errors {
        eprintln!("ferroturn: configuration check failed:\n{error}");
    }
    report.errors.is_empty()
}

fn run(config: Config, args: &[String], log: &LogControl) -> ExitCode {
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
    let control = runtime.control().clone();
    let mut http = Vec::new();
    if config.prometheus {
        let ip = config
            .prometheus_address
            .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into());
        let addr = SocketAddr::new(ip, config.prometheus_port);
        match HttpServer::start(
            addr,
            "metrics",
            api::metrics_handler(control.clone(), config.prometheus_path.clone()),
        ) {
            Ok(server) => {
                tracing::info!(addr = %server.addr, path = %config.prometheus_path, "metrics on the path, health on /healthz, /readyz");
                http.push(server);
            }
            Err(e) => {
                eprintln!("ferroturn: cannot listen for metrics on {addr}: {e}");
                runtime.stop();
                return ExitCode::from(1);
            }
        }
    }
    if let Some(token) = &config.admin_token {
        let addr = SocketAddr::new(config.admin_address, config.admin_port);
        match HttpServer::start(
            addr,
            "admin",
            api::admin_handler(control.clone(), token.clone()),
        ) {
            Ok(server) => {
                tracing::info!(addr = %server.addr, "admin API on /admin/...");
                http.push(server);
            }
            Err(e) => {
                eprintln!("ferroturn: cannot listen for the admin API on {addr}: {e}");
                runtime.stop();
                return ExitCode::from(1);
            }
        }
    }
    if let Some(token) = &config.rest_api_token {
        let addr = SocketAddr::new(config.rest_api_address, config.rest_api_port);
        // Config validation guarantees a secret when the token is set.
        let issuer =
            CredentialIssuer::from_config(&config).expect("validated: a REST secret exists");
        match HttpServer::start(
            addr,
            "credentials",
            credentials::handler(issuer, token.clone()),
        ) {
            Ok(server) => {
                tracing::info!(addr = %server.addr, "TURN REST credential endpoint on /credentials");
                http.push(server);
            }
            Err(e) => {
                eprintln!("ferroturn: cannot listen for the credential endpoint on {addr}: {e}");
                runtime.stop();
                return ExitCode::from(1);
            }
        }
    }
    if let Some(path) = &config.pidfile {
        if let Err(e) = std::fs::write(path, format!("{}\n", std::process::id())) {
            tracing::warn!(path = %path.display(), error = %e, "cannot write pidfile");
        }
    }

    let mut deadline: Option<Instant> = None;
    loop {
        match signals.wait_timeout(Duration::from_millis(250)) {
            Some(Signal::Interrupt) => {
                tracing::info!("SIGINT: stopping now");
                break;
            }
            Some(Signal::Terminate) => {
                let timeout = Duration::from_secs(control.config().drain_timeout);
                tracing::info!(
                    allocations = control.allocation_count(),
                    timeout_s = timeout.as_secs(),
                    "SIGTERM: draining, then stopping"
                );
                control.set_draining(true);
                deadline = Some(Instant::now() + timeout);
            }
            Some(Signal::User1) => {
                tracing::info!(
                    allocations = control.allocation_count(),
                    "SIGUSR1: draining; new allocations are refused, live ones continue"
                );
                control.set_draining(true);
            }
            Some(Signal::Hangup) => reload(&control, args, log),
            Some(Signal::User2) => runtime.reload_certificates(),
            None => {}
        }
        if control.is_draining() {
            let left = control.allocation_count();
            if left <= control.config().drain_min_allocations {
                tracing::info!(
                    allocations = left,
                    "drained (drain-min-allocations reached)"
                );
                break;
            }
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            tracing::warn!(
                allocations = control.allocation_count(),
                "drain deadline reached; stopping with allocations still live"
            );
            break;
        }
    }
    drop(http);
    runtime.stop();
    if let Some(path) = &config.pidfile {
        let _ = std::fs::remove_file(path);
    }
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

/// SIGHUP: reads the configuration again; applies it whole, or keeps the old one.
fn reload(control: &ferroturn::runtime::control::Control, args: &[String], log: &LogControl) {
    let env: Vec<(String, String)> = std::env::vars().collect();
    let new = match config::load(args, &env) {
        Ok(LoadOutcome::Run(c)) => c,
        Ok(_) => return,
        Err(e) => {
            tracing::error!("SIGHUP: the new configuration is invalid and was not applied:\n{e}");
            return;
        }
    };
    let old = control.config();
    for (what, changed) in [
        (
            "listening addresses or ports",
            old.listening_ips != new.listening_ips
                || old.listening_port != new.listening_port
                || old.tls_listening_port != new.tls_listening_port
                || old.alt_listening_port != new.alt_listening_port
                || old.alt_tls_listening_port != new.alt_tls_listening_port
                || (old.no_udp, old.no_tcp, old.no_tls) != (new.no_udp, new.no_tcp, new.no_tls),
        ),
        (
            "relay addresses or port range",
            old.relay_ips != new.relay_ips
                || (old.min_port, old.max_port) != (new.min_port, new.max_port),
        ),
        (
            "TLS certificate paths",
            old.cert != new.cert || old.pkey != new.pkey,
        ),
        ("relay-threads", old.relay_threads != new.relay_threads),
        (
            "metrics or admin listeners",
            (old.prometheus, old.prometheus_port, old.prometheus_address)
                != (new.prometheus, new.prometheus_port, new.prometheus_address)
                || (old.admin_address, old.admin_port, &old.admin_token)
                    != (new.admin_address, new.admin_port, &new.admin_token),
        ),
    ] {
        if changed {
            tracing::warn!("SIGHUP: a change to {what} needs a restart; it was not applied");
        }
    }
    for warning in &new.warnings {
        tracing::warn!("{warning}");
    }
    log.apply(&new);
    control.apply_config(new);
    tracing::info!("SIGHUP: configuration reloaded");
}
