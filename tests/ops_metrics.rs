//! Operations, metrics side: `/metrics` counts the exact packets and bytes an independent
//! client (webrtc-rs `turn`) relays, the exposition parses strictly, health endpoints answer,
//! and `max-bps` holds a sender to its rate and counts what it drops.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::prom::{scrape, Scrape};
use common::turn_raw::Session;
use common::{free_tcp_port, http, rest_credentials, Auth, TestServer, REALM, SECRET};
use tokio::net::UdpSocket;
use tokio::time::timeout;
use turn::client::{Client, ClientConfig};
use webrtc_util::Conn;

const TEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Counters are bumped by the shard right after the packet leaves; give it a moment.
const SETTLE: Duration = Duration::from_millis(200);

/// Starts a server with the metrics listener on a free port; returns it and the address.
async fn server_with_metrics(extra: &[&str]) -> (TestServer, SocketAddr) {
    let port = free_tcp_port().to_string();
    let mut args = vec!["--prometheus", "--prometheus-port", &port];
    args.extend_from_slice(extra);
    let server = TestServer::start_with(Auth::RestAndStatic, &args).await;
    let addr = SocketAddr::from(([127, 0, 0, 1], port.parse().expect("port")));
    (server, addr)
}

async fn scrape_async(addr: SocketAddr) -> Scrape {
    tokio::task::spawn_blocking(move || scrape(addr))
        .await
        .expect("scrape task")
}

/// CPU seconds (user + system) of process `pid` from `/proc/PID/stat`.
fn proc_cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc stat");
    // The command name may contain spaces; fields after it are space-separated.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    // SAFETY: sysconf only reads a system constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks / hz
}

/// `after - before` of one sample.
fn delta(before: &Scrape, after: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    after.get(name, labels) - before.get(name, labels)
}

async fn turn_client(server: &TestServer, user: &str, pass: &str) -> Client {
    let conn = UdpSocket::bind("127.0.0.1:0").await.expect("bind client");
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
    client
}

#[tokio::test]
async fn metrics_count_relayed_packets_and_bytes_exactly() {
    timeout(TEST_TIMEOUT, async {
        let (server, metrics) = server_with_metrics(&[]).await;
        let before = scrape_async(metrics).await;
        assert_eq!(before.types["turn_total_allocations"], "gauge");
        assert_eq!(before.types["turn_total_traffic_peer_sentb"], "counter");
        assert_eq!(
            before.types["ferroturn_allocation_lifetime_seconds"],
            "histogram"
        );
        assert_eq!(
            before.get("turn_total_allocations", &[("type", "udp")]),
            0.0
        );
        assert_eq!(before.get("ferroturn_draining", &[]), 0.0);
        assert!(before.get("ferroturn_shards", &[]) >= 1.0);

        let (user, pass) = rest_credentials(SECRET, "alice", 3600);
        let client = turn_client(&server, &user, &pass).await;
        client.send_binding_request().await.expect("binding");
        let relay = client.allocate().await.expect("allocate");
        let relayed = relay.local_addr().expect("relayed addr");

        let during = scrape_async(metrics).await;
        assert_eq!(
            during.get("turn_total_allocations", &[("type", "udp")]),
            1.0
        );
        assert_eq!(
            during.get("turn_total_allocations", &[("type", "tcp")]),
            0.0
        );
        assert_eq!(
            delta(
                &before,
                &during,
                "ferroturn_allocations_created_total",
                &[("transport", "udp")]
            ),
            1.0
        );
        assert_eq!(delta(&before, &during, "stun_binding_request", &[]), 1.0);
        assert_eq!(delta(&before, &during, "stun_binding_response", &[]), 1.0);
        assert_eq!(delta(&before, &during, "stun_binding_error", &[]), 0.0);
        // The turn client's first Allocate carries no credentials: one challenge.
        assert!(delta(&before, &during, "ferroturn_auth_challenges_total", &[]) >= 1.0);
        assert_eq!(
            delta(
                &before,
                &during,
                "ferroturn_relay_ports",
                &[("state", "in_use")]
            ),
            1.0
        );

        // Payload sizes chosen so a miscount of one packet or a header is visible. The first
        // datagram goes as a Send indication, later ones as ChannelData once the background
        // ChannelBind is done; both count as data.
        let sizes: Vec<usize> = (0..40).map(|i| [1, 97, 500, 1200][i % 4] + i).collect();
        let total: usize = sizes.iter().sum();
        let peer = UdpSocket::bind("127.0.0.1:0").await.expect("bind peer");
        let peer_addr = peer.local_addr().expect("peer addr");
        let mut buf = vec![0u8; 2048];
        let mut pbuf = vec![0u8; 2048];
        for (i, &len) in sizes.iter().enumerate() {
            let payload: Vec<u8> = (0..len).map(|j| (i + j) as u8).collect();
            relay.send_to(&payload, peer_addr).await.expect("send_to");
            let (n, from) = timeout(Duration::from_secs(2), peer.recv_from(&mut pbuf))
                .await
                .unwrap_or_else(|_| panic!("packet {i} not relayed"))
                .expect("peer recv");
            assert_eq!((n, from), (len, relayed), "packet {i} at the peer");
            peer.send_to(&pbuf[..n], from).await.expect("echo");
            let (n, from) = timeout(Duration::from_secs(2), relay.recv_from(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("echo {i} not relayed back"))
                .expect("recv_from");
            assert_eq!((n, from), (len, peer_addr), "echo {i} at the client");
            if i == 0 {
                // Let the ChannelBind finish so the rest travels as ChannelData.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        tokio::time::sleep(SETTLE).await;
        let after = scrape_async(metrics).await;
        let n = sizes.len() as f64;
        let b = total as f64;
        for (name, want) in [
            ("turn_total_traffic_rcvp", n),
            ("turn_total_traffic_rcvb", b),
            ("turn_total_traffic_peer_sentp", n),
            ("turn_total_traffic_peer_sentb", b),
            ("turn_total_traffic_peer_rcvp", n),
            ("turn_total_traffic_peer_rcvb", b),
            ("turn_total_traffic_sentp", n),
            ("turn_total_traffic_sentb", b),
        ] {
            assert_eq!(delta(&before, &after, name, &[]), want, "{name}");
        }
        for direction in ["to_peer", "to_client"] {
            let moved: f64 = (0..after.get("ferroturn_shards", &[]) as usize)
                .map(|s| {
                    let shard = s.to_string();
                    let labels = [("shard", shard.as_str()), ("direction", direction)];
                    delta(&before, &after, "ferroturn_shard_packets_total", &labels)
                })
                .sum();
            assert_eq!(
                moved, n,
                "ferroturn_shard_packets_total direction={direction}"
            );
        }
        for reason in ["malformed", "no_permission", "no_allocation", "bandwidth"] {
            assert_eq!(
                delta(
                    &before,
                    &after,
                    "ferroturn_dropped_packets_total",
                    &[("reason", reason)]
                ),
                0.0,
                "dropped {reason}"
            );
        }

        relay.close().await.expect("close relay");
        // close() sends Refresh(lifetime 0) without waiting for the answer.
        let deadline = Instant::now() + Duration::from_secs(3);
        let ended = loop {
            let s = scrape_async(metrics).await;
            if s.get("turn_total_allocations", &[("type", "udp")]) == 0.0 {
                break s;
            }
            assert!(Instant::now() < deadline, "allocation never ended");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(
            delta(
                &before,
                &ended,
                "ferroturn_allocations_ended_total",
                &[("transport", "udp")]
            ),
            1.0
        );
        assert_eq!(
            delta(
                &before,
                &ended,
                "ferroturn_allocation_lifetime_seconds_count",
                &[]
            ),
            1.0
        );
        assert_eq!(
            delta(
                &before,
                &ended,
                "ferroturn_relay_ports",
                &[("state", "in_use")]
            ),
            0.0
        );
        client.close().await.expect("close client");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn exposition_parser_rejects_malformed_text() {
    // The parser must fail on what a lenient scraper would skip, or the strict-parse checks
    // above prove nothing.
    use common::prom::parse;
    let good = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\"} 3\n";
    assert!(parse(good).is_ok());
    for bad in [
        "a_total 3\n",                                           // no TYPE
        "# TYPE a_total counter\na_total 3",                     // no final newline
        "# TYPE a_total counter\na_total{x=1} 3\n",              // unquoted label
        "# TYPE a_total counter\na_total three\n",               // bad value
        "# TYPE 1a counter\n1a 3\n",                             // bad name
        "# TYPE a_total counter\na_total 3\na_total 4\n",        // duplicate
        "# TYPE a_total counter\n# TYPE a_total gauge\n",        // second TYPE
        "# TYPE a_total counter\na_total  3\n",                  // two spaces
        "# TYPE a_total counter\na_total -1\n",                  // negative counter
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_count 2\n", // no +Inf bucket
        "# just a comment\n",
    ] {
        assert!(parse(bad).is_err(), "accepted {bad:?}");
    }
}

#[tokio::test]
async fn health_and_readiness_follow_the_drain() {
    timeout(TEST_TIMEOUT, async {
        let (mut server, metrics) = server_with_metrics(&[]).await;
        let get =
            |path: &'static str| tokio::task::spawn_blocking(move || http::get(metrics, path));
        assert_eq!(get("/healthz").await.expect("task").status, 200);
        assert_eq!(get("/readyz").await.expect("task").status, 200);
        assert_eq!(get("/nope").await.expect("task").status, 404);
        let post = tokio::task::spawn_blocking(move || {
            http::request(metrics, "POST", "/metrics", None, "")
        });
        assert_eq!(post.await.expect("task").status, 405);

        // A live allocation keeps the drained process up, so readiness can be observed.
        let mut session = Session::open(server.addr, SECRET, "alice").await;
        server.signal(libc::SIGUSR1);
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let r = get("/readyz").await.expect("task");
            if r.status == 503 {
                break;
            }
            assert_eq!(r.status, 200);
            assert!(Instant::now() < deadline, "/readyz never turned 503");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(
            get("/healthz").await.expect("task").status,
            200,
            "alive while draining"
        );
        let s = scrape_async(metrics).await;
        assert_eq!(s.get("ferroturn_draining", &[]), 1.0);
        assert_eq!(s.get("turn_total_allocations", &[("type", "udp")]), 1.0);
        session.assert_relays(b"still flowing while draining").await;

        session.client.refresh(0).await.expect("refresh 0");
        let status = server
            .wait_exit(Duration::from_secs(3))
            .expect("drained server exits once its last allocation ends");
        assert!(status.success(), "exit status {status}");
    })
    .await
    .expect("test timed out");
}

/// `--max-bps 20000` against a client sending 1000-byte ChannelData at ~60 kB/s for ~3 s.
#[tokio::test]
async fn max_bps_holds_a_sender_to_its_rate() {
    const RATE: f64 = 20_000.0;
    const SIZE: usize = 1000;
    const SEND_RATE: f64 = 60_000.0;
    const DURATION: Duration = Duration::from_secs(3);
    timeout(TEST_TIMEOUT, async {
        let (server, metrics) = server_with_metrics(&["--max-bps", "20000"]).await;
        let session = Session::open(server.addr, SECRET, "alice").await;
        let before = scrape_async(metrics).await;

        let payload = vec![0x5a; SIZE];
        let interval = Duration::from_secs_f64(SIZE as f64 / SEND_RATE);
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut sent = 0usize;
        let mut received = 0usize;
        let mut buf = vec![0u8; 2048];
        let start = Instant::now();
        let mut last_send = start;
        while start.elapsed() < DURATION {
            tokio::select! {
                _ = ticker.tick() => {
                    session.client.send_channel(session.channel, &payload).await;
                    sent += 1;
                    last_send = Instant::now();
                }
                got = session.peer.recv_from(&mut buf) => {
                    let (n, _) = got.expect("peer recv");
                    assert_eq!(n, SIZE);
                    received += 1;
                }
            }
        }
        // Whatever is still in flight.
        while let Ok(Ok((n, _))) =
            timeout(Duration::from_millis(300), session.peer.recv_from(&mut buf)).await
        {
            assert_eq!(n, SIZE);
            received += 1;
        }
        let elapsed = last_send.duration_since(start).as_secs_f64();
        let offered = sent as f64 * SIZE as f64 / elapsed;
        assert!(
            offered > 2.0 * RATE,
            "the sender only offered {offered:.0} B/s"
        );
        // A full bucket to start with: max(rate/10, 3000) bytes, then the rate.
        let burst = (RATE / 10.0).max(3000.0);
        let expected = burst + RATE * elapsed;
        let got = (received * SIZE) as f64;
        eprintln!(
            "max-bps: sent {sent}, peer got {got} B in {elapsed:.2} s, expected {expected:.0} B"
        );
        assert!(
            (got - expected).abs() <= expected * 0.10,
            "peer got {got} bytes in {elapsed:.2} s, expected {expected:.0} ±10 % (sent {sent})"
        );

        tokio::time::sleep(SETTLE).await;
        let after = scrape_async(metrics).await;
        let dropped = sent - received;
        assert_eq!(
            delta(
                &before,
                &after,
                "ferroturn_dropped_packets_total",
                &[("reason", "bandwidth")]
            ),
            dropped as f64
        );
        assert_eq!(
            delta(
                &before,
                &after,
                "ferroturn_dropped_bytes_total",
                &[("reason", "bandwidth")]
            ),
            (dropped * SIZE) as f64
        );
        assert_eq!(
            delta(&before, &after, "turn_total_traffic_rcvp", &[]),
            sent as f64
        );
        assert_eq!(
            delta(&before, &after, "turn_total_traffic_peer_sentb", &[]),
            got
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn process_build_quota_and_reload_metrics() {
    timeout(TEST_TIMEOUT, async {
        let (server, metrics) = server_with_metrics(&["--total-quota", "40"]).await;
        let _session = Session::open(server.addr, SECRET, "alice").await;
        tokio::time::sleep(SETTLE).await;
        let cpu_before = proc_cpu_seconds(server.pid());
        let s = scrape_async(metrics).await;
        let cpu_after = proc_cpu_seconds(server.pid());
        assert_eq!(
            s.get(
                "ferroturn_build_info",
                &[("version", env!("CARGO_PKG_VERSION"))]
            ),
            1.0
        );
        assert_eq!(s.get("ferroturn_allocations", &[]), 1.0);
        assert_eq!(s.get("ferroturn_allocation_quota", &[]), 40.0);
        assert!(s.get("process_resident_memory_bytes", &[]) > 1e5);
        assert!(s.get("process_open_fds", &[]) >= 3.0);
        assert!(s.get("process_max_fds", &[]) >= s.get("process_open_fds", &[]));
        // What the kernel says the process used, read around the scrape (0.01 s ticks).
        let cpu = s.get("process_cpu_seconds_total", &[]);
        assert!(
            cpu_before - 0.011 <= cpu && cpu <= cpu_after + 0.011,
            "process_cpu_seconds_total {cpu} outside [{cpu_before}, {cpu_after}] from /proc"
        );
        assert_eq!(
            s.types.get("process_cpu_seconds_total").map(String::as_str),
            Some("counter")
        );
        assert!(s.get("process_start_time_seconds", &[]) > 1.6e9);
        assert_eq!(s.sum("ferroturn_config_reloads_total"), 0.0);
        // No TLS configured: no expiry to report.
        assert!(!s
            .types
            .contains_key("ferroturn_tls_certificate_expiry_timestamp_seconds"));

        server.signal(libc::SIGHUP);
        server
            .wait_log("configuration reloaded", 1, Duration::from_secs(3))
            .await;
        server.rewrite_config(|c| format!("{c}\nmin-port=not-a-port\n"));
        server.signal(libc::SIGHUP);
        server
            .wait_log("was not applied", 1, Duration::from_secs(3))
            .await;
        let s = scrape_async(metrics).await;
        assert_eq!(
            s.get("ferroturn_config_reloads_total", &[("result", "success")]),
            1.0
        );
        assert_eq!(
            s.get("ferroturn_config_reloads_total", &[("result", "failure")]),
            1.0
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn certificate_expiry_is_exported() {
    timeout(TEST_TIMEOUT, async {
        let dir = std::env::temp_dir().join(format!("ferroturn-expiry-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).expect("params");
        params.not_after = rcgen::date_time_ymd(2040, 6, 1);
        let cert = params.self_signed(&key).expect("cert");
        let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&c, cert.pem()).expect("write cert");
        std::fs::write(&k, key.serialize_pem()).expect("write key");
        let port = free_tcp_port();
        let metrics = free_tcp_port();
        let (ps, ms) = (port.to_string(), metrics.to_string());
        let server = TestServer::start_with(
            Auth::RestAndStatic,
            &[
                "--cert",
                c.to_str().unwrap_or_default(),
                "--pkey",
                k.to_str().unwrap_or_default(),
                "--tls-listening-port",
                &ps,
                "--prometheus",
                "--prometheus-port",
                &ms,
            ],
        )
        .await;
        let s = scrape_async(SocketAddr::from(([127, 0, 0, 1], metrics))).await;
        // 2040-06-01T00:00:00Z
        assert_eq!(
            s.get("ferroturn_tls_certificate_expiry_timestamp_seconds", &[]),
            2_222_121_600.0
        );
        server.signal(libc::SIGUSR2);
        server
            .wait_log("TLS certificate reloaded", 1, Duration::from_secs(3))
            .await;
        let s = scrape_async(SocketAddr::from(([127, 0, 0, 1], metrics))).await;
        assert_eq!(
            s.get(
                "ferroturn_certificate_reloads_total",
                &[("result", "success")]
            ),
            1.0
        );
        let _ = std::fs::remove_dir_all(&dir);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn prometheus_path_moves_the_metrics() {
    timeout(TEST_TIMEOUT, async {
        let (_server, metrics) = server_with_metrics(&["--prometheus-path", "/turn-metrics"]).await;
        let get =
            |path: &'static str| tokio::task::spawn_blocking(move || http::get(metrics, path));
        let moved = get("/turn-metrics").await.expect("task");
        assert_eq!(moved.status, 200);
        assert!(moved.body.contains("ferroturn_draining"));
        assert_eq!(get("/metrics").await.expect("task").status, 404);
        assert_eq!(get("/healthz").await.expect("task").status, 200);
    })
    .await
    .expect("test timed out");
}
