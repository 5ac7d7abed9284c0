//! The relay sockets of one shard, opened and closed on the core's request.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;

use mio::net::UdpSocket;
use mio::{Interest, Registry, Token};

use super::sockets::{bind_udp, set_dont_fragment};
use super::udp_batch::{enable_drop_counter, DropMeter};
use crate::proto::flow::Family;
use crate::proto::server::{BindError, RelayBinder};

/// Relay sockets indexed by the core's allocation slot; the slot is also the mio token.
pub struct RelaySockets {
    registry: Registry,
    v4: Option<IpAddr>,
    v6: Option<IpAddr>,
    buffer: Option<usize>,
    sockets: Vec<Option<UdpSocket>>,
    drops: Vec<DropMeter>,
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
            drops: Vec::new(),
        }
    }

    /// The socket of allocation `relay`.
    pub fn get(&self, relay: u32) -> Option<&UdpSocket> {
        self.sockets.get(relay as usize).and_then(Option::as_ref)
    }

    /// Datagrams the kernel dropped on relay `relay`'s full queue since the last call, given
    /// the running count a receive reported.
    pub fn queue_drops(&mut self, relay: u32, running: u32) -> u64 {
        self.drops
            .get_mut(relay as usize)
            .map_or(0, |m| m.delta(running))
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
        // Without it, overload drops at this socket's queue would go uncounted.
        if let Err(e) = enable_drop_counter(std_socket.as_raw_fd()) {
            tracing::debug!(error = %e, "SO_RXQ_OVFL unavailable on a relay socket");
        }
        let mut socket = UdpSocket::from_std(std_socket);
        let local = socket.local_addr()?;
        self.registry
            .register(&mut socket, Token(relay as usize), Interest::READABLE)?;
        let index = relay as usize;
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
