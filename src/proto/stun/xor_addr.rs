//! XOR-MAPPED-ADDRESS style address coding (RFC 8489 §14.2).

use super::{CodecError, TransactionId, MAGIC_COOKIE};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

const FAMILY_V4: u8 = 0x01;
const FAMILY_V6: u8 = 0x02;

/// Size of the attribute value for an address of this family.
pub fn encoded_len(addr: &SocketAddr) -> usize {
    if addr.is_ipv4() {
        8
    } else {
        20
    }
}

/// Writes the XOR-ed address value into `out`, which must be `encoded_len` bytes.
pub fn encode(addr: &SocketAddr, tid: &TransactionId, out: &mut [u8]) {
    let port = addr.port() ^ (MAGIC_COOKIE >> 16) as u16;
    out[0] = 0;
    out[2..4].copy_from_slice(&port.to_be_bytes());
    match addr.ip() {
        IpAddr::V4(ip) => {
            out[1] = FAMILY_V4;
            let x = u32::from(ip) ^ MAGIC_COOKIE;
            out[4..8].copy_from_slice(&x.to_be_bytes());
        }
        IpAddr::V6(ip) => {
            out[1] = FAMILY_V6;
            let mask = xor_mask(tid);
            for (i, b) in ip.octets().iter().enumerate() {
                out[4 + i] = b ^ mask[i];
            }
        }
    }
}

/// Reads an XOR-ed address value.
pub fn decode(value: &[u8], tid: &TransactionId, typ: u16) -> Result<SocketAddr, CodecError> {
    if value.len() < 4 {
        return Err(CodecError::BadAttribute(typ));
    }
    let port = u16::from_be_bytes([value[2], value[3]]) ^ (MAGIC_COOKIE >> 16) as u16;
    match (value[1], value.len()) {
        (FAMILY_V4, 8) => {
            let x = u32::from_be_bytes([value[4], value[5], value[6], value[7]]) ^ MAGIC_COOKIE;
            Ok(SocketAddr::new(Ipv4Addr::from(x).into(), port))
        }
        (FAMILY_V6, 20) => {
            let mask = xor_mask(tid);
            let mut o = [0u8; 16];
            for i in 0..16 {
                o[i] = value[4 + i] ^ mask[i];
            }
            Ok(SocketAddr::new(Ipv6Addr::from(o).into(), port))
        }
        _ => Err(CodecError::BadAttribute(typ)),
    }
}

fn xor_mask(tid: &TransactionId) -> [u8; 16] {
    let mut mask = [0u8; 16];
    mask[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    mask[4..].copy_from_slice(tid);
    mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_both_families() {
        let tid = [7u8; 12];
        for a in [
            "192.0.2.1:32853",
            "[2001:db8:1234:5678:11:2233:4455:6677]:32853",
        ] {
            let addr: SocketAddr = a.parse().unwrap();
            let mut buf = [0u8; 20];
            let n = encoded_len(&addr);
            encode(&addr, &tid, &mut buf[..n]);
            assert_eq!(decode(&buf[..n], &tid, 0x20).unwrap(), addr);
        }
    }

    #[test]
    fn rejects_bad_family_and_length() {
        let tid = [0u8; 12];
        assert!(decode(&[0, 3, 0, 0, 1, 2, 3, 4], &tid, 0x20).is_err());
        assert!(decode(&[0, 1, 0, 0, 1, 2, 3], &tid, 0x20).is_err());
        assert!(decode(&[0, 2, 0, 0, 1, 2, 3, 4], &tid, 0x20).is_err());
    }
}
