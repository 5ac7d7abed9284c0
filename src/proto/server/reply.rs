//! Building responses and Data indications.

use std::net::SocketAddr;

use super::super::auth::algorithm::ReplyKey;
use super::super::auth::algorithm::{NONCE_COOKIE, OFFERED};
use super::super::auth::nonce::NONCE_LEN;
use super::super::settings::SOFTWARE;
use super::super::stun::integrity::INTEGRITY_SHA256_ATTR_LEN;
use super::super::stun::integrity::{fingerprint_of, FINGERPRINT_ATTR_LEN, INTEGRITY_ATTR_LEN};
use super::super::stun::{attr, method, padded, xor_addr, Class, CodecError, ErrorCode, Message};
use super::super::stun::{MessageWriter, HEADER_LEN, MAGIC_COOKIE};
use super::request::Request;
use super::{ClientAction, Flow, Server, PEER_HEADROOM, XOR_PEER_ADDRESS};

/// Largest factor by which an unauthenticated success answer may exceed its request before
/// SOFTWARE is left out, so the server is a poor reflection amplifier. Unauthenticated error
/// answers never carry SOFTWARE.
const MAX_UNAUTHENTICATED_GROWTH: usize = 2;

/// The request a response answers and how the response is sealed: signed with `key` when the
/// request was authenticated, with FINGERPRINT when the request carried one (or always, when
/// configured).
#[derive(Clone, Copy)]
pub(super) struct ReplyTo<'a> {
    /// The request.
    pub(super) msg: &'a Message<'a>,
    /// The key that verified it.
    pub(super) key: Option<&'a ReplyKey>,
    /// Whether it carried FINGERPRINT.
    pub(super) fingerprint: bool,
}

impl<'a> ReplyTo<'a> {
    /// The answer to `msg`, signed with `key`, with FINGERPRINT if `fingerprint`.
    pub(super) fn new(msg: &'a Message<'a>, key: Option<&'a ReplyKey>, fingerprint: bool) -> Self {
        ReplyTo {
            msg,
            key,
            fingerprint,
        }
    }
}

impl Server {
    /// Signs and seals a response: SOFTWARE (if allowed), MESSAGE-INTEGRITY with the key, and
    /// FINGERPRINT when configured or when the request carried one.
    pub(super) fn finish_reply(&self, w: MessageWriter<'_>, to: ReplyTo<'_>) -> ClientAction {
        self.seal(w, to, false)
    }

    fn seal(&self, mut w: MessageWriter<'_>, to: ReplyTo<'_>, error: bool) -> ClientAction {
        let ReplyTo { msg, key, .. } = to;
        let settings = &self.config.settings;
        let fingerprint = settings.fingerprint || to.fingerprint;
        let result = (|| -> Result<usize, CodecError> {
            if settings.software && (key.is_some() || !error) {
                let tail = match key {
                    Some(k) if k.sha256 => INTEGRITY_SHA256_ATTR_LEN,
                    Some(_) => INTEGRITY_ATTR_LEN,
                    None => 0,
                } + if fingerprint { FINGERPRINT_ATTR_LEN } else { 0 };
                let total = w.len() + 4 + padded(SOFTWARE.len()) + tail;
                if key.is_some() || total <= MAX_UNAUTHENTICATED_GROWTH * msg.raw().len() {
                    w.attr(attr::SOFTWARE, SOFTWARE.as_bytes())?;
                }
            }
            match key {
                Some(k) if k.sha256 => w.integrity_sha256(k.key.as_bytes())?,
                Some(k) => w.integrity(k.key.as_bytes())?,
                None => {}
            }
            if fingerprint {
                w.fingerprint()?;
            }
            Ok(w.finish())
        })();
        match result {
            Ok(len) => ClientAction::Reply(len),
            Err(_) => ClientAction::None,
        }
    }

    /// An error response, signed when the request was authenticated.
    pub(super) fn error_reply(
        &mut self,
        out: &mut [u8],
        to: ReplyTo<'_>,
        code: ErrorCode,
    ) -> ClientAction {
        self.error_reply_with(out, to, code, |_| Ok(()))
    }

    /// An error response with extra attributes written by `extra`.
    pub(super) fn error_reply_with(
        &mut self,
        out: &mut [u8],
        to: ReplyTo<'_>,
        code: ErrorCode,
        extra: impl FnOnce(&mut MessageWriter<'_>) -> Result<(), CodecError>,
    ) -> ClientAction {
        let msg = to.msg;
        self.stats.error_responses.inc();
        tracing::trace!(code = code.code(), method = msg.method, "error response");
        if msg.method == method::BINDING {
            self.stats.binding_errors.inc();
        }
        let Ok(mut w) = MessageWriter::new(out, msg.method, Class::Error, msg.tid) else {
            return ClientAction::None;
        };
        let reason = self.config.settings.include_reason;
        if w.error_code_with(code, reason)
            .and_then(|_| extra(&mut w))
            .is_err()
        {
            return ClientAction::None;
        }
        self.seal(w, to, true)
    }

    /// A 401 or 438 carrying REALM and a fresh NONCE, inviting the client to (re)authenticate;
    /// with `sha256-integrity` the nonce sits behind the RFC 8489 cookie and PASSWORD-ALGORITHMS
    /// offers SHA-256.
    pub(super) fn challenge_reply(
        &mut self,
        out: &mut [u8],
        req: Request<'_>,
        code: ErrorCode,
    ) -> ClientAction {
        let Request { now, flow, .. } = req;
        let rps = self.config.settings.unauthorized_rps;
        let now_us = now.saturating_duration_since(self.epoch).as_micros() as u64;
        if !self.challenges.allow(flow.remote.ip(), now_us, rps) {
            self.stats.challenges_ratelimited.inc();
            return ClientAction::None;
        }
        let nonce = self.shared.nonce_key.issue(self.unix_time(now), flow);
        let config = self.config.clone();
        self.error_reply_with(out, req.reply_to(None), code, |w| {
            w.attr(attr::REALM, config.auth.realm().as_bytes())?;
            if !config.settings.sha256_integrity {
                return w.attr(attr::NONCE, nonce.as_bytes());
            }
            let mut value = [0u8; NONCE_COOKIE.len() + NONCE_LEN];
            value[..NONCE_COOKIE.len()].copy_from_slice(NONCE_COOKIE);
            value[NONCE_COOKIE.len()..].copy_from_slice(nonce.as_bytes());
            w.attr(attr::NONCE, &value)?;
            w.attr(attr::PASSWORD_ALGORITHMS, &OFFERED)
        })
    }

    /// A 420 listing the comprehension-required attributes of the request that this server
    /// does not know (RFC 8489 §7.3.1), signed with `key` when the request was authenticated.
    pub(super) fn unknown_attributes_reply(
        &mut self,
        out: &mut [u8],
        msg: &Message<'_>,
        attrs: &super::super::stun::Attributes<'_>,
        key: Option<&ReplyKey>,
    ) -> ClientAction {
        let unknown = attrs.unknown();
        let to = ReplyTo::new(msg, key, attrs.fingerprint);
        self.error_reply_with(out, to, ErrorCode::UnknownAttribute, |w| {
            w.unknown_attributes(unknown)
        })
    }

    /// The answer to a Binding request: the client's address as seen here.
    pub(super) fn binding_response(
        &mut self,
        out: &mut [u8],
        msg: &Message<'_>,
        attrs: &super::super::stun::Attributes<'_>,
        flow: Flow,
    ) -> ClientAction {
        self.stats.binding_requests.inc();
        if !attrs.unknown().is_empty() {
            return self.unknown_attributes_reply(out, msg, attrs, None);
        }
        self.stats.binding_responses.inc();
        let Ok(mut w) = MessageWriter::new(out, method::BINDING, Class::Success, msg.tid) else {
            return ClientAction::None;
        };
        if w.xor_address(attr::XOR_MAPPED_ADDRESS, &flow.remote)
            .is_err()
        {
            return ClientAction::None;
        }
        self.finish_reply(w, ReplyTo::new(msg, None, attrs.fingerprint))
    }
}

/// Frames the peer payload at `buf[PEER_HEADROOM..*end]` as a Data indication in place and
/// returns where the message starts; `*end` moves past padding and FINGERPRINT.
pub(super) fn frame_data_indication(
    buf: &mut [u8],
    len: usize,
    from: SocketAddr,
    tid: [u8; 12],
    fingerprint: bool,
    end: &mut usize,
) -> usize {
    let addr_len = xor_addr::encoded_len(&from);
    let start = PEER_HEADROOM - (HEADER_LEN + 4 + addr_len + 4);
    let data_end = PEER_HEADROOM + len;
    let padded_end = PEER_HEADROOM + padded(len);
    buf[data_end..padded_end].fill(0);
    let mut total = padded_end - start;
    if fingerprint {
        total += FINGERPRINT_ATTR_LEN;
    }

    let h = &mut buf[start..start + HEADER_LEN];
    let typ = super::super::stun::message_type(method::DATA, Class::Indication);
    h[0..2].copy_from_slice(&typ.to_be_bytes());
    h[2..4].copy_from_slice(&((total - HEADER_LEN) as u16).to_be_bytes());
    h[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    h[8..20].copy_from_slice(&tid);

    let mut at = start + HEADER_LEN;
    buf[at..at + 2].copy_from_slice(&XOR_PEER_ADDRESS.to_be_bytes());
    buf[at + 2..at + 4].copy_from_slice(&(addr_len as u16).to_be_bytes());
    xor_addr::encode(&from, &tid, &mut buf[at + 4..at + 4 + addr_len]);
    at += 4 + addr_len;
    buf[at..at + 2].copy_from_slice(&attr::DATA.to_be_bytes());
    buf[at + 2..at + 4].copy_from_slice(&(len as u16).to_be_bytes());

    *end = padded_end;
    if fingerprint {
        let crc = fingerprint_of(&buf[start..padded_end]);
        let f = &mut buf[padded_end..padded_end + FINGERPRINT_ATTR_LEN];
        f[0..2].copy_from_slice(&attr::FINGERPRINT.to_be_bytes());
        f[2..4].copy_from_slice(&4u16.to_be_bytes());
        f[4..8].copy_from_slice(&crc.to_be_bytes());
        *end = padded_end + FINGERPRINT_ATTR_LEN;
    }
    start
}
