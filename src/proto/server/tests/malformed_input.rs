//! Malformed and random input: dropped and counted, never a panic, live sessions unharmed.

use super::*;

#[test]
fn malformed_input_is_dropped_without_harming_a_live_session() {
    let mut h = harness(Options::default());
    let mut c = Client::rest(4000, "alice", valid_expiry());
    h.allocate(&mut c);
    h.channel_bind(&mut c, 0x4000, public_peer());
    let stranger = flow(9999);
    let mut rng = 0x1234_5678_u64;
    for len in 0..300usize {
        let junk: Vec<u8> = (0..len)
            .map(|_| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng as u8
            })
            .collect();
        assert!(
            !matches!(h.send_raw(stranger, &junk), ClientAction::Relay { .. }),
            "junk must never be relayed"
        );
        // Junk on the live flow must not be relayed unless it happens to be valid ChannelData.
        let _ = h.send_raw(c.flow, &junk);
    }
    // Truncated header, overlong ChannelData, wrong FINGERPRINT.
    assert_eq!(
        h.send_raw(stranger, &[0, 1, 0, 0, 0x21, 0x12]),
        ClientAction::None
    );
    assert_eq!(
        h.send_raw(c.flow, &[0x40, 0, 0, 200, 1, 2]),
        ClientAction::None
    );
    let mut buf = [0u8; 64];
    let mut w = MessageWriter::new(&mut buf, method::BINDING, Class::Request, [5; 12]).unwrap();
    w.fingerprint().unwrap();
    let n = w.finish();
    buf[n - 1] ^= 0xFF;
    assert_eq!(h.send_raw(stranger, &buf[..n]), ClientAction::None);
    // A request whose attributes overrun gets 400.
    let mut w = MessageWriter::new(&mut buf, method::ALLOCATE, Class::Request, [6; 12]).unwrap();
    w.attr(attr::SOFTWARE, b"abcd").unwrap();
    let n = w.finish();
    buf[22..24].copy_from_slice(&100u16.to_be_bytes());
    assert_eq!(
        h.reply(stranger, &buf[..n]).unwrap().error_code(),
        Some(400)
    );

    assert!(h.server.stats().dropped_malformed.packets.get() > 0);
    let frame = [0x40, 0x00, 0x00, 0x01, 7];
    assert!(matches!(
        h.send_raw(c.flow, &frame),
        ClientAction::Relay { .. }
    ));
}

/// Structured garbage: well-framed STUN messages with random methods, classes and attributes
/// (some valid, most not), ChannelData with random channels and lengths, and peer datagrams on
/// random relays, from several flows with and without allocations. Nothing may panic, and a
/// live session must still relay afterwards.
#[test]
fn random_structured_input_never_panics() {
    let mut h = harness(Options::default());
    let mut live = Client::rest(4000, "alice", valid_expiry());
    h.allocate(&mut live);
    h.channel_bind(&mut live, 0x4000, public_peer());
    let mut rng = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let attr_types = [
        attr::USERNAME,
        attr::REALM,
        attr::NONCE,
        attr::MESSAGE_INTEGRITY,
        attr::LIFETIME,
        attr::REQUESTED_TRANSPORT,
        attr::REQUESTED_ADDRESS_FAMILY,
        attr::EVEN_PORT,
        attr::RESERVATION_TOKEN,
        attr::DONT_FRAGMENT,
        attr::CHANNEL_NUMBER,
        attr::XOR_PEER_ADDRESS,
        attr::DATA,
        attr::FINGERPRINT,
        attr::SOFTWARE,
        0x7777,
        0xC0DE,
    ];
    let mut buf = vec![0u8; 1500];
    for round in 0..20_000u32 {
        let flow = if round % 3 == 0 {
            live.flow
        } else {
            flow(5000 + (next() % 8) as u16)
        };
        let kind = next() % 4;
        let data: Vec<u8> = if kind < 3 {
            let methods = [
                method::BINDING,
                method::ALLOCATE,
                method::REFRESH,
                method::SEND,
                method::DATA,
                method::CREATE_PERMISSION,
                method::CHANNEL_BIND,
                0x0FF,
            ];
            let classes = [
                Class::Request,
                Class::Indication,
                Class::Success,
                Class::Error,
            ];
            let m = methods[(next() % methods.len() as u64) as usize];
            let c = classes[(next() % 4) as usize];
            let mut w = MessageWriter::new(&mut buf, m, c, [(round % 251) as u8; 12]).unwrap();
            for _ in 0..(next() % 6) {
                let t = attr_types[(next() % attr_types.len() as u64) as usize];
                let len = (next() % 40) as usize;
                let fill = next() as u8;
                if w.attr_with(t, len, |o| o.fill(fill)).is_err() {
                    break;
                }
            }
            let n = w.finish();
            let mut v = buf[..n].to_vec();
            if kind == 2 && n > 20 {
                // Corrupt one byte past the header.
                let at = 20 + (next() as usize % (n - 20));
                v[at] ^= next() as u8 | 1;
            }
            v
        } else {
            let mut v = vec![0x40 | (next() % 0x40) as u8, next() as u8];
            let len = (next() % 300) as u16;
            v.extend(len.to_be_bytes());
            v.extend(std::iter::repeat_n(7u8, (next() % 310) as usize));
            v
        };
        let _ = h.send_raw(flow, &data);
        let _ = h.peer_packet((next() % 4) as u32, public_peer(), &data);
        if round % 1000 == 0 {
            h.advance(1);
        }
    }
    let stats = h.server.stats();
    assert!(
        stats.dropped_malformed.packets.get() > 1000,
        "corrupted input was seen"
    );
    assert!(stats.error_responses.get() > 1000, "requests were answered");
    assert!(stats.binding_requests.get() > 100);
    let frame = [0x40, 0x00, 0x00, 0x02, 1, 2];
    assert!(matches!(
        h.send_raw(live.flow, &frame),
        ClientAction::Relay { .. }
    ));
}
