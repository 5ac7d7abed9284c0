//! Turns raw entries (file, then environment, then command line) into a validated [`Config`]:
//! the dispatch of each option to its field. Values are parsed by [`super::values`], and the
//! rules between options are checked by [`super::policy`] once every entry is applied.
//!
//! Every problem is collected rather than returned at the first one, so an operator sees all of
//! them at once; each message names its source and option.

use std::collections::HashMap;
use std::path::PathBuf;

use super::env::parse_bool;
use super::options::{self, Arity, Opt, OptionSpec};
use super::values::{
    alternate_server, external_ip, ip, list_items, number, port, positive, range, token, user,
};
use super::{Config, ConfigError, LogTarget, RawEntry, Setting, Source};

/// RFC 8489 §14.9: REALM must be fewer than 128 characters.
const MAX_REALM_CHARS: usize = 127;
/// The longest `poll-coalesce-us` window: beyond a few ms the wait is felt in media.
const MAX_POLL_COALESCE_US: u64 = 5_000;

/// Applies `entries` in order on top of the defaults and validates the result. `errors` and
/// `warnings` already gathered (by the command-line or environment readers) are kept.
pub(super) fn build(
    entries: &[RawEntry],
    errors: Vec<String>,
    warnings: Vec<String>,
) -> Result<Config, ConfigError> {
    let mut b = Builder {
        cfg: Config::default(),
        errors,
        warnings,
        notices: Vec::new(),
        last: HashMap::new(),
        bare_external: [None, None],
        settings: Vec::new(),
    };
    for e in entries {
        b.apply(e);
    }
    b.cross_checks();
    if b.errors.is_empty() {
        b.cfg.warnings = b.warnings;
        b.cfg.notices = b.notices;
        b.cfg.settings = b.settings;
        Ok(b.cfg)
    } else {
        Err(ConfigError {
            messages: b.errors,
            warnings: b.warnings,
        })
    }
}

/// The configuration being built, with what the load has to say about it so far.
pub(super) struct Builder {
    pub(super) cfg: Config,
    pub(super) errors: Vec<String>,
    pub(super) warnings: Vec<String>,
    pub(super) notices: Vec<String>,
    /// Where each option was last set, for cross-field messages.
    pub(super) last: HashMap<Opt, Source>,
    /// Source of the `external-ip` without a private part, per family (IPv4, IPv6).
    bare_external: [Option<Source>; 2],
    /// Every entry that was applied, for `--print-config`.
    settings: Vec<Setting>,
}

/// One entry being applied: its option and source, for messages.
struct Ctx<'a> {
    spec: &'static OptionSpec,
    source: &'a Source,
}

impl Builder {
    fn apply(&mut self, e: &RawEntry) {
        let Some(spec) = options::lookup(&e.key) else {
            self.warnings.push(format!(
                "{}: unknown option \"{}\" ignored",
                e.source, e.key
            ));
            return;
        };
        let ctx = Ctx {
            spec,
            source: &e.source,
        };
        if spec.cli_only {
            self.warnings.push(format!(
                "{}: option \"{}\" is only valid on the command line, ignored",
                e.source, spec.name
            ));
            return;
        }
        if !spec.is_supported() {
            self.warnings.push(format!(
                "{}: option \"{}\" is not supported by ferroturn and is ignored",
                e.source, spec.name
            ));
            self.settings.push(Setting {
                name: spec.name,
                value: e.value.clone(),
                source: e.source.clone(),
                ignored: true,
            });
            return;
        }
        let errors_before = self.errors.len();
        let value = e.value.as_deref().filter(|v| !v.is_empty());
        match spec.arity {
            Arity::Flag => {
                let on = match value {
                    None => true,
                    Some(v) => match parse_bool(v) {
                        Some(b) => b,
                        None => {
                            self.error(
                                &ctx,
                                format!(
                                    "{v:?} is not a boolean (use 1/true/yes/on or 0/false/no/off)"
                                ),
                            );
                            return;
                        }
                    },
                };
                self.flag(&ctx, on);
            }
            Arity::Required => match value {
                Some(v) => self.value(&ctx, v),
                None => {
                    self.error(&ctx, "missing value".to_string());
                    return;
                }
            },
            Arity::Optional => self.optional(&ctx, value),
        }
        if self.errors.len() == errors_before {
            self.settings.push(Setting {
                name: spec.name,
                value: e.value.clone(),
                source: e.source.clone(),
                ignored: false,
            });
        }
        self.last.insert(spec.opt, e.source.clone());
    }

    fn error(&mut self, ctx: &Ctx<'_>, msg: String) {
        self.errors
            .push(format!("{}: {}: {msg}", ctx.source, ctx.spec.name));
    }

    fn flag(&mut self, ctx: &Ctx<'_>, on: bool) {
        let c = &mut self.cfg;
        let field = match ctx.spec.opt {
            Opt::NoUdp => &mut c.listen.no_udp,
            Opt::NoTcp => &mut c.listen.no_tcp,
            Opt::NoTls => &mut c.listen.no_tls,
            Opt::NoDtls => &mut c.listen.no_dtls,
            Opt::Dtls => &mut c.listen.dtls,
            Opt::StunOnly => &mut c.protocol.stun_only,
            Opt::NoStun => &mut c.protocol.no_stun,
            Opt::NoUdpRelay => &mut c.relay.no_udp,
            Opt::NoTcpRelay => &mut c.relay.no_tcp,
            Opt::UseAuthSecret => &mut c.auth.use_auth_secret,
            Opt::LtCredMech => &mut c.auth.lt_cred_mech,
            Opt::NoAuth => &mut c.auth.no_auth,
            Opt::StrictExpiry => &mut c.auth.strict_expiry,
            Opt::Fingerprint => &mut c.protocol.fingerprint,
            Opt::NoSoftwareAttribute => &mut c.protocol.no_software_attribute,
            Opt::IncludeReasonString => &mut c.protocol.include_reason_string,
            Opt::Sha256Integrity => &mut c.auth.sha256_integrity,
            Opt::UnauthorizedRatelimit => &mut c.limits.unauthorized_ratelimit,
            Opt::Rfc5766ChannelNumbers => &mut c.protocol.rfc5766_channel_numbers,
            Opt::AllowLoopbackPeers => &mut c.peers.allow_loopback,
            Opt::NoTlsv1 => &mut c.tls.no_tlsv1,
            Opt::NoTlsv1_1 => &mut c.tls.no_tlsv1_1,
            Opt::NoTlsv1_2 => &mut c.tls.no_tlsv1_2,
            Opt::Verbose => &mut c.log.verbose,
            Opt::VeryVerbose => &mut c.log.very_verbose,
            Opt::SimpleLog => &mut c.log.simple,
            Opt::LogJson => &mut c.log.json,
            Opt::Prometheus => &mut c.metrics.enabled,
            Opt::StayUpAfterDrain => &mut c.drain.stay_up,
            Opt::Syslog => {
                if on {
                    c.log.file = LogTarget::Syslog;
                } else if c.log.file == LogTarget::Syslog {
                    c.log.file = LogTarget::Stdout;
                }
                return;
            }
            Opt::NoMulticastPeers => {
                if on {
                    self.notices.push(format!(
                        "{}: no-multicast-peers: multicast peers are always denied",
                        ctx.source
                    ));
                }
                return;
            }
            // Asking for what ferroturn always does is satisfied; asking to switch it off is not.
            Opt::AlreadyDefault => {
                if !on {
                    self.warnings.push(format!(
                        "{}: {} cannot be switched off in ferroturn; ignored",
                        ctx.source, ctx.spec.name
                    ));
                }
                return;
            }
            other => {
                self.error(ctx, format!("internal: {other:?} is not a flag"));
                return;
            }
        };
        *field = on;
    }

    fn optional(&mut self, ctx: &Ctx<'_>, value: Option<&str>) {
        let result = match ctx.spec.opt {
            Opt::StaleNonce => match value {
                None => Ok(Config::default().auth.stale_nonce),
                Some(v) => positive::<u32>(v),
            }
            .map(|s| self.cfg.auth.stale_nonce = s),
            Opt::AlreadyDefault => Ok(()),
            other => Err(format!("internal: {other:?} takes no optional value")),
        };
        if let Err(msg) = result {
            self.error(ctx, msg);
        }
    }

    fn value(&mut self, ctx: &Ctx<'_>, v: &str) {
        if let Err(msg) = self.try_value(ctx, v) {
            self.error(ctx, msg);
        }
    }

    fn try_value(&mut self, ctx: &Ctx<'_>, v: &str) -> Result<(), String> {
        let c = &mut self.cfg;
        match ctx.spec.opt {
            // Listeners
            Opt::ListeningPort => c.listen.port = port(v)?,
            Opt::TlsListeningPort => c.listen.tls_port = port(v)?,
            Opt::AltListeningPort => c.listen.alt_port = Some(port(v)?),
            Opt::AltTlsListeningPort => c.listen.alt_tls_port = Some(port(v)?),
            Opt::ListeningIp => c.listen.ips.push(ip(v)?),
            Opt::ProxyProtocolPort => {
                for p in list_items(v) {
                    let p = port(p)?;
                    if !c.listen.proxy_protocol.ports.contains(&p) {
                        c.listen.proxy_protocol.ports.push(p);
                    }
                }
            }
            Opt::ProxyProtocolTrusted => {
                for r in list_items(v) {
                    c.listen.proxy_protocol.trusted.push(range(r)?);
                }
            }
            Opt::ProxyProtocolTimeout => {
                let secs: u64 = positive(v)?;
                if secs > 10 {
                    return Err(format!(
                        "{secs} s is too long: a proxy sends the header at once (at most 10, the TLS handshake's own limit)"
                    ));
                }
                c.listen.proxy_protocol.timeout = secs;
            }
            // Relay
            Opt::RelayIp => c.relay.ips.push(ip(v)?),
            Opt::ExternalIp => {
                let ext = external_ip(v)?;
                if ext.private.is_none() {
                    let slot = &mut self.bare_external[usize::from(ext.public.is_ipv6())];
                    if let Some(first) = slot {
                        return Err(format!(
                            "{v:?}: only one {} external-ip without a private address is allowed (the first is at {first}); use PUBLIC/PRIVATE to map several",
                            if ext.public.is_ipv4() { "IPv4" } else { "IPv6" }
                        ));
                    }
                    *slot = Some(ctx.source.clone());
                }
                c.relay.external_ips.push(ext);
            }
            Opt::MinPort => c.relay.min_port = port(v)?,
            Opt::MaxPort => c.relay.max_port = port(v)?,
            // 0 means "pick for me", as in coturn.
            Opt::RelayThreads => c.relay.threads = Some(number::<usize>(v)?).filter(|n| *n > 0),
            Opt::SockBufSize => {
                c.relay.sock_buf_size = Some(number::<usize>(v)?).filter(|n| *n > 0)
            }
            // Authentication
            Opt::Realm => {
                if v.chars().count() > MAX_REALM_CHARS {
                    return Err(format!("realm is longer than {MAX_REALM_CHARS} characters"));
                }
                c.auth.realm = v.to_string();
            }
            Opt::ServerName => c.auth.server_name = Some(v.to_string()),
            Opt::StaticAuthSecret => c.auth.static_auth_secrets.push(v.to_string()),
            Opt::RestApiSeparator => {
                let mut chars = v.chars();
                match (chars.next(), chars.next()) {
                    (Some(ch), None) => c.auth.rest_api_separator = ch,
                    _ => return Err(format!("{v:?} must be exactly one character")),
                }
            }
            Opt::User => c.auth.users.push(user(v)?),
            // Peer policy
            Opt::AllowedPeerIp => c.peers.allowed.push(range(v)?),
            Opt::DeniedPeerIp => c.peers.denied.push(range(v)?),
            // Limits
            Opt::UserQuota => c.limits.user_quota = number(v)?,
            Opt::TotalQuota => c.limits.total_quota = number(v)?,
            Opt::MaxTcpConnections => c.limits.max_tcp_connections = number(v)?,
            Opt::DrainTimeout => c.drain.timeout = number(v)?,
            Opt::UnauthorizedRatelimitRps => c.limits.unauthorized_ratelimit_rps = positive(v)?,
            Opt::PollIntervalMs => {
                let ms: u64 = number(v)?;
                if ms > 20 {
                    return Err(format!(
                        "{ms} ms would add too much latency to media (at most 20)"
                    ));
                }
                c.relay.poll_interval_ms = ms
            }
            Opt::PollCoalesceUs => {
                let us: u64 = number(v)?;
                if us > MAX_POLL_COALESCE_US {
                    return Err(format!(
                        "{us} µs would add too much latency to media (at most {MAX_POLL_COALESCE_US})"
                    ));
                }
                c.relay.poll_coalesce_us = us
            }
            Opt::RestApiToken => {
                c.credential_endpoint.token = Some(token(v, "credential endpoint")?)
            }
            Opt::RestApiAddress => c.credential_endpoint.address = ip(v)?,
            Opt::RestApiPort => c.credential_endpoint.port = port(v)?,
            Opt::RestApiHost => c.credential_endpoint.host = Some(v.trim().to_string()),
            Opt::AdminAddress => c.admin.address = ip(v)?,
            Opt::AdminPort => c.admin.port = port(v)?,
            Opt::AdminToken => c.admin.token = Some(token(v, "admin")?),
            Opt::MaxTcpConnectionsPerIp => c.limits.max_tcp_connections_per_ip = number(v)?,
            Opt::MaxBps => c.limits.max_bps = number(v)?,
            Opt::BpsCapacity => c.limits.bps_capacity = number(v)?,
            Opt::MaxAllocateLifetime => c.limits.max_allocate_lifetime = positive(v)?,
            Opt::ChannelLifetime => c.limits.channel_lifetime = positive(v)?,
            Opt::PermissionLifetime => c.limits.permission_lifetime = positive(v)?,
            // TLS
            Opt::Cert => c.tls.cert = Some(PathBuf::from(v)),
            Opt::Pkey => c.tls.pkey = Some(PathBuf::from(v)),
            Opt::CipherList => c.tls.cipher_list = Some(v.to_string()),
            Opt::CaFile => c.tls.ca_file = Some(PathBuf::from(v)),
            Opt::DhFile => c.tls.dh_file = Some(PathBuf::from(v)),
            // Logging
            Opt::LogFile => {
                c.log.file = match v {
                    "stdout" => LogTarget::Stdout,
                    "syslog" => LogTarget::Syslog,
                    path => LogTarget::File(PathBuf::from(path)),
                }
            }
            Opt::Pidfile => c.log.pidfile = Some(PathBuf::from(v)),
            // Metrics
            Opt::PrometheusPort => c.metrics.port = port(v)?,
            Opt::PrometheusAddress => c.metrics.address = Some(ip(v)?),
            // Compatibility
            Opt::AlternateServer => c.drain.alternate_servers.any.push(alternate_server(v)?),
            Opt::UdpAlternateServer => c.drain.alternate_servers.udp.push(alternate_server(v)?),
            Opt::TcpAlternateServer => c.drain.alternate_servers.tcp.push(alternate_server(v)?),
            Opt::TlsAlternateServer => c.drain.alternate_servers.tls.push(alternate_server(v)?),
            Opt::RestApiHmac => {
                use crate::proto::auth::rest::RestHmac;
                c.auth.rest_api_hmac = match v.trim().to_ascii_lowercase().as_str() {
                    "sha1" | "sha-1" => RestHmac::Sha1,
                    "sha256" | "sha-256" => RestHmac::Sha256,
                    _ => return Err(format!("{v:?} is not sha1 or sha256")),
                }
            }
            Opt::DrainMinAllocations => c.drain.min_allocations = number(v)?,
            Opt::Cpus => c.relay.cpus = Some(positive::<usize>(v)?),
            Opt::KernelFastPath => {
                c.relay.kernel_fast_path = match v.trim() {
                    "off" => super::KernelFastPath::Off,
                    "auto" => super::KernelFastPath::Auto,
                    "on" => super::KernelFastPath::On,
                    other => return Err(format!("{other:?} is not off, auto or on")),
                }
            }
            Opt::LogMinLevel => {
                c.log.min_level = Some(match v.trim().to_ascii_lowercase().as_str() {
                    "debug" => "debug",
                    "info" => "info",
                    "warning" | "warn" => "warn",
                    "error" => "error",
                    _ => return Err(format!("{v:?} is not debug, info, warning or error")),
                })
            }
            Opt::PrometheusPath => {
                let path = v.trim();
                if !path.starts_with('/') || path.contains(char::is_whitespace) {
                    return Err(format!("{v:?} must be a path starting with /"));
                }
                c.metrics.path = path.to_string();
            }
            other => return Err(format!("internal: {other:?} takes no value")),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::from_conf_str;
    use crate::config::test_conf::{errors, ok, one_error};
    use crate::proto::auth::UserSecret;
    use std::net::IpAddr;

    #[test]
    fn defaults() {
        let c = ok("");
        assert_eq!((c.listen.port, c.listen.tls_port), (3478, 5349));
        assert_eq!((c.relay.min_port, c.relay.max_port), (49152, 65535));
        assert_eq!(c.auth.realm, "ferroturn.local");
        assert_eq!(c.auth.rest_api_separator, ':');
        assert_eq!(c.auth.stale_nonce, 600);
        assert_eq!(
            (
                c.limits.max_allocate_lifetime,
                c.limits.channel_lifetime,
                c.limits.permission_lifetime
            ),
            (3600, 600, 300)
        );
        assert_eq!(c.metrics.port, 9641);
        assert_eq!(c.log.file, LogTarget::Stdout);
        assert_eq!(c.relay.threads, None);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn bad_port_names_line_and_option() {
        assert_eq!(
            one_error("min-port=70000"),
            "turnserver.conf:3: min-port: \"70000\" is not a port number"
        );
        for bad in [
            "listening-port=0",
            "tls-listening-port=x",
            "alt-listening-port=-1",
            "alt-tls-listening-port=65536",
            "max-port=1.5",
            "prometheus-port=",
        ] {
            let e = one_error(bad);
            assert!(e.starts_with("turnserver.conf:3: "), "{e}");
            assert!(e.contains(bad.split('=').next().unwrap_or_default()), "{e}");
        }
    }

    #[test]
    fn min_port_above_max_port() {
        let e = one_error("min-port=50000\nmax-port=40000");
        assert!(e.starts_with("turnserver.conf:4: "), "{e}");
        assert!(e.contains("greater than max-port"), "{e}");
        let c = ok("min-port=40000\nmax-port=40000");
        assert_eq!((c.relay.min_port, c.relay.max_port), (40000, 40000));
    }

    #[test]
    fn bad_ips_and_ranges() {
        assert!(one_error("listening-ip=1.2.3").contains("is not an IP address"));
        assert!(one_error("relay-ip=host.example").contains("relay-ip"));
        assert!(one_error("prometheus-address=::g").contains("prometheus-address"));
        let e = one_error("denied-peer-ip=10.0.0.9-10.0.0.1");
        assert!(e.contains("denied-peer-ip") && e.contains("greater"), "{e}");
        assert!(one_error("allowed-peer-ip=10.0.0.0/40").contains("prefix"));
        assert!(one_error("allowed-peer-ip=1.1.1.1-::1").contains("families"));
    }

    #[test]
    fn ranges_parse() {
        let c = ok(
            "denied-peer-ip=8.8.8.8\nallowed-peer-ip=10.0.0.0/8\nallowed-peer-ip=fe80::1-fe80::ff",
        );
        assert_eq!(c.peers.denied.len(), 1);
        assert_eq!(c.peers.allowed.len(), 2);
    }

    #[test]
    fn bad_numbers() {
        assert!(one_error("user-quota=abc").contains("is not a number"));
        assert!(one_error("total-quota=-1").contains("is not a number"));
        assert!(one_error("max-bps=99999999999999999999999").contains("too large"));
        assert!(one_error("relay-threads=two").contains("relay-threads"));
        assert!(one_error("sock-buf-size=1k").contains("sock-buf-size"));
        assert!(one_error("user-quota=4294967296").contains("too large"));
    }

    #[test]
    fn zero_lifetimes_and_stale_nonce_are_errors() {
        for bad in [
            "stale-nonce=0",
            "max-allocate-lifetime=0",
            "channel-lifetime=0",
            "permission-lifetime=0",
        ] {
            assert!(one_error(bad).contains("must be greater than 0"), "{bad}");
        }
    }

    #[test]
    fn stale_nonce_optional_value() {
        assert_eq!(ok("stale-nonce").auth.stale_nonce, 600);
        assert_eq!(ok("stale-nonce=120").auth.stale_nonce, 120);
    }

    #[test]
    fn relay_threads_zero_means_auto() {
        assert_eq!(ok("relay-threads=0").relay.threads, None);
        assert_eq!(ok("relay-threads=4").relay.threads, Some(4));
    }

    #[test]
    fn users() {
        let c = ok("lt-cred-mech\nuser=alice:pa:ss\nuser=bob:0x00112233445566778899AABBCCDDEEFF");
        assert_eq!(c.auth.users.len(), 2);
        assert_eq!(c.auth.users[0].name, "alice");
        assert_eq!(c.auth.users[0].key, UserSecret::Password("pa:ss".into()));
        assert_eq!(
            c.auth.users[1].key,
            UserSecret::Key([
                0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
                0xee, 0xff
            ])
        );
        // One key parser for the file and the core: the 0X spelling is a key too.
        let c = ok("lt-cred-mech\nuser=carol:0X00112233445566778899aabbccddeeff");
        assert_eq!(c.auth.users[0].key, UserSecret::Key(sample_key()));
        assert!(one_error("lt-cred-mech\nuser=dave:0X0011").contains("32 hex digits"));
    }

    fn sample_key() -> [u8; 16] {
        [
            0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
            0xee, 0xff,
        ]
    }

    #[test]
    fn bad_users_do_not_leak_secrets() {
        let e = one_error("user=alicesecret");
        assert!(e.contains("no \":\"") && !e.contains("alicesecret"), "{e}");
        let e = one_error("user=bob:0x1234");
        assert!(e.contains("32 hex digits") && !e.contains("1234"), "{e}");
        assert!(one_error("user=bob:0xzz112233445566778899aabbccddeeff").contains("hex"));
        assert!(one_error("user=:pw").contains("empty"));
        assert!(one_error("user=bob:").contains("empty password"));
        assert!(!format!("{:?}", ok("user=carol:hunter2").auth.users).contains("hunter2"));
    }

    #[test]
    fn external_ip_forms_and_family_rule() {
        let c = ok(
            "external-ip=203.0.113.5\nexternal-ip=2001:db8::5\nexternal-ip=198.51.100.1/10.0.0.1",
        );
        assert_eq!(c.relay.external_ips.len(), 3);
        assert_eq!(
            c.relay.external_ips[2].private,
            Some("10.0.0.1".parse().unwrap_or(IpAddr::from([0; 4])))
        );
        let e = one_error("external-ip=203.0.113.5\nexternal-ip=203.0.113.6");
        assert!(
            e.starts_with("turnserver.conf:4: ") && e.contains("turnserver.conf:3"),
            "{e}"
        );
        assert!(one_error("external-ip=203.0.113.5/::1").contains("different families"));
        assert!(one_error("external-ip=203.0.113.5/x").contains("not an IP"));
        assert!(one_error("external-ip=nope").contains("not an IP"));
    }

    #[test]
    fn separator_must_be_one_char() {
        assert_eq!(ok("rest-api-separator=-").auth.rest_api_separator, '-');
        assert!(one_error("rest-api-separator=::").contains("exactly one character"));
    }

    #[test]
    fn realm_length() {
        assert!(one_error(&format!("realm={}", "a".repeat(128))).contains("longer"));
        assert_eq!(ok("realm=meet.example.com").auth.realm, "meet.example.com");
    }

    #[test]
    fn flags_take_booleans() {
        assert!(ok("fingerprint").protocol.fingerprint);
        assert!(ok("fingerprint=yes").protocol.fingerprint);
        assert!(!ok("fingerprint\nfingerprint=off").protocol.fingerprint);
        assert!(one_error("fingerprint=maybe").contains("not a boolean"));
    }

    #[test]
    fn endpoint_tokens_need_16_characters_and_are_trimmed() {
        assert_eq!(
            one_error("admin-token=short"),
            "turnserver.conf:3: admin-token: the admin token must be at least 16 characters"
        );
        // Fifteen characters once the spaces around them are gone.
        assert!(one_error("rest-api-token=  fifteen-chars-x  ").ends_with(
            "rest-api-token: the credential endpoint token must be at least 16 characters"
        ));
        let c = ok("admin-token= 0123456789abcdef \nrest-api-token=fedcba9876543210");
        assert_eq!(c.admin.token.as_deref(), Some("0123456789abcdef"));
        assert_eq!(
            c.credential_endpoint.token.as_deref(),
            Some("fedcba9876543210")
        );
    }

    #[test]
    fn missing_value() {
        assert_eq!(
            one_error("realm"),
            "turnserver.conf:3: realm: missing value"
        );
    }

    #[test]
    fn open_relay_is_refused() {
        let e = from_conf_str("", "x").expect_err("open relay").messages;
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("refusing to start as an open relay"),
            "{e:?}"
        );
        assert!(from_conf_str("no-auth", "x").is_ok());
    }

    #[test]
    fn auth_combinations() {
        let e = from_conf_str("use-auth-secret", "x")
            .expect_err("no secret")
            .messages;
        assert_eq!(e.len(), 1);
        assert!(e[0].contains("no static-auth-secret"), "{e:?}");
        let e = from_conf_str("lt-cred-mech", "x")
            .expect_err("no users")
            .messages;
        assert!(e[0].contains("no user is configured"), "{e:?}");
        assert!(from_conf_str("no-auth\nlt-cred-mech\nuser=a:b", "x").is_err());
        // coturn compatibility: a secret implies use-auth-secret, users imply lt-cred-mech.
        let c = from_conf_str("static-auth-secret=s", "x").expect("secret only");
        assert!(c.auth.use_auth_secret && c.warnings.is_empty());
        let c = from_conf_str("user=a:b", "x").expect("user only");
        assert!(c.auth.lt_cred_mech);
        assert_eq!(c.warnings.len(), 1);
        let c = from_conf_str("lt-cred-mech\nuser=a:b", "x").expect("lt");
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn nothing_to_listen_on() {
        assert!(one_error("no-udp\nno-tcp\nno-tls").contains("nothing to listen on"));
        assert!(ok("no-udp\nno-tcp").listen.no_tcp);
        assert!(one_error("stun-only\nno-stun").contains("nothing to serve"));
        assert!(one_error("no-udp-relay\nno-tcp-relay").contains("no-tcp-relay"));
    }

    #[test]
    fn bps_capacity_needs_max_bps() {
        assert!(one_error("bps-capacity=1000").contains("max-bps"));
        assert_eq!(
            ok("bps-capacity=1000\nmax-bps=10").limits.bps_capacity,
            1000
        );
    }

    #[test]
    fn all_errors_are_reported_at_once() {
        let e = errors("min-port=x\nmax-port=y\nlistening-ip=z");
        assert_eq!(e.len(), 3, "{e:?}");
        let lines: Vec<_> = e
            .iter()
            .map(|m| m.split(": ").next().unwrap_or_default())
            .collect();
        assert_eq!(
            lines,
            [
                "turnserver.conf:3",
                "turnserver.conf:4",
                "turnserver.conf:5"
            ]
        );
    }

    #[test]
    fn warnings_for_unknown_unsupported_and_tls_halves() {
        let c = ok("frobnicate=1\nproc-user=turnserver\ncert=/c.pem\nmobility\nno-cli");
        assert_eq!(c.warnings.len(), 4, "{:?}", c.warnings);
        assert_eq!(
            c.warnings[0],
            "turnserver.conf:3: unknown option \"frobnicate\" ignored"
        );
        assert_eq!(
            c.warnings[1],
            "turnserver.conf:4: option \"proc-user\" is not supported by ferroturn and is ignored"
        );
        assert!(c
            .warnings
            .iter()
            .any(|w| w.contains("cert is set without pkey")));
        let c = ok("pkey=/k.pem");
        assert!(c.warnings[0].contains("pkey is set without cert"));
    }

    #[test]
    fn no_multicast_peers_is_a_notice_not_a_warning() {
        let c = ok("no-multicast-peers");
        assert!(c.warnings.is_empty());
        assert!(c.notices[0].contains("multicast peers are always denied"));
    }

    #[test]
    fn cli_only_option_in_file_warns() {
        let c = ok("check-config");
        assert!(c.warnings[0].contains("only valid on the command line"));
    }

    #[test]
    fn log_targets() {
        assert_eq!(ok("log-file=syslog").log.file, LogTarget::Syslog);
        assert_eq!(
            ok("log-file=/var/log/turn.log").log.file,
            LogTarget::File(PathBuf::from("/var/log/turn.log"))
        );
    }

    #[test]
    fn alternate_servers() {
        let c = ok(
            "alternate-server=203.0.113.7\nalternate-server=203.0.113.8:3479\nalternate-server=[2001:db8::1]:3478\nalternate-server=2001:db8::2",
        );
        let got: Vec<_> = c
            .drain
            .alternate_servers
            .any
            .iter()
            .map(|a| a.socket_addr(3478).to_string())
            .collect();
        assert_eq!(
            got,
            [
                "203.0.113.7:3478",
                "203.0.113.8:3479",
                "[2001:db8::1]:3478",
                "[2001:db8::2]:3478"
            ]
        );
        assert!(one_error("alternate-server=turn.example.com").contains("alternate-server"));
    }

    #[test]
    fn verbose_flags_are_distinct() {
        let c = ok("Verbose");
        assert!(c.log.very_verbose && !c.log.verbose);
    }

    #[test]
    fn ca_file_accepts_both_spellings() {
        assert_eq!(ok("CA-file=/a").tls.ca_file, Some(PathBuf::from("/a")));
        assert_eq!(ok("ca-file=/b").tls.ca_file, Some(PathBuf::from("/b")));
    }
}
