//! Handing a client connection to another shard. With SO_REUSEPORT the kernel may accept an
//! RFC 6062 data connection on any shard, but its ConnectionBind belongs to the shard that
//! owns the allocation (the CONNECTION-ID names it). The accepting shard sends the whole
//! connection (socket, TLS session, buffered bytes) through a bounded channel and wakes the
//! owner; nothing is locked, and a full channel refuses the connection rather than queueing.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};

use mio::Waker;

use super::connection::Connection;

/// Connections one shard's inbox holds before further hand-overs to it are refused.
const INBOX: usize = 256;

struct Outbox {
    tx: SyncSender<Box<Connection>>,
    waker: OnceLock<Arc<Waker>>,
}

/// One shard's end: its inbox and the way to every shard's inbox.
pub struct Handover {
    id: usize,
    inbox: Receiver<Box<Connection>>,
    all: Arc<[Outbox]>,
}

impl Handover {
    /// The ends for `shards` shards, in shard order.
    pub fn channels(shards: usize) -> Vec<Handover> {
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..shards).map(|_| sync_channel(INBOX)).unzip();
        let all: Arc<[Outbox]> = txs
            .into_iter()
            .map(|tx| Outbox {
                tx,
                waker: OnceLock::new(),
            })
            .collect();
        rxs.into_iter()
            .enumerate()
            .map(|(id, inbox)| Handover {
                id,
                inbox,
                all: all.clone(),
            })
            .collect()
    }

    /// A single shard's end (nothing to hand over to).
    pub fn single() -> Handover {
        Self::channels(1).pop().expect("one")
    }

    /// Registers this shard's waker, so others can wake it after sending.
    pub fn set_waker(&self, waker: Arc<Waker>) {
        if let Some(o) = self.all.get(self.id) {
            let _ = o.waker.set(waker);
        }
    }

    /// Number of shards.
    pub fn shards(&self) -> usize {
        self.all.len()
    }

    /// Sends `conn` to shard `to`; gives it back when that shard's inbox is full or gone.
    pub fn send(&self, to: usize, conn: Box<Connection>) -> Result<(), Box<Connection>> {
        let Some(o) = self.all.get(to) else {
            return Err(conn);
        };
        match o.tx.try_send(conn) {
            Ok(()) => {
                if let Some(w) = o.waker.get() {
                    let _ = w.wake();
                }
                Ok(())
            }
            Err(TrySendError::Full(c) | TrySendError::Disconnected(c)) => Err(c),
        }
    }

    /// The next connection handed to this shard.
    pub fn receive(&self) -> Option<Box<Connection>> {
        self.inbox.try_recv().ok()
    }
}
