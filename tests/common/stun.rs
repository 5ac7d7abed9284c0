//! A deliberately small, hand-written STUN/TURN codec for black-box tests.
//!
//! It is independent of the server's codec on purpose: a bug shared by both sides
//! would otherwise go unnoticed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha1::Sha1;

pub const MAGIC_COOKIE: u32 = 0x2112_A442;
const FINGERPRINT_XOR: u32 = 0x5354_554e;
const HEADER_LEN: usize = 20;

/// STUN/TURN methods (RFC 8489, RFC 8656).
pub mod method {
    pub const BINDING: u16 = 0x001;
    pub const ALLOCATE: u16 = 0x003;
    pub const REFRESH: u16 = 0x004;
    pub const SEND: u16 = 0x006;
    pub const DATA: u16 = 0x007;
    pub const CREATE_PERMISSION: u16 = 0x008;
    pub const CHANNEL_BIND: u16 = 0x009;
}

/// Attribute types used by the tests.
pub mod attr {
    pub const USERNAME: u16 = 0x0006;
    pub const MESSAGE_INTEGRITY: u16 = 0x0008;
    pub const ERROR_CODE: u16 = 0x0009;
    pub const CHANNEL_NUMBER: u16 = 0x000C;
    pub const LIFETIME: u16 = 0x000D;
    pub const XOR_PEER_ADDRESS: u16 = 0x0012;
    pub const DATA: u16 = 0x0013;
    pub const REALM: u16 = 0x0014;
    pub const NONCE: u16 = 0x0015;
    pub const XOR_RELAYED_ADDRESS: u16 = 0x0016;
    pub const REQUESTED_TRANSPORT: u16 = 0x0019;
    pub const XOR_MAPPED_ADDRESS: u16 = 0x0020;
    pub const FINGERPRINT: u16 = 0x8028;
}

/// The two class bits of the message type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Request,
    Indication,
    Success,
    Error,
}

impl Class {
    fn bits(self) -> u16 {
        match self {
            Class::Request => 0b00,
            Class::Indication => 0b01,
            Class::Success => 0b10,
            Class::Error => 0b11,
        }
    }

    fn from_bits(bits: u16) -> Class {
        match bits & 0b11 {
            0b00 => Class::Request,
            0b01 => Class::Indication,
            0b10 => Class::Success,
            _ => Class::Error,
        }
    }
}

/// Interleaves method and class bits as RFC 8489 section 5 lays them out.
pub fn message_type(method: u16, class: Class) -> u16 {
    let c = class.bits();
    (method & 0x000F)
        | ((method & 0x0070) << 1)
        | ((method & 0x0F80) << 2)
        | ((c & 0b01) << 4)
        | ((c & 0b10) << 7)
}

fn split_type(t: u16) -> (u16, Class) {
    let method = (t & 0x000F) | ((t >> 1) & 0x0070) | ((t >> 2) & 0x0F80);
    let class = ((t >> 4) & 0b01) | ((t >> 7) & 0b10);
    (method, Class::from_bits(class))
}

/// A transaction id that is unique within the test process; tests need no real randomness.
pub fn new_transaction_id() -> [u8; 12] {
    static COUNTER: AtomicU64 = AtomicU64::new(1);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u32)
        .unwrap_or(0);
    let mut id = [0u8; 12];
    id[..8].copy_from_slice(&n.to_be_bytes());
    id[8..].copy_from_slice(&(t ^ std::process::id()).to_be_bytes());
    id
}

/// A decoded (or to-be-encoded) STUN message. MESSAGE-INTEGRITY and FINGERPRINT are
/// added by [`Message::encode`], never stored in `attrs` by the caller.
#[derive(Debug, Clone)]
pub struct Message {
    pub method: u16,
    pub class: Class,
    pub txid: [u8; 12],
    pub attrs: Vec<(u16, Vec<u8>)>,
}

impl Message {
    pub fn new(method: u16, class: Class) -> Self {
        Message {
            method,
            class,
            txid: new_transaction_id(),
            attrs: Vec::new(),
        }
    }

    pub fn request(method: u16) -> Self {
        Self::new(method, Class::Request)
    }

    pub fn indication(method: u16) -> Self {
        Self::new(method, Class::Indication)
    }

    pub fn with(mut self, typ: u16, value: impl Into<Vec<u8>>) -> Self {
        self.attrs.push((typ, value.into()));
        self
    }

    /// Adds an XOR-*-ADDRESS attribute for `addr`.
    pub fn with_addr(self, typ: u16, addr: SocketAddr) -> Self {
        let value = xor_addr_value(addr, &self.txid);
        self.with(typ, value)
    }

    /// Encodes the message; `key` adds MESSAGE-INTEGRITY, `fingerprint` adds FINGERPRINT.
    pub fn encode(&self, key: Option<&[u8]>, fingerprint: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(&message_type(self.method, self.class).to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        out.extend_from_slice(&self.txid);
        for (typ, value) in &self.attrs {
            push_attr(&mut out, *typ, value);
        }
        if let Some(key) = key {
            // The length field must already count MESSAGE-INTEGRITY itself when hashing.
            let len = out.len() - HEADER_LEN + 24;
            set_len(&mut out, len);
            let mac = hmac_sha1(key, &out);
            push_attr(&mut out, attr::MESSAGE_INTEGRITY, &mac);
        }
        if fingerprint {
            let len = out.len() - HEADER_LEN + 8;
            set_len(&mut out, len);
            let crc = crc32fast::hash(&out) ^ FINGERPRINT_XOR;
            push_attr(&mut out, attr::FINGERPRINT, &crc.to_be_bytes());
        }
        let len = out.len() - HEADER_LEN;
        set_len(&mut out, len);
        out
    }

    /// Decodes a STUN message, rejecting anything whose framing is not exact.
    pub fn decode(buf: &[u8]) -> Option<Message> {
        if buf.len() < HEADER_LEN || buf[0] & 0xC0 != 0 {
            return None;
        }
        let typ = u16::from_be_bytes([buf[0], buf[1]]);
        let len = u16::from_be_bytes([buf[2], buf[3]]) as usize;
        if u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]) != MAGIC_COOKIE
            || !len.is_multiple_of(4)
            || HEADER_LEN + len != buf.len()
        {
            return None;
        }
        let (method, class) = split_type(typ);
        let mut txid = [0u8; 12];
        txid.copy_from_slice(&buf[8..20]);
        let mut attrs = Vec::new();
        let mut pos = HEADER_LEN;
        while pos < buf.len() {
            let head = buf.get(pos..pos + 4)?;
            let at = u16::from_be_bytes([head[0], head[1]]);
            let alen = u16::from_be_bytes([head[2], head[3]]) as usize;
            let value = buf.get(pos + 4..pos + 4 + alen)?;
            attrs.push((at, value.to_vec()));
            pos += 4 + alen.div_ceil(4) * 4;
        }
        if pos != buf.len() {
            return None;
        }
        Some(Message {
            method,
            class,
            txid,
            attrs,
        })
    }

    pub fn get(&self, typ: u16) -> Option<&[u8]> {
        self.attrs
            .iter()
            .find(|(t, _)| *t == typ)
            .map(|(_, v)| v.as_slice())
    }

    /// The numeric ERROR-CODE (e.g. 401), if present.
    pub fn error_code(&self) -> Option<u16> {
        let v = self.get(attr::ERROR_CODE)?;
        if v.len() < 4 {
            return None;
        }
        Some(u16::from(v[2] & 0x07) * 100 + u16::from(v[3]))
    }

    pub fn xor_addr(&self, typ: u16) -> Option<SocketAddr> {
        decode_xor_addr(self.get(typ)?, &self.txid)
    }

    pub fn lifetime(&self) -> Option<u32> {
        let v: [u8; 4] = self.get(attr::LIFETIME)?.try_into().ok()?;
        Some(u32::from_be_bytes(v))
    }
}

fn push_attr(out: &mut Vec<u8>, typ: u16, value: &[u8]) {
    out.extend_from_slice(&typ.to_be_bytes());
    out.extend_from_slice(&(value.len() as u16).to_be_bytes());
    out.extend_from_slice(value);
    let pad = (4 - value.len() % 4) % 4;
    out.extend(std::iter::repeat_n(0u8, pad));
}

fn set_len(out: &mut [u8], len: usize) {
    out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
}

fn hmac_sha1(key: &[u8], data: &[u8]) -> [u8; 20] {
    let mut mac = Hmac::<Sha1>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Offset of the first attribute of type `typ` in a raw, well-formed message.
fn attr_offset(raw: &[u8], typ: u16) -> Option<usize> {
    let mut pos = HEADER_LEN;
    while pos + 4 <= raw.len() {
        let at = u16::from_be_bytes([raw[pos], raw[pos + 1]]);
        let alen = u16::from_be_bytes([raw[pos + 2], raw[pos + 3]]) as usize;
        if at == typ {
            return Some(pos);
        }
        pos += 4 + alen.div_ceil(4) * 4;
    }
    None
}

/// Checks MESSAGE-INTEGRITY of a received message against `key`.
pub fn verify_integrity(raw: &[u8], key: &[u8]) -> bool {
    let Some(pos) = attr_offset(raw, attr::MESSAGE_INTEGRITY) else {
        return false;
    };
    let Some(got) = raw.get(pos + 4..pos + 24) else {
        return false;
    };
    let mut prefix = raw[..pos].to_vec();
    set_len(&mut prefix, pos + 24 - HEADER_LEN);
    hmac_sha1(key, &prefix) == got
}

/// Checks that FINGERPRINT is present, last, and correct.
pub fn verify_fingerprint(raw: &[u8]) -> bool {
    let Some(pos) = attr_offset(raw, attr::FINGERPRINT) else {
        return false;
    };
    if pos + 8 != raw.len() {
        return false;
    }
    let want = crc32fast::hash(&raw[..pos]) ^ FINGERPRINT_XOR;
    raw[pos + 4..pos + 8] == want.to_be_bytes()
}

/// The long-term credential key: MD5(username ":" realm ":" password).
pub fn long_term_key(user: &str, realm: &str, pass: &str) -> Vec<u8> {
    Md5::digest(format!("{user}:{realm}:{pass}").as_bytes()).to_vec()
}

pub fn xor_addr_value(addr: SocketAddr, txid: &[u8; 12]) -> Vec<u8> {
    let port = addr.port() ^ (MAGIC_COOKIE >> 16) as u16;
    let mut v = vec![0u8];
    match addr.ip() {
        IpAddr::V4(ip) => {
            v.push(0x01);
            v.extend_from_slice(&port.to_be_bytes());
            let x = u32::from(ip) ^ MAGIC_COOKIE;
            v.extend_from_slice(&x.to_be_bytes());
        }
        IpAddr::V6(ip) => {
            v.push(0x02);
            v.extend_from_slice(&port.to_be_bytes());
            let mut mask = MAGIC_COOKIE.to_be_bytes().to_vec();
            mask.extend_from_slice(txid);
            v.extend(ip.octets().iter().zip(mask).map(|(a, b)| a ^ b));
        }
    }
    v
}

pub fn decode_xor_addr(v: &[u8], txid: &[u8; 12]) -> Option<SocketAddr> {
    let port = u16::from_be_bytes([*v.get(2)?, *v.get(3)?]) ^ (MAGIC_COOKIE >> 16) as u16;
    match (v.get(1)?, v.len()) {
        (0x01, 8) => {
            let x = u32::from_be_bytes([v[4], v[5], v[6], v[7]]) ^ MAGIC_COOKIE;
            Some(SocketAddr::new(Ipv4Addr::from(x).into(), port))
        }
        (0x02, 20) => {
            let mut mask = MAGIC_COOKIE.to_be_bytes().to_vec();
            mask.extend_from_slice(txid);
            let mut o = [0u8; 16];
            for (i, b) in o.iter_mut().enumerate() {
                *b = v[4 + i] ^ mask[i];
            }
            Some(SocketAddr::new(Ipv6Addr::from(o).into(), port))
        }
        _ => None,
    }
}

/// REQUESTED-TRANSPORT value for UDP.
pub fn udp_transport() -> Vec<u8> {
    vec![17, 0, 0, 0]
}

pub fn lifetime_value(secs: u32) -> Vec<u8> {
    secs.to_be_bytes().to_vec()
}

pub fn channel_number_value(ch: u16) -> Vec<u8> {
    let mut v = ch.to_be_bytes().to_vec();
    v.extend_from_slice(&[0, 0]);
    v
}

/// A ChannelData frame; padded to 4 bytes as RFC 8656 requires over TCP and allows over UDP.
pub fn channel_data(ch: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(4 + payload.len() + 3);
    v.extend_from_slice(&ch.to_be_bytes());
    v.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    v.extend_from_slice(payload);
    v.extend(std::iter::repeat_n(0u8, (4 - payload.len() % 4) % 4));
    v
}

/// Splits a ChannelData frame into channel number and payload (padding ignored).
pub fn parse_channel_data(buf: &[u8]) -> Option<(u16, &[u8])> {
    if buf.len() < 4 || !(0x40..=0x7F).contains(&buf[0]) {
        return None;
    }
    let ch = u16::from_be_bytes([buf[0], buf[1]]);
    let len = u16::from_be_bytes([buf[2], buf[3]]) as usize;
    Some((ch, buf.get(4..4 + len)?))
}

#[test]
fn message_type_round_trips() {
    assert_eq!(message_type(method::BINDING, Class::Request), 0x0001);
    assert_eq!(message_type(method::BINDING, Class::Success), 0x0101);
    assert_eq!(message_type(method::ALLOCATE, Class::Error), 0x0113);
    assert_eq!(message_type(method::SEND, Class::Indication), 0x0016);
    assert_eq!(message_type(method::DATA, Class::Indication), 0x0017);
    assert_eq!(split_type(0x0119), (method::CHANNEL_BIND, Class::Error));
}

/// RFC 5769 section 2.4: the long-term key and MESSAGE-INTEGRITY example.
#[test]
fn rfc5769_long_term_vector_verifies() {
    let user = "\u{30DE}\u{30C8}\u{30EA}\u{30C3}\u{30AF}\u{30B9}";
    // SASLprep maps the password "The<U+00AD>M<U+00AA>tr<U+2168>" to "TheMatrIX".
    let key = long_term_key(user, "example.org", "TheMatrIX");
    let raw: [u8; 116] = [
        0x00, 0x01, 0x00, 0x60, 0x21, 0x12, 0xa4, 0x42, 0x78, 0xad, 0x34, 0x33, 0xc6, 0xad, 0x72,
        0xc0, 0x29, 0xda, 0x41, 0x2e, 0x00, 0x06, 0x00, 0x12, 0xe3, 0x83, 0x9e, 0xe3, 0x83, 0x88,
        0xe3, 0x83, 0xaa, 0xe3, 0x83, 0x83, 0xe3, 0x82, 0xaf, 0xe3, 0x82, 0xb9, 0x00, 0x00, 0x00,
        0x15, 0x00, 0x1c, 0x66, 0x2f, 0x2f, 0x34, 0x39, 0x39, 0x6b, 0x39, 0x35, 0x34, 0x64, 0x36,
        0x4f, 0x4c, 0x33, 0x34, 0x6f, 0x4c, 0x39, 0x46, 0x53, 0x54, 0x76, 0x79, 0x36, 0x34, 0x73,
        0x41, 0x00, 0x14, 0x00, 0x0b, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2e, 0x6f, 0x72,
        0x67, 0x00, 0x00, 0x08, 0x00, 0x14, 0xf6, 0x70, 0x24, 0x65, 0x6d, 0xd6, 0x4a, 0x3e, 0x02,
        0xb8, 0xe0, 0x71, 0x2e, 0x85, 0xc9, 0xa2, 0x8c, 0xa8, 0x96, 0x66,
    ];
    assert!(verify_integrity(&raw, &key));
    let msg = Message::decode(&raw).expect("vector decodes");
    assert_eq!(msg.get(attr::REALM), Some(&b"example.org"[..]));
    // Re-encoding with the same attributes must reproduce the vector byte for byte.
    let again = Message {
        attrs: msg
            .attrs
            .iter()
            .filter(|(t, _)| *t != attr::MESSAGE_INTEGRITY)
            .cloned()
            .collect(),
        ..msg
    };
    assert_eq!(again.encode(Some(&key), false), raw.to_vec());
}
