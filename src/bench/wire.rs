//! STUN requests the load tool sends and the parts of responses it reads, on top of the
//! project's codec.

use std::net::SocketAddr;

use crate::proto::stun::{
    attr, padded, xor_addr, Class, CodecError, Message, MessageWriter, TransactionId, HEADER_LEN,
};

/// Credentials attached to a request after the challenge.
pub struct Credentials<'a> {
    /// USERNAME.
    pub username: &'a str,
    /// REALM as the server sent it.
    pub realm: &'a [u8],
    /// NONCE as the server sent it.
    pub nonce: &'a [u8],
    /// The long-term key.
    pub key: &'a [u8; 16],
}

/// The request attributes a TURN client sends.
#[derive(Debug, Clone, Copy)]
pub enum Request {
    /// Allocate a UDP relay.
    Allocate,
    /// Refresh with this lifetime (0 deletes the allocation).
    Refresh(u32),
    /// Permission for a peer.
    CreatePermission(SocketAddr),
    /// Bind a channel to a peer.
    ChannelBind(u16, SocketAddr),
}

impl Request {
    /// The STUN method.
    pub fn method(&self) -> u16 {
        use crate::proto::stun::method;
        match self {
            Request::Allocate => method::ALLOCATE,
            Request::Refresh(_) => method::REFRESH,
            Request::CreatePermission(_) => method::CREATE_PERMISSION,
            Request::ChannelBind(..) => method::CHANNEL_BIND,
        }
    }
}

/// Writes `req` into `buf`, authenticated when `creds` is given; returns its length.
pub fn write_request(
    buf: &mut [u8],
    req: Request,
    tid: TransactionId,
    creds: Option<&Credentials<'_>>,
) -> Result<usize, CodecError> {
    let mut w = MessageWriter::new(buf, req.method(), Class::Request, tid)?;
    match req {
        Request::Allocate => w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24)?,
        Request::Refresh(lifetime) => w.attr_u32(attr::LIFETIME, lifetime)?,
        Request::CreatePermission(peer) => w.xor_address(attr::XOR_PEER_ADDRESS, &peer)?,
        Request::ChannelBind(number, peer) => {
            w.attr_u32(attr::CHANNEL_NUMBER, (number as u32) << 16)?;
            w.xor_address(attr::XOR_PEER_ADDRESS, &peer)?;
        }
    }
    if let Some(c) = creds {
        w.attr(attr::USERNAME, c.username.as_bytes())?;
        w.attr(attr::REALM, c.realm)?;
        w.attr(attr::NONCE, c.nonce)?;
        w.integrity(c.key)?;
    }
    Ok(w.finish())
}

/// Writes an unauthenticated Binding request into `buf`; returns its length.
pub fn write_binding(buf: &mut [u8], tid: TransactionId) -> Result<usize, CodecError> {
    let w = MessageWriter::new(
        buf,
        crate::proto::stun::method::BINDING,
        Class::Request,
        tid,
    )?;
    Ok(w.finish())
}

/// What the tool reads from a response.
#[derive(Debug, Clone, Copy)]
pub struct Response<'a> {
    /// The method.
    pub method: u16,
    /// Success or error (requests and indications are never answers).
    pub class: Class,
    /// The transaction id.
    pub tid: TransactionId,
    /// ERROR-CODE as a number.
    pub error_code: Option<u16>,
    /// REALM.
    pub realm: Option<&'a [u8]>,
    /// NONCE.
    pub nonce: Option<&'a [u8]>,
    /// XOR-RELAYED-ADDRESS.
    pub relayed: Option<SocketAddr>,
    /// LIFETIME.
    pub lifetime: Option<u32>,
}

/// Parses a response; anything that is not a well-formed STUN response is an error.
pub fn parse_response(raw: &[u8]) -> Result<Response<'_>, CodecError> {
    let msg = Message::parse(raw)?;
    if matches!(msg.class, Class::Request | Class::Indication) {
        return Err(CodecError::NotStun);
    }
    let mut r = Response {
        method: msg.method,
        class: msg.class,
        tid: msg.tid,
        error_code: None,
        realm: None,
        nonce: None,
        relayed: None,
        lifetime: None,
    };
    let mut pos = HEADER_LEN;
    while pos + 4 <= raw.len() {
        let typ = u16::from_be_bytes([raw[pos], raw[pos + 1]]);
        let len = u16::from_be_bytes([raw[pos + 2], raw[pos + 3]]) as usize;
        let value = raw
            .get(pos + 4..pos + 4 + len)
            .ok_or(CodecError::AttributeOverrun)?;
        match typ {
            attr::ERROR_CODE if len >= 4 => {
                r.error_code = Some((value[2] & 0x07) as u16 * 100 + value[3] as u16)
            }
            attr::REALM => r.realm = Some(value),
            attr::NONCE => r.nonce = Some(value),
            attr::XOR_RELAYED_ADDRESS => {
                r.relayed = xor_addr::decode(value, &msg.tid, typ).ok();
            }
            attr::LIFETIME if len == 4 => {
                r.lifetime = Some(u32::from_be_bytes([value[0], value[1], value[2], value[3]]))
            }
            _ => {}
        }
        pos += 4 + padded(len);
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::stun::{method, ErrorCode};

    #[test]
    fn requests_parse_back_with_the_codec() {
        let mut buf = [0u8; 512];
        let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let key = [7u8; 16];
        let creds = Credentials {
            username: "1800000000:bench3",
            realm: b"r",
            nonce: b"n0nce",
            key: &key,
        };
        let n = write_request(
            &mut buf,
            Request::ChannelBind(0x4001, peer),
            [1; 12],
            Some(&creds),
        )
        .unwrap();
        let msg = Message::parse(&buf[..n]).unwrap();
        assert_eq!(
            (msg.method, msg.class),
            (method::CHANNEL_BIND, Class::Request)
        );
        let a = msg.attributes().unwrap();
        assert_eq!(a.channel_number, Some(0x4001));
        assert_eq!(a.peer_address().unwrap().unwrap(), peer);
        assert_eq!(a.username, Some(&b"1800000000:bench3"[..]));
        let off = a.integrity_offset.unwrap();
        assert!(crate::proto::stun::integrity::verify_integrity(
            &buf[..n],
            off,
            &key
        ));
    }

    #[test]
    fn reads_error_and_success_responses() {
        let mut buf = [0u8; 512];
        let mut w = MessageWriter::new(&mut buf, method::ALLOCATE, Class::Error, [2; 12]).unwrap();
        w.error_code(ErrorCode::Unauthorized).unwrap();
        w.attr(attr::REALM, b"realm").unwrap();
        w.attr(attr::NONCE, b"abc").unwrap();
        let n = w.finish();
        let r = parse_response(&buf[..n]).unwrap();
        assert_eq!(
            (r.error_code, r.realm, r.nonce),
            (Some(401), Some(&b"realm"[..]), Some(&b"abc"[..]))
        );

        let relay: SocketAddr = "127.0.0.1:50001".parse().unwrap();
        let mut w =
            MessageWriter::new(&mut buf, method::ALLOCATE, Class::Success, [3; 12]).unwrap();
        w.xor_address(attr::XOR_RELAYED_ADDRESS, &relay).unwrap();
        w.attr_u32(attr::LIFETIME, 600).unwrap();
        let n = w.finish();
        let r = parse_response(&buf[..n]).unwrap();
        assert_eq!(
            (r.relayed, r.lifetime, r.error_code),
            (Some(relay), Some(600), None)
        );
        assert_eq!(r.tid, [3; 12]);

        let w = MessageWriter::new(&mut buf, method::ALLOCATE, Class::Request, [3; 12]).unwrap();
        let n = w.finish();
        assert!(parse_response(&buf[..n]).is_err());
    }
}
