//! Which local addresses to listen and relay on, and which combinations cannot work.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use thiserror::Error;

use crate::proto::settings::{ExternalMapping, Settings};

/// One address of one network interface, as getifaddrs lists it.
pub(crate) struct InterfaceAddress {
    pub name: String,
    pub ip: IpAddr,
    pub up: bool,
    pub loopback: bool,
}

/// Every IPv4 and IPv6 address of every interface, in the order getifaddrs lists them.
pub(crate) fn list_interface_addresses() -> Vec<InterfaceAddress> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we walk read-only and free exactly once;
    // ifa_name is a NUL-terminated string valid until then.
    unsafe {
        if libc::getifaddrs(&mut head) != 0 {
            return out;
        }
        let mut cur = head;
        while !cur.is_null() {
            let ifa = &*cur;
            cur = ifa.ifa_next;
            if ifa.ifa_addr.is_null() {
                continue;
            }
            let ip = match i32::from((*ifa.ifa_addr).sa_family) {
                libc::AF_INET => {
                    let sin = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                    IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)))
                }
                libc::AF_INET6 => {
                    let sin6 = &*(ifa.ifa_addr as *const libc::sockaddr_in6);
                    IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr))
                }
                _ => continue,
            };
            out.push(InterfaceAddress {
                name: std::ffi::CStr::from_ptr(ifa.ifa_name)
                    .to_string_lossy()
                    .into_owned(),
                ip,
                up: ifa.ifa_flags & libc::IFF_UP as u32 != 0,
                loopback: ifa.ifa_flags & libc::IFF_LOOPBACK as u32 != 0,
            });
        }
        libc::freeifaddrs(head);
    }
    out
}

/// The host's interface addresses that can carry TURN traffic: every IPv4 address and every
/// IPv6 address except link-local ones (they need a scope id that clients never send), of
/// interfaces that are up.
pub fn interface_addresses() -> Vec<IpAddr> {
    let link_local =
        |ip: &IpAddr| matches!(ip, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80);
    let mut out: Vec<IpAddr> = list_interface_addresses()
        .into_iter()
        .filter(|a| a.up && !link_local(&a.ip))
        .map(|a| a.ip)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// `ips` as "a, b, c", for messages.
pub fn comma_list(ips: &[IpAddr]) -> String {
    ips.iter()
        .map(IpAddr::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Listening addresses: the configured ones, else every interface address (loopback
/// included, so local clients reach the relay too).
pub fn listening_addresses_on(configured: &[IpAddr], interfaces: &[IpAddr]) -> Vec<IpAddr> {
    if !configured.is_empty() {
        return configured.to_vec();
    }
    if interfaces.is_empty() {
        vec![IpAddr::V4(Ipv4Addr::UNSPECIFIED)]
    } else {
        interfaces.to_vec()
    }
}

/// Why an address was chosen as a relay address (logged at start-up, printed by
/// `--check-config`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelaySource {
    /// Set with `relay-ip`.
    RelayIp,
    /// The PRIVATE part of an `external-ip=PUBLIC/PRIVATE`.
    ExternalPrivate,
    /// A `listening-ip` (no `relay-ip` given).
    ListeningIp,
    /// A non-loopback, non-link-local address of this host (nothing configured).
    Interface,
    /// This host's own address that a bare `external-ip` names (nothing else configured).
    ExternalIsLocal,
    /// The host has no other address than loopback.
    LoopbackOnly,
}

impl RelaySource {
    /// The reason in words.
    pub fn why(self) -> &'static str {
        match self {
            RelaySource::RelayIp => "set by relay-ip",
            RelaySource::ExternalPrivate => "PRIVATE part of external-ip=PUBLIC/PRIVATE",
            RelaySource::ListeningIp => "a listening-ip (no relay-ip given)",
            RelaySource::Interface => {
                "non-loopback interface address (no relay-ip or listening-ip)"
            }
            RelaySource::ExternalIsLocal => "this host's own address, named by external-ip",
            RelaySource::LoopbackOnly => "the host has no non-loopback address",
        }
    }
}

/// One relay address and why it was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayChoice {
    /// The local address relay sockets bind.
    pub ip: IpAddr,
    /// Why.
    pub source: RelaySource,
    /// What XOR-RELAYED-ADDRESS tells clients for it (`external-ip`, or the address itself).
    pub advertised: IpAddr,
}

/// The configuration's say on addresses, and what the host has.
#[derive(Debug, Clone, Copy)]
pub struct AddressInput<'a> {
    /// `relay-ip` values.
    pub relay_ips: &'a [IpAddr],
    /// `listening-ip` values.
    pub listening_ips: &'a [IpAddr],
    /// `external-ip` values.
    pub external_ips: &'a [ExternalMapping],
    /// The host's interface addresses (see [`interface_addresses`]).
    pub interfaces: &'a [IpAddr],
}

/// Listening and relay addresses, decided once at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressPlan {
    /// Addresses the listeners bind.
    pub listening: Vec<IpAddr>,
    /// Addresses relay sockets bind; several of one family take turns per allocation.
    pub relays: Vec<RelayChoice>,
    /// Listening addresses left out of the relay addresses, with the reason.
    pub skipped: Vec<(IpAddr, &'static str)>,
    /// Choices that work but are likely not what the operator meant.
    pub warnings: Vec<String>,
}

impl AddressPlan {
    /// The relay addresses alone.
    pub fn relay_ips(&self) -> Vec<IpAddr> {
        self.relays.iter().map(|r| r.ip).collect()
    }
}

/// Why the addresses cannot work.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum AddressError {
    /// A configured address is not one of this host's.
    #[error("{option}={ip} is not an address of this host (it has {have}); set {option} to one of them, or remove it")]
    NotLocal {
        /// The option.
        option: &'static str,
        /// The address.
        ip: IpAddr,
        /// The host's addresses, listed.
        have: String,
    },
    /// A loopback relay would be advertised under an address that is not loopback.
    #[error("relay address {ip} ({why}) is loopback, but external-ip tells clients to reach it at {public}: no packet from another host can arrive there. Set relay-ip to the address of this host that {public} is forwarded to")]
    LoopbackAdvertised {
        /// The relay address.
        ip: IpAddr,
        /// Why it was chosen.
        why: &'static str,
        /// The external address advertised for it.
        public: IpAddr,
    },
    /// A loopback relay next to a listener that remote clients reach.
    #[error("relay address {ip} ({why}) is loopback while ferroturn listens on {listening}: clients on other hosts would be given a relay address they cannot reach. Set relay-ip to a non-loopback address of this host (or listen on loopback only, for a local test)")]
    LoopbackForRemote {
        /// The relay address.
        ip: IpAddr,
        /// Why it was chosen.
        why: &'static str,
        /// A non-loopback listening address.
        listening: IpAddr,
    },
    /// Nothing to relay on.
    #[error("no relay address: set relay-ip")]
    NoRelayAddress,
}

fn is_link_local(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => v6.segments()[0] & 0xffc0 == 0xfe80,
    }
}

/// An address that other hosts can send to (as far as this host can tell).
fn is_routable(ip: &IpAddr) -> bool {
    !ip.is_loopback() && !ip.is_unspecified() && !is_link_local(ip)
}

/// Decides the listening and relay addresses.
///
/// Relay addresses, per family: every `relay-ip` when any is given (for every family);
/// otherwise the PRIVATE parts of `external-ip=PUBLIC/PRIVATE`; otherwise the `listening-ip`
/// addresses when any is given (a wildcard `listening-ip` counts as not given for its family;
/// a family without a listening address gets no relay); otherwise every non-loopback,
/// non-link-local interface address. Loopback is a relay address only when chosen explicitly
/// or when the host has no other address; loopback listening addresses next to routable ones
/// are not relayed on.
///
/// Refused: a configured address this host does not have; a loopback relay address that an
/// `external-ip` advertises as a non-loopback address; a loopback relay address while a
/// listener is reachable from other hosts.
pub fn plan(input: &AddressInput<'_>) -> Result<AddressPlan, AddressError> {
    check_local(input)?;
    let listening = listening_addresses_on(input.listening_ips, input.interfaces);
    let mut relays: Vec<(IpAddr, RelaySource)> = Vec::new();
    let mut skipped = Vec::new();
    let specific = |ips: &[IpAddr], v4: bool| -> Vec<IpAddr> {
        let mut out: Vec<IpAddr> = ips
            .iter()
            .copied()
            .filter(|ip| ip.is_ipv4() == v4 && !ip.is_unspecified())
            .collect();
        out.dedup();
        out
    };
    if !input.relay_ips.is_empty() {
        for v4 in [true, false] {
            relays.extend(
                specific(input.relay_ips, v4)
                    .into_iter()
                    .map(|ip| (ip, RelaySource::RelayIp)),
            );
        }
    } else {
        let privates: Vec<IpAddr> = input
            .external_ips
            .iter()
            .filter_map(|e| e.private)
            .collect();
        let mut discover = [false, false];
        for (family, v4) in [true, false].into_iter().enumerate() {
            let from_external = specific(&privates, v4);
            let from_listening = specific(input.listening_ips, v4);
            let listens_wild = input
                .listening_ips
                .iter()
                .any(|ip| ip.is_ipv4() == v4 && ip.is_unspecified());
            if !from_external.is_empty() {
                relays.extend(
                    from_external
                        .into_iter()
                        .map(|ip| (ip, RelaySource::ExternalPrivate)),
                );
            } else if !from_listening.is_empty() {
                relays.extend(
                    from_listening
                        .into_iter()
                        .map(|ip| (ip, RelaySource::ListeningIp)),
                );
            } else if input.listening_ips.is_empty() || listens_wild {
                discover[family] = true;
                let found: Vec<IpAddr> = specific(input.interfaces, v4)
                    .into_iter()
                    .filter(is_routable)
                    .collect();
                // A bare external-ip that is one of this host's addresses (a VPS with its
                // public address on eth0 and a tunnel beside it) says which one is public.
                let own_public = input
                    .external_ips
                    .iter()
                    .find(|e| e.private.is_none() && found.contains(&e.public));
                match own_public {
                    Some(e) if found.len() > 1 => {
                        relays.push((e.public, RelaySource::ExternalIsLocal));
                        for ip in found.iter().filter(|ip| **ip != e.public) {
                            skipped.push((*ip, "external-ip names another address of this host"));
                        }
                    }
                    _ => relays.extend(found.into_iter().map(|ip| (ip, RelaySource::Interface))),
                }
            }
        }
        let host_has_routable = input.interfaces.iter().any(is_routable);
        if relays.is_empty() && !host_has_routable {
            for (family, v4) in [true, false].into_iter().enumerate() {
                if discover[family] {
                    relays.extend(
                        specific(input.interfaces, v4)
                            .into_iter()
                            .filter(IpAddr::is_loopback)
                            .map(|ip| (ip, RelaySource::LoopbackOnly)),
                    );
                }
            }
        }
        // A loopback listening-ip beside a routable one is for local clients, not for relaying.
        if relays.iter().any(|(ip, _)| is_routable(ip)) {
            relays.retain(|(ip, source)| {
                let keep = !(ip.is_loopback() && *source == RelaySource::ListeningIp);
                if !keep {
                    skipped.push((*ip, "loopback beside routable listening addresses"));
                }
                keep
            });
        }
    }
    if relays.is_empty() {
        return Err(AddressError::NoRelayAddress);
    }
    let settings = Settings {
        external_ips: input.external_ips.to_vec(),
        ..Settings::default()
    };
    let reachable_listener = listening.iter().copied().find(is_routable).or_else(|| {
        listening
            .iter()
            .any(IpAddr::is_unspecified)
            .then(|| input.interfaces.iter().copied().find(is_routable))
            .flatten()
    });
    let mut choices = Vec::with_capacity(relays.len());
    for (ip, source) in relays {
        let advertised = settings.advertised(SocketAddr::new(ip, 0)).ip();
        if ip.is_loopback() {
            if !advertised.is_loopback() {
                return Err(AddressError::LoopbackAdvertised {
                    ip,
                    why: source.why(),
                    public: advertised,
                });
            }
            if let Some(listening) = reachable_listener {
                return Err(AddressError::LoopbackForRemote {
                    ip,
                    why: source.why(),
                    listening,
                });
            }
        }
        choices.push(RelayChoice {
            ip,
            source,
            advertised,
        });
    }
    let mut warnings = Vec::new();
    for v4 in [true, false] {
        let of_family: Vec<&RelayChoice> =
            choices.iter().filter(|c| c.ip.is_ipv4() == v4).collect();
        let bare = input
            .external_ips
            .iter()
            .find(|e| e.private.is_none() && e.public.is_ipv4() == v4);
        if let (Some(e), true) = (bare, of_family.len() > 1) {
            let ips: Vec<IpAddr> = of_family.iter().map(|c| c.ip).collect();
            warnings.push(format!(
                "external-ip={} is advertised for every relay address of its family ({}); if only one of them receives its traffic, set relay-ip to it or use external-ip={}/PRIVATE",
                e.public,
                comma_list(&ips),
                e.public
            ));
        }
    }
    Ok(AddressPlan {
        listening,
        relays: choices,
        skipped,
        warnings,
    })
}

/// Every configured address must be one of the host's (when the host's list is known).
fn check_local(input: &AddressInput<'_>) -> Result<(), AddressError> {
    if input.interfaces.is_empty() {
        return Ok(());
    }
    let privates: Vec<IpAddr> = input
        .external_ips
        .iter()
        .filter_map(|e| e.private)
        .collect();
    for (option, ips) in [
        ("listening-ip", input.listening_ips),
        ("relay-ip", input.relay_ips),
        ("external-ip PRIVATE", &privates[..]),
    ] {
        for ip in ips {
            if !ip.is_unspecified() && !input.interfaces.contains(ip) {
                let have = comma_list(input.interfaces);
                return Err(AddressError::NotLocal {
                    option,
                    ip: *ip,
                    have,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::testing::ip;

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn ext(public: &str, private: Option<&str>) -> ExternalMapping {
        ExternalMapping {
            public: ip(public),
            private: private.map(ip),
        }
    }

    /// A VPS: loopback, one public IPv4 on eth0, a global IPv6 and a link-local one.
    const VPS: &[&str] = &[
        "127.0.0.1",
        "192.0.2.5",
        "::1",
        "2001:db8::5",
        "169.254.3.3",
    ];

    fn plan_with(
        relay: &[&str],
        listening: &[&str],
        external: &[ExternalMapping],
        interfaces: &[&str],
    ) -> Result<AddressPlan, AddressError> {
        plan(&AddressInput {
            relay_ips: &ips(relay),
            listening_ips: &ips(listening),
            external_ips: external,
            interfaces: &ips(interfaces),
        })
    }

    fn relays(p: &AddressPlan) -> Vec<(IpAddr, RelaySource)> {
        p.relays.iter().map(|r| (r.ip, r.source)).collect()
    }

    #[test]
    fn nothing_configured_relays_on_every_routable_interface_address() {
        // The seed's file: external-ip only. The old code picked 127.0.0.1 here.
        let p = plan_with(&[], &[], &[ext("198.51.100.7", None)], VPS).unwrap();
        assert_eq!(
            relays(&p),
            [
                (ip("192.0.2.5"), RelaySource::Interface),
                (ip("2001:db8::5"), RelaySource::Interface)
            ]
        );
        // Listeners still include loopback, for local clients.
        assert!(p.listening.contains(&ip("127.0.0.1")));
        // One external address per family: the IPv4 one is not advertised for the IPv6 relay.
        assert_eq!(p.relays[0].advertised, ip("198.51.100.7"));
        assert_eq!(p.relays[1].advertised, ip("2001:db8::5"));
    }

    #[test]
    fn several_addresses_of_a_family_are_all_relay_addresses() {
        let p = plan_with(&[], &[], &[], &["127.0.0.1", "192.0.2.5", "192.0.2.6"]).unwrap();
        assert_eq!(
            relays(&p),
            [
                (ip("192.0.2.5"), RelaySource::Interface),
                (ip("192.0.2.6"), RelaySource::Interface)
            ]
        );
    }

    #[test]
    fn a_bare_external_ip_that_is_a_local_address_picks_that_address() {
        // The VPS of the seed's layout: public address on eth0, a tunnel to the bridge beside it.
        let vps = &["127.0.0.1", "203.0.113.10", "10.99.0.1"];
        let p = plan_with(&[], &[], &[ext("203.0.113.10", None)], vps).unwrap();
        assert_eq!(
            relays(&p),
            [(ip("203.0.113.10"), RelaySource::ExternalIsLocal)]
        );
        assert_eq!(
            p.skipped,
            [(
                ip("10.99.0.1"),
                "external-ip names another address of this host"
            )]
        );
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        // 1:1 NAT: the public address is not local, so which one it maps to is unknown.
        let p = plan_with(&[], &[], &[ext("198.51.100.7", None)], vps).unwrap();
        assert_eq!(p.relays.len(), 2);
        assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
        assert!(p.warnings[0].contains("set relay-ip"), "{:?}", p.warnings);
    }

    #[test]
    fn loopback_only_when_the_host_has_nothing_else() {
        let p = plan_with(&[], &[], &[], &["127.0.0.1", "::1"]).unwrap();
        assert_eq!(
            relays(&p),
            [
                (ip("127.0.0.1"), RelaySource::LoopbackOnly),
                (ip("::1"), RelaySource::LoopbackOnly)
            ]
        );
        // A host with IPv4 on eth0 but IPv6 only on lo gets no IPv6 relay (not ::1).
        let p = plan_with(&[], &[], &[], &["127.0.0.1", "192.0.2.5", "::1"]).unwrap();
        assert_eq!(relays(&p), [(ip("192.0.2.5"), RelaySource::Interface)]);
    }

    #[test]
    fn relay_ip_wins_and_is_taken_as_given() {
        // A routable relay-ip behind a loopback listener is fine.
        let p = plan_with(&["192.0.2.5"], &["127.0.0.1"], &[], VPS).unwrap();
        assert_eq!(relays(&p), [(ip("192.0.2.5"), RelaySource::RelayIp)]);
        let p = plan_with(&["192.0.2.5"], &[], &[], VPS).unwrap();
        assert_eq!(relays(&p), [(ip("192.0.2.5"), RelaySource::RelayIp)]);
        // relay-ip of one family only: no relay of the other.
        assert!(p.relays.iter().all(|r| r.ip.is_ipv4()));
    }

    #[test]
    fn listening_ip_addresses_are_the_relay_addresses() {
        let p = plan_with(&[], &["192.0.2.5"], &[], VPS).unwrap();
        assert_eq!(relays(&p), [(ip("192.0.2.5"), RelaySource::ListeningIp)]);
        assert_eq!(p.listening, ips(&["192.0.2.5"]));
        // Loopback listening beside a routable one serves local clients but is not relayed on.
        let p = plan_with(&[], &["127.0.0.1", "192.0.2.5"], &[], VPS).unwrap();
        assert_eq!(relays(&p), [(ip("192.0.2.5"), RelaySource::ListeningIp)]);
        assert_eq!(p.skipped.len(), 1);
        // A wildcard listening-ip discovers that family's addresses.
        let p = plan_with(&[], &["0.0.0.0"], &[], VPS).unwrap();
        assert_eq!(relays(&p), [(ip("192.0.2.5"), RelaySource::Interface)]);
    }

    #[test]
    fn loopback_only_test_setups_keep_working() {
        // conf/turnserver.conf and the test suites: listen and relay on loopback, no external-ip.
        let p = plan_with(&["127.0.0.1", "::1"], &["127.0.0.1", "::1"], &[], VPS).unwrap();
        assert_eq!(p.relay_ips(), ips(&["127.0.0.1", "::1"]));
        let p = plan_with(&[], &["127.0.0.1"], &[], VPS).unwrap();
        assert_eq!(relays(&p), [(ip("127.0.0.1"), RelaySource::ListeningIp)]);
    }

    #[test]
    fn external_private_parts_are_relay_addresses() {
        let vps = &["127.0.0.1", "10.0.0.4", "10.0.0.5"];
        let p = plan_with(&[], &[], &[ext("198.51.100.7", Some("10.0.0.5"))], vps).unwrap();
        assert_eq!(relays(&p), [(ip("10.0.0.5"), RelaySource::ExternalPrivate)]);
        assert_eq!(p.relays[0].advertised, ip("198.51.100.7"));
    }

    #[test]
    fn loopback_relay_advertised_as_public_is_refused() {
        // conf/turnserver.conf copied, external-ip added: the seed's failure, explicitly.
        let err = plan_with(
            &["127.0.0.1"],
            &["127.0.0.1"],
            &[ext("198.51.100.7", None)],
            VPS,
        )
        .unwrap_err();
        assert!(
            matches!(err, AddressError::LoopbackAdvertised { .. }),
            "{err}"
        );
        let text = err.to_string();
        assert!(
            text.contains("set relay-ip") || text.contains("Set relay-ip"),
            "{text}"
        );
        assert!(text.contains("198.51.100.7"), "{text}");
        // A host with nothing but loopback and the seed's file.
        let err = plan_with(&[], &[], &[ext("198.51.100.7", None)], &["127.0.0.1"]).unwrap_err();
        assert!(
            matches!(err, AddressError::LoopbackAdvertised { .. }),
            "{err}"
        );
        // An IPv6 external address says nothing about the IPv4 loopback relay.
        assert!(plan_with(
            &["127.0.0.1"],
            &["127.0.0.1"],
            &[ext("2001:db8::7", None)],
            VPS
        )
        .is_ok());
    }

    #[test]
    fn loopback_relay_behind_a_reachable_listener_is_refused() {
        let err = plan_with(&["127.0.0.1"], &[], &[], VPS).unwrap_err();
        assert!(
            matches!(err, AddressError::LoopbackForRemote { .. }),
            "{err}"
        );
        let err = plan_with(&["127.0.0.1"], &["0.0.0.0"], &[], VPS).unwrap_err();
        assert!(
            matches!(err, AddressError::LoopbackForRemote { .. }),
            "{err}"
        );
    }

    #[test]
    fn addresses_the_host_does_not_have_are_refused() {
        for (relay, listening) in [(&["192.0.2.99"][..], &[][..]), (&[], &["192.0.2.99"])] {
            let err = plan_with(relay, listening, &[], VPS).unwrap_err();
            assert!(
                matches!(err, AddressError::NotLocal { ip, .. } if ip == self::ip("192.0.2.99")),
                "{err}"
            );
            assert!(err.to_string().contains("192.0.2.5"), "{err}");
        }
        let err = plan_with(&[], &[], &[ext("198.51.100.7", Some("10.9.9.9"))], VPS).unwrap_err();
        assert!(matches!(err, AddressError::NotLocal { .. }), "{err}");
    }

    #[test]
    fn interfaces_include_loopback() {
        assert!(interface_addresses().iter().any(|ip| ip.is_loopback()));
    }
}
