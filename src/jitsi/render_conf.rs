//! `turnserver.conf` for ferroturn, and the one edit `--rotate` makes to an existing one.

use std::fmt::Write as _;

use super::plan::Plan;
use crate::config::{conf_file, from_conf_str};

/// Renders the relay's configuration for `plan`.
pub fn render(plan: &Plan) -> String {
    let mut s = String::new();
    let w = &mut s;
    // Writing to a String cannot fail.
    let _ = writeln!(
        w,
        "# ferroturn configuration for Jitsi, written by `ferroturn jitsi init` for {}.",
        plan.host
    );
    let _ = writeln!(
        w,
        "# Prosody signs TURN credentials with the same secret (TURN_CREDENTIALS in .env,\n\
         # external_service_secret in Lua); `ferroturn jitsi check` compares both sides.\n\
         # Install as /etc/ferroturn/turnserver.conf (or /etc/coturn/turnserver.conf) and run\n\
         # `ferroturn -c /etc/ferroturn/turnserver.conf`."
    );

    let _ = writeln!(w, "\n# --- Listeners");
    let _ = writeln!(
        w,
        "# Clients reach TURN/STUN on this port (TURN_PORT and STUN_PORT on the Prosody side)."
    );
    let _ = writeln!(w, "listening-port={}", plan.port);
    for ip in &plan.listen_ips {
        let _ = writeln!(w, "listening-ip={ip}");
    }
    if !plan.udp {
        let _ = writeln!(w, "# UDP not offered (TURN_TRANSPORT has no udp).\nno-udp");
    }
    if !plan.tcp {
        let _ = writeln!(w, "# TCP not offered (TURN_TRANSPORT has no tcp).\nno-tcp");
    }
    match &plan.tls {
        Some(tls) => {
            let _ = writeln!(
                w,
                "# TURN over TLS (TURNS_PORT). Renew the certificate like any web one; SIGUSR2 reloads it."
            );
            let _ = writeln!(w, "tls-listening-port={}", tls.port);
            let _ = writeln!(w, "cert={}", tls.cert.display());
            let _ = writeln!(w, "pkey={}", tls.pkey.display());
            let _ = writeln!(w, "# DTLS is not used by WebRTC clients for TURN.\nno-dtls");
        }
        None => {
            let _ = writeln!(
                w,
                "# No certificate given: no TURN over TLS (run init with --cert/--pkey to offer it)."
            );
            let _ = writeln!(w, "no-tls\nno-dtls");
        }
    }

    let _ = writeln!(w, "\n# --- Relay");
    for ip in &plan.relay_ips {
        let _ = writeln!(w, "relay-ip={ip}");
    }
    if let Some(ip) = plan.external_ip {
        let _ = writeln!(
            w,
            "# Public address written into relayed addresses (the host is behind 1:1 NAT)."
        );
        let _ = writeln!(w, "external-ip={ip}");
    }
    let _ = writeln!(
        w,
        "# Relay ports: open this UDP range in the firewall ({} ports, one per allocation).",
        u32::from(plan.max_port) - u32::from(plan.min_port) + 1
    );
    let _ = writeln!(w, "min-port={}\nmax-port={}", plan.min_port, plan.max_port);
    let _ = writeln!(
        w,
        "# Jitsi only relays media over UDP; TCP relay allocations (RFC 6062) are of no use to it."
    );
    let _ = writeln!(w, "no-tcp-relay");

    let _ = writeln!(
        w,
        "\n# --- Authentication: TURN REST credentials issued by Prosody"
    );
    let _ = writeln!(w, "realm={}", plan.realm);
    let _ = writeln!(w, "use-auth-secret");
    let _ = writeln!(
        w,
        "# Several static-auth-secret lines may be given; each is tried, so a secret can be\n\
         # rotated without downtime (`ferroturn jitsi init --rotate`)."
    );
    let _ = writeln!(w, "static-auth-secret={}", plan.secret);
    let _ = writeln!(w, "fingerprint");

    let _ = writeln!(w, "\n# --- Peers");
    let _ = writeln!(
        w,
        "# ferroturn already refuses peers in loopback, RFC 1918, CGNAT, link-local, multicast and\n\
         # the other special-purpose ranges (IPv4 and IPv6), so no denied-peer-ip lines are needed;\n\
         # add denied-peer-ip=RANGE for anything else that must stay unreachable."
    );
    if plan.jvb_peers.is_empty() {
        let _ = writeln!(
            w,
            "# If the videobridge has a private address, allow exactly that address:\n\
             # allowed-peer-ip=10.0.0.5"
        );
    } else {
        let _ = writeln!(
            w,
            "# The videobridge: allowed even though it may sit in a private range."
        );
        for peer in &plan.jvb_peers {
            let _ = writeln!(w, "allowed-peer-ip={peer}");
        }
    }

    let _ = writeln!(w, "\n# --- Logging\nlog-file=stdout");
    s
}

/// Why `--rotate` cannot edit an existing configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RotateError {
    /// The file does not load.
    #[error("the existing turnserver.conf does not load:\n{0}")]
    Invalid(String),
    /// Not a REST-credentials setup.
    #[error("the existing turnserver.conf has no use-auth-secret + static-auth-secret; nothing to rotate (run init without --rotate)")]
    NoSecret,
    /// The secret is there already.
    #[error("this secret is already in turnserver.conf")]
    AlreadyThere,
}

/// The existing configuration with `new_secret` added as a `static-auth-secret` line in front
/// of the old ones, and the secrets that were there before.
///
/// The new line goes first because the first secret is the one that signs when ferroturn
/// itself hands out credentials; every line keeps verifying until it is removed.
pub fn add_secret(
    existing: &str,
    origin: &str,
    new_secret: &str,
    date: &str,
) -> Result<(String, Vec<String>), RotateError> {
    let config =
        from_conf_str(existing, origin).map_err(|e| RotateError::Invalid(e.to_string()))?;
    if !config.auth.use_auth_secret || config.auth.static_auth_secrets.is_empty() {
        return Err(RotateError::NoSecret);
    }
    if config
        .auth
        .static_auth_secrets
        .iter()
        .any(|s| s == new_secret)
    {
        return Err(RotateError::AlreadyThere);
    }
    let parsed = conf_file::parse(existing, origin);
    let first_line = parsed
        .entries
        .iter()
        .filter(|e| e.key.trim_start_matches('-') == "static-auth-secret")
        .find_map(|e| match e.source {
            crate::config::Source::File { line, .. } => Some(line),
            _ => None,
        })
        .ok_or(RotateError::NoSecret)?;
    let mut out = String::with_capacity(existing.len() + 200);
    for (i, line) in existing.split_inclusive('\n').enumerate() {
        if i + 1 == first_line {
            let _ = writeln!(
                out,
                "# New secret added by `ferroturn jitsi init --rotate` on {date}. Retire the old\n\
                 # line(s) below once every Prosody signs with the new one and TURN_TTL has passed."
            );
            let _ = writeln!(out, "static-auth-secret={new_secret}");
        }
        out.push_str(line);
    }
    if !out.ends_with('\n') {
        out.push('\n');
    }
    Ok((out, config.auth.static_auth_secrets))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jitsi::plan::tests::sample;

    #[test]
    fn generated_conf_loads_with_ferroturns_own_loader() {
        let plan = sample();
        let text = render(&plan);
        let c = from_conf_str(&text, "generated").expect("loads");
        assert!(c.warnings.is_empty(), "warnings: {:?}", c.warnings);
        assert!(c.auth.use_auth_secret);
        assert_eq!(c.auth.static_auth_secrets, [plan.secret.as_str()]);
        assert_eq!(c.listen.port, 3478);
        assert_eq!(c.listen.tls_port, 5349);
        assert_eq!((c.relay.min_port, c.relay.max_port), (49160, 49999));
        assert_eq!(c.auth.realm, "meet.example.org");
        assert!(c.relay.no_tcp && !c.listen.no_udp && !c.listen.no_tcp && !c.listen.no_tls);
        assert_eq!(c.relay.external_ips[0].public.to_string(), "203.0.113.7");
        assert_eq!(c.peers.allowed.len(), 1);
        assert!(c.tls.cert.is_some() && c.tls.pkey.is_some());
    }

    #[test]
    fn no_tls_and_udp_only_variants_load() {
        let mut plan = sample();
        plan.tls = None;
        plan.tcp = false;
        plan.jvb_peers.clear();
        plan.listen_ips = vec!["127.0.0.1".parse().unwrap()];
        plan.relay_ips = vec!["127.0.0.1".parse().unwrap()];
        let c = from_conf_str(&render(&plan), "generated").unwrap();
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert!(c.listen.no_tls && c.listen.no_tcp && !c.listen.no_udp);
        assert_eq!(c.listen.ips.len(), 1);
        assert!(c.peers.allowed.is_empty());
    }

    #[test]
    fn rotate_adds_the_new_secret_first_and_keeps_the_old() {
        let plan = sample();
        let text = render(&plan);
        let new = "b".repeat(64);
        let (rotated, old) = add_secret(&text, "t", &new, "2025-01-01").unwrap();
        assert_eq!(old, [plan.secret.as_str()]);
        let c = from_conf_str(&rotated, "t").unwrap();
        assert_eq!(
            c.auth.static_auth_secrets,
            [new.clone(), plan.secret.clone()]
        );
        // Everything else is untouched: dropping the three added lines gives the original back.
        let kept: Vec<&str> = rotated
            .lines()
            .filter(|l| {
                !l.contains(&new)
                    && !l.contains("--rotate` on")
                    && !l.contains("line(s) below once")
            })
            .collect();
        assert_eq!(kept.join("\n") + "\n", text);
        assert!(matches!(
            add_secret(&rotated, "t", &new, "x"),
            Err(RotateError::AlreadyThere)
        ));
    }

    #[test]
    fn rotate_refuses_a_conf_without_rest_secrets() {
        assert_eq!(
            add_secret("lt-cred-mech\nuser=a:b\n", "t", "x", "d"),
            Err(RotateError::NoSecret)
        );
    }
}
