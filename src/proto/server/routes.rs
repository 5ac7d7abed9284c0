//! Channel routes for a kernel fast path: the core says which channel bindings may be forwarded
//! without it, and until when; the runtime turns that into map entries (or ignores it).
//!
//! A route is announced when a ChannelBind succeeds and again whenever its deadline moves
//! (a CreatePermission or ChannelBind refreshing the peer's permission, a Refresh), and it is
//! withdrawn when its relay socket closes (the allocation ends, or one half of a dual allocation
//! does) or a new configuration puts the allocation under a bandwidth limit (limits are
//! enforced here, not in the kernel). The deadline is the earliest of the channel's, its
//! permission's and its relay's expiry, so a forwarder that checks
//! it stops on time by itself; the runtime still deletes lapsed entries so state stays bounded
//! by what is live. Nothing is queued until [`Server::enable_routes`] is called.

use std::net::SocketAddr;
use std::time::Instant;

use super::super::allocation::Allocation;
use super::super::flow::{Family, Flow, RelayId, Transport};
use super::{relay_of, AllocSlot, Server};

/// One channel binding, as a forwarder needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChannelRoute {
    /// The allocation (its relay socket) it belongs to.
    pub relay: RelayId,
    /// The client's flow (UDP listener and client address).
    pub client: Flow,
    /// The channel number.
    pub channel: u16,
    /// The peer the channel stands for.
    pub peer: SocketAddr,
    /// The relay socket's address.
    pub relay_addr: SocketAddr,
}

/// A change to what may be forwarded without the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteChange {
    /// Forward `route` until `until` (replaces an earlier announcement of the same route).
    Install {
        /// The binding.
        route: ChannelRoute,
        /// When forwarding must stop unless announced again.
        until: Instant,
    },
    /// Stop forwarding `route` now.
    Remove(ChannelRoute),
    /// The relay socket closed: stop forwarding every channel of it now.
    RelayClosed(RelayId),
}

/// Routes waiting for the runtime; `None` while no forwarder asked for them.
pub(super) type RouteQueue = Option<std::collections::VecDeque<RouteChange>>;

impl Server {
    /// Starts queueing [`RouteChange`]s for [`poll_route`](Self::poll_route).
    pub fn enable_routes(&mut self) {
        if self.routes.is_none() {
            self.routes = Some(Default::default());
        }
    }

    /// The next route change, if any.
    pub fn poll_route(&mut self) -> Option<RouteChange> {
        self.routes.as_mut()?.pop_front()
    }

    /// Whether the allocation's channel data may bypass the core: UDP clients only, and no
    /// bandwidth limit to enforce.
    fn may_bypass(&self, alloc: &Allocation) -> bool {
        alloc.transport == Transport::Udp
            && alloc.to_peer_limit.is_none()
            && alloc.to_client_limit.is_none()
            && self.capacity.iter().all(Option::is_none)
    }

    /// Announces the live channels of the allocation in `slot` whose peer `select` picks,
    /// with their current deadlines (or withdraws them when they may not bypass the core).
    pub(super) fn announce_routes(
        &mut self,
        slot: AllocSlot,
        now: Instant,
        select: impl Fn(&SocketAddr) -> bool,
    ) {
        let Some(alloc) = self.slots.get(slot.index()).and_then(Option::as_ref) else {
            return;
        };
        let bypass = self.may_bypass(alloc);
        let Some(queue) = self.routes.as_mut() else {
            return;
        };
        let client_family = Family::of(&alloc.flow.remote);
        for c in alloc.channels.iter().filter(|c| select(&c.peer)) {
            // A channel goes out of the relay of its peer's family (one of two when dual).
            let family = Family::of(&c.peer);
            let Some(index) = alloc.relay_index(family) else {
                continue;
            };
            let Some(relay) = alloc.relays[index].as_ref() else {
                continue;
            };
            let route = ChannelRoute {
                relay: relay_of(slot, index),
                client: alloc.flow,
                channel: c.number,
                peer: c.peer,
                relay_addr: relay.addr,
            };
            let permission = alloc
                .permissions
                .iter()
                .find(|p| p.ip == c.peer.ip())
                .map(|p| p.expires);
            let until = permission.map(|p| p.min(c.expires).min(relay.expires));
            // The forwarder rewrites addresses; it does not translate between families.
            let same_family = family == client_family;
            queue.push_back(match until {
                Some(until) if bypass && same_family && until > now => {
                    RouteChange::Install { route, until }
                }
                _ => RouteChange::Remove(route),
            });
        }
    }

    /// Withdraws every channel of relay socket `relay` (it is closing).
    pub(super) fn withdraw_relay(&mut self, relay: RelayId) {
        if let Some(queue) = self.routes.as_mut() {
            queue.push_back(RouteChange::RelayClosed(relay));
        }
    }

    /// Announces (or withdraws) every channel of every allocation: the configuration changed.
    pub(super) fn announce_all_routes(&mut self, now: Instant) {
        if self.routes.is_none() {
            return;
        }
        for index in 0..self.slots.len() {
            self.announce_routes(AllocSlot::at(index), now, |_| true);
        }
    }
}
