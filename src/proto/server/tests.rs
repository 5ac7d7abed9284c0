//! The state machine driven in virtual time: no sockets, no sleeping.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::super::auth::long_term::long_term_key;
use super::super::auth::nonce::NonceKey;
use super::super::auth::rest::{rest_password, RestHmac};
use super::super::auth::{AuthSettings, Authenticator, UserSecret};
use super::super::peer_policy::{PeerPolicy, PeerPolicySettings, ServerAddresses};
use super::super::ports::{PortPool, Reservations};
use super::super::quota::Quotas;
use super::super::settings::{CoreConfig, ExternalMapping, Settings, Shared};
use super::super::stun::{attr, method, xor_addr, Class, Message, MessageWriter};
use super::*;

mod seeded;
mod tcp_relay;

const UNIX_START: u64 = 1_800_000_000;
const REALM: &str = "ferroturn.test";
const SECRET: &str = "north";

struct FakeBinder {
    relay_ip4: Option<IpAddr>,
    relay_ip6: Option<IpAddr>,
    open: HashMap<u32, SocketAddr>,
    closed: Vec<u32>,
    busy: HashSet<u16>,
    /// Every bind request, in order.
    requests: Vec<RelayAt>,
}

impl FakeBinder {
    fn new() -> Self {
        FakeBinder {
            relay_ip4: Some("192.0.2.10".parse().unwrap()),
            relay_ip6: Some("2001:db8::10".parse().unwrap()),
            open: HashMap::new(),
            closed: Vec::new(),
            busy: HashSet::new(),
            requests: Vec::new(),
        }
    }
}

impl RelayBinder for FakeBinder {
    fn bind(
        &mut self,
        relay: u32,
        at: RelayAt,
        port: u16,
        _df: bool,
    ) -> Result<SocketAddr, BindError> {
        self.requests.push(at);
        if self.busy.contains(&port) {
            return Err(BindError::AddrInUse);
        }
        let ip = match at {
            RelayAt::Family(Family::V4) => self.relay_ip4,
            RelayAt::Family(Family::V6) => self.relay_ip6,
            RelayAt::Ip(ip) => [self.relay_ip4, self.relay_ip6]
                .into_iter()
                .flatten()
                .find(|own| *own == ip),
        }
        .ok_or(BindError::FamilyUnavailable)?;
        let addr = SocketAddr::new(ip, port);
        assert!(
            self.open.insert(relay, addr).is_none(),
            "relay id reused while open"
        );
        Ok(addr)
    }

    fn bind_tcp(&mut self, relay: u32, at: RelayAt, port: u16) -> Result<SocketAddr, BindError> {
        self.bind(relay, at, port, false)
    }

    fn close(&mut self, relay: u32) {
        assert!(
            self.open.remove(&relay).is_some(),
            "closing a relay that is not open"
        );
        self.closed.push(relay);
    }
}

struct Options {
    settings: Settings,
    ports: (u16, u16),
    user_quota: u32,
    total_quota: u32,
    strict_expiry: bool,
    no_auth: bool,
    peers: PeerPolicySettings,
    rest_hmac: RestHmac,
    /// Seed of the server's generator.
    seed: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            settings: Settings::default(),
            ports: (50000, 50099),
            user_quota: 0,
            total_quota: 0,
            strict_expiry: false,
            no_auth: false,
            peers: PeerPolicySettings::default(),
            rest_hmac: RestHmac::Sha1,
            seed: 42,
        }
    }
}

struct Harness {
    server: Server,
    binder: FakeBinder,
    start: Instant,
    now: Instant,
    out: Vec<u8>,
}

fn harness(opts: Options) -> Harness {
    let auth = Authenticator::new(AuthSettings {
        realm: REALM.into(),
        no_auth: opts.no_auth,
        rest_secrets: vec![SECRET.as_bytes().to_vec()],
        rest_separator: ':',
        users: vec![("alice".into(), UserSecret::Password("wonderland".into()))],
        strict_expiry: opts.strict_expiry,
        rest_hmac: opts.rest_hmac,
    });
    let shared = Arc::new(Shared {
        nonce_key: NonceKey::from_bytes([9; 32]),
        quotas: Quotas::new(opts.user_quota, opts.total_quota),
        ports: PortPool::new(opts.ports.0, opts.ports.1).unwrap(),
        reservations: Reservations::new(),
    });
    let config = Arc::new(CoreConfig {
        auth,
        peers: PeerPolicy::new(&opts.peers),
        settings: opts.settings,
        revoked_users: Default::default(),
        revoked_secrets: Default::default(),
    });
    let start = Instant::now();
    Harness {
        server: Server::new(shared, config, start, UNIX_START, opts.seed, 0),
        binder: FakeBinder::new(),
        start,
        now: start,
        out: vec![0; 2048],
    }
}

/// A response parsed for assertions.
struct Response {
    raw: Vec<u8>,
    class: Class,
    method: u16,
    tid: [u8; 12],
}

impl Response {
    fn attr(&self, typ: u16) -> Option<&[u8]> {
        let mut pos = 20;
        while pos + 4 <= self.raw.len() {
            let t = u16::from_be_bytes([self.raw[pos], self.raw[pos + 1]]);
            let len = u16::from_be_bytes([self.raw[pos + 2], self.raw[pos + 3]]) as usize;
            if t == typ {
                return Some(&self.raw[pos + 4..pos + 4 + len]);
            }
            pos += 4 + ((len + 3) & !3);
        }
        None
    }

    fn error_code(&self) -> Option<u16> {
        self.attr(attr::ERROR_CODE)
            .map(|v| v[2] as u16 * 100 + v[3] as u16)
    }

    fn xor_addr(&self, typ: u16) -> SocketAddr {
        xor_addr::decode(self.attr(typ).unwrap(), &self.tid, typ).unwrap()
    }

    fn lifetime(&self) -> u32 {
        assert_eq!(self.error_code(), None, "expected success");
        u32::from_be_bytes(self.attr(attr::LIFETIME).unwrap().try_into().unwrap())
    }
}

/// A test client on one 5-tuple.
struct Client {
    flow: Flow,
    username: String,
    password: String,
    nonce: Option<Vec<u8>>,
    next_tid: u32,
}

fn flow(port: u16) -> Flow {
    Flow {
        socket: 0,
        remote: SocketAddr::new("203.0.113.7".parse().unwrap(), port),
    }
}

impl Client {
    fn rest(port: u16, user: &str, expiry: u64) -> Self {
        let username = format!("{expiry}:{user}");
        let password = rest_password(SECRET.as_bytes(), &username);
        Client {
            flow: flow(port),
            username,
            password,
            nonce: None,
            next_tid: 1,
        }
    }

    fn static_user(port: u16) -> Self {
        Client {
            flow: flow(port),
            username: "alice".into(),
            password: "wonderland".into(),
            nonce: None,
            next_tid: 1,
        }
    }

    fn tid(&mut self) -> [u8; 12] {
        self.next_tid += 1;
        self.last_tid()
    }

    /// The transaction id of the last request built.
    fn last_tid(&self) -> [u8; 12] {
        let mut tid = [self.next_tid as u8; 12];
        tid[..4].copy_from_slice(&self.next_tid.to_be_bytes());
        tid
    }

    /// Builds a request; `fill` adds the method's attributes before the credentials.
    fn request(
        &mut self,
        method: u16,
        tid: [u8; 12],
        fill: impl FnOnce(&mut MessageWriter<'_>),
    ) -> Vec<u8> {
        let mut buf = vec![0u8; 2048];
        let mut w = MessageWriter::new(&mut buf, method, Class::Request, tid).unwrap();
        fill(&mut w);
        if let Some(nonce) = &self.nonce {
            w.attr(attr::USERNAME, self.username.as_bytes()).unwrap();
            w.attr(attr::REALM, REALM.as_bytes()).unwrap();
            w.attr(attr::NONCE, nonce).unwrap();
            let key = long_term_key(&self.username, REALM, &self.password);
            w.integrity(&key).unwrap();
        }
        let n = w.finish();
        buf.truncate(n);
        buf
    }
}

impl Harness {
    fn advance(&mut self, secs: u64) {
        self.now += Duration::from_secs(secs);
        let now = self.now;
        self.server.handle_timeout(now, &mut self.binder);
    }

    fn send_raw(&mut self, flow: Flow, data: &[u8]) -> ClientAction {
        let now = self.now;
        self.server.handle_client(
            now,
            flow,
            Transport::Udp,
            data,
            &mut self.out,
            &mut self.binder,
        )
    }

    fn reply(&mut self, flow: Flow, data: &[u8]) -> Option<Response> {
        match self.send_raw(flow, data) {
            ClientAction::Reply(n) => {
                let raw = self.out[..n].to_vec();
                let msg = Message::parse(&raw).expect("server sent valid STUN");
                msg.attributes().expect("server sent valid attributes");
                Some(Response {
                    class: msg.class,
                    method: msg.method,
                    tid: msg.tid,
                    raw,
                })
            }
            ClientAction::None => None,
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    /// Sends a request, and when challenged (401 without a nonce or 438) retries once.
    fn call(
        &mut self,
        c: &mut Client,
        method: u16,
        fill: impl Fn(&mut MessageWriter<'_>),
    ) -> Response {
        let tid = c.tid();
        let req = c.request(method, tid, &fill);
        let resp = self.reply(c.flow, &req).expect("a response");
        let code = resp.error_code();
        if code == Some(438) || (code == Some(401) && c.nonce.is_none()) {
            c.nonce = Some(
                resp.attr(attr::NONCE)
                    .expect("challenge has NONCE")
                    .to_vec(),
            );
            assert_eq!(resp.attr(attr::REALM), Some(REALM.as_bytes()));
            let tid = c.tid();
            let req = c.request(method, tid, &fill);
            return self.reply(c.flow, &req).expect("a response");
        }
        resp
    }

    fn allocate(&mut self, c: &mut Client) -> Response {
        self.call(c, method::ALLOCATE, |w| {
            w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap()
        })
    }

    fn create_permission(&mut self, c: &mut Client, peer: SocketAddr) -> Response {
        self.call(c, method::CREATE_PERMISSION, |w| {
            w.xor_address(attr::XOR_PEER_ADDRESS, &peer).unwrap()
        })
    }

    fn channel_bind(&mut self, c: &mut Client, number: u16, peer: SocketAddr) -> Response {
        self.call(c, method::CHANNEL_BIND, |w| {
            w.attr_u32(attr::CHANNEL_NUMBER, (number as u32) << 16)
                .unwrap();
            w.xor_address(attr::XOR_PEER_ADDRESS, &peer).unwrap();
        })
    }

    fn peer_packet(&mut self, relay: u32, from: SocketAddr, payload: &[u8]) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; PEER_HEADROOM + payload.len() + PEER_TAILROOM];
        buf[PEER_HEADROOM..PEER_HEADROOM + payload.len()].copy_from_slice(payload);
        let now = self.now;
        match self
            .server
            .handle_peer(now, relay, from, &mut buf, payload.len())
        {
            PeerAction::Forward { start, end, .. } => Some(buf[start..end].to_vec()),
            PeerAction::Drop => None,
        }
    }
}

fn public_peer() -> SocketAddr {
    "198.100.1.1:5000".parse().unwrap()
}

fn valid_expiry() -> u64 {
    UNIX_START + 3600
}

#[test]
fn binding_reports_the_client_address_without_amplifying() {
    let mut h = harness(Options::default());
    let f = flow(4000);
    let mut buf = [0u8; 64];
    let w = MessageWriter::new(&mut buf, method::BINDING, Class::Request, [3; 12]).unwrap();
    let n = w.finish();
    let resp = h.reply(f, &buf[..n]).unwrap();
    assert_eq!(resp.class, Class::Success);
    assert_eq!(resp.xor_addr(attr::XOR_MAPPED_ADDRESS), f.remote);
    assert!(
        resp.attr(attr::SOFTWARE).is_none(),
        "bare request gets no SOFTWARE"
    );
    assert!(resp.raw.len() <= 2 * n);

    // A request of ordinary size gets SOFTWARE, and FINGERPRINT because it carried one.
    let mut w = MessageWriter::new(&mut buf, method::BINDING, Class::Request, [4; 12]).unwrap();
    w.attr(attr::SOFTWARE, b"some client software").unwrap();
    w.fingerprint().unwrap();
    let n = w.finish();
    let resp = h.reply(f, &buf[..n]).unwrap();
    assert!(resp.attr(attr::SOFTWARE).is_some());
    assert!(resp.attr(attr::FINGERPRINT).is_some());
    assert_eq!(h.server.stats().binding_requests.get(), 2);
}

#[test]
fn binding_with_unknown_required_attribute_gets_420() {
    let mut h = harness(Options::default());
    let mut buf = [0u8; 64];
    let mut w = MessageWriter::new(&mut buf, method::BINDING, Class::Request, [3; 12]).unwrap();
    w.attr(0x7ABC, &[0; 4]).unwrap();
    let n = w.finish();
    let resp = h.reply(flow(1), &buf[..n]).unwrap();
    assert_eq!(resp.error_code(), Some(420));
    assert_eq!(resp.attr(attr::UNKNOWN_ATTRIBUTES), Some(&[0x7A, 0xBC][..]));
}

#[test]
fn allocate_challenges_then_succeeds_with_rest_credentials() {
    let mut h = harness(Options::default());
    let mut c = Client::rest(4000, "alice", valid_expiry());
    let tid = c.tid();
    let req = c.request(method::ALLOCATE, tid, |w| {
        w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap()
    });
    let challenge = h.reply(c.flow, &req).unwrap();
    assert_eq!(challenge.error_code(), Some(401));
    assert!(challenge.attr(attr::NONCE).is_some());
    assert!(challenge.attr(attr::MESSAGE_INTEGRITY).is_none());

    let resp = h.allocate(&mut c);
    assert_eq!(
        (resp.method, resp.class),
        (method::ALLOCATE, Class::Success)
    );
    let relayed = resp.xor_addr(attr::XOR_RELAYED_ADDRESS);
    assert_eq!(relayed.ip(), "192.0.2.10".parse::<IpAddr>().unwrap());
    assert!((50000..=50099).contains(&relayed.port()));
    assert_eq!(resp.xor_addr(attr::XOR_MAPPED_ADDRESS), c.flow.remote);
    assert_eq!(resp.lifetime(), 600);
    assert!(resp.attr(attr::MESSAGE_INTEGRITY).is_some());
    assert_eq!(h.server.allocation_count(), 1);
    assert!(matches!(
        h.server.poll_event(),
        Some(Event::AllocationCreated { .. })
    ));
}

#[test]
fn every_rest_username_form_and_static_users_authenticate() {
    let mut h = harness(Options::default());
    let forms = [
        format!("{}", valid_expiry()),
        format!("{}:bob", valid_expiry()),
        format!("bob:{}", valid_expiry()),
    ];
    for (i, username) in forms.iter().enumerate() {
        let mut c = Client {
            flow: flow(5000 + i as u16),
            username: username.clone(),
            password: rest_password(SECRET.as_bytes(), username),
            nonce: None,
            next_tid: 1,
        };
        assert_eq!(h.allocate(&mut c).class, Class::Success, "{username}");
    }
    let mut alice = Client::static_user(6000);
    assert_eq!(h.allocate(&mut alice).class, Class::Success);
}

#[test]
fn wrong_password_and_expired_username_get_401() {
    let mut h = harness(Options::default());
    let mut c = Client::rest(4000, "alice", valid_expiry());
    c.password = "not-the-password".into();
    assert_eq!(h.allocate(&mut c).error_code(), Some(401));

    let mut expired = Client::rest(4001, "alice", UNIX_START - 1);
    assert_eq!(h.allocate(&mut expired).error_code(), Some(401));
    assert_eq!(h.server.allocation_count(), 0);
    assert_eq!(h.server.stats().auth_bad_credentials.get(), 1);
    assert_eq!(h.server.stats().auth_expired.get(), 1);
}

#[test]
fn stale_nonce_gets_438_and_a_fresh_nonce() {
    let settings = Settings {
        stale_nonce_secs: 60,
        ..Settings::default()
    };
    let mut h = harness(Options {
        settings,
        ..Options::default()
    });
    let mut c = Client::rest(4000, "alice", valid_expiry());
    assert_eq!(h.allocate(&mut c).class, Class::Success);
    let old_nonce = c.nonce.clone().unwrap();
    h.advance(61);
    let tid = c.tid();
    let req = c.request(method::REFRESH, tid, |_| {});
    let resp = h.reply(c.flow, &req).unwrap();
    assert_eq!(resp.error_code(), Some(438));
    assert_ne!(resp.attr(attr::NONCE).unwrap(), &old_nonce[..]);
    // The helper retries with the new nonce.
    let resp = h.call(&mut c, method::REFRESH, |_| {});
    assert_eq!(resp.class, Class::Success);
}

#[test]
fn allocate_attribute_errors() {
    let mut h = harness(Options::default());
    let mut c = Client::rest(4000, "alice", valid_expiry());
    let missing = h.call(&mut c, method::ALLOCATE, |_| {});
    assert_eq!(missing.error_code(), Some(400));
    // TCP over a UDP control connection is RFC 6062's 400 (see tests/tcp_relay.rs); an
    // unknown protocol is 442.
    let tcp = h.call(&mut c, method::ALLOCATE, |w| {
        w.attr_u32(attr::REQUESTED_TRANSPORT, 6 << 24).unwrap()
    });
    assert_eq!(tcp.error_code(), Some(400));
    let sctp = h.call(&mut c, method::ALLOCATE, |w| {
        w.attr_u32(attr::REQUESTED_TRANSPORT, 132 << 24).unwrap()
    });
    assert_eq!(sctp.error_code(), Some(442));
    let bad_family = h.call(&mut c, method::ALLOCATE, |w| {
        w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap();
        w.attr_u32(attr::REQUESTED_ADDRESS_FAMILY, 3 << 24).unwrap();
    });
    assert_eq!(bad_family.error_code(), Some(440));
    let unknown = h.call(&mut c, method::ALLOCATE, |w| {
        w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap();
        w.attr(0x0777, &[1, 2, 3, 4]).unwrap();
    });
    assert_eq!(unknown.error_code(), Some(420));
    assert_eq!(
        unknown.attr(attr::UNKNOWN_ATTRIBUTES),
        Some(&[0x07, 0x77][..])
    );
    assert!(
        unknown.attr(attr::MESSAGE_INTEGRITY).is_some(),
        "authenticated errors are signed"
    );
    let token_and_even = h.call(&mut c, method::ALLOCATE, |w| {
        w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap();
        w.attr(attr::EVEN_PORT, &[0x80]).unwrap();
        w.attr(attr::RESERVATION_TOKEN, &[1; 8]).unwrap();
    });
    assert_eq!(token_and_even.error_code(), Some(400));
    assert_eq!(h.server.allocation_count(), 0);
    assert_eq!(
        h.server.shared.ports.in_use(),
        0,
        "failed allocations leak no ports"
    );
}

#[test]
fn ipv6_relay_and_missing_family() {
    let mut h = harness(Options::default());
    let mut c = Client::rest(4000, "alice", valid_expiry());
    let resp = h.call(&mut c, method::ALLOCATE, |w| {
        w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap();
        w.attr_u32(attr::REQUESTED_ADDRESS_FAMILY, 2 << 24).unwrap();
    });
    assert_eq!(resp.class, Class::Success);
    assert!(resp.xor_addr(attr::XOR_RELAYED_ADDRESS).is_ipv6());
    // An IPv4 peer on an IPv6 allocation is a family mismatch.
    assert_eq!(
        h.create_permission(&mut c, public_peer()).error_code(),
        Some(443)
    );

    h.binder.relay_ip6 = None;
    let mut d = Client::rest(4001, "alice", valid_expiry());
    let resp = h.call(&mut d, method::ALLOCATE, |w| {
        w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap();
        w.attr_u32(attr::REQUESTED_ADDRESS_FAMILY, 2 << 24).unwrap();
    });
    assert_eq!(resp.error_code(), Some(440));
}

#[test]
fn second_allocate_on_a_flow_is_437_but_a_retransmission_is_answered() {
    let mut h = harness(Options::default());
    let mut c = Client::rest(4000, "alice", valid_expiry());
    h.allocate(&mut c);
    // Retransmit the exact request that succeeded.
    let tid = c.last_tid();
    let req = c.request(method::ALLOCATE, tid, |w| {
        w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap()
    });
    let again = h.reply(c.flow, &req).unwrap();
    assert_eq!(again.class, Class::Success);
    assert_eq!(h.allocate(&mut c).error_code(), Some(437));
    assert_eq!(h.server.allocation_count(), 1);
}

#[test]
fn requests_without_allocation_get_437_and_other_users_441() {
    let mut h = harness(Options::default());
    let mut c = Client::rest(4000, "alice", valid_expiry());
    assert_eq!(
        h.call(&mut c, method::REFRESH, |_| {}).error_code(),
        Some(437)
    );
    assert_eq!(
        h.create_permission(&mut c, public_peer()).error_code(),
        Some(437)
    );
    h.allocate(&mut c);
    let mut other = Client::rest(4000, "mallory", valid_expiry());
    assert_eq!(
        h.call(&mut other, method::REFRESH, |_| {}).error_code(),
        Some(441)
    );
}

#[test]
fn forbidden_peers_get_403_and_are_never_reached() {
    let mut h = harness(Options::default());
    let mut c = Client::rest(4000, "alice", valid_expiry());
    h.allocate(&mut c);
    for peer in ["10.1.2.3:1", "127.0.0.1:1", "169.254.1.1:1", "100.64.0.1:1"] {
        let peer: SocketAddr = peer.parse().unwrap();
        assert_eq!(
            h.create_permission(&mut c, peer).error_code(),
            Some(403),
            "{peer}"
        );
        assert_eq!(
            h.channel_bind(&mut c, 0x4000, peer).error_code(),
            Some(403),
            "{peer}"
        );
    }
    // One bad peer among good ones refuses the whole request.
    let resp = h.call(&mut c, method::CREATE_PERMISSION, |w| {
        w.xor_address(attr::XOR_PEER_ADDRESS, &public_peer())
            .unwrap();
        w.xor_address(attr::XOR_PEER_ADDRESS, &"192.168.1.1:9".parse().unwrap())
            .unwrap();
    });
    assert_eq!(resp.error_code(), Some(403));
    assert!(
        h.peer_packet(0, public_peer(), b"x").is_none(),
        "no permission was installed"
    );
    assert!(h.server.stats().forbidden_peer.get() >= 9);
}

#[test]
fn operator_lists_beat_built_in_rules_and_own_listeners_are_refused() {
    let range = |s: &str| s.parse().unwrap();
    let settings = Settings {
        server_addresses: ServerAddresses {
            listeners: vec!["127.0.0.1:3478".parse().unwrap()],
            local_ips: vec!["192.0.2.10".parse().unwrap()],
        },
        ..Settings::default()
    };
    let mut h = harness(Options {
        settings,
        peers: PeerPolicySettings {
            allowed: vec![range("10.9.9.9")],
            denied: vec![range("127.0.0.99"), range("10.0.0.0/8")],
            allow_loopback: true,
        },
        ..Options::default()
    });
    let mut c = Client::rest(4000, "alice", valid_expiry());
    h.allocate(&mut c);
    // denied-peer-ip beats allow-loopback-peers; the server's own listener is no peer.
    for peer in ["127.0.0.99:5000", "127.0.0.1:3478", "10.1.1.1:5000"] {
        let peer: SocketAddr = peer.parse().unwrap();
        let perm = h.create_permission(&mut c, peer);
        assert_eq!(perm.error_code(), Some(403), "{peer}");
        let bind = h.channel_bind(&mut c, 0x4001, peer);
        assert_eq!(bind.error_code(), Some(403), "{peer}");
    }
    // allow-loopback-peers still opens the rest of loopback; allowed-peer-ip beats
    // denied-peer-ip.
    for peer in ["127.0.0.98:5000", "127.0.0.1:3479", "10.9.9.9:5000"] {
        let peer: SocketAddr = peer.parse().unwrap();
        let perm = h.create_permission(&mut c, peer);
        assert_eq!(perm.class, Class::Success, "{peer}");
    }
    assert_eq!(h.server.stats().forbidden_peer.get(), 6);
}

#[test]
fn send_and_data_indications_follow_permissions_in_virtual_time() {
    let mut h = harness(Options::default());
    let mut c = Client::rest(4000, "alice", valid_expiry());
    h.allocate(&mut c);
    let peer = public_peer();
    let send = |c: &mut Client| {
        let tid = c.tid();
        let mut buf = vec![0u8; 256];
        let mut w = MessageWriter::new(&mut buf, method::SEND, Class::Indication, tid).unwrap();
        w.xor_address(attr::XOR_PEER_ADDRESS, &peer).unwrap();
        w.attr(attr::DATA, b"hello peer").unwrap();
        let n = w.finish();
        buf.truncate(n);
        buf
    };
    let ind = send(&mut c);
    assert_eq!(
        h.send_raw(c.flow, &ind),
        ClientAction::None,
        "no permission yet"
    );
    assert!(h.peer_packet(0, peer, b"early").is_none());

    assert_eq!(h.create_permission(&mut c, peer).class, Class::Success);
    let ind = send(&mut c);
    match h.send_raw(c.flow, &ind) {
        ClientAction::Relay {
            relay,
            peer: to,
            start,
            end,
        } => {
            assert_eq!((relay, to), (0, peer));
            assert_eq!(&ind[start..end], b"hello peer");
        }
        other => panic!("expected relay, got {other:?}"),
    }
    // Another port on the same peer IP is covered by the same permission.
    let other_port = SocketAddr::new(peer.ip(), 6000);
    let framed = h.peer_packet(0, other_port, b"hello client").unwrap();
    let msg = Message::parse(&framed).unwrap();
    assert_eq!((msg.method, msg.class), (method::DATA, Class::Indication));
    let attrs = msg.attributes().unwrap();
    assert_eq!(attrs.data, Some(&b"hello client"[..]));
    assert_eq!(attrs.peer_address().unwrap().unwrap(), other_port);

    h.advance(299);
    assert!(h.peer_packet(0, peer, b"still").is_some());
    h.advance(2);
    assert!(
        h.peer_packet(0, peer, b"late").is_none(),
        "permission lapsed at 300 s"
    );
    assert_eq!(h.send_raw(c.flow, &send(&mut c)), ClientAction::None);
}

#[test]
fn channels_relay_both_ways_follow_binding_rules_and_expire() {
    let mut h = harness(Options::default());
    let mut c = Client::rest(4000, "alice", valid_expiry());
    h.allocate(&mut c);
    let peer = public_peer();
    let peer2: SocketAddr = "198.100.1.2:5000".parse().unwrap();
    assert_eq!(h.channel_bind(&mut c, 0x3FFF, peer).error_code(), Some(400));
    assert_eq!(h.channel_bind(&mut c, 0x8000, peer).error_code(), Some(400));
    let peer4: SocketAddr = "198.100.1.4:5000".parse().unwrap();
    for number in [0x5000, 0x7FFF] {
        assert_eq!(
            h.channel_bind(&mut c, number, peer4).error_code(),
            Some(400),
            "RFC 7983 space {number:#06x}"
        );
    }
    let no_peer = h.call(&mut c, method::CHANNEL_BIND, |w| {
        w.attr_u32(attr::CHANNEL_NUMBER, 0x4000 << 16).unwrap()
    });
    assert_eq!(no_peer.error_code(), Some(400));
    assert_eq!(h.channel_bind(&mut c, 0x4000, peer).class, Class::Success);
    assert_eq!(
        h.channel_bind(&mut c, 0x4000, peer).class,
        Class::Success,
        "refresh"
    );
    assert_eq!(
        h.channel_bind(&mut c, 0x4000, peer2).error_code(),
        Some(400)
    );
    assert_eq!(h.channel_bind(&mut c, 0x4001, peer).error_code(), Some(400));
    assert_eq!(h.channel_bind(&mut c, 0x4001, peer2).class, Class::Success);

    let frame = [0x40, 0x00, 0x00, 0x03, b'a', b'b', b'c'];
    assert_eq!(
        h.send_raw(c.flow, &frame),
        ClientAction::Relay {
            relay: 0,
            peer,
            start: 4,
            end: 7
        }
    );
    let back = h.peer_packet(0, peer, b"xyz").unwrap();
    assert_eq!(back, [0x40, 0x00, 0x00, 0x03, b'x', b'y', b'z']);
    // An unbound channel number is dropped.
    assert_eq!(
        h.send_raw(c.flow, &[0x40, 0x05, 0, 1, 9]),
        ClientAction::None
    );

    // Keep the permission alive with CreatePermission but let the channel lapse.
    for _ in 0..2 {
        h.advance(250);
        assert_eq!(h.create_permission(&mut c, peer).class, Class::Success);
        assert_eq!(
            h.call(&mut c, method::REFRESH, |_| {}).class,
            Class::Success
        );
    }
    h.advance(101);
    assert_eq!(
        h.send_raw(c.flow, &frame),
        ClientAction::None,
        "channel lapsed at 600 s"
    );
    let back = h.peer_packet(0, peer, b"xyz").unwrap();
    assert_eq!(Message::parse(&back).unwrap().method, method::DATA);
    // After expiry the number can go to another peer.
    let peer3: SocketAddr = "198.100.1.3:5000".parse().unwrap();
    assert_eq!(h.channel_bind(&mut c, 0x4000, peer3).class, Class::Success);
}

#[test]
fn allocations_expire_and_refresh_extends_or_deletes() {
    let mut h = harness(Options::default());
    let mut c = Client::rest(4000, "alice", valid_expiry());
    h.allocate(&mut c);
    h.server.poll_event();
    h.advance(500);
    assert_eq!(h.server.allocation_count(), 1);
    let resp = h.call(&mut c, method::REFRESH, |w| {
        w.attr_u32(attr::LIFETIME, 100_000).unwrap()
    });
    assert_eq!(resp.lifetime(), 3600, "capped by max-allocate-lifetime");
    h.advance(3599);
    assert_eq!(h.server.allocation_count(), 1);
    h.advance(1);
    assert_eq!(h.server.allocation_count(), 0);
    assert_eq!(h.binder.closed, vec![0]);
    assert!(matches!(
        h.server.poll_event(),
        Some(Event::AllocationEnded {
            reason: EndReason::Expired,
            ..
        })
    ));
    assert_eq!(h.server.shared.ports.in_use(), 0);

    // The first credential has expired by now (4100 s in); use a longer one.
    let mut d = Client::rest(4001, "alice", UNIX_START + 86_400);
    assert_eq!(h.allocate(&mut d).class, Class::Success);
    let resp = h.call(&mut d, method::REFRESH, |w| {
        w.attr_u32(attr::LIFETIME, 0).unwrap()
    });
    assert_eq!((resp.class, resp.lifetime()), (Class::Success, 0));
    assert_eq!(h.server.allocation_count(), 0);
    assert_eq!(
        h.call(&mut d, method::REFRESH, |_| {}).error_code(),
        Some(437)
    );
}

#[test]
fn refresh_past_credential_expiry_depends_on_strict_expiry() {
    for strict in [false, true] {
        let mut h = harness(Options {
            strict_expiry: strict,
            ..Options::default()
        });
        let mut c = Client::rest(4000, "alice", UNIX_START + 100);
        assert_eq!(h.allocate(&mut c).class, Class::Success);
        h.advance(200);
        let resp = h.call(&mut c, method::REFRESH, |_| {});
        if strict {
            assert_eq!(resp.error_code(), Some(401));
            assert_eq!(
                h.create_permission(&mut c, public_peer()).error_code(),
                Some(401)
            );
        } else {
            assert_eq!(resp.class, Class::Success);
        }
    }
}

#[test]
fn quotas_give_486() {
    let mut h = harness(Options {
        user_quota: 1,
        total_quota: 2,
        ..Options::default()
    });
    let mut a1 = Client::rest(4000, "alice", valid_expiry());
    let mut a2 = Client::rest(4001, "alice", valid_expiry() + 5);
    let mut b1 = Client::rest(4002, "bob", valid_expiry());
    let mut c1 = Client::rest(4003, "carol", valid_expiry());
    assert_eq!(h.allocate(&mut a1).class, Class::Success);
    assert_eq!(
        h.allocate(&mut a2).error_code(),
        Some(486),
        "same user id, other timestamp"
    );
    assert_eq!(h.allocate(&mut b1).class, Class::Success);
    assert_eq!(h.allocate(&mut c1).error_code(), Some(486), "total quota");
    h.call(&mut a1, method::REFRESH, |w| {
        w.attr_u32(attr::LIFETIME, 0).unwrap()
    });
    assert_eq!(h.allocate(&mut a2).class, Class::Success, "quota released");
}

#[test]
fn full_port_range_gives_508_and_busy_ports_are_skipped() {
    let mut h = harness(Options {
        ports: (50000, 50001),
        ..Options::default()
    });
    h.binder.busy.insert(50000);
    let mut a = Client::rest(4000, "a", valid_expiry());
    let mut b = Client::rest(4001, "b", valid_expiry());
    let resp = h.allocate(&mut a);
    assert_eq!(resp.xor_addr(attr::XOR_RELAYED_ADDRESS).port(), 50001);
    assert_eq!(h.allocate(&mut b).error_code(), Some(508));
}

#[test]
fn even_port_reservation_token_round_trip() {
    let mut h = harness(Options::default());
    let mut rtp = Client::rest(4000, "alice", valid_expiry());
    let resp = h.call(&mut rtp, method::ALLOCATE, |w| {
        w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap();
        w.attr(attr::EVEN_PORT, &[0x80]).unwrap();
    });
    let port = resp.xor_addr(attr::XOR_RELAYED_ADDRESS).port();
    assert_eq!(port % 2, 0);
    let token: [u8; 8] = resp
        .attr(attr::RESERVATION_TOKEN)
        .unwrap()
        .try_into()
        .unwrap();

    let mut rtcp = Client::rest(4001, "alice", valid_expiry());
    let resp = h.call(&mut rtcp, method::ALLOCATE, |w| {
        w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap();
        w.attr(attr::RESERVATION_TOKEN, &token).unwrap();
    });
    assert_eq!(resp.xor_addr(attr::XOR_RELAYED_ADDRESS).port(), port + 1);

    // A token is good once, and keeps the family of the allocation that reserved it.
    let mut rtp6 = Client::rest(4003, "alice", valid_expiry());
    let resp = h.call(&mut rtp6, method::ALLOCATE, |w| {
        w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap();
        w.attr_u32(attr::REQUESTED_ADDRESS_FAMILY, 2 << 24).unwrap();
        w.attr(attr::EVEN_PORT, &[0x80]).unwrap();
    });
    let port6 = resp.xor_addr(attr::XOR_RELAYED_ADDRESS).port();
    let token6: [u8; 8] = resp
        .attr(attr::RESERVATION_TOKEN)
        .unwrap()
        .try_into()
        .unwrap();
    let mut rtcp6 = Client::rest(4004, "alice", valid_expiry());
    let resp = h.call(&mut rtcp6, method::ALLOCATE, |w| {
        w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap();
        w.attr(attr::RESERVATION_TOKEN, &token6).unwrap();
    });
    let relayed = resp.xor_addr(attr::XOR_RELAYED_ADDRESS);
    assert!(relayed.is_ipv6());
    assert_eq!(relayed.port(), port6 + 1);

    let mut again = Client::rest(4002, "alice", valid_expiry());
    let resp = h.call(&mut again, method::ALLOCATE, |w| {
        w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap();
        w.attr(attr::RESERVATION_TOKEN, &token).unwrap();
    });
    assert_eq!(resp.error_code(), Some(508));
}

#[test]
fn a_reserved_port_is_claimed_on_the_address_that_reserved_it() {
    // With several relay addresses per family the binder takes turns; the RTCP half of an
    // EVEN-PORT pair must still land beside its RTP half.
    let mut h = harness(Options::default());
    let mut rtp = Client::rest(4000, "alice", valid_expiry());
    let resp = h.call(&mut rtp, method::ALLOCATE, |w| {
        w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap();
        w.attr(attr::EVEN_PORT, &[0x80]).unwrap();
    });
    let token: [u8; 8] = resp
        .attr(attr::RESERVATION_TOKEN)
        .unwrap()
        .try_into()
        .unwrap();
    let mut rtcp = Client::rest(4001, "alice", valid_expiry());
    let resp = h.call(&mut rtcp, method::ALLOCATE, |w| {
        w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap();
        w.attr(attr::RESERVATION_TOKEN, &token).unwrap();
    });
    assert!(resp.error_code().is_none());
    assert_eq!(
        h.binder.requests,
        [
            RelayAt::Family(Family::V4),
            RelayAt::Ip("192.0.2.10".parse().unwrap())
        ]
    );
}

#[test]
fn unclaimed_reservations_return_their_port() {
    let mut h = harness(Options {
        ports: (50000, 50001),
        ..Options::default()
    });
    let mut rtp = Client::rest(4000, "alice", valid_expiry());
    h.call(&mut rtp, method::ALLOCATE, |w| {
        w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap();
        w.attr(attr::EVEN_PORT, &[0x80]).unwrap();
    });
    let mut other = Client::rest(4001, "bob", valid_expiry());
    assert_eq!(
        h.allocate(&mut other).error_code(),
        Some(508),
        "50001 is reserved"
    );
    h.advance(40);
    let resp = h.allocate(&mut other);
    assert_eq!(resp.xor_addr(attr::XOR_RELAYED_ADDRESS).port(), 50001);
}

#[test]
fn external_ip_is_advertised() {
    let settings = Settings {
        external_ips: vec![ExternalMapping {
            public: "198.51.100.77".parse().unwrap(),
            private: Some("192.0.2.10".parse().unwrap()),
        }],
        ..Settings::default()
    };
    let mut h = harness(Options {
        settings,
        ..Options::default()
    });
    let mut c = Client::rest(4000, "alice", valid_expiry());
    let resp = h.allocate(&mut c);
    let relayed = resp.xor_addr(attr::XOR_RELAYED_ADDRESS);
    assert_eq!(relayed.ip(), "198.51.100.77".parse::<IpAddr>().unwrap());
}

#[test]
fn malformed_input_is_dropped_without_harming_a_live_session() {
    let mut h = harness(Options::default());
    let mut c = Client::rest(4000, "alice", valid_expiry());
    h.allocate(&mut c);
    h.channel_bind(&mut c, 0x4000, public_peer());
    let stranger = flow(9999);
    let mut rng = 0x1234_5678_u64;
    for len in 0..300usize {
        let junk: Vec<u8> = (0..len)
            .map(|_| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng as u8
            })
            .collect();
        assert!(
            !matches!(h.send_raw(stranger, &junk), ClientAction::Relay { .. }),
            "junk must never be relayed"
        );
        // Junk on the live flow must not be relayed unless it happens to be valid ChannelData.
        let _ = h.send_raw(c.flow, &junk);
    }
    // Truncated header, overlong ChannelData, wrong FINGERPRINT.
    assert_eq!(
        h.send_raw(stranger, &[0, 1, 0, 0, 0x21, 0x12]),
        ClientAction::None
    );
    assert_eq!(
        h.send_raw(c.flow, &[0x40, 0, 0, 200, 1, 2]),
        ClientAction::None
    );
    let mut buf = [0u8; 64];
    let mut w = MessageWriter::new(&mut buf, method::BINDING, Class::Request, [5; 12]).unwrap();
    w.fingerprint().unwrap();
    let n = w.finish();
    buf[n - 1] ^= 0xFF;
    assert_eq!(h.send_raw(stranger, &buf[..n]), ClientAction::None);
    // A request whose attributes overrun gets 400.
    let mut w = MessageWriter::new(&mut buf, method::ALLOCATE, Class::Request, [6; 12]).unwrap();
    w.attr(attr::SOFTWARE, b"abcd").unwrap();
    let n = w.finish();
    buf[22..24].copy_from_slice(&100u16.to_be_bytes());
    assert_eq!(
        h.reply(stranger, &buf[..n]).unwrap().error_code(),
        Some(400)
    );

    assert!(h.server.stats().dropped_malformed.packets.get() > 0);
    let frame = [0x40, 0x00, 0x00, 0x01, 7];
    assert!(matches!(
        h.send_raw(c.flow, &frame),
        ClientAction::Relay { .. }
    ));
}

#[test]
fn draining_refuses_new_allocations_and_keeps_old_ones() {
    let mut h = harness(Options::default());
    let mut c = Client::rest(4000, "alice", valid_expiry());
    h.allocate(&mut c);
    h.server.set_draining(true);
    let mut d = Client::rest(4001, "alice", valid_expiry());
    assert_eq!(h.allocate(&mut d).error_code(), Some(508));
    assert_eq!(
        h.call(&mut c, method::REFRESH, |_| {}).class,
        Class::Success
    );

    let settings = Settings {
        alternate_servers: vec!["198.51.100.9:3478".parse().unwrap()],
        ..Settings::default()
    };
    let mut h = harness(Options {
        settings,
        ..Options::default()
    });
    h.server.set_draining(true);
    let mut e = Client::rest(4002, "alice", valid_expiry());
    let resp = h.allocate(&mut e);
    assert_eq!(resp.error_code(), Some(300));
    assert!(resp.attr(attr::ALTERNATE_SERVER).is_some());
}

#[test]
fn no_auth_mode_needs_no_credentials() {
    let mut h = harness(Options {
        no_auth: true,
        ..Options::default()
    });
    let f = flow(4000);
    let mut buf = [0u8; 64];
    let mut w = MessageWriter::new(&mut buf, method::ALLOCATE, Class::Request, [7; 12]).unwrap();
    w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap();
    let n = w.finish();
    let resp = h.reply(f, &buf[..n]).unwrap();
    assert_eq!(resp.class, Class::Success);
    assert!(resp.attr(attr::MESSAGE_INTEGRITY).is_none());
}

#[test]
fn stream_channel_data_is_padded() {
    let mut h = harness(Options::default());
    let mut c = Client::rest(4000, "alice", valid_expiry());
    let tid = c.tid();
    let req = c.request(method::ALLOCATE, tid, |w| {
        w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap()
    });
    let now = h.now;
    let action =
        h.server
            .handle_client(now, c.flow, Transport::Tcp, &req, &mut h.out, &mut h.binder);
    let ClientAction::Reply(n) = action else {
        panic!()
    };
    let challenge = Message::parse(&h.out[..n]).unwrap().attributes().unwrap();
    c.nonce = challenge.nonce.map(|n| n.to_vec());
    let tid = c.tid();
    let req = c.request(method::ALLOCATE, tid, |w| {
        w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap()
    });
    let action =
        h.server
            .handle_client(now, c.flow, Transport::Tcp, &req, &mut h.out, &mut h.binder);
    assert!(matches!(action, ClientAction::Reply(_)));
    h.channel_bind(&mut c, 0x4000, public_peer());
    let framed = h.peer_packet(0, public_peer(), b"abcde").unwrap();
    assert_eq!(framed.len(), 12);
    assert_eq!(&framed[..4], &[0x40, 0x00, 0x00, 0x05]);
    assert_eq!(&framed[9..], &[0, 0, 0]);
    h.server.handle_flow_closed(now, c.flow, &mut h.binder);
    assert_eq!(h.server.allocation_count(), 0);
}

#[test]
fn peer_data_for_unknown_relay_is_dropped() {
    let mut h = harness(Options::default());
    assert!(h.peer_packet(7, public_peer(), b"x").is_none());
    let _ = h.start;
}

fn config_with(secrets: &[&str], settings: Settings) -> Arc<CoreConfig> {
    Arc::new(CoreConfig {
        auth: Authenticator::new(AuthSettings {
            realm: REALM.into(),
            no_auth: false,
            rest_secrets: secrets.iter().map(|s| s.as_bytes().to_vec()).collect(),
            rest_separator: ':',
            users: vec![],
            strict_expiry: false,
            rest_hmac: RestHmac::Sha1,
        }),
        peers: PeerPolicy::new(&PeerPolicySettings::default()),
        settings,
        revoked_users: Default::default(),
        revoked_secrets: Default::default(),
    })
}

#[test]
fn max_bps_limits_each_direction_in_virtual_time() {
    let settings = Settings {
        max_bps: 10_000,
        ..Settings::default()
    };
    let mut h = harness(Options {
        settings,
        ..Options::default()
    });
    let mut c = Client::rest(4000, "alice", valid_expiry());
    h.allocate(&mut c);
    h.channel_bind(&mut c, 0x4000, public_peer());
    let mut frame = vec![0x40, 0x00, 0x03, 0xE8];
    frame.extend([7u8; 1000]);
    let (mut to_peer, mut to_client) = (0, 0);
    // Offer 50 kB/s each way for 10 virtual seconds.
    for _ in 0..500 {
        h.now += Duration::from_millis(20);
        if matches!(h.send_raw(c.flow, &frame), ClientAction::Relay { .. }) {
            to_peer += 1000;
        }
        if h.peer_packet(0, public_peer(), &[1u8; 1000]).is_some() {
            to_client += 1000;
        }
    }
    for got in [to_peer, to_client] {
        let rate = got as f64 / 10.0;
        assert!((9_000.0..=11_000.0).contains(&rate), "rate {rate} B/s");
    }
    assert_eq!(
        h.server.stats().dropped_bandwidth.packets.get(),
        1000 - (to_peer + to_client) / 1000
    );
}

#[test]
fn set_config_swaps_secrets_without_touching_live_allocations() {
    let mut h = harness(Options::default());
    let mut live = Client::rest(4000, "alice", valid_expiry());
    assert_eq!(h.allocate(&mut live).class, Class::Success);
    h.channel_bind(&mut live, 0x4000, public_peer());
    let now = h.now;
    h.server
        .set_config(config_with(&["east"], Settings::default()), now);

    // The old secret no longer authenticates new requests...
    let mut old = Client::rest(4001, "bob", valid_expiry());
    assert_eq!(h.allocate(&mut old).error_code(), Some(401));
    // ...the new one does...
    let username = format!("{}:carol", valid_expiry());
    let mut new = Client {
        flow: flow(4002),
        password: rest_password(b"east", &username),
        username,
        nonce: None,
        next_tid: 1,
    };
    assert_eq!(h.allocate(&mut new).class, Class::Success);
    // ...and the live allocation keeps relaying.
    let frame = [0x40, 0x00, 0x00, 0x01, 9];
    assert!(matches!(
        h.send_raw(live.flow, &frame),
        ClientAction::Relay { .. }
    ));
    assert!(h.peer_packet(0, public_peer(), b"x").is_some());
}

#[test]
fn revoking_a_user_or_secret_ends_sessions_and_refuses_new_ones() {
    let mut h = harness(Options::default());
    let mut alice = Client::rest(4000, "alice", valid_expiry());
    let mut bob = Client::rest(4001, "bob", valid_expiry());
    h.allocate(&mut alice);
    h.allocate(&mut bob);
    let now = h.now;
    let ended = h
        .server
        .end_allocations_where(now, &mut h.binder, |a| &*a.user_id == "alice");
    assert_eq!(ended, 1);
    let mut revoked = config_with(&[SECRET], Settings::default());
    Arc::get_mut(&mut revoked)
        .unwrap()
        .revoked_users
        .insert("alice".into());
    h.server.set_config(revoked, now);
    let mut again = Client::rest(4002, "alice", valid_expiry());
    assert_eq!(h.allocate(&mut again).error_code(), Some(401));
    assert_eq!(h.server.stats().auth_revoked.get(), 1);
    assert_eq!(h.server.allocation_count(), 1, "bob is untouched");

    let id = super::super::auth::secret_id(SECRET.as_bytes());
    let ended = h
        .server
        .end_allocations_where(now, &mut h.binder, |a| a.secret_id == Some(id));
    assert_eq!(ended, 1);
    assert_eq!(h.server.allocation_count(), 0);
    assert!(matches!(
        h.server.poll_event(),
        Some(Event::AllocationCreated { .. })
    ));
}

#[test]
fn traffic_counters_are_exact() {
    let mut h = harness(Options::default());
    let mut c = Client::rest(4000, "alice", valid_expiry());
    h.allocate(&mut c);
    h.channel_bind(&mut c, 0x4000, public_peer());
    for len in [1usize, 100, 1200] {
        let mut frame = vec![0x40, 0x00];
        frame.extend((len as u16).to_be_bytes());
        frame.extend(vec![0u8; len]);
        assert!(matches!(
            h.send_raw(c.flow, &frame),
            ClientAction::Relay { .. }
        ));
        assert!(h.peer_packet(0, public_peer(), &vec![0u8; len]).is_some());
    }
    let s = h.server.stats();
    assert_eq!(
        (s.to_peers.packets.get(), s.to_peers.bytes.get()),
        (3, 1301)
    );
    assert_eq!(
        (s.from_clients.packets.get(), s.from_clients.bytes.get()),
        (3, 1301)
    );
    assert_eq!(
        (s.to_clients.packets.get(), s.to_clients.bytes.get()),
        (3, 1301)
    );
    assert_eq!(s.active_allocations(Transport::Udp), 1);
}

/// Structured garbage: well-framed STUN messages with random methods, classes and attributes
/// (some valid, most not), ChannelData with random channels and lengths, and peer datagrams on
/// random relays, from several flows with and without allocations. Nothing may panic, and a
/// live session must still relay afterwards.
#[test]
fn random_structured_input_never_panics() {
    let mut h = harness(Options::default());
    let mut live = Client::rest(4000, "alice", valid_expiry());
    h.allocate(&mut live);
    h.channel_bind(&mut live, 0x4000, public_peer());
    let mut rng = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let attr_types = [
        attr::USERNAME,
        attr::REALM,
        attr::NONCE,
        attr::MESSAGE_INTEGRITY,
        attr::LIFETIME,
        attr::REQUESTED_TRANSPORT,
        attr::REQUESTED_ADDRESS_FAMILY,
        attr::EVEN_PORT,
        attr::RESERVATION_TOKEN,
        attr::DONT_FRAGMENT,
        attr::CHANNEL_NUMBER,
        attr::XOR_PEER_ADDRESS,
        attr::DATA,
        attr::FINGERPRINT,
        attr::SOFTWARE,
        0x7777,
        0xC0DE,
    ];
    let mut buf = vec![0u8; 1500];
    for round in 0..20_000u32 {
        let flow = if round % 3 == 0 {
            live.flow
        } else {
            flow(5000 + (next() % 8) as u16)
        };
        let kind = next() % 4;
        let data: Vec<u8> = if kind < 3 {
            let methods = [
                method::BINDING,
                method::ALLOCATE,
                method::REFRESH,
                method::SEND,
                method::DATA,
                method::CREATE_PERMISSION,
                method::CHANNEL_BIND,
                0x0FF,
            ];
            let classes = [
                Class::Request,
                Class::Indication,
                Class::Success,
                Class::Error,
            ];
            let m = methods[(next() % methods.len() as u64) as usize];
            let c = classes[(next() % 4) as usize];
            let mut w = MessageWriter::new(&mut buf, m, c, [(round % 251) as u8; 12]).unwrap();
            for _ in 0..(next() % 6) {
                let t = attr_types[(next() % attr_types.len() as u64) as usize];
                let len = (next() % 40) as usize;
                let fill = next() as u8;
                if w.attr_with(t, len, |o| o.fill(fill)).is_err() {
                    break;
                }
            }
            let n = w.finish();
            let mut v = buf[..n].to_vec();
            if kind == 2 && n > 20 {
                // Corrupt one byte past the header.
                let at = 20 + (next() as usize % (n - 20));
                v[at] ^= next() as u8 | 1;
            }
            v
        } else {
            let mut v = vec![0x40 | (next() % 0x40) as u8, next() as u8];
            let len = (next() % 300) as u16;
            v.extend(len.to_be_bytes());
            v.extend(std::iter::repeat_n(7u8, (next() % 310) as usize));
            v
        };
        let _ = h.send_raw(flow, &data);
        let _ = h.peer_packet((next() % 4) as u32, public_peer(), &data);
        if round % 1000 == 0 {
            h.advance(1);
        }
    }
    let stats = h.server.stats();
    assert!(
        stats.dropped_malformed.packets.get() > 1000,
        "corrupted input was seen"
    );
    assert!(stats.error_responses.get() > 1000, "requests were answered");
    assert!(stats.binding_requests.get() > 100);
    let frame = [0x40, 0x00, 0x00, 0x02, 1, 2];
    assert!(matches!(
        h.send_raw(live.flow, &frame),
        ClientAction::Relay { .. }
    ));
}

#[test]
fn refreshing_in_a_loop_keeps_one_timer_entry_per_allocation() {
    // Without credentials the 100,000 round trips need no HMAC; the expiry path is the same.
    let mut h = harness(Options {
        no_auth: true,
        ..Options::default()
    });
    let mut a = Client::rest(4000, "alice", valid_expiry());
    let mut b = Client::rest(4001, "bob", valid_expiry());
    assert_eq!(h.allocate(&mut a).class, Class::Success);
    assert_eq!(h.allocate(&mut b).class, Class::Success);
    for i in 0..100_000u32 {
        let resp = h.call(&mut a, method::REFRESH, |w| {
            w.attr_u32(attr::LIFETIME, 600 + i % 7).unwrap()
        });
        assert_eq!(resp.class, Class::Success);
        assert!(h.server.timer_entries() <= h.server.allocation_count());
    }
    assert_eq!(h.server.timer_entries(), 2);
    // Allocate/delete cycles on one slot leave nothing behind either.
    for _ in 0..1_000 {
        let resp = h.call(&mut b, method::REFRESH, |w| {
            w.attr_u32(attr::LIFETIME, 0).unwrap()
        });
        assert_eq!(resp.lifetime(), 0);
        assert_eq!(h.allocate(&mut b).class, Class::Success);
    }
    assert_eq!(h.server.timer_entries(), h.server.allocation_count());
    // The moved deadlines still end the allocations on time: b's at 600 s, a's last Refresh
    // asked for 604 s.
    h.advance(601);
    assert_eq!(h.server.allocation_count(), 1);
    assert!(h.server.has_allocation(a.flow));
    h.advance(2);
    assert_eq!(h.server.allocation_count(), 1);
    h.advance(1);
    assert_eq!(h.server.allocation_count(), 0);
    assert_eq!(h.server.timer_entries(), 0);
}

/// A signed request whose USERNAME and REALM the test chooses (the key uses the real realm).
fn signed_request_with(
    c: &mut Client,
    method: u16,
    username: &[u8],
    realm: Option<&[u8]>,
    fill: impl FnOnce(&mut MessageWriter<'_>),
) -> Vec<u8> {
    let tid = c.tid();
    let mut buf = vec![0u8; 16 * 1024];
    let mut w = MessageWriter::new(&mut buf, method, Class::Request, tid).unwrap();
    fill(&mut w);
    w.attr(attr::USERNAME, username).unwrap();
    if let Some(realm) = realm {
        w.attr(attr::REALM, realm).unwrap();
    }
    w.attr(attr::NONCE, c.nonce.as_deref().expect("challenged first"))
        .unwrap();
    let key = long_term_key(&c.username, REALM, &c.password);
    w.integrity(&key).unwrap();
    let n = w.finish();
    buf.truncate(n);
    buf
}

fn challenge(h: &mut Harness, c: &mut Client) {
    let tid = c.tid();
    let req = c.request(method::ALLOCATE, tid, |w| {
        w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap()
    });
    let resp = h.reply(c.flow, &req).unwrap();
    assert_eq!(resp.error_code(), Some(401));
    c.nonce = Some(resp.attr(attr::NONCE).unwrap().to_vec());
}

#[test]
fn usernames_over_513_bytes_are_refused_on_every_transport() {
    for transport in [Transport::Udp, Transport::Tcp, Transport::Tls] {
        for no_auth in [false, true] {
            let mut h = harness(Options {
                no_auth,
                ..Options::default()
            });
            let mut c = Client::rest(4000, "alice", valid_expiry());
            if !no_auth {
                challenge(&mut h, &mut c);
            } else {
                c.nonce = Some(b"unused".to_vec());
            }
            let long = format!("{}:{}", valid_expiry(), "u".repeat(10_000));
            let req = signed_request_with(
                &mut c,
                method::ALLOCATE,
                long.as_bytes(),
                Some(REALM.as_bytes()),
                |w| w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap(),
            );
            let now = h.now;
            let action =
                h.server
                    .handle_client(now, c.flow, transport, &req, &mut h.out, &mut h.binder);
            let ClientAction::Reply(n) = action else {
                panic!("expected a reply, got {action:?}");
            };
            let msg = Message::parse(&h.out[..n]).unwrap();
            let resp = Response {
                raw: h.out[..n].to_vec(),
                class: msg.class,
                method: msg.method,
                tid: msg.tid,
            };
            let code = resp.error_code();
            assert_eq!(code, Some(400), "{transport:?} no_auth={no_auth}");
            assert_eq!(h.server.allocation_count(), 0);
        }
    }
    // 513 bytes is still a username.
    let mut h = harness(Options::default());
    let user = format!("{}:{}", valid_expiry(), "u".repeat(513 - 11));
    assert_eq!(user.len(), 513);
    let mut c = Client {
        flow: flow(4001),
        password: rest_password(SECRET.as_bytes(), &user),
        username: user,
        nonce: None,
        next_tid: 1,
    };
    assert_eq!(h.allocate(&mut c).class, Class::Success);
}

#[test]
fn a_wrong_or_missing_realm_is_refused() {
    let mut h = harness(Options::default());
    let mut c = Client::rest(4000, "alice", valid_expiry());
    challenge(&mut h, &mut c);
    let username = c.username.clone();
    for realm in [Some(&b"other.realm"[..]), Some(&b""[..])] {
        let req = signed_request_with(&mut c, method::ALLOCATE, username.as_bytes(), realm, |w| {
            w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap()
        });
        let resp = h.reply(c.flow, &req).unwrap();
        assert_eq!(resp.error_code(), Some(401), "{realm:?}");
        assert_eq!(resp.attr(attr::REALM), Some(REALM.as_bytes()));
    }
    let req = signed_request_with(&mut c, method::ALLOCATE, username.as_bytes(), None, |w| {
        w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap()
    });
    assert_eq!(h.reply(c.flow, &req).unwrap().error_code(), Some(400));
    assert_eq!(h.server.allocation_count(), 0);
    assert_eq!(h.allocate(&mut c).class, Class::Success);
}

#[test]
fn a_signed_allocate_replayed_from_another_port_or_ip_is_refused() {
    let mut h = harness(Options {
        user_quota: 2,
        ..Options::default()
    });
    let mut victim = Client::rest(4000, "alice", valid_expiry());
    challenge(&mut h, &mut victim);
    let tid = victim.tid();
    let signed = victim.request(method::ALLOCATE, tid, |w| {
        w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap()
    });
    assert_eq!(h.reply(victim.flow, &signed).unwrap().class, Class::Success);
    // The same bytes from other 5-tuples within the nonce lifetime.
    let other_port = flow(4001);
    let mut other_ip = flow(4000);
    other_ip.remote.set_ip("203.0.113.8".parse().unwrap());
    let mut other_socket = flow(4000);
    other_socket.socket = 1;
    for f in [other_port, other_ip, other_socket] {
        let resp = h.reply(f, &signed).unwrap();
        assert_eq!(resp.error_code(), Some(438), "{f:?}");
        assert!(resp.attr(attr::NONCE).is_some());
    }
    assert_eq!(h.server.allocation_count(), 1);
    assert_eq!(h.server.stats().auth_stale_nonce.get(), 3);
}

/// Largest response/request size ratio allowed for what an unauthenticated (possibly spoofed)
/// source can draw, per request type. Binding: the IPv6 XOR-MAPPED-ADDRESS answer to a bare
/// 20-byte request (44 bytes). Allocate: the 401 with REALM and NONCE to a 28-byte Allocate
/// (68 bytes; `sha256-integrity` adds the 13-byte nonce cookie and the 12-byte
/// PASSWORD-ALGORITHMS, 28 bytes more, which is why it is off by default).
/// Refresh, CreatePermission, ChannelBind: the same 401 to a bare 20-byte request, which only
/// a source spoofing a 5-tuple that holds an allocation gets (any other draws a 28-byte 437).
const MAX_RATIO: [(&str, f64); 6] = [
    ("Binding", 2.25),
    ("Allocate", 2.5),
    ("Refresh", 3.5),
    ("CreatePermission", 3.5),
    ("ChannelBind", 3.5),
    ("other", 1.5),
];

#[test]
fn worst_unauthenticated_amplification_per_message_type_is_bounded() {
    let mut h = harness(Options::default());
    let v4 = flow(4000);
    let v6 = Flow {
        socket: 0,
        remote: "[2001:db8::7]:4000".parse().unwrap(),
    };
    // A live allocation on a third flow, whose 5-tuple an attacker might spoof.
    let mut live = Client::rest(4100, "alice", valid_expiry());
    h.allocate(&mut live);
    let peer: SocketAddr = public_peer();
    type Fill = fn(&mut MessageWriter<'_>, SocketAddr);
    let variants: [(&str, Fill); 7] = [
        ("bare", |_, _| {}),
        ("fingerprint", |w, _| w.fingerprint().unwrap()),
        ("transport", |w, _| {
            w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap()
        }),
        ("transport+fingerprint", |w, _| {
            w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap();
            w.fingerprint().unwrap()
        }),
        ("peer", |w, p| {
            w.xor_address(attr::XOR_PEER_ADDRESS, &p).unwrap()
        }),
        ("unknown required attribute", |w, _| {
            w.attr(0x7ABC, &[]).unwrap()
        }),
        ("software", |w, _| w.attr(attr::SOFTWARE, b"abcd").unwrap()),
    ];
    let methods = [
        ("Binding", method::BINDING),
        ("Allocate", method::ALLOCATE),
        ("Refresh", method::REFRESH),
        ("CreatePermission", method::CREATE_PERMISSION),
        ("ChannelBind", method::CHANNEL_BIND),
        ("other", 0x00AB),
    ];
    let mut worst: HashMap<&str, (f64, String)> = HashMap::new();
    let mut tid = 0u32;
    for (name, m) in methods {
        for f in [v4, v6, live.flow] {
            for (variant, fill) in &variants {
                tid += 1;
                let mut id = [7u8; 12];
                id[..4].copy_from_slice(&tid.to_be_bytes());
                let mut buf = [0u8; 256];
                let mut w = MessageWriter::new(&mut buf, m, Class::Request, id).unwrap();
                fill(&mut w, peer);
                let n = w.finish();
                let req = buf[..n].to_vec();
                let Some(resp) = h.reply(f, &req) else {
                    continue;
                };
                let ratio = resp.raw.len() as f64 / req.len() as f64;
                let what = format!(
                    "{variant} from {} ({} -> {} bytes, code {:?})",
                    f.remote,
                    req.len(),
                    resp.raw.len(),
                    resp.error_code()
                );
                let entry = worst.entry(name).or_insert((0.0, String::new()));
                if ratio > entry.0 {
                    *entry = (ratio, what);
                }
            }
        }
    }
    // Nothing above happened to touch the live allocation.
    assert!(h.server.has_allocation(live.flow));
    for (name, bound) in MAX_RATIO {
        let (ratio, what) = worst.get(name).cloned().expect("every type was answered");
        println!("{name:17} worst {ratio:.2}x  bound {bound:.2}x  {what}");
        assert!(ratio <= bound, "{name}: {ratio:.2}x > {bound}x: {what}");
    }
    // The first answer of an ordinary Allocate stays at coturn's 68 bytes, and carries no
    // SOFTWARE and no reason phrase; with the SHA-256 offer it grows by the cookie and
    // PASSWORD-ALGORITHMS.
    let mut c = Client::rest(4200, "bob", valid_expiry());
    let t = c.tid();
    let req = c.request(method::ALLOCATE, t, |w| {
        w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap()
    });
    let resp = h.reply(c.flow, &req).unwrap();
    assert_eq!(resp.error_code(), Some(401));
    assert_eq!(resp.raw.len(), 68);
    assert!(resp.attr(attr::SOFTWARE).is_none());
    assert!(resp.attr(attr::PASSWORD_ALGORITHMS).is_none());
    assert_eq!(resp.attr(attr::ERROR_CODE).map(<[u8]>::len), Some(4));
    let mut h = harness(sha256_offered());
    let mut c = Client::rest(4200, "bob", valid_expiry());
    let t = c.tid();
    let req = c.request(method::ALLOCATE, t, |w| {
        w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap()
    });
    let resp = h.reply(c.flow, &req).unwrap();
    assert_eq!(resp.error_code(), Some(401));
    assert_eq!(resp.raw.len(), 96);
}

/// The harness with `sha256-integrity` on.
fn sha256_offered() -> Options {
    Options {
        settings: Settings {
            sha256_integrity: true,
            ..Settings::default()
        },
        ..Options::default()
    }
}

#[test]
fn include_reason_string_puts_the_phrase_back() {
    let settings = Settings {
        include_reason: true,
        ..Settings::default()
    };
    let mut h = harness(Options {
        settings,
        ..Options::default()
    });
    let mut buf = [0u8; 64];
    let w = MessageWriter::new(&mut buf, method::REFRESH, Class::Request, [5; 12]).unwrap();
    let n = w.finish();
    let resp = h.reply(flow(1), &buf[..n]).unwrap();
    assert_eq!(resp.error_code(), Some(437));
    assert_eq!(
        resp.attr(attr::ERROR_CODE).map(|v| &v[4..]),
        Some(&b"Allocation Mismatch"[..])
    );
}

#[test]
fn an_unauthenticated_flood_from_10000_ports_is_rate_limited_and_costs_no_state() {
    let settings = Settings {
        unauthorized_rps: 20,
        ..Settings::default()
    };
    let mut h = harness(Options {
        settings,
        ..Options::default()
    });
    // The canary: an established session from another address, relaying through a channel.
    let mut canary = Client::rest(4000, "alice", valid_expiry());
    canary.flow.remote.set_ip("198.51.100.200".parse().unwrap());
    assert_eq!(h.allocate(&mut canary).class, Class::Success);
    let peer = public_peer();
    assert_eq!(
        h.channel_bind(&mut canary, 0x4000, peer).class,
        Class::Success
    );
    let (relay, _) = h.server.allocations().next().unwrap();
    let before = (h.server.allocation_count(), h.server.timer_entries());
    let answered_before = h.server.stats().auth_challenges.get();
    let frame = [0x40, 0x00, 0x00, 0x02, b'h', b'i'];
    let mut relayed = 0;
    // 10,000 Allocates from 10,000 ports of one address within one second of virtual time.
    for port in 0..10_000u16 {
        let mut tid = [1u8; 12];
        tid[..2].copy_from_slice(&port.to_be_bytes());
        let mut buf = [0u8; 64];
        let mut w = MessageWriter::new(&mut buf, method::ALLOCATE, Class::Request, tid).unwrap();
        w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap();
        let n = w.finish();
        let attacker = Flow {
            socket: 0,
            remote: SocketAddr::new("203.0.113.66".parse().unwrap(), 10_000 + port),
        };
        h.send_raw(attacker, &buf[..n]);
        h.now += Duration::from_micros(100);
        if port % 100 == 0 {
            let now = h.now;
            h.server.handle_timeout(now, &mut h.binder);
            if matches!(h.send_raw(canary.flow, &frame), ClientAction::Relay { .. })
                && h.peer_packet(relay, peer, b"ok").is_some()
            {
                relayed += 1;
            }
        }
    }
    assert_eq!(relayed, 100, "the canary relayed both ways throughout");
    assert_eq!(
        (h.server.allocation_count(), h.server.timer_entries()),
        before
    );
    let answered = h.server.stats().auth_challenges.get() - answered_before;
    let limited = h.server.stats().challenges_ratelimited.get();
    // A burst of 20 plus 20 per second for the one second the flood lasted.
    assert!((20..=41).contains(&answered), "{answered} answered");
    assert_eq!(answered + limited, 10_000);
    // Another source still gets its challenge, and the flood's source does again later.
    let mut bob = Client::rest(5000, "bob", valid_expiry());
    assert_eq!(h.allocate(&mut bob).class, Class::Success);
    h.advance(2);
    let mut late = Client::rest(6000, "carol", valid_expiry());
    late.flow.remote.set_ip("203.0.113.66".parse().unwrap());
    assert_eq!(h.allocate(&mut late).class, Class::Success);
}

// coturn's 2025–2026 advisories, each as a regression test against this core.

/// Appends an attribute after whatever the message ends with (MESSAGE-INTEGRITY here) and
/// fixes the header length, as an on-path attacker injecting into a signed request would.
fn append_attr(msg: &mut Vec<u8>, typ: u16, value: &[u8]) {
    msg.extend_from_slice(&typ.to_be_bytes());
    msg.extend_from_slice(&(value.len() as u16).to_be_bytes());
    msg.extend_from_slice(value);
    msg.resize(msg.len() + (4 - value.len() % 4) % 4, 0);
    let len = (msg.len() - 20) as u16;
    msg[2..4].copy_from_slice(&len.to_be_bytes());
}

#[test]
fn advisory_lifetime_injected_after_message_integrity_is_ignored() {
    let mut h = harness(Options::default());
    let mut c = Client::rest(4000, "alice", valid_expiry());
    h.allocate(&mut c);
    let tid = c.tid();
    let mut req = c.request(method::REFRESH, tid, |w| {
        w.attr_u32(attr::LIFETIME, 900).unwrap()
    });
    append_attr(&mut req, attr::LIFETIME, &0u32.to_be_bytes());
    let resp = h.reply(c.flow, &req).unwrap();
    assert_eq!(resp.lifetime(), 900, "the signed LIFETIME counts");
    assert!(
        h.server.has_allocation(c.flow),
        "the injected 0 deleted nothing"
    );
    // Unsigned attributes alone do not authenticate a request either.
    let tid = c.tid();
    let mut req = c.request(method::REFRESH, tid, |_| {});
    append_attr(&mut req, attr::LIFETIME, &0u32.to_be_bytes());
    assert_eq!(h.reply(c.flow, &req).unwrap().lifetime(), 600);
    assert!(h.server.has_allocation(c.flow));
}

#[test]
fn advisory_peer_address_injected_after_message_integrity_is_ignored() {
    let mut h = harness(Options::default());
    let mut c = Client::rest(4000, "alice", valid_expiry());
    h.allocate(&mut c);
    let signed = public_peer();
    let injected: SocketAddr = "198.100.9.9:5000".parse().unwrap();
    let tid = c.tid();
    let mut req = c.request(method::CREATE_PERMISSION, tid, |w| {
        w.xor_address(attr::XOR_PEER_ADDRESS, &signed).unwrap()
    });
    let mut value = vec![0u8; 8];
    xor_addr::encode(&injected, &tid, &mut value);
    append_attr(&mut req, attr::XOR_PEER_ADDRESS, &value);
    assert_eq!(h.reply(c.flow, &req).unwrap().class, Class::Success);
    assert!(h.peer_packet(0, signed, b"signed").is_some());
    assert!(
        h.peer_packet(0, injected, b"injected").is_none(),
        "no permission for the injected peer"
    );
}

#[test]
fn advisory_duplicate_peer_address_in_channel_bind_uses_the_first() {
    let mut h = harness(Options::default());
    let mut c = Client::rest(4000, "alice", valid_expiry());
    h.allocate(&mut c);
    let first = public_peer();
    let second: SocketAddr = "198.100.9.9:5000".parse().unwrap();
    let resp = h.call(&mut c, method::CHANNEL_BIND, |w| {
        w.attr_u32(attr::CHANNEL_NUMBER, 0x4000 << 16).unwrap();
        w.xor_address(attr::XOR_PEER_ADDRESS, &first).unwrap();
        w.xor_address(attr::XOR_PEER_ADDRESS, &second).unwrap();
    });
    assert_eq!(resp.class, Class::Success);
    let frame = [0x40, 0x00, 0x00, 0x01, b'x'];
    match h.send_raw(c.flow, &frame) {
        ClientAction::Relay { peer, .. } => assert_eq!(peer, first),
        other => panic!("expected a relay to the first peer, got {other:?}"),
    }
    assert!(h.peer_packet(0, second, b"second").is_none());
    // A second forbidden address cannot sneak past the policy check either.
    let resp = h.call(&mut c, method::CHANNEL_BIND, |w| {
        w.attr_u32(attr::CHANNEL_NUMBER, 0x4001 << 16).unwrap();
        w.xor_address(attr::XOR_PEER_ADDRESS, &"198.100.9.10:1".parse().unwrap())
            .unwrap();
        w.xor_address(attr::XOR_PEER_ADDRESS, &"10.0.0.1:1".parse().unwrap())
            .unwrap();
    });
    assert_eq!(resp.class, Class::Success);
    assert!(h
        .peer_packet(0, "10.0.0.1:1".parse().unwrap(), b"x")
        .is_none());
}

#[test]
fn advisory_even_port_without_reserve_leaks_no_port() {
    let mut h = harness(Options::default());
    let baseline = h.server.shared.ports.in_use();
    for i in 0..20u16 {
        let mut c = Client::rest(4000 + i, "alice", valid_expiry());
        let resp = h.call(&mut c, method::ALLOCATE, |w| {
            w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap();
            w.attr(attr::EVEN_PORT, &[0x00]).unwrap();
        });
        assert_eq!(resp.xor_addr(attr::XOR_RELAYED_ADDRESS).port() % 2, 0);
        assert!(resp.attr(attr::RESERVATION_TOKEN).is_none());
        assert_eq!(h.server.shared.ports.in_use(), baseline + 1);
        let resp = h.call(&mut c, method::REFRESH, |w| {
            w.attr_u32(attr::LIFETIME, 0).unwrap()
        });
        assert_eq!(resp.lifetime(), 0);
        assert_eq!(h.server.shared.ports.in_use(), baseline);
    }
}

#[test]
fn advisory_unredeemed_reservation_tokens_release_their_port() {
    let mut h = harness(Options::default());
    let mut c = Client::rest(4000, "alice", valid_expiry());
    let resp = h.call(&mut c, method::ALLOCATE, |w| {
        w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap();
        w.attr(attr::EVEN_PORT, &[0x80]).unwrap();
    });
    let token = resp.attr(attr::RESERVATION_TOKEN).unwrap().to_vec();
    assert_eq!(h.server.shared.ports.in_use(), 2);
    h.call(&mut c, method::REFRESH, |w| {
        w.attr_u32(attr::LIFETIME, 0).unwrap()
    });
    assert_eq!(
        h.server.shared.ports.in_use(),
        1,
        "the reserved port is held"
    );
    h.advance(40);
    assert_eq!(
        h.server.shared.ports.in_use(),
        0,
        "and released when it lapses"
    );
    assert!(h.server.shared.reservations.is_empty());
    let mut late = Client::rest(4001, "alice", valid_expiry());
    let resp = h.call(&mut late, method::ALLOCATE, |w| {
        w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap();
        w.attr(attr::RESERVATION_TOKEN, &token).unwrap();
    });
    assert_eq!(resp.error_code(), Some(508));
    assert_eq!(h.server.shared.ports.in_use(), 0);
}

#[test]
fn advisory_mapped_and_compatible_loopback_peers_are_denied() {
    for allow_loopback in [false, true] {
        let mut h = harness(Options {
            peers: PeerPolicySettings {
                allow_loopback,
                ..Default::default()
            },
            ..Options::default()
        });
        let mut c = Client::rest(4000, "alice", valid_expiry());
        let resp = h.call(&mut c, method::ALLOCATE, |w| {
            w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap();
            w.attr_u32(attr::REQUESTED_ADDRESS_FAMILY, 2 << 24).unwrap();
        });
        assert_eq!(resp.class, Class::Success);
        let mut denied = vec!["[::127.0.0.1]:5000", "[::7f00:1]:5000", "[::]:5000"];
        if !allow_loopback {
            denied.extend(["[::ffff:127.0.0.1]:5000", "[::1]:5000"]);
        }
        for peer in denied {
            let peer: SocketAddr = peer.parse().unwrap();
            assert_eq!(
                h.create_permission(&mut c, peer).error_code(),
                Some(403),
                "{peer} allow_loopback={allow_loopback}"
            );
            assert_eq!(
                h.channel_bind(&mut c, 0x4000, peer).error_code(),
                Some(403),
                "{peer} allow_loopback={allow_loopback}"
            );
        }
    }
}

#[test]
fn advisory_ipv6_ranges_crossing_a_64_bit_boundary() {
    let range = |s: &str| s.parse().unwrap();
    let mut h = harness(Options {
        peers: PeerPolicySettings {
            denied: vec![range("2606:4700:0:0:ffff::-2606:4700:0:1:1::")],
            allowed: vec![range("fd00::ffff:ffff:ffff:fff0-fd00:0:0:1::10")],
            allow_loopback: false,
        },
        ..Options::default()
    });
    let mut c = Client::rest(4000, "alice", valid_expiry());
    let resp = h.call(&mut c, method::ALLOCATE, |w| {
        w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap();
        w.attr_u32(attr::REQUESTED_ADDRESS_FAMILY, 2 << 24).unwrap();
    });
    assert_eq!(resp.class, Class::Success);
    for (peer, code) in [
        ("[2606:4700::ffff:0:0:1]:1", Some(403)),
        ("[2606:4700:0:1::5]:1", Some(403)),
        ("[2606:4700:0:1:1::1]:1", None),
        ("[2606:4700::fffe:ffff:ffff:ffff]:1", None),
        ("[fd00::ffff:ffff:ffff:ffff]:1", None),
        ("[fd00:0:0:1::10]:1", None),
        ("[fd00:0:0:1::11]:1", Some(403)),
        ("[fd00::ffff:ffff:ffff:ffef]:1", Some(403)),
    ] {
        let peer: SocketAddr = peer.parse().unwrap();
        assert_eq!(
            h.create_permission(&mut c, peer).error_code(),
            code,
            "{peer}"
        );
    }
}

#[test]
fn advisory_a_nonce_from_one_client_ip_is_refused_from_another() {
    let mut h = harness(Options::default());
    let mut c = Client::rest(4000, "alice", valid_expiry());
    challenge(&mut h, &mut c);
    // The same client, same port, but another address: the nonce does not travel.
    c.flow.remote.set_ip("198.51.100.99".parse().unwrap());
    let tid = c.tid();
    let req = c.request(method::ALLOCATE, tid, |w| {
        w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap()
    });
    let resp = h.reply(c.flow, &req).unwrap();
    assert_eq!(resp.error_code(), Some(438));
    assert_eq!(h.server.allocation_count(), 0);
    // With the nonce it is handed there, it authenticates.
    c.nonce = Some(resp.attr(attr::NONCE).unwrap().to_vec());
    let tid = c.tid();
    let req = c.request(method::ALLOCATE, tid, |w| {
        w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap()
    });
    assert_eq!(h.reply(c.flow, &req).unwrap().class, Class::Success);
}

fn numbered_peer(i: usize) -> SocketAddr {
    SocketAddr::new(
        IpAddr::from([198, 100, 2 + (i / 250) as u8, 1 + (i % 250) as u8]),
        5000,
    )
}

fn create_permissions(h: &mut Harness, c: &mut Client, peers: &[SocketAddr]) -> Response {
    h.call(c, method::CREATE_PERMISSION, |w| {
        for p in peers {
            w.xor_address(attr::XOR_PEER_ADDRESS, p).unwrap();
        }
    })
}

#[test]
fn create_permission_takes_any_count_up_to_the_cap_and_508_past_it() {
    use super::super::allocation::MAX_PERMISSIONS;
    let mut h = harness(Options::default());
    let mut c = Client::rest(4000, "alice", valid_expiry());
    h.allocate(&mut c);
    // uclient -G sends 24 peers in one request: every one gets a permission.
    let first: Vec<SocketAddr> = (0..24).map(numbered_peer).collect();
    assert_eq!(
        create_permissions(&mut h, &mut c, &first).class,
        Class::Success
    );
    for p in &first {
        assert!(h.peer_packet(0, *p, b"x").is_some(), "{p} permitted");
    }
    // More than the cap in one request is a capacity refusal, and installs nothing.
    let too_many: Vec<SocketAddr> = (100..101 + MAX_PERMISSIONS).map(numbered_peer).collect();
    assert_eq!(
        create_permissions(&mut h, &mut c, &too_many).error_code(),
        Some(508)
    );
    assert!(h.peer_packet(0, too_many[0], b"x").is_none());
    // Filling the allocation up to the cap works (old peers refreshed, duplicates counted once).
    let mut fill: Vec<SocketAddr> = (0..MAX_PERMISSIONS - 1).map(numbered_peer).collect();
    fill.push(numbered_peer(3));
    assert_eq!(
        create_permissions(&mut h, &mut c, &fill).class,
        Class::Success
    );
    let last = numbered_peer(MAX_PERMISSIONS - 1);
    assert_eq!(
        create_permissions(&mut h, &mut c, &[last, last]).class,
        Class::Success
    );
    assert!(h.peer_packet(0, last, b"x").is_some());
    // ...one more peer is refused, and a mixed request installs none of its peers.
    let over = numbered_peer(MAX_PERMISSIONS);
    assert_eq!(
        create_permissions(&mut h, &mut c, &[numbered_peer(0), over]).error_code(),
        Some(508)
    );
    assert!(h.peer_packet(0, over, b"x").is_none());
    // Once permissions lapse their room is free again.
    h.advance(301);
    assert_eq!(
        create_permissions(&mut h, &mut c, &[over]).class,
        Class::Success
    );
    // One forbidden or malformed peer among many fails the whole request.
    let mut bad = first.clone();
    bad.push("10.0.0.1:5000".parse().unwrap());
    assert_eq!(
        create_permissions(&mut h, &mut c, &bad).error_code(),
        Some(403)
    );
    assert!(
        h.peer_packet(0, first[0], b"x").is_none(),
        "lapsed, not renewed"
    );
}

#[test]
fn peer_addresses_after_message_integrity_are_ignored() {
    let mut h = harness(Options::default());
    let mut c = Client::rest(4000, "alice", valid_expiry());
    h.allocate(&mut c);
    let tid = c.tid();
    let mut req = c.request(method::CREATE_PERMISSION, tid, |w| {
        w.xor_address(attr::XOR_PEER_ADDRESS, &numbered_peer(1))
            .unwrap()
    });
    // Append an XOR-PEER-ADDRESS after MESSAGE-INTEGRITY: not covered, so not acted on.
    let extra = numbered_peer(2);
    let mut tail = vec![0u8; 64];
    let mut w =
        MessageWriter::new(&mut tail, method::CREATE_PERMISSION, Class::Request, tid).unwrap();
    w.xor_address(attr::XOR_PEER_ADDRESS, &extra).unwrap();
    let n = w.finish();
    req.extend_from_slice(&tail[20..n]);
    let len = (req.len() - 20) as u16;
    req[2..4].copy_from_slice(&len.to_be_bytes());
    assert_eq!(h.reply(c.flow, &req).unwrap().class, Class::Success);
    assert!(h.peer_packet(0, numbered_peer(1), b"x").is_some());
    assert!(h.peer_packet(0, extra, b"x").is_none());
}

#[test]
fn rfc7983_channel_space_is_refused_unless_rfc5766_channel_numbers() {
    let peer = public_peer();
    let frame = [0x50, 0x00, 0x00, 0x03, b'a', b'b', b'c'];
    // Default (RFC 8656 §12): 0x5000-0x7FFF get 400, and ChannelData there is dropped as
    // malformed even with a permission for the peer.
    let mut h = harness(Options::default());
    let mut c = Client::rest(4000, "alice", valid_expiry());
    h.allocate(&mut c);
    assert_eq!(h.create_permission(&mut c, peer).class, Class::Success);
    assert_eq!(h.channel_bind(&mut c, 0x5000, peer).error_code(), Some(400));
    assert_eq!(h.channel_bind(&mut c, 0x4FFF, peer).class, Class::Success);
    let before = h.server.stats().dropped_malformed.packets.get();
    assert_eq!(h.send_raw(c.flow, &frame), ClientAction::None);
    assert_eq!(h.server.stats().dropped_malformed.packets.get(), before + 1);

    // With rfc5766-channel-numbers the old range binds and relays both ways.
    let mut h = harness(Options {
        settings: Settings {
            rfc5766_channel_numbers: true,
            ..Settings::default()
        },
        ..Options::default()
    });
    let mut c = Client::rest(4000, "alice", valid_expiry());
    h.allocate(&mut c);
    assert_eq!(h.channel_bind(&mut c, 0x5000, peer).class, Class::Success);
    let peer2: SocketAddr = "198.100.1.2:5000".parse().unwrap();
    assert_eq!(h.channel_bind(&mut c, 0x7FFF, peer2).class, Class::Success);
    assert_eq!(
        h.channel_bind(&mut c, 0x8000, peer2).error_code(),
        Some(400)
    );
    assert_eq!(
        h.send_raw(c.flow, &frame),
        ClientAction::Relay {
            relay: 0,
            peer,
            start: 4,
            end: 7
        }
    );
    let back = h.peer_packet(0, peer2, b"xyz").unwrap();
    assert_eq!(back, [0x7F, 0xFF, 0x00, 0x03, b'x', b'y', b'z']);
}

#[test]
fn draining_redirects_each_transport_to_its_own_alternate_server() {
    let udp_alt: SocketAddr = "198.51.100.1:3478".parse().unwrap();
    let tls_alt: SocketAddr = "198.51.100.3:5349".parse().unwrap();
    let any_alt: SocketAddr = "198.51.100.9:3478".parse().unwrap();
    let settings = Settings {
        alternate_servers: vec![any_alt],
        transport_alternate_servers: [vec![udp_alt], Vec::new(), vec![tls_alt]],
        ..Settings::default()
    };
    assert_eq!(settings.alternate_for(Transport::Udp), Some(udp_alt));
    assert_eq!(
        settings.alternate_for(Transport::Tcp),
        Some(any_alt),
        "falls back"
    );
    assert_eq!(settings.alternate_for(Transport::Tls), Some(tls_alt));
    let mut h = harness(Options {
        settings,
        ..Options::default()
    });
    h.server.set_draining(true);
    let mut c = Client::rest(4002, "alice", valid_expiry());
    let resp = h.allocate(&mut c);
    assert_eq!(resp.error_code(), Some(300));
    let alt = resp.attr(attr::ALTERNATE_SERVER).unwrap();
    assert_eq!(u16::from_be_bytes([alt[2], alt[3]]), udp_alt.port());
    assert_eq!(&alt[4..8], &[198, 51, 100, 1]);
}

// ---- RFC 8489 §9.2 password algorithms and MESSAGE-INTEGRITY-SHA256 (§14.6) ----

use super::super::auth::algorithm::{sha256_key, NONCE_COOKIE, OFFERED};
use super::super::stun::integrity::{integrity_sha256_over, verify_integrity_sha256};

const PICK_SHA256: [u8; 4] = [0x00, 0x02, 0x00, 0x00];
const PICK_MD5: [u8; 4] = [0x00, 0x01, 0x00, 0x00];

/// What a test request carries for integrity, in wire order after the credentials.
#[derive(Clone, Copy, Default)]
struct Signing<'k> {
    /// PASSWORD-ALGORITHM value, when sent.
    algorithm: Option<&'k [u8]>,
    /// PASSWORD-ALGORITHMS value, when sent.
    algorithms: Option<&'k [u8]>,
    /// MESSAGE-INTEGRITY with this key.
    mi: Option<&'k [u8]>,
    /// MESSAGE-INTEGRITY-SHA256 with this key, truncated to this many bytes.
    mi256: Option<(&'k [u8], usize)>,
    /// A garbage MESSAGE-INTEGRITY after MESSAGE-INTEGRITY-SHA256.
    mi_after: bool,
}

fn signed_with(
    c: &mut Client,
    method: u16,
    s: Signing<'_>,
    fill: impl FnOnce(&mut MessageWriter<'_>),
) -> Vec<u8> {
    let tid = c.tid();
    let mut buf = vec![0u8; 1024];
    let mut w = MessageWriter::new(&mut buf, method, Class::Request, tid).unwrap();
    fill(&mut w);
    w.attr(attr::USERNAME, c.username.as_bytes()).unwrap();
    w.attr(attr::REALM, REALM.as_bytes()).unwrap();
    w.attr(attr::NONCE, c.nonce.as_deref().expect("challenged first"))
        .unwrap();
    if let Some(a) = s.algorithm {
        w.attr(attr::PASSWORD_ALGORITHM, a).unwrap();
    }
    if let Some(list) = s.algorithms {
        w.attr(attr::PASSWORD_ALGORITHMS, list).unwrap();
    }
    if let Some(key) = s.mi {
        w.integrity(key).unwrap();
    }
    let mut mi256_at = None;
    if let Some((_, len)) = s.mi256 {
        mi256_at = Some(w.len());
        w.attr(attr::MESSAGE_INTEGRITY_SHA256, &[0u8; 32][..len])
            .unwrap();
    }
    if s.mi_after {
        w.attr(attr::MESSAGE_INTEGRITY, &[0xAA; 20]).unwrap();
    }
    let n = w.finish();
    buf.truncate(n);
    if let (Some(at), Some((key, len))) = (mi256_at, s.mi256) {
        let mac = integrity_sha256_over(&buf, at, len, key);
        buf[at + 4..at + 4 + len].copy_from_slice(&mac[..len]);
    }
    buf
}

fn attr_offset(raw: &[u8], typ: u16) -> Option<usize> {
    let mut pos = 20;
    while pos + 4 <= raw.len() {
        let t = u16::from_be_bytes([raw[pos], raw[pos + 1]]);
        let len = u16::from_be_bytes([raw[pos + 2], raw[pos + 3]]) as usize;
        if t == typ {
            return Some(pos);
        }
        pos += 4 + ((len + 3) & !3);
    }
    None
}

fn allocate_with(h: &mut Harness, c: &mut Client, s: Signing<'_>) -> Response {
    let req = signed_with(c, method::ALLOCATE, s, |w| {
        w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap()
    });
    h.reply(c.flow, &req).expect("a response")
}

fn keys_of(c: &Client) -> ([u8; 16], [u8; 32]) {
    (
        long_term_key(&c.username, REALM, &c.password),
        sha256_key(&c.username, REALM, &c.password),
    )
}

#[test]
fn challenges_offer_password_algorithms_behind_the_nonce_cookie() {
    let mut h = harness(sha256_offered());
    let mut c = Client::rest(4000, "alice", valid_expiry());
    let tid = c.tid();
    let req = c.request(method::ALLOCATE, tid, |w| {
        w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap()
    });
    let resp = h.reply(c.flow, &req).unwrap();
    assert_eq!(resp.error_code(), Some(401));
    assert_eq!(resp.attr(attr::PASSWORD_ALGORITHMS), Some(&OFFERED[..]));
    let nonce = resp.attr(attr::NONCE).unwrap();
    assert!(
        nonce.starts_with(NONCE_COOKIE),
        "{:?}",
        String::from_utf8_lossy(nonce)
    );
    // A nonce without the cookie is not one of ours: 438 with a fresh one.
    c.nonce = Some(nonce[NONCE_COOKIE.len()..].to_vec());
    let (md5, _) = keys_of(&c);
    let stale = allocate_with(
        &mut h,
        &mut c,
        Signing {
            mi: Some(&md5),
            ..Default::default()
        },
    );
    assert_eq!(stale.error_code(), Some(438));
    assert_eq!(stale.attr(attr::PASSWORD_ALGORITHMS), Some(&OFFERED[..]));
}

#[test]
fn without_sha256_integrity_challenges_offer_nothing_and_md5_keys_sign() {
    let mut h = harness(Options::default());
    let mut c = Client::rest(4000, "alice", valid_expiry());
    let tid = c.tid();
    let req = c.request(method::ALLOCATE, tid, |w| {
        w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap()
    });
    let resp = h.reply(c.flow, &req).unwrap();
    assert_eq!(resp.error_code(), Some(401));
    assert!(resp.attr(attr::PASSWORD_ALGORITHMS).is_none());
    assert!(!resp.attr(attr::NONCE).unwrap().starts_with(NONCE_COOKIE));
    challenge(&mut h, &mut c);
    let (md5, sha) = keys_of(&c);
    // Nothing was offered, so a SHA-256 choice is not honoured: the key stays MD5's.
    let s = Signing {
        algorithm: Some(&PICK_SHA256),
        algorithms: Some(&OFFERED),
        mi256: Some((&sha, 32)),
        ..Default::default()
    };
    assert_eq!(allocate_with(&mut h, &mut c, s).error_code(), Some(401));
    let s = Signing {
        mi: Some(&md5),
        ..Default::default()
    };
    assert_eq!(allocate_with(&mut h, &mut c, s).class, Class::Success);
}

#[test]
fn sha256_negotiated_allocation_is_answered_with_message_integrity_sha256() {
    let mut h = harness(sha256_offered());
    let mut c = Client::rest(4000, "alice", valid_expiry());
    challenge(&mut h, &mut c);
    let (_, sha) = keys_of(&c);
    let s = Signing {
        algorithm: Some(&PICK_SHA256),
        algorithms: Some(&OFFERED),
        mi256: Some((&sha, 32)),
        ..Default::default()
    };
    let resp = allocate_with(&mut h, &mut c, s);
    assert_eq!(resp.class, Class::Success, "{:?}", resp.error_code());
    let at = attr_offset(&resp.raw, attr::MESSAGE_INTEGRITY_SHA256).expect("MI-SHA256");
    assert!(verify_integrity_sha256(&resp.raw, at, &sha));
    assert!(resp.attr(attr::MESSAGE_INTEGRITY).is_none());
    // Later requests on the allocation are answered the same way, and SHA-256 with the MD5
    // key does not verify.
    let req = signed_with(&mut c, method::REFRESH, s, |_| {});
    let resp = h.reply(c.flow, &req).unwrap();
    assert_eq!(resp.class, Class::Success);
    let at = attr_offset(&resp.raw, attr::MESSAGE_INTEGRITY_SHA256).unwrap();
    assert!(verify_integrity_sha256(&resp.raw, at, &sha));
    let (md5, _) = keys_of(&c);
    let wrong_key = Signing {
        mi256: Some((&md5, 32)),
        ..s
    };
    let req = signed_with(&mut c, method::REFRESH, wrong_key, |_| {});
    assert_eq!(h.reply(c.flow, &req).unwrap().error_code(), Some(401));
}

#[test]
fn message_integrity_sha256_alone_uses_the_md5_key_and_may_be_truncated() {
    let mut h = harness(sha256_offered());
    let mut c = Client::rest(4000, "alice", valid_expiry());
    challenge(&mut h, &mut c);
    let (md5, _) = keys_of(&c);
    // §14.6: MI-SHA256 without MI is fine; without PASSWORD-ALGORITHM the key is MD5's.
    let s = Signing {
        mi256: Some((&md5, 16)),
        ..Default::default()
    };
    let resp = allocate_with(&mut h, &mut c, s);
    assert_eq!(resp.class, Class::Success, "{:?}", resp.error_code());
    assert!(resp.attr(attr::MESSAGE_INTEGRITY_SHA256).is_some());
    // A length that is not 16..=32 in steps of 4 is malformed.
    let mut d = Client::rest(4001, "alice", valid_expiry());
    challenge(&mut h, &mut d);
    for bad in [12, 18] {
        let s = Signing {
            mi256: Some((&md5, bad)),
            ..Default::default()
        };
        assert_eq!(
            allocate_with(&mut h, &mut d, s).error_code(),
            Some(400),
            "{bad} bytes"
        );
    }
}

#[test]
fn message_integrity_rules_of_rfc_8489_14_6() {
    let mut h = harness(sha256_offered());
    let mut c = Client::rest(4000, "alice", valid_expiry());
    challenge(&mut h, &mut c);
    let (md5, _) = keys_of(&c);
    let garbage = [0x55u8; 16];
    // A valid MI followed by an invalid MI-SHA256 is refused: MI-SHA256 is the one checked.
    let s = Signing {
        mi: Some(&md5),
        mi256: Some((&garbage, 32)),
        ..Default::default()
    };
    assert_eq!(allocate_with(&mut h, &mut c, s).error_code(), Some(401));
    // A valid MI-SHA256 followed by a garbage MI: the MI is ignored.
    let s = Signing {
        mi256: Some((&md5, 32)),
        mi_after: true,
        ..Default::default()
    };
    let resp = allocate_with(&mut h, &mut c, s);
    assert_eq!(resp.class, Class::Success, "{:?}", resp.error_code());
    // Both valid: accepted, answered with MI-SHA256.
    let mut d = Client::rest(4001, "alice", valid_expiry());
    challenge(&mut h, &mut d);
    let (md5, _) = keys_of(&d);
    let s = Signing {
        mi: Some(&md5),
        mi256: Some((&md5, 32)),
        ..Default::default()
    };
    let resp = allocate_with(&mut h, &mut d, s);
    assert_eq!(resp.class, Class::Success);
    assert!(resp.attr(attr::MESSAGE_INTEGRITY_SHA256).is_some());
    // SHA-1 clients (every browser) keep MI alone, answered with MI.
    let mut e = Client::rest(4002, "alice", valid_expiry());
    let resp = h.allocate(&mut e);
    assert_eq!(resp.class, Class::Success);
    assert!(resp.attr(attr::MESSAGE_INTEGRITY).is_some());
    assert!(resp.attr(attr::MESSAGE_INTEGRITY_SHA256).is_none());
}

#[test]
fn bid_down_attempts_get_400() {
    let mut h = harness(sha256_offered());
    let mut c = Client::rest(4000, "alice", valid_expiry());
    challenge(&mut h, &mut c);
    let (md5, sha) = keys_of(&c);
    let md5_only = [0x00, 0x01, 0x00, 0x00];
    let cases: [(&str, Signing<'_>); 5] = [
        (
            "offer stripped to MD5",
            Signing {
                algorithm: Some(&PICK_MD5),
                algorithms: Some(&md5_only),
                mi: Some(&md5),
                ..Default::default()
            },
        ),
        (
            "PASSWORD-ALGORITHM alone",
            Signing {
                algorithm: Some(&PICK_SHA256),
                mi256: Some((&sha, 32)),
                ..Default::default()
            },
        ),
        (
            "PASSWORD-ALGORITHMS alone",
            Signing {
                algorithms: Some(&OFFERED),
                mi: Some(&md5),
                ..Default::default()
            },
        ),
        (
            "algorithm not offered",
            Signing {
                algorithm: Some(&[0x00, 0x03, 0x00, 0x00]),
                algorithms: Some(&OFFERED),
                mi: Some(&md5),
                ..Default::default()
            },
        ),
        (
            "parameters on MD5",
            Signing {
                algorithm: Some(&[0x00, 0x01, 0x00, 0x04, 1, 2, 3, 4]),
                algorithms: Some(&OFFERED),
                mi: Some(&md5),
                ..Default::default()
            },
        ),
    ];
    for (what, s) in cases {
        assert_eq!(
            allocate_with(&mut h, &mut c, s).error_code(),
            Some(400),
            "{what}"
        );
    }
    assert_eq!(h.server.allocation_count(), 0);
    // Choosing MD5 with the full offer echoed is fine.
    let s = Signing {
        algorithm: Some(&PICK_MD5),
        algorithms: Some(&OFFERED),
        mi: Some(&md5),
        ..Default::default()
    };
    assert_eq!(allocate_with(&mut h, &mut c, s).class, Class::Success);
}

#[test]
fn static_users_get_sha256_only_with_a_password() {
    let mut h = harness(sha256_offered());
    let mut c = Client::static_user(4000);
    challenge(&mut h, &mut c);
    let (_, sha) = keys_of(&c);
    let s = Signing {
        algorithm: Some(&PICK_SHA256),
        algorithms: Some(&OFFERED),
        mi256: Some((&sha, 32)),
        ..Default::default()
    };
    assert_eq!(allocate_with(&mut h, &mut c, s).class, Class::Success);

    // A user configured by its MD5 key cannot use SHA-256.
    let auth = Authenticator::new(AuthSettings {
        realm: REALM.into(),
        users: vec![(
            "alice".into(),
            UserSecret::Key(long_term_key("alice", REALM, "wonderland")),
        )],
        ..AuthSettings::default()
    });
    let config = Arc::new(CoreConfig {
        auth,
        peers: PeerPolicy::new(&PeerPolicySettings::default()),
        settings: Settings::default(),
        revoked_users: Default::default(),
        revoked_secrets: Default::default(),
    });
    let now = h.now;
    h.server.set_config(config, now);
    let mut d = Client::static_user(4001);
    challenge(&mut h, &mut d);
    assert_eq!(allocate_with(&mut h, &mut d, s).error_code(), Some(401));
    let (md5, _) = keys_of(&d);
    let md5_way = Signing {
        mi: Some(&md5),
        ..Default::default()
    };
    assert_eq!(allocate_with(&mut h, &mut d, md5_way).class, Class::Success);
}

#[test]
fn rest_api_hmac_sha256_passwords() {
    use super::super::auth::rest::rest_password_with;
    let mut h = harness(Options {
        rest_hmac: RestHmac::Sha256,
        ..Options::default()
    });
    let mut sha1_client = Client::rest(4000, "alice", valid_expiry());
    let resp = h.allocate(&mut sha1_client);
    assert_eq!(
        resp.error_code(),
        Some(401),
        "a SHA-1 REST password is refused"
    );
    let mut c = Client::rest(4001, "alice", valid_expiry());
    c.password = rest_password_with(RestHmac::Sha256, SECRET.as_bytes(), &c.username);
    assert_eq!(h.allocate(&mut c).class, Class::Success);
}
