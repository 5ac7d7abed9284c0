//! A participant's way to the server: a connected UDP socket, or its own TCP or TLS
//! connection. The peer side is UDP whatever the client side is.

use std::io;
use std::net::SocketAddr;

use clap::ValueEnum;
use mio::{Interest, Registry, Token};

use super::stream::StreamConn;
use super::tls_client::TlsClient;
use super::udp::{self, Batch};

/// The client ↔ server transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ClientTransport {
    /// TURN over UDP.
    #[default]
    Udp,
    /// TURN over TCP (RFC 8656 §12.5 framing).
    Tcp,
    /// TURN over TLS (TURNS).
    Tls,
}

impl ClientTransport {
    /// The name reports print.
    pub fn name(self) -> &'static str {
        match self {
            ClientTransport::Udp => "udp",
            ClientTransport::Tcp => "tcp",
            ClientTransport::Tls => "tls",
        }
    }
}

/// How participants reach the server.
#[derive(Debug, Clone, Default)]
pub struct Connector {
    /// The transport.
    pub transport: ClientTransport,
    /// TLS settings (only for [`ClientTransport::Tls`]).
    pub tls: Option<TlsClient>,
}

impl Connector {
    /// Opens one participant's socket to `server`.
    pub fn open(&self, server: SocketAddr, buf: Option<usize>) -> io::Result<ClientSocket> {
        match self.transport {
            ClientTransport::Udp => {
                let local = udp::local_for(server);
                Ok(ClientSocket::Udp(udp::open(local, Some(server), buf)?))
            }
            ClientTransport::Tcp => Ok(ClientSocket::Stream(Box::new(StreamConn::connect(
                server, None, buf,
            )?))),
            ClientTransport::Tls => {
                let tls = self
                    .tls
                    .as_ref()
                    .ok_or_else(|| io::Error::other("TLS transport without TLS settings"))?;
                Ok(ClientSocket::Stream(Box::new(StreamConn::connect(
                    server,
                    Some(tls),
                    buf,
                )?)))
            }
        }
    }
}

/// One participant's socket.
pub enum ClientSocket {
    /// Connected UDP.
    Udp(mio::net::UdpSocket),
    /// TCP or TLS.
    Stream(Box<StreamConn>),
}

impl ClientSocket {
    /// Registers for input (and, on streams, for the end of a full send buffer).
    pub fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        match self {
            ClientSocket::Udp(s) => registry.register(s, token, Interest::READABLE),
            ClientSocket::Stream(s) => {
                registry.register(s.socket(), token, Interest::READABLE | Interest::WRITABLE)
            }
        }
    }

    /// Removes the socket from the poll set.
    pub fn deregister(&mut self, registry: &Registry) {
        let _ = match self {
            ClientSocket::Udp(s) => registry.deregister(s),
            ClientSocket::Stream(s) => registry.deregister(s.socket()),
        };
    }

    /// Sends one message (a datagram, or a frame on the stream); false when it was refused.
    pub fn send(&mut self, msg: &[u8]) -> bool {
        match self {
            ClientSocket::Udp(s) => s.send(msg).is_ok(),
            ClientSocket::Stream(s) => s.send(msg),
        }
    }

    /// Sends several messages; returns how many were taken.
    pub fn send_many(&mut self, msgs: &[&[u8]]) -> usize {
        match self {
            ClientSocket::Udp(s) => udp::send_batch(s, msgs, None),
            ClientSocket::Stream(s) => msgs.iter().take_while(|m| s.send(m)).count(),
        }
    }

    /// Receives up to a batch of messages from the server into `batch`; a result below the
    /// batch size means nothing more waits.
    pub fn recv_batch(&mut self, batch: &mut Batch) -> io::Result<usize> {
        match self {
            ClientSocket::Udp(s) => udp::recv_batch(s, batch, false),
            ClientSocket::Stream(s) => Ok(s.recv_batch(batch)),
        }
    }

    /// Writes what a stream holds back (on a writable event); nothing for UDP.
    pub fn flush(&mut self) {
        if let ClientSocket::Stream(s) = self {
            s.flush();
        }
    }

    /// Why a stream closed, if it did.
    pub fn close_reason(&self) -> Option<&str> {
        match self {
            ClientSocket::Stream(s) => s.error.as_deref(),
            ClientSocket::Udp(_) => None,
        }
    }

    /// Whether a stream was closed or failed (a lost session); never for UDP.
    pub fn is_closed(&self) -> bool {
        matches!(self, ClientSocket::Stream(s) if s.closed.is_some())
    }
}
