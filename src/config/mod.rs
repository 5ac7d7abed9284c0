//! coturn-compatible configuration: `turnserver.conf`, `FERROTURN_*` environment variables and
//! the command line, layered as built-in defaults < file < environment < command line.
//!
//! Single-valued options: the last setting wins, so a higher layer overrides a lower one.
//! List options (`user`, `static-auth-secret`, `denied-peer-ip`, ...) accumulate across all
//! layers, as coturn does for the file and the command line.

mod build;
pub mod cli;
pub mod conf_file;
pub mod env;
pub mod help;
pub mod options;
mod policy;
pub mod print;
mod proxy_checks;
mod reload;
mod sections;
mod values;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use crate::proto::auth::UserSecret;
use crate::proto::peer_policy::PeerPolicySettings;
use options::OptionSpec;
pub use reload::{changed_options, reload_plan, ReloadPlan};
pub use sections::{
    AdminSettings, AlternateServers, AuthenticationSettings, CredentialEndpointSettings,
    DrainSettings, LimitSettings, ListenerSettings, LogSettings, MetricsSettings, ProtocolSettings,
    ProxyProtocolSettings, RelaySettings, TlsSettings,
};

/// Where a setting came from, so every message can point at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A line of a configuration file.
    File {
        /// The file as it was named (or the origin label given to [`from_conf_str`]).
        path: String,
        /// 1-based line number.
        line: usize,
    },
    /// The command line.
    CommandLine,
    /// An environment variable.
    Env {
        /// The variable's name, e.g. `FERROTURN_MIN_PORT`.
        var: String,
    },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::File { path, line } => write!(f, "{path}:{line}"),
            Source::CommandLine => f.write_str("command line"),
            Source::Env { var } => write!(f, "environment variable {var}"),
        }
    }
}

/// One `key[=value]` as read, before it is checked against the option table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    /// Option name as written (without leading `--`).
    pub key: String,
    /// The value, if one was given (quotes already stripped).
    pub value: Option<String>,
    /// Where it was read.
    pub source: Source,
}

/// One option as it was applied, with where it came from (for `--print-config`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// Canonical option name.
    pub name: &'static str,
    /// The value as written, if any.
    pub value: Option<String>,
    /// Where it was read.
    pub source: Source,
    /// A recognised coturn option that ferroturn ignores.
    pub ignored: bool,
}

/// A long-term credential user from `user=name:password`.
#[derive(Clone, PartialEq, Eq)]
pub struct StaticUser {
    /// User name.
    pub name: String,
    /// Password, or `0x` + 32 hex digits: MD5(user:realm:password), as turnadmin -k prints it.
    pub key: UserSecret,
}

impl fmt::Debug for StaticUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keeps passwords out of debug logs of the whole Config.
        f.debug_struct("StaticUser")
            .field("name", &self.name)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// One `external-ip` value: the public address, and the local address it maps to if the host
/// has several. The core's own type, so the relay takes the list as it is.
pub use crate::proto::settings::ExternalMapping as ExternalIp;

/// One `alternate-server` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlternateServer {
    /// Server address.
    pub ip: IpAddr,
    /// Port; `None` = the client's current server port.
    pub port: Option<u16>,
}

impl AlternateServer {
    /// The address with `default_port` filled in when none was given.
    pub fn socket_addr(&self, default_port: u16) -> SocketAddr {
        SocketAddr::new(self.ip, self.port.unwrap_or(default_port))
    }
}

/// Where log lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTarget {
    /// Standard output (the default; what containers want).
    Stdout,
    /// The system log.
    Syslog,
    /// A file.
    File(PathBuf),
}

/// The validated configuration. Plain data: the runtime reads it, nothing here does I/O.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Where clients connect.
    pub listen: ListenerSettings,
    /// Where and how the relay relays.
    pub relay: RelaySettings,
    /// Who may allocate.
    pub auth: AuthenticationSettings,
    /// What is served and what goes into answers.
    pub protocol: ProtocolSettings,
    /// `allowed-peer-ip`, `denied-peer-ip`, `allow-loopback-peers`: handed to the core's
    /// peer policy as they are.
    pub peers: PeerPolicySettings,
    /// Quotas, bandwidth, connection caps and lifetimes.
    pub limits: LimitSettings,
    /// What SIGTERM does.
    pub drain: DrainSettings,

    // TLS, logging and the HTTP endpoints
    /// `cert`, `pkey` and the TLS options.
    pub tls: TlsSettings,
    /// Where and how much to log, and the pidfile.
    pub log: LogSettings,
    /// The Prometheus endpoint (with /healthz and /readyz).
    pub metrics: MetricsSettings,
    /// The admin API (ferroturn).
    pub admin: AdminSettings,
    /// The TURN REST credential endpoint (ferroturn).
    pub credential_endpoint: CredentialEndpointSettings,

    // About the load itself
    /// `--check-config` was given: the binary reports and exits instead of running.
    pub check_config: bool,
    /// `--strict`: under `--check-config`, warnings count as errors.
    pub strict: bool,
    /// `--print-config` was given: print the effective configuration and exit.
    pub print_config: bool,
    /// Every option applied, in order (after layering), with its source.
    pub settings: Vec<Setting>,
    /// One line per value that a higher layer overrides, logged at start-up.
    pub overrides: Vec<String>,
    /// The configuration file that was read, if any.
    pub config_file: Option<PathBuf>,
    /// Problems that do not stop start-up (unknown or unsupported options, ...). Under
    /// `--check-config --strict` they count as errors.
    pub warnings: Vec<String>,
    /// Information worth logging at start-up that is not a problem (e.g. no file found).
    pub notices: Vec<String>,
}

/// Realm used when none is configured.
pub const DEFAULT_REALM: &str = "ferroturn.local";

impl Config {
    /// Whether TLS listeners open: `no-tls` is not set and both `cert` and `pkey` are.
    pub fn serves_tls(&self) -> bool {
        !self.listen.no_tls && self.tls.has_pair()
    }

    /// What `--check-config --strict` makes of the load alone: `Ok` when there is nothing to
    /// complain about, otherwise every warning as an error. (The binary's `--check-config`
    /// also runs `runtime::preflight`, the checks start-up makes.)
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.warnings.is_empty() {
            Ok(())
        } else {
            Err(ConfigError {
                messages: self.warnings.clone(),
                warnings: Vec::new(),
            })
        }
    }
}

/// Everything that stopped the configuration from loading, all at once so the operator can fix
/// them in one go. `Display` prints one message per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The errors, each naming its source and option.
    pub messages: Vec<String>,
    /// Warnings gathered before the errors stopped the load (printed separately, if at all).
    pub warnings: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, m) in self.messages.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            f.write_str(m)?;
        }
        Ok(())
    }
}

/// What the binary should do after [`load`].
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
pub enum LoadOutcome {
    /// Run (or, when `config.check_config`, report and exit).
    Run(Config),
    /// Print this help text and exit successfully.
    Help(String),
    /// Print this version line and exit successfully.
    Version(String),
}

/// Names of the configuration file looked for.
pub const CONFIG_FILE_NAME: &str = "turnserver.conf";

/// The directories searched for `turnserver.conf`, in coturn's order plus `/etc/ferroturn/`.
pub fn default_search_dirs() -> Vec<PathBuf> {
    [
        "./",
        "./etc/",
        "../etc/",
        "/etc/",
        "/etc/coturn/",
        "/etc/ferroturn/",
        "/usr/local/etc/",
        "/usr/local/etc/coturn/",
    ]
    .iter()
    .map(PathBuf::from)
    .collect()
}

/// The first `turnserver.conf` found in `dirs`.
pub fn find_config_file(dirs: &[PathBuf]) -> Option<PathBuf> {
    dirs.iter()
        .map(|d| d.join(CONFIG_FILE_NAME))
        .find(|p| p.is_file())
}

/// Loads the configuration from the command line, the environment and the configuration file.
///
/// `args` are the command-line arguments *without* the program name
/// (`std::env::args().skip(1)`); `env` is the process environment as (name, value) pairs, of
/// which only `FERROTURN_*` are read. The file is `-c FILE` (or `FERROTURN_CONFIG`), else the
/// first `turnserver.conf` in [`default_search_dirs`], unless `-n` is given.
pub fn load(args: &[String], env: &[(String, String)]) -> Result<LoadOutcome, ConfigError> {
    load_with_search(args, env, &default_search_dirs())
}

/// [`load`] with the directories searched for `turnserver.conf` given explicitly.
pub fn load_with_search(
    args: &[String],
    env: &[(String, String)],
    search_dirs: &[PathBuf],
) -> Result<LoadOutcome, ConfigError> {
    let cli = cli::parse(args);
    if cli.help {
        return Ok(LoadOutcome::Help(help::render()));
    }
    if cli.version {
        return Ok(LoadOutcome::Version(format!(
            "ferroturn {}",
            env!("CARGO_PKG_VERSION")
        )));
    }
    let env = env::parse(env);

    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut notices = Vec::new();

    // Command-line and environment problems are reported after the file's, in layer order.
    let no_config = cli.no_config || env.no_config;
    let explicit = cli.config.clone().or_else(|| env.config.clone());
    let mut file_entries = Vec::new();
    let mut config_file = None;
    if no_config {
        notices.push("not reading any configuration file (-n)".to_string());
    } else {
        let path = match explicit {
            Some(p) => Some(PathBuf::from(p)),
            None => {
                let found = find_config_file(search_dirs);
                if found.is_none() {
                    notices.push(format!(
                        "no {CONFIG_FILE_NAME} found in {}; running on defaults, environment and command line",
                        search_dirs
                            .iter()
                            .map(|d| d.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                found
            }
        };
        if let Some(path) = path {
            match read_file(&path) {
                Ok(text) => {
                    let parsed = conf_file::parse(&text, &path.display().to_string());
                    file_entries = parsed.entries;
                    warnings.extend(parsed.warnings);
                    config_file = Some(path);
                }
                Err(e) => errors.push(e),
            }
        }
    }

    warnings.extend(env.warnings);
    errors.extend(env.errors);
    warnings.extend(cli.warnings);
    errors.extend(cli.errors);

    let layers = vec![file_entries, env.entries, cli.entries];
    let overrides = override_lines(&layers);
    let entries = layer(layers);

    let mut config = build::build(&entries, errors, warnings)?;
    config.check_config = cli.check_config;
    config.strict = cli.strict;
    config.print_config = cli.print_config;
    config.overrides = overrides;
    config.config_file = config_file;
    notices.append(&mut config.notices);
    config.notices = notices;
    Ok(LoadOutcome::Run(config))
}

/// Joins the layers (lowest first). Single values simply apply in order, so the last one wins;
/// a list option given on a higher layer replaces the lower layers' values, so that
/// `--listening-ip` or `FERROTURN_STATIC_AUTH_SECRET` override the file rather than add to it.
fn layer(layers: Vec<Vec<RawEntry>>) -> Vec<RawEntry> {
    let list_name = |e: &RawEntry| options::lookup(&e.key).filter(|o| o.list).map(|o| o.name);
    let mut out: Vec<RawEntry> = Vec::new();
    for entries in layers {
        let replaced: std::collections::HashSet<&'static str> =
            entries.iter().filter_map(list_name).collect();
        out.retain(|e| list_name(e).is_none_or(|n| !replaced.contains(n)));
        out.extend(entries);
    }
    out
}

/// One line per option that a higher layer sets over a lower one: "realm from environment
/// variable FERROTURN_REALM overrides /etc/turnserver.conf:4". Only the last setting in each layer
/// counts, as that is the one that applies.
fn override_lines(layers: &[Vec<RawEntry>]) -> Vec<String> {
    let mut lines = Vec::new();
    // Per option: the last source that set it, in the layers seen so far.
    let mut below: Vec<(&'static str, &Source)> = Vec::new();
    for entries in layers {
        let mut here: Vec<(&'static OptionSpec, &Source)> = Vec::new();
        for e in entries {
            let Some(spec) = options::lookup(&e.key).filter(|o| !o.cli_only) else {
                continue;
            };
            here.retain(|(s, _)| s.name != spec.name);
            here.push((spec, &e.source));
        }
        for (spec, source) in here {
            if let Some(pos) = below.iter().position(|(n, _)| *n == spec.name) {
                let (_, lower) = below.remove(pos);
                let verb = if spec.list { "replaces" } else { "overrides" };
                lines.push(format!("{} from {source} {verb} {lower}", spec.name));
            }
            below.push((spec.name, source));
        }
    }
    lines
}

/// Builds a configuration from `turnserver.conf` text alone (no environment, no command line).
/// `origin` names the text in messages, e.g. the file's path.
pub fn from_conf_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
    let parsed = conf_file::parse(text, origin);
    build::build(&parsed.entries, Vec::new(), parsed.warnings)
}

fn read_file(path: &Path) -> Result<String, String> {
    let bytes = std::fs::read(path)
        .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
    // A stray non-UTF-8 byte (a Latin-1 comment) must not make the whole file unreadable.
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
pub(crate) mod test_conf;
#[cfg(test)]
mod tests;

/// `kernel-fast-path`: whether UDP channel data is forwarded by the kernel (eBPF).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KernelFastPath {
    /// User space relays everything.
    #[default]
    Off,
    /// Use the kernel program when it loads; otherwise log why and relay in user space.
    Auto,
    /// Refuse to start unless the kernel program loads and attaches.
    On,
}

impl KernelFastPath {
    /// The value as written in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            KernelFastPath::Off => "off",
            KernelFastPath::Auto => "auto",
            KernelFastPath::On => "on",
        }
    }
}
