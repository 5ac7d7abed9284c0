//! One allocation: its relay, lifetime, permissions and channel bindings (RFC 8656 §2.2).

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use super::auth::algorithm::ReplyKey;
use super::bandwidth::TokenBucket;
use super::flow::{Family, Flow, Transport};
use super::stun::ErrorCode;

/// Most permissions (peer IP addresses) one allocation may hold at once, and so most
/// XOR-PEER-ADDRESS attributes one CreatePermission may carry; more earns 508 (RFC 8656 §9).
pub const MAX_PERMISSIONS: usize = 64;
/// Most channel bindings one allocation may hold at once; more earns 508.
pub const MAX_CHANNELS: usize = 64;

/// A permission for one peer IP address (ports do not matter, RFC 8656 §9).
#[derive(Debug, Clone, Copy)]
pub struct Permission {
    /// The peer address the permission is for.
    pub ip: IpAddr,
    /// When it lapses unless refreshed.
    pub expires: Instant,
}

/// A channel bound to one peer transport address.
#[derive(Debug, Clone, Copy)]
pub struct Channel {
    /// The channel number, 0x4000..=0x4FFF (to 0x7FFF with `rfc5766-channel-numbers`).
    pub number: u16,
    /// The peer it stands for.
    pub peer: SocketAddr,
    /// When it lapses unless refreshed.
    pub expires: Instant,
}

/// One relayed transport address of an allocation: a dual allocation (RFC 8656 §7.2) has one
/// per family, each with its own lifetime (a Refresh may name one family, §7.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Relay {
    /// The relay socket's local address.
    pub addr: SocketAddr,
    /// The address advertised in XOR-RELAYED-ADDRESS (external-ip applied).
    pub advertised: SocketAddr,
    /// When this family's relay ends unless refreshed.
    pub expires: Instant,
}

impl Relay {
    /// The family of the relayed address.
    pub fn family(&self) -> Family {
        Family::of(&self.addr)
    }
}

/// Why one family of a dual allocation was not served, as its success answers say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressError {
    /// The family left out.
    pub family: Family,
    /// 440 (no relay address of the family) or 508 (no port or socket).
    pub code: ErrorCode,
    /// The ADDRESS-ERROR-CODE code point: the one matching the request's
    /// ADDITIONAL-ADDRESS-FAMILY (RFC 8656's, or coturn 4.6's draft one).
    pub attr: u16,
}

/// Counters for one allocation, updated per relayed packet (plain integers: one shard owns them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrafficCounters {
    /// Packets from the client relayed to peers.
    pub to_peer_packets: u64,
    /// Payload bytes from the client relayed to peers.
    pub to_peer_bytes: u64,
    /// Packets from peers relayed to the client.
    pub to_client_packets: u64,
    /// Payload bytes from peers relayed to the client.
    pub to_client_bytes: u64,
}

impl TrafficCounters {
    /// Counts one packet of `bytes` relayed from the client to a peer.
    pub fn count_to_peer(&mut self, bytes: usize) {
        self.to_peer_packets += 1;
        self.to_peer_bytes += bytes as u64;
    }

    /// Counts one packet of `bytes` relayed from a peer to the client.
    pub fn count_to_client(&mut self, bytes: usize) {
        self.to_client_packets += 1;
        self.to_client_bytes += bytes as u64;
    }
}

/// The state of one allocation.
#[derive(Debug)]
pub struct Allocation {
    /// Unique id within the process, for the admin API.
    pub id: u64,
    /// The REST secret that authenticated it, by id (None for static users and no-auth).
    pub secret_id: Option<u64>,
    /// `max-bps` bucket for client → peer data.
    pub to_peer_limit: Option<TokenBucket>,
    /// `max-bps` bucket for peer → client data.
    pub to_client_limit: Option<TokenBucket>,
    /// The client's 5-tuple.
    pub flow: Flow,
    /// Transport between client and server.
    pub transport: Transport,
    /// The relays, by socket index (each index has its own relay id): index 1 is the IPv6
    /// half of a dual allocation, index 0 everything else. At least one is live; a Refresh that
    /// deletes one family of a dual allocation leaves the other.
    pub relays: [Option<Relay>; 2],
    /// The ADDRESS-ERROR-CODE of a dual allocation served in one family only (the family
    /// left out and why), resent with a retransmitted success response.
    pub address_error: Option<AddressError>,
    /// When the next relay lapses unless refreshed: the earliest relay expiry, and the key of
    /// the allocation's one timer entry.
    pub expires: Instant,
    /// When it was created.
    pub created: Instant,
    /// USERNAME that created it; other usernames get 441.
    pub username: Box<str>,
    /// Quota bucket the allocation counts against.
    pub user_id: Box<str>,
    /// Key the client authenticated with (None under no-auth), used to sign responses.
    pub key: Option<ReplyKey>,
    /// Transaction id of the Allocate, so a retransmission is answered again rather than 437.
    pub allocate_tid: [u8; 12],
    /// Lifetime granted at creation, for resending the success response.
    pub granted_lifetime: u32,
    /// Port held back for the client by EVEN-PORT's R bit, with its token.
    pub reservation: Option<[u8; 8]>,
    /// Installed permissions (a short list: linear search beats hashing at this size).
    pub permissions: Vec<Permission>,
    /// Bound channels.
    pub channels: Vec<Channel>,
    /// Traffic counters.
    pub traffic: TrafficCounters,
    /// Relays TCP (RFC 6062: Connect, ConnectionBind) instead of UDP.
    pub tcp: bool,
}

impl Allocation {
    /// The live relays with their socket index.
    pub fn live_relays(&self) -> impl Iterator<Item = (usize, &Relay)> {
        self.relays
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.as_ref().map(|r| (i, r)))
    }

    /// The socket index of the relay of `family`, if the allocation has one.
    pub fn relay_index(&self, family: Family) -> Option<usize> {
        self.live_relays()
            .find(|(_, r)| r.family() == family)
            .map(|(i, _)| i)
    }

    /// The first live relay (every live allocation has one).
    pub fn primary(&self) -> Option<&Relay> {
        self.live_relays().next().map(|(_, r)| r)
    }

    /// The local address of the first live relay socket (unspecified if none is left).
    pub fn relay_addr(&self) -> SocketAddr {
        self.primary()
            .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |r| r.addr)
    }

    /// The advertised address of the first live relay.
    pub fn advertised(&self) -> SocketAddr {
        self.primary()
            .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |r| r.advertised)
    }

    /// Whether both an IPv4 and an IPv6 relay are live.
    pub fn is_dual(&self) -> bool {
        self.relays.iter().all(Option::is_some)
    }

    /// The earliest expiry of the live relays.
    pub fn earliest_expiry(&self) -> Option<Instant> {
        self.live_relays().map(|(_, r)| r.expires).min()
    }

    /// Drops the permissions and channels of `family` (its relay is gone) and lapsed ones.
    pub fn forget_family(&mut self, family: Family, now: Instant) {
        let keep = |ip: IpAddr| ip.is_ipv4() != (family == Family::V4);
        self.permissions.retain(|p| keep(p.ip) && p.expires > now);
        self.channels
            .retain(|c| keep(c.peer.ip()) && c.expires > now);
    }

    /// Whether a live permission exists for `ip`.
    pub fn permits(&self, ip: IpAddr, now: Instant) -> bool {
        self.permissions
            .iter()
            .any(|p| p.ip == ip && p.expires > now)
    }

    /// The live channel bound to `peer`, if any.
    pub fn channel_for_peer(&self, peer: SocketAddr, now: Instant) -> Option<u16> {
        self.channels
            .iter()
            .find(|c| c.peer == peer && c.expires > now)
            .map(|c| c.number)
    }

    /// The peer behind a live channel number.
    pub fn peer_for_channel(&self, number: u16, now: Instant) -> Option<SocketAddr> {
        self.channels
            .iter()
            .find(|c| c.number == number && c.expires > now)
            .map(|c| c.peer)
    }

    /// Installs or refreshes a permission; false when the allocation already holds the maximum.
    pub fn add_permission(&mut self, ip: IpAddr, expires: Instant, now: Instant) -> bool {
        if let Some(p) = self.permissions.iter_mut().find(|p| p.ip == ip) {
            p.expires = expires;
            return true;
        }
        self.permissions.retain(|p| p.expires > now);
        if self.permissions.len() >= MAX_PERMISSIONS {
            return false;
        }
        self.permissions.push(Permission { ip, expires });
        true
    }

    /// Whether every one of `ips` could get a permission without passing the limit.
    pub fn has_room_for_permissions<'a>(
        &self,
        ips: impl Iterator<Item = &'a IpAddr>,
        now: Instant,
    ) -> bool {
        let live = self.permissions.iter().filter(|p| p.expires > now).count();
        let new = ips
            .filter(|ip| !self.permissions.iter().any(|p| p.ip == **ip))
            .count();
        live + new <= MAX_PERMISSIONS
    }

    /// Checks ChannelBind's rules (RFC 8656 §11.2): a channel number stays with one peer and a
    /// peer with one channel while the binding lives.
    pub fn channel_conflict(&self, number: u16, peer: SocketAddr, now: Instant) -> bool {
        self.channels
            .iter()
            .filter(|c| c.expires > now)
            .any(|c| (c.number == number) != (c.peer == peer))
    }

    /// Binds or refreshes a channel; false when the allocation already holds the maximum.
    pub fn bind_channel(
        &mut self,
        number: u16,
        peer: SocketAddr,
        expires: Instant,
        now: Instant,
    ) -> bool {
        if let Some(c) = self
            .channels
            .iter_mut()
            .find(|c| c.number == number && c.peer == peer)
        {
            c.expires = expires;
            return true;
        }
        self.channels.retain(|c| c.expires > now);
        if self.channels.len() >= MAX_CHANNELS {
            return false;
        }
        self.channels.push(Channel {
            number,
            peer,
            expires,
        });
        true
    }
}
