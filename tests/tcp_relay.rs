//! RFC 6062 TCP relaying against the real binary on loopback: Connect to a TCP echo peer,
//! ConnectionBind, bytes both ways; ConnectionAttempt for an incoming peer; the refusals
//! (400, 403, 437, 441, 442, 446, 447); closes propagating both ways and with the
//! allocation; data connections handed between shards; the metrics.

mod common;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::prom::scrape;
use common::stun::{self, attr, method, Class, Message};
use common::{free_tcp_port, rest_credentials, Auth, TestServer, REALM, SECRET};

const CONNECT: u16 = 0x00A;
const CONNECTION_BIND: u16 = 0x00B;
const CONNECTION_ATTEMPT: u16 = 0x00C;
const CONNECTION_ID: u16 = 0x002A;
const TCP: [u8; 4] = [6, 0, 0, 0];
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// A TURN client on one TCP connection (control or data).
struct Client {
    s: TcpStream,
    user: String,
    pass: String,
    nonce: Option<Vec<u8>>,
    /// Messages that arrived while waiting for another one.
    pending: Vec<Message>,
}

impl Client {
    fn connect(server: SocketAddr, user: &str) -> Client {
        let s = TcpStream::connect(server).expect("connect to the server");
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s.set_nodelay(true).unwrap();
        let (user, pass) = rest_credentials(SECRET, user, 3600);
        Client {
            s,
            user,
            pass,
            nonce: None,
            pending: Vec::new(),
        }
    }

    /// A second connection with `other`'s credentials (a REST username names its expiry, so
    /// two made a second apart would differ: ConnectionBind needs the allocation's own).
    fn connect_like(server: SocketAddr, other: &Client) -> Client {
        let mut c = Client::connect(server, "unused");
        c.user = other.user.clone();
        c.pass = other.pass.clone();
        c
    }

    fn read_message(&mut self) -> io::Result<Message> {
        let mut head = [0u8; 20];
        self.s.read_exact(&mut head)?;
        let len = u16::from_be_bytes([head[2], head[3]]) as usize;
        let mut frame = head.to_vec();
        frame.resize(20 + len, 0);
        self.s.read_exact(&mut frame[20..])?;
        Message::decode(&frame).ok_or_else(|| io::Error::other("not STUN"))
    }

    /// The next message `pick` accepts; others are kept for later.
    fn wait_for(&mut self, pick: impl Fn(&Message) -> bool) -> Message {
        if let Some(i) = self.pending.iter().position(&pick) {
            return self.pending.remove(i);
        }
        loop {
            let m = self.read_message().expect("a message from the server");
            if pick(&m) {
                return m;
            }
            self.pending.push(m);
        }
    }

    fn send(&mut self, m: &Message) {
        let mut m = m.clone();
        let key = self.nonce.clone().map(|n| {
            m = m
                .clone()
                .with(attr::USERNAME, self.user.as_bytes())
                .with(attr::REALM, REALM.as_bytes())
                .with(attr::NONCE, n);
            stun::long_term_key(&self.user, REALM, &self.pass)
        });
        self.s.write_all(&m.encode(key.as_deref(), true)).unwrap();
    }

    /// Sends a request, retrying once after a 401/438 challenge; returns the final answer.
    fn transact(&mut self, build: impl Fn() -> Message) -> Message {
        for _ in 0..2 {
            let m = build();
            self.send(&m);
            let txid = m.txid;
            let resp = self.wait_for(|r| r.txid == txid);
            let code = resp.error_code();
            if code == Some(401) || code == Some(438) {
                if let Some(n) = resp.get(attr::NONCE) {
                    self.nonce = Some(n.to_vec());
                    continue;
                }
            }
            return resp;
        }
        panic!("challenged twice");
    }

    fn allocate_tcp(&mut self) -> SocketAddr {
        let resp = self.transact(|| {
            Message::request(method::ALLOCATE).with(attr::REQUESTED_TRANSPORT, TCP.to_vec())
        });
        assert_eq!(resp.class, Class::Success, "{:?}", resp.error_code());
        resp.xor_addr(attr::XOR_RELAYED_ADDRESS)
            .expect("relayed address")
    }

    fn connect_peer(&mut self, peer: SocketAddr) -> Message {
        self.transact(|| Message::request(CONNECT).with_addr(attr::XOR_PEER_ADDRESS, peer))
    }

    fn permit(&mut self, peer: SocketAddr) {
        let resp = self.transact(|| {
            Message::request(method::CREATE_PERMISSION).with_addr(attr::XOR_PEER_ADDRESS, peer)
        });
        assert_eq!(resp.class, Class::Success);
    }

    fn bind(&mut self, id: u32) -> Message {
        self.transact(|| Message::request(CONNECTION_BIND).with(CONNECTION_ID, id.to_be_bytes()))
    }
}

fn connection_id(m: &Message) -> u32 {
    u32::from_be_bytes(
        m.get(CONNECTION_ID)
            .expect("CONNECTION-ID")
            .try_into()
            .unwrap(),
    )
}

/// A TCP echo peer on loopback: serves up to `conns` connections, each until EOF, and
/// reports each EOF on the channel. Bounded: it stops after `conns` or 60 s.
fn echo_peer(conns: usize) -> (SocketAddr, mpsc::Receiver<usize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    l.set_nonblocking(true).unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut served = 0;
        while served < conns && Instant::now() < deadline {
            let Ok((mut s, _)) = l.accept() else {
                thread::sleep(Duration::from_millis(5));
                continue;
            };
            served += 1;
            let tx = tx.clone();
            thread::spawn(move || {
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                let mut buf = [0u8; 8192];
                let mut total = 0;
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    total += n;
                }
                let _ = tx.send(total);
            });
        }
    });
    (addr, rx)
}

/// Whether the other end closed `s` within the I/O timeout.
fn sees_eof(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut buf = [0u8; 64];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

/// The tests here open many TCP connections, whose ephemeral ports can collide with the
/// UDP-picked listening port of a server another test starts at the same moment: one at
/// a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn start(args: &[&str]) -> (TestServer, SocketAddr) {
    let port = free_tcp_port().to_string();
    let mut all = vec!["--prometheus", "--prometheus-port", &port];
    all.extend_from_slice(args);
    let server = TestServer::start_with(Auth::RestAndStatic, &all).await;
    let metrics = SocketAddr::from(([127, 0, 0, 1], port.parse().unwrap()));
    (server, metrics)
}

/// A Connect and a ConnectionBind: returns the bound data connection.
fn connect_and_bind(server: SocketAddr, ctl: &mut Client, peer: SocketAddr) -> Client {
    let resp = ctl.connect_peer(peer);
    assert_eq!(
        (resp.method, resp.class),
        (CONNECT, Class::Success),
        "{:?}",
        resp.error_code()
    );
    let id = connection_id(&resp);
    let mut data = Client::connect_like(server, ctl);
    let bound = data.bind(id);
    assert_eq!(
        (bound.method, bound.class),
        (CONNECTION_BIND, Class::Success),
        "{:?}",
        bound.error_code()
    );
    data
}

#[tokio::test(flavor = "multi_thread")]
async fn connect_bind_and_relay_both_ways_with_an_echo_peer() {
    let _serial = SERIAL.lock().await;
    let (server, metrics) = start(&["--relay-threads", "2"]).await;
    let addr = server.addr;
    tokio::task::spawn_blocking(move || {
        let (peer, eof) = echo_peer(1);
        let mut ctl = Client::connect(addr, "tcp-relay");
        let relayed = ctl.allocate_tcp();
        let mut data = connect_and_bind(addr, &mut ctl, peer);

        // More than every buffer on the way, written while the echo is read back, so the
        // bounded buffers and backpressure are exercised.
        let payload: Vec<u8> = (0..512 * 1024u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut writer = data.s.try_clone().unwrap();
        let sent = payload.clone();
        let w = thread::spawn(move || writer.write_all(&sent).unwrap());
        let mut got = vec![0u8; payload.len()];
        data.s
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        data.s.read_exact(&mut got).expect("the echo comes back");
        w.join().unwrap();
        assert!(got == payload, "bytes came back changed");

        // Closing the data connection closes the peer connection.
        data.s.shutdown(std::net::Shutdown::Both).unwrap();
        drop(data);
        let echoed = eof
            .recv_timeout(IO_TIMEOUT)
            .expect("the peer saw the close");
        assert_eq!(echoed, payload.len());

        thread::sleep(Duration::from_millis(300));
        let m = scrape(metrics);
        let bytes = |d| m.get("ferroturn_tcp_relay_bytes_total", &[("direction", d)]);
        assert_eq!(bytes("to_peer"), payload.len() as f64);
        assert_eq!(bytes("to_client"), payload.len() as f64);
        let event = |e| m.get("ferroturn_tcp_relay_connections_total", &[("event", e)]);
        assert_eq!(
            (event("opened"), event("bound"), event("closed")),
            (1.0, 1.0, 1.0)
        );
        assert_eq!(m.get("ferroturn_tcp_relay_connections", &[]), 0.0);
        assert!(relayed.port() >= 1024);
    })
    .await
    .unwrap();
    drop(server);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_incoming_peer_gets_a_connection_attempt_and_closes_propagate() {
    let _serial = SERIAL.lock().await;
    let (server, _) = start(&[]).await;
    let addr = server.addr;
    tokio::task::spawn_blocking(move || {
        let mut ctl = Client::connect(addr, "tcp-relay");
        let relayed = ctl.allocate_tcp();

        // Without a permission the relay listener refuses the peer: no ConnectionAttempt.
        let mut stranger = TcpStream::connect(relayed).expect("the relay port listens");
        assert!(
            sees_eof(&mut stranger),
            "an unpermitted peer is closed at once"
        );

        ctl.permit(SocketAddr::from(([127, 0, 0, 1], 1)));
        let mut peer = TcpStream::connect(relayed).unwrap();
        let attempt = ctl.wait_for(|m| m.method == CONNECTION_ATTEMPT);
        assert_eq!(attempt.class, Class::Indication);
        assert_eq!(
            attempt.xor_addr(attr::XOR_PEER_ADDRESS),
            Some(peer.local_addr().unwrap()),
            "the indication names the peer"
        );
        let mut data = Client::connect_like(addr, &ctl);
        let bound = data.bind(connection_id(&attempt));
        assert_eq!(bound.class, Class::Success, "{:?}", bound.error_code());

        peer.write_all(b"from the peer").unwrap();
        let mut buf = [0u8; 13];
        data.s.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"from the peer");
        data.s.write_all(b"from the client").unwrap();
        let mut buf = [0u8; 15];
        peer.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        peer.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"from the client");

        // Closing the peer closes the data connection.
        drop(peer);
        assert!(
            sees_eof(&mut data.s),
            "the data connection closed with the peer"
        );
        // The control connection and its allocation live on.
        let resp = ctl.transact(|| {
            Message::request(method::REFRESH).with(attr::LIFETIME, 600u32.to_be_bytes())
        });
        assert_eq!(resp.class, Class::Success);
    })
    .await
    .unwrap();
    drop(server);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_end_of_the_allocation_closes_its_data_connections() {
    let _serial = SERIAL.lock().await;
    let (server, _) = start(&[]).await;
    let addr = server.addr;
    tokio::task::spawn_blocking(move || {
        // Refresh with lifetime 0.
        let (peer, eof) = echo_peer(2);
        let mut ctl = Client::connect(addr, "tcp-relay");
        ctl.allocate_tcp();
        let mut data = connect_and_bind(addr, &mut ctl, peer);
        let resp = ctl.transact(|| {
            Message::request(method::REFRESH).with(attr::LIFETIME, 0u32.to_be_bytes())
        });
        assert_eq!(resp.class, Class::Success);
        assert!(
            sees_eof(&mut data.s),
            "Refresh 0 closed the data connection"
        );
        eof.recv_timeout(IO_TIMEOUT)
            .expect("and the peer connection");

        // The control connection closing.
        let mut ctl = Client::connect(addr, "tcp-relay");
        ctl.allocate_tcp();
        let mut data = connect_and_bind(addr, &mut ctl, peer);
        drop(ctl);
        assert!(
            sees_eof(&mut data.s),
            "closing the control connection closed it"
        );
        eof.recv_timeout(IO_TIMEOUT)
            .expect("and the peer connection");
    })
    .await
    .unwrap();
    drop(server);
}

#[tokio::test(flavor = "multi_thread")]
async fn connect_and_connection_bind_refusals() {
    let _serial = SERIAL.lock().await;
    let (server, metrics) = start(&[]).await;
    let addr = server.addr;
    tokio::task::spawn_blocking(move || {
        let (peer, _eof) = echo_peer(1);
        let mut ctl = Client::connect(addr, "tcp-relay");
        ctl.allocate_tcp();
        let code = |m: Message| m.error_code();

        // 403: a peer the policy forbids; nothing is attempted.
        let forbidden = "10.0.0.1:80".parse().unwrap();
        assert_eq!(code(ctl.connect_peer(forbidden)), Some(403));
        // 400: no XOR-PEER-ADDRESS.
        assert_eq!(code(ctl.transact(|| Message::request(CONNECT))), Some(400));
        // 447: nobody listens on the port (connection refused).
        let closed = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        assert_eq!(code(ctl.connect_peer(closed)), Some(447));
        // 446: a second Connect to a peer already connected.
        let ok = ctl.connect_peer(peer);
        assert_eq!(ok.class, Class::Success);
        assert_eq!(code(ctl.connect_peer(peer)), Some(446));
        // 400: ChannelBind on a TCP allocation.
        let resp = ctl.transact(|| {
            Message::request(method::CHANNEL_BIND)
                .with(attr::CHANNEL_NUMBER, vec![0x40, 0, 0, 0])
                .with_addr(attr::XOR_PEER_ADDRESS, peer)
        });
        assert_eq!(code(resp), Some(400));

        // ConnectionBind: an unknown id, no id, on the control connection, another user.
        let id = connection_id(&ok);
        let mut data = Client::connect_like(addr, &ctl);
        assert_eq!(code(data.bind(id ^ 0x0000_0101)), Some(400));
        assert_eq!(
            code(data.transact(|| Message::request(CONNECTION_BIND))),
            Some(400)
        );
        assert_eq!(code(ctl.bind(id)), Some(400));
        let mut mallory = Client::connect(addr, "mallory");
        assert_eq!(code(mallory.bind(id)), Some(441));
        // The right one still binds after all that.
        assert_eq!(data.bind(id).class, Class::Success);

        // A control connection without allocation: 437.
        let mut none = Client::connect(addr, "tcp-relay");
        assert_eq!(code(none.connect_peer(peer)), Some(437));

        thread::sleep(Duration::from_millis(200));
        let m = scrape(metrics);
        assert_eq!(
            m.get(
                "ferroturn_tcp_relay_connections_total",
                &[("event", "connect_failed")]
            ),
            1.0
        );
        assert!(m.get("ferroturn_forbidden_peer_total", &[]) >= 1.0);
    })
    .await
    .unwrap();
    drop(server);
}

/// One UDP request/answer pair with a long-term-credential retry.
fn udp_transact(s: &UdpSocket, server: SocketAddr, build: impl Fn() -> Message) -> Message {
    let (user, pass) = rest_credentials(SECRET, "udp", 3600);
    let mut nonce: Option<Vec<u8>> = None;
    for _ in 0..2 {
        let mut m = build();
        let key = nonce.clone().map(|n| {
            m = m
                .clone()
                .with(attr::USERNAME, user.as_bytes())
                .with(attr::REALM, REALM.as_bytes())
                .with(attr::NONCE, n);
            stun::long_term_key(&user, REALM, &pass)
        });
        s.send_to(&m.encode(key.as_deref(), true), server).unwrap();
        let mut buf = [0u8; 1500];
        let (n, _) = s.recv_from(&mut buf).expect("an answer over UDP");
        let resp = Message::decode(&buf[..n]).unwrap();
        if resp.error_code() == Some(401) && nonce.is_none() {
            nonce = resp.get(attr::NONCE).map(<[u8]>::to_vec);
            continue;
        }
        return resp;
    }
    panic!("challenged twice");
}

#[tokio::test(flavor = "multi_thread")]
async fn tcp_relays_need_tcp_control_and_no_tcp_relay_refuses_them() {
    let _serial = SERIAL.lock().await;
    let (server, _) = start(&[]).await;
    let addr = server.addr;
    tokio::task::spawn_blocking(move || {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        // 400: REQUESTED-TRANSPORT=TCP over UDP (RFC 6062 §5.1).
        let resp = udp_transact(&udp, addr, || {
            Message::request(method::ALLOCATE).with(attr::REQUESTED_TRANSPORT, TCP.to_vec())
        });
        assert_eq!(resp.error_code(), Some(400));
        // 400: Connect on a UDP allocation; ConnectionBind over UDP.
        let resp = udp_transact(&udp, addr, || {
            Message::request(method::ALLOCATE).with(attr::REQUESTED_TRANSPORT, vec![17, 0, 0, 0])
        });
        assert_eq!(resp.class, Class::Success);
        let peer = SocketAddr::from(([127, 0, 0, 1], 9));
        let resp = udp_transact(&udp, addr, || {
            Message::request(CONNECT).with_addr(attr::XOR_PEER_ADDRESS, peer)
        });
        assert_eq!(resp.error_code(), Some(400));
        let resp = udp_transact(&udp, addr, || {
            Message::request(CONNECTION_BIND).with(CONNECTION_ID, 7u32.to_be_bytes())
        });
        assert_eq!(resp.error_code(), Some(400));
        // 400: UDP-only attributes with TCP.
        let mut ctl = Client::connect(addr, "tcp-relay");
        let resp = ctl.transact(|| {
            Message::request(method::ALLOCATE)
                .with(attr::REQUESTED_TRANSPORT, TCP.to_vec())
                .with(0x0018, vec![0x80])
        });
        assert_eq!(resp.error_code(), Some(400), "EVEN-PORT with TCP");
    })
    .await
    .unwrap();
    drop(server);

    let (server, _) = start(&["--no-tcp-relay"]).await;
    let addr = server.addr;
    tokio::task::spawn_blocking(move || {
        let mut ctl = Client::connect(addr, "tcp-relay");
        let resp = ctl.transact(|| {
            Message::request(method::ALLOCATE).with(attr::REQUESTED_TRANSPORT, TCP.to_vec())
        });
        assert_eq!(resp.error_code(), Some(442));
    })
    .await
    .unwrap();
    drop(server);
}

#[tokio::test(flavor = "multi_thread")]
async fn data_connections_reach_the_owning_shard_whichever_shard_accepts_them() {
    let _serial = SERIAL.lock().await;
    const PAIRS: usize = 12;
    let (server, metrics) = start(&["--relay-threads", "4"]).await;
    let addr = server.addr;
    tokio::task::spawn_blocking(move || {
        // Several control connections, so the allocations sit on several shards too.
        let mut ctls: Vec<Client> = (0..3).map(|_| Client::connect(addr, "tcp-relay")).collect();
        let relayed: Vec<SocketAddr> = ctls.iter_mut().map(Client::allocate_tcp).collect();
        for c in &mut ctls {
            c.permit(SocketAddr::from(([127, 0, 0, 1], 1)));
        }
        // Each pair: a peer connects, its ConnectionAttempt names the id, and the data
        // connection (accepted by whichever shard the kernel picks) binds it.
        let mut pairs = Vec::new();
        for i in 0..PAIRS {
            let peer = TcpStream::connect(relayed[i % 3]).unwrap();
            let me = peer.local_addr().unwrap();
            let attempt = ctls[i % 3].wait_for(|m| {
                m.method == CONNECTION_ATTEMPT && m.xor_addr(attr::XOR_PEER_ADDRESS) == Some(me)
            });
            let mut data = Client::connect_like(addr, &ctls[i % 3]);
            let bound = data.bind(connection_id(&attempt));
            assert_eq!(
                bound.class,
                Class::Success,
                "pair {i}: {:?}",
                bound.error_code()
            );
            pairs.push((peer, data));
        }
        for (i, (peer, data)) in pairs.iter_mut().enumerate() {
            let msg = format!("pair {i}");
            peer.write_all(msg.as_bytes()).unwrap();
            let mut buf = vec![0u8; msg.len()];
            data.s.read_exact(&mut buf).unwrap();
            assert_eq!(buf, msg.as_bytes());
            data.s.write_all(&buf).unwrap();
            peer.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
            peer.read_exact(&mut buf).unwrap();
            assert_eq!(buf, msg.as_bytes());
        }
        let m = scrape(metrics);
        let event = |e| m.get("ferroturn_tcp_relay_connections_total", &[("event", e)]);
        assert_eq!(event("bound"), PAIRS as f64);
        // With 4 shards, 12 data connections all landing on their owner has odds of 4^-12.
        assert!(
            m.get("ferroturn_tcp_relay_handovers_total", &[]) >= 1.0,
            "some ConnectionBinds were handed over"
        );
        assert_eq!(m.get("ferroturn_tcp_relay_connections", &[]), PAIRS as f64);
    })
    .await
    .unwrap();
    drop(server);
}

#[tokio::test(flavor = "multi_thread")]
async fn quotas_and_connection_limits_count_tcp_relay_connections() {
    let _serial = SERIAL.lock().await;
    let (server, metrics) = start(&["--max-tcp-connections", "3", "--user-quota", "1"]).await;
    let addr = server.addr;
    tokio::task::spawn_blocking(move || {
        let (peer, _eof) = echo_peer(2);
        let (other_peer, _eof2) = echo_peer(1);
        let mut ctl = Client::connect(addr, "tcp-relay");
        let relayed = ctl.allocate_tcp();
        // user-quota: a second TCP allocation of the same user is refused like a UDP one.
        let mut second = Client::connect(addr, "tcp-relay");
        let resp = second.transact(|| {
            Message::request(method::ALLOCATE).with(attr::REQUESTED_TRANSPORT, TCP.to_vec())
        });
        assert_eq!(resp.error_code(), Some(486));
        drop(second);
        thread::sleep(Duration::from_millis(200));

        // Control + peer + data connection = the limit of 3.
        let mut data = connect_and_bind(addr, &mut ctl, peer);
        // A fourth connection, to a peer, is refused: 447.
        assert_eq!(ctl.connect_peer(other_peer).error_code(), Some(447));
        // And so is an incoming peer.
        ctl.permit(SocketAddr::from(([127, 0, 0, 1], 1)));
        let mut late = TcpStream::connect(relayed).unwrap();
        assert!(
            sees_eof(&mut late),
            "an incoming peer over the limit is closed"
        );
        // The pair that fits keeps working.
        data.s.write_all(b"still here").unwrap();
        let mut buf = [0u8; 10];
        data.s.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"still here");
        let m = scrape(metrics);
        assert!(
            m.get(
                "ferroturn_tcp_relay_connections_total",
                &[("event", "dropped")]
            ) >= 2.0
        );
    })
    .await
    .unwrap();
    drop(server);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_waits_in_bounded_buffers_for_a_slow_reader_on_either_side() {
    let _serial = SERIAL.lock().await;
    let (server, _) = start(&[]).await;
    let addr = server.addr;
    tokio::task::spawn_blocking(move || {
        const BURST: usize = 2 << 20;
        let burst: Vec<u8> = (0..BURST as u32).map(|i| (i % 253) as u8).collect();
        let mut ctl = Client::connect(addr, "tcp-relay");
        let relayed = ctl.allocate_tcp();
        ctl.permit(SocketAddr::from(([127, 0, 0, 1], 1)));
        let mut peer = TcpStream::connect(relayed).unwrap();
        let attempt = ctl.wait_for(|m| m.method == CONNECTION_ATTEMPT);
        let mut data = Client::connect_like(addr, &ctl);
        assert_eq!(data.bind(connection_id(&attempt)).class, Class::Success);

        // Peer → client: the peer sends it all at once and then waits; the client starts
        // reading late. The relay holds at most its backlog and must resume by itself.
        let mut p = peer.try_clone().unwrap();
        let sent = burst.clone();
        let w = thread::spawn(move || p.write_all(&sent).unwrap());
        thread::sleep(Duration::from_millis(300));
        let mut got = vec![0u8; BURST];
        data.s
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        data.s
            .read_exact(&mut got)
            .expect("the whole burst reaches the client");
        w.join().unwrap();
        assert!(got == burst);

        // Client → peer, the peer reading late.
        let mut d = data.s.try_clone().unwrap();
        let sent = burst.clone();
        let w = thread::spawn(move || d.write_all(&sent).unwrap());
        thread::sleep(Duration::from_millis(300));
        peer.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        peer.read_exact(&mut got)
            .expect("the whole burst reaches the peer");
        w.join().unwrap();
        assert!(got == burst);
    })
    .await
    .unwrap();
    drop(server);
}
