//! A stream connection's send backlog: a ring buffer of whole frames, bounded in bytes. A
//! partial write only advances the read position (no moving the rest to the front, which with
//! a 512 KiB backlog would copy up to 512 KiB per partial write), and memory grows with the
//! backlog actually held, not with the limit.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};

/// Capacity kept after the backlog empties; a burst's larger buffer is given back.
const IDLE_CAPACITY: usize = 16 * 1024;

/// Bytes waiting to be written to one connection.
#[derive(Debug)]
pub struct TxBacklog {
    ring: VecDeque<u8>,
    limit: usize,
}

impl TxBacklog {
    /// An empty backlog holding at most `limit` bytes.
    pub fn new(limit: usize) -> Self {
        TxBacklog {
            ring: VecDeque::new(),
            limit,
        }
    }

    /// Appends a whole frame; false when it does not fit under the limit (the frame is dropped
    /// whole: a stream must never carry part of a frame).
    pub fn push(&mut self, frame: &[u8]) -> bool {
        if self.ring.len() + frame.len() > self.limit {
            return false;
        }
        self.ring.extend(frame);
        true
    }

    /// Bytes waiting.
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    /// Writes the backlog into `w` until it would block, takes nothing more (a TLS session's
    /// plaintext buffer is full), or the backlog is empty; both halves of a wrapped ring go in
    /// one vectored write (one syscall, one TLS record). Returns the bytes written.
    pub fn write_to(&mut self, w: &mut impl Write) -> io::Result<usize> {
        let mut total = 0;
        while !self.ring.is_empty() {
            let (front, back) = self.ring.as_slices();
            let written = if back.is_empty() {
                w.write(front)
            } else {
                w.write_vectored(&[IoSlice::new(front), IoSlice::new(back)])
            };
            match written {
                Ok(0) => break,
                Ok(n) => {
                    self.consume(n);
                    total += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(total)
    }

    /// Frees the ring's memory when nothing waits (an idle connection keeps no buffer).
    pub fn release_if_empty(&mut self) {
        if self.ring.is_empty() && self.ring.capacity() > 0 {
            self.ring = VecDeque::new();
        }
    }

    fn consume(&mut self, n: usize) {
        // Advancing the head of a ring of bytes moves nothing.
        self.ring.drain(..n.min(self.ring.len()));
        if self.ring.is_empty() && self.ring.capacity() > IDLE_CAPACITY {
            self.ring.shrink_to(IDLE_CAPACITY);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that takes at most `step` bytes per call and then blocks after `budget`.
    struct Trickle {
        got: Vec<u8>,
        step: usize,
        budget: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.budget == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.step).min(self.budget);
            self.got.extend_from_slice(&buf[..n]);
            self.budget -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn partial_writes_keep_order_across_the_wrap() {
        let mut b = TxBacklog::new(64);
        let mut w = Trickle {
            got: Vec::new(),
            step: 7,
            budget: 30,
        };
        let data: Vec<u8> = (0..200u8).collect();
        let mut pushed = 0;
        // Keep the ring near full while it drains, so the data wraps around its end.
        while w.got.len() < 200 {
            while pushed < 200 && b.push(&data[pushed..pushed + 10]) {
                pushed += 10;
            }
            b.write_to(&mut w).unwrap();
            w.budget = 30;
        }
        assert_eq!(w.got, data);
        assert!(b.is_empty());
    }

    #[test]
    fn a_frame_over_the_limit_is_refused_whole() {
        let mut b = TxBacklog::new(16);
        assert!(b.push(&[1; 10]));
        assert!(!b.push(&[2; 7]), "10 + 7 > 16");
        assert_eq!(b.len(), 10);
        assert!(b.push(&[3; 6]));
        assert_eq!(b.len(), 16);
    }

    #[test]
    fn a_writer_that_takes_nothing_stops_the_write() {
        struct Zero;
        impl Write for Zero {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Ok(0)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut b = TxBacklog::new(16);
        b.push(&[1; 4]);
        assert_eq!(b.write_to(&mut Zero).unwrap(), 0);
        assert_eq!(b.len(), 4);
    }
}
