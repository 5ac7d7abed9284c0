//! MESSAGE-INTEGRITY (HMAC-SHA1, RFC 8489 §14.5), MESSAGE-INTEGRITY-SHA256 (HMAC-SHA256,
//! §14.6) and FINGERPRINT (§14.7).

use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::HEADER_LEN;

/// Size of a MESSAGE-INTEGRITY attribute including its header.
pub const INTEGRITY_ATTR_LEN: usize = 24;
/// Size of a full-length MESSAGE-INTEGRITY-SHA256 attribute including its header.
pub const INTEGRITY_SHA256_ATTR_LEN: usize = 36;
/// Size of a FINGERPRINT attribute including its header.
pub const FINGERPRINT_ATTR_LEN: usize = 8;
const FINGERPRINT_XOR: u32 = 0x5354_554E;

/// HMAC-SHA1 over the message as it stood when the attribute at `attr_offset` was appended: the
/// header length is rewritten to end just after that attribute, so attributes that follow it
/// (FINGERPRINT) do not count. Hashing the three pieces avoids copying the message.
pub fn integrity_over(raw: &[u8], attr_offset: usize, key: &[u8]) -> [u8; 20] {
    let covered_len = (attr_offset + INTEGRITY_ATTR_LEN - HEADER_LEN) as u16;
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(key).expect("any key length");
    mac.update(&raw[0..2]);
    mac.update(&covered_len.to_be_bytes());
    mac.update(&raw[4..attr_offset]);
    mac.finalize().into_bytes().into()
}

/// HMAC-SHA256 over the message up to the attribute at `attr_offset`, with the header length
/// rewritten to end after that attribute whose value is `value_len` bytes long (§14.6).
pub fn integrity_sha256_over(
    raw: &[u8],
    attr_offset: usize,
    value_len: usize,
    key: &[u8],
) -> [u8; 32] {
    let covered_len = (attr_offset + 4 + value_len - HEADER_LEN) as u16;
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
    mac.update(&raw[0..2]);
    mac.update(&covered_len.to_be_bytes());
    mac.update(&raw[4..attr_offset]);
    mac.finalize().into_bytes().into()
}

/// Whether a MESSAGE-INTEGRITY-SHA256 value may be `len` bytes long: 16 to 32, a multiple of
/// 4 (the value may be truncated, §14.6).
pub fn valid_sha256_len(len: usize) -> bool {
    (16..=32).contains(&len) && len.is_multiple_of(4)
}

/// Checks the MESSAGE-INTEGRITY-SHA256 attribute that starts at `attr_offset` (truncated
/// values compare their leading bytes), in constant time.
pub fn verify_integrity_sha256(raw: &[u8], attr_offset: usize, key: &[u8]) -> bool {
    let Some(len) = raw
        .get(attr_offset + 2..attr_offset + 4)
        .map(|l| u16::from_be_bytes([l[0], l[1]]) as usize)
        .filter(|l| valid_sha256_len(*l))
    else {
        return false;
    };
    let Some(given) = raw.get(attr_offset + 4..attr_offset + 4 + len) else {
        return false;
    };
    integrity_sha256_over(raw, attr_offset, len, key)[..len]
        .ct_eq(given)
        .into()
}

/// Checks the MESSAGE-INTEGRITY attribute that starts at `attr_offset`, in constant time.
pub fn verify_integrity(raw: &[u8], attr_offset: usize, key: &[u8]) -> bool {
    let Some(given) = raw.get(attr_offset + 4..attr_offset + INTEGRITY_ATTR_LEN) else {
        return false;
    };
    integrity_over(raw, attr_offset, key).ct_eq(given).into()
}

/// The FINGERPRINT value for the message bytes before the attribute; the header length must
/// already include the FINGERPRINT attribute.
pub fn fingerprint_of(before: &[u8]) -> u32 {
    crc32fast::hash(before) ^ FINGERPRINT_XOR
}

#[cfg(test)]
mod sha256_tests {
    use super::*;

    /// A Binding request with USERNAME "alice" and a MESSAGE-INTEGRITY-SHA256 over it with key
    /// sixteen "k" bytes. Expected value obtained with:
    /// python3 -c 'import hmac,hashlib,struct;m=struct.pack(">HHI",1,48,0x2112A442)+bytes(range(1,13))+struct.pack(">HH",6,5)+b"alice\0\0\0";print(hmac.new(b"k"*16,m,hashlib.sha256).hexdigest())'
    fn message() -> Vec<u8> {
        let mut m = vec![0x00, 0x01, 0x00, 48, 0x21, 0x12, 0xA4, 0x42];
        m.extend(1u8..=12);
        m.extend([0x00, 0x06, 0x00, 0x05]);
        m.extend(b"alice\0\0\0");
        m.extend([0x00, 0x1C, 0x00, 0x20]);
        m.extend([0u8; 32]);
        m
    }

    #[test]
    fn hmac_sha256_matches_an_independent_computation() {
        let mut m = message();
        let mac = integrity_sha256_over(&m, 32, 32, &[b'k'; 16]);
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "d3a5e7c39228bc4719061c3dabfe47389e216bf3a1e9ca2990d8db74daa9705e"
        );
        m[36..68].copy_from_slice(&mac);
        assert!(verify_integrity_sha256(&m, 32, &[b'k'; 16]));
        assert!(!verify_integrity_sha256(&m, 32, &[b'j'; 16]));
    }

    #[test]
    fn truncated_values_compare_their_prefix_and_bad_lengths_fail() {
        let full = message();
        let mac = integrity_sha256_over(&full, 32, 16, &[b'k'; 16]);
        let mut m = full[..52].to_vec();
        m[3] = 32; // header length: 12 (USERNAME) + 20 (truncated MI-SHA256)
        m[34..36].copy_from_slice(&16u16.to_be_bytes());
        m[36..52].copy_from_slice(&mac[..16]);
        assert!(verify_integrity_sha256(&m, 32, &[b'k'; 16]));
        m[34..36].copy_from_slice(&12u16.to_be_bytes());
        assert!(!verify_integrity_sha256(&m, 32, &[b'k'; 16]));
        assert!(!valid_sha256_len(20 + 2) && valid_sha256_len(20) && !valid_sha256_len(36));
    }
}
