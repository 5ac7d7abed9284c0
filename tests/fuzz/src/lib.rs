//! Shared pieces of the fuzz targets: a protocol core driven in virtual time by a script of
//! client datagrams, signed requests, peer datagrams, timeouts and closed flows, with the
//! invariants every step must keep.
//!
//! The script is a byte string, so libFuzzer's byte mutations reach every part of it:
//!
//! ```text
//! step := op:u8 len:u8 payload[len]      (payload is cut short at the end of the input)
//! ```
//!
//! `op % 8` picks the kind of step and `op / 8` (0..=31) is its small argument `a`:
//!
//! | op % 8 | step |
//! |---|---|
//! | 0, 1 | raw datagram from flow `a % 6` over UDP (0) or as a TCP frame (1) |
//! | 2, 3 | signed request (see `Script::signed`) with `a` (2) or `a + 32` (3) |
//! | 4 | peer datagram to relay `a % 8`, from the peer the payload's first byte picks; with that byte's top bit set, a TCP peer connecting to the relay instead (RFC 6062) |
//! | 5 | the clock moves `4a² + 1` seconds; due timeouts run |
//! | 6 | ChannelData on channel `0x4000 + a % 4` from flow `(a / 4) % 6` |
//! | 7 | flow `a % 6` closes (TCP), or with `a == 31` draining is switched, or with `a == 30` the runtime reports the oldest TCP relay connection closed |
//!
//! After every step the core's TCP relay commands are carried out as a runtime would: each
//! Connect succeeds unless its id is a multiple of 3, every message for a client must be valid
//! STUN, and the CONNECTION-IDs they carry become values signed requests can bind.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use ferroturn::config::from_conf_str;
use ferroturn::proto::auth::long_term::long_term_key;
use ferroturn::proto::auth::rest::rest_password;
use ferroturn::proto::channel_data::MAX_CHANNEL;
use ferroturn::proto::flow::{Flow, RelayId, SocketId, Transport};
use ferroturn::proto::peer_policy::ServerAddresses;
use ferroturn::proto::server::{
    ClientAction, Event, PeerAction, Server, TcpCommand, PEER_HEADROOM, PEER_TAILROOM,
};
use ferroturn::proto::settings::CoreConfig;
use ferroturn::proto::stun::{attr, method, Class, Message, MessageWriter};
use ferroturn::runtime::core_setup::{core_config_from, shared_from_config, Revocations};
use ferroturn_proto::testing::FakeBinder;

/// Realm of the fuzzed relay.
pub const REALM: &str = "fuzz.test";
/// REST secret of the fuzzed relay.
pub const SECRET: &str = "fuzz-secret";
/// Wall-clock time at the start of every run (REST expiries and nonces are in wall time).
pub const UNIX_START: u64 = 1_800_000_000;

/// Two relay configurations: the usual Jitsi one (REST secret, a small port range so that
/// exhaustion is reachable), and one with a static user, quotas, a bandwidth cap and loopback
/// peers allowed.
const CONFS: [&str; 2] = [
    "use-auth-secret\nstatic-auth-secret=fuzz-secret\nrealm=fuzz.test\n\
     user=alice:wonderland\nmin-port=50000\nmax-port=50015\nlistening-ip=192.0.2.1\n\
     relay-ip=192.0.2.10\nrelay-ip=2001:db8::10\n",
    "lt-cred-mech\nrealm=fuzz.test\n\
     user=alice:wonderland\nmin-port=50000\nmax-port=50003\nuser-quota=2\ntotal-quota=3\n\
     max-bps=20000\nallow-loopback-peers\nmax-allocate-lifetime=900\nlistening-ip=192.0.2.1\n\
     relay-ip=192.0.2.10\n",
];

/// Peers the script can name; the public ones pass the default peer policy.
pub const PEERS: [&str; 6] = [
    "198.100.1.1:5000",
    "93.184.216.34:443",
    "1.1.1.1:3478",
    "127.0.0.1:9",
    "10.0.0.1:80",
    "[2606:4700::1111]:53",
];

/// Attribute types a signed request may carry, picked by one byte.
pub const ATTR_TYPES: [u16; 20] = [
    attr::LIFETIME,
    attr::REQUESTED_TRANSPORT,
    attr::REQUESTED_ADDRESS_FAMILY,
    attr::EVEN_PORT,
    attr::RESERVATION_TOKEN,
    attr::DONT_FRAGMENT,
    attr::CHANNEL_NUMBER,
    attr::XOR_PEER_ADDRESS,
    attr::DATA,
    attr::USERNAME,
    attr::REALM,
    attr::NONCE,
    attr::MESSAGE_INTEGRITY,
    attr::FINGERPRINT,
    attr::SOFTWARE,
    attr::PRIORITY,
    attr::USE_CANDIDATE,
    attr::MESSAGE_INTEGRITY_SHA256,
    0x7777,
    0xC0DE,
];

const METHODS: [u16; 8] = [
    method::ALLOCATE,
    method::REFRESH,
    method::CREATE_PERMISSION,
    method::CHANNEL_BIND,
    method::BINDING,
    method::SEND,
    method::DATA,
    0x0FF,
];

/// Number of client 5-tuples the script can use.
pub const FLOWS: usize = 6;

/// The shared fake binder (it checks the core's bookkeeping: no relay id bound twice, none
/// closed that is not open), with every 7th port of the relay range taken by "someone else" so
/// the retry path runs too.
fn checking_binder() -> FakeBinder {
    let mut b = FakeBinder::new();
    b.busy = (50_000..=50_015).filter(|p| p % 7 == 3).collect();
    b
}

fn configs() -> &'static [(ferroturn::config::Config, Arc<CoreConfig>); 2] {
    static CONFIGS: OnceLock<[(ferroturn::config::Config, Arc<CoreConfig>); 2]> = OnceLock::new();
    CONFIGS.get_or_init(|| {
        CONFS.map(|text| {
            let config = from_conf_str(text, "fuzz.conf").expect("fuzz configuration loads");
            let core = Arc::new(core_config_from(
                &config,
                1,
                &Revocations::default(),
                &ServerAddresses::default(),
            ));
            (config, core)
        })
    })
}

/// Credentials of client flow `i`: REST users (flows 0 and 4 share one, flow 2's has expired)
/// and the static user (flows 3 and 5), which only the second configuration accepts.
fn credentials(i: usize) -> (String, String) {
    let rest = |user: String| {
        let pass = rest_password(SECRET.as_bytes(), &user);
        (user, pass)
    };
    match i {
        0 | 4 => rest(format!("{}:user0", UNIX_START + 86_400)),
        1 => rest(format!("{}:user1", UNIX_START + 86_400)),
        2 => rest(format!("{}:late", UNIX_START - 10)),
        _ => ("alice".into(), "wonderland".into()),
    }
}

/// How far a script got, printed when `FERROTURN_FUZZ_TRACE` is set (run.sh checks that the
/// seeds get past authentication and relay both ways).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Allocations created.
    pub allocations: u32,
    /// Success responses sent.
    pub successes: u32,
    /// Error responses sent.
    pub errors: u32,
    /// Client datagrams relayed to a peer.
    pub to_peer: u32,
    /// Peer datagrams forwarded to a client.
    pub to_client: u32,
}

/// The protocol core with its clock, binder and what each client flow has learned.
pub struct Script {
    outcome: Outcome,
    server: Server,
    binder: FakeBinder,
    now: Instant,
    nonces: [Option<Vec<u8>>; FLOWS],
    tid: u32,
    out: Vec<u8>,
    req: Vec<u8>,
    peer_buf: Vec<u8>,
    /// CONNECTION-IDs the core handed out (the last few).
    conn_ids: Vec<u32>,
}

/// CONNECTION-IDs a script remembers.
const CONN_IDS: usize = 8;
/// Connect (RFC 6062).
const CONNECT: u16 = 0x00A;
/// ConnectionBind (RFC 6062).
const CONNECTION_BIND: u16 = 0x00B;

fn flow(i: usize) -> Flow {
    Flow {
        socket: SocketId::Listener((i % 2) as u32),
        remote: SocketAddr::new([203, 0, 113, 7].into(), 40_000 + i as u16),
    }
}

fn peer(i: usize) -> SocketAddr {
    PEERS[i % PEERS.len()].parse().expect("literal")
}

impl Script {
    /// A fresh core with configuration `which` (0 or 1).
    pub fn new(which: usize) -> Self {
        let (config, core) = &configs()[which % 2];
        let shared = Arc::new(shared_from_config(config).expect("port range"));
        let now = Instant::now();
        Script {
            outcome: Outcome::default(),
            server: Server::new(shared, core.clone(), now, UNIX_START, 7, 0),
            binder: checking_binder(),
            now,
            nonces: Default::default(),
            tid: 0,
            out: vec![0; 2048],
            req: vec![0; 2048],
            peer_buf: vec![0; PEER_HEADROOM + 1500 + PEER_TAILROOM],
            conn_ids: Vec::new(),
        }
    }

    /// Runs a whole script.
    pub fn run(data: &[u8]) -> Outcome {
        let Some((&first, mut rest)) = data.split_first() else {
            return Outcome::default();
        };
        let mut s = Script::new(first as usize);
        while let Some((&op, tail)) = rest.split_first() {
            let (len, tail) = match tail.split_first() {
                Some((&l, t)) => (l as usize, t),
                None => (0, tail),
            };
            let take = len.min(tail.len());
            let (payload, tail) = tail.split_at(take);
            rest = tail;
            s.step(op, payload);
        }
        s.finish()
    }

    fn step(&mut self, op: u8, payload: &[u8]) {
        let arg = (op / 8) as usize;
        match op % 8 {
            0 => self.client(arg % FLOWS, Transport::Udp, payload),
            1 => self.client(arg % FLOWS, Transport::Tcp, payload),
            2 => self.signed(arg, payload),
            3 => self.signed(arg + 32, payload),
            4 => {
                let relay = RelayId::new((arg % 8) as u32);
                let first = payload.first().copied().unwrap_or(0);
                let from = peer(first as usize);
                if first & 0x80 != 0 {
                    let from = SocketAddr::new(from.ip(), from.port() + u16::from(first & 7));
                    let now = self.now;
                    if let Some(id) = self.server.handle_tcp_incoming(now, relay, from) {
                        self.remember(id);
                    }
                } else {
                    self.peer(relay, from, payload);
                }
            }
            5 => {
                // Quadratic steps reach both the 30 s housekeeping and the hour-long lifetimes.
                self.now += Duration::from_secs((arg * arg * 4) as u64 + 1);
                let now = self.now;
                if now >= self.server.poll_timeout() {
                    self.server.handle_timeout(now, &mut self.binder);
                }
            }
            6 => {
                // ChannelData on one of the channels signed requests bind (0x4000..=0x4003).
                let channel = 0x4000 + (arg & 3) as u16;
                let mut frame = channel.to_be_bytes().to_vec();
                frame.extend((payload.len() as u16).to_be_bytes());
                frame.extend_from_slice(payload);
                self.client((arg >> 2) % FLOWS, Transport::Udp, &frame);
            }
            _ => {
                let now = self.now;
                if arg == 31 {
                    let draining = !self.server.is_draining();
                    self.server.set_draining(draining);
                } else if arg == 30 {
                    if let Some(&id) = self.conn_ids.first() {
                        self.server.handle_tcp_closed(id);
                    }
                } else {
                    self.server
                        .handle_flow_closed(now, flow(arg % FLOWS), &mut self.binder);
                }
            }
        }
        while let Some(event) = self.server.poll_event() {
            if matches!(event, Event::AllocationCreated { .. }) {
                self.outcome.allocations += 1;
            }
        }
        self.run_tcp_commands();
        self.check();
    }

    /// What a runtime does with the core's TCP relay commands.
    fn run_tcp_commands(&mut self) {
        while let Some(command) = self.server.poll_tcp() {
            match command {
                TcpCommand::Connect { id, peer, .. } => {
                    assert!(peer.port() != 0, "connect to port 0");
                    let now = self.now;
                    self.server.handle_tcp_connected(now, id, id % 3 != 0);
                }
                TcpCommand::SendToClient { message, .. } => {
                    let msg = Message::parse(&message).expect("the core sent valid STUN");
                    let attrs = msg.attributes().expect("the core sent valid attributes");
                    if let Some(id) = attrs.connection_id {
                        self.remember(id);
                    }
                }
                TcpCommand::Bind { .. } | TcpCommand::Close { .. } => {}
            }
        }
    }

    fn remember(&mut self, id: u32) {
        if self.conn_ids.len() == CONN_IDS {
            self.conn_ids.remove(0);
        }
        self.conn_ids.push(id);
    }

    /// A raw datagram (or stream frame) from client flow `i`.
    fn client(&mut self, i: usize, transport: Transport, data: &[u8]) {
        let now = self.now;
        let action = self.server.handle_client(
            now,
            flow(i),
            transport,
            data,
            &mut self.out,
            &mut self.binder,
        );
        self.after_client(i, data.len(), action);
    }

    fn after_client(&mut self, i: usize, input_len: usize, action: ClientAction) {
        match action {
            ClientAction::None => {}
            ClientAction::Reply(n) => {
                assert!(n <= self.out.len(), "reply longer than the buffer");
                let msg = Message::parse(&self.out[..n]).expect("the core sent valid STUN");
                let attrs = msg.attributes().expect("the core sent valid attributes");
                assert!(
                    matches!(msg.class, Class::Success | Class::Error | Class::Indication),
                    "the core sent a request"
                );
                if let Some(nonce) = attrs.nonce {
                    self.nonces[i] = Some(nonce.to_vec());
                }
                match msg.class {
                    Class::Success => self.outcome.successes += 1,
                    Class::Error => self.outcome.errors += 1,
                    _ => {}
                }
                if trace() {
                    let code = find_attr(&self.out[..n], attr::ERROR_CODE)
                        .map(|v| v[2] as u16 * 100 + v[3] as u16);
                    eprintln!(
                        "fuzz-trace: flow {i} {:?} {:#x} {code:?}",
                        msg.class, msg.method
                    );
                }
            }
            ClientAction::Relay {
                start, end, peer, ..
            } => {
                assert!(
                    start <= end && end <= input_len,
                    "relay range outside input"
                );
                assert!(peer.port() != 0, "relay to port 0");
                self.outcome.to_peer += 1;
            }
        }
    }

    /// A request from flow `(arg >> 3) % 6` of method `arg & 7` (`arg` is 0..64), with
    /// attributes from `payload` and the flow's credentials (once it has learned a nonce) so the
    /// fuzzer gets past authentication. Flows 1 and 4 are TCP; 3 and 5 add FINGERPRINT.
    fn signed(&mut self, arg: usize, payload: &[u8]) {
        let i = (arg >> 3) % FLOWS;
        // The unknown method's slot also carries RFC 6062's, in turn.
        let m = match (METHODS[arg & 7], self.tid % 3) {
            (0x0FF, 1) => CONNECT,
            (0x0FF, 2) => CONNECTION_BIND,
            (m, _) => m,
        };
        self.tid = self.tid.wrapping_add(1);
        let mut tid = [0u8; 12];
        tid[..4].copy_from_slice(&self.tid.to_be_bytes());
        // Send and Data are indications (unauthenticated); the rest are requests.
        let class = if m == method::SEND || m == method::DATA {
            Class::Indication
        } else {
            Class::Request
        };
        let Ok(mut w) = MessageWriter::new(&mut self.req, m, class, tid) else {
            return;
        };
        // Attributes: type index, length, value; an index past the table names a peer.
        let mut p = payload;
        while let [t, l, rest @ ..] = p {
            let len = (*l as usize).min(rest.len());
            let (value, tail) = rest.split_at(len);
            p = tail;
            let idx = *t as usize;
            let ok = if idx < ATTR_TYPES.len() {
                w.attr(ATTR_TYPES[idx], value).is_ok()
            } else if idx < 64 {
                w.xor_address(attr::XOR_PEER_ADDRESS, &peer(idx - ATTR_TYPES.len()))
                    .is_ok()
            } else if idx < 96 {
                // 95: TCP (RFC 6062); the rest UDP, as the seeds expect.
                let protocol = if idx == 95 { 6 } else { 17 };
                w.attr_u32(attr::REQUESTED_TRANSPORT, protocol << 24)
                    .is_ok()
            } else if idx < 120 {
                let ch = 0x4000 + (value.first().copied().unwrap_or(0) as u32 % 4);
                w.attr_u32(attr::CHANNEL_NUMBER, ch << 16).is_ok()
            } else if idx < 128 {
                let id = match self.conn_ids.len() {
                    0 => u32::from(value.first().copied().unwrap_or(0)),
                    n => self.conn_ids[value.first().copied().unwrap_or(0) as usize % n],
                };
                w.attr(attr::CONNECTION_ID, &id.to_be_bytes()).is_ok()
            } else {
                w.attr(u16::from_be_bytes([*t, *l]), value).is_ok()
            };
            if !ok {
                return;
            }
        }
        let (user, pass) = credentials(i);
        if let (Class::Request, Some(nonce)) = (class, &self.nonces[i]) {
            if w.attr(attr::USERNAME, user.as_bytes()).is_err()
                || w.attr(attr::REALM, REALM.as_bytes()).is_err()
                || w.attr(attr::NONCE, nonce).is_err()
                || w.integrity(&long_term_key(&user, REALM, &pass)).is_err()
            {
                return;
            }
            if (i == 3 || i == 5) && w.fingerprint().is_err() {
                return;
            }
        }
        let n = w.finish();
        let now = self.now;
        let action = self.server.handle_client(
            now,
            flow(i),
            Self::transport_of(i, m),
            &self.req[..n],
            &mut self.out,
            &mut self.binder,
        );
        self.after_client(i, n, action);
    }

    /// The transport of a signed request from flow `i`: flows 1 and 4 are TCP, and a
    /// ConnectionBind always is (it opens a data connection).
    fn transport_of(i: usize, m: u16) -> Transport {
        if i == 1 || i == 4 || m == CONNECTION_BIND {
            Transport::Tcp
        } else {
            Transport::Udp
        }
    }

    /// A datagram from `from` to relay socket `relay`.
    fn peer(&mut self, relay: RelayId, from: SocketAddr, payload: &[u8]) {
        let len = payload.len().min(1500);
        self.peer_buf[PEER_HEADROOM..PEER_HEADROOM + len].copy_from_slice(&payload[..len]);
        let now = self.now;
        let action = self
            .server
            .handle_peer(now, relay, from, &mut self.peer_buf, len);
        if let PeerAction::Forward { start, end, .. } = action {
            assert!(
                start < end && end <= self.peer_buf.len(),
                "forward range outside the buffer"
            );
            self.outcome.to_client += 1;
            let framed = &self.peer_buf[start..end];
            if framed[0] & 0xC0 == 0 {
                let msg = Message::parse(framed).expect("Data indication is valid STUN");
                assert_eq!(msg.method, method::DATA);
            } else {
                let (ch, data) = ferroturn::proto::channel_data::parse(framed, MAX_CHANNEL)
                    .expect("valid ChannelData");
                // Neither configuration sets rfc5766-channel-numbers.
                assert!(ferroturn::proto::channel_data::is_valid_channel(
                    ch,
                    MAX_CHANNEL
                ));
                assert_eq!(data, &payload[..len], "ChannelData carries the payload");
            }
        }
    }

    fn check(&self) {
        // A dual allocation (ADDITIONAL-ADDRESS-FAMILY) holds two relay sockets.
        let relays: usize = self
            .server
            .allocations()
            .map(|(_, a)| a.live_relays().count())
            .sum();
        assert_eq!(
            relays,
            self.binder.open.len(),
            "allocations and open relay sockets disagree"
        );
        assert!(
            self.server.tcp_timer_entries() <= self.server.tcp_connection_count(),
            "more TCP relay timers than connections"
        );
    }

    /// Ends the run: after every lifetime has passed, no allocation and no socket is left.
    fn finish(mut self) -> Outcome {
        self.now += Duration::from_secs(2 * 3600);
        let now = self.now;
        self.server.handle_timeout(now, &mut self.binder);
        while self.server.poll_event().is_some() {}
        assert_eq!(
            self.server.allocation_count(),
            0,
            "allocations outlived their lifetime"
        );
        assert_eq!(self.binder.open.len(), 0, "relay sockets left open");
        self.run_tcp_commands();
        assert_eq!(
            self.server.tcp_connection_count(),
            0,
            "TCP relay connections outlived their allocations"
        );
        if trace() {
            eprintln!("fuzz-trace: {:?}", self.outcome);
        }
        self.outcome
    }
}

/// The relay configuration `jitsi check` compares the fuzzed Prosody side with.
const JITSI_CONF: &str =
    "use-auth-secret\nstatic-auth-secret=fuzz-secret\nrealm=meet.example.org\n\
                          listening-port=3478\ntls-listening-port=5349\nexternal-ip=203.0.113.5\n";

/// What `ferroturn jitsi check` does with one Prosody-side file named `file_name`: read it as
/// the command does, then compare it with a fixed relay configuration. Every outcome is fine but
/// a panic; each mismatch is one non-empty sentence.
pub fn jitsi_check(file_name: &str, data: &[u8]) {
    use ferroturn::jitsi::check::{check, CheckOptions};
    static CONF: OnceLock<ferroturn::config::Config> = OnceLock::new();
    static HOOK: OnceLock<()> = OnceLock::new();
    // full_moon 3.0's lexer can reach `unreachable!()` (a backtick it mis-scans after an
    // unfinished string). The reader runs it on its own "lua-parser" thread and turns such a
    // panic into "the Lua parser failed on this file"; libFuzzer's hook would abort on it, so
    // that one thread's panics are left to the reader. Every other panic still aborts.
    HOOK.get_or_init(|| {
        let fuzzer_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() != Some("lua-parser") {
                fuzzer_hook(info);
            }
        }));
    });
    let conf = CONF.get_or_init(|| from_conf_str(JITSI_CONF, "turnserver.conf").expect("loads"));
    let Ok(side) = ferroturn::jitsi::cli::prosody_side_from_bytes(file_name, data, file_name)
    else {
        return;
    };
    for found in check(conf, &side, CheckOptions::default()) {
        assert!(!found.trim().is_empty(), "an empty mismatch sentence");
    }
}

fn trace() -> bool {
    static TRACE: OnceLock<bool> = OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("FERROTURN_FUZZ_TRACE").is_some())
}

/// The value of the first attribute of type `typ` in a well-formed message.
fn find_attr(raw: &[u8], typ: u16) -> Option<&[u8]> {
    let mut pos = 20;
    while pos + 4 <= raw.len() {
        let t = u16::from_be_bytes([raw[pos], raw[pos + 1]]);
        let len = u16::from_be_bytes([raw[pos + 2], raw[pos + 3]]) as usize;
        let value = raw.get(pos + 4..pos + 4 + len)?;
        if t == typ {
            return Some(value);
        }
        pos += 4 + ((len + 3) & !3);
    }
    None
}
