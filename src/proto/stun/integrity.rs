//! MESSAGE-INTEGRITY (HMAC-SHA1, RFC 8489 §14.5) and FINGERPRINT (§14.7).

use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

use super::HEADER_LEN;

/// Size of a MESSAGE-INTEGRITY attribute including its header.
pub const INTEGRITY_ATTR_LEN: usize = 24;
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
