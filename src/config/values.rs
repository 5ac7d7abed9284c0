//! Parsers of single option values (ports, numbers, addresses, ranges, users, external and
//! alternate servers). Each returns a message without the option name or source, which the
//! caller adds; none echoes a secret.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use super::{AlternateServer, ExternalIp, StaticUser};
use crate::proto::auth::long_term::{is_md5_key_form, parse_md5_key};
use crate::proto::auth::UserSecret;
use crate::proto::peer_policy::IpRange;

pub(super) fn port(v: &str) -> Result<u16, String> {
    match v.trim().parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!("{v:?} is not a port number")),
    }
}

pub(super) fn number<T: FromStr>(v: &str) -> Result<T, String> {
    let t = v.trim();
    // Integer FromStr accepts a leading '+'; only plain digits are allowed so that "-1" is
    // reported instead of being read the way coturn's atoi would.
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{v:?} is not a number"));
    }
    t.parse::<T>().map_err(|_| format!("{v:?} is too large"))
}

pub(super) fn positive<T: FromStr + PartialEq + Default>(v: &str) -> Result<T, String> {
    let n = number::<T>(v)?;
    if n == T::default() {
        return Err("must be greater than 0".to_string());
    }
    Ok(n)
}

pub(super) fn ip(v: &str) -> Result<IpAddr, String> {
    v.trim()
        .parse()
        .map_err(|_| format!("{v:?} is not an IP address"))
}

/// The items of a value that may list several, separated by commas or whitespace.
pub(super) fn list_items(v: &str) -> impl Iterator<Item = &str> {
    v.split(|ch: char| ch == ',' || ch.is_whitespace())
        .filter(|s| !s.is_empty())
}

pub(super) fn range(v: &str) -> Result<IpRange, String> {
    v.parse::<IpRange>()
        .map_err(|e| format!("{v:?} is not an IP, IP-IP range or CIDR block ({e})"))
}

/// Parses `NAME:PASSWORD` or `NAME:0x<32 hex>`. Messages never echo the secret: they are logged.
pub(super) fn user(v: &str) -> Result<StaticUser, String> {
    let Some((name, secret)) = v.split_once(':') else {
        return Err("expected NAME:PASSWORD, found no \":\"".to_string());
    };
    if name.is_empty() {
        return Err("user name is empty".to_string());
    }
    if secret.is_empty() {
        return Err(format!("user {name:?} has an empty password"));
    }
    let key =
        if is_md5_key_form(secret) {
            UserSecret::Key(parse_md5_key(secret).ok_or_else(|| {
                format!("user {name:?}: a key must be 0x followed by 32 hex digits")
            })?)
        } else {
            UserSecret::Password(secret.to_string())
        };
    Ok(StaticUser {
        name: name.to_string(),
        key,
    })
}

pub(super) fn external_ip(v: &str) -> Result<ExternalIp, String> {
    let (public, private) = match v.split_once('/') {
        Some((p, q)) => (ip(p)?, Some(ip(q)?)),
        None => (ip(v)?, None),
    };
    if private.is_some_and(|q| q.is_ipv4() != public.is_ipv4()) {
        return Err(format!(
            "{v:?}: public and private addresses are of different families"
        ));
    }
    Ok(ExternalIp { public, private })
}

pub(super) fn alternate_server(v: &str) -> Result<AlternateServer, String> {
    let t = v.trim();
    if let Ok(sa) = t.parse::<SocketAddr>() {
        return Ok(AlternateServer {
            ip: sa.ip(),
            port: Some(sa.port()).filter(|p| *p > 0),
        });
    }
    if let Ok(ip) = t.trim_start_matches('[').trim_end_matches(']').parse() {
        return Ok(AlternateServer { ip, port: None });
    }
    Err(format!("{v:?} is not IP, IP:PORT or [IPv6]:PORT"))
}

/// A bearer token for an HTTP endpoint (`what` names it in the message), trimmed: at least 16
/// characters, so that it cannot be guessed.
pub(super) fn token(v: &str, what: &str) -> Result<String, String> {
    let t = v.trim();
    if t.len() < 16 {
        return Err(format!("the {what} token must be at least 16 characters"));
    }
    Ok(t.to_string())
}
