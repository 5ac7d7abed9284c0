//! One shard: a thread with its own event loop, listening sockets, client connections, relay
//! sockets and core state. Nothing here is shared with other shards except the core's `Shared`
//! (control plane) and the connection limits (touched on accept and close).
//!
//! Each loop turn serves every socket known to hold input once, in round-robin order, up to a
//! budget (datagrams per UDP socket, frames per connection, time for TLS handshakes); a socket
//! with input left goes to the back of the run queue. So an overloaded listener cannot starve
//! the relay sockets that carry the replies, one fast TCP client cannot starve the media on its
//! shard, and a burst of handshakes cannot stall relaying. What the budget leaves unread stays
//! in the kernel's socket queue, where the excess is dropped at no cost to the relay and
//! counted (`SO_RXQ_OVFL`).

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::event::Event as MioEvent;
use mio::net::{TcpListener, UdpSocket};
use mio::{Events, Interest, Poll, Registry, Token, Waker};
use rustls::ServerConfig;
use tracing::field;

use super::accept_backoff::{is_resource_limit, AcceptBackoff};
use super::client_input::{ClientPath, Input, Replies};
use super::connection::{CloseReason, Connection};
use super::connection_limits::ConnectionLimits;
use super::control::{CommandReceiver, SessionFilter, SessionInfo, ShardCommand, ShardFlags};
use super::fast_path::ShardRoutes;
use super::io_stats::IoStats;
use super::poll_pacing::{self, PollPacing};
use super::proxy_accept::{self, ProxyPolicy, RefusalLog};
use super::ready::ReadyQueue;
use super::relay_sends::RelaySends;
use super::relay_sockets::{relay_of_token, RelaySockets};
use super::stream_flush::PendingFlush;
use super::stream_framing::{next_frame, Frame};
use super::tcp_handover::Handover;
use super::tcp_relay::TcpRelay;
use super::udp_batch::{enable_drop_counter, DropMeter, RecvBatch, SendQueue, BATCH};
use crate::proto::flow::{Flow, RelayId, SocketId, Transport};
use crate::proto::log_escape::Escaped;
use crate::proto::server::{Event, PeerAction, Server, PEER_HEADROOM, PEER_TAILROOM};

// Token space: relay sockets (`relay_token`), then connections, then listeners, then the waker.
const CONN_BASE: usize = 1 << 28;
const UDP_LISTENER_BASE: usize = 1 << 29;
const TCP_LISTENER_BASE: usize = UDP_LISTENER_BASE + (1 << 16);
const WAKER: Token = Token(usize::MAX);

/// Largest datagram relayed. Batched receives need a slot per datagram; media stays far below
/// this, and larger datagrams are dropped and counted as malformed.
const MAX_DATAGRAM: usize = 9216;
/// Receive batches (of [`BATCH`] datagrams) one UDP socket gets per turn. Small enough that a
/// socket that always has input (a flooded listener) leaves room for every other socket each
/// turn, large enough that a turn's fixed cost (one `epoll_wait`) is spread over many packets.
const UDP_BATCHES_PER_TURN: usize = 2;
/// Frames one connection gets handled per turn (and at most one receive buffer of bytes).
const FRAMES_PER_TURN: usize = 64;
/// Connections accepted per listener per turn.
const ACCEPTS_PER_TURN: usize = 64;
/// Time per turn spent on connections that are not yet established (TLS handshakes, first
/// bytes); what is left waits for the next turn, after the relay sockets had theirs.
const HANDSHAKE_TIME_PER_TURN: Duration = Duration::from_millis(1);
/// Time to complete the TLS handshake or send a first frame.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time an incomplete frame may take to arrive (slow-loris guard).
const PARTIAL_FRAME_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a connection without allocation may stay silent.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

// RFC 6062 glue: relay listeners, peer/data connection pairs, ConnectionBind hand-over.
#[path = "shard_tcp.rs"]
mod shard_tcp;

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
    /// When the shard polls again after a turn (`poll-interval-ms`, `poll-coalesce-us`).
    pub pacing: PollPacing,
    /// This shard's I/O counters.
    pub io: Arc<IoStats>,
    /// The way to hand RFC 6062 data connections to the shard that owns their allocation.
    pub handover: Handover,
    /// Which listeners expect a PROXY protocol header, and from whom.
    pub proxy: Arc<ProxyPolicy>,
    /// This shard's writer of the kernel fast path's maps, when the fast path runs.
    pub routes: Option<ShardRoutes>,
}

/// Where the client inputs of a turn come from.
#[derive(Clone, Copy)]
enum InputsFrom {
    /// UDP listener `index` (datagrams in the shard's receive batch).
    Listener(usize),
    /// The TCP/TLS connection in this slot (frames in its receive buffer).
    Connection(usize),
}

/// Where a batch of datagrams comes from.
#[derive(Clone, Copy)]
enum BatchFrom {
    /// UDP listener `index`.
    Listener(usize),
    /// A relay socket.
    Relay(RelayId),
}

struct Listener {
    socket: TcpListener,
    kind: StreamPort,
    backoff: AcceptBackoff,
    /// Connections start with a PROXY protocol header.
    proxy: bool,
}

/// The state of one shard's thread.
pub struct Shard {
    poll: Poll,
    core: Server,
    udp: Vec<UdpSocket>,
    udp_drops: Vec<DropMeter>,
    tcp: Vec<Listener>,
    conns: Vec<Option<Connection>>,
    free_conns: Vec<usize>,
    /// Connections with relayed frames queued this round, written once at its end.
    pending_flush: PendingFlush,
    relays: RelaySockets,
    tls: Option<Arc<ServerConfig>>,
    limits: Arc<ConnectionLimits>,
    rx: RecvBatch,
    inputs: Vec<Input>,
    to_clients: Vec<SendQueue>,
    to_peers: RelaySends,
    out: Vec<u8>,
    ready: ReadyQueue,
    handshake_time_left: Duration,
    next_sweep: Instant,
    flags: Arc<ShardFlags>,
    pacing: PollPacing,
    commands: CommandReceiver,
    io: Arc<IoStats>,
    proxy: Arc<ProxyPolicy>,
    proxy_refusals: RefusalLog,
    id: usize,
    routes: Option<ShardRoutes>,
    tcp_relay: TcpRelay,
    handover: Handover,
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
            pacing,
            io,
            handover,
            proxy,
            mut routes,
        } = context;
        let mut core = core;
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        handover.set_waker(waker.clone());
        let mut udp = Vec::with_capacity(sockets.udp.len());
        for (i, s) in sockets.udp.into_iter().enumerate() {
            if let Err(e) = enable_drop_counter(s.as_raw_fd()) {
                tracing::debug!(error = %e, "SO_RXQ_OVFL unavailable on a listener");
            }
            let mut s = UdpSocket::from_std(s);
            poll.registry()
                .register(&mut s, Token(UDP_LISTENER_BASE + i), Interest::READABLE)?;
            udp.push(s);
        }
        let mut tcp = Vec::with_capacity(sockets.tcp.len());
        for (i, (l, kind)) in sockets.tcp.into_iter().enumerate() {
            let expects_header = l.local_addr().is_ok_and(|a| proxy.expects_header(a.port()));
            let mut socket = TcpListener::from_std(l);
            poll.registry().register(
                &mut socket,
                Token(TCP_LISTENER_BASE + i),
                Interest::READABLE,
            )?;
            tcp.push(Listener {
                socket,
                kind,
                backoff: AcceptBackoff::default(),
                proxy: expects_header,
            });
        }
        if let Some(routes) = routes.as_mut() {
            let listeners = udp.iter().filter_map(|s| s.local_addr().ok()).collect();
            routes.set_listeners(id, listeners);
            core.enable_routes();
        }
        let relays = make_relays(poll.registry().try_clone()?);
        let udp_count = udp.len();
        let now = Instant::now();
        Ok((
            Shard {
                poll,
                core,
                udp,
                udp_drops: vec![DropMeter::default(); udp_count],
                tcp,
                conns: Vec::new(),
                free_conns: Vec::new(),
                pending_flush: PendingFlush::default(),
                relays,
                tls,
                limits,
                rx: RecvBatch::new(PEER_HEADROOM + MAX_DATAGRAM + PEER_TAILROOM),
                inputs: Vec::with_capacity(BATCH.max(FRAMES_PER_TURN)),
                to_clients: (0..udp_count).map(|_| SendQueue::new()).collect(),
                to_peers: RelaySends::new(),
                out: vec![0; 2048],
                ready: ReadyQueue::new(),
                handshake_time_left: HANDSHAKE_TIME_PER_TURN,
                next_sweep: now + SWEEP_INTERVAL,
                flags,
                pacing,
                commands,
                io,
                proxy,
                proxy_refusals: RefusalLog::default(),
                id,
                routes,
                tcp_relay: TcpRelay::new(),
                handover,
            },
            waker,
        ))
    }

    /// Runs until told to stop.
    pub fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut draining = false;
        if self.pacing.wants_precise_timers() {
            poll_pacing::set_precise_timers();
        }
        let mut had_input = false;
        loop {
            if let Some(wait) = self
                .pacing
                .wait_before_poll(had_input, !self.ready.is_empty())
            {
                // Let packets gather so the next wake-up serves them together.
                std::thread::sleep(wait);
                self.io.poll_waits.inc();
            }
            let now = Instant::now();
            let timeout = if self.ready.is_empty() {
                let deadline = self.next_deadline();
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
            had_input = events.iter().any(|e| e.token() != WAKER);
            #[cfg(feature = "fault-injection")]
            super::fault_injection::maybe_panic(self.id);
            while let Ok(command) = self.commands.try_recv() {
                self.handle_command(command);
            }
            self.receive_handovers();
            let want_drain = self.flags.draining.load(Ordering::Relaxed);
            if want_drain != draining {
                draining = want_drain;
                self.core.set_draining(draining);
            }
            for event in events.iter() {
                self.note_event(event);
            }
            let now = Instant::now();
            for (i, listener) in self.tcp.iter_mut().enumerate() {
                if listener.backoff.take_resumed(now) {
                    self.ready.push(Token(TCP_LISTENER_BASE + i));
                }
            }
            self.serve_round();
            self.flush_pending_connections();
            let now = Instant::now();
            if self.core.poll_timeout() <= now {
                self.core.handle_timeout(now, &mut self.relays);
            }
            if now >= self.next_sweep {
                self.next_sweep = now + SWEEP_INTERVAL;
                self.sweep_connections(now);
                if let Some(routes) = self.routes.as_mut() {
                    routes.sweep(now);
                }
            }
            self.apply_routes();
            self.apply_tcp_commands();
            self.log_events();
        }
    }

    /// The earliest of the core's timer, the connection sweep and a paused listener's retry.
    fn next_deadline(&self) -> Instant {
        self.tcp
            .iter()
            .filter_map(|l| l.backoff.resume_at())
            .fold(self.core.poll_timeout().min(self.next_sweep), Instant::min)
    }

    /// Writes what a connection that became writable has waiting, and queues every socket that
    /// reported input.
    fn note_event(&mut self, event: &MioEvent) {
        let token = event.token();
        if token == WAKER {
            return;
        }
        if TcpRelay::owns(token) {
            // Pair sockets want both edges: writable frees a blocked direction or ends a
            // connect, readable brings data.
            self.ready.push(token);
            return;
        }
        let conn_slot = (CONN_BASE..UDP_LISTENER_BASE)
            .contains(&token.0)
            .then(|| token.0 - CONN_BASE);
        if let (Some(slot), true) = (conn_slot, event.is_writable()) {
            let result = match self.conns.get_mut(slot).and_then(Option::as_mut) {
                Some(conn) => conn.flush(),
                None => return,
            };
            if !self.after_io(slot, result) {
                return;
            }
        }
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            self.ready.push(token);
        }
    }

    /// Serves each socket that was ready at the start of the round once, within its budget.
    fn serve_round(&mut self) {
        self.handshake_time_left = HANDSHAKE_TIME_PER_TURN;
        let mut deferred_handshakes = false;
        for _ in 0..self.ready.len() {
            let Some(token) = self.ready.pop() else {
                break;
            };
            let more = match token.0 {
                t if t >= TCP_LISTENER_BASE => self.accept(t - TCP_LISTENER_BASE),
                t if t >= UDP_LISTENER_BASE => self.read_udp_listener(t - UDP_LISTENER_BASE),
                t if t >= CONN_BASE => {
                    let (more, deferred) = self.read_connection(t - CONN_BASE);
                    deferred_handshakes |= deferred;
                    more
                }
                t if TcpRelay::owns(Token(t)) => self.serve_tcp_relay(Token(t)),
                _ => self.read_relay(relay_of_token(token)),
            };
            if more {
                self.ready.push(token);
            }
        }
        if deferred_handshakes {
            self.io.tls_handshakes_deferred.inc();
        }
    }

    /// Hands the core's channel route changes to the fast path's maps.
    fn apply_routes(&mut self) {
        if let Some(routes) = self.routes.as_mut() {
            while let Some(change) = self.core.poll_route() {
                routes.apply(change);
            }
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
                self.apply_routes();
                self.log_events();
                let _ = reply.send(ended);
            }
        }
    }

    fn sessions(&self, now: Instant) -> Vec<SessionInfo> {
        self.core
            .allocations()
            .map(|(slot, a)| (a, self.kernel_traffic(slot)))
            .map(|(a, ((kp, kb), (cp, cb)))| SessionInfo {
                id: a.id,
                shard: self.id,
                username: a.username.to_string(),
                user_id: a.user_id.to_string(),
                transport: a.transport.as_str(),
                client: a.flow.remote,
                relay: a.relay_addr(),
                relayed: a.advertised(),
                additional: match a.relays {
                    [Some(_), Some(r)] => Some((r.addr, r.advertised)),
                    _ => None,
                },
                age_secs: now.saturating_duration_since(a.created).as_secs(),
                expires_in_secs: a.expires.saturating_duration_since(now).as_secs(),
                bytes_to_peers: a.traffic.to_peer_bytes + kb,
                bytes_to_client: a.traffic.to_client_bytes + cb,
                packets_to_peers: a.traffic.to_peer_packets + kp,
                packets_to_client: a.traffic.to_client_packets + cp,
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

    /// What the kernel fast path forwarded for the allocation named `first` on its live channels.
    fn kernel_traffic(&self, first: RelayId) -> ((u64, u64), (u64, u64)) {
        let Some(routes) = self.routes.as_ref() else {
            return ((0, 0), (0, 0));
        };
        // Both relay sockets of a dual allocation.
        self.core
            .relay_ids(first)
            .map(|(id, _)| routes.traffic(id))
            .fold(((0, 0), (0, 0)), |(p, c), (kp, kc)| {
                ((p.0 + kp.0, p.1 + kp.1), (c.0 + kc.0, c.1 + kc.1))
            })
    }

    /// Passes `self.inputs` (datagrams in `self.rx`, or frames at the front of a connection's
    /// receive buffer) through the core and applies what it answers.
    fn handle_inputs(&mut self, now: Instant, from: InputsFrom) {
        let mut path = ClientPath {
            core: &mut self.core,
            relays: &mut self.relays,
            out: &mut self.out,
            to_peers: &mut self.to_peers,
            io: &self.io,
        };
        match from {
            InputsFrom::Listener(index) => path.handle(
                now,
                SocketId::Listener(index as u32),
                Transport::Udp,
                self.rx.all(),
                &self.inputs,
                Replies::Datagram(&self.udp[index]),
            ),
            InputsFrom::Connection(slot) => {
                let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
                    return;
                };
                let transport = conn.transport();
                let (input, backlog) = conn.received_and_backlog();
                let socket = SocketId::Connection(slot as u32);
                let replies = Replies::Stream(backlog);
                path.handle(now, socket, transport, input, &self.inputs, replies);
            }
        }
    }

    /// Receives one batch from `fd` (UDP listener or relay socket `from`) into `self.rx` and
    /// counts the queue-overflow drops the kernel reported on it: how many datagrams arrived
    /// (0 = none wait), or None after a receive error, an ICMP report (port unreachable)
    /// consumed by the call that concerns one peer only; datagrams may still wait.
    fn recv_batch(&mut self, fd: RawFd, from: BatchFrom) -> Option<usize> {
        // Peer payloads get headroom for the core to frame them in place.
        let offset = match from {
            BatchFrom::Listener(_) => 0,
            BatchFrom::Relay(_) => PEER_HEADROOM,
        };
        let n = match self.rx.recv(fd, offset, PEER_TAILROOM) {
            Ok(n) => n,
            Err(e) => {
                match from {
                    BatchFrom::Listener(_) => {
                        tracing::trace!(shard = self.id, error = %e, "listener receive error")
                    }
                    BatchFrom::Relay(relay) => {
                        tracing::trace!(shard = self.id, %relay, error = %e, "relay receive error")
                    }
                }
                return None;
            }
        };
        if let Some(running) = self.rx.dropped() {
            let dropped = match from {
                BatchFrom::Listener(index) => self.udp_drops[index].delta(running),
                BatchFrom::Relay(relay) => self.relays.queue_drops(relay, running),
            };
            self.io.dropped_queue_full.add(dropped);
        }
        Some(n)
    }

    /// Reads up to the budget from UDP listener `index`; true when input may be left.
    fn read_udp_listener(&mut self, index: usize) -> bool {
        let Some(fd) = self.udp.get(index).map(|s| s.as_raw_fd()) else {
            return false;
        };
        for _ in 0..UDP_BATCHES_PER_TURN {
            let n = match self.recv_batch(fd, BatchFrom::Listener(index)) {
                Some(0) => return false,
                Some(n) => n,
                None => continue,
            };
            self.inputs.clear();
            for i in 0..n {
                let Some((len, from)) = self.rx.intact(i, &self.core.stats().dropped_malformed)
                else {
                    continue;
                };
                let start = self.rx.slot_offset(i);
                self.inputs.push(Input {
                    start,
                    end: start + len,
                    remote: canonical(from),
                });
            }
            self.handle_inputs(Instant::now(), InputsFrom::Listener(index));
            if n < BATCH {
                return false;
            }
        }
        true
    }

    /// Reads up to the budget from relay socket `relay`; true when input may be left.
    fn read_relay(&mut self, relay: RelayId) -> bool {
        for _ in 0..UDP_BATCHES_PER_TURN {
            let Some(fd) = self.relays.get(relay).map(|s| s.as_raw_fd()) else {
                return false;
            };
            let n = match self.recv_batch(fd, BatchFrom::Relay(relay)) {
                Some(0) => return false,
                Some(n) => n,
                None => continue,
            };
            let now = Instant::now();
            for i in 0..n {
                let Some((len, from)) = self.rx.intact(i, &self.core.stats().dropped_malformed)
                else {
                    continue;
                };
                let slot = self.rx.slot_mut(i);
                match self
                    .core
                    .handle_peer(now, relay, canonical(from), slot, len)
                {
                    PeerAction::Drop => {}
                    PeerAction::Forward { flow, start, end } => match flow.socket {
                        SocketId::Listener(index) => {
                            let base = self.rx.slot_offset(i);
                            if let Some(queue) = self.to_clients.get_mut(index as usize) {
                                queue.push(base + start, base + end, flow.remote);
                            }
                        }
                        SocketId::Connection(slot) => {
                            self.deliver_to_connection(slot as usize, i, start, end)
                        }
                    },
                }
            }
            for (index, queue) in self.to_clients.iter_mut().enumerate() {
                if !queue.is_empty() {
                    queue
                        .flush(self.udp[index].as_raw_fd(), self.rx.all())
                        .count(&self.io);
                }
            }
            if n < BATCH {
                return false;
            }
        }
        true
    }

    /// Queues `rx` slot `i`'s `[start..end]` for the TCP/TLS client on connection `slot`; the
    /// round's end writes it with whatever else that connection got.
    fn deliver_to_connection(&mut self, slot: usize, i: usize, start: usize, end: usize) {
        if let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) {
            if conn.queue(&self.rx.slot(i)[start..end]) {
                self.pending_flush.mark(slot);
            } else {
                self.io.dropped_client_backlog.count(end - start);
            }
        }
    }

    /// Writes every connection that had frames queued this round: one write each.
    fn flush_pending_connections(&mut self) {
        while let Some(slot) = self.pending_flush.pop() {
            let result = match self.conns.get_mut(slot).and_then(Option::as_mut) {
                Some(conn) => conn.flush(),
                None => continue,
            };
            self.after_io(slot, result);
        }
    }

    /// Accepts up to the budget from TCP listener `index`; true when more may be waiting.
    fn accept(&mut self, index: usize) -> bool {
        for _ in 0..ACCEPTS_PER_TURN {
            let Some(listener) = self.tcp.get_mut(index) else {
                return false;
            };
            let now = Instant::now();
            if listener.backoff.paused(now) {
                return false;
            }
            let kind = listener.kind;
            let expects_header = listener.proxy;
            let (stream, remote) = match listener.socket.accept() {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if is_resource_limit(&e) => {
                    // Retrying before a descriptor is freed cannot succeed: pause, and say so
                    // once per interval rather than once per attempt.
                    self.io.accept_fd_limit.inc();
                    if let Some(failures) = listener.backoff.failed(now) {
                        tracing::warn!(
                            shard = self.id,
                            error = %e,
                            failures,
                            "accept failed: out of file descriptors or memory; pausing accepts (raise LimitNOFILE / ulimit -n)"
                        );
                    }
                    return false;
                }
                Err(e) => {
                    // The client gave up before we accepted (ECONNABORTED) and the like.
                    self.io.accept_other.inc();
                    tracing::debug!(shard = self.id, error = %e, "accept failed");
                    continue;
                }
            };
            let remote = canonical(remote);
            // Behind a PROXY protocol balancer the client (and the per-IP cap that applies) is
            // known only once the header is read.
            let counted = if expects_header {
                if !self.proxy.trusts(remote.ip()) {
                    self.io.proxy_untrusted.inc();
                    if let Some(suppressed) = self.proxy_refusals.note(now) {
                        tracing::debug!(shard = self.id, source = %remote, suppressed, "connection to a proxy-protocol-port from a source not in proxy-protocol-trusted closed");
                    }
                    continue;
                }
                if !self.limits.try_open_unattributed() {
                    tracing::debug!(shard = self.id, proxy = %remote, "connection refused: limit reached");
                    continue;
                }
                None
            } else {
                if !self.limits.try_open(remote.ip()) {
                    tracing::debug!(shard = self.id, client = %remote, "connection refused: limit reached");
                    continue;
                }
                Some(remote.ip())
            };
            let _ = stream.set_nodelay(true);
            let conn = match (kind, &self.tls) {
                (StreamPort::Plain, tls) => {
                    Connection::plain_port(stream, remote, tls.clone(), now)
                }
                (StreamPort::Tls, Some(tls)) => {
                    match Connection::tls_port(stream, remote, tls.clone(), now) {
                        Ok(c) => c,
                        Err(_) => {
                            self.limits.release(counted);
                            continue;
                        }
                    }
                }
                (StreamPort::Tls, None) => {
                    self.limits.release(counted);
                    continue;
                }
            };
            let slot = self.free_conns.pop().unwrap_or_else(|| {
                self.conns.push(None);
                self.conns.len() - 1
            });
            let mut conn = conn;
            if expects_header {
                conn.expect_proxy_header(now + self.proxy.timeout());
            }
            if let Err(e) = self.poll.registry().register(
                conn.stream_mut(),
                Token(CONN_BASE + slot),
                Interest::READABLE,
            ) {
                tracing::warn!(error = %e, "cannot register connection");
                self.limits.release(counted);
                self.free_conns.push(slot);
                continue;
            }
            self.conns[slot] = Some(conn);
            // Data that arrived with the connection raises no new edge: look now.
            self.ready.push(Token(CONN_BASE + slot));
        }
        true
    }

    /// Reads and handles up to a turn's budget from a connection. Returns whether input may be
    /// left, and whether handshake work was put off for lack of time this turn.
    fn read_connection(&mut self, slot: usize) -> (bool, bool) {
        let Some(conn) = self.conns.get(slot).and_then(Option::as_ref) else {
            return (false, false);
        };
        let handshaking = !conn.established();
        if handshaking && self.handshake_time_left.is_zero() {
            return (true, true);
        }
        let started = Instant::now();
        let result = self.read_connection_frames(slot, started);
        if handshaking {
            self.handshake_time_left = self.handshake_time_left.saturating_sub(started.elapsed());
        }
        match result {
            Ok(more) => (self.after_io(slot, Ok(())) && more, false),
            Err(reason) => {
                self.after_io(slot, Err(reason));
                (false, false)
            }
        }
    }

    fn read_connection_frames(&mut self, slot: usize, now: Instant) -> Result<bool, CloseReason> {
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return Ok(false);
        };
        if conn.awaiting_proxy_header()
            && !proxy_accept::take_header(conn, &self.limits, &self.io, self.id)?
        {
            return Ok(false);
        }
        let filled = conn.fill(now)?;
        let remote = conn.remote();
        let flow = Flow {
            socket: SocketId::Connection(slot as u32),
            remote,
        };
        if let Some(owner) = shard_tcp::foreign_bind(conn.received(), self.id, &self.handover) {
            if !self.core.has_allocation(flow) {
                self.hand_over(slot, owner);
                return Ok(false);
            }
        }
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return Ok(false);
        };
        let input = conn.received();
        self.inputs.clear();
        let mut at = 0;
        let mut bind_seen = false;
        while self.inputs.len() < FRAMES_PER_TURN && !bind_seen {
            match next_frame(&input[at..]) {
                Frame::Complete(n) => {
                    self.inputs.push(Input {
                        start: at,
                        end: at + n,
                        remote,
                    });
                    // What follows a ConnectionBind may be raw relayed data, not frames.
                    bind_seen = shard_tcp::is_connection_bind(&input[at..at + n]);
                    at += n;
                }
                Frame::Partial => break,
                Frame::Invalid => return Err(CloseReason::InvalidFrame),
            }
        }
        if !self.inputs.is_empty() {
            self.handle_inputs(now, InputsFrom::Connection(slot));
            if let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) {
                conn.consume_frames(at);
            }
        }
        if bind_seen {
            // A successful ConnectionBind turns this into a data connection now, before its
            // raw bytes are mistaken for frames.
            self.apply_tcp_commands();
        }
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return Ok(false);
        };
        // Starts the slow-loris clock on an incomplete frame, and says whether whole frames
        // are left over for the next turn.
        let frames_left = conn.next_frame(now)?.is_some();
        conn.flush()?;
        Ok(filled.more || frames_left)
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
        self.limits.release(conn.counted_ip());
        let flow = Flow {
            socket: SocketId::Connection(slot as u32),
            remote,
        };
        self.core
            .handle_flow_closed(Instant::now(), flow, &mut self.relays);
        self.free_conns.push(slot);
        self.ready.remove(Token(CONN_BASE + slot));
        tracing::debug!(shard = self.id, client = %remote, %reason, "connection closed");
    }

    /// Closes connections that never finished their handshake, stalled mid-frame, or sit idle
    /// without an allocation; trims the buffers of the others that are silent.
    fn sweep_connections(&mut self, now: Instant) {
        for slot in 0..self.conns.len() {
            let Some(conn) = self.conns[slot].as_ref() else {
                continue;
            };
            let flow = Flow {
                socket: SocketId::Connection(slot as u32),
                remote: conn.remote(),
            };
            let reason = if conn.proxy_header_overdue(now) {
                self.io.proxy_timeout.inc();
                Some(CloseReason::ProxyHeaderTimeout)
            } else if !conn.established()
                && now.saturating_duration_since(conn.opened) > HANDSHAKE_TIMEOUT
            {
                Some(CloseReason::HandshakeTimeout)
            } else if conn
                .partial_since
                .is_some_and(|t| now.saturating_duration_since(t) > PARTIAL_FRAME_TIMEOUT)
            {
                Some(CloseReason::IncompleteFrameTimeout)
            } else if now.saturating_duration_since(conn.last_rx) > IDLE_TIMEOUT
                && !self.core.has_allocation(flow)
            {
                Some(CloseReason::IdleTimeout)
            } else {
                None
            };
            if let Some(reason) = reason {
                self.close_connection(slot, reason);
            } else if let Some(conn) = self.conns[slot].as_mut() {
                // Silent for a whole sweep interval: hold no buffers until it speaks again.
                conn.trim_idle(now.checked_sub(SWEEP_INTERVAL).unwrap_or(now));
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
                    additional,
                    lifetime,
                } => {
                    // One short line per allocation start and one per end: 100,000
                    // allocations must not write tens of megabytes at INFO.
                    // The advertised address only where it differs from the relay's (or
                    // for a dual allocation); fields that are None are left out.
                    let dual = additional.is_some();
                    let advertised =
                        (dual || relay != advertised).then(|| field::display(advertised));
                    tracing::info!(
                        client = %flow.remote,
                        transport = %transport.as_str(),
                        user = %Escaped(&username),
                        relay = %relay,
                        advertised,
                        relay6 = additional.map(|(r, _)| field::display(r)),
                        advertised6 = additional.map(|(_, a)| field::display(a)),
                        lifetime,
                        "{}",
                        if dual { "dual allocation created" } else { "allocation created" }
                    );
                }
                Event::AllocationEnded {
                    flow,
                    transport: _,
                    username,
                    relay,
                    duration,
                    traffic,
                    reason,
                } => {
                    tracing::info!(
                        client = %flow.remote,
                        user = %Escaped(&username),
                        relay = %relay,
                        duration_s = duration.as_secs(),
                        to_peer_bytes = traffic.to_peer_bytes,
                        to_client_bytes = traffic.to_client_bytes,
                        reason = %reason.as_str(),
                        "allocation ended"
                    );
                }
            }
        }
    }
}

/// IPv6 sockets are V6ONLY, so this only strips a mapped form a peer could not have sent;
/// kept so permission checks always compare like with like.
pub(super) fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()),
            None => addr,
        },
        v4 => v4,
    }
}
