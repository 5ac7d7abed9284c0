//! The `ferroturn` binary: load the coturn-style configuration and run the relay, or run one of
//! the helper subcommands.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferroturn::config::{self, Config, LoadOutcome};
use ferroturn::http::api;
use ferroturn::http::credentials::{self, CredentialIssuer, LiveIssuer};
use ferroturn::http::server::HttpServer;
use ferroturn::logging::{self, LogControl};
use ferroturn::runtime::address_report::address_report;
use ferroturn::runtime::auth_log::{self, RefusalLog, Refusals};
use ferroturn::runtime::control::Control;
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
    let issuer = CredentialIssuer::from_config(&config).map(LiveIssuer::new);
    let http = match start_http_listeners(&config, &control, issuer.as_ref()) {
        Ok(http) => http,
        Err(message) => {
            eprintln!("ferroturn: {message}");
            runtime.stop();
            return ExitCode::from(1);
        }
    };
    if let Some(path) = &config.log.pidfile {
        if let Err(e) = std::fs::write(path, format!("{}\n", std::process::id())) {
            tracing::warn!(path = %path.display(), error = %e, "cannot write pidfile");
        }
    }

    let mut deadline: Option<Instant> = None;
    let mut announced_idle = false;
    let refusal_totals = || Refusals::sum(control.shard_stats().iter().map(|s| s.as_ref()));
    let mut refusals = RefusalLog::new(auth_log::SUMMARY_INTERVAL, refusal_totals());
    let mut exit = ExitCode::SUCCESS;
    loop {
        // A dead shard leaves part of the clients unanswered: stop, and exit non-zero so the
        // supervisor restarts the relay (the shard already turned /readyz red).
        if let Some(failure) = control.shard_failure() {
            tracing::error!(
                shard = failure.shard,
                cause = %failure.cause,
                "a relay thread died; stopping (exit status 1) so the relay is restarted"
            );
            exit = ExitCode::from(1);
            break;
        }
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
                let timeout = Duration::from_secs(control.config().drain.timeout);
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
            Some(Signal::Hangup) => reload(&control, args, log, issuer.as_deref()),
            Some(Signal::User2) => runtime.reload_certificates(),
            None => {}
        }
        if control.is_draining() {
            let left = control.allocation_count();
            if left <= control.config().drain.min_allocations {
                // A drain SIGTERM asked for always ends the process; a maintenance drain may
                // leave it up and unready, so a restart policy does not put it back into service.
                if deadline.is_some() || !control.config().drain.stay_up {
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
    if let Some(path) = &config.log.pidfile {
        let _ = std::fs::remove_file(path);
    }
    tracing::info!("stopped");
    exit
}

/// One HTTP listener to open: what it is called in logs and errors, where, and what it serves.
struct Listener {
    name: &'static str,
    what: &'static str,
    addr: SocketAddr,
    handler: ferroturn::http::server::Handler,
    serves: String,
}

/// Opens the HTTP listeners the configuration enables (metrics and health, admin API, TURN REST
/// credential endpoint); the error names the one that could not listen.
fn start_http_listeners(
    config: &Config,
    control: &Control,
    issuer: Option<&Arc<LiveIssuer>>,
) -> Result<Vec<HttpServer>, String> {
    let mut wanted = Vec::new();
    if config.metrics.enabled {
        let ip = config
            .metrics
            .address
            .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into());
        wanted.push(Listener {
            name: "metrics",
            what: "metrics",
            addr: SocketAddr::new(ip, config.metrics.port),
            handler: api::metrics_handler(control.clone(), config.metrics.path.clone()),
            serves: format!(
                "metrics on {}, health on /healthz, /readyz",
                config.metrics.path
            ),
        });
    }
    if let Some(token) = &config.admin.token {
        wanted.push(Listener {
            name: "admin",
            what: "the admin API",
            addr: SocketAddr::new(config.admin.address, config.admin.port),
            handler: api::admin_handler(control.clone(), token.clone()),
            serves: "admin API on /admin/...".to_string(),
        });
    }
    if let Some(token) = &config.credential_endpoint.token {
        // Config validation guarantees a secret when the token is set.
        let issuer = issuer.ok_or("rest-api-token is set but there is no static-auth-secret")?;
        wanted.push(Listener {
            name: "credentials",
            what: "the credential endpoint",
            addr: SocketAddr::new(
                config.credential_endpoint.address,
                config.credential_endpoint.port,
            ),
            handler: credentials::handler(issuer.clone(), token.clone()),
            serves: "TURN REST credential endpoint on /credentials".to_string(),
        });
    }
    let mut started = Vec::new();
    for l in wanted {
        let server = HttpServer::start(l.addr, l.name, l.handler)
            .map_err(|e| format!("cannot listen for {} on {}: {e}", l.what, l.addr))?;
        tracing::info!(addr = %server.addr, "{}", l.serves);
        started.push(server);
    }
    Ok(started)
}

/// SIGHUP: reads the configuration again; applies it whole, or keeps the old one.
fn reload(control: &Control, args: &[String], log: &LogControl, issuer: Option<&LiveIssuer>) {
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
    // The option table says which options the running relay takes over (`Reload::Live`);
    // every other changed option is named here, so no change goes unmentioned.
    let plan = config::reload_plan(&control.config(), &new);
    if !plan.needs_restart.is_empty() {
        tracing::warn!(
            "SIGHUP: changes to {} need a restart; they were not applied",
            plan.needs_restart.join(", ")
        );
    }
    for warning in &new.warnings {
        tracing::warn!("{warning}");
    }
    log.apply(&new);
    if let Some(issuer) = issuer {
        issuer.update(&new);
    }
    control.apply_config(new);
    if plan.applied.is_empty() && plan.needs_restart.is_empty() {
        tracing::info!("SIGHUP: configuration reloaded; nothing changed");
    } else if plan.applied.is_empty() {
        tracing::info!("SIGHUP: configuration reloaded; no option that applies live changed");
    } else {
        tracing::info!(
            "SIGHUP: configuration reloaded; changed: {}",
            plan.applied.join(", ")
        );
    }
}
