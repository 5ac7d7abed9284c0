//! Test doubles for driving the core without sockets, and small helpers for writing tests
//! (feature `testing`; always on for the core's own tests). The core's tests, the runtime's
//! unit tests, the benches and the fuzz targets share them.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};

use crate::flow::{Family, RelayId};
use crate::server::{BindError, RelayAt, RelayBinder, RelaySocket};

/// The IP address written in a test as `s`; panics on a typo.
pub fn ip(s: &str) -> IpAddr {
    s.parse()
        .unwrap_or_else(|e| panic!("test address {s:?}: {e}"))
}

/// A [`RelayBinder`] that hands out addresses without opening sockets and asserts the core's
/// bookkeeping: no relay id bound while it is open, none closed that is not open, and a
/// reserved port asked for only on an address this binder handed out.
#[derive(Debug, Clone)]
pub struct FakeBinder {
    /// The IPv4 relay address; `None` = no IPv4 relay (binds fail with `FamilyUnavailable`).
    pub relay_ip4: Option<IpAddr>,
    /// The IPv6 relay address; `None` = no IPv6 relay.
    pub relay_ip6: Option<IpAddr>,
    /// Relay sockets open now.
    pub open: HashMap<RelayId, SocketAddr>,
    /// Relay sockets closed, in order.
    pub closed: Vec<RelayId>,
    /// Ports "held by another process": binding them fails with `AddrInUse`.
    pub busy: HashSet<u16>,
    /// Every bind request, in order.
    pub requests: Vec<RelayAt>,
    handed_out: HashSet<IpAddr>,
}

impl Default for FakeBinder {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeBinder {
    /// Relays on 192.0.2.10 and 2001:db8::10 (documentation addresses), nothing busy.
    pub fn new() -> Self {
        FakeBinder {
            relay_ip4: Some(IpAddr::from([192, 0, 2, 10])),
            relay_ip6: Some(IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10])),
            open: HashMap::new(),
            closed: Vec::new(),
            busy: HashSet::new(),
            requests: Vec::new(),
            handed_out: HashSet::new(),
        }
    }
}

impl RelayBinder for FakeBinder {
    /// A TCP relay listener (RFC 6062) is bound like a UDP relay socket.
    fn bind(&mut self, socket: RelaySocket) -> Result<SocketAddr, BindError> {
        let RelaySocket {
            relay, at, port, ..
        } = socket;
        self.requests.push(at);
        if self.busy.contains(&port) {
            return Err(BindError::AddrInUse);
        }
        let ip = match at {
            RelayAt::Family(Family::V4) => self.relay_ip4,
            RelayAt::Family(Family::V6) => self.relay_ip6,
            RelayAt::Ip(ip) => {
                assert!(
                    self.handed_out.contains(&ip),
                    "asked for relay address {ip}, which this binder never handed out"
                );
                [self.relay_ip4, self.relay_ip6]
                    .into_iter()
                    .flatten()
                    .find(|own| *own == ip)
            }
        }
        .ok_or(BindError::FamilyUnavailable)?;
        let addr = SocketAddr::new(ip, port);
        assert!(
            self.open.insert(relay, addr).is_none(),
            "{relay} bound while open"
        );
        self.handed_out.insert(ip);
        Ok(addr)
    }

    fn close(&mut self, relay: RelayId) {
        assert!(
            self.open.remove(&relay).is_some(),
            "closing {relay}, which is not open"
        );
        self.closed.push(relay);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::RelayKind;

    const V4: RelayAt = RelayAt::Family(Family::V4);
    const V6: RelayAt = RelayAt::Family(Family::V6);

    /// A UDP relay socket `relay` on `port` at `at`.
    fn udp(relay: u32, at: RelayAt, port: u16) -> RelaySocket {
        let kind = RelayKind::Udp {
            dont_fragment: false,
        };
        RelaySocket::new(RelayId::new(relay), at, port, kind)
    }

    #[test]
    fn binds_closes_and_refuses_busy_ports_and_missing_families() {
        let mut b = FakeBinder::new();
        let r = RelayId::new(0);
        let addr = b.bind(udp(0, V4, 50000)).unwrap();
        assert_eq!(addr, "192.0.2.10:50000".parse().unwrap());
        b.busy.insert(50002);
        let busy = b.bind(udp(1, V4, 50002));
        assert_eq!(busy, Err(BindError::AddrInUse));
        b.relay_ip6 = None;
        let v6 = b.bind(udp(1, V6, 50004));
        assert_eq!(v6, Err(BindError::FamilyUnavailable));
        let again = b.bind(udp(1, RelayAt::Ip(addr.ip()), 50001));
        assert_eq!(again.unwrap().ip(), addr.ip());
        b.close(r);
        assert_eq!(b.closed, [r]);
        assert_eq!(b.open.len(), 1);
        assert_eq!(b.requests.len(), 4);
    }

    #[test]
    #[should_panic(expected = "bound while open")]
    fn binding_an_open_id_again_panics() {
        let mut b = FakeBinder::new();
        let _ = b.bind(udp(3, V4, 50000));
        let _ = b.bind(udp(3, V4, 50001));
    }

    #[test]
    #[should_panic(expected = "not open")]
    fn closing_what_is_not_open_panics() {
        FakeBinder::new().close(RelayId::new(9));
    }

    #[test]
    #[should_panic(expected = "never handed out")]
    fn a_reserved_address_must_be_one_handed_out() {
        let mut b = FakeBinder::new();
        let _ = b.bind(udp(0, RelayAt::Ip(IpAddr::from([192, 0, 2, 10])), 50001));
    }
}
