//! Zero-copy STUN message reader.

use std::net::SocketAddr;

use super::integrity::{fingerprint_of, valid_sha256_len, FINGERPRINT_ATTR_LEN};
use super::{attr, padded, split_message_type, xor_addr, Class, CodecError, TransactionId};
use super::{HEADER_LEN, MAGIC_COOKIE};

/// Most unknown comprehension-required attributes reported in one 420.
pub const MAX_UNKNOWN: usize = 16;

/// A STUN message header borrowed from a datagram whose length matched the header exactly.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    raw: &'a [u8],
    /// The method (binding, allocate, ...).
    pub method: u16,
    /// Request, indication or response.
    pub class: Class,
    /// The transaction id.
    pub tid: TransactionId,
}

impl<'a> Message<'a> {
    /// Checks the header of one STUN message filling the whole of `raw`.
    pub fn parse(raw: &'a [u8]) -> Result<Self, CodecError> {
        if raw.len() < HEADER_LEN {
            return Err(CodecError::TooShort);
        }
        if raw[0] & 0xC0 != 0 {
            return Err(CodecError::NotStun);
        }
        if u32::from_be_bytes([raw[4], raw[5], raw[6], raw[7]]) != MAGIC_COOKIE {
            return Err(CodecError::BadCookie);
        }
        let len = u16::from_be_bytes([raw[2], raw[3]]) as usize;
        if !len.is_multiple_of(4) || HEADER_LEN + len != raw.len() {
            return Err(CodecError::BadLength);
        }
        let (method, class) = split_message_type(u16::from_be_bytes([raw[0], raw[1]]));
        let mut tid = [0u8; 12];
        tid.copy_from_slice(&raw[8..20]);
        Ok(Message {
            raw,
            method,
            class,
            tid,
        })
    }

    /// The whole message.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// Walks the attributes once and keeps the ones the server acts on.
    pub fn attributes(&self) -> Result<Attributes<'a>, CodecError> {
        Attributes::parse(self.raw, self.tid)
    }
}

/// The attributes of a message that the server acts on. Duplicates after the first are ignored,
/// and so is everything after MESSAGE-INTEGRITY except MESSAGE-INTEGRITY-SHA256 and
/// FINGERPRINT (RFC 8489 §14.5), and everything after MESSAGE-INTEGRITY-SHA256 except
/// FINGERPRINT (§14.6), a MESSAGE-INTEGRITY there included.
#[derive(Debug, Clone, Copy, Default)]
pub struct Attributes<'a> {
    tid: TransactionId,
    /// USERNAME.
    pub username: Option<&'a [u8]>,
    /// REALM.
    pub realm: Option<&'a [u8]>,
    /// NONCE.
    pub nonce: Option<&'a [u8]>,
    /// Offset of the MESSAGE-INTEGRITY attribute header in the message.
    pub integrity_offset: Option<usize>,
    /// Offset of the MESSAGE-INTEGRITY-SHA256 attribute header in the message.
    pub integrity_sha256_offset: Option<usize>,
    /// PASSWORD-ALGORITHM: the algorithm number and whether it carried parameters.
    pub password_algorithm: Option<(u16, bool)>,
    /// PASSWORD-ALGORITHMS, the raw value.
    pub password_algorithms: Option<&'a [u8]>,
    /// Whether FINGERPRINT was present (and correct: a wrong one fails the parse).
    pub fingerprint: bool,
    /// LIFETIME in seconds.
    pub lifetime: Option<u32>,
    /// REQUESTED-TRANSPORT protocol number.
    pub requested_transport: Option<u8>,
    /// REQUESTED-ADDRESS-FAMILY (1 = IPv4, 2 = IPv6).
    pub requested_family: Option<u8>,
    /// ADDITIONAL-ADDRESS-FAMILY (RFC 8656 §18.11; only 2 = IPv6 is valid).
    pub additional_family: Option<u8>,
    /// Whether that ADDITIONAL-ADDRESS-FAMILY came at coturn 4.6's draft code point 0x8032
    /// (so ADDRESS-ERROR-CODE goes back at 0x8033, where that client looks).
    pub legacy_additional_family: bool,
    /// EVEN-PORT, with the value of its R (reserve next port) bit.
    pub even_port: Option<bool>,
    /// RESERVATION-TOKEN.
    pub reservation_token: Option<[u8; 8]>,
    /// DONT-FRAGMENT present.
    pub dont_fragment: bool,
    /// CHANNEL-NUMBER.
    pub channel_number: Option<u16>,
    /// DATA.
    pub data: Option<&'a [u8]>,
    /// CONNECTION-ID (RFC 6062 §6.2.1).
    pub connection_id: Option<u32>,
    /// Whether any address attribute failed to decode.
    pub bad_peer_address: bool,
    /// The message, for walking its XOR-PEER-ADDRESS attributes again (any number of them).
    raw: &'a [u8],
    /// Offset of the first XOR-PEER-ADDRESS attribute header.
    first_peer: usize,
    /// Where the attributes the server considers end (MESSAGE-INTEGRITY or the message end).
    considered_end: usize,
    peer_count: usize,
    unknown: [u16; MAX_UNKNOWN],
    unknown_count: usize,
}

impl<'a> Attributes<'a> {
    fn parse(raw: &'a [u8], tid: TransactionId) -> Result<Self, CodecError> {
        let mut a = Attributes {
            tid,
            raw,
            ..Default::default()
        };
        let mut pos = HEADER_LEN;
        // 0: before any integrity attribute; 1: after MESSAGE-INTEGRITY; 2: after
        // MESSAGE-INTEGRITY-SHA256.
        let mut integrity_seen = 0u8;
        while pos < raw.len() {
            if raw.len() - pos < 4 {
                return Err(CodecError::AttributeOverrun);
            }
            let typ = u16::from_be_bytes([raw[pos], raw[pos + 1]]);
            let len = u16::from_be_bytes([raw[pos + 2], raw[pos + 3]]) as usize;
            let start = pos + 4;
            if start + len > raw.len() {
                return Err(CodecError::AttributeOverrun);
            }
            let value = &raw[start..start + len];
            let next = (start + padded(len)).min(raw.len());

            if typ == attr::FINGERPRINT {
                if len != 4 || pos + FINGERPRINT_ATTR_LEN != raw.len() {
                    return Err(CodecError::BadFingerprint);
                }
                let want = u32::from_be_bytes([value[0], value[1], value[2], value[3]]);
                if fingerprint_of(&raw[..pos]) != want {
                    return Err(CodecError::BadFingerprint);
                }
                a.fingerprint = true;
                break;
            }
            match (integrity_seen, typ) {
                (0, attr::MESSAGE_INTEGRITY) => {
                    a.take(typ, value, pos)?;
                    integrity_seen = 1;
                }
                (0 | 1, attr::MESSAGE_INTEGRITY_SHA256) => {
                    if !valid_sha256_len(len) {
                        return Err(CodecError::BadAttribute(typ));
                    }
                    a.integrity_sha256_offset = Some(pos);
                    integrity_seen = 2;
                }
                (0, _) => a.take(typ, value, pos)?,
                _ => {}
            }
            pos = next;
            if integrity_seen == 0 {
                a.considered_end = pos;
            }
        }
        Ok(a)
    }

    fn take(&mut self, typ: u16, value: &'a [u8], offset: usize) -> Result<(), CodecError> {
        let bad = CodecError::BadAttribute(typ);
        match typ {
            attr::USERNAME => set_once(&mut self.username, value),
            attr::REALM => set_once(&mut self.realm, value),
            attr::NONCE => set_once(&mut self.nonce, value),
            attr::DATA => set_once(&mut self.data, value),
            attr::MESSAGE_INTEGRITY => {
                if value.len() != 20 {
                    return Err(bad);
                }
                self.integrity_offset = Some(offset);
            }
            attr::LIFETIME => {
                let v: [u8; 4] = value.try_into().map_err(|_| bad)?;
                self.lifetime.get_or_insert(u32::from_be_bytes(v));
            }
            attr::REQUESTED_TRANSPORT => {
                if value.len() != 4 {
                    return Err(bad);
                }
                self.requested_transport.get_or_insert(value[0]);
            }
            attr::REQUESTED_ADDRESS_FAMILY => {
                if value.len() != 4 {
                    return Err(bad);
                }
                self.requested_family.get_or_insert(value[0]);
            }
            attr::ADDITIONAL_ADDRESS_FAMILY | attr::LEGACY_ADDITIONAL_ADDRESS_FAMILY => {
                if value.len() != 4 {
                    return Err(bad);
                }
                if self.additional_family.is_none() {
                    self.additional_family = Some(value[0]);
                    self.legacy_additional_family = typ == attr::LEGACY_ADDITIONAL_ADDRESS_FAMILY;
                }
            }
            attr::EVEN_PORT => {
                if value.is_empty() {
                    return Err(bad);
                }
                self.even_port.get_or_insert(value[0] & 0x80 != 0);
            }
            attr::RESERVATION_TOKEN => {
                let v: [u8; 8] = value.try_into().map_err(|_| bad)?;
                self.reservation_token.get_or_insert(v);
            }
            attr::DONT_FRAGMENT => self.dont_fragment = true,
            attr::PASSWORD_ALGORITHM => {
                // Algorithm (2 bytes), parameters length (2 bytes), parameters.
                if value.len() < 4 {
                    return Err(bad);
                }
                let algorithm = u16::from_be_bytes([value[0], value[1]]);
                let params = u16::from_be_bytes([value[2], value[3]]);
                self.password_algorithm
                    .get_or_insert((algorithm, params != 0));
            }
            attr::PASSWORD_ALGORITHMS => set_once(&mut self.password_algorithms, value),
            attr::CHANNEL_NUMBER => {
                if value.len() != 4 {
                    return Err(bad);
                }
                self.channel_number
                    .get_or_insert(u16::from_be_bytes([value[0], value[1]]));
            }
            attr::CONNECTION_ID => {
                let v: [u8; 4] = value.try_into().map_err(|_| bad)?;
                self.connection_id.get_or_insert(u32::from_be_bytes(v));
            }
            attr::XOR_PEER_ADDRESS => {
                if self.peer_count == 0 {
                    self.first_peer = offset;
                }
                self.peer_count += 1;
            }
            t if t < 0x8000 && !attr::is_known_required(t) && self.unknown_count < MAX_UNKNOWN => {
                self.unknown[self.unknown_count] = t;
                self.unknown_count += 1;
            }
            _ => {}
        }
        Ok(())
    }

    /// Whether the message carries MESSAGE-INTEGRITY or MESSAGE-INTEGRITY-SHA256.
    pub fn has_integrity(&self) -> bool {
        self.integrity_offset.is_some() || self.integrity_sha256_offset.is_some()
    }

    /// Unknown comprehension-required attribute types, for a 420 response.
    pub fn unknown(&self) -> &[u16] {
        &self.unknown[..self.unknown_count]
    }

    /// Number of XOR-PEER-ADDRESS attributes.
    pub fn peer_count(&self) -> usize {
        self.peer_count
    }

    /// The decoded XOR-PEER-ADDRESS values, in message order. The message is walked again
    /// from the first one, so a request may carry any number without the reader holding a
    /// table of them (the caller bounds how many it acts on).
    pub fn peer_addresses(&self) -> impl Iterator<Item = Result<SocketAddr, CodecError>> + '_ {
        let end = if self.peer_count == 0 {
            self.first_peer
        } else {
            self.considered_end
        };
        PeerValues {
            raw: &self.raw[..end],
            pos: self.first_peer,
        }
        .map(|v| xor_addr::decode(v, &self.tid, attr::XOR_PEER_ADDRESS))
    }

    /// The first XOR-PEER-ADDRESS.
    pub fn peer_address(&self) -> Option<Result<SocketAddr, CodecError>> {
        self.peer_addresses().next()
    }
}

/// Walks attribute headers (already validated by [`Attributes::parse`]) and yields the values
/// of XOR-PEER-ADDRESS.
struct PeerValues<'a> {
    raw: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for PeerValues<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        while self.pos + 4 <= self.raw.len() {
            let p = self.pos;
            let typ = u16::from_be_bytes([self.raw[p], self.raw[p + 1]]);
            let len = u16::from_be_bytes([self.raw[p + 2], self.raw[p + 3]]) as usize;
            let value = self.raw.get(p + 4..p + 4 + len)?;
            self.pos = p + 4 + padded(len);
            if typ == attr::XOR_PEER_ADDRESS {
                return Some(value);
            }
        }
        None
    }
}

fn set_once<'a>(slot: &mut Option<&'a [u8]>, value: &'a [u8]) {
    slot.get_or_insert(value);
}

/// Decodes an ADDRESS-ERROR-CODE value into its family byte and error code; `None` when it is
/// shorter than the fixed part or the code is out of the 300..=699 range.
pub fn address_error_code(value: &[u8]) -> Option<(u8, u16)> {
    let [family, _, class, number, ..] = *value else {
        return None;
    };
    let code = u16::from(class & 0x07) * 100 + u16::from(number);
    ((300..700).contains(&code) && number < 100).then_some((family, code))
}

#[cfg(test)]
mod tests {
    use super::super::{method, ErrorCode, MessageWriter};
    use super::*;

    /// Writes an Allocate request with the attributes `attrs` writes into `buf`; its length.
    fn allocate_request(
        buf: &mut [u8],
        attrs: impl FnOnce(&mut MessageWriter<'_>) -> Result<(), CodecError>,
    ) -> usize {
        let mut w = MessageWriter::new(buf, method::ALLOCATE, Class::Request, [7; 12]).unwrap();
        attrs(&mut w).unwrap();
        w.finish()
    }

    #[test]
    fn additional_address_family_is_read_and_address_error_code_round_trips() {
        let mut buf = [0u8; 128];
        let n = allocate_request(&mut buf, |w| {
            w.attr_u32(attr::ADDITIONAL_ADDRESS_FAMILY, 2 << 24)?;
            w.address_error_code(
                attr::ADDRESS_ERROR_CODE,
                2,
                ErrorCode::InsufficientCapacity,
                true,
            )
        });
        let msg = Message::parse(&buf[..n]).unwrap();
        let attrs = msg.attributes().unwrap();
        assert_eq!(attrs.additional_family, Some(2));
        assert!(attrs.unknown().is_empty(), "0x8000 and 0x8001 are optional");
        let at = HEADER_LEN + 8;
        assert_eq!(
            u16::from_be_bytes([buf[at], buf[at + 1]]),
            attr::ADDRESS_ERROR_CODE
        );
        let len = u16::from_be_bytes([buf[at + 2], buf[at + 3]]) as usize;
        assert_eq!(
            &buf[at + 8..at + 4 + len],
            b"Insufficient Capacity",
            "reason phrase follows the code"
        );
        assert_eq!(
            address_error_code(&buf[at + 4..at + 4 + len]),
            Some((2, 508))
        );
        assert_eq!(address_error_code(&[1, 0, 4]), None);
        assert_eq!(address_error_code(&[1, 0, 4, 100]), None);
    }

    #[test]
    fn coturn_4_6_code_point_is_read_as_additional_address_family() {
        let mut buf = [0u8; 64];
        let n = allocate_request(&mut buf, |w| {
            w.attr_u32(attr::LEGACY_ADDITIONAL_ADDRESS_FAMILY, 2 << 24)?;
            w.attr_u32(attr::ADDITIONAL_ADDRESS_FAMILY, 1 << 24)
        });
        let attrs = Message::parse(&buf[..n]).unwrap().attributes().unwrap();
        assert_eq!(attrs.additional_family, Some(2), "the first one counts");
        assert!(attrs.legacy_additional_family);
    }

    #[test]
    fn a_short_additional_address_family_is_malformed() {
        let mut buf = [0u8; 64];
        let n = allocate_request(&mut buf, |w| w.attr(attr::ADDITIONAL_ADDRESS_FAMILY, &[2]));
        let msg = Message::parse(&buf[..n]).unwrap();
        assert_eq!(
            msg.attributes().unwrap_err(),
            CodecError::BadAttribute(attr::ADDITIONAL_ADDRESS_FAMILY)
        );
    }
}
