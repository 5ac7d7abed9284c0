//! What the relay's configuration means where Prosody sends clients: which addresses and ports
//! it listens and relays on, and how many relayed allocations its port range holds. Computed
//! from the [`Config`] alone, so it describes the configured rules, not one host's interfaces.

use std::net::IpAddr;

use super::prosody_side::{ProsodySide, ServiceKind};
use crate::config::Config;

/// Participants `jitsi check` assumes will relay at once unless told (`--participants`).
pub const DEFAULT_PARTICIPANTS: u32 = 50;

/// Relay ports in `min-port..=max-port`; every allocation holds one (IPv4 and IPv6 share the
/// range), so this is also the most allocations the relay serves at once.
pub fn relay_ports(conf: &Config) -> u32 {
    u32::from(conf.relay.max_port.saturating_sub(conf.relay.min_port)) + 1
}

fn list(ips: &[IpAddr]) -> String {
    ips.iter()
        .map(IpAddr::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// One line each: listeners, relay addresses, advertised addresses, relay range.
pub fn describe(conf: &Config) -> Vec<String> {
    let mut out = Vec::new();
    let mut ports = Vec::new();
    let plain: Vec<String> = conf
        .listen
        .plain_ports()
        .iter()
        .map(u16::to_string)
        .collect();
    match (conf.listen.no_udp, conf.listen.no_tcp) {
        (false, false) => ports.push(format!("{} udp+tcp", plain.join(", "))),
        (false, true) => ports.push(format!("{} udp", plain.join(", "))),
        (true, false) => ports.push(format!("{} tcp", plain.join(", "))),
        (true, true) => {}
    }
    if conf.serves_tls() {
        let tls: Vec<String> = conf.listen.tls_ports().iter().map(u16::to_string).collect();
        ports.push(format!("{} tls", tls.join(", ")));
    }
    let on = if conf.listen.ips.is_empty() {
        "every interface address (no listening-ip)".to_string()
    } else {
        format!("{} (listening-ip)", list(&conf.listen.ips))
    };
    out.push(format!("listening on {on}, ports {}", ports.join("; ")));

    let specific = specific_listening_ips(conf);
    let relay = if !conf.relay.ips.is_empty() {
        format!("{} (relay-ip)", list(&conf.relay.ips))
    } else if !specific.is_empty() {
        format!("{} (the listening addresses; no relay-ip)", list(&specific))
    } else {
        "every non-loopback, non-link-local address of the relay host (no relay-ip and no \
         listening-ip; loopback only when it has no other); the server logs each one it picks"
            .to_string()
    };
    out.push(format!("relaying from {relay}"));
    if conf.relay.external_ips.is_empty() {
        out.push(
            "advertised relay addresses: the relay addresses themselves (no external-ip)".into(),
        );
    } else {
        let ext: Vec<String> = conf
            .relay
            .external_ips
            .iter()
            .map(|e| match e.private {
                Some(p) => format!("{} for relays on {p}", e.public),
                None => format!(
                    "{} for {} relays",
                    e.public,
                    if e.public.is_ipv4() { "IPv4" } else { "IPv6" }
                ),
            })
            .collect();
        out.push(format!(
            "advertised relay addresses: {} (external-ip)",
            ext.join("; ")
        ));
    }
    let n = relay_ports(conf);
    out.push(format!(
        "relay ports {}-{}/udp: {n} port{}, so at most {n} relayed allocation{} at once",
        conf.relay.min_port,
        conf.relay.max_port,
        if n == 1 { "" } else { "s" },
        if n == 1 { "" } else { "s" },
    ));
    out
}

/// The `listening-ip` addresses that name one address (not the wildcard).
fn specific_listening_ips(conf: &Config) -> Vec<IpAddr> {
    conf.listen
        .ips
        .iter()
        .copied()
        .filter(|ip| !ip.is_unspecified())
        .collect()
}

/// A warning when every relay address the configuration names is loopback and no
/// `external-ip` maps it: relayed packets then never reach a peer on another host.
pub fn loopback_warning(conf: &Config) -> Option<String> {
    let specific = specific_listening_ips(conf);
    let relay = if conf.relay.ips.is_empty() {
        &specific
    } else {
        &conf.relay.ips
    };
    let all_loopback = !relay.is_empty() && relay.iter().all(IpAddr::is_loopback);
    (all_loopback && conf.relay.external_ips.is_empty()).then(|| {
        format!(
            "the relay addresses ({}) are loopback and no external-ip is set: relayed media \
             never reaches a videobridge or client on another host. Set relay-ip (or \
             listening-ip) to the host's own address, and external-ip when it sits behind NAT",
            list(relay)
        )
    })
}

/// Relayed allocations one participant's browser makes when it joins: one per TURN entry
/// Prosody announces (browsers gather a relay candidate on every TURN server they are given).
pub fn allocations_per_participant(side: &ProsodySide) -> u32 {
    let n = side
        .services
        .iter()
        .filter(|s| s.kind != ServiceKind::Stun)
        .count();
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A warning when the relay range cannot hold `participants` participants of `side`.
pub fn capacity_warning(conf: &Config, side: &ProsodySide, participants: u32) -> Option<String> {
    let per = allocations_per_participant(side);
    if per == 0 || participants == 0 {
        return None;
    }
    let ports = relay_ports(conf);
    let fits = ports / per;
    if fits >= participants {
        return None;
    }
    let entries: Vec<String> = side
        .services
        .iter()
        .filter(|s| s.kind != ServiceKind::Stun)
        .map(|s| format!("{}/{}", s.kind.scheme(), s.transport))
        .collect();
    Some(format!(
        "the relay range {}-{} holds {ports} port{}, at most {ports} relayed allocation{} at once; \
         each participant takes up to {per} ({}, one per TURN entry {} announces), so about {fits} \
         participant{} can relay at the same time, fewer than the {participants} planned \
         (--participants). Widen min-port/max-port, and publish or open the whole range",
        conf.relay.min_port,
        conf.relay.max_port,
        if ports == 1 { "" } else { "s" },
        if ports == 1 { "" } else { "s" },
        entries.join(", "),
        side.origin,
        if fits == 1 { "" } else { "s" },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jitsi::test_inputs::{conf_of, env_side};

    const SEED: &str = "use-auth-secret\nstatic-auth-secret=s\nmin-port=49000\nmax-port=49020\n";

    #[test]
    fn describes_the_seed_layout() {
        let lines = describe(&conf_of(&format!("{SEED}external-ip=158.101.210.198\n")));
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert!(lines[0].contains("every interface address") && lines[0].contains("3478 udp+tcp"));
        assert!(lines[1].contains("every non-loopback"), "{lines:?}");
        assert!(
            lines[2].contains("158.101.210.198 for IPv4 relays"),
            "{lines:?}"
        );
        assert_eq!(
            lines[3],
            "relay ports 49000-49020/udp: 21 ports, so at most 21 relayed allocations at once"
        );
    }

    #[test]
    fn names_the_configured_addresses() {
        let lines = describe(&conf_of(
            "use-auth-secret\nstatic-auth-secret=s\nlistening-ip=192.0.2.5\nno-tcp\nexternal-ip=203.0.113.7/192.0.2.5\n",
        ));
        assert!(lines[0].contains("192.0.2.5 (listening-ip)") && lines[0].ends_with("3478 udp"));
        assert!(
            lines[1].contains("192.0.2.5 (the listening addresses"),
            "{lines:?}"
        );
        assert!(
            lines[2].contains("203.0.113.7 for relays on 192.0.2.5"),
            "{lines:?}"
        );
        let lines = describe(&conf_of(
            "use-auth-secret\nstatic-auth-secret=s\nlistening-ip=0.0.0.0\nrelay-ip=10.1.1.1\n",
        ));
        assert!(lines[1].contains("10.1.1.1 (relay-ip)"), "{lines:?}");
        assert!(lines[2].contains("no external-ip"), "{lines:?}");
    }

    #[test]
    fn loopback_relay_without_external_ip_warns() {
        let base = "use-auth-secret\nstatic-auth-secret=s\n";
        let w = loopback_warning(&conf_of(&format!("{base}listening-ip=127.0.0.1\n"))).unwrap();
        assert!(w.contains("127.0.0.1") && w.contains("external-ip"), "{w}");
        assert!(loopback_warning(&conf_of(&format!(
            "{base}relay-ip=::1\nlistening-ip=192.0.2.5\n"
        )))
        .is_some());
        for fine in [
            "",
            "listening-ip=192.0.2.5\n",
            "listening-ip=127.0.0.1\nexternal-ip=203.0.113.7\n",
            "listening-ip=127.0.0.1\nrelay-ip=192.0.2.5\n",
        ] {
            assert_eq!(
                loopback_warning(&conf_of(&format!("{base}{fine}"))),
                None,
                "{fine}"
            );
        }
    }

    #[test]
    fn small_range_warns_for_the_stated_use() {
        let env =
            "TURN_HOST=t\nTURN_PORT=3478\nTURN_TRANSPORT=udp,tcp\nTURNS_HOST=t\nTURNS_PORT=5349\n";
        let s = env_side(env);
        assert_eq!(allocations_per_participant(&s), 3);
        let w = capacity_warning(&conf_of(SEED), &s, DEFAULT_PARTICIPANTS).unwrap();
        assert!(
            w.contains("21 ports") && w.contains("about 7 participants"),
            "{w}"
        );
        assert!(w.contains("turn/udp, turn/tcp, turns/tcp"), "{w}");
        assert_eq!(capacity_warning(&conf_of(SEED), &s, 7), None);
        // The default range (49152-65535) holds thousands.
        assert_eq!(
            capacity_warning(
                &conf_of("use-auth-secret\nstatic-auth-secret=s\n"),
                &s,
                DEFAULT_PARTICIPANTS
            ),
            None
        );
        // No TURN entry: nothing is relayed, nothing to warn about here.
        assert_eq!(capacity_warning(&conf_of(SEED), &env_side(""), 1000), None);
    }
}
