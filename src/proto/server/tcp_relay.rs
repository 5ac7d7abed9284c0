//! RFC 6062 TCP relaying: Connect, ConnectionBind, ConnectionAttempt and the life of each peer
//! connection. The core keeps the state (connection ids, which allocation owns what, the
//! timers in virtual time) and tells the runtime what to do through [`TcpCommand`]s; the
//! runtime opens, pairs and closes the sockets and reports back.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::RngCore;

use super::super::auth::algorithm::ReplyKey;
use super::super::flow::RelayId;
use super::super::stun::MessageWriter;
use super::super::stun::{attr, method, Attributes, Class, CodecError, ErrorCode, Message};
use super::super::tcp_conns::{TcpConn, TcpConnState};
use super::auth_check::Authed;
use super::request::Request;
use super::turn_requests::{Handled, OnAllocation};
use super::{relay_of, slot_of, AllocSlot, ClientAction, Flow, Server};

/// Time the relay gives a Connect to reach the peer before answering 447.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Time a peer connection waits for its ConnectionBind (RFC 6062 §5.3: 30 seconds).
pub const BIND_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest asynchronous message (a Connect answer or a ConnectionAttempt).
const ASYNC_MESSAGE_LEN: usize = 256;

/// What the runtime must do for the TCP relay; read with [`Server::poll_tcp`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TcpCommand {
    /// Open a TCP connection from the relayed address of allocation `relay` to `peer`, then
    /// report with [`Server::handle_tcp_connected`].
    Connect {
        /// The connection id.
        id: u32,
        /// The allocation (relay) whose address the connection starts from.
        relay: RelayId,
        /// Where to connect.
        peer: SocketAddr,
    },
    /// Send this STUN message to the client on `flow` (its control connection).
    SendToClient {
        /// The control connection.
        flow: Flow,
        /// The whole message.
        message: Box<[u8]>,
    },
    /// The client connection `flow` became the data connection of `id`: after the answer
    /// already queued on it, relay raw bytes between it and the peer connection.
    Bind {
        /// The connection id.
        id: u32,
        /// The data connection.
        flow: Flow,
    },
    /// Close the peer connection `id` and its data connection, if bound.
    Close {
        /// The connection id.
        id: u32,
    },
}

impl Server {
    /// The next thing the runtime must do for the TCP relay.
    pub fn poll_tcp(&mut self) -> Option<TcpCommand> {
        self.tcp_commands.pop_front()
    }

    /// Peer connections alive in this shard (pending and bound).
    pub fn tcp_connection_count(&self) -> usize {
        self.tcp.len()
    }

    /// Entries in the TCP connection deadline table.
    pub fn tcp_timer_entries(&self) -> usize {
        self.tcp.timer_entries()
    }

    /// The runtime's outcome of a [`TcpCommand::Connect`]: on success the client gets the
    /// CONNECTION-ID and has 30 s to bind it; on failure it gets 447 (the runtime has already
    /// dropped the socket).
    pub fn handle_tcp_connected(&mut self, now: Instant, id: u32, connected: bool) {
        let Some(conn) = self.tcp.get(id).copied() else {
            return;
        };
        let TcpConnState::Connecting {
            flow,
            tid,
            key,
            fingerprint,
        } = conn.state
        else {
            return;
        };
        if connected {
            self.tcp
                .set_state(id, TcpConnState::AwaitingBind, Some(now + BIND_TIMEOUT));
            self.stats.tcp_connections_opened.inc();
            self.send_connect_answer(flow, tid, key.as_ref(), fingerprint, Ok(id));
        } else {
            self.tcp.remove(id);
            self.fail_connect(flow, tid, key.as_ref(), fingerprint);
        }
    }

    /// A peer connected to the TCP relay listener of allocation `relay`. Returns the new
    /// connection id (a ConnectionAttempt goes to the client), or None when the peer has no
    /// permission or the allocation holds as many connections as it may: close it.
    pub fn handle_tcp_incoming(
        &mut self,
        now: Instant,
        relay: RelayId,
        from: SocketAddr,
    ) -> Option<u32> {
        let slot = slot_of(relay).0;
        let Some(Some(alloc)) = self.slots.get(slot.index()) else {
            return None;
        };
        let permitted = alloc.tcp && alloc.permits(from.ip(), now);
        if !permitted || self.tcp.has_peer(slot, from) || !self.tcp.has_room(slot) {
            self.stats.tcp_connections_refused.inc();
            return None;
        }
        let flow = alloc.flow;
        let conn = TcpConn {
            slot,
            peer: from,
            state: TcpConnState::AwaitingBind,
            deadline: Some(now + BIND_TIMEOUT),
        };
        let id = self.insert_tcp(conn);
        self.stats.tcp_connections_opened.inc();
        let tid = self.next_tid();
        let fingerprint = self.config.settings.fingerprint;
        let mut buf = [0u8; ASYNC_MESSAGE_LEN];
        let written = (|| -> Result<usize, CodecError> {
            let mut w =
                MessageWriter::new(&mut buf, method::CONNECTION_ATTEMPT, Class::Indication, tid)?;
            w.attr(attr::CONNECTION_ID, &id.to_be_bytes())?;
            w.xor_address(attr::XOR_PEER_ADDRESS, &from)?;
            if fingerprint {
                w.fingerprint()?;
            }
            Ok(w.finish())
        })();
        if let Ok(n) = written {
            self.tcp_commands.push_back(TcpCommand::SendToClient {
                flow,
                message: buf[..n].into(),
            });
        }
        Some(id)
    }

    /// A peer or data connection of `id` closed (or failed): forget it. The runtime closes
    /// both sides itself.
    pub fn handle_tcp_closed(&mut self, id: u32) {
        self.forget_tcp(id);
    }

    /// Removes connection `id`, counting the close of one that was opened.
    fn forget_tcp(&mut self, id: u32) -> Option<TcpConn> {
        let conn = self.tcp.remove(id)?;
        if !matches!(conn.state, TcpConnState::Connecting { .. }) {
            self.stats.tcp_connections_closed.inc();
        }
        Some(conn)
    }

    /// Counts bytes a data connection pair of allocation `relay` relayed.
    pub fn count_tcp_traffic(&mut self, relay: RelayId, to_peer: usize, to_client: usize) {
        let Some(Some(alloc)) = self.slots.get_mut(slot_of(relay).0.index()) else {
            return;
        };
        if to_peer > 0 {
            alloc.traffic.count_to_peer(to_peer);
            self.stats.tcp_to_peers.count(to_peer);
        }
        if to_client > 0 {
            alloc.traffic.count_to_client(to_client);
            self.stats.tcp_to_clients.count(to_client);
        }
    }

    /// Ends peer connections whose Connect or ConnectionBind took too long.
    pub(super) fn expire_tcp(&mut self, now: Instant) {
        while let Some(id) = self.tcp.expired(now) {
            let Some(conn) = self.forget_tcp(id) else {
                break;
            };
            match conn.state {
                TcpConnState::Connecting {
                    flow,
                    tid,
                    key,
                    fingerprint,
                } => self.fail_connect(flow, tid, key.as_ref(), fingerprint),
                _ => self.stats.tcp_bind_timeouts.inc(),
            }
            self.tcp_commands.push_back(TcpCommand::Close { id });
        }
    }

    /// Closes every peer connection of the allocation in `slot` (it is ending).
    pub(super) fn close_tcp_of(&mut self, slot: AllocSlot) {
        let ids: Vec<u32> = self.tcp.of_slot(slot).to_vec();
        for id in ids {
            self.forget_tcp(id);
            self.tcp_commands.push_back(TcpCommand::Close { id });
        }
    }

    /// The next time a TCP connection times out.
    pub(super) fn tcp_deadline(&self) -> Option<Instant> {
        self.tcp.next_deadline()
    }

    /// The control connection of the allocation a ConnectionBind names, whose nonce the
    /// request may carry.
    pub(super) fn tcp_bind_owner_flow(
        &self,
        msg: &Message<'_>,
        attrs: &Attributes<'_>,
    ) -> Option<Flow> {
        if msg.method != method::CONNECTION_BIND {
            return None;
        }
        let conn = self.tcp.get(attrs.connection_id?)?;
        self.slots.get(conn.slot.index())?.as_ref().map(|a| a.flow)
    }

    /// Inserts `conn` under a new id whose low bits come from the server's CSPRNG, so ids
    /// are not guessable (ConnectionBind also needs the allocation's credentials).
    fn insert_tcp(&mut self, conn: TcpConn) -> u32 {
        let rng = &mut self.rng;
        self.tcp.insert(conn, || rng.next_u32())
    }

    /// Connect (RFC 6062 §5.2) on the allocation in `slot`; the answer follows the attempt.
    pub(super) fn connect(&mut self, on: OnAllocation<'_>) -> Handled {
        let OnAllocation { req, slot, key } = on;
        let Request {
            now, flow, attrs, ..
        } = req;
        let is_tcp = self.alloc(slot).is_some_and(|a| a.tcp);
        if !is_tcp {
            return Err(ErrorCode::BadRequest);
        }
        let Some(Ok(peer)) = attrs.peer_address() else {
            return Err(ErrorCode::BadRequest);
        };
        if let Some(code) = self.check_peer(slot, peer) {
            return Err(code);
        }
        if self.tcp.has_peer(slot, peer) {
            return Err(ErrorCode::ConnectionAlreadyExists);
        }
        if !self.tcp.has_room(slot) {
            return Err(ErrorCode::InsufficientCapacity);
        }
        let expires = now + Duration::from_secs(self.config.settings.permission_lifetime.into());
        let Some(alloc) = self.alloc_mut(slot) else {
            return Ok(ClientAction::None);
        };
        if !alloc.add_permission(peer.ip(), expires, now) {
            return Err(ErrorCode::InsufficientCapacity);
        }
        let conn = TcpConn {
            slot,
            peer,
            state: TcpConnState::Connecting {
                flow,
                tid: req.msg.tid,
                key: key.copied(),
                fingerprint: attrs.fingerprint,
            },
            deadline: Some(now + CONNECT_TIMEOUT),
        };
        let id = self.insert_tcp(conn);
        self.tcp_commands.push_back(TcpCommand::Connect {
            id,
            relay: relay_of(slot, 0),
            peer,
        });
        Ok(ClientAction::None)
    }

    /// ConnectionBind (RFC 6062 §5.4) on a new client connection.
    pub(super) fn connection_bind(
        &mut self,
        req: Request<'_>,
        authed: &Authed<'_>,
        out: &mut [u8],
    ) -> Handled {
        let Request {
            flow,
            transport,
            msg,
            attrs,
            ..
        } = req;
        let key = authed.key.as_ref();
        // A data connection is a fresh TCP/TLS connection that holds no allocation.
        if !transport.is_stream() || self.by_flow.contains_key(&flow) {
            return Err(ErrorCode::BadRequest);
        }
        let Some(id) = attrs.connection_id else {
            return Err(ErrorCode::BadRequest);
        };
        let Some(conn) = self.tcp.get(id).copied() else {
            return Err(ErrorCode::BadRequest);
        };
        if conn.state != TcpConnState::AwaitingBind {
            return Err(ErrorCode::BadRequest);
        }
        let same_user = self
            .alloc(conn.slot)
            .is_some_and(|a| key.is_none() || *a.username == *authed.username);
        if !same_user {
            return Err(ErrorCode::WrongCredentials);
        }
        self.tcp.set_state(id, TcpConnState::Bound { flow }, None);
        self.stats.tcp_connections_bound.inc();
        self.tcp_commands.push_back(TcpCommand::Bind { id, flow });
        let Ok(w) = MessageWriter::new(out, msg.method, Class::Success, msg.tid) else {
            return Ok(ClientAction::None);
        };
        Ok(self.finish_reply(w, req.reply_to(key)))
    }

    /// Counts a Connect that failed or timed out and answers it with 447.
    fn fail_connect(&mut self, flow: Flow, tid: [u8; 12], key: Option<&ReplyKey>, fp: bool) {
        self.stats.tcp_connect_failures.inc();
        let failed = Err(ErrorCode::ConnectionTimeoutOrFailure);
        self.send_connect_answer(flow, tid, key, fp, failed);
    }

    fn send_connect_answer(
        &mut self,
        flow: Flow,
        tid: [u8; 12],
        key: Option<&ReplyKey>,
        fingerprint: bool,
        result: Result<u32, ErrorCode>,
    ) {
        let mut buf = [0u8; ASYNC_MESSAGE_LEN];
        let class = if result.is_ok() {
            Class::Success
        } else {
            Class::Error
        };
        let settings = &self.config.settings;
        let written = (|| -> Result<usize, CodecError> {
            let mut w = MessageWriter::new(&mut buf, method::CONNECT, class, tid)?;
            match result {
                Ok(id) => w.attr(attr::CONNECTION_ID, &id.to_be_bytes())?,
                Err(code) => w.error_code_with(code, settings.include_reason)?,
            }
            if settings.software {
                w.attr(attr::SOFTWARE, super::super::settings::SOFTWARE.as_bytes())?;
            }
            match key {
                Some(k) if k.sha256 => w.integrity_sha256(k.key.as_bytes())?,
                Some(k) => w.integrity(k.key.as_bytes())?,
                None => {}
            }
            if settings.fingerprint || fingerprint {
                w.fingerprint()?;
            }
            Ok(w.finish())
        })();
        if result.is_err() {
            self.stats.error_responses.inc();
        }
        if let Ok(n) = written {
            self.tcp_commands.push_back(TcpCommand::SendToClient {
                flow,
                message: buf[..n].into(),
            });
        }
    }
}
