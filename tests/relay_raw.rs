//! Hand-built STUN/TURN messages on a raw UDP socket: the exact answers RFC 8656 asks
//! for, and garbage that must be dropped without disturbing anyone else.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::stun::{self, attr, method, Class, Message};
use common::{rest_credentials, Auth, TestServer, REALM, SECRET};
use tokio::net::UdpSocket;
use tokio::time::timeout;

const TEST_TIMEOUT: Duration = Duration::from_secs(30);
const ANSWER_TIMEOUT: Duration = Duration::from_millis(500);
/// How long we listen to conclude that nothing arrives.
const SILENCE: Duration = Duration::from_millis(300);

/// A TURN client made of a UDP socket and the raw codec.
struct RawClient {
    sock: UdpSocket,
    server: SocketAddr,
    user: String,
    key: Vec<u8>,
    nonce: Option<Vec<u8>>,
}

impl RawClient {
    async fn new(server: &TestServer, user: &str, pass: &str) -> RawClient {
        RawClient {
            sock: UdpSocket::bind("127.0.0.1:0").await.expect("bind client"),
            server: server.addr,
            user: user.to_owned(),
            key: stun::long_term_key(user, REALM, pass),
            nonce: None,
        }
    }

    async fn rest(server: &TestServer) -> RawClient {
        let (user, pass) = rest_credentials(SECRET, "alice", 3600);
        Self::new(server, &user, &pass).await
    }

    fn addr(&self) -> SocketAddr {
        self.sock.local_addr().expect("local addr")
    }

    /// Receives one datagram from the server, or `None` after `wait`.
    async fn recv(&self, wait: Duration) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; 2048];
        match timeout(wait, self.sock.recv_from(&mut buf)).await {
            Ok(Ok((n, from))) if from == self.server => Some(buf[..n].to_vec()),
            _ => None,
        }
    }

    /// Sends `raw` and returns the response with transaction id `txid`, retransmitting a
    /// few times (UDP) and skipping unrelated datagrams.
    async fn transact(&self, raw: &[u8], txid: [u8; 12]) -> (Message, Vec<u8>) {
        for _ in 0..4 {
            self.sock.send_to(raw, self.server).await.expect("send");
            for _ in 0..16 {
                let Some(got) = self.recv(ANSWER_TIMEOUT).await else {
                    break;
                };
                if let Some(msg) = Message::decode(&got) {
                    if msg.txid == txid {
                        return (msg, got);
                    }
                }
            }
        }
        panic!("no answer to transaction {txid:02x?}");
    }

    /// Sends an unauthenticated request.
    async fn plain(&self, msg: Message) -> Message {
        let txid = msg.txid;
        self.transact(&msg.encode(None, true), txid).await.0
    }

    /// Sends the message `build` makes, with long-term credentials, learning or
    /// refreshing the nonce on 401/438. Each attempt is a new transaction, so `build` runs
    /// again (XOR-PEER-ADDRESS of an IPv6 peer depends on the transaction id).
    /// Returns the response and its raw bytes.
    async fn auth(&mut self, build: impl Fn() -> Message) -> (Message, Vec<u8>) {
        for _ in 0..3 {
            let Some(nonce) = self.nonce.clone() else {
                let res = self
                    .plain(
                        Message::request(method::ALLOCATE)
                            .with(attr::REQUESTED_TRANSPORT, stun::udp_transport()),
                    )
                    .await;
                assert_eq!(res.error_code(), Some(401), "unauthenticated request");
                self.nonce = Some(res.get(attr::NONCE).expect("NONCE").to_vec());
                continue;
            };
            let m = build()
                .with(attr::USERNAME, self.user.as_bytes())
                .with(attr::REALM, REALM.as_bytes())
                .with(attr::NONCE, nonce);
            let (res, raw) = self
                .transact(&m.encode(Some(&self.key), true), m.txid)
                .await;
            if res.error_code() == Some(438) {
                self.nonce = res.get(attr::NONCE).map(<[u8]>::to_vec);
                continue;
            }
            return (res, raw);
        }
        panic!("could not authenticate");
    }

    async fn allocate(&mut self) -> SocketAddr {
        let (res, _) = self
            .auth(|| {
                Message::request(method::ALLOCATE)
                    .with(attr::REQUESTED_TRANSPORT, stun::udp_transport())
            })
            .await;
        assert_eq!(
            res.class,
            Class::Success,
            "allocate: {:?}",
            res.error_code()
        );
        res.xor_addr(attr::XOR_RELAYED_ADDRESS)
            .expect("XOR-RELAYED-ADDRESS")
    }

    async fn create_permission(&mut self, peer: SocketAddr) -> Message {
        self.auth(|| {
            Message::request(method::CREATE_PERMISSION).with_addr(attr::XOR_PEER_ADDRESS, peer)
        })
        .await
        .0
    }

    async fn channel_bind(&mut self, ch: u16, peer: SocketAddr) -> Message {
        self.auth(|| {
            Message::request(method::CHANNEL_BIND)
                .with(attr::CHANNEL_NUMBER, stun::channel_number_value(ch))
                .with_addr(attr::XOR_PEER_ADDRESS, peer)
        })
        .await
        .0
    }

    async fn send_indication(&self, peer: SocketAddr, data: &[u8]) {
        let msg = Message::indication(method::SEND)
            .with_addr(attr::XOR_PEER_ADDRESS, peer)
            .with(attr::DATA, data);
        self.sock
            .send_to(&msg.encode(None, true), self.server)
            .await
            .expect("send indication");
    }

    async fn send_channel_data(&self, ch: u16, data: &[u8]) {
        self.sock
            .send_to(&stun::channel_data(ch, data), self.server)
            .await
            .expect("send channel data");
    }

    async fn send_raw(&self, data: &[u8]) {
        self.sock
            .send_to(data, self.server)
            .await
            .expect("send raw");
    }
}

async fn peer_recv(peer: &UdpSocket, wait: Duration) -> Option<(Vec<u8>, SocketAddr)> {
    let mut buf = vec![0u8; 2048];
    match timeout(wait, peer.recv_from(&mut buf)).await {
        Ok(Ok((n, from))) => Some((buf[..n].to_vec(), from)),
        _ => None,
    }
}

/// Client → peer over ChannelData and back, checking the channel number on the way in.
async fn assert_channel_relays(client: &RawClient, peer: &UdpSocket, relayed: SocketAddr, ch: u16) {
    let payload: Vec<u8> = (0..=255u8).collect();
    client.send_channel_data(ch, &payload).await;
    let (got, from) = peer_recv(peer, ANSWER_TIMEOUT)
        .await
        .expect("peer receives ChannelData payload");
    assert_eq!(got, payload);
    assert_eq!(from, relayed);
    peer.send_to(b"pong", relayed).await.expect("peer send");
    let raw = client
        .recv(ANSWER_TIMEOUT)
        .await
        .expect("ChannelData to client");
    let (got_ch, data) = stun::parse_channel_data(&raw).expect("answer is ChannelData");
    assert_eq!(got_ch, ch);
    assert_eq!(data, b"pong");
}

#[tokio::test]
async fn binding_reports_client_address() {
    timeout(TEST_TIMEOUT, async {
        let server = TestServer::start().await;
        let client = RawClient::rest(&server).await;
        let res = client.plain(Message::request(method::BINDING)).await;
        assert_eq!(res.class, Class::Success);
        assert_eq!(res.method, method::BINDING);
        assert_eq!(res.xor_addr(attr::XOR_MAPPED_ADDRESS), Some(client.addr()));
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn allocate_challenge_then_success() {
    timeout(TEST_TIMEOUT, async {
        let server = TestServer::start().await;
        let mut client = RawClient::rest(&server).await;

        let res = client
            .plain(
                Message::request(method::ALLOCATE)
                    .with(attr::REQUESTED_TRANSPORT, stun::udp_transport()),
            )
            .await;
        assert_eq!((res.method, res.class), (method::ALLOCATE, Class::Error));
        assert_eq!(res.error_code(), Some(401));
        assert_eq!(res.get(attr::REALM), Some(REALM.as_bytes()));
        assert!(res.get(attr::NONCE).is_some_and(|n| !n.is_empty()), "NONCE");

        let (res, raw) = client
            .auth(|| {
                Message::request(method::ALLOCATE)
                    .with(attr::REQUESTED_TRANSPORT, stun::udp_transport())
            })
            .await;
        assert_eq!((res.method, res.class), (method::ALLOCATE, Class::Success));
        let relayed = res
            .xor_addr(attr::XOR_RELAYED_ADDRESS)
            .expect("XOR-RELAYED-ADDRESS");
        assert_eq!(relayed.ip().to_string(), "127.0.0.1");
        assert!(server.in_relay_range(relayed), "relayed {relayed}");
        assert_eq!(res.xor_addr(attr::XOR_MAPPED_ADDRESS), Some(client.addr()));
        assert!(res.lifetime().is_some_and(|l| l > 0), "LIFETIME");
        assert!(
            stun::verify_integrity(&raw, &client.key),
            "MESSAGE-INTEGRITY"
        );
        assert!(stun::verify_fingerprint(&raw), "FINGERPRINT");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn wrong_password_gets_401() {
    timeout(TEST_TIMEOUT, async {
        let server = TestServer::start().await;
        let (user, _) = rest_credentials(SECRET, "alice", 3600);
        let mut client = RawClient::new(&server, &user, "wrong").await;
        let (res, _) = client
            .auth(|| {
                Message::request(method::ALLOCATE)
                    .with(attr::REQUESTED_TRANSPORT, stun::udp_transport())
            })
            .await;
        assert_eq!(res.class, Class::Error);
        assert_eq!(res.error_code(), Some(401));

        let (user, pass) = rest_credentials(SECRET, "alice", -60);
        let mut client = RawClient::new(&server, &user, &pass).await;
        let (res, _) = client
            .auth(|| {
                Message::request(method::ALLOCATE)
                    .with(attr::REQUESTED_TRANSPORT, stun::udp_transport())
            })
            .await;
        assert_eq!(res.class, Class::Error, "expired REST username");
        assert_eq!(res.error_code(), Some(401), "expired REST username");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn permission_send_indication_data_indication_and_channels() {
    timeout(TEST_TIMEOUT, async {
        let server = TestServer::start().await;
        let mut client = RawClient::rest(&server).await;
        let relayed = client.allocate().await;
        let peer = UdpSocket::bind("127.0.0.1:0").await.expect("bind peer");
        let peer_addr = peer.local_addr().expect("peer addr");

        let res = client.create_permission(peer_addr).await;
        assert_eq!(
            (res.method, res.class),
            (method::CREATE_PERMISSION, Class::Success)
        );

        // Send indication → peer.
        client.send_indication(peer_addr, b"hello via send").await;
        let (got, from) = peer_recv(&peer, ANSWER_TIMEOUT)
            .await
            .expect("peer gets Send data");
        assert_eq!(got, b"hello via send");
        assert_eq!(from, relayed);

        // Peer → client before any channel: a Data indication.
        peer.send_to(b"hello via data", relayed)
            .await
            .expect("peer send");
        let raw = client.recv(ANSWER_TIMEOUT).await.expect("Data indication");
        let ind = Message::decode(&raw).expect("STUN");
        assert_eq!((ind.method, ind.class), (method::DATA, Class::Indication));
        assert_eq!(ind.xor_addr(attr::XOR_PEER_ADDRESS), Some(peer_addr));
        assert_eq!(ind.get(attr::DATA), Some(&b"hello via data"[..]));

        let res = client.channel_bind(0x4000, peer_addr).await;
        assert_eq!(
            (res.method, res.class),
            (method::CHANNEL_BIND, Class::Success)
        );
        assert_channel_relays(&client, &peer, relayed, 0x4000).await;

        // Send indications still work once a channel exists.
        client.send_indication(peer_addr, b"again via send").await;
        let (got, _) = peer_recv(&peer, ANSWER_TIMEOUT)
            .await
            .expect("peer gets Send data");
        assert_eq!(got, b"again via send");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn unpermitted_peer_is_dropped() {
    timeout(TEST_TIMEOUT, async {
        let server = TestServer::start().await;
        let mut client = RawClient::rest(&server).await;
        let relayed = client.allocate().await;
        let peer = UdpSocket::bind("127.0.0.1:0").await.expect("bind peer");
        let peer_addr = peer.local_addr().expect("peer addr");
        let res = client.create_permission(peer_addr).await;
        assert_eq!(res.class, Class::Success);

        // Permissions are per IP: 127.0.0.2 has none.
        let stranger = UdpSocket::bind("127.0.0.2:0")
            .await
            .expect("bind 127.0.0.2");
        for _ in 0..3 {
            stranger
                .send_to(b"let me in", relayed)
                .await
                .expect("stranger send");
        }
        assert_eq!(
            client.recv(SILENCE).await,
            None,
            "unpermitted peer got through"
        );

        // Sending towards an unpermitted peer is dropped too.
        let stranger_addr = stranger.local_addr().expect("stranger addr");
        client
            .send_indication(stranger_addr, b"no permission")
            .await;
        assert!(
            peer_recv(&stranger, SILENCE).await.is_none(),
            "sent without permission"
        );

        // The permitted peer is unaffected.
        peer.send_to(b"still here", relayed)
            .await
            .expect("peer send");
        let raw = client
            .recv(ANSWER_TIMEOUT)
            .await
            .expect("permitted peer data");
        let ind = Message::decode(&raw).expect("STUN");
        assert_eq!(ind.get(attr::DATA), Some(&b"still here"[..]));
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn channel_number_outside_range_gets_400() {
    timeout(TEST_TIMEOUT, async {
        let server = TestServer::start().await;
        let mut client = RawClient::rest(&server).await;
        client.allocate().await;
        // Each attempt uses its own peer: a peer already bound to a channel would make
        // any other number a 400 for a different reason.
        let peer = |i: u16| SocketAddr::from(([127, 0, 0, 1], 10_000 + i));
        // RFC 8656 §12: 0x4000-0x4FFF; 0x5000-0x7FFF belong to RFC 7983 demultiplexing.
        // coturn 4.6 still accepts RFC 5766's range there.
        let mut invalid = vec![0x0000, 0x3FFF, 0x8000, 0xFFFF];
        if !common::is_coturn() {
            invalid.extend([0x5000, 0x7FFF]);
        }
        for (i, ch) in invalid.into_iter().enumerate() {
            let res = client.channel_bind(ch, peer(i as u16)).await;
            assert_eq!(res.class, Class::Error, "channel {ch:#06x}");
            assert_eq!(res.error_code(), Some(400), "channel {ch:#06x}");
        }
        for (i, ch) in [0x4000, 0x4FFF].into_iter().enumerate() {
            let res = client.channel_bind(ch, peer(100 + i as u16)).await;
            assert_eq!(res.class, Class::Success, "channel {ch:#06x}");
        }
        // Rebinding a bound peer to another channel is also a 400 (RFC 8656 section 11.2).
        let res = client.channel_bind(0x4001, peer(100)).await;
        assert_eq!(res.error_code(), Some(400), "second channel for one peer");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn rfc5766_channel_numbers_accepts_the_old_range() {
    if common::is_coturn() {
        return; // coturn 4.6 has no such option (and accepts the old range anyway)
    }
    timeout(TEST_TIMEOUT, async {
        let server =
            TestServer::start_with(Auth::RestAndStatic, &["--rfc5766-channel-numbers"]).await;
        let mut client = RawClient::rest(&server).await;
        client.allocate().await;
        let peer = |i: u16| SocketAddr::from(([127, 0, 0, 1], 10_000 + i));
        for (i, ch) in [0x5000, 0x7FFF].into_iter().enumerate() {
            let res = client.channel_bind(ch, peer(i as u16)).await;
            assert_eq!(res.class, Class::Success, "channel {ch:#06x}");
        }
        let res = client.channel_bind(0x8000, peer(9)).await;
        assert_eq!(res.error_code(), Some(400));
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn refresh_zero_deletes_allocation() {
    timeout(TEST_TIMEOUT, async {
        let server = TestServer::start().await;
        let mut client = RawClient::rest(&server).await;
        client.allocate().await;
        let (res, _) = client
            .auth(|| {
                Message::request(method::REFRESH).with(attr::LIFETIME, stun::lifetime_value(0))
            })
            .await;
        assert_eq!((res.method, res.class), (method::REFRESH, Class::Success));
        assert_eq!(res.lifetime(), Some(0));

        let peer: SocketAddr = "127.0.0.1:9".parse().expect("addr");
        if common::is_coturn() {
            // coturn deviates from RFC 8656 section 7.3: it deletes on its next timer tick
            // (about 1 s later; CreatePermission still succeeds meanwhile), and then answers
            // 400 instead of 437 on the 5-tuple that has no allocation.
            let mut code = None;
            for _ in 0..10 {
                let res = client.create_permission(peer).await;
                if res.class == Class::Error {
                    code = res.error_code();
                    break;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            assert!(
                matches!(code, Some(400 | 437)),
                "coturn after delete: {code:?}"
            );
            return;
        }
        let res = client.create_permission(peer).await;
        assert_eq!(res.class, Class::Error);
        assert_eq!(res.error_code(), Some(437), "CreatePermission after delete");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn malformed_packets_get_no_answer_and_do_not_disturb_others() {
    timeout(TEST_TIMEOUT, async {
        let server = TestServer::start().await;
        let mut healthy = RawClient::rest(&server).await;
        let relayed = healthy.allocate().await;
        let peer = UdpSocket::bind("127.0.0.1:0").await.expect("bind peer");
        let peer_addr = peer.local_addr().expect("peer addr");
        let res = healthy.channel_bind(0x4001, peer_addr).await;
        assert_eq!(res.class, Class::Success);
        assert_channel_relays(&healthy, &peer, relayed, 0x4001).await;

        let valid = Message::request(method::BINDING).encode(None, true);
        // A Binding without the cookie is a legal RFC 3489 request (RFC 8489 section 12),
        // so the cookie is broken on an Allocate, which has no such excuse.
        let mut bad_cookie = Message::request(method::ALLOCATE)
            .with(attr::REQUESTED_TRANSPORT, stun::udp_transport())
            .encode(None, true);
        bad_cookie[4] ^= 0xFF;
        let mut long_len = valid.clone();
        long_len[3] = 0x40; // claims 64 attribute bytes that are not there
        let mut overlong_channel = stun::channel_data(0x4001, b"short");
        overlong_channel[2..4].copy_from_slice(&1000u16.to_be_bytes());
        let garbage: Vec<Vec<u8>> = vec![
            vec![],
            vec![0x00],
            (0..64u8)
                .map(|i| i.wrapping_mul(37).wrapping_add(11))
                .collect(),
            vec![0xFF; 1200],
            valid[..12].to_vec(),
            bad_cookie,
            long_len,
            overlong_channel.clone(),
            vec![0x40, 0x01, 0x00],
        ];

        let attacker = RawClient::rest(&server).await;
        for g in &garbage {
            attacker.send_raw(g).await;
        }
        assert_eq!(attacker.recv(SILENCE).await, None, "garbage was answered");

        // Garbage on the healthy client's own 5-tuple: a bound channel with a lying length.
        healthy.send_raw(&overlong_channel).await;
        healthy.send_raw(&[0x40, 0x01]).await;
        assert_eq!(healthy.recv(SILENCE).await, None, "garbage was answered");
        assert!(
            peer_recv(&peer, SILENCE).await.is_none(),
            "garbage was relayed"
        );

        assert_channel_relays(&healthy, &peer, relayed, 0x4001).await;
        let res = healthy.plain(Message::request(method::BINDING)).await;
        assert_eq!(res.class, Class::Success, "server still answers");
    })
    .await
    .expect("test timed out");
}
