//! The table of every option ferroturn recognises: coturn's names and short aliases, whether a
//! value follows, and the help text. The file reader, the command line, the environment and
//! `--help` all read this one table, so an option cannot be known to one and missing in another.

/// The options ferroturn acts on. Recognised coturn options that ferroturn does not implement
/// share [`Opt::Unsupported`].
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Opt {
    // General
    Config,
    NoConfig,
    CheckConfig,
    Strict,
    PrintConfig,
    Help,
    Version,
    // Listeners
    ListeningPort,
    TlsListeningPort,
    AltListeningPort,
    AltTlsListeningPort,
    ListeningIp,
    NoUdp,
    NoTcp,
    NoTls,
    NoDtls,
    Dtls,
    StunOnly,
    NoStun,
    ProxyProtocolPort,
    ProxyProtocolTrusted,
    ProxyProtocolTimeout,
    // Relay
    RelayIp,
    ExternalIp,
    MinPort,
    MaxPort,
    RelayThreads,
    NoUdpRelay,
    NoTcpRelay,
    SockBufSize,
    // Authentication
    Realm,
    ServerName,
    UseAuthSecret,
    StaticAuthSecret,
    RestApiSeparator,
    LtCredMech,
    User,
    NoAuth,
    StaleNonce,
    StrictExpiry,
    Fingerprint,
    NoSoftwareAttribute,
    IncludeReasonString,
    Sha256Integrity,
    // Peer policy
    AllowedPeerIp,
    DeniedPeerIp,
    AllowLoopbackPeers,
    NoMulticastPeers,
    // Limits
    UserQuota,
    TotalQuota,
    MaxTcpConnections,
    DrainTimeout,
    StayUpAfterDrain,
    PollIntervalMs,
    PollCoalesceUs,
    AdminAddress,
    AdminPort,
    AdminToken,
    LogJson,
    RestApiToken,
    RestApiAddress,
    RestApiPort,
    RestApiHost,
    MaxTcpConnectionsPerIp,
    MaxBps,
    BpsCapacity,
    MaxAllocateLifetime,
    ChannelLifetime,
    PermissionLifetime,
    UnauthorizedRatelimit,
    UnauthorizedRatelimitRps,
    Rfc5766ChannelNumbers,
    DrainMinAllocations,
    Cpus,
    LogMinLevel,
    PrometheusPath,
    UdpAlternateServer,
    TcpAlternateServer,
    TlsAlternateServer,
    RestApiHmac,
    // TLS
    Cert,
    Pkey,
    CipherList,
    CaFile,
    DhFile,
    NoTlsv1,
    NoTlsv1_1,
    NoTlsv1_2,
    // Logging
    LogFile,
    Verbose,
    VeryVerbose,
    SimpleLog,
    Syslog,
    Pidfile,
    // Metrics
    Prometheus,
    PrometheusPort,
    PrometheusAddress,
    // Compatibility
    AlternateServer,
    AlreadyDefault,
    Unsupported,
    KernelFastPath,
}

/// Whether a value follows the option name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arity {
    /// On/off switch. Bare means on; like coturn, `--flag=off` (or `flag off` in the file) is
    /// accepted too, so a higher layer can switch off what a lower one switched on.
    Flag,
    /// A value is required: `--opt value` or `--opt=value` on the command line.
    Required,
    /// The value may be left out; on the command line it is taken only from `--opt=value`.
    Optional,
}

/// What a SIGHUP reload does with a changed value of the option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reload {
    /// Applied to the running relay (and to live sessions where that makes sense).
    Live,
    /// Read only at start-up (sockets, threads, files opened once): a change is logged as
    /// needing a restart and does not apply.
    Restart,
}

/// Section of `--help` an option is listed under.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    General,
    Listeners,
    Relay,
    Authentication,
    PeerPolicy,
    Limits,
    Tls,
    Logging,
    Metrics,
    Compatibility,
}

impl Group {
    /// Every group, in `--help` order.
    pub const ALL: [Group; 10] = [
        Group::General,
        Group::Listeners,
        Group::Relay,
        Group::Authentication,
        Group::PeerPolicy,
        Group::Limits,
        Group::Tls,
        Group::Logging,
        Group::Metrics,
        Group::Compatibility,
    ];

    /// Heading used in `--help`.
    pub fn title(self) -> &'static str {
        match self {
            Group::General => "General",
            Group::Listeners => "Listeners",
            Group::Relay => "Relay",
            Group::Authentication => "Authentication",
            Group::PeerPolicy => "Peer policy",
            Group::Limits => "Limits",
            Group::Tls => "TLS",
            Group::Logging => "Logging",
            Group::Metrics => "Metrics",
            Group::Compatibility => "Compatibility",
        }
    }
}

/// One row of the option table.
#[derive(Debug, Clone, Copy)]
pub struct OptionSpec {
    /// Canonical name, as in `turnserver.conf` and after `--`.
    pub name: &'static str,
    /// Other accepted spellings (coturn's own aliases such as `db` for `userdb`).
    pub aliases: &'static [&'static str],
    /// coturn's single-letter alias.
    pub short: Option<char>,
    /// Whether a value follows.
    pub arity: Arity,
    /// Placeholder shown in `--help`, e.g. `PORT`.
    pub value_name: &'static str,
    /// Repeats accumulate instead of the last one winning.
    pub list: bool,
    /// Only meaningful on the command line (e.g. `--check-config`).
    pub cli_only: bool,
    /// Default shown in `--help`.
    pub default: Option<&'static str>,
    /// `--help` section.
    pub group: Group,
    /// What the option does in ferroturn.
    pub opt: Opt,
    /// Whether SIGHUP applies a changed value or only names it as needing a restart.
    pub reload: Reload,
    /// One-line help.
    pub help: &'static str,
}

impl OptionSpec {
    /// Whether ferroturn acts on this option (unsupported ones only warn).
    pub fn is_supported(&self) -> bool {
        self.opt != Opt::Unsupported
    }

    /// Environment variable that sets this option, e.g. `FERROTURN_MIN_PORT`.
    pub fn env_var(&self) -> String {
        // `Verbose` and `verbose` differ only in case, which upper-casing would erase.
        let stem = if self.name == "Verbose" {
            "VERY_VERBOSE".to_string()
        } else {
            self.name.to_ascii_uppercase().replace('-', "_")
        };
        format!("{ENV_PREFIX}{stem}")
    }

    /// Whether `name` is this option's name or one of its aliases.
    pub fn matches(&self, name: &str) -> bool {
        self.name == name || self.aliases.contains(&name)
    }
}

/// Prefix of the environment variables ferroturn reads.
pub const ENV_PREFIX: &str = "FERROTURN_";

const fn base(name: &'static str, opt: Opt, group: Group, help: &'static str) -> OptionSpec {
    OptionSpec {
        name,
        aliases: &[],
        short: None,
        arity: Arity::Flag,
        value_name: "",
        list: false,
        cli_only: false,
        default: None,
        group,
        opt,
        // Conservative: a row applies live only where it says so, so an option nobody thought
        // about is reported as needing a restart instead of silently ignored. Options that do
        // nothing in ferroturn have nothing to apply.
        reload: match opt {
            Opt::AlreadyDefault | Opt::Unsupported => Reload::Live,
            _ => Reload::Restart,
        },
        help,
    }
}

/// An on/off option.
const fn flag(name: &'static str, opt: Opt, group: Group, help: &'static str) -> OptionSpec {
    base(name, opt, group, help)
}

/// An option that requires a value.
const fn value(
    name: &'static str,
    value_name: &'static str,
    opt: Opt,
    group: Group,
    help: &'static str,
) -> OptionSpec {
    let mut s = base(name, opt, group, help);
    s.arity = Arity::Required;
    s.value_name = value_name;
    s
}

/// A recognised coturn option that ferroturn ignores (with a warning).
const fn unsupported(name: &'static str, arity: Arity, help: &'static str) -> OptionSpec {
    let mut s = base(name, Opt::Unsupported, Group::Compatibility, help);
    s.arity = arity;
    s.value_name = match arity {
        Arity::Flag => "",
        _ => "VALUE",
    };
    s
}

impl OptionSpec {
    const fn short(mut self, c: char) -> Self {
        self.short = Some(c);
        self
    }
    const fn default(mut self, d: &'static str) -> Self {
        self.default = Some(d);
        self
    }
    const fn list(mut self) -> Self {
        self.list = true;
        self
    }
    const fn cli_only(mut self) -> Self {
        self.cli_only = true;
        self
    }
    const fn optional(mut self) -> Self {
        self.arity = Arity::Optional;
        self
    }
    const fn aliases(mut self, a: &'static [&'static str]) -> Self {
        self.aliases = a;
        self
    }
    /// SIGHUP applies a changed value (see [`Reload::Live`]).
    const fn live(mut self) -> Self {
        self.reload = Reload::Live;
        self
    }
}

use Arity::{Flag as F, Required as R};
use Group as G;

/// Every option, grouped as `--help` shows them.
pub static OPTIONS: &[OptionSpec] = &[
    // General
    value("config", "FILE", Opt::Config, G::General, "Read this turnserver.conf instead of searching the standard places").short('c').cli_only(),
    flag("no-config", Opt::NoConfig, G::General, "Do not read any configuration file").short('n').cli_only(),
    flag("check-config", Opt::CheckConfig, G::General, "Run every start-up check without starting: errors exit 1, warnings (ignored options, ...) print and exit 0 unless --strict").cli_only(),
    flag("help", Opt::Help, G::General, "Print this help and exit").short('h').cli_only(),
    flag("version", Opt::Version, G::General, "Print the version and exit").cli_only(),
    // Listeners
    value("listening-port", "PORT", Opt::ListeningPort, G::Listeners, "TURN/STUN port for UDP and TCP").short('p').default("3478"),
    value("tls-listening-port", "PORT", Opt::TlsListeningPort, G::Listeners, "TURN/STUN port for TLS over TCP (DTLS is not served: no UDP listener on this port)").default("5349"),
    value("alt-listening-port", "PORT", Opt::AltListeningPort, G::Listeners, "Additional plain port; opened only when given"),
    value("alt-tls-listening-port", "PORT", Opt::AltTlsListeningPort, G::Listeners, "Additional TLS port; opened only when given"),
    value("listening-ip", "IP", Opt::ListeningIp, G::Listeners, "Address to listen on (repeatable; default: all interfaces)").short('L').list(),
    flag("no-udp", Opt::NoUdp, G::Listeners, "Do not listen on UDP"),
    flag("no-tcp", Opt::NoTcp, G::Listeners, "Do not listen on TCP"),
    flag("no-tls", Opt::NoTls, G::Listeners, "Do not listen on TLS"),
    flag("no-dtls", Opt::NoDtls, G::Listeners, "Accepted for coturn compatibility: ferroturn never serves DTLS"),
    flag("dtls", Opt::Dtls, G::Listeners, "coturn 4.17's DTLS opt-in: accepted with a warning, DTLS is not served (no browser uses TURN over DTLS)"),
    flag("stun-only", Opt::StunOnly, G::Listeners, "Serve STUN only, no TURN relaying").short('S').live(),
    flag("no-stun", Opt::NoStun, G::Listeners, "Serve TURN only, refuse plain STUN Binding requests").live(),
    value("proxy-protocol-port", "PORT[,PORT]", Opt::ProxyProtocolPort, G::Listeners, "TCP/TLS ports behind a load balancer: connections start with a PROXY v1/v2 header (before TLS) naming the client (ferroturn; repeatable)").list(),
    value("proxy-protocol-trusted", "RANGE[,RANGE]", Opt::ProxyProtocolTrusted, G::Listeners, "Load balancers (IP, IP-IP or CIDR) allowed to connect to a proxy-protocol-port; other sources are closed (ferroturn; repeatable)").list(),
    value("proxy-protocol-timeout", "SECONDS", Opt::ProxyProtocolTimeout, G::Listeners, "Time the PROXY header may take to arrive before the connection is closed (ferroturn)").default("5"),
    // Relay
    value("relay-ip", "IP", Opt::RelayIp, G::Relay, "Address relay sockets are bound to (repeatable; default: the listening addresses); an IPv4 and an IPv6 one allow dual allocations").short('E').list(),
    value("external-ip", "PUBLIC[/PRIVATE]", Opt::ExternalIp, G::Relay, "Public address advertised for relays behind NAT; PRIVATE is the local address it maps to (repeatable)").short('X').list(),
    value("min-port", "PORT", Opt::MinPort, G::Relay, "Lowest relay port").default("49152"),
    value("max-port", "PORT", Opt::MaxPort, G::Relay, "Highest relay port").default("65535"),
    value("relay-threads", "N", Opt::RelayThreads, G::Relay, "Number of relay shards (at most 256); 0 = one per CPU core").short('m').default("0"),
    flag("no-udp-relay", Opt::NoUdpRelay, G::Relay, "Refuse UDP relay allocations").live(),
    flag("no-tcp-relay", Opt::NoTcpRelay, G::Relay, "Refuse TCP relay allocations (RFC 6062)").live(),
    value("sock-buf-size", "BYTES", Opt::SockBufSize, G::Relay, "Socket send/receive buffer size (ferroturn extension; default: 4 MiB asked for listening sockets, the kernel's for relay sockets)"),
    // Authentication
    value("realm", "REALM", Opt::Realm, G::Authentication, "Default realm for long-term credentials").short('r').default("ferroturn.local").live(),
    value("server-name", "NAME", Opt::ServerName, G::Authentication, "Server name (used as the realm's host part by some clients)").live(),
    flag("use-auth-secret", Opt::UseAuthSecret, G::Authentication, "Use TURN REST API time-limited credentials (HMAC of a shared secret)").live(),
    value("static-auth-secret", "SECRET", Opt::StaticAuthSecret, G::Authentication, "Shared secret for TURN REST API credentials (repeatable, for rotation)").list().live(),
    value("rest-api-hmac", "sha1|sha256", Opt::RestApiHmac, G::Authentication, "HMAC that makes TURN REST passwords from static-auth-secret; Prosody mints sha1").default("sha1").live(),
    value("rest-api-separator", "CHAR", Opt::RestApiSeparator, G::Authentication, "Separator between expiry timestamp and user name in REST user names").short('C').default(":").live(),
    flag("lt-cred-mech", Opt::LtCredMech, G::Authentication, "Use the long-term credential mechanism with the users given by --user").short('a').live(),
    value("user", "NAME:PASSWORD", Opt::User, G::Authentication, "Long-term user; the password may be 0x followed by 32 hex digits (MD5 key) (repeatable)").short('u').list().live(),
    flag("no-auth", Opt::NoAuth, G::Authentication, "Allow unauthenticated use (an open relay; ferroturn refuses to start without auth unless this is set)").short('z').live(),
    value("stale-nonce", "SECONDS", Opt::StaleNonce, G::Authentication, "Nonce lifetime; a nonce older than this is answered with 438 Stale Nonce").optional().default("600").live(),
    flag("strict-expiry", Opt::StrictExpiry, G::Authentication, "Check REST credential expiry on every Refresh, not only on Allocate (ferroturn extension)").live(),
    flag("fingerprint", Opt::Fingerprint, G::Authentication, "Add FINGERPRINT to every response").short('f').live(),
    flag("no-software-attribute", Opt::NoSoftwareAttribute, G::Authentication, "Do not send the SOFTWARE attribute").live(),
    flag("include-reason-string", Opt::IncludeReasonString, G::Authentication, "Put the reason phrase into error responses (default: the code alone, which keeps answers to unauthenticated sources small)").live(),
    flag("sha256-integrity", Opt::Sha256Integrity, G::Authentication, "Offer SHA-256 integrity (RFC 8489 9.2) in every 401/438, 28 bytes more each; off by default: browsers use SHA-1").live(),
    // Peer policy
    value("allowed-peer-ip", "RANGE", Opt::AllowedPeerIp, G::PeerPolicy, "Allow peers in IP, IP-IP or CIDR even inside a denied range (repeatable)").list().live(),
    value("denied-peer-ip", "RANGE", Opt::DeniedPeerIp, G::PeerPolicy, "Deny peers in IP, IP-IP or CIDR, in addition to the built-in special-purpose ranges (repeatable)").list().live(),
    flag("allow-loopback-peers", Opt::AllowLoopbackPeers, G::PeerPolicy, "Allow peers on 127.0.0.0/8 and ::1 (for tests; unsafe in production)").live(),
    flag("no-loopback-peers", Opt::AlreadyDefault, G::PeerPolicy, "Accepted for coturn compatibility; loopback peers are denied unless allow-loopback-peers"),
    flag("no-multicast-peers", Opt::NoMulticastPeers, G::PeerPolicy, "Accepted for coturn compatibility; multicast peers are always denied").live(),
    // Limits
    value("user-quota", "N", Opt::UserQuota, G::Limits, "Maximum simultaneous allocations per user; 0 = unlimited").short('q').default("0").live(),
    value("total-quota", "N", Opt::TotalQuota, G::Limits, "Maximum simultaneous allocations in total; 0 = unlimited").short('Q').default("0").live(),
    value("poll-interval-ms", "MS", Opt::PollIntervalMs, G::Relay, "Drain sockets on a timer of this many ms instead of on every wake-up: less CPU per packet for up to this much added latency (ferroturn); 0 = off").default("0"),
    value("drain-timeout", "SECONDS", Opt::DrainTimeout, G::Limits, "On SIGTERM, wait this long for allocations to end before exiting (ferroturn)").default("30").live(),
    value("admin-address", "IP", Opt::AdminAddress, G::Metrics, "Address of the admin API (ferroturn; off unless admin-token is set)").default("127.0.0.1"),
    value("admin-port", "PORT", Opt::AdminPort, G::Metrics, "Port of the admin API (ferroturn)").default("9642"),
    value("admin-token", "TOKEN", Opt::AdminToken, G::Metrics, "Bearer token of the admin API; setting it turns the API on (ferroturn)"),
    value("rest-api-token", "TOKEN", Opt::RestApiToken, G::Authentication, "Bearer token of the TURN REST credential endpoint; setting it turns the endpoint on (ferroturn)"),
    value("rest-api-address", "IP", Opt::RestApiAddress, G::Authentication, "Address of the credential endpoint (ferroturn)").default("127.0.0.1"),
    value("rest-api-port", "PORT", Opt::RestApiPort, G::Authentication, "Port of the credential endpoint (ferroturn)").default("9643"),
    value("rest-api-host", "HOST", Opt::RestApiHost, G::Authentication, "Host name or IP put in the URIs the credential endpoint hands out (ferroturn; default: external-ip, else realm)").live(),
    flag("log-json", Opt::LogJson, G::Logging, "Write logs as JSON lines (ferroturn)"),
    value("max-tcp-connections", "N", Opt::MaxTcpConnections, G::Limits, "Maximum open TCP/TLS client connections, RFC 6062 peer and data connections included (ferroturn); 0 = unlimited").default("20000"),
    value("max-tcp-connections-per-ip", "N", Opt::MaxTcpConnectionsPerIp, G::Limits, "Maximum TCP/TLS connections from one address, RFC 6062 peers included (ferroturn); 0 = unlimited").default("256"),
    value("max-bps", "BYTES/S", Opt::MaxBps, G::Limits, "Bandwidth limit per allocation in bytes per second; 0 = unlimited").short('s').default("0").live(),
    value("bps-capacity", "BYTES/S", Opt::BpsCapacity, G::Limits, "Total bandwidth of the server in bytes per second; 0 = unlimited").short('B').default("0").live(),
    value("max-allocate-lifetime", "SECONDS", Opt::MaxAllocateLifetime, G::Limits, "Longest allocation lifetime a client may request").default("3600").live(),
    value("channel-lifetime", "SECONDS", Opt::ChannelLifetime, G::Limits, "Channel binding lifetime").default("600").live(),
    value("permission-lifetime", "SECONDS", Opt::PermissionLifetime, G::Limits, "Permission lifetime").default("300").live(),
    flag("unauthorized-ratelimit", Opt::UnauthorizedRatelimit, G::Limits, "Limit 401/438 answers per source address (per /64 for IPv6) and relay thread to unauthorized-ratelimit-rps; excess requests are dropped and counted").live(),
    flag("rfc5766-channel-numbers", Opt::Rfc5766ChannelNumbers, G::Relay, "Also accept channels 0x5000-0x7FFF (RFC 5766) for old clients; default: 0x4000-0x4FFF only (RFC 8656)").live(),
    value("unauthorized-ratelimit-rps", "N", Opt::UnauthorizedRatelimitRps, G::Limits, "401/438 answers per second and source address (burst: the same number) when unauthorized-ratelimit is on").default("20").live(),
    // TLS
    value("cert", "FILE", Opt::Cert, G::Tls, "PEM certificate chain for TLS"),
    value("pkey", "FILE", Opt::Pkey, G::Tls, "PEM private key for TLS"),
    value("cipher-list", "LIST", Opt::CipherList, G::Tls, "Allowed TLS cipher suites"),
    value("CA-file", "FILE", Opt::CaFile, G::Tls, "CA bundle for verifying client certificates").aliases(&["ca-file"]),
    value("dh-file", "FILE", Opt::DhFile, G::Tls, "Diffie-Hellman parameters file"),
    flag("no-tlsv1", Opt::NoTlsv1, G::Tls, "Disable TLS 1.0"),
    flag("no-tlsv1_1", Opt::NoTlsv1_1, G::Tls, "Disable TLS 1.1"),
    flag("no-tlsv1_2", Opt::NoTlsv1_2, G::Tls, "Disable TLS 1.2"),
    // Logging
    value("log-file", "stdout|syslog|FILE", Opt::LogFile, G::Logging, "Where to log").short('l').default("stdout"),
    flag("verbose", Opt::Verbose, G::Logging, "Verbose logging").short('v').live(),
    flag("Verbose", Opt::VeryVerbose, G::Logging, "Very verbose logging (environment: FERROTURN_VERY_VERBOSE)").short('V').live(),
    flag("simple-log", Opt::SimpleLog, G::Logging, "Log to one file without a date suffix"),
    value("pidfile", "FILE", Opt::Pidfile, G::Logging, "Write the process id to this file"),
    // Metrics
    flag("prometheus", Opt::Prometheus, G::Metrics, "Serve Prometheus metrics at /metrics"),
    value("prometheus-port", "PORT", Opt::PrometheusPort, G::Metrics, "Port of the metrics endpoint").default("9641"),
    value("prometheus-address", "IP", Opt::PrometheusAddress, G::Metrics, "Address of the metrics endpoint (default: all interfaces)"),
    // Compatibility: implemented
    value("alternate-server", "IP[:PORT]", Opt::AlternateServer, G::Compatibility, "Redirect Allocate requests to this server with 300 Try Alternate (repeatable)").list().live(),
    flag("no-cli", Opt::AlreadyDefault, G::Compatibility, "Accepted for coturn compatibility; ferroturn has no telnet CLI"),
    // Compatibility: coturn 4.7-4.17 options with a meaning in ferroturn.
    value("udp-alternate-server", "IP[:PORT]", Opt::UdpAlternateServer, G::Compatibility, "While draining, redirect UDP clients' Allocate here instead of to alternate-server (repeatable)").list().live(),
    value("tcp-alternate-server", "IP[:PORT]", Opt::TcpAlternateServer, G::Compatibility, "While draining, redirect TCP clients' Allocate here instead of to alternate-server (repeatable)").list().live(),
    value("tls-alternate-server", "IP[:PORT]", Opt::TlsAlternateServer, G::Compatibility, "While draining, redirect TLS clients' Allocate here instead of to alternate-server (repeatable)").list().live(),
    value("drain-min-allocations", "N", Opt::DrainMinAllocations, G::Limits, "While draining (SIGUSR1 or SIGTERM), stop once N or fewer allocations are left").default("0").live(),
    value("cpus", "N", Opt::Cpus, G::Relay, "CPU count to assume instead of the detected one: the number of relay shards when relay-threads is not set (for containers)"),
    value("log-min-level", "debug|info|warning|error", Opt::LogMinLevel, G::Logging, "Lowest level logged; overrides verbose/Verbose (RUST_LOG overrides both)").live(),
    value("prometheus-path", "PATH", Opt::PrometheusPath, G::Metrics, "HTTP path of the metrics").default("/metrics"),
    value("poll-coalesce-us", "US", Opt::PollCoalesceUs, G::Relay, "After a turn with input, wait this long before the next poll: fewer wake-ups for at most this much latency, only under load (ferroturn); 0 = off").default("0"),
    value("kernel-fast-path", "off|auto|on", Opt::KernelFastPath, G::Relay, "UDP channel data forwarded by an eBPF program (needs CAP_BPF+CAP_NET_ADMIN); auto: if it loads, else say why; on: required (ferroturn)").default("off"),
    flag("stateless-nonce", Opt::AlreadyDefault, G::Compatibility, "Accepted: nonces are always stateless (HMAC of time and 5-tuple); cannot be switched off"),
    flag("drop-invalid-packets", Opt::AlreadyDefault, G::Compatibility, "Accepted: invalid packets are always dropped early and counted; cannot be switched off"),
    flag("udp-recvmmsg", Opt::AlreadyDefault, G::Compatibility, "Accepted: UDP is always received in recvmmsg batches on Linux; cannot be switched off"),
    // Removed by coturn 4.17 but common in 4.6-era files.
    flag("prod", Opt::NoSoftwareAttribute, G::Compatibility, "Removed in coturn 4.17; as in 4.6, the same as no-software-attribute").live(),
    flag("no-sslv2", Opt::AlreadyDefault, G::Compatibility, "Removed in coturn 4.17; accepted: SSL is never offered (TLS 1.2 and 1.3 only)"),
    flag("no-sslv3", Opt::AlreadyDefault, G::Compatibility, "Removed in coturn 4.17; accepted: SSL is never offered (TLS 1.2 and 1.3 only)"),
    value("secret-ts-exp-time", "SECONDS", Opt::AlreadyDefault, G::Compatibility, "Deprecated in coturn 4.6, removed in 4.17; accepted and ignored: REST usernames carry their own expiry").optional(),
    // Compatibility: recognised coturn options that ferroturn ignores with a warning.
    unsupported("listening-device", R, "Bind listeners to a network device").short('d'),
    unsupported("relay-device", R, "Bind relay sockets to a network device").short('i'),
    unsupported("tcp-proxy-port", R, "Extra port for connections behind a proxy (ferroturn: set proxy-protocol-port and proxy-protocol-trusted on a listening port instead)"),
    unsupported("aux-server", R, "Auxiliary STUN/TURN server endpoint"),
    unsupported("udp-self-balance", F, "Balance UDP load across aux servers"),
    unsupported("secure-stun", F, "Require authentication for STUN Binding"),
    unsupported("mobility", F, "Mobility with ICE (MICE)"),
    unsupported("keep-address-family", F, "Allocate in the client's address family (deprecated)").short('K'),
    unsupported("allocation-default-address-family", R, "Default relay address family").short('A'),
    unsupported("oauth", F, "Third-party (OAuth) authorization"),
    unsupported("server-relay", F, "Relay to the server's own endpoints"),
    unsupported("max-allocate-timeout", R, "Allocation setup timeout"),
    unsupported("check-origin-consistency", F, "Check ORIGIN attribute consistency"),
    unsupported("no-auth-pings", F, "Disable database health pings"),
    unsupported("no-dynamic-ip-list", F, "Disable dynamic allowed/denied peer lists from the database"),
    unsupported("no-dynamic-realms", F, "Disable dynamic realms from the database"),
    unsupported("userdb", R, "SQLite user database").short('b').aliases(&["db"]),
    unsupported("psql-userdb", R, "PostgreSQL user database").short('e').aliases(&["sql-userdb"]),
    unsupported("mysql-userdb", R, "MySQL user database").short('M'),
    unsupported("mongo-userdb", R, "MongoDB user database").short('J'),
    unsupported("redis-userdb", R, "Redis user database").short('N'),
    unsupported("redis-statsdb", R, "Redis statistics database").short('O'),
    unsupported("secret-key-file", R, "Key for encrypted database passwords"),
    unsupported("prometheus-username-labels", F, "User name labels on metrics"),
    unsupported("cli-ip", R, "Telnet CLI address"),
    unsupported("cli-port", R, "Telnet CLI port"),
    unsupported("cli-password", R, "Telnet CLI password"),
    unsupported("cli-max-output-sessions", R, "Telnet CLI session listing limit"),
    unsupported("web-admin", F, "Web admin interface"),
    unsupported("web-admin-ip", R, "Web admin address"),
    unsupported("web-admin-port", R, "Web admin port"),
    unsupported("web-admin-listen-on-workers", F, "Web admin on the TURN ports"),
    unsupported("acme-redirect", R, "Redirect ACME HTTP challenges"),
    unsupported("raw-public-keys", F, "TLS raw public keys"),
    unsupported("pkey-pwd", R, "Password of an encrypted private key"),
    unsupported("ec-curve-name", R, "ECDH curve"),
    unsupported("dh566", F, "566-bit DH parameters"),
    unsupported("dh1066", F, "1066-bit DH parameters"),
    flag("software-attribute", Opt::AlreadyDefault, G::Compatibility, "Accepted: SOFTWARE is sent unless no-software-attribute"),
    flag("no-rfc5780", Opt::AlreadyDefault, G::Compatibility, "Accepted: ferroturn never offers RFC 5780 NAT behaviour discovery"),
    flag("no-stun-backward-compatibility", Opt::AlreadyDefault, G::Compatibility, "Accepted: RFC 3489 Binding requests are never answered"),
    flag("response-origin-only-with-rfc5780", Opt::AlreadyDefault, G::Compatibility, "Accepted: RESPONSE-ORIGIN is never sent"),
    unsupported("respond-http-unsupported", F, "Answer HTTP on TURN ports with 400"),
    unsupported("log-binding", F, "Log STUN Binding requests"),
    unsupported("proc-user", R, "Drop privileges to this user"),
    unsupported("proc-group", R, "Drop privileges to this group"),
    unsupported("daemon", F, "Run as a daemon").short('o'),
    unsupported("no-stdout-log", F, "Do not log to stdout"),
    flag("syslog", Opt::Syslog, G::Logging, "Log to the system log (same as log-file=syslog)"),
    unsupported("syslog-facility", R, "Syslog facility"),
    unsupported("new-log-timestamp", F, "ISO 8601 log timestamps"),
    unsupported("new-log-timestamp-format", R, "Log timestamp format"),
    unsupported("ne", R, "Network engine version"),
    // General, ferroturn extensions
    flag("strict", Opt::Strict, G::General, "With --check-config: warnings count as errors (exit 1)").cli_only(),
    flag("stay-up-after-drain", Opt::StayUpAfterDrain, G::Limits, "When a SIGUSR1/admin drain has no allocations left, stay up and unready instead of exiting 0; SIGTERM still stops it (ferroturn)").live(),
    flag("print-config", Opt::PrintConfig, G::General, "Print the effective configuration with the source of every value (default, file:line, environment variable, command line) and exit").cli_only(),
    // coturn 4.7-4.17 options ferroturn does not implement.
    unsupported("stateless-nonce-secret", R, "Shared nonce key across servers (ferroturn's nonce key is per process)"),
    unsupported("drop-invalid-packets-log", F, "Log invalid packets (ferroturn counts them in metrics, never logs per packet)"),
    unsupported("udp-gso", F, "UDP generic segmentation offload (ferroturn batches with sendmmsg)"),
    unsupported("udp-recvmmsg-log", F, "Log recvmmsg batch statistics"),
    unsupported("udp-sendmmsg-log", F, "Log sendmmsg batch statistics"),
    unsupported("multiplex-peer", F, "Non-standard shared relay socket per thread"),
    unsupported("multiplex-peer-port", R, "Base port of multiplex-peer sockets"),
    unsupported("multiplex-peer-max-peers", R, "Peer limit of multiplex-peer allocations"),
    unsupported("prometheus-tls", F, "Metrics over HTTPS (ferroturn serves HTTP; put a proxy in front)"),
    unsupported("prometheus-cert", R, "Certificate of the HTTPS metrics endpoint"),
    unsupported("prometheus-key", R, "Key of the HTTPS metrics endpoint"),
    unsupported("rfc3489-compatibility", F, "Answer RFC 3489 Binding requests without magic cookie (never answered)"),
    unsupported("rfc5780", F, "RFC 5780 NAT behaviour discovery (never offered)"),
    unsupported("stun-backward-compatibility", F, "MAPPED-ADDRESS in Binding responses (only XOR-MAPPED-ADDRESS is sent)"),
    unsupported("tlsv1", F, "Allow TLS 1.0 (ferroturn offers TLS 1.2 and 1.3 only)"),
    unsupported("tlsv1_1", F, "Allow TLS 1.1 (ferroturn offers TLS 1.2 and 1.3 only)"),
    unsupported("cli", F, "Telnet CLI (ferroturn has none; see the admin API)"),
];

/// Finds an option by its long name or an alias (case-sensitive, like coturn).
pub fn lookup(name: &str) -> Option<&'static OptionSpec> {
    OPTIONS.iter().find(|o| o.matches(name))
}

/// Finds an option by its single-letter alias.
pub fn lookup_short(c: char) -> Option<&'static OptionSpec> {
    OPTIONS.iter().find(|o| o.short == Some(c))
}

/// Finds an option by its environment variable name.
pub fn lookup_env(var: &str) -> Option<&'static OptionSpec> {
    OPTIONS.iter().find(|o| o.env_var() == var)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_aliases_and_shorts_are_unique() {
        let mut names = HashSet::new();
        let mut shorts = HashSet::new();
        let mut envs = HashSet::new();
        for o in OPTIONS {
            assert!(names.insert(o.name), "duplicate name {}", o.name);
            for a in o.aliases {
                assert!(names.insert(*a), "duplicate alias {a}");
            }
            if let Some(c) = o.short {
                assert!(shorts.insert(c), "duplicate short -{c}");
            }
            assert!(
                envs.insert(o.env_var()),
                "duplicate env var {}",
                o.env_var()
            );
        }
    }

    #[test]
    fn every_option_has_help_and_values_have_placeholders() {
        for o in OPTIONS {
            assert!(!o.help.is_empty(), "{} has no help", o.name);
            assert_eq!(
                o.arity == Arity::Flag,
                o.value_name.is_empty(),
                "{}",
                o.name
            );
            assert!(!o.list || o.arity == Arity::Required, "{}", o.name);
        }
    }

    #[test]
    fn lookups() {
        assert_eq!(
            lookup("listening-port").map(|o| o.opt),
            Some(Opt::ListeningPort)
        );
        assert_eq!(lookup("db").map(|o| o.name), Some("userdb"));
        assert_eq!(lookup("ca-file").map(|o| o.opt), Some(Opt::CaFile));
        assert!(lookup("Listening-port").is_none());
        assert_eq!(lookup_short('p').map(|o| o.opt), Some(Opt::ListeningPort));
        assert_eq!(lookup_short('V').map(|o| o.opt), Some(Opt::VeryVerbose));
        for (var, opt) in [
            ("FERROTURN_STATIC_AUTH_SECRET", Opt::StaticAuthSecret),
            ("FERROTURN_VERBOSE", Opt::Verbose),
            ("FERROTURN_VERY_VERBOSE", Opt::VeryVerbose),
            ("FERROTURN_CA_FILE", Opt::CaFile),
            ("FERROTURN_NO_TLSV1_1", Opt::NoTlsv1_1),
        ] {
            assert_eq!(lookup_env(var).map(|o| o.opt), Some(opt), "{var}");
        }
    }
}
