//! Attribute type codes (RFC 8489 §18.3, RFC 8656 §18, RFC 6156, RFC 8445).

/// MAPPED-ADDRESS.
pub const MAPPED_ADDRESS: u16 = 0x0001;
/// CHANGE-REQUEST (RFC 5780); known so it is not mistaken for garbage, but not implemented.
pub const CHANGE_REQUEST: u16 = 0x0003;
/// USERNAME.
pub const USERNAME: u16 = 0x0006;
/// MESSAGE-INTEGRITY (HMAC-SHA1).
pub const MESSAGE_INTEGRITY: u16 = 0x0008;
/// ERROR-CODE.
pub const ERROR_CODE: u16 = 0x0009;
/// UNKNOWN-ATTRIBUTES.
pub const UNKNOWN_ATTRIBUTES: u16 = 0x000A;
/// CHANNEL-NUMBER.
pub const CHANNEL_NUMBER: u16 = 0x000C;
/// LIFETIME.
pub const LIFETIME: u16 = 0x000D;
/// XOR-PEER-ADDRESS.
pub const XOR_PEER_ADDRESS: u16 = 0x0012;
/// DATA.
pub const DATA: u16 = 0x0013;
/// REALM.
pub const REALM: u16 = 0x0014;
/// NONCE.
pub const NONCE: u16 = 0x0015;
/// XOR-RELAYED-ADDRESS.
pub const XOR_RELAYED_ADDRESS: u16 = 0x0016;
/// REQUESTED-ADDRESS-FAMILY (RFC 6156).
pub const REQUESTED_ADDRESS_FAMILY: u16 = 0x0017;
/// EVEN-PORT.
pub const EVEN_PORT: u16 = 0x0018;
/// REQUESTED-TRANSPORT.
pub const REQUESTED_TRANSPORT: u16 = 0x0019;
/// DONT-FRAGMENT.
pub const DONT_FRAGMENT: u16 = 0x001A;
/// MESSAGE-INTEGRITY-SHA256.
pub const MESSAGE_INTEGRITY_SHA256: u16 = 0x001C;
/// PASSWORD-ALGORITHM.
pub const PASSWORD_ALGORITHM: u16 = 0x001D;
/// USERHASH.
pub const USERHASH: u16 = 0x001E;
/// XOR-MAPPED-ADDRESS.
pub const XOR_MAPPED_ADDRESS: u16 = 0x0020;
/// RESERVATION-TOKEN.
pub const RESERVATION_TOKEN: u16 = 0x0022;
/// PRIORITY (ICE).
pub const PRIORITY: u16 = 0x0024;
/// USE-CANDIDATE (ICE).
pub const USE_CANDIDATE: u16 = 0x0025;
/// CONNECTION-ID (RFC 6062).
pub const CONNECTION_ID: u16 = 0x002A;
/// ADDITIONAL-ADDRESS-FAMILY (RFC 8656 §18.11): asks for a dual (IPv4 + IPv6) allocation.
pub const ADDITIONAL_ADDRESS_FAMILY: u16 = 0x8000;
/// ADDRESS-ERROR-CODE (RFC 8656 §18.12): why one family of a dual allocation was not served.
pub const ADDRESS_ERROR_CODE: u16 = 0x8001;
/// ADDITIONAL-ADDRESS-FAMILY at the code point of the draft coturn 4.6 and older implemented
/// (their `turnutils_uclient -Z` still sends it); read as ADDITIONAL-ADDRESS-FAMILY.
pub const LEGACY_ADDITIONAL_ADDRESS_FAMILY: u16 = 0x8032;
/// ADDRESS-ERROR-CODE at the same draft's code point, sent to clients that used 0x8032.
pub const LEGACY_ADDRESS_ERROR_CODE: u16 = 0x8033;
/// PASSWORD-ALGORITHMS (RFC 8489 §14.11).
pub const PASSWORD_ALGORITHMS: u16 = 0x8002;
/// SOFTWARE.
pub const SOFTWARE: u16 = 0x8022;
/// ALTERNATE-SERVER.
pub const ALTERNATE_SERVER: u16 = 0x8023;
/// FINGERPRINT.
pub const FINGERPRINT: u16 = 0x8028;

/// Comprehension-required attributes (type < 0x8000) this server understands; any other one in a
/// request earns a 420 listing it.
pub fn is_known_required(typ: u16) -> bool {
    matches!(
        typ,
        MAPPED_ADDRESS
            | CHANGE_REQUEST
            | USERNAME
            | MESSAGE_INTEGRITY
            | ERROR_CODE
            | UNKNOWN_ATTRIBUTES
            | CHANNEL_NUMBER
            | LIFETIME
            | XOR_PEER_ADDRESS
            | DATA
            | REALM
            | NONCE
            | XOR_RELAYED_ADDRESS
            | REQUESTED_ADDRESS_FAMILY
            | EVEN_PORT
            | REQUESTED_TRANSPORT
            | DONT_FRAGMENT
            | MESSAGE_INTEGRITY_SHA256
            | PASSWORD_ALGORITHM
            | USERHASH
            | XOR_MAPPED_ADDRESS
            | RESERVATION_TOKEN
            | PRIORITY
            | USE_CANDIDATE
            | CONNECTION_ID
    )
}
