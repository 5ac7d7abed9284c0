//! Overload against the real binary, one relay thread so everything shares one shard: a UDP
//! flood of one listener, one TCP client streaming at full speed, a burst of stalled TLS
//! handshakes, and running out of file descriptors. In each, an established UDP session on
//! the same shard must keep relaying with bounded delay. Every load is bounded in time and
//! count; the figures (goodput, loss) belong to `ferroturn bench`, not here.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::prom::scrape;
use common::stun::{self, method, Message};
use common::turn_raw::Session;
use common::{free_tcp_port, TestServer, SECRET};
use tokio::time::timeout;

/// How long each disturbance lasts while the canary is probed.
const DISTURBANCE: Duration = Duration::from_secs(3);
/// Most time one probe may take end to end. Generous for a loaded CI machine; an unfair loop
/// misses it by far (the turn grows without bound under a flood).
const DELAY_BOUND: Duration = Duration::from_millis(300);
/// Probes sent during a disturbance (one outstanding at a time).
const MAX_PROBES: usize = 100;
const PROBE_GAP: Duration = Duration::from_millis(20);

/// What the canary saw.
#[derive(Debug, Default)]
struct Probed {
    sent: usize,
    down: usize,
    up: usize,
    max_down: Duration,
    max_up: Duration,
}

/// Probes the canary until `until`: each probe goes peer → client, then client → peer, and
/// waits (up to a second) for its own tag.
async fn probe(s: &Session, until: Instant, up_too: bool) -> Probed {
    let mut p = Probed::default();
    let mut buf = vec![0u8; 2048];
    while Instant::now() < until && p.sent < MAX_PROBES {
        let tag = format!("probe-{}", p.sent).into_bytes();
        p.sent += 1;
        let t0 = Instant::now();
        s.peer.send_to(&tag, s.relayed).await.expect("peer send");
        let got_down = timeout(Duration::from_secs(1), async {
            loop {
                let n = s.client.sock.recv(&mut buf).await.expect("client recv");
                if n >= 4 && buf[0] >= 0x40 && buf[4..n].starts_with(&tag) {
                    return;
                }
            }
        })
        .await
        .is_ok();
        if got_down {
            p.down += 1;
            p.max_down = p.max_down.max(t0.elapsed());
        }
        if up_too {
            let t1 = Instant::now();
            s.client.send_channel(s.channel, &tag).await;
            let got_up = timeout(Duration::from_secs(1), async {
                loop {
                    let (n, _) = s.peer.recv_from(&mut buf).await.expect("peer recv");
                    if buf[..n] == tag[..] {
                        return;
                    }
                }
            })
            .await
            .is_ok();
            if got_up {
                p.up += 1;
                p.max_up = p.max_up.max(t1.elapsed());
            }
        }
        tokio::time::sleep(PROBE_GAP).await;
    }
    p
}

fn assert_kept_relaying(p: &Probed, up_too: bool, what: &str, server: &TestServer) {
    let need = p.sent * 95 / 100;
    assert!(
        p.sent >= 10 && p.down >= need && p.max_down < DELAY_BOUND,
        "{what}: peer → client {}/{} probes, slowest {:?} (bound {DELAY_BOUND:?})\n{}",
        p.down,
        p.sent,
        p.max_down,
        tail(&server.logs())
    );
    if up_too {
        assert!(
            p.up >= need && p.max_up < DELAY_BOUND,
            "{what}: client → peer {}/{} probes, slowest {:?} (bound {DELAY_BOUND:?})",
            p.up,
            p.sent,
            p.max_up
        );
    }
}

fn tail(logs: &str) -> &str {
    &logs[logs.len().saturating_sub(4000)..]
}

/// Runs `load` on its own thread until `stop` is set or `limit` passes.
fn spawn_load(
    stop: &Arc<AtomicBool>,
    limit: Duration,
    load: impl FnOnce(&AtomicBool, Instant) + Send + 'static,
) -> JoinHandle<()> {
    let stop = stop.clone();
    std::thread::spawn(move || load(&stop, Instant::now() + limit))
}

async fn server_with_metrics(extra: &[&str]) -> (TestServer, SocketAddr) {
    let port = free_tcp_port().to_string();
    let mut args = vec![
        "--relay-threads",
        "1",
        "--prometheus",
        "--prometheus-port",
        &port,
    ];
    args.extend_from_slice(extra);
    let server = TestServer::start_with(common::Auth::RestAndStatic, &args).await;
    (
        server,
        SocketAddr::from(([127, 0, 0, 1], port.parse().unwrap())),
    )
}

async fn metric(addr: SocketAddr, name: &'static str, labels: &'static [(&str, &str)]) -> f64 {
    tokio::task::spawn_blocking(move || scrape(addr).get(name, labels))
        .await
        .expect("scrape")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flooded_listener_leaves_room_for_relay_sockets() {
    timeout(Duration::from_secs(60), async {
        let (server, metrics) = server_with_metrics(&[]).await;
        let canary = Session::open(server.addr, SECRET, "canary").await;
        canary.assert_relays(b"before").await;

        // The flooder relays ChannelData to a peer that never reads, as fast as one thread
        // can send: far more than a debug build on one shard relays.
        let flooder = Session::open(server.addr, SECRET, "flooder").await;
        let sink = flooder.peer.into_std().expect("sink");
        let sock = flooder.client.sock.into_std().expect("flooder socket");
        sock.set_nonblocking(false).unwrap();
        let mut frame = vec![0x40, 0x00, 0x00, 100];
        frame.extend_from_slice(&[7u8; 100]);
        let sent = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let counter = sent.clone();
        let to = server.addr;
        let load = spawn_load(
            &stop,
            DISTURBANCE + Duration::from_secs(2),
            move |stop, end| {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) && n < 20_000_000 {
                    if sock.send_to(&frame, to).is_ok() {
                        n += 1;
                    }
                    if Instant::now() >= end {
                        break;
                    }
                }
                counter.store(n, Ordering::Relaxed);
            },
        );
        // Let the loop fall behind first: an unfair loop gets worse the longer it lasts.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let p = probe(&canary, Instant::now() + DISTURBANCE, false).await;
        stop.store(true, Ordering::Relaxed);
        load.join().unwrap();
        drop(sink);
        assert_kept_relaying(&p, false, "UDP flood", &server);
        assert!(sent.load(Ordering::Relaxed) > 10_000, "the flood ran");
        // The excess was dropped at the kernel's queue, and counted.
        let dropped = metric(
            metrics,
            "ferroturn_dropped_packets_total",
            &[("reason", "queue_full")],
        )
        .await;
        assert!(dropped > 0.0, "queue-full drops counted: {dropped}");
        canary.assert_relays(b"after").await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_tcp_client_streaming_cannot_monopolise_the_shard() {
    timeout(Duration::from_secs(60), async {
        let server =
            TestServer::start_with(common::Auth::RestAndStatic, &["--relay-threads", "1"]).await;
        let canary = Session::open(server.addr, SECRET, "canary").await;
        canary.assert_relays(b"before").await;

        // Unauthenticated Binding requests back to back, written as fast as the socket
        // takes them; the answers are read and thrown away on another thread.
        let stream = TcpStream::connect(server.addr).expect("connect");
        stream.set_nodelay(true).unwrap();
        let mut reader = stream.try_clone().unwrap();
        reader
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut writer = stream;
        writer
            .set_write_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let one = Message::request(method::BINDING).encode(None, false);
        let chunk: Vec<u8> = one.iter().copied().cycle().take(one.len() * 3000).collect();
        let stop = Arc::new(AtomicBool::new(false));
        let written = Arc::new(AtomicU64::new(0));
        let counter = written.clone();
        let load = spawn_load(
            &stop,
            DISTURBANCE + Duration::from_secs(2),
            move |stop, end| {
                let mut total = 0u64;
                while !stop.load(Ordering::Relaxed) && Instant::now() < end {
                    match writer.write(&chunk) {
                        Ok(n) => total += n as u64,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                        Err(_) => break,
                    }
                }
                counter.store(total, Ordering::Relaxed);
            },
        );
        let stop_reader = stop.clone();
        let drain = std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 16];
            let end = Instant::now() + DISTURBANCE + Duration::from_secs(3);
            while !stop_reader.load(Ordering::Relaxed) && Instant::now() < end {
                match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    Err(_) => break,
                }
            }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        let p = probe(&canary, Instant::now() + DISTURBANCE, true).await;
        stop.store(true, Ordering::Relaxed);
        load.join().unwrap();
        drain.join().unwrap();
        assert_kept_relaying(&p, true, "TCP stream", &server);
        let bytes = written.load(Ordering::Relaxed);
        assert!(bytes > 1_000_000, "the stream ran: {bytes} bytes");
        canary.assert_relays(b"after").await;
    })
    .await
    .expect("test timed out");
}

/// A self-signed certificate for 127.0.0.1 in `dir`: (cert, key) paths.
fn self_signed(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".into()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c, k)
}

/// A real ClientHello, as a TLS client sends it first.
fn client_hello() -> Vec<u8> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut hello = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut hello).unwrap();
    }
    hello
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_stalled_tls_handshakes_does_not_stall_relaying() {
    timeout(Duration::from_secs(60), async {
        let dir = std::env::temp_dir().join(format!("ferroturn-overload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert, key) = self_signed(&dir);
        let tls_port = free_tcp_port();
        let server = TestServer::start_with_tls_args(
            &cert,
            &key,
            tls_port,
            &["--relay-threads", "1", "--max-tcp-connections-per-ip", "0"],
        )
        .await;
        let canary = Session::open(server.addr, SECRET, "canary").await;
        canary.assert_relays(b"before").await;

        // Each connection sends a whole ClientHello (the server does the key exchange and
        // signs) and then never answers; all of them stay open until the end.
        let hello = client_hello();
        let stop = Arc::new(AtomicBool::new(false));
        let opened = Arc::new(AtomicU64::new(0));
        let counter = opened.clone();
        let target = SocketAddr::from(([127, 0, 0, 1], tls_port));
        let load = spawn_load(
            &stop,
            DISTURBANCE + Duration::from_secs(2),
            move |stop, end| {
                let mut held = Vec::new();
                for _ in 0..3 {
                    for _ in 0..300 {
                        if stop.load(Ordering::Relaxed) || Instant::now() >= end {
                            break;
                        }
                        if let Ok(mut s) =
                            TcpStream::connect_timeout(&target, Duration::from_secs(1))
                        {
                            let _ = s.write_all(&hello);
                            held.push(s);
                        }
                    }
                    counter.store(held.len() as u64, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(300));
                }
                while !stop.load(Ordering::Relaxed) && Instant::now() < end {
                    std::thread::sleep(Duration::from_millis(20));
                }
            },
        );
        let p = probe(&canary, Instant::now() + DISTURBANCE, true).await;
        stop.store(true, Ordering::Relaxed);
        load.join().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_kept_relaying(&p, true, "stalled TLS handshakes", &server);
        let n = opened.load(Ordering::Relaxed);
        assert!(n >= 300, "the burst ran: {n} handshakes");
        canary.assert_relays(b"after").await;
    })
    .await
    .expect("test timed out");
}

/// CPU seconds (user + system) the process has used.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("proc stat");
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let after = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

#[tokio::test(flavor = "multi_thread")]
async fn out_of_file_descriptors_accept_backs_off_and_recovers() {
    timeout(Duration::from_secs(60), async {
        let port = free_tcp_port().to_string();
        let server = TestServer::start_with_nofile(
            &[
                "--relay-threads",
                "1",
                "--max-tcp-connections-per-ip",
                "0",
                "--prometheus",
                "--prometheus-port",
                &port,
            ],
            64,
        )
        .await;
        let metrics = SocketAddr::from(([127, 0, 0, 1], port.parse().unwrap()));
        let canary = Session::open(server.addr, SECRET, "canary").await;
        canary.assert_relays(b"before").await;

        // More connections than the server has descriptors: the kernel completes them into
        // the listen backlog, and accept() starts failing with EMFILE.
        let mut held = Vec::new();
        for _ in 0..100 {
            held.push(TcpStream::connect(server.addr).expect("connect into the backlog"));
        }
        server
            .wait_log("out of file descriptors", 1, Duration::from_secs(5))
            .await;
        let cpu0 = cpu_seconds(server.pid());
        let p = probe(&canary, Instant::now() + Duration::from_secs(2), true).await;
        let busy = cpu_seconds(server.pid()) - cpu0;
        assert_kept_relaying(&p, true, "accept at the fd limit", &server);
        assert!(
            busy < 0.5,
            "the server spent {busy:.2} s of CPU in 2 s with accept() failing: a busy loop"
        );
        let lines = server.logs().matches("out of file descriptors").count();
        assert!(
            lines <= 2,
            "{lines} log lines for one episode: not rate limited"
        );

        // Freeing descriptors lets the waiting connections in again.
        drop(held);
        let mut fresh = None;
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if let Some(m) = binding_over_tcp(server.addr) {
                fresh = Some(m);
                break;
            }
        }
        let answer = fresh.expect("a Binding over TCP is answered once descriptors are free");
        assert!(
            matches!(answer.class, stun::Class::Success),
            "a Binding success"
        );
        let failures = metric(
            metrics,
            "ferroturn_accept_errors_total",
            &[("reason", "fd_limit")],
        )
        .await;
        assert!(
            failures >= 1.0,
            "fd-limit accept failures counted: {failures}"
        );
        canary.assert_relays(b"after").await;
    })
    .await
    .expect("test timed out");
}

/// One Binding request over a fresh TCP connection; the answer, if one came within a second.
fn binding_over_tcp(server: SocketAddr) -> Option<Message> {
    let mut s = TcpStream::connect_timeout(&server, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    let req = Message::request(method::BINDING);
    s.write_all(&req.encode(None, true)).ok()?;
    let mut head = [0u8; 20];
    s.read_exact(&mut head).ok()?;
    let len = u16::from_be_bytes([head[2], head[3]]) as usize;
    let mut msg = head.to_vec();
    msg.resize(20 + len, 0);
    s.read_exact(&mut msg[20..]).ok()?;
    Message::decode(&msg).filter(|m| m.txid == req.txid)
}
