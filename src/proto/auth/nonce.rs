//! Stateless nonces: the issue time plus a MAC binding it to the client's 5-tuple.
//!
//! Nothing is stored per nonce, so a flood of unauthenticated requests costs
//! the server no memory; any shard holding the key can check any nonce. A
//! nonce is good only on the flow it was issued to (the server socket or
//! connection and the client's address and port), as in coturn, so a signed
//! request replayed from another port is refused with 438.

use std::fmt;
use std::net::IpAddr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::{CryptoRng, RngCore};
use sha1::Sha1;
use subtle::ConstantTimeEq;

use crate::flow::Flow;

type HmacSha1 = Hmac<Sha1>;

/// Length of a nonce in ASCII characters: 12 bytes (issue time, MAC) in unpadded base64url.
/// Short, because every 401 and 438 carries one and those answers go to unauthenticated
/// sources.
pub const NONCE_LEN: usize = 16;
const TIME_BYTES: usize = 4;
const MAC_BYTES: usize = 8;
const RAW_LEN: usize = TIME_BYTES + MAC_BYTES;
/// Clock skew between shards or hosts that still counts as "now".
const FUTURE_SKEW_SECS: u64 = 5;

/// Secret key for issuing and checking nonces.
#[derive(Clone)]
pub struct NonceKey([u8; 32]);

impl NonceKey {
    /// A fresh key drawn from `rng`; the runtime passes the operating system's source
    /// (`rand::rngs::OsRng`), the core itself never reaches for one.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut k = [0u8; 32];
        rng.fill_bytes(&mut k);
        Self(k)
    }

    /// A key from given bytes, so several relays (or tests) can share one.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Issues a nonce for the client on `flow` at `unix_now` (seconds; the nonce keeps the
    /// low 32 bits, which is enough to tell the age of anything younger than 136 years).
    pub fn issue(&self, unix_now: u64, flow: Flow) -> Nonce {
        let issued = unix_now as u32;
        let mut raw = [0u8; RAW_LEN];
        raw[..TIME_BYTES].copy_from_slice(&issued.to_be_bytes());
        raw[TIME_BYTES..].copy_from_slice(&self.mac(issued, flow));
        let mut out = [0u8; NONCE_LEN];
        let n = URL_SAFE_NO_PAD
            .encode_slice(raw, &mut out)
            .expect("12 bytes encode to 16 characters");
        debug_assert_eq!(n, NONCE_LEN);
        Nonce(out)
    }

    /// Checks a nonce echoed by the client on `flow`.
    ///
    /// `Invalid` covers anything this key did not issue for this flow
    /// (malformed, wrong MAC, other address, port or server socket) and nonces
    /// dated more than a few seconds in the future; `Stale` means it was ours
    /// but is older than `lifetime_secs`, so the client should retry with a
    /// fresh one (438).
    pub fn check(&self, nonce: &[u8], unix_now: u64, flow: Flow, lifetime_secs: u64) -> NonceCheck {
        let Some((issued, mac)) = parse(nonce) else {
            return NonceCheck::Invalid;
        };
        let expected = self.mac(issued, flow);
        if !bool::from(expected.ct_eq(&mac)) {
            return NonceCheck::Invalid;
        }
        // The age in 32-bit arithmetic, so the truncated issue time wraps with the clock.
        let now = unix_now as u32;
        let age = now.wrapping_sub(issued);
        if issued.wrapping_sub(now) as u64 <= FUTURE_SKEW_SECS {
            return NonceCheck::Valid;
        }
        if age > u32::MAX / 2 {
            return NonceCheck::Invalid;
        }
        if u64::from(age) > lifetime_secs {
            return NonceCheck::Stale;
        }
        NonceCheck::Valid
    }

    fn mac(&self, issued: u32, flow: Flow) -> [u8; MAC_BYTES] {
        let mut m = <HmacSha1 as Mac>::new_from_slice(&self.0).expect("HMAC takes any key length");
        m.update(&issued.to_be_bytes());
        m.update(&flow.socket.to_bytes());
        m.update(&flow.remote.port().to_be_bytes());
        // A dual-stack socket may report the same client as ::ffff:a.b.c.d;
        // canonicalising keeps its nonce valid whichever way it arrives.
        match flow.remote.ip().to_canonical() {
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
    /// Issued by this key for this flow and still fresh.
    Valid,
    /// Genuine but older than the lifetime: answer 438 Stale Nonce.
    Stale,
    /// Not a nonce this key issued for this flow.
    Invalid,
}

/// A nonce as sent in the NONCE attribute: 16 base64url characters.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Nonce([u8; NONCE_LEN]);

impl Nonce {
    /// The nonce text.
    pub fn as_str(&self) -> &str {
        // Only `issue` builds a Nonce and it writes base64url characters only.
        std::str::from_utf8(&self.0).expect("nonce is ASCII")
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

/// Accepts only what `issue` writes: 16 characters carry exactly 96 bits, so each nonce has
/// one spelling.
fn parse(nonce: &[u8]) -> Option<(u32, [u8; MAC_BYTES])> {
    if nonce.len() != NONCE_LEN {
        return None;
    }
    let mut raw = [0u8; RAW_LEN];
    match URL_SAFE_NO_PAD.decode_slice(nonce, &mut raw) {
        Ok(RAW_LEN) => {}
        _ => return None,
    }
    let issued = u32::from_be_bytes(raw[..TIME_BYTES].try_into().ok()?);
    let mut mac = [0u8; MAC_BYTES];
    mac.copy_from_slice(&raw[TIME_BYTES..]);
    Some((issued, mac))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::SocketId;
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

    const NOW: u64 = 1_700_000_000;
    const LIFE: u64 = 600;

    fn key() -> NonceKey {
        NonceKey::from_bytes([7u8; 32])
    }

    fn flow() -> Flow {
        Flow {
            socket: SocketId::Listener(3),
            remote: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)), 40000),
        }
    }

    #[test]
    fn shape() {
        let n = key().issue(NOW, flow());
        assert_eq!(n.as_str().len(), NONCE_LEN);
        assert!(n
            .as_str()
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        // The issue time leads, in clear: the MAC follows it.
        let raw = URL_SAFE_NO_PAD.decode(n.as_str()).unwrap();
        assert_eq!(raw[..TIME_BYTES], (NOW as u32).to_be_bytes());
        assert!(n.as_str().starts_with("ZVPxA"), "{}", n.as_str());
        assert_eq!(n.as_bytes(), n.as_str().as_bytes());
    }

    #[test]
    fn valid_within_lifetime() {
        let n = key().issue(NOW, flow());
        assert_eq!(
            key().check(n.as_bytes(), NOW, flow(), LIFE),
            NonceCheck::Valid
        );
        assert_eq!(
            key().check(n.as_bytes(), NOW + LIFE, flow(), LIFE),
            NonceCheck::Valid
        );
    }

    #[test]
    fn stale_after_lifetime() {
        let n = key().issue(NOW, flow());
        assert_eq!(
            key().check(n.as_bytes(), NOW + LIFE + 1, flow(), LIFE),
            NonceCheck::Stale
        );
    }

    #[test]
    fn other_address_port_or_socket_is_invalid() {
        let n = key().issue(NOW, flow());
        let mut other_ip = flow();
        other_ip
            .remote
            .set_ip(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 8)));
        let mut other_port = flow();
        other_port.remote.set_port(40001);
        let mut other_socket = flow();
        other_socket.socket = SocketId::Connection(3);
        for f in [other_ip, other_port, other_socket] {
            assert_eq!(
                key().check(n.as_bytes(), NOW, f, LIFE),
                NonceCheck::Invalid,
                "{f:?}"
            );
        }
    }

    #[test]
    fn mapped_v6_is_same_client() {
        let n = key().issue(NOW, flow());
        let mut mapped = flow();
        mapped
            .remote
            .set_ip(IpAddr::V6(Ipv4Addr::new(198, 51, 100, 7).to_ipv6_mapped()));
        assert_eq!(
            key().check(n.as_bytes(), NOW, mapped, LIFE),
            NonceCheck::Valid
        );
        let mut v6 = flow();
        v6.remote
            .set_ip(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)));
        let n6 = key().issue(NOW, v6);
        assert_eq!(key().check(n6.as_bytes(), NOW, v6, LIFE), NonceCheck::Valid);
    }

    #[test]
    fn other_key_is_invalid() {
        let n =
            NonceKey::generate(&mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(1))
                .issue(NOW, flow());
        assert_eq!(
            key().check(n.as_bytes(), NOW, flow(), LIFE),
            NonceCheck::Invalid
        );
    }

    #[test]
    fn tampered_is_invalid() {
        let n = key().issue(NOW, flow());
        for at in [0, 5, 15] {
            let mut bytes = *n.as_bytes();
            bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
            assert_eq!(
                key().check(&bytes, NOW, flow(), LIFE),
                NonceCheck::Invalid,
                "byte {at}"
            );
        }
    }

    #[test]
    fn malformed_is_invalid() {
        let n = key().issue(NOW, flow());
        let k = key();
        assert_eq!(k.check(b"", NOW, flow(), LIFE), NonceCheck::Invalid);
        assert_eq!(
            k.check(&n.as_bytes()[..15], NOW, flow(), LIFE),
            NonceCheck::Invalid
        );
        let mut padded = n.as_bytes().to_vec();
        padded.extend_from_slice(b"==");
        assert_eq!(k.check(&padded, NOW, flow(), LIFE), NonceCheck::Invalid);
        assert_eq!(
            k.check(&[b'!'; NONCE_LEN], NOW, flow(), LIFE),
            NonceCheck::Invalid
        );
        // The old 40-character form is not accepted.
        assert_eq!(k.check(&[b'a'; 40], NOW, flow(), LIFE), NonceCheck::Invalid);
    }

    #[test]
    fn future_beyond_skew_is_invalid() {
        let k = key();
        let n = k.issue(NOW + FUTURE_SKEW_SECS, flow());
        assert_eq!(k.check(n.as_bytes(), NOW, flow(), LIFE), NonceCheck::Valid);
        let n = k.issue(NOW + FUTURE_SKEW_SECS + 1, flow());
        assert_eq!(
            k.check(n.as_bytes(), NOW, flow(), LIFE),
            NonceCheck::Invalid
        );
    }

    #[test]
    fn age_survives_the_32_bit_wrap() {
        let k = key();
        let before = (1u64 << 32) - 10;
        let n = k.issue(before, flow());
        assert_eq!(
            k.check(n.as_bytes(), before + 20, flow(), LIFE),
            NonceCheck::Valid
        );
        assert_eq!(
            k.check(n.as_bytes(), before + LIFE + 1, flow(), LIFE),
            NonceCheck::Stale
        );
    }

    #[test]
    fn debug_hides_key() {
        assert_eq!(format!("{:?}", key()), "NonceKey(..)");
    }
}
