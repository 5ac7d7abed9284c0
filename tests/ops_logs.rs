//! What the relay writes to its log when stdout is a file (as under systemd or docker): plain
//! text without escape codes, plain addresses in JSON, one line per allocation start and end,
//! rate-limited authentication refusals and reload lines that say what changed.

mod common;

use std::time::Duration;

use common::turn_raw::{RawClient, Session};
use common::{Auth, TestServer, SECRET};
use tokio::time::timeout;

const TEST_TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn plain_text_and_one_line_per_allocation_start_and_end() {
    timeout(TEST_TIMEOUT, async {
        let server = TestServer::start().await;
        let mut session = Session::open(server.addr, SECRET, "alice").await;
        session.assert_relays(b"logged once").await;
        assert_eq!(session.client.refresh(0).await, Ok(0));
        server
            .wait_log("allocation ended", 1, Duration::from_secs(3))
            .await;
        let logs = server.logs();
        assert!(
            !logs.contains('\x1b'),
            "escape codes in a piped log:\n{logs}"
        );
        assert_eq!(logs.matches("allocation created").count(), 1, "{logs}");
        assert_eq!(logs.matches("allocation ended").count(), 1, "{logs}");
        let ended = logs
            .lines()
            .find(|l| l.contains("allocation ended"))
            .unwrap_or_default();
        assert!(ended.contains(" INFO "), "{ended}");
        assert!(ended.contains("reason=deleted"), "{ended}");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn json_lines_carry_plain_addresses() {
    timeout(TEST_TIMEOUT, async {
        let server = TestServer::start_with(Auth::RestAndStatic, &["--log-json"]).await;
        server
            .wait_log("relay started", 1, Duration::from_secs(3))
            .await;
        let logs = server.logs();
        let started = logs
            .lines()
            .find(|l| l.contains("relay started"))
            .unwrap_or_default();
        assert!(started.contains(r#""relay":"127.0.0.1""#), "{started}");
        assert!(!started.contains("Some("), "{started}");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn reload_line_names_the_options_that_changed() {
    timeout(TEST_TIMEOUT, async {
        let server = TestServer::start().await;
        server.signal(libc::SIGHUP);
        server
            .wait_log(
                "configuration reloaded; nothing changed",
                1,
                Duration::from_secs(3),
            )
            .await;
        server.rewrite_config(|c| format!("{c}\nuser-quota=5\ntotal-quota=9\n"));
        server.signal(libc::SIGHUP);
        server
            .wait_log(
                "configuration reloaded; changed: user-quota, total-quota",
                1,
                Duration::from_secs(3),
            )
            .await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn authentication_refusals_are_one_info_line_per_interval() {
    timeout(TEST_TIMEOUT, async {
        let server = TestServer::start().await;
        for i in 0..20 {
            let mut c = RawClient::rest(server.addr, "not-the-secret", &format!("u{i}")).await;
            assert_eq!(c.allocate().await.err(), Some(401));
        }
        server
            .wait_log("authentication refused", 1, Duration::from_secs(3))
            .await;
        tokio::time::sleep(Duration::from_millis(600)).await;
        let logs = server.logs();
        let lines: Vec<&str> = logs
            .lines()
            .filter(|l| l.contains("authentication refused"))
            .collect();
        // The first refusal at once, the rest folded into the next summary (10 s later).
        assert_eq!(lines.len(), 1, "{logs}");
        assert!(lines[0].contains(" INFO "), "{}", lines[0]);
    })
    .await
    .expect("test timed out");
}
