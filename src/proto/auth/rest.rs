//! TURN REST credentials (draft-uberti-behave-turn-rest), as coturn's
//! `use-auth-secret` and Prosody's `mod_external_services` produce them.
//!
//! The username carries an expiry timestamp and the password is
//! `base64(HMAC-SHA1(secret, username))`, so any relay holding the secret can
//! verify a client without shared state.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;

type HmacSha1 = Hmac<Sha1>;
type HmacSha256 = Hmac<Sha256>;

/// Length of a REST password: base64 (padded) of a 20-byte HMAC-SHA1.
pub const REST_PASSWORD_LEN: usize = 28;
/// Length of a REST password made with HMAC-SHA256: base64 (padded) of 32 bytes.
pub const REST_PASSWORD_SHA256_LEN: usize = 44;

/// The HMAC that turns a REST username into its password (`rest-api-hmac`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RestHmac {
    /// HMAC-SHA1, what coturn and Prosody's `mod_external_services` use.
    #[default]
    Sha1,
    /// HMAC-SHA256.
    Sha256,
}

/// The REST password for `username` made with `hmac`.
pub fn rest_password_with(hmac: RestHmac, secret: &[u8], username: &str) -> String {
    let mut buf = [0u8; REST_PASSWORD_SHA256_LEN];
    rest_password_into_with(hmac, secret, username, &mut buf).to_owned()
}

/// Like [`rest_password_with`] but writes into `out` and allocates nothing.
pub fn rest_password_into_with<'a>(
    hmac: RestHmac,
    secret: &[u8],
    username: &str,
    out: &'a mut [u8; REST_PASSWORD_SHA256_LEN],
) -> &'a str {
    let n = match hmac {
        RestHmac::Sha1 => {
            let mut mac = <HmacSha1 as Mac>::new_from_slice(secret).expect("any key length");
            mac.update(username.as_bytes());
            STANDARD.encode_slice(mac.finalize().into_bytes(), &mut out[..])
        }
        RestHmac::Sha256 => {
            let mut mac = <HmacSha256 as Mac>::new_from_slice(secret).expect("any key length");
            mac.update(username.as_bytes());
            STANDARD.encode_slice(mac.finalize().into_bytes(), &mut out[..])
        }
    }
    .expect("44 bytes hold base64 of 32");
    std::str::from_utf8(&out[..n]).expect("base64 output is ASCII")
}

/// A REST username split into its expiry and user part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestUsername<'a> {
    /// Unix time (seconds) after which the credential is no longer valid.
    pub expiry: u64,
    /// The user part, empty for the bare `<unix-expiry>` form.
    pub user_id: &'a str,
}

/// Parses `<expiry>`, `<expiry><sep><user>` or `<user><sep><expiry>`.
///
/// When both sides are numeric the first is taken as the expiry, as coturn
/// does. The user part may contain `sep` itself, but only on the side away from
/// the timestamp. Returns `None` when neither end is a timestamp or the user
/// part is empty.
pub fn parse_rest_username(username: &str, sep: char) -> Option<RestUsername<'_>> {
    if let Some(expiry) = parse_timestamp(username) {
        return Some(RestUsername {
            expiry,
            user_id: "",
        });
    }
    // Timestamp first wins, so `123:456` is expiry 123 for user `456`.
    let head_first = username
        .split_once(sep)
        .and_then(|(head, user_id)| Some((parse_timestamp(head)?, user_id)));
    let (expiry, user_id) = head_first.or_else(|| {
        let (user_id, tail) = username.rsplit_once(sep)?;
        Some((parse_timestamp(tail)?, user_id))
    })?;
    (!user_id.is_empty()).then_some(RestUsername { expiry, user_id })
}

/// Digits only: `u64::from_str` would also accept a leading `+`, which no
/// REST issuer writes and which would let two spellings map to one expiry.
fn parse_timestamp(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The REST password for `username`: base64 (standard, padded) of
/// HMAC-SHA1(secret, username).
pub fn rest_password(secret: &[u8], username: &str) -> String {
    let mut buf = [0u8; REST_PASSWORD_LEN];
    rest_password_into(secret, username, &mut buf).to_owned()
}

/// Like [`rest_password`] but writes into `out` and allocates nothing, since
/// the server derives this for every authenticated request.
pub fn rest_password_into<'a>(
    secret: &[u8],
    username: &str,
    out: &'a mut [u8; REST_PASSWORD_LEN],
) -> &'a str {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <HmacSha1 as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(username.as_bytes());
    let digest = mac.finalize().into_bytes();
    // 20 bytes always encode to exactly 28 ASCII characters; neither step
    // depends on input, so a failure would be a bug in this function.
    let n = STANDARD
        .encode_slice(digest, &mut out[..])
        .expect("28 bytes hold base64 of 20");
    std::str::from_utf8(&out[..n]).expect("base64 output is ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_timestamp() {
        assert_eq!(
            parse_rest_username("1700000000", ':'),
            Some(RestUsername {
                expiry: 1_700_000_000,
                user_id: ""
            })
        );
    }

    /// The expiry and user id of a username that must parse.
    fn expiry_and_user(username: &str, sep: char) -> (u64, &str) {
        let r = parse_rest_username(username, sep).expect("a REST username");
        (r.expiry, r.user_id)
    }

    #[test]
    fn timestamp_first() {
        assert_eq!(
            expiry_and_user("1700000000:alice", ':'),
            (1_700_000_000, "alice")
        );
    }

    #[test]
    fn timestamp_last() {
        assert_eq!(
            expiry_and_user("alice:1700000000", ':'),
            (1_700_000_000, "alice")
        );
    }

    #[test]
    fn both_numeric_takes_first_as_expiry() {
        assert_eq!(expiry_and_user("1700000000:42", ':'), (1_700_000_000, "42"));
    }

    #[test]
    fn separator_inside_user_on_far_side() {
        assert_eq!(
            expiry_and_user("1700000000:alice:x", ':'),
            (1_700_000_000, "alice:x")
        );
        assert_eq!(
            expiry_and_user("alice:x:1700000000", ':'),
            (1_700_000_000, "alice:x")
        );
    }

    #[test]
    fn other_separators() {
        assert_eq!(
            expiry_and_user("1700000000-alice", '-'),
            (1_700_000_000, "alice")
        );
        assert_eq!(
            expiry_and_user("alice_1700000000", '_'),
            (1_700_000_000, "alice")
        );
        // With '-' configured, ':' is just part of a non-numeric user.
        assert_eq!(parse_rest_username("1700000000:alice", '-'), None);
    }

    #[test]
    fn rejects_non_rest_names() {
        assert_eq!(parse_rest_username("alice:bob", ':'), None);
        assert_eq!(parse_rest_username("alice", ':'), None);
        assert_eq!(parse_rest_username("", ':'), None);
        assert_eq!(parse_rest_username("+1700000000:alice", ':'), None);
        assert_eq!(parse_rest_username("1700000000:", ':'), None);
        assert_eq!(parse_rest_username(":1700000000", ':'), None);
        // Overflows u64: not a timestamp.
        assert_eq!(parse_rest_username("99999999999999999999999:a", ':'), None);
    }

    #[test]
    fn sha256_password_matches_independent_vector() {
        // python3 -c 'import hmac,hashlib,base64;print(base64.b64encode(hmac.new(b"north",b"1700000000:alice",hashlib.sha256).digest()).decode())'
        let expected = "EuME0Xh0HllnbpbObfs8aBsd78Vr1EMwxArqbyCrGl8=";
        assert_eq!(
            rest_password_with(RestHmac::Sha256, b"north", "1700000000:alice"),
            expected
        );
        assert_eq!(
            rest_password_with(RestHmac::Sha1, b"north", "1700000000:alice"),
            rest_password(b"north", "1700000000:alice")
        );
    }

    #[test]
    fn password_matches_independent_vector() {
        // Obtained with:
        // python3 -c 'import hmac,hashlib,base64;print(base64.b64encode(hmac.new(b"north",b"1700000000:alice",hashlib.sha1).digest()).decode())'
        let expected = "Cd/49soE35ICqcJF/bCTn8Z4OyE=";
        assert_eq!(rest_password(b"north", "1700000000:alice"), expected);
        let mut buf = [0u8; REST_PASSWORD_LEN];
        assert_eq!(
            rest_password_into(b"north", "1700000000:alice", &mut buf),
            expected
        );
    }
}
