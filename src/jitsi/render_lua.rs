//! The Prosody side for installs without docker: a Lua fragment for mod_external_services
//! (Prosody 0.12).

use std::fmt::Write as _;

use super::plan::Plan;

/// The fragment.
pub fn render(plan: &Plan) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "-- Prosody 0.12 mod_external_services: TURN/STUN for Jitsi, written by\n\
         -- `ferroturn jitsi init` for {}.\n\
         -- Put these lines inside the VirtualHost of your Jitsi domain (Debian:\n\
         -- /etc/prosody/conf.avail/<domain>.cfg.lua), add \"external_services\" to its\n\
         -- modules_enabled, remove any older turncredentials*/external_service* settings and\n\
         -- restart Prosody. Check: ferroturn jitsi check --conf turnserver.conf prosody-turn.cfg.lua",
        plan.host
    );
    let _ = writeln!(s, "external_service_secret = {};", lua_string(&plan.secret));
    let _ = writeln!(s, "external_services = {{");
    let host = lua_string(&plan.host);
    if plan.udp {
        let _ = writeln!(
            s,
            "    {{ type = \"stun\", host = {host}, port = {}, transport = \"udp\" }};",
            plan.port
        );
    }
    for t in plan.transports() {
        let _ = writeln!(
            s,
            "    {{ type = \"turn\", host = {host}, port = {}, transport = \"{t}\", secret = true, ttl = {}, algorithm = \"turn\" }};",
            plan.port, plan.ttl
        );
    }
    if let Some(tls) = &plan.tls {
        let _ = writeln!(
            s,
            "    {{ type = \"turns\", host = {host}, port = {}, transport = \"tcp\", secret = true, ttl = {}, algorithm = \"turn\" }};",
            tls.port, plan.ttl
        );
    }
    let _ = writeln!(s, "}};");
    s
}

/// A Lua double-quoted string literal.
pub fn lua_string(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jitsi::parse_lua;
    use crate::jitsi::plan::tests::sample;
    use crate::jitsi::prosody_side::{ProsodySide, ServiceKind};

    #[test]
    fn fragment_reads_back() {
        let plan = sample();
        let text = render(&plan);
        let side = ProsodySide::from_lua(&parse_lua::parse(&text), "t");
        assert_eq!(side.secret.as_deref(), Some(plan.secret.as_str()));
        let kinds: Vec<_> = side
            .services
            .iter()
            .map(|s| (s.kind, s.port, s.transport.clone()))
            .collect();
        assert_eq!(
            kinds,
            [
                (ServiceKind::Stun, 3478, "udp".to_string()),
                (ServiceKind::Turn, 3478, "udp".to_string()),
                (ServiceKind::Turn, 3478, "tcp".to_string()),
                (ServiceKind::Turns, 5349, "tcp".to_string()),
            ]
        );
        assert!(side.services[1..].iter().all(|s| s.ttl == Some(86_400)));
        assert!(side.notes.is_empty(), "{:?}", side.notes);
    }

    #[test]
    fn lua_strings_escape() {
        assert_eq!(lua_string("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }
}
