//! The shared TURN secret: generated strong, and spelled so that it survives every file it is
//! pasted into (turnserver.conf, a shell-style `.env`, YAML, a Lua string) without quoting.

use rand::rngs::OsRng;
use rand::RngCore;

/// Random bytes in a generated secret; hex-encoded it is twice as long.
pub const SECRET_BYTES: usize = 32;

/// A fresh secret: 32 bytes from the operating system's generator, as 64 lowercase hex digits.
///
/// Hex because it needs no escaping anywhere: not in Lua (`"` and `\`), YAML (`:`, `#`, a
/// leading `*` or `&`), a `.env` line (`$`, spaces, quotes) nor turnserver.conf (`#`).
pub fn generate() -> String {
    let mut bytes = [0u8; SECRET_BYTES];
    OsRng.fill_bytes(&mut bytes);
    to_hex(&bytes)
}

/// Lowercase hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}

/// Why a secret given by the operator cannot be written into the generated files as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// Empty.
    #[error("the secret is empty")]
    Empty,
    /// Shorter than 16 characters: guessable offline from one captured credential.
    #[error("the secret has {0} characters; use at least 16 (a generated one has 64)")]
    TooShort(usize),
    /// Contains a character that one of the target formats would change or cut.
    #[error(
        "the secret contains {0:?}, which breaks Lua, YAML, .env or turnserver.conf quoting; \
         use letters, digits and - _ . only (or let `ferroturn jitsi init` generate one)"
    )]
    UnsafeChar(char),
}

/// Accepts secrets made of ASCII letters, digits, `-`, `_` and `.` (at least 16 of them): the
/// characters every target format reads back unchanged.
pub fn validate(secret: &str) -> Result<(), SecretError> {
    if secret.is_empty() {
        return Err(SecretError::Empty);
    }
    if let Some(c) = secret
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(SecretError::UnsafeChar(c));
    }
    if secret.len() < 16 {
        return Err(SecretError::TooShort(secret.len()));
    }
    Ok(())
}

/// The first characters of a secret, enough to tell two apart in a message without leaking it.
pub fn fingerprint(secret: &str) -> String {
    let head: String = secret.chars().take(6).collect();
    format!("{head}… ({} chars)", secret.chars().count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secret_is_64_lowercase_hex_and_differs_each_time() {
        let a = generate();
        let b = generate();
        assert_eq!(a.len(), 64);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
        assert_ne!(a, b);
        assert_eq!(validate(&a), Ok(()));
    }

    #[test]
    fn generated_secrets_never_hold_characters_that_break_lua_or_yaml() {
        for _ in 0..200 {
            let s = generate();
            for bad in [
                '"', '\'', '\\', ':', '#', '$', ' ', '\n', '&', '*', '{', '}', '[', ']',
            ] {
                assert!(!s.contains(bad), "{s} contains {bad:?}");
            }
        }
    }

    #[test]
    fn hex_encoding() {
        assert_eq!(to_hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
    }

    #[test]
    fn operator_secrets_are_checked() {
        assert_eq!(validate(""), Err(SecretError::Empty));
        assert_eq!(validate("short"), Err(SecretError::TooShort(5)));
        assert_eq!(
            validate("abc\"def0123456789"),
            Err(SecretError::UnsafeChar('"'))
        );
        assert_eq!(
            validate("abc def0123456789"),
            Err(SecretError::UnsafeChar(' '))
        );
        assert_eq!(validate("Abc-def_0123.456789"), Ok(()));
    }
}
