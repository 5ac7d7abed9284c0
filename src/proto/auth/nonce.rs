//! Stateless nonces: the issue time plus a MAC binding it to the client IP.
//!
//! Nothing is stored per nonce, so a flood of unauthenticated requests costs
//! the server no memory; any shard holding the key can check any nonce.

use std::fmt;
use std::net::IpAddr;

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha1::Sha1;
use subtle::ConstantTimeEq;

use super::long_term::hex_val;

type HmacSha1 = Hmac<Sha1>;

/// Length of a nonce in ASCII characters.
pub const NONCE_LEN: usize = 40;
const TIME_HEX: usize = 16;
const MAC_BYTES: usize = 12;
/// Clock skew between shards or hosts that still counts as "now".
const FUTURE_SKEW_SECS: u64 = 5;

/// Secret key for issuing and checking nonces.
#[derive(Clone)]
pub struct NonceKey([u8; 32]);

impl NonceKey {
    /// A fresh key from the operating system's random source.
    pub fn random() -> Self {
        let mut k = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut k);
        Self(k)
    }

    /// A key from given bytes, so several relays (or tests) can share one.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Issues a nonce for `client` at `unix_now`.
    pub fn issue(&self, unix_now: u64, client: IpAddr) -> Nonce {
        let mut out = [0u8; NONCE_LEN];
        write_hex(&unix_now.to_be_bytes(), &mut out[..TIME_HEX]);
        let mac = self.mac(unix_now, client);
        write_hex(&mac, &mut out[TIME_HEX..]);
        Nonce(out)
    }

    /// Checks a nonce echoed by `client`.
    ///
    /// `Invalid` covers anything this key did not issue for this client
    /// (malformed, wrong MAC, other IP) and nonces dated more than a few
    /// seconds in the future; `Stale` means it was ours but is older than
    /// `lifetime_secs`, so the client should retry with a fresh one (438).
    pub fn check(
        &self,
        nonce: &[u8],
        unix_now: u64,
        client: IpAddr,
        lifetime_secs: u64,
    ) -> NonceCheck {
        let Some((issued, mac)) = parse(nonce) else {
            return NonceCheck::Invalid;
        };
        let expected = self.mac(issued, client);
        if !bool::from(expected.ct_eq(&mac)) {
            return NonceCheck::Invalid;
        }
        if issued > unix_now.saturating_add(FUTURE_SKEW_SECS) {
            return NonceCheck::Invalid;
        }
        if unix_now.saturating_sub(issued) > lifetime_secs {
            return NonceCheck::Stale;
        }
        NonceCheck::Valid
    }

    fn mac(&self, issued: u64, client: IpAddr) -> [u8; MAC_BYTES] {
        let mut m = <HmacSha1 as Mac>::new_from_slice(&self.0).expect("HMAC takes any key length");
        m.update(&issued.to_be_bytes());
        // A dual-stack socket may report the same client as ::ffff:a.b.c.d;
        // canonicalising keeps its nonce valid whichever way it arrives.
        match client.to_canonical() {
            IpAddr::V4(v4) => m.update(&v4.octets()),
            IpAddr::V6(v6) => m.update(&v6.octets()),
        }
        let full = m.finalize().into_bytes();
        let mut out = [0u8; MAC_BYTES];
        out.copy_from_slice(&full[..MAC_BYTES]);
        out
    }
}

impl fmt::Debug for NonceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the key into logs.
        f.write_str("NonceKey(..)")
    }
}

/// Outcome of [`NonceKey::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceCheck {
    /// Issued by this key for this client and still fresh.
    Valid,
    /// Genuine but older than the lifetime: answer 438 Stale Nonce.
    Stale,
    /// Not a nonce this key issued for this client.
    Invalid,
}

/// A nonce as sent in the NONCE attribute: 40 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Nonce([u8; NONCE_LEN]);

impl Nonce {
    /// The nonce text.
    pub fn as_str(&self) -> &str {
        // Only `issue` builds a Nonce and it writes hex digits only.
        std::str::from_utf8(&self.0).expect("nonce is ASCII hex")
    }

    /// The nonce bytes, as they go on the wire.
    pub fn as_bytes(&self) -> &[u8; NONCE_LEN] {
        &self.0
    }
}

impl fmt::Debug for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Nonce({})", self.as_str())
    }
}

fn write_hex(bytes: &[u8], out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (b, pair) in bytes.iter().zip(out.chunks_exact_mut(2)) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 0x0f)];
    }
}

/// Accepts only what `issue` writes (lowercase hex), so each nonce has one
/// spelling.
fn parse(nonce: &[u8]) -> Option<(u64, [u8; MAC_BYTES])> {
    if nonce.len() != NONCE_LEN || !nonce.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut time = [0u8; 8];
    decode_hex(&nonce[..TIME_HEX], &mut time)?;
    let mut mac = [0u8; MAC_BYTES];
    decode_hex(&nonce[TIME_HEX..], &mut mac)?;
    Some((u64::from_be_bytes(time), mac))
}

fn decode_hex(hex: &[u8], out: &mut [u8]) -> Option<()> {
    for (o, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        *o = (hex_val(pair[0])? << 4) | hex_val(pair[1])?;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const NOW: u64 = 1_700_000_000;
    const LIFE: u64 = 600;

    fn key() -> NonceKey {
        NonceKey::from_bytes([7u8; 32])
    }

    fn ip() -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7))
    }

    #[test]
    fn shape() {
        let n = key().issue(NOW, ip());
        assert_eq!(n.as_str().len(), NONCE_LEN);
        assert!(n.as_str().starts_with("000000006553f100"));
        assert_eq!(n.as_bytes(), n.as_str().as_bytes());
    }

    #[test]
    fn valid_within_lifetime() {
        let n = key().issue(NOW, ip());
        assert_eq!(
            key().check(n.as_bytes(), NOW, ip(), LIFE),
            NonceCheck::Valid
        );
        assert_eq!(
            key().check(n.as_bytes(), NOW + LIFE, ip(), LIFE),
            NonceCheck::Valid
        );
    }

    #[test]
    fn stale_after_lifetime() {
        let n = key().issue(NOW, ip());
        assert_eq!(
            key().check(n.as_bytes(), NOW + LIFE + 1, ip(), LIFE),
            NonceCheck::Stale
        );
    }

    #[test]
    fn other_client_is_invalid() {
        let n = key().issue(NOW, ip());
        let other = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 8));
        assert_eq!(
            key().check(n.as_bytes(), NOW, other, LIFE),
            NonceCheck::Invalid
        );
    }

    #[test]
    fn mapped_v6_is_same_client() {
        let n = key().issue(NOW, ip());
        let mapped = IpAddr::V6(Ipv4Addr::new(198, 51, 100, 7).to_ipv6_mapped());
        assert_eq!(
            key().check(n.as_bytes(), NOW, mapped, LIFE),
            NonceCheck::Valid
        );
        let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
        let n6 = key().issue(NOW, v6);
        assert_eq!(key().check(n6.as_bytes(), NOW, v6, LIFE), NonceCheck::Valid);
    }

    #[test]
    fn other_key_is_invalid() {
        let n = NonceKey::random().issue(NOW, ip());
        assert_eq!(
            key().check(n.as_bytes(), NOW, ip(), LIFE),
            NonceCheck::Invalid
        );
    }

    #[test]
    fn tampered_is_invalid() {
        let n = key().issue(NOW, ip());
        let mut bytes = *n.as_bytes();
        // Moving the timestamp breaks the MAC.
        bytes[15] = if bytes[15] == b'0' { b'1' } else { b'0' };
        assert_eq!(key().check(&bytes, NOW, ip(), LIFE), NonceCheck::Invalid);
        let mut bytes = *n.as_bytes();
        bytes[39] = if bytes[39] == b'0' { b'1' } else { b'0' };
        assert_eq!(key().check(&bytes, NOW, ip(), LIFE), NonceCheck::Invalid);
    }

    #[test]
    fn malformed_is_invalid() {
        let n = key().issue(NOW, ip());
        let k = key();
        assert_eq!(k.check(b"", NOW, ip(), LIFE), NonceCheck::Invalid);
        assert_eq!(
            k.check(&n.as_bytes()[..39], NOW, ip(), LIFE),
            NonceCheck::Invalid
        );
        let upper = n.as_str().to_ascii_uppercase();
        if upper != n.as_str() {
            assert_eq!(
                k.check(upper.as_bytes(), NOW, ip(), LIFE),
                NonceCheck::Invalid
            );
        }
        assert_eq!(
            k.check(&[b'z'; NONCE_LEN], NOW, ip(), LIFE),
            NonceCheck::Invalid
        );
    }

    #[test]
    fn future_beyond_skew_is_invalid() {
        let k = key();
        let n = k.issue(NOW + FUTURE_SKEW_SECS, ip());
        assert_eq!(k.check(n.as_bytes(), NOW, ip(), LIFE), NonceCheck::Valid);
        let n = k.issue(NOW + FUTURE_SKEW_SECS + 1, ip());
        assert_eq!(k.check(n.as_bytes(), NOW, ip(), LIFE), NonceCheck::Invalid);
    }

    #[test]
    fn debug_hides_key() {
        assert_eq!(format!("{:?}", key()), "NonceKey(..)");
    }
}
