//! The STUN/TURN error codes this server answers with (RFC 8489 §14.8, RFC 8656 §19,
//! RFC 6062 §6.3), each with its reason phrase.

/// An error response's ERROR-CODE: the class (hundreds) and number as one value.
///
/// The core answers only with these; a code is written to the wire with
/// [`MessageWriter::error_code`](super::MessageWriter::error_code). Parsing keeps the received
/// number as it is (`u16`), since a peer may send codes this enum does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum ErrorCode {
    /// 300: the client should use the ALTERNATE-SERVER given.
    TryAlternate = 300,
    /// 400: the request was malformed.
    BadRequest = 400,
    /// 401: the request lacks valid credentials.
    Unauthorized = 401,
    /// 403: the request was valid but is refused by policy.
    Forbidden = 403,
    /// 420: the request carried comprehension-required attributes this server does not know.
    UnknownAttribute = 420,
    /// 437: the request does not match the allocation of its 5-tuple (or there is none).
    AllocationMismatch = 437,
    /// 438: the NONCE is no longer valid.
    StaleNonce = 438,
    /// 440: the requested address family is not offered.
    AddressFamilyNotSupported = 440,
    /// 441: the credentials differ from those that created the allocation.
    WrongCredentials = 441,
    /// 442: the requested transport protocol is not offered.
    UnsupportedTransportProtocol = 442,
    /// 443: the peer address is of another family than the relayed address.
    PeerAddressFamilyMismatch = 443,
    /// 446: a TCP connection to this peer already exists (RFC 6062).
    ConnectionAlreadyExists = 446,
    /// 447: the TCP connection to the peer failed or timed out (RFC 6062).
    ConnectionTimeoutOrFailure = 447,
    /// 486: the user or the server holds as many allocations as allowed.
    AllocationQuotaReached = 486,
    /// 500: the server failed on its side.
    ServerError = 500,
    /// 508: the server has no resources (ports, permission slots) left for this request.
    InsufficientCapacity = 508,
}

impl ErrorCode {
    /// Every code, in numeric order.
    pub const ALL: [ErrorCode; 16] = [
        ErrorCode::TryAlternate,
        ErrorCode::BadRequest,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::UnknownAttribute,
        ErrorCode::AllocationMismatch,
        ErrorCode::StaleNonce,
        ErrorCode::AddressFamilyNotSupported,
        ErrorCode::WrongCredentials,
        ErrorCode::UnsupportedTransportProtocol,
        ErrorCode::PeerAddressFamilyMismatch,
        ErrorCode::ConnectionAlreadyExists,
        ErrorCode::ConnectionTimeoutOrFailure,
        ErrorCode::AllocationQuotaReached,
        ErrorCode::ServerError,
        ErrorCode::InsufficientCapacity,
    ];

    /// The number on the wire (300..=699).
    pub const fn code(self) -> u16 {
        self as u16
    }

    /// The code with this number, if it is one of ours.
    pub fn from_code(code: u16) -> Option<ErrorCode> {
        Self::ALL.into_iter().find(|c| c.code() == code)
    }

    /// The reason phrase the RFCs give for the code.
    pub const fn reason_phrase(self) -> &'static str {
        match self {
            ErrorCode::TryAlternate => "Try Alternate",
            ErrorCode::BadRequest => "Bad Request",
            ErrorCode::Unauthorized => "Unauthorized",
            ErrorCode::Forbidden => "Forbidden",
            ErrorCode::UnknownAttribute => "Unknown Attribute",
            ErrorCode::AllocationMismatch => "Allocation Mismatch",
            ErrorCode::StaleNonce => "Stale Nonce",
            ErrorCode::AddressFamilyNotSupported => "Address Family not Supported",
            ErrorCode::WrongCredentials => "Wrong Credentials",
            ErrorCode::UnsupportedTransportProtocol => "Unsupported Transport Protocol",
            ErrorCode::PeerAddressFamilyMismatch => "Peer Address Family Mismatch",
            ErrorCode::ConnectionAlreadyExists => "Connection Already Exists",
            ErrorCode::ConnectionTimeoutOrFailure => "Connection Timeout or Failure",
            ErrorCode::AllocationQuotaReached => "Allocation Quota Reached",
            ErrorCode::ServerError => "Server Error",
            ErrorCode::InsufficientCapacity => "Insufficient Capacity",
        }
    }
}

impl From<ErrorCode> for u16 {
    fn from(code: ErrorCode) -> u16 {
        code.code()
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code(), self.reason_phrase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_and_is_in_order() {
        for pair in ErrorCode::ALL.windows(2) {
            assert!(pair[0].code() < pair[1].code(), "{:?}", pair);
        }
        for c in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_code(c.code()), Some(c));
            assert!((300..700).contains(&c.code()));
            assert!(!c.reason_phrase().is_empty());
        }
        assert_eq!(ErrorCode::from_code(499), None);
    }

    #[test]
    fn display_is_number_and_phrase() {
        assert_eq!(
            ErrorCode::AllocationMismatch.to_string(),
            "437 Allocation Mismatch"
        );
    }
}
