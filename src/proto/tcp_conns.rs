//! The RFC 6062 connections of one shard: which allocation owns each peer connection, what
//! it waits for, and when it gives up. Plain data in virtual time; the server acts on it.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::time::Instant;

use ahash::RandomState;

use super::auth::algorithm::ReplyKey;
use super::flow::Flow;
use super::server::AllocSlot;

/// Most peer connections (pending or bound) one TCP allocation may hold; a Connect past it
/// gets 508 and an incoming peer is refused.
pub const MAX_CONNECTIONS_PER_ALLOCATION: usize = 64;
/// Most connections of one allocation waiting for their peer connect or for ConnectionBind.
pub const MAX_PENDING_PER_ALLOCATION: usize = 32;
/// Bits of a CONNECTION-ID below the shard number.
const ID_BITS: u32 = 24;

/// The shard that owns a CONNECTION-ID: a ConnectionBind accepted elsewhere is handed there.
pub fn owner_shard(id: u32) -> usize {
    (id >> ID_BITS) as usize
}

/// Where one peer connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpConnState {
    /// The runtime is connecting to the peer for a Connect request (RFC 6062 §5.2); its
    /// answer goes to `flow` when the attempt ends.
    Connecting {
        /// The control connection that sent the Connect.
        flow: Flow,
        /// The Connect's transaction id.
        tid: [u8; 12],
        /// The key that signs the answer.
        key: Option<ReplyKey>,
        /// Whether the request carried FINGERPRINT.
        fingerprint: bool,
    },
    /// Connected to the peer, waiting for the client's ConnectionBind.
    AwaitingBind,
    /// Paired with a client data connection; bytes flow both ways.
    Bound {
        /// The data connection.
        flow: Flow,
    },
}

/// One peer connection.
#[derive(Debug, Clone, Copy)]
pub struct TcpConn {
    /// The slot of the allocation that owns it.
    pub slot: AllocSlot,
    /// The peer's transport address.
    pub peer: SocketAddr,
    /// What it waits for.
    pub state: TcpConnState,
    /// When waiting ends in failure (None once bound).
    pub deadline: Option<Instant>,
}

/// The peer connections of one shard, by CONNECTION-ID and by allocation.
#[derive(Debug)]
pub struct TcpConns {
    shard: u32,
    by_id: HashMap<u32, TcpConn, RandomState>,
    by_slot: HashMap<AllocSlot, Vec<u32>, RandomState>,
    deadlines: BTreeSet<(Instant, u32)>,
}

impl TcpConns {
    /// An empty table whose ids name `shard` (which must be below 256).
    pub fn new(shard: u16) -> Self {
        TcpConns {
            shard: u32::from(shard) & 0xFF,
            by_id: HashMap::with_hasher(RandomState::new()),
            by_slot: HashMap::with_hasher(RandomState::new()),
            deadlines: BTreeSet::new(),
        }
    }

    /// The connection with `id`.
    pub fn get(&self, id: u32) -> Option<&TcpConn> {
        self.by_id.get(&id)
    }

    /// Connections alive in this shard.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Entries in the deadline table (never more than [`len`](Self::len)).
    pub fn timer_entries(&self) -> usize {
        self.deadlines.len()
    }

    /// The ids of the connections of allocation `slot`.
    pub fn of_slot(&self, slot: AllocSlot) -> &[u32] {
        self.by_slot.get(&slot).map_or(&[], Vec::as_slice)
    }

    /// Whether allocation `slot` already has a connection (of any state) with `peer`.
    pub fn has_peer(&self, slot: AllocSlot, peer: SocketAddr) -> bool {
        self.of_slot(slot)
            .iter()
            .any(|id| self.by_id.get(id).is_some_and(|c| c.peer == peer))
    }

    /// Whether allocation `slot` may take one more pending connection.
    pub fn has_room(&self, slot: AllocSlot) -> bool {
        let ids = self.of_slot(slot);
        let pending = ids
            .iter()
            .filter(|id| {
                self.by_id
                    .get(id)
                    .is_some_and(|c| !matches!(c.state, TcpConnState::Bound { .. }))
            })
            .count();
        ids.len() < MAX_CONNECTIONS_PER_ALLOCATION && pending < MAX_PENDING_PER_ALLOCATION
    }

    /// Adds a connection and returns its new id; `random` picks the id's low bits (retried
    /// while taken, so an id is never reused while alive).
    pub fn insert(&mut self, conn: TcpConn, mut random: impl FnMut() -> u32) -> u32 {
        let id = loop {
            let low = random() & ((1 << ID_BITS) - 1);
            let id = (self.shard << ID_BITS) | low;
            if low != 0 && !self.by_id.contains_key(&id) {
                break id;
            }
        };
        if let Some(t) = conn.deadline {
            self.deadlines.insert((t, id));
        }
        self.by_slot.entry(conn.slot).or_default().push(id);
        self.by_id.insert(id, conn);
        id
    }

    /// Moves connection `id` to `state` with a new deadline.
    pub fn set_state(&mut self, id: u32, state: TcpConnState, deadline: Option<Instant>) {
        let Some(c) = self.by_id.get_mut(&id) else {
            return;
        };
        if let Some(t) = c.deadline {
            self.deadlines.remove(&(t, id));
        }
        if let Some(t) = deadline {
            self.deadlines.insert((t, id));
        }
        c.state = state;
        c.deadline = deadline;
    }

    /// Forgets connection `id`.
    pub fn remove(&mut self, id: u32) -> Option<TcpConn> {
        let c = self.by_id.remove(&id)?;
        if let Some(t) = c.deadline {
            self.deadlines.remove(&(t, id));
        }
        if let Some(ids) = self.by_slot.get_mut(&c.slot) {
            ids.retain(|x| *x != id);
            if ids.is_empty() {
                self.by_slot.remove(&c.slot);
            }
        }
        Some(c)
    }

    /// The earliest deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|(t, _)| *t)
    }

    /// The id of a connection whose deadline passed by `now`, if any.
    pub fn expired(&self, now: Instant) -> Option<u32> {
        match self.deadlines.first() {
            Some(&(t, id)) if t <= now => Some(id),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn conn(slot: AllocSlot, port: u16, deadline: Option<Instant>) -> TcpConn {
        TcpConn {
            slot,
            peer: SocketAddr::new("198.51.100.1".parse().unwrap(), port),
            state: TcpConnState::AwaitingBind,
            deadline,
        }
    }

    #[test]
    fn ids_carry_the_shard_and_are_never_zero_or_reused() {
        let mut t = TcpConns::new(7);
        let mut n = 0u32;
        // A generator that repeats itself: the table must skip taken and zero ids.
        let mut gen = || {
            n += 1;
            [0, 5, 5, 5, 6][(n as usize - 1) % 5]
        };
        let a = t.insert(conn(AllocSlot::at(1), 1, None), &mut gen);
        let b = t.insert(conn(AllocSlot::at(1), 2, None), &mut gen);
        assert_eq!(a, (7 << 24) | 5);
        assert_eq!(b, (7 << 24) | 6);
        assert_eq!(owner_shard(a), 7);
    }

    #[test]
    fn bounds_per_allocation_and_deadlines() {
        let now = Instant::now();
        let mut t = TcpConns::new(0);
        let mut r = 0u32;
        let mut gen = || {
            r += 1;
            r
        };
        let (slot, other) = (AllocSlot::at(3), AllocSlot::at(4));
        let mut ids = Vec::new();
        for i in 0..MAX_PENDING_PER_ALLOCATION {
            assert!(t.has_room(slot));
            ids.push(t.insert(
                conn(slot, i as u16, Some(now + Duration::from_secs(i as u64))),
                &mut gen,
            ));
        }
        assert!(!t.has_room(slot), "pending bound");
        assert!(t.has_room(other), "other allocations are not affected");
        assert!(t.has_peer(slot, conn(slot, 2, None).peer));
        assert_eq!(t.expired(now), Some(ids[0]));
        t.set_state(ids[0], TcpConnState::Bound { flow: flow() }, None);
        assert!(t.has_room(slot), "a bound connection is not pending");
        assert_eq!(t.expired(now + Duration::from_secs(1)), Some(ids[1]));
        for id in &ids {
            t.remove(*id);
        }
        assert!(t.is_empty());
        assert_eq!(t.timer_entries(), 0);
        assert!(t.of_slot(slot).is_empty());
    }

    fn flow() -> Flow {
        Flow {
            socket: super::super::flow::SocketId::Connection(1),
            remote: "203.0.113.1:1".parse().unwrap(),
        }
    }
}
