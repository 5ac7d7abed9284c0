//! Batched UDP I/O: `recvmmsg` fills many datagram slots with one system call, and `sendmmsg`
//! sends many datagrams from one socket with one call. Per the perf notes this mostly buys
//! headroom before saturation rather than CPU per packet, at no cost when traffic is light
//! (a batch of one is an ordinary receive).

use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;

use super::io_stats::IoStats;
pub use super::mmsg::SendOutcome;
use super::mmsg::{self, Received, Slots};
use crate::proto::counters::Traffic;

/// Datagrams per system call.
pub const BATCH: usize = 32;

/// Asks the kernel to report, with each datagram received, how many datagrams it has dropped
/// on this socket for lack of receive-queue room (`SO_RXQ_OVFL`).
pub fn enable_drop_counter(fd: RawFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: a valid option value of the size given.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RXQ_OVFL,
            (&on as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Turns the kernel's running drop count of one socket into increments.
#[derive(Debug, Default, Clone, Copy)]
pub struct DropMeter {
    last: u32,
}

impl DropMeter {
    /// Datagrams dropped since the previous reading, given the socket's running count.
    pub fn delta(&mut self, running: u32) -> u64 {
        let d = running.wrapping_sub(self.last);
        self.last = running;
        u64::from(d)
    }
}

/// Receive slots for one batch. Each slot holds `offset` bytes of headroom, the datagram, and
/// `tail` spare bytes, so the core can frame a peer payload in place.
pub struct RecvBatch {
    slots: Vec<u8>,
    slot_len: usize,
    received: [Received; BATCH],
    dropped: Option<u32>,
}

impl RecvBatch {
    /// Slots of `slot_len` bytes each.
    pub fn new(slot_len: usize) -> Self {
        RecvBatch {
            slots: vec![0; slot_len * BATCH],
            slot_len,
            received: [Received::default(); BATCH],
            dropped: None,
        }
    }

    /// Receives up to [`BATCH`] datagrams into the slots at `offset`, leaving `tail` bytes free
    /// after the largest datagram a slot accepts. Returns how many arrived (0 = would block).
    pub fn recv(&mut self, fd: RawFd, offset: usize, tail: usize) -> io::Result<usize> {
        let slots = Slots {
            slot_len: self.slot_len,
            offset,
            capacity: self.slot_len - offset - tail,
        };
        self.dropped = None;
        let n = mmsg::recv(fd, &mut self.slots, slots, true, &mut self.received)?;
        self.dropped = self.received[..n].iter().filter_map(|r| r.dropped).max();
        Ok(n)
    }

    /// The socket's running count of queue-overflow drops, as of the last batch (absent when
    /// the kernel has dropped nothing on it yet, or the option is off).
    pub fn dropped(&self) -> Option<u32> {
        self.dropped
    }

    /// Length, sender and truncation flag of datagram `i` of the last batch.
    pub fn meta(&self, i: usize) -> (usize, Option<SocketAddr>, bool) {
        let r = &self.received[i];
        (r.len, r.from, r.truncated)
    }

    /// Length and sender of datagram `i` of the last batch, or None for one to skip: without
    /// a sender, or truncated (counted into `malformed`).
    #[inline]
    pub fn intact(&self, i: usize, malformed: &Traffic) -> Option<(usize, SocketAddr)> {
        let r = &self.received[i];
        let from = r.from?;
        if r.truncated {
            malformed.count(r.len);
            return None;
        }
        Some((r.len, from))
    }

    /// The whole slot `i` (headroom, datagram, tail).
    pub fn slot_mut(&mut self, i: usize) -> &mut [u8] {
        let start = i * self.slot_len;
        &mut self.slots[start..start + self.slot_len]
    }

    /// The whole slot `i`, read-only.
    pub fn slot(&self, i: usize) -> &[u8] {
        let start = i * self.slot_len;
        &self.slots[start..start + self.slot_len]
    }

    /// Where slot `i` starts in [`RecvBatch::all`].
    pub fn slot_offset(&self, i: usize) -> usize {
        i * self.slot_len
    }

    /// Every slot as one buffer; queued sends name their bytes by range in it.
    pub fn all(&self) -> &[u8] {
        &self.slots
    }
}

/// One datagram to send: `buf[start..end]` of the buffer the queue is flushed with, to `dest`.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing {
    /// First byte in the buffer.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
    /// Destination.
    pub dest: SocketAddr,
}

impl SendOutcome {
    /// Adds the drops to the shard's counters.
    pub fn count(&self, stats: &IoStats) {
        if self.again.0 > 0 {
            stats.dropped_send_again.packets.add(self.again.0);
            stats.dropped_send_again.bytes.add(self.again.1);
        }
        if self.failed.0 > 0 {
            stats.dropped_send_error.packets.add(self.failed.0);
            stats.dropped_send_error.bytes.add(self.failed.1);
        }
    }
}

/// Sends `items` (ranges of `buf`) from `fd` with as few `sendmmsg` calls as the kernel allows.
/// A full send buffer drops the rest of the batch at once (retrying each would cost a system
/// call per datagram and fail the same way); another error drops only the datagram it concerns.
pub fn send_many(fd: RawFd, buf: &[u8], items: &[Outgoing]) -> SendOutcome {
    mmsg::send(fd, items.len(), |i| {
        let o = &items[i];
        (&buf[o.start..o.end], Some(&o.dest))
    })
}

/// Datagrams waiting to go out of one socket, naming ranges of a buffer given at flush time.
pub struct SendQueue {
    items: Vec<Outgoing>,
}

impl SendQueue {
    /// An empty queue that never reallocates below [`BATCH`] entries.
    pub fn new() -> Self {
        SendQueue {
            items: Vec::with_capacity(BATCH),
        }
    }

    /// Queues `buf[start..end]` for `dest`.
    pub fn push(&mut self, start: usize, end: usize, dest: SocketAddr) {
        self.items.push(Outgoing { start, end, dest });
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Sends everything queued from `fd`, taking the bytes from `buf`.
    pub fn flush(&mut self, fd: RawFd, buf: &[u8]) -> SendOutcome {
        let outcome = send_many(fd, buf, &self.items);
        self.items.clear();
        outcome
    }
}

impl Default for SendQueue {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    #[test]
    fn receives_and_sends_batches_on_loopback() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_nonblocking(true).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        for i in 0..40u8 {
            tx.send_to(&[i; 10], rx.local_addr().unwrap()).unwrap();
        }
        let mut batch = RecvBatch::new(64);
        let mut got = Vec::new();
        for _ in 0..10 {
            let n = batch.recv(rx.as_raw_fd(), 8, 4).unwrap();
            for i in 0..n {
                let (len, from, truncated) = batch.meta(i);
                assert_eq!(
                    (len, from, truncated),
                    (10, Some(tx.local_addr().unwrap()), false)
                );
                got.push(batch.slot(i)[8]);
            }
            if got.len() == 40 {
                break;
            }
        }
        assert_eq!(got, (0..40).collect::<Vec<u8>>());

        // Echo two of the received slots back with sendmmsg.
        tx.send_to(&[7; 10], rx.local_addr().unwrap()).unwrap();
        tx.send_to(&[9; 60], rx.local_addr().unwrap()).unwrap();
        let n = batch.recv(rx.as_raw_fd(), 8, 4).unwrap();
        assert_eq!(n, 2);
        assert!(batch.meta(1).2, "60 bytes do not fit 52: truncated");
        let malformed = Traffic::default();
        let sender = tx.local_addr().unwrap();
        assert_eq!(batch.intact(0, &malformed), Some((10, sender)));
        assert_eq!(batch.intact(1, &malformed), None, "truncated: skipped");
        assert_eq!(malformed.packets.get(), 1, "and counted");
        let mut q = SendQueue::new();
        q.push(8, 18, tx.local_addr().unwrap());
        q.push(8, 12, tx.local_addr().unwrap());
        let outcome = q.flush(rx.as_raw_fd(), batch.all());
        assert_eq!(outcome.sent, 2);
        let mut buf = [0u8; 32];
        assert_eq!(tx.recv(&mut buf).unwrap(), 10);
        assert_eq!(tx.recv(&mut buf).unwrap(), 4);
        assert!(q.is_empty());
    }

    #[test]
    fn reports_queue_overflow_drops() {
        let rx = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
        rx.set_recv_buffer_size(4096).unwrap();
        rx.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
            .unwrap();
        rx.set_nonblocking(true).unwrap();
        let rx: UdpSocket = rx.into();
        enable_drop_counter(rx.as_raw_fd()).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        for _ in 0..500 {
            tx.send_to(&[1; 100], rx.local_addr().unwrap()).unwrap();
        }
        // Reading makes room; the next datagram carries the running drop count.
        let mut batch = RecvBatch::new(256);
        while batch.recv(rx.as_raw_fd(), 0, 0).unwrap() > 0 {}
        tx.send_to(&[2; 100], rx.local_addr().unwrap()).unwrap();
        assert_eq!(batch.recv(rx.as_raw_fd(), 0, 0).unwrap(), 1);
        let running = batch.dropped().expect("a drop count");
        assert!(
            running > 100,
            "a 4 KB queue cannot hold 500 datagrams: {running}"
        );
        let mut meter = DropMeter::default();
        assert_eq!(meter.delta(running), u64::from(running));
        assert_eq!(meter.delta(running), 0);
        assert_eq!(meter.delta(running.wrapping_add(3)), 3);
    }

    #[test]
    fn counts_refused_sends() {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let ok = s.local_addr().unwrap();
        let v6: SocketAddr = "[::1]:9".parse().unwrap();
        let buf = [0u8; 64];
        let items = [
            Outgoing {
                start: 0,
                end: 10,
                dest: ok,
            },
            Outgoing {
                start: 0,
                end: 20,
                dest: v6,
            },
            Outgoing {
                start: 0,
                end: 30,
                dest: ok,
            },
        ];
        let outcome = send_many(s.as_raw_fd(), &buf, &items);
        assert_eq!(outcome.sent, 2);
        assert_eq!(
            outcome.failed,
            (1, 20),
            "an IPv6 destination on an IPv4 socket"
        );
        assert_eq!(outcome.again, (0, 0));
        let stats = IoStats::default();
        outcome.count(&stats);
        assert_eq!(stats.dropped_send_error.packets.get(), 1);
        assert_eq!(stats.dropped_send_error.bytes.get(), 20);
    }
}
