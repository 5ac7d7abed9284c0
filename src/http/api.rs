//! Routes: `/metrics`, `/healthz`, `/readyz` on the metrics listener; `/admin/...` behind a
//! bearer token on the admin listener (bound to localhost by default).

use std::sync::Arc;

use serde::Serialize;
use serde_json::json;

use super::server::{percent_decode_path, Handler, Request, Response};
use crate::runtime::control::{Control, SessionInfo};
use crate::runtime::metrics;

/// The handler of the metrics (at `metrics_path`, `prometheus-path`) and health listener.
pub fn metrics_handler(control: Control, metrics_path: String) -> Handler {
    Arc::new(move |req: &Request| {
        let path = if req.path == metrics_path {
            "/metrics"
        } else if req.path == "/metrics" {
            // Only reachable under its configured name.
            ""
        } else {
            req.path.as_str()
        };
        match (req.method.as_str(), path) {
            ("GET", "/metrics") => Response {
                status: 200,
                content_type: "text/plain; version=0.0.4; charset=utf-8",
                body: metrics::render(&control).into_bytes(),
            },
            ("GET", "/healthz") => Response::text(200, "ok\n"),
            ("GET", "/readyz") if control.is_ready() => Response::text(200, "ready\n"),
            ("GET", "/readyz") if control.shard_failure().is_some() => {
                Response::text(503, "a relay thread died\n")
            }
            ("GET", "/readyz") => Response::text(503, "draining\n"),
            (_, "/metrics" | "/healthz" | "/readyz") => Response::text(405, "method not allowed\n"),
            _ => Response::text(404, "not found\n"),
        }
    })
}

/// The handler of the admin API.
pub fn admin_handler(control: Control, token: String) -> Handler {
    Arc::new(move |req: &Request| {
        if !req.has_bearer(&token) {
            return Response::error(401, "missing or wrong bearer token");
        }
        admin_route(&control, req)
    })
}

/// `GET /admin/status`.
#[derive(Serialize)]
struct Status {
    allocations: u32,
    tcp_connections: usize,
    draining: bool,
    ready: bool,
}

fn admin_route(control: &Control, req: &Request) -> Response {
    let segments: Vec<&str> = req.path.trim_matches('/').split('/').collect();
    match (req.method.as_str(), segments.as_slice()) {
        ("GET", ["admin", "status"]) => Response::json(
            200,
            &Status {
                allocations: control.allocation_count(),
                tcp_connections: control.tcp_connections(),
                draining: control.is_draining(),
                ready: control.is_ready(),
            },
        ),
        ("GET", ["admin", "sessions"]) => {
            let sessions = control.sessions();
            let view: Vec<Session<'_>> = sessions.iter().map(Session::from).collect();
            Response::json(200, &view)
        }
        ("DELETE", ["admin", "sessions", id]) => match id.parse::<u64>() {
            Ok(id) if control.end_session(id) => Response::json(200, &json!({ "ended": 1 })),
            Ok(_) => Response::error(404, "no such session"),
            Err(_) => Response::error(400, "session ids are numbers"),
        },
        ("POST", ["admin", "users", user, "revoke"]) => {
            // `ferroturn admin revoke-user` percent-encodes the user (e.g. `@` as `%40`).
            let user = percent_decode_path(user);
            let ended = control.revoke_user(&user);
            tracing::warn!(user, ended, "user revoked through the admin API");
            Response::json(200, &json!({ "revoked": user, "ended": ended }))
        }
        ("POST", ["admin", "secrets", "revoke"]) => {
            let secret = String::from_utf8_lossy(&req.body).trim().to_string();
            if secret.is_empty() {
                return Response::error(400, "the body must be the secret to revoke");
            }
            let ended = control.revoke_secret(&secret);
            tracing::warn!(ended, "REST secret revoked through the admin API");
            Response::json(200, &json!({ "ended": ended }))
        }
        ("POST", ["admin", "drain"]) => {
            control.set_draining(true);
            tracing::info!("draining through the admin API: new allocations are refused");
            Response::json(200, &json!({ "draining": true }))
        }
        _ => Response::error(404, "no such endpoint"),
    }
}

/// One entry of `GET /admin/sessions`: addresses as text, the secret id as 16 hex digits.
#[derive(Serialize)]
struct Session<'a> {
    id: u64,
    shard: usize,
    username: &'a str,
    user: &'a str,
    transport: &'a str,
    client: String,
    relay: String,
    relayed: String,
    /// The IPv6 relay socket of a dual allocation (RFC 8656 §7.2), absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    additional_relay: Option<String>,
    /// Its advertised address.
    #[serde(skip_serializing_if = "Option::is_none")]
    additional_relayed: Option<String>,
    age_seconds: u64,
    expires_in_seconds: u64,
    bytes_to_peers: u64,
    bytes_to_client: u64,
    packets_to_peers: u64,
    packets_to_client: u64,
    permissions: Vec<String>,
    channels: Vec<Channel>,
    secret_id: Option<String>,
}

#[derive(Serialize)]
struct Channel {
    number: u16,
    peer: String,
}

impl<'a> From<&'a SessionInfo> for Session<'a> {
    fn from(s: &'a SessionInfo) -> Self {
        Session {
            id: s.id,
            shard: s.shard,
            username: &s.username,
            user: &s.user_id,
            transport: s.transport,
            client: s.client.to_string(),
            relay: s.relay.to_string(),
            relayed: s.relayed.to_string(),
            additional_relay: s.additional.map(|(r, _)| r.to_string()),
            additional_relayed: s.additional.map(|(_, a)| a.to_string()),
            age_seconds: s.age_secs,
            expires_in_seconds: s.expires_in_secs,
            bytes_to_peers: s.bytes_to_peers,
            bytes_to_client: s.bytes_to_client,
            packets_to_peers: s.packets_to_peers,
            packets_to_client: s.packets_to_client,
            permissions: s.permissions.iter().map(|ip| ip.to_string()).collect(),
            channels: s
                .channels
                .iter()
                .map(|(n, peer)| Channel {
                    number: *n,
                    peer: peer.to_string(),
                })
                .collect(),
            secret_id: s.secret_id.map(|id| format!("{id:016x}")),
        }
    }
}
