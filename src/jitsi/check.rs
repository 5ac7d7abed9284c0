//! Compares the relay's configuration with what Prosody hands out, and says in plain words
//! every place where a client following Prosody's directions would fail.

use std::net::IpAddr;

use super::prosody_side::{ProsodySide, Service, ServiceKind};
use super::secret::fingerprint;
use crate::config::Config;

/// Shortest credential lifetime accepted by default: three hours, a long meeting.
pub const DEFAULT_MIN_TTL: u64 = 3 * 3600;

/// Knobs of the comparison.
#[derive(Debug, Clone, Copy)]
pub struct CheckOptions {
    /// A credential lifetime below this is reported (seconds).
    pub min_ttl: u64,
    /// Accept a Prosody side whose only TURN entries are UDP.
    pub allow_udp_only: bool,
}

impl Default for CheckOptions {
    fn default() -> Self {
        Self {
            min_ttl: DEFAULT_MIN_TTL,
            allow_udp_only: false,
        }
    }
}

/// What agrees with the relay but still leaves clients without a working path, one sentence
/// each: TURN offered over UDP only.
pub fn warnings(side: &ProsodySide, opts: CheckOptions) -> Vec<String> {
    let relayed = relayed(side);
    let udp_only = !relayed.is_empty()
        && relayed
            .iter()
            .all(|s| s.kind == ServiceKind::Turn && s.transport == "udp");
    let mut out = Vec::new();
    if udp_only && !opts.allow_udp_only {
        out.push(format!(
            "{} offers TURN over UDP only ({}). lib-jitsi-meet drops UDP TURN servers for the \
             videobridge connection unless config.useTurnUdp is set, and clients on networks \
             that block UDP need TURN over TCP or TLS anyway, so they get no relay at all. Offer \
             tcp too (TURN_TRANSPORT=udp,tcp, or a `transport = \"tcp\"` entry), or pass \
             --allow-udp-only if every client is known to reach UDP",
            side.origin, relayed[0].label
        ));
    }
    out
}

/// The TURN and TURNS services `side` announces (everything but STUN).
fn relayed(side: &ProsodySide) -> Vec<&Service> {
    side.services
        .iter()
        .filter(|s| s.kind != ServiceKind::Stun)
        .collect()
}

/// Every mismatch between `conf` and `side`, one sentence each; empty when they agree.
pub fn check(conf: &Config, side: &ProsodySide, opts: CheckOptions) -> Vec<String> {
    let mut out: Vec<String> = side
        .problems
        .iter()
        .map(|p| format!("{}: {p}", side.origin))
        .collect();
    check_secret(conf, side, &mut out);
    let relayed = relayed(side);
    if relayed.is_empty() && side.problems.is_empty() {
        out.push(format!(
            "{} announces no TURN service, so clients behind strict firewalls cannot connect",
            side.origin
        ));
    }
    for s in &side.services {
        check_listener(conf, s, &mut out);
        check_host(conf, s, &mut out);
        check_ttl(conf, s, opts, &mut out);
    }
    out.dedup();
    out
}

fn check_secret(conf: &Config, side: &ProsodySide, out: &mut Vec<String>) {
    if !conf.auth.use_auth_secret {
        out.push(
            "turnserver.conf lacks use-auth-secret: ferroturn will refuse the time-limited \
             credentials Prosody hands out"
                .into(),
        );
    } else if conf.auth.static_auth_secrets.is_empty() {
        out.push("turnserver.conf has use-auth-secret but no static-auth-secret line".into());
    }
    match &side.secret {
        None => out.push(format!(
            "{} gives no shared secret (TURN_CREDENTIALS / external_service_secret), so it \
             cannot mint credentials the relay accepts",
            side.origin
        )),
        Some(secret) => {
            if conf.auth.use_auth_secret
                && !conf.auth.static_auth_secrets.is_empty()
                && !conf.auth.static_auth_secrets.iter().any(|s| s == secret)
            {
                let relay: Vec<String> = conf
                    .auth
                    .static_auth_secrets
                    .iter()
                    .map(|s| fingerprint(s))
                    .collect();
                out.push(format!(
                    "the secrets differ: Prosody signs with {} but turnserver.conf's \
                     static-auth-secret is {}; every allocation will be refused with 401",
                    fingerprint(secret),
                    relay.join(" / ")
                ));
            }
        }
    }
}

fn check_listener(conf: &Config, s: &Service, out: &mut Vec<String>) {
    let what = format!(
        "{} ({}:{}/{}, from {})",
        s.kind.scheme(),
        s.host,
        s.port,
        s.transport,
        s.label
    );
    let (ports, port_names): (Vec<u16>, &str) = match s.kind {
        ServiceKind::Turns => (conf.listen.tls_ports(), "tls-listening-port"),
        _ => (conf.listen.plain_ports(), "listening-port"),
    };
    if s.port != 0 && !ports.contains(&s.port) {
        let listed = ports
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(" and ");
        let why = match &s.port_default {
            Some(d) => format!(" ({d})"),
            None => String::new(),
        };
        out.push(format!(
            "port mismatch for {what}: Prosody sends clients to port {}{why}, but the relay's \
             {port_names} is {listed}",
            s.port
        ));
    }
    match (s.kind, s.transport.as_str()) {
        (ServiceKind::Turns, "tcp") => {
            if conf.listen.no_tls {
                out.push(format!(
                    "{what}: Prosody offers TURN over TLS but turnserver.conf says no-tls"
                ));
            } else if conf.tls.cert.is_none() || conf.tls.pkey.is_none() {
                out.push(format!(
                    "{what}: Prosody offers TURN over TLS but turnserver.conf has no cert/pkey"
                ));
            }
        }
        (_, "udp") => {
            if conf.listen.no_udp {
                out.push(format!(
                    "{what}: Prosody offers UDP but turnserver.conf says no-udp"
                ));
            }
            if s.kind == ServiceKind::Stun && (conf.protocol.no_stun || conf.listen.no_udp) {
                if conf.protocol.no_stun {
                    out.push(format!(
                        "{what}: Prosody offers STUN but turnserver.conf says no-stun"
                    ));
                }
            } else if s.kind == ServiceKind::Turn && conf.protocol.stun_only {
                out.push(format!(
                    "{what}: Prosody offers TURN but turnserver.conf says stun-only"
                ));
            }
        }
        (ServiceKind::Turn, "tcp") => {
            // ferroturn's TCP listener shares listening-port; `no-tcp` switches it off.
            if conf.listen.no_tcp {
                out.push(format!(
                    "{what}: Prosody offers TURN over TCP but turnserver.conf says no-tcp, so \
                     nothing listens for it"
                ));
            }
        }
        (_, other) => out.push(format!(
            "{what}: transport `{other}` is neither udp nor tcp{}",
            if s.kind == ServiceKind::Turns {
                " (turns is always tcp)"
            } else {
                ""
            }
        )),
    }
}

fn check_host(conf: &Config, s: &Service, out: &mut Vec<String>) {
    let Ok(ip) = s.host.trim_matches(['[', ']']).parse::<IpAddr>() else {
        return; // A name: its DNS record cannot be checked offline.
    };
    let mut known: Vec<IpAddr> = conf.relay.external_ips.iter().map(|e| e.public).collect();
    if known.is_empty() {
        known.extend(conf.listen.ips.iter().copied());
    }
    if !known.is_empty() && !known.contains(&ip) {
        let listed = known
            .iter()
            .map(IpAddr::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        out.push(format!(
            "host mismatch for {} ({}): Prosody sends clients to {ip}, but the relay is \
             reachable at {listed} (external-ip / listening-ip)",
            s.kind.scheme(),
            s.label
        ));
    }
}

fn check_ttl(conf: &Config, s: &Service, opts: CheckOptions, out: &mut Vec<String>) {
    let Some(ttl) = s.ttl else { return };
    if ttl < opts.min_ttl {
        let effect = if conf.auth.strict_expiry {
            "with strict-expiry the relay cuts the call when the credential expires"
        } else {
            "Jitsi fetches credentials once, when it joins, so a reconnect or ICE restart after \
             that is refused"
        };
        out.push(format!(
            "credential lifetime too short for {} ({}): {ttl} s ({}) is less than a long \
             meeting ({} s); {effect}. Use TURN_TTL / ttl = 86400",
            s.kind.scheme(),
            s.label,
            human(ttl),
            opts.min_ttl
        ));
    }
}

fn human(secs: u64) -> String {
    if secs >= 3600 && secs.is_multiple_of(3600) {
        format!("{} h", secs / 3600)
    } else if secs >= 60 && secs.is_multiple_of(60) {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jitsi::plan::tests::sample;
    use crate::jitsi::test_inputs::{conf_of, env_side};
    use crate::jitsi::{render_conf, render_env, render_k8s, render_lua};

    /// The generated .env with `key` replaced by `line` (or removed when `line` is empty).
    fn env_with(key: &str, line: &str) -> String {
        render_env::render_env(&sample())
            .lines()
            .map(|l| {
                if l.starts_with(&format!("{key}=")) {
                    line.to_string()
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn run(conf: &str, env: &str) -> Vec<String> {
        check(&conf_of(conf), &env_side(env), CheckOptions::default())
    }

    /// The findings for the sample plan's relay configuration and its .env with `key` set by
    /// `line` (see `env_with`).
    fn sample_findings(key: &str, line: &str) -> Vec<String> {
        run(&render_conf::render(&sample()), &env_with(key, line))
    }

    #[test]
    fn generated_files_agree_in_every_form() {
        let plan = sample();
        let conf = conf_of(&render_conf::render(&plan));
        let env = env_side(&render_env::render_env(&plan));
        assert_eq!(
            check(&conf, &env, CheckOptions::default()),
            Vec::<String>::new()
        );
        let k8s = crate::jitsi::parse_k8s::parse(&render_k8s::render_secret(&plan)).unwrap();
        let k8s = ProsodySide::from_env(&k8s, "secret");
        assert_eq!(
            check(&conf, &k8s, CheckOptions::default()),
            Vec::<String>::new()
        );
        let lua = ProsodySide::from_lua(
            &crate::jitsi::parse_lua::parse(&render_lua::render(&plan)),
            "lua",
        );
        assert_eq!(
            check(&conf, &lua, CheckOptions::default()),
            Vec::<String>::new()
        );
    }

    #[test]
    fn wrong_secret() {
        let found = sample_findings(
            "TURN_CREDENTIALS",
            &format!("TURN_CREDENTIALS={}", "c".repeat(64)),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].contains("secrets differ") && found[0].contains("401"),
            "{found:?}"
        );
        // The secrets themselves are not printed, only their first characters.
        assert!(!found[0].contains(&"c".repeat(64)));
        let found = sample_findings("TURN_CREDENTIALS", "");
        assert!(found[0].contains("no shared secret"), "{found:?}");
    }

    #[test]
    fn rotated_conf_accepts_the_new_and_the_old_secret() {
        let plan = sample();
        let (rotated, _) =
            render_conf::add_secret(&render_conf::render(&plan), "t", &"d".repeat(64), "today")
                .unwrap();
        assert!(run(&rotated, &render_env::render_env(&plan)).is_empty());
        let new_env = env_with(
            "TURN_CREDENTIALS",
            &format!("TURN_CREDENTIALS={}", "d".repeat(64)),
        );
        assert!(run(&rotated, &new_env).is_empty());
    }

    #[test]
    fn turn_port_left_at_docker_default_443() {
        let found = sample_findings("TURN_PORT", "");
        assert_eq!(found.len(), 2, "udp and tcp entries: {found:?}");
        assert!(found[0].contains("port 443"), "{found:?}");
        assert!(found[0].contains("TURN_PORT is not set"), "{found:?}");
        assert!(found[0].contains("listening-port is 3478"), "{found:?}");
        let found = sample_findings("TURN_PORT", "TURN_PORT=443");
        assert!(
            found[0].contains("port 443") && !found[0].contains("not set"),
            "{found:?}"
        );
    }

    #[test]
    fn tls_port_mismatch() {
        let found = sample_findings("TURNS_PORT", "TURNS_PORT=443");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("tls-listening-port is 5349"), "{found:?}");
    }

    #[test]
    fn tcp_transport_without_tcp_listener() {
        let mut plan = sample();
        plan.tcp = false;
        let conf = render_conf::render(&plan);
        // docker-jitsi-meet's default transport is tcp when TURN_TRANSPORT is unset.
        let found = run(&conf, &env_with("TURN_TRANSPORT", ""));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("no-tcp"), "{found:?}");
        let found = run(&conf, &env_with("TURN_TRANSPORT", "TURN_TRANSPORT=udp,tcp"));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(run(&conf, &env_with("TURN_TRANSPORT", "TURN_TRANSPORT=udp")).is_empty());
    }

    #[test]
    fn udp_only_turn_is_a_warning_unless_allowed() {
        let udp = env_side(&env_with("TURN_TRANSPORT", "TURN_TRANSPORT=udp"));
        // TURNS still gives UDP-blocked clients a path.
        assert!(warnings(&udp, CheckOptions::default()).is_empty());
        let mut plan = sample();
        plan.tcp = false;
        plan.tls = None;
        let udp = env_side(&render_env::render_env(&plan));
        let w = warnings(&udp, CheckOptions::default());
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("UDP only") && w[0].contains("useTurnUdp"),
            "{w:?}"
        );
        let allowed = CheckOptions {
            allow_udp_only: true,
            ..CheckOptions::default()
        };
        assert!(warnings(&udp, allowed).is_empty());
        assert!(warnings(
            &env_side(&render_env::render_env(&sample())),
            CheckOptions::default()
        )
        .is_empty());
        // The same for a Lua side.
        let lua = ProsodySide::from_lua(
            &crate::jitsi::parse_lua::parse(
                "external_services = { { type = \"turn\", host = \"h\", port = 3478, transport = \"udp\", secret = true } }\n",
            ),
            "p.lua",
        );
        assert_eq!(warnings(&lua, CheckOptions::default()).len(), 1);
    }

    #[test]
    fn udp_or_tls_offered_but_switched_off() {
        let conf = render_conf::render(&sample()) + "no-udp\nno-tls\n";
        let found = run(&conf, &render_env::render_env(&sample()));
        assert!(found.iter().any(|f| f.contains("no-udp")), "{found:?}");
        assert!(found.iter().any(|f| f.contains("no-tls")), "{found:?}");
    }

    #[test]
    fn ttl_shorter_than_a_meeting() {
        let found = sample_findings("TURN_TTL", "TURN_TTL=3600");
        // The udp and tcp entries share one sentence; the TLS entry has its own.
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0].contains("3600 s (1 h)") && found[0].contains("reconnect"),
            "{found:?}"
        );
        let strict = render_conf::render(&sample()) + "strict-expiry\n";
        let found = run(&strict, &env_with("TURN_TTL", "TURN_TTL=3600"));
        assert!(found[0].contains("cuts the call"), "{found:?}");
        assert!(sample_findings("TURN_TTL", "TURN_TTL=10800").is_empty());
    }

    #[test]
    fn host_must_be_the_relays_address_when_it_is_an_ip() {
        let mut plan = sample();
        plan.host = "203.0.113.7".into();
        let conf = render_conf::render(&plan);
        assert!(run(&conf, &render_env::render_env(&plan)).is_empty());
        plan.host = "198.51.100.9".into();
        let found = run(&conf, &render_env::render_env(&plan));
        assert!(
            found.iter().all(|f| f.contains("host mismatch")),
            "{found:?}"
        );
        assert!(!found.is_empty());
    }

    #[test]
    fn relay_without_rest_auth() {
        let found = run(
            "lt-cred-mech\nuser=a:b\n",
            &render_env::render_env(&sample()),
        );
        assert!(
            found.iter().any(|f| f.contains("use-auth-secret")),
            "{found:?}"
        );
    }

    #[test]
    fn lua_mismatches_are_caught_too() {
        let conf = conf_of(&render_conf::render(&sample()));
        let lua = crate::jitsi::parse_lua::parse(
            "external_service_secret = \"wrong-secret-0123456789\"\n\
             external_services = { { type = \"turn\", host = \"turn.example.org\", port = 443, transport = \"tcp\", secret = true, ttl = 600 } }\n",
        );
        let found = check(
            &conf,
            &ProsodySide::from_lua(&lua, "p.lua"),
            CheckOptions::default(),
        );
        assert_eq!(found.len(), 3, "{found:?}");
    }
}
