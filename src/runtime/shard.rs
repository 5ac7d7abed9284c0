//! One shard: a thread with its own event loop, listening sockets, relay sockets and core state.
//! Nothing here is shared with other shards except through the core's `Shared` (control plane).

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token, Waker};

use super::relay_sockets::RelaySockets;
use crate::proto::flow::{Flow, Transport};
use crate::proto::server::{ClientAction, Event, PeerAction, Server, PEER_HEADROOM, PEER_TAILROOM};

/// Tokens at and above this are listeners; below it, relay slots.
const LISTENER_BASE: usize = 1 << 30;
const WAKER: Token = Token(usize::MAX);
/// Largest UDP payload.
const MAX_DATAGRAM: usize = 65_535;
/// Most datagrams read from one socket per readiness event, so one busy socket cannot starve
/// the others; mio re-reports it while data remains.
const READ_BUDGET: usize = 256;

/// Signals a shard reacts to, set by the control thread.
#[derive(Default)]
pub struct ShardControl {
    /// Leave the event loop.
    pub stop: AtomicBool,
    /// Refuse new allocations.
    pub draining: AtomicBool,
}

/// The state of one shard's thread.
pub struct Shard {
    poll: Poll,
    core: Server,
    listeners: Vec<UdpSocket>,
    relays: RelaySockets,
    buf: Vec<u8>,
    out: Vec<u8>,
    control: Arc<ShardControl>,
    id: usize,
}

impl Shard {
    /// A shard serving `listeners` with `core`. `make_relays` receives the registry that relay
    /// sockets must be registered with.
    pub fn new(
        id: usize,
        core: Server,
        listeners: Vec<std::net::UdpSocket>,
        make_relays: impl FnOnce(mio::Registry) -> RelaySockets,
        control: Arc<ShardControl>,
    ) -> io::Result<(Self, Arc<Waker>)> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let mut sockets = Vec::with_capacity(listeners.len());
        for (i, l) in listeners.into_iter().enumerate() {
            let mut s = UdpSocket::from_std(l);
            poll.registry()
                .register(&mut s, Token(LISTENER_BASE + i), Interest::READABLE)?;
            sockets.push(s);
        }
        let relays = make_relays(poll.registry().try_clone()?);
        Ok((
            Shard {
                poll,
                core,
                listeners: sockets,
                relays,
                buf: vec![0; PEER_HEADROOM + MAX_DATAGRAM + PEER_TAILROOM],
                out: vec![0; 2048],
                control,
                id,
            },
            waker,
        ))
    }

    /// Runs until told to stop.
    pub fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut draining = false;
        loop {
            let now = Instant::now();
            let timeout = self.core.poll_timeout().saturating_duration_since(now);
            // Round up so a deadline a few microseconds away does not spin.
            let timeout = timeout + Duration::from_millis(1);
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            if self.control.stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            let want_drain = self.control.draining.load(Ordering::Relaxed);
            if want_drain != draining {
                draining = want_drain;
                self.core.set_draining(draining);
            }
            for event in events.iter() {
                match event.token() {
                    WAKER => {}
                    Token(t) if t >= LISTENER_BASE => self.read_listener(t - LISTENER_BASE),
                    Token(t) => self.read_relay(t as u32),
                }
            }
            let now = Instant::now();
            if self.core.poll_timeout() <= now {
                self.core.handle_timeout(now, &mut self.relays);
            }
            self.log_events();
        }
    }

    fn read_listener(&mut self, index: usize) {
        for _ in 0..READ_BUDGET {
            let Some(listener) = self.listeners.get(index) else {
                return;
            };
            let (len, from) = match listener.recv_from(&mut self.buf) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    tracing::debug!(shard = self.id, error = %e, "listener receive error");
                    return;
                }
            };
            let flow = Flow {
                socket: index as u32,
                remote: canonical(from),
            };
            let now = Instant::now();
            let action = self.core.handle_client(
                now,
                flow,
                Transport::Udp,
                &self.buf[..len],
                &mut self.out,
                &mut self.relays,
            );
            match action {
                ClientAction::None => {}
                ClientAction::Reply(n) => {
                    let _ = self.listeners[index].send_to(&self.out[..n], from);
                }
                ClientAction::Relay {
                    relay,
                    peer,
                    start,
                    end,
                } => {
                    if let Some(socket) = self.relays.get(relay) {
                        let _ = socket.send_to(&self.buf[start..end], peer);
                    }
                }
            }
        }
    }

    fn read_relay(&mut self, relay: u32) {
        for _ in 0..READ_BUDGET {
            let Some(socket) = self.relays.get(relay) else {
                return;
            };
            let payload = &mut self.buf[PEER_HEADROOM..PEER_HEADROOM + MAX_DATAGRAM];
            let (len, from) = match socket.recv_from(payload) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    // ICMP errors (port unreachable) surface here; they concern one peer only.
                    tracing::trace!(shard = self.id, relay, error = %e, "relay receive error");
                    continue;
                }
            };
            let now = Instant::now();
            match self
                .core
                .handle_peer(now, relay, canonical(from), &mut self.buf, len)
            {
                PeerAction::Drop => {}
                PeerAction::Forward { flow, start, end } => {
                    if let Some(listener) = self.listeners.get(flow.socket as usize) {
                        let _ = listener.send_to(&self.buf[start..end], flow.remote);
                    }
                }
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
                        user = %username,
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
                        user = %username,
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
