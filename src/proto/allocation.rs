//! One allocation: its relay, lifetime, permissions and channel bindings (RFC 8656 §2.2).

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use super::auth::algorithm::ReplyKey;
use super::bandwidth::TokenBucket;
use super::flow::{Flow, Transport};

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
    /// The relay socket's local address.
    pub relay_addr: SocketAddr,
    /// The address advertised in XOR-RELAYED-ADDRESS (external-ip applied).
    pub advertised: SocketAddr,
    /// When the allocation ends unless refreshed.
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
