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
use ferroturn::runtime::auth_log::{self, RefusalLog, Refusals};
use ferroturn::runtime::preflight::{self, Severity};
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
            // --check-config promises 1 for any error; a plain start keeps 2 for a bad file.
            if config::cli::parse(&args).check_config {
                return ExitCode::from(1);
            }
            return ExitCode::from(2);
        }
    };
    if config.print_config {
        print!("{}", config::print::render(&config));
        return ExitCode::SUCCESS;
    }
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

/// `--check-config`: the start-up checks without starting. Errors exit 1; warnings are
/// printed and exit 0, unless `--strict`. Two parts: the checks start-up itself makes
/// (`preflight`), and the report on addresses and the relay range (`address_report`).
fn check_config(config: &Config) -> ExitCode {
    let findings = preflight::run(config);
    let report = address_report(config);
    for notice in &config.notices {
        println!("note: {notice}");
    }
    for line in &config.overrides {
        println!("note: {line}");
    }
    for line in &report.lines {
        println!("{line}");
    }
    for finding in &findings {
        eprintln!("{finding}");
    }
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    for error in &report.errors {
        eprintln!("error: {error}");
    }
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count()
        + report.errors.len();
    let warnings = findings.len() + report.warnings.len() + report.errors.len() - errors;
    if errors > 0 {
        eprintln!(
            "ferroturn: configuration check failed: {errors} error(s), {warnings} warning(s)"
        );
        return ExitCode::from(1);
    }
    if warnings > 0 && config.strict {
        eprintln!("ferroturn: configuration check failed (--strict): {warnings} warning(s)");
        return ExitCode::from(1);
    }
    if warnings > 0 {
        println!("configuration OK, {warnings} warning(s)");
    } else {
        println!("configuration OK");
    }
    ExitCode::SUCCESS
}

fn run(config: Config, args: &[String], log: &LogControl) -> ExitCode {
    if let Some(file) = &config.config_file {
        tracing::info!(file = %file.display(), "configuration loaded");
    } else {
        tracing::info!("no turnserver.conf found; running on defaults and command-line options");
    }
    for notice in &config.notices {
        tracing::info!("{notice}");
    }
    for line in &config.overrides {
        tracing::info!("{line}");
    }
    let findings = preflight::run(&config);
    for finding in &findings {
        match finding.severity {
            Severity::Error => tracing::error!("{}", finding.message),
            Severity::Warning => tracing::warn!("{}", finding.message),
        }
    }
    if preflight::has_errors(&findings) {
        eprintln!("ferroturn: cannot start: the configuration check failed (see above; ferroturn --check-config lists every problem)");
        return ExitCode::from(1);
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
    let mut announced_idle = false;
    let refusal_totals = || Refusals::sum(control.shard_stats().iter().map(|s| s.as_ref()));
    let mut refusals = RefusalLog::new(auth_log::SUMMARY_INTERVAL, refusal_totals());
    loop {
        if let Some(line) = refusals.poll(Instant::now(), refusal_totals()) {
            tracing::info!("{line}");
        }
        match signals.wait_timeout(Duration::from_millis(250)) {
            Some(Signal::Interrupt) => {
                tracing::info!("SIGINT: stopping now");
                break;
            }
            Some(Signal::Terminate) if deadline.is_some() => {
                tracing::warn!(
                    allocations = control.allocation_count(),
                    "second SIGTERM during the drain: stopping now"
                );
                break;
            }
            Some(Signal::Terminate) => {
                let timeout = Duration::from_secs(control.config().drain_timeout);
                tracing::info!(
                    allocations = control.allocation_count(),
                    timeout_s = timeout.as_secs(),
                    "SIGTERM: draining, then stopping (a second SIGTERM stops at once)"
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
                // A drain SIGTERM asked for always ends the process; a maintenance drain may
                // leave it up and unready, so a restart policy does not put it back into service.
                if deadline.is_some() || !control.config().stay_up_after_drain {
                    tracing::info!(
                        allocations = left,
                        "drained: allocations down to drain-min-allocations"
                    );
                    break;
                }
                if !announced_idle {
                    tracing::info!(
                        allocations = left,
                        "drained; staying up and unready (stay-up-after-drain) until SIGTERM"
                    );
                    announced_idle = true;
                }
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
            control.ops().config_reload(false);
            tracing::error!("SIGHUP: the new configuration is invalid and was not applied:\n{e}");
            return;
        }
    };
    control.ops().config_reload(true);
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
    let changed = config::changed_options(&old, &new);
    log.apply(&new);
    control.apply_config(new);
    if changed.is_empty() {
        tracing::info!("SIGHUP: configuration reloaded; nothing changed");
    } else {
        tracing::info!(
            "SIGHUP: configuration reloaded; changed: {}",
            changed.join(", ")
        );
    }
}
