//! Relaying both ways: Send/Data indications, channels, stream padding, bandwidth limits, traffic counters, channel number space.

use super::*;

/// What a ChannelData frame with a 3-byte payload becomes when relay 0 sends it to `peer`.
fn three_bytes_relayed_to(peer: SocketAddr) -> ClientAction {
    ClientAction::Relay {
        relay: RelayId::new(0),
        peer,
        start: 4,
        end: 7,
    }
}

#[test]
fn send_and_data_indications_follow_permissions_in_virtual_time() {
    let (mut h, mut c) = alice_allocated();
    let peer = public_peer();
    let send = |c: &mut Client| c.send_indication(peer, b"hello peer");
    let ind = send(&mut c);
    assert_eq!(
        h.send_raw(c.flow, &ind),
        ClientAction::None,
        "no permission yet"
    );
    assert!(h.peer_packet(0, peer, b"early").is_none());

    assert_eq!(h.create_permission(&mut c, peer).class, Class::Success);
    let ind = send(&mut c);
    match h.send_raw(c.flow, &ind) {
        ClientAction::Relay {
            relay,
            peer: to,
            start,
            end,
        } => {
            assert_eq!((relay, to), (RelayId::new(0), peer));
            assert_eq!(&ind[start..end], b"hello peer");
        }
        other => panic!("expected relay, got {other:?}"),
    }
    // Another port on the same peer IP is covered by the same permission.
    let other_port = SocketAddr::new(peer.ip(), 6000);
    let framed = h.peer_packet(0, other_port, b"hello client").unwrap();
    let msg = Message::parse(&framed).unwrap();
    assert_eq!((msg.method, msg.class), (method::DATA, Class::Indication));
    let attrs = msg.attributes().unwrap();
    assert_eq!(attrs.data, Some(&b"hello client"[..]));
    assert_eq!(attrs.peer_address().unwrap().unwrap(), other_port);

    h.advance(299);
    assert!(h.peer_packet(0, peer, b"still").is_some());
    h.advance(2);
    assert!(
        h.peer_packet(0, peer, b"late").is_none(),
        "permission lapsed at 300 s"
    );
    assert_eq!(h.send_raw(c.flow, &send(&mut c)), ClientAction::None);
}

#[test]
fn channels_relay_both_ways_follow_binding_rules_and_expire() {
    let (mut h, mut c) = alice_allocated();
    let peer = public_peer();
    let peer2: SocketAddr = "198.100.1.2:5000".parse().unwrap();
    assert_eq!(h.channel_bind(&mut c, 0x3FFF, peer).error_code(), Some(400));
    assert_eq!(h.channel_bind(&mut c, 0x8000, peer).error_code(), Some(400));
    let peer4: SocketAddr = "198.100.1.4:5000".parse().unwrap();
    for number in [0x5000, 0x7FFF] {
        assert_eq!(
            h.channel_bind(&mut c, number, peer4).error_code(),
            Some(400),
            "RFC 7983 space {number:#06x}"
        );
    }
    let no_peer = h.call(&mut c, method::CHANNEL_BIND, |w| {
        w.attr_u32(attr::CHANNEL_NUMBER, 0x4000 << 16).unwrap()
    });
    assert_eq!(no_peer.error_code(), Some(400));
    assert_eq!(h.channel_bind(&mut c, 0x4000, peer).class, Class::Success);
    assert_eq!(
        h.channel_bind(&mut c, 0x4000, peer).class,
        Class::Success,
        "refresh"
    );
    assert_eq!(
        h.channel_bind(&mut c, 0x4000, peer2).error_code(),
        Some(400)
    );
    assert_eq!(h.channel_bind(&mut c, 0x4001, peer).error_code(), Some(400));
    assert_eq!(h.channel_bind(&mut c, 0x4001, peer2).class, Class::Success);

    let frame = [0x40, 0x00, 0x00, 0x03, b'a', b'b', b'c'];
    assert_eq!(h.send_raw(c.flow, &frame), three_bytes_relayed_to(peer));
    let back = h.peer_packet(0, peer, b"xyz").unwrap();
    assert_eq!(back, [0x40, 0x00, 0x00, 0x03, b'x', b'y', b'z']);
    // An unbound channel number is dropped.
    assert_eq!(
        h.send_raw(c.flow, &[0x40, 0x05, 0, 1, 9]),
        ClientAction::None
    );

    // Keep the permission alive with CreatePermission but let the channel lapse.
    for _ in 0..2 {
        h.advance(250);
        assert_eq!(h.create_permission(&mut c, peer).class, Class::Success);
        assert_eq!(
            h.call(&mut c, method::REFRESH, |_| {}).class,
            Class::Success
        );
    }
    h.advance(101);
    assert_eq!(
        h.send_raw(c.flow, &frame),
        ClientAction::None,
        "channel lapsed at 600 s"
    );
    let back = h.peer_packet(0, peer, b"xyz").unwrap();
    assert_eq!(Message::parse(&back).unwrap().method, method::DATA);
    // After expiry the number can go to another peer.
    let peer3: SocketAddr = "198.100.1.3:5000".parse().unwrap();
    assert_eq!(h.channel_bind(&mut c, 0x4000, peer3).class, Class::Success);
}

#[test]
fn stream_channel_data_is_padded() {
    let (mut h, mut c) = harness_and_alice();
    let req = c.allocate_request();
    let now = h.now;
    let action =
        h.server
            .handle_client(now, c.flow, Transport::Tcp, &req, &mut h.out, &mut h.binder);
    let ClientAction::Reply(n) = action else {
        panic!()
    };
    let challenge = Message::parse(&h.out[..n]).unwrap().attributes().unwrap();
    c.nonce = challenge.nonce.map(|n| n.to_vec());
    let req = c.allocate_request();
    let action =
        h.server
            .handle_client(now, c.flow, Transport::Tcp, &req, &mut h.out, &mut h.binder);
    assert!(matches!(action, ClientAction::Reply(_)));
    h.channel_bind(&mut c, 0x4000, public_peer());
    let framed = h.peer_packet(0, public_peer(), b"abcde").unwrap();
    assert_eq!(framed.len(), 12);
    assert_eq!(&framed[..4], &[0x40, 0x00, 0x00, 0x05]);
    assert_eq!(&framed[9..], &[0, 0, 0]);
    h.server.handle_flow_closed(now, c.flow, &mut h.binder);
    assert_eq!(h.server.allocation_count(), 0);
}

#[test]
fn peer_data_for_unknown_relay_is_dropped() {
    let mut h = harness(Options::default());
    assert!(h.peer_packet(7, public_peer(), b"x").is_none());
    let _ = h.start;
}

#[test]
fn max_bps_limits_each_direction_in_virtual_time() {
    let mut h = harness_tuned(|s| s.max_bps = 10_000);
    let mut c = h.allocated_alice();
    h.channel_bind(&mut c, 0x4000, public_peer());
    let mut frame = vec![0x40, 0x00, 0x03, 0xE8];
    frame.extend([7u8; 1000]);
    let (mut to_peer, mut to_client) = (0, 0);
    // Offer 50 kB/s each way for 10 virtual seconds.
    for _ in 0..500 {
        h.now += Duration::from_millis(20);
        if matches!(h.send_raw(c.flow, &frame), ClientAction::Relay { .. }) {
            to_peer += 1000;
        }
        if h.peer_packet(0, public_peer(), &[1u8; 1000]).is_some() {
            to_client += 1000;
        }
    }
    for got in [to_peer, to_client] {
        let rate = got as f64 / 10.0;
        assert!((9_000.0..=11_000.0).contains(&rate), "rate {rate} B/s");
    }
    assert_eq!(
        h.server.stats().dropped_bandwidth.packets.get(),
        1000 - (to_peer + to_client) / 1000
    );
}

#[test]
fn traffic_counters_are_exact() {
    let (mut h, mut c) = alice_allocated();
    h.channel_bind(&mut c, 0x4000, public_peer());
    for len in [1usize, 100, 1200] {
        let mut frame = vec![0x40, 0x00];
        frame.extend((len as u16).to_be_bytes());
        frame.extend(vec![0u8; len]);
        assert!(matches!(
            h.send_raw(c.flow, &frame),
            ClientAction::Relay { .. }
        ));
        assert!(h.peer_packet(0, public_peer(), &vec![0u8; len]).is_some());
    }
    let s = h.server.stats();
    assert_eq!(
        (s.to_peers.packets.get(), s.to_peers.bytes.get()),
        (3, 1301)
    );
    assert_eq!(
        (s.from_clients.packets.get(), s.from_clients.bytes.get()),
        (3, 1301)
    );
    assert_eq!(
        (s.to_clients.packets.get(), s.to_clients.bytes.get()),
        (3, 1301)
    );
    assert_eq!(s.active_allocations(Transport::Udp), 1);
}

#[test]
fn rfc7983_channel_space_is_refused_unless_rfc5766_channel_numbers() {
    let peer = public_peer();
    let frame = [0x50, 0x00, 0x00, 0x03, b'a', b'b', b'c'];
    // Default (RFC 8656 §12): 0x5000-0x7FFF get 400, and ChannelData there is dropped as
    // malformed even with a permission for the peer.
    let (mut h, mut c) = alice_allocated();
    assert_eq!(h.create_permission(&mut c, peer).class, Class::Success);
    assert_eq!(h.channel_bind(&mut c, 0x5000, peer).error_code(), Some(400));
    assert_eq!(h.channel_bind(&mut c, 0x4FFF, peer).class, Class::Success);
    let before = h.server.stats().dropped_malformed.packets.get();
    assert_eq!(h.send_raw(c.flow, &frame), ClientAction::None);
    assert_eq!(h.server.stats().dropped_malformed.packets.get(), before + 1);

    // With rfc5766-channel-numbers the old range binds and relays both ways.
    let mut h = harness_tuned(|s| s.rfc5766_channel_numbers = true);
    let mut c = h.allocated_alice();
    assert_eq!(h.channel_bind(&mut c, 0x5000, peer).class, Class::Success);
    let peer2: SocketAddr = "198.100.1.2:5000".parse().unwrap();
    assert_eq!(h.channel_bind(&mut c, 0x7FFF, peer2).class, Class::Success);
    assert_eq!(
        h.channel_bind(&mut c, 0x8000, peer2).error_code(),
        Some(400)
    );
    assert_eq!(h.send_raw(c.flow, &frame), three_bytes_relayed_to(peer));
    let back = h.peer_packet(0, peer2, b"xyz").unwrap();
    assert_eq!(back, [0x7F, 0xFF, 0x00, 0x03, b'x', b'y', b'z']);
}
