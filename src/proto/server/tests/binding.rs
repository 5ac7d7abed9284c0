//! Binding requests: the mapped address, unknown attributes, no amplification.

use super::*;

#[test]
fn binding_reports_the_client_address_without_amplifying() {
    let mut h = harness(Options::default());
    let f = flow(4000);
    let mut buf = [0u8; 64];
    let w = MessageWriter::new(&mut buf, method::BINDING, Class::Request, [3; 12]).unwrap();
    let n = w.finish();
    let resp = h.reply(f, &buf[..n]).unwrap();
    assert_eq!(resp.class, Class::Success);
    assert_eq!(resp.xor_addr(attr::XOR_MAPPED_ADDRESS), f.remote);
    assert!(
        resp.attr(attr::SOFTWARE).is_none(),
        "bare request gets no SOFTWARE"
    );
    assert!(resp.raw.len() <= 2 * n);

    // A request of ordinary size gets SOFTWARE, and FINGERPRINT because it carried one.
    let mut w = MessageWriter::new(&mut buf, method::BINDING, Class::Request, [4; 12]).unwrap();
    w.attr(attr::SOFTWARE, b"some client software").unwrap();
    w.fingerprint().unwrap();
    let n = w.finish();
    let resp = h.reply(f, &buf[..n]).unwrap();
    assert!(resp.attr(attr::SOFTWARE).is_some());
    assert!(resp.attr(attr::FINGERPRINT).is_some());
    assert_eq!(h.server.stats().binding_requests.get(), 2);
}

#[test]
fn binding_with_unknown_required_attribute_gets_420() {
    let mut h = harness(Options::default());
    let mut buf = [0u8; 64];
    let mut w = MessageWriter::new(&mut buf, method::BINDING, Class::Request, [3; 12]).unwrap();
    w.attr(0x7ABC, &[0; 4]).unwrap();
    let n = w.finish();
    let resp = h.reply(flow(1), &buf[..n]).unwrap();
    assert_eq!(resp.error_code(), Some(420));
    assert_eq!(resp.attr(attr::UNKNOWN_ATTRIBUTES), Some(&[0x7A, 0xBC][..]));
}
