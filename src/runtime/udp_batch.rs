//! Batched UDP I/O: `recvmmsg` fills many datagram slots with one system call, and `sendmmsg`
//! sends many datagrams from one socket with one call. Per the perf notes this mostly buys
//! headroom before saturation rather than CPU per packet, at no cost when traffic is light
//! (a batch of one is an ordinary receive).

use std::io;
use std::mem::{self, MaybeUninit};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

/// Datagrams per system call.
pub const BATCH: usize = 32;

/// Receive slots for one batch. Each slot holds `offset` bytes of headroom, the datagram, and
/// `tail` spare bytes, so the core can frame a peer payload in place.
pub struct RecvBatch {
    slots: Vec<u8>,
    slot_len: usize,
    lens: [usize; BATCH],
    truncated: [bool; BATCH],
    addrs: [libc::sockaddr_storage; BATCH],
    count: usize,
}

impl RecvBatch {
    /// Slots of `slot_len` bytes each.
    pub fn new(slot_len: usize) -> Self {
        RecvBatch {
            slots: vec![0; slot_len * BATCH],
            slot_len,
            lens: [0; BATCH],
            truncated: [false; BATCH],
            // SAFETY: sockaddr_storage is plain data; all-zero is a valid value.
            addrs: unsafe { mem::zeroed() },
            count: 0,
        }
    }

    /// Receives up to [`BATCH`] datagrams into the slots at `offset`, leaving `tail` bytes free
    /// after the largest datagram a slot accepts. Returns how many arrived (0 = would block).
    pub fn recv(&mut self, fd: RawFd, offset: usize, tail: usize) -> io::Result<usize> {
        let capacity = self.slot_len - offset - tail;
        let mut iovecs: [MaybeUninit<libc::iovec>; BATCH] = [MaybeUninit::uninit(); BATCH];
        // SAFETY: mmsghdr is plain data; every field used is set below.
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { mem::zeroed() };
        let base = self.slots.as_mut_ptr();
        for i in 0..BATCH {
            // SAFETY: slot i starts at i * slot_len inside `slots`, and offset + capacity fits.
            let ptr = unsafe { base.add(i * self.slot_len + offset) };
            iovecs[i].write(libc::iovec {
                iov_base: ptr.cast(),
                iov_len: capacity,
            });
            hdrs[i].msg_hdr.msg_iov = iovecs[i].as_mut_ptr();
            hdrs[i].msg_hdr.msg_iovlen = 1;
            hdrs[i].msg_hdr.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            hdrs[i].msg_hdr.msg_namelen =
                mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        }
        // SAFETY: the headers point at live buffers owned by self for the duration of the call.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            self.count = 0;
            return if e.kind() == io::ErrorKind::WouldBlock {
                Ok(0)
            } else {
                Err(e)
            };
        }
        self.count = n as usize;
        for (i, hdr) in hdrs.iter().take(self.count).enumerate() {
            self.lens[i] = hdr.msg_len as usize;
            self.truncated[i] = hdr.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
        }
        Ok(self.count)
    }

    /// Length, sender and truncation flag of datagram `i` of the last batch.
    pub fn meta(&self, i: usize) -> (usize, Option<SocketAddr>, bool) {
        (
            self.lens[i],
            sockaddr_to_std(&self.addrs[i]),
            self.truncated[i],
        )
    }

    /// The whole slot `i` (headroom, datagram, tail).
    pub fn slot_mut(&mut self, i: usize) -> &mut [u8] {
        let start = i * self.slot_len;
        &mut self.slots[start..start + self.slot_len]
    }

    /// The whole slot `i`, read-only.
    pub fn slot(&self, i: usize) -> &[u8] {
        let start = i * self.slot_len;
        &self.slots[start..start + self.slot_len]
    }
}

/// Datagrams waiting to go out of one socket, pointing into a [`RecvBatch`]'s slots.
pub struct SendQueue {
    items: Vec<(usize, usize, usize, SocketAddr)>,
}

impl SendQueue {
    /// An empty queue that never reallocates below [`BATCH`] entries.
    pub fn new() -> Self {
        SendQueue {
            items: Vec::with_capacity(BATCH),
        }
    }

    /// Queues `slot[start..end]` for `dest`.
    pub fn push(&mut self, slot: usize, start: usize, end: usize, dest: SocketAddr) {
        self.items.push((slot, start, end, dest));
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Sends everything queued from `fd` with as few `sendmmsg` calls as possible. Datagrams
    /// the socket refuses (a full buffer) are dropped, as an ordinary send would drop them.
    pub fn flush(&mut self, fd: RawFd, batch: &RecvBatch) {
        for chunk in self.items.chunks(BATCH) {
            let mut iovecs: [MaybeUninit<libc::iovec>; BATCH] = [MaybeUninit::uninit(); BATCH];
            // SAFETY: plain data, filled below.
            let mut addrs: [libc::sockaddr_storage; BATCH] = unsafe { mem::zeroed() };
            // SAFETY: plain data, filled below.
            let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { mem::zeroed() };
            for (i, (slot, start, end, dest)) in chunk.iter().enumerate() {
                let data = &batch.slot(*slot)[*start..*end];
                iovecs[i].write(libc::iovec {
                    iov_base: data.as_ptr() as *mut _,
                    iov_len: data.len(),
                });
                let len = std_to_sockaddr(dest, &mut addrs[i]);
                hdrs[i].msg_hdr.msg_iov = iovecs[i].as_mut_ptr();
                hdrs[i].msg_hdr.msg_iovlen = 1;
                hdrs[i].msg_hdr.msg_name = (&mut addrs[i] as *mut libc::sockaddr_storage).cast();
                hdrs[i].msg_hdr.msg_namelen = len;
            }
            let mut sent = 0;
            while sent < chunk.len() {
                // SAFETY: the headers point at live buffers for the duration of the call.
                let n = unsafe {
                    libc::sendmmsg(
                        fd,
                        hdrs[sent..].as_mut_ptr(),
                        (chunk.len() - sent) as libc::c_uint,
                        libc::MSG_DONTWAIT,
                    )
                };
                if n <= 0 {
                    // Skip the datagram the kernel refused and carry on with the rest.
                    sent += 1;
                } else {
                    sent += n as usize;
                }
            }
        }
        self.items.clear();
    }
}

impl Default for SendQueue {
    fn default() -> Self {
        Self::new()
    }
}

fn sockaddr_to_std(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says this storage holds a sockaddr_in.
            let a: &libc::sockaddr_in =
                unsafe { &*(storage as *const _ as *const libc::sockaddr_in) };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says this storage holds a sockaddr_in6.
            let a: &libc::sockaddr_in6 =
                unsafe { &*(storage as *const _ as *const libc::sockaddr_in6) };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

fn std_to_sockaddr(addr: &SocketAddr, storage: &mut libc::sockaddr_storage) -> libc::socklen_t {
    match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large enough and suitably aligned for sockaddr_in.
            let out: &mut libc::sockaddr_in =
                unsafe { &mut *(storage as *mut _ as *mut libc::sockaddr_in) };
            out.sin_family = libc::AF_INET as libc::sa_family_t;
            out.sin_port = a.port().to_be();
            out.sin_addr = libc::in_addr {
                s_addr: u32::from(*a.ip()).to_be(),
            };
            mem::size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(a) => {
            // SAFETY: sockaddr_storage is large enough and suitably aligned for sockaddr_in6.
            let out: &mut libc::sockaddr_in6 =
                unsafe { &mut *(storage as *mut _ as *mut libc::sockaddr_in6) };
            out.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            out.sin6_port = a.port().to_be();
            out.sin6_flowinfo = a.flowinfo();
            out.sin6_addr = libc::in6_addr {
                s6_addr: a.ip().octets(),
            };
            out.sin6_scope_id = a.scope_id();
            mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    #[test]
    fn receives_and_sends_batches_on_loopback() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_nonblocking(true).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        for i in 0..40u8 {
            tx.send_to(&[i; 10], rx.local_addr().unwrap()).unwrap();
        }
        let mut batch = RecvBatch::new(64);
        let mut got = Vec::new();
        for _ in 0..10 {
            let n = batch.recv(rx.as_raw_fd(), 8, 4).unwrap();
            for i in 0..n {
                let (len, from, truncated) = batch.meta(i);
                assert_eq!(
                    (len, from, truncated),
                    (10, Some(tx.local_addr().unwrap()), false)
                );
                got.push(batch.slot(i)[8]);
            }
            if got.len() == 40 {
                break;
            }
        }
        assert_eq!(got, (0..40).collect::<Vec<u8>>());

        // Echo two of the received slots back with sendmmsg.
        tx.send_to(&[7; 10], rx.local_addr().unwrap()).unwrap();
        tx.send_to(&[9; 60], rx.local_addr().unwrap()).unwrap();
        let n = batch.recv(rx.as_raw_fd(), 8, 4).unwrap();
        assert_eq!(n, 2);
        assert!(batch.meta(1).2, "60 bytes do not fit 52: truncated");
        let mut q = SendQueue::new();
        q.push(0, 8, 18, tx.local_addr().unwrap());
        q.push(0, 8, 12, tx.local_addr().unwrap());
        q.flush(rx.as_raw_fd(), &batch);
        let mut buf = [0u8; 32];
        assert_eq!(tx.recv(&mut buf).unwrap(), 10);
        assert_eq!(tx.recv(&mut buf).unwrap(), 4);
        assert!(q.is_empty());
    }
}
