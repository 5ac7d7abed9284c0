//! TURN REST credentials minted the way Prosody's `mod_external_services` mints them, and the
//! ICE server JSON a WebRTC application hands to `RTCPeerConnection`.

use crate::http::json::string as json_string;
use crate::proto::auth::rest::{parse_rest_username, rest_password};

/// One minted credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// `<expiry>` or `<expiry>:<user>`.
    pub username: String,
    /// `base64(HMAC-SHA1(secret, username))`.
    pub password: String,
    /// Unix time after which the relay refuses new allocations with it.
    pub expiry: u64,
}

/// Mints a credential valid for `ttl` seconds from `now` (Unix seconds).
///
/// Prosody 0.12 builds the username as `expiry .. ":" .. user` when the service has a
/// username and as the bare expiry otherwise, and the password as base64 of
/// HMAC-SHA1(secret, username); this does the same, so both sides agree byte for byte.
pub fn mint(secret: &str, user: Option<&str>, ttl: u64, now: u64) -> Credential {
    let expiry = now.saturating_add(ttl);
    let username = match user.filter(|u| !u.is_empty()) {
        Some(u) => format!("{expiry}:{u}"),
        None => expiry.to_string(),
    };
    let password = rest_password(secret.as_bytes(), &username);
    debug_assert!(parse_rest_username(&username, ':').is_some());
    Credential {
        username,
        password,
        expiry,
    }
}

/// A `turn:`/`turns:`/`stun:` URL as WebRTC writes them (RFC 7064, RFC 7065).
pub fn ice_url(scheme: &str, host: &str, port: u16, transport: Option<&str>) -> String {
    // An IPv6 literal needs brackets in a URI.
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    match transport {
        Some(t) => format!("{scheme}:{host}:{port}?transport={t}"),
        None => format!("{scheme}:{host}:{port}"),
    }
}

/// The `RTCIceServer` object for `urls` and `cred`, as pretty JSON.
pub fn ice_server_json(urls: &[String], cred: &Credential) -> String {
    let list = urls
        .iter()
        .map(|u| format!("    {}", json_string(u)))
        .collect::<Vec<_>>()
        .join(",\n");
    format!(
        "{{\n  \"urls\": [\n{list}\n  ],\n  \"username\": {},\n  \"credential\": {}\n}}",
        json_string(&cred.username),
        json_string(&cred.password)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    // Computed independently of this crate with:
    // python3 -c 'import hmac,hashlib,base64
    // sec=b"4f6c1d0a9b8e7f2c3d5e6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f70812"
    // for u in ["1700086400","1700086400:alice@meet.jitsi"]:
    //   print(u, base64.b64encode(hmac.new(sec,u.encode(),hashlib.sha1).digest()).decode())'
    const SECRET: &str = "4f6c1d0a9b8e7f2c3d5e6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f70812";

    #[test]
    fn bare_expiry_matches_prosody() {
        let c = mint(SECRET, None, 86_400, 1_700_000_000);
        assert_eq!(c.username, "1700086400");
        assert_eq!(c.password, "yfOp/ed6XuZf2GINFzBw0s3C8ds=");
        assert_eq!(c.expiry, 1_700_086_400);
    }

    #[test]
    fn expiry_colon_user_matches_prosody() {
        let c = mint(SECRET, Some("alice@meet.jitsi"), 86_400, 1_700_000_000);
        assert_eq!(c.username, "1700086400:alice@meet.jitsi");
        assert_eq!(c.password, "IBtHCzS4JT4c4Rprpn6aigWw6Yo=");
    }

    #[test]
    fn empty_user_is_the_bare_form() {
        assert_eq!(
            mint(SECRET, Some(""), 10, 5),
            mint(SECRET, None, 10, 5),
            "Prosody writes the bare expiry when no username is set"
        );
    }

    #[test]
    fn relay_parses_what_is_minted() {
        let c = mint(SECRET, Some("bob"), 60, 1_700_000_000);
        let parsed = parse_rest_username(&c.username, ':').unwrap();
        assert_eq!((parsed.expiry, parsed.user_id), (1_700_000_060, "bob"));
    }

    #[test]
    fn urls_and_json() {
        assert_eq!(
            ice_url("turn", "turn.example.org", 3478, Some("udp")),
            "turn:turn.example.org:3478?transport=udp"
        );
        assert_eq!(ice_url("stun", "::1", 3478, None), "stun:[::1]:3478");
        let c = Credential {
            username: "1:a\"b".into(),
            password: "p".into(),
            expiry: 1,
        };
        let j = ice_server_json(&["turn:h:1".into()], &c);
        assert!(j.contains("\"username\": \"1:a\\\"b\""), "{j}");
        assert!(j.contains("\"urls\": [\n    \"turn:h:1\"\n  ]"), "{j}");
    }
}
