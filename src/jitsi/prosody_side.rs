//! What Prosody will hand to clients, read from any of the three places it is configured
//! (docker `.env`, Kubernetes Secret, Lua), in one shape that `check` compares with the relay.

use std::collections::BTreeMap;

use super::parse_lua::{LuaConfig, LuaValue};

/// docker-jitsi-meet's TURN_PORT / TURNS_PORT when they are not set.
pub const DOCKER_DEFAULT_TURN_PORT: u16 = 443;
/// docker-jitsi-meet's TURN_TRANSPORT when it is not set.
pub const DOCKER_DEFAULT_TURN_TRANSPORT: &str = "tcp";
/// Prosody's credential lifetime when none is set (mod_external_services, docker-jitsi-meet).
pub const DEFAULT_TTL: u64 = 86_400;

/// Kind of external service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceKind {
    /// `stun:`.
    Stun,
    /// `turn:`.
    Turn,
    /// `turns:` (TURN over TLS).
    Turns,
}

impl ServiceKind {
    /// The URI scheme.
    pub fn scheme(self) -> &'static str {
        match self {
            ServiceKind::Stun => "stun",
            ServiceKind::Turn => "turn",
            ServiceKind::Turns => "turns",
        }
    }
}

/// One service Prosody announces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// Kind.
    pub kind: ServiceKind,
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// `udp` or `tcp`.
    pub transport: String,
    /// Credential lifetime, for services with REST credentials.
    pub ttl: Option<u64>,
    /// Whether credentials are minted from the shared secret.
    pub uses_secret: bool,
    /// Where it was configured, in the words of that file (e.g. `TURN_HOST/TURN_PORT`).
    pub label: String,
    /// Set when the port was not written and a default applies: says which.
    pub port_default: Option<String>,
}

impl Service {
    /// A plain STUN service (UDP, no credentials) configured at `label`.
    fn stun(host: &str, port: u16, label: &str) -> Self {
        Service {
            kind: ServiceKind::Stun,
            host: host.to_string(),
            port,
            transport: "udp".into(),
            ttl: None,
            uses_secret: false,
            label: label.to_string(),
            port_default: None,
        }
    }
}

/// The Prosody side of the pair.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProsodySide {
    /// The file it came from.
    pub origin: String,
    /// The shared secret, when it is given as a literal.
    pub secret: Option<String>,
    /// The services announced.
    pub services: Vec<Service>,
    /// Things that could not be read, or defaults worth knowing about.
    pub notes: Vec<String>,
    /// Values that are plainly wrong in themselves (a port that is not a number, ...).
    pub problems: Vec<String>,
}

impl ProsodySide {
    /// From docker-jitsi-meet variables (a `.env` file or a Secret's keys), with the defaults
    /// the prosody image applies to unset ones.
    pub fn from_env(vars: &BTreeMap<String, String>, origin: &str) -> Self {
        let mut side = ProsodySide {
            origin: origin.to_string(),
            secret: vars
                .get("TURN_CREDENTIALS")
                .filter(|s| !s.is_empty())
                .cloned(),
            ..Default::default()
        };
        let get = |k: &str| vars.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        let ttl = match get("TURN_TTL") {
            None => DEFAULT_TTL,
            Some(v) => v.parse().unwrap_or_else(|_| {
                side.problems
                    .push(format!("TURN_TTL={v} is not a number of seconds"));
                DEFAULT_TTL
            }),
        };
        let port_of = |key: &str, side: &mut ProsodySide| -> (u16, Option<String>) {
            match get(key) {
                None => (
                    DOCKER_DEFAULT_TURN_PORT,
                    Some(format!(
                        "{key} is not set, so docker-jitsi-meet uses {DOCKER_DEFAULT_TURN_PORT}"
                    )),
                ),
                Some(v) => match v.parse() {
                    Ok(p) => (p, None),
                    Err(_) => {
                        side.problems
                            .push(format!("{key}={v} is not a port number"));
                        (0, None)
                    }
                },
            }
        };
        if let Some(host) = get("TURN_HOST") {
            let (port, port_default) = port_of("TURN_PORT", &mut side);
            let transports = get("TURN_TRANSPORT").unwrap_or(DOCKER_DEFAULT_TURN_TRANSPORT);
            if get("TURN_TRANSPORT").is_none() {
                side.notes.push(format!(
                    "TURN_TRANSPORT is not set, so docker-jitsi-meet offers TURN over {DOCKER_DEFAULT_TURN_TRANSPORT} only"
                ));
            }
            for t in transports
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
            {
                side.services.push(Service {
                    kind: ServiceKind::Turn,
                    host: host.to_string(),
                    port,
                    transport: t.to_ascii_lowercase(),
                    ttl: Some(ttl),
                    uses_secret: true,
                    label: "TURN_HOST/TURN_PORT/TURN_TRANSPORT".into(),
                    port_default: port_default.clone(),
                });
            }
        }
        if let Some(host) = get("TURNS_HOST") {
            let (port, port_default) = port_of("TURNS_PORT", &mut side);
            side.services.push(Service {
                kind: ServiceKind::Turns,
                host: host.to_string(),
                port,
                transport: "tcp".into(),
                ttl: Some(ttl),
                uses_secret: true,
                label: "TURNS_HOST/TURNS_PORT".into(),
                port_default,
            });
        }
        let mut our_hosts: Vec<String> = ["TURN_HOST", "TURNS_HOST", "STUN_HOST"]
            .iter()
            .filter_map(|k| get(k).map(str::to_string))
            .collect();
        if let Some(host) = get("STUN_HOST") {
            let port = match get("STUN_PORT").map(str::parse::<u16>) {
                Some(Ok(p)) => p,
                Some(Err(_)) => {
                    side.problems.push("STUN_PORT is not a port number".into());
                    0
                }
                None => 3478,
            };
            side.services
                .push(Service::stun(host, port, "STUN_HOST/STUN_PORT"));
        }
        our_hosts.dedup();
        for key in ["JVB_STUN_SERVERS", "P2P_STUN_SERVERS"] {
            let Some(list) = get(key) else { continue };
            for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
                let entry = entry.trim_start_matches("stun:");
                let Some((host, port)) = split_host_port(entry) else {
                    side.problems
                        .push(format!("{key}: `{entry}` is not host:port"));
                    continue;
                };
                if !our_hosts.iter().any(|h| h == host) {
                    side.notes.push(format!(
                        "{key} uses {entry}, not this relay (fine if intended)"
                    ));
                    continue;
                }
                side.services.push(Service::stun(host, port, key));
            }
        }
        side
    }

    /// From a Prosody Lua configuration (mod_external_services, or the older
    /// mod_turncredentials that Jitsi's Debian packages used).
    pub fn from_lua(cfg: &LuaConfig, origin: &str) -> Self {
        let mut side = ProsodySide {
            origin: origin.to_string(),
            notes: cfg.notes.clone(),
            // Prosody refuses to start on these, so nothing else in the file matters.
            problems: cfg.errors.clone(),
            ..Default::default()
        };
        let str_setting = |name: &str, side: &mut ProsodySide| -> Option<String> {
            let s = cfg.get(name)?;
            match &s.value {
                LuaValue::Str(v) => Some(v.clone()),
                // The reader has said why it could not evaluate it.
                LuaValue::Unknown(_) => None,
                other => {
                    side.notes.push(format!(
                        "{}: `{name}` is not a string ({other:?}); cannot compare it",
                        s.place()
                    ));
                    None
                }
            }
        };
        let num_setting = |name: &str| -> Option<f64> {
            match cfg.get(name)?.value {
                LuaValue::Num(n) => Some(n),
                _ => None,
            }
        };
        let (secret_key, list_key, ttl_key, host_key, port_key) =
            if cfg.get("external_services").is_some() || cfg.get("turncredentials").is_none() {
                (
                    "external_service_secret",
                    "external_services",
                    "external_service_ttl",
                    "external_service_host",
                    "external_service_port",
                )
            } else {
                (
                    "turncredentials_secret",
                    "turncredentials",
                    "turncredentials_ttl",
                    "turncredentials_host",
                    "turncredentials_port",
                )
            };
        side.secret = str_setting(secret_key, &mut side);
        let default_ttl = num_setting(ttl_key).map_or(DEFAULT_TTL, |n| n as u64);
        let list = cfg.get(list_key);
        // Prosody's default host is the VirtualHost the module runs on.
        let default_host =
            str_setting(host_key, &mut side).or_else(|| list.and_then(|s| s.section.clone()));
        let default_port = num_setting(port_key);
        let Some(list) = list else {
            side.problems.push(format!(
                "no `{list_key}` setting: Prosody announces no TURN or STUN service"
            ));
            return side;
        };
        let LuaValue::Table { items, .. } = &list.value else {
            side.problems.push(format!(
                "{}: `{list_key}` is not a table this reader understands",
                list.place()
            ));
            return side;
        };
        for (i, item) in items.iter().enumerate() {
            let label = format!("{list_key} entry {} ({})", i + 1, list.place());
            let text = |k: &str| match item.field(k) {
                Some(LuaValue::Str(s)) => Some(s.clone()),
                _ => None,
            };
            let kind = match text("type").as_deref() {
                Some("stun") => ServiceKind::Stun,
                Some("turn") => ServiceKind::Turn,
                Some("turns") => ServiceKind::Turns,
                other => {
                    side.notes.push(format!(
                        "{label}: type {other:?} is not stun/turn/turns; skipped"
                    ));
                    continue;
                }
            };
            let Some(host) = text("host").or_else(|| default_host.clone()) else {
                side.problems.push(format!("{label}: no host"));
                continue;
            };
            let (port, port_default) = match item.field("port") {
                Some(LuaValue::Num(n)) if (1.0..=65535.0).contains(n) && n.fract() == 0.0 => {
                    (*n as u16, None)
                }
                Some(LuaValue::Str(s)) if s.parse::<u16>().is_ok() => {
                    (s.parse().unwrap_or(0), None)
                }
                Some(other) => {
                    side.problems
                        .push(format!("{label}: port {other:?} is not a port number"));
                    continue;
                }
                None => match default_port {
                    Some(p) => (p as u16, None),
                    None => {
                        let p = if kind == ServiceKind::Turns {
                            5349
                        } else {
                            3478
                        };
                        (
                            p,
                            Some(format!("no port given, so clients use the standard {p}")),
                        )
                    }
                },
            };
            let transport = text("transport").unwrap_or_else(|| {
                if kind == ServiceKind::Turns {
                    "tcp"
                } else {
                    "udp"
                }
                .to_string()
            });
            let (uses_secret, explicit_secret) = match item.field("secret") {
                Some(LuaValue::Bool(true)) => (true, None),
                Some(LuaValue::Str(s)) => (true, Some(s.clone())),
                _ => (false, None),
            };
            // mod_turncredentials signs every entry; mod_external_services only those with
            // `secret`.
            let uses_secret = uses_secret || list_key == "turncredentials";
            if let Some(s) = explicit_secret {
                if side.secret.as_ref().is_some_and(|g| g != &s) {
                    side.notes.push(format!(
                        "{label} has its own secret, different from {secret_key}"
                    ));
                }
                side.secret.get_or_insert(s);
            }
            let ttl = match item.field("ttl") {
                Some(LuaValue::Num(n)) => Some(*n as u64),
                _ => uses_secret.then_some(default_ttl),
            };
            if kind != ServiceKind::Stun && !uses_secret {
                side.notes.push(format!(
                    "{label}: no `secret = true`, so Prosody hands out no REST credentials for it"
                ));
            }
            side.services.push(Service {
                kind,
                host,
                port,
                transport: transport.to_ascii_lowercase(),
                ttl: if uses_secret { ttl } else { None },
                uses_secret,
                label,
                port_default,
            });
        }
        side
    }
}

/// `host:port` or `[v6]:port`.
fn split_host_port(s: &str) -> Option<(&str, u16)> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, p) = rest.split_once("]:")?;
        (h, p)
    } else {
        s.rsplit_once(':')?
    };
    Some((host, port.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jitsi::parse_env;

    #[test]
    fn docker_defaults_apply_to_unset_variables() {
        let vars = parse_env::parse("TURN_CREDENTIALS=abc\nTURN_HOST=turn.example.org\n");
        let side = ProsodySide::from_env(&vars, ".env");
        assert_eq!(side.services.len(), 1);
        let s = &side.services[0];
        assert_eq!((s.port, s.transport.as_str()), (443, "tcp"));
        assert!(s.port_default.as_deref().unwrap().contains("443"));
        assert_eq!(s.ttl, Some(86_400));
    }

    #[test]
    fn foreign_stun_servers_are_notes() {
        let vars = parse_env::parse(
            "TURN_HOST=t.example\nTURN_PORT=3478\nTURN_TRANSPORT=udp\n\
             JVB_STUN_SERVERS=meet-jit-si-turnrelay.jitsi.net:443,t.example:3478\n",
        );
        let side = ProsodySide::from_env(&vars, ".env");
        assert_eq!(side.services.len(), 2);
        assert_eq!(side.services[1].label, "JVB_STUN_SERVERS");
        assert_eq!(side.notes.len(), 1);
    }

    #[test]
    fn lua_defaults_and_old_module() {
        let cfg = crate::jitsi::parse_lua::parse(
            "VirtualHost \"meet.example.org\"\n\
             turncredentials_secret = \"abc\";\n\
             turncredentials = { { type = \"turns\", host = \"t.example\", port = 443, transport = \"tcp\" } }\n",
        );
        let side = ProsodySide::from_lua(&cfg, "x.lua");
        assert_eq!(side.secret.as_deref(), Some("abc"));
        assert_eq!(side.services[0].kind, ServiceKind::Turns);
        assert!(side.services[0].uses_secret);

        let cfg = crate::jitsi::parse_lua::parse(
            "VirtualHost \"meet.example.org\"\nexternal_service_secret = \"abc\"\n\
             external_services = { { type = \"turn\", secret = true } }\n",
        );
        let side = ProsodySide::from_lua(&cfg, "x.lua");
        let s = &side.services[0];
        assert_eq!(s.host, "meet.example.org");
        assert_eq!((s.port, s.transport.as_str()), (3478, "udp"));
    }
}
