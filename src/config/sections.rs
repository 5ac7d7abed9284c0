//! The groups of [`Config`](super::Config) that belong together: the TLS files and options,
//! logging, and the three HTTP endpoints (metrics, admin API, credential endpoint).

use std::net::IpAddr;
use std::path::PathBuf;

use super::LogTarget;

/// `cert`, `pkey` and the TLS options.
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    /// `cert`.
    pub cert: Option<PathBuf>,
    /// `pkey`.
    pub pkey: Option<PathBuf>,
    /// `cipher-list`.
    pub cipher_list: Option<String>,
    /// `CA-file`.
    pub ca_file: Option<PathBuf>,
    /// `dh-file`.
    pub dh_file: Option<PathBuf>,
    /// `no-tlsv1`.
    pub no_tlsv1: bool,
    /// `no-tlsv1_1`.
    pub no_tlsv1_1: bool,
    /// `no-tlsv1_2`.
    pub no_tlsv1_2: bool,
}

/// Where and how much to log, and the pidfile.
#[derive(Debug, Clone)]
pub struct LogSettings {
    /// `log-file`.
    pub file: LogTarget,
    /// `verbose`.
    pub verbose: bool,
    /// `Verbose`.
    pub very_verbose: bool,
    /// `simple-log`.
    pub simple: bool,
    /// `pidfile`.
    pub pidfile: Option<PathBuf>,
    /// `log-json` (ferroturn).
    pub json: bool,
    /// `log-min-level` as a tracing level name.
    pub min_level: Option<&'static str>,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            file: LogTarget::Stdout,
            verbose: false,
            very_verbose: false,
            simple: false,
            pidfile: None,
            json: false,
            min_level: None,
        }
    }
}

/// The Prometheus endpoint (with /healthz and /readyz).
#[derive(Debug, Clone)]
pub struct MetricsSettings {
    /// `prometheus`.
    pub enabled: bool,
    /// `prometheus-port`.
    pub port: u16,
    /// `prometheus-address`; `None` = all interfaces.
    pub address: Option<IpAddr>,
    /// `prometheus-path`.
    pub path: String,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        MetricsSettings {
            enabled: false,
            port: 9641,
            address: None,
            path: "/metrics".to_string(),
        }
    }
}

/// The admin API (ferroturn).
#[derive(Debug, Clone)]
pub struct AdminSettings {
    /// `admin-address` (ferroturn).
    pub address: IpAddr,
    /// `admin-port` (ferroturn).
    pub port: u16,
    /// `admin-token` (ferroturn): enables the admin API.
    pub token: Option<String>,
}

impl Default for AdminSettings {
    fn default() -> Self {
        AdminSettings {
            address: IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            port: 9642,
            token: None,
        }
    }
}

/// The TURN REST credential endpoint (ferroturn).
#[derive(Debug, Clone)]
pub struct CredentialEndpointSettings {
    /// `rest-api-token` (ferroturn): enables the TURN REST credential endpoint.
    pub token: Option<String>,
    /// `rest-api-address` (ferroturn).
    pub address: IpAddr,
    /// `rest-api-port` (ferroturn).
    pub port: u16,
    /// `rest-api-host` (ferroturn): host in the handed-out URIs.
    pub host: Option<String>,
}

impl Default for CredentialEndpointSettings {
    fn default() -> Self {
        CredentialEndpointSettings {
            token: None,
            address: IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            port: 9643,
            host: None,
        }
    }
}
