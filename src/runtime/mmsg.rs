//! The one place that calls `recvmmsg` and `sendmmsg`: the relay's batches
//! ([`udp_batch`](super::udp_batch)) and the load tool's ([`crate::bench::udp`]) both go through
//! here, each with its own buffers and slot layout.

use std::io;
use std::mem::{self, MaybeUninit};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

/// Most datagrams one call moves.
pub const MAX_BATCH: usize = 64;

/// Room for one `SO_RXQ_OVFL` control message (a `cmsghdr` and a `u32`), 8-byte aligned.
type ControlBuf = [u64; 4];

/// Where a receive puts datagram `i`: `buf[i * slot_len + offset..][..capacity]`.
#[derive(Debug, Clone, Copy)]
pub struct Slots {
    /// Bytes from one slot's start to the next's.
    pub slot_len: usize,
    /// Bytes left free before each datagram (headroom).
    pub offset: usize,
    /// Largest datagram a slot takes; longer ones are truncated (and say so).
    pub capacity: usize,
}

/// What came with one received datagram.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Received {
    /// Its length (of what fitted, when truncated).
    pub len: usize,
    /// The sender, when asked for.
    pub from: Option<SocketAddr>,
    /// It was longer than the slot's capacity.
    pub truncated: bool,
    /// The socket's running count of queue-overflow drops (`SO_RXQ_OVFL`), when it reported one.
    pub dropped: Option<u32>,
}

/// Receives up to `out.len()` (at most [`MAX_BATCH`]) datagrams from `fd` with one
/// non-blocking `recvmmsg` into `buf` laid out as `slots`, with their senders when `with_from`.
/// Returns how many arrived; 0 when nothing was waiting. Other errors (`EINTR`, an ICMP error
/// reported on the socket) are returned for the caller to judge.
pub fn recv(
    fd: RawFd,
    buf: &mut [u8],
    slots: Slots,
    with_from: bool,
    out: &mut [Received],
) -> io::Result<usize> {
    let count = out.len().min(MAX_BATCH);
    assert!(
        count == 0 || (count - 1) * slots.slot_len + slots.offset + slots.capacity <= buf.len(),
        "receive slots overrun the buffer"
    );
    // Only the first `count` entries are set up (and handed to the kernel): most calls move one
    // datagram, and clearing all 64 headers and addresses cost more than the rest of the call's
    // user-space work.
    let mut iovecs: [MaybeUninit<libc::iovec>; MAX_BATCH] = [MaybeUninit::uninit(); MAX_BATCH];
    let mut hdrs: [MaybeUninit<libc::mmsghdr>; MAX_BATCH] = [MaybeUninit::uninit(); MAX_BATCH];
    let mut addrs: [MaybeUninit<libc::sockaddr_storage>; MAX_BATCH] =
        [MaybeUninit::uninit(); MAX_BATCH];
    let mut control: [MaybeUninit<ControlBuf>; MAX_BATCH] = [MaybeUninit::uninit(); MAX_BATCH];
    let base = buf.as_mut_ptr();
    for i in 0..count {
        // SAFETY: checked above: slot i's datagram area lies inside `buf`.
        let ptr = unsafe { base.add(i * slots.slot_len + slots.offset) };
        let iov = iovecs[i].write(libc::iovec {
            iov_base: ptr.cast(),
            iov_len: slots.capacity,
        });
        // SAFETY: plain data; all-zero is a valid value.
        let h = &mut hdrs[i].write(unsafe { mem::zeroed() }).msg_hdr;
        h.msg_iov = iov;
        h.msg_iovlen = 1;
        if with_from {
            // SAFETY: plain data; all-zero is a valid value.
            let addr = addrs[i].write(unsafe { mem::zeroed() });
            h.msg_name = (addr as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        }
        h.msg_control = control[i].write([0; 4]).as_mut_ptr().cast();
        h.msg_controllen = size_of::<ControlBuf>() as _;
    }
    // SAFETY: the first `count` headers are initialised and point at buffers that live for the
    // duration of the call.
    let n = unsafe {
        libc::recvmmsg(
            fd,
            hdrs.as_mut_ptr().cast::<libc::mmsghdr>(),
            count as libc::c_uint,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    if n < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::WouldBlock {
            Ok(0)
        } else {
            Err(e)
        };
    }
    let n = (n as usize).min(count);
    for (i, hdr) in hdrs.iter().take(n).enumerate() {
        // SAFETY: entries below `count` were initialised above (and filled by the kernel).
        let hdr = unsafe { hdr.assume_init_ref() };
        out[i] = Received {
            len: hdr.msg_len as usize,
            from: if with_from {
                // SAFETY: initialised above when `with_from`.
                sockaddr_to_std(unsafe { addrs[i].assume_init_ref() })
            } else {
                None
            },
            truncated: hdr.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
            dropped: drop_count(&hdr.msg_hdr),
        };
    }
    Ok(n)
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

/// Sends datagrams `0..count`, datagram `i` being `item(i)` (its bytes, and its destination, or
/// `None` on a connected socket), from `fd` with as few `sendmmsg` calls as the kernel allows.
/// A full send buffer drops the rest of the batch at once (retrying each would cost a system
/// call per datagram and fail the same way); another error drops only the datagram it concerns.
pub fn send<'a>(
    fd: RawFd,
    count: usize,
    item: impl Fn(usize) -> (&'a [u8], Option<&'a SocketAddr>),
) -> SendOutcome {
    let mut outcome = SendOutcome::default();
    let mut first = 0;
    while first < count {
        let chunk = (count - first).min(MAX_BATCH);
        // As in `recv`: only the entries of this chunk are set up.
        let mut iovecs: [MaybeUninit<libc::iovec>; MAX_BATCH] = [MaybeUninit::uninit(); MAX_BATCH];
        let mut addrs: [MaybeUninit<libc::sockaddr_storage>; MAX_BATCH] =
            [MaybeUninit::uninit(); MAX_BATCH];
        let mut hdrs: [MaybeUninit<libc::mmsghdr>; MAX_BATCH] = [MaybeUninit::uninit(); MAX_BATCH];
        let mut lens = [0u64; MAX_BATCH];
        for i in 0..chunk {
            let (data, dest) = item(first + i);
            lens[i] = data.len() as u64;
            let iov = iovecs[i].write(libc::iovec {
                iov_base: data.as_ptr() as *mut _,
                iov_len: data.len(),
            });
            // SAFETY: plain data; all-zero is a valid value.
            let h = &mut hdrs[i].write(unsafe { mem::zeroed() }).msg_hdr;
            h.msg_iov = iov;
            h.msg_iovlen = 1;
            if let Some(dest) = dest {
                // SAFETY: plain data; all-zero is a valid value (std_to_sockaddr relies on the
                // zeroed padding).
                let addr = addrs[i].write(unsafe { mem::zeroed() });
                h.msg_namelen = std_to_sockaddr(dest, addr);
                h.msg_name = (addr as *mut libc::sockaddr_storage).cast();
            }
        }
        let mut next = 0;
        while next < chunk {
            // SAFETY: headers `next..chunk` are initialised and point at live buffers for the
            // duration of the call.
            let n = unsafe {
                libc::sendmmsg(
                    fd,
                    hdrs[next..].as_mut_ptr().cast::<libc::mmsghdr>(),
                    (chunk - next) as libc::c_uint,
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
                    outcome.again.0 += (chunk - next) as u64;
                    outcome.again.1 += lens[next..chunk].iter().sum::<u64>();
                    break;
                }
                _ => {
                    outcome.failed.0 += 1;
                    outcome.failed.1 += lens[next];
                    next += 1;
                }
            }
        }
        first += chunk;
    }
    outcome
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

/// The address in a `sockaddr_storage` the kernel filled.
pub fn sockaddr_to_std(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
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

/// Writes `addr` into `storage`; returns the length to pass with it.
pub fn std_to_sockaddr(addr: &SocketAddr, storage: &mut libc::sockaddr_storage) -> libc::socklen_t {
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
