//! What one shard counts; read by the metrics endpoint while the shard runs.

use crate::counters::{Counter, Traffic};
use crate::flow::Transport;

/// Upper bounds (seconds) of the allocation lifetime histogram buckets.
pub const LIFETIME_BUCKETS: [u64; 8] = [10, 60, 300, 600, 1800, 3600, 7200, 14400];

/// Per-shard protocol counters.
#[derive(Debug, Default)]
pub struct CoreStats {
    /// Binding requests received (and answered).
    pub binding_requests: Counter,
    /// Binding success responses sent.
    pub binding_responses: Counter,
    /// Binding error responses sent.
    pub binding_errors: Counter,
    /// Allocations created, by client transport (udp, tcp, tls).
    pub allocations_created: [Counter; 3],
    /// Allocations ended, by client transport.
    pub allocations_ended: [Counter; 3],
    /// Relay sockets opened, by family (0 = IPv4, 1 = IPv6); a dual allocation opens two.
    pub relays_opened: [Counter; 2],
    /// Relay sockets closed, by family.
    pub relays_closed: [Counter; 2],
    /// Dual allocations (ADDITIONAL-ADDRESS-FAMILY) served in both families.
    pub dual_allocations: Counter,
    /// Dual allocations served in one family only, by the family left out (the answer
    /// carried ADDRESS-ERROR-CODE).
    pub dual_family_refusals: [Counter; 2],
    /// Ended allocations by lifetime bucket (see [`LIFETIME_BUCKETS`]; the last slot is +Inf).
    pub lifetime_buckets: [Counter; 9],
    /// Sum of the lifetimes of ended allocations, seconds.
    pub lifetime_seconds_sum: Counter,
    /// 401 challenges to requests that carried no credentials (the normal first round trip).
    pub auth_challenges: Counter,
    /// Requests refused for a stale or foreign nonce.
    pub auth_stale_nonce: Counter,
    /// Requests refused for a wrong password or an unknown user.
    pub auth_bad_credentials: Counter,
    /// Requests refused for an expired REST username.
    pub auth_expired: Counter,
    /// Requests refused for a revoked user or secret.
    pub auth_revoked: Counter,
    /// Requests lacking USERNAME, REALM or NONCE next to MESSAGE-INTEGRITY.
    pub auth_malformed: Counter,
    /// Requests left unanswered because their source had used up its 401/438 budget
    /// (`unauthorized-ratelimit`).
    pub challenges_ratelimited: Counter,
    /// Error responses sent (any code).
    pub error_responses: Counter,
    /// Allocate requests refused by a quota (486).
    pub quota_refusals: Counter,
    /// Requests refused because the peer is not allowed (403).
    pub forbidden_peer: Counter,
    /// Datagrams that were not valid STUN or ChannelData.
    pub dropped_malformed: Traffic,
    /// Data without a live permission or channel.
    pub dropped_no_permission: Traffic,
    /// Data from a client without an allocation.
    pub dropped_no_allocation: Traffic,
    /// Data over a bandwidth limit (max-bps or bps-capacity).
    pub dropped_bandwidth: Traffic,
    /// Data received from clients (ChannelData and Send indications).
    pub from_clients: Traffic,
    /// Data relayed to peers.
    pub to_peers: Traffic,
    /// Datagrams received from peers on relay sockets.
    pub from_peers: Traffic,
    /// Data relayed to clients.
    pub to_clients: Traffic,
    /// RFC 6062 peer connections opened (Connect succeeded or a permitted peer connected).
    pub tcp_connections_opened: Counter,
    /// Peer connections paired with a client data connection (ConnectionBind succeeded).
    pub tcp_connections_bound: Counter,
    /// Peer connections closed (either side closed, allocation ended, timeout).
    pub tcp_connections_closed: Counter,
    /// Incoming peer connections refused: no permission, or over the per-allocation bounds.
    pub tcp_connections_refused: Counter,
    /// Connect requests that failed or timed out (447).
    pub tcp_connect_failures: Counter,
    /// Peer connections dropped because no ConnectionBind came within 30 s (RFC 6062 §5.3).
    pub tcp_bind_timeouts: Counter,
    /// Bytes relayed client → peer over TCP relay data connections (packets = reads).
    pub tcp_to_peers: Traffic,
    /// Bytes relayed peer → client over TCP relay data connections (packets = reads).
    pub tcp_to_clients: Traffic,
}

impl CoreStats {
    /// Live allocations of a transport: created minus ended.
    pub fn active_allocations(&self, transport: Transport) -> u64 {
        let i = transport_index(transport);
        self.allocations_created[i]
            .get()
            .saturating_sub(self.allocations_ended[i].get())
    }

    /// Live relay sockets of a family (0 = IPv4, 1 = IPv6): opened minus closed.
    pub fn live_relays(&self, family: usize) -> u64 {
        self.relays_opened[family]
            .get()
            .saturating_sub(self.relays_closed[family].get())
    }

    pub(super) fn record_end(&self, transport: Transport, lifetime_secs: u64) {
        self.allocations_ended[transport_index(transport)].inc();
        let slot = LIFETIME_BUCKETS
            .iter()
            .position(|b| lifetime_secs <= *b)
            .unwrap_or(LIFETIME_BUCKETS.len());
        self.lifetime_buckets[slot].inc();
        self.lifetime_seconds_sum.add(lifetime_secs);
    }
}

/// Index of a transport in the per-transport arrays.
pub fn transport_index(t: Transport) -> usize {
    match t {
        Transport::Udp => 0,
        Transport::Tcp => 1,
        Transport::Tls => 2,
    }
}
