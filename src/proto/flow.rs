//! Identifiers the runtime and the core share for clients and relays.

use std::net::SocketAddr;

/// A client's 5-tuple as the core sees it: the runtime's id for the socket or connection the
/// packets arrived on, plus the client's address. The socket id stands for the server address
/// and the transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flow {
    /// The runtime's socket the packets arrived on.
    pub socket: SocketId,
    /// The client's address as the server sees it.
    pub remote: SocketAddr,
}

/// The runtime's socket a client's packets arrive on: one of its UDP listeners, or one TCP/TLS
/// connection. The core only compares these; the numbers are the runtime's own indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SocketId {
    /// UDP listener number `n` of the shard.
    Listener(u32),
    /// TCP/TLS connection number `n` of the shard.
    Connection(u32),
}

impl SocketId {
    /// Five bytes that tell any two ids apart (for MACs over a flow).
    pub fn to_bytes(self) -> [u8; 5] {
        let (tag, n) = match self {
            SocketId::Listener(n) => (0, n),
            SocketId::Connection(n) => (1, n),
        };
        let n = n.to_be_bytes();
        [tag, n[0], n[1], n[2], n[3]]
    }
}

/// One relay socket as core and runtime name it: the core chooses the id when it asks the
/// runtime to open the socket ([`RelayBinder::bind`](crate::server::RelayBinder::bind)), and
/// uses it in every action that sends through it; the runtime hands it back with each datagram
/// a peer sent there. Ids are small and reused after close, so the runtime may keep its sockets
/// in a table indexed by [`index`](Self::index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RelayId(u32);

impl RelayId {
    /// The id with this number (the runtime gets numbers back from its event loop).
    pub const fn new(n: u32) -> Self {
        RelayId(n)
    }

    /// The number, for tables and event-loop registrations.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

impl std::fmt::Display for RelayId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "relay#{}", self.0)
    }
}

/// Transport between client and server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
}

impl Transport {
    /// Whether messages travel over a byte stream, where ChannelData is padded (RFC 8656 §12.5).
    pub fn is_stream(self) -> bool {
        !matches!(self, Transport::Udp)
    }

    /// Lower-case name for logs and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }
}

/// An address family of a relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// The family of an address.
    pub fn of(addr: &SocketAddr) -> Family {
        if addr.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }
}
