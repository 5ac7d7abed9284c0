//! The long-term credential check every TURN request passes (RFC 8489 §9.2.4).

use super::super::auth::algorithm::{negotiate, Algorithm, ReplyKey, NONCE_COOKIE};
use super::super::auth::nonce::NonceCheck;
use super::super::auth::{AuthError, Purpose};
use super::super::log_escape::Escaped;
use super::super::stun::integrity::{verify_integrity, verify_integrity_sha256};
use super::super::stun::ErrorCode;
use super::request::Request;
use super::{ClientAction, Server};

/// Longest USERNAME accepted, in bytes (RFC 5389 §15.3: "less than 513 bytes"; RFC 8489
/// tightened it to 509 after OpaqueString processing, which clients do not all apply). Longer
/// ones get 400 before any key is derived, on every transport.
pub(crate) const MAX_USERNAME_LEN: usize = 513;

/// A request that passed authentication.
pub(super) struct Authed<'a> {
    /// The key that verified MESSAGE-INTEGRITY(-SHA256) and how to sign answers; None when
    /// the server runs with no-auth.
    pub key: Option<ReplyKey>,
    /// The USERNAME it carried.
    pub username: &'a str,
    /// The REST secret that produced the key, by id.
    pub secret_id: Option<u64>,
}

impl Server {
    /// Verifies the request's credentials, or returns the error response to send instead.
    pub(super) fn authenticate<'a>(
        &mut self,
        req: Request<'a>,
        purpose: Purpose,
        out: &mut [u8],
    ) -> Result<Authed<'a>, ClientAction> {
        let Request {
            now,
            flow,
            msg,
            attrs,
            ..
        } = req;
        let config = self.config.clone();
        if attrs.username.is_some_and(|u| u.len() > MAX_USERNAME_LEN) {
            self.stats.auth_malformed.inc();
            return Err(self.error_reply(out, req.reply_to(None), ErrorCode::BadRequest));
        }
        if config.auth.no_auth() {
            let username = attrs
                .username
                .and_then(|u| std::str::from_utf8(u).ok())
                .unwrap_or("");
            return Ok(Authed {
                key: None,
                username,
                secret_id: None,
            });
        }
        if !attrs.has_integrity() {
            let reply = self.challenge_reply(out, req, ErrorCode::Unauthorized);
            if reply != ClientAction::None {
                self.stats.auth_challenges.inc();
            }
            return Err(reply);
        };
        let (Some(user), Some(realm), Some(nonce)) = (attrs.username, attrs.realm, attrs.nonce)
        else {
            self.stats.auth_malformed.inc();
            return Err(self.error_reply(out, req.reply_to(None), ErrorCode::BadRequest));
        };
        let unix = self.unix_time(now);
        let lifetime = config.settings.stale_nonce_secs;
        // With SHA-256 on offer every nonce issued starts with the RFC 8489 cookie, and one
        // without it is not ours; without the offer none carries it.
        let nonce = if config.settings.sha256_integrity {
            nonce.strip_prefix(&NONCE_COOKIE[..]).unwrap_or(b"")
        } else {
            nonce
        };
        let mut check = self.shared.nonce_key.check(nonce, unix, flow, lifetime);
        if check != NonceCheck::Valid {
            // A ConnectionBind may carry the nonce of the allocation's control connection
            // (RFC 6062 clients reuse it, as coturn's turnutils_uclient does).
            if let Some(owner) = self.tcp_bind_owner_flow(msg, attrs) {
                if self.shared.nonce_key.check(nonce, unix, owner, lifetime) == NonceCheck::Valid {
                    check = NonceCheck::Valid;
                }
            }
        }
        match check {
            NonceCheck::Valid => {}
            NonceCheck::Stale | NonceCheck::Invalid => {
                self.stats.auth_stale_nonce.inc();
                return Err(self.challenge_reply(out, req, ErrorCode::StaleNonce));
            }
        }
        // The key is derived with our realm anyway; a client naming another (or none) is
        // told the right one rather than let through on a key that happens to match.
        if realm != config.auth.realm().as_bytes() {
            self.stats.auth_bad_credentials.inc();
            return Err(self.challenge_reply(out, req, ErrorCode::Unauthorized));
        }
        // Bid-down protection (§9.2.4): an algorithm choice must echo the offer unchanged.
        // Without the offer there is nothing to negotiate: the key is MD5's, and a client that
        // signs with another key simply fails the integrity check.
        let negotiated = if config.settings.sha256_integrity {
            negotiate(attrs.password_algorithm, attrs.password_algorithms)
        } else {
            Ok(Algorithm::Md5)
        };
        let algorithm = match negotiated {
            Ok(a) => a,
            Err(e) => {
                self.stats.auth_malformed.inc();
                tracing::debug!(client = %flow.remote, error = %e, "password algorithm refused");
                return Err(self.error_reply(out, req.reply_to(None), ErrorCode::BadRequest));
            }
        };
        let Ok(username) = std::str::from_utf8(user) else {
            self.stats.auth_bad_credentials.inc();
            return Err(self.challenge_reply(out, req, ErrorCode::Unauthorized));
        };
        if config.revoked_users.contains(config.auth.user_id(username)) {
            self.stats.auth_revoked.inc();
            tracing::debug!(client = %flow.remote, username = %Escaped(username), "revoked user refused");
            return Err(self.challenge_reply(out, req, ErrorCode::Unauthorized));
        }
        let keys = match config
            .auth
            .candidate_keys(username, unix, purpose, algorithm)
        {
            Ok(keys) => keys,
            Err(e) => {
                match e {
                    AuthError::Expired => self.stats.auth_expired.inc(),
                    AuthError::UnknownUser | AuthError::NoSha256Key => {
                        self.stats.auth_bad_credentials.inc()
                    }
                }
                tracing::debug!(client = %flow.remote, username = %Escaped(username), error = %e, "authentication refused");
                return Err(self.challenge_reply(out, req, e.stun_code()));
            }
        };
        // MESSAGE-INTEGRITY-SHA256 is checked when present, whatever MESSAGE-INTEGRITY says
        // (§9.2.4); answers are signed the same way.
        let raw = msg.raw();
        let verify = |key: &[u8]| match (attrs.integrity_sha256_offset, attrs.integrity_offset) {
            (Some(at), _) => verify_integrity_sha256(raw, at, key),
            (None, Some(at)) => verify_integrity(raw, at, key),
            (None, None) => false,
        };
        let sha256 = attrs.integrity_sha256_offset.is_some();
        for (index, key) in keys.iter().enumerate() {
            if verify(key.as_bytes()) {
                let secret_id = config.auth.secret_of_candidate(username, index);
                if secret_id.is_some_and(|id| config.revoked_secrets.contains(&id)) {
                    self.stats.auth_revoked.inc();
                    return Err(self.challenge_reply(out, req, ErrorCode::Unauthorized));
                }
                return Ok(Authed {
                    key: Some(ReplyKey { key: *key, sha256 }),
                    username,
                    secret_id,
                });
            }
        }
        self.stats.auth_bad_credentials.inc();
        tracing::debug!(client = %flow.remote, username = %Escaped(username), "MESSAGE-INTEGRITY mismatch");
        Err(self.challenge_reply(out, req, ErrorCode::Unauthorized))
    }
}
