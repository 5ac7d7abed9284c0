//! The control-plane HTTP listeners under the requests a public server must survive, against the
//! real binary: oversized and too many headers, conflicting Content-Length, a Content-Length
//! and Transfer-Encoding smuggling attempt, chunked bodies, pipelined requests, slow-loris
//! clients (heads and bodies) and a connection flood. Every wait here is bounded.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::json::Json;
use common::turn_raw::Session;
use common::{free_tcp_port, http, Auth, TestServer, SECRET};

const TOKEN: &str = "hardening-test-token-0123456789";
/// The server's own bounds (src/http/server.rs), repeated here as what the tests expect.
const MAX_CONNECTIONS: usize = 64;
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest any test waits for the server to act on a timeout.
const TIMEOUT_SLACK: Duration = Duration::from_secs(7);

/// A server with both the metrics listener and the admin API.
async fn server() -> (TestServer, SocketAddr, SocketAddr) {
    let (mport, aport) = (free_tcp_port(), free_tcp_port());
    let (m, a) = (mport.to_string(), aport.to_string());
    let server = TestServer::start_with(
        Auth::RestAndStatic,
        &[
            "--prometheus",
            "--prometheus-port",
            &m,
            "--admin-token",
            TOKEN,
            "--admin-port",
            &a,
        ],
    )
    .await;
    let metrics = SocketAddr::from(([127, 0, 0, 1], mport));
    let admin = SocketAddr::from(([127, 0, 0, 1], aport));
    // The request helper retries until the listeners are bound.
    assert_eq!(http::get(metrics, "/healthz").status, 200);
    assert_eq!(
        http::request(admin, "GET", "/admin/status", Some(TOKEN), "").status,
        200
    );
    (server, metrics, admin)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(3)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    s
}

/// Writes `raw` on a fresh connection and reads until the server closes it.
fn exchange(addr: SocketAddr, raw: &[u8]) -> Vec<u8> {
    let mut s = connect(addr);
    s.write_all(raw).expect("send");
    read_to_close(&mut s)
}

fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            // A reset after the answer (the server closed with our bytes unread) ends it too.
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return out,
            Err(e) => panic!("read: {e} after {:?}", String::from_utf8_lossy(&out)),
        }
    }
}

/// One parsed response.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Splits a byte stream into responses framed by Content-Length; fails on anything else.
fn responses(mut raw: &[u8]) -> Vec<Answer> {
    let mut out = Vec::new();
    while !raw.is_empty() {
        let end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no end of head in {:?}", String::from_utf8_lossy(raw)));
        let head = std::str::from_utf8(&raw[..end]).expect("ASCII head");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().expect("status line");
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("status line {status_line:?}"));
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (k, v) = l.split_once(':').expect("header line");
                (k.trim().to_ascii_lowercase(), v.trim().to_string())
            })
            .collect();
        let len: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .map(|(_, v)| v.parse().expect("Content-Length"))
            .unwrap_or_else(|| panic!("no Content-Length in {head:?}"));
        let body = &raw[end + 4..end + 4 + len];
        out.push(Answer {
            status,
            headers,
            body: String::from_utf8_lossy(body).into_owned(),
        });
        raw = &raw[end + 4 + len..];
    }
    out
}

fn admin_status(admin: SocketAddr) -> Json {
    let r = http::request(admin, "GET", "/admin/status", Some(TOKEN), "");
    assert_eq!(r.status, 200);
    Json::parse(&r.body).expect("status is JSON")
}

fn threads_of(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("/proc/PID/task")
        .count()
}

#[tokio::test]
async fn oversized_and_too_many_headers_get_431_and_the_listener_goes_on() {
    let (_server, metrics, _admin) = server().await;
    let big = format!(
        "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Filler: {}\r\n\r\n",
        "a".repeat(20 * 1024)
    );
    let r = responses(&exchange(metrics, big.as_bytes()));
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].status, 431);
    let many: String = (0..100).map(|i| format!("X-H{i}: v\r\n")).collect();
    let raw = format!("GET /metrics HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    let r = responses(&exchange(metrics, raw.as_bytes()));
    assert_eq!(r[0].status, 431, "{r:?}");
    // A header line that never ends is cut at the limit too, not buffered without bound.
    let mut s = connect(metrics);
    s.write_all(b"GET /metrics HTTP/1.1\r\nX-Long: ").unwrap();
    let chunk = vec![b'b'; 8192];
    let mut sent = 0;
    while sent < 1024 * 1024 {
        if s.write_all(&chunk).is_err() {
            break; // the server closed it
        }
        sent += chunk.len();
    }
    let answer = read_to_close(&mut s);
    assert!(
        answer.starts_with(b"HTTP/1.1 431"),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
    assert_eq!(http::get(metrics, "/healthz").status, 200);
}

#[tokio::test]
async fn conflicting_content_length_and_smuggled_requests_are_refused() {
    let (_server, _metrics, admin) = server().await;
    let auth = format!("Authorization: Bearer {TOKEN}\r\n");
    // Two different lengths: which one frames the body is ambiguous, so neither does.
    let raw = format!(
        "POST /admin/drain HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: 0\r\nContent-Length: 5\r\n\r\nhello"
    );
    let r = responses(&exchange(admin, raw.as_bytes()));
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].status, 400);
    assert_eq!(admin_status(admin).get("draining"), &Json::Bool(false));
    // Content-Length and chunked together: the chunked framing wins (an empty body here) and
    // the connection closes after the answer, so the drain hidden behind it never runs.
    let raw = format!(
        "POST /admin/secrets/revoke HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: 60\r\n\
         Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n\
         POST /admin/drain HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: 0\r\n\r\n"
    );
    let r = responses(&exchange(admin, raw.as_bytes()));
    assert_eq!(
        r.len(),
        1,
        "a second answer means a smuggled request ran: {r:?}"
    );
    assert_eq!(r[0].status, 400, "{r:?}");
    assert!(r[0].body.contains("the secret to revoke"), "{r:?}");
    assert_eq!(admin_status(admin).get("draining"), &Json::Bool(false));
    // A transfer coding that is not chunked cannot be framed at all.
    let raw =
        format!("POST /admin/drain HTTP/1.1\r\nHost: x\r\n{auth}Transfer-Encoding: gzip\r\n\r\n");
    assert_eq!(responses(&exchange(admin, raw.as_bytes()))[0].status, 400);
    assert_eq!(admin_status(admin).get("draining"), &Json::Bool(false));
    // Garbage instead of a request line.
    assert_eq!(
        responses(&exchange(admin, b"\x16\x03\x01 hello\r\n\r\n"))[0].status,
        400
    );
}

#[tokio::test]
async fn chunked_bodies_are_decoded_and_bounded() {
    let (server, _metrics, admin) = server().await;
    let session = Session::open(server.addr, SECRET, "erin").await;
    session.assert_relays(b"before the revocation").await;
    // The secret arrives in three chunks; only an exact decoding matches it and ends the session.
    let (a, b) = SECRET.split_at(5);
    let (b, c) = b.split_at(4);
    let raw = format!(
        "POST /admin/secrets/revoke HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
         {:x}\r\n{a}\r\n{:x};ext=1\r\n{b}\r\n{:x}\r\n{c}\r\n0\r\n\r\n",
        a.len(),
        b.len(),
        c.len()
    );
    let r = responses(&exchange(admin, raw.as_bytes()));
    assert_eq!(r[0].status, 200, "{r:?}");
    let v = Json::parse(&r[0].body).unwrap();
    assert_eq!(v.get("ended").u64(), 1, "{}", r[0].body);
    // A chunked body past the 64 KiB limit is refused without being kept.
    let mut raw = format!(
        "POST /admin/secrets/revoke HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
         Transfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for _ in 0..20 {
        raw.extend_from_slice(format!("{:x}\r\n", 8192).as_bytes());
        raw.extend_from_slice(&[b'z'; 8192]);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    let mut s = connect(admin);
    // The server may answer and close before it has read everything: ignore write errors.
    let _ = s.write_all(&raw);
    let answer = read_to_close(&mut s);
    let r = responses(&answer);
    assert_eq!(r[0].status, 413, "{r:?}");
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let (_server, metrics, admin) = server().await;
    let raw = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n\
                GET /nope HTTP/1.1\r\nHost: x\r\n\r\n\
                GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n\
                GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let r = responses(&exchange(metrics, raw));
    let statuses: Vec<u16> = r.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [200, 404, 200, 200], "{r:?}");
    assert_eq!(r[0].body, "ok\n");
    assert_eq!(r[2].body, "ready\n");
    assert!(r[3].body.contains("# TYPE"), "{}", r[3].body);
    assert_eq!(r[3].header("connection"), Some("close"));
    // Authorisation is per request: a pipelined request without the token gets 401 even after
    // one that had it, on the same connection.
    let raw = format!(
        "GET /admin/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n\
         POST /admin/drain HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let r = responses(&exchange(admin, raw.as_bytes()));
    assert_eq!(r.len(), 2, "{r:?}");
    assert_eq!(r[0].status, 200);
    assert_eq!(r[1].status, 401);
    assert_eq!(r[1].header("www-authenticate"), Some("Bearer"));
    assert_eq!(admin_status(admin).get("draining"), &Json::Bool(false));
}

#[tokio::test]
async fn slow_clients_are_cut_off_and_never_block_others() {
    let (_server, metrics, admin) = server().await;
    let t0 = Instant::now();
    // A head that trickles in one byte a second, a body that never comes, and a connection
    // that never sends anything.
    let trickle = std::thread::spawn(move || {
        let mut s = connect(metrics);
        let mut cut_after = None;
        for b in b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: abcdefghijklmnopqrstuvwxyz".iter() {
            if s.write_all(&[*b]).is_err() {
                cut_after = Some(t0.elapsed());
                break;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        let answer = read_to_close(&mut s);
        (cut_after.unwrap_or_else(|| t0.elapsed()), answer)
    });
    let mut body_wait = connect(admin);
    body_wait
        .write_all(
            format!(
                "POST /admin/secrets/revoke HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
                 Content-Length: 20\r\n\r\nonly-part"
            )
            .as_bytes(),
        )
        .unwrap();
    let mut silent = connect(metrics);
    // A keep-alive client that got its answer and then says nothing more.
    let mut idle = connect(metrics);
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut first = Vec::new();
    let mut buf = [0u8; 1024];
    while !first.ends_with(b"ok\n") {
        let n = idle.read(&mut buf).expect("keep-alive answer");
        assert!(n > 0, "closed before answering");
        first.extend_from_slice(&buf[..n]);
    }
    assert_eq!(responses(&first)[0].status, 200);
    // Meanwhile every other client is served at once.
    for _ in 0..5 {
        assert_eq!(http::get(metrics, "/healthz").status, 200);
        assert_eq!(admin_status(admin).get("draining"), &Json::Bool(false));
        std::thread::sleep(Duration::from_millis(300));
    }
    let body_answer = responses(&read_to_close(&mut body_wait));
    assert_eq!(body_answer[0].status, 408, "{body_answer:?}");
    let silent_answer = read_to_close(&mut silent);
    let silent_closed = t0.elapsed();
    let idle_rest = read_to_close(&mut idle);
    let idle_closed = t0.elapsed();
    assert!(
        idle_rest.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&idle_rest)
    );
    let (trickle_closed, _) = trickle.join().expect("trickle thread");
    for (what, at) in [
        ("silent", silent_closed),
        ("trickle", trickle_closed),
        ("idle keep-alive", idle_closed),
    ] {
        assert!(
            at >= HEADER_TIMEOUT - Duration::from_millis(500)
                && at < HEADER_TIMEOUT + TIMEOUT_SLACK,
            "{what} connection closed after {at:?}"
        );
    }
    // A connection that never sent a request is closed without an answer or with a 408.
    assert!(
        silent_answer.is_empty() || silent_answer.starts_with(b"HTTP/1.1 408"),
        "{:?}",
        String::from_utf8_lossy(&silent_answer)
    );
}

#[tokio::test]
async fn a_connection_flood_is_bounded_in_connections_and_threads() {
    let (server, metrics, _admin) = server().await;
    let threads_before = threads_of(server.pid());
    let mut idle = Vec::new();
    for _ in 0..MAX_CONNECTIONS + 36 {
        idle.push(connect(metrics));
    }
    // The connections past the limit are answered 503 and closed right away.
    let mut refused = 0;
    for s in idle.iter_mut().skip(MAX_CONNECTIONS) {
        let answer = read_to_close(s);
        assert!(
            answer.starts_with(b"HTTP/1.1 503"),
            "{:?}",
            String::from_utf8_lossy(&answer)
        );
        refused += 1;
    }
    assert_eq!(refused, 36);
    let threads_during = threads_of(server.pid());
    assert!(
        threads_during <= threads_before + 2,
        "{threads_before} threads before the flood, {threads_during} during it"
    );
    // The held ones time out like any silent client, and the listener serves again.
    let t0 = Instant::now();
    for s in idle.iter_mut().take(MAX_CONNECTIONS) {
        let _ = read_to_close(s);
    }
    assert!(t0.elapsed() < HEADER_TIMEOUT + TIMEOUT_SLACK);
    assert_eq!(http::get(metrics, "/healthz").status, 200);
}
