//! One STUN request as the handlers see it.

use std::time::Instant;

use super::super::auth::algorithm::ReplyKey;
use super::super::stun::{Attributes, Message};
use super::reply::ReplyTo;
use super::{Flow, Transport};

/// A parsed request with where and when it arrived: what every request handler needs, passed
/// as one value instead of five arguments.
#[derive(Clone, Copy)]
pub(super) struct Request<'a> {
    /// When it arrived (virtual time in tests).
    pub(super) now: Instant,
    /// The client's 5-tuple.
    pub(super) flow: Flow,
    /// The client's transport.
    pub(super) transport: Transport,
    /// The message.
    pub(super) msg: &'a Message<'a>,
    /// Its attributes, parsed once.
    pub(super) attrs: &'a Attributes<'a>,
}

impl<'a> Request<'a> {
    /// How to answer it: signed with `key` (None before or without authentication), with
    /// FINGERPRINT when it carried one.
    pub(super) fn reply_to<'b>(&self, key: Option<&'b ReplyKey>) -> ReplyTo<'b>
    where
        'a: 'b,
    {
        ReplyTo::new(self.msg, key, self.attrs.fingerprint)
    }
}
