//! One shard: a thread with its own event loop, listening sockets, client connections, relay
//! sockets and core state. Nothing here is shared with other shards except the core's `Shared`
//! (control plane) and the connection limits (touched on accept and close).

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, UdpSocket};
use mio::{Events, Interest, Poll, Registry, Token, Waker};
use rustls::ServerConfig;

use super::connection::{CloseReason, Connection};
use super::connection_limits::ConnectionLimits;
use super::control::{CommandReceiver, SessionFilter, SessionInfo, ShardCommand, ShardFlags};
use super::relay_sockets::RelaySockets;
use super::udp_batch::{RecvBatch, SendQueue, BATCH};
use crate::proto::flow::{Flow, Transport};
use crate::proto::log_escape::Escaped;
use crate::proto::server::{ClientAction, Event, PeerAction, Server, PEER_HEADROOM, PEER_TAILROOM};

// Token space: relay slots, then connections, then listeners, then the waker.
const CONN_BASE: usize = 1 << 28;
const UDP_LISTENER_BASE: usize = 1 << 29;
const TCP_LISTENER_BASE: usize = UDP_LISTENER_BASE + (1 << 16);
const WAKER: Token = Token(usize::MAX);
/// `Flow::socket` values at and above this name a connection (slot = value - base); below it, a
/// UDP listener index.
const CONN_FLOW_BASE: u32 = 1 << 16;

/// Largest datagram relayed. Batched receives need a slot per datagram; media stays far below
/// this, and larger datagrams are dropped and counted as malformed.
const MAX_DATAGRAM: usize = 9216;
/// Most datagrams or reads handled for one socket per turn, so a busy socket cannot starve the
/// others; a socket that used its budget is served again on the next turn.
const READ_BUDGET: usize = 256;
/// Time to complete the TLS handshake or send a first frame.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time an incomplete frame may take to arrive (slow-loris guard).
const PARTIAL_FRAME_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a connection without allocation may stay silent.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// What a TCP listener accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamPort {
    /// The TURN port: plain TCP, or TLS recognised by its first byte.
    Plain,
    /// A TLS port.
    Tls,
}

/// Sockets a shard serves.
pub struct ShardSockets {
    /// UDP listeners.
    pub udp: Vec<std::net::UdpSocket>,
    /// TCP listeners and what they accept.
    pub tcp: Vec<(std::net::TcpListener, StreamPort)>,
}

/// What every shard receives from the runtime besides its own sockets and core.
pub struct ShardContext {
    /// TLS settings, when a certificate is configured.
    pub tls: Option<Arc<ServerConfig>>,
    /// Connection caps shared by all shards.
    pub limits: Arc<ConnectionLimits>,
    /// Stop and drain flags.
    pub flags: Arc<ShardFlags>,
    /// When non-zero, the shard sleeps until this much time has passed since its last wake-up
    /// before polling again, so each wake-up drains more datagrams (fewer wake-ups per packet).
    pub poll_interval: Duration,
}

/// The state of one shard's thread.
pub struct Shard {
    poll: Poll,
    core: Server,
    udp: Vec<UdpSocket>,
    tcp: Vec<(TcpListener, StreamPort)>,
    conns: Vec<Option<Connection>>,
    free_conns: Vec<usize>,
    relays: RelaySockets,
    tls: Option<Arc<ServerConfig>>,
    limits: Arc<ConnectionLimits>,
    rx: RecvBatch,
    to_clients: Vec<SendQueue>,
    out: Vec<u8>,
    again: Vec<Token>,
    next_sweep: Instant,
    flags: Arc<ShardFlags>,
    poll_interval: Duration,
    commands: CommandReceiver,
    id: usize,
}

impl Shard {
    /// A shard serving `sockets` with `core`. `make_relays` receives the registry that relay
    /// sockets must be registered with.
    pub fn new(
        id: usize,
        core: Server,
        sockets: ShardSockets,
        make_relays: impl FnOnce(Registry) -> RelaySockets,
        context: ShardContext,
        commands: CommandReceiver,
    ) -> io::Result<(Self, Arc<Waker>)> {
        let ShardContext {
            tls,
            limits,
            flags,
            poll_interval,
        } = context;
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let mut udp = Vec::with_capacity(sockets.udp.len());
        for (i, s) in sockets.udp.into_iter().enumerate() {
            let mut s = UdpSocket::from_std(s);
            poll.registry()
                .register(&mut s, Token(UDP_LISTENER_BASE + i), Interest::READABLE)?;
            udp.push(s);
        }
        let mut tcp = Vec::with_capacity(sockets.tcp.len());
        for (i, (l, kind)) in sockets.tcp.into_iter().enumerate() {
            let mut l = TcpListener::from_std(l);
            poll.registry()
                .register(&mut l, Token(TCP_LISTENER_BASE + i), Interest::READABLE)?;
            tcp.push((l, kind));
        }
        let relays = make_relays(poll.registry().try_clone()?);
        let udp_count = udp.len();
        let now = Instant::now();
        Ok((
            Shard {
                poll,
                core,
                udp,
                tcp,
                conns: Vec::new(),
                free_conns: Vec::new(),
                relays,
                tls,
                limits,
                rx: RecvBatch::new(PEER_HEADROOM + MAX_DATAGRAM + PEER_TAILROOM),
                to_clients: (0..udp_count).map(|_| SendQueue::new()).collect(),
                out: vec![0; 2048],
                again: Vec::new(),
                next_sweep: now + SWEEP_INTERVAL,
                flags,
                poll_interval,
                commands,
                id,
            },
            waker,
        ))
    }

    /// Runs until told to stop.
    pub fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut draining = false;
        let mut pending = Vec::new();
        loop {
            let now = Instant::now();
            if !self.poll_interval.is_zero() {
                // Let datagrams gather so the next wake-up handles them in larger batches.
                std::thread::sleep(self.poll_interval);
            }
            let timeout = if self.again.is_empty() {
                let deadline = self.core.poll_timeout().min(self.next_sweep);
                // Round up so a deadline a few microseconds away does not spin.
                deadline.saturating_duration_since(now) + Duration::from_millis(1)
            } else {
                Duration::ZERO
            };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            if self.flags.stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            while let Ok(command) = self.commands.try_recv() {
                self.handle_command(command);
            }
            let want_drain = self.flags.draining.load(Ordering::Relaxed);
            if want_drain != draining {
                draining = want_drain;
                self.core.set_draining(draining);
            }
            std::mem::swap(&mut pending, &mut self.again);
            for token in pending.drain(..) {
                self.dispatch(token, true, false);
            }
            for event in events.iter() {
                self.dispatch(event.token(), event.is_readable(), event.is_writable());
            }
            let now = Instant::now();
            if self.core.poll_timeout() <= now {
                self.core.handle_timeout(now, &mut self.relays);
            }
            if now >= self.next_sweep {
                self.next_sweep = now + SWEEP_INTERVAL;
                self.sweep_connections(now);
            }
            self.log_events();
        }
    }

    fn handle_command(&mut self, command: ShardCommand) {
        let now = Instant::now();
        match command {
            ShardCommand::SetConfig(config) => self.core.set_config(config, now),
            ShardCommand::ListSessions(reply) => {
                let _ = reply.send(self.sessions(now));
            }
            ShardCommand::EndSessions(filter, reply) => {
                let ended =
                    self.core
                        .end_allocations_where(now, &mut self.relays, |a| match &filter {
                            SessionFilter::Id(id) => a.id == *id,
                            SessionFilter::User(user) => *a.user_id == **user,
                            SessionFilter::Secret(id) => a.secret_id == Some(*id),
                        });
                self.log_events();
                let _ = reply.send(ended);
            }
        }
    }

    fn sessions(&self, now: Instant) -> Vec<SessionInfo> {
        self.core
            .allocations()
            .map(|(_, a)| SessionInfo {
                id: a.id,
                shard: self.id,
                username: a.username.to_string(),
                user_id: a.user_id.to_string(),
                transport: a.transport.as_str(),
                client: a.flow.remote,
                relay: a.relay_addr,
                relayed: a.advertised,
                age_secs: now.saturating_duration_since(a.created).as_secs(),
                expires_in_secs: a.expires.saturating_duration_since(now).as_secs(),
                bytes_to_peers: a.traffic.to_peer_bytes,
                bytes_to_client: a.traffic.to_client_bytes,
                packets_to_peers: a.traffic.to_peer_packets,
                packets_to_client: a.traffic.to_client_packets,
                permissions: a
                    .permissions
                    .iter()
                    .filter(|p| p.expires > now)
                    .map(|p| p.ip)
                    .collect(),
                channels: a
                    .channels
                    .iter()
                    .filter(|c| c.expires > now)
                    .map(|c| (c.number, c.peer))
                    .collect(),
                secret_id: a.secret_id,
            })
            .collect()
    }

    fn dispatch(&mut self, token: Token, readable: bool, writable: bool) {
        match token.0 {
            _ if token == WAKER => {}
            t if t >= TCP_LISTENER_BASE => self.accept(t - TCP_LISTENER_BASE),
            t if t >= UDP_LISTENER_BASE => self.read_udp_listener(t - UDP_LISTENER_BASE),
            t if t >= CONN_BASE => self.service_connection(t - CONN_BASE, readable, writable),
            t => self.read_relay(t as u32),
        }
    }

    fn read_udp_listener(&mut self, index: usize) {
        let Some(fd) = self.udp.get(index).map(|s| s.as_raw_fd()) else {
            return;
        };
        for _ in 0..READ_BUDGET / BATCH {
            let n = match self.rx.recv(fd, 0, PEER_TAILROOM) {
                Ok(0) => return,
                Ok(n) => n,
                Err(e) => {
                    // An error report (ICMP) consumed by this call; datagrams may still wait.
                    tracing::trace!(shard = self.id, error = %e, "listener receive error");
                    continue;
                }
            };
            let now = Instant::now();
            for i in 0..n {
                let (len, from, truncated) = self.rx.meta(i);
                let Some(from) = from else {
                    continue;
                };
                if truncated {
                    self.core.stats().dropped_malformed.count(len);
                    continue;
                }
                let flow = Flow {
                    socket: index as u32,
                    remote: canonical(from),
                };
                let data = &self.rx.slot(i)[..len];
                let action = self.core.handle_client(
                    now,
                    flow,
                    Transport::Udp,
                    data,
                    &mut self.out,
                    &mut self.relays,
                );
                match action {
                    ClientAction::None => {}
                    ClientAction::Reply(m) => {
                        let _ = self.udp[index].send_to(&self.out[..m], from);
                    }
                    ClientAction::Relay {
                        relay,
                        peer,
                        start,
                        end,
                    } => {
                        if let Some(socket) = self.relays.get(relay) {
                            let _ = socket.send_to(&data[start..end], peer);
                        }
                    }
                }
            }
            if n < BATCH {
                return;
            }
        }
        self.again.push(Token(UDP_LISTENER_BASE + index));
    }

    fn read_relay(&mut self, relay: u32) {
        for _ in 0..READ_BUDGET / BATCH {
            let Some(fd) = self.relays.get(relay).map(|s| s.as_raw_fd()) else {
                return;
            };
            let n = match self.rx.recv(fd, PEER_HEADROOM, PEER_TAILROOM) {
                Ok(0) => return,
                Ok(n) => n,
                Err(e) => {
                    // ICMP errors (port unreachable) surface here; they concern one peer only.
                    tracing::trace!(shard = self.id, relay, error = %e, "relay receive error");
                    continue;
                }
            };
            let now = Instant::now();
            for i in 0..n {
                let (len, from, truncated) = self.rx.meta(i);
                let Some(from) = from else {
                    continue;
                };
                if truncated {
                    self.core.stats().dropped_malformed.count(len);
                    continue;
                }
                let slot = self.rx.slot_mut(i);
                match self
                    .core
                    .handle_peer(now, relay, canonical(from), slot, len)
                {
                    PeerAction::Drop => {}
                    PeerAction::Forward { flow, start, end } => {
                        if flow.socket < CONN_FLOW_BASE {
                            if let Some(queue) = self.to_clients.get_mut(flow.socket as usize) {
                                queue.push(i, start, end, flow.remote);
                            }
                        } else {
                            self.deliver_to_connection(flow, i, start, end);
                        }
                    }
                }
            }
            for (index, queue) in self.to_clients.iter_mut().enumerate() {
                if !queue.is_empty() {
                    queue.flush(self.udp[index].as_raw_fd(), &self.rx);
                }
            }
            if n < BATCH {
                return;
            }
        }
        self.again.push(Token(relay as usize));
    }

    /// Sends `rx` slot `i`'s `[start..end]` to the TCP/TLS client on `flow`.
    fn deliver_to_connection(&mut self, flow: Flow, i: usize, start: usize, end: usize) {
        let slot = (flow.socket - CONN_FLOW_BASE) as usize;
        let result = match self.conns.get_mut(slot).and_then(Option::as_mut) {
            Some(conn) => {
                conn.queue(&self.rx.slot(i)[start..end]);
                conn.flush()
            }
            None => return,
        };
        self.after_io(slot, result);
    }

    fn accept(&mut self, index: usize) {
        for _ in 0..READ_BUDGET {
            let Some((listener, kind)) = self.tcp.get(index) else {
                return;
            };
            let kind = *kind;
            let (stream, remote) = match listener.accept() {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    // Out of file descriptors and similar: retry on the next turn.
                    tracing::warn!(shard = self.id, error = %e, "accept failed");
                    break;
                }
            };
            let remote = canonical(remote);
            if !self.limits.try_open(remote.ip()) {
                tracing::debug!(shard = self.id, client = %remote, "connection refused: limit reached");
                continue;
            }
            let _ = stream.set_nodelay(true);
            let now = Instant::now();
            let conn = match (kind, &self.tls) {
                (StreamPort::Plain, tls) => {
                    Connection::plain_port(stream, remote, tls.clone(), now)
                }
                (StreamPort::Tls, Some(tls)) => {
                    match Connection::tls_port(stream, remote, tls.clone(), now) {
                        Ok(c) => c,
                        Err(_) => {
                            self.limits.close(remote.ip());
                            continue;
                        }
                    }
                }
                (StreamPort::Tls, None) => {
                    self.limits.close(remote.ip());
                    continue;
                }
            };
            let slot = self.free_conns.pop().unwrap_or_else(|| {
                self.conns.push(None);
                self.conns.len() - 1
            });
            let mut conn = conn;
            if let Err(e) = self.poll.registry().register(
                conn.stream_mut(),
                Token(CONN_BASE + slot),
                Interest::READABLE,
            ) {
                tracing::warn!(error = %e, "cannot register connection");
                self.limits.close(remote.ip());
                self.free_conns.push(slot);
                continue;
            }
            self.conns[slot] = Some(conn);
        }
        self.again.push(Token(TCP_LISTENER_BASE + index));
    }

    fn service_connection(&mut self, slot: usize, readable: bool, writable: bool) {
        if writable {
            let result = match self.conns.get_mut(slot).and_then(Option::as_mut) {
                Some(conn) => conn.flush(),
                None => return,
            };
            if !self.after_io(slot, result) {
                return;
            }
        }
        if readable {
            let result = self.read_connection(slot);
            self.after_io(slot, result);
        }
    }

    /// Reads and handles every whole frame the connection has.
    fn read_connection(&mut self, slot: usize) -> Result<(), CloseReason> {
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return Ok(());
        };
        let flow = Flow {
            socket: CONN_FLOW_BASE + slot as u32,
            remote: conn.remote(),
        };
        for _ in 0..READ_BUDGET {
            let now = Instant::now();
            let added = conn.fill(now)?;
            while let Some(n) = conn.next_frame(now)? {
                let transport = conn.transport();
                let frame = &conn.received()[..n];
                let action = self.core.handle_client(
                    now,
                    flow,
                    transport,
                    frame,
                    &mut self.out,
                    &mut self.relays,
                );
                match action {
                    ClientAction::None => {}
                    ClientAction::Reply(len) => {
                        conn.queue(&self.out[..len]);
                    }
                    ClientAction::Relay {
                        relay,
                        peer,
                        start,
                        end,
                    } => {
                        if let Some(socket) = self.relays.get(relay) {
                            let _ = socket.send_to(&frame[start..end], peer);
                        }
                    }
                }
                conn.consume(n);
            }
            if added == 0 {
                return conn.flush();
            }
        }
        self.again.push(Token(CONN_BASE + slot));
        conn.flush()
    }

    /// Closes the connection after a failed I/O step, or updates its write interest. Returns
    /// whether the connection is still open.
    fn after_io(&mut self, slot: usize, result: Result<(), CloseReason>) -> bool {
        if let Err(reason) = result {
            self.close_connection(slot, reason);
            return false;
        }
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return false;
        };
        let want = conn.wants_write();
        if want != conn.writable_registered {
            let interest = if want {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            conn.writable_registered = want;
            let _ = self.poll.registry().reregister(
                conn.stream_mut(),
                Token(CONN_BASE + slot),
                interest,
            );
        }
        true
    }

    fn close_connection(&mut self, slot: usize, reason: CloseReason) {
        let Some(mut conn) = self.conns.get_mut(slot).and_then(Option::take) else {
            return;
        };
        let _ = self.poll.registry().deregister(conn.stream_mut());
        let remote = conn.remote();
        self.limits.close(remote.ip());
        let flow = Flow {
            socket: CONN_FLOW_BASE + slot as u32,
            remote,
        };
        self.core
            .handle_flow_closed(Instant::now(), flow, &mut self.relays);
        self.free_conns.push(slot);
        tracing::debug!(shard = self.id, client = %remote, reason, dropped = conn.dropped, "connection closed");
    }

    /// Closes connections that never finished their handshake, stalled mid-frame, or sit idle
    /// without an allocation.
    fn sweep_connections(&mut self, now: Instant) {
        for slot in 0..self.conns.len() {
            let Some(conn) = self.conns[slot].as_ref() else {
                continue;
            };
            let flow = Flow {
                socket: CONN_FLOW_BASE + slot as u32,
                remote: conn.remote(),
            };
            let reason = if !conn.established()
                && now.saturating_duration_since(conn.opened) > HANDSHAKE_TIMEOUT
            {
                Some("handshake timeout")
            } else if conn
                .partial_since
                .is_some_and(|t| now.saturating_duration_since(t) > PARTIAL_FRAME_TIMEOUT)
            {
                Some("incomplete frame timeout")
            } else if now.saturating_duration_since(conn.last_rx) > IDLE_TIMEOUT
                && !self.core.has_allocation(flow)
            {
                Some("idle timeout")
            } else {
                None
            };
            if let Some(reason) = reason {
                self.close_connection(slot, reason);
            }
        }
    }

    fn log_events(&mut self) {
        while let Some(event) = self.core.poll_event() {
            match event {
                Event::AllocationCreated {
                    flow,
                    transport,
                    username,
                    relay,
                    advertised,
                    lifetime,
                } => {
                    tracing::info!(
                        shard = self.id,
                        client = %flow.remote,
                        transport = transport.as_str(),
                        user = %Escaped(&username),
                        relay = %relay,
                        relayed = %advertised,
                        lifetime,
                        "allocation created"
                    );
                }
                Event::AllocationEnded {
                    flow,
                    transport,
                    username,
                    relay,
                    duration,
                    traffic,
                    reason,
                } => {
                    tracing::info!(
                        shard = self.id,
                        client = %flow.remote,
                        transport = transport.as_str(),
                        user = %Escaped(&username),
                        relay = %relay,
                        duration_s = duration.as_secs(),
                        sent_packets = traffic.to_peer_packets,
                        sent_bytes = traffic.to_peer_bytes,
                        received_packets = traffic.to_client_packets,
                        received_bytes = traffic.to_client_bytes,
                        reason = ?reason,
                        "allocation ended"
                    );
                }
            }
        }
    }
}

/// IPv6 sockets are V6ONLY, so this only strips a mapped form a peer could not have sent;
/// kept so permission checks always compare like with like.
fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()),
            None => addr,
        },
        v4 => v4,
    }
}
