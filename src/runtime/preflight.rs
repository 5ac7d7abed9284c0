//! The checks start-up makes before it opens a socket, as one list that both the relay and
//! `--check-config` run, so the two cannot disagree: a configuration that `--check-config`
//! accepts starts, and one that would not start fails the check.
//!
//! The load itself ([`crate::config::load`]) already refused bad values; these checks look at
//! what a valid configuration means on this host (files, ports, which listeners open).

use std::ffi::CString;
use std::fmt;
use std::net::IpAddr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::config::{Config, LogTarget, Setting};

use super::tls_config::CertStore;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The relay would not start (or would start without something it was asked for that it
    /// cannot do without); start-up stops and `--check-config` exits 1.
    Error,
    /// Worth knowing, not fatal: logged at WARN at start-up; `--check-config` prints it and
    /// exits 0 unless `--strict`.
    Warning,
}

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong, naming the option and, when known, where it was set.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{tag}: {}", self.message)
    }
}

/// A check: what it looks at, for tests and messages, and the function.
pub type Check = fn(&Config) -> Vec<Finding>;

/// Every check start-up makes, in order. Add new checks here (not in `main`), so that start-up
/// and `--check-config` keep running the same list.
pub const CHECKS: &[(&str, Check)] = &[
    ("load warnings", load_warnings),
    ("TLS certificate", tls_certificate),
    ("TLS port without certificate", tls_port_without_certificate),
    (
        "relay range against listening ports",
        relay_range_holds_listener,
    ),
    ("weak REST secret", weak_secret),
    ("listeners", listeners),
    ("log file and pidfile", log_and_pid_files),
];

/// Shorter than this, a REST secret is guessable offline from one captured credential.
pub const MIN_SECRET_BYTES: usize = 16;

/// Secrets printed in examples people copy: ferroturn's own and coturn's.
pub const EXAMPLE_SECRETS: &[&str] = &["change-me-to-a-long-random-hex-string", "north"];

/// Runs every check.
pub fn run(config: &Config) -> Vec<Finding> {
    CHECKS.iter().flat_map(|(_, check)| check(config)).collect()
}

/// Whether any finding is an error.
pub fn has_errors(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.severity == Severity::Error)
}

fn error(message: String) -> Finding {
    Finding {
        severity: Severity::Error,
        message,
    }
}

fn warning(message: String) -> Finding {
    Finding {
        severity: Severity::Warning,
        message,
    }
}

/// Where `name` was last set, as "FILE:LINE: " (empty when it is a default).
fn set_at(config: &Config, name: &str) -> Option<String> {
    config
        .settings
        .iter()
        .rev()
        .find(|s: &&Setting| !s.ignored && s.name == name)
        .map(|s| format!("{}: ", s.source))
}

/// What the load tolerated: unknown and ignored options, half a TLS pair, ...
fn load_warnings(config: &Config) -> Vec<Finding> {
    config.warnings.iter().cloned().map(warning).collect()
}

/// Whether the configuration asks for TLS listeners (a certificate pair is set and TLS or the
/// TCP port that also recognises TLS is on): the condition under which start-up loads it.
fn wants_tls(config: &Config) -> bool {
    config.tls.has_pair() && !(config.listen.no_tls && config.listen.no_tcp)
}

/// Start-up loads the pair and stops when it cannot: a missing or unreadable file, no
/// certificate in it, a key that does not parse or does not match.
fn tls_certificate(config: &Config) -> Vec<Finding> {
    let (Some(cert), Some(key)) = (&config.tls.cert, &config.tls.pkey) else {
        return Vec::new();
    };
    if !wants_tls(config) {
        return Vec::new();
    }
    match CertStore::load(cert, key) {
        Ok(_) => Vec::new(),
        Err(e) => vec![error(format!(
            "{}cert/pkey: {e}; the relay would not start",
            set_at(config, "cert").unwrap_or_default()
        ))],
    }
}

/// A TLS port given explicitly with no certificate opens nothing: say so instead of silently
/// serving no `turns:`.
fn tls_port_without_certificate(config: &Config) -> Vec<Finding> {
    if config.listen.no_tls || config.tls.has_pair() {
        return Vec::new();
    }
    ["tls-listening-port", "alt-tls-listening-port"]
        .iter()
        .filter_map(|name| {
            set_at(config, name).map(|at| {
                warning(format!(
                    "{at}{name} is set but cert and pkey are not: no TLS listener will be opened"
                ))
            })
        })
        .collect()
}

/// A relay range that contains a UDP listening port, on an address the relay also uses: relay
/// sockets and the listener would fight over the port.
fn relay_range_holds_listener(config: &Config) -> Vec<Finding> {
    if config.listen.no_udp {
        return Vec::new();
    }
    // Addresses that cannot work are reported by the address plan itself (start-up's
    // StartError::Addresses, --check-config's address report).
    let Ok(plan) = super::address_plan(config) else {
        return Vec::new();
    };
    let listen = &plan.listening;
    let shared = plan
        .relay_ips()
        .into_iter()
        .any(|relay| listen.iter().any(|l| overlaps(*l, relay)));
    if !shared {
        return Vec::new();
    }
    let mut ports = vec![("listening-port", config.listen.port)];
    ports.extend(config.listen.alt_port.map(|p| ("alt-listening-port", p)));
    ports
        .into_iter()
        .filter(|(_, p)| (config.relay.min_port..=config.relay.max_port).contains(p))
        .map(|(name, p)| {
            error(format!(
                "{}relay port range {}-{} contains the UDP {name} {p}: the relay would allocate the listener's own port; move min-port/max-port",
                set_at(config, "min-port")
                    .or_else(|| set_at(config, "max-port"))
                    .unwrap_or_default(),
                config.relay.min_port,
                config.relay.max_port
            ))
        })
        .collect()
}

/// Start-up stops when no listener would open: the same computation as `Runtime::start`.
/// (Relay addresses are the address plan's: see `address_report`.)
fn listeners(config: &Config) -> Vec<Finding> {
    let Ok(plan) = super::address_plan(config) else {
        return Vec::new();
    };
    let (udp, tcp) = super::listener_addresses(&config.listen, &plan.listening, wants_tls(config));
    if udp.is_empty() && tcp.is_empty() {
        return vec![error(
            "no listener would open: UDP and TCP are off and TLS has no cert/pkey (or no-tls is set)"
                .to_string(),
        )];
    }
    Vec::new()
}

/// Start-up opens `log-file` (and stops when it cannot) and writes `pidfile` (and warns when
/// it cannot). Checked without writing: the file must be writable, or its directory must be.
fn log_and_pid_files(config: &Config) -> Vec<Finding> {
    let mut out = Vec::new();
    if let LogTarget::File(path) = &config.log.file {
        if let Some(why) = not_writable(path) {
            out.push(error(format!(
                "{}log-file {}: {why}; the relay would not start",
                set_at(config, "log-file").unwrap_or_default(),
                path.display()
            )));
        }
    }
    if let Some(path) = &config.log.pidfile {
        if let Some(why) = not_writable(path) {
            out.push(warning(format!(
                "{}pidfile {}: {why}; it will not be written",
                set_at(config, "pidfile").unwrap_or_default(),
                path.display()
            )));
        }
    }
    out
}

/// Why `path` cannot be opened for writing, if it cannot.
fn not_writable(path: &Path) -> Option<String> {
    let writable = |p: &Path| -> bool {
        let Ok(c) = CString::new(p.as_os_str().as_bytes()) else {
            return false;
        };
        // SAFETY: access only reads the NUL-terminated path.
        unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
    };
    if path.exists() {
        if path.is_dir() {
            return Some("is a directory".to_string());
        }
        return (!writable(path)).then(|| "not writable by this user".to_string());
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Some(format!("directory {} does not exist", dir.display()));
    }
    (!writable(dir)).then(|| format!("directory {} is not writable by this user", dir.display()))
}

/// A REST secret that is short or copied from an example signs credentials anyone can forge.
/// The message names where the secret is set, never the secret.
fn weak_secret(config: &Config) -> Vec<Finding> {
    config
        .settings
        .iter()
        .filter(|s| !s.ignored && s.name == "static-auth-secret")
        .filter_map(|s| {
            let v = s.value.as_deref().unwrap_or_default();
            let why = if EXAMPLE_SECRETS.contains(&v) {
                "is the example's secret".to_string()
            } else if v.len() < MIN_SECRET_BYTES {
                format!("is only {} bytes (use at least {MIN_SECRET_BYTES})", v.len())
            } else {
                return None;
            };
            Some(warning(format!(
                "{}: static-auth-secret {why}: anyone can mint credentials for this relay; generate one with `openssl rand -hex 32`",
                s.source
            )))
        })
        .collect()
}

/// Whether a listener bound on `listen` also holds ports on `relay`.
fn overlaps(listen: IpAddr, relay: IpAddr) -> bool {
    listen == relay || (listen.is_unspecified() && listen.is_ipv4() == relay.is_ipv4())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::from_conf_str;

    const AUTH: &str =
        "use-auth-secret\nstatic-auth-secret=0123456789abcdef0123\nlistening-ip=127.0.0.1\n";

    fn findings(extra: &str) -> Vec<Finding> {
        let c = from_conf_str(&format!("{AUTH}{extra}"), "t.conf").expect("loads");
        run(&c)
    }

    /// The one finding of `f`, which must have `severity`.
    fn sole(f: &[Finding], severity: Severity) -> &Finding {
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].severity, severity, "{f:?}");
        &f[0]
    }

    #[test]
    fn missing_certificate_file_is_an_error() {
        let f = findings("cert=/nonexistent/c.pem\npkey=/nonexistent/k.pem\n");
        sole(&f, Severity::Error);
        assert!(f[0].message.starts_with("t.conf:4: "), "{f:?}");
        assert!(f[0].message.contains("/nonexistent/c.pem"), "{f:?}");
    }

    #[test]
    fn certificate_is_not_loaded_when_no_listener_wants_it() {
        assert!(
            findings("cert=/nonexistent/c.pem\npkey=/nonexistent/k.pem\nno-tls\nno-tcp\n")
                .is_empty()
        );
    }

    #[test]
    fn tls_port_without_certificate_warns() {
        let f = findings("tls-listening-port=5349\n");
        let message = &sole(&f, Severity::Warning).message;
        assert!(message.contains("t.conf:4: tls-listening-port"), "{f:?}");
        assert!(findings("").is_empty());
        assert!(findings("tls-listening-port=5349\nno-tls\n").is_empty());
    }

    #[test]
    fn relay_range_holding_the_listening_port_is_an_error() {
        let f = findings("min-port=3000\nmax-port=4000\n");
        let message = &sole(&f, Severity::Error).message;
        assert!(
            message.contains("contains the UDP listening-port 3478"),
            "{f:?}"
        );
        let f = findings("min-port=40000\nmax-port=40100\nalt-listening-port=40050\n");
        assert!(f[0].message.contains("alt-listening-port 40050"), "{f:?}");
        assert!(findings("min-port=3479\nmax-port=4000\n").is_empty());
        // Relaying on another address than the listener's is no conflict.
        assert!(findings("min-port=3000\nmax-port=4000\nrelay-ip=127.0.0.2\n").is_empty());
        assert!(findings("min-port=3000\nmax-port=4000\nno-udp\n").is_empty());
    }

    #[test]
    fn short_or_example_secrets_warn_without_showing_them() {
        for (secret, why) in [
            ("short-secret", "only 12 bytes"),
            ("change-me-to-a-long-random-hex-string", "example's"),
            ("north", "example's"),
        ] {
            let c = from_conf_str(
                &format!("listening-ip=127.0.0.1\nstatic-auth-secret={secret}\n"),
                "t.conf",
            )
            .expect("loads");
            let f = run(&c);
            sole(&f, Severity::Warning);
            assert!(f[0].message.starts_with("t.conf:2: "), "{f:?}");
            assert!(f[0].message.contains(why), "{f:?}");
            assert!(!f[0].message.contains(secret), "{f:?}");
        }
        assert!(findings("").is_empty(), "a 20-byte random secret is fine");
    }

    #[test]
    fn nothing_to_listen_on_is_an_error() {
        let f = findings("no-udp\nno-tcp\n");
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].message.contains("no listener would open"), "{f:?}");
        assert!(findings("no-udp\n").is_empty());
    }

    #[test]
    fn unwritable_log_file_is_an_error_and_pidfile_a_warning() {
        let f = findings("log-file=/nonexistent-dir/turn.log\n");
        let message = &sole(&f, Severity::Error).message;
        assert!(message.contains("/nonexistent-dir does not exist"), "{f:?}");
        let f = findings("pidfile=/nonexistent-dir/turn.pid\n");
        sole(&f, Severity::Warning);
        let dir = std::env::temp_dir();
        let log = dir.join(format!("ferroturn-preflight-{}.log", std::process::id()));
        assert!(findings(&format!("log-file={}\n", log.display())).is_empty());
        assert!(!log.exists(), "the check must not create the file");
        assert!(findings(&format!("log-file={}\n", dir.display()))[0]
            .message
            .contains("is a directory"));
    }

    #[test]
    fn ignored_options_are_warnings() {
        let f = findings("mobility\n");
        sole(&f, Severity::Warning);
        assert!(!has_errors(&f));
    }
}
