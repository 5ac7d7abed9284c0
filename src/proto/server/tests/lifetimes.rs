//! Lifetimes in virtual time: expiry, Refresh, strict-expiry, bounded timer table.

use super::*;

#[test]
fn allocations_expire_and_refresh_extends_or_deletes() {
    let mut h = harness(Options::default());
    let mut c = Client::rest(4000, "alice", valid_expiry());
    h.allocate(&mut c);
    h.server.poll_event();
    h.advance(500);
    assert_eq!(h.server.allocation_count(), 1);
    let resp = h.call(&mut c, method::REFRESH, |w| {
        w.attr_u32(attr::LIFETIME, 100_000).unwrap()
    });
    assert_eq!(resp.lifetime(), 3600, "capped by max-allocate-lifetime");
    h.advance(3599);
    assert_eq!(h.server.allocation_count(), 1);
    h.advance(1);
    assert_eq!(h.server.allocation_count(), 0);
    assert_eq!(h.binder.closed, vec![RelayId::new(0)]);
    assert!(matches!(
        h.server.poll_event(),
        Some(Event::AllocationEnded {
            reason: EndReason::Expired,
            ..
        })
    ));
    assert_eq!(h.server.shared.ports.in_use(), 0);

    // The first credential has expired by now (4100 s in); use a longer one.
    let mut d = Client::rest(4001, "alice", UNIX_START + 86_400);
    assert_eq!(h.allocate(&mut d).class, Class::Success);
    let resp = h.call(&mut d, method::REFRESH, |w| {
        w.attr_u32(attr::LIFETIME, 0).unwrap()
    });
    assert_eq!((resp.class, resp.lifetime()), (Class::Success, 0));
    assert_eq!(h.server.allocation_count(), 0);
    assert_eq!(
        h.call(&mut d, method::REFRESH, |_| {}).error_code(),
        Some(437)
    );
}

#[test]
fn refresh_past_credential_expiry_depends_on_strict_expiry() {
    for strict in [false, true] {
        let mut h = harness(Options {
            strict_expiry: strict,
            ..Options::default()
        });
        let mut c = Client::rest(4000, "alice", UNIX_START + 100);
        assert_eq!(h.allocate(&mut c).class, Class::Success);
        h.advance(200);
        let resp = h.call(&mut c, method::REFRESH, |_| {});
        if strict {
            assert_eq!(resp.error_code(), Some(401));
            assert_eq!(
                h.create_permission(&mut c, public_peer()).error_code(),
                Some(401)
            );
        } else {
            assert_eq!(resp.class, Class::Success);
        }
    }
}

#[test]
fn refreshing_in_a_loop_keeps_one_timer_entry_per_allocation() {
    // Without credentials the 100,000 round trips need no HMAC; the expiry path is the same.
    let mut h = harness(Options {
        no_auth: true,
        ..Options::default()
    });
    let mut a = Client::rest(4000, "alice", valid_expiry());
    let mut b = Client::rest(4001, "bob", valid_expiry());
    assert_eq!(h.allocate(&mut a).class, Class::Success);
    assert_eq!(h.allocate(&mut b).class, Class::Success);
    for i in 0..100_000u32 {
        let resp = h.call(&mut a, method::REFRESH, |w| {
            w.attr_u32(attr::LIFETIME, 600 + i % 7).unwrap()
        });
        assert_eq!(resp.class, Class::Success);
        assert!(h.server.timer_entries() <= h.server.allocation_count());
    }
    assert_eq!(h.server.timer_entries(), 2);
    // Allocate/delete cycles on one slot leave nothing behind either.
    for _ in 0..1_000 {
        let resp = h.call(&mut b, method::REFRESH, |w| {
            w.attr_u32(attr::LIFETIME, 0).unwrap()
        });
        assert_eq!(resp.lifetime(), 0);
        assert_eq!(h.allocate(&mut b).class, Class::Success);
    }
    assert_eq!(h.server.timer_entries(), h.server.allocation_count());
    // The moved deadlines still end the allocations on time: b's at 600 s, a's last Refresh
    // asked for 604 s.
    h.advance(601);
    assert_eq!(h.server.allocation_count(), 1);
    assert!(h.server.has_allocation(a.flow));
    h.advance(2);
    assert_eq!(h.server.allocation_count(), 1);
    h.advance(1);
    assert_eq!(h.server.allocation_count(), 0);
    assert_eq!(h.server.timer_entries(), 0);
}
