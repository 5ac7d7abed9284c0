//! Which interface the kernel would send a datagram out of: one `RTM_GETROUTE` question over
//! rtnetlink, the same one `ip route get DST from SRC` asks. The program needs the egress
//! interface for `bpf_redirect_neigh`, and the answer tells apart destinations on this host
//! (which only the relay-to-relay case may forward).

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

const RTM_NEWROUTE: u16 = 24;
const RTM_GETROUTE: u16 = 26;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const RTA_DST: u16 = 1;
const RTA_SRC: u16 = 2;
const RTA_OIF: u16 = 4;
const RTN_UNICAST: u8 = 1;
const RTN_LOCAL: u8 = 2;
const HDR: usize = 16;
const RTMSG: usize = 12;
/// A shard asks at ChannelBind rates; the kernel answers in microseconds. Bounded anyway, so a
/// stuck answer cannot stall the relay.
const ANSWER_TIMEOUT: Duration = Duration::from_millis(50);

/// Where the kernel sends to a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Egress {
    /// Out of this interface.
    Interface(u32),
    /// The destination is an address of this host.
    Local,
    /// Unreachable, blackholed, prohibited, or anything else: not for the fast path.
    Other,
}

/// An rtnetlink socket for route questions.
pub(super) struct RouteQuery {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

impl RouteQuery {
    /// Opens the socket.
    pub(super) fn new() -> io::Result<RouteQuery> {
        // SAFETY: plain socket(2); the descriptor is owned below.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by socket(2) and is owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: ANSWER_TIMEOUT.as_micros() as libc::suseconds_t,
        };
        // SAFETY: setsockopt with a valid timeval of the size given.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(RouteQuery {
            fd,
            seq: 0,
            buf: vec![0; 4096],
        })
    }

    /// The egress for datagrams from `src` to `dst` (same family).
    pub(super) fn egress(&mut self, dst: IpAddr, src: IpAddr) -> io::Result<Egress> {
        if dst.is_ipv4() != src.is_ipv4() {
            return Ok(Egress::Other);
        }
        self.seq = self.seq.wrapping_add(1);
        let request = request(self.seq, dst, src);
        // SAFETY: sending a byte buffer we own to the kernel (nl_pid 0).
        let sent = unsafe {
            let mut addr: libc::sockaddr_nl = std::mem::zeroed();
            addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
            libc::sendto(
                self.fd.as_raw_fd(),
                request.as_ptr().cast(),
                request.len(),
                0,
                (&addr as *const libc::sockaddr_nl).cast(),
                size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        loop {
            // SAFETY: receiving into a buffer we own, at most its length.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                    0,
                )
            };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            if let Some(answer) = parse_answer(&self.buf[..n as usize], self.seq)? {
                return Ok(answer);
            }
        }
    }
}

fn octets(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v) => v.octets().to_vec(),
        IpAddr::V6(v) => v.octets().to_vec(),
    }
}

fn request(seq: u32, dst: IpAddr, src: IpAddr) -> Vec<u8> {
    let (family, bits) = if dst.is_ipv4() {
        (libc::AF_INET as u8, 32)
    } else {
        (libc::AF_INET6 as u8, 128)
    };
    let (dst_bytes, src_bytes) = (octets(dst), octets(src));
    let mut m = Vec::with_capacity(HDR + RTMSG + 2 * 20);
    m.extend([0u8; 4]); // length, filled in below
    m.extend(RTM_GETROUTE.to_ne_bytes());
    m.extend(NLM_F_REQUEST.to_ne_bytes());
    m.extend(seq.to_ne_bytes());
    m.extend(0u32.to_ne_bytes());
    m.extend([family, bits, bits, 0, 0, 0, 0, 0]);
    m.extend(0u32.to_ne_bytes());
    for (typ, bytes) in [(RTA_DST, &dst_bytes), (RTA_SRC, &src_bytes)] {
        m.extend((4 + bytes.len() as u16).to_ne_bytes());
        m.extend(typ.to_ne_bytes());
        m.extend(bytes.iter());
    }
    let len = m.len() as u32;
    m[..4].copy_from_slice(&len.to_ne_bytes());
    m
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
        *b.get(at + 2)?,
        *b.get(at + 3)?,
    ]))
}

/// The answer to request `seq` in one received buffer; None when the buffer holds only
/// other messages.
fn parse_answer(buf: &[u8], seq: u32) -> io::Result<Option<Egress>> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "malformed rtnetlink answer");
    let mut at = 0;
    while at + HDR <= buf.len() {
        let len = u32_at(buf, at).ok_or_else(bad)? as usize;
        let typ = u16_at(buf, at + 4).ok_or_else(bad)?;
        let msg_seq = u32_at(buf, at + 8).ok_or_else(bad)?;
        if len < HDR || at + len > buf.len() {
            return Err(bad());
        }
        let msg = &buf[at..at + len];
        at += (len + 3) & !3;
        if msg_seq != seq {
            continue;
        }
        if typ == NLMSG_ERROR {
            let errno = u32_at(msg, HDR).ok_or_else(bad)? as i32;
            return match errno {
                0 => Ok(Some(Egress::Other)),
                e => {
                    let e = -e;
                    if e == libc::ENETUNREACH || e == libc::EHOSTUNREACH || e == libc::EACCES {
                        Ok(Some(Egress::Other))
                    } else {
                        Err(io::Error::from_raw_os_error(e))
                    }
                }
            };
        }
        if typ != RTM_NEWROUTE || msg.len() < HDR + RTMSG {
            continue;
        }
        let rtm_type = msg[HDR + 7];
        let mut oif = None;
        let mut a = HDR + RTMSG;
        while a + 4 <= msg.len() {
            let alen = u16_at(msg, a).ok_or_else(bad)? as usize;
            let atyp = u16_at(msg, a + 2).ok_or_else(bad)?;
            if alen < 4 || a + alen > msg.len() {
                return Err(bad());
            }
            if atyp == RTA_OIF && alen >= 8 {
                oif = u32_at(msg, a + 4);
            }
            a += (alen + 3) & !3;
        }
        return Ok(Some(match (rtm_type, oif) {
            (RTN_LOCAL, _) => Egress::Local,
            (RTN_UNICAST, Some(i)) if i != 0 => Egress::Interface(i),
            _ => Egress::Other,
        }));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_local_and_its_own_answer_is_parsed() {
        let mut q = RouteQuery::new().expect("rtnetlink socket");
        let lo = "127.0.0.1".parse().unwrap();
        assert_eq!(q.egress(lo, lo).unwrap(), Egress::Local);
        // A second question on the same socket gets its own answer.
        assert_eq!(q.egress(lo, lo).unwrap(), Egress::Local);
    }

    #[test]
    fn truncated_answers_are_errors_not_panics() {
        let mut msg = vec![0u8; HDR + RTMSG];
        msg[..4].copy_from_slice(&200u32.to_ne_bytes());
        assert!(parse_answer(&msg, 0).is_err());
        assert_eq!(parse_answer(&[1, 2, 3], 0).unwrap(), None);
    }
}
