//! The eBPF maps' keys and values, byte for byte as `bpf/relay.bpf.c` declares them.

use std::net::{IpAddr, SocketAddr};

/// An address as the program compares it: IPv4 in the first word, all in network order.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Addr {
    w: [u32; 4],
}

impl Addr {
    /// The address of `ip` (IPv4-mapped IPv6 addresses are never passed in: sockets are
    /// V6ONLY and the runtime canonicalises).
    pub fn of(ip: IpAddr) -> Addr {
        let mut w = [0u32; 4];
        match ip {
            IpAddr::V4(v4) => w[0] = u32::from_ne_bytes(v4.octets()),
            IpAddr::V6(v6) => {
                let o = v6.octets();
                for (i, chunk) in o.chunks_exact(4).enumerate() {
                    w[i] = u32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
                }
            }
        }
        Addr { w }
    }
}

fn family(addr: &SocketAddr) -> u8 {
    if addr.is_ipv4() {
        4
    } else {
        6
    }
}

/// A port in network order, as it sits in the UDP header.
fn port(addr: &SocketAddr) -> u16 {
    addr.port().to_be()
}

/// Key of client → peer routes: what a client sends to a listener on a channel.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct C2pKey {
    client: Addr,
    listener: Addr,
    client_port: u16,
    listener_port: u16,
    channel: u16,
    family: u8,
    pad: u8,
}

impl C2pKey {
    /// The key for ChannelData on `channel` from `client` to `listener`.
    pub fn new(client: SocketAddr, listener: SocketAddr, channel: u16) -> C2pKey {
        C2pKey {
            client: Addr::of(client.ip()),
            listener: Addr::of(listener.ip()),
            client_port: port(&client),
            listener_port: port(&listener),
            channel,
            family: family(&client),
            pad: 0,
        }
    }
}

/// Key of peer → client routes: what a peer sends to a relay port.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct P2cKey {
    peer: Addr,
    relay: Addr,
    peer_port: u16,
    relay_port: u16,
    family: u8,
    pad: [u8; 3],
}

impl P2cKey {
    /// The key for datagrams from `peer` to `relay`.
    pub fn new(peer: SocketAddr, relay: SocketAddr) -> P2cKey {
        P2cKey {
            peer: Addr::of(peer.ip()),
            relay: Addr::of(relay.ip()),
            peer_port: port(&peer),
            relay_port: port(&relay),
            family: family(&peer),
            pad: [0; 3],
        }
    }
}

/// Where a matching datagram goes, until when, and what the program counted on it.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    src: Addr,
    dst: Addr,
    src_port: u16,
    dst_port: u16,
    /// Peer → client: the channel number to prepend.
    channel: u16,
    flags: u16,
    /// Egress interface; 0 when `dst` is this host (only the relay-to-relay case forwards).
    ifindex: u32,
    pad: u32,
    /// CLOCK_MONOTONIC nanoseconds at which the program stops using the entry by itself.
    expires_ns: u64,
    /// Packets the program forwarded on this entry.
    pub packets: u64,
    /// Payload bytes it forwarded.
    pub bytes: u64,
}

impl Route {
    /// Send from `src` to `dst` out of `ifindex` until `expires_ns`.
    pub fn new(
        src: SocketAddr,
        dst: SocketAddr,
        channel: u16,
        ifindex: u32,
        expires_ns: u64,
    ) -> Route {
        Route {
            src: Addr::of(src.ip()),
            dst: Addr::of(dst.ip()),
            src_port: port(&src),
            dst_port: port(&dst),
            channel,
            flags: 0,
            ifindex,
            pad: 0,
            expires_ns,
            packets: 0,
            bytes: 0,
        }
    }
}

/// One slot of the program's per-CPU totals.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Total {
    /// Packets.
    pub packets: u64,
    /// Payload bytes.
    pub bytes: u64,
}

/// Indices of the totals (`TOTAL_*` in the C source).
pub const TOTAL_TO_PEER: u32 = 0;
/// Peer → client.
pub const TOTAL_TO_CLIENT: u32 = 1;
/// Relay-to-relay on this host (also counted in both directions).
pub const TOTAL_HAIRPIN: u32 = 2;
/// Packets changed and then lost because a helper failed (dropped, counted).
pub const TOTAL_FAILED: u32 = 3;

const _: () = assert!(size_of::<C2pKey>() == 40);
const _: () = assert!(size_of::<P2cKey>() == 40);
const _: () = assert!(size_of::<Route>() == 72);
const _: () = assert!(size_of::<Total>() == 16);

// SAFETY: plain `repr(C)` data without padding the compiler adds (the explicit pad fields
// fill every gap, checked by the size assertions above), valid for any bit pattern.
unsafe impl aya::Pod for C2pKey {}
// SAFETY: as above.
unsafe impl aya::Pod for P2cKey {}
// SAFETY: as above.
unsafe impl aya::Pod for Route {}
// SAFETY: as above.
unsafe impl aya::Pod for Total {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_hold_addresses_and_ports_in_network_order() {
        let client: SocketAddr = "192.0.2.1:4660".parse().unwrap();
        let listener: SocketAddr = "198.51.100.2:3478".parse().unwrap();
        let k = C2pKey::new(client, listener, 0x4001);
        // SAFETY: reading a repr(C) value as its bytes.
        let bytes: [u8; 40] = unsafe { std::mem::transmute(k) };
        assert_eq!(&bytes[0..4], &[192, 0, 2, 1]);
        assert_eq!(&bytes[16..20], &[198, 51, 100, 2]);
        assert_eq!(&bytes[32..34], &[0x12, 0x34], "4660 = 0x1234");
        assert_eq!(&bytes[34..36], &[0x0d, 0x96], "3478 = 0x0d96");
        assert_eq!(u16::from_ne_bytes([bytes[36], bytes[37]]), 0x4001);
        assert_eq!(bytes[38], 4);

        let peer: SocketAddr = "[2001:db8::7]:9".parse().unwrap();
        let relay: SocketAddr = "[2001:db8::1]:50000".parse().unwrap();
        let k = P2cKey::new(peer, relay);
        // SAFETY: as above.
        let bytes: [u8; 40] = unsafe { std::mem::transmute(k) };
        assert_eq!(&bytes[0..2], &[0x20, 0x01]);
        assert_eq!(bytes[15], 7);
        assert_eq!(bytes[31], 1);
        assert_eq!(&bytes[32..34], &[0, 9]);
        assert_eq!(bytes[36], 6);
    }
}
