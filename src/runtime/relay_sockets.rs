//! The relay sockets of one shard, opened and closed on the core's request.

use std::io;
use std::net::{IpAddr, SocketAddr};

use mio::net::UdpSocket;
use mio::{Interest, Registry, Token};

use super::sockets::{bind_udp, set_dont_fragment};
use crate::proto::flow::Family;
use crate::proto::server::{BindError, RelayBinder};

/// Relay sockets indexed by the core's allocation slot; the slot is also the mio token.
pub struct RelaySockets {
    registry: Registry,
    v4: Option<IpAddr>,
    v6: Option<IpAddr>,
    buffer: Option<usize>,
    sockets: Vec<Option<UdpSocket>>,
}

impl RelaySockets {
    /// Relay sockets bound on `v4`/`v6`, registered with `registry`.
    pub fn new(
        registry: Registry,
        v4: Option<IpAddr>,
        v6: Option<IpAddr>,
        buffer: Option<usize>,
    ) -> Self {
        RelaySockets {
            registry,
            v4,
            v6,
            buffer,
            sockets: Vec::new(),
        }
    }

    /// The socket of allocation `relay`.
    pub fn get(&self, relay: u32) -> Option<&UdpSocket> {
        self.sockets.get(relay as usize).and_then(Option::as_ref)
    }

    fn open(
        &mut self,
        relay: u32,
        addr: SocketAddr,
        dont_fragment: bool,
    ) -> io::Result<SocketAddr> {
        let (std_socket, _) = bind_udp(addr, false, self.buffer)?;
        if dont_fragment {
            set_dont_fragment(&std_socket, addr.is_ipv6())?;
        }
        let mut socket = UdpSocket::from_std(std_socket);
        let local = socket.local_addr()?;
        self.registry
            .register(&mut socket, Token(relay as usize), Interest::READABLE)?;
        let index = relay as usize;
        if self.sockets.len() <= index {
            self.sockets.resize_with(index + 1, || None);
        }
        self.sockets[index] = Some(socket);
        Ok(local)
    }
}

impl RelayBinder for RelaySockets {
    fn bind(
        &mut self,
        relay: u32,
        family: Family,
        port: u16,
        dont_fragment: bool,
    ) -> Result<SocketAddr, BindError> {
        let ip = match family {
            Family::V4 => self.v4,
            Family::V6 => self.v6,
        }
        .ok_or(BindError::FamilyUnavailable)?;
        self.open(relay, SocketAddr::new(ip, port), dont_fragment)
            .map_err(|e| match e.kind() {
                io::ErrorKind::AddrInUse => BindError::AddrInUse,
                _ => {
                    tracing::warn!(error = %e, %ip, port, "cannot open relay socket");
                    BindError::Failed
                }
            })
    }

    fn close(&mut self, relay: u32) {
        if let Some(mut socket) = self.sockets.get_mut(relay as usize).and_then(Option::take) {
            let _ = self.registry.deregister(&mut socket);
        }
    }
}
