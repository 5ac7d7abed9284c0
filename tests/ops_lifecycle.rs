//! Operations, process side: drain on SIGUSR1 and through the admin API, SIGTERM with a
//! deadline, and SIGHUP reloads that apply secrets without dropping sessions or reject a
//! broken file whole.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::json::Json;
use common::stun::{attr, method, Message};
use common::turn_raw::{RawClient, Session};
use common::{free_tcp_port, http, Auth, TestServer, SECRET};
use tokio::time::timeout;

const TEST_TIMEOUT: Duration = Duration::from_secs(30);
const TOKEN: &str = "lifecycle-admin-token-0123456789";
const NEW_SECRET: &str = "rotated-secret-after-sighup";

async fn admin(addr: SocketAddr, method: &'static str, path: &'static str) -> http::Reply {
    tokio::task::spawn_blocking(move || http::request(addr, method, path, Some(TOKEN), ""))
        .await
        .expect("admin request task")
}

/// A new client for `user` signed by `secret`: its Allocate's error code, or `None` on
/// success (the allocation is then released again).
async fn allocate_code(server: &TestServer, secret: &str, user: &str) -> Option<u16> {
    let mut c = RawClient::rest(server.addr, secret, user).await;
    match c.allocate().await {
        Ok(_) => {
            assert_eq!(c.refresh(0).await, Ok(0), "release the probe allocation");
            None
        }
        Err(code) => Some(code),
    }
}

#[tokio::test]
async fn sigusr1_drain_keeps_sessions_refuses_allocations_and_exits_when_empty() {
    timeout(TEST_TIMEOUT, async {
        let mut server = TestServer::start_with(Auth::RestAndStatic, &[]).await;
        let mut one = Session::open(server.addr, SECRET, "alice").await;
        let mut two = Session::open(server.addr, SECRET, "bob").await;
        one.assert_relays(b"one before").await;
        two.assert_relays(b"two before").await;

        server.signal(libc::SIGUSR1);
        server
            .wait_log("SIGUSR1: draining", 1, Duration::from_secs(3))
            .await;
        assert_eq!(allocate_code(&server, SECRET, "carol").await, Some(508));
        one.assert_relays(b"one while draining").await;
        two.assert_relays(b"two while draining").await;

        assert_eq!(one.client.refresh(0).await, Ok(0));
        assert!(
            server.wait_exit(Duration::from_millis(700)).is_none(),
            "exited with a live allocation left"
        );
        two.assert_relays(b"two after one ended").await;
        assert_eq!(two.client.refresh(0).await, Ok(0));
        let status = server
            .wait_exit(Duration::from_secs(3))
            .expect("exits once the last allocation ends");
        assert!(status.success(), "exit status {status}");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn admin_drain_refuses_allocations_and_redirects_to_alternate_server() {
    timeout(TEST_TIMEOUT, async {
        let port = free_tcp_port();
        let port_s = port.to_string();
        let mut server = TestServer::start_with(
            Auth::RestAndStatic,
            &["--admin-token", TOKEN, "--admin-port", &port_s],
        )
        .await;
        let api = SocketAddr::from(([127, 0, 0, 1], port));
        let mut session = Session::open(server.addr, SECRET, "alice").await;

        let r = admin(api, "POST", "/admin/drain").await;
        assert_eq!(r.status, 200, "{}", r.body);
        let status = Json::parse(&admin(api, "GET", "/admin/status").await.body).expect("JSON");
        assert!(status.get("draining").bool());
        assert!(!status.get("ready").bool());
        assert_eq!(status.get("allocations").u64(), 1);
        assert_eq!(allocate_code(&server, SECRET, "carol").await, Some(508));
        session.assert_relays(b"flowing after admin drain").await;

        assert_eq!(session.client.refresh(0).await, Ok(0));
        let exit = server
            .wait_exit(Duration::from_secs(3))
            .expect("exits once drained");
        assert!(exit.success(), "exit status {exit}");

        // With alternate-server the refusal is 300 Try Alternate naming that server.
        let alt: SocketAddr = "127.0.0.1:34780".parse().expect("addr");
        let alt_s = alt.to_string();
        let server = TestServer::start_with(
            Auth::RestAndStatic,
            &[
                "--alternate-server",
                &alt_s,
                "--admin-token",
                TOKEN,
                "--admin-port",
                &port_s,
            ],
        )
        .await;
        let _keep = Session::open(server.addr, SECRET, "alice").await;
        assert_eq!(admin(api, "POST", "/admin/drain").await.status, 200);
        let mut c = RawClient::rest(server.addr, SECRET, "carol").await;
        let res = c
            .request(|| {
                Message::request(method::ALLOCATE)
                    .with(attr::REQUESTED_TRANSPORT, common::stun::udp_transport())
            })
            .await;
        assert_eq!(res.error_code(), Some(300));
        let value = res.get(0x8023).expect("ALTERNATE-SERVER");
        assert_eq!(
            value,
            [&[0, 1][..], &alt.port().to_be_bytes(), &[127, 0, 0, 1]].concat()
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn sigterm_drains_until_the_deadline_then_exits() {
    timeout(TEST_TIMEOUT, async {
        let mut server =
            TestServer::start_with(Auth::RestAndStatic, &["--drain-timeout", "2"]).await;
        let session = Session::open(server.addr, SECRET, "alice").await;
        let start = Instant::now();
        server.signal(libc::SIGTERM);
        server
            .wait_log("SIGTERM: draining", 1, Duration::from_secs(2))
            .await;
        session
            .assert_relays(b"flowing during the SIGTERM drain")
            .await;
        assert_eq!(allocate_code(&server, SECRET, "carol").await, Some(508));
        let status = server
            .wait_exit(Duration::from_secs(5))
            .expect("exits at the drain deadline");
        let took = start.elapsed();
        assert!(status.success(), "exit status {status}");
        assert!(
            took >= Duration::from_millis(1800) && took <= Duration::from_secs(4),
            "exited after {took:?}, drain-timeout is 2 s"
        );
        session.assert_not_relayed().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn a_second_sigterm_during_the_drain_stops_at_once() {
    timeout(TEST_TIMEOUT, async {
        let mut server =
            TestServer::start_with(Auth::RestAndStatic, &["--drain-timeout", "20"]).await;
        let session = Session::open(server.addr, SECRET, "alice").await;
        server.signal(libc::SIGTERM);
        server
            .wait_log("SIGTERM: draining", 1, Duration::from_secs(2))
            .await;
        session.assert_relays(b"still flowing in the drain").await;
        assert!(
            server.wait_exit(Duration::from_millis(500)).is_none(),
            "the first SIGTERM must drain, not stop"
        );
        let start = Instant::now();
        server.signal(libc::SIGTERM);
        let status = server
            .wait_exit(Duration::from_secs(2))
            .expect("the second SIGTERM does not wait for the 20 s drain");
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "took {:?}",
            start.elapsed()
        );
        assert!(status.success(), "exit status {status}");
        session.assert_not_relayed().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn stay_up_after_drain_keeps_the_process_up_and_unready() {
    timeout(TEST_TIMEOUT, async {
        let metrics = free_tcp_port();
        let metrics_s = metrics.to_string();
        let mut server = TestServer::start_with(
            Auth::RestAndStatic,
            &[
                "--stay-up-after-drain",
                "--prometheus",
                "--prometheus-address",
                "127.0.0.1",
                "--prometheus-port",
                &metrics_s,
            ],
        )
        .await;
        let health = SocketAddr::from(([127, 0, 0, 1], metrics));
        let get = |path: &'static str| {
            tokio::task::spawn_blocking(move || http::request(health, "GET", path, None, ""))
        };
        let mut session = Session::open(server.addr, SECRET, "alice").await;
        server.signal(libc::SIGUSR1);
        server
            .wait_log("SIGUSR1: draining", 1, Duration::from_secs(3))
            .await;
        assert_eq!(session.client.refresh(0).await, Ok(0));
        server
            .wait_log("staying up and unready", 1, Duration::from_secs(3))
            .await;
        assert!(
            server.wait_exit(Duration::from_millis(700)).is_none(),
            "exited although stay-up-after-drain is set"
        );
        assert_eq!(get("/readyz").await.expect("readyz").status, 503);
        assert_eq!(get("/healthz").await.expect("healthz").status, 200);
        assert_eq!(allocate_code(&server, SECRET, "carol").await, Some(508));
        server.signal(libc::SIGTERM);
        let status = server
            .wait_exit(Duration::from_secs(2))
            .expect("SIGTERM stops a drained relay");
        assert!(status.success(), "exit status {status}");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn sigterm_without_allocations_exits_at_once() {
    timeout(TEST_TIMEOUT, async {
        let mut server = TestServer::start_with(Auth::RestAndStatic, &[]).await;
        let start = Instant::now();
        server.signal(libc::SIGTERM);
        let status = server
            .wait_exit(Duration::from_secs(2))
            .expect("exits without waiting for the 30 s drain-timeout");
        assert!(status.success(), "exit status {status}");
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "took {:?}",
            start.elapsed()
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn sighup_rotates_secrets_without_dropping_live_sessions() {
    timeout(TEST_TIMEOUT, async {
        let mut server = TestServer::start_with(Auth::RestAndStatic, &[]).await;
        let session = Session::open(server.addr, SECRET, "alice").await;
        assert_eq!(allocate_code(&server, NEW_SECRET, "bob").await, Some(401));

        let old_line = format!("static-auth-secret={SECRET}\n");
        server.rewrite_config(|text| {
            assert!(text.contains(&old_line), "{text}");
            text.replace(&old_line, &format!("static-auth-secret={NEW_SECRET}\n"))
        });
        server.signal(libc::SIGHUP);
        server
            .wait_log("SIGHUP: configuration reloaded", 1, Duration::from_secs(3))
            .await;

        assert_eq!(
            allocate_code(&server, NEW_SECRET, "bob").await,
            None,
            "new secret"
        );
        assert_eq!(
            allocate_code(&server, SECRET, "carol").await,
            Some(401),
            "old secret"
        );
        session
            .assert_relays(b"live session after the reload")
            .await;
        assert!(server.is_running());
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn sighup_with_a_broken_file_keeps_the_old_configuration() {
    timeout(TEST_TIMEOUT, async {
        let mut server = TestServer::start_with(Auth::RestAndStatic, &[]).await;
        let session = Session::open(server.addr, SECRET, "alice").await;
        // The new secret comes with an invalid line: none of it may apply.
        server.rewrite_config(|text| {
            format!("{text}static-auth-secret={NEW_SECRET}\nmin-port=70000\n")
        });
        server.signal(libc::SIGHUP);
        server
            .wait_log(
                "the new configuration is invalid and was not applied",
                1,
                Duration::from_secs(3),
            )
            .await;
        assert!(server.is_running(), "{}", server.logs());
        assert!(!server.logs().contains("SIGHUP: configuration reloaded"));
        assert_eq!(
            allocate_code(&server, SECRET, "bob").await,
            None,
            "old secret"
        );
        assert_eq!(allocate_code(&server, NEW_SECRET, "carol").await, Some(401));
        session
            .assert_relays(b"live session after a rejected reload")
            .await;
    })
    .await
    .expect("test timed out");
}

/// Sends `n` back-to-back 1000-byte ChannelData and counts what reaches the peer.
async fn burst_through(session: &Session, n: usize) -> usize {
    for _ in 0..n {
        session
            .client
            .send_channel(session.channel, &[7u8; 1000])
            .await;
    }
    let mut got = 0;
    while session
        .peer_recv(Duration::from_millis(300))
        .await
        .is_some()
    {
        got += 1;
    }
    got
}

#[tokio::test]
async fn sighup_applies_a_bandwidth_limit_to_live_sessions() {
    timeout(TEST_TIMEOUT, async {
        let mut server = TestServer::start_with(Auth::RestAndStatic, &[]).await;
        let session = Session::open(server.addr, SECRET, "alice").await;
        assert_eq!(burst_through(&session, 20).await, 20, "no limit yet");

        server.rewrite_config(|text| format!("{text}max-bps=20000\n"));
        server.signal(libc::SIGHUP);
        server
            .wait_log("SIGHUP: configuration reloaded", 1, Duration::from_secs(3))
            .await;
        // The bucket holds max(20000/10, 3000) bytes: 3 datagrams, plus what the rate refills
        // while the burst is being sent (a few ms).
        let got = burst_through(&session, 20).await;
        assert!(
            (3..=5).contains(&got),
            "{got} of 20 got through after max-bps=20000"
        );
        assert!(server.is_running());
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn sigint_stops_at_once_even_with_live_allocations() {
    timeout(TEST_TIMEOUT, async {
        let mut server =
            TestServer::start_with(Auth::RestAndStatic, &["--drain-timeout", "20"]).await;
        let session = Session::open(server.addr, SECRET, "alice").await;
        let start = Instant::now();
        server.signal(libc::SIGINT);
        let status = server
            .wait_exit(Duration::from_secs(2))
            .expect("SIGINT does not wait for allocations");
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "took {:?}",
            start.elapsed()
        );
        assert!(status.success(), "exit status {status}");
        session.assert_not_relayed().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn drain_min_allocations_stops_with_that_many_left() {
    timeout(TEST_TIMEOUT, async {
        let mut server =
            TestServer::start_with(Auth::RestAndStatic, &["--drain-min-allocations", "1"]).await;
        let mut one = Session::open(server.addr, SECRET, "alice").await;
        let two = Session::open(server.addr, SECRET, "bob").await;
        one.assert_relays(b"one before").await;
        server.signal(libc::SIGUSR1);
        server
            .wait_log("SIGUSR1: draining", 1, Duration::from_secs(3))
            .await;
        assert!(
            server.wait_exit(Duration::from_millis(700)).is_none(),
            "exited with two allocations left"
        );
        assert_eq!(one.client.refresh(0).await, Ok(0));
        let status = server
            .wait_exit(Duration::from_secs(3))
            .expect("exits once only drain-min-allocations are left");
        assert!(status.success(), "exit status {status}");
        drop(two);
    })
    .await
    .expect("test timed out");
}
