//! The per-shard TURN server state machine.
//!
//! One `Server` lives in each shard. The runtime feeds it client datagrams (`handle_client`),
//! peer datagrams arriving on relay sockets (`handle_peer`) and the passing of time
//! (`handle_timeout`); it answers with what to send, and asks the runtime to open or close relay
//! sockets through [`RelayBinder`]. It never reads a clock or touches a socket, so tests drive it
//! in virtual time.

mod auth_check;
mod dual;
mod reply;
mod request;
mod routes;
mod stats;
mod tcp_relay;
mod turn_requests;

#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use std::collections::HashMap;

use ahash::RandomState;
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

use std::sync::Arc;

use super::allocation::{Allocation, TrafficCounters};
use super::bandwidth::{allow, retune, TokenBucket};
use super::challenge_limit::ChallengeLimiter;
use super::channel_data;
use super::flow::{Family, Flow, RelayId, Transport};
use super::settings::{CoreConfigRef, SharedRef};
use super::stun::{attr, method, Attributes, Class, CodecError, ErrorCode, Message};
use super::tcp_conns::TcpConns;

use reply::ReplyTo;
use request::Request;
pub use routes::{ChannelRoute, RouteChange};
pub use stats::{transport_index, CoreStats, LIFETIME_BUCKETS};
pub use tcp_relay::{TcpCommand, BIND_TIMEOUT, CONNECT_TIMEOUT};
use Direction::{ToClient, ToPeer};

/// Bytes the runtime leaves free in front of a peer payload so the core can prepend a
/// Data indication header (20 header + 24 XOR-PEER-ADDRESS + 4 DATA) without copying.
pub const PEER_HEADROOM: usize = 48;
/// Bytes the runtime leaves free after a peer payload for padding and FINGERPRINT.
pub const PEER_TAILROOM: usize = 12;
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(5);
/// Bind attempts per Allocate when ports turn out to be taken by other processes.
const BIND_ATTEMPTS: usize = 16;

/// Most allocation slots: their relay ids (two per slot) stay below 2^28, small enough for
/// the runtime's tables and event-loop tokens.
const MAX_SLOTS: u32 = 1 << 27;

/// The place of an allocation in its shard's allocation table. Only the [`Server`] that owns
/// the table hands slots out; a slot is neither a [`RelayId`] (an allocation has one or two
/// relay sockets, whose ids the server derives from its slot) nor a connection id or a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AllocSlot(u32);

impl AllocSlot {
    /// The slot at position `index` of the table; `index` is below `MAX_SLOTS`.
    #[inline]
    pub(crate) fn at(index: usize) -> Self {
        debug_assert!(index < MAX_SLOTS as usize);
        AllocSlot(index as u32)
    }

    /// Its position in the table.
    #[inline]
    pub(crate) fn index(self) -> usize {
        self.0 as usize
    }
}

/// Why the runtime could not open a relay socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BindError {
    /// The port is held by someone else: try another.
    #[error("the relay port is in use")]
    AddrInUse,
    /// No relay address of the requested family is configured.
    #[error("no relay address of the requested family")]
    FamilyUnavailable,
    /// Anything else (out of file descriptors, ...).
    #[error("the relay socket could not be opened")]
    Failed,
}

impl BindError {
    /// The STUN error code to answer an Allocate with: 440 when the family is not offered,
    /// 508 (no capacity) otherwise.
    pub fn stun_code(self) -> ErrorCode {
        match self {
            BindError::FamilyUnavailable => ErrorCode::AddressFamilyNotSupported,
            BindError::AddrInUse | BindError::Failed => ErrorCode::InsufficientCapacity,
        }
    }
}

/// Which address a relay socket goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayAt {
    /// Any relay address of this family: the binder picks one (it may have several).
    Family(Family),
    /// Exactly this relay address (a reserved port belongs to the address that reserved it).
    Ip(IpAddr),
}

/// What kind of relay socket to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayKind {
    /// A UDP relay socket; `dont_fragment` asks for DF on what it sends (DONT-FRAGMENT).
    Udp {
        /// Set DF on the datagrams it sends.
        dont_fragment: bool,
    },
    /// A TCP relay listener (RFC 6062).
    Tcp,
}

/// A relay socket the core asks the runtime to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelaySocket {
    /// The id the core names it by (a dual allocation has two, one per family).
    pub relay: RelayId,
    /// Which address it goes on.
    pub at: RelayAt,
    /// Its port.
    pub port: u16,
    /// UDP socket or TCP listener.
    pub kind: RelayKind,
}

impl RelaySocket {
    /// A relay socket of `kind` for `relay` on `port` at `at`.
    pub fn new(relay: RelayId, at: RelayAt, port: u16, kind: RelayKind) -> Self {
        RelaySocket {
            relay,
            at,
            port,
            kind,
        }
    }
}

/// Opens and closes relay sockets on the core's behalf.
pub trait RelayBinder {
    /// Opens `socket` and returns its local address. A binder without TCP relaying refuses
    /// [`RelayKind::Tcp`] with [`BindError::Failed`].
    fn bind(&mut self, socket: RelaySocket) -> Result<SocketAddr, BindError>;
    /// Closes relay socket `relay` (UDP, or the TCP relay listener).
    fn close(&mut self, relay: RelayId);
}

/// What to do with a client datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAction {
    /// Nothing to send.
    None,
    /// Send the first `len` bytes of the output buffer back to the client on the same flow.
    Reply(usize),
    /// Send `input[start..end]` from relay socket `relay` to `peer`.
    Relay {
        /// The relay socket that sends (the allocation's socket of the peer's family).
        relay: RelayId,
        /// Destination.
        peer: SocketAddr,
        /// Start of the payload within the input datagram.
        start: usize,
        /// End of the payload within the input datagram.
        end: usize,
    },
}

/// What to do with a datagram a peer sent to a relay socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerAction {
    /// Drop it (no permission, no allocation).
    Drop,
    /// Send `buf[start..end]` to the client on `flow`.
    Forward {
        /// The client.
        flow: Flow,
        /// Start of the framed message in the buffer.
        start: usize,
        /// End of the framed message in the buffer.
        end: usize,
    },
}

/// Why an allocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// Its lifetime ran out.
    Expired,
    /// The client sent Refresh with lifetime 0.
    Deleted,
    /// The client's connection closed (TCP/TLS).
    ConnectionClosed,
    /// Ended through the admin API (session end, user or secret revocation).
    Revoked,
}

impl EndReason {
    /// The reason as one lower-case word, for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Expired => "expired",
            EndReason::Deleted => "deleted",
            EndReason::ConnectionClosed => "connection-closed",
            EndReason::Revoked => "revoked",
        }
    }
}

/// Things the runtime may log or count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An allocation was created.
    AllocationCreated {
        /// The client.
        flow: Flow,
        /// Client transport.
        transport: Transport,
        /// The USERNAME it authenticated with.
        username: Box<str>,
        /// The relay socket address.
        relay: SocketAddr,
        /// The advertised relayed address.
        advertised: SocketAddr,
        /// The IPv6 relay of a dual allocation: socket address and advertised address.
        additional: Option<(SocketAddr, SocketAddr)>,
        /// Granted lifetime in seconds.
        lifetime: u32,
    },
    /// An allocation ended.
    AllocationEnded {
        /// The client.
        flow: Flow,
        /// Client transport.
        transport: Transport,
        /// The USERNAME it authenticated with.
        username: Box<str>,
        /// The relay socket address.
        relay: SocketAddr,
        /// How long it lived.
        duration: Duration,
        /// What it relayed.
        traffic: TrafficCounters,
        /// Why it ended.
        reason: EndReason,
    },
}

/// The TURN server state of one shard.
pub struct Server {
    shared: SharedRef,
    config: CoreConfigRef,
    /// The shard's bandwidth budget (bps-capacity), one per [`Direction`].
    capacity: [Option<TokenBucket>; 2],
    next_session_id: u64,
    epoch: Instant,
    epoch_unix: u64,
    slots: Vec<Option<Allocation>>,
    free_slots: Vec<AllocSlot>,
    /// Keyed with random per-instance keys (aHash): the client picks its address and port, so
    /// an unkeyed hash would let it aim many flows at one bucket chain and slow every lookup.
    by_flow: HashMap<Flow, AllocSlot, RandomState>,
    /// One entry per live allocation: its deadline and slot. Refreshes move the entry and
    /// removals delete it, so a client refreshing in a loop cannot grow the table.
    expiries: BTreeSet<(Instant, AllocSlot)>,
    next_housekeeping: Instant,
    /// The server's own generator (ChaCha12, a cryptographic one): port hints, transaction ids
    /// of Data indications, RESERVATION-TOKENs and hash keys all come from it, so a test that
    /// passes the same seed sees the same run.
    rng: StdRng,
    events: VecDeque<Event>,
    draining: bool,
    stats: Arc<CoreStats>,
    challenges: ChallengeLimiter,
    routes: routes::RouteQueue,
    tcp: TcpConns,
    tcp_commands: VecDeque<TcpCommand>,
}

impl Server {
    /// A server whose clock starts at `epoch`, which corresponds to `epoch_unix` seconds of wall
    /// time (nonces and REST expiries are in wall time; everything else is monotonic).
    /// `seed` seeds the server's generator, the core's only source of randomness (port hints,
    /// indication transaction ids, RESERVATION-TOKENs, hash keys): the runtime passes a fresh
    /// random value, tests a fixed one. `shard` keeps session ids unique across shards.
    pub fn new(
        shared: SharedRef,
        config: CoreConfigRef,
        epoch: Instant,
        epoch_unix: u64,
        seed: u64,
        shard: u16,
    ) -> Self {
        let capacity = config.settings.bps_capacity_per_shard;
        let mut rng = StdRng::seed_from_u64(seed);
        let flow_keys = RandomState::with_seeds(
            rng.next_u64(),
            rng.next_u64(),
            rng.next_u64(),
            rng.next_u64(),
        );
        let challenges = ChallengeLimiter::new(&mut rng);
        Server {
            shared,
            capacity: [(); 2].map(|_| TokenBucket::limit(capacity, epoch)),
            config,
            next_session_id: (u64::from(shard) << 48) + 1,
            epoch,
            epoch_unix,
            slots: Vec::new(),
            free_slots: Vec::new(),
            by_flow: HashMap::with_hasher(flow_keys),
            expiries: BTreeSet::new(),
            next_housekeeping: epoch + HOUSEKEEPING_INTERVAL,
            rng,
            events: VecDeque::new(),
            draining: false,
            stats: Arc::new(CoreStats::default()),
            challenges,
            routes: None,
            tcp: TcpConns::new(shard),
            tcp_commands: VecDeque::new(),
        }
    }

    /// Switches to a new configuration (reload, revocation). Bandwidth limits apply to live
    /// allocations at once; lifetimes and credentials apply from the next request.
    pub fn set_config(&mut self, config: CoreConfigRef, now: Instant) {
        let max_bps = config.settings.max_bps;
        for alloc in self.slots.iter_mut().flatten() {
            retune(&mut alloc.to_peer_limit, max_bps, now);
            retune(&mut alloc.to_client_limit, max_bps, now);
        }
        let capacity = config.settings.bps_capacity_per_shard;
        for bucket in &mut self.capacity {
            retune(bucket, capacity, now);
        }
        self.config = config;
        self.announce_all_routes(now);
    }

    /// Ends every allocation `pred` selects; returns how many ended.
    pub fn end_allocations_where(
        &mut self,
        now: Instant,
        binder: &mut impl RelayBinder,
        mut pred: impl FnMut(&Allocation) -> bool,
    ) -> usize {
        let doomed: Vec<AllocSlot> = self
            .allocations()
            .filter(|(_, a)| pred(a))
            .map(|(relay, _)| slot_of(relay).0)
            .collect();
        for slot in &doomed {
            self.remove_allocation(*slot, now, EndReason::Revoked, binder);
        }
        doomed.len()
    }

    /// Handles one datagram (or one framed message of a stream) from a client.
    pub fn handle_client(
        &mut self,
        now: Instant,
        flow: Flow,
        transport: Transport,
        data: &[u8],
        out: &mut [u8],
        binder: &mut impl RelayBinder,
    ) -> ClientAction {
        match data.first() {
            Some(0x40..=0x7F) => return self.handle_channel_data(now, flow, data),
            Some(0x00..=0x03) => {}
            _ => {
                self.stats.dropped_malformed.count(data.len());
                return ClientAction::None;
            }
        }
        let (msg, attrs) = match self.parse_stun(data, out) {
            Ok(parsed) => parsed,
            Err(answer) => return answer,
        };
        match (msg.class, msg.method) {
            (Class::Request, method::BINDING) => {
                if self.config.settings.no_stun {
                    return ClientAction::None;
                }
                self.binding_response(out, &msg, &attrs, flow)
            }
            (Class::Request, m) if is_turn_request(m) => {
                if self.config.settings.stun_only {
                    return ClientAction::None;
                }
                let req = Request {
                    now,
                    flow,
                    transport,
                    msg: &msg,
                    attrs: &attrs,
                };
                self.handle_turn_request(req, out, binder)
            }
            (Class::Request, _) => {
                self.error_reply(out, ReplyTo::new(&msg, None, false), ErrorCode::BadRequest)
            }
            (Class::Indication, method::SEND) if !self.config.settings.stun_only => {
                self.handle_send_indication(now, flow, data, &attrs)
            }
            _ => ClientAction::None,
        }
    }

    /// Parses a STUN message and its attributes; what cannot be parsed is counted as malformed
    /// and dropped, or answered with 400 when it is a request.
    #[inline]
    fn parse_stun<'a>(
        &mut self,
        data: &'a [u8],
        out: &mut [u8],
    ) -> Result<(Message<'a>, Attributes<'a>), ClientAction> {
        let Ok(msg) = Message::parse(data) else {
            self.stats.dropped_malformed.count(data.len());
            return Err(ClientAction::None);
        };
        match msg.attributes() {
            Ok(attrs) => Ok((msg, attrs)),
            Err(CodecError::BadFingerprint) => {
                self.stats.dropped_malformed.count(data.len());
                Err(ClientAction::None)
            }
            Err(_) if msg.class == Class::Request => {
                self.stats.dropped_malformed.count(data.len());
                Err(self.error_reply(out, ReplyTo::new(&msg, None, false), ErrorCode::BadRequest))
            }
            Err(_) => {
                self.stats.dropped_malformed.count(data.len());
                Err(ClientAction::None)
            }
        }
    }

    fn handle_channel_data(&mut self, now: Instant, flow: Flow, data: &[u8]) -> ClientAction {
        let max = self.config.settings.max_channel();
        let Some((number, payload)) = channel_data::parse(data, max) else {
            self.stats.dropped_malformed.count(data.len());
            return ClientAction::None;
        };
        let Some(slot) = self.relaying_slot(flow, payload.len()) else {
            return ClientAction::None;
        };
        let peer = match self.alloc(slot) {
            Some(alloc) => match alloc.peer_for_channel(number, now) {
                Some(peer) if alloc.permits(peer.ip(), now) => peer,
                _ => {
                    self.stats.dropped_no_permission.count(payload.len());
                    return ClientAction::None;
                }
            },
            None => return ClientAction::None,
        };
        let start = channel_data::HEADER_LEN;
        self.relay_to_peer(now, slot, peer, start, start + payload.len())
    }

    /// The slot of the allocation `flow` relays `len` payload bytes through, counted as from
    /// the client; `None` (counted as dropped) when the flow holds no allocation.
    fn relaying_slot(&mut self, flow: Flow, len: usize) -> Option<AllocSlot> {
        let Some(&slot) = self.by_flow.get(&flow) else {
            self.stats.dropped_no_allocation.count(len);
            return None;
        };
        self.stats.from_clients.count(len);
        Some(slot)
    }

    /// Accounts for data going to a peer, applying the bandwidth limits.
    fn relay_to_peer(
        &mut self,
        now: Instant,
        slot: AllocSlot,
        peer: SocketAddr,
        start: usize,
        end: usize,
    ) -> ClientAction {
        let len = end - start;
        let Some(alloc) = self.slots[slot.index()].as_mut() else {
            return ClientAction::None;
        };
        // The peer's family picks the relay socket; callers checked the permission, which
        // only a relay of that family can hold.
        let Some(index) = alloc.relay_index(Family::of(&peer)) else {
            self.stats.dropped_no_permission.count(len);
            return ClientAction::None;
        };
        if !charge(alloc, &mut self.capacity, &self.stats, ToPeer, len, now) {
            return ClientAction::None;
        }
        ClientAction::Relay {
            relay: relay_of(slot, index),
            peer,
            start,
            end,
        }
    }

    /// Handles a datagram a peer sent to relay socket `relay`. The payload
    /// is at `buf[PEER_HEADROOM..PEER_HEADROOM + len]` and `buf` has `PEER_TAILROOM` to spare
    /// after it; the core frames it in place.
    pub fn handle_peer(
        &mut self,
        now: Instant,
        relay: RelayId,
        from: SocketAddr,
        buf: &mut [u8],
        len: usize,
    ) -> PeerAction {
        let (slot, index) = slot_of(relay);
        let Some(Some(alloc)) = self.slots.get_mut(slot.index()) else {
            return PeerAction::Drop;
        };
        if alloc.relays[index].is_none() {
            return PeerAction::Drop;
        }
        self.stats.from_peers.count(len);
        if len > u16::MAX as usize - 64 || buf.len() < PEER_HEADROOM + len + PEER_TAILROOM {
            self.stats.dropped_malformed.count(len);
            return PeerAction::Drop;
        }
        if !alloc.permits(from.ip(), now) {
            self.stats.dropped_no_permission.count(len);
            return PeerAction::Drop;
        }
        if !charge(alloc, &mut self.capacity, &self.stats, ToClient, len, now) {
            return PeerAction::Drop;
        }
        let flow = alloc.flow;
        let stream = alloc.transport.is_stream();
        let mut end = PEER_HEADROOM + len;
        let start = if let Some(number) = alloc.channel_for_peer(from, now) {
            let start = PEER_HEADROOM - channel_data::HEADER_LEN;
            let header: &mut [u8; 4] = (&mut buf[start..PEER_HEADROOM]).try_into().expect("4");
            channel_data::write_header(header, number, len as u16);
            if stream {
                end = pad_zero(buf, end);
            }
            start
        } else {
            let tid = self.next_tid();
            reply::frame_data_indication(
                buf,
                len,
                from,
                tid,
                self.config.settings.fingerprint,
                &mut end,
            )
        };
        PeerAction::Forward { flow, start, end }
    }

    /// The next time `handle_timeout` has work to do.
    pub fn poll_timeout(&self) -> Instant {
        let next = match self.expiries.first() {
            Some((t, _)) => (*t).min(self.next_housekeeping),
            None => self.next_housekeeping,
        };
        self.tcp_deadline().map_or(next, |t| t.min(next))
    }

    /// Ends allocations whose lifetime ran out and frees lapsed port reservations.
    pub fn handle_timeout(&mut self, now: Instant, binder: &mut impl RelayBinder) {
        while let Some(&(t, slot)) = self.expiries.first() {
            if t > now {
                break;
            }
            self.expiries.pop_first();
            self.expire_relays(slot, now, binder);
        }
        self.expire_tcp(now);
        if now >= self.next_housekeeping {
            self.next_housekeeping = now + HOUSEKEEPING_INTERVAL;
            let unix = self.unix_time(now);
            for port in self.shared.reservations.expire(unix) {
                self.shared.ports.release(port);
            }
        }
    }

    /// Ends the allocation of a client whose TCP/TLS connection closed.
    pub fn handle_flow_closed(&mut self, now: Instant, flow: Flow, binder: &mut impl RelayBinder) {
        if let Some(&slot) = self.by_flow.get(&flow) {
            self.remove_allocation(slot, now, EndReason::ConnectionClosed, binder);
        }
    }

    /// Stops (or resumes) accepting new allocations; existing ones carry on.
    pub fn set_draining(&mut self, draining: bool) {
        self.draining = draining;
    }

    /// The next event for logs and metrics.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Counters of this shard; the handle stays readable from other threads.
    pub fn stats(&self) -> &Arc<CoreStats> {
        &self.stats
    }

    /// The configuration in force.
    pub fn config(&self) -> &CoreConfigRef {
        &self.config
    }

    /// Whether new allocations are refused.
    pub fn is_draining(&self) -> bool {
        self.draining
    }

    /// Whether the client on `flow` holds an allocation.
    pub fn has_allocation(&self, flow: Flow) -> bool {
        self.by_flow.contains_key(&flow)
    }

    /// Number of live allocations in this shard.
    pub fn allocation_count(&self) -> usize {
        self.by_flow.len()
    }

    /// Iterates the live allocations, each with the id of its first relay socket, which names
    /// the allocation (for the admin API and tests; [`Self::relay_ids`] gives every socket).
    pub fn allocations(&self) -> impl Iterator<Item = (RelayId, &Allocation)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, a)| a.as_ref().map(|a| (relay_of(AllocSlot::at(i), 0), a)))
    }

    /// The open relay sockets of the allocation `allocations` named `first`, with their local
    /// addresses: one, or two for a dual allocation.
    pub fn relay_ids(&self, first: RelayId) -> impl Iterator<Item = (RelayId, SocketAddr)> + '_ {
        let (slot, _) = slot_of(first);
        self.slots
            .get(slot.index())
            .and_then(Option::as_ref)
            .into_iter()
            .flat_map(move |a| {
                a.live_relays()
                    .map(move |(i, r)| (relay_of(slot, i), r.addr))
            })
    }

    fn unix_time(&self, now: Instant) -> u64 {
        self.epoch_unix + now.saturating_duration_since(self.epoch).as_secs()
    }

    fn next_random(&mut self) -> u64 {
        self.rng.next_u64()
    }

    fn next_tid(&mut self) -> [u8; 12] {
        let mut tid = [0u8; 12];
        self.rng.fill_bytes(&mut tid);
        tid
    }

    /// Entries in the expiry table; never more than [`allocation_count`](Self::allocation_count).
    pub fn timer_entries(&self) -> usize {
        self.expiries.len()
    }

    /// The allocation in `slot`, if it is live.
    #[inline]
    fn alloc(&self, slot: AllocSlot) -> Option<&Allocation> {
        self.slots[slot.index()].as_ref()
    }

    /// The allocation in `slot`, if it is live, for changing.
    #[inline]
    fn alloc_mut(&mut self, slot: AllocSlot) -> Option<&mut Allocation> {
        self.slots[slot.index()].as_mut()
    }

    /// Moves the deadline of the allocation in `slot` to `expires`, keeping its one entry.
    fn set_expiry(&mut self, slot: AllocSlot, expires: Instant) {
        let Some(alloc) = self.slots[slot.index()].as_mut() else {
            return;
        };
        self.expiries.remove(&(alloc.expires, slot));
        alloc.expires = expires;
        self.expiries.insert((expires, slot));
    }

    fn insert_allocation(&mut self, alloc: Allocation, slot: AllocSlot) {
        self.expiries.insert((alloc.expires, slot));
        self.by_flow.insert(alloc.flow, slot);
        self.slots[slot.index()] = Some(alloc);
    }

    /// A free slot; `None` when all [`MAX_SLOTS`] are in use.
    fn reserve_slot(&mut self) -> Option<AllocSlot> {
        match self.free_slots.pop() {
            Some(s) => Some(s),
            None if (self.slots.len() as u64) < u64::from(MAX_SLOTS) => {
                self.slots.push(None);
                Some(AllocSlot::at(self.slots.len() - 1))
            }
            None => None,
        }
    }

    fn remove_allocation(
        &mut self,
        slot: AllocSlot,
        now: Instant,
        reason: EndReason,
        binder: &mut impl RelayBinder,
    ) {
        let Some(alloc) = self.slots[slot.index()].take() else {
            return;
        };
        self.expiries.remove(&(alloc.expires, slot));
        self.by_flow.remove(&alloc.flow);
        if alloc.tcp {
            self.close_tcp_of(slot);
        }
        let relay = alloc.relay_addr();
        for (index, r) in alloc.live_relays() {
            self.close_relay(slot, index, r.addr, binder);
        }
        self.shared.quotas.release(&alloc.user_id);
        self.free_slots.push(slot);
        let duration = now.saturating_duration_since(alloc.created);
        self.stats.record_end(alloc.transport, duration.as_secs());
        self.events.push_back(Event::AllocationEnded {
            flow: alloc.flow,
            transport: alloc.transport,
            username: alloc.username,
            relay,
            duration,
            traffic: alloc.traffic,
            reason,
        });
    }
}

/// Relay socket `index` (0, or 1 for the IPv6 half of a dual allocation) of the allocation in
/// `slot`. With [`slot_of`], the one place that converts between slots and relay ids: a slot's
/// sockets get two ids side by side, so the ids stay dense for the runtime's tables.
fn relay_of(slot: AllocSlot, index: usize) -> RelayId {
    RelayId::new(slot.0 * 2 + u32::from(index != 0))
}

/// The slot of the allocation that owns relay socket `relay`, and the socket's index in it.
fn slot_of(relay: RelayId) -> (AllocSlot, usize) {
    let n = relay.index() as u32;
    (AllocSlot(n / 2), (n % 2) as usize)
}

fn is_turn_request(m: u16) -> bool {
    matches!(
        m,
        method::ALLOCATE
            | method::REFRESH
            | method::CREATE_PERMISSION
            | method::CHANNEL_BIND
            | method::CONNECT
            | method::CONNECTION_BIND
    )
}

/// Which way relayed data goes.
#[derive(Clone, Copy)]
enum Direction {
    /// Client to peer (indexes `Server::capacity`).
    ToPeer = 0,
    /// Peer to client.
    ToClient = 1,
}

/// Charges `len` bytes going `dir` to the allocation's bandwidth budget and to the shard's
/// (`capacity`) and counts them: as relayed, or, when either budget lacks them, as dropped for
/// bandwidth (false).
#[inline]
fn charge(
    alloc: &mut Allocation,
    capacity: &mut [Option<TokenBucket>; 2],
    stats: &CoreStats,
    dir: Direction,
    len: usize,
    now: Instant,
) -> bool {
    let limit = match dir {
        ToPeer => &mut alloc.to_peer_limit,
        ToClient => &mut alloc.to_client_limit,
    };
    if !allow(limit, &mut capacity[dir as usize], len, now) {
        stats.dropped_bandwidth.count(len);
        return false;
    }
    match dir {
        ToPeer => {
            alloc.traffic.count_to_peer(len);
            stats.to_peers.count(len);
        }
        ToClient => {
            alloc.traffic.count_to_client(len);
            stats.to_clients.count(len);
        }
    }
    true
}

/// Zero-pads `buf` from `end` to the next multiple of four (relative to the frame start, which
/// is itself 4-aligned) and returns the new end.
fn pad_zero(buf: &mut [u8], end: usize) -> usize {
    let padded = (end + 3) & !3;
    buf[end..padded].fill(0);
    padded
}

/// Attribute type of XOR-PEER-ADDRESS, re-exported for the framing helpers.
const XOR_PEER_ADDRESS: u16 = attr::XOR_PEER_ADDRESS;
