//! RFC 6062 data paths of one shard: peer connections (opened for Connect or accepted on a
//! TCP relay listener) and, once ConnectionBind paired them, their client data connections.
//! The core decides; this moves bytes. Each direction is bounded: client → peer bytes wait in
//! the data connection's receive buffer, peer → client bytes in its send backlog up to
//! 64 KiB; a side whose buffer is full is simply not read until the other side
//! drains (TCP's own flow control pushes back on the sender), so nothing grows without bound.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Instant;

use ahash::RandomState;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use super::connection::Connection;
use super::connection_limits::ConnectionLimits;
use super::io_stats::IoStats;
use super::relay_sockets::{RelaySockets, TCP_LISTENER_TOKEN};
use super::sockets::connect_tcp_from;
use crate::proto::flow::RelayId;
use crate::proto::server::Server;

/// Mio tokens of pair sockets start here: `PAIR_TOKEN + 2 * pair + side` (0 peer, 1 client).
pub const PAIR_TOKEN: usize = TCP_LISTENER_TOKEN + (1 << 25);
/// The first token above the pair range (the shard's connection tokens start there).
pub const PAIR_TOKEN_END: usize = 1 << 28;
/// Peer → client bytes held for a client that reads slowly; past it the peer is not read.
const TO_CLIENT_LIMIT: usize = 64 * 1024;
/// Bytes moved per direction and pair in one loop turn, so one busy pair cannot starve the
/// other sockets of the shard.
const BYTES_PER_TURN: usize = 64 * 1024;
/// One read from a peer.
const READ_CHUNK: usize = 16 * 1024;
/// Peers accepted per relay listener and turn.
const ACCEPTS_PER_TURN: usize = 16;

/// One peer connection and, once bound, its client data connection.
struct Pair {
    id: u32,
    relay: RelayId,
    peer: TcpStream,
    peer_ip: std::net::IpAddr,
    /// The connect for a Connect request is still in progress.
    connecting: bool,
    client: Option<Box<Connection>>,
}

/// The shard's parts the TCP relay works with.
pub struct TcpContext<'a> {
    /// The shard's registry.
    pub registry: &'a Registry,
    /// The core.
    pub core: &'a mut Server,
    /// Connection caps shared by all shards (peer connections count too).
    pub limits: &'a ConnectionLimits,
    /// I/O counters.
    pub io: &'a IoStats,
}

/// The pairs of one shard.
pub struct TcpRelay {
    pairs: Vec<Option<Pair>>,
    free: Vec<usize>,
    by_id: HashMap<u32, usize, RandomState>,
    scratch: Box<[u8]>,
}

impl Default for TcpRelay {
    fn default() -> Self {
        Self::new()
    }
}

impl TcpRelay {
    /// No pairs.
    pub fn new() -> Self {
        TcpRelay {
            pairs: Vec::new(),
            free: Vec::new(),
            by_id: HashMap::with_hasher(RandomState::new()),
            scratch: vec![0; READ_CHUNK].into_boxed_slice(),
        }
    }

    /// Peer connections held (pending and bound).
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Whether `token` belongs to the TCP relay (a relay listener or a pair socket).
    pub fn owns(token: Token) -> bool {
        (TCP_LISTENER_TOKEN..PAIR_TOKEN_END).contains(&token.0)
    }

    /// Registers `pair` under a free token; false when none is left or registration fails,
    /// and then the pair is dropped: its peer's connection allowance is given back and the
    /// drop counted.
    fn insert(&mut self, ctx: &TcpContext<'_>, mut pair: Pair) -> bool {
        let index = self.free.pop().unwrap_or_else(|| {
            self.pairs.push(None);
            self.pairs.len() - 1
        });
        let token = Token(PAIR_TOKEN + 2 * index);
        if token.0 + 1 >= PAIR_TOKEN_END
            || ctx
                .registry
                .register(
                    &mut pair.peer,
                    token,
                    Interest::READABLE | Interest::WRITABLE,
                )
                .is_err()
        {
            self.free.push(index);
            ctx.limits.close(pair.peer_ip);
            ctx.io.tcp_relay_dropped.inc();
            return false;
        }
        self.by_id.insert(pair.id, index);
        self.pairs[index] = Some(pair);
        true
    }

    /// Opens the connection to `peer` for Connect `id` from the relayed address of `relay`.
    pub fn connect(
        &mut self,
        ctx: &mut TcpContext<'_>,
        relays: &RelaySockets,
        id: u32,
        relay: RelayId,
        peer: SocketAddr,
    ) {
        let now = Instant::now();
        let local = relays.tcp_listener(relay).and_then(|l| l.local_addr().ok());
        let stream = match local {
            Some(local) if ctx.limits.try_open(peer.ip()) => match connect_tcp_from(local, peer) {
                Ok(s) => s,
                Err(e) => {
                    ctx.limits.close(peer.ip());
                    tracing::debug!(%peer, error = %e, "TCP relay connect failed");
                    ctx.core.handle_tcp_connected(now, id, false);
                    return;
                }
            },
            _ => {
                ctx.io.tcp_relay_dropped.inc();
                ctx.core.handle_tcp_connected(now, id, false);
                return;
            }
        };
        let pair = Pair {
            id,
            relay,
            peer: TcpStream::from_std(stream),
            peer_ip: peer.ip(),
            connecting: true,
            client: None,
        };
        if !self.insert(ctx, pair) {
            ctx.core.handle_tcp_connected(now, id, false);
        }
    }

    /// Accepts peers on the TCP relay listener of allocation `relay`; true when more may wait.
    pub fn accept(
        &mut self,
        ctx: &mut TcpContext<'_>,
        relays: &RelaySockets,
        relay: RelayId,
    ) -> bool {
        for _ in 0..ACCEPTS_PER_TURN {
            let Some(listener) = relays.tcp_listener(relay) else {
                return false;
            };
            let (stream, from) = match listener.accept() {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) => {
                    ctx.io.accept_other.inc();
                    tracing::debug!(error = %e, "TCP relay accept failed");
                    return false;
                }
            };
            let from = super::shard::canonical(from);
            if !ctx.limits.try_open(from.ip()) {
                ctx.io.tcp_relay_dropped.inc();
                continue;
            }
            let Some(id) = ctx.core.handle_tcp_incoming(Instant::now(), relay, from) else {
                ctx.limits.close(from.ip());
                tracing::debug!(peer = %from, "TCP relay peer refused");
                continue;
            };
            let _ = stream.set_nodelay(true);
            let pair = Pair {
                id,
                relay,
                peer: stream,
                peer_ip: from.ip(),
                connecting: false,
                client: None,
            };
            if !self.insert(ctx, pair) {
                ctx.core.handle_tcp_closed(id);
            }
        }
        true
    }

    /// Pairs the peer connection `id` with its client data connection; returns the tokens to
    /// serve (the answer to ConnectionBind waits in the connection's backlog). Without such a
    /// peer connection (it closed meanwhile) the client connection is handed back.
    pub fn bind(
        &mut self,
        registry: &Registry,
        id: u32,
        mut client: Box<Connection>,
    ) -> Result<[Token; 2], Box<Connection>> {
        let Some(&index) = self.by_id.get(&id) else {
            return Err(client);
        };
        let token = Token(PAIR_TOKEN + 2 * index + 1);
        if registry
            .register(
                client.stream_mut(),
                token,
                Interest::READABLE | Interest::WRITABLE,
            )
            .is_err()
        {
            return Err(client);
        }
        let Some(pair) = self.pairs[index].as_mut() else {
            return Err(client);
        };
        pair.client = Some(client);
        Ok([Token(PAIR_TOKEN + 2 * index), token])
    }

    /// Closes peer connection `id` and its data connection (the core already forgot it).
    pub fn close(&mut self, ctx: &TcpContext<'_>, id: u32) -> Option<[Token; 2]> {
        let index = self.by_id.remove(&id)?;
        let mut pair = self.pairs[index].take()?;
        let _ = ctx.registry.deregister(&mut pair.peer);
        ctx.limits.close(pair.peer_ip);
        if let Some(mut client) = pair.client.take() {
            let _ = client.flush();
            let _ = ctx.registry.deregister(client.stream_mut());
            ctx.limits.close(client.remote().ip());
        }
        self.free.push(index);
        Some([
            Token(PAIR_TOKEN + 2 * index),
            Token(PAIR_TOKEN + 2 * index + 1),
        ])
    }

    fn close_index(&mut self, ctx: &mut TcpContext<'_>, index: usize) -> Option<[Token; 2]> {
        let id = self.pairs.get(index)?.as_ref()?.id;
        ctx.core.handle_tcp_closed(id);
        self.close(ctx, id)
    }

    /// Serves a pair socket that reported readiness (or was queued); returns whether input
    /// may be left, and the tokens of a pair that closed (to drop from the run queue).
    pub fn serve(&mut self, ctx: &mut TcpContext<'_>, token: Token) -> (bool, Option<[Token; 2]>) {
        let Some(offset) = token.0.checked_sub(PAIR_TOKEN) else {
            return (false, None);
        };
        let index = offset / 2;
        let Some(pair) = self.pairs.get_mut(index).and_then(Option::as_mut) else {
            return (false, None);
        };
        if pair.connecting {
            match connect_outcome(&pair.peer) {
                None => return (false, None),
                Some(true) => {
                    pair.connecting = false;
                    let id = pair.id;
                    ctx.core.handle_tcp_connected(Instant::now(), id, true);
                    return (false, None);
                }
                Some(false) => {
                    let id = pair.id;
                    ctx.core.handle_tcp_connected(Instant::now(), id, false);
                    return (false, self.close(ctx, id));
                }
            }
        }
        if pair.client.is_none() {
            // Until ConnectionBind, peer data waits in the kernel (TCP pushes back).
            return (false, None);
        }
        match pump(pair, &mut self.scratch) {
            Ok((more, to_peer, to_client)) => {
                let relay = pair.relay;
                ctx.core.count_tcp_traffic(relay, to_peer, to_client);
                (more, None)
            }
            Err((to_peer, to_client)) => {
                let relay = pair.relay;
                ctx.core.count_tcp_traffic(relay, to_peer, to_client);
                (false, self.close_index(ctx, index))
            }
        }
    }
}

/// Whether a non-blocking connect finished: Some(true) connected, Some(false) failed, None
/// still in progress.
fn connect_outcome(stream: &TcpStream) -> Option<bool> {
    match stream.take_error() {
        Ok(Some(_)) | Err(_) => return Some(false),
        Ok(None) => {}
    }
    match stream.peer_addr() {
        Ok(_) => Some(true),
        Err(e) if e.kind() == io::ErrorKind::NotConnected => None,
        Err(_) => Some(false),
    }
}

/// Moves bytes both ways within the turn's budget. Ok((more, to_peer, to_client)); Err with
/// the bytes moved when a side closed or failed.
fn pump(pair: &mut Pair, scratch: &mut [u8]) -> Result<(bool, usize, usize), (usize, usize)> {
    let Some(client) = pair.client.as_mut() else {
        return Ok((false, 0, 0));
    };
    let now = Instant::now();
    let mut more = false;
    let mut to_peer = 0;
    let mut to_client = 0;
    let mut closed = false;

    // Client → peer: from the data connection's receive buffer straight into the peer socket.
    'up: loop {
        if client.received().is_empty() {
            match client.fill(now) {
                Ok(f) if f.added == 0 => break,
                Ok(_) => {}
                Err(_) => {
                    closed = true;
                    // What arrived before the close still goes to the peer (best effort).
                    if !client.received().is_empty() {
                        if let Ok(n) = pair.peer.write(client.received()) {
                            client.consume(n);
                            to_peer += n;
                        }
                    }
                    break;
                }
            }
        }
        while !client.received().is_empty() {
            match pair.peer.write(client.received()) {
                Ok(0) => {
                    closed = true;
                    break 'up;
                }
                Ok(n) => {
                    client.consume(n);
                    to_peer += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break 'up,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    closed = true;
                    break 'up;
                }
            }
        }
        if to_peer >= BYTES_PER_TURN {
            more = true;
            break;
        }
    }

    // Peer → client: into the data connection's send backlog, never past TO_CLIENT_LIMIT.
    let mut stopped_full = false;
    while !closed {
        let held = client.received_and_backlog().1.len();
        if held >= TO_CLIENT_LIMIT {
            stopped_full = true;
            break;
        }
        let room = (TO_CLIENT_LIMIT - held).min(scratch.len());
        match pair.peer.read(&mut scratch[..room]) {
            Ok(0) => {
                closed = true;
            }
            Ok(n) => {
                // Fits: `room` is below the backlog's free space.
                client.queue(&scratch[..n]);
                to_client += n;
                if to_client >= BYTES_PER_TURN {
                    more = true;
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => closed = true,
        }
    }
    if client.flush().is_err() {
        closed = true;
    }
    // The peer was left unread for a full backlog that the flush has since drained: no
    // readiness event will come for what the peer already sent, so come back next turn.
    if stopped_full && client.received_and_backlog().1.len() < TO_CLIENT_LIMIT {
        more = true;
    }
    if closed {
        Err((to_peer, to_client))
    } else {
        Ok((more, to_peer, to_client))
    }
}
