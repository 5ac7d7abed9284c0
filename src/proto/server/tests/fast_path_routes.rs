//! Route announcements for a kernel fast path, in virtual time.

use super::*;

fn drain(h: &mut Harness) -> Vec<RouteChange> {
    std::iter::from_fn(|| h.server.poll_route()).collect()
}

fn installed_until(changes: &[RouteChange], channel: u16) -> Option<Instant> {
    changes.iter().rev().find_map(|c| match c {
        RouteChange::Install { route, until } if route.channel == channel => Some(*until),
        _ => None,
    })
}

fn installed_relay(changes: &[RouteChange], channel: u16) -> Option<RelayId> {
    changes.iter().find_map(|c| match c {
        RouteChange::Install { route, .. } if route.channel == channel => Some(route.relay),
        _ => None,
    })
}

fn closed(changes: &[RouteChange], relay: RelayId) -> bool {
    changes.contains(&RouteChange::RelayClosed(relay))
}

fn removed(changes: &[RouteChange], channel: u16) -> bool {
    changes
        .iter()
        .any(|c| matches!(c, RouteChange::Remove(r) if r.channel == channel))
}

/// A harness that announces routes, with alice's UDP allocation whose `family_attr`
/// (REQUESTED- or ADDITIONAL-ADDRESS-FAMILY) asks for IPv6.
fn routed_ipv6_allocation(family_attr: u16) -> (Harness, Client) {
    let mut h = harness(Options::default());
    h.server.enable_routes();
    let mut c = Client::rest(4000, "alice", valid_expiry());
    let resp = h.call(&mut c, method::ALLOCATE, |w| {
        w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap();
        w.attr_u32(family_attr, 2 << 24).unwrap();
    });
    assert_eq!(resp.class, Class::Success);
    (h, c)
}

#[test]
fn nothing_is_queued_unless_a_forwarder_asked() {
    let mut h = harness(Options::default());
    let mut c = Client::rest(4000, "alice", valid_expiry());
    h.allocate(&mut c);
    assert_eq!(
        h.channel_bind(&mut c, 0x4000, public_peer()).class,
        Class::Success
    );
    assert!(drain(&mut h).is_empty());
}

#[test]
fn channel_bind_installs_until_the_earliest_expiry_and_refreshes_move_it() {
    let mut h = harness(Options::default());
    h.server.enable_routes();
    let mut c = Client::rest(4000, "alice", valid_expiry());
    let lifetime = h.allocate(&mut c).lifetime();
    let relay_addr = h.binder.open[&RelayId::new(0)];
    let peer = public_peer();
    assert!(drain(&mut h).is_empty(), "an allocation alone has no route");
    assert_eq!(h.channel_bind(&mut c, 0x4000, peer).class, Class::Success);
    let changes = drain(&mut h);
    let permission = u64::from(h.server.config().settings.permission_lifetime);
    let expected = h.now + Duration::from_secs(permission.min(u64::from(lifetime)));
    assert_eq!(
        changes,
        [RouteChange::Install {
            route: ChannelRoute {
                relay: RelayId::new(0),
                client: c.flow,
                channel: 0x4000,
                peer,
                relay_addr,
            },
            until: expected,
        }]
    );

    // A CreatePermission for the peer's IP (another port) moves the deadline on.
    h.advance(100);
    let other_port = SocketAddr::new(peer.ip(), 6000);
    assert_eq!(
        h.create_permission(&mut c, other_port).class,
        Class::Success
    );
    let until = installed_until(&drain(&mut h), 0x4000).expect("re-announced");
    assert_eq!(
        until,
        (h.now + Duration::from_secs(permission))
            .min(h.start + Duration::from_secs(lifetime.into()))
    );
    // A permission for an unrelated peer announces nothing.
    let unrelated: SocketAddr = "198.100.1.9:5000".parse().unwrap();
    assert_eq!(h.create_permission(&mut c, unrelated).class, Class::Success);
    assert!(drain(&mut h).is_empty());

    // Refresh moves the allocation's expiry, and with it the route's.
    assert_eq!(
        h.call(&mut c, method::REFRESH, |_| {}).class,
        Class::Success
    );
    assert!(installed_until(&drain(&mut h), 0x4000).is_some());

    // Refresh 0 ends the allocation: the route goes at once.
    let resp = h.call(&mut c, method::REFRESH, |w| {
        w.attr_u32(attr::LIFETIME, 0).unwrap()
    });
    assert_eq!(resp.class, Class::Success);
    assert!(closed(&drain(&mut h), RelayId::new(0)));
}

#[test]
fn routes_go_when_allocations_expire_or_are_revoked() {
    let mut h = harness(Options::default());
    h.server.enable_routes();
    let mut a = Client::rest(4000, "alice", valid_expiry());
    let mut b = Client::rest(4001, "bob", valid_expiry());
    h.allocate(&mut a);
    h.allocate(&mut b);
    h.channel_bind(&mut a, 0x4000, public_peer());
    h.channel_bind(&mut b, 0x4001, public_peer());
    let installs = drain(&mut h);
    let (ra, rb) = (
        installed_relay(&installs, 0x4000).unwrap(),
        installed_relay(&installs, 0x4001).unwrap(),
    );
    assert_ne!(ra, rb);
    let now = h.now;
    h.server
        .end_allocations_where(now, &mut h.binder, |x| &*x.user_id == "bob");
    let changes = drain(&mut h);
    assert!(closed(&changes, rb) && !closed(&changes, ra), "{changes:?}");
    h.advance(3600);
    assert!(closed(&drain(&mut h), ra), "expiry withdraws too");
}

#[test]
fn bandwidth_limits_keep_channels_in_user_space() {
    let mut h = harness(Options::default());
    h.server.enable_routes();
    let mut c = Client::rest(4000, "alice", valid_expiry());
    h.allocate(&mut c);
    h.channel_bind(&mut c, 0x4000, public_peer());
    assert!(installed_until(&drain(&mut h), 0x4000).is_some());
    // A reload that sets max-bps withdraws the live route...
    let limited = Settings {
        max_bps: 10_000,
        ..Settings::default()
    };
    let now = h.now;
    h.server.set_config(config_with(&[SECRET], limited), now);
    let changes = drain(&mut h);
    assert!(removed(&changes, 0x4000) && installed_until(&changes, 0x4000).is_none());
    // ...a refresh under the limit does not bring it back...
    h.channel_bind(&mut c, 0x4000, public_peer());
    assert!(installed_until(&drain(&mut h), 0x4000).is_none());
    // ...and lifting the limit does.
    h.server
        .set_config(config_with(&[SECRET], Settings::default()), now);
    assert!(installed_until(&drain(&mut h), 0x4000).is_some());

    let capped = Settings {
        bps_capacity_per_shard: 1_000_000,
        ..Settings::default()
    };
    let mut h = harness(Options {
        settings: capped,
        ..Options::default()
    });
    h.server.enable_routes();
    let mut c = Client::rest(4000, "alice", valid_expiry());
    h.allocate(&mut c);
    h.channel_bind(&mut c, 0x4000, public_peer());
    assert!(
        installed_until(&drain(&mut h), 0x4000).is_none(),
        "bps-capacity"
    );
}

#[test]
fn a_family_change_between_client_and_relay_stays_in_user_space() {
    let (mut h, mut c) = routed_ipv6_allocation(attr::REQUESTED_ADDRESS_FAMILY);
    let peer6 = public_peer6();
    assert_eq!(h.channel_bind(&mut c, 0x4000, peer6).class, Class::Success);
    let changes = drain(&mut h);
    assert!(installed_until(&changes, 0x4000).is_none() && removed(&changes, 0x4000));
}

#[test]
fn a_dual_allocation_routes_each_channel_through_its_family_and_drops_a_half_alone() {
    let (mut h, mut c) = routed_ipv6_allocation(attr::ADDITIONAL_ADDRESS_FAMILY);
    let peer6 = public_peer6();
    assert_eq!(
        h.channel_bind(&mut c, 0x4000, public_peer()).class,
        Class::Success
    );
    assert_eq!(h.channel_bind(&mut c, 0x4001, peer6).class, Class::Success);
    let changes = drain(&mut h);
    // The IPv4 client's IPv4 channel goes through the IPv4 relay; the IPv6 one would need a
    // family translation, so it stays in user space.
    let v4 = installed_relay(&changes, 0x4000).expect("IPv4 channel installed");
    assert_eq!(v4, relay_of(AllocSlot::at(0), 0));
    assert!(installed_until(&changes, 0x4001).is_none() && removed(&changes, 0x4001));
    // Refresh 0 naming IPv6 closes that half only.
    let resp = h.call(&mut c, method::REFRESH, |w| {
        w.attr_u32(attr::LIFETIME, 0).unwrap();
        w.attr_u32(attr::REQUESTED_ADDRESS_FAMILY, 2 << 24).unwrap();
    });
    assert_eq!(resp.class, Class::Success);
    let changes = drain(&mut h);
    assert!(
        closed(&changes, relay_of(AllocSlot::at(0), 1)) && !closed(&changes, v4),
        "{changes:?}"
    );
}
