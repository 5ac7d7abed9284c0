//! Which local addresses to listen and relay on when the configuration does not say.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The host's interface addresses that can carry TURN traffic: every IPv4 address and every
/// IPv6 address except link-local ones (they need a scope id that clients never send).
pub fn interface_addresses() -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we walk read-only and free exactly once.
    unsafe {
        if libc::getifaddrs(&mut head) != 0 {
            return out;
        }
        let mut cur = head;
        while !cur.is_null() {
            let ifa = &*cur;
            cur = ifa.ifa_next;
            let up = ifa.ifa_flags & libc::IFF_UP as u32 != 0;
            if ifa.ifa_addr.is_null() || !up {
                continue;
            }
            match i32::from((*ifa.ifa_addr).sa_family) {
                libc::AF_INET => {
                    let sin = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                    out.push(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                        sin.sin_addr.s_addr,
                    ))));
                }
                libc::AF_INET6 => {
                    let sin6 = &*(ifa.ifa_addr as *const libc::sockaddr_in6);
                    let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
                    if ip.segments()[0] & 0xffc0 != 0xfe80 {
                        out.push(IpAddr::V6(ip));
                    }
                }
                _ => {}
            }
        }
        libc::freeifaddrs(head);
    }
    out.sort();
    out.dedup();
    out
}

/// Listening addresses: the configured ones, else every interface address.
pub fn listening_addresses(configured: &[IpAddr]) -> Vec<IpAddr> {
    if !configured.is_empty() {
        return configured.to_vec();
    }
    let found = interface_addresses();
    if found.is_empty() {
        vec![IpAddr::V4(Ipv4Addr::UNSPECIFIED)]
    } else {
        found
    }
}

/// Relay addresses, one per family at most: the first configured `relay-ip` of each family,
/// else the first specific listening address, else the first non-loopback interface address
/// (loopback only when nothing else exists).
pub fn relay_addresses(
    relay_ips: &[IpAddr],
    listening: &[IpAddr],
    interfaces: &[IpAddr],
) -> (Option<IpAddr>, Option<IpAddr>) {
    let pick = |v4: bool| -> Option<IpAddr> {
        let of_family = |ips: &[IpAddr]| {
            ips.iter()
                .copied()
                .filter(|ip| ip.is_ipv4() == v4 && !ip.is_unspecified())
                .collect::<Vec<_>>()
        };
        if !relay_ips.is_empty() {
            return of_family(relay_ips).first().copied();
        }
        let from_listeners = of_family(listening);
        if let Some(ip) = from_listeners.first() {
            return Some(*ip);
        }
        let found = of_family(interfaces);
        found
            .iter()
            .find(|ip| !ip.is_loopback())
            .or(found.first())
            .copied()
    };
    (pick(true), pick(false))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn relay_ip_wins_then_listeners_then_interfaces() {
        let ifs = ips(&["127.0.0.1", "192.0.2.5", "::1", "2001:db8::5"]);
        assert_eq!(
            relay_addresses(&ips(&["198.51.100.1"]), &ips(&["127.0.0.1"]), &ifs),
            (Some("198.51.100.1".parse().unwrap()), None)
        );
        assert_eq!(
            relay_addresses(&[], &ips(&["127.0.0.1", "::1"]), &ifs),
            (
                Some("127.0.0.1".parse().unwrap()),
                Some("::1".parse().unwrap())
            )
        );
        assert_eq!(
            relay_addresses(&[], &ips(&["0.0.0.0"]), &ifs),
            (
                Some("192.0.2.5".parse().unwrap()),
                Some("2001:db8::5".parse().unwrap())
            )
        );
    }

    #[test]
    fn interfaces_include_loopback() {
        assert!(interface_addresses().iter().any(|ip| ip.is_loopback()));
    }
}
