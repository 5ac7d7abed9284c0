//! Drives the server with an independent TURN client (webrtc-rs `turn` crate) through a
//! relay to a UDP peer and back.
//!
//! How that client picks its data path (turn 0.8, `client/relay_conn.rs`): the first
//! `send_to` towards a peer performs CreatePermission and waits for it, then starts a
//! ChannelBind in the background and sends the payload as a Send indication. Every later
//! `send_to` to that peer also uses a Send indication until the ChannelBind success has
//! been processed; from then on it sends ChannelData. The tests therefore send one packet,
//! wait until the ChannelBind success response has been seen on the wire, and then send
//! the rest, and count both kinds of frames on the client's socket.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::stun::{self, Class, Message};
use common::{rest_credentials, Auth, TestServer, REALM, SECRET, STATIC_PASS, STATIC_USER};
use tokio::net::UdpSocket;
use tokio::time::timeout;
use turn::client::{Client, ClientConfig};
use webrtc_util::Conn;

const TEST_TIMEOUT: Duration = Duration::from_secs(30);
const PACKET_TIMEOUT: Duration = Duration::from_secs(2);

/// What went over the client's socket, classified by the first bytes of each datagram.
#[derive(Default, Debug)]
struct Counters {
    sent_send_indications: AtomicUsize,
    sent_channel_data: AtomicUsize,
    recv_data_indications: AtomicUsize,
    recv_channel_data: AtomicUsize,
    recv_channel_bind_ok: AtomicUsize,
}

/// A UDP socket that counts TURN frame kinds in both directions.
struct RecordingConn {
    sock: UdpSocket,
    counters: Arc<Counters>,
}

fn stun_type(buf: &[u8]) -> Option<u16> {
    (buf.len() >= 20 && buf[0] & 0xC0 == 0).then(|| u16::from_be_bytes([buf[0], buf[1]]))
}

fn is_channel_data(buf: &[u8]) -> bool {
    buf.len() >= 4 && (0x40..=0x4F).contains(&buf[0])
}

#[async_trait]
impl Conn for RecordingConn {
    async fn connect(&self, addr: SocketAddr) -> webrtc_util::Result<()> {
        Ok(self.sock.connect(addr).await?)
    }

    async fn recv(&self, buf: &mut [u8]) -> webrtc_util::Result<usize> {
        Ok(self.sock.recv(buf).await?)
    }

    async fn recv_from(&self, buf: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
        let (n, from) = self.sock.recv_from(buf).await?;
        let c = &self.counters;
        if is_channel_data(&buf[..n]) {
            c.recv_channel_data.fetch_add(1, Ordering::SeqCst);
        } else if stun_type(&buf[..n])
            == Some(stun::message_type(stun::method::DATA, Class::Indication))
        {
            c.recv_data_indications.fetch_add(1, Ordering::SeqCst);
        } else if stun_type(&buf[..n])
            == Some(stun::message_type(
                stun::method::CHANNEL_BIND,
                Class::Success,
            ))
        {
            c.recv_channel_bind_ok.fetch_add(1, Ordering::SeqCst);
        }
        Ok((n, from))
    }

    async fn send(&self, buf: &[u8]) -> webrtc_util::Result<usize> {
        Ok(self.sock.send(buf).await?)
    }

    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> webrtc_util::Result<usize> {
        let c = &self.counters;
        if is_channel_data(buf) {
            c.sent_channel_data.fetch_add(1, Ordering::SeqCst);
        } else if stun_type(buf) == Some(stun::message_type(stun::method::SEND, Class::Indication))
        {
            c.sent_send_indications.fetch_add(1, Ordering::SeqCst);
        }
        Ok(self.sock.send_to(buf, target).await?)
    }

    fn local_addr(&self) -> webrtc_util::Result<SocketAddr> {
        Ok(self.sock.local_addr()?)
    }

    fn remote_addr(&self) -> Option<SocketAddr> {
        None
    }

    async fn close(&self) -> webrtc_util::Result<()> {
        Ok(())
    }

    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}

async fn new_client(server: &TestServer, user: &str, pass: &str) -> (Client, Arc<Counters>) {
    let counters = Arc::new(Counters::default());
    let conn = RecordingConn {
        sock: UdpSocket::bind("127.0.0.1:0").await.expect("bind client"),
        counters: Arc::clone(&counters),
    };
    let addr = server.addr.to_string();
    let client = Client::new(ClientConfig {
        stun_serv_addr: addr.clone(),
        turn_serv_addr: addr,
        username: user.to_owned(),
        password: pass.to_owned(),
        realm: REALM.to_owned(),
        software: String::new(),
        rto_in_ms: 0,
        conn: Arc::new(conn),
        vnet: None,
    })
    .await
    .expect("client config");
    client.listen().await.expect("client listen");
    (client, counters)
}

/// Echoes up to `max` datagrams, then returns the source address of each one.
fn spawn_echo_peer(peer: UdpSocket, max: usize) -> tokio::task::JoinHandle<Vec<SocketAddr>> {
    tokio::spawn(async move {
        let mut sources = Vec::new();
        let mut buf = vec![0u8; 2048];
        for _ in 0..max {
            match timeout(Duration::from_secs(5), peer.recv_from(&mut buf)).await {
                Ok(Ok((n, from))) => {
                    sources.push(from);
                    let _ = peer.send_to(&buf[..n], from).await;
                }
                _ => break,
            }
        }
        sources
    })
}

async fn wait_for(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..200 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Allocates, then relays `n` packets to an echoing peer and back, checking each payload
/// byte for byte, the relayed address, and that both data paths were used both ways.
async fn round_trip(server: &TestServer, user: &str, pass: &str, n: usize) {
    let (client, counters) = new_client(server, user, pass).await;
    let relay = client.allocate().await.expect("allocate");
    let relayed = relay.local_addr().expect("relayed addr");
    assert_eq!(relayed.ip().to_string(), "127.0.0.1", "relayed IP");
    assert!(
        server.in_relay_range(relayed),
        "relayed port {} outside {}..={}",
        relayed.port(),
        server.min_port,
        server.max_port
    );

    let peer = UdpSocket::bind("127.0.0.1:0").await.expect("bind peer");
    let peer_addr = peer.local_addr().expect("peer addr");
    let echo = spawn_echo_peer(peer, n);

    let mut buf = vec![0u8; 2048];
    for (i, payload) in common::payloads(n).iter().enumerate() {
        relay.send_to(payload, peer_addr).await.expect("send_to");
        let (len, from) = timeout(PACKET_TIMEOUT, relay.recv_from(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("packet {i} ({} bytes) not echoed", payload.len()))
            .expect("recv_from");
        assert_eq!(from, peer_addr, "packet {i} source");
        assert_eq!(&buf[..len], &payload[..], "packet {i} payload");
        if i == 0 {
            wait_for("ChannelBind success", || {
                counters.recv_channel_bind_ok.load(Ordering::SeqCst) > 0
            })
            .await;
            // The client marks the binding ready right after it reads the response.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    let sources = timeout(PACKET_TIMEOUT * 4, echo)
        .await
        .expect("echo peer finishes")
        .expect("echo task");
    assert_eq!(sources.len(), n, "peer received every packet");
    assert!(
        sources.iter().all(|s| *s == relayed),
        "peer saw packets from {sources:?}, expected only {relayed}"
    );

    let c = &counters;
    assert_eq!(c.sent_send_indications.load(Ordering::SeqCst), 1, "{c:?}");
    assert_eq!(c.sent_channel_data.load(Ordering::SeqCst), n - 1, "{c:?}");
    // The first echo races the ChannelBind, so it may come back either way.
    let inbound_ind = c.recv_data_indications.load(Ordering::SeqCst);
    let inbound_ch = c.recv_channel_data.load(Ordering::SeqCst);
    assert_eq!(inbound_ind + inbound_ch, n, "{c:?}");
    assert!(inbound_ch >= n - 1, "{c:?}");

    // A second port on the permitted IP has no channel, so the server must use a Data
    // indication: this makes the inbound Send/Data path deterministic.
    let other_peer = UdpSocket::bind("127.0.0.1:0").await.expect("bind peer 2");
    let other_addr = other_peer.local_addr().expect("peer 2 addr");
    other_peer
        .send_to(b"via data indication", relayed)
        .await
        .expect("peer 2 send");
    let (len, from) = timeout(PACKET_TIMEOUT, relay.recv_from(&mut buf))
        .await
        .expect("data indication from peer 2")
        .expect("recv_from");
    assert_eq!(from, other_addr);
    assert_eq!(&buf[..len], b"via data indication");
    assert_eq!(
        c.recv_data_indications.load(Ordering::SeqCst),
        inbound_ind + 1,
        "{c:?}"
    );

    relay.close().await.expect("close relay");
    client.close().await.expect("close client");
}

#[tokio::test]
async fn rest_credentials_round_trip_over_send_and_channel() {
    timeout(TEST_TIMEOUT, async {
        let server = TestServer::start().await;
        let (user, pass) = rest_credentials(SECRET, "alice", 3600);
        round_trip(&server, &user, &pass, 50).await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn static_user_round_trip_over_send_and_channel() {
    timeout(TEST_TIMEOUT, async {
        // coturn ignores static users when use-auth-secret is on, so this server has
        // only the long-term user configured.
        let server = TestServer::start_with(Auth::StaticOnly, &[]).await;
        round_trip(&server, STATIC_USER, STATIC_PASS, 50).await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn relayed_address_is_loopback_in_range_and_seen_by_peer() {
    timeout(TEST_TIMEOUT, async {
        let server = TestServer::start().await;
        let (user, pass) = rest_credentials(SECRET, "bob", 600);
        // round_trip asserts the relayed IP and port range and the peer-side source.
        round_trip(&server, &user, &pass, 3).await;
    })
    .await
    .expect("test timed out");
}

async fn allocate_error(server: &TestServer, user: &str, pass: &str) -> String {
    let (client, _) = new_client(server, user, pass).await;
    let err = match client.allocate().await {
        Ok(_) => panic!("allocate with user {user:?} should have been refused"),
        Err(e) => e.to_string(),
    };
    client.close().await.expect("close client");
    err
}

#[tokio::test]
async fn wrong_password_is_refused() {
    timeout(TEST_TIMEOUT, async {
        let server = TestServer::start().await;
        let err = allocate_error(&server, STATIC_USER, "not-wonderland").await;
        assert!(err.contains("401"), "static user: {err}");
        let (user, _) = rest_credentials(SECRET, "alice", 3600);
        let err = allocate_error(&server, &user, "bm90IHRoZSBwYXNzd29yZA==").await;
        assert!(err.contains("401"), "REST user: {err}");
        let (user, pass) = rest_credentials("some-other-secret", "alice", 3600);
        let err = allocate_error(&server, &user, &pass).await;
        assert!(err.contains("401"), "REST user, wrong secret: {err}");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn expired_rest_username_is_refused() {
    timeout(TEST_TIMEOUT, async {
        let server = TestServer::start().await;
        let (user, pass) = rest_credentials(SECRET, "alice", -60);
        let err = allocate_error(&server, &user, &pass).await;
        assert!(err.contains("401"), "expired REST user: {err}");
    })
    .await
    .expect("test timed out");
}

/// A Binding request through the turn client reports our own address.
#[tokio::test]
async fn binding_request_reports_client_address() {
    timeout(TEST_TIMEOUT, async {
        let server = TestServer::start().await;
        let (client, _) = new_client(&server, STATIC_USER, STATIC_PASS).await;
        let mapped = client.send_binding_request().await.expect("binding");
        assert_eq!(mapped.ip().to_string(), "127.0.0.1");
        client.close().await.expect("close client");
        // Keep the raw codec honest too: a Binding success must carry FINGERPRINT.
        let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let req = Message::request(stun::method::BINDING);
        sock.send_to(&req.encode(None, true), server.addr)
            .await
            .expect("send");
        let mut buf = [0u8; 1500];
        let (n, _) = timeout(PACKET_TIMEOUT, sock.recv_from(&mut buf))
            .await
            .expect("binding answer")
            .expect("recv");
        let res = Message::decode(&buf[..n]).expect("decodes");
        assert_eq!(res.class, Class::Success);
        assert_eq!(
            res.xor_addr(stun::attr::XOR_MAPPED_ADDRESS),
            Some(sock.local_addr().expect("addr"))
        );
        assert!(stun::verify_fingerprint(&buf[..n]), "fingerprint");
    })
    .await
    .expect("test timed out");
}
