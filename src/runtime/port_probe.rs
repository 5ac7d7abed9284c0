//! Finding out, before the shards bind, whether another process already holds a listening port.
//!
//! Every shard binds its listening sockets with SO_REUSEPORT. The kernel lets any other socket
//! of the same user with SO_REUSEPORT join that port (a coturn left running during a migration,
//! a second ferroturn), and then splits the clients between the two servers without a word. A
//! bind *without* SO_REUSEPORT fails on a port anyone holds, so a throw-away probe socket tells.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

/// The transport of a probed port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeProto {
    /// UDP.
    Udp,
    /// TCP (plain or TLS).
    Tcp,
}

/// `Ok(true)` when another socket holds `addr` for `proto`; other bind errors are returned so
/// the real bind can report them.
pub fn held_by_another(addr: SocketAddr, proto: ProbeProto) -> io::Result<bool> {
    let (kind, protocol) = match proto {
        ProbeProto::Udp => (Type::DGRAM, Protocol::UDP),
        ProbeProto::Tcp => (Type::STREAM, Protocol::TCP),
    };
    let socket = Socket::new(Domain::for_address(addr), kind, Some(protocol))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    if proto == ProbeProto::Tcp {
        // Connections of a previous run in TIME_WAIT must not count; a listener still does.
        socket.set_reuse_address(true)?;
    }
    match socket.bind(&addr.into()) {
        Ok(()) => Ok(false),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => Ok(true),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reuseport_udp() -> (Socket, SocketAddr) {
        let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
        s.set_reuse_port(true).unwrap();
        s.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
            .unwrap();
        let addr = s.local_addr().unwrap().as_socket().unwrap();
        (s, addr)
    }

    #[test]
    fn a_port_held_with_so_reuseport_is_seen() {
        let (holder, addr) = reuseport_udp();
        assert!(held_by_another(addr, ProbeProto::Udp).unwrap());
        drop(holder);
        assert!(!held_by_another(addr, ProbeProto::Udp).unwrap());
    }

    #[test]
    fn a_tcp_listener_is_seen_and_a_free_port_is_not() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        assert!(held_by_another(addr, ProbeProto::Tcp).unwrap());
        drop(listener);
        assert!(!held_by_another(addr, ProbeProto::Tcp).unwrap());
    }

    #[test]
    fn other_bind_errors_are_returned() {
        // 192.0.2.1 (TEST-NET-1) is not an address of this host.
        let addr: SocketAddr = "192.0.2.1:3478".parse().unwrap();
        assert!(held_by_another(addr, ProbeProto::Udp).is_err());
    }
}
