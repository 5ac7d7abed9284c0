//! Non-blocking UDP sockets for the generator, with recvmmsg/sendmmsg batching.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;

use socket2::{Domain, Protocol, Socket, Type};

use crate::runtime::mmsg::{self, Received, Slots};

/// Datagrams moved per recvmmsg/sendmmsg call.
pub const BATCH: usize = 64;
/// Largest datagram handled.
pub const MAX_DATAGRAM: usize = 2048;

/// Opens a non-blocking UDP socket bound to `local` (port 0 for any), optionally connected to
/// `remote`, with `buf` bytes of kernel buffer asked for in each direction.
pub fn open(
    local: SocketAddr,
    remote: Option<SocketAddr>,
    buf: Option<usize>,
) -> io::Result<mio::net::UdpSocket> {
    let s = Socket::new(Domain::for_address(local), Type::DGRAM, Some(Protocol::UDP))?;
    if let Some(b) = buf {
        // The kernel caps these at net.core.{r,w}mem_max; a smaller grant is not an error.
        let _ = s.set_recv_buffer_size(b);
        let _ = s.set_send_buffer_size(b);
    }
    s.set_nonblocking(true)?;
    s.bind(&local.into())?;
    if let Some(r) = remote {
        s.connect(&r.into())?;
    }
    Ok(mio::net::UdpSocket::from_std(s.into()))
}

/// The local address (port 0) the load binds to: loopback for a loopback server, otherwise
/// the address this host sends from towards `server` (a server in another network namespace
/// then sees clients and peers on the generator's side of the link).
pub fn local_for(server: SocketAddr) -> SocketAddr {
    if server.ip().is_loopback() {
        return loopback_like(server);
    }
    let any: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    // connect() on UDP sends nothing: it only asks the kernel for the route and source.
    std::net::UdpSocket::bind(any)
        .and_then(|probe| {
            probe.connect(server)?;
            probe.local_addr()
        })
        .map(|a| SocketAddr::new(a.ip(), 0))
        .unwrap_or_else(|_| loopback_like(server))
}

/// The loopback address of `server`'s family, port 0.
pub fn loopback_like(server: SocketAddr) -> SocketAddr {
    match server {
        SocketAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
        SocketAddr::V6(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 0),
    }
}

/// Buffers for one batch of datagrams.
pub struct Batch {
    /// Datagram bytes, one `MAX_DATAGRAM` slot each.
    pub data: Vec<u8>,
    /// Lengths of the datagrams received (or to send).
    pub lens: [usize; BATCH],
    /// Source addresses of the datagrams received.
    pub addrs: Vec<SocketAddr>,
    received: [Received; BATCH],
}

impl Default for Batch {
    fn default() -> Self {
        Batch {
            data: vec![0; BATCH * MAX_DATAGRAM],
            lens: [0; BATCH],
            addrs: vec![SocketAddr::from(([0, 0, 0, 0], 0)); BATCH],
            received: [Received::default(); BATCH],
        }
    }
}

impl Batch {
    /// Slot `i` of the buffer.
    pub fn slot(&mut self, i: usize) -> &mut [u8] {
        &mut self.data[i * MAX_DATAGRAM..(i + 1) * MAX_DATAGRAM]
    }

    /// The datagram received in slot `i`.
    pub fn datagram(&self, i: usize) -> &[u8] {
        &self.data[i * MAX_DATAGRAM..i * MAX_DATAGRAM + self.lens[i]]
    }
}

/// Receives up to `BATCH` datagrams (recvmmsg, through the relay's own
/// [`mmsg`] layer); 0 when nothing is waiting. A result below `BATCH`
/// means the queue was empty, so an edge-triggered socket need not be read again.
pub fn recv_batch(sock: &impl AsRawFd, batch: &mut Batch, with_addrs: bool) -> io::Result<usize> {
    let slots = Slots {
        slot_len: MAX_DATAGRAM,
        offset: 0,
        capacity: MAX_DATAGRAM,
    };
    let n = match mmsg::recv(
        sock.as_raw_fd(),
        &mut batch.data,
        slots,
        with_addrs,
        &mut batch.received,
    ) {
        Ok(n) => n,
        Err(e) => {
            return match e.kind() {
                io::ErrorKind::Interrupted => Ok(0),
                // A peer's ICMP error surfaces here on connected sockets; skip it.
                io::ErrorKind::ConnectionRefused => Ok(0),
                _ => Err(e),
            };
        }
    };
    for (i, r) in batch.received[..n].iter().enumerate() {
        batch.lens[i] = r.len;
        if let Some(from) = r.from {
            batch.addrs[i] = from;
        }
    }
    Ok(n)
}

/// Sends datagrams `bufs[i]` (to `to[i]` when given, else on the connected socket) with
/// sendmmsg; returns how many the kernel took (a full buffer drops the rest of the batch).
pub fn send_batch(sock: &impl AsRawFd, bufs: &[&[u8]], to: Option<&[SocketAddr]>) -> usize {
    let count = bufs.len().min(BATCH);
    mmsg::send(sock.as_raw_fd(), count, |i| {
        (bufs[i], to.and_then(|t| t.get(i)))
    })
    .sent
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_round_trip_on_loopback() {
        let a = open("127.0.0.1:0".parse().unwrap(), None, None).unwrap();
        let a_addr = a.local_addr().unwrap();
        let b = open("127.0.0.1:0".parse().unwrap(), Some(a_addr), None).unwrap();
        let b_addr = b.local_addr().unwrap();
        let msgs: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 10 + i as usize]).collect();
        let refs: Vec<&[u8]> = msgs.iter().map(|m| &m[..]).collect();
        assert_eq!(send_batch(&b, &refs, None), 5);
        let mut batch = Batch::default();
        let mut got = 0;
        for _ in 0..100 {
            got += recv_batch(&a, &mut batch, true).unwrap();
            if got == 5 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(got, 5);
        assert_eq!(batch.addrs[0], b_addr);
        // Echo back with explicit destinations.
        let echo: Vec<&[u8]> = (0..5).map(|i| batch.datagram(i)).collect();
        let to = vec![b_addr; 5];
        assert_eq!(send_batch(&a, &echo, Some(&to)), 5);
    }
}
