//! STUN codec: parsing an authenticated Allocate request, writing a signed success response.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use ferroturn::proto::auth::long_term::long_term_key;
use ferroturn::proto::stun::{attr, method, Class, Message, MessageWriter};

fn allocate_request(buf: &mut [u8], key: &[u8; 16]) -> usize {
    let mut w = MessageWriter::new(buf, method::ALLOCATE, Class::Request, [7; 12]).unwrap();
    w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap();
    w.attr_u32(attr::LIFETIME, 600).unwrap();
    w.attr(attr::DONT_FRAGMENT, &[]).unwrap();
    w.attr(attr::USERNAME, b"1893456000:participant42").unwrap();
    w.attr(attr::REALM, b"meet.example.org").unwrap();
    w.attr(attr::NONCE, b"0123456789abcdef0123456789abcdef01234567")
        .unwrap();
    w.attr(attr::SOFTWARE, b"libjingle webrtc").unwrap();
    w.integrity(key).unwrap();
    w.fingerprint().unwrap();
    w.finish()
}

fn codec(c: &mut Criterion) {
    let key = long_term_key("1893456000:participant42", "meet.example.org", "pw");
    let mut req = [0u8; 512];
    let n = allocate_request(&mut req, &key);
    let req = &req[..n];
    c.bench_function("parse allocate request (7 attributes + MI + FP)", |b| {
        b.iter(|| {
            let m = Message::parse(black_box(req)).unwrap();
            let a = m.attributes().unwrap();
            black_box((a.username, a.integrity_offset, a.lifetime))
        })
    });
    let relay = "192.0.2.10:50000".parse().unwrap();
    let mapped = "203.0.113.7:40000".parse().unwrap();
    let mut out = [0u8; 512];
    c.bench_function("write allocate success (MI + FP)", |b| {
        b.iter(|| {
            let mut w =
                MessageWriter::new(&mut out, method::ALLOCATE, Class::Success, [7; 12]).unwrap();
            w.xor_address(attr::XOR_RELAYED_ADDRESS, black_box(&relay))
                .unwrap();
            w.xor_address(attr::XOR_MAPPED_ADDRESS, &mapped).unwrap();
            w.attr_u32(attr::LIFETIME, 600).unwrap();
            w.attr(attr::SOFTWARE, b"ferroturn/0.1.0").unwrap();
            w.integrity(black_box(&key)).unwrap();
            w.fingerprint().unwrap();
            black_box(w.finish())
        })
    });
}

criterion_group!(benches, codec);
criterion_main!(benches);
