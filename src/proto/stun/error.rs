//! Codec errors. They are `Copy` and carry no text so the hot path never allocates on bad input.

use thiserror::Error;

/// Why a datagram is not a well-formed STUN message, or why a message could not be written.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum CodecError {
    /// Shorter than a STUN header.
    #[error("shorter than a STUN header")]
    TooShort,
    /// The two leading bits are not zero, so this is not STUN.
    #[error("leading bits are not zero")]
    NotStun,
    /// The magic cookie is missing (RFC 3489 messages are not served).
    #[error("magic cookie missing")]
    BadCookie,
    /// The header length disagrees with the datagram or is not a multiple of four.
    #[error("length field disagrees with the datagram")]
    BadLength,
    /// An attribute runs past the end of the message.
    #[error("attribute overruns the message")]
    AttributeOverrun,
    /// An attribute value has the wrong size or content.
    #[error("malformed attribute {0:#06x}")]
    BadAttribute(u16),
    /// FINGERPRINT present but wrong.
    #[error("FINGERPRINT mismatch")]
    BadFingerprint,
    /// More of one repeated attribute than the server accepts in one message.
    #[error("too many attributes")]
    TooManyAttributes,
    /// The output buffer cannot hold the message.
    #[error("output buffer too small")]
    BufferTooSmall,
}
