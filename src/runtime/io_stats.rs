//! Counters for what the runtime's I/O drops or refuses, beside the core's own counters: one
//! writer per shard, summed at scrape time like [`crate::proto::server::CoreStats`].

use crate::proto::counters::{Counter, Traffic};

/// One shard's I/O counters.
#[derive(Debug, Default)]
pub struct IoStats {
    /// Datagrams the kernel dropped because a socket's receive queue was full (reported by
    /// `SO_RXQ_OVFL`; the kernel does not say their size). Under overload this is where the
    /// excess goes: it costs the relay nothing.
    pub dropped_queue_full: Counter,
    /// Datagrams not sent because the socket's send buffer was full (EAGAIN/ENOBUFS).
    pub dropped_send_again: Traffic,
    /// Datagrams the kernel refused for another reason (unreachable, too big, refused port).
    pub dropped_send_error: Traffic,
    /// Frames for a TCP/TLS client that does not read fast enough (its backlog is full).
    pub dropped_client_backlog: Traffic,
    /// `accept()` failures for lack of file descriptors (EMFILE/ENFILE); accepting pauses.
    pub accept_fd_limit: Counter,
    /// Other `accept()` failures.
    pub accept_other: Counter,
    /// Loop turns that stopped handshake work early to keep the relay path moving.
    pub tls_handshakes_deferred: Counter,
    /// Waits before a poll that `poll-interval-ms` or `poll-coalesce-us` asked for.
    pub poll_waits: Counter,
    /// RFC 6062 connections closed at once: a peer over the connection limits, a peer
    /// connection that could not be opened, or a ConnectionBind whose owning shard's
    /// hand-over queue was full.
    pub tcp_relay_dropped: Counter,
    /// ConnectionBind connections handed to the shard that owns their allocation.
    pub tcp_relay_handovers: Counter,
    /// PROXY protocol connections whose header was accepted.
    pub proxy_accepted: Counter,
    /// Connections to a PROXY protocol port from a source not in `proxy-protocol-trusted`.
    pub proxy_untrusted: Counter,
    /// Trusted connections that did not start with a PROXY header.
    pub proxy_missing: Counter,
    /// Trusted connections with a malformed PROXY header.
    pub proxy_malformed: Counter,
    /// Trusted connections whose PROXY header did not arrive in time.
    pub proxy_timeout: Counter,
}
