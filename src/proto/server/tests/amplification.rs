//! What unauthenticated sources can draw: amplification bounds, reason phrases, the challenge rate limit.

use super::*;

#[test]
fn worst_unauthenticated_amplification_per_message_type_is_bounded() {
    let mut h = harness(Options::default());
    let v4 = flow(4000);
    let v6 = Flow {
        socket: SocketId::Listener(0),
        remote: "[2001:db8::7]:4000".parse().unwrap(),
    };
    // A live allocation on a third flow, whose 5-tuple an attacker might spoof.
    let mut live = Client::rest(4100, "alice", valid_expiry());
    h.allocate(&mut live);
    let peer: SocketAddr = public_peer();
    type Fill = fn(&mut MessageWriter<'_>, SocketAddr);
    let variants: [(&str, Fill); 7] = [
        ("bare", |_, _| {}),
        ("fingerprint", |w, _| w.fingerprint().unwrap()),
        ("transport", |w, _| {
            w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap()
        }),
        ("transport+fingerprint", |w, _| {
            w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap();
            w.fingerprint().unwrap()
        }),
        ("peer", |w, p| {
            w.xor_address(attr::XOR_PEER_ADDRESS, &p).unwrap()
        }),
        ("unknown required attribute", |w, _| {
            w.attr(0x7ABC, &[]).unwrap()
        }),
        ("software", |w, _| w.attr(attr::SOFTWARE, b"abcd").unwrap()),
    ];
    let methods = [
        ("Binding", method::BINDING),
        ("Allocate", method::ALLOCATE),
        ("Refresh", method::REFRESH),
        ("CreatePermission", method::CREATE_PERMISSION),
        ("ChannelBind", method::CHANNEL_BIND),
        ("other", 0x00AB),
    ];
    let mut worst: HashMap<&str, (f64, String)> = HashMap::new();
    let mut tid = 0u32;
    for (name, m) in methods {
        for f in [v4, v6, live.flow] {
            for (variant, fill) in &variants {
                tid += 1;
                let mut id = [7u8; 12];
                id[..4].copy_from_slice(&tid.to_be_bytes());
                let mut buf = [0u8; 256];
                let mut w = MessageWriter::new(&mut buf, m, Class::Request, id).unwrap();
                fill(&mut w, peer);
                let n = w.finish();
                let req = buf[..n].to_vec();
                let Some(resp) = h.reply(f, &req) else {
                    continue;
                };
                let ratio = resp.raw.len() as f64 / req.len() as f64;
                let what = format!(
                    "{variant} from {} ({} -> {} bytes, code {:?})",
                    f.remote,
                    req.len(),
                    resp.raw.len(),
                    resp.error_code()
                );
                let entry = worst.entry(name).or_insert((0.0, String::new()));
                if ratio > entry.0 {
                    *entry = (ratio, what);
                }
            }
        }
    }
    // Nothing above happened to touch the live allocation.
    assert!(h.server.has_allocation(live.flow));
    for (name, bound) in MAX_RATIO {
        let (ratio, what) = worst.get(name).cloned().expect("every type was answered");
        println!("{name:17} worst {ratio:.2}x  bound {bound:.2}x  {what}");
        assert!(ratio <= bound, "{name}: {ratio:.2}x > {bound}x: {what}");
    }
    // The first answer of an ordinary Allocate stays at coturn's 68 bytes, and carries no
    // SOFTWARE and no reason phrase; with the SHA-256 offer it grows by the cookie and
    // PASSWORD-ALGORITHMS.
    let mut c = Client::rest(4200, "bob", valid_expiry());
    let resp = h.first_challenge(&mut c);
    assert_eq!(resp.raw.len(), 68);
    assert!(resp.attr(attr::SOFTWARE).is_none());
    assert!(resp.attr(attr::PASSWORD_ALGORITHMS).is_none());
    assert_eq!(resp.attr(attr::ERROR_CODE).map(<[u8]>::len), Some(4));
    let mut h = sha256_offered();
    let mut c = Client::rest(4200, "bob", valid_expiry());
    let resp = h.first_challenge(&mut c);
    assert_eq!(resp.raw.len(), 96);
}

#[test]
fn include_reason_string_puts_the_phrase_back() {
    let mut h = harness_tuned(|s| s.include_reason = true);
    let mut buf = [0u8; 64];
    let w = MessageWriter::new(&mut buf, method::REFRESH, Class::Request, [5; 12]).unwrap();
    let n = w.finish();
    let resp = h.reply(flow(1), &buf[..n]).unwrap();
    assert_eq!(resp.error_code(), Some(437));
    assert_eq!(
        resp.attr(attr::ERROR_CODE).map(|v| &v[4..]),
        Some(&b"Allocation Mismatch"[..])
    );
}

#[test]
fn an_unauthenticated_flood_from_10000_ports_is_rate_limited_and_costs_no_state() {
    let mut h = harness_tuned(|s| s.unauthorized_rps = 20);
    // The canary: an established session from another address, relaying through a channel.
    let mut canary = Client::rest(4000, "alice", valid_expiry());
    canary.flow.remote.set_ip("198.51.100.200".parse().unwrap());
    assert_eq!(h.allocate(&mut canary).class, Class::Success);
    let peer = public_peer();
    assert_eq!(
        h.channel_bind(&mut canary, 0x4000, peer).class,
        Class::Success
    );
    let (relay, _) = h.server.allocations().next().unwrap();
    let before = (h.server.allocation_count(), h.server.timer_entries());
    let answered_before = h.server.stats().auth_challenges.get();
    let frame = [0x40, 0x00, 0x00, 0x02, b'h', b'i'];
    let mut relayed = 0;
    // 10,000 Allocates from 10,000 ports of one address within one second of virtual time.
    for port in 0..10_000u16 {
        let mut tid = [1u8; 12];
        tid[..2].copy_from_slice(&port.to_be_bytes());
        let mut buf = [0u8; 64];
        let mut w = MessageWriter::new(&mut buf, method::ALLOCATE, Class::Request, tid).unwrap();
        w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap();
        let n = w.finish();
        let attacker = Flow {
            socket: SocketId::Listener(0),
            remote: SocketAddr::new("203.0.113.66".parse().unwrap(), 10_000 + port),
        };
        h.send_raw(attacker, &buf[..n]);
        h.now += Duration::from_micros(100);
        if port % 100 == 0 {
            let now = h.now;
            h.server.handle_timeout(now, &mut h.binder);
            if matches!(h.send_raw(canary.flow, &frame), ClientAction::Relay { .. })
                && h.peer_packet(relay.index() as u32, peer, b"ok").is_some()
            {
                relayed += 1;
            }
        }
    }
    assert_eq!(relayed, 100, "the canary relayed both ways throughout");
    assert_eq!(
        (h.server.allocation_count(), h.server.timer_entries()),
        before
    );
    let answered = h.server.stats().auth_challenges.get() - answered_before;
    let limited = h.server.stats().challenges_ratelimited.get();
    // A burst of 20 plus 20 per second for the one second the flood lasted.
    assert!((20..=41).contains(&answered), "{answered} answered");
    assert_eq!(answered + limited, 10_000);
    // Another source still gets its challenge, and the flood's source does again later.
    let mut bob = Client::rest(5000, "bob", valid_expiry());
    assert_eq!(h.allocate(&mut bob).class, Class::Success);
    h.advance(2);
    let mut late = Client::rest(6000, "carol", valid_expiry());
    late.flow.remote.set_ip("203.0.113.66".parse().unwrap());
    assert_eq!(h.allocate(&mut late).class, Class::Success);
}
