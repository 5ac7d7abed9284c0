//! The TURN client state machine of one participant (sans-IO: datagrams and time in, datagrams
//! out): Allocate (answering the 401 challenge), then CreatePermission and ChannelBind towards
//! its peer, keep-alive Refreshes, and Refresh 0 to leave.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::proto::auth::long_term::long_term_key;
use crate::proto::stun::{Class, TransactionId};

use super::wire::{self, Credentials, Request};

/// First retransmission timeout (RFC 8489 suggests 500 ms on a LAN-less path; loopback is fast).
const RTO: Duration = Duration::from_millis(500);
/// Transmissions of one request before giving up.
const MAX_TRIES: u32 = 5;
/// Re-send ChannelBind (which also refreshes the permission) this often; permissions last 300 s.
const CHANNEL_REFRESH: Duration = Duration::from_secs(240);

/// What the participant does once allocated.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Peer to permit and bind a channel to, with the channel number.
    pub peer: Option<(SocketAddr, u16)>,
    /// Delete the allocation right after it is made (the `alloc` mode's cycle).
    pub delete_after_allocate: bool,
}

/// Where the participant is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Nothing sent yet.
    New,
    /// Allocate outstanding.
    Allocating,
    /// CreatePermission outstanding.
    Permitting,
    /// ChannelBind outstanding.
    Binding,
    /// Allocated (and bound, when the plan has a peer): may stream.
    Ready,
    /// Refresh 0 outstanding.
    Deleting,
    /// The allocation is gone (deleted by us).
    Closed,
    /// Gave up: the STUN error code, or 0 for a timeout or a protocol error.
    Failed(u16),
}

struct Pending {
    tid: TransactionId,
    request: Request,
    bytes: Vec<u8>,
    next_retry: Instant,
    rto: Duration,
    tries: u32,
}

/// One TURN client.
pub struct TurnClient {
    id: u32,
    username: String,
    password: String,
    realm: Vec<u8>,
    nonce: Vec<u8>,
    key: Option<[u8; 16]>,
    plan: Plan,
    state: State,
    pending: Option<Pending>,
    tid_counter: u64,
    /// The relayed address the server gave.
    pub relayed: Option<SocketAddr>,
    lifetime: Duration,
    refresh_at: Option<Instant>,
    rebind_at: Option<Instant>,
    /// When Allocate was first sent.
    pub started: Option<Instant>,
    /// When the allocation succeeded.
    pub allocated: Option<Instant>,
    /// Transmissions of requests, first sends included.
    pub requests_sent: u64,
}

impl TurnClient {
    /// A client with the given credentials.
    pub fn new(id: u32, username: String, password: String, plan: Plan) -> TurnClient {
        TurnClient {
            id,
            username,
            password,
            realm: Vec::new(),
            nonce: Vec::new(),
            key: None,
            plan,
            state: State::New,
            pending: None,
            tid_counter: 0,
            relayed: None,
            lifetime: Duration::from_secs(600),
            refresh_at: None,
            rebind_at: None,
            started: None,
            allocated: None,
            requests_sent: 0,
        }
    }

    /// Current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The channel to stream on, once ready.
    pub fn channel(&self) -> Option<u16> {
        match (self.state, self.plan.peer) {
            (State::Ready, Some((_, ch))) => Some(ch),
            _ => None,
        }
    }

    /// Whether a transaction is outstanding.
    pub fn busy(&self) -> bool {
        self.pending.is_some()
    }

    /// Starts: writes the first (unauthenticated) Allocate into `out`.
    pub fn start(&mut self, now: Instant, out: &mut [u8]) -> Option<usize> {
        self.started = Some(now);
        self.state = State::Allocating;
        self.send(now, Request::Allocate, out)
    }

    /// Handles a STUN datagram from the server; may write the next request into `out`.
    pub fn on_stun(&mut self, now: Instant, data: &[u8], out: &mut [u8]) -> Option<usize> {
        let resp = wire::parse_response(data).ok()?;
        let pending = self.pending.as_ref()?;
        if resp.tid != pending.tid {
            return None; // a late answer to a retransmitted request
        }
        let request = pending.request;
        self.pending = None;
        if resp.class == Class::Error {
            let code = resp.error_code.unwrap_or(0);
            let fresh_challenge = code == 401 && self.key.is_none();
            if fresh_challenge || code == 438 {
                if let (Some(realm), Some(nonce)) = (resp.realm, resp.nonce) {
                    if self.key.is_none() {
                        self.realm = realm.to_vec();
                        let realm = String::from_utf8_lossy(realm);
                        self.key = Some(long_term_key(&self.username, &realm, &self.password));
                    }
                    self.nonce = nonce.to_vec();
                    return self.send(now, request, out);
                }
            }
            if matches!(request, Request::Refresh(0)) && code == 437 {
                self.state = State::Closed; // already gone
                return None;
            }
            self.state = State::Failed(code);
            return None;
        }
        match request {
            Request::Allocate => {
                self.relayed = resp.relayed;
                if let Some(l) = resp.lifetime {
                    self.lifetime = Duration::from_secs(l.max(60) as u64);
                }
                self.allocated = Some(now);
                self.refresh_at = Some(now + self.lifetime / 2);
                if self.plan.delete_after_allocate {
                    self.state = State::Deleting;
                    return self.send(now, Request::Refresh(0), out);
                }
                match self.plan.peer {
                    Some((peer, _)) => {
                        self.state = State::Permitting;
                        self.send(now, Request::CreatePermission(peer), out)
                    }
                    None => {
                        self.state = State::Ready;
                        None
                    }
                }
            }
            Request::CreatePermission(_) => {
                let (peer, ch) = self.plan.peer?;
                self.state = State::Binding;
                self.send(now, Request::ChannelBind(ch, peer), out)
            }
            Request::ChannelBind(..) => {
                self.rebind_at = Some(now + CHANNEL_REFRESH);
                self.state = State::Ready;
                None
            }
            Request::Refresh(0) => {
                self.state = State::Closed;
                None
            }
            Request::Refresh(_) => {
                if let Some(l) = resp.lifetime {
                    self.lifetime = Duration::from_secs(l.max(60) as u64);
                }
                self.refresh_at = Some(now + self.lifetime / 2);
                None
            }
        }
    }

    /// Retransmits a request whose answer is overdue, gives up after `MAX_TRIES`, and sends the
    /// keep-alives of a ready allocation.
    pub fn on_tick(&mut self, now: Instant, out: &mut [u8]) -> Option<usize> {
        if let Some(p) = self.pending.as_mut() {
            if now < p.next_retry {
                return None;
            }
            if p.tries >= MAX_TRIES {
                self.pending = None;
                self.state = State::Failed(0);
                return None;
            }
            p.tries += 1;
            p.rto *= 2;
            p.next_retry = now + p.rto;
            let n = p.bytes.len();
            out.get_mut(..n)?.copy_from_slice(&p.bytes);
            self.requests_sent += 1;
            return Some(n);
        }
        if self.state != State::Ready {
            return None;
        }
        if self.refresh_at.is_some_and(|t| now >= t) {
            self.refresh_at = None;
            let lifetime = self.lifetime.as_secs() as u32;
            return self.send(now, Request::Refresh(lifetime), out);
        }
        if let (Some(t), Some((peer, ch))) = (self.rebind_at, self.plan.peer) {
            if now >= t {
                self.rebind_at = Some(now + CHANNEL_REFRESH);
                return self.send(now, Request::ChannelBind(ch, peer), out);
            }
        }
        None
    }

    /// Deletes the allocation (Refresh 0) if there is one; a transaction still outstanding is
    /// abandoned.
    pub fn close(&mut self, now: Instant, out: &mut [u8]) -> Option<usize> {
        match self.state {
            State::Ready | State::Permitting | State::Binding => {
                self.pending = None;
                self.state = State::Deleting;
                self.send(now, Request::Refresh(0), out)
            }
            _ => None,
        }
    }

    /// Whether the client has nothing more to do (closed or failed).
    pub fn finished(&self) -> bool {
        matches!(self.state, State::Closed | State::Failed(_))
    }

    fn send(&mut self, now: Instant, request: Request, out: &mut [u8]) -> Option<usize> {
        self.tid_counter += 1;
        let mut tid = [0u8; 12];
        tid[..4].copy_from_slice(&self.id.to_be_bytes());
        tid[4..].copy_from_slice(&self.tid_counter.to_be_bytes());
        let creds = self.key.as_ref().map(|key| Credentials {
            username: &self.username,
            realm: &self.realm,
            nonce: &self.nonce,
            key,
        });
        let n = match wire::write_request(out, request, tid, creds.as_ref()) {
            Ok(n) => n,
            Err(_) => {
                self.state = State::Failed(0);
                return None;
            }
        };
        self.pending = Some(Pending {
            tid,
            request,
            bytes: out[..n].to_vec(),
            next_retry: now + RTO,
            rto: RTO,
            tries: 1,
        });
        self.requests_sent += 1;
        Some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::stun::{attr, method, ErrorCode, Message, MessageWriter};

    fn answer(req: &[u8], class: Class, fill: impl FnOnce(&mut MessageWriter<'_>)) -> Vec<u8> {
        let msg = Message::parse(req).unwrap();
        let mut buf = vec![0u8; 512];
        let mut w = MessageWriter::new(&mut buf, msg.method, class, msg.tid).unwrap();
        fill(&mut w);
        let n = w.finish();
        buf.truncate(n);
        buf
    }

    #[test]
    fn allocates_binds_and_deletes() {
        let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let plan = Plan {
            peer: Some((peer, 0x4000)),
            delete_after_allocate: false,
        };
        let mut c = TurnClient::new(1, "u".into(), "p".into(), plan);
        let mut out = [0u8; 512];
        let now = Instant::now();
        let n = c.start(now, &mut out).unwrap();
        assert!(Message::parse(&out[..n])
            .unwrap()
            .attributes()
            .unwrap()
            .username
            .is_none());
        let resp = answer(&out[..n], Class::Error, |w| {
            w.error_code(ErrorCode::Unauthorized).unwrap();
            w.attr(attr::REALM, b"r").unwrap();
            w.attr(attr::NONCE, b"n").unwrap();
        });
        let n = c.on_stun(now, &resp, &mut out).unwrap();
        let req = out[..n].to_vec();
        assert!(Message::parse(&req)
            .unwrap()
            .attributes()
            .unwrap()
            .integrity_offset
            .is_some());
        let relay: SocketAddr = "127.0.0.1:50000".parse().unwrap();
        let resp = answer(&req, Class::Success, |w| {
            w.xor_address(attr::XOR_RELAYED_ADDRESS, &relay).unwrap();
        });
        let n = c.on_stun(now, &resp, &mut out).unwrap();
        assert_eq!(c.relayed, Some(relay));
        assert_eq!(
            Message::parse(&out[..n]).unwrap().method,
            method::CREATE_PERMISSION
        );
        let resp = answer(&out[..n], Class::Success, |_| {});
        let n = c.on_stun(now, &resp, &mut out).unwrap();
        assert_eq!(
            Message::parse(&out[..n]).unwrap().method,
            method::CHANNEL_BIND
        );
        let resp = answer(&out[..n], Class::Success, |_| {});
        assert!(c.on_stun(now, &resp, &mut out).is_none());
        assert_eq!(c.channel(), Some(0x4000));
        let n = c.close(now, &mut out).unwrap();
        let resp = answer(&out[..n], Class::Success, |_| {});
        c.on_stun(now, &resp, &mut out);
        assert_eq!(c.state(), State::Closed);
    }

    #[test]
    fn retransmits_then_gives_up() {
        let plan = Plan {
            peer: None,
            delete_after_allocate: false,
        };
        let mut c = TurnClient::new(1, "u".into(), "p".into(), plan);
        let mut out = [0u8; 512];
        let t0 = Instant::now();
        let n = c.start(t0, &mut out).unwrap();
        let first = out[..n].to_vec();
        assert!(c
            .on_tick(t0 + Duration::from_millis(100), &mut out)
            .is_none());
        let n = c
            .on_tick(t0 + Duration::from_millis(600), &mut out)
            .unwrap();
        assert_eq!(&out[..n], &first[..], "retransmission is byte-identical");
        let mut t = t0 + Duration::from_millis(600);
        for _ in 0..10 {
            t += Duration::from_secs(20);
            c.on_tick(t, &mut out);
        }
        assert_eq!(c.state(), State::Failed(0));
        assert_eq!(c.requests_sent, 5);
    }

    #[test]
    fn wrong_credentials_fail_after_one_challenge() {
        let plan = Plan {
            peer: None,
            delete_after_allocate: true,
        };
        let mut c = TurnClient::new(1, "u".into(), "p".into(), plan);
        let mut out = [0u8; 512];
        let now = Instant::now();
        let challenge = |req: &[u8]| {
            answer(req, Class::Error, |w| {
                w.error_code(ErrorCode::Unauthorized).unwrap();
                w.attr(attr::REALM, b"r").unwrap();
                w.attr(attr::NONCE, b"n").unwrap();
            })
        };
        let n = c.start(now, &mut out).unwrap();
        let resp = challenge(&out[..n]);
        let n = c.on_stun(now, &resp, &mut out).unwrap();
        let resp = challenge(&out[..n]);
        assert!(c.on_stun(now, &resp, &mut out).is_none());
        assert_eq!(c.state(), State::Failed(401));
    }
}
