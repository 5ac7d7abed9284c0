//! Caps on TCP/TLS connections, per source address and in total, shared by all shards and
//! touched only when a connection opens or closes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Connection counters with their limits.
#[derive(Debug)]
pub struct ConnectionLimits {
    max_total: usize,
    max_per_ip: usize,
    total: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

impl ConnectionLimits {
    /// Limits of `max_total` connections and `max_per_ip` from one address (0 = unlimited).
    pub fn new(max_total: usize, max_per_ip: usize) -> Self {
        ConnectionLimits {
            max_total,
            max_per_ip,
            total: AtomicUsize::new(0),
            per_ip: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a new connection from `ip`, or refuses it.
    pub fn try_open(&self, ip: IpAddr) -> bool {
        let mut per_ip = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        let total = self.total.load(Ordering::Relaxed);
        if self.max_total != 0 && total >= self.max_total {
            return false;
        }
        let count = per_ip.entry(ip).or_insert(0);
        if self.max_per_ip != 0 && *count >= self.max_per_ip {
            return false;
        }
        *count += 1;
        self.total.store(total + 1, Ordering::Relaxed);
        true
    }

    /// Forgets a connection from `ip` counted by [`try_open`](Self::try_open).
    pub fn close(&self, ip: IpAddr) {
        let mut per_ip = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = per_ip.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                per_ip.remove(&ip);
            }
            self.total.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Counts a new connection whose client is not known yet (its PROXY protocol header is
    /// awaited): only the total cap applies until [`attribute`](Self::attribute).
    pub fn try_open_unattributed(&self) -> bool {
        let _per_ip = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        let total = self.total.load(Ordering::Relaxed);
        if self.max_total != 0 && total >= self.max_total {
            return false;
        }
        self.total.store(total + 1, Ordering::Relaxed);
        true
    }

    /// Charges a connection counted by [`try_open_unattributed`](Self::try_open_unattributed)
    /// to its client `ip`; false, leaving it counted in the total only, when `ip` is at its cap.
    pub fn attribute(&self, ip: IpAddr) -> bool {
        let mut per_ip = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        let count = per_ip.entry(ip).or_insert(0);
        if self.max_per_ip != 0 && *count >= self.max_per_ip {
            if *count == 0 {
                per_ip.remove(&ip);
            }
            return false;
        }
        *count += 1;
        true
    }

    /// Forgets a connection: one charged to `Some(ip)` (see [`close`](Self::close)), or one
    /// counted in the total only (`None`).
    pub fn release(&self, ip: Option<IpAddr>) {
        match ip {
            Some(ip) => self.close(ip),
            None => {
                let _per_ip = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
                let total = self.total.load(Ordering::Relaxed);
                self.total.store(total.saturating_sub(1), Ordering::Relaxed);
            }
        }
    }

    /// Open connections.
    pub fn total(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_ip_and_total_caps() {
        let l = ConnectionLimits::new(3, 2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(l.try_open(a));
        assert!(l.try_open(a));
        assert!(!l.try_open(a), "per-ip cap");
        assert!(l.try_open(b));
        assert!(!l.try_open(b), "total cap");
        l.close(a);
        assert!(l.try_open(b));
        assert_eq!(l.total(), 3);
        l.close(b);
        l.close(b);
        l.close(a);
        l.close(a);
        assert_eq!(l.total(), 0);
    }

    #[test]
    fn unattributed_connections_count_in_the_total_until_charged() {
        let l = ConnectionLimits::new(3, 1);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(l.try_open_unattributed());
        assert!(l.try_open_unattributed());
        assert!(l.try_open_unattributed());
        assert!(!l.try_open_unattributed(), "total cap");
        assert!(!l.try_open(a), "total cap for plain connections too");
        assert!(l.attribute(a));
        assert!(!l.attribute(a), "per-ip cap");
        assert_eq!(l.total(), 3);
        // The refused one is still counted in the total until it is released.
        l.release(None);
        l.release(None);
        l.release(Some(a));
        assert_eq!(l.total(), 0);
        assert!(l.try_open(a));
        l.release(Some(a));
        assert_eq!(l.total(), 0);
    }
}
