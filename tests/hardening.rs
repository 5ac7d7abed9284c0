//! Abuse against the real binary on loopback: an unauthenticated Allocate flood from 10,000
//! source ports under `unauthorized-ratelimit`, log-line forgery through USERNAME, and an
//! oversized USERNAME over TCP. Every loop is bounded in count and time.

mod common;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use common::prom::{scrape, Scrape};
use common::stun::{self, attr, method, Message};
use common::turn_raw::{RawClient, Session};
use common::{free_tcp_port, rest_credentials, Auth, TestServer, SECRET};

const FLOOD_PORTS: usize = 10_000;
/// Sockets held open at once while flooding, so the ports in a batch are distinct.
const BATCH: usize = 1_000;
const RPS: u64 = 20;
/// The test server's relay threads (one limiter table each); see `--relay-threads` below.
const SHARDS: u64 = 2;

async fn scrape_async(addr: SocketAddr) -> Scrape {
    tokio::task::spawn_blocking(move || scrape(addr))
        .await
        .expect("scrape task")
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}

#[tokio::test]
async fn unauthenticated_flood_from_10000_ports_is_limited_and_leaves_a_session_relaying() {
    let metrics_port = free_tcp_port().to_string();
    let server = TestServer::start_with(
        Auth::RestAndStatic,
        &[
            "--prometheus",
            "--prometheus-port",
            &metrics_port,
            "--relay-threads",
            "2",
            "--unauthorized-ratelimit",
            "--unauthorized-ratelimit-rps",
            "20",
        ],
    )
    .await;
    let metrics: SocketAddr = format!("127.0.0.1:{metrics_port}").parse().unwrap();
    let canary = Session::open(server.addr, SECRET, "canary").await;
    canary.assert_relays(b"before the flood").await;
    let before = scrape_async(metrics).await;
    let rss_before = rss_kib(server.pid());

    let target = server.addr;
    let started = Instant::now();
    let ports = tokio::task::spawn_blocking(move || {
        let mut ports = HashSet::new();
        let mut sent = 0;
        while sent < FLOOD_PORTS {
            let batch: Vec<UdpSocket> = (0..BATCH)
                .map(|_| UdpSocket::bind("127.0.0.1:0").expect("bind flood socket"))
                .collect();
            for sock in &batch {
                ports.insert(sock.local_addr().expect("addr").port());
                let req = Message::request(method::ALLOCATE)
                    .with(attr::REQUESTED_TRANSPORT, stun::udp_transport())
                    .encode(None, false);
                let _ = sock.send_to(&req, target);
                sent += 1;
            }
        }
        ports.len()
    })
    .await
    .expect("flood task");
    let flood_secs = started.elapsed().as_secs_f64();
    assert!(ports >= BATCH, "only {ports} distinct source ports");
    // The established session kept relaying through the flood's aftermath.
    canary.assert_relays(b"after the flood").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = scrape_async(metrics).await;
    let rss_after = rss_kib(server.pid());

    let d = |name: &str| after.sum(name) - before.sum(name);
    let limited = d("ferroturn_unauthorized_ratelimited_total") as u64;
    let answered = d("ferroturn_auth_challenges_total") as u64;
    let allowed = SHARDS * (RPS + RPS * (flood_secs.ceil() as u64 + 1));
    println!(
        "flood: {FLOOD_PORTS} Allocates from {ports} ports in {flood_secs:.2} s; \
         {answered} challenged, {limited} dropped by the limit; RSS {rss_before} -> {rss_after} KiB"
    );
    assert!(answered <= allowed, "{answered} challenges > {allowed}");
    // Loopback may drop a few datagrams under the burst; nearly all must be counted.
    assert!(
        answered + limited >= (FLOOD_PORTS as u64) * 9 / 10,
        "{answered} + {limited} of {FLOOD_PORTS} seen"
    );
    assert_eq!(d("ferroturn_allocations_created_total"), 0.0);
    // No per-request state: the resident size may move by allocator noise only.
    assert!(
        rss_after <= rss_before + 2048,
        "RSS grew from {rss_before} to {rss_after} KiB"
    );
    // A new client from the flooding address is served once its budget is back.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut late = RawClient::rest(server.addr, SECRET, "late").await;
    assert!(late.allocate().await.is_ok(), "{}", server.logs());
}

#[tokio::test]
async fn control_characters_in_a_username_cannot_forge_log_lines() {
    let server = TestServer::start().await;
    let user = "eve\r\nFORGED allocation ended\u{1b}[2J\0";
    let (username, password) = rest_credentials(SECRET, user, 3600);
    let mut client = RawClient::new(server.addr, &username, &password).await;
    assert!(client.allocate().await.is_ok());
    server
        .wait_log("allocation created", 1, Duration::from_secs(5))
        .await;
    let logs = server.logs();
    assert!(
        !logs.lines().any(|l| l.starts_with("FORGED")),
        "a forged line reached the log:\n{logs}"
    );
    assert!(
        !logs.contains('\u{1b}') && !logs.contains('\0'),
        "raw control characters in the log:\n{logs}"
    );
    assert!(
        logs.contains("eve\\r\\nFORGED allocation ended\\e[2J\\0"),
        "the username is logged escaped:\n{logs}"
    );
}

#[tokio::test]
async fn a_10_kb_username_over_tcp_gets_400() {
    let server = TestServer::start().await;
    let addr = server.addr;
    let answer = tokio::task::spawn_blocking(move || {
        let mut tcp = TcpStream::connect(addr).expect("connect over TCP");
        tcp.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let long = "u".repeat(10_000);
        let req = Message::request(method::ALLOCATE)
            .with(attr::REQUESTED_TRANSPORT, stun::udp_transport())
            .with(attr::USERNAME, long.as_bytes())
            .with(attr::REALM, common::REALM.as_bytes())
            .with(attr::NONCE, &b"0123456789abcdef"[..])
            .encode(Some(&[0u8; 16]), false);
        tcp.write_all(&req).expect("send");
        let mut head = [0u8; 20];
        tcp.read_exact(&mut head).expect("answer header");
        let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
        let mut body = vec![0u8; len];
        tcp.read_exact(&mut body).expect("answer body");
        [head.to_vec(), body].concat()
    })
    .await
    .expect("tcp task");
    let msg = Message::decode(&answer).expect("a STUN answer");
    assert_eq!(msg.error_code(), Some(400));
}
