//! SIGHUP against the real binary: every changed option is either applied or named in the log as
//! needing a restart (the option table's reload column), one test per class of option.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::turn_raw::RawClient;
use common::{free_tcp_port, http, Auth, TestServer, SECRET};
use tokio::time::timeout;

const TEST_TIMEOUT: Duration = Duration::from_secs(30);
const RELOADED: &str = "SIGHUP: configuration reloaded";

/// The log line that names the options needing a restart, once it is there.
async fn restart_line(server: &TestServer) -> String {
    server
        .wait_log(
            "need a restart; they were not applied",
            1,
            Duration::from_secs(3),
        )
        .await;
    server
        .logs()
        .lines()
        .find(|l| l.contains("need a restart"))
        .expect("restart line")
        .to_string()
}

#[tokio::test]
async fn options_read_at_start_up_are_named_as_needing_a_restart() {
    timeout(TEST_TIMEOUT, async {
        let server = TestServer::start().await;
        // These four groups were ignored without a word before the reload column existed.
        let port = free_tcp_port();
        server.rewrite_config(|c| {
            format!(
                "{c}\nrest-api-port={port}\nrest-api-address=127.0.0.2\nmax-tcp-connections=5\n\
                 max-tcp-connections-per-ip=2\npoll-interval-ms=3\nsock-buf-size=1048576\n"
            )
        });
        server.signal(libc::SIGHUP);
        let line = restart_line(&server).await;
        // Named in the option table's order.
        let named = "changes to sock-buf-size, poll-interval-ms, rest-api-address, rest-api-port, \
                     max-tcp-connections, max-tcp-connections-per-ip need a restart";
        assert!(line.contains(named), "{line}");
        server.wait_log(RELOADED, 1, Duration::from_secs(3)).await;
        assert!(
            server
                .logs()
                .contains("configuration reloaded; no option that applies live changed"),
            "{}",
            server.logs()
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn live_options_apply_and_a_mixed_change_is_split() {
    timeout(TEST_TIMEOUT, async {
        let server = TestServer::start().await;
        let mut first = RawClient::rest(server.addr, SECRET, "alice").await;
        first.allocate().await.expect("before the reload");

        server.rewrite_config(|c| format!("{c}\nuser-quota=1\nrelay-threads=3\n"));
        server.signal(libc::SIGHUP);
        let line = restart_line(&server).await;
        assert!(line.contains("relay-threads"), "{line}");
        assert!(!line.contains("user-quota"), "{line}");
        server
            .wait_log(
                "configuration reloaded; changed: user-quota",
                1,
                Duration::from_secs(3),
            )
            .await;

        // Applied: alice now holds her one allowed allocation.
        let mut second = RawClient::rest(server.addr, SECRET, "alice").await;
        assert_eq!(second.allocate().await.err(), Some(486));
        let mut other = RawClient::rest(server.addr, SECRET, "bob").await;
        other.allocate().await.expect("another user is not limited");
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_credential_endpoint_signs_with_the_reloaded_secret() {
    timeout(TEST_TIMEOUT, async {
        const TOKEN: &str = "reload-policy-endpoint-token";
        const ROTATED: &str = "reload-policy-rotated-secret";
        let port = free_tcp_port();
        let port_s = port.to_string();
        let args = [
            "--rest-api-token",
            TOKEN,
            "--rest-api-port",
            &port_s,
            "--rest-api-host",
            "127.0.0.1",
        ];
        let server = TestServer::start_with(Auth::RestAndStatic, &args).await;
        let api = SocketAddr::from(([127, 0, 0, 1], port));
        let fetch = move || async move {
            let body = http::fetch_credentials(api, TOKEN, "webapp").await;
            let field = |name| body.get(name).str().to_string();
            (field("username"), field("password"))
        };
        let (user, old_password) = fetch().await;

        let old_line = format!("static-auth-secret={SECRET}\n");
        server.rewrite_config(|text| {
            assert!(text.contains(&old_line), "{text}");
            text.replace(&old_line, &format!("static-auth-secret={ROTATED}\n"))
        });
        server.signal(libc::SIGHUP);
        server
            .wait_log(
                "configuration reloaded; changed: static-auth-secret",
                1,
                Duration::from_secs(3),
            )
            .await;

        let (user2, new_password) = fetch().await;
        assert_ne!(
            old_password, new_password,
            "the endpoint still signs with the old secret"
        );
        // What the endpoint hands out now is what the relay accepts now; the old one is not.
        let mut fresh = RawClient::new(server.addr, &user2, &new_password).await;
        fresh
            .allocate()
            .await
            .expect("the reloaded credential allocates");
        let mut stale = RawClient::new(server.addr, &user, &old_password).await;
        assert_eq!(stale.allocate().await.err(), Some(401));
    })
    .await
    .expect("test timed out");
}
