//! coturn's 2025-2026 advisories, each as a regression test against this core.

use super::*;

#[test]
fn advisory_lifetime_injected_after_message_integrity_is_ignored() {
    let (mut h, mut c) = alice_allocated();
    let tid = c.tid();
    let mut req = c.request(method::REFRESH, tid, |w| {
        w.attr_u32(attr::LIFETIME, 900).unwrap()
    });
    append_attr(&mut req, attr::LIFETIME, &0u32.to_be_bytes());
    let resp = h.reply(c.flow, &req).unwrap();
    assert_eq!(resp.lifetime(), 900, "the signed LIFETIME counts");
    assert!(
        h.server.has_allocation(c.flow),
        "the injected 0 deleted nothing"
    );
    // Unsigned attributes alone do not authenticate a request either.
    let tid = c.tid();
    let mut req = c.request(method::REFRESH, tid, |_| {});
    append_attr(&mut req, attr::LIFETIME, &0u32.to_be_bytes());
    assert_eq!(h.reply(c.flow, &req).unwrap().lifetime(), 600);
    assert!(h.server.has_allocation(c.flow));
}

#[test]
fn advisory_peer_address_injected_after_message_integrity_is_ignored() {
    let (mut h, mut c) = alice_allocated();
    let signed = public_peer();
    let injected: SocketAddr = "198.100.9.9:5000".parse().unwrap();
    let tid = c.tid();
    let mut req = c.request(method::CREATE_PERMISSION, tid, |w| {
        w.xor_address(attr::XOR_PEER_ADDRESS, &signed).unwrap()
    });
    let mut value = vec![0u8; 8];
    xor_addr::encode(&injected, &tid, &mut value);
    append_attr(&mut req, attr::XOR_PEER_ADDRESS, &value);
    assert_eq!(h.reply(c.flow, &req).unwrap().class, Class::Success);
    assert!(h.peer_packet(0, signed, b"signed").is_some());
    assert!(
        h.peer_packet(0, injected, b"injected").is_none(),
        "no permission for the injected peer"
    );
}

#[test]
fn advisory_duplicate_peer_address_in_channel_bind_uses_the_first() {
    let (mut h, mut c) = alice_allocated();
    let first = public_peer();
    let second: SocketAddr = "198.100.9.9:5000".parse().unwrap();
    let resp = h.call(&mut c, method::CHANNEL_BIND, |w| {
        w.attr_u32(attr::CHANNEL_NUMBER, 0x4000 << 16).unwrap();
        w.xor_address(attr::XOR_PEER_ADDRESS, &first).unwrap();
        w.xor_address(attr::XOR_PEER_ADDRESS, &second).unwrap();
    });
    assert_eq!(resp.class, Class::Success);
    let frame = [0x40, 0x00, 0x00, 0x01, b'x'];
    match h.send_raw(c.flow, &frame) {
        ClientAction::Relay { peer, .. } => assert_eq!(peer, first),
        other => panic!("expected a relay to the first peer, got {other:?}"),
    }
    assert!(h.peer_packet(0, second, b"second").is_none());
    // A second forbidden address cannot sneak past the policy check either.
    let resp = h.call(&mut c, method::CHANNEL_BIND, |w| {
        w.attr_u32(attr::CHANNEL_NUMBER, 0x4001 << 16).unwrap();
        w.xor_address(attr::XOR_PEER_ADDRESS, &"198.100.9.10:1".parse().unwrap())
            .unwrap();
        w.xor_address(attr::XOR_PEER_ADDRESS, &"10.0.0.1:1".parse().unwrap())
            .unwrap();
    });
    assert_eq!(resp.class, Class::Success);
    assert!(h
        .peer_packet(0, "10.0.0.1:1".parse().unwrap(), b"x")
        .is_none());
}

#[test]
fn advisory_even_port_without_reserve_leaks_no_port() {
    let mut h = harness(Options::default());
    let baseline = h.server.shared.ports.in_use();
    for i in 0..20u16 {
        let mut c = Client::rest(4000 + i, "alice", valid_expiry());
        let resp = h.allocate_and(&mut c, |w| {
            w.attr(attr::EVEN_PORT, &[0x00]).unwrap();
        });
        assert_eq!(resp.xor_addr(attr::XOR_RELAYED_ADDRESS).port() % 2, 0);
        assert!(resp.attr(attr::RESERVATION_TOKEN).is_none());
        assert_eq!(h.server.shared.ports.in_use(), baseline + 1);
        let resp = h.call(&mut c, method::REFRESH, |w| {
            w.attr_u32(attr::LIFETIME, 0).unwrap()
        });
        assert_eq!(resp.lifetime(), 0);
        assert_eq!(h.server.shared.ports.in_use(), baseline);
    }
}

#[test]
fn advisory_unredeemed_reservation_tokens_release_their_port() {
    let (mut h, mut c) = harness_and_alice();
    let resp = h.allocate_and(&mut c, |w| {
        w.attr(attr::EVEN_PORT, &[0x80]).unwrap();
    });
    let token = resp.attr(attr::RESERVATION_TOKEN).unwrap().to_vec();
    assert_eq!(h.server.shared.ports.in_use(), 2);
    h.call(&mut c, method::REFRESH, |w| {
        w.attr_u32(attr::LIFETIME, 0).unwrap()
    });
    assert_eq!(
        h.server.shared.ports.in_use(),
        1,
        "the reserved port is held"
    );
    h.advance(40);
    assert_eq!(
        h.server.shared.ports.in_use(),
        0,
        "and released when it lapses"
    );
    assert!(h.server.shared.reservations.is_empty());
    let mut late = Client::rest(4001, "alice", valid_expiry());
    let resp = h.allocate_and(&mut late, |w| {
        w.attr(attr::RESERVATION_TOKEN, &token).unwrap();
    });
    assert_eq!(resp.error_code(), Some(508));
    assert_eq!(h.server.shared.ports.in_use(), 0);
}

#[test]
fn advisory_mapped_and_compatible_loopback_peers_are_denied() {
    for allow_loopback in [false, true] {
        let (mut h, mut c) = harness_and_alice_with(Options {
            peers: PeerPolicySettings {
                allow_loopback,
                ..Default::default()
            },
            ..Options::default()
        });
        let resp = h.allocate_and(&mut c, |w| {
            w.attr_u32(attr::REQUESTED_ADDRESS_FAMILY, 2 << 24).unwrap();
        });
        assert_eq!(resp.class, Class::Success);
        let mut denied = vec!["[::127.0.0.1]:5000", "[::7f00:1]:5000", "[::]:5000"];
        if !allow_loopback {
            denied.extend(["[::ffff:127.0.0.1]:5000", "[::1]:5000"]);
        }
        for peer in denied {
            let peer: SocketAddr = peer.parse().unwrap();
            h.assert_peer_forbidden(&mut c, peer, &format!("allow_loopback={allow_loopback}"));
        }
    }
}

#[test]
fn advisory_ipv6_ranges_crossing_a_64_bit_boundary() {
    let range = |s: &str| s.parse().unwrap();
    let (mut h, mut c) = harness_and_alice_with(Options {
        peers: PeerPolicySettings {
            denied: vec![range("2606:4700:0:0:ffff::-2606:4700:0:1:1::")],
            allowed: vec![range("fd00::ffff:ffff:ffff:fff0-fd00:0:0:1::10")],
            allow_loopback: false,
        },
        ..Options::default()
    });
    let resp = h.allocate_and(&mut c, |w| {
        w.attr_u32(attr::REQUESTED_ADDRESS_FAMILY, 2 << 24).unwrap();
    });
    assert_eq!(resp.class, Class::Success);
    for (peer, code) in [
        ("[2606:4700::ffff:0:0:1]:1", Some(403)),
        ("[2606:4700:0:1::5]:1", Some(403)),
        ("[2606:4700:0:1:1::1]:1", None),
        ("[2606:4700::fffe:ffff:ffff:ffff]:1", None),
        ("[fd00::ffff:ffff:ffff:ffff]:1", None),
        ("[fd00:0:0:1::10]:1", None),
        ("[fd00:0:0:1::11]:1", Some(403)),
        ("[fd00::ffff:ffff:ffff:ffef]:1", Some(403)),
    ] {
        let peer: SocketAddr = peer.parse().unwrap();
        assert_eq!(
            h.create_permission(&mut c, peer).error_code(),
            code,
            "{peer}"
        );
    }
}

#[test]
fn advisory_a_nonce_from_one_client_ip_is_refused_from_another() {
    let (mut h, mut c) = harness_and_alice();
    challenge(&mut h, &mut c);
    // The same client, same port, but another address: the nonce does not travel.
    c.flow.remote.set_ip("198.51.100.99".parse().unwrap());
    let resp = h.allocate_once(&mut c);
    assert_eq!(resp.error_code(), Some(438));
    assert_eq!(h.server.allocation_count(), 0);
    // With the nonce it is handed there, it authenticates.
    c.nonce = Some(resp.attr(attr::NONCE).unwrap().to_vec());
    let req = c.allocate_request();
    assert_eq!(h.reply(c.flow, &req).unwrap().class, Class::Success);
}
