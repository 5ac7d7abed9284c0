//! RFC 6062 in virtual time: TCP allocations, Connect, ConnectionAttempt, ConnectionBind, the
//! timers and the bounds, with the runtime's part played by hand.

use super::super::super::flow::{RelayId, SocketId};
use super::super::super::peer_policy::PeerPolicySettings;
use super::super::super::stun::integrity::verify_integrity;
use super::super::super::tcp_conns::{
    owner_shard, MAX_CONNECTIONS_PER_ALLOCATION, MAX_PENDING_PER_ALLOCATION,
};
use super::*;

const TCP: u32 = 6 << 24;

fn tcp_flow(socket: u32, port: u16) -> Flow {
    Flow {
        socket: SocketId::Connection(socket),
        remote: SocketAddr::new("203.0.113.7".parse().unwrap(), port),
    }
}

fn tcp_client(socket: u32, port: u16) -> Client {
    let mut c = Client::static_user(port);
    c.flow = tcp_flow(socket, port);
    c
}

fn peer(port: u16) -> SocketAddr {
    SocketAddr::new("198.100.1.1".parse().unwrap(), port)
}

impl Harness {
    fn reply_on(&mut self, flow: Flow, transport: Transport, data: &[u8]) -> Option<Response> {
        let now = self.now;
        match self
            .server
            .handle_client(now, flow, transport, data, &mut self.out, &mut self.binder)
        {
            ClientAction::Reply(n) => Some(parse(&self.out[..n])),
            ClientAction::None => None,
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    /// Like `call`, on `transport`; None when the server answers later (Connect).
    fn call_on(
        &mut self,
        c: &mut Client,
        transport: Transport,
        method: u16,
        fill: impl Fn(&mut MessageWriter<'_>),
    ) -> Option<Response> {
        let tid = c.tid();
        let req = c.request(method, tid, &fill);
        let resp = self.reply_on(c.flow, transport, &req)?;
        let code = resp.error_code();
        if code == Some(438) || (code == Some(401) && c.nonce.is_none()) {
            c.nonce = Some(resp.attr(attr::NONCE).unwrap().to_vec());
            let tid = c.tid();
            let req = c.request(method, tid, &fill);
            return self.reply_on(c.flow, transport, &req);
        }
        Some(resp)
    }

    fn tcp_allocate(&mut self, c: &mut Client, transport: Transport) -> Response {
        self.call_on(c, transport, method::ALLOCATE, |w| {
            w.attr_u32(attr::REQUESTED_TRANSPORT, TCP).unwrap()
        })
        .expect("an answer")
    }

    fn connect(&mut self, c: &mut Client, to: SocketAddr) -> Option<Response> {
        self.call_on(c, Transport::Tcp, method::CONNECT, |w| {
            w.xor_address(attr::XOR_PEER_ADDRESS, &to).unwrap()
        })
    }

    fn bind_connection(&mut self, c: &mut Client, transport: Transport, id: u32) -> Response {
        self.call_on(c, transport, method::CONNECTION_BIND, |w| {
            w.attr(attr::CONNECTION_ID, &id.to_be_bytes()).unwrap()
        })
        .expect("an answer")
    }

    /// One ConnectionBind for `id` with whatever nonce `c` holds, not retried on a challenge.
    fn bind_once(&mut self, c: &mut Client, id: u32) -> Option<Response> {
        let tid = c.tid();
        let req = c.request(method::CONNECTION_BIND, tid, |w| {
            w.attr(attr::CONNECTION_ID, &id.to_be_bytes()).unwrap()
        });
        self.reply_on(c.flow, Transport::Tcp, &req)
    }

    fn commands(&mut self) -> Vec<TcpCommand> {
        std::iter::from_fn(|| self.server.poll_tcp()).collect()
    }

    fn tick(&mut self, secs: u64) {
        self.advance(secs);
    }
}

fn parse(raw: &[u8]) -> Response {
    let msg = Message::parse(raw).expect("valid STUN");
    msg.attributes().expect("valid attributes");
    Response {
        class: msg.class,
        method: msg.method,
        tid: msg.tid,
        raw: raw.to_vec(),
    }
}

fn connection_id(r: &Response) -> u32 {
    u32::from_be_bytes(r.attr(attr::CONNECTION_ID).unwrap().try_into().unwrap())
}

/// A harness with a TCP allocation for `c` (on connection socket 1) and a permission for the
/// public peer's IP.
fn allocated() -> (Harness, Client, RelayId) {
    let mut h = harness(Options::default());
    let mut c = tcp_client(1, 4000);
    let resp = h.tcp_allocate(&mut c, Transport::Tcp);
    assert_eq!(resp.class, Class::Success, "{:?}", resp.error_code());
    let slot = h.server.allocations().next().unwrap().0;
    (h, c, slot)
}

/// Runs a Connect to `to` through a successful peer connect; returns the CONNECTION-ID.
fn connected(h: &mut Harness, c: &mut Client, to: SocketAddr) -> u32 {
    assert!(h.connect(c, to).is_none(), "the answer waits for the peer");
    let cmds = h.commands();
    let [TcpCommand::Connect { id, peer, .. }] = cmds[..] else {
        panic!("expected one Connect, got {cmds:?}");
    };
    assert_eq!(peer, to);
    let now = h.now;
    h.server.handle_tcp_connected(now, id, true);
    let cmds = h.commands();
    let [TcpCommand::SendToClient { flow, ref message }] = cmds[..] else {
        panic!("expected the Connect answer, got {cmds:?}");
    };
    assert_eq!(flow, c.flow);
    let resp = parse(message);
    assert_eq!((resp.method, resp.class), (method::CONNECT, Class::Success));
    assert_eq!(connection_id(&resp), id);
    id
}

#[test]
fn tcp_allocations_need_a_stream_transport_and_no_udp_only_attributes() {
    let mut h = harness(Options::default());
    let mut udp = Client::static_user(4000);
    let resp = h
        .call_on(&mut udp, Transport::Udp, method::ALLOCATE, |w| {
            w.attr_u32(attr::REQUESTED_TRANSPORT, TCP).unwrap()
        })
        .unwrap();
    assert_eq!(
        resp.error_code(),
        Some(400),
        "RFC 6062 §5.1: UDP control → 400"
    );

    type Fill = fn(&mut MessageWriter<'_>);
    let udp_only: [(&str, Fill); 3] = [
        ("DONT-FRAGMENT", |w| {
            w.attr(attr::DONT_FRAGMENT, &[]).unwrap()
        }),
        ("EVEN-PORT", |w| w.attr(attr::EVEN_PORT, &[0x80]).unwrap()),
        ("RESERVATION-TOKEN", |w| {
            w.attr(attr::RESERVATION_TOKEN, &[1; 8]).unwrap()
        }),
    ];
    for (i, (name, extra)) in udp_only.into_iter().enumerate() {
        let mut c = tcp_client(10 + i as u32, 4100 + i as u16);
        let resp = h
            .call_on(&mut c, Transport::Tcp, method::ALLOCATE, |w| {
                w.attr_u32(attr::REQUESTED_TRANSPORT, TCP).unwrap();
                extra(w);
            })
            .unwrap();
        assert_eq!(resp.error_code(), Some(400), "{name} with TCP");
    }
    assert_eq!(h.server.allocation_count(), 0);

    let mut c = tcp_client(1, 4001);
    let resp = h.tcp_allocate(&mut c, Transport::Tls);
    assert_eq!(resp.class, Class::Success);
    assert_eq!(h.binder.open.len(), 1, "a TCP relay listener was opened");
    assert!(h.server.allocations().next().unwrap().1.tcp);

    let mut h = harness_tuned(|s| s.no_tcp_relay = true);
    let mut c = tcp_client(1, 4002);
    assert_eq!(
        h.tcp_allocate(&mut c, Transport::Tcp).error_code(),
        Some(442)
    );
}

#[test]
fn connect_then_connection_bind_pairs_a_data_connection() {
    let (mut h, mut c, slot) = allocated();
    let id = connected(&mut h, &mut c, peer(7000));
    assert_eq!(owner_shard(id), 0);
    assert!(
        h.server
            .allocations()
            .next()
            .unwrap()
            .1
            .permits(peer(1).ip(), h.now),
        "Connect installs a permission"
    );

    let mut data = tcp_client(2, 4500);
    let resp = h.bind_connection(&mut data, Transport::Tcp, id);
    assert_eq!(
        (resp.method, resp.class),
        (method::CONNECTION_BIND, Class::Success)
    );
    let key = long_term_key("alice", REALM, "wonderland");
    let mi = attr_offset(&resp.raw, attr::MESSAGE_INTEGRITY).unwrap();
    assert!(
        verify_integrity(&resp.raw, mi, &key),
        "signed with the user's key"
    );
    assert_eq!(
        h.commands(),
        vec![TcpCommand::Bind {
            id,
            flow: data.flow
        }]
    );
    assert_eq!(h.server.stats().tcp_connections_bound.get(), 1);

    // Bound connections have no deadline: nothing happens after the bind timeout.
    h.tick(BIND_TIMEOUT.as_secs() + 1);
    assert!(h.commands().is_empty());
    assert_eq!(h.server.tcp_connection_count(), 1);

    h.server.count_tcp_traffic(slot, 1000, 300);
    let traffic = h.server.allocations().next().unwrap().1.traffic;
    assert_eq!(
        (traffic.to_peer_bytes, traffic.to_client_bytes),
        (1000, 300)
    );
    assert_eq!(h.server.stats().tcp_to_peers.bytes.get(), 1000);

    // The runtime reports a side closed: the core forgets the connection.
    h.server.handle_tcp_closed(id);
    assert_eq!(h.server.tcp_connection_count(), 0);
    assert_eq!(h.server.tcp_timer_entries(), 0);
}

#[test]
fn connect_errors_400_403_446_447_508() {
    let (mut h, mut c, _) = allocated();
    // No XOR-PEER-ADDRESS.
    let resp = h
        .call_on(&mut c, Transport::Tcp, method::CONNECT, |_| {})
        .unwrap();
    assert_eq!(resp.error_code(), Some(400));
    // Forbidden peer.
    let resp = h.connect(&mut c, "10.0.0.1:80".parse().unwrap()).unwrap();
    assert_eq!(resp.error_code(), Some(403));
    // Peer of the other family.
    let resp = h
        .connect(&mut c, "[2001:db8:1::1]:80".parse().unwrap())
        .unwrap();
    assert_eq!(resp.error_code(), Some(443));
    assert!(h.commands().is_empty(), "nothing was attempted");

    // 446 while the first attempt is pending, and after it connected.
    assert!(h.connect(&mut c, peer(7000)).is_none());
    let resp = h.connect(&mut c, peer(7000)).unwrap();
    assert_eq!(resp.error_code(), Some(446));
    let cmds = h.commands();
    let [TcpCommand::Connect { id, .. }] = cmds[..] else {
        panic!("{cmds:?}");
    };
    let now = h.now;
    h.server.handle_tcp_connected(now, id, true);
    h.commands();
    assert_eq!(
        h.connect(&mut c, peer(7000)).unwrap().error_code(),
        Some(446)
    );
    // Another port of the same peer is another connection.
    let id2 = connected(&mut h, &mut c, peer(7001));
    assert_ne!(id, id2);

    // A failed attempt answers 447 at once; a silent one after CONNECT_TIMEOUT.
    assert!(h.connect(&mut c, peer(7002)).is_none());
    let cmds = h.commands();
    let [TcpCommand::Connect { id: failing, .. }] = cmds[..] else {
        panic!("{cmds:?}");
    };
    h.server.handle_tcp_connected(now, failing, false);
    let cmds = h.commands();
    let [TcpCommand::SendToClient { ref message, .. }] = cmds[..] else {
        panic!("{cmds:?}");
    };
    assert_eq!(parse(message).error_code(), Some(447));

    assert!(h.connect(&mut c, peer(7003)).is_none());
    let cmds = h.commands();
    let [TcpCommand::Connect { id: silent, .. }] = cmds[..] else {
        panic!("{cmds:?}");
    };
    h.tick(CONNECT_TIMEOUT.as_secs() - 1);
    assert!(h
        .commands()
        .iter()
        .all(|c| !matches!(c, TcpCommand::SendToClient { .. })));
    h.tick(2);
    let cmds = h.commands();
    assert!(cmds.contains(&TcpCommand::Close { id: silent }), "{cmds:?}");
    let answer = cmds
        .iter()
        .find_map(|c| match c {
            TcpCommand::SendToClient { message, .. } => Some(parse(message)),
            _ => None,
        })
        .expect("a 447");
    assert_eq!(answer.error_code(), Some(447));
    assert_eq!(h.server.stats().tcp_connect_failures.get(), 2);
    // A late report for the timed-out attempt changes nothing.
    let now = h.now;
    h.server.handle_tcp_connected(now, silent, true);
    assert!(h.commands().is_empty());

    // Pending attempts are bounded per allocation (508).
    for i in 0..MAX_PENDING_PER_ALLOCATION as u16 {
        assert!(h.connect(&mut c, peer(8000 + i)).is_none());
    }
    assert_eq!(
        h.connect(&mut c, peer(8100)).unwrap().error_code(),
        Some(508)
    );
}

#[test]
fn connect_on_a_udp_allocation_or_without_one_is_refused() {
    let mut h = harness(Options::default());
    let mut udp = Client::static_user(4000);
    h.allocate(&mut udp);
    let resp = h
        .call_on(&mut udp, Transport::Udp, method::CONNECT, |w| {
            w.xor_address(attr::XOR_PEER_ADDRESS, &peer(1)).unwrap()
        })
        .unwrap();
    assert_eq!(resp.error_code(), Some(400));
    let mut none = tcp_client(3, 4001);
    let resp = h.connect(&mut none, peer(1)).unwrap();
    assert_eq!(resp.error_code(), Some(437));
    // And a TCP allocation takes no channels.
    let (mut h, mut c, _) = allocated();
    let resp = h
        .call_on(&mut c, Transport::Tcp, method::CHANNEL_BIND, |w| {
            w.attr_u32(attr::CHANNEL_NUMBER, 0x4000 << 16).unwrap();
            w.xor_address(attr::XOR_PEER_ADDRESS, &peer(1)).unwrap();
        })
        .unwrap();
    assert_eq!(resp.error_code(), Some(400));
}

#[test]
fn connection_bind_errors() {
    let (mut h, mut c, _) = allocated();
    let id = connected(&mut h, &mut c, peer(7000));

    // Over UDP.
    let mut udp = Client::static_user(4600);
    assert_eq!(
        h.bind_connection(&mut udp, Transport::Udp, id).error_code(),
        Some(400)
    );
    // Without CONNECTION-ID.
    let mut d = tcp_client(5, 4601);
    let resp = h
        .call_on(&mut d, Transport::Tcp, method::CONNECTION_BIND, |_| {})
        .unwrap();
    assert_eq!(resp.error_code(), Some(400));
    // An unknown id.
    assert_eq!(
        h.bind_connection(&mut d, Transport::Tcp, id ^ 1)
            .error_code(),
        Some(400)
    );
    // On the control connection, which holds the allocation.
    assert_eq!(
        h.bind_connection(&mut c, Transport::Tcp, id).error_code(),
        Some(400)
    );
    // Another user.
    let mut bob = Client::rest(4602, "bob", valid_expiry());
    bob.flow = tcp_flow(6, 4602);
    assert_eq!(
        h.bind_connection(&mut bob, Transport::Tcp, id).error_code(),
        Some(441)
    );
    // Without credentials: challenged like any request.
    let mut fresh = tcp_client(7, 4603);
    assert_eq!(h.bind_once(&mut fresh, id).unwrap().error_code(), Some(401));
    assert!(h.commands().is_empty(), "no error bound anything");

    // The right one binds, once.
    assert_eq!(
        h.bind_connection(&mut d, Transport::Tcp, id).class,
        Class::Success
    );
    h.commands();
    let mut again = tcp_client(8, 4604);
    assert_eq!(
        h.bind_connection(&mut again, Transport::Tcp, id)
            .error_code(),
        Some(400)
    );
}

#[test]
fn incoming_peers_need_a_permission_and_get_30_seconds_to_be_bound() {
    let (mut h, mut c, slot) = allocated();
    let now = h.now;
    assert_eq!(h.server.handle_tcp_incoming(now, slot, peer(9000)), None);
    assert_eq!(h.server.stats().tcp_connections_refused.get(), 1);
    assert!(h.commands().is_empty());

    assert_eq!(
        h.create_permission_on(&mut c, peer(1)).class,
        Class::Success
    );
    let id = h.server.handle_tcp_incoming(now, slot, peer(9000)).unwrap();
    let cmds = h.commands();
    let [TcpCommand::SendToClient { flow, ref message }] = cmds[..] else {
        panic!("{cmds:?}");
    };
    assert_eq!(flow, c.flow);
    let attempt = parse(message);
    assert_eq!(
        (attempt.method, attempt.class),
        (method::CONNECTION_ATTEMPT, Class::Indication)
    );
    assert_eq!(connection_id(&attempt), id);
    assert_eq!(attempt.xor_addr(attr::XOR_PEER_ADDRESS), peer(9000));
    // The same peer address twice is refused.
    assert_eq!(h.server.handle_tcp_incoming(now, slot, peer(9000)), None);
    // An unknown relay slot refuses.
    assert_eq!(
        h.server
            .handle_tcp_incoming(now, RelayId::new(slot.index() as u32 + 9), peer(9001)),
        None
    );

    // No ConnectionBind within 30 s: the peer connection is dropped.
    h.tick(BIND_TIMEOUT.as_secs() - 1);
    assert!(h.commands().is_empty());
    h.tick(1);
    assert_eq!(h.commands(), vec![TcpCommand::Close { id }]);
    assert_eq!(h.server.stats().tcp_bind_timeouts.get(), 1);
    let mut late = tcp_client(2, 4500);
    assert_eq!(
        h.bind_connection(&mut late, Transport::Tcp, id)
            .error_code(),
        Some(400)
    );

    // Pending incoming connections are bounded per allocation.
    let now = h.now;
    for i in 0..MAX_PENDING_PER_ALLOCATION as u16 {
        assert!(h
            .server
            .handle_tcp_incoming(now, slot, peer(9100 + i))
            .is_some());
    }
    assert_eq!(h.server.handle_tcp_incoming(now, slot, peer(9200)), None);
}

#[test]
fn bound_connections_are_bounded_per_allocation() {
    let (mut h, mut c, slot) = allocated();
    h.create_permission_on(&mut c, peer(1));
    let mut bound = 0;
    for i in 0..MAX_CONNECTIONS_PER_ALLOCATION as u16 {
        let now = h.now;
        let id = h
            .server
            .handle_tcp_incoming(now, slot, peer(10000 + i))
            .unwrap();
        let mut d = tcp_client(100 + u32::from(i), 5000 + i);
        assert_eq!(
            h.bind_connection(&mut d, Transport::Tcp, id).class,
            Class::Success
        );
        bound += 1;
    }
    assert_eq!(bound, MAX_CONNECTIONS_PER_ALLOCATION);
    let now = h.now;
    assert_eq!(h.server.handle_tcp_incoming(now, slot, peer(11000)), None);
    assert!(h.connect(&mut c, peer(11001)).unwrap().error_code() == Some(508));
}

#[test]
fn the_end_of_an_allocation_closes_its_connections() {
    for how in ["refresh-0", "expiry", "revoke", "connection-closed"] {
        let (mut h, mut c, slot) = allocated();
        let a = connected(&mut h, &mut c, peer(7000));
        let mut d = tcp_client(2, 4500);
        h.bind_connection(&mut d, Transport::Tcp, a);
        h.create_permission_on(&mut c, peer(1));
        let now = h.now;
        let b = h.server.handle_tcp_incoming(now, slot, peer(9000)).unwrap();
        h.commands();
        match how {
            "refresh-0" => {
                let resp = h
                    .call_on(&mut c, Transport::Tcp, method::REFRESH, |w| {
                        w.attr_u32(attr::LIFETIME, 0).unwrap()
                    })
                    .unwrap();
                assert_eq!(resp.lifetime(), 0);
            }
            "expiry" => h.tick(3600 + 1),
            "revoke" => {
                h.server.end_allocations_where(now, &mut h.binder, |_| true);
            }
            _ => h.server.handle_flow_closed(now, c.flow, &mut h.binder),
        }
        let mut cmds = h.commands();
        cmds.sort_by_key(|c| format!("{c:?}"));
        let mut want = vec![TcpCommand::Close { id: a }, TcpCommand::Close { id: b }];
        want.sort_by_key(|c| format!("{c:?}"));
        assert_eq!(cmds, want, "{how}");
        assert_eq!(h.server.tcp_connection_count(), 0, "{how}");
        assert_eq!(h.server.tcp_timer_entries(), 0, "{how}");
        assert!(h.binder.open.is_empty(), "{how}: the listener closed");
    }
}

#[test]
fn connection_ids_name_their_shard() {
    let mut h = harness(Options::default());
    let shared = h.server.shared.clone();
    let config = h.server.config.clone();
    h.server = Server::new(shared, config, h.start, UNIX_START, 7, 5);
    let mut c = tcp_client(1, 4000);
    assert_eq!(h.tcp_allocate(&mut c, Transport::Tcp).class, Class::Success);
    let id = connected(&mut h, &mut c, peer(7000));
    assert_eq!(owner_shard(id), 5);
}

#[test]
fn allowed_peer_lists_apply_to_connect() {
    let mut h = harness(Options {
        peers: PeerPolicySettings {
            allowed: vec!["10.1.0.0/16".parse().unwrap()],
            ..PeerPolicySettings::default()
        },
        ..Options::default()
    });
    let mut c = tcp_client(1, 4000);
    h.tcp_allocate(&mut c, Transport::Tcp);
    assert!(h.connect(&mut c, "10.1.2.3:80".parse().unwrap()).is_none());
    assert!(matches!(h.commands()[..], [TcpCommand::Connect { .. }]));
}

impl Harness {
    fn create_permission_on(&mut self, c: &mut Client, to: SocketAddr) -> Response {
        self.call_on(c, Transport::Tcp, method::CREATE_PERMISSION, |w| {
            w.xor_address(attr::XOR_PEER_ADDRESS, &to).unwrap()
        })
        .unwrap()
    }
}

#[test]
fn connection_bind_accepts_the_control_connections_nonce_only() {
    let (mut h, mut c, slot) = allocated();
    h.create_permission_on(&mut c, peer(1));
    let now = h.now;
    let a = h.server.handle_tcp_incoming(now, slot, peer(9000)).unwrap();
    let b = h.server.handle_tcp_incoming(now, slot, peer(9001)).unwrap();
    h.commands();
    // The control connection's nonce on a new data connection: accepted without a round
    // trip, as turnutils_uclient sends it.
    let mut data = tcp_client(2, 4500);
    data.nonce = c.nonce.clone();
    assert_eq!(h.bind_once(&mut data, a).unwrap().class, Class::Success);
    // A nonce issued to some other connection is not.
    let mut other = tcp_client(3, 4501);
    let challenge = h.reply_on(
        other.flow,
        Transport::Tcp,
        &other.request(method::ALLOCATE, [9; 12], |w| {
            w.attr_u32(attr::REQUESTED_TRANSPORT, TCP).unwrap()
        }),
    );
    other.nonce = Some(challenge.unwrap().attr(attr::NONCE).unwrap().to_vec());
    let mut third = tcp_client(4, 4502);
    third.nonce = other.nonce.clone();
    assert_eq!(h.bind_once(&mut third, b).unwrap().error_code(), Some(438));
}
