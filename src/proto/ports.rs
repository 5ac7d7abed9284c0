//! Relay port pool and EVEN-PORT reservations, shared by all shards.
//!
//! Taking a port is lock-free (one bit per port in `AtomicU64` words) so
//! shards allocating at once never wait on each other. The pool only tracks
//! ownership; the caller binds the socket.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use rand::{CryptoRng, RngCore};

/// Why a port range was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PortRangeError {
    /// `min` is greater than `max`.
    #[error("relay port range {min}-{max} is empty")]
    Empty {
        /// Configured lower bound.
        min: u16,
        /// Configured upper bound.
        max: u16,
    },
    /// Port 0 means "any" to the kernel and cannot be handed out.
    #[error("relay port range must not include port 0")]
    ZeroPort,
}

/// The relay ports `min..=max`, one bit each (set = taken).
#[derive(Debug)]
pub struct PortPool {
    min: u16,
    capacity: usize,
    words: Box<[AtomicU64]>,
    in_use: AtomicUsize,
}

impl PortPool {
    /// A pool over `min..=max`, all free.
    pub fn new(min: u16, max: u16) -> Result<Self, PortRangeError> {
        if min > max {
            return Err(PortRangeError::Empty { min, max });
        }
        if min == 0 {
            return Err(PortRangeError::ZeroPort);
        }
        let capacity = usize::from(max - min) + 1;
        let n_words = capacity.div_ceil(64);
        let words: Box<[AtomicU64]> = (0..n_words).map(|_| AtomicU64::new(0)).collect();
        // Bits past the range are pre-set so scans see them as taken and need
        // no bounds check.
        let tail = capacity % 64;
        if tail != 0 {
            words[n_words - 1].store(!0u64 << tail, Ordering::Relaxed);
        }
        Ok(Self {
            min,
            capacity,
            words,
            in_use: AtomicUsize::new(0),
        })
    }

    /// Number of ports in the range.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Ports currently taken, including those marked unusable.
    pub fn in_use(&self) -> usize {
        self.in_use.load(Ordering::Relaxed)
    }

    /// Takes any free port, scanning from `start_hint` (reduced modulo the
    /// range; pass a random value to spread allocations) and wrapping once.
    /// `None` when every port is taken.
    pub fn take_any(&self, start_hint: u32) -> Option<u16> {
        let start = hint_index(start_hint, self.capacity);
        let n = self.words.len();
        let (w0, b0) = (start / 64, start % 64);
        let high = !0u64 << b0;
        // The start word is visited twice: first from the hint bit up, and
        // after the wrap for the bits below it.
        for step in 0..=n {
            let (w, mask) = match step {
                0 => (w0, high),
                s if s == n => (w0, !high),
                s => ((w0 + s) % n, !0u64),
            };
            if let Some(bit) = self.claim_any_in_word(w, mask) {
                self.in_use.fetch_add(1, Ordering::Relaxed);
                return Some(self.port_of(w * 64 + bit));
            }
        }
        None
    }

    /// Takes an even port `p` together with `p + 1` (RFC 8656 §7.2, EVEN-PORT
    /// with the R bit). Both must be free and inside the range. Returns `p`.
    pub fn take_even_pair(&self, start_hint: u32) -> Option<u16> {
        // Index of the first even port in the range.
        let first = usize::from(self.min % 2);
        if self.capacity < first + 2 {
            return None;
        }
        let pairs = (self.capacity - first) / 2;
        let start = hint_index(start_hint, pairs);
        for k in 0..pairs {
            let idx = first + 2 * ((start + k) % pairs);
            if self.claim_pair(idx) {
                self.in_use.fetch_add(2, Ordering::Relaxed);
                return Some(self.port_of(idx));
            }
        }
        None
    }

    /// Takes `port` if it is in range and free.
    pub fn take_specific(&self, port: u16) -> bool {
        let Some(idx) = self.index_of(port) else {
            return false;
        };
        let bit = 1u64 << (idx % 64);
        let prev = self.words[idx / 64].fetch_or(bit, Ordering::AcqRel);
        if prev & bit != 0 {
            return false;
        }
        self.in_use.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Returns `port` to the pool. Out-of-range or already-free ports are
    /// ignored, so a double release cannot corrupt the count.
    pub fn release(&self, port: u16) {
        let Some(idx) = self.index_of(port) else {
            return;
        };
        let bit = 1u64 << (idx % 64);
        let prev = self.words[idx / 64].fetch_and(!bit, Ordering::AcqRel);
        if prev & bit != 0 {
            self.in_use.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Keeps `port` out of circulation because another process holds it
    /// (bind failed with address-in-use). The port simply stays claimed,
    /// whether or not it was taken before, until someone calls
    /// [`release`](Self::release) for it, e.g. on a configuration reload.
    /// Without this, the pool would offer the same dead port again and again.
    pub fn mark_unusable(&self, port: u16) {
        let Some(idx) = self.index_of(port) else {
            return;
        };
        let bit = 1u64 << (idx % 64);
        let prev = self.words[idx / 64].fetch_or(bit, Ordering::AcqRel);
        if prev & bit == 0 {
            self.in_use.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn index_of(&self, port: u16) -> Option<usize> {
        let idx = usize::from(port.checked_sub(self.min)?);
        (idx < self.capacity).then_some(idx)
    }

    fn port_of(&self, idx: usize) -> u16 {
        // idx < capacity <= 65536 - min, so this stays within u16.
        self.min + idx as u16
    }

    fn claim_any_in_word(&self, w: usize, mask: u64) -> Option<usize> {
        let word = &self.words[w];
        let mut cur = word.load(Ordering::Relaxed);
        loop {
            let free = !cur & mask;
            if free == 0 {
                return None;
            }
            let bit = 1u64 << free.trailing_zeros();
            let prev = word.fetch_or(bit, Ordering::AcqRel);
            if prev & bit == 0 {
                return Some(free.trailing_zeros() as usize);
            }
            // Lost the race for this bit; `prev` already shows the others.
            cur = prev;
        }
    }

    /// Claims both bits or neither.
    fn claim_pair(&self, idx: usize) -> bool {
        let (w1, b1) = (idx / 64, idx % 64);
        if b1 < 63 {
            return claim_mask(&self.words[w1], 0b11 << b1);
        }
        // With an odd `min` a pair can straddle two words: claim one bit at a
        // time and undo the first if the second is gone. The brief claim can
        // only make a concurrent taker skip that port, never double-assign it.
        if !claim_mask(&self.words[w1], 1 << 63) {
            return false;
        }
        if claim_mask(&self.words[w1 + 1], 1) {
            return true;
        }
        self.words[w1].fetch_and(!(1 << 63), Ordering::AcqRel);
        false
    }
}

fn hint_index(hint: u32, len: usize) -> usize {
    // u32 always fits usize on the platforms a TURN server runs on.
    (hint as usize) % len.max(1)
}

/// Sets every bit in `mask` at once, only if all were clear.
fn claim_mask(word: &AtomicU64, mask: u64) -> bool {
    let mut cur = word.load(Ordering::Relaxed);
    loop {
        if cur & mask != 0 {
            return false;
        }
        match word.compare_exchange_weak(cur, cur | mask, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) => return true,
            Err(actual) => cur = actual,
        }
    }
}

/// How long an EVEN-PORT reservation holds `p + 1` (RFC 8656 §7.2 suggests
/// about 30 seconds).
pub const RESERVATION_LIFETIME_SECS: u64 = 30;

/// Ports held for a later Allocate carrying the matching RESERVATION-TOKEN.
///
/// Used only on Allocate and on a timer; the reserved ports stay taken in the
/// [`PortPool`] meanwhile.
#[derive(Debug, Default)]
pub struct Reservations {
    map: Mutex<HashMap<[u8; 8], (ReservedPort, u64)>>,
}

/// A held port and the relay address of the allocation that reserved it: the Allocate that
/// claims it gets a relay on that same address (RFC 8656 §7.2), even when the relay has several
/// addresses of that family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReservedPort {
    /// The port number.
    pub port: u16,
    /// The relay address the port belongs to.
    pub ip: IpAddr,
}

impl Reservations {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Holds `port` for [`RESERVATION_LIFETIME_SECS`] and returns the token, drawn from
    /// `rng`, that the client must present to claim it. A token is a capability (whoever
    /// presents it gets the port), so `rng` must be unpredictable from outside: the server
    /// passes its own cryptographic generator.
    pub fn reserve(
        &self,
        port: ReservedPort,
        unix_now: u64,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> [u8; 8] {
        let expires = unix_now.saturating_add(RESERVATION_LIFETIME_SECS);
        let mut map = self.lock();
        loop {
            let mut token = [0u8; 8];
            rng.fill_bytes(&mut token);
            // A colliding token would hand one client another's port.
            if let std::collections::hash_map::Entry::Vacant(e) = map.entry(token) {
                e.insert((port, expires));
                return token;
            }
        }
    }

    /// Claims the port behind `token`, removing the reservation.
    ///
    /// Returns `None` for an unknown token and for a lapsed one. A lapsed
    /// reservation is left in place so that [`expire`](Self::expire) hands
    /// its port back to the caller for release; otherwise the port, whose
    /// number the caller does not know, would leak.
    pub fn take(&self, token: &[u8; 8], unix_now: u64) -> Option<ReservedPort> {
        let mut map = self.lock();
        let &(port, expires) = map.get(token)?;
        if unix_now >= expires {
            return None;
        }
        map.remove(token);
        Some(port)
    }

    /// Removes lapsed reservations and returns their ports, which the caller
    /// must release to the [`PortPool`].
    pub fn expire(&self, unix_now: u64) -> Vec<u16> {
        let mut ports = Vec::new();
        self.lock().retain(|_, &mut (port, expires)| {
            let live = unix_now < expires;
            if !live {
                ports.push(port.port);
            }
            live
        });
        ports
    }

    /// Reservations currently held, lapsed or not.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when nothing is reserved.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 8], (ReservedPort, u64)>> {
        // Each update is a single map operation, so a poisoned map is intact.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    fn v4(port: u16) -> ReservedPort {
        ReservedPort {
            port,
            ip: IpAddr::from([192, 0, 2, 10]),
        }
    }

    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use std::collections::HashSet;
    use std::sync::Arc;

    fn rng() -> StdRng {
        StdRng::seed_from_u64(5)
    }

    #[test]
    fn reservation_tokens_come_from_the_given_generator() {
        let (a, b) = (Reservations::new(), Reservations::new());
        let ta = a.reserve(v4(5002), 100, &mut rng());
        let tb = b.reserve(v4(5002), 100, &mut rng());
        assert_eq!(ta, tb, "one seed, one token");
        let other = b.reserve(v4(5004), 100, &mut StdRng::seed_from_u64(6));
        assert_ne!(ta, other);
    }

    #[test]
    fn a_colliding_token_is_drawn_again() {
        // A generator that repeats itself: the second reservation must not reuse the first
        // reservation's token (that would hand one client another's port).
        struct Repeating(u8);
        impl RngCore for Repeating {
            fn next_u32(&mut self) -> u32 {
                self.next_u64() as u32
            }
            fn next_u64(&mut self) -> u64 {
                let mut b = [0; 8];
                self.fill_bytes(&mut b);
                u64::from_le_bytes(b)
            }
            fn fill_bytes(&mut self, dest: &mut [u8]) {
                // 0, 0, 1, 2, ...: the first two draws collide.
                dest.fill(self.0.saturating_sub(1));
                self.0 += 1;
            }
            fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
                self.fill_bytes(dest);
                Ok(())
            }
        }
        impl CryptoRng for Repeating {}
        let r = Reservations::new();
        let mut g = Repeating(0);
        let a = r.reserve(v4(5002), 100, &mut g);
        let b = r.reserve(v4(5004), 100, &mut g);
        assert_eq!(a, [0; 8]);
        assert_eq!(b, [1; 8]);
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn rejects_bad_ranges() {
        assert_eq!(
            PortPool::new(5000, 4999).unwrap_err(),
            PortRangeError::Empty {
                min: 5000,
                max: 4999
            }
        );
        assert_eq!(PortPool::new(0, 10).unwrap_err(), PortRangeError::ZeroPort);
    }

    #[test]
    fn full_range_returns_none() {
        let p = PortPool::new(50000, 50099).unwrap();
        assert_eq!(p.capacity(), 100);
        let mut seen = HashSet::new();
        for i in 0..100 {
            let port = p.take_any(i * 7919).unwrap();
            assert!((50000..=50099).contains(&port));
            assert!(seen.insert(port));
        }
        assert_eq!(p.in_use(), 100);
        assert_eq!(p.take_any(0), None);
        assert_eq!(p.take_any(u32::MAX), None);
        assert_eq!(p.take_even_pair(3), None);
    }

    #[test]
    fn whole_u16_range() {
        let p = PortPool::new(1, 65535).unwrap();
        assert_eq!(p.capacity(), 65535);
        assert!(p.take_specific(65535));
        assert!(p.take_specific(1));
        assert!(!p.take_specific(0));
        assert_eq!(p.in_use(), 2);
    }

    #[test]
    fn hint_wraps_around() {
        let p = PortPool::new(1000, 1199).unwrap();
        // Free only a port below the hint, in the hint's own word.
        for port in 1000..=1199 {
            assert!(p.take_specific(port));
        }
        p.release(1130);
        assert_eq!(p.take_any(150), Some(1130));
        p.release(1199);
        assert_eq!(p.take_any(0), Some(1199));
    }

    #[test]
    fn release_makes_available() {
        let p = PortPool::new(3000, 3000).unwrap();
        assert_eq!(p.take_any(9), Some(3000));
        assert_eq!(p.take_any(9), None);
        p.release(3000);
        p.release(3000);
        p.release(2999);
        assert_eq!(p.in_use(), 0);
        assert_eq!(p.take_any(9), Some(3000));
    }

    #[test]
    fn take_specific_and_mark_unusable() {
        let p = PortPool::new(4000, 4009).unwrap();
        assert!(p.take_specific(4005));
        assert!(!p.take_specific(4005));
        assert!(!p.take_specific(4010));
        p.mark_unusable(4005);
        p.mark_unusable(4006);
        assert_eq!(p.in_use(), 2);
        for _ in 0..8 {
            let port = p.take_any(5).unwrap();
            assert!(port != 4005 && port != 4006);
        }
        assert_eq!(p.take_any(5), None);
    }

    #[test]
    fn even_pair_alignment_odd_min_even_max() {
        // 49153..=49160: pairs (49154,49155) (49156,49157) (49158,49159);
        // 49160 has no partner inside the range.
        let p = PortPool::new(49153, 49160).unwrap();
        let mut got: Vec<u16> = (0..3).map(|h| p.take_even_pair(h).unwrap()).collect();
        got.sort_unstable();
        assert_eq!(got, vec![49154, 49156, 49158]);
        assert_eq!(p.take_even_pair(0), None);
        assert_eq!(p.in_use(), 6);
        // The edges are still free for single takes.
        assert!(p.take_specific(49153));
        assert!(p.take_specific(49160));
    }

    #[test]
    fn even_pair_needs_both_free() {
        let p = PortPool::new(6000, 6003).unwrap();
        assert!(p.take_specific(6001));
        assert_eq!(p.take_even_pair(0), Some(6002));
        assert_eq!(p.take_even_pair(0), None);
        let tiny = PortPool::new(6001, 6002).unwrap();
        assert_eq!(tiny.take_even_pair(0), None);
    }

    #[test]
    fn even_pair_straddles_words() {
        // With an odd min, index 63/64 is the pair (min+63, min+64).
        let min = 10001u16;
        let p = PortPool::new(min, min + 127).unwrap();
        for port in min..=min + 127 {
            if port != min + 63 && port != min + 64 {
                assert!(p.take_specific(port));
            }
        }
        assert_eq!(p.take_even_pair(7), Some(min + 63));
        assert_eq!(p.in_use(), 128);
        // Second half taken: the first half must be rolled back.
        p.release(min + 63);
        assert_eq!(p.take_even_pair(7), None);
        assert_eq!(p.in_use(), 127);
        assert!(p.take_specific(min + 63));
    }

    #[test]
    fn concurrent_takers_never_share() {
        const THREADS: u32 = 8;
        let p = Arc::new(PortPool::new(40000, 41999).unwrap());
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let p = Arc::clone(&p);
                std::thread::spawn(move || {
                    let mut mine = Vec::new();
                    let mut hint = t.wrapping_mul(2_654_435_761);
                    loop {
                        hint = hint.wrapping_mul(1_103_515_245).wrapping_add(12345);
                        let got = if hint % 4 == 0 {
                            p.take_even_pair(hint).map(|x| [Some(x), Some(x + 1)])
                        } else {
                            p.take_any(hint).map(|x| [Some(x), None])
                        };
                        match got {
                            Some(ports) => mine.extend(ports.into_iter().flatten()),
                            None if hint % 4 == 0 => continue,
                            None => break,
                        }
                    }
                    mine
                })
            })
            .collect();
        let mut all = HashSet::new();
        for h in handles {
            for port in h.join().unwrap() {
                assert!(all.insert(port), "port {port} handed out twice");
            }
        }
        assert_eq!(all.len(), 2000);
        assert_eq!(p.in_use(), 2000);
    }

    #[test]
    fn reservation_lifecycle() {
        let r = Reservations::new();
        let t = r.reserve(v4(5002), 100, &mut rng());
        assert_eq!(r.len(), 1);
        assert_eq!(r.take(&[0; 8], 101), None);
        assert_eq!(r.take(&t, 129), Some(v4(5002)));
        assert_eq!(r.take(&t, 129), None);
        assert!(r.is_empty());
    }

    #[test]
    fn reservation_expiry() {
        let r = Reservations::new();
        let mut rng = rng();
        let a = r.reserve(v4(5002), 100, &mut rng);
        let b = r.reserve(v4(5004), 110, &mut rng);
        assert_ne!(a, b);
        assert!(r.expire(129).is_empty());
        // Lapsed: refused, but kept so expire() returns the port.
        assert_eq!(r.take(&a, 130), None);
        assert_eq!(r.expire(130), vec![5002]);
        assert_eq!(r.len(), 1);
        assert_eq!(r.take(&b, 130), Some(v4(5004)));
        assert!(r.expire(1_000).is_empty());
    }
}
