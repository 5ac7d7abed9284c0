//! Allocation quotas shared by all shards.
//!
//! Touched only when an allocation is created or ends, never per packet, so a
//! mutex around the per-user map is cheap; the server-wide total is an atomic
//! so a full server refuses without taking the lock and metrics read it freely.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

use crate::stun::ErrorCode;

/// Why an allocation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QuotaError {
    /// The user already holds `user-quota` allocations.
    #[error("per-user allocation quota reached")]
    User,
    /// The server already holds `total-quota` allocations.
    #[error("total allocation quota reached")]
    Total,
}

impl QuotaError {
    /// The STUN error code to answer with (486 Allocation Quota Reached).
    pub fn stun_code(&self) -> ErrorCode {
        ErrorCode::AllocationQuotaReached
    }
}

/// Proof that a quota slot was taken. It does not release itself: the
/// allocation that holds it calls [`Quotas::release`] when it ends, possibly
/// on another thread, so the token is only a reminder not to drop the result.
#[must_use = "a taken quota slot must be released when the allocation ends"]
#[derive(Debug)]
pub struct QuotaGuardToken {
    _private: (),
}

/// Per-user and server-wide allocation counters (0 = unlimited).
#[derive(Debug)]
pub struct Quotas {
    user_quota: AtomicU32,
    total_quota: AtomicU32,
    total: AtomicU32,
    per_user: Mutex<HashMap<String, u32>>,
}

impl Quotas {
    /// Creates the counters; a limit of 0 means unlimited.
    pub fn new(user_quota: u32, total_quota: u32) -> Self {
        Self {
            user_quota: AtomicU32::new(user_quota),
            total_quota: AtomicU32::new(total_quota),
            total: AtomicU32::new(0),
            per_user: Mutex::new(HashMap::new()),
        }
    }

    /// Changes the limits (live reload). Existing allocations above a lowered
    /// limit are kept; only new ones are refused.
    pub fn set_limits(&self, user_quota: u32, total_quota: u32) {
        self.user_quota.store(user_quota, Ordering::Relaxed);
        self.total_quota.store(total_quota, Ordering::Relaxed);
    }

    /// Current `(user_quota, total_quota)`.
    pub fn limits(&self) -> (u32, u32) {
        (
            self.user_quota.load(Ordering::Relaxed),
            self.total_quota.load(Ordering::Relaxed),
        )
    }

    /// Takes one slot for `user_id` and one from the total.
    ///
    /// The total is claimed first, lock-free, and given back if the user is
    /// over quota; meanwhile another request may briefly see the server one
    /// slot fuller than it is, which errs on the side of refusing.
    pub fn try_acquire(&self, user_id: &str) -> Result<QuotaGuardToken, QuotaError> {
        let total_quota = self.total_quota.load(Ordering::Relaxed);
        let mut cur = self.total.load(Ordering::Relaxed);
        loop {
            if total_quota != 0 && cur >= total_quota {
                return Err(QuotaError::Total);
            }
            // Unreachable in practice, but "unlimited" must refuse, not wrap.
            let next = cur.checked_add(1).ok_or(QuotaError::Total)?;
            match self
                .total
                .compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(actual) => cur = actual,
            }
        }

        let user_quota = self.user_quota.load(Ordering::Relaxed);
        let mut map = self.lock();
        let count = map.get(user_id).copied().unwrap_or(0);
        if user_quota != 0 && count >= user_quota {
            drop(map);
            self.total.fetch_sub(1, Ordering::AcqRel);
            return Err(QuotaError::User);
        }
        match map.get_mut(user_id) {
            Some(c) => *c += 1,
            None => {
                map.insert(user_id.to_owned(), 1);
            }
        }
        Ok(QuotaGuardToken { _private: () })
    }

    /// Gives back a slot taken by [`try_acquire`](Self::try_acquire). A
    /// release for a user holding nothing is ignored rather than letting the
    /// counters wrap.
    pub fn release(&self, user_id: &str) {
        let mut map = self.lock();
        let Some(count) = map.get_mut(user_id) else {
            return;
        };
        *count -= 1;
        if *count == 0 {
            // Drop idle users so the map stays as small as the live set.
            map.remove(user_id);
        }
        drop(map);
        // Every map entry was counted in the total, so this cannot wrap.
        self.total.fetch_sub(1, Ordering::AcqRel);
    }

    /// Allocations held server-wide.
    pub fn total_in_use(&self) -> u32 {
        self.total.load(Ordering::Relaxed)
    }

    /// Allocations held by `user_id`.
    pub fn user_in_use(&self, user_id: &str) -> u32 {
        self.lock().get(user_id).copied().unwrap_or(0)
    }

    /// Number of users holding at least one allocation.
    pub fn active_users(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, u32>> {
        // A panic elsewhere while holding the lock leaves the counts whole
        // (each update is a single step), so keep serving rather than
        // cascading the panic into every shard.
        self.per_user.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;
    use std::sync::Arc;

    #[test]
    fn unlimited_by_default() {
        let q = Quotas::new(0, 0);
        for _ in 0..100 {
            let _ = q.try_acquire("a").unwrap();
        }
        assert_eq!(q.total_in_use(), 100);
        assert_eq!(q.user_in_use("a"), 100);
    }

    #[test]
    fn user_limit() {
        let q = Quotas::new(2, 0);
        let _ = q.try_acquire("a").unwrap();
        let _ = q.try_acquire("a").unwrap();
        let e = q.try_acquire("a").unwrap_err();
        assert_eq!(e, QuotaError::User);
        assert_eq!(e.stun_code(), ErrorCode::AllocationQuotaReached);
        // The refused attempt must not leak a slot in the total.
        assert_eq!(q.total_in_use(), 2);
        let _ = q.try_acquire("b").unwrap();
        q.release("a");
        let _ = q.try_acquire("a").unwrap();
    }

    #[test]
    fn total_limit() {
        let q = Quotas::new(0, 3);
        for u in ["a", "b", "c"] {
            let _ = q.try_acquire(u).unwrap();
        }
        assert_eq!(q.try_acquire("d").unwrap_err(), QuotaError::Total);
        assert_eq!(q.active_users(), 3);
        q.release("b");
        let _ = q.try_acquire("d").unwrap();
    }

    #[test]
    fn release_removes_idle_users_and_ignores_strays() {
        let q = Quotas::new(0, 0);
        let _ = q.try_acquire("a").unwrap();
        q.release("a");
        q.release("a");
        q.release("nobody");
        assert_eq!(q.active_users(), 0);
        assert_eq!(q.total_in_use(), 0);
    }

    #[test]
    fn set_limits_applies_to_new_acquires() {
        let q = Quotas::new(0, 0);
        for _ in 0..3 {
            let _ = q.try_acquire("a").unwrap();
        }
        q.set_limits(2, 10);
        assert_eq!(q.limits(), (2, 10));
        assert_eq!(q.try_acquire("a").unwrap_err(), QuotaError::User);
        assert_eq!(q.user_in_use("a"), 3);
        q.set_limits(0, 3);
        assert_eq!(q.try_acquire("b").unwrap_err(), QuotaError::Total);
    }

    #[test]
    fn concurrent_counts_stay_exact() {
        const THREADS: usize = 8;
        const ROUNDS: usize = 2_000;
        let q = Arc::new(Quotas::new(3, 10));
        let peak = Arc::new(AtomicU32::new(0));
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let q = Arc::clone(&q);
                let peak = Arc::clone(&peak);
                std::thread::spawn(move || {
                    // Two threads per user so the per-user limit is contended too.
                    let user = format!("u{}", t / 2);
                    let mut held = 0u32;
                    for i in 0..ROUNDS {
                        if i % 3 != 2 {
                            if q.try_acquire(&user).is_ok() {
                                held += 1;
                                peak.fetch_max(q.total_in_use(), Ordering::Relaxed);
                                assert!(q.user_in_use(&user) <= 3);
                            }
                        } else if held > 0 {
                            q.release(&user);
                            held -= 1;
                        }
                    }
                    for _ in 0..held {
                        q.release(&user);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert!(peak.load(Ordering::Relaxed) <= 10);
        assert_eq!(q.total_in_use(), 0);
        assert_eq!(q.active_users(), 0);
    }
}
