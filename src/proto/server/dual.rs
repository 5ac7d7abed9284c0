//! Dual allocations (RFC 8656 §7.2 step 9): an IPv4 and an IPv6 relay in one allocation, each
//! with its own relay socket, port and lifetime. Also the per-relay bookkeeping every
//! allocation goes through: opening both halves, closing one, expiring one.

use std::net::SocketAddr;
use std::time::Instant;

use super::super::stun::{Attributes, ErrorCode};
use super::turn_requests::RelayError;
use super::{relay_of, AllocSlot, BindError, EndReason, Family, RelayBinder, RelayKind, Server};

/// The relays an Allocate bound: socket addresses by socket index, the RESERVATION-TOKEN it
/// earned, and the ADDRESS-ERROR-CODE of a family a dual allocation could not serve.
pub(super) struct DualBind {
    pub addrs: [Option<SocketAddr>; 2],
    pub token: Option<[u8; 8]>,
    pub address_error: Option<(Family, ErrorCode)>,
}

/// Index of a family in the per-family counters: 0 = IPv4, 1 = IPv6.
pub(super) fn family_index(family: Family) -> usize {
    match family {
        Family::V4 => 0,
        Family::V6 => 1,
    }
}

/// The family number of REQUESTED-ADDRESS-FAMILY and ADDRESS-ERROR-CODE (RFC 8656 §18.6).
pub(super) fn family_number(family: Family) -> u8 {
    match family {
        Family::V4 => 1,
        Family::V6 => 2,
    }
}

/// The family a REQUESTED-ADDRESS-FAMILY value names, if any.
pub(super) fn family_of_number(number: u8) -> Option<Family> {
    match number {
        1 => Some(Family::V4),
        2 => Some(Family::V6),
        _ => None,
    }
}

impl Server {
    /// Binds the IPv4 relay (socket index 0) and the IPv6 relay (index 1) of a dual allocation,
    /// each on its own port from the pool. One failing family leaves the other served with an
    /// ADDRESS-ERROR-CODE (440 when no relay address of the family exists, 508 when no port
    /// or socket was to be had); both failing is 440 if neither family exists, else 508.
    pub(super) fn bind_dual(
        &mut self,
        slot: AllocSlot,
        attrs: &Attributes<'_>,
        now: Instant,
        binder: &mut impl RelayBinder,
    ) -> Result<DualBind, ErrorCode> {
        let kind = RelayKind::Udp {
            dont_fragment: attrs.dont_fragment,
        };
        let v4 = self.bind_relay(relay_of(slot, 0), Family::V4, kind, attrs, now, binder);
        let v6 = self.bind_relay(relay_of(slot, 1), Family::V6, kind, attrs, now, binder);
        // EVEN-PORT with R set is refused next to ADDITIONAL-ADDRESS-FAMILY, so no token.
        let bound = |addrs, address_error| DualBind {
            addrs,
            token: None,
            address_error,
        };
        let unavailable = RelayError::Bind(BindError::FamilyUnavailable);
        match (v4, v6) {
            (Ok((a, _)), Ok((b, _))) => Ok(bound([Some(a), Some(b)], None)),
            (Ok((a, _)), Err(e)) => Ok(bound([Some(a), None], Some((Family::V6, e.stun_code())))),
            (Err(e), Ok((b, _))) => Ok(bound([None, Some(b)], Some((Family::V4, e.stun_code())))),
            (Err(a), Err(b)) if a == unavailable && b == unavailable => {
                Err(ErrorCode::AddressFamilyNotSupported)
            }
            (Err(_), Err(_)) => Err(ErrorCode::InsufficientCapacity),
        }
    }

    /// Closes relay socket `index` of the allocation in `slot` and returns its port.
    pub(super) fn close_relay(
        &mut self,
        slot: AllocSlot,
        index: usize,
        addr: SocketAddr,
        binder: &mut impl RelayBinder,
    ) {
        self.withdraw_relay(relay_of(slot, index));
        binder.close(relay_of(slot, index));
        self.shared.ports.release(addr.port());
        self.stats.relays_closed[family_index(Family::of(&addr))].inc();
    }

    /// Ends the lapsed relays of the allocation in `slot`, whose timer entry just fired; the
    /// allocation ends with its last relay, otherwise its entry moves to the next expiry.
    pub(super) fn expire_relays(
        &mut self,
        slot: AllocSlot,
        now: Instant,
        binder: &mut impl RelayBinder,
    ) {
        let Some(alloc) = self.alloc(slot) else {
            return;
        };
        let lapsed = alloc.relays.map(|r| r.is_some_and(|r| r.expires <= now));
        let survivors = alloc
            .relays
            .iter()
            .zip(lapsed)
            .any(|(r, gone)| r.is_some() && !gone);
        if !survivors {
            self.remove_allocation(slot, now, EndReason::Expired, binder);
            return;
        }
        for (index, gone) in lapsed.into_iter().enumerate() {
            if gone {
                self.drop_relay(slot, index, now, binder);
            }
        }
        self.reschedule(slot);
    }

    /// Deletes the `family` relay of a dual allocation (Refresh with LIFETIME 0 naming it),
    /// with the permissions and channels only that relay could use.
    pub(super) fn drop_family(
        &mut self,
        slot: AllocSlot,
        family: Family,
        now: Instant,
        binder: &mut impl RelayBinder,
    ) {
        let index = self.alloc(slot).and_then(|a| a.relay_index(family));
        if let Some(index) = index {
            self.drop_relay(slot, index, now, binder);
            self.reschedule(slot);
        }
    }

    /// Sets the expiry of the relays of `family` (all relays when `None`) to `expires`.
    pub(super) fn refresh_relays(
        &mut self,
        slot: AllocSlot,
        family: Option<Family>,
        expires: Instant,
    ) {
        let Some(alloc) = self.alloc_mut(slot) else {
            return;
        };
        for relay in alloc.relays.iter_mut().flatten() {
            if family.is_none_or(|f| relay.family() == f) {
                relay.expires = expires;
            }
        }
        self.reschedule(slot);
    }

    fn drop_relay(
        &mut self,
        slot: AllocSlot,
        index: usize,
        now: Instant,
        binder: &mut impl RelayBinder,
    ) {
        let Some(alloc) = self.alloc_mut(slot) else {
            return;
        };
        let Some(relay) = alloc.relays[index].take() else {
            return;
        };
        alloc.forget_family(relay.family(), now);
        self.close_relay(slot, index, relay.addr, binder);
    }

    /// Moves the allocation's one timer entry to its earliest relay expiry.
    fn reschedule(&mut self, slot: AllocSlot) {
        let Some(alloc) = self.alloc(slot) else {
            return;
        };
        if let Some(next) = alloc.earliest_expiry() {
            self.set_expiry(slot, next);
        }
    }
}
