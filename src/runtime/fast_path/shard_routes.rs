//! One shard's writer of the fast path's maps. The shard that owns an allocation is the only
//! writer of its entries: it turns the core's [`RouteChange`]s into map entries, deletes the
//! entries whose deadline passed (the program already ignores them: this keeps the maps
//! bounded by what is live), and deletes all of its entries when it stops.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use aya::maps::{HashMap as BpfHashMap, MapData};

use super::clock::MonoClock;
use super::maps::{C2pKey, P2cKey, Route};
use super::netlink::{Egress, RouteQuery};
use crate::proto::flow::{RelayId, SocketId};
use crate::proto::server::{ChannelRoute, RouteChange};

/// Counters every shard's writer adds to (summed on scrape).
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Channel bindings currently in the maps.
    pub installed: AtomicU64,
    /// Announcements kept in user space: the route's egress is not an interface the program
    /// may send out of, the listener is a wildcard address, or a map update failed.
    pub declined: AtomicU64,
}

struct Installed {
    channel: u16,
    c2p: C2pKey,
    p2c: P2cKey,
    peer: SocketAddr,
    until: Instant,
}

/// A shard's handles on the maps and what it put there.
pub struct ShardRoutes {
    c2p: BpfHashMap<MapData, C2pKey, Route>,
    p2c: BpfHashMap<MapData, P2cKey, Route>,
    clock: MonoClock,
    query: Option<RouteQuery>,
    /// The shard's UDP listener addresses by index (`Flow::socket`).
    listeners: Vec<SocketAddr>,
    /// What this shard put into the maps, by relay socket (at most a few channels each).
    installed: HashMap<RelayId, Vec<Installed>>,
    stats: Arc<WriterStats>,
    shard: usize,
}

impl ShardRoutes {
    #[cfg_attr(not(ferroturn_fast_path), allow(dead_code))]
    pub(super) fn new(
        c2p: BpfHashMap<MapData, C2pKey, Route>,
        p2c: BpfHashMap<MapData, P2cKey, Route>,
        clock: MonoClock,
        stats: Arc<WriterStats>,
    ) -> ShardRoutes {
        ShardRoutes {
            c2p,
            p2c,
            clock,
            query: None,
            listeners: Vec::new(),
            installed: HashMap::new(),
            stats,
            shard: 0,
        }
    }

    /// Tells the writer its shard's listener addresses (by listener index) and its id (logs).
    pub fn set_listeners(&mut self, shard: usize, listeners: Vec<SocketAddr>) {
        self.shard = shard;
        self.listeners = listeners;
    }

    /// Applies one change from the core.
    pub fn apply(&mut self, change: RouteChange) {
        match change {
            RouteChange::Install { route, until } => {
                if !self.install(&route, until) {
                    self.stats.declined.fetch_add(1, Ordering::Relaxed);
                    self.remove(&route);
                }
            }
            RouteChange::Remove(route) => self.remove(&route),
            RouteChange::RelayClosed(relay) => {
                if let Some(gone) = self.installed.remove(&relay) {
                    for old in gone {
                        self.delete(&old);
                    }
                }
            }
        }
    }

    fn egress(&mut self, dst: SocketAddr, src: SocketAddr) -> Option<u32> {
        if self.query.is_none() {
            match RouteQuery::new() {
                Ok(q) => self.query = Some(q),
                Err(e) => {
                    tracing::debug!(shard = self.shard, error = %e, "fast path: no rtnetlink socket");
                    return None;
                }
            }
        }
        let query = self.query.as_mut()?;
        match query.egress(dst.ip(), src.ip()) {
            Ok(Egress::Interface(i)) => Some(i),
            Ok(Egress::Local) => Some(0),
            Ok(Egress::Other) => None,
            Err(e) => {
                tracing::debug!(shard = self.shard, error = %e, %dst, "fast path: route lookup failed");
                None
            }
        }
    }

    fn install(&mut self, route: &ChannelRoute, until: Instant) -> bool {
        let SocketId::Listener(index) = route.client.socket else {
            return false;
        };
        let Some(&listener) = self.listeners.get(index as usize) else {
            return false;
        };
        if listener.ip().is_unspecified() {
            return false;
        }
        let client = route.client.remote;
        // Towards the client: it must be reached out of an interface. Towards the peer: an
        // interface, or this host (another allocation's relay address: the program then
        // forwards only when that allocation has a channel for us too).
        let (Some(to_client), Some(to_peer)) = (
            self.egress(client, listener),
            self.egress(route.peer, route.relay_addr),
        ) else {
            return false;
        };
        if to_client == 0 {
            return false;
        }
        let expires = self.clock.ns(until);
        let c2p = C2pKey::new(client, listener, route.channel);
        let p2c = P2cKey::new(route.peer, route.relay_addr);
        let mut to_peer_route = Route::new(route.relay_addr, route.peer, 0, to_peer, expires);
        let mut to_client_route = Route::new(listener, client, route.channel, to_client, expires);
        // Refreshes keep what the program counted so far.
        if let Ok(old) = self.c2p.get(&c2p, 0) {
            to_peer_route.packets = old.packets;
            to_peer_route.bytes = old.bytes;
        }
        if let Ok(old) = self.p2c.get(&p2c, 0) {
            to_client_route.packets = old.packets;
            to_client_route.bytes = old.bytes;
        }
        let entries = self.installed.entry(route.relay).or_default();
        let at = entries.iter().position(|i| i.channel == route.channel);
        if let Some(old) = at.map(|at| &entries[at]) {
            if old.peer != route.peer {
                // The number went to another peer after the old binding lapsed.
                let _ = self.p2c.remove(&old.p2c);
            }
        }
        if let Err(e) = self.p2c.insert(p2c, to_client_route, 0) {
            tracing::debug!(shard = self.shard, error = %e, "fast path: map full or update failed");
            return false;
        }
        if let Err(e) = self.c2p.insert(c2p, to_peer_route, 0) {
            tracing::debug!(shard = self.shard, error = %e, "fast path: map full or update failed");
            let _ = self.p2c.remove(&p2c);
            return false;
        }
        let entry = Installed {
            channel: route.channel,
            c2p,
            p2c,
            peer: route.peer,
            until,
        };
        match at {
            Some(at) => entries[at] = entry,
            None => {
                entries.push(entry);
                self.stats.installed.fetch_add(1, Ordering::Relaxed);
            }
        }
        true
    }

    fn remove(&mut self, route: &ChannelRoute) {
        let Some(entries) = self.installed.get_mut(&route.relay) else {
            return;
        };
        let Some(at) = entries
            .iter()
            .position(|i| i.channel == route.channel && i.peer == route.peer)
        else {
            return;
        };
        let old = entries.swap_remove(at);
        if entries.is_empty() {
            self.installed.remove(&route.relay);
        }
        self.delete(&old);
    }

    /// Deletes one binding's two entries.
    fn delete(&mut self, old: &Installed) {
        let _ = self.c2p.remove(&old.c2p);
        let _ = self.p2c.remove(&old.p2c);
        self.stats.installed.fetch_sub(1, Ordering::Relaxed);
    }

    /// Deletes the entries whose deadline passed.
    pub fn sweep(&mut self, now: Instant) {
        let mut lapsed = Vec::new();
        for entries in self.installed.values_mut() {
            let mut i = 0;
            while i < entries.len() {
                if entries[i].until <= now {
                    lapsed.push(entries.swap_remove(i));
                } else {
                    i += 1;
                }
            }
        }
        self.installed.retain(|_, e| !e.is_empty());
        for old in &lapsed {
            self.delete(old);
        }
    }

    /// Packets and payload bytes the program forwarded for allocation `relay` on its live
    /// entries: (to peers, to the client).
    pub fn traffic(&self, relay: RelayId) -> ((u64, u64), (u64, u64)) {
        let mut to_peer = (0, 0);
        let mut to_client = (0, 0);
        for i in self.installed.get(&relay).into_iter().flatten() {
            if let Ok(v) = self.c2p.get(&i.c2p, 0) {
                to_peer.0 += v.packets;
                to_peer.1 += v.bytes;
            }
            if let Ok(v) = self.p2c.get(&i.p2c, 0) {
                to_client.0 += v.packets;
                to_client.1 += v.bytes;
            }
        }
        (to_peer, to_client)
    }

    /// Entries this shard holds.
    pub fn len(&self) -> usize {
        self.installed.values().map(Vec::len).sum()
    }

    /// Whether the shard holds none.
    pub fn is_empty(&self) -> bool {
        self.installed.is_empty()
    }
}

impl Drop for ShardRoutes {
    /// A stopping shard takes its entries with it: nothing is forwarded for allocations
    /// that no longer exist, even before the program is detached.
    fn drop(&mut self) {
        let all: Vec<Installed> = self.installed.drain().flat_map(|(_, e)| e).collect();
        for old in &all {
            self.delete(old);
        }
    }
}
