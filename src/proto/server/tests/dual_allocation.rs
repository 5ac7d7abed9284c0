//! Dual allocations (RFC 8656 §7.2 step 9, §7.3): ADDITIONAL-ADDRESS-FAMILY asks for an IPv4 and
//! an IPv6 relay in one allocation, driven in virtual time against the fake binder.

use super::*;

fn peer4() -> SocketAddr {
    public_peer()
}

/// The relay socket of the IPv6 half of the dual allocation whose first relay is `first`.
fn ipv6_relay(first: RelayId) -> RelayId {
    relay_of(slot_of(first).0, 1)
}

/// A relay id as the harness's `peer_packet` takes it.
fn num(relay: RelayId) -> u32 {
    relay.index() as u32
}

/// An Allocate asking for a dual allocation, plus whatever `extra` adds.
fn allocate_dual(
    h: &mut Harness,
    c: &mut Client,
    extra: impl Fn(&mut MessageWriter<'_>),
) -> Response {
    h.call(c, method::ALLOCATE, |w| {
        dual_attrs(w);
        extra(w);
    })
}

/// No allocation is left, and no relay socket or pool port is held for one.
fn assert_nothing_allocated(h: &Harness) {
    assert_eq!(h.server.allocation_count(), 0);
    assert_bookkeeping(h);
}

/// A UDP Allocate with ADDITIONAL-ADDRESS-FAMILY `family` (only 2, IPv6, is valid) and nothing else.
fn allocate_additional(h: &mut Harness, c: &mut Client, family: u32) -> Response {
    h.call(c, method::ALLOCATE, |w| {
        w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap();
        w.attr_u32(attr::ADDITIONAL_ADDRESS_FAMILY, family << 24)
            .unwrap();
    })
}

/// The attributes of a plain dual Allocate: UDP, and an IPv6 relay besides the IPv4 one.
fn dual_attrs(w: &mut MessageWriter<'_>) {
    w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap();
    w.attr_u32(attr::ADDITIONAL_ADDRESS_FAMILY, 2 << 24)
        .unwrap();
}

/// The client's last dual Allocate sent again with the same transaction id.
fn retransmit_dual(h: &mut Harness, c: &mut Client) -> Response {
    let tid = c.last_tid();
    let req = c.request(method::ALLOCATE, tid, dual_attrs);
    h.reply(c.flow, &req).expect("a response")
}

/// A default harness holding one dual allocation for alice, and its first relay.
fn dual_allocated() -> (Harness, Client, RelayId) {
    let (mut h, mut c) = harness_and_alice();
    allocate_dual(&mut h, &mut c, |_| {});
    let (first, _) = h.server.allocations().next().unwrap();
    (h, c, first)
}

/// Makes a dual Allocate for `c` and checks it was served with one relay only, the other family refused
/// with ADDRESS-ERROR-CODE `refused` (family, code): the relay's address.
fn half_served(h: &mut Harness, c: &mut Client, refused: (u8, u16)) -> SocketAddr {
    let resp = allocate_dual(h, c, |_| {});
    assert_eq!(resp.class, Class::Success);
    let addrs = relayed(&resp);
    assert_eq!(addrs.len(), 1, "{addrs:?}");
    assert_eq!(address_error(&resp), Some(refused));
    addrs[0]
}

/// A default harness without a relay address of the `missing` family, and alice, whose dual
/// Allocate got the other family's relay (returned) and 440 for this one.
fn served_without(missing: Family) -> (Harness, Client, SocketAddr) {
    let (mut h, mut c) = harness_and_alice();
    let (number, relay_ip) = match missing {
        Family::V4 => (1, &mut h.binder.relay_ip4),
        Family::V6 => (2, &mut h.binder.relay_ip6),
    };
    *relay_ip = None;
    let relay = half_served(&mut h, &mut c, (number, 440));
    (h, c, relay)
}

/// Every XOR-RELAYED-ADDRESS of a response, in order.
fn relayed(resp: &Response) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    let mut pos = 20;
    while pos + 4 <= resp.raw.len() {
        let t = u16::from_be_bytes([resp.raw[pos], resp.raw[pos + 1]]);
        let len = u16::from_be_bytes([resp.raw[pos + 2], resp.raw[pos + 3]]) as usize;
        if t == attr::XOR_RELAYED_ADDRESS {
            let value = &resp.raw[pos + 4..pos + 4 + len];
            out.push(xor_addr::decode(value, &resp.tid, t).unwrap());
        }
        pos += 4 + ((len + 3) & !3);
    }
    out
}

/// The ADDRESS-ERROR-CODE of a response: (family number, code).
fn address_error(resp: &Response) -> Option<(u8, u16)> {
    let value = resp.attr(attr::ADDRESS_ERROR_CODE)?;
    Some(super::super::super::stun::message::address_error_code(value).expect("well formed"))
}

/// The fake binder's open sockets match the core's relays, and nothing else is held.
fn assert_bookkeeping(h: &Harness) {
    let mut relays: Vec<(RelayId, SocketAddr)> = h
        .server
        .allocations()
        .flat_map(|(first, _)| h.server.relay_ids(first).collect::<Vec<_>>())
        .collect();
    relays.sort();
    let mut open: Vec<(RelayId, SocketAddr)> =
        h.binder.open.iter().map(|(k, v)| (*k, *v)).collect();
    open.sort();
    assert_eq!(relays, open, "core relays and open sockets agree");
    assert_eq!(
        h.server.shared.ports.in_use(),
        open.len(),
        "one pool port per open relay socket"
    );
    assert!(h.server.timer_entries() == h.server.allocation_count());
}

#[test]
fn a_dual_allocation_has_an_ipv4_and_an_ipv6_relay() {
    let (mut h, mut c) = harness_and_alice_with(Options {
        user_quota: 1,
        ..Options::default()
    });
    let resp = allocate_dual(&mut h, &mut c, |_| {});
    assert_eq!(resp.class, Class::Success);
    let addrs = relayed(&resp);
    assert_eq!(addrs.len(), 2, "two XOR-RELAYED-ADDRESS");
    assert!(addrs[0].is_ipv4() && addrs[1].is_ipv6());
    assert_eq!(address_error(&resp), None);
    assert!(resp.attr(attr::MESSAGE_INTEGRITY).is_some());
    assert_eq!(h.server.allocation_count(), 1);
    let (first, alloc) = h.server.allocations().next().unwrap();
    assert!(alloc.is_dual());
    assert_eq!(h.binder.open[&first], addrs[0]);
    assert_eq!(h.binder.open[&(ipv6_relay(first))], addrs[1]);
    assert_eq!(h.server.stats().dual_allocations.get(), 1);
    assert_eq!(h.server.stats().live_relays(0), 1);
    assert_eq!(h.server.stats().live_relays(1), 1);
    assert_bookkeeping(&h);

    // One allocation to the quota, whatever its relays: a second one is 486.
    let mut d = Client::rest(4001, "alice", valid_expiry());
    assert_eq!(h.allocate(&mut d).error_code(), Some(486));

    // A retransmitted Allocate is answered with both addresses again.
    let again = retransmit_dual(&mut h, &mut c);
    assert_eq!(relayed(&again), addrs);

    // Deleting it closes both sockets and frees both ports and the quota.
    let gone = h.call(&mut c, method::REFRESH, |w| {
        w.attr_u32(attr::LIFETIME, 0).unwrap()
    });
    assert_eq!(gone.lifetime(), 0);
    assert_eq!(h.server.allocation_count(), 0);
    assert_eq!(h.binder.closed.len(), 2);
    assert_bookkeeping(&h);
    assert_eq!(h.server.stats().live_relays(0), 0);
    assert_eq!(h.server.stats().live_relays(1), 0);
    assert_eq!(h.allocate(&mut d).class, Class::Success, "quota released");
}

#[test]
fn requested_and_additional_address_family_together_get_400() {
    let (mut h, mut c) = harness_and_alice();
    for family in [1u32, 2] {
        let resp = allocate_dual(&mut h, &mut c, |w| {
            w.attr_u32(attr::REQUESTED_ADDRESS_FAMILY, family << 24)
                .unwrap()
        });
        assert_eq!(resp.error_code(), Some(400));
    }
    assert_nothing_allocated(&h);
}

#[test]
fn additional_address_family_ipv4_gets_400() {
    let (mut h, mut c) = harness_and_alice();
    let resp = allocate_additional(&mut h, &mut c, 1);
    assert_eq!(resp.error_code(), Some(400));
    // A family number that is neither is not supported (440), as for REQUESTED-ADDRESS-FAMILY.
    let resp = allocate_additional(&mut h, &mut c, 3);
    assert_eq!(resp.error_code(), Some(440));
    assert_nothing_allocated(&h);
}

#[test]
fn even_port_with_the_reserve_bit_and_additional_address_family_gets_400() {
    let (mut h, mut c) = harness_and_alice();
    let resp = allocate_dual(&mut h, &mut c, |w| {
        w.attr(attr::EVEN_PORT, &[0x80]).unwrap()
    });
    assert_eq!(resp.error_code(), Some(400));
    assert!(h.server.shared.reservations.is_empty());
    assert_bookkeeping(&h);
    // Without the R bit both relays simply get even ports.
    let resp = allocate_dual(&mut h, &mut c, |w| w.attr(attr::EVEN_PORT, &[0]).unwrap());
    let addrs = relayed(&resp);
    assert_eq!(addrs.len(), 2);
    assert!(addrs.iter().all(|a| a.port() % 2 == 0), "{addrs:?}");
    assert_eq!(resp.attr(attr::RESERVATION_TOKEN), None);
    assert_bookkeeping(&h);
}

#[test]
fn reservation_token_and_additional_address_family_get_400() {
    let mut h = harness(Options::default());
    let mut rtp = Client::rest(4000, "alice", valid_expiry());
    let resp = h.call(&mut rtp, method::ALLOCATE, |w| {
        w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap();
        w.attr(attr::EVEN_PORT, &[0x80]).unwrap();
    });
    let token: [u8; 8] = resp
        .attr(attr::RESERVATION_TOKEN)
        .unwrap()
        .try_into()
        .unwrap();
    let mut rtcp = Client::rest(4001, "alice", valid_expiry());
    let resp = allocate_dual(&mut h, &mut rtcp, |w| {
        w.attr(attr::RESERVATION_TOKEN, &token).unwrap()
    });
    assert_eq!(resp.error_code(), Some(400));
    assert_eq!(h.server.allocation_count(), 1);
    // The refused request did not spend the token.
    let resp = h.call(&mut rtcp, method::ALLOCATE, |w| {
        w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap();
        w.attr(attr::RESERVATION_TOKEN, &token).unwrap();
    });
    assert_eq!(resp.class, Class::Success);
}

#[test]
fn without_an_ipv6_relay_address_the_ipv4_half_is_served_with_440() {
    let (mut h, mut c, relay) = served_without(Family::V6);
    assert!(relay.is_ipv4());
    assert_eq!(h.server.stats().dual_family_refusals[1].get(), 1);
    assert_eq!(h.server.stats().dual_allocations.get(), 0);
    assert_bookkeeping(&h);
    // The allocation lacks IPv6: an IPv6 peer is a family mismatch.
    assert_eq!(
        h.create_permission(&mut c, public_peer6()).error_code(),
        Some(443)
    );
    assert_eq!(h.create_permission(&mut c, peer4()).class, Class::Success);
    // A retransmission carries the same ADDRESS-ERROR-CODE.
    let mut d = Client::rest(4001, "alice", valid_expiry());
    allocate_dual(&mut h, &mut d, |_| {});
    assert_eq!(
        address_error(&retransmit_dual(&mut h, &mut d)),
        Some((2, 440))
    );
}

#[test]
fn without_an_ipv4_relay_address_the_ipv6_half_is_served_with_440() {
    let (mut h, mut c, relay) = served_without(Family::V4);
    assert!(relay.is_ipv6());
    // The IPv6 relay keeps its socket id: the allocation's second one.
    let (first, _) = h.server.allocations().next().unwrap();
    assert_eq!(h.binder.open[&(ipv6_relay(first))], relay);
    assert_bookkeeping(&h);
    assert_eq!(
        h.create_permission(&mut c, public_peer6()).class,
        Class::Success
    );
    assert_eq!(h.create_permission(&mut c, peer4()).error_code(), Some(443));

    // Neither family: 440.
    h.binder.relay_ip6 = None;
    let mut d = Client::rest(4001, "alice", valid_expiry());
    assert_eq!(
        allocate_dual(&mut h, &mut d, |_| {}).error_code(),
        Some(440)
    );
    assert_bookkeeping(&h);
}

#[test]
fn a_full_port_range_leaves_the_ipv6_half_out_with_508() {
    let (mut h, mut c) = harness_and_alice_with(Options {
        ports: (50000, 50000),
        ..Options::default()
    });
    let relay = half_served(&mut h, &mut c, (2, 508));
    assert_eq!(relay, "192.0.2.10:50000".parse().unwrap());
    assert_bookkeeping(&h);
    // No port for either family: the request fails with 508.
    let mut d = Client::rest(4001, "alice", valid_expiry());
    assert_eq!(
        allocate_dual(&mut h, &mut d, |_| {}).error_code(),
        Some(508)
    );
    assert_eq!(h.server.allocation_count(), 1);
    assert_bookkeeping(&h);
}

#[test]
fn permissions_channels_and_data_of_both_families_use_their_own_socket() {
    let (mut h, mut c, first) = dual_allocated();
    let relay6 = ipv6_relay(first);
    // One CreatePermission may carry peers of both families.
    let resp = h.call(&mut c, method::CREATE_PERMISSION, |w| {
        w.xor_address(attr::XOR_PEER_ADDRESS, &peer4()).unwrap();
        w.xor_address(attr::XOR_PEER_ADDRESS, &public_peer6())
            .unwrap();
    });
    assert_eq!(resp.class, Class::Success);

    // Send indications leave through the socket of the peer's family.
    for (peer, relay) in [(peer4(), first), (public_peer6(), relay6)] {
        let ind = c.send_indication(peer, b"to peer");
        match h.send_raw(c.flow, &ind) {
            ClientAction::Relay {
                relay: r,
                peer: to,
                start,
                end,
            } => {
                assert_eq!((r, to), (relay, peer));
                assert_eq!(&ind[start..end], b"to peer");
            }
            other => panic!("expected relay, got {other:?}"),
        }
        let framed = h.peer_packet(num(relay), peer, b"to client").unwrap();
        let attrs = Message::parse(&framed).unwrap().attributes().unwrap();
        assert_eq!(attrs.data, Some(&b"to client"[..]));
        assert_eq!(attrs.peer_address().unwrap().unwrap(), peer);
    }

    // Channels of both families, ChannelData both ways.
    let (ch4, ch6) = (0x4001u16, 0x4002u16);
    assert_eq!(h.channel_bind(&mut c, ch4, peer4()).class, Class::Success);
    assert_eq!(
        h.channel_bind(&mut c, ch6, public_peer6()).class,
        Class::Success
    );
    for (number, peer, relay) in [(ch4, peer4(), first), (ch6, public_peer6(), relay6)] {
        let mut frame = number.to_be_bytes().to_vec();
        frame.extend_from_slice(&4u16.to_be_bytes());
        frame.extend_from_slice(b"data");
        match h.send_raw(c.flow, &frame) {
            ClientAction::Relay {
                relay: r, peer: to, ..
            } => assert_eq!((r, to), (relay, peer)),
            other => panic!("expected relay, got {other:?}"),
        }
        let back = h.peer_packet(num(relay), peer, b"back").unwrap();
        assert_eq!(&back[..2], &number.to_be_bytes());
        assert_eq!(&back[4..], b"back");
    }
    let traffic = h.server.allocations().next().unwrap().1.traffic;
    assert_eq!(traffic.to_peer_packets, 4);
    assert_eq!(traffic.to_client_packets, 4);
}

#[test]
fn a_refresh_naming_a_family_refreshes_or_deletes_that_half_only() {
    let (mut h, mut c, first) = dual_allocated();
    let relay6 = ipv6_relay(first);
    assert_eq!(h.create_permission(&mut c, peer4()).class, Class::Success);
    assert_eq!(
        h.create_permission(&mut c, public_peer6()).class,
        Class::Success
    );
    assert_eq!(
        h.channel_bind(&mut c, 0x4002, public_peer6()).class,
        Class::Success
    );

    // Deleting the IPv6 half closes its socket and forgets its permissions and channels.
    let resp = h.call(&mut c, method::REFRESH, |w| {
        w.attr_u32(attr::LIFETIME, 0).unwrap();
        w.attr_u32(attr::REQUESTED_ADDRESS_FAMILY, 2 << 24).unwrap();
    });
    assert_eq!(resp.lifetime(), 0);
    assert_eq!(h.binder.closed, vec![relay6]);
    assert_eq!(h.server.allocation_count(), 1);
    assert_bookkeeping(&h);
    let alloc = h.server.allocations().next().unwrap().1;
    assert!(alloc.permissions.iter().all(|p| p.ip.is_ipv4()));
    assert!(alloc.channels.is_empty());
    assert!(h
        .peer_packet(num(relay6), public_peer6(), b"late")
        .is_none());
    assert!(h.peer_packet(num(first), peer4(), b"still").is_some());
    // The IPv6 half is gone: naming it, or an IPv6 peer, is a family mismatch.
    let resp = h.call(&mut c, method::REFRESH, |w| {
        w.attr_u32(attr::REQUESTED_ADDRESS_FAMILY, 2 << 24).unwrap();
    });
    assert_eq!(resp.error_code(), Some(443));
    assert_eq!(
        h.create_permission(&mut c, public_peer6()).error_code(),
        Some(443)
    );
    // Deleting the last half deletes the allocation.
    let resp = h.call(&mut c, method::REFRESH, |w| {
        w.attr_u32(attr::LIFETIME, 0).unwrap();
        w.attr_u32(attr::REQUESTED_ADDRESS_FAMILY, 1 << 24).unwrap();
    });
    assert_eq!(resp.lifetime(), 0);
    assert_nothing_allocated(&h);
}

#[test]
fn each_half_expires_on_its_own_lifetime_with_one_timer_entry() {
    let (mut h, mut c, first) = dual_allocated();
    h.advance(100);
    // Only the IPv4 half is refreshed; the IPv6 half keeps its 600 s from creation.
    let resp = h.call(&mut c, method::REFRESH, |w| {
        w.attr_u32(attr::LIFETIME, 1200).unwrap();
        w.attr_u32(attr::REQUESTED_ADDRESS_FAMILY, 1 << 24).unwrap();
    });
    assert_eq!(resp.lifetime(), 1200);
    assert_eq!(h.server.timer_entries(), 1);
    h.advance(499);
    assert_eq!(h.binder.open.len(), 2);
    h.advance(1);
    assert_eq!(h.binder.closed, vec![ipv6_relay(first)], "IPv6 half lapsed");
    assert_eq!(h.server.allocation_count(), 1);
    assert_bookkeeping(&h);
    // A Refresh without a family refreshes what is left.
    let resp = h.call(&mut c, method::REFRESH, |w| {
        w.attr_u32(attr::LIFETIME, 900).unwrap()
    });
    assert_eq!(resp.lifetime(), 900);
    h.advance(899);
    assert_eq!(h.server.allocation_count(), 1);
    h.advance(1);
    assert_eq!(h.server.allocation_count(), 0);
    assert_eq!(h.binder.closed, vec![ipv6_relay(first), first]);
    assert_bookkeeping(&h);
    let ended = std::iter::from_fn(|| h.server.poll_event())
        .filter(|e| {
            matches!(
                e,
                Event::AllocationEnded {
                    reason: EndReason::Expired,
                    ..
                }
            )
        })
        .count();
    assert_eq!(ended, 1, "one allocation ended once");
}

#[test]
fn the_created_event_names_both_relays() {
    let (mut h, mut c) = harness_and_alice();
    let addrs = relayed(&allocate_dual(&mut h, &mut c, |_| {}));
    let created = std::iter::from_fn(|| h.server.poll_event())
        .find_map(|e| match e {
            Event::AllocationCreated {
                relay, additional, ..
            } => Some((relay, additional)),
            _ => None,
        })
        .unwrap();
    assert_eq!(created, (addrs[0], Some((addrs[1], addrs[1]))));
}

#[test]
fn a_single_family_allocation_is_unchanged_by_the_dual_machinery() {
    let (mut h, mut c) = harness_and_alice();
    let resp = h.allocate(&mut c);
    assert_eq!(relayed(&resp).len(), 1);
    assert_eq!(address_error(&resp), None);
    assert_eq!(h.binder.open.len(), 1);
    assert!(h.binder.open.contains_key(&RelayId::new(0)));
    // REQUESTED-ADDRESS-FAMILY of its own family on Refresh is fine; the other is 443.
    let ok = h.call(&mut c, method::REFRESH, |w| {
        w.attr_u32(attr::REQUESTED_ADDRESS_FAMILY, 1 << 24).unwrap()
    });
    assert_eq!(ok.class, Class::Success);
    let mismatch = h.call(&mut c, method::REFRESH, |w| {
        w.attr_u32(attr::REQUESTED_ADDRESS_FAMILY, 2 << 24).unwrap()
    });
    assert_eq!(mismatch.error_code(), Some(443));
    let unknown = h.call(&mut c, method::REFRESH, |w| {
        w.attr_u32(attr::REQUESTED_ADDRESS_FAMILY, 3 << 24).unwrap()
    });
    assert_eq!(
        unknown.error_code(),
        Some(443),
        "no relay of an unknown family"
    );
    assert_bookkeeping(&h);
}

#[test]
fn coturn_4_6_clients_get_a_dual_allocation_at_the_draft_code_points() {
    // Debian's turnutils_uclient 4.6 sends ADDITIONAL-ADDRESS-FAMILY as 0x8032 (with EVEN-PORT
    // R=0) and reads ADDRESS-ERROR-CODE at 0x8033.
    let (mut h, mut c) = harness_and_alice();
    let legacy = |w: &mut MessageWriter<'_>| {
        w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap();
        w.attr(attr::EVEN_PORT, &[0]).unwrap();
        w.attr_u32(attr::LEGACY_ADDITIONAL_ADDRESS_FAMILY, 2 << 24)
            .unwrap();
    };
    let resp = h.call(&mut c, method::ALLOCATE, legacy);
    assert_eq!(relayed(&resp).len(), 2);
    h.binder.relay_ip6 = None;
    let mut d = Client::rest(4001, "alice", valid_expiry());
    let resp = h.call(&mut d, method::ALLOCATE, legacy);
    assert_eq!(relayed(&resp).len(), 1);
    assert_eq!(resp.attr(attr::ADDRESS_ERROR_CODE), None);
    let value = resp.attr(attr::LEGACY_ADDRESS_ERROR_CODE).unwrap();
    assert_eq!(
        super::super::super::stun::message::address_error_code(value),
        Some((2, 440))
    );
    // The §7.2 rejections apply to the old code point too.
    let mut e = Client::rest(4002, "alice", valid_expiry());
    let resp = h.call(&mut e, method::ALLOCATE, |w| {
        w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap();
        w.attr_u32(attr::LEGACY_ADDITIONAL_ADDRESS_FAMILY, 1 << 24)
            .unwrap();
    });
    assert_eq!(resp.error_code(), Some(400));
    assert_bookkeeping(&h);
}
