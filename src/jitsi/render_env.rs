//! The docker-jitsi-meet side: a `.env` fragment for the prosody (and jvb, web) containers and
//! the web container's `custom-config.js`.

use std::fmt::Write as _;

use super::plan::{host_port, Plan};

/// The `.env` keys written, in order; the Kubernetes Secret carries the same ones.
pub fn env_pairs(plan: &Plan) -> Vec<(&'static str, String)> {
    let mut v = vec![
        ("TURN_CREDENTIALS", plan.secret.clone()),
        ("TURN_HOST", plan.host.clone()),
        ("TURN_PORT", plan.port.to_string()),
        ("TURN_TRANSPORT", plan.transports().join(",")),
    ];
    if let Some(tls) = &plan.tls {
        v.push(("TURNS_HOST", plan.host.clone()));
        v.push(("TURNS_PORT", tls.port.to_string()));
    }
    v.push(("TURN_TTL", plan.ttl.to_string()));
    if let Some(stun) = plan.stun_host_port() {
        v.push(("STUN_HOST", plan.host.clone()));
        v.push(("STUN_PORT", plan.port.to_string()));
        v.push(("JVB_STUN_SERVERS", stun.clone()));
        v.push(("P2P_STUN_SERVERS", stun));
    }
    v
}

/// The `.env` fragment.
pub fn render_env(plan: &Plan) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# docker-jitsi-meet: TURN settings, written by `ferroturn jitsi init` for {}.\n\
         # Add these lines to docker-jitsi-meet's .env (delete any older TURN_*/STUN_* lines there),\n\
         # then `docker compose up -d` so prosody, jvb and web pick them up.\n\
         # Every value is explicit on purpose: left out, TURN_PORT defaults to 443 and\n\
         # TURN_TRANSPORT to tcp, which do not match this relay.\n\
         # Check both sides agree: ferroturn jitsi check --conf turnserver.conf jitsi-turn.env",
        plan.host
    );
    for (k, v) in env_pairs(plan) {
        match k {
            "TURN_TRANSPORT" => {
                let _ = writeln!(s, "# Comma-separated: one TURN entry per transport.");
            }
            "TURN_TTL" => {
                let _ = writeln!(
                    s,
                    "# Credential lifetime in seconds; it must outlast the longest meeting."
                );
            }
            "JVB_STUN_SERVERS" => {
                let _ = writeln!(s, "# STUN for the videobridge and for peer-to-peer calls.");
            }
            _ => {}
        }
        let _ = writeln!(s, "{k}={v}");
    }
    if plan.tls.is_none() {
        let _ = writeln!(
            s,
            "# No TURNS_HOST/TURNS_PORT: no certificate was given, so the relay offers no TLS."
        );
    }
    if !plan.udp {
        let _ = writeln!(
            s,
            "# No STUN_*: STUN needs UDP, which this relay does not offer."
        );
    }
    s
}

/// The line for the web container's `custom-config.js`, or `None` when UDP is not offered.
pub fn custom_config_line(plan: &Plan) -> Option<&'static str> {
    plan.udp.then_some("config.useTurnUdp = true;")
}

/// `custom-config.js` for the web container.
pub fn render_custom_config(plan: &Plan) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "// Jitsi Meet web: written by `ferroturn jitsi init` for {}.\n\
         // docker-jitsi-meet: copy to ${{CONFIG}}/web/custom-config.js (default ~/.jitsi-meet-cfg/web/).\n\
         // Debian package: append to /etc/jitsi/meet/<your-domain>-config.js.",
        plan.host
    );
    match custom_config_line(plan) {
        Some(line) => {
            let _ = writeln!(
                s,
                "// Jitsi drops TURN/UDP servers unless told otherwise; this relay offers UDP,\n\
                 // the transport media should use whenever the network lets it through.\n{line}"
            );
        }
        None => {
            let _ = writeln!(
                s,
                "// This relay offers no UDP, so config.useTurnUdp stays at its default (false)."
            );
        }
    }
    s
}

/// `host:port` for the videobridge's STUN servers setting, if STUN is offered.
pub fn jvb_stun(plan: &Plan) -> Option<String> {
    plan.udp.then(|| host_port(&plan.host, plan.port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jitsi::parse_env;
    use crate::jitsi::plan::tests::sample;

    #[test]
    fn env_has_every_key_explicit() {
        let text = render_env(&sample());
        let map = parse_env::parse(&text);
        for (k, v) in [
            ("TURN_CREDENTIALS", sample().secret.as_str()),
            ("TURN_HOST", "turn.example.org"),
            ("TURN_PORT", "3478"),
            ("TURN_TRANSPORT", "udp,tcp"),
            ("TURNS_HOST", "turn.example.org"),
            ("TURNS_PORT", "5349"),
            ("TURN_TTL", "86400"),
            ("STUN_HOST", "turn.example.org"),
            ("STUN_PORT", "3478"),
            ("JVB_STUN_SERVERS", "turn.example.org:3478"),
            ("P2P_STUN_SERVERS", "turn.example.org:3478"),
        ] {
            assert_eq!(map.get(k).map(String::as_str), Some(v), "{k}");
        }
    }

    #[test]
    fn tcp_only_without_tls_leaves_out_turns_and_stun() {
        let mut p = sample();
        p.udp = false;
        p.tls = None;
        let map = parse_env::parse(&render_env(&p));
        assert_eq!(map["TURN_TRANSPORT"], "tcp");
        assert!(!map.contains_key("TURNS_HOST"));
        assert!(!map.contains_key("STUN_HOST"));
        assert!(!render_custom_config(&p).contains("useTurnUdp = true"));
    }

    #[test]
    fn custom_config_enables_turn_udp() {
        assert!(render_custom_config(&sample())
            .lines()
            .any(|l| l == "config.useTurnUdp = true;"));
    }
}
