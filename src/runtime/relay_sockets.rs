//! The relay sockets of one shard, opened and closed on the core's request.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;

use mio::net::{TcpListener, UdpSocket};
use mio::{Interest, Registry, Token};

use super::sockets::{bind_udp, listen_tcp_relay, set_dont_fragment};
use super::udp_batch::{enable_drop_counter, DropMeter};
use crate::proto::flow::{Family, RelayId};
use crate::proto::server::{BindError, RelayAt, RelayBinder, RelayKind, RelaySocket};

/// Mio tokens of TCP relay listeners (RFC 6062) start here: `TCP_LISTENER_TOKEN + relay`.
/// UDP relay sockets use the relay's number itself, below it.
pub const TCP_LISTENER_TOKEN: usize = 1 << 27;
/// Pending connections a TCP relay listener's kernel queue holds.
const TCP_RELAY_BACKLOG: i32 = 16;

/// Relay sockets indexed by the core's [`RelayId`], registered under [`relay_token`] (UDP) or
/// `TCP_LISTENER_TOKEN + relay` (TCP relay listeners).
pub struct RelaySockets {
    registry: Registry,
    addresses: RoundRobin,
    buffer: Option<usize>,
    sockets: Vec<Option<UdpSocket>>,
    drops: Vec<DropMeter>,
    tcp: Vec<Option<TcpListener>>,
}

/// The event-loop token of relay socket `relay`. Relay sockets take the bottom of a shard's
/// token space, below every other kind of socket (see `shard.rs`), so the token is the id's
/// number.
pub fn relay_token(relay: RelayId) -> Token {
    Token(relay.index())
}

/// The relay socket a token below the shard's other token ranges stands for.
pub fn relay_of_token(token: Token) -> RelayId {
    RelayId::new(token.0 as u32)
}

/// The relay addresses of each family, handed out in turn: with several addresses per family,
/// consecutive allocations of a shard go to the next address (as coturn does).
#[derive(Debug, Clone, Default)]
pub struct RoundRobin {
    v4: Vec<IpAddr>,
    v6: Vec<IpAddr>,
    next: [usize; 2],
}

impl RoundRobin {
    /// Rotates over `addresses`, split by family.
    pub fn new(addresses: &[IpAddr]) -> Self {
        RoundRobin {
            v4: addresses.iter().copied().filter(IpAddr::is_ipv4).collect(),
            v6: addresses.iter().copied().filter(IpAddr::is_ipv6).collect(),
            next: [0, 0],
        }
    }

    /// The address for the next socket at `at`; `None` when no relay address fits.
    pub fn pick(&mut self, at: RelayAt) -> Option<IpAddr> {
        let (list, next) = match at {
            RelayAt::Ip(ip) => {
                let own = if ip.is_ipv4() { &self.v4 } else { &self.v6 };
                return own.contains(&ip).then_some(ip);
            }
            RelayAt::Family(Family::V4) => (&self.v4, &mut self.next[0]),
            RelayAt::Family(Family::V6) => (&self.v6, &mut self.next[1]),
        };
        let ip = *list.get(*next % list.len().max(1))?;
        *next = next.wrapping_add(1);
        Some(ip)
    }
}

impl RelaySockets {
    /// Relay sockets bound on `addresses` (in turn per family), registered with `registry`.
    pub fn new(registry: Registry, addresses: &[IpAddr], buffer: Option<usize>) -> Self {
        RelaySockets {
            registry,
            addresses: RoundRobin::new(addresses),
            buffer,
            sockets: Vec::new(),
            drops: Vec::new(),
            tcp: Vec::new(),
        }
    }

    /// The TCP relay listener of allocation `relay` (RFC 6062).
    pub fn tcp_listener(&self, relay: RelayId) -> Option<&TcpListener> {
        self.tcp.get(relay.index()).and_then(Option::as_ref)
    }

    fn open_tcp(&mut self, relay: RelayId, addr: SocketAddr) -> io::Result<SocketAddr> {
        let mut listener = TcpListener::from_std(listen_tcp_relay(addr, TCP_RELAY_BACKLOG)?);
        let local = listener.local_addr()?;
        self.registry.register(
            &mut listener,
            Token(TCP_LISTENER_TOKEN + relay.index()),
            Interest::READABLE,
        )?;
        let index = relay.index();
        if self.tcp.len() <= index {
            self.tcp.resize_with(index + 1, || None);
        }
        self.tcp[index] = Some(listener);
        Ok(local)
    }

    /// The socket of allocation `relay`.
    pub fn get(&self, relay: RelayId) -> Option<&UdpSocket> {
        self.sockets.get(relay.index()).and_then(Option::as_ref)
    }

    /// Datagrams the kernel dropped on relay `relay`'s full queue since the last call, given
    /// the running count a receive reported.
    pub fn queue_drops(&mut self, relay: RelayId, running: u32) -> u64 {
        self.drops
            .get_mut(relay.index())
            .map_or(0, |m| m.delta(running))
    }

    /// The next relay address at `at` (addresses of a family take turns), on `port`.
    fn relay_address(&mut self, at: RelayAt, port: u16) -> Result<SocketAddr, BindError> {
        let ip = self
            .addresses
            .pick(at)
            .ok_or(BindError::FamilyUnavailable)?;
        Ok(SocketAddr::new(ip, port))
    }

    fn open(
        &mut self,
        relay: RelayId,
        addr: SocketAddr,
        dont_fragment: bool,
    ) -> io::Result<SocketAddr> {
        let (std_socket, _) = bind_udp(addr, false, self.buffer)?;
        if dont_fragment {
            set_dont_fragment(&std_socket, addr.is_ipv6())?;
        }
        // Without it, overload drops at this socket's queue would go uncounted.
        if let Err(e) = enable_drop_counter(std_socket.as_raw_fd()) {
            tracing::debug!(error = %e, "SO_RXQ_OVFL unavailable on a relay socket");
        }
        let mut socket = UdpSocket::from_std(std_socket);
        let local = socket.local_addr()?;
        self.registry
            .register(&mut socket, relay_token(relay), Interest::READABLE)?;
        let index = relay.index();
        if self.sockets.len() <= index {
            self.sockets.resize_with(index + 1, || None);
            self.drops.resize_with(index + 1, DropMeter::default);
        }
        self.sockets[index] = Some(socket);
        self.drops[index] = DropMeter::default();
        Ok(local)
    }
}

impl RelayBinder for RelaySockets {
    fn bind(&mut self, socket: RelaySocket) -> Result<SocketAddr, BindError> {
        let RelaySocket {
            relay,
            at,
            port,
            kind,
        } = socket;
        let addr = self.relay_address(at, port)?;
        match kind {
            RelayKind::Udp { dont_fragment } => self
                .open(relay, addr, dont_fragment)
                .map_err(|e| bind_error(&e, addr, "relay socket")),
            RelayKind::Tcp => {
                if TCP_LISTENER_TOKEN + relay.index() >= super::tcp_relay::PAIR_TOKEN {
                    return Err(BindError::Failed);
                }
                self.open_tcp(relay, addr)
                    .map_err(|e| bind_error(&e, addr, "TCP relay listener"))
            }
        }
    }

    fn close(&mut self, relay: RelayId) {
        if let Some(mut socket) = self.sockets.get_mut(relay.index()).and_then(Option::take) {
            let _ = self.registry.deregister(&mut socket);
        }
        if let Some(mut listener) = self.tcp.get_mut(relay.index()).and_then(Option::take) {
            let _ = self.registry.deregister(&mut listener);
        }
    }
}

/// What the core learns of a failed bind of `what` at `addr`: a port in use lets it try
/// another; anything else is logged here.
fn bind_error(e: &io::Error, addr: SocketAddr, what: &str) -> BindError {
    if e.kind() == io::ErrorKind::AddrInUse {
        return BindError::AddrInUse;
    }
    tracing::warn!(error = %e, %addr, "cannot open {what}");
    BindError::Failed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::testing::ip;

    #[test]
    fn addresses_of_a_family_take_turns() {
        let mut rr = RoundRobin::new(&[ip("192.0.2.1"), ip("2001:db8::1"), ip("192.0.2.2")]);
        let v4: Vec<_> = (0..4)
            .map(|_| rr.pick(RelayAt::Family(Family::V4)).unwrap())
            .collect();
        assert_eq!(
            v4,
            [
                ip("192.0.2.1"),
                ip("192.0.2.2"),
                ip("192.0.2.1"),
                ip("192.0.2.2")
            ]
        );
        assert_eq!(
            rr.pick(RelayAt::Family(Family::V6)),
            Some(ip("2001:db8::1"))
        );
        assert_eq!(
            rr.pick(RelayAt::Family(Family::V6)),
            Some(ip("2001:db8::1"))
        );
    }

    #[test]
    fn an_exact_address_must_be_a_relay_address() {
        let mut rr = RoundRobin::new(&[ip("192.0.2.1"), ip("192.0.2.2")]);
        assert_eq!(rr.pick(RelayAt::Ip(ip("192.0.2.2"))), Some(ip("192.0.2.2")));
        assert_eq!(rr.pick(RelayAt::Ip(ip("192.0.2.9"))), None);
        // An exact pick does not move the rotation.
        assert_eq!(rr.pick(RelayAt::Family(Family::V4)), Some(ip("192.0.2.1")));
    }

    #[test]
    fn a_missing_family_is_unavailable() {
        let mut rr = RoundRobin::new(&[ip("192.0.2.1")]);
        assert_eq!(rr.pick(RelayAt::Family(Family::V6)), None);
        assert_eq!(RoundRobin::new(&[]).pick(RelayAt::Family(Family::V4)), None);
    }
}
