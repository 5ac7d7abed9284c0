//! The server's randomness comes from its own seeded generator: one seed, one run.

use super::*;

/// Allocates with EVEN-PORT (R bit set) and returns the relayed port and the
/// RESERVATION-TOKEN of the odd port held for later.
fn reserve_pair(h: &mut Harness) -> (u16, [u8; 8]) {
    let mut c = Client::rest(4000, "alice", valid_expiry());
    let resp = h.allocate_and(&mut c, |w| {
        w.attr(attr::EVEN_PORT, &[0x80]).unwrap();
    });
    let port = resp.xor_addr(attr::XOR_RELAYED_ADDRESS).port();
    let token = resp.reservation_token();
    (port, token)
}

fn seeded(seed: u64) -> Harness {
    harness(Options {
        seed,
        ..Default::default()
    })
}

#[test]
fn one_seed_gives_the_same_ports_and_reservation_tokens() {
    let a = reserve_pair(&mut seeded(7));
    let b = reserve_pair(&mut seeded(7));
    assert_eq!(a, b);
}

#[test]
fn another_seed_gives_another_reservation_token() {
    let (_, a) = reserve_pair(&mut seeded(7));
    let (_, b) = reserve_pair(&mut seeded(8));
    assert_ne!(a, b);
}
