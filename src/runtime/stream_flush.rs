//! Connections with relayed frames queued since their last write. Frames from peers are
//! queued on their connection as they are relayed and written once per round, so the frames a
//! connection gets in one round leave in one write (one TLS record where they fit) instead of
//! one write — and one wake-up of the client — per frame.

/// The set of connection slots to write at the end of the round, each at most once.
#[derive(Debug, Default)]
pub struct PendingFlush {
    slots: Vec<usize>,
    marked: Vec<bool>,
}

impl PendingFlush {
    /// Notes that `slot` has something queued; true the first time in this round.
    pub fn mark(&mut self, slot: usize) -> bool {
        if slot >= self.marked.len() {
            // Grows with the connection table, not per frame.
            self.marked.resize(slot + 1, false);
        }
        if self.marked[slot] {
            return false;
        }
        self.marked[slot] = true;
        self.slots.push(slot);
        true
    }

    /// Takes the next slot to write, clearing its mark.
    pub fn pop(&mut self) -> Option<usize> {
        let slot = self.slots.pop()?;
        self.marked[slot] = false;
        Some(slot)
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_slot_once_per_round() {
        let mut p = PendingFlush::default();
        assert!(p.mark(3));
        assert!(!p.mark(3));
        assert!(p.mark(0));
        let mut got = Vec::new();
        while let Some(s) = p.pop() {
            got.push(s);
        }
        got.sort_unstable();
        assert_eq!(got, vec![0, 3]);
        assert!(p.is_empty());
        // The next round marks afresh.
        assert!(p.mark(3));
    }
}
