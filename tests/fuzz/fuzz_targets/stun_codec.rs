//! The STUN reader and writer: any datagram either parses or is refused without a panic, and
//! what parses can be written back attribute by attribute into a message that parses the same.
#![no_main]

use ferroturn::proto::channel_data::{self, MAX_CHANNEL, MAX_CHANNEL_RFC5766};
use ferroturn::proto::stun::{attr, integrity, Message, MessageWriter};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // ChannelData shares the first-byte space with STUN on the wire; both readers see it all.
    // Both channel ranges: RFC 8656's and, with rfc5766-channel-numbers, RFC 5766's.
    for max in [MAX_CHANNEL, MAX_CHANNEL_RFC5766] {
        if let Some((channel, payload)) = channel_data::parse(data, max) {
            assert!(channel_data::is_valid_channel(channel, max));
            assert!(payload.len() + 4 <= data.len() && data.len() - payload.len() - 4 <= 3);
        }
    }
    let Ok(msg) = Message::parse(data) else {
        return;
    };
    assert_eq!(msg.raw().len(), data.len());
    let Ok(attrs) = msg.attributes() else {
        return;
    };
    assert!(attrs.unknown().len() <= ferroturn::proto::stun::message::MAX_UNKNOWN);
    let peers: Vec<_> = attrs.peer_addresses().collect();
    assert_eq!(peers.len(), attrs.peer_count());
    if let Some(offset) = attrs.integrity_offset {
        assert!(offset + 24 <= data.len());
        // Both outcomes are fine; neither may panic.
        let _ = integrity::verify_integrity(data, offset, b"key");
    }

    // Write the understood attributes back and read them again.
    let mut buf = [0u8; 1500];
    let Ok(mut w) = MessageWriter::new(&mut buf, msg.method, msg.class, msg.tid) else {
        return;
    };
    let mut ok = true;
    for (typ, value) in [
        (attr::USERNAME, attrs.username),
        (attr::REALM, attrs.realm),
        (attr::NONCE, attrs.nonce),
        (attr::DATA, attrs.data),
    ] {
        if let Some(v) = value {
            ok &= w.attr(typ, v).is_ok();
        }
    }
    if let Some(l) = attrs.lifetime {
        ok &= w.attr_u32(attr::LIFETIME, l).is_ok();
    }
    for addr in peers.iter().flatten() {
        ok &= w.xor_address(attr::XOR_PEER_ADDRESS, addr).is_ok();
    }
    ok &= w.fingerprint().is_ok();
    if !ok {
        return;
    }
    let n = w.finish();
    let again = Message::parse(&buf[..n]).expect("written message parses");
    assert_eq!(
        (again.method, again.class, again.tid),
        (msg.method, msg.class, msg.tid)
    );
    let a2 = again.attributes().expect("written attributes parse");
    assert!(a2.fingerprint);
    assert_eq!(a2.username, attrs.username);
    assert_eq!(a2.realm, attrs.realm);
    assert_eq!(a2.nonce, attrs.nonce);
    assert_eq!(a2.data, attrs.data);
    assert_eq!(a2.lifetime, attrs.lifetime);
    let p2: Vec<_> = a2.peer_addresses().flatten().collect();
    let p1: Vec<_> = peers.into_iter().flatten().collect();
    assert_eq!(p1, p2);
});
