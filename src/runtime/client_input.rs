//! The one path client input takes, whatever carried it: a batch of datagrams from a UDP
//! listener or a run of frames from a TCP/TLS connection goes through the core, and each
//! resulting action is applied the same way. Answers go back the way the request came;
//! relayed data is gathered per relay socket and sent in one batch when the input is done.

use std::net::SocketAddr;
use std::time::Instant;

use mio::net::UdpSocket;

use super::io_stats::IoStats;
use super::relay_sends::RelaySends;
use super::relay_sockets::RelaySockets;
use super::tx_backlog::TxBacklog;
use crate::proto::flow::{Flow, SocketId, Transport};
use crate::proto::server::{ClientAction, Server};

/// One datagram or frame: `buf[start..end]` of the input buffer, from `remote`.
#[derive(Debug, Clone, Copy)]
pub struct Input {
    /// First byte in the input buffer.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
    /// The client's address.
    pub remote: SocketAddr,
}

/// Where answers to the client go.
pub enum Replies<'a> {
    /// Datagrams from the listener the request arrived on.
    Datagram(&'a UdpSocket),
    /// The connection's send backlog.
    Stream(&'a mut TxBacklog),
}

/// The shard's parts that client input works with.
pub struct ClientPath<'a> {
    /// The core.
    pub core: &'a mut Server,
    /// Relay sockets.
    pub relays: &'a mut RelaySockets,
    /// Scratch buffer for answers.
    pub out: &'a mut [u8],
    /// Client → peer datagrams waiting for the end of the batch.
    pub to_peers: &'a mut RelaySends,
    /// Drop counters.
    pub io: &'a IoStats,
}

impl ClientPath<'_> {
    /// Handles every input of a batch arriving on `socket`, then sends what it relays.
    pub fn handle(
        &mut self,
        now: Instant,
        socket: SocketId,
        transport: Transport,
        buf: &[u8],
        inputs: &[Input],
        mut replies: Replies<'_>,
    ) {
        for input in inputs {
            let data = &buf[input.start..input.end];
            if changes_state(data) && !self.to_peers.is_empty() {
                // A request may end the allocation whose packets wait (and a new one may take
                // its relay slot): send what is queued while it is still theirs.
                self.to_peers.flush(buf, self.relays, self.io);
            }
            let flow = Flow {
                socket,
                remote: input.remote,
            };
            let action = self
                .core
                .handle_client(now, flow, transport, data, self.out, self.relays);
            self.apply(action, input.start, flow, &mut replies);
        }
        if !self.to_peers.is_empty() {
            self.to_peers.flush(buf, self.relays, self.io);
        }
    }

    /// Carries out what the core decided about one input starting at `base` in the buffer.
    fn apply(&mut self, action: ClientAction, base: usize, flow: Flow, replies: &mut Replies<'_>) {
        match action {
            ClientAction::None => {}
            ClientAction::Reply(len) => {
                let answer = &self.out[..len];
                match replies {
                    Replies::Datagram(socket) => {
                        if let Err(e) = socket.send_to(answer, flow.remote) {
                            let t =
                                if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::ENOBUFS)) {
                                    &self.io.dropped_send_again
                                } else {
                                    &self.io.dropped_send_error
                                };
                            t.count(len);
                        }
                    }
                    Replies::Stream(backlog) => {
                        if !backlog.push(answer) {
                            self.io.dropped_client_backlog.count(len);
                        }
                    }
                }
            }
            ClientAction::Relay {
                relay,
                peer,
                start,
                end,
            } => self.to_peers.push(relay, base + start, base + end, peer),
        }
    }
}

/// Whether a client message may change allocation state: any STUN message but a Send
/// indication (ChannelData and Send only relay).
fn changes_state(data: &[u8]) -> bool {
    matches!(data.first(), Some(0x00..=0x03)) && data.get(..2) != Some(&[0x00, 0x16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_requests_change_state() {
        assert!(changes_state(&[0x00, 0x03, 0, 0])); // Allocate
        assert!(changes_state(&[0x00, 0x04, 0, 0])); // Refresh
        assert!(!changes_state(&[0x00, 0x16, 0, 0])); // Send indication
        assert!(!changes_state(&[0x40, 0x00, 0, 4])); // ChannelData
        assert!(!changes_state(&[]));
    }
}
