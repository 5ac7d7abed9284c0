use crate::config::test_conf::{errors, ok};

const TLS: &str = "cert=/etc/ssl/turn.pem\npkey=/etc/ssl/turn.key\n";

#[test]
fn off_by_default() {
    let c = ok("");
    assert!(c.listen.proxy_protocol.ports.is_empty());
    assert!(c.listen.proxy_protocol.trusted.is_empty());
    assert_eq!(c.listen.proxy_protocol.timeout, 5);
}

#[test]
fn ports_and_ranges_accept_lists_and_repeats() {
    let c = ok(&format!(
        "{TLS}proxy-protocol-port=5349,3478\nproxy-protocol-port=5349\nproxy-protocol-trusted=10.0.0.0/8, 192.0.2.1\nproxy-protocol-trusted=2001:db8::1-2001:db8::ff\nproxy-protocol-timeout=2\n"
    ));
    assert_eq!(c.listen.proxy_protocol.ports, vec![5349, 3478]);
    let trusted: Vec<String> = c
        .listen
        .proxy_protocol
        .trusted
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        trusted,
        [
            "10.0.0.0-10.255.255.255",
            "192.0.2.1",
            "2001:db8::1-2001:db8::ff"
        ]
    );
    assert_eq!(c.listen.proxy_protocol.timeout, 2);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn bad_range_names_line_and_option() {
    let e = errors("proxy-protocol-port=3478\nproxy-protocol-trusted=10.0.0.0/33\n");
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(
        e[0].starts_with("turnserver.conf:4: proxy-protocol-trusted: \"10.0.0.0/33\" is not an IP, IP-IP range or CIDR block"),
        "{e:?}"
    );
    // Without a valid trusted entry nothing would be trusted: that is reported too.
    assert!(e[1].contains("proxy-protocol-trusted is empty"), "{e:?}");
    let e = errors("proxy-protocol-port=3478\nproxy-protocol-trusted=nginx.local\n");
    assert!(e[0].contains("is not an IP"), "{e:?}");
}

#[test]
fn bad_port_and_timeout_values() {
    let e = errors("proxy-protocol-port=0\nproxy-protocol-trusted=127.0.0.1\n");
    assert!(
        e[0].contains("proxy-protocol-port: \"0\" is not a port number"),
        "{e:?}"
    );
    let e = errors(
        "proxy-protocol-port=3478\nproxy-protocol-trusted=127.0.0.1\nproxy-protocol-timeout=0\n",
    );
    assert!(e[0].contains("must be greater than 0"), "{e:?}");
    let e = errors(
        "proxy-protocol-port=3478\nproxy-protocol-trusted=127.0.0.1\nproxy-protocol-timeout=11\n",
    );
    assert!(e[0].contains("at most 10"), "{e:?}");
}

#[test]
fn ports_need_a_trusted_list() {
    let e = errors("proxy-protocol-port=3478\n");
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with(
            "turnserver.conf:3: proxy-protocol-port is set but proxy-protocol-trusted is empty"
        ),
        "{e:?}"
    );
}

/// `proxy-protocol-port` (with a trusted proxy) after `setup`.
fn proxied(setup: &str, port: u16) -> String {
    format!("{setup}proxy-protocol-port={port}\nproxy-protocol-trusted=127.0.0.1\n")
}

#[test]
fn a_port_must_be_an_open_stream_listener() {
    assert_eq!(
        errors(&proxied("", 4000)),
        ["turnserver.conf:3: proxy-protocol-port: port 4000 is not a TCP or TLS listening port (those are 3478 (tcp))"]
    );
    let with_tls = |lines: &str| format!("{TLS}{lines}");
    // The listener setup, the port, and how the one error ends.
    for (setup, port, end) in [
        (
            with_tls("alt-listening-port=3479\n"),
            4000,
            "(those are 3478 (tcp), 3479 (tcp), 5349 (tls))",
        ),
        (
            String::new(),
            5349,
            "port 5349 is a TLS port but TLS is off (cert and pkey are not both set)",
        ),
        (
            with_tls("no-tls\n"),
            5349,
            "port 5349 is a TLS port but no-tls is set",
        ),
        (
            with_tls("no-tcp\n"),
            3478,
            "port 3478 is a plain port but no-tcp is set",
        ),
        ("no-tcp\n".to_string(), 4000, "(none is open)"),
    ] {
        let e = errors(&proxied(&setup, port));
        assert!(
            e.len() == 1 && e[0].ends_with(end),
            "{setup:?} {port}: {e:?}"
        );
    }
    ok(&proxied(TLS, 5349));
    ok(&proxied(&with_tls("alt-tls-listening-port=443\n"), 443));
}

#[test]
fn warnings_for_useless_or_dangerous_trust() {
    let c = ok("proxy-protocol-trusted=127.0.0.1\n");
    assert_eq!(
        c.warnings,
        ["turnserver.conf:3: proxy-protocol-trusted has no effect without proxy-protocol-port"]
    );
    let c = ok("proxy-protocol-port=3478\nproxy-protocol-trusted=0.0.0.0/0\n");
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(
        c.warnings[0].contains("trusts every address of its family"),
        "{:?}",
        c.warnings
    );
}
