//! What `ferroturn jitsi init` was asked for: the one set of facts every generated file is
//! rendered from, so the relay side and the Prosody side cannot disagree.

use std::net::IpAddr;
use std::path::PathBuf;

use super::jitsi_helm::JitsiHelm;

/// TURN over TLS (`turns:`), when the operator has a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsPlan {
    /// `tls-listening-port`, also TURNS_PORT.
    pub port: u16,
    /// Certificate chain (PEM).
    pub cert: PathBuf,
    /// Private key (PEM).
    pub pkey: PathBuf,
}

/// Every parameter of a Jitsi + ferroturn pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Name (or address) clients are told to contact: TURN_HOST, STUN_HOST, TURNS_HOST.
    pub host: String,
    /// Public address when the relay sits behind 1:1 NAT (`external-ip`).
    pub external_ip: Option<IpAddr>,
    /// `listening-ip` lines; empty = every interface.
    pub listen_ips: Vec<IpAddr>,
    /// `relay-ip` lines; empty = the listening addresses.
    pub relay_ips: Vec<IpAddr>,
    /// `listening-port`, also TURN_PORT and STUN_PORT.
    pub port: u16,
    /// TURN/STUN over UDP offered.
    pub udp: bool,
    /// TURN over TCP offered.
    pub tcp: bool,
    /// TURN over TLS, if any.
    pub tls: Option<TlsPlan>,
    /// `min-port`.
    pub min_port: u16,
    /// `max-port`.
    pub max_port: u16,
    /// `realm`.
    pub realm: String,
    /// Videobridge addresses to allow as peers even when private (`allowed-peer-ip`).
    pub jvb_peers: Vec<String>,
    /// Credential lifetime Prosody gives out, seconds (TURN_TTL, `ttl`).
    pub ttl: u32,
    /// The shared secret.
    pub secret: String,
    /// The jitsi-helm release the values fragment is written for.
    pub jitsi_helm: JitsiHelm,
}

impl Plan {
    /// The plain (non-TLS) transports offered, in the order clients should try them.
    pub fn transports(&self) -> Vec<&'static str> {
        let mut t = Vec::new();
        if self.udp {
            t.push("udp");
        }
        if self.tcp {
            t.push("tcp");
        }
        t
    }

    /// `host:port` of the STUN service (UDP on the listening port), if UDP is offered.
    pub fn stun_host_port(&self) -> Option<String> {
        self.udp.then(|| host_port(&self.host, self.port))
    }
}

/// `host:port`, with brackets around an IPv6 literal.
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Whether `host` is a plain DNS name or IP literal: nothing that would need quoting in any
/// of the generated files.
pub fn is_valid_host(host: &str) -> bool {
    if host.parse::<IpAddr>().is_ok() {
        return true;
    }
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A plan like an operator's: public name, NAT, UDP + TCP + TLS, a private videobridge.
    pub(crate) fn sample() -> Plan {
        Plan {
            host: "turn.example.org".into(),
            external_ip: Some("203.0.113.7".parse().unwrap()),
            listen_ips: Vec::new(),
            relay_ips: Vec::new(),
            port: 3478,
            udp: true,
            tcp: true,
            tls: Some(TlsPlan {
                port: 5349,
                cert: "/etc/ferroturn/fullchain.pem".into(),
                pkey: "/etc/ferroturn/privkey.pem".into(),
            }),
            min_port: 49160,
            max_port: 49999,
            realm: "meet.example.org".into(),
            jvb_peers: vec!["10.0.0.5".into()],
            ttl: 86_400,
            secret: "4f6c1d0a9b8e7f2c3d5e6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f70812".into(),
            jitsi_helm: JitsiHelm::default(),
        }
    }

    #[test]
    fn hosts() {
        assert!(is_valid_host("turn.example.org"));
        assert!(is_valid_host("203.0.113.7"));
        assert!(is_valid_host("2001:db8::1"));
        assert!(!is_valid_host("turn example"));
        assert!(!is_valid_host("a\"b"));
        assert!(!is_valid_host(""));
        assert!(!is_valid_host("-x.org"));
        assert_eq!(host_port("2001:db8::1", 3478), "[2001:db8::1]:3478");
    }

    #[test]
    fn transports_follow_the_flags() {
        let mut p = sample();
        assert_eq!(p.transports(), ["udp", "tcp"]);
        p.udp = false;
        assert_eq!(p.transports(), ["tcp"]);
        assert_eq!(p.stun_host_port(), None);
    }
}
