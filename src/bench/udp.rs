//! Non-blocking UDP sockets for the generator, with recvmmsg/sendmmsg batching.

use std::io;
use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

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
    raw_addrs: Vec<libc::sockaddr_storage>,
}

impl Default for Batch {
    fn default() -> Self {
        // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
        let zero: libc::sockaddr_storage = unsafe { MaybeUninit::zeroed().assume_init() };
        Batch {
            data: vec![0; BATCH * MAX_DATAGRAM],
            lens: [0; BATCH],
            addrs: vec![SocketAddr::from(([0, 0, 0, 0], 0)); BATCH],
            raw_addrs: vec![zero; BATCH],
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

/// Receives up to `BATCH` datagrams (recvmmsg); 0 when nothing is waiting. A result below
/// `BATCH` means the queue was empty, so an edge-triggered socket need not be read again.
pub fn recv_batch(sock: &impl AsRawFd, batch: &mut Batch, with_addrs: bool) -> io::Result<usize> {
    let base = batch.data.as_mut_ptr();
    let mut iov: [libc::iovec; BATCH] = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; BATCH];
    // SAFETY: mmsghdr is plain old data; all-zero is a valid value.
    let mut msgs: [libc::mmsghdr; BATCH] = unsafe { MaybeUninit::zeroed().assume_init() };
    for i in 0..BATCH {
        // SAFETY: slot i lies within `data`, which holds BATCH * MAX_DATAGRAM bytes.
        iov[i].iov_base = unsafe { base.add(i * MAX_DATAGRAM) } as *mut libc::c_void;
        iov[i].iov_len = MAX_DATAGRAM;
        msgs[i].msg_hdr.msg_iov = &mut iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        if with_addrs {
            msgs[i].msg_hdr.msg_name = &mut batch.raw_addrs[i] as *mut _ as *mut libc::c_void;
            msgs[i].msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as u32;
        }
    }
    // SAFETY: every pointer in msgs points into buffers that outlive the call.
    let n = unsafe {
        libc::recvmmsg(
            sock.as_raw_fd(),
            msgs.as_mut_ptr(),
            BATCH as u32,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    if n < 0 {
        let e = io::Error::last_os_error();
        return match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
            // A peer's ICMP error surfaces here on connected sockets; skip it.
            io::ErrorKind::ConnectionRefused => Ok(0),
            _ => Err(e),
        };
    }
    let n = n as usize;
    for (i, msg) in msgs.iter().enumerate().take(n) {
        batch.lens[i] = msg.msg_len as usize;
        if with_addrs {
            batch.addrs[i] = from_storage(&batch.raw_addrs[i]).unwrap_or(batch.addrs[i]);
        }
    }
    Ok(n)
}

/// Sends datagrams `bufs[i]` (to `to[i]` when given, else on the connected socket) with
/// sendmmsg; returns how many the kernel took (those after a full buffer are not sent).
pub fn send_batch(sock: &impl AsRawFd, bufs: &[&[u8]], to: Option<&[SocketAddr]>) -> usize {
    let count = bufs.len().min(BATCH);
    let mut iov: [libc::iovec; BATCH] = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; BATCH];
    // SAFETY: mmsghdr is plain old data; all-zero is a valid value.
    let mut msgs: [libc::mmsghdr; BATCH] = unsafe { MaybeUninit::zeroed().assume_init() };
    let names: Vec<SockAddr> = to
        .map(|t| t.iter().take(count).map(|a| SockAddr::from(*a)).collect())
        .unwrap_or_default();
    for i in 0..count {
        iov[i].iov_base = bufs[i].as_ptr() as *mut libc::c_void;
        iov[i].iov_len = bufs[i].len();
        msgs[i].msg_hdr.msg_iov = &mut iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        if let Some(name) = names.get(i) {
            msgs[i].msg_hdr.msg_name = name.as_ptr() as *mut libc::c_void;
            msgs[i].msg_hdr.msg_namelen = name.len();
        }
    }
    let mut done = 0;
    while done < count {
        // SAFETY: the headers point at buffers and addresses that outlive the call.
        let n = unsafe {
            libc::sendmmsg(
                sock.as_raw_fd(),
                msgs[done..].as_mut_ptr(),
                (count - done) as u32,
                0,
            )
        };
        if n <= 0 {
            let e = io::Error::last_os_error();
            if n < 0 && e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            // A full buffer (EAGAIN) or an ICMP error from earlier: drop the rest of the batch.
            break;
        }
        done += n as usize;
    }
    done
}

fn from_storage(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match s.ss_family as i32 {
        libc::AF_INET => {
            // SAFETY: the family says this storage holds a sockaddr_in.
            let a: &libc::sockaddr_in = unsafe { &*(s as *const _ as *const libc::sockaddr_in) };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says this storage holds a sockaddr_in6.
            let a: &libc::sockaddr_in6 = unsafe { &*(s as *const _ as *const libc::sockaddr_in6) };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
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
