//! Long-term credential key (RFC 8489 §9.2.2).

use md5::digest::{Digest, Output};
use md5::Md5;

/// The 16-byte long-term key, MD5(username ":" realm ":" password).
pub type LongTermKey = [u8; 16];

/// Derives the long-term key. SASLprep is not applied: coturn does not apply
/// it either, and clients in the field send ASCII passwords.
pub fn long_term_key(username: &str, realm: &str, password: &str) -> LongTermKey {
    credential_digest::<Md5>(username, realm, password).into()
}

/// `D(username ":" realm ":" password)`: the long-term key with hash `D` (MD5 here, SHA-256
/// for `sha256_key`). Fed in pieces so no joined string is allocated per request.
pub(crate) fn credential_digest<D: Digest>(
    username: &str,
    realm: &str,
    password: &str,
) -> Output<D> {
    let mut h = D::new();
    h.update(username.as_bytes());
    h.update(b":");
    h.update(realm.as_bytes());
    h.update(b":");
    h.update(password.as_bytes());
    h.finalize()
}

/// Whether a `user=name:SECRET` secret is written as a precomputed key rather than a password:
/// it starts with `0x` (or `0X`). [`parse_md5_key`] then decides whether the key is well formed.
pub fn is_md5_key_form(s: &str) -> bool {
    s.starts_with("0x") || s.starts_with("0X")
}

/// Parses a precomputed key as written in `turnserver.conf` (`user=name:0x…`, as
/// `turnadmin -k` prints it): `0x` (or `0X`) followed by exactly 32 hex digits of either case.
/// The one parser of such keys: the configuration reader uses it too.
pub fn parse_md5_key(s: &str) -> Option<LongTermKey> {
    if !is_md5_key_form(s) {
        return None;
    }
    let hex = &s.as_bytes()[2..];
    if hex.len() != 32 {
        return None;
    }
    let mut key = [0u8; 16];
    for (out, pair) in key.iter_mut().zip(hex.chunks_exact(2)) {
        *out = (hex_val(pair[0])? << 4) | hex_val(pair[1])?;
    }
    Some(key)
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc5769_long_term_vector() {
        // RFC 5769 §2.4 credentials. Expected key obtained with:
        // python3 -c 'import hashlib;print(hashlib.md5("\u30de\u30c8\u30ea\u30c3\u30af\u30b9:example.org:TheMatrIX".encode()).hexdigest())'
        let key = long_term_key(
            "\u{30de}\u{30c8}\u{30ea}\u{30c3}\u{30af}\u{30b9}",
            "example.org",
            "TheMatrIX",
        );
        assert_eq!(
            Some(key),
            parse_md5_key("0xe8ca7ad59d5eb0518e312911d2dab2a9")
        );
    }

    #[test]
    fn parses_hex_keys() {
        let k = parse_md5_key("0x000102030405060708090A0B0C0D0E0f").unwrap();
        assert_eq!(k, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
        assert!(parse_md5_key("0X000102030405060708090a0b0c0d0e0f").is_some());
    }

    #[test]
    fn rejects_bad_hex_keys() {
        assert_eq!(parse_md5_key("000102030405060708090a0b0c0d0e0f"), None);
        assert_eq!(parse_md5_key("0x000102030405060708090a0b0c0d0e0"), None);
        assert_eq!(parse_md5_key("0x000102030405060708090a0b0c0d0e0f0"), None);
        assert_eq!(parse_md5_key("0x000102030405060708090a0b0c0d0e0g"), None);
        assert_eq!(parse_md5_key("0x"), None);
        // Multi-byte chars must not slip past the length check.
        assert_eq!(
            parse_md5_key("0x\u{e9}0102030405060708090a0b0c0d0e0f"),
            None
        );
    }
}
