//! What the protocol core needs to know of the configuration, as plain data.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use super::auth::nonce::NonceKey;
use super::auth::Authenticator;
use super::flow::Transport;
use super::peer_policy::{PeerPolicy, ServerAddresses};
use super::ports::{PortPool, Reservations};
use super::quota::Quotas;

/// Default allocation lifetime (RFC 8656 §3.2).
pub const DEFAULT_ALLOCATION_LIFETIME: u32 = 600;
/// Value of the SOFTWARE attribute.
pub const SOFTWARE: &str = concat!("ferroturn/", env!("CARGO_PKG_VERSION"));

/// Behaviour switches and lifetimes for one core; shared by all shards.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Send SOFTWARE (coturn's `no-software-attribute` turns it off).
    pub software: bool,
    /// Add FINGERPRINT to every response, not only to answers of requests that carried one.
    pub fingerprint: bool,
    /// Seconds a nonce stays valid.
    pub stale_nonce_secs: u64,
    /// Upper bound on allocation lifetimes, seconds.
    pub max_allocate_lifetime: u32,
    /// Channel binding lifetime, seconds.
    pub channel_lifetime: u32,
    /// Permission lifetime, seconds.
    pub permission_lifetime: u32,
    /// Answer STUN Binding requests only; TURN requests are ignored.
    pub stun_only: bool,
    /// Ignore STUN Binding requests.
    pub no_stun: bool,
    /// Refuse every Allocate (no UDP relaying configured).
    pub no_udp_relay: bool,
    /// Relay addresses as advertised: relay IP → external IP (`external-ip=PUBLIC/PRIVATE`).
    pub external_ips: Vec<ExternalMapping>,
    /// Where to send clients while draining (ALTERNATE-SERVER, 300).
    pub alternate_servers: Vec<SocketAddr>,
    /// Per client transport (UDP, TCP, TLS), tried before `alternate_servers`
    /// (`udp-`, `tcp-`, `tls-alternate-server`).
    pub transport_alternate_servers: [Vec<SocketAddr>; 3],
    /// `max-bps`: bytes per second per allocation and direction; 0 = unlimited.
    pub max_bps: u64,
    /// This shard's share of `bps-capacity`, bytes per second per direction; 0 = unlimited.
    pub bps_capacity_per_shard: u64,
    /// The listening and relay addresses the runtime bound, refused as peers.
    pub server_addresses: ServerAddresses,
    /// Put the reason phrase into ERROR-CODE (`include-reason-string`); off by default so
    /// error answers stay small.
    pub include_reason: bool,
    /// 401/438 answers per second and source address (`unauthorized-ratelimit-rps` when
    /// `unauthorized-ratelimit` is on); 0 = unlimited.
    pub unauthorized_rps: u32,
    /// `rfc5766-channel-numbers`: accept channels 0x5000–0x7FFF as RFC 5766 did.
    pub rfc5766_channel_numbers: bool,
    /// `sha256-integrity`: offer SHA-256 long-term credentials (RFC 8489 §9.2), i.e. put the
    /// nonce cookie and PASSWORD-ALGORITHMS into every 401/438. Off by default: browsers use
    /// SHA-1 integrity, and the offer makes each challenge 28 bytes larger for everyone.
    pub sha256_integrity: bool,
    /// `no-tcp-relay`: refuse TCP relay allocations (RFC 6062) with 442.
    pub no_tcp_relay: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            software: true,
            fingerprint: false,
            stale_nonce_secs: 600,
            max_allocate_lifetime: 3600,
            channel_lifetime: 600,
            permission_lifetime: 300,
            stun_only: false,
            no_stun: false,
            no_udp_relay: false,
            external_ips: Vec::new(),
            alternate_servers: Vec::new(),
            transport_alternate_servers: Default::default(),
            max_bps: 0,
            bps_capacity_per_shard: 0,
            server_addresses: ServerAddresses::default(),
            include_reason: false,
            unauthorized_rps: 0,
            rfc5766_channel_numbers: false,
            sha256_integrity: false,
            no_tcp_relay: false,
        }
    }
}

/// One `external-ip` entry: advertise `public` for relays bound on `private` (or, without a
/// private part, for every relay of the same family).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExternalMapping {
    /// The address clients are told.
    pub public: IpAddr,
    /// The relay address it stands for.
    pub private: Option<IpAddr>,
}

impl Settings {
    /// Where a draining server sends a client of `transport`: the first of its transport's
    /// list, else the first `alternate-server`.
    pub fn alternate_for(&self, transport: Transport) -> Option<SocketAddr> {
        let index = match transport {
            Transport::Udp => 0,
            Transport::Tcp => 1,
            Transport::Tls => 2,
        };
        self.transport_alternate_servers[index]
            .first()
            .or(self.alternate_servers.first())
            .copied()
    }

    /// The highest channel number a client may bind and send on.
    pub fn max_channel(&self) -> u16 {
        if self.rfc5766_channel_numbers {
            super::channel_data::MAX_CHANNEL_RFC5766
        } else {
            super::channel_data::MAX_CHANNEL
        }
    }

    /// The address to advertise for a relay bound at `relay`.
    pub fn advertised(&self, relay: SocketAddr) -> SocketAddr {
        let exact = self
            .external_ips
            .iter()
            .find(|m| m.private == Some(relay.ip()));
        let by_family = || {
            self.external_ips
                .iter()
                .find(|m| m.private.is_none() && m.public.is_ipv4() == relay.is_ipv4())
        };
        match exact.or_else(by_family) {
            Some(m) => SocketAddr::new(m.public, relay.port()),
            None => relay,
        }
    }

    /// Lifetime granted for a requested one (RFC 8656 §7.2: never below the default unless the
    /// server maximum is lower, never above the maximum).
    pub fn granted_lifetime(&self, requested: Option<u32>) -> u32 {
        let default = DEFAULT_ALLOCATION_LIFETIME.min(self.max_allocate_lifetime);
        match requested {
            None => default,
            Some(r) => r.min(self.max_allocate_lifetime).max(default),
        }
    }
}

/// State every shard shares for its whole life: the nonce key and the cross-shard counters.
/// Only the control plane (Allocate and allocation ends) touches it, never the relay hot path.
pub struct Shared {
    /// Key for stateless nonces.
    pub nonce_key: NonceKey,
    /// Allocation quotas.
    pub quotas: Quotas,
    /// Relay ports.
    pub ports: PortPool,
    /// Ports held back by EVEN-PORT's R bit.
    pub reservations: Reservations,
}

/// Handle shared by all shards.
pub type SharedRef = Arc<Shared>;

/// The part of the configuration that can change while the relay runs (SIGHUP reload, admin
/// revocations). Each shard holds its own `Arc` and is handed a new one on change, so reading
/// it never takes a lock.
pub struct CoreConfig {
    /// Credential checks.
    pub auth: Authenticator,
    /// Which peers may be reached.
    pub peers: PeerPolicy,
    /// Behaviour switches and limits.
    pub settings: Settings,
    /// Users (quota ids) refused until restart, by the admin API.
    pub revoked_users: HashSet<String>,
    /// REST secrets (by [`secret_id`](super::auth::secret_id)) refused until restart.
    pub revoked_secrets: HashSet<u64>,
}

/// Handle to the current configuration.
pub type CoreConfigRef = Arc<CoreConfig>;
