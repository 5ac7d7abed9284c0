//! Dual allocations (RFC 8656 §7.2, ADDITIONAL-ADDRESS-FAMILY) against the real binary on
//! loopback: the §7.2 rejections, ADDRESS-ERROR-CODE when the relay has no IPv6 address, and
//! an IPv4 + IPv6 allocation relaying to peers of both families, as the admin API and the
//! metrics show it.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::json::Json;
use common::prom::scrape;
use common::stun::{self, attr, method, Class, Message};
use common::turn_raw::RawClient;
use common::{free_tcp_port, http, Auth, TestServer, SECRET};
use tokio::net::UdpSocket;
use tokio::time::timeout;

const TEST_TIMEOUT: Duration = Duration::from_secs(30);
const WAIT: Duration = Duration::from_secs(2);
const REQUESTED_ADDRESS_FAMILY: u16 = 0x0017;
const EVEN_PORT: u16 = 0x0018;
const RESERVATION_TOKEN: u16 = 0x0022;
const ADDITIONAL_ADDRESS_FAMILY: u16 = 0x8000;
const ADDRESS_ERROR_CODE: u16 = 0x8001;
const TOKEN: &str = "dual-allocation-admin-token-0123456789";

/// A family attribute value: 1 = IPv4, 2 = IPv6.
fn family(f: u8) -> Vec<u8> {
    vec![f, 0, 0, 0]
}

/// Allocate with ADDITIONAL-ADDRESS-FAMILY = `aaf` and the extra attributes.
fn dual_request(aaf: u8, extra: &[(u16, Vec<u8>)]) -> Message {
    let mut m = Message::request(method::ALLOCATE)
        .with(attr::REQUESTED_TRANSPORT, stun::udp_transport())
        .with(ADDITIONAL_ADDRESS_FAMILY, family(aaf));
    for (typ, value) in extra {
        m = m.with(*typ, value.clone());
    }
    m
}

/// Every XOR-RELAYED-ADDRESS of a response, in order.
fn relayed(res: &Message) -> Vec<SocketAddr> {
    res.attrs
        .iter()
        .filter(|(t, _)| *t == attr::XOR_RELAYED_ADDRESS)
        .map(|(_, v)| stun::decode_xor_addr(v, &res.txid).expect("XOR-RELAYED-ADDRESS"))
        .collect()
}

/// ADDRESS-ERROR-CODE as (family, code).
fn address_error(res: &Message) -> Option<(u8, u16)> {
    let v = res.get(ADDRESS_ERROR_CODE)?;
    assert!(v.len() >= 4, "ADDRESS-ERROR-CODE too short: {v:?}");
    Some((v[0], u16::from(v[2] & 7) * 100 + u16::from(v[3])))
}

async fn peer_socket(ip: &str) -> UdpSocket {
    UdpSocket::bind((ip, 0)).await.expect("bind peer")
}

/// Binds `ch` to `peer`, then checks ChannelData both ways and that the peer sees `relay`.
async fn assert_channel_relays(
    client: &mut RawClient,
    ch: u16,
    peer: &UdpSocket,
    relay: SocketAddr,
) {
    client
        .channel_bind(ch, peer.local_addr().expect("peer addr"))
        .await;
    client.send_channel(ch, b"client to peer").await;
    let mut buf = [0u8; 1500];
    let (n, from) = timeout(WAIT, peer.recv_from(&mut buf))
        .await
        .expect("peer received nothing")
        .expect("peer recv");
    assert_eq!(&buf[..n], b"client to peer");
    assert_eq!(from, relay, "the relay of the peer's family sends");
    peer.send_to(b"peer to client", relay)
        .await
        .expect("peer send");
    let back = client.recv_channel(ch, WAIT).await.expect("reply relayed");
    assert_eq!(back, b"peer to client");
}

#[tokio::test]
async fn rfc_8656_section_7_2_rejections_get_400() {
    timeout(TEST_TIMEOUT, async {
        let server = TestServer::start().await;
        let mut c = RawClient::rest(server.addr, SECRET, "alice").await;
        let cases: [(&str, Message); 4] = [
            (
                "REQUESTED- with ADDITIONAL-ADDRESS-FAMILY",
                dual_request(2, &[(REQUESTED_ADDRESS_FAMILY, family(1))]),
            ),
            ("ADDITIONAL-ADDRESS-FAMILY = IPv4", dual_request(1, &[])),
            (
                "EVEN-PORT with R=1 and ADDITIONAL-ADDRESS-FAMILY",
                dual_request(2, &[(EVEN_PORT, vec![0x80])]),
            ),
            (
                "RESERVATION-TOKEN and ADDITIONAL-ADDRESS-FAMILY",
                dual_request(2, &[(RESERVATION_TOKEN, vec![7; 8])]),
            ),
        ];
        for (what, req) in cases {
            let res = c.request(|| req.clone()).await;
            assert_eq!(res.class, Class::Error, "{what}");
            assert_eq!(res.error_code(), Some(400), "{what}");
        }
        // Nothing was held back: the same 5-tuple still gets its allocation.
        assert!(c.allocate().await.is_ok());
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn without_an_ipv6_relay_address_the_answer_carries_address_error_code_440() {
    timeout(TEST_TIMEOUT, async {
        // The test server relays on relay-ip=127.0.0.1 only.
        let server = TestServer::start().await;
        let mut c = RawClient::rest(server.addr, SECRET, "alice").await;
        let res = c.request(|| dual_request(2, &[])).await;
        assert_eq!(res.class, Class::Success, "{:?}", res.error_code());
        let addrs = relayed(&res);
        assert_eq!(addrs.len(), 1, "{addrs:?}");
        assert!(addrs[0].is_ipv4() && server.in_relay_range(addrs[0]));
        assert_eq!(address_error(&res), Some((2, 440)));
        // The IPv4 half relays; an IPv6 peer is a family mismatch.
        let peer = peer_socket("127.0.0.1").await;
        assert_channel_relays(&mut c, 0x4000, &peer, addrs[0]).await;
        let v6_peer: SocketAddr = "[::1]:9".parse().expect("literal");
        let res = c
            .request(|| {
                Message::request(method::CREATE_PERMISSION)
                    .with_addr(attr::XOR_PEER_ADDRESS, v6_peer)
            })
            .await;
        assert_eq!(res.error_code(), Some(443));
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn with_only_an_ipv6_relay_address_the_ipv4_half_is_left_out_with_440() {
    timeout(TEST_TIMEOUT, async {
        let server = TestServer::start_with(Auth::RestAndStatic, &["--relay-ip", "::1"]).await;
        let mut c = RawClient::rest(server.addr, SECRET, "alice").await;
        let res = c.request(|| dual_request(2, &[])).await;
        assert_eq!(res.class, Class::Success, "{:?}", res.error_code());
        let addrs = relayed(&res);
        assert_eq!(addrs.len(), 1, "{addrs:?}");
        assert!(addrs[0].is_ipv6() && server.in_relay_range(addrs[0]));
        assert_eq!(address_error(&res), Some((1, 440)));
        let peer = peer_socket("::1").await;
        assert_channel_relays(&mut c, 0x4000, &peer, addrs[0]).await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn a_dual_allocation_relays_to_peers_of_both_families() {
    timeout(TEST_TIMEOUT, async {
        let admin_port = free_tcp_port();
        let metrics_port = free_tcp_port();
        let (admin_s, metrics_s) = (admin_port.to_string(), metrics_port.to_string());
        let server = TestServer::start_with(
            Auth::RestAndStatic,
            &[
                "--relay-ip",
                "127.0.0.1",
                "--relay-ip",
                "::1",
                "--admin-token",
                TOKEN,
                "--admin-port",
                &admin_s,
                "--prometheus",
                "--prometheus-port",
                &metrics_s,
            ],
        )
        .await;
        let mut c = RawClient::rest(server.addr, SECRET, "alice").await;
        let res = c.request(|| dual_request(2, &[])).await;
        assert_eq!(res.class, Class::Success, "{:?}", res.error_code());
        assert_eq!(address_error(&res), None);
        let addrs = relayed(&res);
        assert_eq!(addrs.len(), 2, "{addrs:?}");
        let (relay4, relay6) = (addrs[0], addrs[1]);
        assert!(relay4.is_ipv4() && relay6.is_ipv6(), "{addrs:?}");
        assert!(server.in_relay_range(relay4) && server.in_relay_range(relay6));
        // One log line names both relays (the e2e suite counts these lines).
        server
            .wait_log("dual allocation created", 1, Duration::from_secs(5))
            .await;
        let logs = server.logs();
        let created = logs
            .lines()
            .find(|l| l.contains("dual allocation created"))
            .unwrap_or_default();
        assert!(created.contains(&format!(" relay={relay4} ")), "{created}");
        assert!(created.contains(&format!(" relay6={relay6} ")), "{created}");

        let peer4 = peer_socket("127.0.0.1").await;
        let peer6 = peer_socket("::1").await;
        assert_channel_relays(&mut c, 0x4000, &peer4, relay4).await;
        assert_channel_relays(&mut c, 0x4001, &peer6, relay6).await;
        // A Send indication to the IPv6 peer leaves through the IPv6 relay too.
        let send = Message::indication(method::SEND)
            .with_addr(attr::XOR_PEER_ADDRESS, peer6.local_addr().expect("addr"))
            .with(attr::DATA, b"indication".to_vec());
        c.sock
            .send_to(&send.encode(None, true), server.addr)
            .await
            .expect("send");
        let mut buf = [0u8; 1500];
        let (n, from) = timeout(WAIT, peer6.recv_from(&mut buf))
            .await
            .expect("peer received nothing")
            .expect("peer recv");
        assert_eq!((&buf[..n], from), (&b"indication"[..], relay6));

        let api = SocketAddr::from(([127, 0, 0, 1], admin_port));
        let body = tokio::task::spawn_blocking(move || {
            http::request(api, "GET", "/admin/sessions", Some(TOKEN), "").body
        })
        .await
        .expect("admin task");
        let sessions = Json::parse(&body).expect("sessions JSON");
        let s = &sessions.arr()[0];
        assert_eq!(s.get("relayed").str(), relay4.to_string());
        assert_eq!(s.get("additional_relayed").str(), relay6.to_string());

        let metrics = SocketAddr::from(([127, 0, 0, 1], metrics_port));
        let m = tokio::task::spawn_blocking(move || scrape(metrics))
            .await
            .expect("scrape");
        assert_eq!(m.get("ferroturn_relay_sockets", &[("family", "ipv4")]), 1.0);
        assert_eq!(m.get("ferroturn_relay_sockets", &[("family", "ipv6")]), 1.0);
        assert_eq!(m.get("ferroturn_dual_allocations_total", &[]), 1.0);
        assert_eq!(m.get("ferroturn_allocations", &[]), 1.0, "one allocation");

        // Deleting the IPv6 half leaves the IPv4 one relaying.
        let res = c
            .request(|| {
                Message::request(method::REFRESH)
                    .with(attr::LIFETIME, stun::lifetime_value(0))
                    .with(REQUESTED_ADDRESS_FAMILY, family(2))
            })
            .await;
        assert_eq!(res.class, Class::Success);
        peer6.send_to(b"too late", relay6).await.expect("peer send");
        assert_eq!(
            c.recv_channel(0x4001, Duration::from_millis(300)).await,
            None
        );
        c.send_channel(0x4000, b"still here").await;
        let (n, _) = timeout(WAIT, peer4.recv_from(&mut buf))
            .await
            .expect("IPv4 half still relays")
            .expect("peer recv");
        assert_eq!(&buf[..n], b"still here");
        let m = tokio::task::spawn_blocking(move || scrape(metrics))
            .await
            .expect("scrape");
        assert_eq!(m.get("ferroturn_relay_sockets", &[("family", "ipv6")]), 0.0);
        assert_eq!(c.refresh(0).await, Ok(0));
    })
    .await
    .expect("test timed out");
}
