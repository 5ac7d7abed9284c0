//! A protocol core with allocations made through real STUN exchanges, for the benches.
#![allow(dead_code)]
#![allow(unreachable_pub)] // included by `mod` from each bench binary

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use ferroturn::bench::client::{Plan, State, TurnClient};
use ferroturn::proto::auth::nonce::NonceKey;
use ferroturn::proto::auth::rest::rest_password;
use ferroturn::proto::auth::{AuthSettings, Authenticator};
use ferroturn::proto::flow::{Flow, RelayId, SocketId, Transport};
use ferroturn::proto::peer_policy::{PeerPolicy, PeerPolicySettings};
use ferroturn::proto::ports::{PortPool, Reservations};
use ferroturn::proto::quota::Quotas;
use ferroturn::proto::server::{ClientAction, Server};
use ferroturn::proto::settings::{CoreConfig, Settings, Shared};
use ferroturn_proto::testing::FakeBinder;

pub const SECRET: &str = "bench-secret";
/// A peer outside every denied range.
pub const PEER: &str = "198.100.1.1:5000";

pub struct Bench {
    pub server: Server,
    pub binder: FakeBinder,
    pub now: Instant,
    /// (flow, relay id, channel) of each allocation made.
    pub allocations: Vec<(Flow, RelayId, u16)>,
}

pub fn flow(i: u32) -> Flow {
    Flow {
        socket: SocketId::Listener(0),
        remote: SocketAddr::new(
            IpAddr::from([203, 0, 113, (i >> 16) as u8]),
            (i & 0xFFFF) as u16,
        ),
    }
}

impl Bench {
    pub fn new(ports: u16) -> Bench {
        let auth = Authenticator::new(AuthSettings {
            realm: "bench".into(),
            rest_secrets: vec![SECRET.as_bytes().to_vec()],
            ..Default::default()
        });
        let shared = Arc::new(Shared {
            nonce_key: NonceKey::from_bytes([5; 32]),
            quotas: Quotas::new(0, 0),
            ports: PortPool::new(20000, 20000 + ports - 1).expect("port range"),
            reservations: Reservations::new(),
        });
        let config = Arc::new(CoreConfig {
            auth,
            peers: PeerPolicy::new(&PeerPolicySettings::default()),
            settings: Settings::default(),
            revoked_users: Default::default(),
            revoked_secrets: Default::default(),
        });
        let now = Instant::now();
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        Bench {
            server: Server::new(shared, config, now, unix, 7, 0),
            binder: FakeBinder::new(),
            now,
            allocations: Vec::new(),
        }
    }

    /// Allocates on `flow` and binds a channel to `PEER`, through the bench's own TURN client.
    pub fn allocate(&mut self, i: u32) {
        let f = flow(i);
        let expiry = self.now.elapsed().as_secs() + 4_000_000_000;
        let user = format!("{expiry}:u{i}");
        let pass = rest_password(SECRET.as_bytes(), &user);
        let peer: SocketAddr = PEER.parse().unwrap();
        let channel = 0x4000 + (i % 0x1000) as u16;
        let plan = Plan {
            peer: Some((peer, channel)),
            delete_after_allocate: false,
        };
        let mut client = TurnClient::new(i, user, pass, plan);
        let mut req = vec![0u8; 1500];
        let mut resp = vec![0u8; 1500];
        let mut n = client.start(self.now, &mut req);
        while let Some(len) = n {
            let action = self.server.handle_client(
                self.now,
                f,
                Transport::Udp,
                &req[..len],
                &mut resp,
                &mut self.binder,
            );
            let ClientAction::Reply(r) = action else {
                panic!("expected a reply, got {action:?}");
            };
            n = client.on_stun(self.now, &resp[..r], &mut req);
        }
        assert_eq!(client.state(), State::Ready, "allocation {i} failed");
        let relay = self
            .server
            .allocations()
            .find(|(_, a)| a.flow == f)
            .map(|(id, _)| id)
            .unwrap();
        self.allocations.push((f, relay, channel));
    }
}
