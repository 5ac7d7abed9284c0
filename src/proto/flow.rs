//! Identifiers the runtime and the core share for clients and relays.

use std::net::SocketAddr;

/// A client's 5-tuple as the core sees it: the runtime's id for the socket or connection the
/// packets arrived on, plus the client's address. The socket id stands for the server address
/// and the transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flow {
    /// The runtime's id of the listening socket (UDP) or the connection (TCP/TLS).
    pub socket: u32,
    /// The client's address as the server sees it.
    pub remote: SocketAddr,
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
