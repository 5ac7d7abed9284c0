//! Cross-checks of the PROXY protocol options against the listeners they name.

use std::net::IpAddr;

use super::options::Opt;
use super::Config;

/// One problem, with the option whose source the message should name.
pub(super) struct Problem {
    pub opt: Opt,
    pub text: String,
}

/// Errors and warnings about `proxy-protocol-*`.
#[derive(Default)]
pub(super) struct Problems {
    pub errors: Vec<Problem>,
    pub warnings: Vec<Problem>,
}

/// The TCP/TLS listeners a port would name: which ports ferroturn opens for streams.
fn stream_ports(c: &Config) -> (Vec<u16>, Vec<u16>, bool) {
    let plain = if c.listen.no_tcp {
        Vec::new()
    } else {
        c.listen.plain_ports()
    };
    let tls_possible = c.serves_tls();
    (plain, c.listen.tls_ports(), tls_possible)
}

pub(super) fn check(c: &Config) -> Problems {
    let mut p = Problems::default();
    if c.listen.proxy_protocol.ports.is_empty() {
        if !c.listen.proxy_protocol.trusted.is_empty() {
            p.warnings.push(Problem {
                opt: Opt::ProxyProtocolTrusted,
                text: "proxy-protocol-trusted has no effect without proxy-protocol-port".into(),
            });
        }
        return p;
    }
    if c.listen.proxy_protocol.trusted.is_empty() {
        p.errors.push(Problem {
            opt: Opt::ProxyProtocolPort,
            text: "proxy-protocol-port is set but proxy-protocol-trusted is empty: name the load balancers (IP, IP-IP or CIDR) whose PROXY headers are believed".into(),
        });
    }
    let (plain, tls, tls_possible) = stream_ports(c);
    for &port in &c.listen.proxy_protocol.ports {
        if plain.contains(&port) || (tls_possible && tls.contains(&port)) {
            continue;
        }
        let why = if tls.contains(&port) {
            if c.listen.no_tls {
                format!("port {port} is a TLS port but no-tls is set")
            } else {
                format!("port {port} is a TLS port but TLS is off (cert and pkey are not both set)")
            }
        } else if c.listen.no_tcp && c.listen.plain_ports().contains(&port) {
            format!("port {port} is a plain port but no-tcp is set")
        } else if !c.listen.no_tcp || tls_possible {
            let mut open: Vec<String> = plain.iter().map(|p| format!("{p} (tcp)")).collect();
            if tls_possible {
                open.extend(tls.iter().map(|p| format!("{p} (tls)")));
            }
            format!(
                "port {port} is not a TCP or TLS listening port (those are {})",
                open.join(", ")
            )
        } else {
            format!("port {port} is not a TCP or TLS listening port (none is open)")
        };
        p.errors.push(Problem {
            opt: Opt::ProxyProtocolPort,
            text: format!("proxy-protocol-port: {why}"),
        });
    }
    for range in &c.listen.proxy_protocol.trusted {
        if covers_family(range.start(), range.end()) {
            p.warnings.push(Problem {
                opt: Opt::ProxyProtocolTrusted,
                text: format!(
                    "proxy-protocol-trusted {range} trusts every address of its family: anyone who can reach a proxy-protocol-port can claim any client address"
                ),
            });
        }
    }
    p
}

fn covers_family(start: IpAddr, end: IpAddr) -> bool {
    match (start, end) {
        (IpAddr::V4(s), IpAddr::V4(e)) => u32::from(s) == 0 && u32::from(e) == u32::MAX,
        (IpAddr::V6(s), IpAddr::V6(e)) => u128::from(s) == 0 && u128::from(e) == u128::MAX,
        _ => false,
    }
}

#[cfg(test)]
mod tests;
