//! The long-term credential check every TURN request passes (RFC 8489 §9.2.4).

use std::time::Instant;

use super::super::auth::long_term::LongTermKey;
use super::super::auth::nonce::NonceCheck;
use super::super::auth::Purpose;
use super::super::stun::integrity::verify_integrity;
use super::super::stun::{Attributes, Message};
use super::{ClientAction, Flow, Server};

/// A request that passed authentication.
pub(super) struct Authed<'a> {
    /// The key that verified MESSAGE-INTEGRITY; None when the server runs with no-auth.
    pub key: Option<LongTermKey>,
    /// The USERNAME it carried.
    pub username: &'a str,
}

impl Server {
    /// Verifies the request's credentials, or returns the error response to send instead.
    pub(super) fn authenticate<'a>(
        &mut self,
        now: Instant,
        flow: Flow,
        msg: &Message<'a>,
        attrs: &Attributes<'a>,
        purpose: Purpose,
        out: &mut [u8],
    ) -> Result<Authed<'a>, ClientAction> {
        let fp = attrs.fingerprint;
        if self.shared.auth.no_auth() {
            let username = attrs
                .username
                .and_then(|u| std::str::from_utf8(u).ok())
                .unwrap_or("");
            return Ok(Authed {
                key: None,
                username,
            });
        }
        let Some(integrity_at) = attrs.integrity_offset else {
            return Err(self.challenge_reply(out, msg, flow, 401, now, fp));
        };
        let (Some(user), Some(_), Some(nonce)) = (attrs.username, attrs.realm, attrs.nonce) else {
            self.stats.auth_failures += 1;
            return Err(self.error_reply(out, msg, 400, None, fp));
        };
        let unix = self.unix_time(now);
        let lifetime = self.shared.settings.stale_nonce_secs;
        match self
            .shared
            .nonce_key
            .check(nonce, unix, flow.remote.ip(), lifetime)
        {
            NonceCheck::Valid => {}
            NonceCheck::Stale | NonceCheck::Invalid => {
                return Err(self.challenge_reply(out, msg, flow, 438, now, fp));
            }
        }
        let Ok(username) = std::str::from_utf8(user) else {
            return Err(self.challenge_reply(out, msg, flow, 401, now, fp));
        };
        let keys = match self.shared.auth.candidate_keys(username, unix, purpose) {
            Ok(keys) => keys,
            Err(e) => {
                tracing::debug!(client = %flow.remote, username, error = %e, "authentication refused");
                return Err(self.challenge_reply(out, msg, flow, 401, now, fp));
            }
        };
        for key in keys.iter() {
            if verify_integrity(msg.raw(), integrity_at, key) {
                return Ok(Authed {
                    key: Some(*key),
                    username,
                });
            }
        }
        tracing::debug!(client = %flow.remote, username, "MESSAGE-INTEGRITY mismatch");
        Err(self.challenge_reply(out, msg, flow, 401, now, fp))
    }
}
