//! Client → peer datagrams gathered while a batch of client input is handled, then sent with
//! one `sendmmsg` per relay socket when the batch is done (the peer → client direction batches
//! the same way per listener).

use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use super::io_stats::IoStats;
use super::relay_sockets::RelaySockets;
use super::udp_batch::{send_many, Outgoing, BATCH};
use crate::proto::flow::RelayId;

/// Pending sends to peers, each through its allocation's relay socket.
pub struct RelaySends {
    items: Vec<(RelayId, Outgoing)>,
    run: Vec<Outgoing>,
}

impl RelaySends {
    /// An empty set that does not reallocate below one receive batch.
    pub fn new() -> Self {
        RelaySends {
            items: Vec::with_capacity(BATCH),
            run: Vec::with_capacity(BATCH),
        }
    }

    /// Queues `buf[start..end]` to `peer` through relay `relay`.
    pub fn push(&mut self, relay: RelayId, start: usize, end: usize, peer: SocketAddr) {
        self.items.push((
            relay,
            Outgoing {
                start,
                end,
                dest: peer,
            },
        ));
    }

    /// Datagrams queued.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Sends everything queued, taking the bytes from `buf`, and counts what the kernel
    /// refused. Datagrams of one relay keep their order.
    pub fn flush(&mut self, buf: &[u8], relays: &RelaySockets, stats: &IoStats) {
        // A stable insertion sort: batches are short, and it neither allocates nor reorders
        // one allocation's packets.
        for i in 1..self.items.len() {
            let mut j = i;
            while j > 0 && self.items[j - 1].0 > self.items[j].0 {
                self.items.swap(j - 1, j);
                j -= 1;
            }
        }
        let mut i = 0;
        while i < self.items.len() {
            let relay = self.items[i].0;
            self.run.clear();
            while i < self.items.len() && self.items[i].0 == relay {
                self.run.push(self.items[i].1);
                i += 1;
            }
            match relays.get(relay) {
                Some(socket) => send_many(socket.as_raw_fd(), buf, &self.run).count(stats),
                // The allocation ended while its packets waited: nothing to send them from.
                None => {
                    for o in &self.run {
                        stats.dropped_send_error.count(o.end - o.start);
                    }
                }
            }
        }
        self.items.clear();
    }
}

impl Default for RelaySends {
    fn default() -> Self {
        Self::new()
    }
}
