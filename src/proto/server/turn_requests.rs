//! Allocate, Refresh, CreatePermission, ChannelBind and Send (RFC 8656 §7–§12).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use super::super::allocation::MAX_PERMISSIONS;
use super::super::allocation::{AddressError, Allocation, Relay, TrafficCounters};
use super::super::auth::algorithm::ReplyKey;
use super::super::auth::Purpose;
use super::super::bandwidth::TokenBucket;
use super::super::channel_data::is_valid_channel;
use super::super::ports::ReservedPort;
use super::super::stun::MessageWriter;
use super::super::stun::{attr, method, Attributes, Class, CodecError, ErrorCode, Message};
use super::auth_check::Authed;
use super::dual::{family_index, family_number, family_of_number, DualBind};
use super::reply::ReplyTo;
use super::request::Request;
use super::{relay_of, transport_index, AllocSlot, BIND_ATTEMPTS};
use super::{
    BindError, ClientAction, EndReason, Event, Family, Flow, RelayAt, RelayBinder, RelayId,
    RelayKind, RelaySocket, Server,
};

const UDP: u8 = 17;
/// REQUESTED-TRANSPORT value for TCP (RFC 6062 §6.1).
const TCP: u8 = 6;

/// What a TURN request handler decided: the answer it wrote into `out` (`ClientAction::None`
/// for none), or the error code to answer with, signed and fingerprinted like the request.
pub(super) type Handled = Result<ClientAction, ErrorCode>;

/// An authenticated request on the allocation in `slot`, which its user holds.
#[derive(Clone, Copy)]
pub(super) struct OnAllocation<'a> {
    /// The request.
    pub(super) req: Request<'a>,
    /// The allocation's slot.
    pub(super) slot: AllocSlot,
    /// How to sign the answer (None with no-auth).
    pub(super) key: Option<&'a ReplyKey>,
}

impl Server {
    pub(super) fn handle_turn_request(
        &mut self,
        req: Request<'_>,
        out: &mut [u8],
        binder: &mut impl RelayBinder,
    ) -> ClientAction {
        let Request {
            flow, msg, attrs, ..
        } = req;
        let purpose = if msg.method == method::ALLOCATE {
            Purpose::Allocate
        } else {
            Purpose::Refresh
        };
        if !attrs.has_integrity() {
            // Requests that cannot succeed whatever the credentials get their short final
            // answer before the challenge, which is the largest unauthenticated reply: an
            // Allocate without REQUESTED-TRANSPORT (400) and a request for an allocation this
            // 5-tuple does not hold (437). Neither tells the sender anything it does not know.
            if purpose == Purpose::Allocate && attrs.requested_transport.is_none() {
                return self.error_reply(out, req.reply_to(None), ErrorCode::BadRequest);
            }
            if purpose == Purpose::Refresh
                && msg.method != method::CONNECTION_BIND
                && !self.by_flow.contains_key(&flow)
            {
                return self.error_reply(out, req.reply_to(None), ErrorCode::AllocationMismatch);
            }
        }
        let authed = match self.authenticate(req, purpose, out) {
            Ok(a) => a,
            Err(reply) => return reply,
        };
        let key = authed.key;
        if !attrs.unknown().is_empty() {
            return self.unknown_attributes_reply(out, msg, attrs, key.as_ref());
        }
        let handled = match msg.method {
            method::ALLOCATE => self.allocate(req, &authed, out, binder),
            method::CONNECTION_BIND => self.connection_bind(req, &authed, out),
            _ => self.held_slot(flow, &authed).and_then(|slot| {
                let on = OnAllocation {
                    req,
                    slot,
                    key: key.as_ref(),
                };
                match msg.method {
                    method::REFRESH => self.refresh(on, out, binder),
                    method::CREATE_PERMISSION => self.create_permission(on, out),
                    method::CONNECT => self.connect(on),
                    _ => self.channel_bind(on, out),
                }
            }),
        };
        handled.unwrap_or_else(|code| self.error_reply(out, req.reply_to(key.as_ref()), code))
    }

    /// The slot of the allocation `flow` holds, if `authed`'s user created it (Refresh,
    /// CreatePermission, Connect and ChannelBind act on it).
    fn held_slot(&self, flow: Flow, authed: &Authed<'_>) -> Result<AllocSlot, ErrorCode> {
        let Some(&slot) = self.by_flow.get(&flow) else {
            return Err(ErrorCode::AllocationMismatch);
        };
        let same_user = self
            .alloc(slot)
            .is_some_and(|a| authed.key.is_none() || *a.username == *authed.username);
        if !same_user {
            return Err(ErrorCode::WrongCredentials);
        }
        Ok(slot)
    }

    fn allocate(
        &mut self,
        req: Request<'_>,
        authed: &Authed<'_>,
        out: &mut [u8],
        binder: &mut impl RelayBinder,
    ) -> Handled {
        let Request {
            now,
            flow,
            transport,
            msg,
            attrs,
        } = req;
        let key = authed.key;
        let fp = attrs.fingerprint;
        if let Some(&slot) = self.by_flow.get(&flow) {
            let retransmit = self.alloc(slot).is_some_and(|a| a.allocate_tid == msg.tid);
            if retransmit {
                return Ok(self.allocate_success(out, msg, slot, fp));
            }
            return Err(ErrorCode::AllocationMismatch);
        }
        if self.draining {
            let alternate = self.config.settings.alternate_for(transport);
            let Some(alt) = alternate else {
                return Err(ErrorCode::InsufficientCapacity);
            };
            let to = req.reply_to(key.as_ref());
            let redirect = self.error_reply_with(out, to, ErrorCode::TryAlternate, |w| {
                w.plain_address(attr::ALTERNATE_SERVER, &alt)
            });
            return Ok(redirect);
        }
        let tcp = match attrs.requested_transport {
            None => return Err(ErrorCode::BadRequest),
            Some(UDP) if !self.config.settings.no_udp_relay => false,
            Some(TCP) if !self.config.settings.no_tcp_relay => true,
            Some(_) => return Err(ErrorCode::UnsupportedTransportProtocol),
        };
        // RFC 6062 §5.1: a TCP relay is for clients on TCP or TLS, and the UDP-only
        // attributes make no sense with it (coturn answers the same); nor does a second family.
        if tcp
            && (!transport.is_stream()
                || attrs.dont_fragment
                || attrs.even_port.is_some()
                || attrs.reservation_token.is_some()
                || attrs.additional_family.is_some())
        {
            return Err(ErrorCode::BadRequest);
        }
        // RFC 8656 §7.2 steps 5-9, in the RFC's order.
        if attrs.reservation_token.is_some()
            && (attrs.even_port.is_some()
                || attrs.requested_family.is_some()
                || attrs.additional_family.is_some())
        {
            return Err(ErrorCode::BadRequest);
        }
        if attrs.requested_family.is_some() && attrs.additional_family.is_some() {
            return Err(ErrorCode::BadRequest);
        }
        let family = match attrs.requested_family {
            None | Some(1) => Family::V4,
            Some(2) => Family::V6,
            Some(_) => return Err(ErrorCode::AddressFamilyNotSupported),
        };
        if attrs.even_port == Some(true) && attrs.additional_family.is_some() {
            return Err(ErrorCode::BadRequest);
        }
        let dual = match attrs.additional_family {
            None => false,
            Some(2) => true,
            Some(1) => return Err(ErrorCode::BadRequest),
            Some(_) => return Err(ErrorCode::AddressFamilyNotSupported),
        };
        let shared = self.shared.clone();
        let config = self.config.clone();
        let user_id = config.auth.user_id(authed.username);
        // A dual allocation is one allocation to the quotas, whatever its number of relays.
        if let Err(e) = shared.quotas.try_acquire(user_id) {
            self.stats.quota_refusals.inc();
            return Err(e.stun_code());
        }
        let Some(slot) = self.reserve_slot() else {
            shared.quotas.release(user_id);
            return Err(ErrorCode::InsufficientCapacity);
        };
        let lifetime = config.settings.granted_lifetime(attrs.lifetime);
        let expires = now + Duration::from_secs(lifetime.into());
        let bound = if dual {
            self.bind_dual(slot, attrs, now, binder)
        } else {
            let kind = if tcp {
                RelayKind::Tcp
            } else {
                RelayKind::Udp {
                    dont_fragment: attrs.dont_fragment,
                }
            };
            self.bind_relay(relay_of(slot, 0), family, kind, attrs, now, binder)
                .map(|(addr, token)| DualBind {
                    addrs: [Some(addr), None],
                    token,
                    address_error: None,
                })
                .map_err(RelayError::stun_code)
        };
        let bound = match bound {
            Ok(bound) => bound,
            Err(code) => {
                shared.quotas.release(user_id);
                self.free_slots.push(slot);
                return Err(code);
            }
        };
        let relays = bound.addrs.map(|addr| {
            addr.map(|addr| Relay {
                addr,
                advertised: config.settings.advertised(addr),
                expires,
            })
        });
        for r in relays.iter().flatten() {
            self.stats.relays_opened[family_index(r.family())].inc();
        }
        if dual {
            match bound.address_error {
                None => self.stats.dual_allocations.inc(),
                Some((f, _)) => self.stats.dual_family_refusals[family_index(f)].inc(),
            }
        }
        let id = self.next_session_id;
        self.next_session_id += 1;
        let max_bps = config.settings.max_bps;
        let alloc = Allocation {
            id,
            secret_id: authed.secret_id,
            to_peer_limit: TokenBucket::limit(max_bps, now),
            to_client_limit: TokenBucket::limit(max_bps, now),
            flow,
            transport,
            relays,
            address_error: bound.address_error.map(|(family, code)| AddressError {
                family,
                code,
                attr: if attrs.legacy_additional_family {
                    attr::LEGACY_ADDRESS_ERROR_CODE
                } else {
                    attr::ADDRESS_ERROR_CODE
                },
            }),
            expires,
            created: now,
            username: authed.username.into(),
            user_id: user_id.into(),
            key,
            allocate_tid: msg.tid,
            granted_lifetime: lifetime,
            reservation: bound.token,
            permissions: Vec::new(),
            channels: Vec::new(),
            traffic: TrafficCounters::default(),
            tcp,
        };
        let (relay, advertised) = (alloc.relay_addr(), alloc.advertised());
        let additional = match relays {
            [Some(_), Some(r)] => Some((r.addr, r.advertised)),
            _ => None,
        };
        self.insert_allocation(alloc, slot);
        self.stats.allocations_created[transport_index(transport)].inc();
        self.events.push_back(Event::AllocationCreated {
            flow,
            transport,
            username: authed.username.into(),
            relay,
            advertised,
            additional,
            lifetime,
        });
        Ok(self.allocate_success(out, msg, slot, fp))
    }

    /// Picks a port from the shared pool and has the runtime open a relay socket of `kind` on
    /// it; returns the relay address and the RESERVATION-TOKEN for the next port when EVEN-PORT
    /// asked for one. (A TCP relay listener, RFC 6062, never comes with EVEN-PORT or a
    /// RESERVATION-TOKEN: Allocate refuses those with 400.)
    pub(super) fn bind_relay(
        &mut self,
        relay: RelayId,
        family: Family,
        kind: RelayKind,
        attrs: &Attributes<'_>,
        now: Instant,
        binder: &mut impl RelayBinder,
    ) -> Result<(SocketAddr, Option<[u8; 8]>), RelayError> {
        let shared = self.shared.clone();
        let unix = self.unix_time(now);
        if let Some(token) = attrs.reservation_token {
            let reserved = shared
                .reservations
                .take(&token, unix)
                .ok_or(RelayError::UnknownReservation)?;
            let port = reserved.port;
            return match binder.bind(RelaySocket::new(
                relay,
                RelayAt::Ip(reserved.ip),
                port,
                kind,
            )) {
                Ok(addr) => Ok((addr, None)),
                Err(e) => {
                    shared.ports.release(port);
                    Err(RelayError::Bind(e))
                }
            };
        }
        let reserve_next = attrs.even_port == Some(true);
        for _ in 0..BIND_ATTEMPTS {
            let hint = self.next_random() as u32;
            let port = match attrs.even_port {
                Some(_) => shared.ports.take_even_pair(hint),
                None => shared.ports.take_any(hint),
            }
            .ok_or(RelayError::NoFreePort)?;
            if attrs.even_port == Some(false) {
                shared.ports.release(port + 1);
            }
            match binder.bind(RelaySocket::new(relay, RelayAt::Family(family), port, kind)) {
                Ok(addr) => {
                    let token = reserve_next.then(|| {
                        let next = ReservedPort {
                            port: port + 1,
                            ip: addr.ip(),
                        };
                        shared.reservations.reserve(next, unix, &mut self.rng)
                    });
                    return Ok((addr, token));
                }
                Err(e) => {
                    shared.ports.release(port);
                    if reserve_next {
                        shared.ports.release(port + 1);
                    }
                    if e != BindError::AddrInUse {
                        return Err(RelayError::Bind(e));
                    }
                }
            }
        }
        Err(RelayError::PortsBusy)
    }

    fn allocate_success(
        &mut self,
        out: &mut [u8],
        msg: &Message<'_>,
        slot: AllocSlot,
        fp: bool,
    ) -> ClientAction {
        let Some(a) = self.alloc(slot) else {
            return ClientAction::None;
        };
        let advertised = a.relays.map(|r| r.map(|r| r.advertised));
        let (address_error, lifetime, token, mapped, key) = (
            a.address_error,
            a.granted_lifetime,
            a.reservation,
            a.flow.remote,
            a.key,
        );
        let reason = self.config.settings.include_reason;
        let Ok(mut w) = MessageWriter::new(out, msg.method, Class::Success, msg.tid) else {
            return ClientAction::None;
        };
        let written = (|| -> Result<(), CodecError> {
            // A dual allocation carries one XOR-RELAYED-ADDRESS per family (§7.2 step 9).
            for addr in advertised.iter().flatten() {
                w.xor_address(attr::XOR_RELAYED_ADDRESS, addr)?;
            }
            if let Some(e) = address_error {
                w.address_error_code(e.attr, family_number(e.family), e.code, reason)?;
            }
            w.attr_u32(attr::LIFETIME, lifetime)?;
            if let Some(t) = token {
                w.attr(attr::RESERVATION_TOKEN, &t)?;
            }
            w.xor_address(attr::XOR_MAPPED_ADDRESS, &mapped)
        })();
        if written.is_err() {
            return ClientAction::None;
        }
        self.finish_reply(w, ReplyTo::new(msg, key.as_ref(), fp))
    }

    fn refresh(
        &mut self,
        on: OnAllocation<'_>,
        out: &mut [u8],
        binder: &mut impl RelayBinder,
    ) -> Handled {
        let OnAllocation { req, slot, .. } = on;
        let Request { now, attrs, .. } = req;
        let Some(alloc) = self.alloc(slot) else {
            return Ok(ClientAction::None);
        };
        // A Refresh naming a family acts on that family's relay of a dual allocation only
        // (RFC 8656 §7.3); naming a family the allocation lacks is 443.
        let target = match attrs.requested_family {
            None => None,
            Some(f) => match family_of_number(f).filter(|f| alloc.relay_index(*f).is_some()) {
                Some(f) => Some(f),
                None => return Err(ErrorCode::PeerAddressFamilyMismatch),
            },
        };
        let whole = match target {
            None => true,
            Some(f) => alloc.live_relays().all(|(_, r)| r.family() == f),
        };
        let lifetime = if attrs.lifetime == Some(0) {
            match target {
                Some(f) if !whole => self.drop_family(slot, f, now, binder),
                _ => self.remove_allocation(slot, now, EndReason::Deleted, binder),
            }
            0
        } else {
            let granted = self.config.settings.granted_lifetime(attrs.lifetime);
            self.refresh_relays(slot, target, now + Duration::from_secs(granted.into()));
            self.announce_routes(slot, now, |_| true);
            granted
        };
        self.success_reply(out, on, |w| w.attr_u32(attr::LIFETIME, lifetime))
    }

    fn create_permission(&mut self, on: OnAllocation<'_>, out: &mut [u8]) -> Handled {
        let OnAllocation { req, slot, .. } = on;
        let Request { now, attrs, .. } = req;
        match attrs.peer_count() {
            0 => return Err(ErrorCode::BadRequest),
            // RFC 8656 §9 sets no limit on the count; more peers than one allocation may hold
            // is a capacity problem (508), whatever the request's duplicates.
            n if n > MAX_PERMISSIONS => return Err(ErrorCode::InsufficientCapacity),
            _ => {}
        }
        let mut ips = [IpAddr::V4(Ipv4Addr::UNSPECIFIED); MAX_PERMISSIONS];
        let mut n = 0;
        for peer in attrs.peer_addresses() {
            let Ok(peer) = peer else {
                return Err(ErrorCode::BadRequest);
            };
            if let Some(code) = self.check_peer(slot, peer) {
                return Err(code);
            }
            if !ips[..n].contains(&peer.ip()) {
                ips[n] = peer.ip();
                n += 1;
            }
        }
        let expires = now + Duration::from_secs(self.config.settings.permission_lifetime.into());
        let Some(alloc) = self.alloc_mut(slot) else {
            return Ok(ClientAction::None);
        };
        if !alloc.has_room_for_permissions(ips[..n].iter(), now) {
            return Err(ErrorCode::InsufficientCapacity);
        }
        for ip in &ips[..n] {
            alloc.add_permission(*ip, expires, now);
        }
        self.announce_routes(slot, now, |p| ips[..n].contains(&p.ip()));
        self.success_reply(out, on, |_| Ok(()))
    }

    fn channel_bind(&mut self, on: OnAllocation<'_>, out: &mut [u8]) -> Handled {
        let OnAllocation { req, slot, .. } = on;
        let Request { now, attrs, .. } = req;
        let max = self.config.settings.max_channel();
        // RFC 6062 §5.1: channels and Send belong to UDP relays only.
        if self.alloc(slot).is_some_and(|a| a.tcp) {
            return Err(ErrorCode::BadRequest);
        }
        let number = attrs.channel_number.filter(|n| is_valid_channel(*n, max));
        let (Some(number), Some(Ok(peer))) = (number, attrs.peer_address()) else {
            return Err(ErrorCode::BadRequest);
        };
        if let Some(code) = self.check_peer(slot, peer) {
            return Err(code);
        }
        let settings = &self.config.settings;
        let channel_expires = now + Duration::from_secs(settings.channel_lifetime.into());
        let permission_expires = now + Duration::from_secs(settings.permission_lifetime.into());
        let Some(alloc) = self.alloc_mut(slot) else {
            return Ok(ClientAction::None);
        };
        if alloc.channel_conflict(number, peer, now) {
            return Err(ErrorCode::BadRequest);
        }
        if !alloc.has_room_for_permissions([peer.ip()].iter(), now)
            || !alloc.bind_channel(number, peer, channel_expires, now)
        {
            return Err(ErrorCode::InsufficientCapacity);
        }
        alloc.add_permission(peer.ip(), permission_expires, now);
        self.announce_routes(slot, now, |p| p.ip() == peer.ip());
        self.success_reply(out, on, |_| Ok(()))
    }

    /// The error code for a peer the allocation in `slot` may not reach, if any.
    pub(super) fn check_peer(&mut self, slot: AllocSlot, peer: SocketAddr) -> Option<ErrorCode> {
        let has_family = match self.alloc(slot) {
            Some(alloc) => alloc.relay_index(Family::of(&peer)).is_some(),
            None => return Some(ErrorCode::AllocationMismatch),
        };
        if !has_family {
            return Some(ErrorCode::PeerAddressFamilyMismatch);
        }
        let config = &self.config;
        if !config
            .peers
            .permits(peer, &config.settings.server_addresses)
        {
            self.stats.forbidden_peer.inc();
            tracing::debug!(%peer, "peer refused by policy");
            return Some(ErrorCode::Forbidden);
        }
        None
    }

    /// The success answer to `on`, with the attributes `fill` writes.
    fn success_reply(
        &mut self,
        out: &mut [u8],
        on: OnAllocation<'_>,
        fill: impl FnOnce(&mut MessageWriter<'_>) -> Result<(), CodecError>,
    ) -> Handled {
        let msg = on.req.msg;
        let Ok(mut w) = MessageWriter::new(out, msg.method, Class::Success, msg.tid) else {
            return Ok(ClientAction::None);
        };
        if fill(&mut w).is_err() {
            return Ok(ClientAction::None);
        }
        Ok(self.finish_reply(w, on.req.reply_to(on.key)))
    }

    pub(super) fn handle_send_indication(
        &mut self,
        now: Instant,
        flow: Flow,
        data: &[u8],
        attrs: &Attributes<'_>,
    ) -> ClientAction {
        let (Some(Ok(peer)), Some(payload)) = (attrs.peer_address(), attrs.data) else {
            self.stats.dropped_malformed.count(data.len());
            return ClientAction::None;
        };
        let Some(slot) = self.relaying_slot(flow, payload.len()) else {
            return ClientAction::None;
        };
        let permitted = self.alloc(slot).is_some_and(|alloc| {
            !alloc.tcp
                && alloc.relay_index(Family::of(&peer)).is_some()
                && alloc.permits(peer.ip(), now)
        });
        if !permitted {
            self.stats.dropped_no_permission.count(payload.len());
            return ClientAction::None;
        }
        let start = payload.as_ptr() as usize - data.as_ptr() as usize;
        self.relay_to_peer(now, slot, peer, start, start + payload.len())
    }
}

/// Why an Allocate got no relay socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(super) enum RelayError {
    /// The RESERVATION-TOKEN names no held port (unknown, claimed already, or lapsed).
    #[error("no port is reserved under this token")]
    UnknownReservation,
    /// The relay port range has no free port (pair) left.
    #[error("the relay port range is exhausted")]
    NoFreePort,
    /// Every port tried was held by another process.
    #[error("every relay port tried is in use by another process")]
    PortsBusy,
    /// The runtime could not open the socket.
    #[error(transparent)]
    Bind(BindError),
}

impl RelayError {
    /// The STUN error code to answer the Allocate with.
    pub(super) fn stun_code(self) -> ErrorCode {
        match self {
            RelayError::UnknownReservation | RelayError::NoFreePort | RelayError::PortsBusy => {
                ErrorCode::InsufficientCapacity
            }
            RelayError::Bind(e) => e.stun_code(),
        }
    }
}
