//! The state machine driven in virtual time: no sockets, no sleeping.
//!
//! This file is the harness (options, a server with a fake binder, test clients that sign
//! requests, helpers shared by several topics); the tests live by topic in `tests/<topic>.rs`,
//! each declared below with `mod <topic>;` and starting with `use super::*;`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::super::auth::algorithm::{sha256_key, NONCE_COOKIE, OFFERED};
use super::super::auth::long_term::long_term_key;
use super::super::auth::nonce::NonceKey;
use super::super::auth::rest::{rest_password, RestHmac};
use super::super::auth::{AuthSettings, Authenticator, UserSecret};
use super::super::flow::SocketId;
use super::super::peer_policy::{PeerPolicy, PeerPolicySettings, ServerAddresses};
use super::super::ports::{PortPool, Reservations};
use super::super::quota::Quotas;
use super::super::settings::{CoreConfig, ExternalMapping, Settings, Shared};
use super::super::stun::integrity::{integrity_sha256_over, verify_integrity_sha256};
use super::super::stun::{attr, method, xor_addr, Class, Message, MessageWriter};
use super::super::testing::FakeBinder;
use super::*;

mod advisories;
mod allocate;
mod amplification;
mod authentication;
mod binding;
mod config_and_drain;
mod dual_allocation;
mod fast_path_routes;
mod lifetimes;
mod malformed_input;
mod password_algorithms;
mod permissions;
mod relaying;
mod seeded;
mod tcp_relay;

const UNIX_START: u64 = 1_800_000_000;

const REALM: &str = "ferroturn.test";

const SECRET: &str = "north";

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
    /// The RESERVATION-TOKEN of a success (it must carry one).
    fn reservation_token(&self) -> [u8; 8] {
        self.attr(attr::RESERVATION_TOKEN)
            .expect("RESERVATION-TOKEN")
            .try_into()
            .expect("8 bytes")
    }

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
        socket: SocketId::Listener(0),
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

    /// A Send indication carrying `data` to `peer`.
    fn send_indication(&mut self, peer: SocketAddr, data: &[u8]) -> Vec<u8> {
        let tid = self.tid();
        let mut buf = vec![0u8; 256];
        let mut w = MessageWriter::new(&mut buf, method::SEND, Class::Indication, tid).unwrap();
        w.xor_address(attr::XOR_PEER_ADDRESS, &peer).unwrap();
        w.attr(attr::DATA, data).unwrap();
        let n = w.finish();
        buf.truncate(n);
        buf
    }

    /// A UDP Allocate with a fresh transaction id, signed once the client holds a nonce.
    fn allocate_request(&mut self) -> Vec<u8> {
        let tid = self.tid();
        self.request(method::ALLOCATE, tid, |w| {
            w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap()
        })
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

    /// Sends one `allocate_request` and returns the answer as it is (no retry when challenged).
    fn allocate_once(&mut self, c: &mut Client) -> Response {
        let req = c.allocate_request();
        self.reply(c.flow, &req).expect("a response")
    }

    /// Sends a client's first Allocate (no nonce yet) and returns the 401 challenge to it.
    fn first_challenge(&mut self, c: &mut Client) -> Response {
        let resp = self.allocate_once(c);
        assert_eq!(resp.error_code(), Some(401));
        resp
    }

    /// Asserts that the next event the core reports is an allocation being created.
    fn assert_next_event_is_created(&mut self) {
        let event = self.server.poll_event();
        assert!(
            matches!(event, Some(Event::AllocationCreated { .. })),
            "{event:?}"
        );
    }

    /// Alice (REST credentials, port 4000), once her UDP allocation has succeeded.
    fn allocated_alice(&mut self) -> Client {
        let mut c = Client::rest(4000, "alice", valid_expiry());
        assert_eq!(self.allocate(&mut c).class, Class::Success);
        c
    }

    fn allocate(&mut self, c: &mut Client) -> Response {
        self.call(c, method::ALLOCATE, |w| {
            w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap()
        })
    }

    /// Allocate for UDP, with more attributes written by `extra` after REQUESTED-TRANSPORT.
    fn allocate_and(&mut self, c: &mut Client, extra: impl Fn(&mut MessageWriter<'_>)) -> Response {
        self.call(c, method::ALLOCATE, |w| {
            w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24).unwrap();
            extra(w);
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

    /// Asserts that CreatePermission and ChannelBind both refuse `peer` with 403; `context` is
    /// added to the failure message.
    fn assert_peer_forbidden(&mut self, c: &mut Client, peer: SocketAddr, context: &str) {
        assert_eq!(
            self.create_permission(c, peer).error_code(),
            Some(403),
            "{peer} {context}"
        );
        assert_eq!(
            self.channel_bind(c, 0x4000, peer).error_code(),
            Some(403),
            "{peer} {context}"
        );
    }

    /// A datagram from `from` arriving on relay socket number `relay` (`RelayId::new(relay)`).
    fn peer_packet(&mut self, relay: u32, from: SocketAddr, payload: &[u8]) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; PEER_HEADROOM + payload.len() + PEER_TAILROOM];
        buf[PEER_HEADROOM..PEER_HEADROOM + payload.len()].copy_from_slice(payload);
        let now = self.now;
        match self
            .server
            .handle_peer(now, RelayId::new(relay), from, &mut buf, payload.len())
        {
            PeerAction::Forward { start, end, .. } => Some(buf[start..end].to_vec()),
            PeerAction::Drop => None,
        }
    }
}

/// The default harness with these core settings.
fn harness_with(settings: Settings) -> Harness {
    harness(Options {
        settings,
        ..Options::default()
    })
}

/// The default harness with the default core settings changed by `tune`.
fn harness_tuned(tune: impl FnOnce(&mut Settings)) -> Harness {
    let mut settings = Settings::default();
    tune(&mut settings);
    harness_with(settings)
}

/// A default harness, and alice (REST credentials, port 4000) who has sent nothing yet.
fn harness_and_alice() -> (Harness, Client) {
    harness_and_alice_with(Options::default())
}

/// A harness with `options`, and alice (REST credentials, port 4000) who has sent nothing yet.
fn harness_and_alice_with(options: Options) -> (Harness, Client) {
    let h = harness(options);
    let c = Client::rest(4000, "alice", valid_expiry());
    (h, c)
}

/// A default harness in which alice (REST credentials, port 4000) holds a UDP allocation.
fn alice_allocated() -> (Harness, Client) {
    let mut h = harness(Options::default());
    let c = h.allocated_alice();
    (h, c)
}

fn public_peer() -> SocketAddr {
    "198.100.1.1:5000".parse().unwrap()
}

fn public_peer6() -> SocketAddr {
    "[2a00:1450:4001::1]:5000".parse().unwrap()
}

fn valid_expiry() -> u64 {
    UNIX_START + 3600
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
    let resp = h.first_challenge(c);
    c.nonce = Some(resp.attr(attr::NONCE).unwrap().to_vec());
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

/// The harness with `no-auth`: requests need no credentials.
fn no_auth_harness() -> Harness {
    harness(Options {
        no_auth: true,
        ..Options::default()
    })
}

/// The harness with `sha256-integrity` on.
fn sha256_offered() -> Harness {
    harness_with(Settings {
        sha256_integrity: true,
        ..Settings::default()
    })
}

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

impl<'k> Signing<'k> {
    /// MESSAGE-INTEGRITY with `key` and nothing else (the RFC 5389 way).
    fn md5(key: &'k [u8]) -> Self {
        Signing {
            mi: Some(key),
            ..Default::default()
        }
    }

    /// SHA-256 picked from the offer: PASSWORD-ALGORITHM(S) echoed, a full-length
    /// MESSAGE-INTEGRITY-SHA256 with `key`.
    fn sha256_negotiated(key: &'k [u8]) -> Self {
        Signing {
            algorithm: Some(&PICK_SHA256),
            algorithms: Some(&OFFERED),
            mi256: Some((key, 32)),
            ..Default::default()
        }
    }
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
