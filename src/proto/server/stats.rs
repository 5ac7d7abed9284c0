//! Counters one shard keeps; plain integers because only the shard's own thread writes them.

/// Per-shard protocol counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CoreStats {
    /// Binding requests answered.
    pub binding_requests: u64,
    /// Allocations created.
    pub allocations_created: u64,
    /// Allocations ended for any reason.
    pub allocations_ended: u64,
    /// Requests refused for a missing, stale or wrong credential.
    pub auth_failures: u64,
    /// Error responses sent (any code).
    pub error_responses: u64,
    /// Datagrams that were not valid STUN or ChannelData.
    pub dropped_malformed: u64,
    /// Data for a peer or from a peer without a live permission or channel.
    pub dropped_no_permission: u64,
    /// ChannelData or Send from a client without an allocation.
    pub dropped_no_allocation: u64,
    /// Requests refused because the peer is not allowed.
    pub forbidden_peer: u64,
    /// Packets relayed client → peer.
    pub relayed_to_peer_packets: u64,
    /// Payload bytes relayed client → peer.
    pub relayed_to_peer_bytes: u64,
    /// Packets relayed peer → client.
    pub relayed_to_client_packets: u64,
    /// Payload bytes relayed peer → client.
    pub relayed_to_client_bytes: u64,
}
