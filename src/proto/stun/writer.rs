//! STUN message writer into a caller-provided buffer.

use std::net::SocketAddr;

use super::integrity::{fingerprint_of, integrity_over, integrity_sha256_over};
use super::integrity::{FINGERPRINT_ATTR_LEN, INTEGRITY_ATTR_LEN, INTEGRITY_SHA256_ATTR_LEN};
use super::{attr, message_type, padded, xor_addr, Class, CodecError, TransactionId};
use super::{ErrorCode, HEADER_LEN, MAGIC_COOKIE};

/// Appends attributes to a message in `buf`, keeping the header length current.
pub struct MessageWriter<'b> {
    buf: &'b mut [u8],
    len: usize,
    tid: TransactionId,
}

impl<'b> MessageWriter<'b> {
    /// Starts a message with an empty attribute list.
    pub fn new(
        buf: &'b mut [u8],
        method: u16,
        class: Class,
        tid: TransactionId,
    ) -> Result<Self, CodecError> {
        if buf.len() < HEADER_LEN {
            return Err(CodecError::BufferTooSmall);
        }
        buf[0..2].copy_from_slice(&message_type(method, class).to_be_bytes());
        buf[2..4].copy_from_slice(&0u16.to_be_bytes());
        buf[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
        buf[8..20].copy_from_slice(&tid);
        Ok(MessageWriter {
            buf,
            len: HEADER_LEN,
            tid,
        })
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a message has at least its header.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Reserves an attribute of `value_len` bytes (zero padded) and lets `fill` write its value.
    pub fn attr_with(
        &mut self,
        typ: u16,
        value_len: usize,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<(), CodecError> {
        let total = 4 + padded(value_len);
        if self.len + total > self.buf.len() || value_len > u16::MAX as usize {
            return Err(CodecError::BufferTooSmall);
        }
        let at = self.len;
        self.buf[at..at + 2].copy_from_slice(&typ.to_be_bytes());
        self.buf[at + 2..at + 4].copy_from_slice(&(value_len as u16).to_be_bytes());
        fill(&mut self.buf[at + 4..at + 4 + value_len]);
        self.buf[at + 4 + value_len..at + total].fill(0);
        self.len += total;
        self.set_header_len(self.len);
        Ok(())
    }

    /// Appends an attribute with the given value.
    pub fn attr(&mut self, typ: u16, value: &[u8]) -> Result<(), CodecError> {
        self.attr_with(typ, value.len(), |out| out.copy_from_slice(value))
    }

    /// Appends a 32-bit attribute such as LIFETIME.
    pub fn attr_u32(&mut self, typ: u16, value: u32) -> Result<(), CodecError> {
        self.attr(typ, &value.to_be_bytes())
    }

    /// Appends an XOR-coded address (XOR-MAPPED-ADDRESS, XOR-RELAYED-ADDRESS, XOR-PEER-ADDRESS).
    pub fn xor_address(&mut self, typ: u16, addr: &SocketAddr) -> Result<(), CodecError> {
        let tid = self.tid;
        self.attr_with(typ, xor_addr::encoded_len(addr), |out| {
            xor_addr::encode(addr, &tid, out)
        })
    }

    /// Appends a plain (non-XOR) address, as ALTERNATE-SERVER uses.
    pub fn plain_address(&mut self, typ: u16, addr: &SocketAddr) -> Result<(), CodecError> {
        let len = xor_addr::encoded_len(addr);
        self.attr_with(typ, len, |out| {
            out[0] = 0;
            out[2..4].copy_from_slice(&addr.port().to_be_bytes());
            match addr {
                SocketAddr::V4(a) => {
                    out[1] = 1;
                    out[4..8].copy_from_slice(&a.ip().octets());
                }
                SocketAddr::V6(a) => {
                    out[1] = 2;
                    out[4..20].copy_from_slice(&a.ip().octets());
                }
            }
        })
    }

    /// Appends ERROR-CODE with its standard reason phrase.
    pub fn error_code(&mut self, code: ErrorCode) -> Result<(), CodecError> {
        self.error_code_with(code, true)
    }

    /// Appends ERROR-CODE, with the standard reason phrase only when `reason` is set (the
    /// phrase is optional text; leaving it out keeps error answers small).
    pub fn error_code_with(&mut self, code: ErrorCode, reason: bool) -> Result<(), CodecError> {
        let reason = if reason { code.reason_phrase() } else { "" }.as_bytes();
        let code = code.code();
        self.attr_with(attr::ERROR_CODE, 4 + reason.len(), |out| {
            out[0] = 0;
            out[1] = 0;
            out[2] = (code / 100) as u8;
            out[3] = (code % 100) as u8;
            out[4..].copy_from_slice(reason);
        })
    }

    /// Appends ADDRESS-ERROR-CODE (RFC 8656 §18.12) as attribute `typ` (0x8001, or coturn
    /// 4.6's 0x8033): the family (1 = IPv4, 2 = IPv6) that was not served and why, laid out as
    /// ERROR-CODE with the family in the first byte.
    pub fn address_error_code(
        &mut self,
        typ: u16,
        family: u8,
        code: ErrorCode,
        reason: bool,
    ) -> Result<(), CodecError> {
        let reason = if reason { code.reason_phrase() } else { "" }.as_bytes();
        let code = code.code();
        self.attr_with(typ, 4 + reason.len(), |out| {
            out[0] = family;
            out[1] = 0;
            out[2] = (code / 100) as u8;
            out[3] = (code % 100) as u8;
            out[4..].copy_from_slice(reason);
        })
    }

    /// Appends UNKNOWN-ATTRIBUTES.
    pub fn unknown_attributes(&mut self, types: &[u16]) -> Result<(), CodecError> {
        self.attr_with(attr::UNKNOWN_ATTRIBUTES, types.len() * 2, |out| {
            for (chunk, t) in out.chunks_exact_mut(2).zip(types) {
                chunk.copy_from_slice(&t.to_be_bytes());
            }
        })
    }

    /// Appends MESSAGE-INTEGRITY computed with `key`.
    pub fn integrity(&mut self, key: &[u8]) -> Result<(), CodecError> {
        if self.len + INTEGRITY_ATTR_LEN > self.buf.len() {
            return Err(CodecError::BufferTooSmall);
        }
        let at = self.len;
        let mac = integrity_over(self.buf, at, key);
        self.attr(attr::MESSAGE_INTEGRITY, &mac)
    }

    /// Appends a full-length MESSAGE-INTEGRITY-SHA256 computed with `key`.
    pub fn integrity_sha256(&mut self, key: &[u8]) -> Result<(), CodecError> {
        if self.len + INTEGRITY_SHA256_ATTR_LEN > self.buf.len() {
            return Err(CodecError::BufferTooSmall);
        }
        let at = self.len;
        let mac = integrity_sha256_over(self.buf, at, 32, key);
        self.attr(attr::MESSAGE_INTEGRITY_SHA256, &mac)
    }

    /// Appends FINGERPRINT; it must be the last attribute.
    pub fn fingerprint(&mut self) -> Result<(), CodecError> {
        if self.len + FINGERPRINT_ATTR_LEN > self.buf.len() {
            return Err(CodecError::BufferTooSmall);
        }
        let at = self.len;
        self.set_header_len(at + FINGERPRINT_ATTR_LEN);
        let crc = fingerprint_of(&self.buf[..at]);
        self.attr_u32(attr::FINGERPRINT, crc)
    }

    /// Finishes the message and returns its length.
    pub fn finish(self) -> usize {
        self.len
    }

    /// The bytes written so far, for tests that need unusual padding.
    #[cfg(test)]
    pub(crate) fn written_mut(&mut self) -> &mut [u8] {
        &mut self.buf[..self.len]
    }

    fn set_header_len(&mut self, total: usize) {
        let body = (total - HEADER_LEN) as u16;
        self.buf[2..4].copy_from_slice(&body.to_be_bytes());
    }
}
