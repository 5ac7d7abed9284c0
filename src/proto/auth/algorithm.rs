//! Password algorithms (RFC 8489 §9.2.1, §18.5): which hash turns a password into the long-term
//! key, how the client picks one without being bid down, and the key a request was verified with.

use sha2::Sha256;

use super::long_term::{credential_digest, LongTermKey};

/// PASSWORD-ALGORITHM number of MD5 (RFC 8489 §18.5).
pub const MD5: u16 = 0x0001;
/// PASSWORD-ALGORITHM number of SHA-256.
pub const SHA256: u16 = 0x0002;

/// The PASSWORD-ALGORITHMS value every challenge carries: SHA-256 first (preferred), then MD5,
/// neither with parameters. A request that picks an algorithm must echo exactly this.
pub const OFFERED: [u8; 8] = [0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00];

/// The nonce cookie (§9.2): "obMatJos2" and the 24-bit security feature set in base64, here
/// with only "Password algorithms" (bit 0, the most significant) set. Every nonce the server
/// issues starts with it, so a client knows it may pick SHA-256.
pub const NONCE_COOKIE: &[u8; 13] = b"obMatJos2gAAA";

/// How the long-term key is derived from the password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// MD5(username ":" realm ":" password), 16 bytes: RFC 5389 and every client that does not
    /// negotiate.
    Md5,
    /// SHA-256(username ":" realm ":" password), 32 bytes.
    Sha256,
}

/// Why a request's algorithm choice is refused (each earns 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NegotiationError {
    /// Only one of PASSWORD-ALGORITHM and PASSWORD-ALGORITHMS was sent.
    #[error("PASSWORD-ALGORITHM and PASSWORD-ALGORITHMS must come together")]
    Incomplete,
    /// PASSWORD-ALGORITHMS differs from the list the server offered: a bid-down attempt.
    #[error("PASSWORD-ALGORITHMS differs from the offered list")]
    ListChanged,
    /// PASSWORD-ALGORITHM names an algorithm not offered, or carries parameters.
    #[error("PASSWORD-ALGORITHM is not one of the offered algorithms")]
    NotOffered,
}

/// The algorithm a request uses (RFC 8489 §9.2.4), given its PASSWORD-ALGORITHM (number and
/// whether parameters followed) and PASSWORD-ALGORITHMS. The server's nonces always carry the
/// password-algorithms feature, so the rules for such nonces apply: neither attribute means MD5;
/// both must agree with what was offered.
pub fn negotiate(
    chosen: Option<(u16, bool)>,
    echoed: Option<&[u8]>,
) -> Result<Algorithm, NegotiationError> {
    match (chosen, echoed) {
        (None, None) => Ok(Algorithm::Md5),
        (Some(_), None) | (None, Some(_)) => Err(NegotiationError::Incomplete),
        (Some(_), Some(list)) if list != OFFERED => Err(NegotiationError::ListChanged),
        (Some((MD5, false)), Some(_)) => Ok(Algorithm::Md5),
        (Some((SHA256, false)), Some(_)) => Ok(Algorithm::Sha256),
        (Some(_), Some(_)) => Err(NegotiationError::NotOffered),
    }
}

/// SHA-256(username ":" realm ":" password), the SHA-256 long-term key.
pub fn sha256_key(username: &str, realm: &str, password: &str) -> [u8; 32] {
    credential_digest::<Sha256>(username, realm, password).into()
}

/// A long-term key of either algorithm, held inline.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CredKey {
    bytes: [u8; 32],
    len: u8,
}

impl CredKey {
    /// An MD5 key.
    pub fn md5(key: LongTermKey) -> Self {
        let mut bytes = [0u8; 32];
        bytes[..16].copy_from_slice(&key);
        CredKey { bytes, len: 16 }
    }

    /// A SHA-256 key.
    pub fn sha256(key: [u8; 32]) -> Self {
        CredKey {
            bytes: key,
            len: 32,
        }
    }

    /// The key bytes, as HMAC takes them.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

impl std::fmt::Debug for CredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CredKey({} bytes)", self.len)
    }
}

/// The key that verified a request and how its answers are signed: with
/// MESSAGE-INTEGRITY-SHA256 when the request used it, else MESSAGE-INTEGRITY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyKey {
    /// The long-term key.
    pub key: CredKey,
    /// Sign with HMAC-SHA256 (MESSAGE-INTEGRITY-SHA256) instead of HMAC-SHA1.
    pub sha256: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_follows_rfc_8489_9_2_4() {
        assert_eq!(negotiate(None, None), Ok(Algorithm::Md5));
        assert_eq!(
            negotiate(Some((SHA256, false)), Some(&OFFERED)),
            Ok(Algorithm::Sha256)
        );
        assert_eq!(
            negotiate(Some((MD5, false)), Some(&OFFERED)),
            Ok(Algorithm::Md5)
        );
        assert_eq!(
            negotiate(Some((SHA256, false)), None),
            Err(NegotiationError::Incomplete)
        );
        assert_eq!(
            negotiate(None, Some(&OFFERED)),
            Err(NegotiationError::Incomplete)
        );
        // A man in the middle that strips SHA-256 from the offer is caught.
        let md5_only = [0x00, 0x01, 0x00, 0x00];
        assert_eq!(
            negotiate(Some((MD5, false)), Some(&md5_only)),
            Err(NegotiationError::ListChanged)
        );
        assert_eq!(
            negotiate(Some((0x0003, false)), Some(&OFFERED)),
            Err(NegotiationError::NotOffered)
        );
        assert_eq!(
            negotiate(Some((SHA256, true)), Some(&OFFERED)),
            Err(NegotiationError::NotOffered)
        );
    }

    #[test]
    fn sha256_key_matches_an_independent_computation() {
        // python3 -c 'import hashlib;print(hashlib.sha256(b"alice:example.org:wonderland").hexdigest())'
        let want = "f0c3ae808cef897043f79de49549776f1f58cb7c5364e03ab40abac620459848";
        let got: String = sha256_key("alice", "example.org", "wonderland")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn nonce_cookie_announces_password_algorithms() {
        use base64::Engine as _;
        let bits = base64::engine::general_purpose::STANDARD
            .decode(&NONCE_COOKIE[9..])
            .unwrap();
        assert_eq!(&NONCE_COOKIE[..9], b"obMatJos2");
        assert_eq!(bits, [0x80, 0, 0]);
    }
}
