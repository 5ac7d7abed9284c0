//! Routes: `/metrics`, `/healthz`, `/readyz` on the metrics listener; `/admin/...` behind a
//! bearer token on the admin listener (bound to localhost by default).

use std::sync::Arc;

use super::json;
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
            return Response::json(
                401,
                json::object(&[("error", json::string("missing or wrong bearer token"))]),
            );
        }
        admin_route(&control, req)
    })
}

fn admin_route(control: &Control, req: &Request) -> Response {
    let segments: Vec<&str> = req.path.trim_matches('/').split('/').collect();
    match (req.method.as_str(), segments.as_slice()) {
        ("GET", ["admin", "status"]) => Response::json(
            200,
            json::object(&[
                ("allocations", control.allocation_count().to_string()),
                ("tcp_connections", control.tcp_connections().to_string()),
                ("draining", control.is_draining().to_string()),
                ("ready", control.is_ready().to_string()),
            ]),
        ),
        ("GET", ["admin", "sessions"]) => Response::json(
            200,
            json::array(control.sessions().iter().map(session_json)),
        ),
        ("DELETE", ["admin", "sessions", id]) => match id.parse::<u64>() {
            Ok(id) if control.end_session(id) => {
                Response::json(200, json::object(&[("ended", "1".into())]))
            }
            Ok(_) => Response::json(
                404,
                json::object(&[("error", json::string("no such session"))]),
            ),
            Err(_) => Response::json(
                400,
                json::object(&[("error", json::string("session ids are numbers"))]),
            ),
        },
        ("POST", ["admin", "users", user, "revoke"]) => {
            // `ferroturn admin revoke-user` percent-encodes the user (e.g. `@` as `%40`).
            let user = percent_decode_path(user);
            let ended = control.revoke_user(&user);
            tracing::warn!(user, ended, "user revoked through the admin API");
            Response::json(
                200,
                json::object(&[
                    ("revoked", json::string(&user)),
                    ("ended", ended.to_string()),
                ]),
            )
        }
        ("POST", ["admin", "secrets", "revoke"]) => {
            let secret = String::from_utf8_lossy(&req.body).trim().to_string();
            if secret.is_empty() {
                return Response::json(
                    400,
                    json::object(&[(
                        "error",
                        json::string("the body must be the secret to revoke"),
                    )]),
                );
            }
            let ended = control.revoke_secret(&secret);
            tracing::warn!(ended, "REST secret revoked through the admin API");
            Response::json(200, json::object(&[("ended", ended.to_string())]))
        }
        ("POST", ["admin", "drain"]) => {
            control.set_draining(true);
            tracing::info!("draining through the admin API: new allocations are refused");
            Response::json(200, json::object(&[("draining", "true".into())]))
        }
        _ => Response::json(
            404,
            json::object(&[("error", json::string("no such endpoint"))]),
        ),
    }
}

fn session_json(s: &SessionInfo) -> String {
    json::object(&[
        ("id", s.id.to_string()),
        ("shard", s.shard.to_string()),
        ("username", json::string(&s.username)),
        ("user", json::string(&s.user_id)),
        ("transport", json::string(s.transport)),
        ("client", json::string(&s.client.to_string())),
        ("relay", json::string(&s.relay.to_string())),
        ("relayed", json::string(&s.relayed.to_string())),
        ("age_seconds", s.age_secs.to_string()),
        ("expires_in_seconds", s.expires_in_secs.to_string()),
        ("bytes_to_peers", s.bytes_to_peers.to_string()),
        ("bytes_to_client", s.bytes_to_client.to_string()),
        ("packets_to_peers", s.packets_to_peers.to_string()),
        ("packets_to_client", s.packets_to_client.to_string()),
        (
            "permissions",
            json::array(s.permissions.iter().map(|ip| json::string(&ip.to_string()))),
        ),
        (
            "channels",
            json::array(s.channels.iter().map(|(n, peer)| {
                json::object(&[
                    ("number", n.to_string()),
                    ("peer", json::string(&peer.to_string())),
                ])
            })),
        ),
        (
            "secret_id",
            s.secret_id
                .map_or("null".into(), |id| json::string(&format!("{id:016x}"))),
        ),
    ])
}
