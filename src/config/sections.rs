//! The groups of [`Config`](super::Config) that belong together, each read whole by the part
//! of the relay it configures: the listeners, the relay, authentication, what answers look
//! like, limits, draining, the TLS files and options, logging, and the three HTTP endpoints
//! (metrics, admin API, credential endpoint).

use std::net::IpAddr;
use std::path::PathBuf;

use super::{AlternateServer, ExternalIp, KernelFastPath, LogTarget, StaticUser, DEFAULT_REALM};
use crate::proto::auth::rest::RestHmac;
use crate::proto::peer_policy::IpRange;

/// Where clients connect: addresses, ports, which transports are open, and the PROXY protocol.
#[derive(Debug, Clone)]
pub struct ListenerSettings {
    /// `listening-ip`; empty = all interfaces.
    pub ips: Vec<IpAddr>,
    /// `listening-port`.
    pub port: u16,
    /// `tls-listening-port`.
    pub tls_port: u16,
    /// `alt-listening-port`; opened only when set.
    pub alt_port: Option<u16>,
    /// `alt-tls-listening-port`; opened only when set.
    pub alt_tls_port: Option<u16>,
    /// `no-udp`.
    pub no_udp: bool,
    /// `no-tcp`.
    pub no_tcp: bool,
    /// `no-tls`.
    pub no_tls: bool,
    /// `no-dtls` (accepted; DTLS is never served).
    pub no_dtls: bool,
    /// `dtls` (coturn 4.17's opt-in; accepted with a warning, DTLS is not served).
    pub dtls: bool,
    /// `proxy-protocol-*` (ferroturn).
    pub proxy_protocol: ProxyProtocolSettings,
}

impl Default for ListenerSettings {
    fn default() -> Self {
        ListenerSettings {
            ips: Vec::new(),
            port: 3478,
            tls_port: 5349,
            alt_port: None,
            alt_tls_port: None,
            no_udp: false,
            no_tcp: false,
            no_tls: false,
            no_dtls: false,
            dtls: false,
            proxy_protocol: ProxyProtocolSettings::default(),
        }
    }
}

impl ListenerSettings {
    /// The plain (UDP and TCP) ports: `listening-port`, then `alt-listening-port` if set.
    pub fn plain_ports(&self) -> Vec<u16> {
        std::iter::once(self.port).chain(self.alt_port).collect()
    }

    /// The TLS ports: `tls-listening-port`, then `alt-tls-listening-port` if set.
    pub fn tls_ports(&self) -> Vec<u16> {
        std::iter::once(self.tls_port)
            .chain(self.alt_tls_port)
            .collect()
    }
}

/// `proxy-protocol-*` (ferroturn): which stream listeners expect a PROXY header, and from whom.
#[derive(Debug, Clone)]
pub struct ProxyProtocolSettings {
    /// `proxy-protocol-port`: TCP/TLS listening ports that expect a PROXY header.
    pub ports: Vec<u16>,
    /// `proxy-protocol-trusted`: sources allowed to send PROXY headers.
    pub trusted: Vec<IpRange>,
    /// `proxy-protocol-timeout`: seconds the header may take to arrive.
    pub timeout: u64,
}

impl Default for ProxyProtocolSettings {
    fn default() -> Self {
        ProxyProtocolSettings {
            ports: Vec::new(),
            trusted: Vec::new(),
            timeout: 5,
        }
    }
}

/// Where and how the relay relays: its addresses and port range, which relay transports are
/// offered, and the shard threads and their sockets.
#[derive(Debug, Clone)]
pub struct RelaySettings {
    /// `relay-ip`; empty = the listening addresses.
    pub ips: Vec<IpAddr>,
    /// `external-ip`.
    pub external_ips: Vec<ExternalIp>,
    /// `min-port`.
    pub min_port: u16,
    /// `max-port`.
    pub max_port: u16,
    /// `no-udp-relay`.
    pub no_udp: bool,
    /// `no-tcp-relay`.
    pub no_tcp: bool,
    /// `relay-threads`; `None` = one per CPU core.
    pub threads: Option<usize>,
    /// `cpus`: CPU count to assume when `relay-threads` is not set.
    pub cpus: Option<usize>,
    /// `sock-buf-size`; `None` = 4 MiB asked for listening sockets, the kernel's default for
    /// relay sockets.
    pub sock_buf_size: Option<usize>,
    /// `poll-interval-ms` (ferroturn): drain sockets on a timer; 0 = on every wake-up.
    pub poll_interval_ms: u64,
    /// `poll-coalesce-us` (ferroturn): after a turn with input, wait this long before polling
    /// again; 0 = off.
    pub poll_coalesce_us: u64,
    /// `kernel-fast-path`: whether channel data is forwarded by the eBPF program.
    pub kernel_fast_path: KernelFastPath,
}

impl Default for RelaySettings {
    fn default() -> Self {
        RelaySettings {
            ips: Vec::new(),
            external_ips: Vec::new(),
            min_port: 49152,
            max_port: 65535,
            no_udp: false,
            no_tcp: false,
            threads: None,
            cpus: None,
            sock_buf_size: None,
            poll_interval_ms: 0,
            poll_coalesce_us: 0,
            kernel_fast_path: KernelFastPath::Off,
        }
    }
}

/// Who may allocate: the realm, REST secrets, static users and nonces.
#[derive(Debug, Clone)]
pub struct AuthenticationSettings {
    /// `realm`.
    pub realm: String,
    /// `server-name`.
    pub server_name: Option<String>,
    /// `no-auth`.
    pub no_auth: bool,
    /// `use-auth-secret`.
    pub use_auth_secret: bool,
    /// `static-auth-secret`, in the order given (the first one signs, all verify).
    pub static_auth_secrets: Vec<String>,
    /// `rest-api-separator`.
    pub rest_api_separator: char,
    /// `rest-api-hmac`: the HMAC of REST passwords.
    pub rest_api_hmac: RestHmac,
    /// `lt-cred-mech` (also switched on when users are given without it, as coturn does).
    pub lt_cred_mech: bool,
    /// `user`.
    pub users: Vec<StaticUser>,
    /// `stale-nonce`, seconds.
    pub stale_nonce: u32,
    /// `strict-expiry`.
    pub strict_expiry: bool,
    /// `sha256-integrity`: offer SHA-256 long-term credentials in challenges.
    pub sha256_integrity: bool,
}

impl Default for AuthenticationSettings {
    fn default() -> Self {
        AuthenticationSettings {
            realm: DEFAULT_REALM.to_string(),
            server_name: None,
            no_auth: false,
            use_auth_secret: false,
            static_auth_secrets: Vec::new(),
            rest_api_separator: ':',
            rest_api_hmac: RestHmac::Sha1,
            lt_cred_mech: false,
            users: Vec::new(),
            stale_nonce: 600,
            strict_expiry: false,
            sha256_integrity: false,
        }
    }
}

/// What is served and what goes into answers.
#[derive(Debug, Clone, Default)]
pub struct ProtocolSettings {
    /// `stun-only`.
    pub stun_only: bool,
    /// `no-stun`.
    pub no_stun: bool,
    /// `fingerprint`.
    pub fingerprint: bool,
    /// `no-software-attribute`.
    pub no_software_attribute: bool,
    /// `include-reason-string`: reason phrases in ERROR-CODE.
    pub include_reason_string: bool,
    /// `rfc5766-channel-numbers`: accept channel numbers 0x5000–0x7FFF.
    pub rfc5766_channel_numbers: bool,
}

/// Quotas, bandwidth, connection caps, lifetimes and the challenge rate limit.
#[derive(Debug, Clone)]
pub struct LimitSettings {
    /// `user-quota`; 0 = unlimited.
    pub user_quota: u32,
    /// `total-quota`; 0 = unlimited.
    pub total_quota: u32,
    /// `max-bps`, bytes per second; 0 = unlimited.
    pub max_bps: u64,
    /// `bps-capacity`, bytes per second; 0 = unlimited.
    pub bps_capacity: u64,
    /// `max-tcp-connections` (ferroturn): open TCP/TLS connections in total, 0 = unlimited.
    pub max_tcp_connections: usize,
    /// `max-tcp-connections-per-ip` (ferroturn): connections from one address, 0 = unlimited.
    pub max_tcp_connections_per_ip: usize,
    /// `max-allocate-lifetime`, seconds.
    pub max_allocate_lifetime: u32,
    /// `channel-lifetime`, seconds.
    pub channel_lifetime: u32,
    /// `permission-lifetime`, seconds.
    pub permission_lifetime: u32,
    /// `unauthorized-ratelimit`: limit 401/438 answers per source address.
    pub unauthorized_ratelimit: bool,
    /// `unauthorized-ratelimit-rps`: answers per second and source address.
    pub unauthorized_ratelimit_rps: u32,
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            user_quota: 0,
            total_quota: 0,
            max_bps: 0,
            bps_capacity: 0,
            max_tcp_connections: 20_000,
            max_tcp_connections_per_ip: 256,
            max_allocate_lifetime: 3600,
            channel_lifetime: 600,
            permission_lifetime: 300,
            unauthorized_ratelimit: false,
            unauthorized_ratelimit_rps: 20,
        }
    }
}

/// What SIGTERM does: how long the drain waits, when it ends, and where clients are sent
/// meanwhile.
#[derive(Debug, Clone)]
pub struct DrainSettings {
    /// `drain-timeout` (ferroturn): seconds SIGTERM waits for allocations to end.
    pub timeout: u64,
    /// `drain-min-allocations`: a drain ends once this many or fewer allocations are left.
    pub min_allocations: u32,
    /// `stay-up-after-drain` (ferroturn): a finished drain leaves the process up and unready.
    pub stay_up: bool,
    /// Where clients are sent while draining (ALTERNATE-SERVER).
    pub alternate_servers: AlternateServers,
}

impl Default for DrainSettings {
    fn default() -> Self {
        DrainSettings {
            timeout: 30,
            min_allocations: 0,
            stay_up: false,
            alternate_servers: AlternateServers::default(),
        }
    }
}

/// `alternate-server` and its per-transport forms.
#[derive(Debug, Clone, Default)]
pub struct AlternateServers {
    /// `alternate-server`: for every client without one of its transport.
    pub any: Vec<AlternateServer>,
    /// `udp-alternate-server`: for UDP clients, before `alternate-server`.
    pub udp: Vec<AlternateServer>,
    /// `tcp-alternate-server`: for TCP clients, before `alternate-server`.
    pub tcp: Vec<AlternateServer>,
    /// `tls-alternate-server`: for TLS clients, before `alternate-server`.
    pub tls: Vec<AlternateServer>,
}

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

impl TlsSettings {
    /// Whether both halves of the certificate pair are set.
    pub fn has_pair(&self) -> bool {
        self.cert.is_some() && self.pkey.is_some()
    }
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
