//! Which network interfaces carry the relay's addresses: the program is attached to those.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Names of the non-loopback interfaces that hold one of `ips`, without duplicates, in the
/// order found. Loopback is left out: a client on this host gains nothing from the program,
/// and every local connection would pay for it.
pub(super) fn carrying(ips: &[IpAddr]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we walk read-only and free exactly once;
    // ifa_name is a NUL-terminated string valid until then.
    unsafe {
        if libc::getifaddrs(&mut head) != 0 {
            return out;
        }
        let mut cur = head;
        while !cur.is_null() {
            let ifa = &*cur;
            cur = ifa.ifa_next;
            if ifa.ifa_addr.is_null() || ifa.ifa_flags & libc::IFF_LOOPBACK as u32 != 0 {
                continue;
            }
            let ip = match i32::from((*ifa.ifa_addr).sa_family) {
                libc::AF_INET => {
                    let sin = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                    IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)))
                }
                libc::AF_INET6 => {
                    let sin6 = &*(ifa.ifa_addr as *const libc::sockaddr_in6);
                    IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr))
                }
                _ => continue,
            };
            if !ips.contains(&ip) {
                continue;
            }
            let name = std::ffi::CStr::from_ptr(ifa.ifa_name)
                .to_string_lossy()
                .into_owned();
            if !out.contains(&name) {
                out.push(name);
            }
        }
        libc::freeifaddrs(head);
    }
    out
}
