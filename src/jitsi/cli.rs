//! The `ferroturn jitsi` command line: argument parsing and the three commands' output.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Args, Parser, Subcommand, ValueEnum};

use super::check::{check, warnings, CheckOptions, DEFAULT_MIN_TTL};
use super::credentials::{ice_server_json, ice_url, mint};
use super::init::{self, names};
use super::jitsi_helm::JitsiHelm;
use super::plan::{is_valid_host, Plan, TlsPlan};
use super::prosody_side::ProsodySide;
use super::relay_summary::{capacity_warning, describe, loopback_warning, DEFAULT_PARTICIPANTS};
use super::{parse_env, parse_k8s, parse_lua, relay_conf, secret};
use crate::proto::peer_policy::IpRange;

const EXAMPLES: &str = "\
Examples:
  ferroturn jitsi init --host turn.example.org --external-ip 203.0.113.7 \\
      --jvb-ip 10.0.0.5 --out ./jitsi-turn
  ferroturn jitsi check --conf ./jitsi-turn/turnserver.conf ./jitsi-turn/jitsi-turn.env
  ferroturn jitsi credentials --conf ./jitsi-turn/turnserver.conf --host turn.example.org --user alice
  ferroturn jitsi init --host turn.example.org --external-ip 203.0.113.7 --out ./jitsi-turn --rotate";

/// Make Jitsi (Prosody) and ferroturn agree on the TURN secret, host, ports and transports.
///
/// Prosody hands every Jitsi client a short-lived TURN username and password signed with a
/// secret it shares with the relay. `init` writes both sides from one set of answers, `check`
/// finds where two existing sides disagree, and `credentials` mints a credential by hand.
#[derive(Debug, Parser)]
#[command(name = "ferroturn jitsi", version, after_help = EXAMPLES)]
pub struct JitsiCli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate a secret; write turnserver.conf and the matching Prosody, docker and Kubernetes files.
    Init(InitArgs),
    /// Mint a TURN username/password the way Prosody does and print the ICE server JSON.
    Credentials(CredentialsArgs),
    /// Compare turnserver.conf with a .env, Kubernetes Secret or Prosody Lua file; exit 1 on any mismatch.
    Check(CheckArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Transport {
    Udp,
    Tcp,
}

#[derive(Debug, Args)]
struct InitArgs {
    /// Public DNS name (or IP) of the relay that clients are sent to (TURN_HOST).
    #[arg(long, value_name = "NAME")]
    host: String,
    /// Public IP when the relay is behind 1:1 NAT (external-ip).
    #[arg(long, value_name = "IP")]
    external_ip: Option<IpAddr>,
    /// Listen on this address only (repeatable; default: every interface).
    #[arg(long = "listen-ip", value_name = "IP")]
    listen_ips: Vec<IpAddr>,
    /// Relay from this address (repeatable; default: the listening addresses).
    #[arg(long = "relay-ip", value_name = "IP")]
    relay_ips: Vec<IpAddr>,
    /// TURN/STUN port (listening-port, TURN_PORT, STUN_PORT).
    #[arg(long, default_value_t = 3478, value_name = "PORT")]
    port: u16,
    /// Transports offered on that port.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "udp,tcp")]
    transports: Vec<Transport>,
    /// TLS certificate chain (PEM); with --pkey, offers TURN over TLS (turns:).
    #[arg(long, value_name = "FILE", requires = "pkey")]
    cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, value_name = "FILE", requires = "cert")]
    pkey: Option<PathBuf>,
    /// TURN over TLS port (tls-listening-port, TURNS_PORT).
    #[arg(long, default_value_t = 5349, value_name = "PORT")]
    tls_port: u16,
    /// UDP ports relayed media uses, MIN-MAX (min-port, max-port).
    #[arg(long, default_value = "49152-65535", value_name = "MIN-MAX")]
    relay_ports: String,
    /// TURN realm (default: the host name).
    #[arg(long)]
    realm: Option<String>,
    /// Videobridge address allowed as a peer even in a private range (IP, A-B or CIDR; repeatable).
    #[arg(long = "jvb-ip", value_name = "RANGE")]
    jvb_ips: Vec<String>,
    /// Credential lifetime Prosody hands out, seconds (TURN_TTL); keep it above a long meeting.
    #[arg(long, default_value_t = 86_400, value_name = "SECONDS")]
    ttl: u32,
    /// jitsi-helm chart version the values file is for (1.x repeats that chart's default prosody.extraEnvFrom).
    #[arg(long, default_value_t = JitsiHelm::default(), value_name = "VERSION")]
    jitsi_helm: JitsiHelm,
    /// Directory the files are written to.
    #[arg(long, short, default_value = ".", value_name = "DIR")]
    out: PathBuf,
    /// Overwrite existing files.
    #[arg(long)]
    force: bool,
    /// Add a new secret to the existing turnserver.conf (the old one stays valid) and write it to the Prosody side.
    #[arg(long, conflicts_with = "force")]
    rotate: bool,
}

#[derive(Debug, Args)]
struct CredentialsArgs {
    /// The shared secret (prefer --conf or the environment: arguments show up in `ps`).
    #[arg(
        long,
        env = "TURN_CREDENTIALS",
        hide_env_values = true,
        conflicts_with = "conf"
    )]
    secret: Option<String>,
    /// Take the secret (the first static-auth-secret) and port from this turnserver.conf, with FERROTURN_* from the environment applied as in the server.
    #[arg(long, short, value_name = "FILE")]
    conf: Option<PathBuf>,
    /// User part of the username (`expiry:user`); without it the username is the bare expiry.
    #[arg(long)]
    user: Option<String>,
    /// Lifetime, seconds.
    #[arg(long, default_value_t = 86_400, value_name = "SECONDS")]
    ttl: u64,
    /// Relay host for the ICE server URLs.
    #[arg(long, value_name = "NAME")]
    host: Option<String>,
    /// Relay port for the URLs (default: listening-port from --conf, else 3478).
    #[arg(long, value_name = "PORT")]
    port: Option<u16>,
    /// Transports for turn: URLs.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "udp,tcp")]
    transports: Vec<Transport>,
    /// Also list a turns: URL on this port.
    #[arg(long, value_name = "PORT")]
    tls_port: Option<u16>,
    /// Print only the ICE server JSON.
    #[arg(long)]
    json: bool,
    /// Unix time to count the lifetime from (default: now); for reproducible output.
    #[arg(long, hide = true)]
    now: Option<u64>,
}

#[derive(Debug, Args)]
struct CheckArgs {
    /// The relay's turnserver.conf; FERROTURN_* variables in the environment apply over it, as in the server.
    #[arg(long, short, value_name = "FILE")]
    conf: PathBuf,
    /// A KEY=VALUE file (docker env_file, systemd EnvironmentFile) whose FERROTURN_* variables apply over the environment's (repeatable).
    #[arg(long = "env-file", value_name = "FILE")]
    env_files: Vec<PathBuf>,
    /// Accept TURN offered over UDP only (otherwise a warning and exit 1: Jitsi's videobridge path needs TCP or TLS).
    #[arg(long)]
    allow_udp_only: bool,
    /// Participants expected to relay at the same time; warns when the relay range cannot hold them.
    #[arg(long, default_value_t = DEFAULT_PARTICIPANTS, value_name = "N")]
    participants: u32,
    /// Prosody side: a docker .env, a Kubernetes Secret (.yaml) or a Prosody Lua file (.lua).
    #[arg(required = true, value_name = "PROSODY_FILE")]
    prosody: Vec<PathBuf>,
    /// Shortest acceptable credential lifetime, seconds.
    #[arg(long, default_value_t = DEFAULT_MIN_TTL, value_name = "SECONDS")]
    min_ttl: u64,
}

/// Runs `ferroturn jitsi ARGS...` (`args` without the program name and `jitsi`).
pub fn run(args: &[String]) -> ExitCode {
    let cli: JitsiCli = match crate::subcommand::parse("ferroturn jitsi", args) {
        Ok(c) => c,
        Err(status) => return status,
    };
    let result = match cli.command {
        Command::Init(a) => run_init(a),
        Command::Credentials(a) => run_credentials(a),
        Command::Check(a) => run_check(a),
    };
    match result {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("ferroturn jitsi: {msg}");
            ExitCode::from(2)
        }
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn run_init(a: InitArgs) -> Result<ExitCode, String> {
    if !is_valid_host(&a.host) {
        return Err(format!(
            "--host {:?} is not a DNS name or IP address",
            a.host
        ));
    }
    let (min_port, max_port) = a
        .relay_ports
        .split_once('-')
        .and_then(|(lo, hi)| {
            Some((
                lo.trim().parse::<u16>().ok()?,
                hi.trim().parse::<u16>().ok()?,
            ))
        })
        .filter(|(lo, hi)| lo <= hi && *lo >= 1024)
        .ok_or_else(|| {
            format!(
                "--relay-ports {:?} is not MIN-MAX with 1024 <= MIN <= MAX",
                a.relay_ports
            )
        })?;
    for r in &a.jvb_ips {
        r.parse::<IpRange>()
            .map_err(|e| format!("--jvb-ip {r:?}: {e}"))?;
    }
    let realm = a.realm.unwrap_or_else(|| a.host.clone());
    if !is_valid_host(&realm) {
        return Err(format!("--realm {realm:?} is not a plain name"));
    }
    if a.transports.is_empty() && a.cert.is_none() {
        return Err("nothing offered: give --transports or --cert/--pkey".into());
    }
    let plan = Plan {
        host: a.host,
        external_ip: a.external_ip,
        listen_ips: a.listen_ips,
        relay_ips: a.relay_ips,
        port: a.port,
        udp: a.transports.contains(&Transport::Udp),
        tcp: a.transports.contains(&Transport::Tcp),
        tls: a.cert.zip(a.pkey).map(|(cert, pkey)| TlsPlan {
            port: a.tls_port,
            cert,
            pkey,
        }),
        min_port,
        max_port,
        realm,
        jvb_peers: a.jvb_ips,
        ttl: a.ttl,
        secret: secret::generate(),
        jitsi_helm: a.jitsi_helm,
    };
    if u64::from(plan.ttl) < DEFAULT_MIN_TTL {
        eprintln!(
            "warning: --ttl {} is shorter than a long meeting ({DEFAULT_MIN_TTL} s); reconnects late in a call will fail",
            plan.ttl
        );
    }
    if plan.udp && !plan.tcp && plan.tls.is_none() {
        eprintln!(
            "warning: TURN over UDP only: Jitsi's videobridge path uses TURN over TCP or TLS, so clients \
             on networks that block UDP get no relay (`jitsi check` reports it; add --transports udp,tcp)"
        );
    }
    if a.rotate {
        let r = init::rotate(&plan, &a.out, &init::utc_date(now())).map_err(|e| e.to_string())?;
        println!(
            "New secret {} added; files updated:",
            secret::fingerprint(&plan.secret)
        );
        print_files(&r.written);
        println!();
        print!(
            "{}",
            init::retire_instructions(&a.out, &r.old_secrets, plan.ttl)
        );
    } else {
        let written = init::write_fresh(&plan, &a.out, a.force).map_err(|e| e.to_string())?;
        println!(
            "Secret generated ({}); files written (the ones holding the secret are mode 600):",
            secret::fingerprint(&plan.secret)
        );
        print_files(&written);
        println!(
            "\nThen check both sides agree:\n  ferroturn jitsi check --conf {} {}",
            a.out.join(names::CONF).display(),
            a.out.join(names::ENV).display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn print_files(files: &[(PathBuf, init::OutFile)]) {
    let width = files
        .iter()
        .map(|(p, _)| p.display().to_string().len())
        .max()
        .unwrap_or(0);
    for (path, f) in files {
        println!("  {:width$}  -> {}", path.display().to_string(), f.goes_to);
    }
}

fn run_credentials(a: CredentialsArgs) -> Result<ExitCode, String> {
    let (secret, conf_port) = match (&a.secret, &a.conf) {
        (Some(s), _) => (s.clone(), None),
        (None, Some(path)) => {
            let conf = load_conf(path, &[])?.config;
            let s = conf
                .auth
                .static_auth_secrets
                .first()
                .cloned()
                .ok_or_else(|| format!("{} has no static-auth-secret", path.display()))?;
            (s, Some(conf.listen.port))
        }
        (None, None) => {
            return Err("give --conf FILE, --secret or TURN_CREDENTIALS in the environment".into())
        }
    };
    if secret.is_empty() {
        return Err("the secret is empty".into());
    }
    let cred = mint(&secret, a.user.as_deref(), a.ttl, a.now.unwrap_or_else(now));
    let port = a.port.or(conf_port).unwrap_or(3478);
    let mut urls = Vec::new();
    if let Some(host) = &a.host {
        if !is_valid_host(host) {
            return Err(format!("--host {host:?} is not a DNS name or IP address"));
        }
        for t in &a.transports {
            let t = match t {
                Transport::Udp => "udp",
                Transport::Tcp => "tcp",
            };
            urls.push(ice_url("turn", host, port, Some(t)));
        }
        if let Some(tls) = a.tls_port {
            urls.push(ice_url("turns", host, tls, Some("tcp")));
        }
    }
    if !a.json {
        println!("username: {}", cred.username);
        println!("password: {}", cred.password);
        println!(
            "expires:  {} ({} UTC)",
            cred.expiry,
            init::utc_date(cred.expiry)
        );
        if urls.is_empty() {
            println!("(give --host to get the URLs for the ICE server JSON)");
        }
        println!();
    }
    println!("{}", ice_server_json(&urls, &cred));
    Ok(ExitCode::SUCCESS)
}

/// The relay's configuration with the process environment's FERROTURN_* and `env_files`
/// applied, as the server loads it.
fn load_conf(path: &Path, env_files: &[PathBuf]) -> Result<relay_conf::RelayConf, String> {
    let env: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    relay_conf::load(path, &env, env_files)
}

/// Reads a Prosody-side file, guessing its kind from the name, then the contents.
pub fn read_prosody_side(path: &Path) -> Result<ProsodySide, String> {
    let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    prosody_side(&name, &text, &path.display().to_string(), Some(path))
}

/// What [`read_prosody_side`] makes of a file named `file_name` holding `bytes`; `origin`
/// names it in messages. The fuzz targets enter here.
/// A Lua text read this way has no directory, so its `Include`s are noted, not followed.
pub fn prosody_side_from_bytes(
    file_name: &str,
    bytes: &[u8],
    origin: &str,
) -> Result<ProsodySide, String> {
    prosody_side(file_name, bytes, origin, None)
}

fn prosody_side(
    file_name: &str,
    bytes: &[u8],
    origin: &str,
    path: Option<&Path>,
) -> Result<ProsodySide, String> {
    let text = String::from_utf8_lossy(bytes);
    let origin = origin.to_string();
    let name = file_name.to_lowercase();
    let looks_yaml =
        name.ends_with(".yaml") || name.ends_with(".yml") || text.contains("kind: Secret");
    let looks_lua = name.ends_with(".lua")
        || text.contains("external_service")
        || text.contains("turncredentials");
    if looks_lua && !looks_yaml {
        // From the file itself where there is one, so its Includes resolve from its directory.
        let lua = match path {
            Some(path) => parse_lua::parse_file(path)?,
            None => parse_lua::parse(&text),
        };
        Ok(ProsodySide::from_lua(&lua, &origin))
    } else if looks_yaml {
        let vars = parse_k8s::parse(&text).map_err(|e| format!("{origin}: {e}"))?;
        Ok(ProsodySide::from_env(&vars, &origin))
    } else {
        Ok(ProsodySide::from_env(&parse_env::parse(&text), &origin))
    }
}

fn run_check(a: CheckArgs) -> Result<ExitCode, String> {
    let loaded = load_conf(&a.conf, &a.env_files)?;
    let conf = &loaded.config;
    for w in &conf.warnings {
        println!("note: {w}");
    }
    if !loaded.applied.is_empty() {
        println!(
            "note: applied over {}: {}",
            a.conf.display(),
            loaded.applied.join(", ")
        );
    }
    for i in &loaded.ignored {
        println!("note: ignored {i}");
    }
    for line in describe(conf) {
        println!("relay: {line}");
    }
    if let Some(w) = loopback_warning(conf) {
        println!("warning: {w}");
    }
    let opts = CheckOptions {
        min_ttl: a.min_ttl,
        allow_udp_only: a.allow_udp_only,
    };
    let mut total = 0;
    let mut warned = 0;
    for path in &a.prosody {
        let side = read_prosody_side(path)?;
        let found = check(conf, &side, opts);
        let warn = warnings(&side, opts);
        for n in &side.notes {
            println!("note: {}: {n}", side.origin);
        }
        if let Some(w) = capacity_warning(conf, &side, a.participants) {
            println!("warning: {w}");
        }
        if found.is_empty() && warn.is_empty() {
            println!(
                "OK: {} agrees with {} (secret, hosts, ports, transports, credential lifetime)",
                side.origin,
                a.conf.display()
            );
        }
        for f in &found {
            println!("MISMATCH: {f}");
        }
        for w in &warn {
            println!("WARNING: {w}");
        }
        total += found.len();
        warned += warn.len();
    }
    if total > 0 {
        println!(
            "{total} mismatch{} found: clients following Prosody's directions will fail there.",
            if total == 1 { "" } else { "es" }
        );
    }
    if warned > 0 {
        println!(
            "{warned} warning{}: some clients will get no working relay.",
            if warned == 1 { "" } else { "s" }
        );
    }
    Ok(if total + warned > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn command_line_is_well_formed() {
        JitsiCli::command().debug_assert();
    }

    #[test]
    fn help_lists_the_commands() {
        let help = JitsiCli::command().render_long_help().to_string();
        for word in ["init", "credentials", "check", "Examples:"] {
            assert!(help.contains(word), "{help}");
        }
    }
}
