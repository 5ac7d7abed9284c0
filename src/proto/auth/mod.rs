//! Credential checks: which long-term keys may have signed a request.
//!
//! The STUN layer verifies MESSAGE-INTEGRITY itself; this module only tells it
//! which keys to try for a username, so REST secrets can rotate (every
//! configured secret yields a candidate) and static users need no lookup
//! beyond a map.

pub mod algorithm;
pub mod long_term;
pub mod nonce;
pub mod rest;

use std::collections::HashMap;
use std::fmt;

use crate::stun::ErrorCode;

use algorithm::{sha256_key, Algorithm, CredKey};
use long_term::{long_term_key, LongTermKey};
use rest::{parse_rest_username, rest_password_into_with, RestHmac, REST_PASSWORD_SHA256_LEN};

/// Most REST secrets tried per request; later ones are ignored (see
/// [`Authenticator::ignored_rest_secrets`]). Two or three cover a rotation,
/// and the bound keeps [`KeyCandidates`] on the stack.
pub const MAX_REST_SECRETS: usize = 8;

/// How a static (`user=`) account's secret is given in the configuration.
#[derive(Clone, PartialEq, Eq)]
pub enum UserSecret {
    /// Plain password; the key is derived with the realm.
    Password(String),
    /// Precomputed key (`0x…` in `turnserver.conf`).
    Key(LongTermKey),
}

impl fmt::Debug for UserSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Secrets must never reach a log line.
        match self {
            Self::Password(_) => f.write_str("Password(..)"),
            Self::Key(_) => f.write_str("Key(..)"),
        }
    }
}

/// Authentication configuration, as plain data.
#[derive(Clone)]
pub struct AuthSettings {
    /// REALM sent to clients and mixed into every long-term key.
    pub realm: String,
    /// Serve without authentication (must be asked for explicitly). The
    /// caller skips MESSAGE-INTEGRITY checks entirely when set.
    pub no_auth: bool,
    /// TURN REST secrets (`static-auth-secret` lines); all are tried.
    pub rest_secrets: Vec<Vec<u8>>,
    /// Separator between timestamp and user in REST usernames.
    pub rest_separator: char,
    /// Static long-term users; a later duplicate name replaces an earlier one.
    pub users: Vec<(String, UserSecret)>,
    /// Refuse expired REST usernames on Refresh too, not only on Allocate.
    pub strict_expiry: bool,
    /// The HMAC that makes REST passwords (`rest-api-hmac`).
    pub rest_hmac: RestHmac,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            realm: String::new(),
            no_auth: false,
            rest_secrets: Vec::new(),
            rest_separator: ':',
            users: Vec::new(),
            strict_expiry: false,
            rest_hmac: RestHmac::Sha1,
        }
    }
}

impl fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthSettings")
            .field("realm", &self.realm)
            .field("no_auth", &self.no_auth)
            .field(
                "rest_secrets",
                &format_args!("[{} redacted]", self.rest_secrets.len()),
            )
            .field("rest_separator", &self.rest_separator)
            .field("users", &format_args!("[{} redacted]", self.users.len()))
            .field("strict_expiry", &self.strict_expiry)
            .field("rest_hmac", &self.rest_hmac)
            .finish()
    }
}

/// Which request the credentials are presented with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Allocate: creates a new allocation.
    Allocate,
    /// Refresh, CreatePermission or ChannelBind on an existing allocation.
    Refresh,
}

/// Why no key could be offered for a username.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Neither a static user nor a REST username we hold a secret for.
    #[error("unknown user")]
    UnknownUser,
    /// A REST username whose timestamp has passed.
    #[error("credentials expired")]
    Expired,
    /// A static user configured by its MD5 key asked for SHA-256, which cannot be derived
    /// from it.
    #[error("only an MD5 key is configured for this user")]
    NoSha256Key,
}

impl AuthError {
    /// The STUN error code to answer with: a 401 challenge, which tells a guesser nothing
    /// about which of the reasons it was.
    pub fn stun_code(&self) -> ErrorCode {
        match self {
            Self::UnknownUser | Self::Expired | Self::NoSha256Key => ErrorCode::Unauthorized,
        }
    }
}

/// Long-term keys to try against MESSAGE-INTEGRITY(-SHA256), held inline so a
/// request costs no heap allocation.
#[derive(Clone, Copy)]
pub struct KeyCandidates {
    keys: [CredKey; MAX_REST_SECRETS],
    len: usize,
}

impl KeyCandidates {
    fn empty() -> Self {
        Self {
            keys: [CredKey::md5([0; 16]); MAX_REST_SECRETS],
            len: 0,
        }
    }

    fn push(&mut self, key: CredKey) {
        if let Some(slot) = self.keys.get_mut(self.len) {
            *slot = key;
            self.len += 1;
        }
    }

    /// The candidate keys, in configuration order.
    pub fn as_slice(&self) -> &[CredKey] {
        &self.keys[..self.len]
    }

    /// Iterates over the candidate keys.
    pub fn iter(&self) -> std::slice::Iter<'_, CredKey> {
        self.as_slice().iter()
    }

    /// Number of candidates.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there is nothing to try.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<'a> IntoIterator for &'a KeyCandidates {
    type Item = &'a CredKey;
    type IntoIter = std::slice::Iter<'a, CredKey>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl fmt::Debug for KeyCandidates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyCandidates({} keys)", self.len)
    }
}

/// A short, stable id for a REST secret (the first 8 bytes of its SHA-1), so logs and the admin
/// API can name a secret without showing it.
pub fn secret_id(secret: &[u8]) -> u64 {
    use sha1::{Digest, Sha1};
    let digest = Sha1::digest(secret);
    u64::from_be_bytes(digest[..8].try_into().expect("SHA-1 has 20 bytes"))
}

/// Answers "which keys could have signed this?" for static and REST users.
pub struct Authenticator {
    realm: String,
    no_auth: bool,
    rest_secrets: Vec<Vec<u8>>,
    ignored_rest_secrets: usize,
    rest_separator: char,
    /// Static users' MD5 key, and their SHA-256 key when a password (not a key) is configured.
    static_keys: HashMap<String, (LongTermKey, Option<[u8; 32]>)>,
    strict_expiry: bool,
    rest_hmac: RestHmac,
}

impl Authenticator {
    /// Builds the authenticator, deriving static users' keys once.
    pub fn new(settings: AuthSettings) -> Self {
        let AuthSettings {
            realm,
            no_auth,
            rest_secrets,
            rest_separator,
            users,
            strict_expiry,
            rest_hmac,
        } = settings;
        // The same secret from two config sources would only cost a second
        // HMAC per request.
        let mut secrets: Vec<Vec<u8>> = Vec::new();
        for s in rest_secrets {
            if !secrets.contains(&s) {
                secrets.push(s);
            }
        }
        let ignored_rest_secrets = secrets.len().saturating_sub(MAX_REST_SECRETS);
        secrets.truncate(MAX_REST_SECRETS);
        let static_keys = users
            .into_iter()
            .map(|(name, secret)| {
                let keys = match secret {
                    UserSecret::Password(p) => (
                        long_term_key(&name, &realm, &p),
                        Some(sha256_key(&name, &realm, &p)),
                    ),
                    UserSecret::Key(k) => (k, None),
                };
                (name, keys)
            })
            .collect();
        Self {
            realm,
            no_auth,
            rest_secrets: secrets,
            ignored_rest_secrets,
            rest_separator,
            static_keys,
            strict_expiry,
            rest_hmac,
        }
    }

    /// The configured realm.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// True when authentication is switched off (`no-auth`).
    pub fn no_auth(&self) -> bool {
        self.no_auth
    }

    /// REST secrets beyond [`MAX_REST_SECRETS`] that will never be tried, so
    /// configuration loading can warn about them.
    pub fn ignored_rest_secrets(&self) -> usize {
        self.ignored_rest_secrets
    }

    /// The keys that may have produced MESSAGE-INTEGRITY for `username`.
    ///
    /// A static user wins over REST parsing. An expired REST username is
    /// refused on Allocate; on Refresh only with `strict_expiry`, because by
    /// default (like coturn) a live allocation may outlive its credential's
    /// timestamp. The expiry second itself is still valid.
    pub fn candidate_keys(
        &self,
        username: &str,
        unix_now: u64,
        purpose: Purpose,
        algorithm: Algorithm,
    ) -> Result<KeyCandidates, AuthError> {
        let mut out = KeyCandidates::empty();
        if let Some((md5, sha256)) = self.static_keys.get(username) {
            out.push(match (algorithm, sha256) {
                (Algorithm::Md5, _) => CredKey::md5(*md5),
                (Algorithm::Sha256, Some(k)) => CredKey::sha256(*k),
                (Algorithm::Sha256, None) => return Err(AuthError::NoSha256Key),
            });
            return Ok(out);
        }
        if self.rest_secrets.is_empty() {
            return Err(AuthError::UnknownUser);
        }
        let rest =
            parse_rest_username(username, self.rest_separator).ok_or(AuthError::UnknownUser)?;
        let check_expiry = match purpose {
            Purpose::Allocate => true,
            Purpose::Refresh => self.strict_expiry,
        };
        if check_expiry && rest.expiry < unix_now {
            return Err(AuthError::Expired);
        }
        let mut buf = [0u8; REST_PASSWORD_SHA256_LEN];
        for secret in &self.rest_secrets {
            let password = rest_password_into_with(self.rest_hmac, secret, username, &mut buf);
            out.push(match algorithm {
                Algorithm::Md5 => CredKey::md5(long_term_key(username, &self.realm, password)),
                Algorithm::Sha256 => CredKey::sha256(sha256_key(username, &self.realm, password)),
            });
        }
        Ok(out)
    }

    /// The REST secret behind candidate key `index` of `username`, or `None` for a static user.
    pub fn secret_of_candidate(&self, username: &str, index: usize) -> Option<u64> {
        if self.static_keys.contains_key(username) {
            return None;
        }
        self.rest_secrets.get(index).map(|s| secret_id(s))
    }

    /// Ids of the REST secrets in the order they are tried.
    pub fn secret_ids(&self) -> Vec<u64> {
        self.rest_secrets.iter().map(|s| secret_id(s)).collect()
    }

    /// The identity quotas are counted against: a static user's name, or a
    /// REST username without its timestamp (the whole username for the bare
    /// timestamp form, which has no user part).
    pub fn user_id<'a>(&self, username: &'a str) -> &'a str {
        if self.static_keys.contains_key(username) {
            return username;
        }
        match parse_rest_username(username, self.rest_separator) {
            Some(r) if !r.user_id.is_empty() => r.user_id,
            _ => username,
        }
    }
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("realm", &self.realm)
            .field("no_auth", &self.no_auth)
            .field("rest_secrets", &self.rest_secrets.len())
            .field("static_users", &self.static_keys.len())
            .field("strict_expiry", &self.strict_expiry)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::long_term::parse_md5_key;
    use super::rest::rest_password;
    use super::*;

    const REALM: &str = "ferro.test";
    const NOW: u64 = 1_700_000_000;

    /// The MD5 keys `a` would try for `username` at `NOW`.
    fn md5_keys(
        a: &Authenticator,
        username: &str,
        purpose: Purpose,
    ) -> Result<KeyCandidates, AuthError> {
        a.candidate_keys(username, NOW, purpose, Algorithm::Md5)
    }

    /// Whether `a` refuses `username` on Allocate as an unknown user.
    fn is_unknown(a: &Authenticator, username: &str) -> bool {
        matches!(
            md5_keys(a, username, Purpose::Allocate),
            Err(AuthError::UnknownUser)
        )
    }

    fn rest_auth(secrets: &[&[u8]], sep: char, strict: bool) -> Authenticator {
        Authenticator::new(AuthSettings {
            realm: REALM.into(),
            rest_secrets: secrets.iter().map(|s| s.to_vec()).collect(),
            rest_separator: sep,
            strict_expiry: strict,
            ..AuthSettings::default()
        })
    }

    fn expected(secret: &[u8], username: &str) -> CredKey {
        CredKey::md5(long_term_key(
            username,
            REALM,
            &rest_password(secret, username),
        ))
    }

    #[test]
    fn rest_all_three_forms() {
        let a = rest_auth(&[b"north"], ':', false);
        for name in ["1700000100", "1700000100:alice", "alice:1700000100"] {
            let keys = md5_keys(&a, name, Purpose::Allocate).unwrap();
            assert_eq!(keys.as_slice(), &[expected(b"north", name)], "{name}");
        }
    }

    #[test]
    fn every_secret_gives_a_key() {
        let a = rest_auth(&[b"old", b"new", b"old"], ':', false);
        let name = "1700000100:alice";
        let keys = md5_keys(&a, name, Purpose::Allocate).unwrap();
        let got: Vec<_> = keys.iter().copied().collect();
        assert_eq!(got, vec![expected(b"old", name), expected(b"new", name)]);
        assert_eq!((&keys).into_iter().count(), 2);
    }

    #[test]
    fn secrets_beyond_the_limit_are_ignored() {
        let secrets: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i]).collect();
        let refs: Vec<&[u8]> = secrets.iter().map(|s| s.as_slice()).collect();
        let a = rest_auth(&refs, ':', false);
        assert_eq!(a.ignored_rest_secrets(), 2);
        let keys = md5_keys(&a, "1700000100", Purpose::Allocate).unwrap();
        assert_eq!(keys.len(), MAX_REST_SECRETS);
        assert_eq!(keys.as_slice()[7], expected(&[7], "1700000100"));
    }

    #[test]
    fn configurable_separator() {
        for sep in ['-', '_'] {
            let a = rest_auth(&[b"north"], sep, false);
            let name = format!("1700000100{sep}alice");
            let keys = md5_keys(&a, &name, Purpose::Allocate).unwrap();
            assert_eq!(keys.as_slice(), &[expected(b"north", &name)]);
            assert_eq!(a.user_id(&name), "alice");
            // The default separator is just an unknown name here.
            assert!(is_unknown(&a, "1700000100:alice"));
        }
    }

    #[test]
    fn expiry_on_allocate_and_refresh() {
        let lax = rest_auth(&[b"north"], ':', false);
        let strict = rest_auth(&[b"north"], ':', true);
        let past = "1699999999:alice";
        let edge = "1700000000:alice";
        for a in [&lax, &strict] {
            assert_eq!(
                md5_keys(a, past, Purpose::Allocate).unwrap_err(),
                AuthError::Expired
            );
            assert!(md5_keys(a, edge, Purpose::Allocate).is_ok());
        }
        assert!(md5_keys(&lax, past, Purpose::Refresh).is_ok());
        assert_eq!(
            md5_keys(&strict, past, Purpose::Refresh).unwrap_err(),
            AuthError::Expired
        );
        assert_eq!(AuthError::Expired.stun_code(), ErrorCode::Unauthorized);
    }

    #[test]
    fn static_user_by_password_or_key() {
        // Key obtained with:
        // python3 -c 'import hashlib;print(hashlib.md5(b"bob:ferro.test:hunter2").hexdigest())'
        let hex = "0x2f1dda836eef838c3d205ff8af38c59b";
        let by_pw = Authenticator::new(AuthSettings {
            realm: REALM.into(),
            users: vec![("bob".into(), UserSecret::Password("hunter2".into()))],
            ..AuthSettings::default()
        });
        let by_key = Authenticator::new(AuthSettings {
            realm: REALM.into(),
            users: vec![("bob".into(), UserSecret::Key(parse_md5_key(hex).unwrap()))],
            ..AuthSettings::default()
        });
        let a = md5_keys(&by_pw, "bob", Purpose::Allocate).unwrap();
        let b = md5_keys(&by_key, "bob", Purpose::Allocate).unwrap();
        assert_eq!(a.as_slice(), b.as_slice());
        assert_eq!(a.as_slice(), &[CredKey::md5(parse_md5_key(hex).unwrap())]);
        assert_eq!(by_pw.user_id("bob"), "bob");
    }

    #[test]
    fn static_user_wins_over_rest() {
        let name = "1600000000:carol";
        let a = Authenticator::new(AuthSettings {
            realm: REALM.into(),
            rest_secrets: vec![b"north".to_vec()],
            users: vec![(name.into(), UserSecret::Password("pw".into()))],
            ..AuthSettings::default()
        });
        // Long past its "expiry", yet a static user is never treated as REST.
        let keys = md5_keys(&a, name, Purpose::Allocate).unwrap();
        assert_eq!(
            keys.as_slice(),
            &[CredKey::md5(long_term_key(name, REALM, "pw"))]
        );
        assert_eq!(a.user_id(name), name);
    }

    #[test]
    fn unknown_user() {
        let a = rest_auth(&[b"north"], ':', false);
        for name in ["", "alice", "alice:bob"] {
            let e = md5_keys(&a, name, Purpose::Allocate).unwrap_err();
            assert_eq!(e, AuthError::UnknownUser);
            assert_eq!(e.stun_code(), ErrorCode::Unauthorized);
        }
        // A REST-shaped name is unknown when no secret is configured.
        assert!(is_unknown(&rest_auth(&[], ':', false), "1700000100:alice"));
    }

    #[test]
    fn user_id_strips_timestamp() {
        let a = rest_auth(&[b"north"], ':', false);
        assert_eq!(a.user_id("1700000100:alice"), "alice");
        assert_eq!(a.user_id("alice:1700000100"), "alice");
        assert_eq!(a.user_id("1700000100:alice:x"), "alice:x");
        assert_eq!(a.user_id("1700000100"), "1700000100");
        assert_eq!(a.user_id("dave"), "dave");
    }

    #[test]
    fn debug_redacts_secrets() {
        let s = AuthSettings {
            rest_secrets: vec![b"topsecret".to_vec()],
            users: vec![("u".into(), UserSecret::Password("hunter2".into()))],
            ..AuthSettings::default()
        };
        let text = format!("{s:?} {:?}", Authenticator::new(s.clone()));
        assert!(
            !text.contains("topsecret") && !text.contains("hunter2"),
            "{text}"
        );
    }
}
