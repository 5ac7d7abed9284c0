//! The shard's side of RFC 6062: carrying out the core's TCP commands, serving relay
//! listeners and pairs, and handing ConnectionBind connections to the shard that owns their
//! allocation.

use mio::{Interest, Token};

use super::super::connection::Connection;
use super::super::tcp_handover::Handover;
use super::super::tcp_relay::{TcpContext, PAIR_TOKEN};
use super::{Shard, CONN_BASE};
use crate::proto::flow::{RelayId, SocketId};
use crate::proto::server::TcpCommand;
use crate::proto::stun::{method, Class, Message};
use crate::proto::tcp_conns::owner_shard;

use super::super::relay_sockets::TCP_LISTENER_TOKEN;
use super::super::stream_framing::{next_frame, Frame};

/// Whether a whole frame is a ConnectionBind request (type 0x000B).
pub(super) fn is_connection_bind(frame: &[u8]) -> bool {
    frame.len() >= 20 && frame[..2] == [0x00, method::CONNECTION_BIND as u8]
}

/// The shard a ConnectionBind at the front of `input` belongs to, when it is not `me`.
pub(super) fn foreign_bind(input: &[u8], me: usize, handover: &Handover) -> Option<usize> {
    if !is_connection_bind(input) {
        return None;
    }
    let Frame::Complete(n) = next_frame(input) else {
        return None;
    };
    let msg = Message::parse(&input[..n]).ok()?;
    if msg.class != Class::Request {
        return None;
    }
    let owner = owner_shard(msg.attributes().ok()?.connection_id?);
    (owner != me && owner < handover.shards()).then_some(owner)
}

impl Shard {
    /// Serves a TCP relay token: accepts on a relay listener, or moves a pair's bytes.
    pub(super) fn serve_tcp_relay(&mut self, token: Token) -> bool {
        let mut ctx = TcpContext {
            registry: self.poll.registry(),
            core: &mut self.core,
            limits: &self.limits,
            io: &self.io,
        };
        if token.0 < PAIR_TOKEN {
            let relay = RelayId::new((token.0 - TCP_LISTENER_TOKEN) as u32);
            return self.tcp_relay.accept(&mut ctx, &self.relays, relay);
        }
        let (more, closed) = self.tcp_relay.serve(&mut ctx, token);
        for t in closed.into_iter().flatten() {
            self.ready.remove(t);
        }
        more
    }

    /// Carries out what the core asked of the TCP relay.
    pub(super) fn apply_tcp_commands(&mut self) {
        while let Some(command) = self.core.poll_tcp() {
            tracing::trace!(shard = self.id, ?command, "TCP relay command");
            match command {
                TcpCommand::Connect { id, relay, peer } => {
                    let mut ctx = TcpContext {
                        registry: self.poll.registry(),
                        core: &mut self.core,
                        limits: &self.limits,
                        io: &self.io,
                    };
                    self.tcp_relay
                        .connect(&mut ctx, &self.relays, id, relay, peer);
                }
                TcpCommand::SendToClient { flow, message } => {
                    let SocketId::Connection(slot) = flow.socket else {
                        continue;
                    };
                    let slot = slot as usize;
                    let result = match self.conns.get_mut(slot).and_then(Option::as_mut) {
                        Some(conn) => {
                            if !conn.queue(&message) {
                                self.io.dropped_client_backlog.count(message.len());
                            }
                            conn.flush()
                        }
                        None => continue,
                    };
                    self.after_io(slot, result);
                }
                TcpCommand::Bind { id, flow } => self.bind_data_connection(id, flow.socket),
                TcpCommand::Close { id } => {
                    let ctx = TcpContext {
                        registry: self.poll.registry(),
                        core: &mut self.core,
                        limits: &self.limits,
                        io: &self.io,
                    };
                    for t in self.tcp_relay.close(&ctx, id).into_iter().flatten() {
                        self.ready.remove(t);
                    }
                }
            }
        }
    }

    /// Takes the client connection in `slot` out of the shard's connections (deregistered,
    /// its slot and readiness freed), for the TCP relay or another shard to own.
    fn take_conn(&mut self, slot: usize) -> Option<Box<Connection>> {
        let mut conn = self
            .conns
            .get_mut(slot)
            .and_then(Option::take)
            .map(Box::new)?;
        let _ = self.poll.registry().deregister(conn.stream_mut());
        self.free_conns.push(slot);
        self.ready.remove(Token(CONN_BASE + slot));
        conn.writable_registered = false;
        Some(conn)
    }

    /// Moves the client connection on `socket` out of the shard's connections into pair `id`.
    fn bind_data_connection(&mut self, id: u32, socket: SocketId) {
        let SocketId::Connection(slot) = socket else {
            self.core.handle_tcp_closed(id);
            return;
        };
        let Some(conn) = self.take_conn(slot as usize) else {
            self.core.handle_tcp_closed(id);
            return;
        };
        match self.tcp_relay.bind(self.poll.registry(), id, conn) {
            Ok(tokens) => {
                for t in tokens {
                    self.ready.push(t);
                }
            }
            Err(conn) => {
                // The peer connection went away between the answer and now.
                self.limits.close(conn.remote().ip());
                self.core.handle_tcp_closed(id);
                let ctx = TcpContext {
                    registry: self.poll.registry(),
                    core: &mut self.core,
                    limits: &self.limits,
                    io: &self.io,
                };
                self.tcp_relay.close(&ctx, id);
            }
        }
    }

    /// Sends the connection in `slot` to shard `owner`, which owns the allocation its
    /// ConnectionBind names.
    pub(super) fn hand_over(&mut self, slot: usize, owner: usize) {
        let Some(conn) = self.take_conn(slot) else {
            return;
        };
        match self.handover.send(owner, conn) {
            Ok(()) => self.io.tcp_relay_handovers.inc(),
            Err(conn) => {
                self.io.tcp_relay_dropped.inc();
                self.limits.close(conn.remote().ip());
                tracing::debug!(
                    shard = self.id,
                    owner,
                    "hand-over queue full: connection dropped"
                );
            }
        }
    }

    /// Takes the connections other shards handed to this one.
    pub(super) fn receive_handovers(&mut self) {
        while let Some(mut conn) = self.handover.receive() {
            let slot = self.free_conns.pop().unwrap_or_else(|| {
                self.conns.push(None);
                self.conns.len() - 1
            });
            if self
                .poll
                .registry()
                .register(
                    conn.stream_mut(),
                    Token(CONN_BASE + slot),
                    Interest::READABLE,
                )
                .is_err()
            {
                self.limits.close(conn.remote().ip());
                self.free_conns.push(slot);
                continue;
            }
            self.conns[slot] = Some(*conn);
            // Its ConnectionBind is already in the buffer: no readiness event will say so.
            self.ready.push(Token(CONN_BASE + slot));
        }
    }
}
