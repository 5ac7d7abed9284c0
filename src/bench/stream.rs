//! One simulated participant's TCP or TLS connection to the server (RFC 8656 §12.5): STUN
//! messages and ChannelData padded to four bytes on one byte stream, cut back into frames on
//! receipt. Sends go out at once when the socket takes them; what it does not take waits in a
//! bounded buffer (what does not fit is refused and counted by the caller).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream as StdTcpStream};
use std::time::Duration;

use mio::net::TcpStream;
use rustls::ClientConnection;

use super::tls_client::TlsClient;
use super::udp::{Batch, BATCH, MAX_DATAGRAM};
use crate::runtime::stream_framing::{compact, next_frame, Frame};

/// Receive buffer: several largest media frames and a good read.
const RX_CAPACITY: usize = 64 * 1024;
/// Most bytes waiting for a server that does not read.
const TX_LIMIT: usize = 256 * 1024;
/// How long a connect may take (loopback answers at once unless the accept queue is full).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a stream stopped carrying data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// The server closed it (or reset it).
    ByServer,
    /// The bytes were not STUN or ChannelData.
    BadFrame,
    /// TLS failed (handshake or record).
    Tls,
}

/// A TCP or TLS connection of one participant.
pub struct StreamConn {
    sock: TcpStream,
    tls: Option<Box<ClientConnection>>,
    rx: Vec<u8>,
    rx_start: usize,
    rx_end: usize,
    tx: Vec<u8>,
    tx_start: usize,
    /// Set once the stream is unusable.
    pub closed: Option<Closed>,
    /// What closed it, in words (set once, when it closes).
    pub error: Option<String>,
}

impl StreamConn {
    /// Connects to `server` (blocking, bounded by a timeout) and starts TLS when `tls` is
    /// given; the handshake then runs as the loop reads and writes.
    pub fn connect(
        server: SocketAddr,
        tls: Option<&TlsClient>,
        buf: Option<usize>,
    ) -> io::Result<StreamConn> {
        let std = StdTcpStream::connect_timeout(&server, CONNECT_TIMEOUT)?;
        std.set_nodelay(true)?;
        if let Some(b) = buf {
            let s = socket2::SockRef::from(&std);
            let _ = s.set_recv_buffer_size(b);
            let _ = s.set_send_buffer_size(b);
        }
        std.set_nonblocking(true)?;
        let tls = match tls {
            Some(t) => Some(Box::new(
                ClientConnection::new(t.config.clone(), t.name.clone())
                    .map_err(io::Error::other)?,
            )),
            None => None,
        };
        let mut conn = StreamConn {
            sock: TcpStream::from_std(std),
            tls,
            rx: Vec::new(),
            rx_start: 0,
            rx_end: 0,
            tx: Vec::new(),
            tx_start: 0,
            closed: None,
            error: None,
        };
        // The ClientHello goes out now.
        conn.flush();
        Ok(conn)
    }

    /// The socket, for registration.
    pub fn socket(&mut self) -> &mut TcpStream {
        &mut self.sock
    }

    /// Whether TLS (if any) is past its handshake.
    pub fn established(&self) -> bool {
        self.tls.as_ref().is_none_or(|t| !t.is_handshaking())
    }

    /// Sends one STUN message or ChannelData message (padded here); false when the stream is
    /// closed or its send buffer is full (the message is dropped whole).
    pub fn send(&mut self, msg: &[u8]) -> bool {
        if self.closed.is_some() {
            return false;
        }
        let pad = (4 - msg.len() % 4) % 4;
        let waiting = self.tx.len() - self.tx_start;
        if waiting + msg.len() + pad > TX_LIMIT {
            return false;
        }
        self.tx.extend_from_slice(msg);
        self.tx.extend_from_slice(&[0u8; 3][..pad]);
        self.flush();
        true
    }

    /// Writes what waits, as far as the socket takes it.
    pub fn flush(&mut self) {
        if self.closed.is_some() {
            return;
        }
        let result = match self.tls.as_mut() {
            None => write_plain(&mut self.sock, &self.tx, &mut self.tx_start),
            Some(tls) => {
                // Plaintext written before the handshake ends waits inside rustls; one write
                // of the whole waiting run is one record.
                if self.tx_start < self.tx.len() {
                    match tls.writer().write(&self.tx[self.tx_start..]) {
                        Ok(n) => self.tx_start += n,
                        Err(e) => return self.close_on(e),
                    }
                }
                write_tls(tls, &mut self.sock)
            }
        };
        if let Err(e) = result {
            self.close_on(e);
        }
        if self.tx_start == self.tx.len() {
            self.tx.clear();
            self.tx_start = 0;
        }
    }

    fn close_on(&mut self, e: io::Error) {
        self.closed = Some(match e.kind() {
            io::ErrorKind::InvalidData => Closed::Tls,
            _ => Closed::ByServer,
        });
        self.error = Some(match e.kind() {
            io::ErrorKind::InvalidData => format!("TLS: {e}"),
            io::ErrorKind::UnexpectedEof => "closed by the server".into(),
            _ => e.to_string(),
        });
    }

    /// Copies up to `BATCH` whole frames into `batch` (lengths in `batch.lens`); a result
    /// below `BATCH` means the socket ran dry (edge-triggered readiness needs no new read).
    pub fn recv_batch(&mut self, batch: &mut Batch) -> usize {
        let mut n = 0;
        loop {
            while n < BATCH {
                match next_frame(&self.rx[self.rx_start..self.rx_end]) {
                    Frame::Complete(len) => {
                        let frame = &self.rx[self.rx_start..self.rx_start + len];
                        if len <= MAX_DATAGRAM {
                            batch.slot(n)[..len].copy_from_slice(frame);
                            batch.lens[n] = len;
                            n += 1;
                        }
                        self.rx_start += len;
                    }
                    Frame::Partial => break,
                    Frame::Invalid => {
                        self.closed = Some(Closed::BadFrame);
                        self.error = Some("the server sent neither STUN nor ChannelData".into());
                        return n;
                    }
                }
            }
            if n == BATCH || self.closed.is_some() {
                return n;
            }
            match self.read_more() {
                Ok(0) => return n,
                Ok(_) => {}
                Err(e) => {
                    self.close_on(e);
                    return n;
                }
            }
        }
    }

    /// Reads more bytes into the receive buffer (decrypting TLS); 0 when nothing waits.
    fn read_more(&mut self) -> io::Result<usize> {
        compact(&mut self.rx, &mut self.rx_start, &mut self.rx_end);
        if self.rx.is_empty() {
            self.rx = vec![0; RX_CAPACITY];
        }
        let space = &mut self.rx[self.rx_end..];
        let Some(tls) = self.tls.as_mut() else {
            return match self.sock.read(space) {
                Ok(0) => Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    self.rx_end += n;
                    Ok(n)
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(1),
                Err(e) => Err(e),
            };
        };
        loop {
            match tls.reader().read(space) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    self.rx_end += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            match tls.read_tls(&mut self.sock) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(0),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            tls.process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            // Handshake messages (and plaintext rustls held during it) go out now.
            write_tls(tls, &mut self.sock)?;
        }
    }
}

fn write_plain(sock: &mut TcpStream, tx: &[u8], start: &mut usize) -> io::Result<()> {
    while *start < tx.len() {
        match sock.write(&tx[*start..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => *start += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn write_tls(tls: &mut ClientConnection, sock: &mut TcpStream) -> io::Result<()> {
    while tls.wants_write() {
        match tls.write_tls(sock) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
