//! Long-term and REST credentials: challenges, nonces, usernames, realms, replays, no-auth.

use super::*;

#[test]
fn allocate_challenges_then_succeeds_with_rest_credentials() {
    let (mut h, mut c) = harness_and_alice();
    let challenge = h.first_challenge(&mut c);
    assert!(challenge.attr(attr::NONCE).is_some());
    assert!(challenge.attr(attr::MESSAGE_INTEGRITY).is_none());

    let resp = h.allocate(&mut c);
    assert_eq!(
        (resp.method, resp.class),
        (method::ALLOCATE, Class::Success)
    );
    let relayed = resp.xor_addr(attr::XOR_RELAYED_ADDRESS);
    assert_eq!(relayed.ip(), "192.0.2.10".parse::<IpAddr>().unwrap());
    assert!((50000..=50099).contains(&relayed.port()));
    assert_eq!(resp.xor_addr(attr::XOR_MAPPED_ADDRESS), c.flow.remote);
    assert_eq!(resp.lifetime(), 600);
    assert!(resp.attr(attr::MESSAGE_INTEGRITY).is_some());
    assert_eq!(h.server.allocation_count(), 1);
    h.assert_next_event_is_created();
}

#[test]
fn every_rest_username_form_and_static_users_authenticate() {
    let mut h = harness(Options::default());
    let forms = [
        format!("{}", valid_expiry()),
        format!("{}:bob", valid_expiry()),
        format!("bob:{}", valid_expiry()),
    ];
    for (i, username) in forms.iter().enumerate() {
        let mut c = Client {
            flow: flow(5000 + i as u16),
            username: username.clone(),
            password: rest_password(SECRET.as_bytes(), username),
            nonce: None,
            next_tid: 1,
        };
        assert_eq!(h.allocate(&mut c).class, Class::Success, "{username}");
    }
    let mut alice = Client::static_user(6000);
    assert_eq!(h.allocate(&mut alice).class, Class::Success);
}

#[test]
fn wrong_password_and_expired_username_get_401() {
    let (mut h, mut c) = harness_and_alice();
    c.password = "not-the-password".into();
    assert_eq!(h.allocate(&mut c).error_code(), Some(401));

    let mut expired = Client::rest(4001, "alice", UNIX_START - 1);
    assert_eq!(h.allocate(&mut expired).error_code(), Some(401));
    assert_eq!(h.server.allocation_count(), 0);
    assert_eq!(h.server.stats().auth_bad_credentials.get(), 1);
    assert_eq!(h.server.stats().auth_expired.get(), 1);
}

#[test]
fn stale_nonce_gets_438_and_a_fresh_nonce() {
    let mut h = harness_tuned(|s| s.stale_nonce_secs = 60);
    let mut c = h.allocated_alice();
    let old_nonce = c.nonce.clone().unwrap();
    h.advance(61);
    let tid = c.tid();
    let req = c.request(method::REFRESH, tid, |_| {});
    let resp = h.reply(c.flow, &req).unwrap();
    assert_eq!(resp.error_code(), Some(438));
    assert_ne!(resp.attr(attr::NONCE).unwrap(), &old_nonce[..]);
    // The helper retries with the new nonce.
    let resp = h.call(&mut c, method::REFRESH, |_| {});
    assert_eq!(resp.class, Class::Success);
}

#[test]
fn no_auth_mode_needs_no_credentials() {
    let mut h = no_auth_harness();
    let f = flow(4000);
    let mut buf = [0u8; 64];
    let mut w = MessageWriter::new(&mut buf, method::ALLOCATE, Class::Request, [7; 12]).unwrap();
    w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap();
    let n = w.finish();
    let resp = h.reply(f, &buf[..n]).unwrap();
    assert_eq!(resp.class, Class::Success);
    assert!(resp.attr(attr::MESSAGE_INTEGRITY).is_none());
}

#[test]
fn usernames_over_513_bytes_are_refused_on_every_transport() {
    for transport in [Transport::Udp, Transport::Tcp, Transport::Tls] {
        for no_auth in [false, true] {
            let (mut h, mut c) = harness_and_alice_with(Options {
                no_auth,
                ..Options::default()
            });
            if !no_auth {
                challenge(&mut h, &mut c);
            } else {
                c.nonce = Some(b"unused".to_vec());
            }
            let long = format!("{}:{}", valid_expiry(), "u".repeat(10_000));
            let req = signed_request_with(
                &mut c,
                method::ALLOCATE,
                long.as_bytes(),
                Some(REALM.as_bytes()),
                |w| w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap(),
            );
            let now = h.now;
            let action =
                h.server
                    .handle_client(now, c.flow, transport, &req, &mut h.out, &mut h.binder);
            let ClientAction::Reply(n) = action else {
                panic!("expected a reply, got {action:?}");
            };
            let msg = Message::parse(&h.out[..n]).unwrap();
            let resp = Response {
                raw: h.out[..n].to_vec(),
                class: msg.class,
                method: msg.method,
                tid: msg.tid,
            };
            let code = resp.error_code();
            assert_eq!(code, Some(400), "{transport:?} no_auth={no_auth}");
            assert_eq!(h.server.allocation_count(), 0);
        }
    }
    // 513 bytes is still a username.
    let mut h = harness(Options::default());
    let user = format!("{}:{}", valid_expiry(), "u".repeat(513 - 11));
    assert_eq!(user.len(), 513);
    let mut c = Client {
        flow: flow(4001),
        password: rest_password(SECRET.as_bytes(), &user),
        username: user,
        nonce: None,
        next_tid: 1,
    };
    assert_eq!(h.allocate(&mut c).class, Class::Success);
}

#[test]
fn a_wrong_or_missing_realm_is_refused() {
    let (mut h, mut c) = harness_and_alice();
    challenge(&mut h, &mut c);
    let username = c.username.clone();
    for realm in [Some(&b"other.realm"[..]), Some(&b""[..])] {
        let req = signed_request_with(&mut c, method::ALLOCATE, username.as_bytes(), realm, |w| {
            w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap()
        });
        let resp = h.reply(c.flow, &req).unwrap();
        assert_eq!(resp.error_code(), Some(401), "{realm:?}");
        assert_eq!(resp.attr(attr::REALM), Some(REALM.as_bytes()));
    }
    let req = signed_request_with(&mut c, method::ALLOCATE, username.as_bytes(), None, |w| {
        w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap()
    });
    assert_eq!(h.reply(c.flow, &req).unwrap().error_code(), Some(400));
    assert_eq!(h.server.allocation_count(), 0);
    assert_eq!(h.allocate(&mut c).class, Class::Success);
}

#[test]
fn a_signed_allocate_replayed_from_another_port_or_ip_is_refused() {
    let (mut h, mut victim) = harness_and_alice_with(Options {
        user_quota: 2,
        ..Options::default()
    });
    challenge(&mut h, &mut victim);
    let tid = victim.tid();
    let signed = victim.request(method::ALLOCATE, tid, |w| {
        w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap()
    });
    assert_eq!(h.reply(victim.flow, &signed).unwrap().class, Class::Success);
    // The same bytes from other 5-tuples within the nonce lifetime.
    let other_port = flow(4001);
    let mut other_ip = flow(4000);
    other_ip.remote.set_ip("203.0.113.8".parse().unwrap());
    let mut other_socket = flow(4000);
    other_socket.socket = SocketId::Listener(1);
    for f in [other_port, other_ip, other_socket] {
        let resp = h.reply(f, &signed).unwrap();
        assert_eq!(resp.error_code(), Some(438), "{f:?}");
        assert!(resp.attr(attr::NONCE).is_some());
    }
    assert_eq!(h.server.allocation_count(), 1);
    assert_eq!(h.server.stats().auth_stale_nonce.get(), 3);
}
