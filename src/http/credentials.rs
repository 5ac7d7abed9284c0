//! The TURN REST credential endpoint (draft-uberti-behave-turn-rest): applications other than
//! Prosody ask `GET /?service=turn&username=U&ttl=S` (or `/credentials?...`) with a bearer token
//! and get `{username, password, ttl, uris}` signed with the relay's own secret.

use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::server::{Handler, Request, Response};
use crate::config::Config;
use crate::jitsi::credentials::{ice_url, mint};
use crate::proto::auth::rest::{rest_password_with, RestHmac};

/// Default credential lifetime, seconds (a day, as the draft suggests).
const DEFAULT_TTL: u64 = 86_400;
/// Longest lifetime handed out.
const MAX_TTL: u64 = 7 * 86_400;

/// What the endpoint hands out: the secret that signs, its HMAC and the URIs.
#[derive(Debug, Clone)]
pub struct CredentialIssuer {
    secret: String,
    hmac: RestHmac,
    uris: Vec<String>,
}

impl CredentialIssuer {
    /// Signs with the first `static-auth-secret` (the newest during a rotation) and hands out
    /// the listeners the configuration enables. None when the relay has no REST secret.
    pub fn from_config(config: &Config) -> Option<Self> {
        let secret = config.auth.static_auth_secrets.first()?.clone();
        let host = config
            .credential_endpoint
            .host
            .clone()
            .or_else(|| {
                config
                    .relay
                    .external_ips
                    .first()
                    .map(|e| e.public.to_string())
            })
            .unwrap_or_else(|| config.auth.realm.clone());
        let mut uris = Vec::new();
        if !config.listen.no_udp {
            uris.push(ice_url("turn", &host, config.listen.port, Some("udp")));
        }
        if !config.listen.no_tcp {
            uris.push(ice_url("turn", &host, config.listen.port, Some("tcp")));
        }
        if config.serves_tls() {
            uris.push(ice_url("turns", &host, config.listen.tls_port, Some("tcp")));
        }
        Some(CredentialIssuer {
            secret,
            hmac: config.auth.rest_api_hmac,
            uris,
        })
    }

    /// The JSON answer for `username` and `ttl` at Unix time `now`.
    pub fn answer(&self, username: Option<&str>, ttl: u64, now: u64) -> Answer<'_> {
        let mut cred = mint(&self.secret, username, ttl, now);
        if self.hmac != RestHmac::Sha1 {
            cred.password = rest_password_with(self.hmac, self.secret.as_bytes(), &cred.username);
        }
        Answer {
            username: cred.username,
            password: cred.password,
            ttl,
            uris: &self.uris,
        }
    }
}

/// The endpoint's answer, in the draft's field order.
#[derive(Debug, Serialize)]
pub struct Answer<'a> {
    /// `expiry:user`.
    pub username: String,
    /// The REST password for `username`.
    pub password: String,
    /// Lifetime, seconds.
    pub ttl: u64,
    /// The relay's TURN URIs.
    pub uris: &'a [String],
}

/// The issuer the endpoint signs with now: built at start-up and replaced on SIGHUP, so a
/// rotated `static-auth-secret`, `rest-api-hmac`, `rest-api-host` or realm apply to the next
/// answer (the relay itself checks with the new secret from then on too).
#[derive(Debug)]
pub struct LiveIssuer(RwLock<CredentialIssuer>);

impl LiveIssuer {
    /// Starts with `issuer`.
    pub fn new(issuer: CredentialIssuer) -> Arc<Self> {
        Arc::new(LiveIssuer(RwLock::new(issuer)))
    }

    /// Switches to what `config` asks for; keeps the current issuer when `config` has no REST
    /// secret (validation refuses that while the endpoint is on).
    pub fn update(&self, config: &Config) {
        if let Some(issuer) = CredentialIssuer::from_config(config) {
            *self.0.write().unwrap_or_else(|e| e.into_inner()) = issuer;
        }
    }

    fn current(&self) -> CredentialIssuer {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The endpoint's handler.
pub fn handler(issuer: Arc<LiveIssuer>, token: String) -> Handler {
    Arc::new(move |req: &Request| {
        if !req.has_bearer(&token) {
            return Response::error(401, "missing or wrong bearer token");
        }
        if req.method != "GET" || !matches!(req.path.as_str(), "/" | "/credentials") {
            return Response::error(404, "use GET /credentials?service=turn");
        }
        if req.param("service").is_some_and(|s| s != "turn") {
            return Response::error(400, "only service=turn is offered");
        }
        let ttl = match req.param("ttl").map(|t| t.parse::<u64>()) {
            None => DEFAULT_TTL,
            Some(Ok(t)) if (1..=MAX_TTL).contains(&t) => t,
            Some(_) => {
                return Response::error(400, "ttl must be 1..=604800 seconds");
            }
        };
        let username = req.param("username").filter(|u| !u.is_empty());
        if username
            .as_deref()
            .is_some_and(|u| u.contains(':') || u.len() > 128)
        {
            return Response::error(
                400,
                "username must not contain ':' and be at most 128 bytes",
            );
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let issuer = issuer.current();
        Response::json(200, &issuer.answer(username.as_deref(), ttl, now))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::auth::rest::rest_password;

    fn config(text: &str) -> Config {
        crate::config::from_conf_str(text, "test").unwrap()
    }

    #[test]
    fn rest_api_hmac_sha256_mints_sha256_passwords() {
        let c = config("use-auth-secret\nstatic-auth-secret=north\nrest-api-hmac=sha256\n");
        let issuer = CredentialIssuer::from_config(&c).unwrap();
        let answer = issuer.answer(Some("alice"), 600, 1_700_000_000);
        let password = rest_password_with(RestHmac::Sha256, b"north", "1700000600:alice");
        assert_eq!(password.len(), 44);
        assert_eq!(answer.username, "1700000600:alice");
        assert_eq!(answer.password, password);
    }

    #[test]
    fn answers_in_the_rest_api_shape_with_a_password_the_relay_accepts() {
        let c = config("use-auth-secret\nstatic-auth-secret=north\nexternal-ip=203.0.113.5\ncert=/c\npkey=/k\n");
        let issuer = CredentialIssuer::from_config(&c).unwrap();
        let body =
            serde_json::to_string(&issuer.answer(Some("alice"), 600, 1_700_000_000)).unwrap();
        let password = rest_password(b"north", "1700000600:alice");
        assert_eq!(
            body,
            format!(
                "{{\"username\":\"1700000600:alice\",\"password\":\"{password}\",\"ttl\":600,\"uris\":[\
                 \"turn:203.0.113.5:3478?transport=udp\",\"turn:203.0.113.5:3478?transport=tcp\",\
                 \"turns:203.0.113.5:5349?transport=tcp\"]}}"
            )
        );
    }

    #[test]
    fn refuses_without_token_and_checks_parameters() {
        let c =
            config("use-auth-secret\nstatic-auth-secret=north\nrealm=turn.example.org\nno-tcp\n");
        let h = handler(
            LiveIssuer::new(CredentialIssuer::from_config(&c).unwrap()),
            "t".repeat(16),
        );
        let ask = |query: &str, bearer: Option<&str>| {
            h(&Request {
                method: "GET".into(),
                path: "/credentials".into(),
                query: query.into(),
                bearer: bearer.map(str::to_string),
                body: Vec::new(),
            })
        };
        assert_eq!(ask("service=turn", None).status, 401);
        assert_eq!(ask("service=turn", Some("wrong-token-wrong")).status, 401);
        let token = "t".repeat(16);
        let ok = ask("service=turn&username=bob&ttl=60", Some(&token));
        assert_eq!(ok.status, 200);
        let text = String::from_utf8(ok.body).unwrap();
        assert!(text.contains(":bob\""), "{text}");
        assert!(
            text.contains("turn:turn.example.org:3478?transport=udp"),
            "{text}"
        );
        assert!(!text.contains("transport=tcp"), "no-tcp: {text}");
        assert_eq!(ask("service=stun", Some(&token)).status, 400);
        assert_eq!(ask("ttl=0", Some(&token)).status, 400);
        assert_eq!(ask("ttl=99999999", Some(&token)).status, 400);
        assert_eq!(ask("username=a:b", Some(&token)).status, 400);
    }

    #[test]
    fn a_reload_switches_secret_hmac_and_host_for_the_next_answer() {
        let before = config("use-auth-secret\nstatic-auth-secret=north\nrealm=a.example\n");
        let live = LiveIssuer::new(CredentialIssuer::from_config(&before).unwrap());
        let token = "t".repeat(16);
        let h = handler(live.clone(), token.clone());
        let ask = || {
            let r = h(&Request {
                method: "GET".into(),
                path: "/credentials".into(),
                query: "username=bob&ttl=60".into(),
                bearer: Some(token.clone()),
                body: Vec::new(),
            });
            serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()
        };
        let first = ask();
        let user = first["username"].as_str().unwrap().to_string();
        assert_eq!(first["password"], rest_password(b"north", &user));
        assert!(first["uris"][0].as_str().unwrap().contains("a.example"));

        live.update(&config(
            "use-auth-secret\nstatic-auth-secret=south\nstatic-auth-secret=north\n\
             rest-api-hmac=sha256\nrest-api-host=b.example\n",
        ));
        let second = ask();
        let user = second["username"].as_str().unwrap().to_string();
        assert_eq!(
            second["password"],
            rest_password_with(RestHmac::Sha256, b"south", &user)
        );
        assert!(second["uris"][0].as_str().unwrap().contains("b.example"));

        // A configuration without a secret leaves the issuer as it was.
        live.update(&config("lt-cred-mech\nuser=alice:wonderland\n"));
        assert!(ask()["uris"][0].as_str().unwrap().contains("b.example"));
    }
}
