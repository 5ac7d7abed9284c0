//! One TCP or TLS client connection: a bounded receive buffer that yields whole frames, and a
//! bounded send backlog. Plain connections on the TURN port are told apart from TLS by their
//! first byte (a ClientHello starts with 0x16, STUN with 0x00–0x03, ChannelData with 0x40–0x7F).

use std::io::{self, Read};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use mio::net::TcpStream;
use rustls::{ServerConfig, ServerConnection};

use super::proxy_accept::{self, HeaderReadError};
use super::proxy_protocol::{self, ProxyHeader};
use super::stream_framing::{compact, next_frame, Frame, MAX_STREAM_FRAME};
use super::tx_backlog::TxBacklog;
use crate::proto::flow::Transport;

/// Receive buffer: room for one largest frame plus a good read.
const RX_CAPACITY: usize = MAX_STREAM_FRAME + 16 * 1024;
/// Receive buffer a connection starts with (and gets again after idling): STUN requests and a
/// few media frames fit; a read that fills it grows it to `RX_CAPACITY` once.
const RX_INITIAL: usize = 4 * 1024;
/// Most bytes queued for a client that does not read; beyond it relayed packets are dropped
/// (media tolerates loss; a stuck reader must not grow memory without bound).
const TX_BACKLOG_LIMIT: usize = 512 * 1024;

pub use super::close_reason::CloseReason;

enum Mode {
    /// On the plain port, before the first byte says whether this is TLS.
    Detect,
    /// Plain TCP.
    Plain,
    /// TLS.
    Tls(Box<ServerConnection>),
}

/// A client connection owned by one shard.
pub struct Connection {
    stream: TcpStream,
    remote: SocketAddr,
    mode: Mode,
    tls_config: Option<Arc<ServerConfig>>,
    rx: Box<[u8]>,
    rx_start: usize,
    rx_end: usize,
    tx: TxBacklog,
    /// When the connection was accepted.
    pub opened: Instant,
    /// When bytes last arrived.
    pub last_rx: Instant,
    /// Since when an incomplete frame has been waiting (slow-loris guard).
    pub partial_since: Option<Instant>,
    /// Whether WRITABLE interest is registered.
    pub writable_registered: bool,
    /// Until when a PROXY protocol header may arrive; `None` once the client is known.
    proxy_deadline: Option<Instant>,
}

/// What one [`Connection::fill`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Filled {
    /// Bytes added to the receive buffer.
    pub added: usize,
    /// The buffer filled up before the socket ran dry: more input may be waiting, and no
    /// readiness event will announce it.
    pub more: bool,
}

impl Connection {
    /// A connection accepted on the TURN (plain) port; it becomes TLS if it starts with a
    /// ClientHello and `tls` is configured.
    pub fn plain_port(
        stream: TcpStream,
        remote: SocketAddr,
        tls: Option<Arc<ServerConfig>>,
        now: Instant,
    ) -> Self {
        Self::new(stream, remote, Mode::Detect, tls, now)
    }

    /// A connection accepted on a TLS port.
    pub fn tls_port(
        stream: TcpStream,
        remote: SocketAddr,
        tls: Arc<ServerConfig>,
        now: Instant,
    ) -> io::Result<Self> {
        let session = ServerConnection::new(tls).map_err(io::Error::other)?;
        Ok(Self::new(
            stream,
            remote,
            Mode::Tls(Box::new(session)),
            None,
            now,
        ))
    }

    fn new(
        stream: TcpStream,
        remote: SocketAddr,
        mode: Mode,
        tls_config: Option<Arc<ServerConfig>>,
        now: Instant,
    ) -> Self {
        Connection {
            stream,
            remote,
            mode,
            tls_config,
            // Allocated on the first read and given back when idle (see `trim_idle`).
            rx: Box::default(),
            rx_start: 0,
            rx_end: 0,
            tx: TxBacklog::new(TX_BACKLOG_LIMIT),
            opened: now,
            last_rx: now,
            partial_since: None,
            writable_registered: false,
            proxy_deadline: None,
        }
    }

    /// The socket, for (re)registration.
    pub fn stream_mut(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// The client's address.
    pub fn remote(&self) -> SocketAddr {
        self.remote
    }

    /// Transport to report for allocations made over this connection.
    pub fn transport(&self) -> Transport {
        match self.mode {
            Mode::Tls(_) => Transport::Tls,
            _ => Transport::Tcp,
        }
    }

    /// Whether the connection is past the PROXY header, detection and the TLS handshake.
    pub fn established(&self) -> bool {
        if self.proxy_deadline.is_some() {
            return false;
        }
        match &self.mode {
            Mode::Detect => false,
            Mode::Plain => true,
            Mode::Tls(tls) => !tls.is_handshaking(),
        }
    }

    /// Makes the connection wait for a PROXY protocol header until `deadline` before anything
    /// else (on TLS ports, before the handshake).
    pub fn expect_proxy_header(&mut self, deadline: Instant) {
        self.proxy_deadline = Some(deadline);
    }

    /// Whether the PROXY header is still awaited (then [`fill`](Self::fill) must not run).
    pub fn awaiting_proxy_header(&self) -> bool {
        self.proxy_deadline.is_some()
    }

    /// Whether the PROXY header is awaited past its deadline.
    pub fn proxy_header_overdue(&self, now: Instant) -> bool {
        self.proxy_deadline.is_some_and(|d| now >= d)
    }

    /// The address the connection limits charge this connection to (none while the PROXY
    /// header is awaited).
    pub fn counted_ip(&self) -> Option<std::net::IpAddr> {
        self.proxy_deadline.is_none().then(|| self.remote.ip())
    }

    /// Reads the PROXY header off the raw socket; bytes after it stay queued for the stream
    /// (handed to rustls on a TLS port).
    pub fn read_proxy_header(&mut self) -> Result<Option<ProxyHeader>, HeaderReadError> {
        // The receive buffer starts empty (and idle connections give it back): the reader
        // needs room for the longest header, keeping any part of one already read.
        if self.rx.len() < proxy_protocol::MAX_HEADER_LEN {
            let mut room =
                vec![0; proxy_protocol::MAX_HEADER_LEN.max(RX_INITIAL)].into_boxed_slice();
            room[..self.rx_end].copy_from_slice(&self.rx[..self.rx_end]);
            self.rx = room;
        }
        let header = proxy_accept::read_header(&mut self.stream, &mut self.rx, &mut self.rx_end)?;
        if let (Some(_), Mode::Tls(tls)) = (&header, &mut self.mode) {
            let mut rest = &self.rx[..self.rx_end];
            while !rest.is_empty() {
                tls.read_tls(&mut rest)
                    .map_err(|_| HeaderReadError::Io(CloseReason::BadTlsRecord))?;
            }
            self.rx_end = 0;
        }
        Ok(header)
    }

    /// Ends the wait for the PROXY header: from now on `client` is this connection's address.
    pub fn set_proxied_client(&mut self, client: SocketAddr) {
        self.remote = client;
        self.proxy_deadline = None;
    }

    /// Reads what the socket holds into the receive buffer (decrypting TLS), at most one
    /// buffer's worth: the caller's budget per turn.
    pub fn fill(&mut self, now: Instant) -> Result<Filled, CloseReason> {
        compact(&mut self.rx, &mut self.rx_start, &mut self.rx_end);
        if self.rx.is_empty() {
            self.rx = vec![0; RX_INITIAL].into_boxed_slice();
        }
        let before = self.rx_end;
        let mut more = false;
        loop {
            if self.rx_end == self.rx.len() {
                if self.rx.len() < RX_CAPACITY {
                    let mut bigger = vec![0; RX_CAPACITY].into_boxed_slice();
                    bigger[..self.rx_end].copy_from_slice(&self.rx[..self.rx_end]);
                    self.rx = bigger;
                    continue;
                }
                more = true;
                break;
            }
            // A read that returns less than it asked for emptied the socket's queue: later
            // bytes raise a new edge, so the read that would only say EAGAIN is skipped.
            let (progressed, drained) = match &mut self.mode {
                Mode::Tls(tls) => read_tls(tls, &mut self.stream, &mut self.rx, &mut self.rx_end)?,
                Mode::Detect | Mode::Plain => {
                    let asked = self.rx.len() - self.rx_end;
                    match self.stream.read(&mut self.rx[self.rx_end..]) {
                        Ok(0) => return Err(CloseReason::ClosedByClient),
                        Ok(n) => {
                            self.rx_end += n;
                            (true, n < asked)
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => (false, true),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => (true, false),
                        Err(_) => return Err(CloseReason::ReadError),
                    }
                }
            };
            if matches!(self.mode, Mode::Detect) && self.rx_end > 0 {
                self.detect()?;
                if drained {
                    break;
                }
                continue;
            }
            if !progressed || drained {
                break;
            }
        }
        if matches!(self.mode, Mode::Tls(_)) {
            // The handshake may have produced records to send.
            self.flush()?;
        }
        let added = self.rx_end - before;
        if added > 0 {
            self.last_rx = now;
        }
        Ok(Filled { added, more })
    }

    fn detect(&mut self) -> Result<(), CloseReason> {
        match self.rx[0] {
            0x16 => {
                let Some(config) = self.tls_config.take() else {
                    return Err(CloseReason::TlsWithoutCertificate);
                };
                let mut session =
                    ServerConnection::new(config).map_err(|_| CloseReason::TlsSetupFailed)?;
                let mut hello = &self.rx[..self.rx_end];
                while !hello.is_empty() {
                    session
                        .read_tls(&mut hello)
                        .map_err(|_| CloseReason::BadTlsRecord)?;
                }
                self.rx_end = 0;
                self.mode = Mode::Tls(Box::new(session));
                let Mode::Tls(tls) = &mut self.mode else {
                    unreachable!()
                };
                drain_plaintext(tls, &mut self.rx, &mut self.rx_end)?;
                Ok(())
            }
            0x00..=0x03 | 0x40..=0x7F => {
                self.mode = Mode::Plain;
                Ok(())
            }
            _ => Err(CloseReason::UnknownProtocol),
        }
    }

    /// The next whole frame at the front of the buffer.
    pub fn next_frame(&mut self, now: Instant) -> Result<Option<usize>, CloseReason> {
        match next_frame(&self.rx[self.rx_start..self.rx_end]) {
            Frame::Complete(n) => {
                self.partial_since = None;
                Ok(Some(n))
            }
            Frame::Partial => {
                if self.rx_start != self.rx_end {
                    self.partial_since.get_or_insert(now);
                }
                Ok(None)
            }
            Frame::Invalid => Err(CloseReason::InvalidFrame),
        }
    }

    /// The unconsumed received bytes.
    pub fn received(&self) -> &[u8] {
        &self.rx[self.rx_start..self.rx_end]
    }

    /// The unconsumed received bytes and the send backlog at once, so answers can be queued
    /// while the frames they answer are still borrowed.
    pub fn received_and_backlog(&mut self) -> (&[u8], &mut TxBacklog) {
        (&self.rx[self.rx_start..self.rx_end], &mut self.tx)
    }

    /// Marks the frames at the front as seen (the slow-loris clock restarts) and drops them.
    pub fn consume_frames(&mut self, n: usize) {
        self.consume(n);
        self.partial_since = None;
    }

    /// Drops `n` bytes from the front of the buffer.
    pub fn consume(&mut self, n: usize) {
        self.rx_start = (self.rx_start + n).min(self.rx_end);
    }

    /// Gives the receive buffer and a drained send backlog back while nothing is waiting and
    /// nothing arrived since `idle_since`, so an idle connection holds no buffers of its own;
    /// the next read allocates the receive buffer again (once per burst, not per frame).
    pub fn trim_idle(&mut self, idle_since: Instant) {
        if self.last_rx > idle_since {
            return;
        }
        if self.rx_start == self.rx_end && !self.rx.is_empty() {
            self.rx = Box::default();
            self.rx_start = 0;
            self.rx_end = 0;
        }
        self.tx.release_if_empty();
    }

    /// Queues one whole frame for the client; false when the backlog is full (the caller
    /// counts the drop).
    pub fn queue(&mut self, frame: &[u8]) -> bool {
        self.tx.push(frame)
    }

    /// Writes as much of the backlog as the socket takes.
    pub fn flush(&mut self) -> Result<(), CloseReason> {
        match &mut self.mode {
            Mode::Detect | Mode::Plain => {
                self.tx
                    .write_to(&mut self.stream)
                    .map_err(|_| CloseReason::WriteError)?;
            }
            Mode::Tls(tls) => loop {
                let mut progressed = false;
                if !self.tx.is_empty() && !tls.is_handshaking() {
                    let n = self
                        .tx
                        .write_to(&mut tls.writer())
                        .map_err(|_| CloseReason::TlsWriteFailed)?;
                    progressed |= n > 0;
                }
                while tls.wants_write() {
                    match tls.write_tls(&mut self.stream) {
                        Ok(0) => return Err(CloseReason::WriteReturnedZero),
                        Ok(_) => progressed = true,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => return Err(CloseReason::WriteError),
                    }
                }
                if !progressed || (self.tx.is_empty() && !tls.wants_write()) {
                    break;
                }
            },
        }
        Ok(())
    }

    /// Whether output is waiting for the socket to become writable.
    pub fn wants_write(&self) -> bool {
        !self.tx.is_empty() || matches!(&self.mode, Mode::Tls(tls) if tls.wants_write())
    }
}

/// Feeds TLS records from the socket to rustls and moves the plaintext into `rx`. Returns
/// whether anything was read from the socket, and whether the socket's queue is empty.
fn read_tls(
    tls: &mut ServerConnection,
    stream: &mut TcpStream,
    rx: &mut [u8],
    rx_end: &mut usize,
) -> Result<(bool, bool), CloseReason> {
    // Plaintext left over from an earlier read comes first.
    drain_plaintext(tls, rx, rx_end)?;
    if *rx_end == rx.len() {
        return Ok((false, false));
    }
    let mut probe = ShortRead {
        stream,
        short: false,
    };
    match tls.read_tls(&mut probe) {
        Ok(0) => Err(CloseReason::ClosedByClient),
        Ok(_) => {
            drain_plaintext(tls, rx, rx_end)?;
            Ok((true, probe.short))
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok((false, true)),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok((true, false)),
        Err(_) => Err(CloseReason::ReadError),
    }
}

/// The socket as rustls reads it, noting a read that returned less than it asked for (the
/// socket's queue is empty).
struct ShortRead<'a> {
    stream: &'a mut TcpStream,
    short: bool,
}

impl Read for ShortRead<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.stream.read(buf)?;
        self.short = n < buf.len();
        Ok(n)
    }
}

fn drain_plaintext(
    tls: &mut ServerConnection,
    rx: &mut [u8],
    rx_end: &mut usize,
) -> Result<(), CloseReason> {
    tls.process_new_packets()
        .map_err(|_| CloseReason::TlsError)?;
    while *rx_end < rx.len() {
        match tls.reader().read(&mut rx[*rx_end..]) {
            Ok(0) => return Err(CloseReason::TlsSessionClosed),
            Ok(n) => *rx_end += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(_) => return Err(CloseReason::TlsReadError),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
