//! TURN over TCP and TLS against the real binary: stream framing edge cases, misbehaving
//! connections that must not disturb others, and certificate reload with a live session.

mod common;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::stun::{self, attr, method, Class, Message};
use common::{free_tcp_port, rest_credentials, TestServer, REALM, SECRET};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// A TURN client over any byte stream.
struct StreamClient<S: Read + Write> {
    s: S,
    user: String,
    pass: String,
    nonce: Option<Vec<u8>>,
}

impl<S: Read + Write> StreamClient<S> {
    fn new(s: S) -> Self {
        let (user, pass) = rest_credentials(SECRET, "stream", 3600);
        StreamClient {
            s,
            user,
            pass,
            nonce: None,
        }
    }

    fn read_frame(&mut self) -> io::Result<Vec<u8>> {
        let mut frame = vec![0u8; 4];
        self.s.read_exact(&mut frame)?;
        let len = u16::from_be_bytes([frame[2], frame[3]]) as usize;
        let rest = if frame[0] < 0x40 {
            16 + len
        } else {
            (len + 3) & !3
        };
        frame.resize(4 + rest, 0);
        self.s.read_exact(&mut frame[4..])?;
        Ok(frame)
    }

    fn transact(&mut self, build: impl Fn() -> Message) -> Message {
        for attempt in 0..2 {
            let mut m = build();
            let key = self.nonce.as_ref().map(|n| {
                m = m
                    .clone()
                    .with(attr::USERNAME, self.user.as_bytes())
                    .with(attr::REALM, REALM.as_bytes())
                    .with(attr::NONCE, n.clone());
                stun::long_term_key(&self.user, REALM, &self.pass)
            });
            self.s.write_all(&m.encode(key.as_deref(), true)).unwrap();
            self.s.flush().unwrap();
            let resp = loop {
                let frame = self.read_frame().expect("response frame");
                if frame[0] < 0x40 {
                    let r = Message::decode(&frame).expect("valid STUN");
                    if r.txid == m.txid {
                        break r;
                    }
                }
            };
            let code = resp.error_code();
            if attempt == 0 && (code == Some(401) || code == Some(438)) {
                self.nonce = resp.get(attr::NONCE).map(<[u8]>::to_vec);
                continue;
            }
            return resp;
        }
        unreachable!()
    }

    fn allocate(&mut self) -> SocketAddr {
        let resp = self.transact(|| {
            Message::request(method::ALLOCATE)
                .with(attr::REQUESTED_TRANSPORT, stun::udp_transport())
        });
        assert_eq!(
            resp.class,
            Class::Success,
            "allocate: {:?}",
            resp.error_code()
        );
        resp.xor_addr(attr::XOR_RELAYED_ADDRESS)
            .expect("relayed address")
    }

    fn channel_bind(&mut self, ch: u16, peer: SocketAddr) {
        let resp = self.transact(|| {
            Message::request(method::CHANNEL_BIND)
                .with(attr::CHANNEL_NUMBER, stun::channel_number_value(ch))
                .with_addr(attr::XOR_PEER_ADDRESS, peer)
        });
        assert_eq!(
            resp.class,
            Class::Success,
            "channel bind: {:?}",
            resp.error_code()
        );
    }

    fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).unwrap();
        self.s.flush().unwrap();
    }

    /// Reads the next ChannelData frame's payload.
    fn recv_channel_data(&mut self) -> Vec<u8> {
        loop {
            let frame = self.read_frame().expect("frame");
            if let Some((_, payload)) = stun::parse_channel_data(&frame) {
                return payload.to_vec();
            }
        }
    }
}

fn tcp(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

fn peer() -> UdpSocket {
    let p = UdpSocket::bind("127.0.0.1:0").unwrap();
    p.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    p
}

fn peer_recv(p: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut buf = [0u8; 2048];
    let (n, from) = p.recv_from(&mut buf).expect("peer receives");
    (buf[..n].to_vec(), from)
}

/// A client on a healthy connection with channel 0x4000 bound to its own peer.
struct Session<S: Read + Write> {
    client: StreamClient<S>,
    peer: UdpSocket,
    relayed: SocketAddr,
}

impl<S: Read + Write> Session<S> {
    fn open(stream: S) -> Self {
        let mut client = StreamClient::new(stream);
        let relayed = client.allocate();
        let peer = peer();
        client.channel_bind(0x4000, peer.local_addr().unwrap());
        Session {
            client,
            peer,
            relayed,
        }
    }

    /// One datagram each way through the relay.
    fn round_trip(&mut self, tag: &str) {
        let out = format!("to-peer-{tag}");
        self.client
            .send(&stun::channel_data(0x4000, out.as_bytes()));
        let (got, from) = peer_recv(&self.peer);
        assert_eq!(got, out.as_bytes());
        assert_eq!(from, self.relayed);
        let back = format!("to-client-{tag}");
        self.peer.send_to(back.as_bytes(), self.relayed).unwrap();
        assert_eq!(self.client.recv_channel_data(), back.as_bytes());
    }
}

/// Whether the server closes the connection within `within`.
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 256];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return true,
            Err(_) => {}
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread")]
async fn channel_data_split_across_reads_and_many_frames_in_one_write() {
    let server = TestServer::start().await;
    let mut s = Session::open(tcp(server.addr));
    s.round_trip("warm-up");

    // One frame delivered a byte at a time.
    let frame = stun::channel_data(0x4000, b"split-frame-payload");
    for b in &frame {
        s.client.send(std::slice::from_ref(b));
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(peer_recv(&s.peer).0, b"split-frame-payload");

    // Fifty frames of odd sizes in one write.
    let mut batch = Vec::new();
    for i in 0..50 {
        batch.extend(stun::channel_data(
            0x4000,
            format!("batched-{i:03}-{}", "x".repeat(i % 7)).as_bytes(),
        ));
    }
    s.client.send(&batch);
    for i in 0..50 {
        let want = format!("batched-{i:03}-{}", "x".repeat(i % 7));
        assert_eq!(peer_recv(&s.peer).0, want.as_bytes());
    }

    // Peer to client: frames come back padded and in order.
    for i in 0..20 {
        s.peer.send_to(&vec![i as u8; 1 + i], s.relayed).unwrap();
    }
    for i in 0..20 {
        assert_eq!(s.client.recv_channel_data(), vec![i as u8; 1 + i]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_streams_close_only_their_own_connection() {
    let server = TestServer::start().await;
    let mut healthy = Session::open(tcp(server.addr));
    healthy.round_trip("before");
    let garbage: [(&str, Vec<u8>); 4] = [
        ("oversized ChannelData length", vec![0x40, 0x00, 0xFF, 0xFF]),
        (
            "random bytes",
            (0..64u32).map(|i| (i * 97 + 0xC3) as u8).collect(),
        ),
        (
            "STUN length not a multiple of 4",
            vec![0x00, 0x01, 0x00, 0x05],
        ),
        ("oversized STUN length", vec![0x00, 0x01, 0xFF, 0xFC]),
    ];
    for (what, bytes) in garbage {
        let mut bad = tcp(server.addr);
        bad.write_all(&bytes).unwrap();
        assert!(
            closed_within(&mut bad, Duration::from_secs(3)),
            "{what}: not closed"
        );
        healthy.round_trip(what);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn silent_and_stalled_clients_are_dropped() {
    let server = TestServer::start().await;
    let mut healthy = Session::open(tcp(server.addr));
    let mut silent = tcp(server.addr);
    // Half a STUN header, then nothing: a slow-loris.
    let mut stalled = tcp(server.addr);
    stalled
        .write_all(&[0x00, 0x01, 0x00, 0x08, 0x21, 0x12])
        .unwrap();
    assert!(
        closed_within(&mut silent, Duration::from_secs(15)),
        "silent client kept"
    );
    assert!(
        closed_within(&mut stalled, Duration::from_secs(5)),
        "stalled client kept"
    );
    healthy.round_trip("after");
}

#[tokio::test(flavor = "multi_thread")]
async fn allocation_ends_when_its_connection_closes() {
    let server = TestServer::start().await;
    let s = Session::open(tcp(server.addr));
    let relayed = s.relayed;
    drop(s.client);
    // The relay port is closed with the allocation: a connected probe sees the ICMP refusal.
    let deadline = Instant::now() + Duration::from_secs(5);
    let probe = peer();
    probe.connect(relayed).unwrap();
    probe
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    loop {
        let _ = probe.send(b"anyone?");
        let mut buf = [0u8; 16];
        if let Err(e) = probe.recv(&mut buf) {
            if e.kind() == io::ErrorKind::ConnectionRefused {
                break;
            }
        }
        assert!(Instant::now() < deadline, "relay socket still open");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        server.logs().contains("reason=connection-closed"),
        "{}",
        server.logs()
    );
}

struct TestPki {
    dir: PathBuf,
    ca: rcgen::Certificate,
    ca_key: rcgen::KeyPair,
}

impl TestPki {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "ferroturn-pki-{}-{}",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = params.self_signed(&ca_key).unwrap();
        TestPki { dir, ca, ca_key }
    }

    fn cert_path(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }

    fn key_path(&self) -> PathBuf {
        self.dir.join("key.pem")
    }

    /// Writes a new server certificate for localhost/127.0.0.1 and returns its DER.
    fn issue(&self) -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
        let cert = params.signed_by(&key, &self.ca, &self.ca_key).unwrap();
        write_atomically(&self.key_path(), key.serialize_pem().as_bytes());
        write_atomically(&self.cert_path(), cert.pem().as_bytes());
        cert.der().clone()
    }

    fn client_config(&self) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.der().clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    }

    fn connect(&self, addr: SocketAddr) -> StreamOwned<ClientConnection, TcpStream> {
        let conn = ClientConnection::new(
            self.client_config(),
            ServerName::try_from("localhost").unwrap(),
        )
        .unwrap();
        let mut tls = StreamOwned::new(conn, tcp(addr));
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock).expect("TLS handshake");
        }
        tls
    }
}

impl Drop for TestPki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
}

fn write_atomically(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn served_certificate(tls: &StreamOwned<ClientConnection, TcpStream>) -> CertificateDer<'static> {
    tls.conn.peer_certificates().expect("server certificate")[0]
        .clone()
        .into_owned()
}

fn sigusr2(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-USR2", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_relays_and_certificate_reload_keeps_live_sessions() {
    let pki = TestPki::new();
    let first = pki.issue();
    let tls_port = free_tcp_port();
    let server = TestServer::start_with_tls(&pki.cert_path(), &pki.key_path(), tls_port).await;
    let tls_addr = SocketAddr::from(([127, 0, 0, 1], tls_port));
    // DTLS is not served, and start-up says so: nothing listens on UDP at the TLS port.
    server
        .wait_log("DTLS is not served", 1, Duration::from_secs(5))
        .await;
    // A Binding request over UDP to the TLS port gets no answer (the port may be held by an
    // unrelated process on a busy machine, so ask rather than bind).
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let req = Message::request(method::BINDING).encode(None, false);
    udp.send_to(&req, tls_addr).unwrap();
    let mut buf = [0u8; 1500];
    assert!(
        udp.recv_from(&mut buf).is_err(),
        "UDP answered on the TLS port"
    );
    // The same request on the TURN port is answered, so the probe itself works.
    udp.send_to(&req, server.addr).unwrap();
    assert!(
        udp.recv_from(&mut buf).is_ok(),
        "no answer on the TURN port"
    );

    let tls = pki.connect(tls_addr);
    assert_eq!(served_certificate(&tls), first);
    assert_eq!(
        tls.conn.alpn_protocol(),
        None,
        "no ALPN offered, none chosen"
    );
    let mut live = Session::open(tls);
    live.round_trip("tls");

    // TLS is also recognised on the TURN port.
    let mut on_turn_port = Session::open(pki.connect(server.addr));
    on_turn_port.round_trip("tls-on-turn-port");

    // Replace the files and signal: new handshakes get the new certificate.
    let second = pki.issue();
    assert_ne!(first, second);
    sigusr2(server.pid());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if served_certificate(&pki.connect(tls_addr)) == second {
            break;
        }
        assert!(Instant::now() < deadline, "new certificate not served");
        std::thread::sleep(Duration::from_millis(100));
    }
    live.round_trip("after reload");

    // A broken replacement is refused and the current certificate stays.
    std::fs::write(pki.cert_path(), b"not a certificate").unwrap();
    sigusr2(server.pid());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(served_certificate(&pki.connect(tls_addr)), second);
    live.round_trip("after broken reload");
    assert!(server.logs().contains("reload failed"), "{}", server.logs());
}

#[tokio::test(flavor = "multi_thread")]
async fn certificate_change_on_disk_is_picked_up_without_a_signal() {
    let pki = TestPki::new();
    pki.issue();
    let tls_port = free_tcp_port();
    let _server = TestServer::start_with_tls(&pki.cert_path(), &pki.key_path(), tls_port).await;
    let tls_addr = SocketAddr::from(([127, 0, 0, 1], tls_port));
    // Modification times have one-second resolution on some filesystems.
    std::thread::sleep(Duration::from_millis(1100));
    let renewed = pki.issue();
    let deadline = Instant::now() + Duration::from_secs(12);
    while served_certificate(&pki.connect(tls_addr)) != renewed {
        assert!(
            Instant::now() < deadline,
            "renewed certificate not picked up"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}
