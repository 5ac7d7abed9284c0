//! Configuration swaps, revocation and draining (with alternate servers).

use super::*;

#[test]
fn draining_refuses_new_allocations_and_keeps_old_ones() {
    let (mut h, mut c) = alice_allocated();
    h.server.set_draining(true);
    let mut d = Client::rest(4001, "alice", valid_expiry());
    assert_eq!(h.allocate(&mut d).error_code(), Some(508));
    assert_eq!(
        h.call(&mut c, method::REFRESH, |_| {}).class,
        Class::Success
    );

    let mut h = harness_tuned(|s| s.alternate_servers = vec!["198.51.100.9:3478".parse().unwrap()]);
    h.server.set_draining(true);
    let mut e = Client::rest(4002, "alice", valid_expiry());
    let resp = h.allocate(&mut e);
    assert_eq!(resp.error_code(), Some(300));
    assert!(resp.attr(attr::ALTERNATE_SERVER).is_some());
}

#[test]
fn set_config_swaps_secrets_without_touching_live_allocations() {
    let mut h = harness(Options::default());
    let mut live = Client::rest(4000, "alice", valid_expiry());
    assert_eq!(h.allocate(&mut live).class, Class::Success);
    h.channel_bind(&mut live, 0x4000, public_peer());
    let now = h.now;
    h.server
        .set_config(config_with(&["east"], Settings::default()), now);

    // The old secret no longer authenticates new requests...
    let mut old = Client::rest(4001, "bob", valid_expiry());
    assert_eq!(h.allocate(&mut old).error_code(), Some(401));
    // ...the new one does...
    let username = format!("{}:carol", valid_expiry());
    let mut new = Client {
        flow: flow(4002),
        password: rest_password(b"east", &username),
        username,
        nonce: None,
        next_tid: 1,
    };
    assert_eq!(h.allocate(&mut new).class, Class::Success);
    // ...and the live allocation keeps relaying.
    let frame = [0x40, 0x00, 0x00, 0x01, 9];
    assert!(matches!(
        h.send_raw(live.flow, &frame),
        ClientAction::Relay { .. }
    ));
    assert!(h.peer_packet(0, public_peer(), b"x").is_some());
}

#[test]
fn revoking_a_user_or_secret_ends_sessions_and_refuses_new_ones() {
    let mut h = harness(Options::default());
    let mut alice = Client::rest(4000, "alice", valid_expiry());
    let mut bob = Client::rest(4001, "bob", valid_expiry());
    h.allocate(&mut alice);
    h.allocate(&mut bob);
    let now = h.now;
    let ended = h
        .server
        .end_allocations_where(now, &mut h.binder, |a| &*a.user_id == "alice");
    assert_eq!(ended, 1);
    let mut revoked = config_with(&[SECRET], Settings::default());
    Arc::get_mut(&mut revoked)
        .unwrap()
        .revoked_users
        .insert("alice".into());
    h.server.set_config(revoked, now);
    let mut again = Client::rest(4002, "alice", valid_expiry());
    assert_eq!(h.allocate(&mut again).error_code(), Some(401));
    assert_eq!(h.server.stats().auth_revoked.get(), 1);
    assert_eq!(h.server.allocation_count(), 1, "bob is untouched");

    let id = crate::auth::secret_id(SECRET.as_bytes());
    let ended = h
        .server
        .end_allocations_where(now, &mut h.binder, |a| a.secret_id == Some(id));
    assert_eq!(ended, 1);
    assert_eq!(h.server.allocation_count(), 0);
    h.assert_next_event_is_created();
}

#[test]
fn draining_redirects_each_transport_to_its_own_alternate_server() {
    let udp_alt: SocketAddr = "198.51.100.1:3478".parse().unwrap();
    let tls_alt: SocketAddr = "198.51.100.3:5349".parse().unwrap();
    let any_alt: SocketAddr = "198.51.100.9:3478".parse().unwrap();
    let settings = Settings {
        alternate_servers: vec![any_alt],
        transport_alternate_servers: [vec![udp_alt], Vec::new(), vec![tls_alt]],
        ..Settings::default()
    };
    assert_eq!(settings.alternate_for(Transport::Udp), Some(udp_alt));
    assert_eq!(
        settings.alternate_for(Transport::Tcp),
        Some(any_alt),
        "falls back"
    );
    assert_eq!(settings.alternate_for(Transport::Tls), Some(tls_alt));
    let mut h = harness_with(settings);
    h.server.set_draining(true);
    let mut c = Client::rest(4002, "alice", valid_expiry());
    let resp = h.allocate(&mut c);
    assert_eq!(resp.error_code(), Some(300));
    let alt = resp.attr(attr::ALTERNATE_SERVER).unwrap();
    assert_eq!(u16::from_be_bytes([alt[2], alt[3]]), udp_alt.port());
    assert_eq!(&alt[4..8], &[198, 51, 100, 1]);
}
