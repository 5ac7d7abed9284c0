//! PROXY protocol (v1 and v2) on TCP and TLS listeners against the real binary: the address in
//! the header is the one the server answers with (XOR-MAPPED-ADDRESS in Binding and Allocate,
//! the admin session list, the allocation log, the per-IP connection cap), and everything that
//! is not a timely, well-formed header from a trusted source is closed and counted.

mod common;

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::json::Json;
use common::prom::{scrape, Scrape};
use common::stun::{self, attr, method, Class, Message};
use common::{free_tcp_port, rest_credentials, TestServer, REALM, SECRET};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

const IO_TIMEOUT: Duration = Duration::from_secs(5);
const ADMIN_TOKEN: &str = "proxy-protocol-test-token-0123";
const METRIC: &str = "ferroturn_proxy_protocol_connections_total";
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

/// A server whose alt-listening-port (plain TCP) and TLS port expect PROXY headers from
/// 127.0.0.1 only; its main listening port does not.
struct ProxiedServer {
    server: TestServer,
    /// Plain TCP port behind the "balancer".
    tcp: SocketAddr,
    /// TLS port behind the "balancer".
    tls: SocketAddr,
    metrics: SocketAddr,
    admin: SocketAddr,
    pki: Pki,
}

impl ProxiedServer {
    async fn start(extra: &[&str]) -> Self {
        let pki = Pki::new();
        let tcp_port = free_tcp_and_udp_port();
        let tls_port = free_tcp_port();
        let metrics_port = free_tcp_port();
        let admin_port = free_tcp_port();
        let mut args: Vec<String> = [
            format!("--alt-listening-port={tcp_port}"),
            format!("--proxy-protocol-port={tcp_port},{tls_port}"),
            "--proxy-protocol-trusted=127.0.0.1".into(),
            "--proxy-protocol-timeout=1".into(),
            "--prometheus".into(),
            format!("--prometheus-port={metrics_port}"),
            "--prometheus-address=127.0.0.1".into(),
            format!("--admin-token={ADMIN_TOKEN}"),
            format!("--admin-port={admin_port}"),
            "--verbose".into(),
        ]
        .into();
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let server = TestServer::start_with_tls_args(&pki.cert, &pki.key, tls_port, &args).await;
        let local = |p| SocketAddr::from(([127, 0, 0, 1], p));
        ProxiedServer {
            server,
            tcp: local(tcp_port),
            tls: local(tls_port),
            metrics: local(metrics_port),
            admin: local(admin_port),
            pki,
        }
    }

    fn count(&self, result: &str) -> f64 {
        scrape_now(self.metrics).get(METRIC, &[("result", result)])
    }

    /// Waits until the counter for `result` reached `at_least`.
    fn wait_count(&self, result: &str, at_least: f64) {
        let deadline = Instant::now() + IO_TIMEOUT;
        loop {
            let n = self.count(result);
            if n >= at_least {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{METRIC}{{result={result}}} is {n}, expected >= {at_least}\n{}",
                self.server.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn scrape_now(addr: SocketAddr) -> Scrape {
    scrape(addr)
}

/// A port free for both TCP and UDP on 127.0.0.1 (alt-listening-port opens both).
fn free_tcp_and_udp_port() -> u16 {
    for _ in 0..100 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
        let port = l.local_addr().expect("local addr").port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for TCP and UDP");
}

/// A TCP connection from `source` (any 127.0.0.0/8 address works on Linux loopback).
fn connect_from(source: Ipv4Addr, to: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&SocketAddr::from((source, 0)).into())
        .expect("bind loopback source");
    socket.connect(&to.into()).expect("connect");
    let s: TcpStream = socket.into();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

fn connect(to: SocketAddr) -> TcpStream {
    connect_from(Ipv4Addr::LOCALHOST, to)
}

fn v2_header(command: u8, client: SocketAddr, proxy: SocketAddr, tlvs: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    let family = match (client, proxy) {
        (SocketAddr::V4(c), SocketAddr::V4(p)) => {
            body.extend_from_slice(&c.ip().octets());
            body.extend_from_slice(&p.ip().octets());
            0x11
        }
        (SocketAddr::V6(c), SocketAddr::V6(p)) => {
            body.extend_from_slice(&c.ip().octets());
            body.extend_from_slice(&p.ip().octets());
            0x21
        }
        _ => panic!("mixed families"),
    };
    body.extend_from_slice(&client.port().to_be_bytes());
    body.extend_from_slice(&proxy.port().to_be_bytes());
    body.extend_from_slice(tlvs);
    let mut h = V2_SIGNATURE.to_vec();
    h.push(0x20 | command);
    h.push(family);
    h.extend_from_slice(&(body.len() as u16).to_be_bytes());
    h.extend_from_slice(&body);
    h
}

fn v2_proxy(client: SocketAddr, proxy: SocketAddr) -> Vec<u8> {
    // With an ALPN and a NOOP TLV, which the server must skip.
    v2_header(
        1,
        client,
        proxy,
        &[0x01, 0x00, 0x02, b'h', b'2', 0x04, 0x00, 0x00],
    )
}

fn read_frame(s: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut frame = vec![0u8; 4];
    s.read_exact(&mut frame)?;
    let len = u16::from_be_bytes([frame[2], frame[3]]) as usize;
    let rest = if frame[0] < 0x40 {
        16 + len
    } else {
        (len + 3) & !3
    };
    frame.resize(4 + rest, 0);
    s.read_exact(&mut frame[4..])?;
    Ok(frame)
}

fn response_to(s: &mut impl Read, request: &Message) -> Message {
    loop {
        let frame = read_frame(s).expect("response frame");
        if let Some(m) = Message::decode(&frame) {
            if m.txid == request.txid {
                return m;
            }
        }
    }
}

fn binding(s: &mut (impl Read + Write), prefix: &[u8]) -> SocketAddr {
    let req = Message::request(method::BINDING);
    // Header and request in one write: the request must not be lost with the header's read.
    let mut bytes = prefix.to_vec();
    bytes.extend_from_slice(&req.encode(None, true));
    s.write_all(&bytes).unwrap();
    s.flush().unwrap();
    let resp = response_to(s, &req);
    assert_eq!(resp.class, Class::Success);
    resp.xor_addr(attr::XOR_MAPPED_ADDRESS)
        .expect("XOR-MAPPED-ADDRESS")
}

/// Allocates with REST credentials; returns XOR-MAPPED-ADDRESS of the success response.
fn allocate(s: &mut (impl Read + Write), user: &str) -> SocketAddr {
    let (username, password) = rest_credentials(SECRET, user, 3600);
    let build = || {
        Message::request(method::ALLOCATE).with(attr::REQUESTED_TRANSPORT, stun::udp_transport())
    };
    let first = build();
    s.write_all(&first.encode(None, true)).unwrap();
    let challenge = response_to(s, &first);
    assert_eq!(challenge.error_code(), Some(401));
    let nonce = challenge.get(attr::NONCE).expect("nonce").to_vec();
    let req = build()
        .with(attr::USERNAME, username.as_bytes())
        .with(attr::REALM, REALM.as_bytes())
        .with(attr::NONCE, nonce);
    let key = stun::long_term_key(&username, REALM, &password);
    s.write_all(&req.encode(Some(&key), true)).unwrap();
    let resp = response_to(s, &req);
    assert_eq!(resp.class, Class::Success, "{:?}", resp.error_code());
    resp.xor_addr(attr::XOR_MAPPED_ADDRESS)
        .expect("XOR-MAPPED-ADDRESS in the Allocate response")
}

/// Reads until the server closes the connection; fails if it answers or stays open.
fn assert_closed_by_server(s: &mut TcpStream, within: Duration) {
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 256];
    match s.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
        Ok(n) => panic!("server answered {n} bytes instead of closing"),
        Err(e) => panic!("connection not closed within {within:?}: {e}"),
    }
}

fn sessions(admin: SocketAddr) -> Vec<Json> {
    let r = common::http::request(admin, "GET", "/admin/sessions", Some(ADMIN_TOKEN), "");
    assert_eq!(r.status, 200, "{}", r.body);
    Json::parse(&r.body).expect("json").arr().to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn v2_over_tcp_reports_the_header_address_everywhere() {
    let p = ProxiedServer::start(&[]).await;
    let client: SocketAddr = "203.0.113.7:4242".parse().unwrap();
    let mut s = connect(p.tcp);
    assert_eq!(binding(&mut s, &v2_proxy(client, p.tcp)), client);
    // The same connection allocates as that client: Allocate's XOR-MAPPED-ADDRESS, the
    // allocation log and the admin session list all name it.
    assert_eq!(allocate(&mut s, "proxied-tcp"), client);
    p.server
        .wait_log("client=203.0.113.7:4242", 1, IO_TIMEOUT)
        .await;
    let list = sessions(p.admin);
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0].get("client").str(), "203.0.113.7:4242");
    assert_eq!(list[0].get("transport").str(), "tcp");
    assert_eq!(p.count("accepted"), 1.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn v1_with_an_ipv6_client_and_v2_local() {
    let p = ProxiedServer::start(&[]).await;
    let mut s = connect(p.tcp);
    let header = format!("PROXY TCP6 2001:db8::7 ::1 5555 {}\r\n", p.tcp.port());
    assert_eq!(
        binding(&mut s, header.as_bytes()),
        "[2001:db8::7]:5555".parse().unwrap()
    );
    // LOCAL (the balancer's own health check) keeps the real socket address.
    let mut s = connect(p.tcp);
    let own = s.local_addr().unwrap();
    let local = v2_header(0, "192.0.2.1:1".parse().unwrap(), p.tcp, &[]);
    assert_eq!(binding(&mut s, &local), own);
    // v1 UNKNOWN likewise.
    let mut s = connect(p.tcp);
    let own = s.local_addr().unwrap();
    assert_eq!(binding(&mut s, b"PROXY UNKNOWN\r\n"), own);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_header_comes_before_the_tls_handshake() {
    let p = ProxiedServer::start(&[]).await;
    let client: SocketAddr = "198.51.100.20:61000".parse().unwrap();
    let mut tcp = connect(p.tls);
    tcp.write_all(&v2_proxy(client, p.tls)).unwrap();
    let mut tls = p.pki.handshake(tcp);
    assert_eq!(binding(&mut tls, &[]), client);
    assert_eq!(allocate(&mut tls, "proxied-tls"), client);
    let list = sessions(p.admin);
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0].get("client").str(), "198.51.100.20:61000");
    assert_eq!(list[0].get("transport").str(), "tls");

    // A v1 header sent in the same segment as the ClientHello: nothing after it is lost.
    let header = format!(
        "PROXY TCP4 198.51.100.21 127.0.0.1 61001 {}\r\n",
        p.tls.port()
    );
    let mut tls = p.pki.handshake_after(connect(p.tls), header.as_bytes());
    assert_eq!(
        binding(&mut tls, &[]),
        "198.51.100.21:61001".parse().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn untrusted_sources_missing_and_malformed_headers_are_closed_and_counted() {
    let p = ProxiedServer::start(&[]).await;
    let client: SocketAddr = "203.0.113.9:1000".parse().unwrap();
    // 127.0.0.2 is not in proxy-protocol-trusted: a valid header does not help.
    for target in [p.tcp, p.tls] {
        let mut s = connect_from(Ipv4Addr::new(127, 0, 0, 2), target);
        let mut bytes = v2_proxy(client, target);
        bytes.extend_from_slice(&Message::request(method::BINDING).encode(None, true));
        let _ = s.write_all(&bytes);
        assert_closed_by_server(&mut s, IO_TIMEOUT);
    }
    p.wait_count("untrusted", 2.0);

    // A trusted source that sends no header (STUN straight away, or a ClientHello).
    let mut s = connect(p.tcp);
    s.write_all(&Message::request(method::BINDING).encode(None, true))
        .unwrap();
    assert_closed_by_server(&mut s, IO_TIMEOUT);
    let mut s = connect(p.tls);
    s.write_all(&[0x16, 0x03, 0x01, 0x00, 0x05, 1, 0, 0, 1, 0])
        .unwrap();
    assert_closed_by_server(&mut s, IO_TIMEOUT);
    p.wait_count("missing", 2.0);

    // Malformed headers of both versions.
    let v2 = |tail: &[u8]| [&V2_SIGNATURE[..], tail].concat();
    let malformed: [Vec<u8>; 4] = [
        b"PROXY TCP4 203.0.113.9 127.0.0.1 99999 3478\r\n".to_vec(),
        b"PROXY TCP4 2001:db8::1 127.0.0.1 1 2\r\n".to_vec(),
        // UDP over IPv4 on a TCP listener; IPv4 addresses that do not fit the length.
        v2(&[0x21, 0x12, 0x00, 0x00]),
        v2(&[0x21, 0x11, 0x00, 0x04, 1, 2, 3, 4]),
    ];
    for bytes in &malformed {
        let mut s = connect(p.tcp);
        s.write_all(bytes).unwrap();
        assert_closed_by_server(&mut s, IO_TIMEOUT);
    }
    p.wait_count("malformed", 4.0);

    // The unproxied main port is unaffected, and still sees the socket address.
    let mut s = connect(p.server.addr);
    let own = s.local_addr().unwrap();
    assert_eq!(binding(&mut s, &[]), own);
    assert_eq!(p.count("accepted"), 0.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_header_that_does_not_arrive_in_time_closes_the_connection() {
    let p = ProxiedServer::start(&[]).await;
    let started = Instant::now();
    let mut silent = connect(p.tcp);
    let mut partial = connect(p.tls);
    partial.write_all(b"PROXY TCP4 203.0.").unwrap();
    // proxy-protocol-timeout=1, checked once a second.
    assert_closed_by_server(&mut silent, Duration::from_secs(4));
    assert_closed_by_server(&mut partial, Duration::from_secs(4));
    assert!(started.elapsed() >= Duration::from_millis(900));
    p.wait_count("timeout", 2.0);
    assert!(
        p.server
            .logs()
            .contains("reason=PROXY protocol header timeout"),
        "{}",
        p.server.logs()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_per_ip_cap_applies_to_the_header_address() {
    let p = ProxiedServer::start(&["--max-tcp-connections-per-ip=2"]).await;
    let a: SocketAddr = "203.0.113.50:1".parse().unwrap();
    let b: SocketAddr = "203.0.113.51:1".parse().unwrap();
    // All connections come from 127.0.0.1 (the "balancer"), more than the cap of 2.
    let mut held = Vec::new();
    for port in [1000, 1001] {
        let client = SocketAddr::new(a.ip(), port);
        let mut s = connect(p.tcp);
        assert_eq!(binding(&mut s, &v2_proxy(client, p.tcp)), client);
        held.push(s);
    }
    let mut third = connect(p.tcp);
    third
        .write_all(&v2_proxy(SocketAddr::new(a.ip(), 1002), p.tcp))
        .unwrap();
    assert_closed_by_server(&mut third, IO_TIMEOUT);
    for port in [2000, 2001] {
        let client = SocketAddr::new(b.ip(), port);
        let mut s = connect(p.tcp);
        assert_eq!(binding(&mut s, &v2_proxy(client, p.tcp)), client);
        held.push(s);
    }
    // Closing one of a's connections frees its slot.
    drop(held.remove(0));
    let deadline = Instant::now() + IO_TIMEOUT;
    loop {
        let client = SocketAddr::new(a.ip(), 1003);
        let mut s = connect(p.tcp);
        let mut bytes = v2_proxy(client, p.tcp);
        let req = Message::request(method::BINDING);
        bytes.extend_from_slice(&req.encode(None, true));
        s.write_all(&bytes).unwrap();
        if let Ok(frame) = read_frame(&mut s) {
            let resp = Message::decode(&frame).expect("STUN");
            assert_eq!(resp.xor_addr(attr::XOR_MAPPED_ADDRESS), Some(client));
            break;
        }
        assert!(Instant::now() < deadline, "a's slot was never freed");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A CA-less test certificate for localhost and a client that trusts it.
struct Pki {
    dir: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    der: CertificateDer<'static>,
}

impl Pki {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "ferroturn-proxy-pki-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        Pki {
            dir,
            cert: cert_path,
            key: key_path,
            der: cert.der().clone(),
        }
    }

    fn session(&self) -> ClientConnection {
        let mut roots = RootCertStore::empty();
        roots.add(self.der.clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        ClientConnection::new(Arc::new(config), ServerName::try_from("localhost").unwrap()).unwrap()
    }

    fn handshake(&self, tcp: TcpStream) -> StreamOwned<ClientConnection, TcpStream> {
        self.handshake_after(tcp, &[])
    }

    /// Sends `prefix` and the ClientHello in one write, then completes the handshake.
    fn handshake_after(
        &self,
        mut tcp: TcpStream,
        prefix: &[u8],
    ) -> StreamOwned<ClientConnection, TcpStream> {
        let mut conn = self.session();
        let mut hello = prefix.to_vec();
        conn.write_tls(&mut hello).unwrap();
        tcp.write_all(&hello).unwrap();
        let mut tls = StreamOwned::new(conn, tcp);
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock).expect("TLS handshake");
        }
        tls
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `--check-config` with the given command-line options (no file).
fn check_config(args: &[&str]) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ferroturn"));
    for (key, _) in std::env::vars() {
        if key.starts_with("FERROTURN_") {
            cmd.env_remove(key);
        }
    }
    cmd.args([
        "-n",
        "--use-auth-secret",
        "--static-auth-secret=s",
        "--check-config",
    ])
    .args(args)
    .output()
    .expect("run ferroturn --check-config")
}

#[test]
fn check_config_explains_bad_proxy_protocol_settings() {
    let cases: [(&[&str], &str); 4] = [
        (
            &["--proxy-protocol-port=4000", "--proxy-protocol-trusted=10.0.0.1"],
            "proxy-protocol-port: port 4000 is not a TCP or TLS listening port (those are 3478 (tcp))",
        ),
        (
            &["--proxy-protocol-port=5349", "--proxy-protocol-trusted=10.0.0.1"],
            "port 5349 is a TLS port but TLS is off (cert and pkey are not both set)",
        ),
        (
            &["--proxy-protocol-port=3478"],
            "proxy-protocol-port is set but proxy-protocol-trusted is empty",
        ),
        (
            &["--proxy-protocol-port=3478", "--proxy-protocol-trusted=10.0.0.0/99"],
            "proxy-protocol-trusted: \"10.0.0.0/99\" is not an IP, IP-IP range or CIDR block",
        ),
    ];
    for (args, message) in cases {
        let out = check_config(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    let out = check_config(&[
        "--proxy-protocol-port=3478",
        "--proxy-protocol-trusted=10.0.0.0/8",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
