//! What `--check-config` says about addresses and the relay range: the listening and relay
//! addresses this host would use (and why), and how many allocations the port range allows.

use crate::config::Config;
use crate::proto::ports::PortPool;

use super::address_plan;
use super::addresses::comma_list;

/// Below this many relay ports `--check-config` warns: every relayed participant of a call holds
/// at least one allocation (two with P2P), so a few dozen ports fill up in one busy meeting.
pub const SMALL_RELAY_RANGE: usize = 1000;

/// The report: lines to print, warnings, and errors that make the check fail.
#[derive(Debug, Default)]
pub struct AddressReport {
    /// Informational lines.
    pub lines: Vec<String>,
    /// Worth fixing, but the relay works.
    pub warnings: Vec<String>,
    /// The relay would refuse to start.
    pub errors: Vec<String>,
}

/// Builds the report for `config` on this host.
pub fn address_report(config: &Config) -> AddressReport {
    let mut r = AddressReport::default();
    match address_plan(config) {
        Ok(plan) => {
            let list = comma_list(&plan.listening);
            let mut ports = vec![format!("port {}", config.listen.port)];
            if !config.listen.no_tls && config.tls.cert.is_some() {
                ports.push(format!("TLS port {}", config.listen.tls_port));
            }
            r.lines.push(format!(
                "listening addresses: {list} ({})",
                ports.join(", ")
            ));
            for relay in &plan.relays {
                let shown = if relay.advertised == relay.ip {
                    String::new()
                } else {
                    format!(", advertised as {}", relay.advertised)
                };
                r.lines.push(format!(
                    "relay address: {} ({}{shown})",
                    relay.ip,
                    relay.source.why()
                ));
            }
            for (ip, why) in &plan.skipped {
                r.lines.push(format!("not relaying on {ip}: {why}"));
            }
            r.warnings.extend(plan.warnings.iter().cloned());
        }
        Err(e) => r.errors.push(e.to_string()),
    }
    match PortPool::new(config.relay.min_port, config.relay.max_port) {
        Ok(pool) => {
            let ports = pool.capacity();
            r.lines.push(format!(
                "relay ports {}-{}: {ports} ports, so at most {ports} relayed allocations at once \
                 (shared by every relay address and both families)",
                config.relay.min_port, config.relay.max_port
            ));
            if ports < SMALL_RELAY_RANGE {
                r.warnings.push(format!(
                    "the relay range has only {ports} ports: at most {ports} relayed allocations at \
                     once, about one per participant that needs TURN (two with P2P); widen \
                     min-port/max-port (coturn's default is 49152-65535)"
                ));
            }
        }
        Err(e) => r.errors.push(format!("relay port range: {e}")),
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(min: u16, max: u16) -> Config {
        let mut c = Config::default();
        (c.relay.min_port, c.relay.max_port) = (min, max);
        c.listen.ips = vec!["127.0.0.1".parse().unwrap()];
        c
    }

    #[test]
    fn the_seed_range_allows_21_allocations_and_warns() {
        let r = address_report(&config(49000, 49020));
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert!(
            r.lines
                .iter()
                .any(|l| l.contains("at most 21 relayed allocations")),
            "{:?}",
            r.lines
        );
        assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
        assert!(r.warnings[0].contains("only 21 ports"));
        assert!(r
            .lines
            .iter()
            .any(|l| l == "relay address: 127.0.0.1 (a listening-ip (no relay-ip given))"));
        assert!(r
            .lines
            .iter()
            .any(|l| l.starts_with("listening addresses: 127.0.0.1 (port 3478")));
    }

    #[test]
    fn the_default_range_does_not_warn() {
        let r = address_report(&config(49152, 65535));
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        assert!(r.lines.iter().any(|l| l.contains("16384 ports")));
    }

    #[test]
    fn an_unusable_plan_is_an_error() {
        let mut c = config(49152, 65535);
        c.relay.ips = vec!["192.0.2.201".parse().unwrap()];
        let r = address_report(&c);
        assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
        assert!(
            r.errors[0].contains("relay-ip=192.0.2.201"),
            "{:?}",
            r.errors
        );
    }
}
