//! Command line of `ferroturn bench` and the dispatch to its modes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};

use super::client_socket::{ClientTransport, Connector};
use super::driver::{Auth, Session, Target, DEFAULT_SETUP_CONCURRENCY};
use super::profile::Profile;
use super::progress::Progress;
use super::ramp::{self, RampPlan};
use super::report::Report;
use super::soak::{self, SoakPlan};
use super::tls_client::{TlsClient, Trust};
use super::{alloc_rate, handshake, hold, limits, overload, svg};

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// N participants stream for a fixed time: loss, latency, jitter, rates, server CPU/RSS.
    Fixed,
    /// Add participants in steps until loss > 1 % or p99 > --max-p99-ms: the capacity.
    Ramp,
    /// Ramp to the capacity, then offer 25/50/75 % of it (latency) and 1.5x/2x/4x (goodput
    /// under overload) for --duration each.
    Overload,
    /// Allocations per second with --concurrency outstanding (401, Allocate, Refresh 0).
    Alloc,
    /// Hold --count idle allocations and report server RSS per allocation.
    Hold,
    /// Hold --count allocations for --duration with Refresh, relay load and --churn recycled
    /// per --round; sample server RSS and fds (--server-pid) and fail unless they stay flat
    /// and no session is lost.
    Soak,
    /// TCP/TLS connections per second with --concurrency outstanding (each proven by a STUN
    /// Binding round trip), then hold all --count idle for --duration and report server RSS
    /// per connection. Needs --transport tcp or tls.
    Handshake,
}

/// Load generator for TURN servers (standard TURN over UDP, TCP or TLS, any server).
#[derive(Debug, Parser)]
#[command(name = "ferroturn bench", version)]
pub struct Args {
    /// What to measure.
    #[arg(long, value_enum, default_value = "fixed")]
    pub mode: Mode,
    /// TURN server address: its UDP port, its TCP port (--transport tcp) or its TLS port
    /// (--transport tls).
    #[arg(long, default_value = "127.0.0.1:3478")]
    pub server: SocketAddr,
    /// How each participant reaches the server: its own UDP socket, or its own TCP or TLS
    /// connection (RFC 8656 §12.5 framing, ChannelData padded). Peers are UDP either way.
    #[arg(long, value_enum, default_value = "udp")]
    pub transport: ClientTransport,
    /// tls: trust server certificates that chain to the CAs in this PEM file.
    #[arg(long, conflicts_with = "tls_insecure")]
    pub tls_ca: Option<PathBuf>,
    /// tls: accept any server certificate (a self-signed test certificate); handshake
    /// signatures are still checked. Never against a server whose identity matters.
    #[arg(long)]
    pub tls_insecure: bool,
    /// tls: the name sent as SNI and checked against the certificate (default: the --server
    /// IP address).
    #[arg(long)]
    pub tls_name: Option<String>,
    /// TURN REST shared secret (usernames `<expiry>:bench<i>`).
    #[arg(long, conflicts_with = "user")]
    pub secret: Option<String>,
    /// Static long-term user `name:password`.
    #[arg(long)]
    pub user: Option<String>,
    /// Media profile: audio (50 pps × 160 B), video (90 pps × 1100 B), screen (bursty 30 pps ×
    /// 1200 B) or custom (--rate, --size).
    #[arg(long, default_value = "audio")]
    pub profile: String,
    /// custom profile: packets per second per participant, each way.
    #[arg(long)]
    pub rate: Option<f64>,
    /// custom profile: payload bytes per packet.
    #[arg(long)]
    pub size: Option<usize>,
    /// Participants (fixed mode).
    #[arg(long, default_value_t = 10)]
    pub participants: usize,
    /// Measured seconds (fixed), or hold time (hold), or time bound (alloc), or seconds per
    /// level (overload).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Unmeasured seconds of streaming before each measurement.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Peer sockets shared by the participants (0 = one per participant).
    #[arg(long, default_value_t = 0)]
    pub peers: usize,
    /// ramp: participants in the first step.
    #[arg(long, default_value_t = 10)]
    pub start: usize,
    /// ramp: participants added per step.
    #[arg(long, default_value_t = 10)]
    pub step: usize,
    /// ramp: most participants.
    #[arg(long, default_value_t = 2000)]
    pub max_participants: usize,
    /// ramp: measured seconds per step.
    #[arg(long, default_value_t = 3.0)]
    pub step_duration: f64,
    /// ramp: p99 one-way latency bound, ms.
    #[arg(long, default_value_t = 50.0)]
    pub max_p99_ms: f64,
    /// ramp: bound on the whole ramp, seconds.
    #[arg(long, default_value_t = 300.0)]
    pub time_limit: f64,
    /// soak: allocations that end and are made again (new permission, new channel) per round.
    #[arg(long, default_value_t = 100)]
    pub churn: usize,
    /// soak: seconds per round (relay load, then churn, then one RSS/fd sample).
    #[arg(long, default_value_t = 10.0)]
    pub round: f64,
    /// soak: allowed RSS growth after the warm-up (first fifth), as a fraction, plus 4 MiB.
    #[arg(long, default_value_t = 0.05)]
    pub rss_tolerance: f64,
    /// alloc: cycles; hold and soak: allocations.
    #[arg(long, default_value_t = 1000)]
    pub count: u64,
    /// alloc: transactions outstanding; also the setup concurrency of the other modes.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// The server's pid: its CPU time per relayed packet and its RSS are reported.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// The CPU the server's receive work is steered to (RPS): its busy time (user + system +
    /// softirq from /proc/stat) per relayed packet is reported. Needed to measure a kernel fast
    /// path, whose work never shows in the server process (see benches/fast-path-netns.sh).
    #[arg(long)]
    pub server_core: Option<usize>,
    /// Socket buffer bytes asked for on every socket.
    #[arg(long, default_value_t = 1 << 20)]
    pub sock_buf: usize,
    /// Write the results as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write an SVG chart here (ramp: latency on a log axis and loss against load; fixed: the
    /// latency CDF of both legs on a log axis with p50/p99/p99.9 marked).
    #[arg(long)]
    pub svg: Option<PathBuf>,
    /// Draw the progress bar even when stderr is not a terminal.
    #[arg(long)]
    pub progress: bool,
    /// Allow a target outside loopback (never use it against a server that is not yours).
    #[arg(long)]
    pub allow_non_loopback: bool,
}

/// Entry point: `args` are the words after `bench`.
pub fn main(args: &[String]) -> ExitCode {
    let args: Args = match crate::subcommand::parse("ferroturn bench", args) {
        Ok(a) => a,
        Err(status) => return status,
    };
    match run(&args) {
        Ok(report) => {
            print!("{}", report.summary());
            let nothing_ran = report.windows.iter().all(|w| w.participants == 0)
                && report.alloc.as_ref().is_none_or(|a| a.completed == 0)
                && report.hold.as_ref().is_none_or(|h| h.held == 0)
                && report.handshake.as_ref().is_none_or(|h| h.completed == 0);
            if nothing_ran {
                eprintln!("ferroturn bench: no participant could be set up");
                return ExitCode::from(3);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ferroturn bench: {e}");
            ExitCode::from(1)
        }
    }
}

fn secs(s: f64, what: &str) -> Result<Duration, String> {
    if s.is_finite() && (0.0..=3600.0).contains(&s) {
        Ok(Duration::from_secs_f64(s))
    } else {
        Err(format!("{what} must be 0..=3600 seconds"))
    }
}

/// Whether `sockets` file descriptors and a margin of 64 for the rest fit the limit `nofile`;
/// the refusal names `what` needs them.
fn fds_fit(sockets: usize, nofile: u64, what: &str) -> Result<(), String> {
    let needed = sockets + 64;
    if needed as u64 > nofile {
        return Err(format!(
            "{what} need ~{needed} file descriptors; the limit is {nofile}"
        ));
    }
    Ok(())
}

/// Deletes the session's allocations, waiting up to `grace` for the answers, and records the
/// setup failures and stream errors it saw in `report`.
fn close_session(
    session: &mut Session,
    grace: Duration,
    report: &mut Report,
) -> Result<(), String> {
    session
        .close_all(Instant::now() + grace)
        .map_err(|e| e.to_string())?;
    report.setup_failures = session.failures.clone();
    report.stream_errors = session.stream_errors.clone();
    Ok(())
}

/// Runs the mode the arguments ask for.
pub fn run(args: &Args) -> Result<Report, String> {
    limits::check_target(args.server, args.allow_non_loopback)?;
    let auth = match (&args.secret, &args.user) {
        (Some(secret), _) => Auth::Rest {
            secret: secret.clone(),
        },
        (None, Some(u)) => {
            let (user, pass) = u.split_once(':').ok_or("--user wants name:password")?;
            Auth::Static {
                user: user.into(),
                pass: pass.into(),
            }
        }
        (None, None) => return Err("give --secret (TURN REST) or --user name:password".into()),
    };
    let nofile = limits::raise_nofile();
    let tls = match args.transport {
        ClientTransport::Tls => {
            let trust = match (&args.tls_ca, args.tls_insecure) {
                (Some(path), _) => Trust::CaFile(path),
                (None, true) => Trust::Insecure,
                (None, false) => {
                    return Err("--transport tls needs --tls-ca FILE or --tls-insecure".into())
                }
            };
            let name = args
                .tls_name
                .clone()
                .unwrap_or_else(|| args.server.ip().to_string());
            Some(TlsClient::new(trust, &name)?)
        }
        _ if args.tls_ca.is_some() || args.tls_insecure || args.tls_name.is_some() => {
            return Err("--tls-ca, --tls-insecure and --tls-name need --transport tls".into())
        }
        _ => None,
    };
    let target = Target {
        connector: Connector {
            transport: args.transport,
            tls,
        },
        server: args.server,
        auth,
        sock_buf: Some(args.sock_buf),
        server_pid: args.server_pid,
        server_core: args.server_core,
    };
    let profile = Profile::by_name(&args.profile, args.rate, args.size)?;
    let duration = secs(args.duration, "--duration")?;
    let warmup = secs(args.warmup, "--warmup")?;
    let mut progress = Progress::new(args.progress);
    let io = |e: std::io::Error| e.to_string();
    let concurrency = if args.concurrency == 0 {
        DEFAULT_SETUP_CONCURRENCY
    } else {
        args.concurrency
    };
    let need_fds = |sockets: usize, what: &str| fds_fit(sockets, nofile, what);
    let participants = |n: usize| need_fds(2 * n, &format!("{n} participants"));
    let open = |target: Target| -> Result<Session, String> {
        let mut session = Session::new(target, profile, args.peers).map_err(io)?;
        session.set_setup_concurrency(concurrency);
        Ok(session)
    };
    let mut report = Report {
        mode: match args.mode {
            Mode::Fixed => "fixed",
            Mode::Ramp => "ramp",
            Mode::Overload => "overload",
            Mode::Alloc => "alloc",
            Mode::Hold => "hold",
            Mode::Soak => "soak",
            Mode::Handshake => "handshake",
        },
        server: Some(args.server),
        transport: args.transport.name(),
        ..Default::default()
    };
    match args.mode {
        Mode::Fixed => {
            participants(args.participants)?;
            let mut session = open(target)?;
            progress.stage(format!("allocating {}", args.participants));
            let deadline = Instant::now() + Duration::from_secs(30);
            session
                .add_participants(args.participants, true, deadline, &mut |d, n| {
                    progress.set(d as f64 / n.max(1) as f64)
                })
                .map_err(io)?;
            progress.finish();
            progress.stage(format!("streaming {}", profile.name));
            let w = session
                .stream(warmup, duration, &mut |f| progress.set(f))
                .map_err(io)?;
            progress.finish();
            close_session(&mut session, Duration::from_secs(10), &mut report)?;
            if let Some(path) = &args.svg {
                let title = format!(
                    "{} × {} through {}: one-way latency",
                    w.participants, profile.name, args.server
                );
                let chart = svg::latency_histogram_chart(&title, &w.up.latency, &w.down.latency);
                std::fs::write(path, chart).map_err(io)?;
            }
            report.profile = Some(profile);
            report.windows.push(w);
        }
        Mode::Ramp | Mode::Overload => {
            participants(args.max_participants)?;
            let mut session = open(target)?;
            let plan = RampPlan {
                start: args.start,
                step: args.step,
                max: args.max_participants,
                warmup,
                measure: secs(args.step_duration, "--step-duration")?,
                max_p99_ms: args.max_p99_ms,
                deadline: Instant::now() + secs(args.time_limit, "--time-limit")?,
            };
            let (outcome, overload) = if args.mode == Mode::Overload {
                let mut o = overload::run(&mut session, &plan, profile, duration, &mut progress)
                    .map_err(io)?;
                (std::mem::take(&mut o.ramp), Some(o))
            } else {
                let r = ramp::run(&mut session, &plan, &mut progress).map_err(io)?;
                (r, None)
            };
            report.overload = overload;
            close_session(&mut session, Duration::from_secs(10), &mut report)?;
            if let Some(path) = &args.svg {
                let title = format!(
                    "ramp of {} participants through {}",
                    profile.name, args.server
                );
                std::fs::write(path, svg::ramp_chart(&title, &outcome.windows)).map_err(io)?;
            }
            report.profile = Some(profile);
            report.windows = outcome.windows;
            report.capacity_step = outcome.capacity_step;
            report.stop_reason = Some(outcome.stop_reason);
            report.max_p99_ms = Some(args.max_p99_ms);
        }
        Mode::Alloc => {
            let r = alloc_rate::run(&target, args.count, concurrency, duration, &mut progress)
                .map_err(io)?;
            report.alloc = Some(r);
        }
        Mode::Handshake => {
            let n = args.count as usize;
            need_fds(n, &format!("{n} held connections"))?;
            let deadline = Instant::now() + Duration::from_secs(120);
            let (r, stream_errors) =
                handshake::run(&target, n, concurrency, duration, deadline, &mut progress)
                    .map_err(io)?;
            report.handshake = Some(r);
            report.stream_errors = stream_errors;
        }
        Mode::Hold => {
            let n = args.count as usize;
            need_fds(n, &format!("{n} held allocations"))?;
            let deadline = Instant::now() + Duration::from_secs(120);
            let (r, failures, stream_errors) =
                hold::run(&target, n, duration, concurrency, deadline, &mut progress)
                    .map_err(io)?;
            report.hold = Some(r);
            report.setup_failures = failures;
            report.stream_errors = stream_errors;
        }
        Mode::Soak => {
            let n = args.count as usize;
            // One socket per allocation, plus the shared peers (or one peer each).
            let peers = if args.peers == 0 { n } else { args.peers };
            need_fds(n + peers, &format!("{n} allocations and {peers} peers"))?;
            if args.server_pid.is_none() {
                return Err("soak needs --server-pid to sample the server's RSS and fds".into());
            }
            if !(0.0..=1.0).contains(&args.rss_tolerance) {
                return Err("--rss-tolerance must be 0..=1".into());
            }
            let plan = SoakPlan {
                count: n,
                duration,
                round: secs(args.round, "--round")?.max(Duration::from_secs(1)),
                churn: args.churn.min(n),
                rss_tolerance: args.rss_tolerance,
            };
            if profile.pps() * plan.round.as_secs_f64() < 3.0 {
                return Err(
                    "soak needs 3+ packets per allocation per round (--rate × --round): \
                            an allocation that receives nothing in a round counts as lost"
                        .into(),
                );
            }
            let mut session = open(target)?;
            let setup_deadline = Instant::now() + Duration::from_secs(300);
            let (r, windows) = soak::run(
                &mut session,
                args.server_pid,
                &plan,
                setup_deadline,
                &mut progress,
            )
            .map_err(io)?;
            close_session(&mut session, Duration::from_secs(20), &mut report)?;
            print!("{}", r.summary(&plan));
            report.profile = Some(profile);
            report.windows = windows;
            if !r.failures.is_empty() {
                return Err(format!("soak failed: {}", r.failures.join("; ")));
            }
        }
    }
    if let Some(path) = &args.json {
        std::fs::write(path, report.to_json().render() + "\n").map_err(io)?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_needing_more_descriptors_than_the_limit_are_refused() {
        assert_eq!(fds_fit(960, 1024, "960 held allocations"), Ok(()));
        assert_eq!(
            fds_fit(961, 1024, "961 held allocations"),
            Err("961 held allocations need ~1025 file descriptors; the limit is 1024".into())
        );
    }
}
