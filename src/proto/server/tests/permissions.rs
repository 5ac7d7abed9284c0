//! Peer policy and CreatePermission: forbidden peers, operator lists, permission counts.

use super::*;

#[test]
fn forbidden_peers_get_403_and_are_never_reached() {
    let mut h = harness(Options::default());
    let mut c = Client::rest(4000, "alice", valid_expiry());
    h.allocate(&mut c);
    for peer in ["10.1.2.3:1", "127.0.0.1:1", "169.254.1.1:1", "100.64.0.1:1"] {
        let peer: SocketAddr = peer.parse().unwrap();
        assert_eq!(
            h.create_permission(&mut c, peer).error_code(),
            Some(403),
            "{peer}"
        );
        assert_eq!(
            h.channel_bind(&mut c, 0x4000, peer).error_code(),
            Some(403),
            "{peer}"
        );
    }
    // One bad peer among good ones refuses the whole request.
    let resp = h.call(&mut c, method::CREATE_PERMISSION, |w| {
        w.xor_address(attr::XOR_PEER_ADDRESS, &public_peer())
            .unwrap();
        w.xor_address(attr::XOR_PEER_ADDRESS, &"192.168.1.1:9".parse().unwrap())
            .unwrap();
    });
    assert_eq!(resp.error_code(), Some(403));
    assert!(
        h.peer_packet(0, public_peer(), b"x").is_none(),
        "no permission was installed"
    );
    assert!(h.server.stats().forbidden_peer.get() >= 9);
}

#[test]
fn operator_lists_beat_built_in_rules_and_own_listeners_are_refused() {
    let range = |s: &str| s.parse().unwrap();
    let settings = Settings {
        server_addresses: ServerAddresses {
            listeners: vec!["127.0.0.1:3478".parse().unwrap()],
            local_ips: vec!["192.0.2.10".parse().unwrap()],
        },
        ..Settings::default()
    };
    let mut h = harness(Options {
        settings,
        peers: PeerPolicySettings {
            allowed: vec![range("10.9.9.9")],
            denied: vec![range("127.0.0.99"), range("10.0.0.0/8")],
            allow_loopback: true,
        },
        ..Options::default()
    });
    let mut c = Client::rest(4000, "alice", valid_expiry());
    h.allocate(&mut c);
    // denied-peer-ip beats allow-loopback-peers; the server's own listener is no peer.
    for peer in ["127.0.0.99:5000", "127.0.0.1:3478", "10.1.1.1:5000"] {
        let peer: SocketAddr = peer.parse().unwrap();
        let perm = h.create_permission(&mut c, peer);
        assert_eq!(perm.error_code(), Some(403), "{peer}");
        let bind = h.channel_bind(&mut c, 0x4001, peer);
        assert_eq!(bind.error_code(), Some(403), "{peer}");
    }
    // allow-loopback-peers still opens the rest of loopback; allowed-peer-ip beats
    // denied-peer-ip.
    for peer in ["127.0.0.98:5000", "127.0.0.1:3479", "10.9.9.9:5000"] {
        let peer: SocketAddr = peer.parse().unwrap();
        let perm = h.create_permission(&mut c, peer);
        assert_eq!(perm.class, Class::Success, "{peer}");
    }
    assert_eq!(h.server.stats().forbidden_peer.get(), 6);
}

#[test]
fn create_permission_takes_any_count_up_to_the_cap_and_508_past_it() {
    use crate::allocation::MAX_PERMISSIONS;
    let mut h = harness(Options::default());
    let mut c = Client::rest(4000, "alice", valid_expiry());
    h.allocate(&mut c);
    // uclient -G sends 24 peers in one request: every one gets a permission.
    let first: Vec<SocketAddr> = (0..24).map(numbered_peer).collect();
    assert_eq!(
        create_permissions(&mut h, &mut c, &first).class,
        Class::Success
    );
    for p in &first {
        assert!(h.peer_packet(0, *p, b"x").is_some(), "{p} permitted");
    }
    // More than the cap in one request is a capacity refusal, and installs nothing.
    let too_many: Vec<SocketAddr> = (100..101 + MAX_PERMISSIONS).map(numbered_peer).collect();
    assert_eq!(
        create_permissions(&mut h, &mut c, &too_many).error_code(),
        Some(508)
    );
    assert!(h.peer_packet(0, too_many[0], b"x").is_none());
    // Filling the allocation up to the cap works (old peers refreshed, duplicates counted once).
    let mut fill: Vec<SocketAddr> = (0..MAX_PERMISSIONS - 1).map(numbered_peer).collect();
    fill.push(numbered_peer(3));
    assert_eq!(
        create_permissions(&mut h, &mut c, &fill).class,
        Class::Success
    );
    let last = numbered_peer(MAX_PERMISSIONS - 1);
    assert_eq!(
        create_permissions(&mut h, &mut c, &[last, last]).class,
        Class::Success
    );
    assert!(h.peer_packet(0, last, b"x").is_some());
    // ...one more peer is refused, and a mixed request installs none of its peers.
    let over = numbered_peer(MAX_PERMISSIONS);
    assert_eq!(
        create_permissions(&mut h, &mut c, &[numbered_peer(0), over]).error_code(),
        Some(508)
    );
    assert!(h.peer_packet(0, over, b"x").is_none());
    // Once permissions lapse their room is free again.
    h.advance(301);
    assert_eq!(
        create_permissions(&mut h, &mut c, &[over]).class,
        Class::Success
    );
    // One forbidden or malformed peer among many fails the whole request.
    let mut bad = first.clone();
    bad.push("10.0.0.1:5000".parse().unwrap());
    assert_eq!(
        create_permissions(&mut h, &mut c, &bad).error_code(),
        Some(403)
    );
    assert!(
        h.peer_packet(0, first[0], b"x").is_none(),
        "lapsed, not renewed"
    );
}

#[test]
fn peer_addresses_after_message_integrity_are_ignored() {
    let mut h = harness(Options::default());
    let mut c = Client::rest(4000, "alice", valid_expiry());
    h.allocate(&mut c);
    let tid = c.tid();
    let mut req = c.request(method::CREATE_PERMISSION, tid, |w| {
        w.xor_address(attr::XOR_PEER_ADDRESS, &numbered_peer(1))
            .unwrap()
    });
    // Append an XOR-PEER-ADDRESS after MESSAGE-INTEGRITY: not covered, so not acted on.
    let extra = numbered_peer(2);
    let mut tail = vec![0u8; 64];
    let mut w =
        MessageWriter::new(&mut tail, method::CREATE_PERMISSION, Class::Request, tid).unwrap();
    w.xor_address(attr::XOR_PEER_ADDRESS, &extra).unwrap();
    let n = w.finish();
    req.extend_from_slice(&tail[20..n]);
    let len = (req.len() - 20) as u16;
    req[2..4].copy_from_slice(&len.to_be_bytes());
    assert_eq!(h.reply(c.flow, &req).unwrap().class, Class::Success);
    assert!(h.peer_packet(0, numbered_peer(1), b"x").is_some());
    assert!(h.peer_packet(0, extra, b"x").is_none());
}
