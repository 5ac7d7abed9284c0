//! A TURN client over UDP made of the raw codec, for tests that need exact control of each
//! request (Refresh with lifetime 0, ChannelData at a chosen rate) and a relayed session to a
//! loopback peer that can be checked in both directions.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::timeout;

use super::stun::{self, attr, method, Class, Message};
use super::{rest_credentials, REALM};

const ANSWER_TIMEOUT: Duration = Duration::from_millis(400);
/// How long to listen before concluding that nothing was relayed.
pub const SILENCE: Duration = Duration::from_millis(300);

pub struct RawClient {
    pub sock: UdpSocket,
    pub server: SocketAddr,
    pub username: String,
    key: Vec<u8>,
    nonce: Option<Vec<u8>>,
}

impl RawClient {
    pub async fn new(server: SocketAddr, username: &str, password: &str) -> RawClient {
        RawClient {
            sock: UdpSocket::bind("127.0.0.1:0").await.expect("bind client"),
            server,
            username: username.to_owned(),
            key: stun::long_term_key(username, REALM, password),
            nonce: None,
        }
    }

    /// A client with fresh TURN REST credentials for `user` signed with `secret`.
    pub async fn rest(server: SocketAddr, secret: &str, user: &str) -> RawClient {
        let (username, password) = rest_credentials(secret, user, 3600);
        Self::new(server, &username, &password).await
    }

    pub fn addr(&self) -> SocketAddr {
        self.sock.local_addr().expect("local addr")
    }

    /// The next datagram from the server, or `None` after `wait`.
    pub async fn recv(&self, wait: Duration) -> Option<Vec<u8>> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut buf = vec![0u8; 2048];
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match timeout(left, self.sock.recv_from(&mut buf)).await {
                Ok(Ok((n, from))) if from == self.server => return Some(buf[..n].to_vec()),
                Ok(Ok(_)) => continue,
                _ => return None,
            }
        }
    }

    async fn transact(&self, msg: &Message, key: Option<&[u8]>) -> Message {
        let raw = msg.encode(key, true);
        for _ in 0..5 {
            self.sock.send_to(&raw, self.server).await.expect("send");
            let deadline = tokio::time::Instant::now() + ANSWER_TIMEOUT;
            loop {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                let Some(got) = self.recv(left).await else {
                    break;
                };
                if let Some(res) = Message::decode(&got) {
                    if res.txid == msg.txid && res.class != Class::Request {
                        return res;
                    }
                }
            }
        }
        panic!("no answer to {:#05x} from {}", msg.method, self.server);
    }

    /// Sends `build()` with long-term credentials. The first call learns the nonce from a 401
    /// to the same request sent without credentials; an answer other than 401 to that
    /// unauthenticated request (e.g. 508 while draining) is returned as is. A 438 renews it.
    pub async fn request(&mut self, build: impl Fn() -> Message) -> Message {
        for _ in 0..3 {
            let Some(nonce) = self.nonce.clone() else {
                let res = self.transact(&build(), None).await;
                match (res.error_code(), res.get(attr::NONCE)) {
                    (Some(401), Some(nonce)) => self.nonce = Some(nonce.to_vec()),
                    _ => return res,
                }
                continue;
            };
            let msg = build()
                .with(attr::USERNAME, self.username.as_bytes())
                .with(attr::REALM, REALM.as_bytes())
                .with(attr::NONCE, nonce);
            let res = self.transact(&msg, Some(&self.key)).await;
            if res.error_code() == Some(438) {
                self.nonce = res.get(attr::NONCE).map(<[u8]>::to_vec);
                continue;
            }
            return res;
        }
        panic!("could not authenticate as {}", self.username);
    }

    /// Allocates a UDP relay: the relayed address, or the error code.
    pub async fn allocate(&mut self) -> Result<SocketAddr, u16> {
        let res = self
            .request(|| {
                Message::request(method::ALLOCATE)
                    .with(attr::REQUESTED_TRANSPORT, stun::udp_transport())
            })
            .await;
        match res.class {
            Class::Success => Ok(res
                .xor_addr(attr::XOR_RELAYED_ADDRESS)
                .expect("XOR-RELAYED-ADDRESS")),
            _ => Err(res.error_code().expect("error response has ERROR-CODE")),
        }
    }

    /// Binds `ch` to `peer` (which also installs the permission); panics on failure.
    pub async fn channel_bind(&mut self, ch: u16, peer: SocketAddr) {
        let res = self
            .request(|| {
                Message::request(method::CHANNEL_BIND)
                    .with(attr::CHANNEL_NUMBER, stun::channel_number_value(ch))
                    .with_addr(attr::XOR_PEER_ADDRESS, peer)
            })
            .await;
        assert_eq!(
            res.class,
            Class::Success,
            "ChannelBind: {:?}",
            res.error_code()
        );
    }

    /// Refresh with LIFETIME `secs`: `Ok(granted lifetime)` or the error code.
    pub async fn refresh(&mut self, secs: u32) -> Result<u32, u16> {
        let res = self
            .request(|| {
                Message::request(method::REFRESH).with(attr::LIFETIME, stun::lifetime_value(secs))
            })
            .await;
        match res.class {
            Class::Success => Ok(res.lifetime().unwrap_or(0)),
            _ => Err(res.error_code().expect("error response has ERROR-CODE")),
        }
    }

    pub async fn send_channel(&self, ch: u16, data: &[u8]) {
        self.sock
            .send_to(&stun::channel_data(ch, data), self.server)
            .await
            .expect("send ChannelData");
    }

    /// The payload of the next ChannelData on `ch`, skipping anything else, or `None`.
    pub async fn recv_channel(&self, ch: u16, wait: Duration) -> Option<Vec<u8>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let got = self.recv(left).await?;
            if let Some((n, data)) = stun::parse_channel_data(&got) {
                if n == ch {
                    return Some(data.to_vec());
                }
            }
        }
    }
}

/// A relayed session: a client with a channel bound to its own loopback peer.
pub struct Session {
    pub client: RawClient,
    pub peer: UdpSocket,
    pub relayed: SocketAddr,
    pub channel: u16,
}

impl Session {
    /// Allocates with REST credentials of `user` signed by `secret` and binds a channel to a
    /// fresh peer socket.
    pub async fn open(server: SocketAddr, secret: &str, user: &str) -> Session {
        let client = RawClient::rest(server, secret, user).await;
        Self::open_with(client).await
    }

    pub async fn open_with(mut client: RawClient) -> Session {
        let relayed = client
            .allocate()
            .await
            .unwrap_or_else(|code| panic!("allocate as {} refused: {code}", client.username));
        let peer = UdpSocket::bind("127.0.0.1:0").await.expect("bind peer");
        let channel = 0x4000;
        client
            .channel_bind(channel, peer.local_addr().expect("peer addr"))
            .await;
        Session {
            client,
            peer,
            relayed,
            channel,
        }
    }

    pub fn peer_addr(&self) -> SocketAddr {
        self.peer.local_addr().expect("peer addr")
    }

    /// What the peer receives within `wait`, with its source.
    pub async fn peer_recv(&self, wait: Duration) -> Option<(Vec<u8>, SocketAddr)> {
        let mut buf = vec![0u8; 2048];
        match timeout(wait, self.peer.recv_from(&mut buf)).await {
            Ok(Ok((n, from))) => Some((buf[..n].to_vec(), from)),
            _ => None,
        }
    }

    /// Sends `payload` client → peer and a reply peer → client, asserting both arrive intact.
    pub async fn assert_relays(&self, payload: &[u8]) {
        self.client.send_channel(self.channel, payload).await;
        let (got, from) = self
            .peer_recv(Duration::from_secs(2))
            .await
            .unwrap_or_else(|| {
                panic!("{}: peer did not receive the payload", self.client.username)
            });
        assert_eq!(got, payload, "payload at the peer");
        assert_eq!(from, self.relayed, "source at the peer");
        let reply: Vec<u8> = payload.iter().rev().copied().collect();
        self.peer
            .send_to(&reply, self.relayed)
            .await
            .expect("peer send");
        let back = self
            .client
            .recv_channel(self.channel, Duration::from_secs(2))
            .await
            .unwrap_or_else(|| {
                panic!("{}: client did not receive the reply", self.client.username)
            });
        assert_eq!(back, reply, "payload at the client");
    }

    /// Asserts the relay no longer carries data client → peer.
    pub async fn assert_not_relayed(&self) {
        self.client
            .send_channel(self.channel, b"after the end")
            .await;
        let got = self.peer_recv(SILENCE).await;
        assert!(
            got.is_none(),
            "{}: the peer still received {got:?}",
            self.client.username
        );
    }
}
