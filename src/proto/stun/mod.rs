//! STUN message codec (RFC 8489) with the TURN attributes of RFC 8656 and RFC 6156.
//!
//! Parsing borrows the datagram and never allocates; writing goes into a buffer the caller owns.

pub mod attr;
pub mod error;
pub mod error_code;
pub mod integrity;
pub mod message;
pub mod writer;
pub mod xor_addr;

pub use error::CodecError;
pub use error_code::ErrorCode;
pub use message::{Attributes, Message};
pub use writer::MessageWriter;

/// The fixed value every RFC 5389+ STUN message carries in bytes 4..8.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// Length of the STUN header.
pub const HEADER_LEN: usize = 20;
/// A transaction id.
pub type TransactionId = [u8; 12];

/// STUN and TURN methods this server knows.
pub mod method {
    /// Binding (RFC 8489).
    pub const BINDING: u16 = 0x001;
    /// Allocate (RFC 8656).
    pub const ALLOCATE: u16 = 0x003;
    /// Refresh.
    pub const REFRESH: u16 = 0x004;
    /// Send indication.
    pub const SEND: u16 = 0x006;
    /// Data indication.
    pub const DATA: u16 = 0x007;
    /// CreatePermission.
    pub const CREATE_PERMISSION: u16 = 0x008;
    /// ChannelBind.
    pub const CHANNEL_BIND: u16 = 0x009;
    /// Connect (RFC 6062 §4.3).
    pub const CONNECT: u16 = 0x00A;
    /// ConnectionBind (RFC 6062 §4.4).
    pub const CONNECTION_BIND: u16 = 0x00B;
    /// ConnectionAttempt indication (RFC 6062 §4.5).
    pub const CONNECTION_ATTEMPT: u16 = 0x00C;
}

/// The class bits of a STUN message type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// A request, answered by a success or error response.
    Request,
    /// An indication, never answered.
    Indication,
    /// A success response.
    Success,
    /// An error response.
    Error,
}

/// Packs method and class into the 14-bit message type (RFC 8489 §5).
pub fn message_type(method: u16, class: Class) -> u16 {
    let c = match class {
        Class::Request => 0x000,
        Class::Indication => 0x010,
        Class::Success => 0x100,
        Class::Error => 0x110,
    };
    (method & 0x000F) | ((method & 0x0070) << 1) | ((method & 0x0F80) << 2) | c
}

/// Splits a message type into method and class.
pub fn split_message_type(typ: u16) -> (u16, Class) {
    let method = (typ & 0x000F) | ((typ >> 1) & 0x0070) | ((typ >> 2) & 0x0F80);
    let class = match typ & 0x0110 {
        0x000 => Class::Request,
        0x010 => Class::Indication,
        0x100 => Class::Success,
        _ => Class::Error,
    };
    (method, class)
}

/// Rounds up to the next multiple of four (STUN attribute padding).
pub const fn padded(len: usize) -> usize {
    (len + 3) & !3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_type_round_trips() {
        for m in [
            method::BINDING,
            method::ALLOCATE,
            method::CHANNEL_BIND,
            0x0FFF,
        ] {
            for c in [
                Class::Request,
                Class::Indication,
                Class::Success,
                Class::Error,
            ] {
                assert_eq!(split_message_type(message_type(m, c)), (m, c));
            }
        }
        assert_eq!(message_type(method::BINDING, Class::Request), 0x0001);
        assert_eq!(message_type(method::BINDING, Class::Success), 0x0101);
        assert_eq!(message_type(method::ALLOCATE, Class::Error), 0x0113);
        assert_eq!(message_type(method::SEND, Class::Indication), 0x0016);
        assert_eq!(message_type(method::DATA, Class::Indication), 0x0017);
    }
}

#[cfg(test)]
mod rfc5769_tests;
