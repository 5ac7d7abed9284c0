//! Which peer addresses a client may relay to.
//!
//! A TURN relay that forwards to any address lets an outside client reach the operator's internal
//! network (SSRF through the relay). ferroturn therefore denies every special-purpose range by
//! default, stricter than coturn, and lets the operator open holes with `allowed-peer-ip` or
//! `allow-loopback-peers`.
//!
//! The operator's explicit lists beat the built-in rules: `allowed-peer-ip` beats everything
//! (the built-in denials, `denied-peer-ip`, the server's own listeners), and `denied-peer-ip`
//! beats the built-in allowance `allow-loopback-peers`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// Why a string is not an [`IpRange`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IpRangeError {
    /// One side is not an IPv4 or IPv6 address.
    #[error("not an IP address")]
    BadAddress,
    /// `a-b` with one IPv4 and one IPv6 side.
    #[error("the two ends are of different address families")]
    MixedFamilies,
    /// `a-b` where `a` is greater than `b`.
    #[error("the first address is greater than the last")]
    Reversed,
    /// The CIDR prefix length is not a number or too long for the family.
    #[error("bad prefix length")]
    BadPrefix,
}

/// An inclusive range of addresses of one family.
///
/// Parsed from a single address (`1.2.3.4`), coturn's range form (`10.0.0.1-10.0.0.255`) or CIDR
/// (`10.0.0.0/8`). CIDR host bits are ignored, so `10.1.2.3/8` means `10.0.0.0/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpRange {
    start: IpAddr,
    end: IpAddr,
}

impl IpRange {
    /// Builds a range; both ends must be of one family and `start <= end`.
    pub fn new(start: IpAddr, end: IpAddr) -> Result<Self, IpRangeError> {
        match (start, end) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {}
            _ => return Err(IpRangeError::MixedFamilies),
        }
        if start > end {
            return Err(IpRangeError::Reversed);
        }
        Ok(Self { start, end })
    }

    /// The range holding exactly one address.
    pub fn single(ip: IpAddr) -> Self {
        Self { start: ip, end: ip }
    }

    /// First address of the range.
    pub fn start(&self) -> IpAddr {
        self.start
    }

    /// Last address of the range (inclusive).
    pub fn end(&self) -> IpAddr {
        self.end
    }

    /// Whether `ip` lies in the range. An address of the other family never does; IPv4-mapped
    /// IPv6 addresses are not translated here (that is [`PeerPolicy`]'s job).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.start, self.end, ip) {
            (IpAddr::V4(s), IpAddr::V4(e), IpAddr::V4(a)) => s <= a && a <= e,
            (IpAddr::V6(s), IpAddr::V6(e), IpAddr::V6(a)) => s <= a && a <= e,
            _ => false,
        }
    }

    fn span(&self) -> Span {
        match (self.start, self.end) {
            (IpAddr::V4(s), IpAddr::V4(e)) => Span::V4(u32::from(s), u32::from(e)),
            (IpAddr::V6(s), IpAddr::V6(e)) => Span::V6(u128::from(s), u128::from(e)),
            // `new` and `FromStr` never build a mixed range; an empty span keeps this total.
            _ => Span::V4(1, 0),
        }
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.start == self.end {
            write!(f, "{}", self.start)
        } else {
            write!(f, "{}-{}", self.start, self.end)
        }
    }
}

impl FromStr for IpRange {
    type Err = IpRangeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Some((addr, prefix)) = s.split_once('/') {
            let addr: IpAddr = addr.trim().parse().map_err(|_| IpRangeError::BadAddress)?;
            let prefix: u8 = prefix.trim().parse().map_err(|_| IpRangeError::BadPrefix)?;
            return match addr {
                IpAddr::V4(a) => {
                    let (s, e) = v4_prefix(u32::from(a), prefix).ok_or(IpRangeError::BadPrefix)?;
                    Ok(Self {
                        start: IpAddr::V4(Ipv4Addr::from(s)),
                        end: IpAddr::V4(Ipv4Addr::from(e)),
                    })
                }
                IpAddr::V6(a) => {
                    let (s, e) = v6_prefix(u128::from(a), prefix).ok_or(IpRangeError::BadPrefix)?;
                    Ok(Self {
                        start: IpAddr::V6(Ipv6Addr::from(s)),
                        end: IpAddr::V6(Ipv6Addr::from(e)),
                    })
                }
            };
        }
        // IPv6 text never contains '-', so the first '-' is always the separator.
        if let Some((a, b)) = s.split_once('-') {
            let a: IpAddr = a.trim().parse().map_err(|_| IpRangeError::BadAddress)?;
            let b: IpAddr = b.trim().parse().map_err(|_| IpRangeError::BadAddress)?;
            return Self::new(a, b);
        }
        let ip: IpAddr = s.parse().map_err(|_| IpRangeError::BadAddress)?;
        Ok(Self::single(ip))
    }
}

fn v4_prefix(addr: u32, prefix: u8) -> Option<(u32, u32)> {
    if prefix > 32 {
        return None;
    }
    let host = u32::MAX.checked_shr(u32::from(prefix)).unwrap_or(0);
    Some((addr & !host, addr | host))
}

fn v6_prefix(addr: u128, prefix: u8) -> Option<(u128, u128)> {
    if prefix > 128 {
        return None;
    }
    let host = u128::MAX.checked_shr(u32::from(prefix)).unwrap_or(0);
    Some((addr & !host, addr | host))
}

/// A range as integers, so a lookup is two compares per entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Span {
    V4(u32, u32),
    V6(u128, u128),
}

/// A network of the built-in deny table.
enum Net {
    V4([u8; 4], u8),
    V6([u16; 8], u8),
}

impl Net {
    const fn span(&self) -> Span {
        match *self {
            Net::V4(o, p) => {
                let a = u32::from_be_bytes(o);
                let host = match u32::MAX.checked_shr(p as u32) {
                    Some(h) => h,
                    None => 0,
                };
                Span::V4(a & !host, a | host)
            }
            Net::V6(s, p) => {
                let mut a: u128 = 0;
                let mut i = 0;
                while i < 8 {
                    a = (a << 16) | s[i] as u128;
                    i += 1;
                }
                let host = match u128::MAX.checked_shr(p as u32) {
                    Some(h) => h,
                    None => 0,
                };
                Span::V6(a & !host, a | host)
            }
        }
    }
}

/// Special-purpose networks that are never a legitimate WebRTC peer on the public Internet
/// (IANA special-purpose registries, RFC 6890 and successors). Relaying to them would expose the
/// operator's own networks or abuse the relay, so they are denied unless explicitly allowed.
const BUILTIN_DENIED: &[Net] = &[
    Net::V4([0, 0, 0, 0], 8),                       // "this network" (RFC 791)
    Net::V4([10, 0, 0, 0], 8),                      // private (RFC 1918)
    Net::V4([100, 64, 0, 0], 10),                   // shared address space / CGNAT (RFC 6598)
    Net::V4([127, 0, 0, 0], 8),                     // loopback
    Net::V4([169, 254, 0, 0], 16), // link-local (RFC 3927), incl. cloud metadata services
    Net::V4([172, 16, 0, 0], 12),  // private (RFC 1918)
    Net::V4([192, 0, 0, 0], 24),   // IETF protocol assignments (RFC 6890)
    Net::V4([192, 0, 2, 0], 24),   // documentation TEST-NET-1 (RFC 5737)
    Net::V4([192, 88, 99, 0], 24), // 6to4 relay anycast (RFC 7526)
    Net::V4([192, 168, 0, 0], 16), // private (RFC 1918)
    Net::V4([198, 18, 0, 0], 15),  // benchmarking (RFC 2544)
    Net::V4([198, 51, 100, 0], 24), // documentation TEST-NET-2 (RFC 5737)
    Net::V4([203, 0, 113, 0], 24), // documentation TEST-NET-3 (RFC 5737)
    Net::V4([224, 0, 0, 0], 4),    // multicast (RFC 5771)
    Net::V4([240, 0, 0, 0], 4),    // reserved, incl. limited broadcast 255.255.255.255
    Net::V6([0, 0, 0, 0, 0, 0, 0, 0], 96), // IPv4-compatible, deprecated (RFC 4291), incl. :: and ::1
    Net::V6([0, 0, 0, 0, 0, 0xffff, 0, 0], 96), // IPv4-mapped (RFC 4291)
    Net::V6([0, 0, 0, 0, 0xffff, 0, 0, 0], 96), // IPv4-translated, SIIT (RFC 2765)
    Net::V6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96), // NAT64 well-known prefix (RFC 6052)
    Net::V6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48), // NAT64 local-use (RFC 8215)
    Net::V6([0x100, 0, 0, 0, 0, 0, 0, 0], 64), // discard-only (RFC 6666)
    Net::V6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32), // Teredo (RFC 4380)
    Net::V6([0x2001, 2, 0, 0, 0, 0, 0, 0], 48), // benchmarking (RFC 5180)
    Net::V6([0x2001, 0x10, 0, 0, 0, 0, 0, 0], 28), // ORCHID, deprecated (RFC 4843)
    Net::V6([0x2001, 0x20, 0, 0, 0, 0, 0, 0], 28), // ORCHIDv2 (RFC 7343)
    Net::V6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), // documentation (RFC 3849)
    Net::V6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16), // 6to4 (RFC 3056)
    Net::V6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20), // documentation (RFC 9637)
    Net::V6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7), // unique local addresses (RFC 4193)
    Net::V6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), // link-local
    Net::V6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10), // site-local, deprecated (RFC 3879)
    Net::V6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), // multicast
];

/// What the operator configured about peer addresses (`allowed-peer-ip`, `denied-peer-ip`,
/// `allow-loopback-peers`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerPolicySettings {
    /// Ranges that are always allowed, even inside a denied range.
    pub allowed: Vec<IpRange>,
    /// Ranges denied in addition to the built-in special-purpose networks.
    pub denied: Vec<IpRange>,
    /// Allow 127.0.0.0/8 and ::1 (also as `::ffff:127.x.y.z`); meant for tests on one host.
    pub allow_loopback: bool,
}

/// Decides whether a client may relay to a peer address.
///
/// Built once at start-up; [`PeerPolicy::is_allowed`] does not allocate.
#[derive(Debug, Clone)]
pub struct PeerPolicy {
    allowed: Vec<Span>,
    denied: Vec<Span>,
    builtin: Vec<Span>,
    allow_loopback: bool,
}

impl PeerPolicy {
    /// Compiles the settings together with the built-in deny table.
    pub fn new(settings: &PeerPolicySettings) -> Self {
        Self {
            allowed: settings.allowed.iter().map(IpRange::span).collect(),
            denied: settings.denied.iter().map(IpRange::span).collect(),
            builtin: BUILTIN_DENIED.iter().map(Net::span).collect(),
            allow_loopback: settings.allow_loopback,
        }
    }

    /// Whether relaying to `ip` is permitted.
    ///
    /// Order: `allowed-peer-ip` wins; then `denied-peer-ip`; then loopback if
    /// `allow_loopback`; then the built-in denied ranges; everything else is allowed. An
    /// IPv4-mapped IPv6 address is also looked up as its IPv4 address, because the kernel
    /// delivers it to that IPv4 host; the mapped block itself stays denied otherwise.
    pub fn is_allowed(&self, ip: IpAddr) -> bool {
        if self.explicitly_allowed(ip) {
            return true;
        }
        let mapped_v4 = mapped_v4(ip);
        if in_spans(&self.denied, ip) || mapped_v4.is_some_and(|a| in_spans(&self.denied, a.into()))
        {
            return false;
        }
        if self.allow_loopback {
            let loopback = match ip {
                IpAddr::V4(a) => a.is_loopback(),
                IpAddr::V6(a) => a.is_loopback() || mapped_v4.is_some_and(|m| m.is_loopback()),
            };
            if loopback {
                return true;
            }
        }
        !(in_spans(&self.builtin, ip)
            || mapped_v4.is_some_and(|a| in_spans(&self.builtin, a.into())))
    }

    /// Whether `allowed-peer-ip` names `ip` (or the IPv4 address it maps), which overrides
    /// every denial, including the server's own addresses.
    pub fn explicitly_allowed(&self, ip: IpAddr) -> bool {
        in_spans(&self.allowed, ip)
            || mapped_v4(ip).is_some_and(|a| in_spans(&self.allowed, a.into()))
    }

    /// Whether relaying to the transport address `peer` is permitted: [`is_allowed`] for its
    /// IP, and not one of the server's own listeners unless `allowed-peer-ip` names it.
    ///
    /// [`is_allowed`]: Self::is_allowed
    pub fn permits(&self, peer: SocketAddr, server: &ServerAddresses) -> bool {
        if self.explicitly_allowed(peer.ip()) {
            return true;
        }
        !server.is_listener(peer) && self.is_allowed(peer.ip())
    }
}

fn mapped_v4(ip: IpAddr) -> Option<Ipv4Addr> {
    match ip {
        IpAddr::V4(a) => Some(a),
        IpAddr::V6(a) => a.to_ipv4_mapped(),
    }
}

/// The server's own addresses, as the runtime bound them, so a client cannot point its relay at
/// the server's listeners (an allocation nested inside an allocation, reached from the server's
/// own relay address).
///
/// Relay-to-relay traffic stays allowed: two clients of one server reach each other through
/// their relayed addresses, which WebRTC does whenever both ends use the same TURN server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerAddresses {
    /// Every listening transport address (UDP, TCP, TLS); an unspecified IP listens on all.
    pub listeners: Vec<SocketAddr>,
    /// Addresses that reach this host: relay IPs, specific listening IPs, external IPs. A
    /// wildcard listener is matched on these (and on loopback) at its port.
    pub local_ips: Vec<IpAddr>,
}

impl ServerAddresses {
    /// Whether a datagram sent to `peer` would arrive at one of the server's listeners.
    pub fn is_listener(&self, peer: SocketAddr) -> bool {
        let ip = peer.ip().to_canonical();
        self.listeners.iter().any(|l| {
            if l.port() != peer.port() {
                return false;
            }
            let lip = l.ip().to_canonical();
            if lip.is_unspecified() {
                // `::` also takes IPv4 on a dual-stack socket, so either wildcard matches both.
                ip.is_loopback()
                    || ip.is_unspecified()
                    || self.local_ips.iter().any(|o| o.to_canonical() == ip)
            } else {
                lip == ip
            }
        })
    }
}

fn in_spans(spans: &[Span], ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            let a = u32::from(a);
            spans
                .iter()
                .any(|s| matches!(*s, Span::V4(lo, hi) if lo <= a && a <= hi))
        }
        IpAddr::V6(a) => {
            let a = u128::from(a);
            spans
                .iter()
                .any(|s| matches!(*s, Span::V6(lo, hi) if lo <= a && a <= hi))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::ip;

    fn range(s: &str) -> IpRange {
        s.parse().expect("test range")
    }

    fn loopback_allowed_with(denied: &[&str], allowed: &[&str]) -> PeerPolicy {
        PeerPolicy::new(&PeerPolicySettings {
            allowed: allowed.iter().map(|s| range(s)).collect(),
            denied: denied.iter().map(|s| range(s)).collect(),
            allow_loopback: true,
        })
    }

    #[test]
    fn denied_list_beats_allow_loopback() {
        let p = loopback_allowed_with(&["127.0.0.99", "::1"], &[]);
        assert!(!p.is_allowed(ip("127.0.0.99")));
        assert!(!p.is_allowed(ip("::ffff:127.0.0.99")));
        assert!(!p.is_allowed(ip("::1")));
        assert!(p.is_allowed(ip("127.0.0.98")));
    }

    #[test]
    fn allowed_list_beats_denied_list_and_loopback_rules() {
        let p = loopback_allowed_with(&["127.0.0.0/8"], &["127.0.0.5"]);
        assert!(p.is_allowed(ip("127.0.0.5")));
        assert!(!p.is_allowed(ip("127.0.0.6")));
    }

    #[test]
    fn ipv4_compatible_translated_and_new_special_ranges_are_denied() {
        let p = strict();
        for a in [
            "::127.0.0.1",
            "::10.0.0.1",
            "::169.254.169.254",
            "::8.8.8.8",
            "::ffff:0:127.0.0.1",
            "::ffff:0:8.8.8.8",
            "2001:2::1",
            "2001:2:0:ffff:ffff:ffff:ffff:ffff",
            "3fff::1",
            "3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff",
        ] {
            assert!(!p.is_allowed(ip(a)), "{a} should be denied");
        }
        // IPv4-compatible loopback is not loopback to the kernel: allow-loopback-peers keeps
        // it denied.
        assert!(!loopback_allowed_with(&[], &[]).is_allowed(ip("::127.0.0.1")));
        for a in ["2001:3::1", "3fff:1000::1", "2001:2:1::1", "::1:0:0:1"] {
            assert!(p.is_allowed(ip(a)), "{a} should be allowed");
        }
    }

    #[test]
    fn ipv6_ranges_crossing_a_64_bit_boundary() {
        let p = PeerPolicy::new(&PeerPolicySettings {
            denied: vec![range("2606:4700:0:0:ffff::-2606:4700:0:1:1::")],
            allowed: vec![range("2400:cb00::ffff:ffff:ffff:fff0-2400:cb00:0:1::10")],
            ..Default::default()
        });
        assert!(!p.is_allowed(ip("2606:4700::ffff:0:0:1")));
        assert!(!p.is_allowed(ip("2606:4700:0:0:ffff:ffff:ffff:ffff")));
        assert!(!p.is_allowed(ip("2606:4700:0:1::")));
        assert!(!p.is_allowed(ip("2606:4700:0:1:1::")));
        assert!(p.is_allowed(ip("2606:4700:0:1:1::1")));
        assert!(p.is_allowed(ip("2606:4700::fffe:ffff:ffff:ffff")));
        // An allowed range is compared on all 128 bits too (a denied-by-default block here).
        let q = PeerPolicy::new(&PeerPolicySettings {
            allowed: vec![range("fd00::ffff:ffff:ffff:fff0-fd00:0:0:1::10")],
            ..Default::default()
        });
        assert!(q.is_allowed(ip("fd00::ffff:ffff:ffff:ffff")));
        assert!(q.is_allowed(ip("fd00:0:0:1::")));
        assert!(q.is_allowed(ip("fd00:0:0:1::10")));
        assert!(!q.is_allowed(ip("fd00:0:0:1::11")));
        assert!(!q.is_allowed(ip("fd00::ffff:ffff:ffff:ffef")));
    }

    #[test]
    fn own_listeners_are_denied_unless_explicitly_allowed() {
        let server = ServerAddresses {
            listeners: vec![
                "0.0.0.0:3478".parse().unwrap(),
                "[2606:4700::5]:5349".parse().unwrap(),
            ],
            local_ips: vec![ip("8.8.4.4")],
        };
        let p = loopback_allowed_with(&[], &[]);
        let sa = |s: &str| s.parse::<SocketAddr>().unwrap();
        for peer in [
            "8.8.4.4:3478",
            "127.0.0.1:3478",
            "[::ffff:8.8.4.4]:3478",
            "[2606:4700::5]:5349",
        ] {
            assert!(!p.permits(sa(peer), &server), "{peer} should be denied");
        }
        for peer in [
            "8.8.4.4:3479",
            "8.8.8.8:3478",
            "127.0.0.1:5000",
            "[2606:4700::5]:3478",
        ] {
            assert!(p.permits(sa(peer), &server), "{peer} should be allowed");
        }
        let opened = loopback_allowed_with(&[], &["8.8.4.4"]);
        assert!(opened.permits(sa("8.8.4.4:3478"), &server));
        assert!(!opened.permits(sa("127.0.0.1:3478"), &server));
    }

    fn strict() -> PeerPolicy {
        PeerPolicy::new(&PeerPolicySettings::default())
    }

    fn span_ends(span: Span) -> (IpAddr, IpAddr) {
        match span {
            Span::V4(a, b) => (Ipv4Addr::from(a).into(), Ipv4Addr::from(b).into()),
            Span::V6(a, b) => (Ipv6Addr::from(a).into(), Ipv6Addr::from(b).into()),
        }
    }

    #[test]
    fn every_builtin_range_is_denied_at_both_ends() {
        let p = strict();
        for net in BUILTIN_DENIED {
            let (first, last) = span_ends(net.span());
            assert!(!p.is_allowed(first), "{first} should be denied");
            assert!(!p.is_allowed(last), "{last} should be denied");
        }
    }

    #[test]
    fn builtin_table_spans_are_right() {
        assert_eq!(
            span_ends(Net::V4([100, 64, 0, 0], 10).span()),
            (ip("100.64.0.0"), ip("100.127.255.255"))
        );
        assert_eq!(
            span_ends(Net::V6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7).span()),
            (ip("fc00::"), ip("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"))
        );
        assert_eq!(
            span_ends(Net::V4([240, 0, 0, 0], 4).span()).1,
            ip("255.255.255.255")
        );
    }

    #[test]
    fn addresses_just_outside_builtin_ranges_are_allowed() {
        let p = strict();
        for a in [
            "1.0.0.0",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "223.255.255.255",
            "2001:4860::1",
            "2003::1",
            "fbff::1",
            "fe7f::1",
        ] {
            assert!(p.is_allowed(ip(a)), "{a} should be allowed");
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        let p = strict();
        assert!(p.is_allowed(ip("8.8.8.8")));
        assert!(p.is_allowed(ip("2606:4700::1")));
    }

    #[test]
    fn allowed_list_wins_over_builtin_and_denied() {
        let p = PeerPolicy::new(&PeerPolicySettings {
            allowed: vec![range("10.1.0.0/16"), range("fd00::1")],
            denied: vec![range("10.1.2.3")],
            allow_loopback: false,
        });
        assert!(p.is_allowed(ip("10.1.2.3")));
        assert!(p.is_allowed(ip("10.1.255.255")));
        assert!(p.is_allowed(ip("fd00::1")));
        assert!(!p.is_allowed(ip("10.2.0.0")));
        assert!(!p.is_allowed(ip("fd00::2")));
    }

    #[test]
    fn allowed_ipv4_covers_its_mapped_form() {
        let p = PeerPolicy::new(&PeerPolicySettings {
            allowed: vec![range("10.0.0.1")],
            ..Default::default()
        });
        assert!(p.is_allowed(ip("::ffff:10.0.0.1")));
        assert!(!p.is_allowed(ip("::ffff:10.0.0.2")));
    }

    #[test]
    fn denied_extends_builtins() {
        let p = PeerPolicy::new(&PeerPolicySettings {
            denied: vec![range("8.8.8.0-8.8.8.255"), range("2606:4700::/32")],
            ..Default::default()
        });
        assert!(!p.is_allowed(ip("8.8.8.8")));
        assert!(!p.is_allowed(ip("2606:4700::1")));
        assert!(!p.is_allowed(ip("10.0.0.1")));
        assert!(p.is_allowed(ip("8.8.4.4")));
    }

    #[test]
    fn allow_loopback_covers_all_loopback_forms() {
        let p = PeerPolicy::new(&PeerPolicySettings {
            allow_loopback: true,
            ..Default::default()
        });
        for a in ["127.0.0.1", "127.255.255.254", "::1", "::ffff:127.0.0.1"] {
            assert!(p.is_allowed(ip(a)), "{a} should be allowed");
        }
        assert!(!p.is_allowed(ip("10.0.0.1")));
        assert!(!p.is_allowed(ip("::")));
    }

    #[test]
    fn loopback_denied_by_default() {
        let p = strict();
        for a in ["127.0.0.1", "::1", "::ffff:127.0.0.1"] {
            assert!(!p.is_allowed(ip(a)), "{a} should be denied");
        }
    }

    #[test]
    fn mapped_public_address_is_still_denied() {
        assert!(!strict().is_allowed(ip("::ffff:8.8.8.8")));
    }

    #[test]
    fn parses_single_addresses() {
        assert_eq!(range("1.2.3.4"), IpRange::single(ip("1.2.3.4")));
        assert_eq!(range("::1"), IpRange::single(ip("::1")));
        assert_eq!(range(" 1.2.3.4 ").to_string(), "1.2.3.4");
    }

    #[test]
    fn parses_dash_ranges() {
        let r = range("10.0.0.1-10.0.0.255");
        assert_eq!((r.start(), r.end()), (ip("10.0.0.1"), ip("10.0.0.255")));
        assert!(r.contains(ip("10.0.0.100")));
        assert!(!r.contains(ip("10.0.1.0")));
        let r = range("fe80::1-fe80::ff");
        assert!(r.contains(ip("fe80::80")));
        assert!(!r.contains(ip("fe80::100")));
        assert_eq!(r.to_string(), "fe80::1-fe80::ff");
        assert_eq!(range("1.1.1.1-1.1.1.1"), IpRange::single(ip("1.1.1.1")));
    }

    #[test]
    fn parses_cidr() {
        let r = range("10.0.0.0/8");
        assert_eq!((r.start(), r.end()), (ip("10.0.0.0"), ip("10.255.255.255")));
        let r = range("2001:db8::/32");
        assert_eq!(r.end(), ip("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"));
        assert_eq!(range("10.1.2.3/8"), range("10.0.0.0/8"));
        assert_eq!(range("0.0.0.0/0").end(), ip("255.255.255.255"));
        assert_eq!(range("1.2.3.4/32"), IpRange::single(ip("1.2.3.4")));
        assert_eq!(
            range("::/0").end(),
            ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")
        );
        assert_eq!(range("::1/128"), IpRange::single(ip("::1")));
    }

    #[test]
    fn contains_ignores_other_family() {
        assert!(!range("0.0.0.0/0").contains(ip("::1")));
        assert!(!range("::/0").contains(ip("1.2.3.4")));
    }

    #[test]
    fn parse_errors() {
        let err = |s: &str| s.parse::<IpRange>().expect_err(s);
        assert_eq!(err(""), IpRangeError::BadAddress);
        assert_eq!(err("example.com"), IpRangeError::BadAddress);
        assert_eq!(err("1.2.3"), IpRangeError::BadAddress);
        assert_eq!(err("1.2.3.4-"), IpRangeError::BadAddress);
        assert_eq!(err("x/8"), IpRangeError::BadAddress);
        assert_eq!(err("1.2.3.4-::1"), IpRangeError::MixedFamilies);
        assert_eq!(err("10.0.0.2-10.0.0.1"), IpRangeError::Reversed);
        assert_eq!(err("fe80::2-fe80::1"), IpRangeError::Reversed);
        assert_eq!(err("10.0.0.0/33"), IpRangeError::BadPrefix);
        assert_eq!(err("::/129"), IpRangeError::BadPrefix);
        assert_eq!(err("10.0.0.0/x"), IpRangeError::BadPrefix);
        assert_eq!(err("10.0.0.0/"), IpRangeError::BadPrefix);
        assert!(IpRange::new(ip("1.1.1.2"), ip("1.1.1.1")).is_err());
        assert_eq!(
            IpRange::new(ip("1.1.1.1"), ip("::1")),
            Err(IpRangeError::MixedFamilies)
        );
    }
}
