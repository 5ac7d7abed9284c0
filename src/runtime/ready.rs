//! The shard's run queue: sockets known to hold unread input, each listed once, served round
//! robin. A socket that used its budget on one turn goes to the back of the queue, so every
//! other ready socket is served before it is served again; one that ran dry leaves the queue
//! and comes back with its next readiness event (epoll is edge-triggered).

use std::collections::{HashSet, VecDeque};

use mio::Token;

/// Tokens waiting to be served, without duplicates.
#[derive(Debug, Default)]
pub struct ReadyQueue {
    order: VecDeque<Token>,
    queued: HashSet<Token>,
}

impl ReadyQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues `token` unless it is already queued.
    pub fn push(&mut self, token: Token) {
        if self.queued.insert(token) {
            self.order.push_back(token);
        }
    }

    /// Takes the token at the front.
    pub fn pop(&mut self) -> Option<Token> {
        let token = self.order.pop_front()?;
        self.queued.remove(&token);
        Some(token)
    }

    /// Tokens queued.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Forgets `token` (its socket closed); its slot may be reused by another socket.
    pub fn remove(&mut self, token: Token) {
        if self.queued.remove(&token) {
            self.order.retain(|t| *t != token);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_token_once_in_arrival_order() {
        let mut q = ReadyQueue::new();
        for t in [1, 2, 1, 3, 2, 1] {
            q.push(Token(t));
        }
        assert_eq!(q.len(), 3);
        assert_eq!(q.pop(), Some(Token(1)));
        // Served and still busy: back of the queue, behind the others.
        q.push(Token(1));
        assert_eq!(q.pop(), Some(Token(2)));
        assert_eq!(q.pop(), Some(Token(3)));
        assert_eq!(q.pop(), Some(Token(1)));
        assert!(q.is_empty());
    }

    #[test]
    fn removed_tokens_are_not_served() {
        let mut q = ReadyQueue::new();
        q.push(Token(5));
        q.push(Token(6));
        q.remove(Token(5));
        q.push(Token(6));
        assert_eq!(q.pop(), Some(Token(6)));
        assert_eq!(q.pop(), None);
        q.push(Token(5));
        assert_eq!(q.pop(), Some(Token(5)));
    }
}
