//! RFC 8489 §9.2 password algorithms and MESSAGE-INTEGRITY-SHA256 (§14.6).

use super::*;

/// `sha256-integrity` on, and alice (REST credentials) holding the nonce of a first challenge.
fn alice_challenged() -> (Harness, Client) {
    let mut h = sha256_offered();
    let mut c = Client::rest(4000, "alice", valid_expiry());
    challenge(&mut h, &mut c);
    (h, c)
}

/// Whether `resp` carries a MESSAGE-INTEGRITY-SHA256 that verifies with `key`.
fn sha256_verifies(resp: &Response, key: &[u8]) -> bool {
    let at = attr_offset(&resp.raw, attr::MESSAGE_INTEGRITY_SHA256).expect("MI-SHA256");
    verify_integrity_sha256(&resp.raw, at, key)
}

#[test]
fn challenges_offer_password_algorithms_behind_the_nonce_cookie() {
    let mut h = sha256_offered();
    let mut c = Client::rest(4000, "alice", valid_expiry());
    let resp = h.first_challenge(&mut c);
    assert_eq!(resp.attr(attr::PASSWORD_ALGORITHMS), Some(&OFFERED[..]));
    let nonce = resp.attr(attr::NONCE).unwrap();
    assert!(
        nonce.starts_with(NONCE_COOKIE),
        "{:?}",
        String::from_utf8_lossy(nonce)
    );
    // A nonce without the cookie is not one of ours: 438 with a fresh one.
    c.nonce = Some(nonce[NONCE_COOKIE.len()..].to_vec());
    let (md5, _) = keys_of(&c);
    let stale = allocate_with(&mut h, &mut c, Signing::md5(&md5));
    assert_eq!(stale.error_code(), Some(438));
    assert_eq!(stale.attr(attr::PASSWORD_ALGORITHMS), Some(&OFFERED[..]));
}

#[test]
fn without_sha256_integrity_challenges_offer_nothing_and_md5_keys_sign() {
    let (mut h, mut c) = harness_and_alice();
    let resp = h.first_challenge(&mut c);
    assert!(resp.attr(attr::PASSWORD_ALGORITHMS).is_none());
    assert!(!resp.attr(attr::NONCE).unwrap().starts_with(NONCE_COOKIE));
    challenge(&mut h, &mut c);
    let (md5, sha) = keys_of(&c);
    // Nothing was offered, so a SHA-256 choice is not honoured: the key stays MD5's.
    let s = Signing::sha256_negotiated(&sha);
    assert_eq!(allocate_with(&mut h, &mut c, s).error_code(), Some(401));
    let s = Signing::md5(&md5);
    assert_eq!(allocate_with(&mut h, &mut c, s).class, Class::Success);
}

#[test]
fn sha256_negotiated_allocation_is_answered_with_message_integrity_sha256() {
    let (mut h, mut c) = alice_challenged();
    let (_, sha) = keys_of(&c);
    let s = Signing::sha256_negotiated(&sha);
    let resp = allocate_with(&mut h, &mut c, s);
    assert_eq!(resp.class, Class::Success, "{:?}", resp.error_code());
    assert!(sha256_verifies(&resp, &sha));
    assert!(resp.attr(attr::MESSAGE_INTEGRITY).is_none());
    // Later requests on the allocation are answered the same way, and SHA-256 with the MD5
    // key does not verify.
    let req = signed_with(&mut c, method::REFRESH, s, |_| {});
    let resp = h.reply(c.flow, &req).unwrap();
    assert_eq!(resp.class, Class::Success);
    assert!(sha256_verifies(&resp, &sha));
    let (md5, _) = keys_of(&c);
    let wrong_key = Signing {
        mi256: Some((&md5, 32)),
        ..s
    };
    let req = signed_with(&mut c, method::REFRESH, wrong_key, |_| {});
    assert_eq!(h.reply(c.flow, &req).unwrap().error_code(), Some(401));
}

#[test]
fn message_integrity_sha256_alone_uses_the_md5_key_and_may_be_truncated() {
    let (mut h, mut c) = alice_challenged();
    let (md5, _) = keys_of(&c);
    // §14.6: MI-SHA256 without MI is fine; without PASSWORD-ALGORITHM the key is MD5's.
    let s = Signing {
        mi256: Some((&md5, 16)),
        ..Default::default()
    };
    let resp = allocate_with(&mut h, &mut c, s);
    assert_eq!(resp.class, Class::Success, "{:?}", resp.error_code());
    assert!(resp.attr(attr::MESSAGE_INTEGRITY_SHA256).is_some());
    // A length that is not 16..=32 in steps of 4 is malformed.
    let mut d = Client::rest(4001, "alice", valid_expiry());
    challenge(&mut h, &mut d);
    for bad in [12, 18] {
        let s = Signing {
            mi256: Some((&md5, bad)),
            ..Default::default()
        };
        assert_eq!(
            allocate_with(&mut h, &mut d, s).error_code(),
            Some(400),
            "{bad} bytes"
        );
    }
}

#[test]
fn message_integrity_rules_of_rfc_8489_14_6() {
    let (mut h, mut c) = alice_challenged();
    let (md5, _) = keys_of(&c);
    let garbage = [0x55u8; 16];
    // A valid MI followed by an invalid MI-SHA256 is refused: MI-SHA256 is the one checked.
    let s = Signing {
        mi: Some(&md5),
        mi256: Some((&garbage, 32)),
        ..Default::default()
    };
    assert_eq!(allocate_with(&mut h, &mut c, s).error_code(), Some(401));
    // A valid MI-SHA256 followed by a garbage MI: the MI is ignored.
    let s = Signing {
        mi256: Some((&md5, 32)),
        mi_after: true,
        ..Default::default()
    };
    let resp = allocate_with(&mut h, &mut c, s);
    assert_eq!(resp.class, Class::Success, "{:?}", resp.error_code());
    // Both valid: accepted, answered with MI-SHA256.
    let mut d = Client::rest(4001, "alice", valid_expiry());
    challenge(&mut h, &mut d);
    let (md5, _) = keys_of(&d);
    let s = Signing {
        mi: Some(&md5),
        mi256: Some((&md5, 32)),
        ..Default::default()
    };
    let resp = allocate_with(&mut h, &mut d, s);
    assert_eq!(resp.class, Class::Success);
    assert!(resp.attr(attr::MESSAGE_INTEGRITY_SHA256).is_some());
    // SHA-1 clients (every browser) keep MI alone, answered with MI.
    let mut e = Client::rest(4002, "alice", valid_expiry());
    let resp = h.allocate(&mut e);
    assert_eq!(resp.class, Class::Success);
    assert!(resp.attr(attr::MESSAGE_INTEGRITY).is_some());
    assert!(resp.attr(attr::MESSAGE_INTEGRITY_SHA256).is_none());
}

#[test]
fn bid_down_attempts_get_400() {
    let (mut h, mut c) = alice_challenged();
    let (md5, sha) = keys_of(&c);
    let md5_only = [0x00, 0x01, 0x00, 0x00];
    let cases: [(&str, Signing<'_>); 5] = [
        (
            "offer stripped to MD5",
            Signing {
                algorithm: Some(&PICK_MD5),
                algorithms: Some(&md5_only),
                mi: Some(&md5),
                ..Default::default()
            },
        ),
        (
            "PASSWORD-ALGORITHM alone",
            Signing {
                algorithm: Some(&PICK_SHA256),
                mi256: Some((&sha, 32)),
                ..Default::default()
            },
        ),
        (
            "PASSWORD-ALGORITHMS alone",
            Signing {
                algorithms: Some(&OFFERED),
                mi: Some(&md5),
                ..Default::default()
            },
        ),
        (
            "algorithm not offered",
            Signing {
                algorithm: Some(&[0x00, 0x03, 0x00, 0x00]),
                algorithms: Some(&OFFERED),
                mi: Some(&md5),
                ..Default::default()
            },
        ),
        (
            "parameters on MD5",
            Signing {
                algorithm: Some(&[0x00, 0x01, 0x00, 0x04, 1, 2, 3, 4]),
                algorithms: Some(&OFFERED),
                mi: Some(&md5),
                ..Default::default()
            },
        ),
    ];
    for (what, s) in cases {
        assert_eq!(
            allocate_with(&mut h, &mut c, s).error_code(),
            Some(400),
            "{what}"
        );
    }
    assert_eq!(h.server.allocation_count(), 0);
    // Choosing MD5 with the full offer echoed is fine.
    let s = Signing {
        algorithm: Some(&PICK_MD5),
        algorithms: Some(&OFFERED),
        mi: Some(&md5),
        ..Default::default()
    };
    assert_eq!(allocate_with(&mut h, &mut c, s).class, Class::Success);
}

#[test]
fn static_users_get_sha256_only_with_a_password() {
    let mut h = sha256_offered();
    let mut c = Client::static_user(4000);
    challenge(&mut h, &mut c);
    let (_, sha) = keys_of(&c);
    let s = Signing::sha256_negotiated(&sha);
    assert_eq!(allocate_with(&mut h, &mut c, s).class, Class::Success);

    // A user configured by its MD5 key cannot use SHA-256.
    let auth = Authenticator::new(AuthSettings {
        realm: REALM.into(),
        users: vec![(
            "alice".into(),
            UserSecret::Key(long_term_key("alice", REALM, "wonderland")),
        )],
        ..AuthSettings::default()
    });
    let config = Arc::new(CoreConfig {
        auth,
        peers: PeerPolicy::new(&PeerPolicySettings::default()),
        settings: Settings::default(),
        revoked_users: Default::default(),
        revoked_secrets: Default::default(),
    });
    let now = h.now;
    h.server.set_config(config, now);
    let mut d = Client::static_user(4001);
    challenge(&mut h, &mut d);
    assert_eq!(allocate_with(&mut h, &mut d, s).error_code(), Some(401));
    let (md5, _) = keys_of(&d);
    let md5_way = Signing::md5(&md5);
    assert_eq!(allocate_with(&mut h, &mut d, md5_way).class, Class::Success);
}

#[test]
fn rest_api_hmac_sha256_passwords() {
    use crate::auth::rest::rest_password_with;
    let (mut h, mut sha1_client) = harness_and_alice_with(Options {
        rest_hmac: RestHmac::Sha256,
        ..Options::default()
    });
    let resp = h.allocate(&mut sha1_client);
    assert_eq!(
        resp.error_code(),
        Some(401),
        "a SHA-1 REST password is refused"
    );
    let mut c = Client::rest(4001, "alice", valid_expiry());
    c.password = rest_password_with(RestHmac::Sha256, SECRET.as_bytes(), &c.username);
    assert_eq!(h.allocate(&mut c).class, Class::Success);
}
