//! Batched UDP I/O: `recvmmsg` fills many datagram slots with one system call, and `sendmmsg`
//! sends many datagrams from one socket with one call. Per the perf notes this mostly buys
//! headroom before saturation rather than CPU per packet, at no cost when traffic is light
//! (a batch of one is an ordinary receive).

use std::io;
use std::mem::{self, MaybeUninit};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

use super::io_stats::IoStats;

/// Datagrams per system call.
pub const BATCH: usize = 32;

/// Room for one `SO_RXQ_OVFL` control message (a `cmsghdr` and a `u32`), 8-byte aligned.
type ControlBuf = [u64; 4];

/// Asks the kernel to report, with each datagram received, how many datagrams it has dropped
/// on this socket for lack of receive-queue room (`SO_RXQ_OVFL`).
pub fn enable_drop_counter(fd: RawFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: a valid option value of the size given.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RXQ_OVFL,
            (&on as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Turns the kernel's running drop count of one socket into increments.
#[derive(Debug, Default, Clone, Copy)]
pub struct DropMeter {
    last: u32,
}

impl DropMeter {
    /// Datagrams dropped since the previous reading, given the socket's running count.
    pub fn delta(&mut self, running: u32) -> u64 {
        let d = running.wrapping_sub(self.last);
        self.last = running;
        u64::from(d)
    }
}

/// Receive slots for one batch. Each slot holds `offset` bytes of headroom, the datagram, and
/// `tail` spare bytes, so the core can frame a peer payload in place.
pub struct RecvBatch {
    slots: Vec<u8>,
    slot_len: usize,
    lens: [usize; BATCH],
    truncated: [bool; BATCH],
    addrs: [libc::sockaddr_storage; BATCH],
    control: [ControlBuf; BATCH],
    dropped: Option<u32>,
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
            control: [[0; 4]; BATCH],
            dropped: None,
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
            hdrs[i].msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            hdrs[i].msg_hdr.msg_control = self.control[i].as_mut_ptr().cast();
            hdrs[i].msg_hdr.msg_controllen = size_of::<ControlBuf>() as _;
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
        self.dropped = None;
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
            if let Some(d) = drop_count(&hdr.msg_hdr) {
                self.dropped = Some(self.dropped.map_or(d, |p| p.max(d)));
            }
        }
        Ok(self.count)
    }

    /// The socket's running count of queue-overflow drops, as of the last batch (absent when
    /// the kernel has dropped nothing on it yet, or the option is off).
    pub fn dropped(&self) -> Option<u32> {
        self.dropped
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

    /// Where slot `i` starts in [`RecvBatch::all`].
    pub fn slot_offset(&self, i: usize) -> usize {
        i * self.slot_len
    }

    /// Every slot as one buffer; queued sends name their bytes by range in it.
    pub fn all(&self) -> &[u8] {
        &self.slots
    }
}

/// The running drop count carried by a received message's `SO_RXQ_OVFL` control message.
fn drop_count(hdr: &libc::msghdr) -> Option<u32> {
    // SAFETY: the kernel filled msg_control up to msg_controllen; the CMSG macros stay inside.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(hdr);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SO_RXQ_OVFL {
                let data = libc::CMSG_DATA(cmsg).cast::<u32>();
                return Some(data.read_unaligned());
            }
            cmsg = libc::CMSG_NXTHDR(hdr, cmsg);
        }
    }
    None
}

/// One datagram to send: `buf[start..end]` of the buffer the queue is flushed with, to `dest`.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing {
    /// First byte in the buffer.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
    /// Destination.
    pub dest: SocketAddr,
}

/// What became of a batch of sends.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SendOutcome {
    /// Datagrams the kernel took.
    pub sent: usize,
    /// Dropped because the send buffer was full (EAGAIN/ENOBUFS): packets, bytes.
    pub again: (u64, u64),
    /// Dropped for another error: packets, bytes.
    pub failed: (u64, u64),
}

impl SendOutcome {
    /// Adds the drops to the shard's counters.
    pub fn count(&self, stats: &IoStats) {
        if self.again.0 > 0 {
            stats.dropped_send_again.packets.add(self.again.0);
            stats.dropped_send_again.bytes.add(self.again.1);
        }
        if self.failed.0 > 0 {
            stats.dropped_send_error.packets.add(self.failed.0);
            stats.dropped_send_error.bytes.add(self.failed.1);
        }
    }
}

/// Sends `items` (ranges of `buf`) from `fd` with as few `sendmmsg` calls as the kernel allows.
/// A full send buffer drops the rest of the batch at once (retrying each would cost a system
/// call per datagram and fail the same way); another error drops only the datagram it concerns.
pub fn send_many(fd: RawFd, buf: &[u8], items: &[Outgoing]) -> SendOutcome {
    let mut outcome = SendOutcome::default();
    for chunk in items.chunks(BATCH) {
        let mut iovecs: [MaybeUninit<libc::iovec>; BATCH] = [MaybeUninit::uninit(); BATCH];
        // SAFETY: plain data, filled below.
        let mut addrs: [libc::sockaddr_storage; BATCH] = unsafe { mem::zeroed() };
        // SAFETY: plain data, filled below.
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { mem::zeroed() };
        for (i, item) in chunk.iter().enumerate() {
            let data = &buf[item.start..item.end];
            iovecs[i].write(libc::iovec {
                iov_base: data.as_ptr() as *mut _,
                iov_len: data.len(),
            });
            let len = std_to_sockaddr(&item.dest, &mut addrs[i]);
            hdrs[i].msg_hdr.msg_iov = iovecs[i].as_mut_ptr();
            hdrs[i].msg_hdr.msg_iovlen = 1;
            hdrs[i].msg_hdr.msg_name = (&mut addrs[i] as *mut libc::sockaddr_storage).cast();
            hdrs[i].msg_hdr.msg_namelen = len;
        }
        let bytes =
            |range: &[Outgoing]| -> u64 { range.iter().map(|o| (o.end - o.start) as u64).sum() };
        let mut next = 0;
        while next < chunk.len() {
            // SAFETY: the headers point at live buffers for the duration of the call.
            let n = unsafe {
                libc::sendmmsg(
                    fd,
                    hdrs[next..].as_mut_ptr(),
                    (chunk.len() - next) as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if n > 0 {
                outcome.sent += n as usize;
                next += n as usize;
                continue;
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => {}
                Some(libc::EAGAIN) | Some(libc::ENOBUFS) => {
                    let rest = &chunk[next..];
                    outcome.again.0 += rest.len() as u64;
                    outcome.again.1 += bytes(rest);
                    break;
                }
                _ => {
                    outcome.failed.0 += 1;
                    outcome.failed.1 += bytes(&chunk[next..next + 1]);
                    next += 1;
                }
            }
        }
    }
    outcome
}

/// Datagrams waiting to go out of one socket, naming ranges of a buffer given at flush time.
pub struct SendQueue {
    items: Vec<Outgoing>,
}

impl SendQueue {
    /// An empty queue that never reallocates below [`BATCH`] entries.
    pub fn new() -> Self {
        SendQueue {
            items: Vec::with_capacity(BATCH),
        }
    }

    /// Queues `buf[start..end]` for `dest`.
    pub fn push(&mut self, start: usize, end: usize, dest: SocketAddr) {
        self.items.push(Outgoing { start, end, dest });
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Sends everything queued from `fd`, taking the bytes from `buf`.
    pub fn flush(&mut self, fd: RawFd, buf: &[u8]) -> SendOutcome {
        let outcome = send_many(fd, buf, &self.items);
        self.items.clear();
        outcome
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
            size_of::<libc::sockaddr_in>() as libc::socklen_t
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
            size_of::<libc::sockaddr_in6>() as libc::socklen_t
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
        q.push(8, 18, tx.local_addr().unwrap());
        q.push(8, 12, tx.local_addr().unwrap());
        let outcome = q.flush(rx.as_raw_fd(), batch.all());
        assert_eq!(outcome.sent, 2);
        let mut buf = [0u8; 32];
        assert_eq!(tx.recv(&mut buf).unwrap(), 10);
        assert_eq!(tx.recv(&mut buf).unwrap(), 4);
        assert!(q.is_empty());
    }

    #[test]
    fn reports_queue_overflow_drops() {
        let rx = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
        rx.set_recv_buffer_size(4096).unwrap();
        rx.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
            .unwrap();
        rx.set_nonblocking(true).unwrap();
        let rx: UdpSocket = rx.into();
        enable_drop_counter(rx.as_raw_fd()).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        for _ in 0..500 {
            tx.send_to(&[1; 100], rx.local_addr().unwrap()).unwrap();
        }
        // Reading makes room; the next datagram carries the running drop count.
        let mut batch = RecvBatch::new(256);
        while batch.recv(rx.as_raw_fd(), 0, 0).unwrap() > 0 {}
        tx.send_to(&[2; 100], rx.local_addr().unwrap()).unwrap();
        assert_eq!(batch.recv(rx.as_raw_fd(), 0, 0).unwrap(), 1);
        let running = batch.dropped().expect("a drop count");
        assert!(
            running > 100,
            "a 4 KB queue cannot hold 500 datagrams: {running}"
        );
        let mut meter = DropMeter::default();
        assert_eq!(meter.delta(running), u64::from(running));
        assert_eq!(meter.delta(running), 0);
        assert_eq!(meter.delta(running.wrapping_add(3)), 3);
    }

    #[test]
    fn counts_refused_sends() {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let ok = s.local_addr().unwrap();
        let v6: SocketAddr = "[::1]:9".parse().unwrap();
        let buf = [0u8; 64];
        let items = [
            Outgoing {
                start: 0,
                end: 10,
                dest: ok,
            },
            Outgoing {
                start: 0,
                end: 20,
                dest: v6,
            },
            Outgoing {
                start: 0,
                end: 30,
                dest: ok,
            },
        ];
        let outcome = send_many(s.as_raw_fd(), &buf, &items);
        assert_eq!(outcome.sent, 2);
        assert_eq!(
            outcome.failed,
            (1, 20),
            "an IPv6 destination on an IPv4 socket"
        );
        assert_eq!(outcome.again, (0, 0));
        let stats = IoStats::default();
        outcome.count(&stats);
        assert_eq!(stats.dropped_send_error.packets.get(), 1);
        assert_eq!(stats.dropped_send_error.bytes.get(), 20);
    }
}
