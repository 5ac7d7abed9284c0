//! Allocate: attribute errors, families, 437/441, quotas, the port range, EVEN-PORT reservations, external-ip.

use super::*;

/// An Allocate asking for an even port and a reservation of the next one (EVEN-PORT R bit).
fn allocate_even(h: &mut Harness, c: &mut Client) -> Response {
    h.allocate_and(c, |w| w.attr(attr::EVEN_PORT, &[0x80]).unwrap())
}

/// An Allocate claiming the port reserved under `token`.
fn allocate_with_token(h: &mut Harness, c: &mut Client, token: &[u8; 8]) -> Response {
    h.allocate_and(c, |w| w.attr(attr::RESERVATION_TOKEN, token).unwrap())
}

#[test]
fn allocate_attribute_errors() {
    let mut h = harness(Options::default());
    let mut c = Client::rest(4000, "alice", valid_expiry());
    let missing = h.call(&mut c, method::ALLOCATE, |_| {});
    assert_eq!(missing.error_code(), Some(400));
    // TCP over a UDP control connection is RFC 6062's 400 (tests/tcp_relay.rs); an unknown
    // protocol is 442.
    let tcp = h.call(&mut c, method::ALLOCATE, |w| {
        w.attr_u32(attr::REQUESTED_TRANSPORT, 6 << 24).unwrap()
    });
    assert_eq!(tcp.error_code(), Some(400));
    let sctp = h.call(&mut c, method::ALLOCATE, |w| {
        w.attr_u32(attr::REQUESTED_TRANSPORT, 132 << 24).unwrap()
    });
    assert_eq!(sctp.error_code(), Some(442));
    let bad_family = h.allocate_and(&mut c, |w| {
        w.attr_u32(attr::REQUESTED_ADDRESS_FAMILY, 3 << 24).unwrap();
    });
    assert_eq!(bad_family.error_code(), Some(440));
    let unknown = h.allocate_and(&mut c, |w| {
        w.attr(0x0777, &[1, 2, 3, 4]).unwrap();
    });
    assert_eq!(unknown.error_code(), Some(420));
    assert_eq!(
        unknown.attr(attr::UNKNOWN_ATTRIBUTES),
        Some(&[0x07, 0x77][..])
    );
    assert!(
        unknown.attr(attr::MESSAGE_INTEGRITY).is_some(),
        "authenticated errors are signed"
    );
    let token_and_even = h.allocate_and(&mut c, |w| {
        w.attr(attr::EVEN_PORT, &[0x80]).unwrap();
        w.attr(attr::RESERVATION_TOKEN, &[1; 8]).unwrap();
    });
    assert_eq!(token_and_even.error_code(), Some(400));
    assert_eq!(h.server.allocation_count(), 0);
    assert_eq!(
        h.server.shared.ports.in_use(),
        0,
        "failed allocations leak no ports"
    );
}

#[test]
fn ipv6_relay_and_missing_family() {
    let mut h = harness(Options::default());
    let mut c = Client::rest(4000, "alice", valid_expiry());
    let resp = h.allocate_and(&mut c, |w| {
        w.attr_u32(attr::REQUESTED_ADDRESS_FAMILY, 2 << 24).unwrap();
    });
    assert_eq!(resp.class, Class::Success);
    assert!(resp.xor_addr(attr::XOR_RELAYED_ADDRESS).is_ipv6());
    // An IPv4 peer on an IPv6 allocation is a family mismatch.
    assert_eq!(
        h.create_permission(&mut c, public_peer()).error_code(),
        Some(443)
    );

    h.binder.relay_ip6 = None;
    let mut d = Client::rest(4001, "alice", valid_expiry());
    let resp = h.allocate_and(&mut d, |w| {
        w.attr_u32(attr::REQUESTED_ADDRESS_FAMILY, 2 << 24).unwrap();
    });
    assert_eq!(resp.error_code(), Some(440));
}

#[test]
fn second_allocate_on_a_flow_is_437_but_a_retransmission_is_answered() {
    let mut h = harness(Options::default());
    let mut c = Client::rest(4000, "alice", valid_expiry());
    h.allocate(&mut c);
    // Retransmit the exact request that succeeded.
    let tid = c.last_tid();
    let req = c.request(method::ALLOCATE, tid, |w| {
        w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap()
    });
    let again = h.reply(c.flow, &req).unwrap();
    assert_eq!(again.class, Class::Success);
    assert_eq!(h.allocate(&mut c).error_code(), Some(437));
    assert_eq!(h.server.allocation_count(), 1);
}

#[test]
fn requests_without_allocation_get_437_and_other_users_441() {
    let mut h = harness(Options::default());
    let mut c = Client::rest(4000, "alice", valid_expiry());
    assert_eq!(
        h.call(&mut c, method::REFRESH, |_| {}).error_code(),
        Some(437)
    );
    assert_eq!(
        h.create_permission(&mut c, public_peer()).error_code(),
        Some(437)
    );
    h.allocate(&mut c);
    let mut other = Client::rest(4000, "mallory", valid_expiry());
    assert_eq!(
        h.call(&mut other, method::REFRESH, |_| {}).error_code(),
        Some(441)
    );
}

#[test]
fn quotas_give_486() {
    let (mut h, mut a1) = harness_and_alice_with(Options {
        user_quota: 1,
        total_quota: 2,
        ..Options::default()
    });
    let mut a2 = Client::rest(4001, "alice", valid_expiry() + 5);
    let mut b1 = Client::rest(4002, "bob", valid_expiry());
    let mut c1 = Client::rest(4003, "carol", valid_expiry());
    assert_eq!(h.allocate(&mut a1).class, Class::Success);
    assert_eq!(
        h.allocate(&mut a2).error_code(),
        Some(486),
        "same user id, other timestamp"
    );
    assert_eq!(h.allocate(&mut b1).class, Class::Success);
    assert_eq!(h.allocate(&mut c1).error_code(), Some(486), "total quota");
    h.call(&mut a1, method::REFRESH, |w| {
        w.attr_u32(attr::LIFETIME, 0).unwrap()
    });
    assert_eq!(h.allocate(&mut a2).class, Class::Success, "quota released");
}

#[test]
fn full_port_range_gives_508_and_busy_ports_are_skipped() {
    let mut h = harness(Options {
        ports: (50000, 50001),
        ..Options::default()
    });
    h.binder.busy.insert(50000);
    let mut a = Client::rest(4000, "a", valid_expiry());
    let mut b = Client::rest(4001, "b", valid_expiry());
    let resp = h.allocate(&mut a);
    assert_eq!(resp.xor_addr(attr::XOR_RELAYED_ADDRESS).port(), 50001);
    assert_eq!(h.allocate(&mut b).error_code(), Some(508));
}

#[test]
fn even_port_reservation_token_round_trip() {
    let mut h = harness(Options::default());
    let mut rtp = Client::rest(4000, "alice", valid_expiry());
    let resp = allocate_even(&mut h, &mut rtp);
    let port = resp.xor_addr(attr::XOR_RELAYED_ADDRESS).port();
    assert_eq!(port % 2, 0);
    let token: [u8; 8] = resp.reservation_token();

    let mut rtcp = Client::rest(4001, "alice", valid_expiry());
    let resp = allocate_with_token(&mut h, &mut rtcp, &token);
    assert_eq!(resp.xor_addr(attr::XOR_RELAYED_ADDRESS).port(), port + 1);

    // A token is good once, and keeps the family of the allocation that reserved it.
    let mut rtp6 = Client::rest(4003, "alice", valid_expiry());
    let resp = h.allocate_and(&mut rtp6, |w| {
        w.attr_u32(attr::REQUESTED_ADDRESS_FAMILY, 2 << 24).unwrap();
        w.attr(attr::EVEN_PORT, &[0x80]).unwrap();
    });
    let port6 = resp.xor_addr(attr::XOR_RELAYED_ADDRESS).port();
    let token6: [u8; 8] = resp.reservation_token();
    let mut rtcp6 = Client::rest(4004, "alice", valid_expiry());
    let resp = allocate_with_token(&mut h, &mut rtcp6, &token6);
    let relayed = resp.xor_addr(attr::XOR_RELAYED_ADDRESS);
    assert!(relayed.is_ipv6());
    assert_eq!(relayed.port(), port6 + 1);

    let mut again = Client::rest(4002, "alice", valid_expiry());
    let resp = allocate_with_token(&mut h, &mut again, &token);
    assert_eq!(resp.error_code(), Some(508));
}

#[test]
fn a_reserved_port_is_claimed_on_the_address_that_reserved_it() {
    // With several relay addresses per family the binder takes turns; the RTCP half of an
    // EVEN-PORT pair must still land beside its RTP half.
    let mut h = harness(Options::default());
    let mut rtp = Client::rest(4000, "alice", valid_expiry());
    let resp = allocate_even(&mut h, &mut rtp);
    let token: [u8; 8] = resp.reservation_token();
    let mut rtcp = Client::rest(4001, "alice", valid_expiry());
    let resp = allocate_with_token(&mut h, &mut rtcp, &token);
    assert!(resp.error_code().is_none());
    assert_eq!(
        h.binder.requests,
        [
            RelayAt::Family(Family::V4),
            RelayAt::Ip("192.0.2.10".parse().unwrap())
        ]
    );
}

#[test]
fn unclaimed_reservations_return_their_port() {
    let (mut h, mut rtp) = harness_and_alice_with(Options {
        ports: (50000, 50001),
        ..Options::default()
    });
    allocate_even(&mut h, &mut rtp);
    let mut other = Client::rest(4001, "bob", valid_expiry());
    assert_eq!(
        h.allocate(&mut other).error_code(),
        Some(508),
        "50001 is reserved"
    );
    h.advance(40);
    let resp = h.allocate(&mut other);
    assert_eq!(resp.xor_addr(attr::XOR_RELAYED_ADDRESS).port(), 50001);
}

#[test]
fn external_ip_is_advertised() {
    let settings = Settings {
        external_ips: vec![ExternalMapping {
            public: "198.51.100.77".parse().unwrap(),
            private: Some("192.0.2.10".parse().unwrap()),
        }],
        ..Settings::default()
    };
    let (mut h, mut c) = harness_and_alice_with(Options {
        settings,
        ..Options::default()
    });
    let resp = h.allocate(&mut c);
    let relayed = resp.xor_addr(attr::XOR_RELAYED_ADDRESS);
    assert_eq!(relayed.ip(), "198.51.100.77".parse::<IpAddr>().unwrap());
}
