//! The PROXY protocol header (HAProxy's proxy-protocol.txt, versions 1 and 2) that a load
//! balancer such as nginx `proxy_protocol on` or HAProxy `send-proxy[-v2]` puts in front of a
//! forwarded TCP connection to say who the real client is. Pure parsing: no sockets, no clocks.
//!
//! Only what a relay needs is kept: the client's (source) and the proxy's (destination)
//! address, or "use the connection's own addresses" for health checks (v2 LOCAL), v1
//! `UNKNOWN` and address families that carry no IP (v2 UNSPEC and UNIX). TLVs are checked to
//! lie within the header and otherwise skipped.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use thiserror::Error;

/// The 12 bytes every version 2 header starts with.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// What a version 1 header starts with.
const V1_PREFIX: &[u8] = b"PROXY ";
/// Longest version 1 line, CRLF included (the specification's bound).
pub const V1_MAX_LEN: usize = 107;
/// Fixed part of a version 2 header: signature, version/command, family, length.
const V2_FIXED: usize = 16;
/// Longest version 2 header accepted, TLVs included. The format allows 64 KiB; proxies send
/// at most a few hundred bytes (addresses plus a handful of TLVs), and a bound this small keeps
/// the bytes a connection may hold before it is identified small.
pub const V2_MAX_LEN: usize = 4096;
/// Longest header of either version: what a reader must be able to hold.
pub const MAX_HEADER_LEN: usize = V2_MAX_LEN;

/// Why bytes are not a PROXY protocol header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ProxyError {
    /// The connection does not start with either version's signature.
    #[error("no PROXY protocol header")]
    Missing,
    /// A version 1 line without CRLF within 107 bytes.
    #[error("PROXY v1 line longer than 107 bytes")]
    V1TooLong,
    /// A version 1 line that does not follow the grammar.
    #[error("malformed PROXY v1 line: {0}")]
    V1Syntax(&'static str),
    /// A version 2 header with a version other than 2.
    #[error("PROXY v2 header with version {0}")]
    V2Version(u8),
    /// A version 2 command other than LOCAL (0) or PROXY (1).
    #[error("PROXY v2 header with unknown command {0}")]
    V2Command(u8),
    /// A version 2 address family or transport this listener cannot carry.
    #[error("PROXY v2 header with unsupported family/transport byte {0:#04x}")]
    V2Family(u8),
    /// A version 2 header whose length field exceeds [`V2_MAX_LEN`].
    #[error("PROXY v2 header of {0} bytes is longer than allowed")]
    V2TooLong(usize),
    /// A version 2 address block longer than the header.
    #[error("PROXY v2 addresses do not fit the header length")]
    V2Truncated,
    /// A TLV that runs past the end of the header.
    #[error("PROXY v2 TLV runs past the header")]
    V2Tlv,
}

/// Who the proxy says is on the other end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyAddresses {
    /// Keep the connection's own addresses: a health check (v2 LOCAL), v1 `UNKNOWN`, or a
    /// family without IP addresses (v2 UNSPEC, UNIX).
    Local,
    /// The client (`source`) connected to the proxy at `destination`.
    Proxied {
        /// The real client.
        source: SocketAddr,
        /// The address the client connected to (the proxy's listener).
        destination: SocketAddr,
    },
}

/// A complete header at the front of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyHeader {
    /// 1 or 2.
    pub version: u8,
    /// What it says.
    pub addresses: ProxyAddresses,
    /// Bytes it occupies; what follows belongs to the client's stream.
    pub len: usize,
}

/// Parses the header at the front of `buf`. `Ok(None)`: what is there is a valid beginning,
/// more bytes are needed. Never reads past the header, so the bytes after it are the stream's.
pub fn parse(buf: &[u8]) -> Result<Option<ProxyHeader>, ProxyError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    if first == V2_SIGNATURE[0] {
        let n = buf.len().min(V2_SIGNATURE.len());
        if buf[..n] != V2_SIGNATURE[..n] {
            return Err(ProxyError::Missing);
        }
        return parse_v2(buf);
    }
    let n = buf.len().min(V1_PREFIX.len());
    if buf[..n] != V1_PREFIX[..n] {
        return Err(ProxyError::Missing);
    }
    parse_v1(buf)
}

fn parse_v1(buf: &[u8]) -> Result<Option<ProxyHeader>, ProxyError> {
    let window = &buf[..buf.len().min(V1_MAX_LEN)];
    let Some(cr) = window.windows(2).position(|w| w == b"\r\n") else {
        if buf.len() >= V1_MAX_LEN {
            return Err(ProxyError::V1TooLong);
        }
        // A lone LF or another control byte can never become a valid line.
        if window[V1_PREFIX.len().min(window.len())..]
            .iter()
            .any(|&b| b != b'\r' && !(0x20..0x7f).contains(&b))
        {
            return Err(ProxyError::V1Syntax("control byte in the line"));
        }
        if window.len() >= 2 && window[..window.len() - 1].contains(&b'\r') {
            return Err(ProxyError::V1Syntax("CR not followed by LF"));
        }
        return Ok(None);
    };
    let line = &window[V1_PREFIX.len()..cr];
    let line = std::str::from_utf8(line).map_err(|_| ProxyError::V1Syntax("not ASCII"))?;
    if !line.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(ProxyError::V1Syntax("control byte in the line"));
    }
    let addresses = v1_addresses(line)?;
    Ok(Some(ProxyHeader {
        version: 1,
        addresses,
        len: cr + 2,
    }))
}

fn v1_addresses(line: &str) -> Result<ProxyAddresses, ProxyError> {
    // "UNKNOWN" may be followed by anything up to the CRLF, which the receiver ignores.
    if line == "UNKNOWN" || line.starts_with("UNKNOWN ") {
        return Ok(ProxyAddresses::Local);
    }
    let mut fields = line.split(' ');
    let family = fields.next().unwrap_or_default();
    let want_v4 = match family {
        "TCP4" => true,
        "TCP6" => false,
        _ => {
            return Err(ProxyError::V1Syntax(
                "protocol is not TCP4, TCP6 or UNKNOWN",
            ))
        }
    };
    let (Some(src), Some(dst), Some(sport), Some(dport), None) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return Err(ProxyError::V1Syntax(
            "expected 4 fields after the protocol, separated by single spaces",
        ));
    };
    let ip = |s: &str| -> Result<IpAddr, ProxyError> {
        let ip = if want_v4 {
            s.parse::<Ipv4Addr>().map(IpAddr::V4)
        } else {
            s.parse::<Ipv6Addr>().map(IpAddr::V6)
        };
        ip.map_err(|_| ProxyError::V1Syntax("address does not match the protocol"))
    };
    Ok(ProxyAddresses::Proxied {
        source: SocketAddr::new(ip(src)?, v1_port(sport)?),
        destination: SocketAddr::new(ip(dst)?, v1_port(dport)?),
    })
}

fn v1_port(s: &str) -> Result<u16, ProxyError> {
    // Decimal without sign or leading zeros ("0" itself is allowed).
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ProxyError::V1Syntax("port is not a decimal number"));
    }
    if s.len() > 1 && s.starts_with('0') {
        return Err(ProxyError::V1Syntax("port has leading zeros"));
    }
    s.parse()
        .map_err(|_| ProxyError::V1Syntax("port is above 65535"))
}

fn parse_v2(buf: &[u8]) -> Result<Option<ProxyHeader>, ProxyError> {
    if buf.len() > 12 {
        let version = buf[12] >> 4;
        if version != 2 {
            return Err(ProxyError::V2Version(version));
        }
        let command = buf[12] & 0x0f;
        if command > 1 {
            return Err(ProxyError::V2Command(command));
        }
    }
    // LOCAL ignores the family byte; PROXY must name one this listener can carry.
    if buf.len() > 13 && buf[12] & 0x0f == 1 {
        check_family(buf[13])?;
    }
    if buf.len() < V2_FIXED {
        return Ok(None);
    }
    let body_len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    let len = V2_FIXED + body_len;
    if len > V2_MAX_LEN {
        return Err(ProxyError::V2TooLong(len));
    }
    if buf.len() < len {
        return Ok(None);
    }
    if buf[12] & 0x0f == 0 {
        // LOCAL: a health check from the proxy itself; whatever follows is skipped.
        return Ok(Some(ProxyHeader {
            version: 2,
            addresses: ProxyAddresses::Local,
            len,
        }));
    }
    let body = &buf[V2_FIXED..len];
    let (addresses, used) = match buf[13] >> 4 {
        1 => {
            let a = body.get(..12).ok_or(ProxyError::V2Truncated)?;
            let ip = |o: usize| IpAddr::V4(Ipv4Addr::new(a[o], a[o + 1], a[o + 2], a[o + 3]));
            let port = |o: usize| u16::from_be_bytes([a[o], a[o + 1]]);
            let addresses = ProxyAddresses::Proxied {
                source: SocketAddr::new(ip(0), port(8)),
                destination: SocketAddr::new(ip(4), port(10)),
            };
            (addresses, 12)
        }
        2 => {
            let a = body.get(..36).ok_or(ProxyError::V2Truncated)?;
            let ip = |o: usize| {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(&a[o..o + 16]);
                IpAddr::V6(Ipv6Addr::from(octets))
            };
            let port = |o: usize| u16::from_be_bytes([a[o], a[o + 1]]);
            let addresses = ProxyAddresses::Proxied {
                source: SocketAddr::new(ip(0), port(32)),
                destination: SocketAddr::new(ip(16), port(34)),
            };
            (addresses, 36)
        }
        3 => {
            if body.len() < 216 {
                return Err(ProxyError::V2Truncated);
            }
            (ProxyAddresses::Local, 216)
        }
        // UNSPEC: the receiver keeps its own addresses and skips the block, TLVs included.
        _ => (ProxyAddresses::Local, body.len()),
    };
    check_tlvs(&body[used..])?;
    Ok(Some(ProxyHeader {
        version: 2,
        addresses,
        len,
    }))
}

/// Families UNSPEC/INET/INET6/UNIX with transport UNSPEC or STREAM; DGRAM cannot arrive on a
/// TCP connection, and other values are undefined.
fn check_family(byte: u8) -> Result<(), ProxyError> {
    let family = byte >> 4;
    let transport = byte & 0x0f;
    let ok = match family {
        0 => transport == 0,
        1..=3 => transport <= 1,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(ProxyError::V2Family(byte))
    }
}

fn check_tlvs(mut rest: &[u8]) -> Result<(), ProxyError> {
    while !rest.is_empty() {
        if rest.len() < 3 {
            return Err(ProxyError::V2Tlv);
        }
        let len = usize::from(u16::from_be_bytes([rest[1], rest[2]]));
        rest = rest.get(3 + len..).ok_or(ProxyError::V2Tlv)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
